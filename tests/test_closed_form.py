"""Engine probabilities against closed forms for the log-normal process.

Under ``lognormal`` with growth sd 0: ln X(n) ~ N(ln X0 + n ln(1+m), n·vol²). With growth
sd > 0, ln(1+g) is not normal, so the answer is a one-dimensional integral over g (quadrature).
Tolerances are 4.5 Monte Carlo standard errors; seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import targetsim
from tests.conftest import lognormal, make_scenario, mc_tolerance, scenario_dict

N = 200_000


def p_log_above(mu: float, sigma: float, log_threshold: float) -> float:
    return float(stats.norm.sf((log_threshold - mu) / sigma))


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def test_level_target_matches_closed_form():
    x0, m, vol, n, thr = 100.0, 0.08, 0.12, 3, 130.0
    ds = run(scenario_dict({"a": lognormal(x0, m, volatility=vol)},
                           [{"id": "t", "indicator": "a", "kind": "level", "threshold": thr, "by": 2027}]))
    expected = p_log_above(math.log(x0) + n * math.log1p(m), vol * math.sqrt(n), math.log(thr))
    p = float(ds.attainment_probability.sel(target="t"))
    assert abs(p - expected) < mc_tolerance(expected, N)
    # the reported standard error is the binomial one and the interval brackets the estimate
    se = float(ds.attainment_probability_standard_error.sel(target="t"))
    assert se == pytest.approx(math.sqrt(p * (1 - p) / N), rel=1e-12)
    assert ds.attainment_probability_lower.sel(target="t") < p < ds.attainment_probability_upper.sel(target="t")


def test_cagr_target_matches_closed_form_and_is_independent_of_start():
    m, vol, n, g_star = 0.10, 0.15, 3, 0.12
    targets = [{"id": "t", "indicator": "a", "kind": "cagr", "threshold": g_star, "by": 2027}]
    expected = p_log_above(n * math.log1p(m), vol * math.sqrt(n), n * math.log1p(g_star))
    for x0 in (1.0, 5000.0):
        p = float(run(scenario_dict({"a": lognormal(x0, m, volatility=vol)}, targets))
                  .attainment_probability.sel(target="t"))
        assert abs(p - expected) < mc_tolerance(expected, N)


@pytest.mark.parametrize("kind", ["level", "cagr"])
def test_growth_uncertainty_matches_quadrature(kind):
    x0, m, sd, vol, n = 100.0, 0.09, 0.05, 0.08, 3
    thr = 125.0 if kind == "level" else 0.02
    log_thr = math.log(thr) - math.log(x0) if kind == "level" else n * math.log1p(thr)
    ds = run(scenario_dict({"a": lognormal(x0, m, sd=sd, volatility=vol)},
                           [{"id": "t", "indicator": "a", "kind": kind, "threshold": thr, "by": 2027}]))

    def integrand(g):
        return stats.norm.pdf(g, m, sd) * stats.norm.sf((log_thr - n * math.log1p(g)) / (vol * math.sqrt(n)))

    expected, _ = integrate.quad(integrand, m - 10 * sd, m + 10 * sd, epsabs=1e-12)
    # the answer differs from the fixed-growth one by far more than the tolerance
    fixed = p_log_above(n * math.log1p(m), vol * math.sqrt(n), log_thr)
    assert abs(expected - fixed) > 5 * mc_tolerance(expected, N)
    p = float(ds.attainment_probability.sel(target="t"))
    assert abs(p - expected) < mc_tolerance(expected, N)


@pytest.mark.parametrize("kind,thr", [("level", 120.0), ("cagr", 0.06)])
def test_comparator_le_is_the_complement(kind, thr):
    x0, m, vol, n = 100.0, 0.07, 0.1, 2
    ind = {"a": lognormal(x0, m, volatility=vol)}
    ds = run(scenario_dict(ind, [
        {"id": "ge", "indicator": "a", "kind": kind, "threshold": thr, "by": 2026},
        {"id": "le", "indicator": "a", "kind": kind, "threshold": thr, "by": 2026, "comparator": "<="},
    ]))
    log_thr = math.log(thr / x0) if kind == "level" else n * math.log1p(thr)
    expected_le = 1 - p_log_above(n * math.log1p(m), vol * math.sqrt(n), log_thr)
    p_le = float(ds.attainment_probability.sel(target="le"))
    p_ge = float(ds.attainment_probability.sel(target="ge"))
    assert abs(p_le - expected_le) < mc_tolerance(expected_le, N)
    assert p_le + p_ge == pytest.approx(1.0, abs=1e-12)  # ties have probability zero


def test_joint_probability_matches_bivariate_normal():
    rho, n = 0.6, 3
    a = lognormal(100.0, 0.10, volatility=0.10)
    b = lognormal(50.0, 0.05, volatility=0.20)
    ds = run(scenario_dict({"a": a, "b": b}, [
        {"id": "ta", "indicator": "a", "kind": "level", "threshold": 135.0, "by": 2027},
        {"id": "tb", "indicator": "b", "kind": "cagr", "threshold": 0.03, "by": 2027},
    ], correlations=[["a", "b", rho]]))
    za = (math.log(135.0 / 100.0) - n * math.log1p(0.10)) / (0.10 * math.sqrt(n))
    zb = (n * math.log1p(0.03) - n * math.log1p(0.05)) / (0.20 * math.sqrt(n))
    # P(Za > za, Zb > zb) = P(-Za < -za, -Zb < -zb), and (-Za, -Zb) has the same correlation
    expected = float(stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([-za, -zb]))
    independent = float(stats.norm.sf(za) * stats.norm.sf(zb))
    assert abs(expected - independent) > 5 * mc_tolerance(expected, N)
    joint = float(ds.joint_attainment_probability)
    assert abs(joint - expected) < mc_tolerance(expected, N)
    assert ds.joint_attainment_probability_lower <= joint <= ds.joint_attainment_probability_upper
    # at least k: k=0 is certain, k=2 is the joint probability
    at_least = ds.at_least_k_attainment_probability.values
    assert at_least[0] == 1.0 and at_least[2] == pytest.approx(joint, abs=0)


def test_attainment_by_year_matches_closed_form_each_year():
    x0, m, vol = 100.0, 0.10, 0.1
    ds = run(scenario_dict({"a": lognormal(x0, m, volatility=vol)}, [
        {"id": "lvl", "indicator": "a", "kind": "level", "threshold": 115.0, "by": 2027},
        {"id": "g", "indicator": "a", "kind": "cagr", "threshold": 0.08, "by": 2027},
    ]))
    by_year = ds.attainment_by_year
    assert float(by_year.sel(target="lvl", year=2024)) == 0.0  # 100 < 115 for certain
    assert math.isnan(float(by_year.sel(target="g", year=2024)))
    for n, year in enumerate(range(2025, 2028), start=1):
        mu, sigma = n * math.log1p(m), vol * math.sqrt(n)
        for tid, log_thr in (("lvl", math.log(1.15)), ("g", n * math.log1p(0.08))):
            expected = p_log_above(mu, sigma, log_thr)
            assert abs(float(by_year.sel(target=tid, year=year)) - expected) < mc_tolerance(expected, N)
    # the target year's column is the attainment probability itself
    assert float(by_year.sel(target="g", year=2027)) == float(ds.attainment_probability.sel(target="g"))


def test_quantiles_mean_and_growth_match_closed_form():
    x0, m, vol, n = 200.0, 0.12, 0.15, 3
    ds = run(scenario_dict({"a": lognormal(x0, m, volatility=vol)},
                           [{"id": "t", "indicator": "a", "kind": "level", "threshold": 300.0, "by": 2027}]))
    bound = ds.indicator_quantiles.attrs["relative_error_bound"]
    assert 0 < bound < 0.01
    mu, sigma = math.log(x0) + n * math.log1p(m), vol * math.sqrt(n)
    for q in ds["quantile"].values:
        z = stats.norm.ppf(q)
        # s.e. of a sample quantile of ln X: sqrt(q(1-q)/N) / density, in log units
        se_log = math.sqrt(q * (1 - q) / N) / stats.norm.pdf(z) * sigma
        got = float(ds.indicator_quantiles.sel(indicator="a", year=2027, quantile=q))
        assert abs(math.log(got) - (mu + sigma * z)) < 4.5 * se_log + math.log1p(bound)
    # the base year is the start value, exactly
    np.testing.assert_allclose(ds.indicator_quantiles.sel(indicator="a", year=2024).values, x0, rtol=1e-14)
    mean = math.exp(mu + sigma**2 / 2)
    sd = mean * math.sqrt(math.expm1(sigma**2))
    assert abs(float(ds.indicator_mean.sel(indicator="a", year=2027)) - mean) < 4.5 * sd / math.sqrt(N)
    # required growth is exact; the simulated (median) growth is m within its error
    assert float(ds.required_growth.sel(target="t")) == pytest.approx((300 / 200) ** (1 / 3) - 1, rel=1e-12)
    se_growth = 4.5 * math.sqrt(0.25 / N) / stats.norm.pdf(0) * vol / math.sqrt(n) + bound
    assert abs(float(ds.baseline_growth.sel(target="t")) - m) < se_growth * (1 + m)


def test_same_seed_same_numbers_other_seed_other_numbers():
    data = scenario_dict({"a": lognormal(100.0, 0.1, sd=0.02)},
                         [{"id": "t", "indicator": "a", "kind": "cagr", "threshold": 0.1, "by": 2026}])
    a = run(data, paths=5000)
    b = run(data, paths=5000)
    c = run(data, paths=5000, seed=8)
    assert a.attainment_probability.equals(b.attainment_probability)
    assert a.indicator_mean.equals(b.indicator_mean)
    assert not a.indicator_mean.equals(c.indicator_mean)
