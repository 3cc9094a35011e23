"""Run a :class:`SimulationPlan` in blocks of paths and merge the streaming statistics.

Memory is independent of the number of paths: the kernel keeps one set of integer
accumulators per worker slot and one batch of per-chunk float sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from targetsim.engine.plan import SimulationPlan
from targetsim.errors import TargetsimError
from targetsim.kernels.geometry import BATCH_PATHS, CHUNK, DEFAULT_BLOCK_SIZE, checked_threads
from targetsim.kernels.weights import WEIGHT_ONE


ProgressCallback = Callable[[int, int], None]


@dataclass
class Statistics:
    """Merged reductions over all paths; nothing here grows with the number of paths.

    Counts are sums of path weights: 1 per path, or ``WEIGHT_ONE`` × the likelihood of the
    observations relative to ``exp(log_weight_reference)`` when the plan is weighted (see
    :mod:`targetsim.kernels.weights`); ``weight_total`` is their sum.
    """

    paths: int
    weighted: bool
    weight_total: int
    weight_sq_total: float        # sum of squared weights (effective sample size)
    attained: np.ndarray          # (target,)
    attained_by_year: np.ndarray  # (target, step)
    joint: int
    n_met: np.ndarray             # (n_targets + 1,) weight of paths meeting exactly m targets
    group_joint: np.ndarray       # (group,) weight of paths meeting every target of the group (a plan)
    groups_met: np.ndarray        # (n_groups + 1,) weight of paths meeting every target of exactly m groups
    pair_fail: np.ndarray         # (target, target) weight of paths missing both (upper triangle)
    nonfinite: np.ndarray         # (indicator,) paths where the indicator was NaN or infinite
    sketch: np.ndarray            # (indicator, step, n_bins + OFF_GRID_BINS) log-histograms
    log_min: np.ndarray           # (indicator, step)
    log_max: np.ndarray           # (indicator, step)
    total: np.ndarray             # (indicator, step) weighted sum of X
    log_weight_reference: float = 0.0  # weights are likelihoods relative to exp(this)
    log_weight_max: float = -np.inf    # the largest log-likelihood of a path (-inf: every path impossible)

    @property
    def weight_sum(self) -> float:
        """Sum of the weights as probabilities' denominator (paths when unweighted)."""
        return self.weight_total / WEIGHT_ONE if self.weighted else float(self.weight_total)

    @property
    def effective_sample_size(self) -> float:
        """Kish's effective sample size ``(Σw)² / Σw²`` (``paths`` when unweighted)."""
        if not self.weighted:
            return float(self.paths)
        return self.weight_sum**2 / self.weight_sq_total if self.weight_sq_total > 0 else 0.0


@contextmanager
def on_first_compile(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback()`` once when numba starts compiling a function inside the block: the
    kernels are not in the on-disk cache yet (the first run after installing or upgrading), and
    the run will first spend about half a minute compiling them."""
    from numba.core import event

    class FirstCompile(event.Listener):
        fired = False

        def on_start(self, ev: event.Event) -> None:
            if not self.fired:
                self.fired = True
                callback()

        def on_end(self, ev: event.Event) -> None:
            pass

    with event.install_listener("numba:compile", FirstCompile()):
        yield


@contextmanager
def slot_runner(n_slots: int) -> Iterator[Callable[[Callable[[int], None]], None]]:
    """A function that runs ``work(s)`` for every slot ``s < n_slots``, one thread per slot, and
    returns when all are done (re-raising the first error). The kernel releases the GIL, so the
    slots run in parallel; the results do not depend on which thread runs which slot."""
    if n_slots == 1:
        yield lambda work: work(0)
        return
    with ThreadPoolExecutor(max_workers=n_slots, thread_name_prefix="targetsim-slot") as pool:
        def run_all(work: Callable[[int], None]) -> None:
            futures = [pool.submit(work, s) for s in range(n_slots)]
            try:
                for future in futures:
                    future.result()
            finally:
                # on an interrupt: start nothing more (running slots finish their share of the batch)
                for future in futures:
                    future.cancel()
        yield run_all


def simulate(plan: SimulationPlan, *, paths: int, seed: int, threads: int | None = None,
             block_size: int = DEFAULT_BLOCK_SIZE, progress: ProgressCallback | None = None) -> Statistics:
    """Simulate ``paths`` paths of ``plan`` with ``seed``; bit-identical for any threads and block size.

    With observations, path weights are likelihoods relative to the reference 0 (an upper bound of
    every log-likelihood). Should their rounding matter (see :mod:`targetsim.kernels.weights`), the
    run is repeated relative to its own largest log-likelihood, so that no weight underflows.
    """
    from targetsim.kernels.rng import key_from_seed
    from targetsim.kernels.weights import MAX_WEIGHTED_PATHS, ROUNDING_BOUND

    if block_size <= 0 or block_size % CHUNK:
        raise TargetsimError(f"block size must be a positive multiple of {CHUNK}, got {block_size}")
    if paths < 1:
        raise TargetsimError(f"paths must be at least 1, got {paths}")
    if plan.weighted and paths > MAX_WEIGHTED_PATHS:
        raise TargetsimError(f"with observations at most {MAX_WEIGHTED_PATHS} paths, got {paths}")
    key = key_from_seed(seed)
    n_slots = checked_threads(threads)
    with slot_runner(n_slots) as run_slots:
        stats = _simulate_batches(plan, key, paths, 0.0, n_slots, run_slots, block_size, progress)
        likeliest = stats.log_weight_max
        if plan.weighted and math.isfinite(likeliest) and likeliest < 0.0 and (
                paths > 2 * ROUNDING_BOUND * stats.weight_total):
            stats = _simulate_batches(plan, key, paths, likeliest, n_slots, run_slots, block_size, progress)
        return stats


def _simulate_batches(plan: SimulationPlan, key: np.ndarray, paths: int, log_w_ref: float, n_slots: int,
                      run_slots: Callable[[Callable[[int], None]], None], block_size: int,
                      progress: ProgressCallback | None) -> Statistics:
    """Paths ``0 .. paths - 1`` in batches of blocks, their statistics merged."""
    from targetsim.kernels.layout import Accumulators, Run, work_arrays
    from targetsim.kernels.paths import simulate_slot
    from targetsim.kernels.sketch import OFF_GRID_BINS

    n_ind, n_t, n_steps1 = plan.n_indicators, plan.n_targets, plan.n_steps + 1
    n_blocks_total = -(-paths // block_size)
    blocks_per_batch = max(n_slots, BATCH_PATHS // block_size)
    attained = np.zeros((n_slots, n_t), dtype=np.int64)
    by_year = np.zeros((n_slots, n_t, n_steps1), dtype=np.int64)
    joint = np.zeros(n_slots, dtype=np.int64)
    n_met = np.zeros((n_slots, n_t + 1), dtype=np.int64)
    n_groups = int(plan.arrays["t_group"].max()) + 1 if n_t else 1
    group_joint = np.zeros((n_slots, n_groups), dtype=np.int64)
    groups_met = np.zeros((n_slots, n_groups + 1), dtype=np.int64)
    pair_fail = np.zeros((n_slots, n_t, n_t), dtype=np.int64)
    weight_total = np.zeros(n_slots, dtype=np.int64)
    log_w_max = np.full(n_slots, -np.inf)
    nonfinite = np.zeros((n_slots, n_ind), dtype=np.int64)
    sketch = np.zeros((n_slots, n_ind, n_steps1, plan.n_bins + OFF_GRID_BINS), dtype=np.int64)
    vmin = np.full((n_slots, n_ind, n_steps1), np.inf)
    vmax = np.full((n_slots, n_ind, n_steps1), -np.inf)
    n_chunks_batch = blocks_per_batch * block_size // CHUNK
    chunk_sums = np.zeros((n_chunks_batch, n_ind, n_steps1))
    chunk_w2 = np.zeros(n_chunks_batch)
    total = np.zeros((n_ind, n_steps1))
    w2_total = 0.0
    acc = Accumulators(attained=attained, attained_by_year=by_year, joint=joint, n_met_hist=n_met,
                       group_joint=group_joint, groups_met_hist=groups_met,
                       pair_fail=pair_fail, weight_total=weight_total, log_w_max=log_w_max, nonfinite=nonfinite,
                       sketch=sketch, vmin=vmin, vmax=vmax, chunk_sums=chunk_sums, chunk_w2=chunk_w2)
    work_shape = (n_ind, n_steps1, n_t, len(plan.arrays["proj_ind"]), len(plan.arrays["jump_prob"]))

    for first in range(0, n_blocks_total, blocks_per_batch):
        n_blocks = min(blocks_per_batch, n_blocks_total - first)
        run = Run(key=key, first_block=first, n_blocks=n_blocks, block_size=block_size, n_paths=paths, chunk=CHUNK,
                  weighted=plan.weighted, log_w_ref=float(log_w_ref))
        run_slots(lambda s, run=run: simulate_slot(s, n_slots, run, plan.kernel, acc, work_arrays(*work_shape)))
        done = min((first + n_blocks) * block_size, paths)
        n_chunks = -(-(done - first * block_size) // CHUNK)
        # add chunk sums in path order: the same float operations whatever the batching
        for c in range(n_chunks):
            total += chunk_sums[c]
            w2_total += chunk_w2[c]
        if progress is not None:
            progress(done, paths)

    return Statistics(
        paths=paths, weighted=plan.weighted, weight_total=int(weight_total.sum()), weight_sq_total=w2_total,
        attained=attained.sum(axis=0), attained_by_year=by_year.sum(axis=0), joint=int(joint.sum()),
        n_met=n_met.sum(axis=0), group_joint=group_joint.sum(axis=0), groups_met=groups_met.sum(axis=0),
        pair_fail=pair_fail.sum(axis=0), nonfinite=nonfinite.sum(axis=0),
        sketch=sketch.sum(axis=0), log_min=vmin.min(axis=0), log_max=vmax.max(axis=0), total=total,
        log_weight_reference=float(log_w_ref), log_weight_max=float(log_w_max.max()),
    )
