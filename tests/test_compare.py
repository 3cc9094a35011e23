"""``targetsim compare``: differences of attainment probabilities with intervals that account for common
random numbers, checked against closed forms (a log-normal level target) and against statsmodels' Wilson
interval."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy.stats import norm

from targetsim.cli import main
from targetsim.report.compare import Z95, compare_datasets, pairing, wilson_upper

# One log-normal indicator over one year: X = 100·exp(μ + 0.2 Z); the target X ≥ 110 is met with
# probability Φ((μ − ln 1.1)/0.2). Raising μ moves the probability by a known amount.
VOL = 0.2
K = 4.5  # Monte Carlo standard errors: the tolerance of a single run's comparison with a closed form


def _scenario(tmp_path, name: str, mean: float, seed: int = 11, paths: int = 40_000):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
name: {name}
base_year: 2024
horizon: 2025
paths: {paths}
seed: {seed}
indicators:
  x:
    label: 指标
    unit: CNY_100m
    start: {{value: 100, assumption: test}}
    process: {{kind: lognormal, growth: {{log_mean: {mean}}}, volatility: {VOL}}}
    parameters: {{assumption: test}}
targets:
  - {{id: t1, label: 目标一, indicator: x, kind: level, comparator: ">=", threshold: 110, by: 2025,
      source: {{document: test, clause: "1", quote: "x ≥ 110"}}}}
""", encoding="utf-8")
    return path


def _exact(mean: float) -> float:
    return float(norm.sf((math.log(1.1) - mean) / VOL))


def _run(tmp_path, name, mean, **kw):
    out = tmp_path / f"{name}.nc"
    result = CliRunner().invoke(main, ["run", str(_scenario(tmp_path, name, mean, **kw)), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_wilson_upper_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 50), (3, 200), (120, 400), (400, 400)):
        expected = proportion_confint(k, n, alpha=0.05, method="wilson")[1]
        assert wilson_upper(k, n) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_different_seeds_are_independent_and_cover_the_closed_form(tmp_path):
    a = _run(tmp_path, "a", 0.05, seed=1)
    b = _run(tmp_path, "b", 0.10, seed=2)
    result = CliRunner().invoke(main, ["compare", str(a), str(b), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)[0]
    assert doc["method"] == "independent" and doc["method_description"] == "different seeds: independent runs"
    row = next(r for r in doc["targets"] if r["target"] == "t1")
    pa, pb = row["reference_probability"], row["other_probability"]
    se_a, se_b = math.sqrt(pa * (1 - pa) / 40_000), math.sqrt(pb * (1 - pb) / 40_000)
    assert row["standard_error"] == pytest.approx(math.hypot(se_a, se_b), rel=1e-6)
    truth = _exact(0.10) - _exact(0.05)
    assert abs(row["difference"] - truth) <= K * row["standard_error"]


def test_same_seed_without_kept_paths_gives_the_coupling_free_bound(tmp_path):
    a = _run(tmp_path, "a", 0.05)
    b = _run(tmp_path, "b", 0.10)
    ca, cb = xr.open_dataset(a), xr.open_dataset(b)
    comparison = compare_datasets(ca, cb)
    assert comparison.method == "bound" and "--keep-paths" in comparison.note
    row = comparison.differences[0]
    sa = float(ca["attainment_probability_standard_error"].isel(scenario=0, target=0))
    sb = float(cb["attainment_probability_standard_error"].isel(scenario=0, target=0))
    assert row.standard_error == pytest.approx(sa + sb)
    assert abs(row.difference - (_exact(0.10) - _exact(0.05))) <= K * row.standard_error


def _synthetic(p_flags: np.ndarray, kept: int, seed: int) -> xr.Dataset:
    """A minimal results dataset of one target from per-path flags: the first ``kept`` paths kept."""
    from statsmodels.stats.proportion import proportion_confint

    n = p_flags.size
    p = float(p_flags.mean())
    low, high = proportion_confint(int(p_flags.sum()), n, alpha=0.05, method="wilson")
    return xr.Dataset(
        {"attainment_probability": (("scenario", "target"), [[p]]),
         "attainment_probability_standard_error": (("scenario", "target"), [[math.sqrt(p * (1 - p) / n)]]),
         "attainment_probability_lower": (("scenario", "target"), [[low]]),
         "attainment_probability_upper": (("scenario", "target"), [[high]]),
         "joint_attainment_probability": (("scenario",), [p]),
         "joint_attainment_probability_lower": (("scenario",), [low]),
         "joint_attainment_probability_upper": (("scenario",), [high]),
         "kept_target_met": (("kept_path", "target"), p_flags[:kept, None].astype(np.int8))},
        coords={"scenario": ["s"], "target": ["t1"], "target_label": ("target", ["目标一"]),
                "target_year": ("target", [2025]), "kept_path": np.arange(kept)},
        attrs={"seed": seed, "paths": n, "effective_sample_size": float(n), "observations": ""})


def test_paired_interval_covers_the_truth_and_is_narrower_than_independent():
    """Common random numbers, simulated directly: one normal per path, two thresholds. The paired interval
    (discordance from the kept paths) covers the exact difference at least at its nominal rate (it is
    conservative by construction) and is several times narrower than the independent one."""
    rng = np.random.default_rng(2024)
    z_a, z_b = 0.3, 0.2   # met when Z > z: the second run meets more often, never less on the same path
    truth = norm.sf(z_b) - norm.sf(z_a)
    n, kept, reps = 20_000, 2_000, 300
    covered, ratios = 0, []
    for _ in range(reps):
        z = rng.standard_normal(n)
        ra, rb = _synthetic(z > z_a, kept, 7), _synthetic(z > z_b, kept, 7)
        comparison = compare_datasets(ra, rb)
        assert comparison.method == "paired" and comparison.kept_paths == kept
        row = comparison.differences[0]
        covered += row.lower <= truth <= row.upper
        ratios.append(row.standard_error / math.hypot(float(ra["attainment_probability_standard_error"][0, 0]),
                                                      float(rb["attainment_probability_standard_error"][0, 0])))
    # coverage at least 95 % less 3 binomial standard errors of 300 replications
    assert covered / reps >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps)
    # the exact paired s.e. is sqrt(D(1-D)/n), against about sqrt(2 p(1-p)/n) independent
    exact_ratio = math.sqrt(truth * (1 - truth)) / math.sqrt(2 * norm.sf(z_a) * norm.cdf(z_a))
    assert np.median(ratios) < 0.5 and np.median(ratios) >= exact_ratio


def test_paired_standard_error_follows_the_discordance_formula():
    flags_a = np.array([1, 0, 1, 1, 0, 0, 1, 0] * 500, dtype=bool)
    flags_b = flags_a.copy()
    flags_b[:400:4] = ~flags_b[:400:4]   # 100 disagreements among the first 400 (all kept) paths
    ra, rb = _synthetic(flags_a, 400, 3), _synthetic(flags_b, 400, 3)
    row = compare_datasets(ra, rb).differences[0]
    d = float(flags_b.mean() - flags_a.mean())
    q = max(wilson_upper(100, 400), abs(d))
    assert row.discordant == pytest.approx(0.25)
    assert row.standard_error == pytest.approx(math.sqrt((q - d * d) / flags_a.size))
    # the normal interval, widened (here by under 5 %) to the exact interval of the disagreements' sign
    assert 2 * Z95 * row.standard_error <= row.upper - row.lower <= 1.05 * 2 * Z95 * row.standard_error


def test_pairing_rules():
    flags = np.ones(100, dtype=bool)
    a = _synthetic(flags, 50, 1)
    assert pairing(a, _synthetic(flags, 50, 2))[0] == "independent"
    weighted = _synthetic(flags, 50, 1)
    weighted.attrs["observations"] = "x 2024"
    assert pairing(a, weighted)[0] == "bound"
    assert pairing(a, _synthetic(np.ones(200, dtype=bool), 50, 1))[0] == "bound"
    assert pairing(a, a.drop_vars("kept_target_met"))[0] == "bound"
    assert pairing(a, _synthetic(flags, 50, 1))[0] == "paired"


def test_compare_lists_targets_in_one_file_only_and_formats(tmp_path):
    a = _run(tmp_path, "a", 0.05, paths=5_000)
    b = _run(tmp_path, "b", 0.05, paths=5_000)
    for fmt in ("table", "csv", "markdown"):
        result = CliRunner().invoke(main, ["compare", str(a), str(b), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "目标一" in result.output
    # the same scenario and seed: every difference is exactly 0
    csv_lines = CliRunner().invoke(main, ["compare", str(a), str(b), "--format", "csv"]).output.splitlines()
    header = csv_lines[0].split(",")
    assert all(float(line.split(",")[header.index("difference")]) == 0.0 for line in csv_lines[1:])


def test_compare_refuses_one_file_and_foreign_files(tmp_path):
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "none.nc")])
    assert result.exit_code == 1 and "at least two results files" in result.output
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "none.nc"), str(tmp_path / "other.nc")])
    assert result.exit_code == 1 and "no such results file" in result.output


def test_runs_with_kept_paths_are_paired_end_to_end(tmp_path):
    """Two runs of the closed-form scenario, one seed, growth 5 % and 10 %, both keeping their first paths:
    the comparison pairs them, its interval covers the exact difference, and it is much narrower than the
    bound without kept paths (every path that meets the target at 5 % meets it at 10 %)."""
    outs = []
    for name, mean in (("a", 0.05), ("b", 0.10)):
        out = tmp_path / f"{name}.nc"
        result = CliRunner().invoke(main, ["run", str(_scenario(tmp_path, name, mean)), "-o", str(out), "--quiet",
                                           "--keep-paths", "10000"])
        assert result.exit_code == 0, result.output
        outs.append(out)
    a, b = (xr.open_dataset(p) for p in outs)
    paired = compare_datasets(a, b)
    assert paired.method == "paired" and paired.kept_paths == 10_000
    row = paired.differences[0]
    truth = _exact(0.10) - _exact(0.05)
    # the paired s.e. is the exact one here, sqrt(D(1 - D)/n) (the discordant paths are exactly those between
    # the two thresholds), up to the Wilson bound on the kept paths' share
    exact_se = math.sqrt(truth * (1 - truth) / 40_000)
    assert exact_se <= row.standard_error <= 1.2 * exact_se
    assert abs(row.difference - truth) <= K * row.standard_error
    assert row.discordant == pytest.approx(truth, abs=K * math.sqrt(truth * (1 - truth) / 10_000))
    bound = compare_datasets(a.drop_vars("kept_target_met"), b.drop_vars("kept_target_met")).differences[0]
    assert row.standard_error < 0.5 * bound.standard_error


def test_intervals_near_zero_do_not_call_a_handful_of_paths_a_difference():
    """0 of 10,000 paths against 4 of 10,000 (Fisher's exact test: p = 0.125): no interval excludes 0, whether
    the runs are independent, share a seed without kept paths, or are paired with the 4 paths disagreeing."""
    none, four = np.zeros(10_000, dtype=bool), np.zeros(10_000, dtype=bool)
    four[[10, 200, 3000, 9000]] = True
    for ra, rb in ((_synthetic(none, 10_000, 1), _synthetic(four, 10_000, 2)),     # independent
                   (_synthetic(none, 10_000, 1), _synthetic(four, 10_000, 1)),     # paired
                   (_synthetic(none, 10_000, 1).drop_vars("kept_target_met"),
                    _synthetic(four, 10_000, 1).drop_vars("kept_target_met"))):   # bound
        row = compare_datasets(ra, rb).differences[0]
        assert row.lower < 0.0 < row.upper and not row.changed, (row.method, row.lower, row.upper)
    # 40 of 10,000 against 0 is a difference in every way
    forty = np.zeros(10_000, dtype=bool)
    forty[:40] = True
    assert compare_datasets(_synthetic(none, 10_000, 1), _synthetic(forty, 10_000, 1)).differences[0].changed


def test_every_target_met_is_not_compared_when_the_targets_differ(tmp_path):
    flags = np.ones(1000, dtype=bool)
    a = _synthetic(flags, 100, 1)
    b = _synthetic(flags, 100, 1).assign_coords(target=["t2"])
    comparison = compare_datasets(a, b)
    joint = comparison.differences[-1]
    assert joint.method == "not comparable" and math.isnan(joint.difference) and not joint.changed
    assert comparison.only_reference == ("t1",) and comparison.only_other == ("t2",)
