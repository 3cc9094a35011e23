"""``targetsim goal``: the lever's value that gives a target a chosen probability, against closed forms.

A log-normal level X_T = x0·exp(T·u + σ√T·Z), u = ln(1+g), meets ``X_T ≥ c`` with probability
P(u) = Φ((T·u + ln(x0/c)) / (σ√T)), so the growth giving probability p is
u* = (ln(c/x0) + σ√T·Φ⁻¹(p)) / T exactly. The solver finds where the Monte Carlo estimate P̂(u) crosses
p; P̂ − P is a Monte Carlo error of s.e. sqrt(p(1−p)/n), so its answer differs from u* by that error over
the slope, s.e.(û) = sqrt(p(1−p)/n) / P'(u*), P'(u*) = φ(Φ⁻¹(p))·T/(σ√T), plus the root finder's
tolerance. Each test allows K of these standard errors (and the tolerance) and derives its own slope.
"""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner
from scipy import stats
from scipy.optimize import brentq

from targetsim.errors import TargetsimError
from targetsim.goal import DEFAULT_TOLERANCE, find_lever, goal
from tests.conftest import lognormal, make_scenario, scenario_dict

N = 20_000
K = 4.5  # standard errors
T = 3  # 2024 → 2027


def level_target(indicator: str = "x", threshold: float = 130.0, comparator: str = ">=", kind: str = "level") -> dict:
    return {"id": "t", "indicator": indicator, "kind": kind, "threshold": threshold, "by": 2027,
            "comparator": comparator}


def se_p(p: float, n: int = N) -> float:
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.5, 0.8, 0.3])
def test_growth_known_matches_the_closed_form(p):
    x0, c, sigma = 100.0, 130.0, 0.1
    sc = make_scenario(scenario_dict({"x": lognormal(x0, 0.05, volatility=sigma)}, [level_target(threshold=c)]))
    r = goal(sc, "t", p, "growth", paths=N, seed=11)
    u_star = (math.log(c / x0) + sigma * math.sqrt(T) * stats.norm.ppf(p)) / T
    slope = stats.norm.pdf(stats.norm.ppf(p)) * T / (sigma * math.sqrt(T))  # dP/du at u*
    se_u = se_p(p) / slope
    assert r.reachable and r.value is not None
    u_hat = math.log1p(r.value)
    assert abs(u_hat - u_star) <= K * se_u + DEFAULT_TOLERANCE, (u_hat, u_star, se_u)
    # the probability reached is the goal, to the root finder's tolerance (and one path's step)
    assert abs(r.probability - p) <= slope * DEFAULT_TOLERANCE + 2.0 / N
    assert r.standard_error == pytest.approx(se_p(r.probability), rel=1e-6)
    # its own s.e. of the value (a central difference of P) agrees with the closed form's
    assert r.value_standard_error == pytest.approx(se_u * (1 + r.value), rel=0.2)
    assert r.current == pytest.approx(0.05) and r.current_probability == pytest.approx(
        stats.norm.cdf((T * math.log1p(0.05) + math.log(x0 / c)) / (sigma * math.sqrt(T))), abs=K * se_p(0.3))
    assert r.runs < 25


def test_growth_with_a_log_sd_matches_the_closed_form():
    """ln(1+g) ~ N(μ, s²): P = Φ((Tμ + ln(x0/c)) / sqrt(T²s² + Tσ²)); the lever moves μ, keeps s."""
    x0, c, sigma, s, p = 100.0, 140.0, 0.08, 0.04, 0.8
    ind = {"start": {"value": x0, "assumption": "test"},
           "process": {"kind": "lognormal", "growth": {"log_mean": 0.06, "log_sd": s}, "volatility": sigma}}
    sc = make_scenario(scenario_dict({"x": ind}, [level_target(threshold=c)]))
    r = goal(sc, "t", p, paths=N, seed=3)
    d = math.sqrt(T * T * s * s + T * sigma * sigma)
    mu_star = (math.log(c / x0) + d * stats.norm.ppf(p)) / T
    se_mu = se_p(p) / (stats.norm.pdf(stats.norm.ppf(p)) * T / d)
    assert abs(math.log1p(r.value) - mu_star) <= K * se_mu + DEFAULT_TOLERANCE
    assert "log s.d. 0.04 kept" in r.parameter


@pytest.mark.parametrize("comparator", [">=", "<="])
def test_start_lever_matches_the_closed_form(comparator):
    """ln x0* = ln c − T ln(1+g) + σ√T Φ⁻¹(p) for ≥, and − σ√T Φ⁻¹(p) for ≤ (the probability falls
    as the start rises: the bracket is searched the other way)."""
    c, g, sigma, p = 130.0, 0.05, 0.12, 0.8
    sc = make_scenario(scenario_dict({"x": lognormal(100.0, g, volatility=sigma)},
                                     [level_target(threshold=c, comparator=comparator)]))
    r = goal(sc, "t", p, "start", paths=N, seed=5)
    sign = 1.0 if comparator == ">=" else -1.0
    z = stats.norm.ppf(p)
    log_star = math.log(c) - T * math.log1p(g) + sign * sigma * math.sqrt(T) * z
    se_log = se_p(p) / (stats.norm.pdf(z) / (sigma * math.sqrt(T)))
    assert abs(math.log(r.value) - log_star) <= K * se_log + DEFAULT_TOLERANCE
    assert r.current == 100.0


def test_start_range_of_a_share_moves_on_the_logit():
    """A logit-normal start (5 % and 95 % quantiles low, high) and a logit drift: logit s_T is normal with
    mean m + T·drift and variance sd0² + Tσ², so the range's centre giving probability p is
    m* = logit c − T·drift + sqrt(sd0² + Tσ²)·Φ⁻¹(p); the answer is the range's median, expit(m*)."""
    low, high, drift, sigma, c, p = 0.2, 0.4, 0.05, 0.1, 0.4, 0.8
    ind = {"start": {"low": low, "high": high, "assumption": "test"},
           "process": {"kind": "logit_share", "drift": drift, "volatility": sigma}}
    sc = make_scenario(scenario_dict({"s": ind}, [level_target("s", threshold=c, kind="share")]))
    r = goal(sc, "t", p, "start", paths=N, seed=12)
    logit = lambda v: math.log(v / (1 - v))  # noqa: E731
    sd0 = (logit(high) - logit(low)) / (2 * stats.norm.ppf(0.95))
    spread = math.sqrt(sd0**2 + T * sigma**2)
    m_star = logit(c) - T * drift + spread * stats.norm.ppf(p)
    se_m = se_p(p) / (stats.norm.pdf(stats.norm.ppf(p)) / spread)
    assert abs(logit(r.value) - m_star) <= K * se_m + DEFAULT_TOLERANCE
    assert "lognormal range moved as a whole on the logit" in r.parameter


def test_whole_number_start_range_is_shifted_by_whole_numbers():
    """A count starting uniform on 10..14 with Poisson(2) additions a year: P(S_3 ≥ 40 | shift d) =
    mean over s of P(Poisson(6) ≥ 40 − s − d). The goal lies half way between two shifts' exact
    probabilities, so the answer (the smallest shift that reaches it) is one whole number."""
    ind = {"start": {"low": 10, "high": 14, "law": "uniform", "assumption": "test"},
           "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 2.0}}}
    sc = make_scenario(scenario_dict({"k": ind}, [level_target("k", threshold=40, kind="count_stock")]))

    def exact(d: int) -> float:
        return sum(stats.poisson.sf(40 - s - d - 1, 6.0) for s in range(10, 15)) / 5

    d_star = next(d for d in range(0, 60) if exact(d) >= 0.6)
    goal_p = 0.5 * (exact(d_star - 1) + exact(d_star))
    assert exact(d_star) - exact(d_star - 1) > 20 * se_p(goal_p)  # far apart in Monte Carlo errors
    r = goal(sc, "t", goal_p, "start", paths=N, seed=13)
    assert r.value == (10 + d_star + 14 + d_star) // 2 and r.current == 12
    assert abs(r.probability - exact(d_star)) <= K * se_p(exact(d_star))


def test_ratio_moves_the_numerator_or_the_named_denominator():
    """A ratio N/D of log-normals: ln(N/D)_T = ln(n0/d0) + T(u_N − u_D) + sqrt(T(σ_N² + σ_D²))·Z."""
    c, p, sn, sd_ = 0.6, 0.8, 0.1, 0.05
    inds = {"n": lognormal(50.0, 0.08, volatility=sn), "d": lognormal(100.0, 0.04, volatility=sd_),
            "r": {"process": {"kind": "ratio", "numerator": "n", "denominator": "d"}}}
    sc = make_scenario(scenario_dict(inds, [level_target("r", threshold=c)]))
    spread = math.sqrt(T * (sn**2 + sd_**2))
    z = stats.norm.ppf(p)
    slope = stats.norm.pdf(z) * T / spread
    un = goal(sc, "t", p, paths=N, seed=9)
    assert un.indicator == "n"
    un_star = (math.log(c * 100.0 / 50.0) + T * math.log1p(0.04) + spread * z) / T
    assert abs(math.log1p(un.value) - un_star) <= K * se_p(p) / slope + DEFAULT_TOLERANCE
    ud = goal(sc, "t", p, indicator="d", paths=N, seed=9)
    assert ud.indicator == "d"
    ud_star = (T * math.log1p(0.08) - math.log(c * 100.0 / 50.0) - spread * z) / T
    assert abs(math.log1p(ud.value) - ud_star) <= K * se_p(p) / slope + DEFAULT_TOLERANCE


def test_count_additions_mean_matches_the_poisson_closed_form():
    """S_T = s0 + Poisson(T·λ): P(S_T ≥ c) = P(Poisson(Tλ) ≥ c − s0), dP/dλ = T·pmf(c − s0 − 1; Tλ)."""
    s0, c, p = 10, 40, 0.8
    ind = {"start": {"value": s0, "assumption": "test"},
           "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 6.0}}}
    sc = make_scenario(scenario_dict({"k": ind}, [level_target("k", threshold=c, kind="count_stock")]))
    r = goal(sc, "t", p, paths=N, seed=2)
    k = c - s0
    lam = brentq(lambda m: stats.poisson.sf(k - 1, T * m) - p, 0.1, 100.0, xtol=1e-12)
    slope = T * stats.poisson.pmf(k - 1, T * lam)
    # the search is on ln λ (tolerance 1e-4 relative)
    assert abs(r.value - lam) <= K * se_p(p) / slope + lam * DEFAULT_TOLERANCE * 2
    assert r.unit == "count"


def test_scheduled_delivery_matches_the_binomial_closed_form():
    """A schedule of 20 units, each delivered with probability δ: P(S_T ≥ s0 + k) = P(Bin(20, δ) ≥ k),
    dP/dδ = 20·pmf(k − 1; 19, δ)."""
    ind = {"start": {"value": 0, "assumption": "test"},
           "process": {"kind": "scheduled", "schedule": {2025: 5, 2026: 5, 2027: 10}, "delivery": 0.7}}
    k, p = 17, 0.5
    sc = make_scenario(scenario_dict({"k": ind}, [level_target("k", threshold=k, kind="count_stock")]))
    r = goal(sc, "t", p, paths=N, seed=4)
    delta = brentq(lambda d: stats.binom.sf(k - 1, 20, d) - p, 0.01, 0.999, xtol=1e-12)
    slope = 20 * stats.binom.pmf(k - 1, 19, delta)
    assert abs(r.value - delta) <= K * se_p(p) / slope + DEFAULT_TOLERANCE
    assert r.unit == "probability" and r.current == 0.7


def test_a_jump_across_the_goal_is_reported():
    """No volatility, a known growth: X_3 = 100·(1+g)³ is the same on every path, so P(X_3 ≥ 130) jumps
    from 0 to 1 at g* = 1.3^(1/3) − 1; no growth gives 50 %, and the answer says so."""
    sc = make_scenario(scenario_dict({"x": lognormal(100.0, 0.05, volatility=0.0)}, [level_target()]))
    r = goal(sc, "t", 0.5, paths=2_000, seed=1)
    assert r.reachable and abs(math.log1p(r.value) - math.log(1.3) / T) <= DEFAULT_TOLERANCE
    assert r.jump == (0.0, 1.0) and r.probability in (0.0, 1.0)
    assert any("jumps from 0.0% to 100.0%" in n and "no value gives exactly 50.0%" in n for n in r.notes)


def test_unreachable_goal_is_reported_without_a_value():
    """σ = 1 a year (the largest volatility a scenario takes): even +100 % a year leaves
    P(X_3 ≥ 130) = Φ((3 ln 2 − ln 1.3)/√3) ≈ 0.85."""
    sc = make_scenario(scenario_dict({"x": lognormal(100.0, 0.05, volatility=1.0)}, [level_target()]))
    r = goal(sc, "t", 0.999999, paths=5_000, seed=1)
    assert not r.reachable and r.value is None and math.isnan(r.probability)
    best = stats.norm.cdf((T * math.log(2.0) - math.log(1.3)) / math.sqrt(T))
    assert r.closest_value == pytest.approx(1.0)  # the top of the bracket, +100 % a year
    assert abs(r.closest_probability - best) <= K * se_p(best, 5_000)
    assert "stays below 100.0%" in r.reason and "-50.00 %/yr to 100.00 %/yr" in r.reason
    text = "\n".join(r.describe())
    assert "unreachable" in text and "needed" not in text


def test_a_lever_the_target_does_not_depend_on_is_reported():
    """A CAGR target does not depend on the start of a log-normal: the probability is flat."""
    sc = make_scenario(scenario_dict({"x": lognormal(100.0, 0.05)},
                                     [{"id": "t", "indicator": "x", "kind": "cagr", "threshold": 0.1, "by": 2027}]))
    r = goal(sc, "t", 0.5, "start", paths=2_000, seed=1)
    assert not r.reachable and "does not depend on this lever" in r.reason


def test_refusals_name_the_kind_the_levers_and_the_parts():
    inds = {"a": lognormal(50.0, 0.08), "b": lognormal(100.0, 0.04),
            "s": {"process": {"kind": "sum", "terms": ["a", "b"]}}}
    sc = make_scenario(scenario_dict(inds, [level_target("a"), {**level_target("s", 200.0), "id": "u"}]))
    with pytest.raises(TargetsimError, match=r"'project' does not apply to 'a' \(a lognormal\); levers that do: "
                                             r"growth, start"):
        find_lever(sc, "t", "project")
    with pytest.raises(TargetsimError, match="a sum of a, b: name the part"):
        find_lever(sc, "u", "growth")
    assert find_lever(sc, "u", "growth", indicator="b").indicator == "b"
    with pytest.raises(TargetsimError, match="no target 'tt'; did you mean 't'"):
        find_lever(sc, "tt")
    with pytest.raises(TargetsimError, match="does not move target 't'"):
        find_lever(sc, "t", indicator="b")
    with pytest.raises(TargetsimError, match="strictly between 0 and 1"):
        goal(sc, "t", 1.0)


def test_project_lever_scales_every_completion_probability():
    """A build-out with no organic volatility and two projects of size 10 (p 0.4 and 0.2, done by
    2026): X_2027 ≥ 115 needs both, P = (0.4k)(0.2k) = 0.08k²; k* = sqrt(p/0.08)."""
    ind = {"start": {"value": 100.0, "assumption": "test"},
           "process": {"kind": "buildout", "organic": {"growth": 0.0, "volatility": 0.0},
                       "projects": [{"name": "a", "size": 10, "probability": 0.4, "earliest": 2025, "latest": 2026},
                                    {"name": "b", "size": 10, "probability": 0.2, "earliest": 2025,
                                     "latest": 2026}]}}
    p = 0.32
    sc = make_scenario(scenario_dict({"x": ind}, [level_target("x", threshold=115.0)]))
    r = goal(sc, "t", p, "project", paths=N, seed=6)
    k = math.sqrt(p / 0.08)
    slope = 0.16 * k
    assert abs(r.value - k) <= K * se_p(p) / slope + DEFAULT_TOLERANCE
    assert "all multiplied by one factor" in r.parameter


def test_same_arguments_same_answer_and_the_restricted_runs_probability_now():
    """Each run keeps only the target asked about and the indicators it needs: its probability now is that
    restricted scenario's, to the bit, and the full run's within Monte Carlo error (the same law)."""
    import targetsim
    from targetsim.model.scenario import restricted_to

    sc = make_scenario(scenario_dict({"x": lognormal(100.0, 0.05), "y": lognormal(10.0, 0.1, volatility=0.2)},
                                     [level_target(), {**level_target("y", 14.0), "id": "u"}],
                                     correlations=[["x", "y", 0.5]]))
    a, b = goal(sc, "t", 0.7, paths=5_000, seed=8), goal(sc, "t", 0.7, paths=5_000, seed=8)
    assert a == b
    only = restricted_to(sc, ["t"])
    assert [i.id for i in only.indicators] == ["x"] and not only.correlations
    kept = targetsim.run(only, paths=5_000, seed=8)
    assert a.current_probability == float(kept.attainment_probability.sel(target="t").values.ravel()[0])
    full = targetsim.run(sc, paths=200_000, seed=9)
    p = float(full.attainment_probability.sel(target="t").values.ravel()[0])
    assert abs(a.current_probability - p) <= K * math.sqrt(p * (1 - p) * (1 / 5_000 + 1 / 200_000))


SCENARIO = """\
name: goal-cli
base_year: 2024
horizon: 2027
indicators:
  x:
    start: {value: 100, assumption: test}
    process: {kind: lognormal, growth: {mean: 0.05, sd: 0.0}, volatility: 0.1}
targets:
  - {id: grow_x, indicator: x, kind: level, threshold: 130, by: 2027}
"""


def test_cli_prints_the_answer_and_refuses_a_bad_target(tmp_path):
    from targetsim.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    runner = CliRunner()
    ok = runner.invoke(main, ["goal", str(path), "--target", "grow_x", "--probability", "0.8", "--paths", "5000",
                              "--seed", "2"])
    assert ok.exit_code == 0, ok.output
    for text in ("now: 5.00 %/yr", "needed:", "P(met) there: 80.0%", "root finder 0.0001 on ln(1+g)",
                 "Monte Carlo s.e. of P", "runs of 5,000 paths, seed 2"):
        assert text in ok.output
    bad = runner.invoke(main, ["goal", str(path), "--target", "grow", "--probability", "0.8"])
    assert bad.exit_code == 1 and "did you mean 'grow_x'" in bad.output
    lever = runner.invoke(main, ["goal", str(path), "--target", "grow_x", "--probability", "0.8",
                                 "--lever", "project"])
    assert lever.exit_code == 1 and "levers that do: growth, start" in lever.output
