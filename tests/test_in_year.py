"""The `in_year` target kind: the indicator's increase during the year `by` alone, X(by) − X(by − 1)
(a count's additions that year; a level's change that year), against closed forms and an independent
NumPy simulation; the parser's refusals; bit-identity for any threads and blocks."""

from __future__ import annotations

import numpy as np
from scipy import stats

import targetsim
from targetsim.model.targets import TARGET_SPECS
from tests.conftest import (
    assert_error_at, assert_same_for_any_threads_and_blocks, edit_error, make_scenario, mc_tolerance, scenario_dict,
)

N = 200_000


def run(data: dict, paths: int = N):
    return targetsim.run(make_scenario(data), paths=paths).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


def count(start: float, dist: str, mean: float, dispersion: float | None = None) -> dict:
    additions = {"distribution": dist, "mean": mean}
    if dispersion is not None:
        additions["dispersion"] = dispersion
    return {"start": {"value": start, "assumption": "test value"}, "process": {"kind": "count", "additions": additions}}


def in_year(ind: str, ks, by: int = 2027, comparator: str = ">=") -> list[dict]:
    return [{"id": f"k{j}", "indicator": ind, "kind": "in_year", "threshold": k, "by": by, "comparator": comparator}
            for j, k in enumerate(ks)]


KS = [0, 1, 2, 3, 5, 8]


def test_poisson_additions_in_the_year():
    mu = 2.5
    ds = run(scenario_dict({"c": count(7, "poisson", mu)}, in_year("c", KS)))
    for j, k in enumerate(KS):
        expected = float(stats.poisson.sf(k - 1, mu))  # P(A ≥ k): ties hold
        assert abs(prob(ds, f"k{j}") - expected) < mc_tolerance(expected, N), (k, prob(ds, f"k{j}"), expected)
    # the same additions, strictly: P(A > k)
    ds = run(scenario_dict({"c": count(7, "poisson", mu)}, in_year("c", KS, comparator=">")))
    for j, k in enumerate(KS):
        expected = float(stats.poisson.sf(k, mu))
        assert abs(prob(ds, f"k{j}") - expected) < mc_tolerance(expected, N), (k, prob(ds, f"k{j}"), expected)


def test_not_every_year():
    """`in_year` reads 2027 alone: P(A ≥ k), where `count_per_year` needs all three years: P(A ≥ k)³."""
    mu, k = 2.5, 2
    targets = in_year("c", [k]) + [{"id": "every", "indicator": "c", "kind": "count_per_year", "threshold": k,
                                    "by": 2027}]
    ds = run(scenario_dict({"c": count(0, "poisson", mu)}, targets))
    p = float(stats.poisson.sf(k - 1, mu))
    assert abs(prob(ds, "k0") - p) < mc_tolerance(p, N)
    assert abs(prob(ds, "every") - p**3) < mc_tolerance(p**3, N)
    # by year: each year's own additions
    for year in (2025, 2026, 2027):
        got = float(ds.attainment_by_year.sel(target="k0", year=year))
        assert abs(got - p) < mc_tolerance(p, N), (year, got)
    assert np.isnan(float(ds.attainment_by_year.sel(target="k0", year=2024)))


def test_negative_binomial_additions_in_the_year():
    mu, r = 10.0, 4.0  # variance mu + mu²/r
    ds = run(scenario_dict({"c": count(0, "negative_binomial", mu, r)}, in_year("c", [0, 3, 6, 10, 15, 25])))
    for j, k in enumerate([0, 3, 6, 10, 15, 25]):
        expected = float(stats.nbinom.sf(k - 1, r, r / (r + mu)))
        assert abs(prob(ds, f"k{j}") - expected) < mc_tolerance(expected, N), (k, prob(ds, f"k{j}"), expected)


def test_lognormal_change_in_the_year():
    x0, g, vol = 100.0, 0.05, 0.1
    ks = [-10.0, -2.0, 0.0, 3.0, 5.0, 12.0]
    data = scenario_dict({"x": {"start": {"value": x0, "assumption": "t"},
                                "process": {"kind": "lognormal", "growth": g, "volatility": vol}}},
                         in_year("x", ks, by=2026))
    ds = run(data)
    rng = np.random.default_rng(20240611)
    m = 1_000_000
    log_x = np.log(x0) + np.cumsum(np.log1p(g) + vol * rng.standard_normal((m, 2)), axis=1)
    change = np.exp(log_x[:, 1]) - np.exp(log_x[:, 0])
    for j, k in enumerate(ks):
        expected = float((change >= k).mean())
        tol = mc_tolerance(expected, N) + mc_tolerance(expected, m)
        assert abs(prob(ds, f"k{j}") - expected) < tol, (k, prob(ds, f"k{j}"), expected)


def test_scheduled_with_delivery_one_is_exact():
    data = scenario_dict({"s": {"start": {"value": 4, "assumption": "t"},
                                "process": {"kind": "scheduled", "schedule": {2025: 3, 2026: 5, 2027: 2},
                                            "delivery": 1.0}}},
                         [{"id": "ge2", "indicator": "s", "kind": "in_year", "threshold": 2, "by": 2027},
                          {"id": "gt2", "indicator": "s", "kind": "in_year", "threshold": 2, "by": 2027,
                           "comparator": ">"},
                          {"id": "ge3", "indicator": "s", "kind": "in_year", "threshold": 3, "by": 2027},
                          {"id": "ge5_2026", "indicator": "s", "kind": "in_year", "threshold": 5, "by": 2026},
                          {"id": "le3_2025", "indicator": "s", "kind": "in_year", "threshold": 3, "by": 2025,
                           "comparator": "<="}])
    ds = run(data, paths=20_000)
    assert [prob(ds, t) for t in ("ge2", "gt2", "ge3", "ge5_2026", "le3_2025")] == [1.0, 0.0, 0.0, 1.0, 1.0]


TEXT = """\
name: t
base_year: 2024
horizon: 2027
indicators:
  c:
    start: {value: 0, assumption: t}
    process: {kind: count, additions: {distribution: poisson, mean: 2}}
  s:
    start: {value: 0.3, assumption: t}
    process: {kind: logit_share, drift: 0.1, volatility: 0.2}
targets:
  - id: a
    indicator: c
    kind: in_year
    threshold: 2
    by: 2027
"""


def _line(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


def test_the_base_year_is_refused(tmp_path):
    err = edit_error(tmp_path, TEXT, "    by: 2027", "    by: 2024")
    assert_error_at(err, "targets[0].by", _line(TEXT, "    by: 2027"), "must lie after base_year 2024")


def test_a_share_is_refused(tmp_path):
    err = edit_error(tmp_path, TEXT, "    indicator: c", "    indicator: s")
    assert_error_at(err, "targets[0].kind", _line(TEXT, "    kind: in_year"), "s is a logit_share")


def test_bit_identical_for_any_threads_and_blocks():
    data = scenario_dict({"c": count(0, "negative_binomial", 10.0, 4.0),
                          "x": {"start": {"value": 100.0, "assumption": "t"},
                                "process": {"kind": "lognormal", "growth": 0.05, "volatility": 0.1}}},
                         in_year("c", [10]) + [{"id": "x", "indicator": "x", "kind": "in_year", "threshold": 4.0,
                                                "by": 2027}])
    assert_same_for_any_threads_and_blocks(make_scenario(data))


def test_the_table_writes_it():
    assert TARGET_SPECS["in_year"].render(">=", 100, "count") == ">= 100 count in the year"
