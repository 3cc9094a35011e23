"""Where the observations lie in the model's own law: for messages about impossible or extreme data.

When the paths' weights vanish (an impossible observation) or collapse onto a few paths (an
extreme one), the user needs to know which value, in which year, and what the model simulates
there. :func:`observation_ranges` runs the scenario once more without its observations, on a few
thousand paths of the same seed, and places every observed value in that simulated law.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from targetsim.engine.plan import build_plan
from targetsim.engine.simulate import simulate
from targetsim.model.scenario import Scenario

# paths of the run without observations that places each observed value
DIAGNOSTIC_PATHS = 4096
# an observation outside this central range of its simulated law is called extreme
EXTREME_TAIL = 0.001


@dataclass(frozen=True)
class ObservedRange:
    """An observed value beside the law the model simulates for it without any observation."""

    indicator: str
    year: int
    value: float
    low: float         # the smallest simulated value
    median: float
    high: float        # the largest simulated value
    below: float       # fraction of the simulated paths below the observed value
    paths: int

    @property
    def outside(self) -> bool:
        """The value lies outside every simulated path."""
        return not self.low <= self.value <= self.high

    @property
    def extreme(self) -> bool:
        return self.outside or self.below < EXTREME_TAIL or self.below > 1 - EXTREME_TAIL

    def describe(self) -> str:
        where = (f"below all {self.paths:,} simulated paths" if self.value < self.low else
                 f"above all {self.paths:,} simulated paths" if self.value > self.high else
                 f"above {self.below:.2%} of the simulated paths")
        return (f"{self.indicator} {self.year} = {self.value:,.6g}: simulated without observations "
                f"{self.low:,.4g} – {self.high:,.4g} (median {self.median:,.4g}); {where}")


def observation_ranges(scenario: Scenario, *, seed: int, threads: int | None = None,
                       paths: int = DIAGNOSTIC_PATHS) -> list[ObservedRange]:
    """Every observed value placed in the law the scenario simulates without its observations."""
    from targetsim.kernels.sketch import sketch_bin, sketch_quantile

    free = dataclasses.replace(scenario, observations=())
    plan = build_plan(free)
    stats = simulate(plan, paths=paths, seed=seed, threads=threads)
    index = {ind.id: i for i, ind in enumerate(scenario.indicators)}
    out = []
    for ind_id, values in scenario.observations:
        i = index[ind_id]
        for year, value in values:
            t = year - scenario.base_year
            counts = stats.sketch[i, t]
            low, high = math.exp(stats.log_min[i, t]), math.exp(stats.log_max[i, t])
            median = np.empty(1)
            sketch_quantile(counts, plan.sketch_lo[i], plan.sketch_width[i], np.array([0.5]), low, high, median)
            b = sketch_bin(math.log(value) if value > 0 else -math.inf, plan.sketch_lo[i],
                           1.0 / plan.sketch_width[i], plan.n_bins)
            below = float(counts[:b].sum() + counts[b] / 2) / max(int(counts.sum()), 1)
            if scenario.indicator_by_id[ind_id].process.kind == "count":
                median = np.round(median)  # a whole number: the nearest one is within the bound
            out.append(ObservedRange(indicator=ind_id, year=year, value=value, low=low, median=float(median[0]),
                                     high=high, below=below, paths=paths))
    return out
