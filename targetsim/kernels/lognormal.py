"""The fused Monte Carlo kernel for log-normal indicators.

Pure numba: arrays in, integer counts and float partial sums out; no I/O, no Python objects.

Reproducibility: each path ``p`` draws from its own xoshiro256++ stream seeded from
``(key, p)``, in a fixed order (first one parameter draw per indicator, then year by year,
indicator by indicator). Counts are integers, merged exactly. Float sums (for the mean) are
taken over fixed chunks of ``chunk`` consecutive paths and written per chunk, so the caller
can add them in path order. Hence results are bit-identical for any thread count and any
block size that is a multiple of ``chunk``.

Accumulators are indexed by *slot*; slot ``s`` runs blocks ``s, s + n_slots, ...`` of the
batch, so slots never share memory and need no locks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from targetsim.kernels.rng import next_normal, seed_path_state
from targetsim.kernels.sketch import sketch_bin

# Comparator codes shared with the engine's plan.
GE, GT, LE, LT = 0, 1, 2, 3
# Target kind codes.
LEVEL, CAGR = 0, 1


@njit(cache=True, inline="always")
def compare(value: float, threshold: float, comparator: int) -> bool:
    if comparator == GE:
        return value >= threshold
    if comparator == GT:
        return value > threshold
    if comparator == LE:
        return value <= threshold
    return value < threshold


@njit(cache=True)
def _simulate_path(key, path, log_start, growth_mean, growth_sd, volatility, chol, correlated,
                   log_x, drift, z, eps, state):
    """Fill ``log_x[indicator, step]`` for one path."""
    n_ind, n_steps1 = log_x.shape
    seed_path_state(key, path, state)
    # parameter uncertainty: one growth draw per indicator and path
    for i in range(n_ind):
        g = growth_mean[i]
        if growth_sd[i] > 0.0:
            g += growth_sd[i] * next_normal(state)
        # 1+g > 0 is guaranteed to 8 s.d. by validation; the floor guards the remaining 1e-15
        drift[i] = math.log(max(1.0 + g, 1e-300))
        log_x[i, 0] = log_start[i]
    for t in range(1, n_steps1):
        for i in range(n_ind):
            z[i] = next_normal(state)
        if correlated:
            for i in range(n_ind):
                acc = 0.0
                for j in range(i + 1):
                    acc += chol[i, j] * z[j]
                eps[i] = acc
            for i in range(n_ind):
                log_x[i, t] = log_x[i, t - 1] + drift[i] + volatility[i] * eps[i]
        else:
            for i in range(n_ind):
                log_x[i, t] = log_x[i, t - 1] + drift[i] + volatility[i] * z[i]


@njit(cache=True, parallel=True)
def simulate_batch(
    key, first_block, n_blocks, block_size, n_paths, chunk,
    log_start, growth_mean, growth_sd, volatility, chol, correlated,
    target_indicator, target_kind, target_comparator, target_step, target_log_threshold,
    sketch_lo, sketch_inv_width, n_bins,
    attained, attained_by_year, joint, n_met_hist, sketch, vmin, vmax,
    chunk_sums,
):
    """Simulate blocks ``first_block .. first_block + n_blocks - 1`` and accumulate their statistics.

    Per-slot accumulators (first axis = slot) are added to, not overwritten:
    ``attained[s, k]`` paths meeting target k; ``attained_by_year[s, k, t]`` paths for which
    target k's rule, evaluated in step t instead of its own year, holds; ``joint[s]`` paths
    meeting every target; ``n_met_hist[s, m]`` paths meeting exactly m targets;
    ``sketch[s, i, t, :]`` log-histograms; ``vmin/vmax[s, i, t]`` extremes of ``ln X``.
    ``chunk_sums[c, i, t]`` (overwritten) holds the sum of ``X`` over chunk c of this batch.
    """
    n_slots = attained.shape[0]
    n_ind = log_start.shape[0]
    n_steps1 = sketch.shape[2]
    n_targets = target_indicator.shape[0]
    first_path = first_block * block_size
    for s in prange(n_slots):
        log_x = np.empty((n_ind, n_steps1))
        drift = np.empty(n_ind)
        z = np.empty(n_ind)
        eps = np.empty(n_ind)
        state = np.empty(4, dtype=np.uint64)
        for b in range(s, n_blocks, n_slots):
            block_start = (first_block + b) * block_size
            block_stop = min(block_start + block_size, n_paths)
            for p in range(block_start, block_stop):
                c = (p - first_path) // chunk
                if (p - first_path) % chunk == 0:
                    for i in range(n_ind):
                        for t in range(n_steps1):
                            chunk_sums[c, i, t] = 0.0
                _simulate_path(key, p, log_start, growth_mean, growth_sd, volatility, chol,
                               correlated, log_x, drift, z, eps, state)
                # streaming reductions over this path
                for i in range(n_ind):
                    lo = sketch_lo[i]
                    inv_w = sketch_inv_width[i]
                    for t in range(n_steps1):
                        lx = log_x[i, t]
                        sketch[s, i, t, sketch_bin(lx, lo, inv_w, n_bins)] += 1
                        if lx < vmin[s, i, t]:
                            vmin[s, i, t] = lx
                        if lx > vmax[s, i, t]:
                            vmax[s, i, t] = lx
                        chunk_sums[c, i, t] += math.exp(lx)
                n_met = 0
                for k in range(n_targets):
                    i = target_indicator[k]
                    thr = target_log_threshold[k]
                    cmp = target_comparator[k]
                    if target_kind[k] == LEVEL:
                        for t in range(n_steps1):
                            if compare(log_x[i, t], thr, cmp):
                                attained_by_year[s, k, t] += 1
                        met = compare(log_x[i, target_step[k]], thr, cmp)
                    else:
                        # cagr: ln X(t) - ln X(0) against t * ln(1 + g*)
                        for t in range(1, n_steps1):
                            if compare(log_x[i, t] - log_x[i, 0], t * thr, cmp):
                                attained_by_year[s, k, t] += 1
                        step = target_step[k]
                        met = compare(log_x[i, step] - log_x[i, 0], step * thr, cmp)
                    if met:
                        attained[s, k] += 1
                        n_met += 1
                n_met_hist[s, n_met] += 1
                if n_met == n_targets:
                    joint[s] += 1
