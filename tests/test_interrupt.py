"""A run killed halfway leaves the previous results file byte for byte, and no partial file.

``targetsim run`` writes ``out/out.nc`` once; then the same command is started again in a subprocess
and signalled halfway. To know *when* halfway is without guessing from the clock, the subprocess runs
the real command line (``targetsim.cli.main``) through a small driver that wraps the simulation's
progress callback: once half the paths are done it prints ``HALFWAY`` and waits, so the signal always
lands in the middle of the simulation, on any machine. A third case signals the run while the new
file is being written (the driver pauses after the temporary file is complete, before the rename).
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # processes killed mid-run: several seconds each

# 4 batches of 2**18 paths (the engine's progress granularity): halfway is after the second.
PATHS = 4 * 2**18

SCENARIO = f"""\
name: 中断测试
base_year: 2024
horizon: 2044
paths: {PATHS}
seed: 3
indicators:
  a:
    label: 数字订购贸易
    start: {{value: 100, assumption: 测试}}
    process: {{kind: lognormal, growth: {{mean: 0.05, sd: 0.02}}, volatility: 0.1}}
  b:
    start: {{value: 50, assumption: 测试}}
    process: {{kind: ar1_growth, long_run_growth: 0.05, persistence: 0.5, volatility: 0.05, initial_growth: 0.1}}
  c:
    start: {{value: 0.4, assumption: 测试}}
    process: {{kind: logit_share, drift: 0.01, volatility: 0.1}}
  d:
    start: 5
    process: {{kind: count, additions: {{distribution: poisson, mean: 2}}}}
targets:
  - {{id: ta, indicator: a, kind: cagr, threshold: 0.05, by: 2044}}
  - {{id: tb, indicator: b, kind: level, threshold: 120, by: 2040}}
  - {{id: tc, indicator: c, kind: share, threshold: 0.45, by: 2044}}
  - {{id: td, indicator: d, kind: count_stock, threshold: 40, by: 2044}}
"""

# Runs the real command line; only the progress callback (or the NetCDF write) is wrapped so that it
# announces the moment and then waits there for the signal. SIGINT gets Python's usual handler even
# when the parent process ignores it (as a shell does for background jobs).
DRIVER = textwrap.dedent("""\
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pause_in = sys.argv[1]

    def announce(word):
        print(word, flush=True)
        time.sleep(120)  # the signal arrives during this sleep
        print("NOT INTERRUPTED", flush=True)

    if pause_in == "simulation":
        import targetsim.engine.simulate as engine
        real_simulate = engine.simulate

        def simulate(*args, progress=None, **kwargs):
            def report(done, total):
                if progress is not None:
                    progress(done, total)
                if 2 * done == total:
                    announce("HALFWAY")
            return real_simulate(*args, progress=report, **kwargs)

        engine.simulate = simulate
    elif pause_in == "kernel":
        # a slot of the second batch announces itself on its worker thread, then takes a while:
        # the signal reaches the main thread while it waits for the slots
        import targetsim.kernels.paths as paths
        real_slot = paths.simulate_slot
        calls = []

        def simulate_slot(*args):
            calls.append(None)
            if len(calls) == 3:
                print("IN KERNEL", flush=True)
                time.sleep(5)
            return real_slot(*args)

        paths.simulate_slot = simulate_slot
    else:
        import xarray
        real_to_netcdf = xarray.Dataset.to_netcdf

        def to_netcdf(self, path, *args, **kwargs):
            result = real_to_netcdf(self, path, *args, **kwargs)
            announce("WRITTEN " + str(path))
            return result

        xarray.Dataset.to_netcdf = to_netcdf

    from targetsim.cli import entry  # the console script's entry point
    sys.argv = ["targetsim", *sys.argv[2:]]
    entry()
    """)

TIMEOUT_S = 120


def command(folder: Path) -> list[str]:
    return ["run", str(folder / "scenario.yaml"), "-o", str(folder / "out" / "out.nc"), "--quiet"]


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> tuple[Path, bytes]:
    """A folder with the scenario and the results of a completed run (which also warms the JIT cache)."""
    folder = tmp_path_factory.mktemp("interrupt")
    (folder / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    (folder / "driver.py").write_text(DRIVER, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "targetsim.cli", *command(folder)], capture_output=True,
                          text=True, cwd=ROOT, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    out = folder / "out" / "out.nc"
    return folder, out.read_bytes()


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the run never reached the point where it is signalled"
    return proc.stdout.readline().strip()


def signalled_run(folder: Path, pause_in: str, signum: int) -> tuple[int, str, str]:
    proc = subprocess.Popen([sys.executable, str(folder / "driver.py"), pause_in, *command(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = read_line(proc, TIMEOUT_S)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, line, stdout + stderr


SIGNALS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]


# "simulation": between two batches, in the main thread (the progress report halfway);
# "kernel": while the slot threads simulate and the main thread waits for them
@pytest.mark.parametrize("pause_in,announced", [("simulation", "HALFWAY"), ("kernel", "IN KERNEL")])
@pytest.mark.parametrize("signum,status,word", SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_run_killed_while_simulating_leaves_the_previous_file(previous, pause_in, announced, signum, status, word):
    folder, before = previous
    out = folder / "out" / "out.nc"
    started = time.monotonic()
    code, line, output = signalled_run(folder, pause_in, signum)
    assert line == announced
    assert "NOT INTERRUPTED" not in output
    assert code == status, output
    assert f"{word}: {out} is unchanged" in output
    assert "Traceback" not in output, output
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.nc"]  # no temporary or partial file
    assert time.monotonic() - started < TIMEOUT_S


def test_a_run_killed_while_writing_removes_its_temporary_file(previous):
    folder, before = previous
    out = folder / "out" / "out.nc"
    code, line, output = signalled_run(folder, "write", signal.SIGTERM)
    word, _, temporary = line.partition(" ")
    assert word == "WRITTEN"
    # the new results were complete in a temporary file beside the old one, not yet renamed
    assert Path(temporary).parent == out.parent and Path(temporary).name != "out.nc"
    assert code == 143, output
    assert "Traceback" not in output, output
    assert not Path(temporary).exists()
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.nc"]


def test_sigterm_handler_is_restored_after_a_run(tmp_path):
    from click.testing import CliRunner

    from targetsim.cli import main

    (tmp_path / "scenario.yaml").write_text(SCENARIO.replace(f"paths: {PATHS}", "paths: 1000"), encoding="utf-8")
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(main, command(tmp_path))
    assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGTERM) is before
