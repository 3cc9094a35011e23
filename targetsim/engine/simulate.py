"""Run a :class:`SimulationPlan` in blocks of paths and merge the streaming statistics.

Memory is independent of the number of paths: the kernel keeps one set of integer
accumulators per worker slot and one batch of per-chunk float sums.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from targetsim.engine.plan import SimulationPlan
from targetsim.errors import TargetsimError

# Float sums are formed over CHUNK consecutive paths; block sizes must be multiples of it.
CHUNK = 256
DEFAULT_BLOCK_SIZE = 8192
# Paths per kernel call: the granularity of progress reports.
BATCH_PATHS = 1 << 18

ProgressCallback = Callable[[int, int], None]


@dataclass
class Statistics:
    """Merged reductions over all paths; nothing here grows with the number of paths."""

    paths: int
    attained: np.ndarray          # (target,) paths meeting each target
    attained_by_year: np.ndarray  # (target, step) paths for which the rule holds in that step
    joint: int                    # paths meeting every target
    n_met: np.ndarray             # (n_targets + 1,) paths meeting exactly m targets
    sketch: np.ndarray            # (indicator, step, n_bins + 2) log-histograms
    log_min: np.ndarray           # (indicator, step)
    log_max: np.ndarray           # (indicator, step)
    total: np.ndarray             # (indicator, step) sum of X over paths


@contextmanager
def numba_threads(threads: int | None):
    """Run with ``threads`` numba threads, restoring the previous setting afterwards."""
    import numba

    if threads is None:
        yield numba.get_num_threads()
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= threads <= limit:
        raise TargetsimError(f"--threads must be between 1 and {limit} on this machine "
                             f"(set NUMBA_NUM_THREADS to allow more), got {threads}")
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield threads
    finally:
        numba.set_num_threads(before)


def simulate(plan: SimulationPlan, *, paths: int, seed: int, threads: int | None = None,
             block_size: int = DEFAULT_BLOCK_SIZE, progress: ProgressCallback | None = None) -> Statistics:
    """Simulate ``paths`` paths of ``plan`` with ``seed``; bit-identical for any threads and block size."""
    from targetsim.kernels.lognormal import simulate_batch
    from targetsim.kernels.rng import key_from_seed

    if block_size <= 0 or block_size % CHUNK:
        raise TargetsimError(f"block size must be a positive multiple of {CHUNK}, got {block_size}")
    if paths < 1:
        raise TargetsimError(f"paths must be at least 1, got {paths}")
    key = key_from_seed(seed)
    n_ind, n_t, n_steps1 = plan.n_indicators, plan.n_targets, plan.n_steps + 1
    n_blocks_total = -(-paths // block_size)

    with numba_threads(threads) as n_slots:
        blocks_per_batch = max(n_slots, BATCH_PATHS // block_size)
        attained = np.zeros((n_slots, n_t), dtype=np.int64)
        by_year = np.zeros((n_slots, n_t, n_steps1), dtype=np.int64)
        joint = np.zeros(n_slots, dtype=np.int64)
        n_met = np.zeros((n_slots, n_t + 1), dtype=np.int64)
        sketch = np.zeros((n_slots, n_ind, n_steps1, plan.n_bins + 2), dtype=np.int64)
        vmin = np.full((n_slots, n_ind, n_steps1), np.inf)
        vmax = np.full((n_slots, n_ind, n_steps1), -np.inf)
        chunk_sums = np.zeros((blocks_per_batch * block_size // CHUNK, n_ind, n_steps1))
        total = np.zeros((n_ind, n_steps1))
        inv_width = 1.0 / plan.sketch_width

        for first in range(0, n_blocks_total, blocks_per_batch):
            n_blocks = min(blocks_per_batch, n_blocks_total - first)
            simulate_batch(
                key, first, n_blocks, block_size, paths, CHUNK,
                plan.log_start, plan.growth_mean, plan.growth_sd, plan.volatility, plan.chol,
                plan.correlated,
                plan.target_indicator, plan.target_kind, plan.target_comparator, plan.target_step,
                plan.target_log_threshold,
                plan.sketch_lo, inv_width, plan.n_bins,
                attained, by_year, joint, n_met, sketch, vmin, vmax, chunk_sums,
            )
            done = min((first + n_blocks) * block_size, paths)
            n_chunks = -(-(done - first * block_size) // CHUNK)
            # add chunk sums in path order: the same float operations whatever the batching
            for c in range(n_chunks):
                total += chunk_sums[c]
            if progress is not None:
                progress(done, paths)

    return Statistics(
        paths=paths, attained=attained.sum(axis=0), attained_by_year=by_year.sum(axis=0),
        joint=int(joint.sum()), n_met=n_met.sum(axis=0), sketch=sketch.sum(axis=0),
        log_min=vmin.min(axis=0), log_max=vmax.max(axis=0), total=total,
    )
