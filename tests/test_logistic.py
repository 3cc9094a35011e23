"""The logistic process (the worked example of adding a kind, see CONTRIBUTING.md) against its
closed forms: ``X = ceiling / (1 + e^-h)`` with ``h`` a Gaussian random walk, so every quantity of
``X`` is a monotone function of a normal variable."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit

import targetsim
from targetsim.errors import ScenarioError
from tests.conftest import make_scenario, mc_tolerance, scenario_dict

N = 200_000


def logistic(start, ceiling, drift, vol, sd=0.0):
    return {"start": {"value": start, "assumption": "test value"},
            "process": {"kind": "logistic", "ceiling": ceiling, "drift": {"mean": drift, "sd": sd}, "volatility": vol}}


def test_level_quantiles_and_growth_match_the_closed_form():
    ceiling, start, drift, sd, vol, years = 100.0, 20.0, 0.3, 0.1, 0.2, 3
    data = scenario_dict({"x": logistic(start, ceiling, drift, vol, sd)}, [
        {"id": "lvl", "indicator": "x", "kind": "level", "threshold": 40.0, "by": 2027},
        {"id": "cagr", "indicator": "x", "kind": "cagr", "threshold": 0.25, "by": 2027}])
    ds = targetsim.run(make_scenario(data), paths=N).isel(scenario=0)
    # h(3) ~ N(logit(0.2) + 3·0.3, 3·0.2² + 9·0.1²)
    mu = math.log(start / (ceiling - start)) + years * drift
    sigma = math.sqrt(years * vol**2 + years**2 * sd**2)
    p_level = float(stats.norm.sf((logit(0.4) - mu) / sigma))
    p_cagr = float(stats.norm.sf((logit(start * 1.25**3 / ceiling) - mu) / sigma))
    for tid, exact in (("lvl", p_level), ("cagr", p_cagr)):
        got = float(ds.attainment_probability.sel(target=tid))
        assert abs(got - exact) < mc_tolerance(exact, N), (tid, got, exact)
    q = ds.indicator_quantiles.sel(indicator="x", year=2027)
    bound = ds.indicator_quantiles.attrs["relative_error_bound"]
    for level in (0.1, 0.5, 0.9):
        exact = ceiling * expit(mu + sigma * stats.norm.ppf(level))
        # the sample quantile is within ~3 s.e. of the true one at these path counts, the sketch within its bound
        density = stats.norm.pdf(stats.norm.ppf(level)) / sigma / (exact / ceiling * (1 - exact / ceiling) * ceiling)
        slack = 4.5 * math.sqrt(level * (1 - level) / N) / density
        assert abs(float(q.sel(quantile=level)) - exact) <= exact * bound + slack, level
    assert float(ds.indicator_start.sel(indicator="x")) == start
    assert "logistic: ceiling 100" in str(ds.indicator_process.sel(indicator="x").values)


def test_it_never_reaches_its_ceiling():
    data = scenario_dict({"x": logistic(50.0, 80.0, 10.0, 0.0)},  # logit +30 in 3 years: rounds to 1
                         [{"id": "t", "indicator": "x", "kind": "level", "threshold": 79.999, "by": 2027}])
    ds = targetsim.run(make_scenario(data), paths=1000).isel(scenario=0)
    q = ds.indicator_quantiles.sel(indicator="x").values
    assert np.all(q < 80.0) and np.all(q > 0.0)
    assert float(ds.attainment_probability.sel(target="t")) == 1.0


def test_an_observation_conditions_it():
    # observed at 30 in 2025: 2026 ≥ 36 needs h(2026) − h(2025) ≥ logit(0.36) − logit(0.30)
    data = scenario_dict({"x": logistic(20.0, 100.0, 0.2, 0.15)},
                         [{"id": "t", "indicator": "x", "kind": "level", "threshold": 36.0, "by": 2026}],
                         horizon=2026, observations={"x": {2025: 30.0}})
    ds = targetsim.run(make_scenario(data), paths=N).isel(scenario=0)
    exact = float(stats.norm.sf((logit(0.36) - logit(0.30) - 0.2) / 0.15))
    assert abs(float(ds.attainment_probability.sel(target="t")) - exact) < mc_tolerance(exact, N)


@pytest.mark.parametrize("field, value, message", [
    ("threshold", 100.0, r"targets\[0\]\.threshold: x is a logistic, which lies strictly between 0 and 100"),
    ("start", 120.0, r"indicators\.x\.start: a logistic indicator starts strictly between 0 and 100, got 120"),
    ("ceiling", 0.0, r"indicators\.x\.process\.ceiling: must be greater than 0"),
])
def test_values_outside_its_range_are_refused(field, value, message, tmp_path):
    import yaml

    inds = {"x": logistic(20.0, 100.0, 0.2, 0.1)}
    target = {"id": "t", "indicator": "x", "kind": "level", "threshold": 50.0, "by": 2027}
    if field == "threshold":
        target["threshold"] = value
    elif field == "start":
        inds["x"]["start"]["value"] = value
    else:
        inds["x"]["process"]["ceiling"] = value
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict(inds, [target]), sort_keys=False))
    with pytest.raises(ScenarioError, match=message):
        targetsim.load_scenario(path)
