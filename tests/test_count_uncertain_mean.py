"""An uncertain mean of a count's additions, ``additions: {mean: {mean, sd}}``: each path draws its own
yearly mean ``λ ~ Gamma(shape (m/s)², scale s²/m)`` once, and adds Poisson(λ) (or negative binomial with
mean λ) every year. Checked against the closed form (Poisson additions over a gamma mean: negative
binomial), an independent NumPy simulation, the exact posterior predictive after an observed year, the
parser's refusals, and reproducibility (threads, blocks; ``sd: 0`` is the plain number, bit for bit).
Fixed seeds; tolerances are 4.5 Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import targetsim
from targetsim.errors import ScenarioError
from tests.conftest import (
    assert_error_at, assert_matches_reference, assert_same_for_any_threads_and_blocks, edit_error, load_edited, make_scenario, mc_tolerance, scenario_dict,
)
from tests.reference_model import simulate as reference

N = 200_000
REFERENCE_PATHS = 400_000
K = 4.5  # standard errors


def assumed(value: float) -> dict:
    return {"value": value, "assumption": "test value"}


def count(start: float, mean, *, sd: float | None = None, dispersion: float | None = None) -> dict:
    additions: dict = {"distribution": "negative_binomial" if dispersion else "poisson",
                       "mean": mean if sd is None else {"mean": mean, "sd": sd}}
    if dispersion:
        additions["dispersion"] = dispersion
    return {"start": assumed(start), "process": {"kind": "count", "additions": additions}}


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


def _two_sample(p1: float, n1: float, p2: float, n2: float) -> float:
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    return K * math.sqrt(max(pooled * (1 - pooled), 1.0 / (n1 + n2)) * (1 / n1 + 1 / n2))


def _gamma_poisson(m: float, s: float, years: float):
    """Poisson additions at a mean λ ~ Gamma(shape (m/s)², rate m/s²) over ``years`` years: NB(a, b/(b+H))."""
    a, b = (m / s) ** 2, m / s**2
    return stats.nbinom(a, b / (b + years))


# ------------------------------------------------------------------ (1) the closed form

@pytest.mark.parametrize("m, s, years, x0", [(4.2, 0.65, 5, 10.0), (1.5, 2.0, 3, 4.0), (30.0, 12.0, 4, 0.0)])
def test_poisson_additions_over_a_gamma_mean_are_negative_binomial(m, s, years, x0):
    """Σ_H Poisson(λ) with λ ~ Gamma(a, rate b) is NB(a, p = b/(b + H)), exactly: P(S_H ≥ c) for
    thresholds across the law (shapes 42, 0.56 and 6.25), the mean x0 + H·m in every year, and the
    reported quantiles (the sketch's grid reaches the small shape's long tail)."""
    law = _gamma_poisson(m, s, years)
    thresholds = sorted({x0 + int(law.ppf(q)) for q in (0.03, 0.25, 0.5, 0.75, 0.97)} | {x0 + 1})
    data = scenario_dict({"c": count(x0, m, sd=s)},
                         [{"id": f"c{j}", "indicator": "c", "kind": "count_stock", "threshold": c, "by": 2024 + years}
                          for j, c in enumerate(thresholds)], horizon=2024 + years, seed=31)
    ds = run(data)
    for j, c in enumerate(thresholds):
        exact = float(law.sf(c - x0 - 1))
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, N, K), (j, c, prob(ds, f"c{j}"), exact)
    # the mean, year by year: x0 + t·m, with Var = t·m + t²·s²
    mean = ds.indicator_mean.sel(indicator="c").values
    for t in range(years + 1):
        assert abs(mean[t] - (x0 + t * m)) <= K * math.sqrt((t * m + t * t * s * s) / N) + 1e-12, (t, mean[t])
    # the quantiles of the stock (a whole number: the law's own, to within one)
    q = ds["quantile"].values
    got = ds.indicator_quantiles.sel(indicator="c").isel(year=-1).values
    np.testing.assert_allclose(got, x0 + law.ppf(q), atol=1.0)
    assert "count: additions poisson mean " + f"{m:g} ± {s:g} (per path, gamma)" in \
        str(ds.indicator_process.sel(indicator="c").values)


def test_a_count_per_year_rule_over_a_gamma_mean():
    """Every year at least c additions: E_λ[P(A ≥ c | λ)^H], by quadrature over the gamma law."""
    m, s, years, c = 4.2, 0.65, 4, 3.0
    a, scale = (m / s) ** 2, s * s / m
    lam = np.linspace(1e-9, m + 20 * s, 200_001)
    density = stats.gamma.pdf(lam, a, scale=scale)
    exact = float(np.trapezoid(density * stats.poisson.sf(c - 1, lam) ** years, lam))
    data = scenario_dict({"c": count(10.0, m, sd=s)},
                         [{"id": "each", "indicator": "c", "kind": "count_per_year", "threshold": c,
                           "by": 2024 + years}], horizon=2024 + years, seed=4)
    ds = run(data)
    assert abs(prob(ds, "each") - exact) < mc_tolerance(exact, N, K), (prob(ds, "each"), exact)


# ------------------------------------------------------------------ (2) against an independent simulation

@pytest.mark.parametrize("m, s, dispersion", [(4.2, 0.65, 3.0), (2.0, 1.5, 0.8)])
def test_negative_binomial_additions_against_a_numpy_simulation(m, s, dispersion):
    """Negative binomial additions (mean λ, the given dispersion) at a gamma mean, against
    tests.reference_model (NumPy's generator, none of the engine's code): stock, per-year and
    cumulative rules, and the mean x0 + t·m."""
    x0, years = 12.0, 4
    targets = [{"id": f"s{j}", "indicator": "c", "kind": "count_stock", "threshold": x0 + k, "by": 2024 + years}
               for j, k in enumerate((3.0, 10.0, 16.0, 25.0, 45.0))]
    targets += [{"id": "each", "indicator": "c", "kind": "count_per_year", "threshold": 1.0, "by": 2024 + years},
                {"id": "cum", "indicator": "c", "kind": "cumulative", "threshold": 8.5, "by": 2026, "comparator": "<"},
                {"id": "tot", "indicator": "tot", "kind": "level", "threshold": x0 + 20.5, "by": 2024 + years}]
    data = scenario_dict({"c": count(x0, m, sd=s, dispersion=dispersion),
                          "k": count(3.0, 1.0),
                          "tot": {"process": {"kind": "sum", "terms": ["c", "k"]}}},
                         targets, horizon=2024 + years, seed=9)
    ds = run(data)
    ref = reference(data, REFERENCE_PATHS, seed=77)
    for t in targets:
        got, expected = prob(ds, t["id"]), ref.probability[t["id"]]
        assert abs(got - expected) < _two_sample(got, N, expected, REFERENCE_PATHS), (t["id"], got, expected)
    # the mean: x0 + t·m, with Var = t·(m + (m² + s²)/r) + t²·s²
    mean = ds.indicator_mean.sel(indicator="c").values
    for t in range(years + 1):
        var = t * (m + (m * m + s * s) / dispersion) + t * t * s * s
        assert abs(mean[t] - (x0 + t * m)) <= K * math.sqrt(var / N) + 1e-12, (t, mean[t])


# ------------------------------------------------------------------ (3) observations

def test_an_observed_year_updates_the_mean_exactly():
    """One observed year of k additions: the posterior of λ is Gamma(a + k, rate b + 1), and the stock two
    years on is the observed one plus NB(a + k, (b + 1)/(b + 3)): the engine's weighted probabilities
    against that exact posterior predictive (tolerance from the effective sample size), and not the
    prior predictive."""
    m, s, x0, k = 4.2, 0.65, 10.0, 8
    a, b = (m / s) ** 2, m / s**2
    posterior = stats.nbinom(a + k, (b + 1) / (b + 3))
    prior = _gamma_poisson(m, s, 3)
    thresholds = [x0 + k + c for c in (4.0, 8.0, 10.0, 12.0, 16.0)]
    targets = [{"id": f"c{j}", "indicator": "c", "kind": "count_stock", "threshold": c, "by": 2027}
               for j, c in enumerate(thresholds)]
    data = scenario_dict({"c": count(x0, m, sd=s)}, targets, horizon=2027, seed=13,
                         observations={"c": {2025: x0 + k}})
    ds = run(data)
    ess = float(ds.effective_sample_size)
    assert 0.2 * N < ess < N  # the paths are weighted
    moved = 0.0
    for j, c in enumerate(thresholds):
        exact = float(posterior.sf(c - (x0 + k) - 1))
        assert abs(prob(ds, f"c{j}") - exact) < mc_tolerance(exact, ess, K), (j, prob(ds, f"c{j}"), exact)
        moved = max(moved, abs(exact - float(prior.sf(c - x0 - 1))))
    assert moved > 0.05  # the observation matters: the prior predictive is far off


def test_observed_negative_binomial_counts_against_numpy_importance_weights():
    """Negative binomial additions at a gamma mean, observed in two years, beside a known-mean count
    observed once: the engine's weighted probabilities against the reference's importance weights
    (the likelihood of each path's additions at its own λ)."""
    targets = [{"id": f"c{j}", "indicator": "c", "kind": "count_stock", "threshold": c, "by": 2028}
               for j, c in enumerate((22.0, 27.0, 33.0, 45.0))]
    targets += [{"id": "k", "indicator": "k", "kind": "count_stock", "threshold": 9.5, "by": 2028},
                {"id": "each", "indicator": "c", "kind": "count_per_year", "threshold": 2.0, "by": 2028}]
    data = scenario_dict({"c": count(10.0, 3.0, sd=1.2, dispersion=4.0), "k": count(2.0, 1.5)}, targets,
                         horizon=2028, seed=19, observations={"c": {2025: 12.0, 2026: 19.0}, "k": {2025: 4.0}})
    ds = run(data)
    ess = float(ds.effective_sample_size)
    ref = reference(data, REFERENCE_PATHS, seed=5)
    assert_matches_reference(ds, ref, targets, K)
    assert abs(ess / N - ref.effective_sample_size / REFERENCE_PATHS) < 0.02


# ------------------------------------------------------------------ (4) the parser

SCENARIO = """\
name: uncertain count mean
base_year: 2024
horizon: 2027
paths: 1000
indicators:
  c:
    start: {value: 5, assumption: test}
    process:
      kind: count
      additions: {distribution: poisson, mean: {mean: 4.2, sd: 0.65}}
  n:
    start: {value: 3, assumption: test}
    process:
      kind: count
      additions:
        distribution: negative_binomial
        mean: {mean: 2.0, sd: 0.5}
        dispersion: 3
targets:
  - {id: t, indicator: c, kind: count_stock, threshold: 20, by: 2027}
"""


def _load(tmp_path, old: str = "", new: str = ""):
    return load_edited(tmp_path, SCENARIO, old, new)


def _error(tmp_path, old: str, new: str) -> ScenarioError:
    return edit_error(tmp_path, SCENARIO, old, new)


def test_the_form_loads_and_is_described(tmp_path):
    from targetsim.model.processes import PROCESS_SPECS, CountProcess

    scenario = _load(tmp_path)
    c, n = scenario.indicator_by_id["c"].process, scenario.indicator_by_id["n"].process
    assert c == CountProcess(distribution="poisson", mean=4.2, mean_sd=0.65)
    assert n == CountProcess(distribution="negative_binomial", mean=2.0, dispersion=3.0, mean_sd=0.5)
    describe = PROCESS_SPECS["count"].describe
    assert describe(c) == "count: additions poisson mean 4.2 ± 0.65 (per path, gamma)"
    assert describe(n) == "count: additions negative_binomial mean 2 ± 0.5 (per path, gamma), dispersion 3"
    # sd 0, or no sd: the plain number, described as before
    for form in ("{mean: 4.2, sd: 0}", "{mean: 4.2}", "4.2"):
        path = tmp_path / "plain.yaml"
        path.write_text(SCENARIO.replace("{mean: 4.2, sd: 0.65}", form, 1), encoding="utf-8")
        plain = targetsim.load_scenario(path).indicator_by_id["c"].process
        assert plain == CountProcess(distribution="poisson", mean=4.2), form
        assert describe(plain) == "count: additions poisson mean 4.2"


C_MEAN = "indicators.c.process.additions.mean"
N_MEAN = "indicators.n.process.additions.mean"
PARSER_CASES = [
    # (replace this, with this, key path, line, words)
    ("sd: 0.65}", "sd: -0.65}", C_MEAN + ".sd", 10, "must be at least 0, got -0.65"),
    ("{mean: 4.2, sd: 0.65}", "{mean: 0, sd: 0.65}", C_MEAN + ".sd", 10, "an uncertain mean needs a positive mean"),
    ("{mean: 4.2, sd: 0.65}", "{mean: 4.2, sdd: 0.65}", C_MEAN + ".sdd", 10, "unknown key 'sdd'; did you mean 'sd'?"),
    ("{mean: 4.2, sd: 0.65}", "{mean: 4.2, se: 0.65}", C_MEAN + ".se", 10, "allowed keys: mean, sd"),
    ("{mean: 4.2, sd: 0.65}", "{mean: -1, sd: 0.65}", C_MEAN + ".mean", 10, "must be at least 0, got -1"),
    ("{mean: 4.2, sd: 0.65}", "{sd: 0.65}", C_MEAN, 10, "missing required key 'mean'"),
    ("{mean: 2.0, sd: 0.5}", "{mean: 2.0, sd: '0.5'}", N_MEAN + ".sd", 17, "expected a number"),
    ("mean: {mean: 2.0, sd: 0.5}", "mean:\n          mean: 2.0\n          stdev: 0.5", N_MEAN + ".stdev", 19,
     "unknown key 'stdev'"),
    ("mean: {mean: 2.0, sd: 0.5}", "mean:\n          mean: 2.0\n          sd: -2", N_MEAN + ".sd", 19,
     "must be at least 0, got -2"),
]


@pytest.mark.parametrize("old, new, key, line, words", PARSER_CASES, ids=[c[2] + ":" + c[4] for c in PARSER_CASES])
def test_the_parser_names_file_key_and_line(tmp_path, old, new, key, line, words):
    err = _error(tmp_path, old, new)
    assert_error_at(err, key, line, words)


# ------------------------------------------------------------------ (5) reproducibility

def _mixed(seed: int = 17, **extra) -> dict:
    return scenario_dict({
        "c": count(10.0, 4.2, sd=0.65),
        "n": count(3.0, 2.0, sd=1.5, dispersion=3.0),
        "k": count(5.0, 1.0),
        "x": {"start": assumed(100.0), "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.03},
                                                   "volatility": {"estimate": 0.1, "df": 4.0}}},
        "tot": {"process": {"kind": "sum", "terms": ["c", "n", "k"]}}},
        [{"id": "c", "indicator": "c", "kind": "count_stock", "threshold": 25.0, "by": 2027},
         {"id": "n", "indicator": "n", "kind": "count_per_year", "threshold": 1.0, "by": 2026},
         {"id": "tot", "indicator": "tot", "kind": "cumulative", "threshold": 20.0, "by": 2027},
         {"id": "x", "indicator": "x", "kind": "level", "threshold": 110.0, "by": 2027}], seed=seed, **extra)


@pytest.mark.parametrize("observed", [False, True])
def test_bit_identical_for_any_threads_and_blocks(observed):
    extra = {"observations": {"c": {2025: 15.0}, "n": {2025: 4.0, 2026: 4.0}}} if observed else {}
    scenario = make_scenario(_mixed(**extra))
    assert_same_for_any_threads_and_blocks(scenario)


def test_sd_zero_is_the_plain_number_bit_for_bit():
    """``mean: {mean: m, sd: 0}`` (and ``{mean: m}``) is ``mean: m``: the same plan, streams and numbers."""
    targets = [{"id": "c", "indicator": "c", "kind": "count_stock", "threshold": 22.0, "by": 2027},
               {"id": "n", "indicator": "n", "kind": "cumulative", "threshold": 6.5, "by": 2027}]

    def scenario(mean_c, mean_n):
        inds = {"c": count(10.0, 4.2), "n": count(3.0, 2.0, dispersion=3.0)}
        inds["c"]["process"]["additions"]["mean"] = mean_c
        inds["n"]["process"]["additions"]["mean"] = mean_n
        return scenario_dict(inds, targets, seed=3, observations={"n": {2026: 8.0}})

    plain = targetsim.run(make_scenario(scenario(4.2, 2.0)), paths=20_000)
    for mean_c, mean_n in (({"mean": 4.2, "sd": 0}, {"mean": 2.0, "sd": 0.0}), ({"mean": 4.2}, {"mean": 2.0})):
        other = targetsim.run(make_scenario(scenario(mean_c, mean_n)), paths=20_000)
        for name in plain.data_vars:
            np.testing.assert_array_equal(plain[name].values, other[name].values, err_msg=name)


def test_an_uncertain_mean_has_no_inversion_table_and_the_estimates_agree():
    """A count whose mean is uncertain is drawn with the samplers at each path's λ: it gets no table
    (the plan and the scenario's memory estimate agree on that)."""
    from targetsim.engine import resources
    from targetsim.engine.plan import build_plan

    scenario = make_scenario(_mixed())
    plan = build_plan(scenario)
    np.testing.assert_array_equal(plan.arrays["c_sd"], [0.65, 1.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(plan.arrays["c_guide_size"] > 0, [False, False, True, False, False])
    est = resources.estimate_for_scenario(scenario, paths=1000, threads=1)
    assert est.memory_bytes == pytest.approx(resources.estimate_for_plan(plan, paths=1000, threads=1).memory_bytes,
                                             rel=0.01)


def test_the_sketch_grid_reaches_the_gamma_tail():
    """The grid of a count whose mean's gamma law has a small shape reaches its tail: the bound on the
    gamma's quantile lies above the true one, and the grid's top above the stock's far quantile."""
    from targetsim.engine.plan import build_plan
    from targetsim.model.processes import gamma_upper_bound

    for shape in (0.05, 0.56, 6.25, 41.75, 1e4, 1e12):
        for tail in (1e-3, 5e-4, 1e-8):
            y = gamma_upper_bound(shape, tail)
            assert y * shape >= stats.gamma.isf(tail, shape) * (1 - 1e-9), (shape, tail)
            assert y * shape <= stats.gamma.isf(tail, shape) * 12, (shape, tail)  # not absurdly loose
    m, s, years, x0 = 1.5, 6.0, 4, 5.0  # shape 1/16: λ's law is mostly near 0 with a long tail
    data = scenario_dict({"c": count(x0, m, sd=s)},
                         [{"id": "t", "indicator": "c", "kind": "count_stock", "threshold": 10.0, "by": 2028}],
                         horizon=2028, seed=2)
    plan = build_plan(make_scenario(data))
    top = plan.sketch_lo[0] + plan.sketch_width[0] * (plan.n_bins - 2)
    far = x0 + _gamma_poisson(m, s, years).isf(plan.arrays["sketch_tail"])
    assert math.exp(top) > far
