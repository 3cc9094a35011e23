"""Each process, shock distribution and target kind against a closed form, quadrature or
enumeration. Fixed seeds; tolerances are 4.5 Monte Carlo standard errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

import targetsim
from tests.conftest import lognormal, make_scenario, mc_tolerance, scenario_dict

N = 200_000


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


def assert_close(got: float, expected: float, n: float = N, k: float = 4.5) -> None:
    assert abs(got - expected) < mc_tolerance(expected, int(n), k), (got, expected)


def assumed(value: float) -> dict:
    return {"value": value, "assumption": "test value"}


# ---------------------------------------------------------------- ar1_growth

def ar1_moments(m, phi, vol, r0, n):
    """Mean and s.d. of ln X(n) − ln X(0) under the AR(1) log-growth."""
    mean = n * m + (r0 - m) * phi * (1 - phi**n) / (1 - phi)
    var = vol**2 * sum(((1 - phi**j) / (1 - phi)) ** 2 for j in range(1, n + 1))
    return mean, math.sqrt(var)


def test_ar1_growth_sum_is_gaussian():
    g, phi, vol, g0, n = 0.08, 0.6, 0.05, 0.20, 3
    m, r0 = math.log1p(g), math.log1p(g0)
    proc = {"kind": "ar1_growth", "long_run_growth": g, "persistence": phi, "volatility": vol, "initial_growth": g0}
    ds = run(scenario_dict({"a": {"start": assumed(100.0), "process": proc}}, [
        {"id": "cagr", "indicator": "a", "kind": "cagr", "threshold": 0.12, "by": 2027},
        {"id": "each", "indicator": "a", "kind": "growth_each_year", "threshold": 0.10, "by": 2027},
    ]))
    mean, sd = ar1_moments(m, phi, vol, r0, n)
    expected = float(stats.norm.sf((n * math.log1p(0.12) - mean) / sd))
    # momentum matters: a random walk at the long-run rate gives a very different answer
    assert abs(expected - float(stats.norm.sf((n * math.log1p(0.12) - n * m) / (vol * math.sqrt(n))))) > 0.1
    assert_close(prob(ds, "cagr"), expected)
    # every year's growth: (r1, r2, r3) is Gaussian with an AR(1) covariance
    means = np.array([m + phi**t * (r0 - m) for t in range(1, n + 1)])
    cov = np.array([[vol**2 * sum(phi ** (a - s) * phi ** (b - s) for s in range(1, min(a, b) + 1))
                     for b in range(1, n + 1)] for a in range(1, n + 1)])
    c = math.log1p(0.10)
    expected_each = float(stats.multivariate_normal(mean=-means + c, cov=cov).cdf(np.zeros(n)))
    assert_close(prob(ds, "each"), expected_each)


def test_ar1_initial_growth_defaults_to_last_observed(tmp_path):
    (tmp_path / "b.csv").write_text("indicator,year,value,unit,source\na,2023,100,x,src\na,2024,125,x,src\n",
                                    encoding="utf-8")
    (tmp_path / "s.yaml").write_text(
        "name: t\nbase_year: 2024\nhorizon: 2026\nbaselines: b.csv\nindicators:\n  a:\n    start: baseline\n"
        "    process: {kind: ar1_growth, long_run_growth: 0.1, persistence: 0.5, volatility: 0.1}\n"
        "targets:\n  - {id: t, indicator: a, kind: cagr, threshold: 0.1, by: 2026}\n", encoding="utf-8")
    sc = targetsim.load_scenario(tmp_path / "s.yaml")
    assert sc.indicators[0].process.initial_growth == pytest.approx(0.25)


# ---------------------------------------------------------------- logit_share and '~'

def test_logit_share_and_about_comparator():
    s0, drift, vol, n = 0.40, 0.10, 0.15, 3
    proc = {"kind": "logit_share", "drift": drift, "volatility": vol}
    ds = run(scenario_dict({"s": {"start": assumed(s0), "process": proc}}, [
        {"id": "share", "indicator": "s", "kind": "share", "threshold": 0.47, "by": 2027},
        {"id": "about", "indicator": "s", "kind": "share", "threshold": 0.47, "by": 2027, "comparator": "~",
         "tolerance": 0.05},
    ]))
    mu, sd = math.log(s0 / (1 - s0)) + n * drift, vol * math.sqrt(n)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert_close(prob(ds, "share"), float(stats.norm.sf((logit(0.47) - mu) / sd)))
    lo, hi = 0.47 * 0.95, 0.47 * 1.05
    expected = float(stats.norm.cdf((logit(hi) - mu) / sd) - stats.norm.cdf((logit(lo) - mu) / sd))
    assert_close(prob(ds, "about"), expected)
    q = ds.indicator_quantiles.sel(indicator="s", year=2027)
    assert np.all((q.values > 0) & (q.values < 1))


def test_share_threshold_in_percent_is_rejected():
    data = scenario_dict({"s": {"start": assumed(0.4), "process": {"kind": "logit_share", "drift": 0.0, "volatility": 0.1}}},
                         [{"id": "t", "indicator": "s", "kind": "share", "threshold": 47, "by": 2027}])
    with pytest.raises(targetsim.ScenarioError, match="0.47 means 47"):
        make_scenario(data)


# ---------------------------------------------------------------- ratio and sum

def test_ratio_of_correlated_lognormals():
    n, rho = 3, 0.5
    a = lognormal(45.0, 0.10, volatility=0.10)
    b = lognormal(100.0, 0.06, volatility=0.08)
    ratio = {"label": "share", "process": {"kind": "ratio", "numerator": "a", "denominator": "b"}}
    ds = run(scenario_dict({"a": a, "b": b, "r": ratio}, [
        {"id": "t", "indicator": "r", "kind": "share", "threshold": 0.50, "by": 2027},
    ], correlations=[["a", "b", rho]]))
    mu = math.log(0.45) + n * (math.log1p(0.10) - math.log1p(0.06))
    sd = math.sqrt(n * (0.10**2 + 0.08**2 - 2 * rho * 0.10 * 0.08))
    assert_close(prob(ds, "t"), float(stats.norm.sf((math.log(0.5) - mu) / sd)))
    assert float(ds.indicator_start.sel(indicator="r")) == pytest.approx(0.45)
    assert "derived" in str(ds.indicator_start_source.sel(indicator="r").values)


def test_sum_with_no_noise_is_exact():
    a = lognormal(10.0, 0.10, volatility=0.0)
    b = lognormal(20.0, 0.0, volatility=0.0)
    total = {"process": {"kind": "sum", "terms": ["a", "b"]}}
    exact = 10 * 1.1**3 + 20  # 33.31
    ds = run(scenario_dict({"a": a, "b": b, "s": total}, [
        {"id": "above", "indicator": "s", "kind": "level", "threshold": exact + 1e-9, "by": 2027},
        {"id": "below", "indicator": "s", "kind": "level", "threshold": exact - 1e-9, "by": 2027}]), paths=1000)
    assert float(ds.indicator_mean.sel(indicator="s", year=2027)) == pytest.approx(exact, rel=1e-12)
    assert prob(ds, "above") == 0.0 and prob(ds, "below") == 1.0


def test_derived_cycle_is_an_error():
    data = scenario_dict({
        "a": lognormal(1.0, 0.1),
        "r": {"process": {"kind": "ratio", "numerator": "a", "denominator": "q"}},
        "q": {"process": {"kind": "sum", "terms": ["a", "r"]}},
    }, [{"id": "t", "indicator": "a", "kind": "level", "threshold": 1, "by": 2027}])
    with pytest.raises(targetsim.ScenarioError, match="cycle"):
        make_scenario(data)


# ---------------------------------------------------------------- count

def count(start: float, dist: str, mean: float, dispersion: float | None = None) -> dict:
    additions = {"distribution": dist, "mean": mean}
    if dispersion is not None:
        additions["dispersion"] = dispersion
    return {"start": assumed(start), "process": {"kind": "count", "additions": additions}}


def test_poisson_count_stock_per_year_and_cumulative():
    s0, mu, n = 8, 2.5, 3
    ds = run(scenario_dict({"parks": count(s0, "poisson", mu)}, [
        {"id": "stock", "indicator": "parks", "kind": "count_stock", "threshold": 15, "by": 2027},
        {"id": "yearly", "indicator": "parks", "kind": "count_per_year", "threshold": 2, "by": 2027},
        {"id": "new", "indicator": "parks", "kind": "cumulative", "threshold": 9, "by": 2027, "comparator": ">"},
    ]))
    assert_close(prob(ds, "stock"), float(stats.poisson.sf(15 - s0 - 1, n * mu)))
    assert_close(prob(ds, "yearly"), float(stats.poisson.sf(1, mu)) ** n)
    assert_close(prob(ds, "new"), float(stats.poisson.sf(9, n * mu)))
    # by year: the stock rule in 2025 is one year of additions
    assert_close(float(ds.attainment_by_year.sel(target="stock", year=2025)), float(stats.poisson.sf(15 - s0 - 1, mu)))
    # quantiles of a count are whole numbers; the median of S0 + Poisson(7.5) is exact
    assert float(ds.indicator_quantiles.sel(indicator="parks", year=2027, quantile=0.5)) == s0 + stats.poisson.median(n * mu)


def test_negative_binomial_count_stock():
    s0, mu, r, n = 0, 4.0, 1.5, 3
    ds = run(scenario_dict({"c": count(s0, "negative_binomial", mu, r)}, [
        {"id": "stock", "indicator": "c", "kind": "count_stock", "threshold": 15, "by": 2027}]))
    # a sum of n iid NB(r, p) is NB(n·r, p)
    expected = float(stats.nbinom.sf(15 - 1, n * r, r / (r + mu)))
    assert_close(prob(ds, "stock"), expected)
    q = ds.indicator_quantiles.sel(indicator="c", year=2027).values
    assert q[0] == stats.nbinom.ppf(0.05, n * r, r / (r + mu))


# ---------------------------------------------------------------- buildout

def test_buildout_enumerates_project_outcomes():
    base, g = 3.5, 0.10
    projects = [
        {"name": "A", "size": 4.0, "probability": 0.8, "earliest": 2025, "latest": 2027},
        {"name": "B", "size": 3.0, "probability": 0.5, "earliest": 2026, "latest": 2028},
        {"name": "C", "size": 1.5, "probability": 0.9, "earliest": 2025, "latest": 2025},
    ]
    proc = {"kind": "buildout", "organic": {"growth": g, "volatility": 0.0}, "projects": projects}
    ds = run(scenario_dict({"hpc": {"start": assumed(base), "process": proc}}, [
        {"id": "eflops", "indicator": "hpc", "kind": "level", "threshold": 12, "by": 2027, "comparator": ">"}]))
    organic = base * (1 + g) ** 3
    # P(done by 2027) per project, then enumerate the 2^3 outcomes
    done_by = [0.8 * 1.0, 0.5 * 2 / 3, 0.9]
    expected = 0.0
    for outcome in itertools.product([0, 1], repeat=3):
        p = math.prod(d if o else 1 - d for d, o in zip(done_by, outcome))
        size = sum(pj["size"] for pj, o in zip(projects, outcome) if o)
        expected += p * (organic + size > 12)
    assert_close(prob(ds, "eflops"), expected)


# ---------------------------------------------------------------- shocks and jumps

def test_student_t_shocks_match_scipy_simulation():
    dof, vol, n = 4.0, 0.15, 3
    data = scenario_dict({"a": lognormal(100.0, 0.0, volatility=vol)}, [
        {"id": "t", "indicator": "a", "kind": "level", "threshold": 100 * math.exp(0.3), "by": 2027}],
        shocks={"distribution": "student_t", "dof": dof})
    ds = run(data)
    rng = np.random.default_rng(12345)
    m = 2_000_000
    shocks = stats.t.rvs(dof, size=(m, n), random_state=rng) * math.sqrt((dof - 2) / dof)
    expected = float(np.mean(vol * shocks.sum(axis=1) >= 0.3))
    gaussian = float(stats.norm.sf(0.3 / (vol * math.sqrt(n))))
    assert abs(expected - gaussian) > 5 * mc_tolerance(expected, N)  # the fat tails matter here
    tol = 4.5 * math.sqrt(expected * (1 - expected) * (1 / N + 1 / m))
    assert abs(prob(ds, "t") - expected) < tol


def test_two_piece_shocks_match_their_cdf():
    skew, vol = 0.4, 0.2
    data = scenario_dict({"a": lognormal(1.0, 0.0, volatility=vol)}, [
        {"id": f"t{k}", "indicator": "a", "kind": "level", "threshold": math.exp(vol * x), "by": 2025}
        for k, x in enumerate([-1.0, 0.0, 1.5])], horizon=2025,
        shocks={"distribution": "two_piece", "skew": skew})
    ds = run(data)
    s1, s2 = 1 - skew, 1 + skew
    mean = math.sqrt(2 / math.pi) * (s2 - s1)
    sd = math.sqrt((1 - 2 / math.pi) * (s2 - s1) ** 2 + s1 * s2)

    def sf(x):  # P(standardised two-piece > x)
        y = x * sd + mean
        cdf = 2 * s1 / (s1 + s2) * stats.norm.cdf(y / s1) if y < 0 else \
            (s1 - s2) / (s1 + s2) + 2 * s2 / (s1 + s2) * stats.norm.cdf(y / s2)
        return 1 - cdf

    for k, x in enumerate([-1.0, 0.0, 1.5]):
        assert_close(prob(ds, f"t{k}"), sf(x))
    # the two sides differ: more mass above the mode's mirror image on the upside
    assert prob(ds, "t1") < 0.5


def test_jump_mixture():
    q, size, vol = 0.2, -0.3, 0.1
    data = scenario_dict({"a": lognormal(100.0, 0.05, volatility=vol)}, [
        {"id": "t", "indicator": "a", "kind": "level", "threshold": 100.0, "by": 2026}], horizon=2026,
        jumps=[{"name": "trade shock", "probability": q, "years": [2025], "effects": {"a": size}}])
    ds = run(data)
    mu, sd = 2 * math.log1p(0.05), vol * math.sqrt(2)
    expected = (1 - q) * stats.norm.sf(-mu / sd) + q * stats.norm.sf(-(mu + size) / sd)
    assert_close(prob(ds, "t"), float(expected))


# ---------------------------------------------------------------- first passage and pairs

def test_first_passage_is_a_maximum_over_years():
    vol, m, n = 0.1, 0.02, 3
    ds = run(scenario_dict({"a": lognormal(100.0, m, volatility=vol)}, [
        {"id": "fp", "indicator": "a", "kind": "first_passage", "threshold": 115.0, "by": 2027},
        {"id": "lvl", "indicator": "a", "kind": "level", "threshold": 115.0, "by": 2027}]))
    c = math.log(1.15)
    means = np.array([t * math.log1p(m) for t in range(1, n + 1)])
    cov = vol**2 * np.minimum.outer(np.arange(1, n + 1), np.arange(1, n + 1)).astype(float)
    below_all = float(stats.multivariate_normal(mean=means - c, cov=cov).cdf(np.zeros(n)))
    assert_close(prob(ds, "fp"), 1 - below_all)
    assert prob(ds, "fp") > prob(ds, "lvl")


def test_pairs_that_fail_together():
    rho = 0.8
    a, b, c = lognormal(1.0, 0.0, volatility=0.1), lognormal(1.0, 0.0, volatility=0.1), lognormal(1.0, 0.0, volatility=0.1)
    ds = run(scenario_dict({"a": a, "b": b, "c": c}, [
        {"id": k, "indicator": k, "kind": "level", "threshold": 1.0, "by": 2025} for k in "abc"],
        horizon=2025, correlations=[["a", "b", rho]]))
    both = float(ds.joint_failure_probability.sel(target="a", other_target="b"))
    expected = float(stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([0, 0]))
    assert_close(both, expected)
    assert float(ds.failure_dependence.sel(target="a", other_target="b")) > 1.5
    assert abs(float(ds.failure_dependence.sel(target="a", other_target="c")) - 1) < 0.05
    assert ds.joint_failure_probability.sel(target="b", other_target="a") == both


# ---------------------------------------------------------------- observations

def test_observation_updates_growth_like_the_posterior():
    x0, m, sd, vol, obs = 100.0, 0.10, 0.06, 0.05, 104.0
    data = scenario_dict({"a": lognormal(x0, m, sd=sd, volatility=vol)}, [
        {"id": "t", "indicator": "a", "kind": "level", "threshold": 118.0, "by": 2027}],
        observations={"a": {2025: obs}})
    ds = run(data)
    lo_g, hi_g = m - 10 * sd, m + 10 * sd

    def posterior(g):
        return stats.norm.pdf(g, m, sd) * stats.norm.pdf(math.log(obs / x0) - math.log1p(g), 0, vol)

    def met(g):
        return stats.norm.sf((math.log(118.0 / obs) - 2 * math.log1p(g)) / (vol * math.sqrt(2)))

    z, _ = integrate.quad(posterior, lo_g, hi_g, epsabs=1e-14, limit=200)
    num, _ = integrate.quad(lambda g: posterior(g) * met(g), lo_g, hi_g, epsabs=1e-14, limit=200)
    expected = num / z
    prior = float(stats.norm.sf((math.log(1.18) - 3 * math.log1p(m)) / math.sqrt(3 * vol**2 + 9 * (sd / 1.1) ** 2)))
    assert abs(expected - prior) > 0.1  # the observation (4 % growth against 10 % expected) moves the answer
    ess = float(ds.effective_sample_size)
    assert 0.05 * N < ess < N
    assert_close(prob(ds, "t"), expected, n=ess)
    # the observed year is pinned
    q = ds.indicator_quantiles.sel(indicator="a", year=2025).values
    np.testing.assert_allclose(q, obs, rtol=1e-12)


def test_count_observation_pins_the_stock():
    ds = run(scenario_dict({"c": count(8, "poisson", 2.0)}, [
        {"id": "t", "indicator": "c", "kind": "count_stock", "threshold": 15, "by": 2027}],
        observations={"c": {2025: 11}}))
    assert_close(prob(ds, "t"), float(stats.poisson.sf(15 - 11 - 1, 4.0)))


def test_impossible_observation_is_an_error():
    with pytest.raises(targetsim.TargetsimError, match="impossible"):
        run(scenario_dict({"c": count(8, "poisson", 2.0)}, [
            {"id": "t", "indicator": "c", "kind": "count_stock", "threshold": 15, "by": 2027}],
            observations={"c": {2025: 5}}), paths=1000)
