"""Rolling-origin backtests: fit with the data up to each origin, simulate ahead with the engine,
compare with what happened.

For every indicator and every origin year ``o`` with enough observed history, the process is
fitted on the rows up to ``o`` (:mod:`targetsim.estimate`), a one-indicator scenario starting from
the value observed in ``o`` is run by the engine (:func:`targetsim.api.run`), and each later
observed year ``y ≤ o + horizon`` is a case:

- the PIT, ``P(X_y ≤ observed)`` (for a count the mid-PIT ``(P(X < v) + P(X ≤ v)) / 2``), exact
  from the engine's paths (a ``level`` target at the observed value);
- coverage of the central 50/80/95 % intervals, read off the PIT (inside ⇔ the PIT lies within
  the interval's levels), so it does not depend on a quantile grid;
- the CRPS, from the engine's quantiles at ``CRPS_LEVELS`` (evenly spaced midpoints, see
  :func:`targetsim.estimate.scores.crps_quantiles`);
- threshold events "average growth from ``o`` to ``y`` of at least g" for g in ``GROWTH_EVENTS``
  (for a share: "the share rises"), with their Brier scores.

Every score is computed the same way for the naive reference: a random walk with drift on the
process's scale (``ln x``, ``logit s``; Poisson additions for a count) with plug-in estimates —
the same history, no parameter uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Levels of the engine's quantiles from which the CRPS is computed: 50 evenly spaced midpoints.
CRPS_LEVELS = tuple(round((k - 0.5) / 50, 6) for k in range(1, 51))
# Central intervals whose coverage is reported.
INTERVALS = (0.5, 0.8, 0.95)
# Threshold events for levels: average yearly growth of at least g from the origin.
GROWTH_EVENTS = (0.0, 0.05, 0.10, 0.15, 0.20)
DEFAULT_PATHS = 20_000
DEFAULT_HORIZON = 3
# The fewest observed points (at or before the origin) a fit is backtested from.
DEFAULT_MIN_POINTS = 3


@dataclass(frozen=True)
class Case:
    indicator: str
    origin: int
    year: int
    observed: float
    kind: str
    pit: float
    pit_naive: float
    crps: float
    crps_naive: float
    events: tuple[float, ...]           # the thresholds g (NaN where none applies)
    probability: tuple[float, ...]
    probability_naive: tuple[float, ...]
    outcome: tuple[float, ...]


def backtest(baselines: "str | Path | Sequence[str | Path]", indicators: Sequence[str] | None = None, *,
             horizon: int = DEFAULT_HORIZON, process: str = "auto", paths: int = DEFAULT_PATHS, seed: int = 0,
             min_points: int = DEFAULT_MIN_POINTS,
             progress: Callable[[str], None] | None = None) -> "Any":
    """Backtest ``indicators`` of one or more baselines files (default: every indicator with at
    least ``min_points + 1`` observed values; an indicator found in several files is taken from the
    one with the most observed values of it) and return the cases as an xarray Dataset (see the
    module's docstring; :func:`summary_table` turns it into a table)."""
    from targetsim.errors import FitError, TargetsimError
    from targetsim.estimate.history import series_from_rows
    from targetsim.io.baselines import load_baselines

    skipped: list[str] = []
    cases: list[Case] = []
    files = [baselines] if isinstance(baselines, (str, Path)) else list(baselines)
    tables = [load_baselines(file) for file in files]
    # an indicator found in several files (rows copied between plans) is taken from the file with the
    # most observed values of it
    best: dict[str, tuple[int, int]] = {}
    for k, table in enumerate(tables):
        names = ([n for n in indicators if any(r.indicator == n for r in table.rows)] if indicators
                 else _candidates(table.rows, min_points))
        for name in names:
            count = _observed_count(table.rows, name)
            if name not in best or count > best[name][0]:
                best[name] = (count, k)
    done = set(best)
    for name, (_, k) in best.items():
        table, file = tables[k], files[k]
        full = series_from_rows(table.rows, name, origin=str(file))
        years = list(full.years)
        for j, origin in enumerate(years):
            later = [(y, v) for y, v in zip(years[j + 1:], full.values[j + 1:]) if y <= origin + horizon]
            if j + 1 < min_points or not later:
                continue
            if progress:
                progress(f"{name} from {origin}")
            series = series_from_rows(table.rows, name, until=origin, origin=str(file))
            try:
                cases.extend(_cases_from_origin(series, origin, later, horizon, process, paths, seed))
            except TargetsimError as exc:  # recorded, not fatal: the other origins still count
                skipped.append(f"{name} from {origin}: {exc}")
                if progress:
                    progress(f"{name} from {origin}: skipped ({exc})")
    missing = sorted(set(indicators or ()) - done)
    if missing:
        raise FitError(f"{', '.join(missing)}: not in {', '.join(map(str, files))}")
    if not cases:
        raise FitError(f"no indicator of {', '.join(map(str, files))} has an origin with {min_points} observed "
                       f"points and a later observation within {horizon} years")
    ds = _dataset(cases, files, horizon, process, paths, seed)
    ds.attrs["skipped"] = "\n".join(skipped)
    return ds


def _observed_count(rows: Sequence[Any], name: str) -> int:
    return sum(1 for r in rows if r.indicator == name and not r.assumption)


def _candidates(rows: Sequence[Any], min_points: int) -> list[str]:
    names = dict.fromkeys(r.indicator for r in rows if not r.indicator.endswith("_growth"))
    return [name for name in names
            if _observed_count(rows, name) >= min_points + 1 and _unit_of(rows, name) != "rank"]


def _unit_of(rows: Sequence[Any], name: str) -> str:
    return next((r.unit for r in rows if r.indicator == name), "")


def _cases_from_origin(series, origin: int, later: list[tuple[int, float]], horizon: int, process: str,
                       paths: int, seed: int) -> list[Case]:
    from targetsim.api import run_document
    from targetsim.estimate.fitting import value_sort
    from targetsim.estimate.history import fit_series

    fitted = fit_series(series, process)
    sort = value_sort(series.unit)
    scale = 100.0 if series.unit == "percent" else 1.0
    start = series.values[-1] / scale if sort == "share" else series.values[-1]
    value_kind = {"share": "share", "count": "count_stock", "level": "level"}[sort]
    targets = []
    for y, v in later:
        obs = v / scale if sort == "share" else v
        targets.append({"id": f"pit_{y}", "indicator": series.indicator, "kind": value_kind,
                        "threshold": obs, "by": y, "comparator": "<="})
        if sort == "count":
            targets.append({"id": f"below_{y}", "indicator": series.indicator, "kind": value_kind,
                            "threshold": obs, "by": y, "comparator": "<"})
        else:
            for g in _events(sort):
                targets.append({"id": f"g{g:g}_{y}", "indicator": series.indicator, "kind": "cagr",
                                "threshold": g, "by": y, "comparator": ">="})
    doc = {
        "name": f"backtest {series.indicator} from {origin}", "base_year": origin, "horizon": origin + horizon,
        "paths": paths, "seed": seed, "quantiles": list(CRPS_LEVELS),
        "indicators": {series.indicator: {
            "label": series.indicator, "unit": "fraction" if sort == "share" else (series.unit or ""),
            "start": {"value": start, "source": f"{series.origin}, {origin}"},
            "process": dict(fitted.process), "parameters": fitted.parameters()}},
        "targets": targets,
    }
    ds = run_document(doc)
    prob = dict(zip(ds["target"].values.tolist(), ds["attainment_probability"].values[0].tolist()))
    quant = ds["indicator_quantiles"].values[0, 0]      # (year, quantile)
    naive = _naive(series, sort, scale)
    cases = []
    for y, v in later:
        h = y - origin
        obs = v / scale if sort == "share" else v
        pit = prob[f"pit_{y}"] if sort != "count" else 0.5 * (prob[f"pit_{y}"] + prob[f"below_{y}"])
        crps = _crps(obs, quant[h])
        events = _events(sort)
        p_engine = tuple(prob[f"g{g:g}_{y}"] for g in events)
        outcome = tuple(float(_avg_growth(sort, start, obs, h) >= g) for g in events)
        cases.append(Case(series.indicator, origin, y, obs, fitted.kind, pit, naive.pit(obs, h),
                          crps, _crps(obs, naive.quantiles(h)), tuple(events), p_engine,
                          tuple(naive.event(g, h) for g in events), outcome))
    return cases


def _events(sort: str) -> tuple[float, ...]:
    return {"level": GROWTH_EVENTS, "share": (0.0,), "count": ()}[sort]


def _avg_growth(sort: str, start: float, value: float, years: int) -> float:
    if sort == "share":
        return value - start  # the event "the share rises" (threshold 0)
    return (value / start) ** (1.0 / years) - 1.0


def _crps(observed: float, quantiles: np.ndarray) -> float:
    from targetsim.estimate.scores import crps_quantiles

    return float(crps_quantiles(np.array([observed]), np.asarray(quantiles)[None, :], np.array(CRPS_LEVELS))[0])


@dataclass(frozen=True)
class _Naive:
    """A random walk with drift on the process's scale, plug-in (no parameter uncertainty)."""

    sort: str
    start_scaled: float   # ln x, logit s or the count at the origin
    drift: float
    sigma: float

    def _loc_scale(self, h: int) -> tuple[float, float]:
        return self.start_scaled + h * self.drift, self.sigma * math.sqrt(h)

    def pit(self, observed: float, h: int) -> float:
        from scipy import stats

        if self.sort == "count":
            lam = max(self.drift * h, 1e-12)
            more = observed - self.start_scaled
            return float(0.5 * (stats.poisson.cdf(more, lam) + stats.poisson.cdf(more - 1, lam)))
        loc, sd = self._loc_scale(h)
        return float(stats.norm.cdf((_scaled(self.sort, observed) - loc) / sd))

    def quantiles(self, h: int) -> np.ndarray:
        from scipy import stats

        levels = np.array(CRPS_LEVELS)
        if self.sort == "count":
            return self.start_scaled + stats.poisson.ppf(levels, max(self.drift * h, 1e-12))
        loc, sd = self._loc_scale(h)
        z = stats.norm.ppf(levels, loc, sd)
        return np.exp(z) if self.sort == "level" else 1.0 / (1.0 + np.exp(-z))

    def event(self, g: float, h: int) -> float:
        from scipy import stats

        loc, sd = self._loc_scale(h)
        bar = self.start_scaled + h * math.log1p(g) if self.sort == "level" else self.start_scaled
        return float(stats.norm.sf((bar - loc) / sd))


def _scaled(sort: str, x: float) -> float:
    return math.log(x) if sort == "level" else math.log(x / (1.0 - x))


def _naive(series, sort: str, scale: float) -> _Naive:
    from targetsim.estimate.fitting import fit

    kind = {"level": "lognormal", "share": "logit_share", "count": "count"}[sort]
    plain = fit(series.years, series.values, kind, unit=series.unit, weights=series.weights, breaks=series.breaks)
    last = series.values[-1] / scale
    if sort == "count":
        return _Naive(sort, last, plain.estimates["mean"], 0.0)
    drift = plain.estimates["log_growth"] if sort == "level" else plain.estimates["drift"]
    return _Naive(sort, _scaled(sort, last), drift, plain.estimates["volatility"])


def _dataset(cases: list[Case], baselines, horizon: int, process: str, paths: int, seed: int):
    import xarray as xr

    n_events = max(len(c.events) for c in cases)

    def padded(values: tuple[float, ...]) -> list[float]:
        return list(values) + [math.nan] * (n_events - len(values))

    case = np.arange(len(cases))
    ds = xr.Dataset(
        {
            "indicator": ("case", [c.indicator for c in cases]),
            "origin": ("case", np.array([c.origin for c in cases], dtype=np.int64)),
            "year": ("case", np.array([c.year for c in cases], dtype=np.int64)),
            "lead": ("case", np.array([c.year - c.origin for c in cases], dtype=np.int64),
                     {"long_name": "years ahead of the origin"}),
            "observed": ("case", np.array([c.observed for c in cases]),
                         {"long_name": "the observed value (a share as a fraction)"}),
            "process": ("case", [c.kind for c in cases], {"long_name": "the process the fit chose at the origin"}),
            "pit": ("case", np.array([c.pit for c in cases]), {"long_name": "P(X <= observed) under the engine"}),
            "pit_naive": ("case", np.array([c.pit_naive for c in cases]),
                          {"long_name": "P(X <= observed) under the plug-in random walk with drift"}),
            "crps": ("case", np.array([c.crps for c in cases]),
                     {"long_name": "CRPS of the engine's forecast (from its quantiles at crps_level)"}),
            "crps_naive": ("case", np.array([c.crps_naive for c in cases]),
                           {"long_name": "CRPS of the plug-in random walk with drift (same levels)"}),
            "event_threshold": (("case", "event"), np.array([padded(c.events) for c in cases]),
                                {"long_name": "average yearly growth g of the event 'growth >= g' (a share: "
                                              "'rises', 0); NaN: no event"}),
            "event_probability": (("case", "event"), np.array([padded(c.probability) for c in cases])),
            "event_probability_naive": (("case", "event"), np.array([padded(c.probability_naive) for c in cases])),
            "event_outcome": (("case", "event"), np.array([padded(c.outcome) for c in cases])),
        },
        coords={"case": case, "crps_level": np.array(CRPS_LEVELS), "interval": np.array(INTERVALS)},
        attrs={"title": "targetsim rolling-origin backtest", "baselines_files": "; ".join(map(str, baselines)),
               "horizon": int(horizon), "process": process, "paths": int(paths), "seed": int(seed)},
    )
    for model, pit in (("", ds["pit"]), ("_naive", ds["pit_naive"])):
        inside = np.stack([(np.abs(pit.values - 0.5) <= w / 2).astype(np.int8) for w in INTERVALS], axis=1)
        ds[f"inside{model}"] = (("case", "interval"), inside,
                                {"long_name": "the observation lies in the central interval"})
    return ds


def summary_rows(ds) -> list[dict[str, Any]]:
    """One row per indicator and one for all: cases, coverage of each interval, the mean CRPS
    relative to the observed value (scale-free, so indicators can be pooled) and the Brier score
    of the threshold events, for the engine and the naive reference."""
    from targetsim.estimate.scores import brier_score

    rows = []
    names = list(dict.fromkeys(ds["indicator"].values.tolist()))
    observed = np.abs(ds["observed"].values)
    for name in [*names, None]:
        mask = np.ones(ds.sizes["case"], bool) if name is None else ds["indicator"].values == name
        row: dict[str, Any] = {"indicator": name or "all", "cases": int(mask.sum())}
        for model in ("", "_naive"):
            inside = ds[f"inside{model}"].values[mask]
            for j, w in enumerate(INTERVALS):
                row[f"cover{int(w * 100)}{model}"] = float(inside[:, j].mean())
            row[f"crps{model}"] = float(np.mean(ds[f"crps{model}"].values[mask] / observed[mask]))
            p = ds[f"event_probability{model}"].values[mask].ravel()
            y = ds["event_outcome"].values[mask].ravel()
            ok = ~np.isnan(p)
            row[f"brier{model}"] = float(np.mean(brier_score(p[ok], y[ok]))) if ok.any() else math.nan
            row[f"events{model}"] = int(ok.sum())
        rows.append(row)
    return rows


def pit_histogram_text(ds, bins: int = 10) -> str:
    """The PIT histograms of the engine and the naive reference, one line each (flat: calibrated;
    U-shaped: overconfident; hump: too wide), with the chi-square p-value of uniformity."""
    from targetsim.estimate.scores import pit_histogram

    lines = [f"PIT histogram ({bins} bins over [0, 1]; {ds.sizes['case']} cases)"]
    for label, name in (("engine", "pit"), ("naive", "pit_naive")):
        h = pit_histogram(ds[name].values, bins=bins)
        lines.append(f"  {label:<6} {' '.join(f'{int(c):>3}' for c in h.counts)}   p(uniform) = {h.p_value:.2g}")
    return "\n".join(lines)


def summary_table(ds) -> str:
    """The summary as plain text, within 120 columns (engine and naive side by side)."""
    head = (f"{'indicator':<34} {'n':>3}  {'cover 50/80/95':>14} {'naive':>14}  {'CRPS/obs':>8} {'naive':>7}  "
            f"{'Brier':>6} {'naive':>6} {'events':>6}")
    lines = [head, "-" * len(head)]
    for r in summary_rows(ds):
        cover = "/".join(f"{r[f'cover{int(w * 100)}']:.2f}" for w in INTERVALS)
        cover_n = "/".join(f"{r[f'cover{int(w * 100)}_naive']:.2f}" for w in INTERVALS)
        brier = "" if math.isnan(r["brier"]) else f"{r['brier']:.3f}"
        brier_n = "" if math.isnan(r["brier_naive"]) else f"{r['brier_naive']:.3f}"
        lines.append(f"{r['indicator'][:34]:<34} {r['cases']:>3}  {cover:>14} {cover_n:>14}  "
                     f"{r['crps']:>8.4f} {r['crps_naive']:>7.4f}  {brier:>6} {brier_n:>6} {r['events']:>6}")
    lines.append("CRPS/obs: mean CRPS relative to the observed value. events: threshold events scored by Brier")
    lines.append(f"(average growth >= {', '.join(f'{g:.0%}' for g in GROWTH_EVENTS)} a year; a share: it rises)")
    return "\n".join(lines)
