"""Dask execution (issue 19): the client a run or a sweep distributes its tasks through.

``dask.distributed`` is an optional extra (``pip install 'targetsim[dask]'``); it is imported only here,
and only when a scheduler address or a worker count is given."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# imported here, at the top, so that a worker process loads the compiled kernels once (numba's on-disk
# cache), not per task
from targetsim.engine.resources import DASK_WINDOW_BYTES
from targetsim.engine.simulate import simulate_range
from targetsim.errors import TargetsimError
import targetsim.kernels.paths  # noqa: F401,E402 - see above

DASK_EXTRA_HINT = "pip install 'targetsim[dask]'"
#: A local cluster's scheduler without a dashboard, its HTTP server on a free port (the default, 8787, may be
#: taken by another cluster on the machine), and only its errors logged.
LOCAL_CLUSTER_QUIET = {"dashboard_address": ":0", "scheduler_kwargs": {"dashboard": False}, "silence_logs": 40}
#: How long to try to reach a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = "10s"


def require_distributed() -> Any:
    """The ``distributed`` module, or an error naming the extra that brings it."""
    try:
        import distributed
    except ImportError as exc:
        raise TargetsimError(f"--scheduler and --workers need dask.distributed, which is not installed: "
                             f"{DASK_EXTRA_HINT}") from exc
    return distributed


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: connected to the running scheduler at ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``), or to a local cluster of ``workers`` processes started for the block and
    closed after it. Exactly one of the two must be given."""
    if (scheduler is None) == (workers is None):
        raise TargetsimError("give either a scheduler address (--scheduler) or a number of local worker "
                             "processes (--workers), not both")
    if workers is not None and workers < 1:
        raise TargetsimError(f"--workers must be at least 1, got {workers}")
    distributed = require_distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise TargetsimError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}. Start one with "
                                 f"`dask scheduler` (and workers with `dask worker {scheduler}`), or use "
                                 f"--workers N for a local cluster") from exc
        with client:
            yield client
        return
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, **LOCAL_CLUSTER_QUIET
                                  ) as cluster, distributed.Client(cluster) as client:
        yield client


# --- blocks of paths as Dask tasks ---------------------------------------------------------------------------

#: Scheduler overhead of one task, per worker thread (submit, schedule, run, gather as completed), measured
#: with ``python -m benches.distributed``: 400 no-op tasks on a LocalCluster of 2 processes took 8-14 ms each
#: per worker on the 2-core development machine (the scheduler, the client and both workers share its
#: 2 cores; 34 ms when other jobs loaded it), an engine task of 256 paths 21-30 ms more than the same work
#: in-process (its 1.3 MB result moved). A dedicated scheduler host is faster. See the README's
#: "Distributed runs and precision".
TASK_OVERHEAD_S = 0.020
#: Bytes a task's result moves per second (pickled partial statistics from worker to client, the quantile
#: sketches dominating: 8 bytes × indicators × years × 4,098 bins): about 100 MB/s measured here and on a
#: gigabit network.
RESULT_BYTES_PER_S = 100e6
#: Scheduling and moving results should take at most this share of a task's time: tasks are at least
#: ``(TASK_OVERHEAD_S + result bytes / RESULT_BYTES_PER_S) / SCHEDULING_SHARE`` seconds of simulation.
SCHEDULING_SHARE = 0.05
#: The overhead accepted to give every worker thread a task of its own (a run too short for
#: :data:`SCHEDULING_SHARE` on every thread).
BUSY_SHARE = 0.25
#: Tasks no longer than this many paths (a retried task repeats at most this much work; its chunk sums,
#: ``paths / 256 × indicators × years`` floats, stay small), and at least this many tasks per worker thread
#: where the run is long enough (the last tasks then balance the load).
MAX_TASK_PATHS = 1 << 22
TASKS_PER_THREAD = 4
#: At most this many tasks per worker thread are submitted ahead of the first unfinished one: results that
#: finish out of order wait for it, so the client's memory stays bounded whatever the number of paths.
WINDOW_PER_THREAD = 8
#: ... and at most so many that the chunk sums waiting at the client (window − 1 tasks' worth) stay within
#: this many bytes (a task's are ``paths / 256 × (indicators × years + 1)`` floats: 37 MB for
#: wuhan_all_plans at 2^22 paths, so 8 × threads of them would be gigabytes), but never fewer than
#: threads + 1 (every thread busy, one waiting); :func:`paths_per_task` makes tasks small enough for that.
WINDOW_BYTES = DASK_WINDOW_BYTES
#: Environment variable of the fault-injection test: when set to a directory holding a file ``kill-worker``,
#: the first task to claim (remove) that file ends its worker process abruptly, as a machine lost mid-run.
FAULT_DIR_ENV = "TARGETSIM_TEST_FAULT_DIR"


def task_result_bytes(plan: Any, task_paths: int) -> int:
    """Bytes of a task's chunk sums (the part of its result that waits at the client for earlier tasks): per
    256 paths, a float per indicator and year and the sum of squared weights."""
    from targetsim.kernels.geometry import CHUNK

    return -(-task_paths // CHUNK) * (plan.n_indicators * (plan.n_steps + 1) + 1) * 8


def submission_window(threads: int, task_bytes: int) -> int:
    """Tasks submitted ahead of the first unfinished one: :data:`WINDOW_PER_THREAD` per thread, fewer where
    the results that may wait (window − 1 of them) would pass :data:`WINDOW_BYTES`, never fewer than
    ``threads + 1``."""
    threads = max(threads, 1)
    by_bytes = WINDOW_BYTES // max(task_bytes, 1) + 1
    return max(threads + 1, min(WINDOW_PER_THREAD * threads, by_bytes))


def paths_per_task(plan: Any, paths: int, threads: int, *, overhead_s: float = TASK_OVERHEAD_S) -> int:
    """Paths per task for a run of ``paths`` paths on ``threads`` worker threads, from the measured per-task
    overhead (``overhead_s``, plus moving the task's result) and the run's own time estimate
    (:func:`targetsim.engine.resources.estimate_for_plan`): :data:`TASKS_PER_THREAD` tasks per thread (the
    last ones balance the load), fewer where the overhead would pass :data:`SCHEDULING_SHARE` of a task's
    time, but one per thread where that keeps the overhead below :data:`BUSY_SHARE` (an idle thread costs
    more than the overhead), and none longer than :data:`MAX_TASK_PATHS` or than lets ``threads`` tasks' chunk
    sums (those that may wait at the client, :func:`submission_window`) fit in :data:`WINDOW_BYTES`. The run
    is split evenly; a multiple of the default block size."""
    from targetsim.engine.resources import estimate_for_plan
    from targetsim.kernels.geometry import DEFAULT_BLOCK_SIZE
    from targetsim.kernels.sketch import OFF_GRID_BINS

    threads = max(threads, 1)
    per_path_s = max(estimate_for_plan(plan, paths=1, threads=1).seconds, 1e-12)
    result_bytes = 8 * plan.n_indicators * (plan.n_steps + 1) * (plan.n_bins + OFF_GRID_BINS + 2)
    per_task_s = overhead_s + result_bytes / RESULT_BYTES_PER_S
    work_s = paths * per_path_s
    tasks = min(TASKS_PER_THREAD * threads, math.floor(work_s * SCHEDULING_SHARE / per_task_s))
    # no longer than MAX_TASK_PATHS, nor than lets threads (+1 waiting) tasks' chunk sums fit in WINDOW_BYTES
    chunk_bytes = task_result_bytes(plan, DEFAULT_BLOCK_SIZE)
    longest = max(DEFAULT_BLOCK_SIZE, min(MAX_TASK_PATHS, WINDOW_BYTES // threads // chunk_bytes * DEFAULT_BLOCK_SIZE))
    tasks = max(tasks, min(threads, math.floor(work_s * BUSY_SHARE / per_task_s)), math.ceil(paths / longest), 1)
    return math.ceil(paths / tasks / DEFAULT_BLOCK_SIZE) * DEFAULT_BLOCK_SIZE


def simulate_task(plan: Any, key: Any, start: int, stop: int, log_w_ref: float, keep_paths: int) -> Any:
    """One task: the partial statistics of paths ``start .. stop - 1`` (a pure function of its arguments,
    so Dask may run it again on another worker when one is lost). The kernels are imported at this
    module's top on the worker, so numba loads them from its on-disk cache once per worker process."""
    fault_dir = os.environ.get(FAULT_DIR_ENV)
    if fault_dir:
        try:
            os.remove(os.path.join(fault_dir, "kill-worker"))
        except FileNotFoundError:
            pass
        else:
            os._exit(17)  # a lost machine: no clean-up, no reply
    return simulate_range(plan, key, start, stop, log_w_ref=log_w_ref, keep_paths=keep_paths, threads=1)


class DaskExecutor:
    """Runs ranges of paths as Dask tasks (:class:`targetsim.engine.simulate.PathExecutor`).

    The plan is sent to every worker once (``client.scatter(plan, broadcast=True)``), and each task
    receives a reference to it; tasks are submitted in a window (:func:`submission_window`) and their
    results handed to the run as they complete (``distributed.as_completed``), which merges them exactly
    in any order. ``task_paths``: paths per task (default: :func:`paths_per_task`)."""

    def __init__(self, client: Any, task_paths: int | None = None) -> None:
        from targetsim.kernels.geometry import CHUNK

        if task_paths is not None and (task_paths < CHUNK or task_paths % CHUNK):
            raise TargetsimError(f"paths per task must be a positive multiple of {CHUNK}, got {task_paths}")
        self.client = client
        self.task_paths = task_paths
        self._scattered: tuple[Any, Any] | None = None
        self.tasks_run = 0
        self.most_in_flight = 0  # the most tasks submitted and not yet handed to the run, at once

    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def _plan_future(self, plan: Any) -> Any:
        if self._scattered is None or self._scattered[0] is not plan:
            self._scattered = (plan, self.client.scatter(plan, broadcast=True, hash=False))
        return self._scattered[1]

    def run(self, plan: Any, key: Any, start: int, stop: int, log_w_ref: float, keep_paths: int,
            sink: Callable[[Any], None]) -> None:
        distributed = require_distributed()
        threads = self.threads()
        size = self.task_paths or paths_per_task(plan, stop - start, threads)
        ranges = [(a, min(a + size, stop)) for a in range(start, stop, size)]
        plan_future = self._plan_future(plan)
        window = submission_window(threads, task_result_bytes(plan, size))
        submitted = 0
        finished: set[int] = set()
        first_unfinished = 0

        index_of: dict[str, int] = {}

        def submit(index: int) -> Any:
            a, b = ranges[index]
            # pure (the default): the key is a hash of the function and its arguments
            future = self.client.submit(simulate_task, plan_future, key, a, b, float(log_w_ref), int(keep_paths))
            index_of[future.key] = index
            return future

        initial = []
        while submitted < len(ranges) and submitted < window:
            initial.append(submit(submitted))
            submitted += 1
        pending = distributed.as_completed(initial)
        for future in pending:
            self.most_in_flight = max(self.most_in_flight, submitted - self.tasks_run)
            partial = future.result()
            index = index_of.pop(future.key)
            future.release()
            self.tasks_run += 1
            sink(partial)
            finished.add(index)
            while first_unfinished in finished:
                finished.discard(first_unfinished)
                first_unfinished += 1
            while submitted < len(ranges) and submitted < first_unfinished + window:
                pending.add(submit(submitted))
                submitted += 1


@contextmanager
def executor_for(scheduler: str | None = None, workers: int | None = None, client: Any = None,
                 task_paths: int | None = None) -> Iterator[DaskExecutor | None]:
    """A :class:`DaskExecutor` on ``client``, on the scheduler at ``scheduler`` or on a local cluster of
    ``workers`` processes (closed after the block); ``None`` when none is given (the run stays here)."""
    if client is not None:
        if scheduler is not None or workers is not None:
            raise TargetsimError("give a Dask client, a scheduler address or a number of workers, not several")
        yield DaskExecutor(client, task_paths)
        return
    if scheduler is None and workers is None:
        yield None
        return
    with dask_client(scheduler, workers) as made:
        yield DaskExecutor(made, task_paths)
