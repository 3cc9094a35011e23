"""Evidence for a Wuhan city-wide macro factor (issue 16): one-factor loadings from yearly growth.

Run from the repository root:

    .venv/bin/python -m benches.wuhan_factor

Reads ``baselines/wuhan_macro.csv`` only and writes ``benches/results/wuhan_factor.txt``.

The engine's factor model: indicator i's standardised yearly log-growth shock is
``λ_i f + sqrt(1 - λ_i²) u_i`` with ``f ~ N(0, 1)`` common to all indicators. So λ_i is the
correlation of series i's standardised yearly log growth with the common factor, and
``λ_i λ_j`` is the implied correlation between two series' shocks.

Yearly log growth per series, year t:

- a growth rate the source states for year t (``*_growth`` / ``*_real_growth`` rows, percent):
  ``log(1 + g/100)``. For GDP and services value added only the stated *real* growth is used
  (levels are nominal; mixing the two would add the deflator to the shock);
- otherwise, for the other series, ``log(L_t / L_{t-1})`` from two consecutive observed levels,
  unless the year-t level row is flagged ``SCOPE BREAK`` in its notes (no change across a break).

The factor is fitted on the years where every series of a set is observed (complete cases), each
series standardised over those years: statsmodels ``Factor(n_factor=1, method='ml')`` when it
converges without a Heywood case, else ``method='pa'``, and always the first principal component
of the correlation matrix for comparison. Uncertainty: leave-one-year-out refits, a bootstrap over
years, and a null reference (the loadings that *independent* series give with the same number of
years and series).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from statsmodels.multivariate.factor import Factor

from targetsim.io.baselines import load_baselines

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "baselines" / "wuhan_macro.csv"
OUT = ROOT / "benches" / "results" / "wuhan_factor.txt"

# short name -> (level indicator, stated-growth indicator, use level ratios)
SERIES = {
    "gdp": ("wuhan_gdp", "wuhan_gdp_real_growth", False),
    "services": ("wuhan_services_value_added", "wuhan_services_value_added_real_growth", False),
    "retail": ("wuhan_retail_sales_consumer_goods", "wuhan_retail_sales_consumer_goods_growth", True),
    "trade": ("wuhan_foreign_trade", "wuhan_foreign_trade_growth", True),
    "tourists": ("wuhan_tourist_arrivals", "wuhan_tourist_arrivals_growth", True),
    "tour_rev": ("wuhan_tourism_revenue", "wuhan_tourism_revenue_growth", True),
    "airport": ("wuhan_airport_passengers", "wuhan_airport_passengers_growth", True),
}
# sets fitted (each on its complete-case years)
SETS = {
    "core: gdp, services, airport": ["gdp", "services", "airport"],
    "gdp, services": ["gdp", "services"],
    "demand: retail, trade, airport": ["retail", "trade", "airport"],
}
HEYWOOD = 0.005  # a uniqueness below this is a Heywood case
N_BOOT = 4000
N_NULL = 4000
SEED = 16


def growth_table() -> tuple[dict[str, dict[int, float]], dict[str, dict[int, str]]]:
    """Yearly log growth per series and where each value comes from."""
    table = load_baselines(CSV)
    growth: dict[str, dict[int, float]] = {}
    origin: dict[str, dict[int, str]] = {}
    for name, (level_id, growth_id, use_levels) in SERIES.items():
        g: dict[int, float] = {}
        o: dict[int, str] = {}
        for row in table.history(growth_id):
            g[row.year] = math.log1p(row.value / 100.0)
            o[row.year] = "stated"
        if use_levels:
            levels = {row.year: row for row in table.history(level_id)}
            for year, row in sorted(levels.items()):
                prev = levels.get(year - 1)
                if prev is None or year in g or "SCOPE BREAK" in row.notes or row.is_assumption or prev.is_assumption:
                    continue
                g[year] = math.log(row.value / prev.value)
                o[year] = "levels"
        growth[name] = dict(sorted(g.items()))
        origin[name] = dict(sorted(o.items()))
    return growth, origin


def complete_cases(growth, names, drop=()):
    years = sorted(set.intersection(*(set(growth[n]) for n in names)) - set(drop))
    x = np.array([[growth[n][y] for n in names] for y in years], dtype=float)
    return years, x


def standardise(x):
    sd = x.std(axis=0, ddof=1)
    if np.any(sd <= 0) or x.shape[0] < 2:
        return None
    return (x - x.mean(axis=0)) / sd


def pc1(z):
    """Loadings of the first principal component of the correlation matrix (sign: first > 0)."""
    c = np.corrcoef(z, rowvar=False)
    w, v = np.linalg.eigh(c)
    lam = v[:, -1] * math.sqrt(max(w[-1], 0.0))
    return lam * (1 if lam[0] >= 0 else -1), w[-1] / len(w)


def factor_fit(z):
    """One-factor loadings: ML if it converges without a Heywood case, else PA. (method, loadings, note)."""
    if z.shape[1] < 3:
        # two series: λ1 λ2 = r is all the data say; the symmetric solution λ = sqrt(|r|)
        r = float(np.corrcoef(z, rowvar=False)[0, 1])
        lam = np.full(2, math.sqrt(abs(r))) * np.array([1.0, 1.0 if r >= 0 else -1.0])
        return "sym", lam, "two series: only the product λ1·λ2 = r is identified; λ = sqrt(|r|) shown"
    note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = Factor(z, n_factor=1, method="ml")
            res = model.fit()
            ok = bool(getattr(model, "mle_retvals", None) is None or model.mle_retvals.success)
            lam = np.asarray(res.loadings).ravel()
            if ok and np.all(res.uniqueness > HEYWOOD):
                return "ml", lam * (1 if lam[0] >= 0 else -1), note
            note = "ml: " + ("did not converge" if not ok else "Heywood case (a uniqueness at 0)") + "; "
        except Exception as exc:  # noqa: BLE001 - report and fall back
            note = f"ml failed ({type(exc).__name__}); "
        res = Factor(z, n_factor=1, method="pa").fit()
        lam = np.asarray(res.loadings).ravel()
    if np.any(np.abs(lam) > 1):
        note += "pa loading above 1 (Heywood), clipped to 1"
        lam = np.clip(lam, -1, 1)
    return "pa", lam * (1 if lam[0] >= 0 else -1), note


def loyo(x):
    """PC1 loadings with each year left out in turn (needs 3+ years left)."""
    out = []
    for i in range(x.shape[0]):
        z = standardise(np.delete(x, i, axis=0))
        if z is not None and z.shape[0] >= 3:
            out.append(pc1(z)[0])
    return np.array(out)


def bootstrap(x, rng):
    """PC1 loadings over years resampled with replacement; degenerate draws (under 3 distinct years,
    or a series constant) are counted and skipped."""
    n = x.shape[0]
    out, skipped = [], 0
    for _ in range(N_BOOT):
        idx = rng.integers(0, n, n)
        if len(set(idx.tolist())) < 3:
            skipped += 1
            continue
        z = standardise(x[idx])
        if z is None:
            skipped += 1
            continue
        out.append(pc1(z)[0])
    return np.array(out), skipped


def null_reference(n, k, rng):
    """95th percentile of the mean |PC1 loading| for k independent normal series over n years."""
    vals = [float(np.mean(np.abs(pc1(standardise(rng.normal(size=(n, k))))[0]))) for _ in range(N_NULL)]
    return float(np.quantile(vals, 0.5)), float(np.quantile(vals, 0.95))


def fmt(v):
    return f"{v:+.2f}"


def main() -> None:
    rng = np.random.default_rng(SEED)
    growth, origin = growth_table()
    lines: list[str] = []
    p = lines.append
    p("Wuhan city-wide macro factor: evidence from yearly growth (issue 16)")
    p(f"data: {CSV.relative_to(ROOT)}; script: benches/wuhan_factor.py (seed {SEED})")
    p("")
    p("Yearly log growth x100 by series (s = growth the source states, l = from consecutive levels):")
    all_years = sorted(set().union(*(set(g) for g in growth.values())))
    p("year   " + "".join(f"{n:>10}" for n in SERIES))
    for y in all_years:
        cells = []
        for n in SERIES:
            if y in growth[n]:
                cells.append(f"{100 * growth[n][y]:>9.1f}{'s' if origin[n][y] == 'stated' else 'l'}")
            else:
                cells.append(f"{'.':>10}")
        p(f"{y}   " + "".join(cells))
    p("years per series: " + ", ".join(f"{n} {len(growth[n])}" for n in SERIES))
    p("")

    names = list(SERIES)
    p("Pairwise correlations of yearly log growth (n = overlapping years; '--' = under 3):")
    p("          " + "".join(f"{n:>10}" for n in names))
    for a in names:
        cells = []
        for b in names:
            common = sorted(set(growth[a]) & set(growth[b]))
            if a == b:
                cells.append(f"{'1':>10}")
            elif len(common) < 3:
                cells.append(f"{'--':>10}")
            else:
                r = np.corrcoef([growth[a][y] for y in common], [growth[b][y] for y in common])[0, 1]
                cells.append(f"{r:>6.2f} n{len(common):<2}")
        p(f"{a:<10}" + "".join(cells))
    p("")

    for label, members in SETS.items():
        p("=" * 78)
        p(f"Set {label}")
        for drop, tag in (((), "all years"), ((2020,), "without 2020")):
            years, x = complete_cases(growth, members, drop)
            if drop and 2020 not in complete_cases(growth, members)[0]:
                p(f"-- {tag}: 2020 is not among the complete years; same fit as above")
                continue
            p(f"-- {tag}: years used {years} (n = {len(years)})")
            z = standardise(x) if len(years) >= 3 else None
            if z is None:
                p("   too few complete years (need 3) or a constant series: no fit")
                continue
            method, lam, note = factor_fit(z)
            lam_pc, share = pc1(z)
            p(f"   {'series':<10}{'factor':>9}{'PC1':>8}")
            for i, m in enumerate(members):
                p(f"   {m:<10}{fmt(lam[i]):>9}{fmt(lam_pc[i]):>8}")
            p(f"   factor method: {method}{'; ' + note if note else ''}")
            p(f"   PC1 share of variance: {share:.2f}")
            lo = loyo(x)
            if len(lo):
                p("   leave-one-year-out PC1 range: "
                  + ", ".join(f"{m} [{lo[:, i].min():+.2f}, {lo[:, i].max():+.2f}]" for i, m in enumerate(members)))
            else:
                p("   leave-one-year-out: not possible (would leave under 3 years)")
            bs, skipped = bootstrap(x, rng) if len(years) >= 4 else (np.empty((0, len(members))), 0)
            if not len(bs):
                p("   bootstrap over years: not informative with 3 years (every usable draw is the sample itself)")
            else:
                p(f"   bootstrap over years (PC1, {len(bs)} usable of {N_BOOT}, {skipped} degenerate): 90 % interval "
                  + ", ".join(f"{m} [{np.quantile(bs[:, i], 0.05):+.2f}, {np.quantile(bs[:, i], 0.95):+.2f}]"
                              for i, m in enumerate(members)))
            med, q95 = null_reference(len(years), len(members), rng)
            p(f"   null reference (independent series, same n and k): mean |PC1 loading| median {med:.2f}, "
              f"95th percentile {q95:.2f}; observed {float(np.mean(np.abs(lam_pc))):.2f}")
        p("")

    p("=" * 78)
    p("Reading: every set has at most 5 complete years, and 2020 (and the 2022 relapse) dominate them.")
    p("A mean |loading| inside the null reference band means the fit cannot tell a common factor from")
    p("chance; loadings near 1 with 2020 in and undefined or unstable without it mean the 'factor' is")
    p("the COVID shock, not a normal-times business cycle. GDP and services value added are one set of")
    p("accounts (services are about 60 % of GDP), so their correlation is partly mechanical.")
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
