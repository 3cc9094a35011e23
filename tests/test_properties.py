"""Hypothesis properties: probabilities are probabilities, monotone in the threshold, and the
numbers do not depend on thread count or block size (bit for bit)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import targetsim
from tests.conftest import lognormal, make_scenario, scenario_dict

# derandomize: the same examples on every run, so CI cannot flake
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

growth = st.floats(-0.3, 0.5)
growth_sd = st.floats(0.0, 0.05)
volatility = st.floats(0.0, 0.4)
comparators = st.sampled_from([">=", ">", "<=", "<", "~"])


@st.composite
def processes(draw, name: str, others: list[str]):
    """An indicator of any kind (derived ones refer to earlier, never-zero indicators)."""
    kinds = ["lognormal", "ar1_growth", "logit_share", "buildout", "count"]
    if len(others) >= 2:
        kinds += ["ratio", "sum"]
    kind = draw(st.sampled_from(kinds))
    start = {"value": draw(st.floats(0.5, 1e4)), "assumption": "generated"}
    if kind == "lognormal":
        return lognormal(start["value"], draw(growth), draw(growth_sd), draw(volatility))
    if kind == "ar1_growth":
        proc = {"kind": kind, "long_run_growth": draw(growth), "persistence": draw(st.floats(-0.9, 0.9)),
                "volatility": draw(volatility), "initial_growth": draw(growth)}
    elif kind == "logit_share":
        start["value"] = draw(st.floats(0.01, 0.99))
        proc = {"kind": kind, "drift": draw(st.floats(-0.5, 0.5)), "volatility": draw(volatility)}
    elif kind == "buildout":
        projects = [{"size": draw(st.floats(0.1, 1e4)), "probability": draw(st.floats(0.0, 1.0)),
                     "earliest": 2025, "latest": 2025 + draw(st.integers(0, 3))} for _ in range(draw(st.integers(0, 3)))]
        proc = {"kind": kind, "organic": {"growth": draw(growth), "volatility": draw(volatility)}, "projects": projects}
    elif kind == "count":
        start["value"] = float(draw(st.integers(0, 50)))
        additions = {"distribution": draw(st.sampled_from(["poisson", "negative_binomial"])),
                     "mean": draw(st.floats(0.0, 20.0))}
        if additions["distribution"] == "negative_binomial":
            additions["dispersion"] = draw(st.floats(0.2, 50.0))
        proc = {"kind": kind, "additions": additions}
    elif kind == "ratio":
        a, b = draw(st.lists(st.sampled_from(others), min_size=2, max_size=2, unique=True))
        return {"process": {"kind": kind, "numerator": a, "denominator": b}}
    else:
        return {"process": {"kind": "sum", "terms": draw(st.lists(st.sampled_from(others), min_size=2,
                                                                    max_size=3, unique=True))}}
    return {"start": start, "process": proc}


TARGET_KINDS = ["level", "cagr", "first_passage", "growth_each_year", "count_per_year", "cumulative"]


@st.composite
def scenarios(draw):
    n_ind = draw(st.integers(1, 4))
    horizon = 2024 + draw(st.integers(1, 5))
    inds: dict = {}
    for i in range(n_ind):
        # counts can be zero: keep them out of ratios and sums
        positive = [k for k, v in inds.items() if v["process"]["kind"] != "count"]
        inds[f"x{i}"] = draw(processes(f"x{i}", positive))
    targets = []
    for k in range(draw(st.integers(1, 4))):
        ind = f"x{draw(st.integers(0, n_ind - 1))}"
        process_kind = inds[ind]["process"]["kind"]
        special = {"logit_share": ["share"], "ratio": ["share"], "count": ["count_stock"]}.get(process_kind, [])
        kind = draw(st.sampled_from(TARGET_KINDS + special))
        if kind in ("cagr", "growth_each_year"):
            thr = draw(st.floats(-0.2, 0.6))
        elif kind == "share":
            thr = draw(st.floats(0.0, 1.0))
        else:
            thr = draw(st.floats(0.01, 3e4))
        if process_kind == "logit_share" and kind in ("level", "share", "first_passage", "count_per_year"):
            thr = draw(st.floats(0.001, 0.999))  # a logit share lies strictly inside (0, 1)
        comparator = draw(comparators)
        target = {"id": f"t{k}", "indicator": ind, "kind": kind, "threshold": thr,
                  "by": draw(st.integers(2025, horizon)), "comparator": comparator}
        if comparator == "~":
            target["tolerance"] = draw(st.floats(0.01, 0.5))
            target["threshold"] = thr or 0.1  # "about 0" has no relative band
        targets.append(target)
    shocked = [k for k, v in inds.items() if v["process"]["kind"] in ("lognormal", "ar1_growth", "logit_share", "buildout")]
    corr = None
    if len(shocked) >= 2 and draw(st.booleans()):
        corr = [[shocked[0], shocked[1], draw(st.floats(-0.9, 0.9))]]
    extra = {}
    shock = draw(st.sampled_from(["normal", "student_t", "two_piece"]))
    if shock == "student_t":
        extra["shocks"] = {"distribution": shock, "dof": draw(st.floats(2.5, 30))}
    elif shock == "two_piece":
        extra["shocks"] = {"distribution": shock, "skew": draw(st.floats(-0.9, 0.9))}
    if shocked and draw(st.booleans()):
        extra["jumps"] = [{"probability": draw(st.floats(0, 1)), "effects": {shocked[0]: draw(st.floats(-1, 1))}}]
    return scenario_dict(inds, targets, horizon=horizon, seed=draw(st.integers(0, 2**32)), correlations=corr,
                         **extra)


@SETTINGS
@given(data=scenarios(), paths=st.integers(1, 3000))
def test_the_kernels_counters_agree_with_each_other(data, paths):
    # the kernel keeps separate counters (per target, by year, joint, "exactly m met", pairs of
    # misses); identities between them hold path by path, so they hold exactly in the sums
    ds = targetsim.run(make_scenario(data), paths=paths).isel(scenario=0)
    p = ds.attainment_probability.values
    at_least = ds.at_least_k_attainment_probability.values
    n = len(p)
    tol = 1e-12
    assert abs(at_least[0] - 1.0) < tol  # every path meets at least 0 targets
    assert abs(at_least[n] - float(ds.joint_attainment_probability)) < tol  # all n met = the joint count
    # E[number met] = Σ_k P(at least k met) = Σ_targets P(met)
    assert abs(at_least[1:].sum() - p.sum()) < 1e-9
    # the rule in its own year is the attainment
    for k, tid in enumerate(ds.target.values):
        year = int(ds.target_year.sel(target=tid))
        assert abs(float(ds.attainment_by_year.sel(target=tid, year=year)) - p[k]) < tol
    # pairs: Fréchet bounds of P(both missed) from the single misses
    miss = 1.0 - p
    both = ds.joint_failure_probability.values
    for a in range(n):
        assert abs(both[a, a] - miss[a]) < tol
        for b in range(n):
            if a != b:
                assert max(0.0, miss[a] + miss[b] - 1.0) - tol <= both[a, b] <= min(miss[a], miss[b]) + tol


@SETTINGS
@given(data=scenarios(), kind=st.sampled_from(TARGET_KINDS), indicator=st.integers(0, 3),
       thresholds=st.lists(st.floats(0.0, 2.0), min_size=2, max_size=6),
       comparator=st.sampled_from([">=", ">", "<=", "<"]))
def test_monotone_in_the_threshold(data, kind, indicator, thresholds, comparator):
    thresholds = sorted(thresholds)
    ind = f"x{indicator % len(data['indicators'])}"
    rate = kind in ("cagr", "growth_each_year")
    scale, shift = (1.0, -0.5) if rate else (2e4, 0.0)
    if data["indicators"][ind]["process"]["kind"] == "logit_share" and kind in ("level", "first_passage",
                                                                                 "count_per_year"):
        scale, shift = 0.499, 0.001  # a logit share lies strictly inside (0, 1)
    data["targets"] = [{"id": f"m{k}", "indicator": ind, "kind": kind, "threshold": thr * scale + shift,
                        "by": data["horizon"], "comparator": comparator} for k, thr in enumerate(thresholds)]
    ds = targetsim.run(make_scenario(data), paths=2000).isel(scenario=0)
    # common random numbers: the same paths face every threshold, so monotonicity is exact,
    # in the target year and in every other year
    for values in (ds.attainment_probability.values, *np.moveaxis(ds.attainment_by_year.values, 1, 0)):
        if np.all(np.isnan(values)):
            continue
        steps = np.diff(values)
        assert np.all(steps <= 0) if comparator in (">=", ">") else np.all(steps >= 0)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads")
@SETTINGS
@given(data=scenarios(), paths=st.integers(1, 5000), block_chunks=st.sampled_from([1, 2, 3, 8, 32]))
def test_identical_across_threads_and_block_sizes(data, paths, block_chunks):
    scenario = make_scenario(data)
    reference = targetsim.run(scenario, paths=paths, threads=1, block_size=8192)
    other = targetsim.run(scenario, paths=paths, threads=2, block_size=256 * block_chunks)
    for name, var in reference.data_vars.items():
        np.testing.assert_array_equal(var.values, other[name].values, err_msg=name)
