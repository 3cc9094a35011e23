"""Assemble merged statistics into the output ``xarray.Dataset`` (the public output contract).

Dimensions: ``scenario`` (length 1 for one run, so runs concatenate), ``target``,
``indicator``, ``year``, ``quantile`` and ``k``. See the README for every variable.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import xarray as xr

from targetsim.engine.plan import SimulationPlan
from targetsim.engine.simulate import Statistics
from targetsim.kernels.sketch import relative_error_bound, sketch_quantile
from targetsim.model.scenario import Scenario

Z95 = 1.959963984540054


def wilson_interval(successes: np.ndarray, n: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (well behaved near 0 and 1)."""
    p = np.asarray(successes, dtype=np.float64) / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # the interval always contains p; rounding near 0 and 1 must not push a bound past it
    return np.clip(np.minimum(centre - half, p), 0.0, 1.0), np.clip(np.maximum(centre + half, p), 0.0, 1.0)


def _quantiles(plan: SimulationPlan, stats: Statistics, qs: np.ndarray) -> np.ndarray:
    n_ind, n_steps1 = stats.log_min.shape
    out = np.empty((n_ind, n_steps1, qs.shape[0]))
    for i in range(n_ind):
        for t in range(n_steps1):
            sketch_quantile(stats.sketch[i, t], plan.sketch_lo[i], plan.sketch_width[i], qs,
                            math.exp(stats.log_min[i, t]), math.exp(stats.log_max[i, t]), out[i, t])
    return out


def build_dataset(scenario: Scenario, plan: SimulationPlan, stats: Statistics, *,
                  seed: int, version: str) -> xr.Dataset:
    n = stats.paths
    years = np.arange(scenario.base_year, scenario.horizon + 1)
    qs = np.asarray(scenario.quantiles, dtype=np.float64)
    targets, inds = scenario.targets, scenario.indicators
    index = {ind.id: i for i, ind in enumerate(inds)}

    p = stats.attained / n
    lower, upper = wilson_interval(stats.attained, n)
    se = np.sqrt(p * (1 - p) / n)
    joint_p = stats.joint / n
    joint_lower, joint_upper = wilson_interval(np.array([stats.joint]), n)

    by_year = stats.attained_by_year / n
    for k, t in enumerate(targets):
        if t.kind == "cagr":
            by_year[k, 0] = np.nan  # growth since the base year is undefined in the base year
    # at least k of the targets: a reverse cumulative sum of "exactly m"
    at_least = np.cumsum(stats.n_met[::-1])[::-1] / n

    quant = _quantiles(plan, stats, qs)
    mean = stats.total / n

    required = np.empty(len(targets))
    simulated = np.empty(len(targets))
    median_pos = int(np.argmin(np.abs(qs - 0.5))) if np.any(qs == 0.5) else None
    median_q = np.array([0.5])
    for k, t in enumerate(targets):
        i = index[t.indicator]
        steps = t.by - scenario.base_year
        start = inds[i].start.value
        if t.kind == "cagr":
            required[k] = t.threshold
        else:
            required[k] = (t.threshold / start) ** (1.0 / steps) - 1.0 if t.threshold > 0 else -1.0
        if median_pos is not None:
            median = quant[i, steps, median_pos]
        else:
            tmp = np.empty(1)
            sketch_quantile(stats.sketch[i, steps], plan.sketch_lo[i], plan.sketch_width[i], median_q,
                            math.exp(stats.log_min[i, steps]), math.exp(stats.log_max[i, steps]), tmp)
            median = tmp[0]
        simulated[k] = (median / start) ** (1.0 / steps) - 1.0

    def target_var(values, long_name, units="1", **extra):
        return (("scenario", "target"), np.asarray(values, dtype=np.float64)[None, :],
                {"long_name": long_name, "units": units, **extra})

    start_assumed = np.array([ind.start.is_assumption for ind in inds], dtype=np.int8)
    target_assumed = np.array([start_assumed[index[t.indicator]] for t in targets], dtype=np.int8)
    flag = {"flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "observed assumption"}

    data_vars = {
        "attainment_probability": target_var(p, "probability that the target is met"),
        "attainment_probability_lower": target_var(lower, "lower bound of the 95 % Wilson interval"),
        "attainment_probability_upper": target_var(upper, "upper bound of the 95 % Wilson interval"),
        "attainment_probability_standard_error": target_var(se, "Monte Carlo standard error of the probability"),
        "joint_attainment_probability": (("scenario",), np.array([joint_p]),
                                         {"long_name": "probability that every target of the scenario is met",
                                          "units": "1"}),
        "joint_attainment_probability_lower": (("scenario",), joint_lower,
                                               {"long_name": "lower bound of the 95 % Wilson interval", "units": "1"}),
        "joint_attainment_probability_upper": (("scenario",), joint_upper,
                                               {"long_name": "upper bound of the 95 % Wilson interval", "units": "1"}),
        "at_least_k_attainment_probability": (("scenario", "k"), at_least[None, :],
                                              {"long_name": "probability that at least k targets are met",
                                               "units": "1"}),
        "attainment_by_year": (("scenario", "target", "year"), by_year[None],
                               {"long_name": "probability that the target's rule holds in each year "
                                             "(the rule evaluated with that year in place of its own)",
                                "units": "1"}),
        "indicator_quantiles": (("scenario", "indicator", "year", "quantile"), quant[None],
                                {"long_name": "quantiles of the simulated indicator",
                                 "relative_error_bound": float(relative_error_bound(plan.sketch_width.max()))}),
        "indicator_mean": (("scenario", "indicator", "year"), mean[None],
                           {"long_name": "mean of the simulated indicator"}),
        "required_growth": target_var(required, "average annual growth from the base year that the target needs",
                                      "year-1"),
        "baseline_growth": target_var(simulated, "median simulated average annual growth from the base year "
                                                 "to the target year", "year-1"),
    }
    coords = {
        "scenario": ("scenario", [scenario.name]),
        "target": ("target", [t.id for t in targets]),
        "indicator": ("indicator", [ind.id for ind in inds]),
        "year": ("year", years.astype(np.int64)),
        "quantile": ("quantile", qs),
        "k": ("k", np.arange(len(targets) + 1, dtype=np.int64)),
        "target_indicator": ("target", [t.indicator for t in targets]),
        "target_kind": ("target", [t.kind for t in targets]),
        "target_comparator": ("target", [t.comparator for t in targets]),
        "target_threshold": ("target", np.array([t.threshold for t in targets], dtype=np.float64)),
        "target_year": ("target", np.array([t.by for t in targets], dtype=np.int64)),
        "target_label": ("target", [t.label or inds[index[t.indicator]].label for t in targets]),
        "target_tier": ("target", np.array([t.tier or 0 for t in targets], dtype=np.int64),
                        {"long_name": "tier in the plan (1 = headline goal); 0 = not given"}),
        "target_source": ("target", [t.source.render() for t in targets]),
        "target_rests_on_assumption": ("target", target_assumed, flag),
        "indicator_label": ("indicator", [ind.label for ind in inds]),
        "indicator_unit": ("indicator", [ind.unit for ind in inds]),
        "indicator_start": ("indicator", np.array([ind.start.value for ind in inds], dtype=np.float64)),
        "indicator_start_source": ("indicator", [ind.start.provenance() for ind in inds]),
        "indicator_start_is_assumption": ("indicator", start_assumed, flag),
        "indicator_process": ("indicator", [_describe_process(ind) for ind in inds]),
    }
    ds = xr.Dataset(data_vars=data_vars, coords=coords)
    for i, ind in enumerate(inds):
        ds["indicator_quantiles"].attrs[f"units_{ind.id}"] = ind.unit
    ds.attrs.update({
        "title": f"targetsim attainment results: {scenario.name}",
        "Conventions": "CF-1.10",
        "targetsim_version": version,
        "scenario_name": scenario.name,
        "scenario_description": scenario.description,
        "scenario_file": str(scenario.file) if scenario.file else "",
        "scenario_sha256": scenario.sha256,
        "seed": int(seed),
        "paths": int(n),
        "base_year": int(scenario.base_year),
        "horizon": int(scenario.horizon),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "baselines_file": str(scenario.baselines) if scenario.baselines else "",
    })
    return ds


def _describe_process(ind) -> str:
    proc = ind.process
    return (f"lognormal: growth ~ N({proc.growth.mean:g}, {proc.growth.sd:g}), "
            f"volatility {proc.volatility:g}")
