"""A scheduled count's delivery from the outside view (issue 17): ``delivery: {outside_view: ...}``.

The exact P(met | δ) of :func:`scheduled_met_given_delivery` is checked against closed forms and against an
independent simulation of the schedule (year by year, as the README states the process); the delivery
law's mean is checked to reproduce the logistic model's P(met), and the engine's P(met) of a scenario that
uses it is checked against that P within its Monte Carlo standard error.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from targetsim.errors import FitError, ScenarioError
from targetsim.estimate import outside_view as ov
from tests.conftest import edit_error, load_edited


def simulate_schedule(rng, delta, planned, carry, paths, start=None):
    """Independent reference: the README's process, year by year (units due = planned + carried; each
    delivered with δ; each undelivered one carried with probability ``carry``). Returns the yearly
    deliveries, shape (paths, years)."""
    carried = np.zeros(paths, dtype=np.int64)
    out = []
    for n in planned:
        due = n + carried
        delivered = rng.binomial(due, delta)
        carried = rng.binomial(due - delivered, carry)
        out.append(delivered)
    return np.stack(out, axis=1)


def test_without_carry_over_the_deliveries_are_binomial():
    delta = np.array([0.5, 0.8, 0.95])
    got = ov.scheduled_met_given_delivery(delta, [4, 3, 5], 0.0, measure="cumulative", step=3, need=10)
    np.testing.assert_allclose(got, stats.binom.sf(9, 12, delta), rtol=1e-10, atol=1e-13)
    strict = ov.scheduled_met_given_delivery(delta, [4, 3, 5], 0.0, measure="cumulative", step=3, need=10,
                                             strict=True)
    np.testing.assert_allclose(strict, stats.binom.sf(10, 12, delta), rtol=1e-10, atol=1e-13)
    # a year's deliveries alone, and the average over the years of each year's P
    in_year = ov.scheduled_met_given_delivery(delta, [4, 3, 5], 0.0, measure="in_year", step=2, need=2)
    np.testing.assert_allclose(in_year, stats.binom.sf(1, 3, delta), rtol=1e-10)
    per_year = ov.scheduled_met_given_delivery(delta, [4, 3, 5], 0.0, measure="per_year", step=3, need=3)
    expected = (stats.binom.sf(2, 4, delta) + stats.binom.sf(2, 3, delta) + stats.binom.sf(2, 5, delta)) / 3
    np.testing.assert_allclose(per_year, expected, rtol=1e-10)


def test_carried_units_are_delivered_later_with_the_geometric_chance():
    # 10 units planned in year 1 of 3, carried with c: each is delivered by year 3 with δ(1 + r + r²), r = (1 − δ)c
    delta, c = np.array([0.6, 0.9]), 0.7
    r = (1 - delta) * c
    q = delta * (1 + r + r * r)
    got = ov.scheduled_met_given_delivery(delta, [10, 0, 0], c, measure="cumulative", step=3, need=9)
    np.testing.assert_allclose(got, stats.binom.sf(8, 10, q), rtol=1e-10)


@pytest.mark.parametrize("measure,need", [("cumulative", 20), ("in_year", 8), ("stock", 30)])
def test_exact_probabilities_agree_with_an_independent_simulation(measure, need):
    rng = np.random.default_rng(20261202)
    planned, carry, delta, paths = [9, 8, 7], 0.6, 0.8, 400_000
    deliveries = simulate_schedule(rng, delta, planned, carry, paths)
    starts = rng.integers(8, 13, size=paths)  # uniform on 8..12, the start law given below
    if measure == "cumulative":
        hit = deliveries.sum(axis=1) >= need
    elif measure == "in_year":
        hit = deliveries[:, 2] >= need
    else:
        hit = starts + deliveries.sum(axis=1) >= need
    p_mc, se = hit.mean(), hit.std() / math.sqrt(paths)
    exact = ov.scheduled_met_given_delivery(np.array([delta]), planned, carry, measure=measure, step=3, need=need,
                                            start_values=np.arange(8, 13), start_probs=np.full(5, 0.2))[0]
    assert abs(exact - p_mc) < 4.5 * se, (exact, p_mc, se)


def test_the_delivery_mean_reproduces_the_outside_view_p_met():
    def met(d):
        return ov.scheduled_met_given_delivery(d, [11, 11, 11], 0.5, measure="cumulative", step=3, need=30)

    law = ov.outside_view_delivery(met, 0.8, 0.1, p_low=0.75, p_high=0.85)
    assert ov.scheduled_p_met(met, law.mean, 0.1) == pytest.approx(0.8, abs=1e-6)
    assert law.mean_se > 0 and law.sd == 0.1
    # the P(met) of the Beta law, integrated independently (quadrature on its density)
    kappa = law.mean * (1 - law.mean) / 0.01 - 1
    a, b = law.mean * kappa, (1 - law.mean) * kappa
    from scipy import integrate

    check, _ = integrate.quad(lambda d: met(np.array([d]))[0] * stats.beta.pdf(d, a, b), 0, 1, limit=200)
    assert check == pytest.approx(0.8, abs=2e-3)
    # no spread: the single δ that gives 0.8
    point = ov.outside_view_delivery(met, 0.8, 0.0)
    assert met(np.array([point.mean]))[0] == pytest.approx(0.8, abs=1e-4)


@settings(max_examples=25, deadline=None)
@given(p_low=st.floats(0.3, 0.6), gap=st.floats(0.05, 0.3))
def test_a_higher_p_met_needs_a_higher_delivery(p_low, gap):
    def met(d):
        return ov.scheduled_met_given_delivery(d, [0, 10], 0.9, measure="cumulative", step=2, need=8)

    low = ov.outside_view_delivery(met, p_low, 0.1).mean
    high = ov.outside_view_delivery(met, p_low + gap, 0.1).mean
    assert high > low


def test_the_standard_error_of_the_mean_is_the_delta_method():
    """The mean's standard error is the P(met) interval's half-width over dP/dmean: for a narrow interval, half
    the distance between the means that meet each end of it (solved apart); never more than half the range of
    means the s.d. allows."""
    def met(d):
        return ov.scheduled_met_given_delivery(d, [11, 11, 11], 0.5, measure="cumulative", step=3, need=30)

    law = ov.outside_view_delivery(met, 0.8, 0.1, p_low=0.79, p_high=0.81)
    apart = (ov.outside_view_delivery(met, 0.81, 0.1).mean - ov.outside_view_delivery(met, 0.79, 0.1).mean) / 2
    assert law.mean_se == pytest.approx(apart, rel=0.05)
    wide = ov.outside_view_delivery(met, 0.8, 0.1, p_low=0.01, p_high=0.999)
    assert wide.mean_se <= math.sqrt(1 - 0.04) / 2 + 1e-9
    assert ov.outside_view_delivery(met, 0.8, 0.1).mean_se == 0.0


def test_a_schedule_that_cannot_reach_the_p_met_is_refused():
    def met(d):  # 6 planned for a need of 8 on the paths that start low: P(met) is at most 0.6
        return ov.scheduled_met_given_delivery(d, [2, 2, 2], 0.8, measure="stock", step=3, need=20,
                                               start_values=np.arange(12, 17), start_probs=np.full(5, 0.2))

    with pytest.raises(FitError, match="plan more units"):
        ov.outside_view_delivery(met, 0.8, 0.1)


def test_whole_start_pmf_is_the_kernel_law():
    from targetsim.model.processes import ScheduledProcess, whole_start_pmf
    from targetsim.model.scenario import Start

    proc = ScheduledProcess(schedule=((2025, 1),), delivery=0.9)
    values, probs = whole_start_pmf(proc, Start(from_baseline=False, value=50, law="lognormal", low=40, high=62, assumption="t"))
    # the kernel's rule: X = floor(e^h + 1/2), h normal with 5 % and 95 % quantiles at ln 40 and ln 62
    a, b = (math.log(40) + math.log(62)) / 2, (math.log(62) - math.log(40)) / (2 * 1.6448536269514722)
    draws = np.floor(np.exp(np.random.default_rng(3).normal(a, b, 1_000_000)) + 0.5)
    for v in (40, 50, 62):
        share = (draws == v).mean()
        p = probs[values == v][0]
        assert abs(p - share) < 4.5 * math.sqrt(p * (1 - p) / 1_000_000)
    assert probs.sum() == pytest.approx(1.0)
    uniform_values, uniform_probs = whole_start_pmf(proc, Start(from_baseline=False, value=5, law="uniform", low=3, high=7,
                                                                assumption="t"))
    assert list(uniform_values) == [3, 4, 5, 6, 7] and np.allclose(uniform_probs, 0.2)


SCENARIO = """\
name: scheduled_outside_view
base_year: 2024
horizon: 2027
paths: 200000
seed: 11
indicators:
  stock:
    label: an existing stock
    unit: count
    start: {low: 12, high: 16, assumption: "test"}
    process: {kind: scheduled, schedule: {2025: 3, 2026: 3, 2027: 3}, delivery: {outside_view: true}, carry_over: 0.8}
    parameters: {assumption: "test"}
  new_units:
    label: new units
    unit: count
    start: {value: 0, assumption: "only new units"}
    process: {kind: scheduled, schedule: {2026: 12}, delivery: {outside_view: true}, carry_over: 0.9}
    parameters: {assumption: "test"}
  events:
    label: events a year
    unit: count
    start: {value: 0, assumption: "a flow"}
    process: {kind: scheduled, schedule: {2025: 12, 2026: 12, 2027: 12}, delivery: {outside_view: {sd: 0.05}}, carry_over: 0.5}
    parameters: {assumption: "test"}
targets:
  - {id: t_stock, indicator: stock, kind: count_stock, comparator: ">=", threshold: 20, by: 2027}
  - {id: t_new, indicator: new_units, kind: cumulative, comparator: ">=", threshold: 10, by: 2027}
  - {id: t_events, indicator: events, kind: in_year, comparator: ">=", threshold: 10, by: 2027}
"""


def _load(tmp_path, text):
    return load_edited(tmp_path, text)


def test_the_engine_meets_each_target_with_the_outside_view_p_met(tmp_path):
    import targetsim
    from targetsim.model.basis import target_bases

    sc = _load(tmp_path, SCENARIO)
    logit = ov.default_logit()
    expected = {"t_stock": logit.p_met("level", "expected", "city", 3),
                "t_new": logit.p_met("count", "expected", "city", 3),
                "t_events": logit.p_met("count", "expected", "city", 1)}
    by_id = {ind.id: ind for ind in sc.indicators}
    assert by_id["events"].process.delivery_sd == 0.05 and by_id["stock"].process.delivery_sd == ov.DELIVERY_SD
    assert "outside view: delivery" in by_id["stock"].parameters.source
    assert set(target_bases(sc).values()) == {"outside view"}
    ds = targetsim.run(sc, threads=2)
    for target, p in expected.items():
        got = float(ds["attainment_probability"].sel(target=target).item())
        se = math.sqrt(p * (1 - p) / 200_000)
        assert abs(got - p) < 4.5 * se, (target, got, p)
    estimates = dict(zip(ds["fitted_parameter"].coords["fit_parameter"].values.tolist(),
                         ds["fitted_parameter"].sel(indicator="stock").values.ravel().tolist()))
    assert estimates["delivery_mean"] == pytest.approx(by_id["stock"].process.delivery)


@pytest.mark.parametrize("old,new,message", [
    ("delivery: {outside_view: {sd: 0.05}}", "delivery: {outside_view: {centre: margin}}", "unknown key 'centre'"),
    ("delivery: {outside_view: {sd: 0.05}}", "delivery: {outside_view: {sd: 0.7}}", "sd .* is a number in"),
    ("carry_over: 0.5}", "carry_over: {mean: 0.5, sd: 0.1}}", "carry_over is a number"),
    ("threshold: 20, by: 2027}", "threshold: 26, by: 2027}", "plan more units"),
    ("kind: count_stock, comparator: \">=\"", "kind: count_stock, comparator: \"<=\"", "reads a floor"),
])
def test_scheduled_outside_view_errors(tmp_path, old, new, message):
    assert re.search(message, str(edit_error(tmp_path, SCENARIO, old, new)))


def test_sd_is_a_scheduled_count_key_only(tmp_path):
    text = SCENARIO.replace("""  stock:
    label: an existing stock""", """  level:
    label: a level
    unit: CNY_100m
    start: {value: 100, assumption: "t"}
    process: {kind: lognormal, growth: {outside_view: {sd: 0.1}}, volatility: 0.05}
    parameters: {assumption: "t"}
  stock:
    label: an existing stock""").replace("targets:\n", "targets:\n  - {id: t_level, indicator: level, kind: level, "
                                                       "comparator: \">=\", threshold: 120, by: 2027}\n")
    with pytest.raises(ScenarioError, match="unknown key 'sd'"):
        _load(tmp_path, text)


def test_the_model_may_name_the_target_the_outside_view_reads(tmp_path):
    """A city model's indicator that several plans target reads one given target, whatever the plan loaded."""
    given = SCENARIO.replace("delivery: {outside_view: true}, carry_over: 0.9}",
                             "delivery: {outside_view: {target: {kind: cumulative, threshold: 10, by: 2027}}}, "
                             "carry_over: 0.9}")
    other_plan = given.replace("{id: t_new, indicator: new_units, kind: cumulative, comparator: \">=\", threshold: 10",
                               "{id: t_new, indicator: new_units, kind: cumulative, comparator: \">=\", threshold: 6")
    assert other_plan != given
    a = {i.id: i for i in _load(tmp_path, given).indicators}["new_units"]
    b = {i.id: i for i in _load(tmp_path, other_plan).indicators}["new_units"]
    assert a.process == b.process and a.parameters == b.parameters
    assert "the model's reference target (>= 10 by 2027)" in a.parameters.source
    # read from the plan's own first target instead, the two plans differ
    c = {i.id: i for i in _load(tmp_path, other_plan.replace(
        "{outside_view: {target: {kind: cumulative, threshold: 10, by: 2027}}}", "{outside_view: true}")).indicators}
    assert c["new_units"].process.delivery < a.process.delivery


@pytest.mark.parametrize("reading,message", [
    ("{kind: cumulative, threshold: 10}", "mapping with kind, threshold and by"),
    ("{kind: cumulative, threshold: ten, by: 2027}", "threshold is a number"),
    ("{kind: cumulative, threshold: 10, by: 2027, comparator: '=='}", "comparator is one of"),
    ("{kind: growth_rate, threshold: 10, by: 2027}", "reads a floor"),
    ("{kind: cumulative, threshold: 10, by: 2024}", "needs a target after the base year"),
])
def test_target_reading_errors(tmp_path, reading, message):
    err = edit_error(tmp_path, SCENARIO, "delivery: {outside_view: true}, carry_over: 0.9}",
                     f"delivery: {{outside_view: {{target: {reading}}}}}, carry_over: 0.9}}")
    assert re.search(message, str(err))
