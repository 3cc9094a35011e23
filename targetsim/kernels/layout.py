"""The kernel's arguments as named bundles: the plan's sections, the accumulators, the working arrays.

The kernel (:mod:`targetsim.kernels.paths`) takes a few of these named tuples instead of a hundred
positional arrays, so two arrays can no longer be swapped by position, and a bundle is built in one
place by name. numba passes named tuples of arrays to ``@njit`` functions and caches them; each
kernel function unpacks the fields it uses at its top.

The working arrays' spec (:func:`work_spec`) is the one description of what a slot allocates: it
allocates them (:func:`work_arrays`) and reports their size (:func:`work_bytes`), which the memory
estimate uses. No numba here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from targetsim.kernels.geometry import LANES


class Run(NamedTuple):
    """Which paths a kernel call simulates, and how."""

    key: np.ndarray          # the seed's key (see kernels.rng.key_from_seed)
    first_path: int          # the call's first path (a multiple of chunk): its blocks start here
    n_blocks: int
    block_size: int
    n_paths: int
    chunk: int
    weighted: bool
    log_w_ref: float         # path weights are likelihoods relative to exp(log_w_ref)


class Processes(NamedTuple):
    kind: np.ndarray         # process code per indicator
    x0: np.ndarray           # start values
    p_mean: np.ndarray       # growth (or drift) mean
    p_sd: np.ndarray         # its s.d. (drawn once per path when > 0)
    vol: np.ndarray          # volatility of the yearly shock
    phi: np.ndarray          # AR(1) persistence
    r0: np.ndarray           # AR(1) initial log growth
    shocked: np.ndarray      # has a yearly shock of its own
    additive: np.ndarray     # the parameter is a drift added as it is (else a growth rate g, added as ln(1+g))
    h0: np.ndarray           # the hidden state in the base year (a logit, an organic log level; else 0)
    scale: np.ndarray        # a bounded kind's ceiling: its value is scale × share (1 for a share)
    log_scale: np.ndarray    # ln(scale)
    vol_df: np.ndarray       # degrees of freedom of an estimated volatility (vol is its estimate); 0: known
    x0_law: np.ndarray       # an uncertain start's law, drawn once per path (model.processes.START_LAW_CODES); 0: known
    x0_a: np.ndarray         # its parameters: lognormal: mean and s.d. of ln X (a logit for a bounded kind);
    x0_b: np.ndarray         # uniform: low and high; normal: mean and s.d. of X


class Counts(NamedTuple):
    c_mean: np.ndarray       # mean additions a year
    c_disp: np.ndarray       # a negative binomial's dispersion; 0: Poisson
    c_sd: np.ndarray         # s.d. of an uncertain mean (each path draws its own from a gamma law); 0: known
    c_cdf: np.ndarray        # tabulated CDFs, one after the other
    c_guide: np.ndarray      # their guide tables
    c_cdf_start: np.ndarray
    c_guide_start: np.ndarray
    c_guide_size: np.ndarray  # 0: no table, draw with the sampler
    s_plan: np.ndarray       # (indicator, step): a scheduled count's planned additions (whole numbers); else 0
    s_delivery: np.ndarray   # its probability that a unit due in a year is delivered that year
    s_carry: np.ndarray      # its probability that an undelivered unit is carried to the next year (0: lost)
    s_delivery_kappa: np.ndarray  # κ of a delivery drawn per path, Beta(s_delivery·κ, (1 − s_delivery)·κ); 0: known
    s_carry_kappa: np.ndarray     # likewise for the carry-over; 0: known
    s_to_stock: np.ndarray   # plan_to: the stock each path plans to reach from its own start; 0: the schedule s_plan
    s_to_margin: np.ndarray  # its margin: ⌈margin·(stock − start)⌉ units planned in all
    s_to_cum: np.ndarray     # (indicator, step): the cumulative share of them planned by each year (0 in the base year)


class Derived(NamedTuple):
    ref_a: np.ndarray        # a ratio's numerator
    ref_b: np.ndarray        # and denominator
    sum_start: np.ndarray    # a sum's terms: sum_terms[sum_start : sum_start + sum_len]
    sum_len: np.ndarray
    sum_terms: np.ndarray
    derived_order: np.ndarray  # derived indicators in dependency order


class ShockLaw(NamedTuple):
    chol: np.ndarray         # factor of the correlation matrix
    correlated: bool
    shock_kind: int
    dof: float
    tp: np.ndarray           # two-piece parameters


class Projects(NamedTuple):
    proj_ind: np.ndarray
    proj_size: np.ndarray
    proj_prob: np.ndarray
    proj_first: np.ndarray
    proj_last: np.ndarray


class Jumps(NamedTuple):
    jump_prob: np.ndarray
    jump_mask: np.ndarray    # (jump, step): the jump may happen that year
    jump_effect: np.ndarray  # (jump, indicator): log size


class Observations(NamedTuple):
    obs: np.ndarray          # (indicator, step), NaN where not observed
    obs_step: np.ndarray     # per step: index of its conditioning matrices, -1 when none
    cond_b: np.ndarray
    cond_c: np.ndarray
    obs_prec: np.ndarray
    obs_level: np.ndarray    # (indicator, step): the observed value on the scale of its shocks (ln X, logit)


class Targets(NamedTuple):
    t_ind: np.ndarray
    t_kind: np.ndarray
    t_cmp: np.ndarray
    t_step: np.ndarray
    t_thr: np.ndarray        # thresholds, moved by the tie margin (see engine.plan)
    t_lo: np.ndarray
    t_hi: np.ndarray
    t_group: np.ndarray      # each target's plan (0 .. n_groups − 1): the targets met together per plan


class SketchGrid(NamedTuple):
    sketch_lo: np.ndarray
    sketch_inv_width: np.ndarray
    n_bins: int


class KernelPlan(NamedTuple):
    """Everything the kernel reads about the scenario."""

    processes: Processes
    counts: Counts
    derived: Derived
    shocks: ShockLaw
    projects: Projects
    jumps: Jumps
    observations: Observations
    targets: Targets
    grid: SketchGrid


class Accumulators(NamedTuple):
    """What a kernel call adds to (first axis: slot; chunk sums: the batch's chunks)."""

    attained: np.ndarray
    attained_by_year: np.ndarray
    joint: np.ndarray
    n_met_hist: np.ndarray
    group_joint: np.ndarray      # (slot, group): every target of the group (a plan) met
    groups_met_hist: np.ndarray  # (slot, n_groups + 1): exactly m groups with every target met
    pair_fail: np.ndarray
    weight_total: np.ndarray
    log_w_max: np.ndarray
    nonfinite: np.ndarray
    sketch: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    chunk_sums: np.ndarray
    chunk_w2: np.ndarray


class Kept(NamedTuple):
    """The kept paths (``--keep-paths``): paths ``first .. stop - 1`` of the run, row ``p - first``, get
    their outcomes and drawn inputs written here (``stop <= first``: none; the arrays may then be empty).
    Their size is the number of kept paths, never the run's."""

    first: int
    stop: int
    target_met: np.ndarray      # (path, target) int8: 1 where the path meets the target
    weight: np.ndarray          # (path,) the path's weight (1, or its likelihood relative to the run's reference)
    final_value: np.ndarray     # (path, indicator) the value in the last simulated year
    start_value: np.ndarray     # (path, indicator) the value in the base year (drawn where the start is uncertain)
    growth_draw: np.ndarray     # (path, indicator) the drawn growth (or drift) parameter; NaN where not drawn
    count_mean: np.ndarray      # (path, indicator) an uncertain count mean's draw λ; NaN where not drawn
    delivery: np.ndarray        # (path, indicator) a scheduled count's delivery drawn per path; NaN where not drawn
    project_step: np.ndarray    # (path, project) int64: the step the project completes in; -1: never
    jump_count: np.ndarray      # (path, indicator) int64: jumps that hit the indicator (events × years)


def kept_arrays(first: int, stop: int, n_ind: int, n_targets: int, n_proj: int) -> Kept:
    """Fresh kept-path arrays for paths ``first .. stop - 1`` (none when ``stop <= first``)."""
    m = max(0, stop - first)
    return Kept(first=int(first), stop=int(first + m),
                target_met=np.zeros((m, n_targets), dtype=np.int8), weight=np.zeros(m),
                final_value=np.zeros((m, n_ind)), start_value=np.zeros((m, n_ind)),
                growth_draw=np.full((m, n_ind), np.nan), count_mean=np.full((m, n_ind), np.nan),
                delivery=np.full((m, n_ind), np.nan), project_step=np.full((m, n_proj), -1, dtype=np.int64),
                jump_count=np.zeros((m, n_ind), dtype=np.int64))


class Draws(NamedTuple):
    """A group's random numbers, by lane (the last axis)."""

    state: np.ndarray
    states: np.ndarray
    pdraw: np.ndarray
    proj_u: np.ndarray
    jump_hit: np.ndarray
    z: np.ndarray
    tscale: np.ndarray
    added: np.ndarray
    vol_w: np.ndarray        # (indicator, lane): an estimated volatility's factor w (σ = vol·w); unset where known
    c_lam: np.ndarray        # (indicator, lane): an uncertain count mean's draw λ (the path's mean); NaN where known
    x0_u: np.ndarray         # (indicator, lane): an uncertain start's draw (a normal, or a uniform); unset where known
    carried: np.ndarray      # (step, indicator, lane): a scheduled count's units carried into the year from the last
    s_dlv: np.ndarray        # (indicator, lane): a scheduled count's delivery drawn per path (Beta); NaN where known
    s_car: np.ndarray        # (indicator, lane): its carry-over drawn per path (Beta); NaN where known


class Paths(NamedTuple):
    """A group's paths: values, logs and the states that carry them from year to year."""

    val: np.ndarray
    lg: np.ndarray
    par: np.ndarray
    hidden: np.ndarray
    r_prev: np.ndarray
    eps: np.ndarray
    jump_add: np.ndarray
    proj_step: np.ndarray
    log_w: np.ndarray


class Fold(NamedTuple):
    """Scratch for folding a group into the statistics."""

    w: np.ndarray
    w_int: np.ndarray
    scratch: np.ndarray
    bins: np.ndarray
    hit: np.ndarray
    hold: np.ndarray
    total: np.ndarray
    met: np.ndarray
    n_met: np.ndarray
    missed: np.ndarray
    missed_weight: np.ndarray
    missed_mask: np.ndarray
    check: np.ndarray
    hit0: np.ndarray
    group_missed: np.ndarray  # (group, lane): some target of the group missed (groups <= targets)
    groups_met: np.ndarray    # (lane,): groups with every target met


class Work(NamedTuple):
    """One slot's working arrays; their size does not depend on the number of paths."""

    draws: Draws
    paths: Paths
    fold: Fold


def work_spec(n_ind: int, n_steps1: int, n_targets: int, n_proj: int, n_jumps: int
              ) -> dict[str, dict[str, tuple[tuple[int, ...], Any, float]]]:
    """``{bundle: {field: (shape, dtype, fill)}}`` of a slot's working arrays."""
    f8, i8, u8, b1 = np.float64, np.int64, np.uint8, np.bool_
    return {
        "draws": {
            "state": ((4,), np.uint64, 0), "states": ((LANES, 4), np.uint64, 0),
            "pdraw": ((n_ind, LANES), f8, 0), "proj_u": ((n_proj, 2, LANES), f8, 0),
            "jump_hit": ((n_jumps, n_steps1, LANES), b1, 0), "z": ((n_steps1, n_ind, LANES), f8, 0),
            "tscale": ((n_steps1, LANES), f8, 1), "added": ((n_steps1, n_ind, LANES), f8, 0),
            "vol_w": ((n_ind, LANES), f8, 1), "c_lam": ((n_ind, LANES), f8, np.nan),
            "x0_u": ((n_ind, LANES), f8, 0), "carried": ((n_steps1, n_ind, LANES), f8, 0),
            "s_dlv": ((n_ind, LANES), f8, np.nan), "s_car": ((n_ind, LANES), f8, np.nan),
        },
        "paths": {
            "val": ((n_ind, n_steps1, LANES), f8, 0), "lg": ((n_ind, n_steps1, LANES), f8, 0),
            "par": ((n_ind, LANES), f8, 0), "hidden": ((n_ind, LANES), f8, 0),
            "r_prev": ((n_ind, LANES), f8, 0), "eps": ((n_ind, LANES), f8, 0),
            "jump_add": ((n_ind, LANES), f8, 0), "proj_step": ((n_proj, LANES), i8, 0), "log_w": ((LANES,), f8, 0),
        },
        "fold": {
            "w": ((LANES,), f8, 1), "w_int": ((LANES,), i8, 1), "scratch": ((LANES,), f8, 0),
            "bins": ((LANES,), i8, 0), "hit": ((LANES,), u8, 0), "hold": ((LANES,), u8, 0),
            "total": ((LANES,), f8, 0), "met": ((n_targets, LANES), u8, 0), "n_met": ((LANES,), i8, 0),
            "missed": ((n_targets, LANES // 64), np.uint64, 0), "missed_weight": ((n_targets, LANES), i8, 0),
            "missed_mask": ((n_targets, LANES), i8, 0), "check": ((LANES,), f8, 0),
            "hit0": ((n_targets,), b1, 0), "group_missed": ((n_targets, LANES), u8, 0),
            "groups_met": ((LANES,), i8, 0),
        },
    }


_BUNDLES = {"draws": Draws, "paths": Paths, "fold": Fold}


def work_arrays(n_ind: int, n_steps1: int, n_targets: int, n_proj: int, n_jumps: int) -> Work:
    """Fresh working arrays for one kernel call, as :func:`work_spec` describes them."""
    spec = work_spec(n_ind, n_steps1, n_targets, n_proj, n_jumps)
    return Work(**{bundle: _BUNDLES[bundle](**{name: np.full(shape, fill, dtype=dtype)
                                               for name, (shape, dtype, fill) in fields.items()})
                   for bundle, fields in spec.items()})


def work_bytes(n_ind: int, n_steps1: int, n_targets: int, n_proj: int, n_jumps: int) -> int:
    """Bytes of one slot's working arrays."""
    spec = work_spec(n_ind, n_steps1, n_targets, n_proj, n_jumps)
    return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
               for fields in spec.values() for shape, dtype, _ in fields.values())


def kernel_plan(arrays: Mapping[str, Any], grid: SketchGrid) -> KernelPlan:
    """The plan's arrays (by name) bundled into the kernel's sections."""
    def section(cls):
        return cls(**{name: arrays[name] for name in cls._fields})

    return KernelPlan(processes=section(Processes), counts=section(Counts), derived=section(Derived),
                      shocks=section(ShockLaw), projects=section(Projects), jumps=section(Jumps),
                      observations=section(Observations), targets=section(Targets), grid=grid)
