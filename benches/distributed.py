"""Distributed runs (issue 19): local threads against a LocalCluster of 2 worker processes, the scheduler's
per-task overhead, and the task size chosen from it.

Run from the repository root (needs the dask extra, ``pip install -e '.[dask]'``):

    .venv/bin/python -m benches.distributed            # scenarios/base.yaml at 2,000,000 paths
    .venv/bin/python -m benches.distributed --quick    # 200,000 paths

What it measures, in this order:
  start      seconds to start the LocalCluster (2 processes, 1 thread each) and to load the compiled
             kernels in its workers (numba's on-disk cache, once per worker: the first task's extra time)
  overhead   the scheduler's cost of one task: 400 no-op tasks submitted at once and gathered as they
             complete (``distributed.as_completed``), per task; and one task of the engine on 256 paths
             (plan sent once by ``scatter``, its partial statistics returned) minus the same range
             simulated in-process
  task size  ``targetsim.distributed.paths_per_task`` for the run (from ``TASK_OVERHEAD_S``, and from the
             overhead just measured), and the share of a task that the measured overhead is at that size
  runs       the same run (same seed) with 2 local threads and on the cluster, best of 3 each, and
             whether the two datasets are bit-identical

Figures go to ``benches/results/distributed.json`` (``distributed_quick.json`` with ``--quick``).
The machine is shared: compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benches" / "results"
SCENARIO = ROOT / "scenarios" / "base.yaml"


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _identical(a, b) -> bool:
    for name in a.data_vars:
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        if x.tobytes() != y.tobytes():
            return False
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200,000 paths instead of 2,000,000")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    import distributed

    import targetsim
    from targetsim.distributed import LOCAL_CLUSTER_QUIET, SCHEDULING_SHARE, paths_per_task, simulate_task
    from targetsim.engine.plan import build_plan
    from targetsim.engine.simulate import simulate_range
    from targetsim.kernels.rng import key_from_seed

    paths = 200_000 if args.quick else 2_000_000
    scenario = targetsim.load_scenario(SCENARIO)
    plan = build_plan(scenario)
    key = key_from_seed(scenario.seed)
    out: dict = {"scenario": str(SCENARIO.relative_to(ROOT)), "paths": paths, "workers": args.workers,
                 "threads_local": args.workers}

    targetsim.run(scenario, paths=10_000, threads=args.workers)  # kernels loaded here
    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  **LOCAL_CLUSTER_QUIET) as cluster, \
            distributed.Client(cluster) as client:
        out["cluster_start_s"] = time.perf_counter() - started
        plan_future = client.scatter(plan, broadcast=True, hash=False)

        # the first task on each worker loads the kernels (numba's cache); later tasks do not
        started = time.perf_counter()
        client.gather([client.submit(simulate_task, plan_future, key, 0, 256, 0.0, 0, pure=False,
                                     workers=[w], allow_other_workers=False)
                       for w in client.scheduler_info()["workers"]])
        out["kernel_load_s"] = time.perf_counter() - started

        # the scheduler's cost of a task: no-op tasks, all at once, gathered as they complete
        n_noop = 400
        started = time.perf_counter()
        for future in distributed.as_completed([client.submit(abs, -i, pure=False) for i in range(n_noop)]):
            future.result()
        out["noop_task_ms"] = 1e3 * (time.perf_counter() - started) / n_noop * args.workers

        # one engine task on 256 paths (its partial statistics returned) minus the same work here
        def small_tasks(n: int = 40) -> None:
            for future in distributed.as_completed([client.submit(simulate_task, plan_future, key, 256 * i,
                                                                  256 * (i + 1), 0.0, 0, pure=False)
                                                    for i in range(n)]):
                future.result()

        remote = _best(small_tasks) / 40 * args.workers
        here = _best(lambda: [simulate_range(plan, key, 256 * i, 256 * (i + 1)) for i in range(40)]) / 40
        out["small_task_ms"] = 1e3 * remote
        out["small_task_overhead_ms"] = 1e3 * (remote - here)
        overhead_s = max(out["noop_task_ms"], out["small_task_overhead_ms"]) / 1e3

        size = paths_per_task(plan, paths, args.workers)  # what a run chooses (TASK_OVERHEAD_S)
        out["task_paths_from_measured_overhead"] = paths_per_task(plan, paths, args.workers, overhead_s=overhead_s)
        local_ds = None

        def run_local():
            nonlocal local_ds
            local_ds = targetsim.run(scenario, paths=paths, threads=args.workers)

        out["local_threads_s"] = _best(run_local)
        per_path_s = out["local_threads_s"] * args.workers / paths  # one thread's time per path
        out["task_paths"] = size
        out["tasks"] = -(-paths // size)
        out["task_simulation_s"] = size * per_path_s
        out["overhead_share_at_task_size"] = overhead_s / (overhead_s + size * per_path_s)
        out["scheduling_share_goal"] = SCHEDULING_SHARE

        remote_ds = None

        def run_cluster():
            nonlocal remote_ds
            remote_ds = targetsim.run(scenario, paths=paths, client=client)

        out["cluster_s"] = _best(run_cluster)
        out["cluster_vs_local"] = out["local_threads_s"] / out["cluster_s"]
        out["bit_identical"] = _identical(local_ds, remote_ds)

    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / ("distributed_quick.json" if args.quick else "distributed.json")
    target.write_text(json.dumps(out, indent=2))
    print(f"targetsim distributed bench: {out['scenario']}, {paths:,} paths, {args.workers} workers")
    print(f"  cluster start {out['cluster_start_s']:.2f} s; kernels loaded in the workers {out['kernel_load_s']:.2f} s")
    print(f"  per-task overhead: no-op task {out['noop_task_ms']:.2f} ms, 256-path engine task "
          f"{out['small_task_ms']:.2f} ms ({out['small_task_overhead_ms']:.2f} ms over the same work in-process)")
    print(f"  task size {size:,} paths ({out['tasks']} tasks, {out['task_simulation_s'] * 1e3:.0f} ms each): the "
          f"measured overhead is {100 * out['overhead_share_at_task_size']:.2f} % of a task (from the overhead "
          f"measured now: {out['task_paths_from_measured_overhead']:,} paths a task)")
    print(f"  local {args.workers} threads {out['local_threads_s']:.2f} s, cluster of {args.workers} workers "
          f"{out['cluster_s']:.2f} s ({out['cluster_vs_local']:.2f}x); bit-identical: {out['bit_identical']}")
    print(f"wrote {target}")
    if not out["bit_identical"]:
        raise SystemExit("the distributed run differs from the local run")
    return out


if __name__ == "__main__":
    main()
