"""An uncertain start for a ``count`` or ``scheduled`` count: ``start: {low, high[, law]}``, drawn once per
path as a whole number (``law: uniform``: uniform on the whole numbers low..high; the default log-normal,
with 5 % and 95 % quantiles at low and high, rounded to the nearest whole number). Everything follows from
the path's start: the stock, its base year (rules that count the base year are evaluated path by path),
and the quantile sketch; the additions (cumulative, in_year, count_per_year) do not include the start, and
are drawn exactly as with a known start (the start is drawn after them). Checked against closed forms
(Poisson and negative-binomial stocks convolved with the start's exact law, a scheduled count by exact
enumeration), the same paths with a known start, the kernel's plain-Python twin, the NumPy reference
model, the parser's refusals and reproducibility across threads and blocks. Fixed seeds; tolerances are
4.5 Monte Carlo standard errors."""

from __future__ import annotations

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

N = 200_000
K = 4.5  # standard errors
Z95 = stats.norm.ppf(0.95)


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def prob(ds, target: str) -> float:
    return float(ds.attainment_probability.sel(target=target))


def base_year_prob(ds, target: str) -> float:
    return float(ds.attainment_by_year.sel(target=target).isel(year=0))


def count(start: dict, distribution: str = "poisson", mean: float = 60.0, dispersion: float | None = None) -> dict:
    additions = {"distribution": distribution, "mean": mean}
    if dispersion is not None:
        additions["dispersion"] = dispersion
    return {"start": {**start, "assumption": "test range"}, "process": {"kind": "count", "additions": additions}}


def stock_targets(ind: str, thresholds, by: int, kind: str = "count_stock") -> list[dict]:
    return [{"id": f"{ind}_{kind}_{c}", "indicator": ind, "kind": kind, "threshold": c, "by": by} for c in thresholds]


def uniform_pmf(low: int, high: int) -> dict[int, float]:
    return {s: 1.0 / (high - low + 1) for s in range(low, high + 1)}


def rounded_lognormal_pmf(low: float, high: float) -> dict[int, float]:
    """The exact law of ``round(X)``, ``ln X`` normal with 5 % and 95 % quantiles at ``ln low``, ``ln high``:
    ``P(k) = P(k − ½ ≤ X < k + ½)`` from the normal CDF (``P(0) = P(X < ½)``), out to 1e-15 of the mass."""
    mu, sd = 0.5 * (math.log(low) + math.log(high)), (math.log(high) - math.log(low)) / (2 * Z95)
    cdf = lambda x: stats.norm.cdf((math.log(x) - mu) / sd) if x > 0 else 0.0  # noqa: E731
    top = int(math.exp(mu + 9 * sd)) + 2
    return {k: cdf(k + 0.5) - cdf(k - 0.5) for k in range(0, top)}


def stock_sf(start: dict[int, float], c: int, additions_sf) -> float:
    """``P(start + A ≥ c) = Σ_s P(start = s)·P(A ≥ c − s)``; ``additions_sf(m) = P(A ≥ m)``."""
    return sum(p * (additions_sf(c - s) if c - s > 0 else 1.0) for s, p in start.items())


# ------------------------------------------------------------------ (1) Poisson additions, uniform start

POISSON_THRESHOLDS = [1300, 1380, 1450, 1500, 1560]


def test_a_poisson_stock_from_a_uniform_whole_start():
    """S_T = U + Poisson(λT), U uniform on 1200..1400: P(S_T ≥ c) = mean over s of P(Poisson(λT) ≥ c − s)."""
    lam, years, low, high = 60.0, 3, 1200, 1400
    targets = stock_targets("c", POISSON_THRESHOLDS, 2024 + years)
    ds = run(scenario_dict({"c": count({"low": low, "high": high, "law": "uniform"}, mean=lam)}, targets, seed=41))
    start = uniform_pmf(low, high)
    for c, t in zip(POISSON_THRESHOLDS, targets):
        exact = stock_sf(start, c, lambda m: stats.poisson.sf(m - 1, lam * years))
        assert abs(prob(ds, t["id"]) - exact) < mc_tolerance(exact, N, K), (c, prob(ds, t["id"]), exact)
    # the base year is each path's own start: P(U ≥ 1300) = 101/201, P(U ≥ 1380) = 21/201
    for c, exact in ((1300, 101 / 201), (1380, 21 / 201), (1450, 0.0)):
        got = base_year_prob(ds, f"c_count_stock_{c}")
        assert abs(got - exact) < mc_tolerance(exact, N, K), (c, got, exact)
    # the sketch covers the start: the base year's quantiles are the whole numbers of the uniform law
    q0 = ds.indicator_quantiles.sel(indicator="c").isel(year=0)
    for quantile in (0.05, 0.5, 0.95):
        exact = low + quantile * (high - low + 1)
        assert abs(float(q0.sel(quantile=quantile)) - exact) <= 2.0, (quantile, float(q0.sel(quantile=quantile)))
        assert float(q0.sel(quantile=quantile)) == round(float(q0.sel(quantile=quantile)))
    # every later year's quantile is on the grid too (none NaN), and the start is the law's (lower) median
    assert np.isfinite(ds.indicator_quantiles.sel(indicator="c").values).all()
    assert float(ds.indicator_start.sel(indicator="c")) == 1300
    assert (float(ds.indicator_start_low.sel(indicator="c")), float(ds.indicator_start_high.sel(indicator="c"))) \
        == (1200, 1400)
    assert str(ds.indicator_start_law.sel(indicator="c").values) == "uniform"


# ------------------------------------------------------------------ (2) negative binomial, log-normal rounded start

def test_a_negative_binomial_stock_from_a_rounded_lognormal_start():
    """S_T = round(X) + NB: the start's exact law from the normal CDF, convolved with the sum of T yearly
    negative binomials (mean m, dispersion r: NB(T·r, r/(r+m)) in scipy's parameters)."""
    m, r, years, low, high = 5.0, 2.0, 3, 20.0, 60.0
    thresholds = [30, 40, 55, 70, 100]
    targets = stock_targets("n", thresholds, 2027) + [
        {"id": "lvl50", "indicator": "n", "kind": "level", "threshold": 50, "by": 2027},
        {"id": "fp50", "indicator": "n", "kind": "first_passage", "threshold": 50, "by": 2027}]
    ds = run(scenario_dict({"n": count({"low": low, "high": high}, "negative_binomial", m, r)}, targets, seed=43))
    start = rounded_lognormal_pmf(low, high)
    assert abs(sum(start.values()) - 1.0) < 1e-12
    nb = stats.nbinom(years * r, r / (r + m))
    for c in [*thresholds, 50]:
        exact = stock_sf(start, c, lambda k: nb.sf(k - 1))
        got = prob(ds, f"n_count_stock_{c}") if c != 50 else prob(ds, "lvl50")
        assert abs(got - exact) < mc_tolerance(exact, N, K), (c, got, exact)
    # a stock never falls: first passage by 2027 is the level in 2027, path by path
    assert prob(ds, "fp50") == prob(ds, "lvl50")
    # the base year, path by path: the target is already met where round(X) ≥ 50, i.e. X ≥ 49.5
    met = float(stats.norm.sf((math.log(49.5) - 0.5 * math.log(low * high)) / (math.log(high / low) / (2 * Z95))))
    for target in ("lvl50", "fp50"):
        assert abs(base_year_prob(ds, target) - met) < mc_tolerance(met, N, K), (target, base_year_prob(ds, target))
    # the recorded start: the rounded median, the range as given
    assert float(ds.indicator_start.sel(indicator="n")) == round(math.sqrt(low * high))
    assert str(ds.indicator_start_law.sel(indicator="n").values) == "lognormal"
    q0 = ds.indicator_quantiles.sel(indicator="n").isel(year=0)
    cum = np.cumsum([start[k] for k in sorted(start)])
    for quantile in (0.05, 0.5, 0.95):
        exact = int(np.searchsorted(cum, quantile))  # the smallest k with P(start ≤ k) ≥ quantile
        assert abs(float(q0.sel(quantile=quantile)) - exact) <= 1.0, (quantile, float(q0.sel(quantile=quantile)))


def test_a_small_rounded_lognormal_start_can_be_zero():
    """A log-normal range near 0 rounds some paths to a start of 0 (ln 0 = −inf): P(start = 0) = P(X < ½)."""
    low, high = 0.3, 4.0
    targets = [{"id": "pos", "indicator": "z", "kind": "count_stock", "threshold": 1, "by": 2025}]
    ds = run(scenario_dict({"z": count({"low": low, "high": high}, mean=0.5)}, targets, horizon=2025, seed=47))
    start = rounded_lognormal_pmf(low, high)
    exact_base = 1.0 - start[0]
    assert abs(base_year_prob(ds, "pos") - exact_base) < mc_tolerance(exact_base, N, K)
    exact = 1.0 - start[0] * math.exp(-0.5)
    assert abs(prob(ds, "pos") - exact) < mc_tolerance(exact, N, K), (prob(ds, "pos"), exact)
    assert np.isfinite(ds.indicator_quantiles.sel(indicator="z").values).all()


# ------------------------------------------------------------------ (3) scheduled count, by exact enumeration

@pytest.mark.parametrize("law, low, high, carry_over, seed", [
    ("uniform", 5, 9, 0.5, 51),
    ("lognormal", 4.0, 12.0, 0.0, 53),
])
def test_a_scheduled_count_from_an_uncertain_start_by_enumeration(law, low, high, carry_over, seed):
    """The deliveries' exact law by enumerating every unit's fate (tests.test_scheduled), convolved with
    the start's exact law."""
    from tests.test_scheduled import enumerate_stock

    schedule, delivery = {2025: 3, 2026: 4, 2027: 2}, 0.7
    deliveries = enumerate_stock(0, [schedule[y] for y in (2025, 2026, 2027)], delivery, carry_over)
    start = uniform_pmf(low, high) if law == "uniform" else rounded_lognormal_pmf(low, high)
    spec = {"low": low, "high": high, "assumption": "test range", **({"law": law} if law == "uniform" else {})}
    ind = {"start": spec, "process": {"kind": "scheduled", "schedule": schedule, "delivery": delivery,
                                      "carry_over": carry_over}}
    thresholds = {2025: [6, 9, 11], 2026: [9, 12, 15], 2027: [10, 14, 17]}
    targets = [t for by, cs in thresholds.items() for t in stock_targets("s", cs, by)]
    for t in targets:
        t["id"] += f"_{t['by']}"
    targets.append({"id": "cum", "indicator": "s", "kind": "cumulative", "threshold": 7, "by": 2027})
    ds = run(scenario_dict({"s": ind}, targets, seed=seed))
    for t in targets[:-1]:
        law_t = deliveries[t["by"] - 2025]
        exact = sum(ps * pd for s, ps in start.items() for d, pd in law_t.items() if s + d >= t["threshold"])
        got = prob(ds, t["id"])
        assert abs(got - exact) < mc_tolerance(exact, N, K), (t["id"], got, exact)
    # the cumulative rule counts the deliveries only, never the start
    exact = sum(p for d, p in deliveries[2].items() if d >= 7)
    assert abs(prob(ds, "cum") - exact) < mc_tolerance(exact, N, K), (prob(ds, "cum"), exact)
    assert np.isfinite(ds.indicator_quantiles.sel(indicator="s").values).all()


# ------------------------------------------------------------------ (4) the additions do not move

def test_flow_rules_are_the_same_paths_with_a_known_start():
    """Making only the start uncertain changes no addition on any path: the start is drawn after every
    other draw of the path. Cumulative, in_year and count_per_year rules (and every other indicator) give
    the very same numbers; the stock moves with its start."""
    flows = [{"id": "cum", "indicator": "c", "kind": "cumulative", "threshold": 180, "by": 2027},
             {"id": "in", "indicator": "c", "kind": "in_year", "threshold": 62, "by": 2026},
             {"id": "every", "indicator": "c", "kind": "count_per_year", "threshold": 55, "by": 2027},
             {"id": "nb_cum", "indicator": "nb", "kind": "cumulative", "threshold": 15, "by": 2027},
             {"id": "s_cum", "indicator": "s", "kind": "cumulative", "threshold": 6, "by": 2027},
             {"id": "s_in", "indicator": "s", "kind": "in_year", "threshold": 3, "by": 2026},
             {"id": "lvl", "indicator": "x", "kind": "level", "threshold": 105.0, "by": 2027},
             {"id": "stock", "indicator": "c", "kind": "count_stock", "threshold": 1480, "by": 2027}]

    def scenario(uncertain: bool) -> dict:
        def start(value, rng):
            return rng if uncertain else {"value": value}
        return scenario_dict({
            "x": {"start": {"value": 100.0, "assumption": "t"},
                  "process": {"kind": "lognormal", "growth": {"mean": 0.02, "sd": 0.01}, "volatility": 0.05}},
            "c": count(start(1300, {"low": 1200, "high": 1400, "law": "uniform"}), mean=60.0),
            "nb": count(start(40, {"low": 20, "high": 60}), "negative_binomial", 5.0, 2.0),
            "s": {"start": {**start(8, {"low": 5, "high": 12, "law": "uniform"}), "assumption": "t"},
                  "process": {"kind": "scheduled", "schedule": {2025: 3, 2026: 4}, "delivery": 0.7,
                              "carry_over": 0.5}}}, flows, seed=59)

    known, drawn = run(scenario(False), paths=50_000), run(scenario(True), paths=50_000)
    for target in ("cum", "in", "every", "nb_cum", "s_cum", "s_in", "lvl"):
        assert prob(known, target) == prob(drawn, target), target
        np.testing.assert_array_equal(known.attainment_by_year.sel(target=target).values,
                                      drawn.attainment_by_year.sel(target=target).values)
    np.testing.assert_array_equal(known.indicator_quantiles.sel(indicator="x").values,
                                  drawn.indicator_quantiles.sel(indicator="x").values)
    # the stock does move: 1300 + Poisson(180) ≥ 1480 has probability ~0.51; from 1200..1400 less
    exact = stock_sf(uniform_pmf(1200, 1400), 1480, lambda m: stats.poisson.sf(m - 1, 180.0))
    assert abs(prob(drawn, "stock") - exact) < mc_tolerance(exact, 50_000, K)
    assert prob(known, "stock") != prob(drawn, "stock")


# ------------------------------------------------------------------ (5) a sum of counts

def test_a_sum_of_counts_with_an_uncertain_part():
    """T = U + C: U uniform on 100..150 plus Poisson(4) a year, C from 30 plus Poisson(2) a year: T_3 = U + 30 +
    Poisson(18); its base year is U + 30, path by path."""
    targets = stock_targets("t", [150, 170, 190], 2027, "level") + [
        {"id": "fp", "indicator": "t", "kind": "first_passage", "threshold": 160, "by": 2027}]
    data = scenario_dict({"u": count({"low": 100, "high": 150, "law": "uniform"}, mean=4.0),
                          "k": {"start": {"value": 30, "assumption": "t"},
                                "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 2.0}}},
                          "t": {"process": {"kind": "sum", "terms": ["u", "k"]}}}, targets, seed=61)
    ds = run(data)
    start = {s + 30: p for s, p in uniform_pmf(100, 150).items()}
    for c in (150, 170, 190):
        exact = stock_sf(start, c, lambda m: stats.poisson.sf(m - 1, 18.0))
        got = prob(ds, f"t_level_{c}")
        assert abs(got - exact) < mc_tolerance(exact, N, K), (c, got, exact)
    exact0 = sum(p for s, p in start.items() if s >= 160)  # 21/51
    assert abs(base_year_prob(ds, "fp") - exact0) < mc_tolerance(exact0, N, K)
    assert str(ds.indicator_start_law.sel(indicator="t").values) == "derived"
    assert abs(float(ds.indicator_start.sel(indicator="t")) - 155) <= 1
    assert np.isfinite(ds.indicator_quantiles.sel(indicator="t").values).all()


# ------------------------------------------------------------------ (6) reproducibility, twin and reference

def _mixed() -> dict:
    targets = [{"id": "c", "indicator": "c", "kind": "count_stock", "threshold": 1450, "by": 2027},
               {"id": "n", "indicator": "n", "kind": "first_passage", "threshold": 50, "by": 2026},
               {"id": "s", "indicator": "s", "kind": "level", "threshold": 14, "by": 2027},
               {"id": "z", "indicator": "z", "kind": "in_year", "threshold": 1, "by": 2026},
               {"id": "t", "indicator": "t", "kind": "level", "threshold": 75, "by": 2027, "comparator": "~"},
               {"id": "x", "indicator": "x", "kind": "level", "threshold": 11.0, "by": 2027}]
    return scenario_dict({
        "x": {"start": {"low": 8.0, "high": 12.0, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": 0.03, "volatility": 0.1}},
        "c": count({"low": 1200, "high": 1400, "law": "uniform"}, mean=60.0),
        "n": count({"low": 20.0, "high": 60.0}, "negative_binomial", 5.0, 2.0),
        "z": count({"low": 0, "high": 3, "law": "uniform"}, mean=0.7),
        "s": {"start": {"low": 4.0, "high": 12.0, "assumption": "t"},
              "process": {"kind": "scheduled", "schedule": {2025: 3, 2026: 4}, "delivery": 0.7, "carry_over": 0.5}},
        "t": {"process": {"kind": "sum", "terms": ["n", "s"]}}}, targets, seed=67)


def test_bit_identical_for_any_threads_and_blocks():
    assert_same_for_any_threads_and_blocks(make_scenario(_mixed()))


def test_the_kernel_and_its_twin_agree_path_by_path():
    """Each path's whole-number start, its stock, the sum's base year, and an observed count's likelihood
    at each path's own previous stock."""
    from tests.test_kernel_twin import _agree_path_by_path

    data = _mixed()
    plan = _agree_path_by_path(data)
    assert (plan.arrays["x0_law"][1:5] > 0).all()
    data["observations"] = {"n": {2025: 45}}
    plan = _agree_path_by_path(data)
    assert plan.weighted


def test_against_the_reference_model():
    from tests.reference_model import simulate as reference

    data = _mixed()
    ds = run(data)
    ref = reference(data, 400_000, seed=71)
    assert_matches_reference(ds, ref, data["targets"], K)


# ------------------------------------------------------------------ (7) the parser

SCENARIO = """\
name: test
base_year: 2024
horizon: 2027
seed: 3
indicators:
  c:
    start: {low: 1200, high: 1400, law: uniform, source: "plan: 现有1200余个"}
    process: {kind: count, additions: {distribution: poisson, mean: 60}}
  s:
    start: {low: 4, high: 12, assumption: "range of earlier plans"}
    process: {kind: scheduled, schedule: {2025: 3}, delivery: 0.9}
targets:
  - {id: t, indicator: c, kind: count_stock, threshold: 1500, by: 2027}
"""

C_START, S_START = "indicators.c.start", "indicators.s.start"
PARSER_CASES = [
    # (replace this, with this, key path, line, words)
    ("{low: 1200, high: 1400,", "{low: 1200.5, high: 1400,", C_START + ".low", 7,
     "a count's uniform start is drawn on the whole numbers low..high: 'low' must be a whole number ≥ 0, got 1200.5"),
    ("{low: 1200, high: 1400,", "{low: 1200, high: 1400.5,", C_START + ".high", 7, "'high' must be a whole number"),
    ("{low: 1200, high: 1400,", "{low: -3, high: 1400,", C_START + ".low", 7, "a whole number ≥ 0, got -3"),
    ("{low: 1200, high: 1400,", "{low: 1400, high: 1200,", C_START + ".high", 7, "high (1200) must exceed low (1400)"),
    ("{low: 1200, high: 1400,", "{low: 1200, high: 1200,", C_START + ".high", 7, "must exceed low"),
    ("{low: 4, high: 12,", "{low: 0, high: 12,", S_START + ".low", 10,
     "a scheduled count's log-normal start needs 0 < low < high"),
    ("{low: 4, high: 12,", "{low: -1, high: 12,", S_START + ".low", 10, "needs 0 < low < high"),
    ("{low: 4, high: 12,", "{low: 12, high: 4.5,", S_START + ".high", 10, "high (4.5) must exceed low (12)"),
    ("{low: 1200, high: 1400, law: uniform,", "{mean: 1300, sd: 50,", C_START + ".mean", 7,
     "a count starts at a whole number: give its uncertain start as a range {low, high}"),
    ("{low: 1200, high: 1400, law: uniform,", "{low: 1200, high: 1400, law: normal,", C_START + ".law", 7,
     "unknown start law 'normal'"),
    ("{low: 1200, high: 1400, law: uniform,", "{low: 1200, high: 1400, law: uniform, value: 1300,",
     C_START + ".value", 7, "not both"),
    ('{low: 4, high: 12, assumption: "range of earlier plans"}', "{low: 4, high: 12}", S_START, 10,
     "needs a 'source' or an 'assumption'"),
]


@pytest.mark.parametrize("old, new, key, line, words", PARSER_CASES, ids=[c[2] + ":" + c[4][:40] for c in PARSER_CASES])
def test_the_parser_names_file_key_and_line(tmp_path, old, new, key, line, words):
    assert_error_at(edit_error(tmp_path, SCENARIO, old, new), key, line, words)


def test_the_scenario_loads_with_whole_medians(tmp_path):
    scenario = load_edited(tmp_path, SCENARIO)
    c, s = scenario.indicator_by_id["c"].start, scenario.indicator_by_id["s"].start
    assert (c.law, c.low, c.high, c.value, c.is_assumption) == ("uniform", 1200, 1400, 1300, False)
    assert (s.law, s.low, s.high, s.value, s.is_assumption) == ("lognormal", 4, 12, 7, True)  # round(sqrt(48))
    # a lognormal count start may have bounds that are not whole (they are the continuous law's quantiles)
    odd = load_edited(tmp_path, SCENARIO, "{low: 4, high: 12,", "{low: 3.5, high: 12.5,").indicator_by_id["s"].start
    assert odd.value == round(math.sqrt(3.5 * 12.5))


@pytest.mark.parametrize("start", ["{low: 0, high: 4, law: uniform, assumption: t}",
                                   "{low: 1, high: 9, assumption: t}"])
def test_a_ratio_over_a_count_whose_start_can_draw_zero_is_refused(tmp_path, start):
    """A count's uncertain start that can be 0 leaves the ratio undefined on those paths (issue: silently infinite)."""
    text = f"""\
name: zero-den
base_year: 2024
horizon: 2026
indicators:
  n: {{start: {{value: 5, assumption: t}}, process: {{kind: count, additions: {{distribution: poisson, mean: 1}}}}}}
  d: {{start: {start}, process: {{kind: count, additions: {{distribution: poisson, mean: 1}}}}}}
  r: {{process: {{kind: ratio, numerator: n, denominator: d}}}}
targets:
  - {{id: t, indicator: r, kind: level, threshold: 1, by: 2026}}
"""
    path = tmp_path / "z.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(path)
    assert "uncertain start can draw 0" in str(err.value) and "indicators.r" in str(err.value)


def test_a_ratio_over_a_count_whose_start_cannot_draw_zero_runs(tmp_path):
    """[1200, 1400] log-normal: 0.5 lies hundreds of s.d. below the centre, beyond any draw of the sampler."""
    text = """\
name: far-from-zero
base_year: 2024
horizon: 2026
indicators:
  n: {start: {value: 5, assumption: t}, process: {kind: count, additions: {distribution: poisson, mean: 1}}}
  d: {start: {low: 1200, high: 1400, assumption: t}, process: {kind: count, additions: {distribution: poisson, mean: 1}}}
  r: {process: {kind: ratio, numerator: n, denominator: d}}
targets:
  - {id: t, indicator: r, kind: level, threshold: 0.01, by: 2026}
"""
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    assert targetsim.load_scenario(path).indicator_by_id["d"].start.low == 1200
