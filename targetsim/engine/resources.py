"""Resource guard: a run's peak memory and duration, estimated before it starts.

Memory does not grow with the number of paths, but it does grow with threads × indicators ×
years: every worker slot keeps its own quantile sketch of ``SKETCH_BINS + OFF_GRID_BINS`` int64 counters per
(indicator, year) cell. :func:`estimate` mirrors the allocations of
:func:`targetsim.engine.simulate.simulate` (the working arrays from the kernel's own spec,
:func:`targetsim.kernels.layout.work_bytes`) and the dataset built from them; :func:`check_memory`
refuses (a :class:`~targetsim.errors.TargetsimError` with the numbers) a run that cannot fit in
the memory available now. The duration is a rough rule (about ``NS_PER_CELL`` ns, or
``NS_PER_COUNT_CELL`` for a count indicator, per path ×
indicator × year on one thread); the CLI says it up front when a run will take long.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from targetsim.errors import TargetsimError
from targetsim.kernels.geometry import BATCH_PATHS, CHUNK, DEFAULT_BLOCK_SIZE, resolve_threads
from targetsim.units import format_bytes

__all__ = ["RunEstimate", "estimate", "estimate_for_plan", "estimate_for_scenario", "available_memory",
           "check_memory", "LONG_RUN_S", "NS_PER_CELL", "NS_PER_COUNT_CELL"]

#: Rough cost of one path × indicator × simulated year on one thread, in nanoseconds: about 8-11
#: for the benchmark workloads and the base scenario, and about 15-25 for a count indicator (an
#: exact negative binomial or Poisson draw by table inversion, its log and statistics) in the
#: shipped seed plans (their run times are then within about 20 % of the estimate).
NS_PER_CELL = 12.0
NS_PER_COUNT_CELL = 20.0
#: A run expected to take longer than this (seconds) is announced by the CLI.
LONG_RUN_S = 10.0
#: Interpreter, numba and scratch space not counted cell by cell.
OVERHEAD_BYTES = 64 * 2**20
F8 = 8  # bytes of an int64 or float64
#: Copies of the kept paths' kernel rows alive at once (see "kept paths" in :func:`estimate`).
KEPT_COPIES = 3
#: A distributed run's client holds the chunk sums of tasks that finished ahead of an unfinished one (they are
#: added in path order): the submission window keeps them within this many bytes
#: (:func:`targetsim.distributed.submission_window`), which the memory check counts.
DASK_WINDOW_BYTES = 256 * 2**20


@dataclass(frozen=True)
class RunEstimate:
    """Peak memory (bytes, with its largest parts) and expected duration (seconds) of a run."""

    paths: int
    threads: int
    n_indicators: int
    n_years: int
    n_targets: int
    n_bins: int
    memory_bytes: int
    parts: tuple[tuple[str, int], ...]
    seconds: float

    @property
    def sketch_bytes(self) -> int:
        return dict(self.parts)["quantile sketches"]

    def memory_detail(self) -> str:
        """The quantile sketches' product, which dominates: indicators × years × bins × threads × 8 bytes."""
        return (f"quantile sketches {self.n_indicators:,} indicators × {self.n_years:,} years × "
                f"{self.n_bins:,} bins × {self.threads:,} threads × {F8} bytes = {format_bytes(self.sketch_bytes)}")

    def is_long(self) -> bool:
        """Whether the run is expected to take longer than :data:`LONG_RUN_S` (the CLI then says so)."""
        return self.seconds > LONG_RUN_S

    def long_run_notice(self) -> str:
        """One line saying how long the run is expected to take."""
        minutes = f" ({self.seconds / 60:.0f} min)" if self.seconds >= 120 else ""
        return (f"this run is expected to take about {self.seconds:,.0f} s{minutes}: {self.paths:,} paths × "
                f"{self.n_indicators:,} indicators × {self.n_years:,} years on {self.threads:,} "
                f"thread{'s' if self.threads != 1 else ''}")


def estimate(*, n_indicators: int, n_steps: int, n_targets: int, n_bins: int, paths: int,
             threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE, n_quantiles: int = 7,
             plan_bytes: int = 0, n_counts: int = 0, n_projects: int = 0, n_jumps: int = 0,
             keep_paths: int = 0, distributed: bool = False) -> RunEstimate:
    """Estimate from a plan's dimensions (``n_steps`` years after the base year; ``n_bins`` sketch
    bins; ``n_counts`` of the indicators are counts; ``keep_paths`` paths kept, ``--keep-paths``;
    ``distributed``: run as Dask tasks, whose chunk sums may wait at the client, up to
    :data:`DASK_WINDOW_BYTES`)."""
    from targetsim.kernels.layout import work_bytes
    from targetsim.kernels.sketch import OFF_GRID_BINS

    slots = resolve_threads(threads)
    n_y = n_steps + 1
    cells = n_indicators * n_y
    sketch_cells = cells * (n_bins + OFF_GRID_BINS)
    block = max(CHUNK, block_size)
    blocks_per_batch = max(slots, BATCH_PATHS // block)
    n_chunks = blocks_per_batch * block // CHUNK
    parts = {
        # per worker slot, then merged into one more copy (and the merge's temporary)
        "quantile sketches": slots * sketch_cells * F8,
        "merged sketches": 2 * sketch_cells * F8,
        "per-slot counters": (slots + 2) * F8 * (n_targets * (n_y + n_targets + 2) + 3 * cells + n_indicators),
        # the paths a slot advances in lockstep: draws, counts, levels and logs of every cell (the
        # kernel's own spec of its working arrays)
        "per-slot path groups": slots * work_bytes(n_indicators, n_y, n_targets, n_projects, n_jumps),
        "chunk sums": n_chunks * (cells + 1) * F8,
        "results": 4 * F8 * (cells * (n_quantiles + 2) + n_targets * (n_y + 2 * n_targets + 8)),
        "plan": int(plan_bytes),
        # the kept paths' rows (targets met, weight, 6 values per indicator, projects): alive at once are the
        # running statistics', a range's own (up to all of them), with a precision's second pass the repeated
        # pass's, and the dataset's copies (astype, the completion flags and years, the merge) - measured about
        # 3 rows a kept path (tests/test_precision_and_kept_paths.py), counted as 3 rows and the dataset's row
        "kept paths": keep_paths * (KEPT_COPIES * (n_targets + F8 * (1 + 6 * n_indicators + n_projects))
                                    + n_targets + n_projects + F8 * (2 + 6 * n_indicators + n_projects)),
        "overhead": OVERHEAD_BYTES,
    }
    if distributed:  # the whole run's chunk sums, at most the window's budget
        parts["task results waiting"] = min(DASK_WINDOW_BYTES, -(-paths // CHUNK) * (cells + 1) * F8)
    ns_per_path_year = (n_indicators - n_counts) * NS_PER_CELL + n_counts * NS_PER_COUNT_CELL
    seconds = paths * max(n_steps, 1) * ns_per_path_year * 1e-9 / slots
    ordered = tuple(sorted(parts.items(), key=lambda kv: -kv[1]))
    return RunEstimate(paths=paths, threads=slots, n_indicators=n_indicators, n_years=n_y, n_targets=n_targets,
                       n_bins=n_bins + OFF_GRID_BINS, memory_bytes=sum(parts.values()), parts=ordered, seconds=seconds)


def estimate_for_plan(plan, *, paths: int, threads: int | None = None,
                      block_size: int = DEFAULT_BLOCK_SIZE, n_quantiles: int = 7) -> RunEstimate:
    import numpy as np

    from targetsim.kernels.codes import COUNT

    plan_bytes = sum(a.nbytes for a in plan.arrays.values() if isinstance(a, np.ndarray))
    return estimate(n_indicators=plan.n_indicators, n_steps=plan.n_steps, n_targets=plan.n_targets,
                    n_bins=plan.n_bins, paths=paths, threads=threads, block_size=block_size,
                    n_quantiles=n_quantiles, plan_bytes=plan_bytes,
                    n_counts=int(np.count_nonzero(plan.arrays["kind"] == COUNT)),
                    n_projects=len(plan.arrays["proj_ind"]), n_jumps=len(plan.arrays["jump_prob"]))


def estimate_for_scenario(scenario, *, paths: int | None = None, threads: int | None = None,
                          block_size: int = DEFAULT_BLOCK_SIZE, keep_paths: int = 0,
                          distributed: bool = False) -> RunEstimate:
    """The same from a validated scenario, without building its plan."""
    from targetsim.engine.plan import SKETCH_BINS
    from targetsim.model.scenario import CountProcess

    n = len(scenario.indicators)
    n_steps = scenario.horizon - scenario.base_year
    # observation conditioning: three n × n matrices per observed year, plus the correlation factor
    obs_years = len({y for _, values in scenario.observations for y, _ in values}) or 1
    plan_bytes = F8 * (3 * obs_years * n * n + n * n + 2 * n * (n_steps + 1))
    counts = [ind.process for ind in scenario.indicators if isinstance(ind.process, CountProcess)]
    n_counts = len(counts)
    if counts:  # the counts' inversion tables (small, but up to ~0.5 MB for a widely spread law); a count
        # whose mean is uncertain has none (each path draws its own mean), and an array of its s.d.
        from targetsim.kernels.distributions import count_tables
        from targetsim.model.processes import count_mean_sd

        tables = count_tables([0.0 if count_mean_sd(c) > 0 else c.mean for c in counts],
                              [c.dispersion or 0.0 for c in counts])
        plan_bytes += sum(a.nbytes for a in tables) + F8 * n
    return estimate(n_indicators=n, n_steps=n_steps, n_targets=len(scenario.targets), n_bins=SKETCH_BINS,
                    paths=scenario.paths if paths is None else paths, threads=threads, block_size=block_size,
                    n_quantiles=len(scenario.quantiles), plan_bytes=plan_bytes, n_counts=n_counts,
                    n_projects=sum(len(ind.process.projects) for ind in scenario.indicators
                                   if ind.process.kind == "buildout"),
                    n_jumps=len(scenario.jumps), keep_paths=keep_paths, distributed=distributed)


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available(root: str = "/sys/fs/cgroup") -> int | None:
    """What a cgroup-v2 memory limit (a container's) leaves, if one is set."""
    try:
        limit = Path(root, "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path(root, "memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now, or None when it cannot be told.

    Linux: ``MemAvailable`` from ``/proc/meminfo`` (and a container's cgroup limit, if lower);
    elsewhere the free physical pages, where the platform reports them.
    """
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if found:
        return min(found)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(est: RunEstimate, available: int | None = None) -> None:
    """Refuse a run whose estimated peak memory exceeds the memory available now."""
    if available is None:
        available = available_memory()
    if available is None or est.memory_bytes <= available:
        return
    advice = []
    per_slot = est.sketch_bytes / est.threads
    fixed = est.memory_bytes - est.sketch_bytes
    fits = int((available - fixed) // per_slot) if per_slot > 0 else 0
    if 1 <= fits < est.threads:
        advice.append(f"--threads {fits} would fit")
    advice.append("fewer indicators or a shorter horizon")
    raise TargetsimError(
        f"not enough memory: this run needs about {format_bytes(est.memory_bytes)} "
        f"({est.memory_detail()}) but only {format_bytes(available)} is available; "
        f"{'; '.join(advice)}")
