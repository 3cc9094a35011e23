"""Dask-distributed runs (issue 19): blocks of paths as tasks on a LocalCluster of processes give the
dataset of a local run bit for bit, whatever the workers, the order tasks finish in, or a worker lost
mid-run. One cluster of two worker processes serves the module (starting one costs seconds)."""

from __future__ import annotations

import os
import sys

import pytest

import targetsim
from targetsim.errors import TargetsimError
from tests.engine_scenarios import EXTREME_OBSERVATION, assert_identical, drawn_inputs

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'targetsim[dask]'")

from targetsim.distributed import FAULT_DIR_ENV, LOCAL_CLUSTER_QUIET, DaskExecutor, paths_per_task  # noqa: E402

PATHS = 20_000
TASK = 2048  # ten tasks of a 20,000-path run: several per worker, finishing in varying order


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def client(fault_dir):
    # the workers inherit the fault-injection directory (a file there ends the worker that claims it)
    previous = os.environ.get(FAULT_DIR_ENV)
    os.environ[FAULT_DIR_ENV] = str(fault_dir)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **LOCAL_CLUSTER_QUIET
                                      ) as cluster, distributed.Client(cluster) as made:
            yield made
    finally:
        if previous is None:
            os.environ.pop(FAULT_DIR_ENV, None)
        else:
            os.environ[FAULT_DIR_ENV] = previous


@pytest.fixture(scope="module")
def scenario():
    return drawn_inputs()


@pytest.fixture(scope="module")
def local(scenario):
    return targetsim.run(scenario, paths=PATHS, keep_paths=3000, threads=2)


def test_distributed_equals_local_bit_for_bit(client, scenario, local):
    progress = []
    ds = targetsim.run(scenario, paths=PATHS, keep_paths=3000, client=client, task_paths=TASK,
                       progress=lambda done, total: progress.append((done, total)))
    assert_identical(local, ds)
    # progress: one report per completed task, up to every path
    assert len(progress) == -(-PATHS // TASK) and progress[-1] == (PATHS, PATHS)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_one_worker_and_other_task_sizes_equal_local(client, scenario, local):
    one = [next(iter(client.scheduler_info()["workers"]))]

    class OneWorker(DaskExecutor):  # every task on one worker process
        def run(self, plan, key, start, stop, log_w_ref, keep_paths, sink):
            submit = self.client.submit
            self.client.submit = lambda *a, **k: submit(*a, workers=one, allow_other_workers=False, **k)
            try:
                super().run(plan, key, start, stop, log_w_ref, keep_paths, sink)
            finally:
                self.client.submit = submit

    from targetsim.engine.plan import build_plan
    from targetsim.engine.results import build_dataset
    from targetsim.engine.simulate import simulate

    plan = build_plan(scenario)
    executor = OneWorker(client, task_paths=4096 + 256)
    stats = simulate(plan, paths=PATHS, seed=scenario.seed, keep_paths=3000, executor=executor)
    ds = build_dataset(scenario, plan, stats, seed=scenario.seed, version=targetsim.__version__)
    assert executor.tasks_run == -(-PATHS // (4096 + 256))
    assert_identical(local.drop_attrs(), ds.drop_attrs())


def test_weighted_distributed_equals_local(client):
    observed = drawn_inputs(observed=True)
    here = targetsim.run(observed, paths=PATHS, keep_paths=500, threads=1)
    there = targetsim.run(observed, paths=PATHS, keep_paths=500, client=client, task_paths=TASK)
    assert here.effective_sample_size.values[0] < PATHS  # the paths are weighted
    assert_identical(here, there)


def test_second_pass_distributed_equals_local(client):
    # an observation in the tail: the run repeats itself relative to its likeliest path (log_w_ref < 0)
    from targetsim.engine.plan import build_plan
    from targetsim.engine.simulate import simulate

    plan = build_plan(drawn_inputs(observed=EXTREME_OBSERVATION))
    here = simulate(plan, paths=PATHS, seed=9, threads=2, keep_paths=400)
    there = simulate(plan, paths=PATHS, seed=9, keep_paths=400, executor=DaskExecutor(client, task_paths=TASK))
    assert here.log_weight_reference < 0 and here.log_weight_reference == there.log_weight_reference
    for name in ("attained", "attained_by_year", "pair_fail", "sketch", "total", "log_min", "log_max", "n_met"):
        assert getattr(here, name).tobytes() == getattr(there, name).tobytes(), name
    assert (here.weight_total, here.weight_sq_total) == (there.weight_total, there.weight_sq_total)
    for name in here.kept._fields[2:]:
        assert getattr(here.kept, name).tobytes() == getattr(there.kept, name).tobytes(), name


def test_precision_distributed_equals_local(client, scenario):
    here = targetsim.run(scenario, precision=0.003, threads=2)
    there = targetsim.run(scenario, precision=0.003, client=client, task_paths=8192)
    assert_identical(here, there)


def test_a_worker_lost_mid_run_changes_nothing(client, scenario, local, fault_dir):
    marker = fault_dir / "kill-worker"
    marker.write_text("the first task to remove this file ends its worker process")
    ds = targetsim.run(scenario, paths=PATHS, keep_paths=3000, client=client, task_paths=TASK)
    assert not marker.exists()  # a task claimed it and its worker died; the scheduler ran its tasks again
    assert_identical(local, ds)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_a_local_cluster_from_workers(scenario, local):
    ds = targetsim.run(scenario, paths=PATHS, keep_paths=3000, workers=1, task_paths=8192)
    assert_identical(local, ds)


def test_task_size_keeps_scheduling_a_small_share():
    from targetsim.distributed import BUSY_SHARE, RESULT_BYTES_PER_S, SCHEDULING_SHARE, TASK_OVERHEAD_S
    from targetsim.engine.plan import build_plan
    from targetsim.engine.resources import estimate_for_plan
    from tests.conftest import ROOT

    plan = build_plan(targetsim.load_scenario(ROOT / "scenarios" / "base.yaml"))
    per_path = estimate_for_plan(plan, paths=1, threads=1).seconds
    result_s = 8 * plan.n_indicators * (plan.n_steps + 1) * (plan.n_bins + 2 + 2) / RESULT_BYTES_PER_S

    def tasks_and_share(paths: int, threads: int) -> tuple[int, float]:
        size = paths_per_task(plan, paths, threads)
        assert size % 8192 == 0
        return -(-paths // size), (TASK_OVERHEAD_S + result_s) / (size * per_path)

    # long runs: four tasks per thread, the overhead within its share (10^9 paths: 3.9 million a task, below
    # MAX_TASK_PATHS)
    tasks, share = tasks_and_share(2 * 10**7, 2)
    assert tasks == 8 and share <= SCHEDULING_SHARE
    # on 64 threads the 256 tasks' chunk sums (3.9 MB each) would let 64 of them pass WINDOW_BYTES waiting at
    # the client: the tasks are made a little smaller instead
    from targetsim.distributed import WINDOW_BYTES, task_result_bytes

    tasks, share = tasks_and_share(10**9, 64)
    assert 256 < tasks < 320 and share <= SCHEDULING_SHARE
    assert 64 * task_result_bytes(plan, paths_per_task(plan, 10**9, 64)) <= WINDOW_BYTES
    # a run too short for that: one task per thread while the overhead stays below BUSY_SHARE
    tasks, share = tasks_and_share(2 * 10**6, 2)
    assert tasks == 2 and share <= BUSY_SHARE
    # too short even for that: one task
    assert tasks_and_share(20_000, 2)[0] == 1


def test_missing_dask_names_the_extra(monkeypatch):
    from targetsim.distributed import require_distributed

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(TargetsimError, match=r"targetsim\[dask\]"):
        require_distributed()


def test_bad_distributed_options(scenario, monkeypatch, tmp_path):
    import targetsim.distributed

    monkeypatch.setattr(targetsim.distributed, "CONNECT_TIMEOUT", "0.5s")
    with pytest.raises(TargetsimError, match="not both"):
        targetsim.run(scenario, paths=1000, scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(TargetsimError, match="distributed run"):
        targetsim.run(scenario, paths=1000, task_paths=4096)
    with pytest.raises(TargetsimError, match="cannot reach the Dask scheduler"):
        targetsim.run(scenario, paths=1000, scheduler="tcp://127.0.0.1:9")
    # the command line: one line naming the cause, exit status 1
    from click.testing import CliRunner

    from targetsim.cli import main
    from tests.conftest import ROOT

    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "base.yaml"), "-o", str(tmp_path / "x.nc"),
                                       "--paths", "1000", "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    assert result.exit_code == 1 and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in result.output
    assert not (tmp_path / "x.nc").exists()


# --- the client's memory: the submission window is sized by bytes -------------------------------------------


def test_the_window_holds_a_byte_budget_of_waiting_chunk_sums_and_keeps_every_thread_busy():
    from targetsim.distributed import WINDOW_BYTES, WINDOW_PER_THREAD, submission_window

    assert submission_window(4, task_bytes=1000) == WINDOW_PER_THREAD * 4  # small results: by threads
    big = 37 * 10**6  # wuhan_all_plans' chunk sums at 2^22 paths a task (reviewed)
    assert submission_window(4, task_bytes=big) == WINDOW_BYTES // big + 1 == 8  # 7 waiting, one running
    # the results waiting for an unfinished task (window − 1 of them) stay within the budget ...
    for threads in (1, 2, 4, 6):
        for task_bytes in (1, 10**5, 10**7, 3 * 10**7):
            window = submission_window(threads, task_bytes=task_bytes)
            assert window >= threads + 1
            assert (window - 1) * task_bytes <= max(WINDOW_BYTES, threads * task_bytes)
    # ... except that every thread keeps a task and one waits (the budget then gives way, and the tasks
    # are made smaller: see paths_per_task)
    assert submission_window(16, task_bytes=big) == 17


def test_tasks_are_small_enough_for_the_window_on_many_threads():
    from targetsim.distributed import WINDOW_BYTES, submission_window, task_result_bytes
    from targetsim.engine.plan import build_plan
    from targetsim.kernels.geometry import CHUNK
    from tests.conftest import lognormal, make_scenario, scenario_dict

    # 200 indicators × 31 years: 50 kB of chunk sums per 256 paths, 800 MB for a task of 2^22 paths
    indicators = {f"i{k}": lognormal(100.0, 0.05) for k in range(200)}
    targets = [{"id": "t", "indicator": "i0", "kind": "level", "threshold": 200.0, "by": 2054}]
    plan = build_plan(make_scenario(scenario_dict(indicators, targets, horizon=2054)))
    assert task_result_bytes(plan, CHUNK) == 8 * (200 * 31 + 1)
    for threads in (2, 16, 64):
        size = paths_per_task(plan, 10**9, threads)
        window = submission_window(threads, task_result_bytes(plan, size))
        assert (window - 1) * task_result_bytes(plan, size) <= WINDOW_BYTES


def test_tasks_in_flight_stay_within_the_window(client, scenario, local, monkeypatch):
    import targetsim.distributed as dd

    monkeypatch.setattr(dd, "WINDOW_BYTES", 1)  # the smallest window: threads + 1 tasks
    executor = DaskExecutor(client, task_paths=1024)
    ds = targetsim.run(scenario, paths=PATHS, keep_paths=3000, client=client, task_paths=1024)
    assert_identical(local, ds)
    from targetsim.engine.plan import build_plan
    from targetsim.engine.simulate import simulate

    stats = simulate(build_plan(scenario), paths=PATHS, seed=scenario.seed, executor=executor)
    assert executor.tasks_run == -(-PATHS // 1024)
    assert executor.most_in_flight == executor.threads() + 1 == 3


def test_a_distributed_preflight_counts_the_waiting_results(scenario):
    from targetsim.api import preflight
    from targetsim.distributed import WINDOW_BYTES

    here = preflight(scenario, paths=10**6, threads=1)
    there = preflight(scenario, paths=10**6, threads=1, distributed=True)
    waiting = dict(there.parts)["task results waiting"]
    assert there.memory_bytes - here.memory_bytes == waiting
    # the budget, or the whole run's chunk sums when smaller (1 indicator-year row of 8 bytes a chunk here)
    cells = len(scenario.indicators) * (scenario.horizon - scenario.base_year + 1)
    assert waiting == min(WINDOW_BYTES, 8 * (cells + 1) * (10**6 // 256 + 1))
