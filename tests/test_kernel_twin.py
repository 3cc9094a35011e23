"""The numba kernel against its plain-Python twin (:mod:`tests.kernel_twin`), path by path: on random
scenarios of every process and target kind (the audit's generator), the kernel's values, logs and
likelihoods of each path equal the twin's (to the last few ulps: the kernel's exp and log are its own),
and its integer statistics equal the twin's rules counted path by path, exactly. The same on the
audit's scenarios with estimated volatilities (``volatility: {estimate, df}``) in place of known ones,
with uncertain count means (``additions: {mean: {mean, sd}}``) in place of known ones, and with
uncertain starts (``start: {low, high}``, ``{mean, sd}``) in place of known ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from targetsim.engine.plan import build_plan
from targetsim.engine.simulate import simulate
from targetsim.kernels.geometry import LANES
from targetsim.kernels.rng import key_from_seed
from targetsim.kernels.weights import VOL_W_MIN, WEIGHT_ONE
from tests.conftest import make_scenario
from tests.kernel_twin import kernel_group, twin_paths, twin_rules
from tests.test_audit_reference import audit_scenarios

PATHS = 300  # two groups: a full one and a partial one


def _close(name, kernel, twin, rtol):
    both_inf = np.isinf(kernel) & np.isinf(twin) & (np.sign(kernel) == np.sign(twin))
    same = both_inf | np.isclose(kernel, twin, rtol=rtol, atol=1e-300, equal_nan=True)
    assert same.all(), (name, np.argwhere(~same)[:3], kernel[~same][:3], twin[~same][:3])


@st.composite
def scenarios_with_estimated_volatilities(draw):
    """The audit's scenarios, with the volatility of some of their lognormal, ar1_growth and
    logit_share indicators (at least one) estimated with a few degrees of freedom."""
    data = draw(audit_scenarios())
    eligible = [k for k, ind in data["indicators"].items()
                if ind["process"]["kind"] in ("lognormal", "ar1_growth", "logit_share")]
    assume(eligible)
    for k in draw(st.lists(st.sampled_from(eligible), min_size=1, unique=True)):
        proc = data["indicators"][k]["process"]
        proc["volatility"] = {"estimate": proc["volatility"], "df": draw(st.sampled_from([1.5, 2.0, 3.5, 10.0, 100.0]))}
    return data


@st.composite
def scenarios_with_uncertain_count_means(draw):
    """The audit's scenarios, with the mean additions of some of their counts (at least one) uncertain:
    ``{mean, sd}`` with an s.d. from a tenth of the mean to twice it (gamma shapes from 100 to ¼)."""
    data = draw(audit_scenarios())
    eligible = [k for k, ind in data["indicators"].items() if ind["process"]["kind"] == "count"]
    assume(eligible)
    for k in draw(st.lists(st.sampled_from(eligible), min_size=1, unique=True)):
        additions = data["indicators"][k]["process"]["additions"]
        mean = additions["mean"]
        additions["mean"] = {"mean": mean, "sd": round(mean * draw(st.sampled_from([0.1, 0.3, 0.7, 2.0])), 4)}
    return data


def uncertain_start(draw, ind: dict) -> dict:
    """An uncertain start around the indicator's start value: a range (log-normal or logit-normal, or
    uniform) or a normal whose ±6 s.d. stay valid."""
    proc, value = ind["process"], float(ind["start"]["value"])
    if proc["kind"] in ("count", "scheduled"):  # a whole number: a range only
        width = draw(st.sampled_from([1, 3, 40]))
        if draw(st.booleans()):
            return {"low": max(0, int(value) - width), "high": int(value) + width, "law": "uniform", "assumption": "t"}
        return {"low": max(0.6, value - width), "high": value + width + 0.5, "assumption": "t"}
    top = 1.0 if proc["kind"] == "logit_share" else float(proc["ceiling"]) if proc["kind"] == "logistic" else None
    room = min(value, top - value) if top else value  # how far the start may move and stay valid
    form = draw(st.sampled_from(["lognormal", "uniform", "normal"]))
    if form == "normal":
        return {"mean": value, "sd": round(room * draw(st.sampled_from([0.02, 0.1, 0.16])), 6), "assumption": "t"}
    width = room * draw(st.sampled_from([0.05, 0.3, 0.9]))
    return {"low": round(value - width, 6), "high": round(value + width * (0.5 if top else 1.0), 6),
            "law": form, "assumption": "t"}


@st.composite
def scenarios_with_uncertain_starts(draw):
    """The audit's scenarios, with the start of some of their lognormal, ar1_growth, logit_share,
    logistic, buildout, count and scheduled indicators (at least one) drawn once per path."""
    data = draw(audit_scenarios())
    eligible = [k for k, ind in data["indicators"].items()
                if ind["process"]["kind"] in ("lognormal", "ar1_growth", "logit_share", "logistic", "buildout",
                                              "count", "scheduled")]
    assume(eligible)
    for k in draw(st.lists(st.sampled_from(eligible), min_size=1, unique=True)):
        data["indicators"][k]["start"] = uncertain_start(draw, data["indicators"][k])
    return data


SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@settings(max_examples=80, **SETTINGS)
@given(data=audit_scenarios())
def test_the_kernel_and_its_twin_agree_path_by_path(data):
    _agree_path_by_path(data)


@settings(max_examples=40, **SETTINGS)
@given(data=scenarios_with_estimated_volatilities())
def test_the_kernel_and_its_twin_agree_with_estimated_volatilities(data):
    plan = _agree_path_by_path(data)
    assert (plan.arrays["vol_df"] > 0).any()


# a tiny λ (gamma shape ¼) observed far above it: its likelihood needs the digits of log(λ/(r + λ))
_TINY_LAMBDA = {
    "name": "test", "base_year": 2024, "horizon": 2025, "paths": 100000, "seed": 0,
    "indicators": {
        "x0": {"start": {"value": 1.0, "assumption": "generated"},
               "process": {"kind": "count", "additions": {"distribution": "negative_binomial",
                                                          "mean": {"mean": 2.11, "sd": 4.22}, "dispersion": 12.66}}},
        "x1": {"start": {"value": 124.333, "assumption": "generated"},
               "process": {"kind": "lognormal", "growth": {"mean": -0.0506, "sd": 0.0}, "volatility": 0.0484}}},
    "targets": [{"id": "t0", "indicator": "x0", "kind": "level", "threshold": 1.651, "by": 2025, "comparator": ">="}],
    "observations": {"x0": {2025: 8.0}}}


@settings(max_examples=40, **SETTINGS)
@given(data=scenarios_with_uncertain_count_means())
@example(data=_TINY_LAMBDA)
def test_the_kernel_and_its_twin_agree_with_uncertain_count_means(data):
    plan = _agree_path_by_path(data)
    assert (plan.arrays["c_sd"] > 0).any()


@settings(max_examples=40, **SETTINGS)
@given(data=scenarios_with_uncertain_starts())
def test_the_kernel_and_its_twin_agree_with_uncertain_starts(data):
    plan = _agree_path_by_path(data)
    assert (plan.arrays["x0_law"] > 0).any()


def test_uncertain_starts_with_observations_and_derived_indicators():
    """Every law and every kind that takes an uncertain start, observed, correlated and jumping, with a
    ratio and a sum of them: each path's base year, hidden state, derived base year and likelihood."""
    from tests.conftest import every_start_form, scenario_dict

    inds = every_start_form()
    inds["k"] = {"start": {"value": 20.0, "assumption": "t"},
                 "process": {"kind": "lognormal", "growth": 0.02, "volatility": 0.05}}
    inds["r"] = inds.pop("r")  # after k, as before: the order of the indicators fixes the streams
    inds["t"] = {"process": {"kind": "sum", "terms": ["a", "k"]}}
    targets = [{"id": "a", "indicator": "a", "kind": "level", "threshold": 110.0, "by": 2027},
               {"id": "b", "indicator": "b", "kind": "cagr", "threshold": 0.05, "by": 2027},
               {"id": "s", "indicator": "s", "kind": "share", "threshold": 0.35, "by": 2026, "comparator": "<="},
               {"id": "l", "indicator": "l", "kind": "first_passage", "threshold": 280.0, "by": 2027},
               {"id": "o", "indicator": "o", "kind": "level", "threshold": 17.0, "by": 2027},
               {"id": "r", "indicator": "r", "kind": "first_passage", "threshold": 2.2, "by": 2027},
               {"id": "t", "indicator": "t", "kind": "level", "threshold": 125.0, "by": 2026, "comparator": "~"}]
    for target, plan in zip(targets, ["p1", "p2", "p1", "p3", "p2", "p1", "p3"]):
        target["plan"] = plan  # plans' joint counts, path by path
    data = scenario_dict(inds, targets, correlations=[["a", "b", 0.6], ["a", "s", 0.3]], seed=19,
                         jumps=[{"probability": 0.2, "effects": {"a": -0.2, "s": 0.3}}],
                         observations={"a": {2025: 108.0}, "s": {2026: 0.33}})
    plan = _agree_path_by_path(data)
    assert plan.weighted and (plan.arrays["x0_law"][:5] > 0).all() and plan.arrays["x0_law"][5] == 0


@pytest.mark.parametrize("distribution", ["poisson", "negative_binomial"])
def test_uncertain_count_means_with_observations(distribution):
    """Observed counts with uncertain means weigh each path by the likelihood of its additions at its
    own λ (the twin reads the kernel's λ); beside a known-mean count, an estimated volatility and a
    correlated, observed level."""
    from tests.conftest import scenario_dict

    def count(mean, sd, start):
        additions = {"distribution": distribution, "mean": {"mean": mean, "sd": sd}}
        if distribution == "negative_binomial":
            additions["dispersion"] = 2.5
        return {"start": {"value": start, "assumption": "t"}, "process": {"kind": "count", "additions": additions}}

    inds = {
        "c": count(4.2, 0.65, 10.0),
        "d": count(1.5, 2.0, 3.0),  # shape 0.56: many paths with a small λ
        "k": {"start": {"value": 7.0, "assumption": "t"},
              "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 2.0}}},
        "a": {"start": {"value": 100.0, "assumption": "t"},
              "process": _estimated({"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.03}, "volatility": 0.1}, 3)},
        "b": {"start": {"value": 50.0, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": 0.03, "volatility": 0.08}},
        "tot": {"process": {"kind": "sum", "terms": ["c", "d", "k"]}},
    }
    targets = [{"id": "c", "indicator": "c", "kind": "count_stock", "threshold": 25.5, "by": 2027},
               {"id": "d", "indicator": "d", "kind": "count_per_year", "threshold": 0.5, "by": 2027},
               {"id": "tot", "indicator": "tot", "kind": "cumulative", "threshold": 20.5, "by": 2027},
               {"id": "a", "indicator": "a", "kind": "level", "threshold": 112.0, "by": 2027}]
    data = scenario_dict(inds, targets, correlations=[["a", "b", 0.6]], seed=23,
                         observations={"c": {2025: 15.0, 2026: 18.0}, "d": {2025: 4.0}, "k": {2026: 11.0},
                                       "b": {2025: 52.0}})
    plan = _agree_path_by_path(data)
    assert plan.weighted and (plan.arrays["c_sd"][:2] > 0).all() and plan.arrays["c_sd"][2] == 0


def test_an_uncertain_count_mean_draws_its_lambda_per_path():
    """λ > 0 on each path of a count with an uncertain mean, a different one on each; a known mean
    draws none (left NaN as allocated, never read) and keeps its table; the uncertain one has none."""
    from tests.conftest import scenario_dict

    def count(mean: dict) -> dict:
        return {"start": {"value": 5.0, "assumption": "t"},
                "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": mean}}}

    data = scenario_dict({"c": count({"mean": 4.2, "sd": 0.65}), "k": count({"mean": 4.2, "sd": 0})},
                         [{"id": "t", "indicator": "c", "kind": "count_stock", "threshold": 10.5, "by": 2027}])
    plan = build_plan(make_scenario(data))
    assert plan.arrays["c_guide_size"][0] == 0 and plan.arrays["c_guide_size"][1] > 0
    draws, _ = kernel_group(plan, key_from_seed(3), 0, LANES)
    lam = draws.c_lam[0]
    assert (lam > 0).all() and np.unique(lam).size == LANES
    assert abs(lam.mean() - 4.2) < 4.5 * 0.65 / np.sqrt(LANES)
    assert np.isnan(draws.c_lam[1]).all()


def _estimated(process: dict, df: float) -> dict:
    return {**process, "volatility": {"estimate": process["volatility"], "df": df}}


@pytest.mark.parametrize("case", ["observed", "student_t", "two_piece"])
def test_estimated_volatilities_with_observations_and_other_shocks(case):
    """Estimated volatilities of every kind that takes one, correlated, jumping, and (observed) with
    observations of them: their shocks implied with each path's σ and the density's 1/σ in the weight."""
    from tests.conftest import scenario_dict

    inds = {
        "a": {"start": {"value": 100.0, "assumption": "t"},
              "process": _estimated({"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.03}, "volatility": 0.1}, 3)},
        "b": {"start": {"value": 50.0, "assumption": "t"},
              "process": _estimated({"kind": "ar1_growth", "long_run_growth": {"mean": 0.04, "sd": 0.02},
                                     "persistence": 0.5, "volatility": 0.08, "initial_growth": 0.06}, 2.5)},
        "s": {"start": {"value": 0.3, "assumption": "t"},
              "process": _estimated({"kind": "logit_share", "drift": {"mean": 0.1, "sd": 0.05}, "volatility": 0.2}, 6)},
        "k": {"start": {"value": 20.0, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.02, "sd": 0.01}, "volatility": 0.05}},
    }
    targets = [{"id": "a", "indicator": "a", "kind": "level", "threshold": 115.0, "by": 2027},
               {"id": "b", "indicator": "b", "kind": "cagr", "threshold": 0.05, "by": 2027},
               {"id": "s", "indicator": "s", "kind": "share", "threshold": 0.35, "by": 2026, "comparator": "<="},
               {"id": "k", "indicator": "k", "kind": "first_passage", "threshold": 21.0, "by": 2027}]
    extra: dict = {"jumps": [{"probability": 0.2, "effects": {"a": -0.2, "s": 0.3}}]}
    if case == "observed":
        extra["observations"] = {"a": {2025: 108.0}, "b": {2025: 53.0, 2026: 55.5}, "s": {2026: 0.33}}
    elif case == "student_t":
        extra["shocks"] = {"distribution": "student_t", "dof": 4}
    else:
        extra["shocks"] = {"distribution": "two_piece", "skew": -0.4}
    data = scenario_dict(inds, targets, correlations=[["a", "b", 0.6], ["a", "s", 0.3], ["b", "k", -0.2]],
                         seed=11, **extra)
    plan = _agree_path_by_path(data)
    assert plan.weighted == (case == "observed")


def test_an_estimated_volatility_draws_its_factor_per_path():
    """w = sqrt(ν/χ²_ν) ≥ VOL_W_MIN on each path of an estimated volatility; a known one draws none."""
    from tests.conftest import lognormal, scenario_dict

    data = scenario_dict({"a": lognormal(100.0, 0.05, 0.02, 0.1), "b": lognormal(50.0, 0.02, 0.01, 0.1)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 110.0, "by": 2027}])
    data["indicators"]["a"]["process"]["volatility"] = {"estimate": 0.1, "df": 3.0}
    plan = build_plan(make_scenario(data))
    draws, _ = kernel_group(plan, key_from_seed(3), 0, LANES)
    w = draws.vol_w[0]
    assert (w >= VOL_W_MIN).all() and np.unique(w).size == LANES
    assert (draws.vol_w[1] == 1.0).all()  # left as allocated: never drawn, never read


def _agree_path_by_path(data):
    scenario = make_scenario(data)
    plan = build_plan(scenario)
    key = key_from_seed(data["seed"])
    rtol = 1e-7 if scenario.shocks.distribution == "two_piece" else 1e-10
    groups = []
    for first in range(0, PATHS, LANES):
        n = min(LANES, PATHS - first)
        draws, kernel = kernel_group(plan, key, first, n)
        twin = twin_paths(plan, draws, n, skew=scenario.shocks.skew)
        _close("val", kernel.val[:, :, :n], twin.val, rtol)
        _close("lg", kernel.lg[:, :, :n], twin.lg, rtol)
        _close("log_w", kernel.log_w[:n], twin.log_w, 1e-9)
        groups.append(twin)

    # the statistics: the twin's rules, counted path by path with the kernel's weights' rounding
    stats = simulate(plan, paths=PATHS, seed=data["seed"], threads=1)
    log_w = np.concatenate([g.log_w for g in groups])
    if plan.weighted:
        w = np.floor(np.exp(np.minimum(log_w - stats.log_weight_reference, 0.0)) * WEIGHT_ONE + 0.5).astype(np.int64)
    else:
        w = np.ones(PATHS, dtype=np.int64)
    rules = np.concatenate([twin_rules(plan, g) for g in groups], axis=2)  # (target, step, path)
    steps = plan.arrays["t_step"]
    met = rules[np.arange(plan.n_targets), steps]  # (target, path)
    assert stats.weight_total == w.sum()
    np.testing.assert_array_equal(stats.attained, (met * w).sum(axis=1))
    by_year = (rules * w).sum(axis=2)
    kinds = plan.arrays["t_kind"]
    by_year[:, 0] = np.where(np.isin(kinds, (0, 2)), by_year[:, 0], 0)  # step 0 counts for level-type rules only
    np.testing.assert_array_equal(stats.attained_by_year, by_year)
    assert stats.joint == (met.all(axis=0) * w).sum()
    np.testing.assert_array_equal(stats.n_met, np.bincount(met.sum(axis=0), weights=w,
                                                           minlength=plan.n_targets + 1).astype(np.int64))
    plan_of = plan.arrays["t_group"]
    whole = np.array([met[plan_of == g].all(axis=0) for g in range(plan_of.max() + 1)])
    np.testing.assert_array_equal(stats.group_joint, (whole * w).sum(axis=1))
    np.testing.assert_array_equal(stats.groups_met, np.bincount(whole.sum(axis=0), weights=w,
                                                                minlength=len(whole) + 1).astype(np.int64))
    missed = ~met
    for a in range(plan.n_targets):
        for b in range(a + 1, plan.n_targets):
            assert stats.pair_fail[a, b] == ((missed[a] & missed[b]) * w).sum()
    return plan
