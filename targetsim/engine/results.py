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
from targetsim.model.basis import BASES, indicator_bases
from targetsim.model.processes import PROCESS_SPECS, volatility_df
from targetsim.model.targets import PERIOD_FREE_KINDS, TARGET_SPECS
from targetsim.model.scenario import ABOUT_COMPARATORS, Scenario, assumption_flags

Z95 = 1.959963984540054


def wilson_interval(p: np.ndarray, n: float, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion ``p`` from ``n`` (effective) observations."""
    p = np.asarray(p, dtype=np.float64)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # the interval always contains p; rounding near 0 and 1 must not push a bound past it
    return np.clip(np.minimum(centre - half, p), 0.0, 1.0), np.clip(np.maximum(centre + half, p), 0.0, 1.0)


def _quantiles(plan: SimulationPlan, stats: Statistics, qs: np.ndarray, whole_rows: np.ndarray) -> np.ndarray:
    n_ind, n_steps1 = stats.log_min.shape
    out = np.empty((n_ind, n_steps1, qs.shape[0]))
    for i in range(n_ind):
        for t in range(n_steps1):
            sketch_quantile(stats.sketch[i, t], plan.sketch_lo[i], plan.sketch_width[i], qs,
                            math.exp(stats.log_min[i, t]), math.exp(stats.log_max[i, t]), out[i, t])
            if whole_rows[i]:
                out[i, t] = np.round(out[i, t])  # whole numbers: the nearest one is within the bound
    return out


def _whole_numbers(inds) -> np.ndarray:
    """Indicators whose values are whole numbers: their kind's (counts), and sums of whole numbers."""
    by_id = {ind.id: ind for ind in inds}

    def whole(ind) -> bool:
        if PROCESS_SPECS[ind.process.kind].whole_numbers:
            return True
        return ind.process.kind == "sum" and all(whole(by_id[t]) for t in ind.process.terms)

    return np.array([whole(ind) for ind in inds])


def _growth(value: float, start: float, steps: int) -> float:
    if not (start > 0 and value > 0 and steps > 0):
        return math.nan
    return (value / start) ** (1.0 / steps) - 1.0


def build_dataset(scenario: Scenario, plan: SimulationPlan, stats: Statistics, *,
                  seed: int, version: str) -> xr.Dataset:
    years = np.arange(scenario.base_year, scenario.horizon + 1)
    qs = np.asarray(scenario.quantiles, dtype=np.float64)
    targets, inds = scenario.targets, scenario.indicators
    index = {ind.id: i for i, ind in enumerate(inds)}
    total_w = stats.weight_total
    ess = stats.effective_sample_size

    p = stats.attained / total_w
    lower, upper = wilson_interval(p, ess)
    se = np.sqrt(p * (1 - p) / ess)
    joint_p = stats.joint / total_w
    joint_lower, joint_upper = wilson_interval(np.array([joint_p]), ess)

    plans = scenario.plans
    plan_p = stats.group_joint / total_w
    plan_lower, plan_upper = wilson_interval(plan_p, ess)
    plans_at_least = np.cumsum(stats.groups_met[::-1])[::-1] / total_w

    by_year = stats.attained_by_year / total_w
    for k, t in enumerate(targets):
        if t.kind not in PERIOD_FREE_KINDS:
            by_year[k, 0] = np.nan  # growth, per-year and cumulative rules need a period
    # at least k of the targets: a reverse cumulative sum of "exactly m"
    at_least = np.cumsum(stats.n_met[::-1])[::-1] / total_w
    fail = 1.0 - p
    both_fail = np.triu(stats.pair_fail, 1)
    both_fail = (both_fail + both_fail.T) / total_w
    np.fill_diagonal(both_fail, fail)
    with np.errstate(divide="ignore", invalid="ignore"):
        dependence = both_fail / np.outer(fail, fail)
    np.fill_diagonal(dependence, np.nan)

    quant = _quantiles(plan, stats, qs, _whole_numbers(inds))
    mean = stats.total / stats.weight_sum
    start_values = mean[:, 0]  # a known start is deterministic: the mean is the value
    # an uncertain start: the median of its law (of the simulated base year, for a derived indicator)
    varied = _varied_starts(inds)
    if varied.any():
        start_values = start_values.copy()
        for i in np.flatnonzero(varied):
            if inds[i].start is not None:
                start_values[i] = inds[i].start.value
            else:
                median = np.empty(1)
                sketch_quantile(stats.sketch[i, 0], plan.sketch_lo[i], plan.sketch_width[i], np.array([0.5]),
                                math.exp(stats.log_min[i, 0]), math.exp(stats.log_max[i, 0]), median)
                start_values[i] = median[0]
    mean_defined = mean_is_defined(scenario)
    mean = np.where(mean_defined, mean, np.nan)

    required = np.empty(len(targets))
    simulated = np.empty(len(targets))
    median_q = np.array([0.5])
    for k, t in enumerate(targets):
        i = index[t.indicator]
        steps = t.by - scenario.base_year
        start = start_values[i]
        required[k] = TARGET_SPECS[t.kind].needs(t.threshold, start, steps)
        median = np.empty(1)
        sketch_quantile(stats.sketch[i, steps], plan.sketch_lo[i], plan.sketch_width[i], median_q,
                        math.exp(stats.log_min[i, steps]), math.exp(stats.log_max[i, steps]), median)
        simulated[k] = _growth(float(median[0]), start, steps)

    def target_var(values, long_name, units="1", **extra):
        return (("scenario", "target"), np.asarray(values, dtype=np.float64)[None, :],
                {"long_name": long_name, "units": units, **extra})

    start_assumed = _assumed(inds)
    any_assumed = _assumed(inds, parameters=True)
    params_assumed = np.array([ind.start is not None and ind.parameters.is_assumption for ind in inds],
                              dtype=np.int8)
    # a target rests on an assumption when its indicator's start or parameters (or a part's) do
    target_assumed = np.array([any_assumed[index[t.indicator]] for t in targets], dtype=np.int8)
    flag = {"flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "observed assumption"}
    bases = indicator_bases(scenario.indicators)
    basis_note = {"long_name": "what the process parameters rest on (targetsim.model.basis; a derived indicator: its "
                               "weakest part's; a target: its indicator's)", "basis_values": ", ".join(BASES)}

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
        "plan_joint_attainment_probability": (("scenario", "plan"), plan_p[None, :],
                                              {"long_name": "probability that every target of the plan is met",
                                               "units": "1"}),
        "plan_joint_attainment_probability_lower": (("scenario", "plan"), plan_lower[None, :],
                                                    {"long_name": "lower bound of the 95 % Wilson interval",
                                                     "units": "1"}),
        "plan_joint_attainment_probability_upper": (("scenario", "plan"), plan_upper[None, :],
                                                    {"long_name": "upper bound of the 95 % Wilson interval",
                                                     "units": "1"}),
        "at_least_k_plans_attainment_probability": (("scenario", "k_plans"), plans_at_least[None, :],
                                                    {"long_name": "probability that every target is met in at least "
                                                                  "k of the plans", "units": "1"}),
        "joint_failure_probability": (("scenario", "target", "other_target"), both_fail[None],
                                      {"long_name": "probability that both targets are missed "
                                                    "(diagonal: the target is missed)", "units": "1"}),
        "failure_dependence": (("scenario", "target", "other_target"), dependence[None],
                               {"long_name": "P(both missed) / (P(target missed)·P(other missed)); "
                                             "above 1: they tend to fail together", "units": "1"}),
        "effective_sample_size": (("scenario",), np.array([ess]),
                                  {"long_name": "Kish effective sample size of the weighted paths "
                                                "(the number of paths when no observations weight them)"}),
        "attainment_by_year": (("scenario", "target", "year"), by_year[None],
                               {"long_name": "probability that the target's rule holds in each year "
                                             "(the rule evaluated with that year in place of its own)",
                                "units": "1"}),
        "indicator_quantiles": (("scenario", "indicator", "year", "quantile"), quant[None],
                                {"long_name": "quantiles of the simulated indicator",
                                 "relative_error_bound": float(relative_error_bound(plan.sketch_width.max()))}),
        "indicator_mean": (("scenario", "indicator", "year"), mean[None],
                           {"long_name": "mean of the simulated indicator",
                            "comment": MEAN_UNDEFINED_NOTE}),
        "indicator_mean_is_defined": (("scenario", "indicator", "year"), mean_defined.astype(np.int8)[None],
                                      {"long_name": "whether the indicator's law has a finite mean in that year",
                                       "flag_values": np.array([0, 1], dtype=np.int8),
                                       "flag_meanings": "undefined defined", "comment": MEAN_UNDEFINED_NOTE}),
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
        "plan": ("plan", list(plans)),
        "k_plans": ("k_plans", np.arange(len(plans) + 1, dtype=np.int64)),
        "target_plan": ("target", [t.plan or scenario.name for t in targets],
                        {"long_name": "the plan the target belongs to (a joint run's plans; otherwise the scenario)"}),
        "other_target": ("other_target", [t.id for t in targets]),
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
        "target_basis": ("target", [bases[t.indicator] for t in targets], basis_note),
        "indicator_basis": ("indicator", [bases[ind.id] for ind in inds], basis_note),
        "indicator_label": ("indicator", [ind.label for ind in inds]),
        "indicator_unit": ("indicator", [ind.unit for ind in inds]),
        "target_tolerance": ("target", np.array([t.tolerance if t.comparator in ABOUT_COMPARATORS else np.nan
                                                 for t in targets]),
                             {"long_name": "tolerance of an 'about' comparator ('~': the band threshold ± tolerance × "
                                           "|threshold|; '~>=': at least its lower edge); NaN for the others"}),
        "target_is_aspirational": ("target", np.array([t.aspirational for t in targets], dtype=np.int8),
                                   {"long_name": "whether the plan only strives for the target (力争)",
                                    "flag_values": np.array([0, 1], dtype=np.int8),
                                    "flag_meanings": "binding aspirational"}),
        "target_reading_note": ("target", [t.reading for t in targets],
                                {"long_name": "why the target departs from the reading rules of the plan's wording "
                                              "(README: Reading the plan); empty when it follows them"}),
        "indicator_start": ("indicator", start_values),
        "indicator_start_source": ("indicator", [_start_source(ind) for ind in inds]),
        "indicator_start_is_assumption": ("indicator", start_assumed, flag),
        "indicator_start_low": ("indicator", np.array([_start_interval(ind)[0] for ind in inds], dtype=np.float64),
                                {"long_name": "an uncertain start's low end as given (a log-normal's or normal's 5 % "
                                              "quantile, a uniform law's lower end); NaN when the start is known"}),
        "indicator_start_high": ("indicator", np.array([_start_interval(ind)[1] for ind in inds], dtype=np.float64),
                                 {"long_name": "an uncertain start's high end as given (a log-normal's or normal's "
                                               "95 % quantile, a uniform law's upper end); NaN when the start is "
                                               "known"}),
        "indicator_start_law": ("indicator", [_start_law_name(ind) for ind in inds]),
        "indicator_process": ("indicator", [_describe_process(ind) for ind in inds]),
        "indicator_parameters_source": ("indicator", [_parameters_source(ind) for ind in inds]),
        "indicator_outside_view": ("indicator", [getattr(ind.fitted, "outside_view", "") for ind in inds],
                                   {"long_name": "how growth: {outside_view: ...} set the indicator's growth from "
                                                 "past plan targets (the reference class); empty when not used"}),
        "indicator_parameters_are_assumption": ("indicator", params_assumed, flag),
        "indicator_is_proxy": ("indicator", np.array([ind.is_proxy for ind in inds], dtype=np.int8),
                               {"long_name": "whether the indicator's figures stand in for another statistic "
                                             "(or another statistic stands in for it): see indicator_proxy_for",
                                "flag_values": np.array([0, 1], dtype=np.int8),
                                "flag_meanings": "direct proxy"}),
        "indicator_proxy_for": ("indicator", [ind.proxy_for for ind in inds],
                                {"long_name": "the statistic the indicator's figures stand in for, or what stands "
                                              "in for it (the scenario's proxy_for); empty when not a proxy"}),
        "indicator_price_basis": ("indicator", [ind.price_basis for ind in inds],
                                  {"long_name": "price basis of the indicator's values: nominal (current prices), "
                                                "real (constant or comparable prices), index, not_monetary; "
                                                "unknown when the scenario does not say"}),
    }
    if scenario.factors:
        loadings = np.zeros((len(scenario.factors), len(inds)))
        for f, factor in enumerate(scenario.factors):
            for ind_id, loading in factor.loadings:
                loadings[f, index[ind_id]] = loading
        coords["factor"] = ("factor", [f.name for f in scenario.factors])
        coords["factor_loading"] = (("factor", "indicator"), loadings,
                                    {"long_name": "loading of the indicator's yearly shock on the common factor"})
        coords["factor_source"] = ("factor", [f.source or f"assumption: {f.assumption}" for f in scenario.factors])
    ds = xr.Dataset(data_vars=data_vars, coords=coords)
    if stats.kept is not None:
        ds = ds.merge(kept_paths_dataset(scenario, stats.kept, plan))
    if any(ind.fitted is not None for ind in inds):
        ds = ds.assign(_fitted_variables(inds))
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
        "paths": int(stats.paths),
        "effective_sample_size": float(ess),
        "shocks": scenario.shocks.distribution,
        "observations": "; ".join(f"{ind}: " + ", ".join(f"{y}={v:g}" for y, v in vals)
                                  for ind, vals in scenario.observations),
        "base_year": int(scenario.base_year),
        "horizon": int(scenario.horizon),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "baselines_file": "; ".join(map(str, scenario.baseline_files)),
        "model_file": str(scenario.model) if scenario.model else "",
    })
    if stats.precision is not None:
        outcome = stats.precision
        ds.attrs.update({
            "precision_target": float(outcome.target),
            "precision_reached": float(outcome.reached),
            "precision_met": int(outcome.met),
            "max_paths": int(outcome.max_paths),
            "precision_note": (outcome.note if outcome.note else
                               f"every target's standard error is at most {outcome.target:g} at {outcome.paths:,} "
                               f"paths" if outcome.met else
                               f"stopped at --max-paths {outcome.max_paths:,}: the largest standard error is "
                               f"{outcome.stopping:.3g}" + (f" (a target never or always met: from p̃ = (k + 1)/(n + 2); "
                                                            f"the reported one is {outcome.reached:.3g})"
                                                            if outcome.stopping > outcome.reached else "")
                               + f", above the {outcome.target:g} asked for"),
        })
    return ds


def project_names(scenario: Scenario) -> list[str]:
    """The build-out projects in the plan's order (indicator by indicator): their names, prefixed with
    the indicator's id where two share a name."""
    pairs = [(ind.id, project.name) for ind in scenario.indicators if ind.process.kind == "buildout"
             for project in ind.process.projects]
    names = [name for _, name in pairs]
    return [name if names.count(name) == 1 else f"{ind_id}: {name}" for ind_id, name in pairs]


#: What ``kept_growth_draw`` holds for an indicator (its ``kept_growth_scale``): the growth rate g of a level
#: (also when the growth is given on the log scale, ``{log_mean, log_sd}``: ``expm1`` of the drawn ln(1+g)), the
#: drift added to the logit of a share or logistic each year, or nothing (not drawn per path).
GROWTH_SCALE_RATE, GROWTH_SCALE_DRIFT, GROWTH_SCALE_NONE = "rate", "logit drift", ""


def kept_growth_scales(scenario: Scenario) -> list[str]:
    """Per indicator, what ``kept_growth_draw`` holds (see :data:`GROWTH_SCALE_RATE`)."""
    scales = []
    for ind in scenario.indicators:
        if ind.process.kind in ("lognormal", "ar1_growth", "buildout"):
            scales.append(GROWTH_SCALE_RATE)
        elif PROCESS_SPECS[ind.process.kind].additive:  # logit_share, logistic: a drift on the logit
            scales.append(GROWTH_SCALE_DRIFT)
        else:
            scales.append(GROWTH_SCALE_NONE)
    return scales


def kept_growth_rates(scenario: Scenario, plan: SimulationPlan, growth_draw: np.ndarray) -> np.ndarray:
    """The kept parameter draws as the documented quantity: the kernel keeps the parameter as drawn
    (``p_mean + p_sd·dev``), which for a growth given on the log scale is ln(1+g) (the plan marks it
    ``additive`` although its kind is not); that is turned back into the rate g, so the variable always
    holds g for a level (and the drift for a share or logistic)."""
    log_rate = np.array([bool(plan.arrays["additive"][i]) and not PROCESS_SPECS[ind.process.kind].additive
                         for i, ind in enumerate(scenario.indicators)], dtype=bool)
    if not log_rate.any():
        return growth_draw
    out = growth_draw.copy()
    out[:, log_rate] = np.expm1(growth_draw[:, log_rate])
    return out


def kept_paths_dataset(scenario: Scenario, kept, plan: SimulationPlan) -> xr.Dataset:
    """The kept paths (``--keep-paths``) as variables on the ``kept_path`` dimension (coordinate: the
    path's index in the run). A public contract: scenario discovery and ``compare`` read these names."""
    inds, targets = scenario.indicators, scenario.targets
    rows = kept.stop - kept.first
    projects = [(ind.id, p) for ind in inds if ind.process.kind == "buildout" for p in ind.process.projects]
    step = kept.project_step
    completed = (step >= 0).astype(np.int8)
    with np.errstate(invalid="ignore"):
        year = np.where(step >= 0, scenario.base_year + step.astype(np.float64), np.nan)
    path_dims = ("kept_path",)
    data_vars = {
        "kept_target_met": (("kept_path", "target"), kept.target_met.astype(np.int8),
                            {"long_name": "whether the kept path meets the target", "flag_values": np.array([0, 1], dtype=np.int8),
                             "flag_meanings": "missed met"}),
        "kept_weight": (path_dims, kept.weight.astype(np.float64),
                        {"long_name": "the kept path's weight: 1 without observations; with them its likelihood "
                                      "relative to the run's reference (exp(log_weight_reference))", "units": "1"}),
        "kept_final_value": (("kept_path", "indicator"), kept.final_value,
                             {"long_name": "the indicator's value on the kept path in the last simulated year"}),
        "kept_start_value": (("kept_path", "indicator"), kept.start_value,
                             {"long_name": "the indicator's value on the kept path in the base year (drawn per path "
                                           "where the start is uncertain)"}),
        "kept_growth_draw": (("kept_path", "indicator"), kept_growth_rates(scenario, plan, kept.growth_draw),
                             {"long_name": "the kept path's drawn growth rate g of the indicator (also where the "
                                           "growth is given as {log_mean, log_sd}: g = exp(ln(1+g)) - 1), or for a "
                                           "share or logistic its drift added to the logit: see kept_growth_scale; "
                                           "NaN where it is not drawn per path (no growth s.d.)"}),
        "kept_count_mean": (("kept_path", "indicator"), kept.count_mean,
                            {"long_name": "a count's mean additions a year drawn for the kept path (an uncertain mean); "
                                          "NaN where not drawn per path"}),
        "kept_delivery_probability": (("kept_path", "indicator"), kept.delivery,
                                      {"long_name": "a scheduled count's delivery probability drawn for the kept path "
                                                    "(programme-level risk); NaN where not drawn per path",
                                       "units": "1"}),
        "kept_jump_count": (("kept_path", "indicator"), kept.jump_count.astype(np.int64),
                            {"long_name": "how many jumps (events × years) hit the indicator on the kept path"}),
        "kept_project_completed": (("kept_path", "project"), completed,
                                   {"long_name": "whether the build-out project completes by the horizon on the kept "
                                                 "path", "flag_values": np.array([0, 1], dtype=np.int8),
                                    "flag_meanings": "not_completed completed"}),
        "kept_project_completion_year": (("kept_path", "project"), year,
                                         {"long_name": "the year the build-out project completes on the kept path; "
                                                       "NaN when it does not complete by the horizon"}),
    }
    coords = {
        "kept_path": ("kept_path", np.arange(kept.first, kept.first + rows, dtype=np.int64),
                      {"long_name": "the kept path's index in the run (paths 0 .. N - 1 are kept)"}),
        "project": ("project", project_names(scenario)),
        "project_indicator": ("project", [ind_id for ind_id, _ in projects]),
        "target": ("target", [t.id for t in targets]),
        "indicator": ("indicator", [ind.id for ind in inds]),
        "kept_growth_scale": ("indicator", kept_growth_scales(scenario),
                              {"long_name": "what kept_growth_draw holds for the indicator: 'rate' (the growth rate "
                                            "g), 'logit drift' (a share's or logistic's yearly change of the logit), "
                                            "'' (no drawn growth)"}),
    }
    return xr.Dataset(data_vars=data_vars, coords=coords)


def _fitted_variables(inds) -> dict[str, xr.DataArray]:
    """What ``process: {fit: ...}`` estimated, per indicator (present only when a process was fitted):
    each parameter's estimate and standard error (NaN: not fitted, or no such parameter for its
    kind, or no standard error), the number of observed values used and a one-line description."""
    names = list(dict.fromkeys(name for ind in inds if ind.fitted for name, _, _ in ind.fitted.estimates))
    value = np.full((len(inds), len(names)), np.nan)
    error = np.full((len(inds), len(names)), np.nan)
    for i, ind in enumerate(inds):
        for name, est, se in (ind.fitted.estimates if ind.fitted else ()):
            value[i, names.index(name)], error[i, names.index(name)] = est, se
    dims = ("indicator", "fit_parameter")
    coord = {"fit_parameter": names}
    return {
        "fitted_parameter": xr.DataArray(value, dims=dims, coords=coord, attrs={
            "long_name": "estimate of a process parameter fitted to the baselines at load time",
            "comment": "NaN: not fitted, or not a parameter of the indicator's process kind"}),
        "fitted_parameter_standard_error": xr.DataArray(error, dims=dims, coords=coord, attrs={
            "long_name": "standard error of the fitted estimate", "comment": "NaN: none"}),
        "fit_observations": xr.DataArray(
            np.array([len(ind.fitted.years) if ind.fitted else 0 for ind in inds], dtype=np.int64),
            dims=("indicator",), attrs={"long_name": "observed baselines values the fit used (0: not fitted)"}),
        "fit_description": xr.DataArray([ind.fitted.describe() if ind.fitted else "" for ind in inds],
                                        dims=("indicator",), attrs={
                                            "long_name": "the fit: kind, years used, criteria, notes"}),
    }


def documented_nans(ds: xr.Dataset, name: str) -> np.ndarray:
    """Where the output contract lets variable ``name`` be NaN, as a mask of its values without the
    ``scenario`` axis (all False for a variable that must be a number everywhere):
    ``attainment_by_year`` in the base year for rules that need a period; ``failure_dependence`` on
    its diagonal and where a target is never missed; ``indicator_mean`` where the law has no finite
    mean. The one place that owns these rules (the dataset is built by them, and checked by them)."""
    values = np.asarray(ds[name].values)[0]
    allowed = np.zeros(values.shape, dtype=bool)
    if name == "attainment_by_year":
        kinds = ds["target_kind"].values.tolist()
        allowed[:, 0] = [kind not in PERIOD_FREE_KINDS for kind in kinds]
    elif name == "indicator_mean" and "indicator_mean_is_defined" in ds:
        allowed |= np.asarray(ds["indicator_mean_is_defined"].values)[0] == 0
    elif name == "failure_dependence":
        missed = np.asarray(ds["joint_failure_probability"].values, dtype=np.float64)[0].diagonal()
        allowed |= np.eye(values.shape[0], dtype=bool)
        allowed |= (missed == 0)[:, None] | (missed == 0)[None, :]
    return allowed


MEAN_UNDEFINED_NOTE = (
    "NaN where the law has no finite mean (indicator_mean_is_defined = 0): under Student-t shocks "
    "E[exp(sigma * eps)] is infinite, so a level driven by log growth (lognormal, ar1_growth, buildout) has "
    "no mean from its first Student-t year on, nor has a sum or ratio of one; so is it over an estimated "
    "volatility (volatility: {estimate, df}), whose sigma^2 is scaled inverse chi-square: such a lognormal "
    "or ar1_growth level has no mean after the base year. An average of simulated paths "
    "would be a number that depends on the seed. Its quantiles are exact within their bound.")


def mean_is_defined(scenario: Scenario) -> np.ndarray:
    """``(indicator, step)``: whether the indicator's simulated law has a finite mean.

    Only fat tails make a mean infinite: Student-t shocks (``E[exp(σε)] = ∞`` for any Student-t
    ``ε``), and an estimated volatility (``E[exp(σZ)] = ∞`` over the scaled inverse-χ² law of
    ``σ²``, as the level's log change is then Student-t), so a level driven by log growth with a
    volatility has no mean after the base year (observations, which could pin a level, need normal
    shocks; with an estimated volatility an observation pins the level, not ``σ``, so the level stays
    without a mean). Which kinds fat tails leave without a mean is their spec's
    ``infinite_mean_under_fat_tails``. A sum is undefined when a term is; a ratio when a part is,
    unless its denominator is a sum of which the numerator is a term (then the ratio lies in [0, 1]).
    Logit shares and counts always have a mean.
    """
    inds = scenario.indicators
    defined = np.ones((len(inds), scenario.horizon - scenario.base_year + 1), dtype=bool)
    fat_shocks = scenario.shocks.distribution == "student_t"
    if not fat_shocks and not any(volatility_df(ind.process) > 0 for ind in inds):
        return defined
    index = {ind.id: i for i, ind in enumerate(inds)}
    for i, ind in enumerate(inds):
        if fat_shocks or volatility_df(ind.process) > 0:
            defined[i, 1:] = not PROCESS_SPECS[ind.process.kind].infinite_mean_under_fat_tails(ind.process)

    def visit(ind) -> np.ndarray:
        i = index[ind.id]
        proc = ind.process
        if proc.kind == "sum":
            for term in proc.terms:
                defined[i] &= visit(scenario.indicator_by_id[term])
        elif proc.kind == "ratio":
            num, den = scenario.indicator_by_id[proc.numerator], scenario.indicator_by_id[proc.denominator]
            parts = visit(num) & visit(den)
            bounded = den.process.kind == "sum" and num.id in den.process.terms
            defined[i] = True if bounded else parts
        return defined[i]

    for ind in inds:
        visit(ind)
    return defined


def _assumed(inds, *, parameters: bool = False) -> np.ndarray:
    flags = assumption_flags(inds, parameters=parameters)
    return np.array([flags[ind.id] for ind in inds], dtype=np.int8)


def _parameters_source(ind) -> str:
    if ind.start is None:
        return "derived: the parts' parameters"
    return ind.parameters.provenance()


def _varied_starts(inds) -> np.ndarray:
    """Per indicator: does its base year differ path by path (an uncertain start, or a derived
    indicator with such a part)?"""
    by_id = {ind.id: ind for ind in inds}

    def varied(ind) -> bool:
        if ind.start is not None:
            return ind.start.uncertain
        proc = ind.process
        refs = (proc.numerator, proc.denominator) if proc.kind == "ratio" else proc.terms
        return any(varied(by_id[r]) for r in refs)

    return np.array([varied(ind) for ind in inds], dtype=bool)


def _start_interval(ind) -> tuple[float, float]:
    return ind.start.interval() if ind.start is not None else (math.nan, math.nan)


def _start_law_name(ind) -> str:
    """``known``, ``lognormal`` (a logit-normal for a bounded kind), ``uniform`` or ``normal``; a
    derived indicator's: ``derived``."""
    return ind.start.law if ind.start is not None else "derived"


def _start_source(ind) -> str:
    if ind.start is not None:
        return ind.start.provenance()
    return PROCESS_SPECS[ind.process.kind].describe(ind.process)  # derived: what from


def _describe_process(ind) -> str:
    return PROCESS_SPECS[ind.process.kind].describe(ind.process)
