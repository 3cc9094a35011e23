"""A scheduled count's programme-level risk: ``delivery: {mean, sd}`` (and ``carry_over: {mean, sd}``), each
path drawing its own probability once from the Beta law with that mean and s.d., then every unit of that path
delivered (carried) with it.

Checked against exact laws: without carry-over the units delivered out of ``N`` are beta-binomial, here
from SciPy's ``betabinom`` and, independently, as ``∫ P(Binomial(N, δ) ≥ c) Beta(δ; a, b) dδ`` by
quadrature; with carry-over, the exact enumeration of every unit's fate (tests/test_scheduled.py) integrated
over the Beta law, and the independent NumPy reference (both probabilities uncertain). Also: the mean is
``N·m`` and the variance above the binomial's; ``sd → 0`` recovers the plain number (within Monte Carlo
error, and bit for bit where nothing is drawn); the kernel against its plain-Python twin; bit-identity for
any threads and blocks; the beta sampler against SciPy; the parser's refusals. Fixed seeds; tolerances are
4.5 Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import targetsim
from targetsim.kernels.geometry import LANES
from targetsim.kernels.rng import key_from_seed
from tests.conftest import (
    assert_error_at, assert_matches_reference, assert_same_for_any_threads_and_blocks, make_scenario, mc_tolerance,
    scenario_dict,
)
from tests.reference_model import simulate as reference
from tests.test_scheduled import SCENARIO, _error, _load, enumerate_stock, prob, run, stock_targets

N = 200_000
REFERENCE_PATHS = 400_000
K = 4.5  # standard errors


def programme(start: float, schedule: dict, delivery, carry_over=None) -> dict:
    process = {"kind": "scheduled", "schedule": schedule, "delivery": delivery}
    if carry_over is not None:
        process["carry_over"] = carry_over
    return {"start": {"value": start, "assumption": "test value"}, "process": process}


def shapes(mean: float, sd: float) -> tuple[float, float]:
    kappa = mean * (1 - mean) / sd**2 - 1
    return mean * kappa, (1 - mean) * kappa


def beta_binomial_sf(n: int, k: int, a: float, b: float) -> float:
    """P(X ≥ k), X beta-binomial, by quadrature of the binomial's tail against the Beta density (SciPy's
    betabinom not used): an independent check of the closed form."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0

    def integrand(d: float) -> float:
        return float(stats.binom.sf(k - 1, n, d)) * float(stats.beta.pdf(d, a, b))

    # the Beta density may be infinite at an end (a or b below 1): split at its mean, quad handles the ends
    m = a / (a + b)
    left, _ = integrate.quad(integrand, 0.0, m, limit=200, epsabs=1e-12, epsrel=1e-10)
    right, _ = integrate.quad(integrand, m, 1.0, limit=200, epsabs=1e-12, epsrel=1e-10)
    return left + right


# ------------------------------------------------------------------ (1) no carry-over: beta-binomial

@pytest.mark.parametrize("schedule, mean, sd, seed", [
    ({2025: 200, 2026: 200, 2027: 200}, 0.9, 0.05, 1),   # the trade-fair programme: inversion, shapes > 1
    ({2025: 4, 2026: 6, 2027: 5}, 0.7, 0.2, 2),          # Bernoulli sums, shapes 2.98 and 1.28
    ({2025: 30, 2027: 50}, 0.5, 0.4, 3),                 # shapes 0.28: the gamma boost, δ near 0 or 1
    ({2025: 2000, 2026: 1500}, 0.3, 0.01, 4),            # a tight law: close to the binomial
])
def test_without_carry_over_the_stock_is_beta_binomial(schedule, mean, sd, seed):
    start = 5
    total = sum(schedule.values())
    a, b = shapes(mean, sd)
    law = stats.betabinom(total, a, b)
    ks = sorted({int(law.ppf(q)) for q in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98)} - {0})
    ds = run(scenario_dict({"s": programme(start, schedule, {"mean": mean, "sd": sd})},
                           stock_targets("s", [start + k for k in ks], 2027), seed=seed))
    for k in ks:
        exact = float(law.sf(k - 1))
        assert abs(exact - beta_binomial_sf(total, k, a, b)) < 1e-7, k  # the closed form, two ways
        got = prob(ds, f"ge{start + k}_2027")
        assert abs(got - exact) <= mc_tolerance(exact, N), (k, got, exact)
    got_mean = float(ds.indicator_mean.sel(indicator="s", year=2027))
    assert abs(got_mean - (start + total * mean)) <= K * law.std() / math.sqrt(N), (got_mean, start + total * mean)


def test_the_programme_is_no_longer_near_certain():
    """600 participations planned, 500 needed: P ≈ 1.00 with independent units at 0.9; with the programme's
    own rate (0.9 ± 0.05) the exact P(≥ 500) is 0.894, and the simulation finds it."""
    schedule = {2025: 200, 2026: 200, 2027: 200}
    targets = [{"id": "t", "indicator": "s", "kind": "count_stock", "threshold": 500, "by": 2027}]
    plain = prob(run(scenario_dict({"s": programme(0, schedule, 0.9)}, targets, seed=5)), "t")
    risky = prob(run(scenario_dict({"s": programme(0, schedule, {"mean": 0.9, "sd": 0.05})}, targets, seed=5)), "t")
    a, b = shapes(0.9, 0.05)
    exact = float(stats.betabinom(600, a, b).sf(499))
    assert plain > 0.9999 and float(stats.binom(600, 0.9).sf(499)) > 0.9999
    assert abs(exact - 0.8943) < 1e-4
    assert abs(risky - exact) <= mc_tolerance(exact, N), (risky, exact)


def test_mean_is_n_m_and_variance_exceeds_the_binomial():
    """The whole law of 15 units' deliveries from the stock's thresholds 1..15: its mean is N·m, its
    variance the beta-binomial's N·m(1 − m)(1 + (N − 1)/(κ + 1)), above the binomial's N·m(1 − m) by more
    than the Monte Carlo error allows (a kernel that drew δ per unit, not per path, would fail it)."""
    schedule, mean, sd = {2025: 5, 2026: 5, 2027: 5}, 0.6, 0.15
    total = 15
    ds = run(scenario_dict({"s": programme(0, schedule, {"mean": mean, "sd": sd})},
                           stock_targets("s", range(1, total + 1), 2027), seed=6))
    sf = np.array([1.0] + [prob(ds, f"ge{k}_2027") for k in range(1, total + 1)] + [0.0])
    pmf = sf[:-1] - sf[1:]  # P(X = k), k = 0..15
    k = np.arange(total + 1)
    m1 = float((k * pmf).sum())
    var = float(((k - m1) ** 2 * pmf).sum())
    kappa = mean * (1 - mean) / sd**2 - 1
    exact_var = total * mean * (1 - mean) * (1 + (total - 1) / (kappa + 1))
    binomial_var = total * mean * (1 - mean)
    m4 = float(((k - m1) ** 4 * pmf).sum())
    se_var = math.sqrt((m4 - var**2) / N)  # the s.e. of a sample variance
    assert abs(m1 - total * mean) <= K * math.sqrt(exact_var / N), (m1, total * mean)
    assert abs(float(ds.indicator_mean.sel(indicator="s", year=2027)) - total * mean) <= K * math.sqrt(exact_var / N)
    assert abs(var - exact_var) <= K * se_var, (var, exact_var, se_var)
    assert var - binomial_var > K * se_var, (var, binomial_var, se_var)


def test_each_year_delivers_from_the_same_rate():
    """One δ per path for every year: two years' deliveries are correlated (their covariance is
    n₁n₂·Var δ), so P(both years deliver all their units) is E[δ^(n₁+n₂)], not the product of the years';
    ``count_per_year`` ≥ 3 (at least 3 of 4, then all 3): E[(4δ³(1 − δ) + δ⁴)·δ³]."""
    mean, sd = 0.8, 0.15
    a, b = shapes(mean, sd)
    targets = [{"id": "y1", "indicator": "s", "kind": "in_year", "threshold": 4, "by": 2025},
               {"id": "y2", "indicator": "s", "kind": "in_year", "threshold": 3, "by": 2026},
               {"id": "each", "indicator": "s", "kind": "count_per_year", "threshold": 3, "by": 2026}]
    ds = run(scenario_dict({"s": programme(0, {2025: 4, 2026: 3}, {"mean": mean, "sd": sd})}, targets, horizon=2026,
                           seed=7))

    def moment(j: int) -> float:  # E[δ^j] of the Beta law
        return float(np.prod([(a + i) / (a + b + i) for i in range(j)]))

    exact = {"y1": moment(4), "y2": moment(3), "each": 4 * (moment(6) - moment(7)) + moment(7)}
    for name, p in exact.items():
        assert abs(prob(ds, name) - p) <= mc_tolerance(p, N), (name, prob(ds, name), p)
    assert moment(7) > moment(4) * moment(3) + 0.05  # all 7 delivered: not the product of the years'
    independent = (4 * (moment(3) - moment(4)) + moment(4)) * moment(3)
    assert exact["each"] - independent > 10 * mc_tolerance(exact["each"], N)


# ------------------------------------------------------------------ (2) with carry-over

def test_with_carry_over_against_the_enumeration_integrated_over_the_beta_law():
    """Uncertain delivery, a known carry-over: each year's law of the stock is the exact enumeration of
    every unit's fate at delivery δ, integrated over δ ~ Beta. The enumeration's probabilities are
    polynomials in δ of degree at most 3·6 = 18, so Gauss–Jacobi quadrature with 16 nodes (exact to degree
    31 against the weight δ^(a−1)(1 − δ)^(b−1)) integrates them exactly."""
    start, schedule, mean, sd, carry = 2, {2025: 3, 2026: 2, 2027: 1}, 0.65, 0.2, 0.6
    a, b = shapes(mean, sd)
    planned = [schedule[y] for y in (2025, 2026, 2027)]
    top = start + sum(planned)
    targets = []
    for year in (2025, 2026, 2027):
        targets += stock_targets("s", range(start + 1, top + 1), year)
    ds = run(scenario_dict({"s": programme(start, schedule, {"mean": mean, "sd": sd}, carry)}, targets, seed=8))
    x, w = special.roots_jacobi(16, b - 1.0, a - 1.0)  # weight (1 − x)^(b−1)(1 + x)^(a−1) on [−1, 1]
    w = w / w.sum()
    laws = [enumerate_stock(start, planned, (1.0 + xj) / 2.0, carry) for xj in x]  # at δ = (1 + x)/2
    for t, year in enumerate((2025, 2026, 2027)):
        law = {v: sum(wj * lw[t].get(v, 0.0) for wj, lw in zip(w, laws)) for v in range(start, top + 1)}
        assert abs(sum(law.values()) - 1.0) < 1e-12
        for k in range(start + 1, top + 1):
            exact = sum(p for v, p in law.items() if v >= k)
            got = prob(ds, f"ge{k}_{year}")
            assert abs(got - exact) <= mc_tolerance(exact, N), (year, k, got, exact)
    # no carry-over and this quadrature agree with SciPy's beta-binomial (the quadrature's check)
    plain = [enumerate_stock(start, planned, (1.0 + xj) / 2.0, 0.0)[2] for xj in x]
    for k in range(start, top + 1):
        quadrature = sum(wj * lw.get(k, 0.0) for wj, lw in zip(w, plain))
        assert abs(quadrature - float(stats.betabinom(sum(planned), a, b).pmf(k - start))) < 1e-12


def test_both_probabilities_uncertain_against_the_reference():
    targets = [{"id": "stock", "indicator": "s", "kind": "count_stock", "threshold": 40.5, "by": 2027},
               {"id": "early", "indicator": "s", "kind": "count_stock", "threshold": 20.5, "by": 2026},
               {"id": "each", "indicator": "s", "kind": "count_per_year", "threshold": 9, "by": 2027},
               {"id": "sum", "indicator": "s", "kind": "cumulative", "threshold": 30, "by": 2027},
               {"id": "tot", "indicator": "tot", "kind": "level", "threshold": 55.5, "by": 2027}]
    data = scenario_dict({"s": programme(10, {2025: 12, 2026: 12, 2027: 14}, {"mean": 0.75, "sd": 0.15},
                                         {"mean": 0.5, "sd": 0.25}),
                          "c": {"start": {"value": 10, "assumption": "t"},
                                "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 2.0}}},
                          "tot": {"process": {"kind": "sum", "terms": ["s", "c"]}}}, targets, seed=9)
    ds = run(data)
    ref = reference(data, REFERENCE_PATHS, seed=10)
    assert_matches_reference(ds, ref, targets, K)


# ------------------------------------------------------------------ (3) sd → 0: the plain number

def test_a_tiny_sd_recovers_the_plain_number():
    """sd 1e-6 (κ ≈ 2·10¹¹: drawn per path, but all but fixed) gives the binomial law of the plain number
    within Monte Carlo error."""
    schedule, start = {2025: 300, 2026: 300}, 0
    law = stats.binom(600, 0.7)
    ks = [int(law.ppf(q)) for q in (0.05, 0.3, 0.5, 0.7, 0.95)]
    ds = run(scenario_dict({"s": programme(start, schedule, {"mean": 0.7, "sd": 1e-6})},
                           stock_targets("s", ks, 2026), seed=11))
    for k in ks:
        exact = float(law.sf(k - 1))
        assert abs(prob(ds, f"ge{k}_2026") - exact) <= mc_tolerance(exact, N), (k, prob(ds, f"ge{k}_2026"), exact)


def test_sd_zero_draws_nothing():
    """``{mean, sd: 0}`` (and an sd so small that κ overflows a double) is the plain number, bit for bit, as
    are the other indicators' numbers: nothing is drawn."""
    def data(delivery, carry):
        return scenario_dict({"s": programme(3, {2025: 10, 2026: 40, 2027: 12}, delivery, carry),
                              "x": {"start": {"value": 100, "assumption": "t"},
                                    "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02},
                                                "volatility": 0.1}}},
                             [{"id": "s", "indicator": "s", "kind": "count_stock", "threshold": 50, "by": 2027},
                              {"id": "x", "indicator": "x", "kind": "level", "threshold": 110, "by": 2027}], seed=12)

    plain = run(data(0.8, 0.4), paths=20_000)
    for delivery, carry in [({"mean": 0.8, "sd": 0}, {"mean": 0.4, "sd": 0.0}), ({"mean": 0.8, "sd": 1e-170}, 0.4),
                            ({"mean": 0.8}, 0.4)]:
        other = run(data(delivery, carry), paths=20_000)
        for name in plain.data_vars:
            if name != "indicator_process":
                np.testing.assert_array_equal(plain[name].values, other[name].values, err_msg=name)


# ------------------------------------------------------------------ (4) the kernel and its twin

def test_the_kernel_agrees_with_its_twin():
    from tests.test_kernel_twin import _agree_path_by_path

    data = scenario_dict({
        "s": programme(3, {2025: 10, 2026: 10, 2027: 12}, {"mean": 0.8, "sd": 0.2}, {"mean": 0.5, "sd": 0.3}),
        "p": programme(0, {2025: 90, 2026: 0, 2027: 70}, {"mean": 0.5, "sd": 0.45}),  # shapes 0.117
        "k": programme(1, {2025: 3}, 0.9, 0.2),
        "c": {"start": {"value": 5, "assumption": "t"},
              "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": {"mean": 2.0, "sd": 0.5}}}},
        "tot": {"process": {"kind": "sum", "terms": ["s", "p", "k", "c"]}}},
        [{"id": "s", "indicator": "s", "kind": "count_stock", "threshold": 20.5, "by": 2027},
         {"id": "p", "indicator": "p", "kind": "count_per_year", "threshold": 1, "by": 2026},
         {"id": "tot", "indicator": "tot", "kind": "cumulative", "threshold": 60, "by": 2027}], seed=13)
    plan = _agree_path_by_path(data)
    assert list(plan.arrays["s_delivery_kappa"][:3] > 0) == [True, True, False]
    assert list(plan.arrays["s_carry_kappa"][:3] > 0) == [True, False, False]


def test_each_path_draws_its_own_rate_from_the_beta_law():
    """The kernel's per-path probabilities: in [0, 1], one per path, with the Beta law's mean and s.d.
    (two groups' worth); a known probability draws none (left NaN as allocated, never read)."""
    from targetsim.engine.plan import build_plan
    from tests.kernel_twin import kernel_group

    plan = build_plan(make_scenario(scenario_dict(
        {"s": programme(0, {2025: 10}, {"mean": 0.3, "sd": 0.1}, 0.5), "k": programme(0, {2025: 10}, 0.3)},
        stock_targets("s", [3], 2027))))
    rates = np.concatenate([kernel_group(plan, key_from_seed(14), first, LANES)[0].s_dlv[0]
                            for first in range(0, 8 * LANES, LANES)])
    draws, _ = kernel_group(plan, key_from_seed(14), 0, LANES)
    assert ((rates > 0) & (rates < 1)).all() and np.unique(rates).size == rates.size
    law = stats.beta(*shapes(0.3, 0.1))
    assert abs(law.std() - 0.1) < 1e-12
    assert abs(rates.mean() - 0.3) < K * 0.1 / math.sqrt(rates.size)
    kurtosis = float(law.stats(moments="k")) + 3.0  # μ4/σ⁴: the s.e. of a sample variance, sqrt((μ4 − σ⁴)/n)
    assert abs(rates.var() - 0.01) < K * 0.01 * math.sqrt((kurtosis - 1.0) / rates.size)
    assert np.isnan(draws.s_car[0]).all() and np.isnan(draws.s_dlv[1]).all()


@pytest.mark.parametrize("mean, kappa", [(0.9, 35.0), (0.5, 0.5), (0.02, 3.0), (0.97, 0.05), (0.4, 1e8)])
def test_the_beta_sampler_against_scipy(mean, kappa):
    from targetsim.kernels.paths import next_beta_mean
    from targetsim.kernels.rng import seed_path_state

    state = np.zeros(4, dtype=np.uint64)
    seed_path_state(key_from_seed(int(kappa * 100) + 1), 0, state)
    draws = np.array([next_beta_mean(state, mean, kappa) for _ in range(40_000)])
    assert ((draws >= 0) & (draws <= 1)).all()
    law = stats.beta(mean * kappa, (1 - mean) * kappa)
    assert abs(draws.mean() - mean) < K * law.std() / math.sqrt(draws.size)
    # the counts in 20 cells of equal mass against their expected numbers (chi-square); with tiny shapes
    # most of the mass lies within a double of 0 or 1 (its draws are exactly 0 or 1): cells whose edges
    # coincide there merge, and the draws at the ends fall in the first and last cells
    edges = np.unique(law.ppf(np.linspace(0.0, 1.0, 21)[1:-1]))
    edges = edges[(edges > 0.0) & (edges < 1.0)]
    observed = np.bincount(np.searchsorted(edges, draws, side="right"), minlength=len(edges) + 1)
    expected = np.diff(np.concatenate([[0.0], law.cdf(edges), [1.0]])) * draws.size
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, len(expected) - 1) > 1e-4, (chi2, observed, expected)


# ------------------------------------------------------------------ (5) reproducibility

def test_bit_identical_for_any_threads_and_blocks():
    data = scenario_dict({
        "s": programme(3, {2025: 10, 2026: 10, 2027: 12}, {"mean": 0.9, "sd": 0.05}, {"mean": 0.5, "sd": 0.2}),
        "big": programme(0, {2025: 900, 2026: 40}, {"mean": 0.55, "sd": 0.3}, 0.3),
        "c": {"start": {"value": 5, "assumption": "t"},
              "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": {"mean": 2.0, "sd": 0.5}}}},
        "x": {"start": {"value": 100, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": 0.1}},
        "tot": {"process": {"kind": "sum", "terms": ["s", "c"]}}},
        [{"id": "s", "indicator": "s", "kind": "count_stock", "threshold": 30, "by": 2027},
         {"id": "py", "indicator": "big", "kind": "count_per_year", "threshold": 10, "by": 2026},
         {"id": "tot", "indicator": "tot", "kind": "cumulative", "threshold": 25, "by": 2027},
         {"id": "x", "indicator": "x", "kind": "level", "threshold": 110, "by": 2027}], seed=15)
    assert_same_for_any_threads_and_blocks(make_scenario(data))


# ------------------------------------------------------------------ (6) the parser and the dataset

def test_the_form_loads_and_is_described(tmp_path):
    from targetsim.model.processes import PROCESS_SPECS, ScheduledProcess

    p = _load(tmp_path, "delivery: 0.9", "delivery: {mean: 0.9, sd: 0.05}").indicator_by_id["zones"].process
    assert p == ScheduledProcess(schedule=((2025, 10), (2026, 10), (2027, 12)), delivery=0.9, carry_over=0.5,
                                 delivery_sd=0.05)
    assert PROCESS_SPECS["scheduled"].describe(p) == (
        "scheduled: 10 in 2025, 10 in 2026, 12 in 2027; delivery 0.9 ± 0.05 (per path, beta: programme-level "
        "risk), carry-over 0.5")
    p = _load(tmp_path, "carry_over: 0.5", "carry_over: {mean: 0.5, sd: 0.1}").indicator_by_id["zones"].process
    assert (p.delivery, p.delivery_sd, p.carry_over, p.carry_over_sd) == (0.9, 0.0, 0.5, 0.1)
    # the dataset says it
    scenario = _load(tmp_path, "delivery: 0.9", "delivery: {mean: 0.9, sd: 0.05}")
    ds = targetsim.run(scenario, paths=2_000).isel(scenario=0)
    assert "0.9 ± 0.05 (per path, beta" in str(ds.indicator_process.sel(indicator="zones").values)


DELIVERY = "indicators.zones.process.delivery"
CARRY = "indicators.zones.process.carry_over"
PARSER_CASES = [
    # (replace this, with this, key path, line, words)
    ("delivery: 0.9", "delivery: {mean: 0.9, sd: 0.3}", DELIVERY + ".sd", 11,
     "must be below sqrt(mean·(1 − mean)) = 0.3 (no law on [0, 1] with that mean has a larger one), got 0.3"),
    ("delivery: 0.9", "delivery: {mean: 0.5, sd: 0.6}", DELIVERY + ".sd", 11, "must be below sqrt(mean·(1 − mean))"),
    ("delivery: 0.9", "delivery: {mean: 1, sd: 0.01}", DELIVERY + ".mean", 11, "strictly between 0 and 1, got 1"),
    ("delivery: 0.9", "delivery: {mean: 0, sd: 0.01}", DELIVERY + ".mean", 11, "strictly between 0 and 1, got 0"),
    ("delivery: 0.9", "delivery: {mean: 1.2, sd: 0.01}", DELIVERY + ".mean", 11, "must be at most 1, got 1.2"),
    ("delivery: 0.9", "delivery: {mean: 0.9, sd: -0.1}", DELIVERY + ".sd", 11, "must be at least 0, got -0.1"),
    ("delivery: 0.9", "delivery: {mean: 0.9, sd: high}", DELIVERY + ".sd", 11, "expected a number"),
    ("delivery: 0.9", "delivery: {sd: 0.05}", DELIVERY, 11, "missing required key 'mean'"),
    ("delivery: 0.9", "delivery: {mean: 0.9, sigma: 0.05}", DELIVERY + ".sigma", 11, "unknown key 'sigma'"),
    ("carry_over: 0.5", "carry_over: {mean: 0.5, sd: 0.5}", CARRY + ".sd", 12,
     "must be below sqrt(mean·(1 − mean))"),
    ("carry_over: 0.5", "carry_over: {mean: 0, sd: 0.1}", CARRY + ".mean", 12, "strictly between 0 and 1"),
]


@pytest.mark.parametrize("old, new, key, line, words", PARSER_CASES, ids=[c[2] + ":" + c[4][:40] for c in PARSER_CASES])
def test_the_parser_names_file_key_and_line(tmp_path, old, new, key, line, words):
    assert old in SCENARIO
    assert_error_at(_error(tmp_path, old, new), key, line, words)
