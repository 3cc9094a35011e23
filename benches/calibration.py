"""Calibration benchmark: when the engine's fitted default says p, does it happen about p of the time?

Run from the repository root:

    .venv/bin/python -m benches.calibration            # full: 20,000 series (about 20 min on 2 cores)
    .venv/bin/python -m benches.calibration --quick    # CI: 1,000 series; fails unless the engine beats plug-in

Results go to benches/results/calibration{,_quick}.{txt,json}.

A synthetic population of yearly series, each with its own true parameters drawn afresh:

- length 5–12 observed points (uniform), start 100;
- yearly log growth: mean μ ~ Normal(0.08, 0.06), volatility σ log-uniform on [0.02, 0.25];
- 70 % plain random walks with drift; 15 % with AR(1) momentum in the growth (persistence uniform
  on [0.1, 0.5]); 15 % with Student-t shocks (4 df, scaled to s.d. σ). The fitted model assumes
  neither: they test robustness, not the model's own world;
- horizon 3, 4 or 5 years; the event: average yearly log growth over the horizon of at least
  ``τ = μ̂ + δ``, where μ̂ is the history's mean growth and δ ~ Normal(0, ŝ·√(1/n + 1/H)) (the
  threshold depends on the history only, as a planner's would, and spreads the forecasts over
  (0, 1)); the outcome is drawn from the true process, continuing its state.

Forecasters, each scored on the same events:

- engine: ``targetsim.fit(..., process="auto")`` on the history, the fitted block run by the engine
  (all series of a batch as indicators of one scenario, a ``cagr`` target each);
- plug-in: the normal with the estimated mean and s.d., no parameter uncertainty (the usual
  shortcut, and what a scenario with point parameters does);
- exact t: the Student-t predictive of a random walk with drift (closed form), for reference.

Reported: a 10-bin reliability table per forecaster, the Brier score and its decomposition
(:mod:`targetsim.estimate.scores`). Goal (full mode): every engine bin with at least 100 forecasts
within 0.03 of the diagonal, and an engine Brier score below plug-in's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benches" / "results"
BINS = 10
MIN_BIN = 100
TOLERANCE = 0.03
BATCH = 500
ENGINE_PATHS = 20_000


def draw_series(rng: np.random.Generator) -> dict:
    """One synthetic history and its future (see the module's docstring)."""
    n = int(rng.integers(5, 13))
    horizon = int(rng.integers(3, 6))
    mu = rng.normal(0.08, 0.06)
    sigma = math.exp(rng.uniform(math.log(0.02), math.log(0.25)))
    kind = rng.choice(["walk", "momentum", "fat"], p=[0.70, 0.15, 0.15])
    phi = rng.uniform(0.1, 0.5) if kind == "momentum" else 0.0
    steps = n - 1 + horizon
    if kind == "fat":
        shocks = rng.standard_t(4, steps) * sigma / math.sqrt(2.0)  # t(4) has variance 2
    else:
        shocks = rng.normal(0.0, sigma, steps)
    growth = np.empty(steps)
    previous = mu
    for t in range(steps):
        previous = mu + phi * (previous - mu) + shocks[t]
        growth[t] = previous
    log_level = math.log(100.0) + np.concatenate([[0.0], np.cumsum(growth)])
    history = np.exp(log_level[:n])
    realised = (log_level[n - 1 + horizon] - log_level[n - 1]) / horizon
    changes = np.diff(np.log(history))
    mean, sd = float(changes.mean()), float(changes.std(ddof=1))
    tau = mean + rng.normal(0.0, sd * math.sqrt(1.0 / changes.size + 1.0 / horizon))
    return {"history": history, "horizon": horizon, "tau": tau, "outcome": float(realised >= tau), "kind": kind,
            "mean": mean, "sd": sd, "n_changes": changes.size}


def plug_in(s: dict) -> float:
    from scipy import stats

    h = s["horizon"]
    return float(stats.norm.sf((h * s["tau"] - h * s["mean"]) / (s["sd"] * math.sqrt(h))))


def exact_t(s: dict) -> float:
    from scipy import stats

    h, n = s["horizon"], s["n_changes"]
    scale = s["sd"] * math.sqrt(h + h * h / n)
    return float(stats.t.sf((h * s["tau"] - h * s["mean"]) / scale, n - 1))


def _fit_one(args: tuple[int, np.ndarray]) -> dict:
    from targetsim.errors import FitError
    from targetsim.estimate.fitting import fit

    i, history = args
    years = np.arange(2000, 2000 + history.size)
    try:
        f = fit(years, history, "auto", indicator=f"s{i}")
    except FitError as exc:  # a history the fit refuses (e.g. a volatility above the engine's limit)
        return {"process": None, "kind": "refused", "reason": str(exc)}
    return {"process": dict(f.process), "kind": f.kind}


def engine_probabilities(series: list[dict], fits: list[dict], seed: int) -> np.ndarray:
    """Each batch of series as the indicators of one scenario, one cagr target each."""
    from targetsim.api import run_document

    out = np.empty(len(series))
    for first in range(0, len(series), BATCH):
        part = range(first, min(first + BATCH, len(series)))
        horizon = max(series[i]["horizon"] for i in part)
        doc = {"name": "calibration", "base_year": 2020, "horizon": 2020 + horizon, "paths": ENGINE_PATHS,
               "seed": seed + first, "quantiles": [0.5],
               "indicators": {f"s{i}": {"label": f"s{i}", "unit": "index",
                                        "start": {"value": float(series[i]["history"][-1]),
                                                  "source": "synthetic series (benches/calibration.py)"},
                                        "process": fits[i]["process"],
                                        "parameters": {"source": "fitted by targetsim fit to the synthetic history"}}
                              for i in part},
               "targets": [{"id": f"t{i}", "indicator": f"s{i}", "kind": "cagr",
                            "threshold": math.expm1(series[i]["tau"]), "by": 2020 + series[i]["horizon"],
                            "comparator": ">="} for i in part]}
        ds = run_document(doc)
        out[list(part)] = ds["attainment_probability"].values[0]
    return out


def evaluate(probability: np.ndarray, outcome: np.ndarray) -> dict:
    from targetsim.estimate.scores import brier_decomposition, reliability_table

    table = reliability_table(probability, outcome, bins=BINS, min_count=MIN_BIN)
    dec = brier_decomposition(probability, outcome, bins=BINS)
    dev = np.abs(table.observed_frequency - table.mean_forecast)
    checked = table.count >= MIN_BIN
    return {
        "table": table, "decomposition": dec,
        "brier": float(dec.brier), "reliability": float(dec.reliability), "resolution": float(dec.resolution),
        "uncertainty": float(dec.uncertainty),
        "max_deviation_checked_bins": float(np.nanmax(dev[checked])) if checked.any() else math.nan,
        "bins_checked": int(checked.sum()),
        "bins_within_tolerance": int(np.sum(dev[checked] <= TOLERANCE)),
    }


def main(argv: list[str] | None = None) -> int:
    from targetsim.estimate.scores import format_reliability

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI mode: fewer series; fails unless the engine "
                                                             "beats plug-in")
    parser.add_argument("--series", type=int, default=None, help="number of series [20,000; quick 1,000]")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    n = args.series or (1_000 if args.quick else 20_000)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    series = [draw_series(rng) for _ in range(n)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        fits = list(pool.map(_fit_one, enumerate(s["history"] for s in series), chunksize=64))
    t_fit = time.perf_counter() - t0
    # a refused history has no forecast from the engine: it is left out of every forecaster's score
    kept = [i for i, f in enumerate(fits) if f["process"] is not None]
    refused = n - len(kept)
    series, fits = [series[i] for i in kept], [fits[i] for i in kept]
    engine = engine_probabilities(series, fits, args.seed)
    t_all = time.perf_counter() - t0
    outcome = np.array([s["outcome"] for s in series])
    forecasters = {"engine (fitted default)": engine,
                   "plug-in normal": np.array([plug_in(s) for s in series]),
                   "exact Student-t": np.array([exact_t(s) for s in series])}
    results = {name: evaluate(p, outcome) for name, p in forecasters.items()}
    kinds = {k: sum(f["kind"] == k for f in fits) for k in sorted({f["kind"] for f in fits})}

    lines = [f"calibration benchmark: {n:,} synthetic series (seed {args.seed}), {ENGINE_PATHS:,} engine paths "
             f"each; fits {t_fit:.0f} s, total {t_all:.0f} s", f"processes chosen by auto: {kinds}",
             f"histories the fit refused (left out of every score): {refused}", ""]
    for name, r in results.items():
        lines.append(format_reliability(r["table"], decomposition=r["decomposition"], title=name))
        lines.append(f"  bins with >= {MIN_BIN} forecasts within {TOLERANCE} of the diagonal: "
                     f"{r['bins_within_tolerance']} of {r['bins_checked']} (largest deviation "
                     f"{r['max_deviation_checked_bins']:.3f})")
        lines.append("")
    eng, plug = results["engine (fitted default)"], results["plug-in normal"]
    goal_bins = eng["bins_within_tolerance"] == eng["bins_checked"] and eng["bins_checked"] > 0
    goal_brier = eng["brier"] < plug["brier"]
    lines.append(f"goal: every checked engine bin within {TOLERANCE}: {'met' if goal_bins else 'NOT met'}; "
                 f"engine Brier {eng['brier']:.4f} < plug-in {plug['brier']:.4f}: {'met' if goal_brier else 'NOT met'}")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "calibration_quick" if args.quick else "calibration"
    (RESULTS / f"{stem}.txt").write_text(text + "\n", encoding="utf-8")
    summary = {name: {k: v for k, v in r.items() if k not in ("table", "decomposition")}
               for name, r in results.items()}
    summary["series"] = n
    summary["seed"] = args.seed
    summary["processes"] = kinds
    summary["refused"] = refused
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.quick:
        # with few series the bins are noisy: CI checks the ordering, which no noise at this size reverses
        ok = goal_brier and eng["reliability"] < plug["reliability"]
        print("quick check:", "passed" if ok else "FAILED (engine not better calibrated than plug-in)")
        return 0 if ok else 1
    return 0 if (goal_bins and goal_brier) else 1


if __name__ == "__main__":
    sys.exit(main())
