"""The outside view combined with a city's own series, checked on the reference class (issue 17).

Run from the repository root:

    .venv/bin/python -m benches.outside_view_combined

The reference class's ``trend_growth`` column is empty, but its yearly work-report targets form series:
the same issuer's same growth indicator (GDP, retail sales, investment, ...) year after year, each with
its realised value. For every such target with at least three earlier outcomes
(:func:`targetsim.estimate.outside_view.series_trends`: the five years before at most, never its own),
leave one plan out (:func:`targetsim.estimate.outside_view.combined_forecasts`) and forecast P(met) by

- the outside view alone (the margin model fitted to the other plans),
- the series alone (the predictive of a new year from the earlier ones),
- the combination a scenario's ``process: {fit: lognormal, prior: outside_view}`` uses: the outside
  view as the prior of the growth mean (its predictive variance less the year's own noise,
  :func:`targetsim.estimate.outside_view.growth_mean_prior_sd`), updated by the series (normal-normal),
  plus the year's noise.

Printed: the number of targets, the share met, each forecaster's mean forecast (calibration in the large)
and Brier score, with the base rate (the share met, in sample: a flattering reference) and the plan pace
(0.5), and a five-bin reliability table of the combination.
"""

from __future__ import annotations

import numpy as np

from targetsim.estimate.outside_view import combined_forecasts, load_reference, series_trends


def main() -> int:
    rows = load_reference()
    trends = series_trends(rows)
    result = combined_forecasts(rows, trends)
    y = np.array([r.met for r, *_ in result], dtype=float)
    p = np.array([f for _, *f in result])
    n = len(y)
    se = float(np.sqrt(y.mean() * (1 - y.mean()) / n))
    print(f"{n} yearly growth targets with >= 3 earlier outcomes of the same issuer, in "
          f"{len({r.plan for r, *_ in result})} plans; share met {y.mean():.3f} (binomial s.e. {se:.3f})")
    print(f"{'forecaster':<14}{'mean P':>8}{'Brier':>8}")
    for k, name in enumerate(("outside view", "series", "combined")):
        print(f"{name:<14}{p[:, k].mean():>8.3f}{np.mean((p[:, k] - y) ** 2):>8.3f}")
    print(f"{'base rate':<14}{y.mean():>8.3f}{np.mean((y.mean() - y) ** 2):>8.3f}   (in sample)")
    print(f"{'plan pace':<14}{0.5:>8.3f}{0.25:>8.3f}")
    print("\nreliability of the combination (5 bins)")
    edges = np.linspace(0, 1, 6)
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (p[:, 2] >= lo) & ((p[:, 2] < hi) if hi < 1 else (p[:, 2] <= hi))
        if inside.any():
            print(f"[{lo:.1f}, {hi:.1f})  n {int(inside.sum()):>3}  forecast {p[inside, 2].mean():.3f}  "
                  f"observed {y[inside].mean():.3f}")
        else:
            print(f"[{lo:.1f}, {hi:.1f})  n   0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
