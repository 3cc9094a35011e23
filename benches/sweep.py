"""Sweep throughput: variants per second sequentially, in threads and on a local Dask cluster, and the
share of the time spent simulating (issue 19; goal: at least 80 %).

Run from the repository root:

    .venv/bin/python -m benches.sweep            # 256 variants of wuhan_digital_trade.yaml, 20,000 paths each
    .venv/bin/python -m benches.sweep --quick    # 32 variants of base.yaml, 5,000 paths (CI size)

Results go to benches/results/sweep{,_quick}.json (git-ignored: the summary is also printed).

The sweep is a Latin hypercube over four keys of the plan (two growth means, a volatility, a
correlation), run three ways with the same seed: sequentially (each variant on all the engine's
threads), in 2 in-process threads (one engine thread each) and on a LocalCluster of 2 worker processes
(one thread each) started beforehand and warmed up (its start-up is reported apart). The three results
must be identical (checked). Measured:

- variants per second (the sweep's wall time, from the call to the stacked dataset) and the time to
  write the dataset;
- the simulating share: the seconds inside ``targetsim.engine.simulate.simulate`` (timed in every
  process that runs variants, the workers included) over the wall time × the parallelism (1 or 2),
  writing included. What is not simulating: building each variant's scenario (here, in the client),
  the plan and checks, building each run's xarray dataset (``api.run``), scheduling and gathering;
- the scheduler's overhead per task: ``client.map`` of 400 empty tasks on the cluster (wall / tasks),
  and from it the batch size (variants per task) that keeps the overhead under 2 % of a variant's time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benches" / "results"

FULL = {"scenario": "scenarios/wuhan_digital_trade.yaml", "variants": 256, "paths": 20_000}
QUICK = {"scenario": "scenarios/base.yaml", "variants": 32, "paths": 5_000}
VARY = {
    "indicators.wuhan_cbec_trade.process.growth.mean": "0.10..0.40",
    "indicators.wuhan_digital_ordered_trade.process.growth.mean": "0.15..0.40",
    "indicators.wuhan_cbec_trade.process.volatility": "0.05..0.20",
    "correlations.wuhan_digital_ordered_trade.wuhan_cbec_trade": "0.3..0.95",
}
OVERHEAD_SHARE = 0.02  # the scheduler's overhead per variant allowed, as a share of a variant's time

_SIMULATING = {"seconds": 0.0, "calls": 0}


def install_timer() -> bool:
    """Wrap ``targetsim.engine.simulate.simulate`` (which ``api.run`` imports at each call) with a timer,
    in this process: the main one, or a Dask worker through ``client.run``."""
    import threading

    import targetsim.engine.simulate as module

    if getattr(module.simulate, "_timed", False):
        return True
    original = module.simulate
    lock = threading.Lock()

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                _SIMULATING["seconds"] += time.perf_counter() - started
                _SIMULATING["calls"] += 1

    timed._timed = True  # type: ignore[attr-defined]
    module.simulate = timed
    return True


def read_timer(reset: bool = True) -> dict:
    out = dict(_SIMULATING)
    if reset:
        _SIMULATING.update(seconds=0.0, calls=0)
    return out


def _noop(x):
    return x


def run_mode(name: str, scenario: Path, samples: int, paths: int, parallel: int, out: Path, **where) -> tuple:
    from targetsim.explore.sweep import sweep
    from targetsim.io.netcdf import write_dataset

    task_seconds = []
    started = time.perf_counter()
    ds = sweep(scenario, VARY, samples=samples, paths=paths,
               progress=lambda done, total, i, result: task_seconds.append(result.seconds), **where)
    swept = time.perf_counter() - started
    write_dataset(ds, out)
    wall = time.perf_counter() - started
    return ds, {"mode": name, "variants": samples, "paths": paths, "parallel": parallel,
                "sweep_seconds": round(swept, 3), "write_seconds": round(wall - swept, 3),
                "wall_seconds": round(wall, 3), "variants_per_second": round(samples / wall, 3),
                "api_run_seconds_total": round(float(np.sum(task_seconds)), 3),
                "api_run_seconds_mean": round(float(np.mean(task_seconds)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 variants of base.yaml at 5,000 paths")
    parser.add_argument("--output", type=Path, default=None, help="JSON file [benches/results/sweep{,_quick}.json]")
    args = parser.parse_args(argv)
    setup = QUICK if args.quick else FULL
    scenario = ROOT / setup["scenario"]
    samples, paths = setup["variants"], setup["paths"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json = args.output or RESULTS / ("sweep_quick.json" if args.quick else "sweep.json")
    scratch = RESULTS / "sweep_scratch.nc"

    import distributed

    import targetsim
    from benches import sweep as this  # by its module name, so that Dask workers run the same functions
    from targetsim.explore.sweep import SWEEP_VARIABLES, sweep

    install_timer, read_timer = this.install_timer, this.read_timer
    install_timer()
    # compile / load the kernels and read the scenario once, outside every timing
    targetsim.run(targetsim.load_scenario(scenario), paths=1000, threads=1)
    modes, datasets = [], []

    read_timer()
    ds, row = run_mode("sequential (engine threads: all cores)", scenario, samples, paths, 1, scratch)
    row["simulate_seconds"] = round(read_timer()["seconds"], 3)
    modes.append(row)
    datasets.append(ds)

    ds, row = run_mode("2 in-process threads (1 engine thread each)", scenario, samples, paths, 2, scratch, threads=2)
    row["simulate_seconds"] = round(read_timer()["seconds"], 3)
    modes.append(row)
    datasets.append(ds)

    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.run(install_timer)
        sweep(scenario, VARY, samples=2, paths=1000, scheduler=cluster.scheduler_address)  # import + load kernels
        cluster_start = time.perf_counter() - started
        # the scheduler's overhead per task: empty tasks, round trip included
        n_empty = 400
        t0 = time.perf_counter()
        client.gather(client.map(this._noop, range(n_empty), pure=False))
        overhead = (time.perf_counter() - t0) / n_empty
        client.run(read_timer)
        variant_seconds = modes[1]["api_run_seconds_mean"]  # one engine thread, as on a worker
        batch = max(1, math.ceil(overhead / (OVERHEAD_SHARE * variant_seconds)))
        for b in sorted({1, batch}):
            ds, row = run_mode(f"LocalCluster, 2 workers × 1 thread, {b} variant(s) per task", scenario, samples, paths,
                               2, scratch, scheduler=cluster.scheduler_address, batch=b)
            row["simulate_seconds"] = round(sum(t["seconds"] for t in client.run(read_timer).values()), 3)
            row["batch"] = b
            modes.append(row)
            datasets.append(ds)
    scratch.unlink(missing_ok=True)

    reference = datasets[0]
    for other in datasets[1:]:
        for name in SWEEP_VARIABLES:
            if name in reference and not np.array_equal(reference[name].values, other[name].values, equal_nan=True):
                print(f"MISMATCH: {name} differs between the sequential and another mode", file=sys.stderr)
                return 1
    for row in modes:
        row["simulating_share"] = round(row["simulate_seconds"] / (row["wall_seconds"] * row["parallel"]), 3)
        row["simulating_share_of_api_run"] = round(row["simulate_seconds"] / row["api_run_seconds_total"], 3)
    summary = {
        "scenario": setup["scenario"], "variants": samples, "paths": paths, "vary": VARY,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cluster_start_seconds": round(cluster_start, 2),
        "scheduler_overhead_per_task_seconds": round(overhead, 5),
        "variant_seconds_one_thread": variant_seconds,
        "batch_chosen": batch,
        "batch_rule": f"the fewest variants per task that keep the overhead per task under {OVERHEAD_SHARE:.0%} of "
                      "their time: ceil(overhead / (0.02 × variant seconds))",
        "identical_results": True,
        "modes": modes,
        "goal": "simulating_share >= 0.8",
    }
    out_json.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{samples} variants of {setup['scenario']} × {paths:,} paths ({summary['machine']})")
    print(f"{'mode':<58} {'var/s':>7} {'wall s':>7} {'write s':>7} {'simulating':>10} {'of api.run':>10}")
    for row in modes:
        print(f"{row['mode']:<58} {row['variants_per_second']:7.2f} {row['wall_seconds']:7.1f} "
              f"{row['write_seconds']:7.2f} {row['simulating_share']:10.1%} {row['simulating_share_of_api_run']:10.1%}")
    print(f"cluster start-up (2 processes, kernels loaded): {cluster_start:.1f} s; scheduler overhead per task "
          f"{overhead * 1000:.1f} ms; a variant on one thread {variant_seconds * 1000:.0f} ms; batch chosen: {batch}")
    print(f"all modes gave identical results; wrote {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
