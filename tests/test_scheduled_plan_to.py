"""A scheduled count planned from each path's own start (``plan_to: {stock, margin, years}``): a city plans
from the stock it has, which the model may know only as a range. Checked against the rule written out by
hand (delivery 1: the schedule itself), an independent year-by-year simulation with an uncertain start, the
outside view's P(met), reproducibility across threads and blocks, and the parser's refusals. Fixed seeds;
tolerances are 4.5 Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import targetsim
from targetsim.estimate import outside_view as ov
from tests.conftest import (assert_same_for_any_threads_and_blocks, edit_error, load_edited, make_scenario,
                            mc_tolerance, scenario_dict)

N = 200_000


def stock_indicator(start: dict, plan_to: dict, delivery, carry_over: float = 0.0) -> dict:
    return {"start": {**start, "assumption": "test"}, "process": {"kind": "scheduled", "plan_to": plan_to,
                                                                  "delivery": delivery, "carry_over": carry_over}}


def test_planned_from_splits_the_units_by_the_weights():
    from targetsim.model.processes import ScheduledProcess

    proc = ScheduledProcess(schedule=(), delivery=1.0, plan_to=20, plan_margin=1.1,
                            plan_weights=((2025, 1.0), (2026, 1.0), (2027, 1.0)))
    # need 20 - 12 = 8, 1.1 x 8 = 8.8 -> 9 units; by year: round(3), round(6), 9
    assert proc.planned_from(12) == ((2025, 3), (2026, 3), (2027, 3))
    # need 7 -> 7.7 -> 8: 2.67 -> 3, 5.33 -> 5, 8
    assert proc.planned_from(13) == ((2025, 3), (2026, 2), (2027, 3))
    assert proc.planned_from(25) == ((2025, 0), (2026, 0), (2027, 0))  # nothing needed, nothing planned
    assert proc.total_planned == 22  # from a start of 0: the most any path plans


def test_with_sure_delivery_each_path_reaches_start_plus_its_plan():
    data = scenario_dict({"x": stock_indicator({"low": 10, "high": 16, "law": "uniform"},
                                               {"stock": 20, "margin": 1.5, "years": {2025: 1, 2026: 2, 2027: 1}},
                                               1.0)},
                         [{"id": "t", "indicator": "x", "kind": "count_stock", "threshold": 20, "by": 2027}],
                         paths=N)
    ds = targetsim.run(make_scenario(data), paths=N).isel(scenario=0)
    assert float(ds.attainment_probability.sel(target="t")) == 1.0
    # the end stock is start + ceil(1.5 (20 - start)) on every path: its mean over the uniform start 10..16
    starts = np.arange(10, 17)
    ends = starts + np.ceil(1.5 * (20 - starts) - 1e-9)
    mean_end = float(ds.indicator_mean.sel(indicator="x", year=2027))
    se = ends.std() / math.sqrt(N)
    assert abs(mean_end - ends.mean()) < 4.5 * se, (mean_end, ends.mean())


def independent(rng, paths, starts_law, plan, delivery_mean, delivery_sd, carry):
    """The process written out again: each path draws its start, plans ⌈margin·(stock − start)⌉ units split by
    the weights' cumulative shares, draws its delivery probability from the Beta law, then year by year
    delivers Binomial(due, δ) and carries Binomial(undelivered, carry)."""
    starts = starts_law(rng, paths)
    total = np.ceil(plan["margin"] * np.maximum(plan["stock"] - starts, 0) - 1e-9)
    weights = np.array(list(plan["years"].values()), dtype=float)
    shares = np.cumsum(weights) / weights.sum()
    shares[-1] = 1.0
    cum = np.floor(total[:, None] * shares[None, :] + 0.5)
    planned = np.diff(np.concatenate([np.zeros((paths, 1)), cum], axis=1), axis=1).astype(np.int64)
    kappa = delivery_mean * (1 - delivery_mean) / delivery_sd ** 2 - 1
    delta = rng.beta(delivery_mean * kappa, (1 - delivery_mean) * kappa, paths)
    carried = np.zeros(paths, dtype=np.int64)
    delivered = np.zeros(paths, dtype=np.int64)
    for t in range(planned.shape[1]):
        due = planned[:, t] + carried
        done = rng.binomial(due, delta)
        carried = rng.binomial(due - done, carry)
        delivered += done
    return starts + delivered


def test_the_engine_agrees_with_an_independent_simulation():
    plan = {"stock": 70, "margin": 1.1, "years": {2025: 7, 2026: 7, 2027: 6}}
    data = scenario_dict({"x": stock_indicator({"low": 43, "high": 63}, plan, {"mean": 0.8, "sd": 0.1}, 0.8)},
                         [{"id": "t", "indicator": "x", "kind": "count_stock", "threshold": 70, "by": 2027}],
                         paths=N, seed=3)
    got = float(targetsim.run(make_scenario(data), paths=N).isel(scenario=0).attainment_probability.sel(target="t"))
    a, b = (math.log(43) + math.log(63)) / 2, (math.log(63) - math.log(43)) / (2 * 1.6448536269514722)
    rng = np.random.default_rng(20261202)
    ends = independent(rng, 400_000, lambda r, n: np.floor(np.exp(r.normal(a, b, n)) + 0.5), plan, 0.8, 0.1, 0.8)
    expected = float((ends >= 70).mean())
    assert abs(got - expected) < mc_tolerance(expected, N) + mc_tolerance(expected, 400_000), (got, expected)


def test_the_outside_view_delivery_meets_the_target_with_its_p_met(tmp_path):
    text = """\
    name: t
    base_year: 2024
    horizon: 2027
    paths: 200000
    seed: 9
    indicators:
      platforms:
        label: platforms
        unit: count
        start: {low: 937, high: 1363, assumption: "a range"}
        process: {kind: scheduled, plan_to: {stock: 1501, margin: 1.1, years: {2025: 1, 2026: 1, 2027: 1}}, delivery: {outside_view: true}, carry_over: 0.8}
        parameters: {assumption: "t"}
    targets:
      - {id: t, indicator: platforms, kind: count_stock, comparator: ">", threshold: 1500, by: 2027}
    """
    sc = load_edited(tmp_path, text)
    p = ov.default_logit().p_met("level", "expected", "city", 3)
    got = float(targetsim.run(sc).isel(scenario=0).attainment_probability.sel(target="t"))
    # the start's law enters through 32 quantile nodes (start_nodes): a quadrature, so a little more room
    assert abs(got - p) < mc_tolerance(p, N) + 0.005, (got, p)
    assert "planned from each path's start" in sc.indicators[0].parameters.source


def test_reproducible_for_any_threads_and_blocks():
    data = scenario_dict({"x": stock_indicator({"low": 10, "high": 18, "law": "uniform"},
                                               {"stock": 20, "margin": 1.1, "years": {2025: 1, 2026: 1, 2027: 1}},
                                               {"mean": 0.85, "sd": 0.1}, 0.8)},
                         [{"id": "t", "indicator": "x", "kind": "count_stock", "threshold": 20, "by": 2027}])
    assert_same_for_any_threads_and_blocks(make_scenario(data))


BASE = """\
name: t
base_year: 2024
horizon: 2027
indicators:
  x:
    label: x
    unit: count
    start: {value: 5, assumption: "t"}
    process: {kind: scheduled, plan_to: {stock: 10, margin: 1.1, years: {2025: 1, 2026: 1}}, delivery: 0.9}
targets:
  - {id: t, indicator: x, kind: count_stock, threshold: 10, by: 2027}
"""


@pytest.mark.parametrize("old,new,words", [
    ("plan_to: {stock: 10,", "schedule: {2025: 1}, plan_to: {stock: 10,", "not both"),
    ("stock: 10,", "stock: 0,", "above 0"),
    ("margin: 1.1,", "margin: 0.9,", "margin"),
    ("years: {2025: 1, 2026: 1}", "years: {2024: 1, 2026: 1}", "after the base year"),
    ("years: {2025: 1, 2026: 1}", "years: {2025: 0}", "positive weight"),
    ("margin: 1.1,", "margin: 1.1, step: 2,", "unknown key 'step'"),
])
def test_plan_to_errors(tmp_path, old, new, words):
    err = edit_error(tmp_path, BASE, old, new)
    assert words in str(err)
