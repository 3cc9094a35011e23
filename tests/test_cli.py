"""The command line as a planner uses it, and the NetCDF output contract."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import targetsim
from targetsim.cli import main
from tests.conftest import ROOT

BASE = ROOT / "scenarios" / "base.yaml"
CONTRACT_VARIABLES = [
    "attainment_probability", "attainment_probability_lower", "attainment_probability_upper",
    "attainment_probability_standard_error", "joint_attainment_probability", "attainment_by_year",
    "indicator_quantiles", "indicator_mean", "required_growth", "baseline_growth",
]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "base.nc"
    result = CliRunner().invoke(main, ["run", str(BASE), "-o", str(out), "--paths", "20000", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "wh_dt_digital_ordered_trade_cagr" in result.output
    assert "all 9 targets met together" in result.output
    return out


def test_run_writes_the_contract(base_run):
    ds = targetsim.read_dataset(base_run)
    for name in CONTRACT_VARIABLES:
        assert name in ds.data_vars, name
    assert ds.sizes["scenario"] == 1 and ds.sizes["target"] == 9
    assert set(ds.attainment_probability.dims) == {"scenario", "target"}
    assert ds.indicator_quantiles.dims == ("scenario", "indicator", "year", "quantile")
    assert ds.attrs["paths"] == 20000 and ds.attrs["seed"] == 20251030
    assert len(ds.attrs["scenario_sha256"]) == 64 and ds.attrs["targetsim_version"] == targetsim.__version__
    # Chinese labels and quotes survive the round trip
    labels = ds.indicator_label.values.tolist()
    assert "数字订购贸易" in labels
    assert any("数字订购贸易年均增长30%" in s for s in ds.target_source.values.tolist())
    # every indicator says where its start value comes from
    assert all(s for s in ds.indicator_start_source.values.tolist())


def test_run_matches_the_api_and_is_reproducible(base_run):
    from_file = targetsim.read_dataset(base_run)
    direct = targetsim.run(targetsim.load_scenario(BASE), paths=20000, threads=1)
    for name in CONTRACT_VARIABLES:
        np.testing.assert_array_equal(from_file[name].values, direct[name].values, err_msg=name)


def test_default_output_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", str(BASE), "--paths", "1000", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "base.nc").is_file()


def test_validate(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(BASE)])
    assert result.exit_code == 0 and result.output.startswith("ok:")
    assert "9 targets" in result.output


def test_bad_scenario_exits_nonzero_without_traceback_or_output(tmp_path):
    # beside a copy of the project's layout: the plan names ../models/wuhan.yaml
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "models").symlink_to(BASE.parent.parent / "models")
    (tmp_path / "baselines").symlink_to(BASE.parent.parent / "baselines")
    bad = tmp_path / "scenarios" / "bad.yaml"
    bad.write_text(BASE.read_text(encoding="utf-8").replace("kind: cagr", "kind: cgar", 1), encoding="utf-8")
    out = tmp_path / "out.nc"
    proc = subprocess.run([sys.executable, "-m", "targetsim.cli", "run", str(bad), "-o", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "kind" in proc.stderr and "did you mean 'cagr'" in proc.stderr
    assert str(bad) in proc.stderr
    assert not out.exists() and list((tmp_path / "scenarios").iterdir()) == [bad]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baselines", "models", "scenarios"]  # nothing written


def test_the_console_script_flushes_its_output_and_keeps_the_exit_status(tmp_path):
    # python -m targetsim.cli runs the console script's entry (it ends the process directly)
    out = tmp_path / "out.nc"
    proc = subprocess.run([sys.executable, "-m", "targetsim.cli", "run", str(BASE), "-o", str(out), "--paths", "2000"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "all 9 targets met together" in proc.stdout  # the table, through a pipe
    last = proc.stdout.rstrip().splitlines()[-1]  # the last line, written just before the exit
    assert re.fullmatch(rf"wrote {re.escape(str(out))} \(2,000 paths, seed 20251030, [0-9.]+ s\)", last), last
    assert out.is_file()
    version = subprocess.run([sys.executable, "-m", "targetsim.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and targetsim.__version__ in version.stdout
    missing = subprocess.run([sys.executable, "-m", "targetsim.cli", "run"], capture_output=True, text=True)
    assert missing.returncode == 2 and "Missing argument" in missing.stderr


def test_unwritable_output_fails_before_simulating(tmp_path):
    target = tmp_path / "a_directory"
    target.mkdir()
    result = CliRunner().invoke(main, ["run", str(BASE), "-o", str(target)])
    assert result.exit_code == 1 and "is a directory" in result.output


def test_too_many_threads_is_a_user_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(BASE), "-o", str(tmp_path / "x.nc"), "--threads", "4096"])
    assert result.exit_code == 1 and "--threads" in result.output
    assert not (tmp_path / "x.nc").exists()


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    ds = targetsim.run(targetsim.load_scenario(BASE), paths=500)
    out = tmp_path / "r.nc"
    out.write_bytes(b"previous results")
    targetsim.write_dataset(ds, out)
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]
    assert targetsim.read_dataset(out).attrs["paths"] == 500

    class Boom(Exception):
        pass

    def failing(*args, **kwargs):
        raise Boom()

    out.write_bytes(b"previous results")
    original = type(ds).to_netcdf
    try:
        type(ds).to_netcdf = failing
        with pytest.raises(Boom):
            targetsim.write_dataset(ds, out)
    finally:
        type(ds).to_netcdf = original
    assert out.read_bytes() == b"previous results"
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


def test_import_is_light():
    code = ("import sys, targetsim; heavy = {'numba', 'xarray', 'targetsim.kernels.lognormal'} & set(sys.modules);"
            "print(sorted(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def _run_that_compiles(*args, **kwargs):
    """Stands in for ``targetsim.api.run``: compiles a new function (a cold cache), then runs."""
    from numba import njit

    njit(cache=False)(lambda x: x + 1)(1)
    return targetsim.run(*args, **kwargs)


@pytest.mark.parametrize("quiet", [False, True])
def test_first_compile_is_announced_unless_quiet(tmp_path, monkeypatch, quiet):
    from targetsim.cli import COMPILING_NOTICE

    monkeypatch.setattr("targetsim.api.run", _run_that_compiles)
    args = ["run", str(BASE), "-o", str(tmp_path / "r.nc"), "--paths", "1000"] + (["--quiet"] if quiet else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.count(COMPILING_NOTICE) == (0 if quiet else 1)


def test_a_warm_run_announces_no_compilation(base_run, tmp_path):
    from targetsim.cli import COMPILING_NOTICE

    # base_run compiled (or loaded) every kernel in this process already
    result = CliRunner().invoke(main, ["run", str(BASE), "-o", str(tmp_path / "r.nc"), "--paths", "1000"])
    assert result.exit_code == 0, result.output
    assert COMPILING_NOTICE not in result.output
