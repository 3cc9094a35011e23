"""Run a :class:`SimulationPlan` in blocks of paths and merge the streaming statistics.

Memory is independent of the number of paths: the kernel keeps one set of integer
accumulators per worker slot and one batch of per-chunk float sums.

Any range of paths ``start .. stop - 1`` (``start`` a multiple of ``CHUNK``) can be simulated on its own
(:func:`simulate_range`: a pure function of the plan, the key and the range) into a :class:`Partial`:
its integer accumulators, extremes and largest log-likelihood, which merge exactly in any order, and its
per-chunk float sums, which :class:`RunningStatistics` adds in global chunk order. So a run split into
ranges, on threads here or as tasks on other machines (:mod:`targetsim.distributed`), in any order, and a
run extended range by range (:func:`simulate_to_precision`) are bit-identical to one run of all paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from targetsim.engine.plan import SimulationPlan
from targetsim.errors import TargetsimError
from targetsim.kernels.geometry import BATCH_PATHS, CHUNK, DEFAULT_BLOCK_SIZE, checked_threads
from targetsim.kernels.layout import Kept
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
    kept: Kept | None = None           # the kept paths 0 .. N - 1 (--keep-paths), or None
    precision: "PrecisionOutcome | None" = None  # how a run to a stated precision stopped

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

    def attainment_standard_error(self) -> np.ndarray:
        """Each target's binomial Monte Carlo standard error ``sqrt(p(1 − p)/n)``, ``n`` the effective
        sample size (the number of paths when unweighted): the dataset's
        ``attainment_probability_standard_error``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            p = self.attained / self.weight_total
            return np.sqrt(p * (1 - p) / self.effective_sample_size)

    def stopping_standard_error(self) -> np.ndarray:
        """Each target's standard error as the stopping rule of a run to a precision sees it: the larger of
        the reported binomial one and ``sqrt(p̃(1 − p̃)/n)`` with ``p̃ = (k + 1)/(n + 2)`` (``k = p̂·n``, ``n``
        the effective sample size). At ``p̂ ∈ {0, 1}`` the reported one is 0, which would "meet" any
        precision at the first stage; ``p̃`` counts a target never (or always) met in ``n`` paths as known to
        about ``1/n``. NaN where there is no weight (every path impossible)."""
        n = self.effective_sample_size
        with np.errstate(divide="ignore", invalid="ignore"):
            k = self.attained / self.weight_total * n
            smoothed = (k + 1.0) / (n + 2.0)
            return np.fmax(self.attainment_standard_error(), np.sqrt(smoothed * (1.0 - smoothed) / n)) \
                if n > 0 else np.full(self.attained.shape, np.nan)


@dataclass(frozen=True)
class PrecisionOutcome:
    """How a run to a stated precision (:func:`simulate_to_precision`) stopped."""

    target: float     # the standard error asked for
    reached: float    # the largest standard error of a target at the paths it stopped at
    paths: int        # the paths it stopped at
    max_paths: int    # the cap
    stages: int       # how many times it extended the run
    #: the largest standard error the stopping rule saw (:meth:`Statistics.stopping_standard_error`: not 0 at
    #: p̂ ∈ {0, 1}); NaN when there was no weight to compute one
    stopping: float = math.nan
    note: str = ""    # why it stopped when neither met nor capped (no weight)

    @property
    def met(self) -> bool:
        return self.stopping <= self.target


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



#: Integer accumulators (first axis: slot in the kernel's arrays; merged by sums in any order).
_COUNT_FIELDS = ("attained", "attained_by_year", "joint", "n_met_hist", "group_joint", "groups_met_hist",
                 "pair_fail", "weight_total", "nonfinite", "sketch")
#: Kept-path arrays written row by row (see :class:`targetsim.kernels.layout.Kept`).
KEPT_FIELDS = ("target_met", "weight", "final_value", "start_value", "growth_draw", "count_mean", "delivery",
               "project_step", "jump_count")


@dataclass
class Partial:
    """The statistics of paths ``start .. stop - 1``: integer accumulators (summed over slots), extremes
    of ``ln X``, the largest log-likelihood, the per-chunk float sums of the range's chunks in path order
    (``chunk_sums[c]`` covers paths ``start + c·CHUNK ..``) and its kept paths. What a task returns."""

    start: int
    stop: int
    counts: dict[str, np.ndarray]
    vmin: np.ndarray
    vmax: np.ndarray
    log_w_max: float
    chunk_sums: np.ndarray
    chunk_w2: np.ndarray
    kept: Kept


class RunningStatistics:
    """Statistics of paths ``0 .. done - 1``, extended range by range.

    Integer accumulators, extremes and kept rows are merged as soon as a range arrives, in any order.
    Float sums are added chunk by chunk in global path order, starting from zero, as one run of all
    paths adds them: a range that arrives before the ranges in front of it waits in ``pending``
    (:meth:`add`), so the totals do not depend on the order ranges finish in."""

    def __init__(self, plan: SimulationPlan, keep_paths: int = 0) -> None:
        from targetsim.kernels.layout import kept_arrays
        from targetsim.kernels.sketch import OFF_GRID_BINS

        n_ind, n_t, n_steps1 = plan.n_indicators, plan.n_targets, plan.n_steps + 1
        n_groups = group_count(plan)
        self.weighted = plan.weighted
        self.done = 0
        self.counts = {
            "attained": np.zeros(n_t, dtype=np.int64),
            "attained_by_year": np.zeros((n_t, n_steps1), dtype=np.int64),
            "joint": np.zeros((), dtype=np.int64),
            "n_met_hist": np.zeros(n_t + 1, dtype=np.int64),
            "group_joint": np.zeros(n_groups, dtype=np.int64),
            "groups_met_hist": np.zeros(n_groups + 1, dtype=np.int64),
            "pair_fail": np.zeros((n_t, n_t), dtype=np.int64),
            "weight_total": np.zeros((), dtype=np.int64),
            "nonfinite": np.zeros(n_ind, dtype=np.int64),
            "sketch": np.zeros((n_ind, n_steps1, plan.n_bins + OFF_GRID_BINS), dtype=np.int64),
        }
        self.vmin = np.full((n_ind, n_steps1), np.inf)
        self.vmax = np.full((n_ind, n_steps1), -np.inf)
        self.log_w_max = -np.inf
        self.total = np.zeros((n_ind, n_steps1))
        self.w2_total = 0.0
        self.kept = kept_arrays(0, keep_paths, n_ind, n_t, len(plan.arrays["proj_ind"]))
        self.pending: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}  # start: (stop, chunk sums, w2)
        self.log_weight_reference = 0.0

    def add_counts(self, counts: dict[str, np.ndarray], vmin: np.ndarray, vmax: np.ndarray, log_w_max: float) -> None:
        """Integer accumulators (already summed over slots), extremes and the largest log-likelihood."""
        for name, value in counts.items():
            self.counts[name] += value
        np.minimum(self.vmin, vmin, out=self.vmin)
        np.maximum(self.vmax, vmax, out=self.vmax)
        self.log_w_max = max(self.log_w_max, float(log_w_max))

    def add_chunks(self, start: int, chunk_sums: np.ndarray, chunk_w2: np.ndarray, stop: int) -> None:
        """The float sums of paths ``start .. stop - 1`` (``start == done``), chunk by chunk in path order."""
        if start != self.done:
            raise RuntimeError(f"chunk sums of paths from {start} arrived while {self.done} are merged")
        for c in range(chunk_sums.shape[0]):
            self.total += chunk_sums[c]
            self.w2_total += chunk_w2[c]
        self.done = stop

    def add_kept(self, kept: Kept) -> None:
        first, stop = kept.first, min(kept.stop, self.kept.stop)
        if stop <= first:
            return
        for name in KEPT_FIELDS:
            getattr(self.kept, name)[first:stop] = getattr(kept, name)[:stop - first]

    def add(self, partial: Partial) -> None:
        """A range's partial statistics, in any order (see the class)."""
        self.add_counts(partial.counts, partial.vmin, partial.vmax, partial.log_w_max)
        self.add_kept(partial.kept)
        self.pending[partial.start] = (partial.stop, partial.chunk_sums, partial.chunk_w2)
        while self.done in self.pending:
            stop, sums, w2 = self.pending.pop(self.done)
            self.add_chunks(self.done, sums, w2, stop)

    def statistics(self) -> Statistics:
        """The merged statistics of paths ``0 .. done - 1`` (every range must have arrived)."""
        if self.pending:
            raise RuntimeError(f"ranges from {sorted(self.pending)} wait for paths {self.done} onwards")
        c = self.counts
        kept = self.kept
        if kept.stop > self.done:  # fewer paths than asked to keep (a run to a precision that stopped early)
            kept = kept._replace(stop=self.done, **{name: getattr(kept, name)[:self.done] for name in KEPT_FIELDS})
        return Statistics(
            paths=self.done, weighted=self.weighted, weight_total=int(c["weight_total"]), weight_sq_total=self.w2_total,
            attained=c["attained"].copy(), attained_by_year=c["attained_by_year"].copy(), joint=int(c["joint"]),
            n_met=c["n_met_hist"].copy(), group_joint=c["group_joint"].copy(), groups_met=c["groups_met_hist"].copy(),
            pair_fail=c["pair_fail"].copy(), nonfinite=c["nonfinite"].copy(), sketch=c["sketch"].copy(),
            log_min=self.vmin.copy(), log_max=self.vmax.copy(), total=self.total.copy(),
            log_weight_reference=float(self.log_weight_reference), log_weight_max=float(self.log_w_max),
            kept=kept if kept.stop > 0 else None)


def group_count(plan: SimulationPlan) -> int:
    """The number of target groups (plans) of the plan."""
    return int(plan.arrays["t_group"].max()) + 1 if plan.n_targets else 1


class PathExecutor(Protocol):
    """Runs ranges of paths elsewhere (:class:`targetsim.distributed.DaskExecutor`): splits paths
    ``start .. stop - 1`` into tasks of :func:`simulate_range`, and hands each task's :class:`Partial` to
    ``sink`` as it completes, in any order."""

    def run(self, plan: SimulationPlan, key: np.ndarray, start: int, stop: int, log_w_ref: float,
            keep_paths: int, sink: Callable[[Partial], None]) -> None: ...


def simulate_range(plan: SimulationPlan, key: np.ndarray, start: int, stop: int, *, log_w_ref: float = 0.0,
                   keep_paths: int = 0, threads: int | None = 1, block_size: int = DEFAULT_BLOCK_SIZE) -> Partial:
    """The statistics of paths ``start .. stop - 1`` alone (``start`` a multiple of ``CHUNK``): a pure
    function of its arguments, so a task that runs it can be repeated (a lost worker) with the same
    result. Its chunk sums are kept in full: ``(stop − start)/CHUNK × indicators × years`` floats."""
    n_slots = checked_threads(threads)
    collected: list[tuple[np.ndarray, np.ndarray]] = []
    with slot_runner(n_slots) as run_slots:
        partial = _simulate_range(plan, key, start, stop, log_w_ref, n_slots, run_slots, block_size, keep_paths,
                                  on_chunks=lambda first, sums, w2, last: collected.append((sums.copy(), w2.copy())))
    if collected:
        partial.chunk_sums = np.concatenate([sums for sums, _ in collected])
        partial.chunk_w2 = np.concatenate([w2 for _, w2 in collected])
    return partial


def _simulate_range(plan: SimulationPlan, key: np.ndarray, start: int, stop: int, log_w_ref: float, n_slots: int,
                    run_slots: Callable[[Callable[[int], None]], None], block_size: int, keep_paths: int,
                    on_chunks: Callable[[int, np.ndarray, np.ndarray, int], None],
                    progress: Callable[[int], None] | None = None) -> Partial:
    """Paths ``start .. stop - 1`` in batches of blocks, on ``n_slots`` slots. Each batch's chunk sums go
    to ``on_chunks(first path, sums, w2, stop)`` in path order (the arrays are reused by the next batch);
    ``progress(paths done)`` after each batch. Returns the integer accumulators, extremes and kept paths
    (its ``chunk_sums`` empty)."""
    from targetsim.kernels.layout import Accumulators, Run, kept_arrays, work_arrays
    from targetsim.kernels.paths import simulate_slot
    from targetsim.kernels.sketch import OFF_GRID_BINS

    if start % CHUNK:
        raise ValueError(f"a range of paths starts at a multiple of {CHUNK}, got {start}")
    n_ind, n_t, n_steps1 = plan.n_indicators, plan.n_targets, plan.n_steps + 1
    paths = stop - start
    n_blocks_total = -(-paths // block_size)
    blocks_per_batch = max(n_slots, BATCH_PATHS // block_size)
    n_groups = group_count(plan)
    attained = np.zeros((n_slots, n_t), dtype=np.int64)
    by_year = np.zeros((n_slots, n_t, n_steps1), dtype=np.int64)
    joint = np.zeros(n_slots, dtype=np.int64)
    n_met = np.zeros((n_slots, n_t + 1), dtype=np.int64)
    group_joint = np.zeros((n_slots, n_groups), dtype=np.int64)
    groups_met = np.zeros((n_slots, n_groups + 1), dtype=np.int64)
    pair_fail = np.zeros((n_slots, n_t, n_t), dtype=np.int64)
    weight_total = np.zeros(n_slots, dtype=np.int64)
    log_w_max = np.full(n_slots, -np.inf)
    nonfinite = np.zeros((n_slots, n_ind), dtype=np.int64)
    sketch = np.zeros((n_slots, n_ind, n_steps1, plan.n_bins + OFF_GRID_BINS), dtype=np.int64)
    vmin = np.full((n_slots, n_ind, n_steps1), np.inf)
    vmax = np.full((n_slots, n_ind, n_steps1), -np.inf)
    n_chunks_batch = min(blocks_per_batch * block_size, -(-paths // CHUNK) * CHUNK) // CHUNK
    chunk_sums = np.zeros((n_chunks_batch, n_ind, n_steps1))
    chunk_w2 = np.zeros(n_chunks_batch)
    acc = Accumulators(attained=attained, attained_by_year=by_year, joint=joint, n_met_hist=n_met,
                       group_joint=group_joint, groups_met_hist=groups_met,
                       pair_fail=pair_fail, weight_total=weight_total, log_w_max=log_w_max, nonfinite=nonfinite,
                       sketch=sketch, vmin=vmin, vmax=vmax, chunk_sums=chunk_sums, chunk_w2=chunk_w2)
    work_shape = (n_ind, n_steps1, n_t, len(plan.arrays["proj_ind"]), len(plan.arrays["jump_prob"]))
    kept = kept_arrays(start, min(stop, keep_paths), n_ind, n_t, len(plan.arrays["proj_ind"]))

    for first in range(0, n_blocks_total, blocks_per_batch):
        n_blocks = min(blocks_per_batch, n_blocks_total - first)
        first_path = start + first * block_size
        run = Run(key=key, first_path=first_path, n_blocks=n_blocks, block_size=block_size, n_paths=stop,
                  chunk=CHUNK, weighted=plan.weighted, log_w_ref=float(log_w_ref))
        run_slots(lambda s, run=run: simulate_slot(s, n_slots, run, plan.kernel, acc, work_arrays(*work_shape), kept))
        done = min(first_path + n_blocks * block_size, stop)
        n_chunks = -(-(done - first_path) // CHUNK)
        on_chunks(first_path, chunk_sums[:n_chunks], chunk_w2[:n_chunks], done)
        if progress is not None:
            progress(done - start)

    counts = {"attained": attained.sum(axis=0), "attained_by_year": by_year.sum(axis=0), "joint": joint.sum(),
              "n_met_hist": n_met.sum(axis=0), "group_joint": group_joint.sum(axis=0),
              "groups_met_hist": groups_met.sum(axis=0), "pair_fail": pair_fail.sum(axis=0),
              "weight_total": weight_total.sum(), "nonfinite": nonfinite.sum(axis=0), "sketch": sketch.sum(axis=0)}
    return Partial(start=start, stop=stop, counts=counts, vmin=vmin.min(axis=0), vmax=vmax.max(axis=0),
                   log_w_max=float(log_w_max.max()), chunk_sums=chunk_sums[:0].copy(), chunk_w2=chunk_w2[:0].copy(),
                   kept=kept)


@contextmanager
def _extender(plan: SimulationPlan, key: np.ndarray, *, threads: int | None, block_size: int, keep_paths: int,
              executor: PathExecutor | None, progress: ProgressCallback | None
              ) -> Iterator[Callable[[RunningStatistics, int, int, float], None]]:
    """``extend(running, stop, goal, log_w_ref)``: simulate paths ``running.done .. stop - 1`` into
    ``running``, here on threads or through ``executor``; progress says ``(paths done, goal)``."""
    if executor is not None:
        def extend_remote(running: RunningStatistics, stop: int, goal: int, log_w_ref: float) -> None:
            running.log_weight_reference = float(log_w_ref)
            start = running.done
            completed = [start]

            def sink(partial: Partial) -> None:
                running.add(partial)
                completed[0] += partial.stop - partial.start
                if progress is not None:
                    progress(completed[0], goal)

            executor.run(plan, key, start, stop, log_w_ref, keep_paths, sink)
            if running.done != stop:
                raise RuntimeError(f"the executor returned paths up to {running.done} of {stop}")
        yield extend_remote
        return
    n_slots = checked_threads(threads)
    with slot_runner(n_slots) as run_slots:
        def extend_here(running: RunningStatistics, stop: int, goal: int, log_w_ref: float) -> None:
            running.log_weight_reference = float(log_w_ref)
            start = running.done
            report = None if progress is None else (lambda done: progress(start + done, goal))
            partial = _simulate_range(plan, key, start, stop, log_w_ref, n_slots, run_slots, block_size, keep_paths,
                                      on_chunks=lambda first, sums, w2, last: running.add_chunks(first, sums, w2, last),
                                      progress=report)
            running.add_counts(partial.counts, partial.vmin, partial.vmax, partial.log_w_max)
            running.add_kept(partial.kept)
        yield extend_here


def _check_run(plan: SimulationPlan, paths: int, block_size: int) -> None:
    from targetsim.kernels.weights import MAX_WEIGHTED_PATHS

    if block_size <= 0 or block_size % CHUNK:
        raise TargetsimError(f"block size must be a positive multiple of {CHUNK}, got {block_size}")
    if paths < 1:
        raise TargetsimError(f"paths must be at least 1, got {paths}")
    if plan.weighted and paths > MAX_WEIGHTED_PATHS:
        raise TargetsimError(f"with observations at most {MAX_WEIGHTED_PATHS} paths, got {paths}")


def _statistics_to(stop: int, running: "RunningStatistics", extend, plan: SimulationPlan,
                   keep_paths: int) -> Statistics:
    """Extend ``running`` to ``stop`` paths and return the statistics; when the weights need it, they are
    made again over the same paths relative to the likeliest path (the second pass), ``running`` kept as it
    is for further extension."""
    extend(running, stop, stop, 0.0)
    stats = running.statistics()
    if _needs_second_pass(plan, stats):
        again = RunningStatistics(plan, keep_paths)
        extend(again, stop, stop, stats.log_weight_max)
        stats = again.statistics()
    return stats


def _needs_second_pass(plan: SimulationPlan, stats: Statistics) -> bool:
    """Whether a weighted run's rounding of the weights relative to 0 could matter (see
    :mod:`targetsim.kernels.weights`): it is then repeated relative to its likeliest path."""
    from targetsim.kernels.weights import ROUNDING_BOUND

    likeliest = stats.log_weight_max
    return bool(plan.weighted and math.isfinite(likeliest) and likeliest < 0.0
                and stats.paths > 2 * ROUNDING_BOUND * stats.weight_total)


def simulate(plan: SimulationPlan, *, paths: int, seed: int, threads: int | None = None,
             block_size: int = DEFAULT_BLOCK_SIZE, progress: ProgressCallback | None = None,
             keep_paths: int = 0, executor: PathExecutor | None = None) -> Statistics:
    """Simulate ``paths`` paths of ``plan`` with ``seed``; bit-identical for any threads, block size and
    executor (its number of workers and the order its tasks finish in).

    With observations, path weights are likelihoods relative to the reference 0 (an upper bound of
    every log-likelihood). Should their rounding matter (see :mod:`targetsim.kernels.weights`), the
    run is repeated relative to its own largest log-likelihood, so that no weight underflows.
    ``keep_paths``: keep the outcomes and drawn inputs of paths ``0 .. keep_paths - 1``
    (``Statistics.kept``); at most ``paths``.
    """
    from targetsim.kernels.rng import key_from_seed

    _check_run(plan, paths, block_size)
    if not 0 <= keep_paths <= paths:
        raise TargetsimError(f"--keep-paths must lie between 0 and the number of paths ({paths:,}), got {keep_paths:,}")
    key = key_from_seed(seed)
    with _extender(plan, key, threads=threads, block_size=block_size, keep_paths=keep_paths, executor=executor,
                   progress=progress) as extend:
        return _statistics_to(paths, RunningStatistics(plan, keep_paths), extend, plan, keep_paths)


#: A run to a stated precision starts with this many paths and doubles them until every target's
#: standard error is small enough: a fixed schedule (2^14, 2^15, ... then the cap), so the same seed and
#: precision stop at the same paths.
PRECISION_FIRST_PATHS = 1 << 14
#: The default cap of a run to a stated precision.
DEFAULT_MAX_PATHS = 10**8


def precision_schedule(max_paths: int, first: int = PRECISION_FIRST_PATHS) -> list[int]:
    """The path counts a run to a precision checks, in order: ``first``, doubled, ..., ``max_paths``."""
    stops = []
    stop = first
    while stop < max_paths:
        stops.append(stop)
        stop *= 2
    stops.append(max_paths)
    return stops


def simulate_to_precision(plan: SimulationPlan, *, precision: float, seed: int,
                          max_paths: int = DEFAULT_MAX_PATHS, threads: int | None = None,
                          block_size: int = DEFAULT_BLOCK_SIZE, progress: ProgressCallback | None = None,
                          keep_paths: int = 0, executor: PathExecutor | None = None,
                          first_paths: int = PRECISION_FIRST_PATHS) -> Statistics:
    """Add paths, on the schedule :func:`precision_schedule`, until every target's binomial standard
    error (with observations: from the effective sample size) is at most ``precision``, or ``max_paths``
    is reached (``Statistics.precision`` says which). Earlier paths are never simulated again: the
    statistics are extended (each path's draws depend only on the seed and its index), so the result is
    bit-identical to :func:`simulate` with the paths it stopped at.

    With observations whose weights need the second pass (see :func:`simulate`), each check repeats
    that pass over the paths so far (with the doubling schedule, at most twice the final pass's work);
    the first pass is still extended, never repeated. ``keep_paths``: as for :func:`simulate`, cut to the
    paths it stopped at when fewer.
    """
    from targetsim.kernels.rng import key_from_seed

    if not (precision > 0 and math.isfinite(precision)):
        raise TargetsimError(f"--precision must be a positive standard error (e.g. 0.001), got {precision}")
    if first_paths % CHUNK or first_paths < CHUNK:
        raise TargetsimError(f"the first stage of a run to a precision must be a multiple of {CHUNK} paths, "
                             f"got {first_paths}")
    _check_run(plan, max_paths, block_size)
    if keep_paths < 0:
        raise TargetsimError(f"--keep-paths must be at least 0, got {keep_paths}")
    key = key_from_seed(seed)
    schedule = precision_schedule(max_paths, first_paths)
    with _extender(plan, key, threads=threads, block_size=block_size, keep_paths=keep_paths, executor=executor,
                   progress=progress) as extend:
        running = RunningStatistics(plan, keep_paths)
        for stage, stop in enumerate(schedule, start=1):
            stats = _statistics_to(stop, running, extend, plan, keep_paths)
            errors = stats.attainment_standard_error()
            reached = float(np.max(errors)) if errors.size else 0.0
            stopping_errors = stats.stopping_standard_error()
            stopping = float(np.max(stopping_errors)) if stopping_errors.size else 0.0
            # no weight (every path impossible under the observations): more paths cannot help; stop and say so
            # (the run is then refused with the observations' ranges, see api.check_statistics)
            note = (f"no weight at {stop:,} paths: every path is impossible under the observations, so no "
                    "standard error can be computed; stopped at the first stage" if math.isnan(stopping) else "")
            if stopping <= precision or note or stop == schedule[-1]:
                stats.precision = PrecisionOutcome(target=float(precision), reached=reached, paths=stop,
                                                   max_paths=int(max_paths), stages=stage, stopping=stopping,
                                                   note=note)
                return stats
    raise AssertionError("unreachable: the schedule ends at max_paths")
