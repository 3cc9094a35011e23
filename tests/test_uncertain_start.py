"""Uncertain starts, ``start: {low, high[, law]}`` and ``start: {mean, sd}``: each path draws its own start
once, and everything follows from it (the base year, the hidden state, every later year, the targets,
the quantile sketch and the dataset). Checked against closed forms (log-normal, logit-normal, uniform and
normal laws), a cagr target's independence of the start, the parser's refusals, reproducibility across
threads and blocks, and the dataset's record of the law. Fixed seeds; tolerances are 4.5 Monte Carlo
standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit, logit

import targetsim
from targetsim.errors import ScenarioError
from tests.conftest import (
    assert_same_for_any_threads_and_blocks, load_edited, make_scenario, mc_tolerance, scenario_dict,
)

N = 200_000
K = 4.5  # standard errors
Z95 = stats.norm.ppf(0.95)


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


def base_year_prob(ds, target: str) -> float:
    """The rule evaluated in the base year (``attainment_by_year`` at its first year)."""
    return float(ds.attainment_by_year.sel(target=target).isel(year=0))


def level_targets(ind: str, thresholds, by: int, prefix: str = "c") -> list[dict]:
    return [{"id": f"{prefix}{j}", "indicator": ind, "kind": "level", "threshold": c, "by": by}
            for j, c in enumerate(thresholds)]


# ------------------------------------------------------------------ (1) log-normal start, log-normal level

def test_a_lognormal_level_from_a_lognormal_start():
    """ln X_H ~ Normal((ln low + ln high)/2 + H·ln(1+g), ((ln high − ln low)/(2·1.6449))² + s²H)."""
    low, high, g, s, years = 1.75, 7.05, 0.05, 0.1, 3
    mean = 0.5 * (math.log(low) + math.log(high)) + years * math.log1p(g)
    sd = math.sqrt(((math.log(high) - math.log(low)) / (2 * Z95)) ** 2 + s * s * years)
    thresholds = [1.5, 3.0, 4.05, 6.0, 12.0]
    data = scenario_dict({"x": {"start": {"low": low, "high": high, "source": "plan table"},
                                "process": {"kind": "lognormal", "growth": g, "volatility": s}}},
                         level_targets("x", thresholds, 2024 + years), horizon=2024 + years, seed=31)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.norm.sf((math.log(c) - mean) / sd))
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, prob(ds, f"c{j}"), exact)
    # the quantile sketch covers the start's spread: the base year's quantiles are the start law's
    q = ds.indicator_quantiles.sel(indicator="x").isel(year=0)
    centre, sd0 = 0.5 * (math.log(low) + math.log(high)), (math.log(high) - math.log(low)) / (2 * Z95)
    for quantile in (0.05, 0.5, 0.95):
        exact = math.exp(centre + sd0 * stats.norm.ppf(quantile))
        assert float(q.sel(quantile=quantile)) == pytest.approx(exact, rel=0.02), quantile


# ------------------------------------------------------------------ (2) a level in the base year

def test_a_level_in_the_base_year_is_the_start_laws_tail():
    """P(X0 ≥ c) is the start law's tail: in the base year, and a year later with no growth and no shock."""
    low, high = 1.75, 7.05
    centre, sd0 = 0.5 * (math.log(low) + math.log(high)), (math.log(high) - math.log(low)) / (2 * Z95)
    thresholds = [1.75, 2.5, 3.5, 5.0, 7.05]
    data = scenario_dict({"x": {"start": {"low": low, "high": high, "assumption": "a range"},
                                "process": {"kind": "lognormal", "growth": 0.0, "volatility": 0.0}}},
                         level_targets("x", thresholds, 2025), horizon=2025, seed=4)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.norm.sf((math.log(c) - centre) / sd0))
        for got in (prob(ds, f"c{j}"), base_year_prob(ds, f"c{j}")):
            assert abs(got - exact) < mc_tolerance(exact, N, K), (j, got, exact)
        assert prob(ds, f"c{j}") == base_year_prob(ds, f"c{j}")  # the same paths: the same count
    # the two ends are the 5 % and 95 % quantiles
    assert abs(prob(ds, "c0") - 0.95) < mc_tolerance(0.95, N, K)
    assert abs(prob(ds, "c4") - 0.05) < mc_tolerance(0.05, N, K)


# ------------------------------------------------------------------ (3) cagr is relative to each path's start

def test_a_cagr_target_does_not_depend_on_the_starts_uncertainty():
    g, s, years = 0.06, 0.08, 4
    thresholds = [0.0, 0.04, 0.06, 0.1]
    targets = [{"id": f"g{j}", "indicator": "x", "kind": "cagr", "threshold": c, "by": 2024 + years}
               for j, c in enumerate(thresholds)]
    process = {"kind": "lognormal", "growth": g, "volatility": s}
    results = {}
    for name, start in (("known", {"value": 3.5, "assumption": "t"}),
                        ("range", {"low": 1.75, "high": 7.05, "assumption": "t"}),
                        ("normal", {"mean": 3.5, "sd": 0.5, "assumption": "t"})):
        data = scenario_dict({"x": {"start": start, "process": process}}, targets, horizon=2024 + years, seed=9)
        results[name] = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.norm.sf((years * math.log1p(c) - years * math.log1p(g)) / (s * math.sqrt(years))))
        for name, ds in results.items():
            assert abs(prob(ds, f"g{j}") - exact) < mc_tolerance(exact, N, K), (name, j, prob(ds, f"g{j}"), exact)


# ------------------------------------------------------------------ (4) uniform and normal starts

def test_a_uniform_start_in_the_base_year():
    low, high = 2.0, 6.0
    thresholds = [2.5, 3.0, 4.0, 5.5]
    data = scenario_dict({"x": {"start": {"low": low, "high": high, "law": "uniform", "assumption": "t"},
                                "process": {"kind": "lognormal", "growth": 0.0, "volatility": 0.0}}},
                         level_targets("x", thresholds, 2025), horizon=2025, seed=12)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = (high - c) / (high - low)
        assert abs(base_year_prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, exact)
    assert float(ds.indicator_start.sel(indicator="x")) == 4.0  # the median of the law
    assert float(ds.indicator_mean.sel(indicator="x").isel(year=0)) == pytest.approx(4.0, abs=K * 4 / math.sqrt(12 * N))


def test_a_normal_start_in_the_base_year_and_after():
    mean0, sd0, g, s, years = 3.5, 0.4, 0.03, 0.05, 2
    thresholds = [3.0, 3.5, 4.2]
    targets = level_targets("x", thresholds, 2024 + years)
    data = scenario_dict({"x": {"start": {"mean": mean0, "sd": sd0, "source": "survey"},
                                "process": {"kind": "ar1_growth", "long_run_growth": g, "persistence": 0.0,
                                            "volatility": s, "initial_growth": g}}},
                         targets, horizon=2024 + years, seed=14)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.norm.sf((c - mean0) / sd0))
        assert abs(base_year_prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, exact)
    # later: ln X_H = ln X0 + H·ln(1+g) + s·sqrt(H)·Z, X0 normal (one-dimensional quadrature)
    for j, c in enumerate(thresholds):
        def tail(z, c=c):
            x0 = mean0 + sd0 * z
            return stats.norm.pdf(z) * stats.norm.sf((math.log(c) - math.log(x0) - years * math.log1p(g))
                                                     / (s * math.sqrt(years)))
        exact = integrate.quad(tail, -6.0, 6.0, epsabs=1e-12)[0]
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, prob(ds, f"c{j}"), exact)


# ------------------------------------------------------------------ (5) a share: logit-normal

@pytest.mark.parametrize("kind", ["logit_share", "logistic"])
def test_a_share_from_a_logit_normal_start(kind):
    """logit of the share at H ~ Normal((logit low + logit high)/2 + H·drift, sd0² + vol²·H)."""
    low, high, drift, vol, years = 0.15, 0.45, 0.1, 0.2, 3
    ceiling = 1.0 if kind == "logit_share" else 250.0
    lo_l, hi_l = logit(low), logit(high)
    mean = 0.5 * (lo_l + hi_l) + years * drift
    sd = math.sqrt(((hi_l - lo_l) / (2 * Z95)) ** 2 + vol * vol * years)
    shares = [0.2, 0.35, 0.5, 0.7]
    process = {"kind": kind, "drift": drift, "volatility": vol}
    if kind == "logistic":
        process["ceiling"] = ceiling
    targets = [{"id": f"c{j}", "indicator": "s", "kind": "share" if kind == "logit_share" else "level",
                "threshold": c * ceiling, "by": 2024 + years} for j, c in enumerate(shares)]
    data = scenario_dict({"s": {"start": {"low": low * ceiling, "high": high * ceiling, "assumption": "t"},
                                "process": process}}, targets, horizon=2024 + years, seed=17)
    ds = run(data)
    for j, c in enumerate(shares):
        exact = float(stats.norm.sf((logit(c) - mean) / sd))
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, prob(ds, f"c{j}"), exact)
        base = float(stats.norm.sf((logit(c) - 0.5 * (lo_l + hi_l)) / ((hi_l - lo_l) / (2 * Z95))))
        assert abs(base_year_prob(ds, f"c{j}") - base) < mc_tolerance(base, N, K), (j, base)
    # the median start: the logit-normal's, expit of the mid-point
    assert float(ds.indicator_start.sel(indicator="s")) == pytest.approx(ceiling * expit(0.5 * (lo_l + hi_l)))


# ------------------------------------------------------------------ (6) the parser's refusals

SCENARIO = """\
name: uncertain starts
base_year: 2024
horizon: 2027
paths: 1000
indicators:
  x:
    start: {low: 1.75, high: 7.05, source: "plan table"}
    process: {kind: lognormal, growth: 0.05, volatility: 0.1}
  s:
    start: {low: 0.2, high: 0.4, assumption: "survey range"}
    process: {kind: logit_share, drift: 0.1, volatility: 0.2}
  c:
    start: {value: 3, assumption: "a count"}
    process: {kind: count, additions: {distribution: poisson, mean: 2}}
  r:
    process: {kind: ratio, numerator: x, denominator: s}
targets:
  - {id: t, indicator: x, kind: level, threshold: 5, by: 2027}
"""


def _load(tmp_path, old: str = "", new: str = ""):
    return load_edited(tmp_path, SCENARIO, old, new)


def test_the_scenario_loads_with_its_laws(tmp_path):
    scenario = _load(tmp_path)
    x, s, c = (scenario.indicator_by_id[k].start for k in "xsc")
    assert (x.law, x.low, x.high, x.source) == ("lognormal", 1.75, 7.05, "plan table")
    assert x.value == pytest.approx(math.sqrt(1.75 * 7.05))
    assert s.law == "lognormal" and s.value == pytest.approx(expit(0.5 * (logit(0.2) + logit(0.4))))
    assert c.law == "known" and not c.uncertain and c.value == 3
    assert x.is_assumption is False and s.is_assumption is True


X_START, S_START, C_START = "indicators.x.start", "indicators.s.start", "indicators.c.start"
PARSER_CASES = [
    # (replace this, with this, key path, line, words)
    ("{low: 1.75, high: 7.05,", "{low: 7.05, high: 1.75,", X_START + ".high", 7, "high (1.75) must exceed low (7.05)"),
    ("{low: 1.75, high: 7.05,", "{low: 1.75, high: 1.75,", X_START + ".high", 7, "must exceed low"),
    ("{low: 1.75,", "{low: 0,", X_START + ".low", 7, "needs a positive start value, got 0"),
    ("{low: 1.75,", "{low: -2,", X_START + ".low", 7, "needs a positive start value, got -2"),
    ("{low: 0.2, high: 0.4,", "{low: 0.2, high: 1.4,", S_START + ".high", 10, "strictly between 0 and 1"),
    ("{low: 0.2, high: 0.4,", "{low: 0, high: 0.4,", S_START + ".low", 10, "strictly between 0 and 1"),
    ("{low: 1.75, high: 7.05,", "{low: 1.75, high: 7.05, law: gamma,", X_START + ".law", 7,
     "unknown start law 'gamma' (known: lognormal, uniform)"),
    ("{value: 3, assumption", "{mean: 3, sd: 1, assumption", C_START + ".mean", 13,
     "a count starts at a whole number: give its uncertain start as a range {low, high}"),
    ("{low: 1.75, high: 7.05,", "{value: 3, low: 1.75, high: 7.05,", X_START + ".value", 7, "not both"),
    ("{low: 1.75, high: 7.05,", "{low: 1.75, mean: 3,", X_START + ".mean", 7, "not both"),
    ("{low: 0.2, high: 0.4,", "{mean: 0.3, sd: 0.1,", S_START + ".sd", 10, "outside the valid values"),
    ("{low: 1.75, high: 7.05,", "{mean: 3, sd: -1,", X_START + ".sd", 7, "must be greater than 0"),
    ("{low: 1.75, high: 7.05,", "{high: 7.05,", X_START, 7, "missing required key 'low'"),
    ('{low: 1.75, high: 7.05, source: "plan table"}', "{low: 1.75, high: 7.05}", X_START, 7,
     "needs a 'source' or an 'assumption'"),
]


@pytest.mark.parametrize("old, new, key, line, words", PARSER_CASES, ids=[c[2] + ":" + c[4] for c in PARSER_CASES])
def test_the_parser_names_file_key_and_line(tmp_path, old, new, key, line, words):
    with pytest.raises(ScenarioError) as info:
        _load(tmp_path, old, new)
    err = info.value
    assert str(tmp_path / "scenario.yaml") in str(err)
    assert err.location.key == key and err.location.line == line, (err.location, str(err))
    assert words in err.reason, err.reason


def test_the_envelope_uses_the_starts_extreme_value(tmp_path):
    """A range whose top would overflow is refused, where its median alone passes."""
    from targetsim.model.numeric import numeric_range_problem

    def scenario(start):
        data = scenario_dict({"x": {"start": start, "process": {"kind": "lognormal", "growth": 0.0,
                                                                  "volatility": 0.1}}},
                             level_targets("x", [1.0], 2025), horizon=2025)
        return make_scenario(data)

    assert numeric_range_problem(scenario({"value": 1e100, "assumption": "t"})) is None
    problem = numeric_range_problem(scenario({"low": 1e-100, "high": 1e300, "assumption": "t"}))
    assert problem is not None and problem[0] == "x" and "beyond 1e250" in problem[1]


# ------------------------------------------------------------------ (7) reproducibility

def test_bit_identical_for_any_threads_and_blocks():
    inds = {
        "a": {"start": {"low": 80.0, "high": 125.0, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": 0.1}},
        "s": {"start": {"mean": 0.3, "sd": 0.03, "assumption": "t"},
              "process": {"kind": "logit_share", "drift": 0.1, "volatility": 0.2}},
        "u": {"start": {"low": 10.0, "high": 20.0, "law": "uniform", "assumption": "t"},
              "process": {"kind": "buildout", "organic": {"growth": 0.02, "volatility": 0.05},
                          "projects": [{"size": 5.0, "probability": 0.5, "earliest": 2025, "latest": 2027}]}},
        "k": {"start": {"value": 20.0, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": 0.02, "volatility": 0.05}},
        "r": {"process": {"kind": "ratio", "numerator": "a", "denominator": "k"}},
    }
    targets = [{"id": "a", "indicator": "a", "kind": "level", "threshold": 110.0, "by": 2027},
               {"id": "s", "indicator": "s", "kind": "share", "threshold": 0.35, "by": 2026},
               {"id": "u", "indicator": "u", "kind": "first_passage", "threshold": 19.0, "by": 2027},
               {"id": "r", "indicator": "r", "kind": "cagr", "threshold": 0.02, "by": 2027}]
    data = scenario_dict(inds, targets, correlations=[["a", "s", 0.4]], seed=5)
    assert_same_for_any_threads_and_blocks(make_scenario(data), paths=20_000)
    data["observations"] = {"a": {2025: 104.0}}
    assert_same_for_any_threads_and_blocks(make_scenario(data), paths=20_000)


# ------------------------------------------------------------------ (8) the dataset

def test_the_dataset_records_the_law_and_round_trips(tmp_path):
    inds = {
        "a": {"start": {"low": 1.75, "high": 7.05, "source": "plan table"},
              "process": {"kind": "lognormal", "growth": 0.05, "volatility": 0.1}},
        "u": {"start": {"low": 2.0, "high": 6.0, "law": "uniform", "assumption": "t"},
              "process": {"kind": "lognormal", "growth": 0.05, "volatility": 0.1}},
        "n": {"start": {"mean": 3.5, "sd": 0.4, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": 0.05, "volatility": 0.1}},
        "k": {"start": {"value": 3.5, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": 0.05, "volatility": 0.1}},
        "r": {"process": {"kind": "ratio", "numerator": "a", "denominator": "k"}},
    }
    targets = [{"id": "a", "indicator": "a", "kind": "level", "threshold": 5.0, "by": 2027},
               {"id": "r", "indicator": "r", "kind": "level", "threshold": 1.5, "by": 2027}]
    ds = run(scenario_dict(inds, targets, seed=3), paths=50_000)
    law = ds.indicator_start_law.values.tolist()
    assert law == ["lognormal", "uniform", "normal", "known", "derived"]
    low, high = ds.indicator_start_low.values, ds.indicator_start_high.values
    np.testing.assert_allclose(low[:3], [1.75, 2.0, 3.5 - Z95 * 0.4])
    np.testing.assert_allclose(high[:3], [7.05, 6.0, 3.5 + Z95 * 0.4])
    assert np.isnan(low[3:]).all() and np.isnan(high[3:]).all()
    start = ds.indicator_start.values
    np.testing.assert_allclose(start[:4], [math.sqrt(1.75 * 7.05), 4.0, 3.5, 3.5])
    assert start[4] == pytest.approx(math.sqrt(1.75 * 7.05) / 3.5, rel=0.01)  # the simulated median
    # required growth: from the median start
    need = float(ds.required_growth.sel(target="a"))
    assert need == pytest.approx((5.0 / math.sqrt(1.75 * 7.05)) ** (1 / 3) - 1)
    path = tmp_path / "out.nc"
    targetsim.write_dataset(ds, path)
    back = targetsim.read_dataset(path)
    back = back.isel(scenario=0) if "scenario" in back.dims else back
    assert back.indicator_start_law.values.tolist() == law
    np.testing.assert_array_equal(back.indicator_start_low.values, low)
    np.testing.assert_array_equal(back.indicator_start_high.values, high)
    np.testing.assert_array_equal(back.indicator_start.values, start)


# ------------------------------------------------------------------ against an independent simulation

def test_every_law_and_kind_against_the_reference_model():
    """tests.reference_model (NumPy's generator, none of the engine's code) draws the same laws."""
    from tests.conftest import every_start_form
    from tests.reference_model import simulate as reference

    inds = every_start_form()
    targets = [{"id": "a", "indicator": "a", "kind": "level", "threshold": 110.0, "by": 2027},
               {"id": "b", "indicator": "b", "kind": "cagr", "threshold": 0.05, "by": 2027},
               {"id": "s", "indicator": "s", "kind": "share", "threshold": 0.35, "by": 2026, "comparator": "<="},
               {"id": "l", "indicator": "l", "kind": "first_passage", "threshold": 280.0, "by": 2027},
               {"id": "o", "indicator": "o", "kind": "level", "threshold": 17.0, "by": 2027},
               {"id": "r", "indicator": "r", "kind": "level", "threshold": 2.2, "by": 2027}]
    data = scenario_dict(inds, targets, correlations=[["a", "b", 0.6]], seed=19)
    ds = run(data)
    n_ref = 400_000
    ref = reference(data, n_ref, seed=77)
    for t in targets:
        got, expected = prob(ds, t["id"]), ref.probability[t["id"]]
        pooled = (got * N + expected * n_ref) / (N + n_ref)
        tol = K * math.sqrt(max(pooled * (1 - pooled), 1.0 / (N + n_ref)) * (1 / N + 1 / n_ref))
        assert abs(got - expected) < tol, (t["id"], got, expected)
