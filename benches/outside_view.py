"""The outside view, evaluated honestly: leave-one-plan-out forecasts of whether past targets were met.

Run from the repository root:

    .venv/bin/python -m benches.outside_view            # every model
    .venv/bin/python -m benches.outside_view --quick    # the outside view, base rate and plan pace only

Results go to benches/results/outside_view{,_quick}.{txt,json} (git-ignored: the text is also printed).

For each plan in the reference class (``baselines/reference_targets*.csv``, rows with ``met``), every
model is fitted to the rows of all *other* plans and forecasts P(met) for each of that plan's rows
(never the same plan in fitting and testing: a plan's targets share its author, its year and its
economy). Forecasters:

- outside view: the margin model of :mod:`targetsim.estimate.outside_view` as a scenario's
  ``outside_view`` gets it (WLS, residual variance by kind family and horizon, normal residual law:
  predictive Student-t with n − p df), ``P(m ≥ 0 | covariates)``;
- hits + empirical: the same mean model fitted to the margins off zero, a point mass for outcomes
  reported as exactly the target (share per kind family), and the standardised training residuals
  (their skew kept) for the rest;
- hits + t law: the same point mass, and a Student-t residual law with its df estimated;
- logistic: a logistic regression of ``met`` on the same covariates (all rows, margin or not);
- base rate: the share met in the training folds;
- plan pace: 0.5 for every target (what the shipped scenarios' plan-pace prior says).

Reported: the Brier score of each (with a paired bootstrap over plans of the difference to the base
rate), a reliability table (10 bins) of the outside view and of the base rate, and the scores by plan
level and kind. The outcome is the table's ``met``; a ``~`` (about) target counts as met a little
below its value, which the margin model (``P(m ≥ 0)``) does not know: that costs it on those rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

import numpy as np

from targetsim.estimate.outside_view import (fit_margin_model, fit_met_logit, inconsistencies, leave_one_plan_out,
                                             load_reference, outside_view_growth, plan_group)
from targetsim.estimate.scores import brier_decomposition, format_reliability, reliability_table

RESULTS = os.path.join(os.path.dirname(__file__), "results")
BOOTSTRAP = 2000
HITS_EMP = "hits + empirical"
HITS_T = "hits + t law"
SEED = 20261202


def _forecasts(rows, *, quick: bool) -> tuple[dict[str, np.ndarray], list]:
    names = ["outside view", "base rate", "plan pace"] if quick else [
        "outside view", HITS_EMP, HITS_T, "logistic", "base rate", "plan pace"]
    out: dict[str, list[float]] = {name: [] for name in names}
    order = []
    for plan, train, test in leave_one_plan_out(rows):
        assert all(r.plan != plan for r in train) and all(r.plan == plan for r in test)
        held = [r for r in test if r.met is not None]
        if not held:
            continue
        fit = fit_margin_model(train)
        fit_e = None if quick else fit_margin_model(train, residual="empirical", exact_hits=True)
        fit_t = None if quick else fit_margin_model(train, residual="t", exact_hits=True)
        logit = None if quick else fit_met_logit(train)
        base = float(np.mean([r.met for r in train if r.met is not None]))
        for r in held:
            order.append(r)
            out["outside view"].append(fit.p_met_row(r))
            out["base rate"].append(base)
            out["plan pace"].append(0.5)
            if not quick:
                out[HITS_EMP].append(fit_e.p_met_row(r))
                out[HITS_T].append(fit_t.p_met_row(r))
                out["logistic"].append(logit.p_met_row(r))
    return {k: np.array(v) for k, v in out.items()}, order


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _bootstrap_diff(p: np.ndarray, q: np.ndarray, y: np.ndarray, plans: np.ndarray, rng) -> tuple[float, float]:
    """90 % interval of Brier(p) − Brier(q), resampling whole plans."""
    unique = np.unique(plans)
    index = {u: np.flatnonzero(plans == u) for u in unique}
    d = (p - y) ** 2 - (q - y) ** 2
    stats = []
    for _ in range(BOOTSTRAP):
        pick = rng.choice(unique, size=unique.size, replace=True)
        idx = np.concatenate([index[u] for u in pick])
        stats.append(d[idx].mean())
    lo, hi = np.percentile(stats, [5, 95])
    return float(lo), float(hi)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the outside view, base rate and plan pace only")
    args = parser.parse_args(argv)
    started = time.time()
    rows = load_reference()
    forecasts, order = _forecasts(rows, quick=args.quick)
    y = np.array([r.met for r in order], dtype=float)
    plans = np.array([r.plan for r in order])
    rng = np.random.default_rng(SEED)
    full = fit_margin_model(rows)
    full_t = fit_margin_model(rows, residual="t", exact_hits=True)

    lines = [f"Outside view: leave-one-plan-out forecasts of P(met), {len(order)} targets with a determined outcome "
             f"in {len(set(plans))} plans ({sum(r.margin is not None for r in order)} with a margin); "
             f"share met {y.mean():.3f}.", ""]
    lines.append("Brier score (lower is better; 90 % interval of the difference to the base rate, plans resampled)")
    summary: dict[str, dict] = {}
    for name, p in forecasts.items():
        lo, hi = _bootstrap_diff(p, forecasts["base rate"], y, plans, rng) if name != "base rate" else (0.0, 0.0)
        summary[name] = {"brier": _brier(p, y), "diff_to_base_rate_90": [lo, hi], "n": int(y.size)}
    for name, p in forecasts.items():
        s = summary[name]
        lo, hi = s["diff_to_base_rate_90"]
        extra = "" if name == "base rate" else (f"   vs base rate {s['brier'] - summary['base rate']['brier']:+.4f} "
                                                f"[{lo:+.4f}, {hi:+.4f}]")
        lines.append(f"  {name:<24}{s['brier']:.4f}{extra}")
    lines.append("")

    tables = {}
    for name in ("outside view", "base rate") + (() if args.quick else (HITS_EMP, "logistic")):
        p = forecasts[name]
        table = reliability_table(p, y, bins=10, min_count=10)
        dec = brier_decomposition(p, y, bins=10)
        lines.append(format_reliability(table, decomposition=dec, title=f"Reliability: {name} (10 bins; * under 10)"))
        lines.append("")
        tables[name] = [{"lower": float(a), "upper": float(b), "count": int(c),
                         "mean_forecast": None if c == 0 else float(f), "observed": None if c == 0 else float(o)}
                        for a, b, c, f, o in zip(table.edges[:-1], table.edges[1:], table.count, table.mean_forecast,
                                                 table.observed_frequency)]

    groups: dict[str, dict[str, dict]] = {}
    for label, key in (("plan level", lambda r: plan_group(r.plan_level)), ("kind", lambda r: r.kind),
                       ("binding", lambda r: r.binding),
                       ("comparator", lambda r: "~ (about)" if r.comparator.startswith("~") else r.comparator),
                       ("margin", lambda r: "computable" if r.margin is not None else "none")):
        by = defaultdict(list)
        for i, r in enumerate(order):
            by[key(r)].append(i)
        names = list(forecasts)
        lines.append(f"By {label}: Brier score (n, share met, mean forecast of the outside view)")
        lines.append(f"  {'':<14}{'n':>5}{'met':>7}{'fcst':>7}" + "".join(f"{n[:14]:>16}" for n in names))
        groups[label] = {}
        for g in sorted(by, key=lambda g: -len(by[g])):
            idx = np.array(by[g])
            scores = {n: _brier(forecasts[n][idx], y[idx]) for n in names}
            groups[label][g] = {"n": int(idx.size), "share_met": float(y[idx].mean()),
                                "mean_forecast": float(forecasts["outside view"][idx].mean()), "brier": scores}
            lines.append(f"  {g:<14}{idx.size:>5}{y[idx].mean():>7.3f}{forecasts['outside view'][idx].mean():>7.3f}"
                         + "".join(f"{scores[n]:>16.4f}" for n in names))
        lines.append("")

    lines.append("The model fitted to every row (the one a scenario's outside_view gets):")
    lines.append(full.summary())
    lines.append("")
    lines.append("What a target's indicator gets (outside_view_growth: log_mean = required + centre, log_sd), "
                 "the P(met) it implies, and with centre=\"p_met\" (the logistic model's P(met))")
    lines.append(f"  {'kind':<8}{'binding':<10}{'plan level':<12}{'h':>3}{'centre':>9}{'log_sd':>9}{'P(met)':>8}"
                 f"{'p_met centre':>14}{'P(met)':>8}")
    logit_full = fit_met_logit(rows)
    for kind, binding, level, h in (("growth", "expected", "city", 1), ("level", "expected", "city", 1),
                                    ("level", "expected", "city", 5), ("count", "expected", "city", 1),
                                    ("share", "expected", "city", 5), ("level", "binding", "national", 5),
                                    ("level", "expected", "sectoral", 5)):
        centre, sd, _ = full.predict(kind, binding, level, h)
        p = logit_full.p_met(kind, binding, level, h)
        matched = outside_view_growth(0.0, h, kind, binding, level, fit=full, centre="p_met", logit=logit_full)[0]
        lines.append(f"  {kind:<8}{binding:<10}{level:<12}{h:>3}{centre:>+9.4f}{sd:>9.4f}"
                     f"{full.p_met(kind, binding, level, h):>8.3f}{matched:>+14.4f}{p:>8.3f}")
    lines.append("")
    lines.append("For comparison, exact hits apart and a Student-t residual law:")
    lines.append(full_t.summary())
    lines.append("exact-hit share by family: " + ", ".join(f"{k} {v:.3f}" for k, v in full_t.exact_hit.items()))
    lines.append("")
    if not args.quick:
        lines.append(fit_met_logit(rows).summary())
        lines.append("")
    bad = inconsistencies(load_reference())
    lines.append(f"Rows whose met disagrees with the sign of the margin under a strict comparator: {len(bad)}")
    lines += [f"  {b}" for b in bad]
    lines.append("")
    lines.append(f"({time.time() - started:.0f} s)")
    text = "\n".join(lines)
    print(text)

    os.makedirs(RESULTS, exist_ok=True)
    stem = os.path.join(RESULTS, "outside_view_quick" if args.quick else "outside_view")
    with open(stem + ".txt", "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(stem + ".json", "w", encoding="utf-8") as handle:
        json.dump({"n": int(y.size), "plans": int(len(set(plans))), "share_met": float(y.mean()), "brier": summary,
                   "reliability": tables, "groups": groups, "model": full.as_dict(),
                   "model_t_with_exact_hits": full_t.as_dict(),
                   "inconsistent_rows": bad,
                   "forecasts": [{"id": r.id, "plan": r.plan, "met": r.met,
                                  **{n: float(forecasts[n][i]) for n in forecasts}}
                                 for i, r in enumerate(order)]},
                  handle, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
