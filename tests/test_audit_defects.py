"""Regression tests for the five defects of the statistical audit (issue 13), each against the
exact answer: closed forms, enumeration, or rules that hold by construction of the model.

1. a correlation with an indicator that has no shock of its own (count, ratio, sum);
2. ties decided by rounding on deterministic paths, for every target kind and comparator;
3. improbable but possible observations (path weights that underflowed);
4. the mean of a law that has none (Student-t shocks on a log level);
5. quantiles of derived indicators that are 0, and ratios whose denominator can be 0;
and the minor one: a logit share that rounded to exactly 1.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import targetsim
from targetsim.errors import ScenarioError, TargetsimError, TargetsimWarning
from tests.conftest import make_scenario, mc_tolerance, scenario_dict


def assumed(value: float) -> dict:
    return {"value": value, "assumption": "test value"}


def lognormal(start: float, growth: float, volatility: float, sd: float = 0.0) -> dict:
    return {"start": assumed(start),
            "process": {"kind": "lognormal", "growth": {"mean": growth, "sd": sd}, "volatility": volatility}}


def count(start: float, mean: float) -> dict:
    return {"start": assumed(start), "process": {"kind": "count", "additions": {"distribution": "poisson",
                                                                               "mean": mean}}}


def run(data: dict, paths: int, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetsimWarning)
        return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


# ------------------------------------------------------------------ 1. correlations

@pytest.mark.parametrize("other", ["count", "ratio", "sum"])
@pytest.mark.parametrize("first", [True, False])
def test_correlation_with_an_unshocked_indicator_is_refused_at_its_line(other, first):
    inds = {"a": lognormal(100, 0.05, 0.2), "b": lognormal(50, 0.05, 0.1), "c": count(5, 1.0)}
    inds["d"] = {"process": {"kind": "ratio", "numerator": "b", "denominator": "a"}} if other == "ratio" else \
        {"process": {"kind": "sum", "terms": ["a", "b"]}}
    name = {"count": "c", "ratio": "d", "sum": "d"}[other]
    pair = [name, "a", 0.8] if first else ["a", name, 0.8]
    data = scenario_dict(inds, [{"id": "t", "indicator": "a", "kind": "level", "threshold": 150, "by": 2027}],
                         correlations=[pair])
    with pytest.raises(ScenarioError) as err:
        make_scenario(data)
    message = str(err.value)
    assert f"correlations[0][{0 if first else 1}]" in message and "<test>:" in message
    assert f"{name} is a {other}: it has no yearly shock of its own" in message


def test_correlated_lognormal_level_matches_its_closed_form_in_either_order():
    # P(ln X3 ≥ ln 150) with ln X3 ~ N(ln 100 + 3 ln 1.05, 3 · 0.2²): the partner never changes the margin
    exact = float(stats.norm.sf((math.log(1.5) - 3 * math.log(1.05)) / (0.2 * math.sqrt(3))))
    assert exact == pytest.approx(0.2272, abs=1e-4)
    target = [{"id": "a_hi", "indicator": "a", "kind": "level", "threshold": 150, "by": 2027}]
    n = 200_000
    results = []
    for order in (("b", "a"), ("a", "b")):
        inds = {"a": lognormal(100, 0.05, 0.2), "b": lognormal(10, 0.02, 0.3)}
        data = scenario_dict({k: inds[k] for k in order}, target, correlations=[["b", "a", 0.8]])
        results.append(prob(run(data, n), "a_hi"))
    for p in results:
        assert abs(p - exact) < mc_tolerance(exact, n)


# ------------------------------------------------------------------ 2. ties

COMPARATORS = (">=", ">", "<=", "<", "~", "~>=")
# a value equal to the threshold: '>=', '<=', '~' and '~>=' hold, '>' and '<' do not
MET_AT_A_TIE = {">=": 1.0, ">": 0.0, "<=": 1.0, "<": 0.0, "~": 1.0, "~>=": 1.0}


def _tie_cases():
    """(target kind, indicators, the target's indicator, threshold) where the rule's quantity is
    exactly the threshold on every path, in mathematics."""
    cases = []
    for start, growth in ((7.0, 0.0), (100.0, 0.0), (0.3, 0.05), (12345.678, 0.3), (3.0e7, 0.07)):
        years = 3
        level = start * (1 + growth) ** years
        det = {"x": lognormal(start, growth, 0.0)}
        cases += [
            ("level", det, "x", level),
            ("first_passage", det, "x", level),
            ("cagr", det, "x", growth),
            ("growth_each_year", det, "x", growth),
            ("count_per_year", {"x": lognormal(start, 0.0, 0.0)}, "x", start),
            ("cumulative", {"x": lognormal(start, 0.0, 0.0)}, "x", years * start),
        ]
    for share in (0.45, 0.01, 0.93):
        cases.append(("share", {"s": {"start": assumed(share),
                                      "process": {"kind": "logit_share", "drift": 0.0, "volatility": 0.0}}},
                      "s", share))
        parts = {"num": lognormal(share * 80.0, 0.06, 0.0), "den": lognormal(80.0, 0.06, 0.0),
                 "r": {"process": {"kind": "ratio", "numerator": "num", "denominator": "den"}}}
        cases.append(("share", parts, "r", share))
    for start in (7.0, 1500.0):
        cases.append(("count_stock", {"c": count(start, 0.0)}, "c", start))
        cases.append(("level", {"c": count(start, 0.0), "d": count(3.0, 0.0),
                                "s": {"process": {"kind": "sum", "terms": ["c", "d"]}}}, "s", start + 3.0))
    cases.append(("count_per_year", {"c": count(4.0, 0.0)}, "c", 0.0))
    cases.append(("cumulative", {"c": count(4.0, 0.0)}, "c", 0.0))
    return cases


@pytest.mark.parametrize("kind, inds, indicator, threshold", _tie_cases(),
                         ids=[f"{c[0]}-{c[2]}-{c[3]:g}" for c in _tie_cases()])
def test_a_value_equal_to_the_threshold_compares_as_equal(kind, inds, indicator, threshold):
    targets = []
    for k, comparator in enumerate(COMPARATORS):
        if comparator in ("~", "~>=") and threshold == 0:
            continue  # "about 0" has no relative band (refused at load)
        targets.append({"id": f"t{k}", "indicator": indicator, "kind": kind, "threshold": threshold,
                        "by": 2027, "comparator": comparator})
    ds = run(scenario_dict(inds, targets), paths=600)
    start = float(ds.indicator_start.sel(indicator=indicator))
    for target in targets:
        expected = MET_AT_A_TIE[target["comparator"]]
        if kind == "first_passage" and start < threshold and target["comparator"] in ("<", "<="):
            expected = 1.0  # a growing path is below the threshold before it reaches it
        assert prob(ds, target["id"]) == expected, (kind, target["comparator"], threshold)
        by_year = ds.attainment_by_year.sel(target=target["id"]).values
        if kind in ("level", "share", "count_stock", "first_passage") and start == threshold:
            assert by_year[0] == expected  # the base year agrees with the target year


def test_deterministic_cagr_does_not_depend_on_the_start():
    # the same growth from many starts: '>= g' always met, '> g' never
    for start in (0.37, 7.0, 123.4, 9.9e5, 4.2e11):
        data = scenario_dict({"x": lognormal(start, 0.3, 0.0)}, [
            {"id": "ge", "indicator": "x", "kind": "cagr", "threshold": 0.3, "by": 2027},
            {"id": "gt", "indicator": "x", "kind": "cagr", "threshold": 0.3, "by": 2027, "comparator": ">"},
            {"id": "each", "indicator": "x", "kind": "growth_each_year", "threshold": 0.3, "by": 2027}])
        ds = run(data, paths=300)
        assert (prob(ds, "ge"), prob(ds, "gt"), prob(ds, "each")) == (1.0, 0.0, 1.0), start


def test_the_issue_example_of_ties():
    data = scenario_dict({
        "a": lognormal(7, 0.0, 0.0), "h": lognormal(100, 0.0, 0.0),
        "s": {"start": assumed(0.45), "process": {"kind": "logit_share", "drift": 0.0, "volatility": 0.0}}}, [
        {"id": "keep_7", "indicator": "a", "kind": "level", "threshold": 7, "by": 2027},
        {"id": "above_100", "indicator": "h", "kind": "level", "threshold": 100, "by": 2027, "comparator": ">"},
        {"id": "share_keep", "indicator": "s", "kind": "share", "threshold": 0.45, "by": 2027}])
    ds = run(data, paths=1000)
    assert (prob(ds, "keep_7"), prob(ds, "above_100"), prob(ds, "share_keep")) == (1.0, 0.0, 1.0)
    assert float(ds.attainment_by_year.sel(target="keep_7", year=2024)) == 1.0


def test_a_value_just_off_the_threshold_is_not_a_tie():
    # 1e-9 relative is far outside the tie margin (about 1e-13 here): decided as in mathematics
    exact = 10 * 1.1**3
    data = scenario_dict({"x": lognormal(10.0, 0.10, 0.0)}, [
        {"id": "above", "indicator": "x", "kind": "level", "threshold": exact * (1 + 1e-9), "by": 2027},
        {"id": "below", "indicator": "x", "kind": "level", "threshold": exact * (1 - 1e-9), "by": 2027}])
    ds = run(data, paths=300)
    assert (prob(ds, "above"), prob(ds, "below")) == (0.0, 1.0)


# ------------------------------------------------------------------ 3. observations

def test_a_six_point_seven_sigma_observation_runs_and_is_exact():
    # ln(120/100) − ln 1.05 = 6.68 volatilities; given the 2025 value, 2026 ≥ 126 needs growth ≥ 5 %:
    # exactly the median, P = 1/2 (no parameter uncertainty: every path has the same likelihood)
    data = scenario_dict({"a": lognormal(100, 0.05, 0.02)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 126, "by": 2026}],
                         horizon=2026, observations={"a": {2025: 120}})
    n = 100_000
    ds = run(data, n)
    assert abs(prob(ds, "t") - 0.5) < mc_tolerance(0.5, n)
    assert float(ds.effective_sample_size) == pytest.approx(n, rel=1e-9)


def test_an_unlikely_count_observation_runs_and_matches_the_poisson_law():
    # Poisson(1) additions, 13 in 2025 (pmf 5.9e-11): the 2026 stock is 18 + Poisson(1)
    data = scenario_dict({"c": count(5, 1.0)},
                         [{"id": "t", "indicator": "c", "kind": "level", "threshold": 20, "by": 2026}],
                         horizon=2026, observations={"c": {2025: 18}})
    n = 100_000
    exact = float(stats.poisson.sf(1, 1.0))  # at least 2 more
    assert abs(prob(run(data, n), "t") - exact) < mc_tolerance(exact, n)


def _record(last_year: int, *, seed: int = 11, start: float = 100.0, growth: float = 1.04, vol: float = 0.05) -> dict:
    """A yearly record from 2001 to ``last_year`` drawn from the log-normal model itself."""
    rng = np.random.default_rng(seed)
    values, x = {}, start
    for year in range(2001, last_year + 1):
        x *= growth * math.exp(vol * rng.standard_normal())
        values[year] = float(x)
    return values


def test_sixty_model_consistent_observations_run():
    # 69 yearly observations drawn from the model itself: the likelihood of the whole record is
    # about e^-35, far below the old fixed-point resolution; given the last one, the last year's
    # probability is the one-year closed form
    values = _record(2069)
    threshold = values[2069] * 1.06
    data = scenario_dict({"a": lognormal(100.0, 0.04, 0.05)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": threshold, "by": 2070}],
                         base_year=2000, horizon=2070, observations={"a": values})
    n = 50_000
    exact = float(stats.norm.sf((math.log(1.06) - math.log(1.04)) / 0.05))
    assert abs(prob(run(data, n), "t") - exact) < mc_tolerance(exact, n)


def test_growth_uncertainty_posterior_with_many_observations_matches_the_conjugate_answer():
    # ln growth per year μ ~ N(m, s²) (delta method: s = sd / (1 + g)), observed log-increments
    # d_t = μ + σ ε_t: the posterior of μ is normal and the next year's log-increment is
    # N(post mean, post var + σ²). 30 observations make the old weights underflow.
    rng = np.random.default_rng(5)
    g, sd, vol, n_obs = 0.06, 0.03, 0.04, 30
    true_mu = math.log1p(0.075)
    x, values = 50.0, {}
    for t in range(1, n_obs + 1):
        x *= math.exp(true_mu + vol * rng.standard_normal())
        values[2000 + t] = float(x)
    threshold = values[2000 + n_obs] * 1.08
    data = scenario_dict({"a": lognormal(50.0, g, vol, sd=sd)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": threshold,
                           "by": 2000 + n_obs + 1}],
                         base_year=2000, horizon=2000 + n_obs + 1, observations={"a": values})
    n = 100_000
    ds = run(data, n)
    # exact posterior by quadrature over g (the engine draws g ~ N(0.06, 0.03²), μ = ln(1 + g))
    d = np.diff(np.log([50.0] + [values[2000 + t] for t in range(1, n_obs + 1)]))
    grid = np.linspace(g - 8 * sd, g + 8 * sd, 20001)
    mu = np.log1p(grid)
    log_post = stats.norm.logpdf(grid, g, sd) + stats.norm.logpdf(d[:, None], mu[None, :], vol).sum(axis=0)
    post = np.exp(log_post - log_post.max())
    exact = float((post * stats.norm.sf((math.log(1.08) - mu) / vol)).sum() / post.sum())
    ess = float(ds.effective_sample_size)
    assert abs(prob(ds, "t") - exact) < mc_tolerance(exact, int(ess)), (prob(ds, "t"), exact, ess)


def test_an_improbable_record_is_weighted_relative_to_its_likeliest_path():
    # 69 observations: even the likeliest path has a tiny likelihood and the weights would
    # underflow, so the run is repeated relative to it; an ordinary observation keeps the
    # reference 0 (one pass)
    from targetsim.engine.plan import build_plan
    from targetsim.engine.simulate import simulate
    from targetsim.kernels.weights import ROUNDING_BOUND, WEIGHT_ONE

    values = _record(2069)
    long = scenario_dict({"a": lognormal(100.0, 0.04, 0.05, sd=0.01)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 1000, "by": 2070}],
                         base_year=2000, horizon=2070, observations={"a": values})
    stats = simulate(build_plan(make_scenario(long)), paths=5000, seed=3)
    assert stats.log_weight_max < -20 and stats.log_weight_reference == stats.log_weight_max
    assert stats.effective_sample_size > 100
    assert 5000 / (2 * stats.weight_total) < ROUNDING_BOUND
    short = scenario_dict({"a": lognormal(100.0, 0.04, 0.05, sd=0.01)},
                          [{"id": "t", "indicator": "a", "kind": "level", "threshold": 110, "by": 2026}],
                          horizon=2026, observations={"a": {2025: 104}})
    stats = simulate(build_plan(make_scenario(short)), paths=5000, seed=3)
    assert stats.log_weight_reference == 0.0 and stats.weight_total > 1000 * WEIGHT_ONE


def test_an_impossible_observation_names_the_indicator_the_year_and_the_range():
    data = scenario_dict({"c": count(5, 1.0)},
                         [{"id": "t", "indicator": "c", "kind": "level", "threshold": 6, "by": 2026}],
                         horizon=2026, observations={"c": {2025: 3}})
    with pytest.raises(TargetsimError, match=r"impossible under the model.*c 2025 = 3: simulated without "
                                             r"observations 5 – \d+ .*below all 4,096 simulated paths"):
        targetsim.run(make_scenario(data), paths=2000)


def test_an_extreme_observation_warns_with_the_effective_sample_size():
    # a unit slip: 42,900,000 for 4,290
    data = scenario_dict({"a": lognormal(4000, 0.05, 0.05, sd=0.03)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 4500, "by": 2026}],
                         horizon=2026, observations={"a": {2025: 42_900_000}})
    with pytest.warns(TargetsimWarning, match=r"effective sample size [\d.]+ of 20,000 paths.*a 2025 = "
                                              r"4\.29e\+07: simulated without observations .*above all"):
        ds = targetsim.run(make_scenario(data), paths=20_000)
    assert "effective sample size" in ds.attrs["warnings"]


def test_ordinary_observations_do_not_warn():
    data = scenario_dict({"a": lognormal(4000, 0.05, 0.05, sd=0.03)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 4500, "by": 2026}],
                         horizon=2026, observations={"a": {2025: 4250}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetsimWarning)
        ds = targetsim.run(make_scenario(data), paths=20_000)
    assert ds.attrs["warnings"] == ""


# ------------------------------------------------------------------ 4. means that do not exist

def test_student_t_means_are_reported_as_undefined_not_as_numbers():
    data = scenario_dict({
        "a": lognormal(100, 0.05, 0.1),
        "s": {"start": assumed(0.4), "process": {"kind": "logit_share", "drift": 0.1, "volatility": 0.1}},
        "c": count(5, 2.0),
        "flat": lognormal(50, 0.05, 0.0),
        "tot": {"process": {"kind": "sum", "terms": ["a", "flat"]}},
        "part": {"process": {"kind": "ratio", "numerator": "a", "denominator": "tot"}},
        "odd": {"process": {"kind": "ratio", "numerator": "flat", "denominator": "a"}}},
        [{"id": "t", "indicator": "a", "kind": "level", "threshold": 110, "by": 2026}],
        shocks={"distribution": "student_t", "dof": 4})
    ds = run(data, 20_000)
    mean = ds.indicator_mean.to_pandas()
    defined = ds.indicator_mean_is_defined.to_pandas()
    for ind in ("a", "tot", "odd"):
        assert mean.loc[ind, 2024] == pytest.approx({"a": 100, "tot": 150, "odd": 0.5}[ind])
        assert mean.loc[ind, 2025:].isna().all() and (defined.loc[ind, 2025:] == 0).all()
    for ind in ("s", "c", "flat", "part"):  # bounded, counts, deterministic, a part of its own total
        assert np.isfinite(mean.loc[ind]).all() and (defined.loc[ind] == 1).all()
    assert "Student-t" in ds.indicator_mean.attrs["comment"]
    # the defined means are right: the count's is its closed form, exactly enough
    assert mean.loc["c", 2027] == pytest.approx(5 + 3 * 2.0, abs=4.5 * math.sqrt(6 / 20_000))


def test_the_table_says_when_a_mean_is_undefined(capsys):
    from rich.console import Console

    from targetsim.report.table import print_results

    data = scenario_dict({"a": lognormal(100, 0.05, 0.1)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 110, "by": 2026}],
                         shocks={"distribution": "student_t", "dof": 4})
    ds = targetsim.run(make_scenario(data), paths=2000)
    print_results(ds, Console(width=160, force_terminal=False))
    assert "mean not defined for 1 indicator(s) (a)" in capsys.readouterr().out


# ------------------------------------------------------------------ 5. zeros

def test_sum_of_counts_at_zero_has_exact_zero_quantiles():
    data = scenario_dict({"c1": count(0, 0.2), "c2": count(0, 0.1),
                          "tot": {"process": {"kind": "sum", "terms": ["c1", "c2"]}}},
                         [{"id": "t", "indicator": "tot", "kind": "level", "threshold": 1, "by": 2026}],
                         horizon=2026)
    n = 100_000
    ds = run(data, n)
    q = ds.indicator_quantiles.sel(indicator="tot")
    qs = ds["quantile"].values
    for year, lam in ((2024, 0.0), (2025, 0.3), (2026, 0.6)):
        # the exact quantiles of Poisson(lam): 0 up to P(0) = e^-lam
        exact = stats.poisson.ppf(qs, lam) if lam else np.zeros(qs.size)
        got = q.sel(year=year).values
        clear = np.abs(qs - stats.poisson.cdf(np.floor(exact), lam)) > 0.01  # away from a step of the CDF
        assert np.array_equal(got[clear], exact[clear]), (year, got, exact)
        assert not np.isnan(got).any()
    exact_p = 1 - math.exp(-0.6)
    assert abs(prob(ds, "t") - exact_p) < mc_tolerance(exact_p, n)


def test_ratio_with_a_zero_numerator_has_exact_zero_quantiles():
    data = scenario_dict({"c": count(0, 0.5), "d": lognormal(10, 0.0, 0.1),
                          "r": {"process": {"kind": "ratio", "numerator": "c", "denominator": "d"}}},
                         [{"id": "t", "indicator": "r", "kind": "level", "threshold": 0.05, "by": 2025}],
                         horizon=2025)
    ds = run(data, 50_000)
    q = ds.indicator_quantiles.sel(indicator="r", year=2025)
    below = q.sel(quantile=[qq for qq in ds["quantile"].values if qq < math.exp(-0.5) - 0.02]).values
    assert below.size and np.all(below == 0.0)
    assert np.all(q.sel(quantile=0.95).values > 0)


@pytest.mark.parametrize("denominator", ["count", "sum", "ratio"])
def test_ratio_whose_denominator_can_be_zero_is_refused_at_load(tmp_path, denominator):
    inds = {"a": lognormal(10, 0.05, 0.1), "c": count(0, 0.5), "e": count(0, 0.2)}
    if denominator == "sum":
        inds["den"] = {"process": {"kind": "sum", "terms": ["c", "e"]}}
    elif denominator == "ratio":
        inds["den"] = {"process": {"kind": "ratio", "numerator": "c", "denominator": "a"}}
    name = {"count": "c", "sum": "den", "ratio": "den"}[denominator]
    inds["r"] = {"process": {"kind": "ratio", "numerator": "a", "denominator": name}}
    data = scenario_dict(inds, [{"id": "t", "indicator": "a", "kind": "level", "threshold": 11, "by": 2026}])
    import yaml

    path = tmp_path / "zero.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ScenarioError, match=rf"zero.yaml:\d+: indicators.r.process.denominator: the "
                                            rf"denominator {name} .*is 0 on some paths"):
        targetsim.load_scenario(path)
    with pytest.raises(TargetsimError, match="is 0 on some paths"):  # built in code, refused by run
        targetsim.run(make_scenario(data), paths=100)


def test_a_denominator_with_a_positive_start_is_accepted():
    data = scenario_dict({"a": count(2, 0.5), "c": count(1, 0.5),
                          "r": {"process": {"kind": "ratio", "numerator": "a", "denominator": "c"}}},
                         [{"id": "t", "indicator": "r", "kind": "level", "threshold": 1, "by": 2026}])
    ds = run(data, 2000)
    assert np.isfinite(ds.indicator_quantiles.sel(indicator="r").values).all()


# ------------------------------------------------------------------ minor: logit shares at the edge

def test_a_logit_share_never_reaches_one():
    # drift 10 a year for 3 years puts the logit at 30 + 0.4: 1/(1 + e^-30.4) rounds to 1.0 in
    # double precision; the share stays strictly below 1
    data = scenario_dict({"s": {"start": assumed(0.6), "process": {"kind": "logit_share", "drift": 10.0,
                                                                  "volatility": 0.0}}},
                         [{"id": "t", "indicator": "s", "kind": "share", "threshold": 0.999999, "by": 2027}])
    ds = run(data, 500)
    q = ds.indicator_quantiles.sel(indicator="s").values
    assert np.all(q < 1.0) and np.all(q > 0.0)
    assert prob(ds, "t") == 1.0


@pytest.mark.parametrize("threshold", [1.0, 0.0])
def test_a_logit_share_threshold_at_zero_or_one_is_refused(threshold):
    data = scenario_dict({"s": {"start": assumed(0.6), "process": {"kind": "logit_share", "drift": 0.1,
                                                                  "volatility": 0.1}}},
                         [{"id": "t", "indicator": "s", "kind": "share", "threshold": threshold, "by": 2027}])
    with pytest.raises(ScenarioError, match=r"targets\[0\]\.threshold: s is a logit_share, which lies strictly "
                                            r"between 0 and 1"):
        make_scenario(data)


# ------------------------------------------------------------------ the command line

def _write(tmp_path, data: dict):
    import yaml

    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_cli_prints_the_warning_of_an_extreme_observation_and_writes_the_results(tmp_path):
    from click.testing import CliRunner

    from targetsim.cli import main

    data = scenario_dict({"a": lognormal(4000, 0.05, 0.05, sd=0.03)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": 4500, "by": 2026}],
                         horizon=2026, observations={"a": {2025: 42_900_000}})
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(main, ["run", str(_write(tmp_path, data)), "-o", str(out), "--paths", "5000",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: the observations are extreme under the model: effective sample size" in result.output
    assert targetsim.read_dataset(out).attrs["warnings"].startswith("the observations are extreme")


def test_the_cli_refuses_an_impossible_observation_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from targetsim.cli import main

    data = scenario_dict({"c": count(5, 1.0)},
                         [{"id": "t", "indicator": "c", "kind": "level", "threshold": 6, "by": 2026}],
                         horizon=2026, observations={"c": {2025: 3}})
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(main, ["run", str(_write(tmp_path, data)), "-o", str(out), "--paths", "5000"])
    assert result.exit_code == 1
    assert "error: the observations are impossible under the model" in result.output
    assert "c 2025 = 3" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_rerun_relative_to_the_likeliest_path_is_the_same_for_any_threads_and_blocks():
    import numba

    values = _record(2039)
    data = scenario_dict({"a": lognormal(100.0, 0.04, 0.05, sd=0.01), "b": lognormal(50.0, 0.06, 0.1)},
                         [{"id": "t", "indicator": "a", "kind": "level", "threshold": values[2039] * 1.05,
                           "by": 2040},
                          {"id": "u", "indicator": "b", "kind": "cagr", "threshold": 0.06, "by": 2040}],
                         base_year=2000, horizon=2040, observations={"a": values}, correlations=[["a", "b", 0.5]])
    scenario = make_scenario(data)
    one = targetsim.run(scenario, paths=3000, threads=1, block_size=8192)
    other = targetsim.run(scenario, paths=3000, threads=min(2, numba.config.NUMBA_NUM_THREADS), block_size=256)
    for name, var in one.data_vars.items():
        np.testing.assert_array_equal(var.values, other[name].values, err_msg=name)
