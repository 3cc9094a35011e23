"""Everything that can be refused is refused before the simulation spends its time; numbers that would
be silently wrong are refused after it.

Destination (unwritable, a directory, a full disk), memory and the floating-point range are checked
before simulating: each test replaces the simulation with one that fails, so a check that came too
late would show. A long run is announced up front. After a run, non-finite values and NaN results
are errors that say where and why.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import targetsim
from targetsim.io.netcdf import estimate_output_bytes
from targetsim.units import format_bytes
from targetsim.kernels.sketch import OFF_GRID_BINS
from targetsim.cli import main
from targetsim.engine import resources
from targetsim.errors import OutputError, TargetsimError
from tests.conftest import lognormal, make_scenario, scenario_dict

SCENARIO = """\
name: 预检
base_year: 2024
horizon: 2027
paths: 20000
seed: 1
indicators:
  a:
    label: 数字订购贸易
    start: {value: 100, assumption: 测试}
    process: {kind: lognormal, growth: {mean: 0.1, sd: 0.02}, volatility: 0.1}
targets:
  - {id: t1, indicator: a, kind: cagr, threshold: 0.1, by: 2027}
"""


@pytest.fixture
def scenario(tmp_path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture
def no_simulation(monkeypatch):
    """The simulation must not start: it fails loudly if it does."""
    def simulate(*args, **kwargs):
        raise AssertionError("the simulation started before the check")

    monkeypatch.setattr("targetsim.engine.simulate.simulate", simulate)


def invoke(*args: str):
    result = CliRunner().invoke(main, ["run", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def test_output_under_a_file_is_refused_before_simulating(tmp_path, scenario, no_simulation):
    (tmp_path / "results.txt").write_text("not a folder", encoding="utf-8")
    out = tmp_path / "results.txt" / "out.nc"
    result = invoke(str(scenario), "-o", str(out))
    assert result.exit_code == 1
    assert f"error: {out}: cannot write there" in result.output


def test_output_that_is_a_directory_is_refused_before_simulating(tmp_path, scenario, no_simulation):
    result = invoke(str(scenario), "-o", str(tmp_path))
    assert result.exit_code == 1 and f"{tmp_path}: is a directory; give a file name" in result.output


def test_unwritable_folder_is_refused_before_simulating(tmp_path, scenario, no_simulation, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores permissions: make the probe fail as it would
        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr("tempfile.NamedTemporaryFile", denied)
    try:
        result = invoke(str(scenario), "-o", str(folder / "out.nc"))
    finally:
        folder.chmod(0o700)
    assert result.exit_code == 1
    assert f"{folder / 'out.nc'}: cannot write there (Permission denied)" in result.output
    assert list(folder.iterdir()) == []


def test_full_disk_is_refused_before_simulating_with_the_numbers(tmp_path, scenario, no_simulation, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 4096, 4096))
    out = tmp_path / "out" / "out.nc"
    result = invoke(str(scenario), "-o", str(out))
    assert result.exit_code == 1
    needed = estimate_output_bytes(targetsim.load_scenario(scenario))
    assert f"{out}: not enough disk space: the results file needs about {format_bytes(needed)}" \
        in result.output
    assert "only 4.0 KiB is free" in result.output
    assert not out.exists()


def test_a_disk_that_fills_during_the_write_keeps_the_old_file(tmp_path, scenario, monkeypatch):
    ds = targetsim.run(targetsim.load_scenario(scenario), paths=500)
    out = tmp_path / "r.nc"
    out.write_bytes(b"previous results")

    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(ds), "to_netcdf", full)
    with pytest.raises(OutputError, match="writing failed \\(No space left on device\\)"):
        targetsim.write_dataset(ds, out)
    assert out.read_bytes() == b"previous results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc", "scenario.yaml"]


def test_estimated_output_size_is_generous(tmp_path, scenario):
    sc = targetsim.load_scenario(scenario)
    out = tmp_path / "out.nc"
    targetsim.write_dataset(targetsim.run(sc, paths=1000), out)
    assert out.stat().st_size <= estimate_output_bytes(sc)


def test_estimated_output_size_counts_the_kept_paths(tmp_path, scenario):
    """--keep-paths adds ~65 bytes a path here (int8 met, weight, 6 float64 per indicator): 20,000 kept paths
    write a file larger than the estimate without them, which the estimate with them bounds."""
    sc = targetsim.load_scenario(scenario)
    out = tmp_path / "kept.nc"
    targetsim.write_dataset(targetsim.run(sc, paths=20_000, keep_paths=20_000, threads=1), out)
    size = out.stat().st_size
    assert estimate_output_bytes(sc) < size <= estimate_output_bytes(sc, keep_paths=20_000)
    assert estimate_output_bytes(sc, keep_paths=1000) < estimate_output_bytes(sc, keep_paths=20_000)


def test_free_space_check_counts_the_kept_paths(tmp_path, scenario, monkeypatch):
    """The preflight's free-space check asks for the kept paths' bytes too."""
    import targetsim.io.netcdf as netcdf

    asked = []
    monkeypatch.setattr(netcdf, "check_destination", lambda output, needed: asked.append(needed))
    sc = targetsim.load_scenario(scenario)
    targetsim.api.preflight(sc, output=tmp_path / "out.nc", keep_paths=50_000)
    assert asked == [estimate_output_bytes(sc, keep_paths=50_000)]


def test_not_enough_memory_is_refused_with_the_numbers(tmp_path, scenario, no_simulation, monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 10 * 2**20)
    result = invoke(str(scenario), "-o", str(tmp_path / "out.nc"), "--threads", "1")
    assert result.exit_code == 1
    assert "not enough memory: this run needs about" in result.output
    assert "but only 10.0 MiB is available" in result.output
    assert f"quantile sketches 1 indicators × 4 years × {4096 + OFF_GRID_BINS:,} bins × 1 threads × 8 bytes" in result.output
    assert not (tmp_path / "out.nc").exists()


def test_memory_estimate_matches_the_engine(scenario):
    sc = targetsim.load_scenario(scenario)
    est = resources.estimate_for_scenario(sc, threads=1)
    from targetsim.engine.plan import build_plan

    plan = build_plan(sc)
    assert est.n_bins == plan.n_bins + OFF_GRID_BINS and est.n_years == plan.n_steps + 1
    assert est.memory_bytes == pytest.approx(resources.estimate_for_plan(plan, paths=sc.paths, threads=1).memory_bytes,
                                             rel=0.01)
    resources.check_memory(est, available=est.memory_bytes)  # fits exactly
    with pytest.raises(TargetsimError, match="not enough memory"):
        resources.check_memory(est, available=est.memory_bytes - 1)


@pytest.mark.parametrize("name", ["base", "wuhan_consumption_centre", "hangzhou_digital_trade"])
def test_duration_estimate_counts_the_count_indicators(name):
    from targetsim.engine.plan import build_plan
    from targetsim.model.scenario import CountProcess

    sc = targetsim.load_scenario(Path(__file__).parent.parent / "scenarios" / f"{name}.yaml")
    est = resources.estimate_for_scenario(sc, paths=10**6, threads=1)
    # the scenario and its plan agree
    assert est.seconds == pytest.approx(resources.estimate_for_plan(build_plan(sc), paths=10**6, threads=1).seconds)
    n_counts = sum(isinstance(ind.process, CountProcess) for ind in sc.indicators)
    years = sc.horizon - sc.base_year
    expected = 10**6 * years * ((len(sc.indicators) - n_counts) * resources.NS_PER_CELL
                                + n_counts * resources.NS_PER_COUNT_CELL) * 1e-9
    assert est.seconds == pytest.approx(expected)
    assert (n_counts > 0) == (name != "base")


def test_a_long_run_is_announced_up_front(tmp_path, scenario, monkeypatch):
    monkeypatch.setattr(resources, "LONG_RUN_S", 0.0)
    calls = []
    real = targetsim.run

    def spy(*args, **kwargs):
        calls.append("simulate")
        return real(*args, **kwargs)

    monkeypatch.setattr("targetsim.api.run", spy)
    result = invoke(str(scenario), "-o", str(tmp_path / "out.nc"))
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("this run is expected to take about ") and "20,000 paths × 1 indicators × 4 years" in first
    assert calls == ["simulate"]
    quiet = invoke(str(scenario), "-o", str(tmp_path / "out.nc"), "--quiet")
    assert quiet.exit_code == 0 and "expected to take" not in quiet.output


def test_a_short_run_is_not_announced(tmp_path, scenario):
    result = invoke(str(scenario), "-o", str(tmp_path / "out.nc"))
    assert result.exit_code == 0 and "expected to take" not in result.output


def test_enormous_path_counts_are_announced_or_refused(scenario):
    sc = targetsim.load_scenario(scenario)
    est = resources.estimate_for_scenario(sc, paths=10**10, threads=1)
    assert est.is_long() and "10,000,000,000 paths" in est.long_run_notice() and "min)" in est.long_run_notice()
    with pytest.raises(TargetsimError, match="paths must be at most 10,000,000,000"):
        targetsim.run(sc, paths=10**10 + 1)


# --- numbers that would be silently wrong ------------------------------------------------------------

def overflowing():
    return make_scenario(scenario_dict({"a": lognormal(1e300, 9.0, volatility=1.0)},
                                       [{"id": "t", "indicator": "a", "kind": "level", "threshold": 1, "by": 2124}],
                                       horizon=2124, paths=1000))


def test_overflow_is_refused_before_simulating(no_simulation):
    with pytest.raises(TargetsimError, match=r"a could reach about 1e\d+ by \d+ .*beyond 1e250.*overflow"):
        targetsim.run(overflowing())


def test_non_finite_paths_are_an_error_not_a_probability(monkeypatch):
    monkeypatch.setattr("targetsim.api.check_numeric_range", lambda scenario: None)
    with pytest.raises(TargetsimError, match=r"non-finite values \(overflow, or a zero denominator\) in a on "
                                             r"[\d,]+ paths; check growth rates, horizon"):
        targetsim.run(overflowing())


def test_a_nan_in_the_results_is_an_error_with_its_cause(scenario):
    from targetsim.api import check_dataset

    sc = targetsim.load_scenario(scenario)
    ds = targetsim.run(sc, paths=1000)
    check_dataset(sc, ds)  # a clean result passes
    for name, where, cause in [
        ("attainment_probability", "target 't1' (indicator 'a')", "no usable paths"),
        ("indicator_mean", "indicator 'a' in 2024", "the simulated values are too large to average (overflow)"),
        ("joint_attainment_probability", "all targets together", "no usable paths"),
    ]:
        bad = ds.copy(deep=True)
        values = bad[name].values
        values.reshape(-1)[0] = np.nan
        with pytest.raises(TargetsimError, match="the result") as info:
            check_dataset(sc, bad)
        message = str(info.value)
        assert f"'{name}' is NaN for {where}" in message and f"likely cause: {cause}" in message
    bad = ds.copy(deep=True)
    bad["attainment_probability"].values[0, 0] = 1.5
    with pytest.raises(TargetsimError, match="1.5, not a probability"):
        check_dataset(sc, bad)


def test_results_get_ordinary_permissions_and_a_symlink_is_replaced_not_followed(tmp_path, scenario):
    ds = targetsim.run(targetsim.load_scenario(scenario), paths=500)
    fresh = tmp_path / "fresh.nc"
    targetsim.write_dataset(ds, fresh)
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600
    kept = tmp_path / "kept.nc"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    targetsim.write_dataset(ds, kept)
    assert kept.stat().st_mode & 0o777 == 0o640
    target = tmp_path / "target.nc"
    target.write_bytes(b"old")
    link = tmp_path / "link.nc"
    link.symlink_to(target.name)
    targetsim.write_dataset(ds, link)
    assert not link.is_symlink() and target.read_bytes() == b"old"
