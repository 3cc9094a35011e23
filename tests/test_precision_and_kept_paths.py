"""Runs to a stated precision (``--precision``/``--max-paths``), kept paths (``--keep-paths``), and the exact
merge of ranges of paths in any order that distributed runs rest on (issue 19). No Dask here: see
``test_distributed.py``."""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest

import targetsim
from targetsim.engine.plan import build_plan
from targetsim.engine.simulate import (RunningStatistics, precision_schedule, simulate, simulate_range,
                                       simulate_to_precision)
from targetsim.errors import TargetsimError, TargetsimWarning
from targetsim.kernels.rng import key_from_seed
from tests.engine_scenarios import EXTREME_OBSERVATION, GROWTH_MEAN, GROWTH_SD, assert_identical, drawn_inputs

PATHS = 20_000


@pytest.fixture(scope="module")
def scenario():
    return drawn_inputs()


@pytest.fixture(scope="module")
def observed():
    return drawn_inputs(observed=True)


@pytest.fixture(scope="module")
def all_kept(scenario):
    """Every path kept."""
    return targetsim.run(scenario, paths=PATHS, keep_paths=PATHS, threads=2)


# --- ranges of paths merged in any order ------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_ranges_merged_in_any_order_equal_one_run(scenario, observed, weighted):
    plan = build_plan(observed if weighted else scenario)
    key = key_from_seed(5)
    paths = 9_000  # a last range that ends inside a chunk
    whole = simulate(plan, paths=paths, seed=5, threads=1, keep_paths=700)
    bounds = [0, 1024, 2048, 5120, 8192, paths]
    parts = [simulate_range(plan, key, a, b, keep_paths=700) for a, b in zip(bounds, bounds[1:])]
    running = RunningStatistics(plan, keep_paths=700)
    for part in (parts[3], parts[1], parts[4], parts[0], parts[2]):  # out of order
        running.add(part)
    merged = running.statistics()
    for name in ("attained", "attained_by_year", "n_met", "group_joint", "groups_met", "pair_fail", "sketch",
                 "log_min", "log_max", "total", "nonfinite"):
        assert getattr(whole, name).tobytes() == getattr(merged, name).tobytes(), name
    assert (whole.weight_total, whole.weight_sq_total, whole.joint) == (merged.weight_total, merged.weight_sq_total,
                                                                       merged.joint)
    for name in whole.kept._fields[2:]:
        assert getattr(whole.kept, name).tobytes() == getattr(merged.kept, name).tobytes(), name


def test_a_range_must_start_on_a_chunk(scenario):
    plan = build_plan(scenario)
    with pytest.raises(ValueError, match="multiple of 256"):
        simulate_range(plan, key_from_seed(1), 100, 1000)


# --- kept paths ---------------------------------------------------------------------------------------------


def test_all_paths_kept_reproduce_the_statistics_exactly(all_kept):
    ds = all_kept
    np.testing.assert_array_equal(ds.kept_path.values, np.arange(PATHS))
    assert ds.kept_target_met.dtype == np.int8 and ds.kept_path.dtype == np.int64
    np.testing.assert_array_equal(ds.kept_target_met.mean("kept_path").values,
                                  ds.attainment_probability.values[0])
    every = (ds.kept_target_met == 1).all("target")
    assert float(every.mean()) == float(ds.joint_attainment_probability.values[0])
    assert (ds.kept_weight.values == 1.0).all()
    # the mean of the final values: the same numbers summed in another order
    np.testing.assert_allclose(ds.kept_final_value.mean("kept_path").values,
                               ds.indicator_mean.values[0, :, -1], rtol=1e-12)


def test_kept_outcomes_follow_from_kept_values(all_kept):
    ds = all_kept
    final = ds.kept_final_value
    met = ds.kept_target_met
    # level targets on the last year's value (a tie margin of ~1e-13 cannot matter for continuous values)
    np.testing.assert_array_equal(met.sel(target="trade_level").values, (final.sel(indicator="trade") >= 125).values)
    np.testing.assert_array_equal(met.sel(target="compute_level").values,
                                  (final.sel(indicator="compute") >= 17).values)
    np.testing.assert_array_equal(met.sel(target="firms_stock").values, (final.sel(indicator="firms") >= 29).values)
    cagr = (final.sel(indicator="trade") / ds.kept_start_value.sel(indicator="trade")) ** (1 / 3) - 1
    np.testing.assert_array_equal(met.sel(target="trade_cagr").values, (cagr >= 0.07).values)


def test_kept_draws_follow_their_declared_laws(all_kept):
    ds = all_kept
    n = PATHS
    growth = ds.kept_growth_draw.sel(indicator="trade").values
    assert abs(growth.mean() - GROWTH_MEAN) < 4.5 * GROWTH_SD / math.sqrt(n)
    assert abs(growth.std() - GROWTH_SD) < 4.5 * GROWTH_SD / math.sqrt(2 * n)
    assert np.isnan(ds.kept_growth_draw.sel(indicator="firms")).all()
    # a project completes with probability 0.6, in a year uniform on 2025..2027
    done = ds.kept_project_completed.sel(project="centre").values
    assert ds.kept_project_completed.dtype == np.int8
    assert abs(done.mean() - 0.6) < 4.5 * math.sqrt(0.24 / n)
    years = ds.kept_project_completion_year.sel(project="centre").values
    assert np.isnan(years[done == 0]).all()
    for year in (2025, 2026, 2027):
        share = np.mean(years[done == 1] == year)
        assert abs(share - 1 / 3) < 4.5 * math.sqrt(2 / 9 / done.sum())
    # the jump may hit trade in each of 3 years with probability 0.2: Binomial(3, 0.2)
    jumps = ds.kept_jump_count.sel(indicator="trade").values
    for k in range(4):
        p = math.comb(3, k) * 0.2**k * 0.8 ** (3 - k)
        assert abs(np.mean(jumps == k) - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    assert (ds.kept_jump_count.sel(indicator="compute") == 0).all()
    # an uncertain count mean: gamma with mean 3, s.d. 1; a delivery: beta with mean 0.8, s.d. 0.1
    lam = ds.kept_count_mean.sel(indicator="firms").values
    assert abs(lam.mean() - 3.0) < 4.5 * 1.0 / math.sqrt(n) and abs(lam.std() - 1.0) < 0.05
    dlv = ds.kept_delivery_probability.sel(indicator="platforms").values
    assert abs(dlv.mean() - 0.8) < 4.5 * 0.1 / math.sqrt(n) and abs(dlv.std() - 0.1) < 0.005


def test_kept_paths_are_the_first_paths_whatever_the_run(scenario, all_kept):
    small = targetsim.run(scenario, paths=PATHS // 2, keep_paths=1000, threads=1, block_size=256)
    assert small.sizes["kept_path"] == 1000
    for name in [v for v in small.data_vars if v.startswith("kept_")]:
        a, b = small[name].values, all_kept[name].isel(kept_path=slice(0, 1000)).values
        assert a.tobytes() == b.tobytes(), name


def test_kept_paths_are_the_same_for_any_threads_and_blocks(scenario):
    runs = [targetsim.run(scenario, paths=5000, keep_paths=3000, threads=threads, block_size=block)
            for threads, block in ((1, 256), (2, 512), (2, 4096))]
    for other in runs[1:]:
        assert_identical(runs[0], other)


def test_keeping_paths_changes_no_other_result(scenario):
    plain = targetsim.run(scenario, paths=5000, threads=2)
    kept = targetsim.run(scenario, paths=5000, keep_paths=2500, threads=2)
    assert_identical(plain, kept.drop_vars([v for v in kept.variables if v.startswith("kept_") or v.startswith("project")]))


def test_kept_weights_are_the_path_likelihoods(observed):
    ds = targetsim.run(observed, paths=PATHS, keep_paths=PATHS, threads=2)
    w = ds.kept_weight.values
    assert (w > 0).all() and (w <= 1).all() and w.std() > 0
    # weighted by the kept weights, the kept outcomes give the weighted probabilities
    p = (ds.kept_target_met * ds.kept_weight).sum("kept_path") / ds.kept_weight.sum()
    np.testing.assert_allclose(p.values, ds.attainment_probability.values[0], rtol=1e-12)
    ess = w.sum() ** 2 / (w**2).sum()
    assert ess == pytest.approx(float(ds.effective_sample_size.values[0]), rel=1e-9)


def test_memory_of_kept_paths_does_not_grow_with_the_paths(scenario):
    plan = build_plan(scenario)

    def peak(paths: int) -> int:
        tracemalloc.start()
        simulate(plan, paths=paths, seed=3, threads=1, keep_paths=2000)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1 << 14), peak(1 << 17)
    assert large < 1.1 * small + 100_000, (small, large)
    from targetsim.engine.resources import estimate_for_scenario

    assert (estimate_for_scenario(scenario, paths=10**6, keep_paths=1000).memory_bytes
            == estimate_for_scenario(scenario, paths=10**9, keep_paths=1000).memory_bytes)


def test_more_kept_than_simulated_paths_is_refused(scenario):
    with pytest.raises(TargetsimError, match="--keep-paths"):
        targetsim.run(scenario, paths=1000, keep_paths=1001)


# --- runs to a stated precision ----------------------------------------------------------------------------


def test_the_schedule_doubles_from_its_first_stage_up_to_the_cap():
    assert precision_schedule(20_000) == [16_384, 20_000]
    assert precision_schedule(16_384) == [16_384]
    assert precision_schedule(100_000) == [16_384, 32_768, 65_536, 100_000]


@pytest.mark.parametrize("which", ["plain", "observed"])
def test_precision_stops_at_the_first_stage_that_meets_it_and_equals_a_plain_run(scenario, observed, which):
    chosen = scenario if which == "plain" else observed
    precision = 0.003  # about 28,000 paths at p = 1/2: stops at the second stage, 32,768
    ds = targetsim.run(chosen, precision=precision, keep_paths=500, threads=2)
    paths = ds.attrs["paths"]
    assert paths in precision_schedule(10**8)
    se = ds.attainment_probability_standard_error.values
    assert ds.attrs["precision_target"] == precision and ds.attrs["precision_met"] == 1
    assert ds.attrs["precision_reached"] == float(se.max()) <= precision
    # binomial (observed: from the effective sample size), checked from the probabilities themselves
    p = ds.attainment_probability.values
    np.testing.assert_allclose(se, np.sqrt(p * (1 - p) / float(ds.effective_sample_size.values[0])), rtol=1e-12)
    # the same seed and precision, other threads and blocks: the same paths and the same result
    again = targetsim.run(chosen, precision=precision, keep_paths=500, threads=1, block_size=1024)
    assert_identical(ds, again)
    # bit-identical to a plain run of the paths it stopped at
    plain = targetsim.run(chosen, paths=paths, keep_paths=500, threads=2)
    assert_identical(ds.drop_attrs(), plain.drop_attrs())
    # and the stage before did not meet it
    assert paths > 16_384
    before = targetsim.run(chosen, paths=paths // 2, threads=2)
    assert before.attainment_probability_standard_error.values.max() > precision


def test_precision_with_the_second_pass_equals_a_plain_run():
    # weights so small relative to 0 that the run repeats itself relative to its likeliest path: each check
    # repeats that pass, and the result is still the plain run's at the paths it stopped at
    plan = build_plan(drawn_inputs(observed=EXTREME_OBSERVATION))
    stats = simulate_to_precision(plan, precision=0.02, seed=4, threads=2, keep_paths=300)
    assert stats.log_weight_reference < 0 and stats.precision.met and stats.precision.paths > 16_384
    plain = simulate(plan, paths=stats.precision.paths, seed=4, threads=1, keep_paths=300)
    assert plain.log_weight_reference == stats.log_weight_reference
    for name in ("attained", "attained_by_year", "pair_fail", "sketch", "total", "log_min", "log_max"):
        assert getattr(plain, name).tobytes() == getattr(stats, name).tobytes(), name
    assert (plain.weight_total, plain.weight_sq_total) == (stats.weight_total, stats.weight_sq_total)
    for name in plain.kept._fields[2:]:
        assert getattr(plain.kept, name).tobytes() == getattr(stats.kept, name).tobytes(), name
    assert stats.attainment_standard_error().max() == stats.precision.reached <= 0.02


def test_the_cap_stops_a_run_and_says_so(scenario):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = targetsim.run(scenario, precision=1e-4, max_paths=20_000, threads=2)
    assert ds.attrs["paths"] == 20_000 and ds.attrs["precision_met"] == 0 and ds.attrs["max_paths"] == 20_000
    assert ds.attrs["precision_reached"] > 1e-4
    notes = [str(w.message) for w in caught if issubclass(w.category, TargetsimWarning)]
    assert any("stopped at --max-paths 20,000" in note for note in notes)
    assert "stopped at --max-paths" in ds.attrs["warnings"]
    plain = targetsim.run(scenario, paths=20_000, threads=2)
    assert_identical(ds.drop_attrs(), plain.drop_attrs())


def test_precision_extends_and_never_simulates_a_path_twice(scenario, monkeypatch):
    import targetsim.engine.simulate as engine

    seen: list[tuple[int, int]] = []
    real = engine._simulate_range

    def spy(plan, key, start, stop, *args, **kwargs):
        seen.append((start, stop))
        return real(plan, key, start, stop, *args, **kwargs)

    monkeypatch.setattr(engine, "_simulate_range", spy)
    stats = simulate_to_precision(build_plan(scenario), precision=0.003, seed=2, threads=1)
    assert stats.precision.paths == seen[-1][1] > 16_384
    assert seen == list(zip([0, *precision_schedule(10**8)], precision_schedule(10**8)))[:len(seen)]


def test_bad_precision_options_are_refused(scenario):
    with pytest.raises(TargetsimError, match="not both"):
        targetsim.run(scenario, precision=0.01, paths=1000)
    with pytest.raises(TargetsimError, match="--max-paths caps"):
        targetsim.run(scenario, max_paths=1000)
    with pytest.raises(TargetsimError, match="positive standard error"):
        simulate_to_precision(build_plan(scenario), precision=float("nan"), seed=1)


def test_cli_precision_and_kept_paths(tmp_path):
    from click.testing import CliRunner

    from targetsim.cli import main
    from tests.conftest import ROOT

    out = tmp_path / "p.nc"
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "base.yaml"), "-o", str(out), "--precision",
                                       "0.002", "--max-paths", "40000", "--keep-paths", "100", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: stopped at --max-paths 40,000" in result.output
    ds = targetsim.read_dataset(out)
    assert ds.attrs["paths"] == 40_000 and ds.sizes["kept_path"] == 100
    assert ds.kept_target_met.dtype == np.int8


# --- kept growth: always the growth rate g (a share's or logistic's drift stays a drift) ----------------------


def test_kept_growth_is_the_rate_g_also_when_given_on_the_log_scale():
    """``growth: {log_mean, log_sd}`` draws ln(1+g) ~ N(log_mean, log_sd): the kept value is g itself, whose
    law is closed-form log-normal (mean exp(μ + σ²/2) − 1), not ln(1+g) (review: it kept ≈ 0.40, g ≈ 0.49)."""
    from tests.conftest import make_scenario, scenario_dict

    mu, sd, n = 0.4, 0.1, 4096
    indicators = {
        "logged": {"start": {"value": 10.0, "assumption": "test value"},
                   "process": {"kind": "lognormal", "growth": {"log_mean": mu, "log_sd": sd}, "volatility": 0.05}},
        "ar": {"start": {"value": 10.0, "assumption": "test value"},
               "process": {"kind": "ar1_growth", "long_run_growth": {"log_mean": 0.05, "log_sd": 0.02},
                           "persistence": 0.5, "volatility": 0.05, "initial_growth": 0.05}},
        "plain": {"start": {"value": 10.0, "assumption": "test value"},
                  "process": {"kind": "lognormal", "growth": {"mean": 0.08, "sd": 0.05}, "volatility": 0.05}},
        "share": {"start": {"value": 0.3, "assumption": "test value"},
                  "process": {"kind": "logit_share", "drift": {"mean": 0.1, "sd": 0.05}, "volatility": 0.1}},
    }
    targets = [{"id": "t", "indicator": "logged", "kind": "level", "threshold": 20.0, "by": 2027}]
    ds = targetsim.run(make_scenario(scenario_dict(indicators, targets, paths=n)), keep_paths=n, threads=1)
    g = ds.kept_growth_draw.sel(indicator="logged").values
    assert abs(g.mean() - math.expm1(mu + sd**2 / 2)) < 4.5 * 0.15 / math.sqrt(n)  # s.d. of g ≈ 1.49·0.1
    np.testing.assert_allclose(np.log1p(g).std(), sd, rtol=4.5 / math.sqrt(2 * n))
    ar = np.log1p(ds.kept_growth_draw.sel(indicator="ar").values)
    assert abs(ar.mean() - 0.05) < 4.5 * 0.02 / math.sqrt(n)
    plain = ds.kept_growth_draw.sel(indicator="plain").values
    assert abs(plain.mean() - 0.08) < 4.5 * 0.05 / math.sqrt(n)
    drift = ds.kept_growth_draw.sel(indicator="share").values
    assert abs(drift.mean() - 0.1) < 4.5 * 0.05 / math.sqrt(n)
    assert list(ds.kept_growth_scale.values) == ["rate", "rate", "rate", "logit drift"]


# --- the stopping rule at p̂ = 0 or 1, and without weight ---------------------------------------------------


def _rare_plan(threshold: float):
    from tests.conftest import lognormal, make_scenario, scenario_dict

    targets = [{"id": "t", "indicator": "a", "kind": "level", "threshold": threshold, "by": 2026}]
    return build_plan(make_scenario(scenario_dict({"a": lognormal(100.0, 0.05, volatility=0.02)}, targets,
                                                  horizon=2026)))


@pytest.mark.parametrize("threshold", [1e6, 1.0])  # never met (p̂ = 0), always met (p̂ = 1)
def test_precision_does_not_stop_on_a_zero_standard_error_at_the_extremes(threshold):
    """At p̂ ∈ {0, 1} the Wald s.e. is 0: the rule uses p̃ = (k + 1)/(n + 2) instead, so a target never (or
    always) met in n paths counts as known to about 1/n, and the run goes on until that meets the precision.
    Closed form at p̂ = 0: sqrt(p̃(1 − p̃)/n) with p̃ = 1/(n + 2): 0.0039 at 256 paths, 0.00195 at 512."""
    stats = simulate_to_precision(_rare_plan(threshold), precision=0.002, seed=1, threads=1, first_paths=256,
                                  max_paths=4096)
    assert stats.attained[0] == (0 if threshold > 1 else stats.paths)
    assert stats.precision.paths == 512 and stats.precision.stages == 2 and stats.precision.met
    assert stats.precision.reached == 0.0  # the reported (Wald) standard error is unchanged
    n = 512
    assert math.isclose(stats.precision.stopping, math.sqrt((1 / (n + 2)) * (1 - 1 / (n + 2)) / n), rel_tol=1e-12)


def test_precision_without_weight_stops_at_once_and_says_why():
    """Every path impossible under the observations: no standard error can be computed (NaN); the run stops at
    its first stage with a note rather than running to the cap, and the run is then refused as before."""
    from tests.conftest import make_scenario, scenario_dict

    count = {"start": {"value": 5, "assumption": "test value"},
             "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": 1.0}}}
    scenario = make_scenario(scenario_dict({"c": count}, [{"id": "t", "indicator": "c", "kind": "level",
                                                            "threshold": 6, "by": 2026}],
                                           horizon=2026, observations={"c": {2025: 3}}))
    stats = simulate_to_precision(build_plan(scenario), precision=0.01, seed=1, threads=1, first_paths=256,
                                  max_paths=1 << 20)
    assert stats.paths == 256 and stats.precision.stages == 1 and not stats.precision.met
    assert "no weight" in stats.precision.note
    with pytest.raises(TargetsimError, match="impossible under the model"):
        targetsim.run(scenario, precision=0.01, max_paths=1 << 20, threads=1)


@pytest.mark.parametrize("precision", [None, 0.02])
def test_memory_estimate_of_kept_paths_bounds_what_is_alive(precision):
    """The kept rows alive at the peak: the running statistics', a range's own, with the precision's second
    pass the repeated pass's too, and the dataset's copies (measured here: about 3 rows' bytes a kept path).
    The estimate's kept-path part bounds the measured growth of the peak with the kept paths."""
    from targetsim.engine.resources import estimate_for_scenario

    observed = drawn_inputs(observed=EXTREME_OBSERVATION)  # weights that need the second pass
    keep = 20_000
    options = dict(paths=keep) if precision is None else dict(precision=precision)
    targetsim.run(observed, threads=1, keep_paths=10, **options)  # compiled, caches filled

    def peak(kept: int) -> int:
        tracemalloc.start()
        targetsim.run(observed, threads=1, keep_paths=kept, **options)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    grown = peak(keep) - peak(0)
    n_t, n_i, n_p = len(observed.targets), len(observed.indicators), 1
    assert grown > 2.5 * keep * (n_t + 8 * (1 + 6 * n_i + n_p))  # the old count, two rows, was too low
    estimated = (estimate_for_scenario(observed, threads=1, keep_paths=keep).memory_bytes
                 - estimate_for_scenario(observed, threads=1).memory_bytes)
    assert grown <= estimated
