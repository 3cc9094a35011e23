"""A ``scheduled`` count: a count a government produces by decision, on a schedule; each planned unit is
delivered in its year with probability ``delivery``, and an undelivered one is carried to the next year with
probability ``carry_over`` (else lost). Checked against an exact enumeration of every unit's fate, the
closed form without carry-over (a binomial), the deterministic schedule (delivery 1), flow rules, the NumPy
reference, the parser's refusals, and reproducibility (threads, blocks). Fixed seeds; tolerances are 4.5
Monte Carlo standard errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

import targetsim
from targetsim.errors import ScenarioError
from tests.conftest import (
    assert_error_at, assert_matches_reference, assert_same_for_any_threads_and_blocks, edit_error, load_edited,
    make_scenario, mc_tolerance, scenario_dict,
)
from tests.reference_model import simulate as reference

N = 200_000
REFERENCE_PATHS = 400_000
K = 4.5  # standard errors


def scheduled(start: float, schedule: dict, delivery: float, carry_over: float | None = None) -> dict:
    process = {"kind": "scheduled", "schedule": schedule, "delivery": delivery}
    if carry_over is not None:
        process["carry_over"] = carry_over
    return {"start": {"value": start, "assumption": "test value"}, "process": process}


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


def stock_targets(ind: str, ks, by: int) -> list[dict]:
    return [{"id": f"ge{k}_{by}", "indicator": ind, "kind": "count_stock", "threshold": k, "by": by} for k in ks]


# ------------------------------------------------------------------ (1) exact enumeration

def enumerate_stock(start: int, planned: list[int], delivery: float, carry_over: float) -> list[dict[int, float]]:
    """The exact law of the stock in each year, by enumerating every unit's fate, unit by unit: a unit due in
    a year is delivered (``delivery``), carried to the next year (``(1 − delivery)·carry_over``) or lost
    (the rest); in the last year only delivered or not matters. ``planned[t]``: the additions planned in the
    t-th year after the base year. Plain Python: no binomial law anywhere."""
    laws: list[dict[int, float]] = [dict() for _ in planned]

    def year(t: int, carried: int, stock: int, p: float) -> None:
        due = planned[t] + carried
        last = t + 1 == len(planned)
        fates = ("delivered", "slipped") if last else ("delivered", "carried", "lost")
        chance = {"delivered": delivery, "slipped": 1.0 - delivery, "carried": (1.0 - delivery) * carry_over,
                  "lost": (1.0 - delivery) * (1.0 - carry_over)}
        for outcome in itertools.product(fates, repeat=due):
            q = p
            for fate in outcome:
                q *= chance[fate]
            now = stock + outcome.count("delivered")
            laws[t][now] = laws[t].get(now, 0.0) + q
            if not last:
                year(t + 1, outcome.count("carried"), now, q)

    year(0, 0, start, 1.0)
    return laws


def test_enumeration_is_a_law():
    laws = enumerate_stock(3, [2, 3], 0.7, 0.5)
    assert all(abs(sum(law.values()) - 1.0) < 1e-12 for law in laws)
    # the mean: 3 + 2·0.7, then + (3 + 2·0.3·0.5)·0.7
    assert abs(sum(k * p for k, p in laws[1].items()) - (3 + 1.4 + 3.3 * 0.7)) < 1e-12


@pytest.mark.parametrize("start, schedule, delivery, carry_over, seed", [
    (3, {2025: 2, 2026: 3}, 0.7, 0.5, 1),
    (0, {2025: 3, 2026: 0, 2027: 2}, 0.45, 0.8, 2),
])
def test_against_exact_enumeration(start, schedule, delivery, carry_over, seed):
    horizon = max(schedule)
    planned = [schedule.get(y, 0) for y in range(2025, horizon + 1)]
    laws = enumerate_stock(start, planned, delivery, carry_over)
    targets = []
    for t, law in enumerate(laws):
        targets += stock_targets("s", range(start + 1, max(law) + 1), 2025 + t)
    ds = run(scenario_dict({"s": scheduled(start, schedule, delivery, carry_over)}, targets, horizon=horizon,
                           seed=seed))
    for t, law in enumerate(laws):
        for k in range(start + 1, max(law) + 1):
            exact = sum(p for v, p in law.items() if v >= k)
            got = prob(ds, f"ge{k}_{2025 + t}")
            assert abs(got - exact) <= mc_tolerance(exact, N), (2025 + t, k, got, exact)
        mean = sum(v * p for v, p in law.items())
        sd = math.sqrt(sum((v - mean) ** 2 * p for v, p in law.items()))
        got_mean = float(ds.indicator_mean.sel(indicator="s", year=2025 + t))
        assert abs(got_mean - mean) <= K * sd / math.sqrt(N) + 1e-12, (got_mean, mean)
        assert int(ds.indicator_mean_is_defined.sel(indicator="s", year=2025 + t)) == 1


# ------------------------------------------------------------------ (2) no carry-over: a binomial

@pytest.mark.parametrize("schedule, delivery, seed", [
    ({2025: 4, 2026: 6, 2027: 5}, 0.8, 3),            # Bernoulli sums (≤ 64 units a draw)
    ({2025: 2000, 2026: 1500, 2027: 30}, 0.5, 4),     # inversion from 20 s.d. below the mean
    ({2025: 300, 2027: 90}, 0.93, 5),                 # inversion from 0, of the complement
])
def test_without_carry_over_the_stock_is_binomial(schedule, delivery, seed):
    start = 7
    total = sum(schedule.values())
    law = stats.binom(total, delivery)
    ks = sorted({int(law.ppf(q)) for q in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98)})
    data = scenario_dict({"s": scheduled(start, schedule, delivery)}, stock_targets("s", [start + k for k in ks], 2027),
                         seed=seed)
    ds = run(data)
    for k in ks:
        exact = float(law.sf(k - 1))
        got = prob(ds, f"ge{start + k}_2027")
        assert abs(got - exact) <= mc_tolerance(exact, N), (k, got, exact)
    got_mean = float(ds.indicator_mean.sel(indicator="s", year=2027))
    assert abs(got_mean - (start + law.mean())) <= K * law.std() / math.sqrt(N)


# ------------------------------------------------------------------ (3) delivery 1: the schedule itself

def test_delivery_one_follows_the_schedule_exactly():
    schedule = {2025: 10, 2026: 10, 2027: 12}
    path = {2024: 5, 2025: 15, 2026: 25, 2027: 37}
    targets = []
    for year in (2025, 2026, 2027):
        v = path[year]
        targets += [{"id": f"at{year}", "indicator": "s", "kind": "count_stock", "threshold": v, "by": year},
                    {"id": f"above{year}", "indicator": "s", "kind": "count_stock", "threshold": v + 1, "by": year},
                    {"id": f"below{year}", "indicator": "s", "kind": "level", "threshold": v, "by": year,
                     "comparator": "<"}]
    ds = run(scenario_dict({"s": scheduled(5, schedule, 1.0, 0.5)}, targets, seed=6), paths=20_000)
    for year in (2025, 2026, 2027):
        assert prob(ds, f"at{year}") == 1.0
        assert prob(ds, f"above{year}") == 0.0
        assert prob(ds, f"below{year}") == 0.0
    for year, v in path.items():
        q = ds.indicator_quantiles.sel(indicator="s", year=year).values
        np.testing.assert_array_equal(q, np.full(q.shape, float(v)))
        assert float(ds.indicator_mean.sel(indicator="s", year=year)) == v


def test_delivery_zero_never_moves():
    ds = run(scenario_dict({"s": scheduled(4, {2025: 9}, 0.0, 1.0)},
                           stock_targets("s", [4, 5], 2027)), paths=5_000)
    assert prob(ds, "ge4_2027") == 1.0 and prob(ds, "ge5_2027") == 0.0


# ------------------------------------------------------------------ (4) flow rules

def test_count_per_year_and_cumulative_without_carry_over():
    # each year's deliveries are independent Binomial(3, 0.8); over three years Binomial(9, 0.8)
    targets = [{"id": "each", "indicator": "s", "kind": "count_per_year", "threshold": 2, "by": 2027},
               {"id": "sum", "indicator": "s", "kind": "cumulative", "threshold": 8, "by": 2027},
               {"id": "first", "indicator": "s", "kind": "first_passage", "threshold": 16, "by": 2027},
               {"id": "cagr", "indicator": "s", "kind": "cagr", "threshold": 0.1, "by": 2027}]
    ds = run(scenario_dict({"s": scheduled(10, {2025: 3, 2026: 3, 2027: 3}, 0.8)}, targets, seed=8))
    exact = {"each": float(stats.binom.sf(1, 3, 0.8)) ** 3, "sum": float(stats.binom.sf(7, 9, 0.8)),
             # the stock only grows: first passage of 16 by 2027 is the stock ≥ 16 in 2027
             "first": float(stats.binom.sf(5, 9, 0.8)),
             # (S/10)^(1/3) − 1 ≥ 0.1: S ≥ 13.31, i.e. at least 4 delivered
             "cagr": float(stats.binom.sf(3, 9, 0.8))}
    for name, p in exact.items():
        assert abs(prob(ds, name) - p) <= mc_tolerance(p, N), (name, prob(ds, name), p)


def test_flow_rules_with_carry_over_against_the_reference():
    # a slipped unit may arrive the next year: deliveries are correlated across years
    targets = [{"id": "each", "indicator": "s", "kind": "count_per_year", "threshold": 3, "by": 2027},
               {"id": "sum", "indicator": "s", "kind": "cumulative", "threshold": 13, "by": 2027},
               {"id": "stock", "indicator": "s", "kind": "count_stock", "threshold": 20.5, "by": 2026},
               {"id": "tot", "indicator": "tot", "kind": "level", "threshold": 30.5, "by": 2027}]
    data = scenario_dict({"s": scheduled(8, {2025: 6, 2026: 4, 2027: 5}, 0.6, 0.7),
                          "c": {"start": {"value": 10, "assumption": "t"},
                                "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 2.0}}},
                          "tot": {"process": {"kind": "sum", "terms": ["s", "c"]}}}, targets, seed=9)
    ds = run(data)
    ref = reference(data, REFERENCE_PATHS, seed=10)
    assert_matches_reference(ds, ref, targets, K)


# ------------------------------------------------------------------ (5) the parser

SCENARIO = """\
name: scheduled test
base_year: 2024
horizon: 2027
paths: 1000
indicators:
  zones:
    start: {value: 4, assumption: test}
    process:
      kind: scheduled
      schedule: {2025: 10, 2026: 10, 2027: 12}
      delivery: 0.9
      carry_over: 0.5
  x:
    start: {value: 100, assumption: test}
    process: {kind: lognormal, growth: 0.05, volatility: 0.1}
targets:
  - {id: t, indicator: zones, kind: count_stock, threshold: 30, by: 2027}
"""


def _load(tmp_path, old: str = "", new: str = ""):
    return load_edited(tmp_path, SCENARIO, old, new)


def _error(tmp_path, old: str, new: str) -> ScenarioError:
    return edit_error(tmp_path, SCENARIO, old, new)


def test_the_form_loads_and_is_described(tmp_path):
    from targetsim.model.processes import PROCESS_SPECS, ScheduledProcess

    p = _load(tmp_path).indicator_by_id["zones"].process
    assert p == ScheduledProcess(schedule=((2025, 10), (2026, 10), (2027, 12)), delivery=0.9, carry_over=0.5)
    assert PROCESS_SPECS["scheduled"].describe(p) == \
        "scheduled: 10 in 2025, 10 in 2026, 12 in 2027; delivery 0.9, carry-over 0.5"
    # carry_over is optional (0: a slipped unit is lost); a year may be left out (it plans 0)
    p = _load(tmp_path, "      carry_over: 0.5\n", "").indicator_by_id["zones"].process
    assert p.carry_over == 0.0
    p = _load(tmp_path, "{2025: 10, 2026: 10, 2027: 12}", "{2026: 3}").indicator_by_id["zones"].process
    assert p.schedule == ((2026, 3),)


SCHEDULE = "indicators.zones.process.schedule"
PARSER_CASES = [
    # (replace this, with this, key path, line, words)
    ("2026: 10,", "2026: 2.5,", SCHEDULE + ".2026", 10, "planned additions are a whole number"),
    ("2026: 10,", "2026: -1,", SCHEDULE + ".2026", 10, "must be at least 0, got -1"),
    ("2025: 10,", "2024: 10,", SCHEDULE + ".2024", 10, "after the base year (2024)"),
    ("2027: 12}", "2028: 12}", SCHEDULE + ".2028", 10, "at most at the horizon (2027), got 2028"),
    ("delivery: 0.9", "delivery: 1.2", "indicators.zones.process.delivery", 11, "must be at most 1, got 1.2"),
    ("delivery: 0.9", "delivery: -0.1", "indicators.zones.process.delivery", 11, "must be at least 0, got -0.1"),
    ("carry_over: 0.5", "carry_over: 1.5", "indicators.zones.process.carry_over", 12, "must be at most 1"),
    ("carry_over: 0.5", "carry_ovr: 0.5", "indicators.zones.process.carry_ovr", 12,
     "unknown key 'carry_ovr'; did you mean 'carry_over'?"),
    ("      delivery: 0.9\n", "", "indicators.zones.process", 8, "missing required key 'delivery'"),
    ("{2025: 10, 2026: 10, 2027: 12}", "[10, 10, 12]", SCHEDULE, 10, "expected a mapping year: planned additions"),
    ("start: {value: 4,", "start: {value: 4.5,", "indicators.zones.start", 7, "a whole number"),
    ("start: {value: 4,", "start: {low: 2.5, high: 6, law: uniform,", "indicators.zones.start.low", 7,
     "a scheduled count's uniform start is drawn on the whole numbers low..high"),
]


@pytest.mark.parametrize("old, new, key, line, words", PARSER_CASES, ids=[c[2] + ":" + c[4] for c in PARSER_CASES])
def test_the_parser_names_file_key_and_line(tmp_path, old, new, key, line, words):
    err = _error(tmp_path, old, new)
    assert_error_at(err, key, line, words)


@pytest.mark.parametrize("addition, words", [
    ("correlations: [[zones, x, 0.5]]\n", "it has no yearly shock of its own"),
    ("jumps: [{probability: 0.1, effects: {zones: 0.2}}]\n", "zones is a scheduled"),
    ("observations: {zones: {2025: 12}}\n", "observations of a scheduled indicator are not supported"),
])
def test_correlations_jumps_and_observations_are_refused(tmp_path, addition, words):
    err = _error(tmp_path, "targets:\n", addition + "targets:\n")
    assert words in err.reason, err.reason


def test_count_targets_accept_it():
    for kind in ("count_stock", "level", "count_per_year", "cumulative", "first_passage"):
        make_scenario(scenario_dict({"s": scheduled(1, {2025: 2}, 0.5)},
                                    [{"id": "t", "indicator": "s", "kind": kind, "threshold": 1.5, "by": 2027}]))


# ------------------------------------------------------------------ (6) reproducibility

def test_bit_identical_for_any_threads_and_blocks():
    data = scenario_dict({
        "s": scheduled(3, {2025: 10, 2026: 10, 2027: 12}, 0.9, 0.5),
        "big": scheduled(0, {2025: 900, 2026: 40}, 0.55, 0.3),
        "c": {"start": {"value": 5, "assumption": "t"},
              "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": {"mean": 2.0, "sd": 0.5}}}},
        "x": {"start": {"value": 100, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": 0.1}},
        "tot": {"process": {"kind": "sum", "terms": ["s", "c"]}}},
        [{"id": "s", "indicator": "s", "kind": "count_stock", "threshold": 30, "by": 2027},
         {"id": "py", "indicator": "big", "kind": "count_per_year", "threshold": 10, "by": 2026},
         {"id": "tot", "indicator": "tot", "kind": "cumulative", "threshold": 25, "by": 2027},
         {"id": "x", "indicator": "x", "kind": "level", "threshold": 110, "by": 2027}], seed=12)
    assert_same_for_any_threads_and_blocks(make_scenario(data))


# ------------------------------------------------------------------ the sampler

@pytest.mark.parametrize("n, p", [(10, 0.3), (64, 0.9), (65, 0.2), (5000, 0.5), (100_000, 0.02), (3000, 0.97)])
def test_the_binomial_sampler_against_scipy(n, p):
    from targetsim.kernels.distributions import next_binomial
    from targetsim.kernels.rng import key_from_seed, seed_path_state

    state = np.zeros(4, dtype=np.uint64)
    seed_path_state(key_from_seed(n), 0, state)
    draws = np.array([next_binomial(state, n, p) for _ in range(40_000)])
    law = stats.binom(n, p)
    # the counts in bins of about equal expected mass, against their expected numbers
    edges = np.unique(law.ppf(np.linspace(0.0, 1.0, 21)[1:-1]).astype(int))
    cells = np.searchsorted(edges, draws, side="right")
    observed = np.bincount(cells, minlength=len(edges) + 1)
    cdf = np.concatenate([[0.0], law.cdf(edges - 1), [1.0]])
    # cell j holds edges[j-1] ≤ x < edges[j]: its mass is F(edges[j] − 1) − F(edges[j-1] − 1)
    expected = np.diff(cdf) * len(draws)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, len(expected) - 1) > 1e-4, (chi2, observed, expected)


def test_the_binomial_sampler_edges():
    from targetsim.kernels.distributions import INVALID_COUNT, next_binomial

    state = np.zeros(4, dtype=np.uint64)
    state[0] = 1
    before = state.copy()
    assert next_binomial(state, 0, 0.5) == 0 and next_binomial(state, 7, 0.0) == 0 and next_binomial(state, 7, 1.0) == 7
    np.testing.assert_array_equal(state, before)  # drew nothing
    assert next_binomial(state, 2.5, 0.5) == INVALID_COUNT and next_binomial(state, 5, 1.5) == INVALID_COUNT
