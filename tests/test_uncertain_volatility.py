"""An estimated volatility, ``volatility: {estimate, df}``: each path draws ``σ = estimate·w``,
``w = sqrt(ν/χ²_ν)``, and the same ``w`` scales its uncertain growth's deviation, so that the log change
of a level (the change of a logit) is a scaled Student-t. Checked against the t's closed form, an
independent NumPy simulation, the parser's refusals, reproducibility, and the undefined mean of a
level. Fixed seeds; tolerances are 4.5 Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logit

import targetsim
from targetsim.errors import ScenarioError
from tests.conftest import (
    assert_error_at, assert_matches_reference, assert_same_for_any_threads_and_blocks, edit_error, make_scenario, mc_tolerance, scenario_dict,
)
from tests.reference_model import simulate as reference

N = 200_000
K = 4.5  # standard errors


def assumed(value: float) -> dict:
    return {"value": value, "assumption": "test value"}


def estimated(estimate: float, df: float) -> dict:
    return {"estimate": estimate, "df": df}


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


# ------------------------------------------------------------------ (1) the Student-t closed form

# ν = 2 with a small estimate: its tails are so heavy that a larger one is refused by the overflow
# envelope (a path in 10⁹ beyond 1e250), see test_the_envelope_refuses_what_would_overflow
@pytest.mark.parametrize("nu, s", [(2.0, 0.01), (3.5, 0.1), (10.0, 0.08)])
def test_a_lognormal_level_is_student_t(nu, s):
    """Fixed growth g: ln X_H − ln x0 = H·ln(1+g) + s·w·sqrt(H)·Z = H·ln(1+g) + s·sqrt(H)·T_ν, exactly."""
    g, x0, years = 0.05, 100.0, 4
    centre, scale = years * math.log1p(g), s * math.sqrt(years)
    offsets = (-4.0, -1.5, 0.0, 0.7, 2.5, 6.0)  # in units of the t's scale: both tails
    thresholds = [x0 * math.exp(centre + k * scale) for k in offsets]
    data = scenario_dict({"x": {"start": assumed(x0), "process": {"kind": "lognormal", "growth": g,
                                                                  "volatility": estimated(s, nu)}}},
                         [{"id": f"c{j}", "indicator": "x", "kind": "level", "threshold": c, "by": 2024 + years}
                          for j, c in enumerate(thresholds)], horizon=2024 + years, seed=21)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.t.sf((math.log(c / x0) - centre) / scale, nu))
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (nu, j, prob(ds, f"c{j}"), exact)
    assert "volatility " + f"{s:g} (estimated, {nu:g} df)" in str(ds.indicator_process.sel(indicator="x").values)


def test_an_ar1_growth_level_is_student_t():
    """A Gaussian AR(1) log growth is linear in its shocks: scaled by one w, the H-year log change is
    its mean plus its Gaussian s.d. times T_ν."""
    m_g, phi, s, r0_g, nu, years = 0.06, 0.5, 0.05, 0.10, 4.0, 4
    m, r0 = math.log1p(m_g), math.log1p(r0_g)
    mean = years * m + (r0 - m) * phi * (1 - phi**years) / (1 - phi)
    sd = s * math.sqrt(sum(((1 - phi**j) / (1 - phi)) ** 2 for j in range(1, years + 1)))
    proc = {"kind": "ar1_growth", "long_run_growth": m_g, "persistence": phi, "volatility": estimated(s, nu),
            "initial_growth": r0_g}
    thresholds = [0.02, 0.08, 0.12]  # average annual growth (cagr)
    data = scenario_dict({"x": {"start": assumed(50.0), "process": proc}},
                         [{"id": f"g{j}", "indicator": "x", "kind": "cagr", "threshold": c, "by": 2024 + years}
                          for j, c in enumerate(thresholds)], horizon=2024 + years, seed=5)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.t.sf((years * math.log1p(c) - mean) / sd, nu))
        assert abs(prob(ds, f"g{j}") - exact) < mc_tolerance(exact, N, K), (j, prob(ds, f"g{j}"), exact)


# ------------------------------------------------------------------ (2) against an independent simulation

REFERENCE_PATHS = 400_000


def _two_sample(p1: float, n1: float, p2: float, n2: float) -> float:
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    return K * math.sqrt(max(pooled * (1 - pooled), 1.0 / (n1 + n2)) * (1 / n1 + 1 / n2))


@pytest.mark.parametrize("n_points", [5, 8])
def test_the_student_t_predictive_against_a_numpy_simulation(n_points):
    """growth {mean: g, sd: s/√n}, volatility {estimate: s, df: n−1}: the Student-t predictive of an
    estimate from n yearly changes, against tests.reference_model (NumPy's generator, none of the
    engine's code)."""
    g, s, x0, years = 0.06, 0.12, 100.0, 6
    nu, sd = n_points - 1.0, s / math.sqrt(n_points)
    # first-order: H·ln(1+g) + s·sqrt(H + H²/n)·T_ν
    centre, scale = years * math.log1p(g), s * math.sqrt(years + years**2 / n_points)
    offsets = (-2.0, -0.5, 0.8, 3.0)
    thresholds = [round(x0 * math.exp(centre + k * scale), 3) for k in offsets]
    targets = [{"id": f"c{j}", "indicator": "x", "kind": "level", "threshold": c, "by": 2024 + years}
               for j, c in enumerate(thresholds)]
    targets.append({"id": "path", "indicator": "x", "kind": "first_passage", "threshold": thresholds[2],
                    "by": 2024 + years})
    data = scenario_dict({"x": {"start": assumed(x0), "process": {
        "kind": "lognormal", "growth": {"mean": g, "sd": sd}, "volatility": estimated(s, nu)}}},
        targets, horizon=2024 + years, seed=8)
    ds = run(data)
    ref = reference(data, REFERENCE_PATHS, seed=1234 + n_points)
    for t in targets:
        got, expected = prob(ds, t["id"]), ref.probability[t["id"]]
        assert abs(got - expected) < _two_sample(got, N, expected, REFERENCE_PATHS), (t["id"], got, expected)
    # and the t is the law (to first order in the growth's uncertainty: within a few points)
    for j, k in enumerate(offsets):
        assert abs(prob(ds, f"c{j}") - float(stats.t.sf(k, nu))) < 0.02


def test_observations_update_an_estimated_volatility():
    """Observed values weigh each path by their density, whose factor 1/σ makes a calm record favour
    small volatilities: the engine against the independent simulation, and against the same model
    without the observations (which it must move)."""
    inds = {
        "x": {"start": assumed(100.0), "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.04},
                                                   "volatility": estimated(0.15, 3.0)}},
        "y": {"start": assumed(40.0), "process": {"kind": "ar1_growth", "long_run_growth": 0.03, "persistence": 0.4,
                                                  "volatility": 0.08, "initial_growth": 0.03}},
    }
    targets = [{"id": "hi", "indicator": "x", "kind": "level", "threshold": 135.0, "by": 2028},
               {"id": "lo", "indicator": "x", "kind": "level", "threshold": 105.0, "by": 2028, "comparator": "<"},
               {"id": "y", "indicator": "y", "kind": "level", "threshold": 45.0, "by": 2028}]
    data = scenario_dict(inds, targets, horizon=2028, correlations=[["x", "y", 0.5]],
                         observations={"x": {2025: 105.2, 2026: 110.1}}, seed=3)
    ds = run(data)
    ref = reference(data, REFERENCE_PATHS, seed=99)
    assert_matches_reference(ds, ref, targets, K)
    free = run({k: v for k, v in data.items() if k != "observations"})
    assert prob(free, "lo") > prob(ds, "lo") + 0.05  # a calm, rising record: fewer falls


# ------------------------------------------------------------------ (3) a logit share: exactly t

def test_a_logit_share_is_student_t():
    """logit s_H = logit s0 + H·d + w·(H·sd·Z₁ + s·sqrt(H)·Z₂)
    = logit s0 + H·d + sqrt(H²sd² + H s²)·T_ν, exactly, the drift's uncertainty included (additive)."""
    s0, d, sd, s, nu, years = 0.35, 0.08, 0.05, 0.2, 3.0, 3
    centre = logit(s0) + years * d
    scale = math.sqrt(years**2 * sd**2 + years * s**2)
    thresholds = [0.2, 0.4, 0.5, 0.7]
    data = scenario_dict({"s": {"start": assumed(s0), "process": {
        "kind": "logit_share", "drift": {"mean": d, "sd": sd}, "volatility": estimated(s, nu)}}},
        [{"id": f"c{j}", "indicator": "s", "kind": "share", "threshold": c, "by": 2024 + years, "comparator": "<="}
         for j, c in enumerate(thresholds)], horizon=2024 + years, seed=12)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(stats.t.cdf((logit(c) - centre) / scale, nu))
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, prob(ds, f"c{j}"), exact)
    # a share is bounded: its mean stays defined
    assert (ds.indicator_mean_is_defined.sel(indicator="s") == 1).all()
    assert np.isfinite(ds.indicator_mean.sel(indicator="s")).all()


# ------------------------------------------------------------------ (4) the parser

SCENARIO = """\
name: estimated volatility
base_year: 2024
horizon: 2027
paths: 1000
indicators:
  a:
    start: {value: 100, assumption: test}
    process:
      kind: lognormal
      growth: {mean: 0.05, sd: 0.02}
      volatility: {estimate: 0.08, df: 6}
  c:
    start: {value: 5, assumption: test}
    process:
      kind: count
      additions: {distribution: poisson, mean: 2}
  b:
    start: {value: 40, assumption: test}
    process:
      kind: buildout
      organic: {growth: 0.05, volatility: 0.1}
  l:
    start: {value: 20, assumption: test}
    process:
      kind: logistic
      ceiling: 100
      drift: 0.2
      volatility: 0.1
targets:
  - {id: t, indicator: a, kind: level, threshold: 110, by: 2027}
"""


def _error(tmp_path, old: str, new: str) -> ScenarioError:
    return edit_error(tmp_path, SCENARIO, old, new)


def test_the_form_loads_and_is_described(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    proc = targetsim.load_scenario(path).indicator_by_id["a"].process
    assert (proc.volatility, proc.volatility_df) == (0.08, 6.0)
    from targetsim.model.processes import PROCESS_SPECS

    described = PROCESS_SPECS["lognormal"].describe(proc)
    assert described == "lognormal: growth N(0.05, 0.02), volatility 0.08 (estimated, 6 df)"
    known = targetsim.load_scenario(path).indicator_by_id["b"].process.organic
    assert known.volatility_df == 0.0  # a plain number: known, as before


ACCEPTED = "accepted by lognormal, ar1_growth and logit_share processes only"
PARSER_CASES = [
    # (replace this, with this, key path, line, words)
    ("df: 6}", "df: 0.5}", "indicators.a.process.volatility.df", 11, "must be at least 1, got 0.5"),
    ("df: 6}", "dof: 6}", "indicators.a.process.volatility.dof", 11, "did you mean 'df'?"),
    ("{estimate: 0.08, df: 6}", "{estimate: 0.08}", "indicators.a.process.volatility", 11, "missing required key 'df'"),
    ("estimate: 0.08", "estimate: 8", "indicators.a.process.volatility.estimate", 11, "must be at most 1"),
    ("df: 6}", "df: '6'}", "indicators.a.process.volatility.df", 11, "expected a number"),
    ("additions: {distribution: poisson, mean: 2}",
     "additions: {distribution: poisson, mean: 2}\n      volatility: {estimate: 0.1, df: 4}",
     "indicators.c.process.volatility", 17, "a count has no volatility"),
    ("organic: {growth: 0.05, volatility: 0.1}",
     "organic: {growth: 0.05, volatility: {estimate: 0.1, df: 4}}",
     "indicators.b.process.organic.volatility", 21, "a buildout's organic part takes a known volatility"),
    ("      volatility: 0.1\ntargets", "      volatility: {estimate: 0.1, df: 4}\ntargets",
     "indicators.l.process.volatility", 28, "a logistic takes a known volatility: a number"),
]


@pytest.mark.parametrize("old, new, key, line, words", PARSER_CASES, ids=[c[2] + ":" + c[4] for c in PARSER_CASES])
def test_the_parser_names_file_key_and_line(tmp_path, old, new, key, line, words):
    err = _error(tmp_path, old, new)
    assert_error_at(err, key, line, words)
    if "process.volatility" in key and key.endswith("volatility") and "missing" not in words:
        assert ACCEPTED in err.reason  # the kinds that accept the form are named


def test_the_envelope_refuses_what_would_overflow(tmp_path):
    """ν = 1 (Cauchy tails): a path in 10⁹ lies beyond 1e250 even at a volatility of 0.01; refused at
    load time with the indicator's line, the volatility and its degrees of freedom named."""
    err = _error(tmp_path, "{estimate: 0.08, df: 6}", "{estimate: 0.01, df: 1}")
    assert err.location.key.startswith("indicators.a")
    assert "estimated with 1 df" in err.reason and "degrees of freedom" in err.reason
    # many degrees of freedom: the envelope of a known volatility, as before
    from targetsim.model.numeric import ENVELOPE_SD, envelope_sd

    assert envelope_sd(1e6) == ENVELOPE_SD and envelope_sd(0.0) == ENVELOPE_SD
    assert envelope_sd(3.0) == pytest.approx(stats.t.isf(1e-9, 3.0), rel=1e-8)


def test_student_t_quantiles_without_scipy_match_scipy():
    from targetsim.model.processes import student_t_isf, student_t_sf

    for nu in (1.0, 1.5, 2.0, 3.5, 10.0, 1e3, 1e6):
        for p in (0.3, 1e-3, 1e-6, 1e-9, 1e-12):
            assert student_t_isf(p, nu) == pytest.approx(stats.t.isf(p, nu), rel=1e-7), (nu, p)
        for q in (0.1, 1.0, 4.0, 50.0):
            assert student_t_sf(q, nu) == pytest.approx(stats.t.sf(q, nu), rel=1e-7, abs=1e-300), (nu, q)


# ------------------------------------------------------------------ (5) reproducibility

def test_bit_identical_for_any_threads_and_blocks():
    data = scenario_dict({
        "x": {"start": assumed(100.0), "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.03},
                                                   "volatility": estimated(0.1, 4.0)}},
        "s": {"start": assumed(0.4), "process": {"kind": "logit_share", "drift": 0.05,
                                                 "volatility": estimated(0.2, 7.5)}},
        "y": {"start": assumed(10.0), "process": {"kind": "lognormal", "growth": 0.02, "volatility": 0.1}},
        "sum": {"process": {"kind": "sum", "terms": ["x", "y"]}}},
        [{"id": "x", "indicator": "x", "kind": "level", "threshold": 110.0, "by": 2027},
         {"id": "s", "indicator": "s", "kind": "share", "threshold": 0.45, "by": 2026},
         {"id": "sum", "indicator": "sum", "kind": "cagr", "threshold": 0.04, "by": 2027}],
        correlations=[["x", "s", 0.4], ["x", "y", 0.3]], seed=17)
    scenario = make_scenario(data)
    assert_same_for_any_threads_and_blocks(scenario)


# ------------------------------------------------------------------ (6) the mean of a level

def test_the_mean_of_a_level_with_an_estimated_volatility_is_undefined():
    """E[exp(σZ)] over a scaled inverse-χ² σ² is infinite: the level's mean is NaN, flagged undefined,
    as under Student-t shocks; a share, a known volatility's level and a count keep theirs."""
    data = scenario_dict({
        "x": {"start": assumed(100.0), "process": {"kind": "lognormal", "growth": 0.05,
                                                   "volatility": estimated(0.1, 5.0)}},
        "r": {"start": assumed(30.0), "process": {"kind": "ar1_growth", "long_run_growth": 0.03, "persistence": 0.3,
                                                  "volatility": estimated(0.05, 12.0), "initial_growth": 0.03}},
        "s": {"start": assumed(0.4), "process": {"kind": "logit_share", "drift": 0.05,
                                                 "volatility": estimated(0.2, 5.0)}},
        "k": {"start": assumed(50.0), "process": {"kind": "lognormal", "growth": 0.02, "volatility": 0.1}},
        "c": {"start": assumed(3.0), "process": {"kind": "count", "additions": {"distribution": "poisson",
                                                                                "mean": 2.0}}},
        "tot": {"process": {"kind": "sum", "terms": ["x", "k"]}},
        "part": {"process": {"kind": "ratio", "numerator": "x", "denominator": "tot"}}},
        [{"id": "t", "indicator": "x", "kind": "level", "threshold": 110.0, "by": 2026}])
    ds = run(data, 20_000)
    mean = ds.indicator_mean.to_pandas()
    defined = ds.indicator_mean_is_defined.to_pandas()
    for ind in ("x", "r", "tot"):
        assert mean.loc[ind, 2024] == pytest.approx({"x": 100.0, "r": 30.0, "tot": 150.0}[ind])
        assert mean.loc[ind, 2025:].isna().all() and (defined.loc[ind, 2025:] == 0).all()
    for ind in ("s", "k", "c", "part"):  # bounded, known, a count, a part of its own total
        assert np.isfinite(mean.loc[ind]).all() and (defined.loc[ind] == 1).all()
    assert "estimated volatility" in ds.indicator_mean.attrs["comment"]
    # the quantiles are reported
    assert np.isfinite(ds.indicator_quantiles.sel(indicator="x").values).all()


def test_many_degrees_of_freedom_are_a_known_volatility():
    """ν → ∞: w → 1, and the estimated volatility's law is the known one's (other random numbers: the
    χ² draws move the streams, so the two runs agree within their Monte Carlo errors)."""
    targets = [{"id": "t", "indicator": "x", "kind": "level", "threshold": 110.0, "by": 2027}]
    known = run(scenario_dict({"x": {"start": assumed(100.0), "process": {
        "kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": 0.1}}}, targets), 100_000)
    near = run(scenario_dict({"x": {"start": assumed(100.0), "process": {
        "kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": estimated(0.1, 1e6)}}}, targets),
        100_000)
    p = prob(known, "t")
    assert abs(prob(near, "t") - p) < _two_sample(p, 100_000, prob(near, "t"), 100_000)
