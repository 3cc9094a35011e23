"""The fused Monte Carlo kernel: simulate paths of all indicators and fold them into statistics.

Pure numba: arrays in, integer counts and float partial sums out; no I/O, no Python objects.

Reproducibility: each path ``p`` draws from its own xoshiro256++ stream seeded from
``(key, p)``, always in the same order (parameters, project completions, then year by year:
jumps, shocks, counts). Counts are integers (path weights are fixed-point integers when
observations weight the paths), so they merge exactly. Float sums (for the mean and the
effective sample size) are taken over fixed chunks of ``chunk`` consecutive paths, so the
caller can add them in path order. Hence results are bit-identical for any thread count and
any block size that is a multiple of ``chunk``.

Accumulators are indexed by *slot*; slot ``s`` runs blocks ``s, s + n_slots, ...`` of the
batch, so slots never share memory and need no locks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from targetsim.kernels.distributions import next_negative_binomial, next_poisson, student_t_scale
from targetsim.kernels.rng import next_double, next_normal, seed_path_state
from targetsim.kernels.sketch import sketch_bin
from targetsim.kernels.special import two_piece_from_normal

# Process kinds (the engine's plan uses the same codes).
LOGNORMAL, AR1, LOGIT, BUILDOUT, COUNT, RATIO, SUM = 0, 1, 2, 3, 4, 5, 6
# Target kinds.
T_LEVEL, T_CAGR, T_FIRST_PASSAGE, T_GROWTH_EACH_YEAR, T_PER_YEAR, T_CUMULATIVE = 0, 1, 2, 3, 4, 5
# Comparators.
GE, GT, LE, LT, ABOUT = 0, 1, 2, 3, 4
# Shock distributions.
NORMAL, STUDENT_T, TWO_PIECE = 0, 1, 2
# Fixed-point path weights: 32 fractional bits.
WEIGHT_ONE = 4294967296.0


@njit(cache=True, inline="always")
def compare(value, threshold, low, high, comparator):
    if comparator == GE:
        return value >= threshold
    if comparator == GT:
        return value > threshold
    if comparator == LE:
        return value <= threshold
    if comparator == LT:
        return value < threshold
    return low <= value <= high


@njit(cache=True, _nrt=False)
def _count_log_pmf(k, mean, dispersion):
    """log P(A = k) for Poisson(mean) (dispersion 0) or NB(mean, dispersion)."""
    if k < 0:
        return -np.inf
    if dispersion <= 0.0:
        if mean == 0.0:
            return 0.0 if k == 0 else -np.inf
        return k * math.log(mean) - mean - math.lgamma(k + 1.0)
    if mean == 0.0:
        return 0.0 if k == 0 else -np.inf
    r = dispersion
    return (math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1.0)
            + r * math.log(r / (r + mean)) + k * math.log(mean / (r + mean)))


# _nrt=False: the function allocates nothing, and without it numba wraps every array argument
# in atomic reference-count updates, which cost more than the simulation itself.
@njit(cache=True, _nrt=False)
def simulate_path(key, path, kind, x0, p_mean, p_sd, vol, phi, r0, c_mean, c_disp,
                  ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order, shocked,
                  chol, correlated, shock_kind, dof, tp,
                  proj_ind, proj_size, proj_prob, proj_first, proj_last,
                  jump_prob, jump_mask, jump_effect,
                  obs, obs_step, cond_b, cond_c, obs_prec,
                  val, lg, par, hidden, hidden0, r_prev, z, eps, jump_add, proj_step, state,
                  has_jumps, has_obs):
    """Simulate one path into ``val[i, t]`` (level) and ``lg[i, t]`` (its log) for t >= 1; return
    its log weight. The base year ``val[:, 0]``, ``lg[:, 0]``, ``hidden0`` and the parameters
    without uncertainty in ``par`` are the same on every path: :func:`base_year` sets them once."""
    n_ind, n_steps1 = val.shape
    seed_path_state(key, path, state)
    # uncertain parameters, one draw per indicator and path (same draw order as ever)
    for i in range(n_ind):
        k = kind[i]
        if (k == LOGNORMAL or k == AR1 or k == LOGIT or k == BUILDOUT) and p_sd[i] > 0.0:
            p = p_mean[i] + p_sd[i] * next_normal(state)
            if k == LOGIT:
                par[i] = p
            else:  # a growth rate: its log; 1+g > 0 is guaranteed to 8 s.d. by validation
                par[i] = math.log(max(1.0 + p, 1e-300))
    # build-out projects: completed or not, and when (both uniforms always drawn)
    for j in range(proj_ind.shape[0]):
        u_done = next_double(state)
        u_year = next_double(state)
        if u_done < proj_prob[j]:
            proj_step[j] = proj_first[j] + int(u_year * (proj_last[j] - proj_first[j] + 1))
        else:
            proj_step[j] = 1 << 30
    # base-year state
    for i in range(n_ind):
        k = kind[i]
        if k == LOGIT or k == BUILDOUT:
            hidden[i] = hidden0[i]
        elif k == AR1:
            r_prev[i] = r0[i]

    log_w = 0.0
    for t in range(1, n_steps1):
        # rare common events (without any, jump_add stays all zero)
        if has_jumps:
            for i in range(n_ind):
                jump_add[i] = 0.0
            for j in range(jump_prob.shape[0]):
                if jump_mask[j, t]:
                    if next_double(state) < jump_prob[j]:
                        for i in range(n_ind):
                            jump_add[i] += jump_effect[j, i]
        # yearly shocks for the shocked indicators
        for i in range(n_ind):
            z[i] = next_normal(state) if shocked[i] else 0.0
        o = obs_step[t]
        if o >= 0:
            # observed indicators: the shock is implied by the observation; the others are
            # drawn from their conditional distribution given it (normal shocks only)
            for i in range(n_ind):
                eps[i] = 0.0
                x = obs[i, t]
                if shocked[i] and not math.isnan(x):
                    k = kind[i]
                    if k == LOGNORMAL:
                        resid = math.log(x) - lg[i, t - 1] - par[i] - jump_add[i]
                    elif k == AR1:
                        resid = (math.log(x) - lg[i, t - 1] - jump_add[i]
                                 - (par[i] + phi[i] * (r_prev[i] - par[i])))
                    else:  # LOGIT
                        resid = math.log(x / (1.0 - x)) - hidden[i] - par[i] - jump_add[i]
                    if vol[i] > 0.0:
                        eps[i] = resid / vol[i]
                    elif abs(resid) > 1e-9:
                        log_w = -np.inf
            quad = 0.0
            for i in range(n_ind):
                for j in range(n_ind):
                    quad += eps[i] * obs_prec[o, i, j] * eps[j]
            log_w -= 0.5 * quad
            for i in range(n_ind):
                if shocked[i] and math.isnan(obs[i, t]):
                    acc = 0.0
                    for j in range(n_ind):
                        acc += cond_b[o, i, j] * eps[j] + cond_c[o, i, j] * z[j]
                    eps[i] = acc
        else:
            if correlated:
                for i in range(n_ind):
                    acc = 0.0
                    for j in range(i + 1):
                        acc += chol[i, j] * z[j]
                    eps[i] = acc
            else:
                for i in range(n_ind):
                    eps[i] = z[i]
            if shock_kind == STUDENT_T:
                scale = student_t_scale(state, dof)
                for i in range(n_ind):
                    eps[i] *= scale
            elif shock_kind == TWO_PIECE:
                for i in range(n_ind):
                    if shocked[i]:
                        eps[i] = two_piece_from_normal(eps[i], tp[0], tp[1], tp[2], tp[3])
        # advance every base indicator
        for i in range(n_ind):
            k = kind[i]
            x = obs[i, t] if has_obs else np.nan  # lets the compiler drop the checks
            if k == LOGNORMAL:
                lg[i, t] = lg[i, t - 1] + par[i] + vol[i] * eps[i] + jump_add[i]
                if not math.isnan(x):
                    lg[i, t] = math.log(x)
                val[i, t] = math.exp(lg[i, t])
            elif k == AR1:
                r = par[i] + phi[i] * (r_prev[i] - par[i]) + vol[i] * eps[i]
                lg[i, t] = lg[i, t - 1] + r + jump_add[i]
                if not math.isnan(x):
                    lg[i, t] = math.log(x)
                    r = lg[i, t] - lg[i, t - 1] - jump_add[i]
                r_prev[i] = r
                val[i, t] = math.exp(lg[i, t])
            elif k == LOGIT:
                hidden[i] += par[i] + vol[i] * eps[i] + jump_add[i]
                if not math.isnan(x):
                    hidden[i] = math.log(x / (1.0 - x))
                val[i, t] = 1.0 / (1.0 + math.exp(-hidden[i]))
                lg[i, t] = math.log(val[i, t]) if val[i, t] > 0.0 else -np.inf
            elif k == BUILDOUT:
                hidden[i] += par[i] + vol[i] * eps[i] + jump_add[i]
                total = math.exp(hidden[i])
                for j in range(proj_ind.shape[0]):
                    if proj_ind[j] == i and proj_step[j] <= t:
                        total += proj_size[j]
                val[i, t] = total
                lg[i, t] = math.log(total)
            elif k == COUNT:
                if not math.isnan(x):
                    added = x - val[i, t - 1]
                    log_w += _count_log_pmf(int(added) if added >= 0 else -1, c_mean[i], c_disp[i])
                    val[i, t] = x
                else:
                    if c_disp[i] > 0.0:
                        added = next_negative_binomial(state, c_mean[i], c_disp[i])
                    else:
                        added = next_poisson(state, c_mean[i])
                    val[i, t] = val[i, t - 1] + added
                lg[i, t] = math.log(val[i, t]) if val[i, t] > 0.0 else -np.inf
        _derive(t, val, lg, kind, ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order)
    return log_w


@njit(cache=True, _nrt=False)
def base_year(kind, x0, p_mean, p_sd, ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order,
              val, lg, par, hidden0):
    """The deterministic part of every path: the base year ``val[:, 0]``, ``lg[:, 0]``, the
    starting hidden states and the parameters that have no uncertainty (``p_sd == 0``)."""
    for i in range(x0.shape[0]):
        k = kind[i]
        if (k == LOGNORMAL or k == AR1 or k == LOGIT or k == BUILDOUT) and not p_sd[i] > 0.0:
            par[i] = p_mean[i] if k == LOGIT else math.log(max(1.0 + p_mean[i], 1e-300))
        if k == RATIO or k == SUM:
            continue
        val[i, 0] = x0[i]
        lg[i, 0] = math.log(x0[i]) if x0[i] > 0.0 else -np.inf
        if k == LOGIT:
            hidden0[i] = math.log(x0[i] / (1.0 - x0[i]))
        elif k == BUILDOUT:
            hidden0[i] = lg[i, 0]  # organic log-capacity
    _derive(0, val, lg, kind, ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order)


@njit(cache=True, _nrt=False)
def _derive(t, val, lg, kind, ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order):
    """Ratios and sums, in dependency order."""
    for n in range(derived_order.shape[0]):
        i = derived_order[n]
        if kind[i] == RATIO:
            v = val[ref_a[i], t] / val[ref_b[i], t]
        else:
            v = 0.0
            for m in range(sum_len[i]):
                v += val[sum_terms[sum_start[i] + m], t]
        val[i, t] = v
        lg[i, t] = math.log(v) if v > 0.0 else -np.inf


@njit(cache=True, parallel=True)
def simulate_batch(
    key, first_block, n_blocks, block_size, n_paths, chunk, weighted,
    kind, x0, p_mean, p_sd, vol, phi, r0, c_mean, c_disp,
    ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order, shocked,
    chol, correlated, shock_kind, dof, tp,
    proj_ind, proj_size, proj_prob, proj_first, proj_last,
    jump_prob, jump_mask, jump_effect,
    obs, obs_step, cond_b, cond_c, obs_prec,
    t_ind, t_kind, t_cmp, t_step, t_thr, t_lo, t_hi,
    sketch_lo, sketch_inv_width, n_bins,
    attained, attained_by_year, joint, n_met_hist, pair_fail, weight_total, nonfinite,
    sketch, vmin, vmax, chunk_sums, chunk_w2,
):
    """Simulate blocks ``first_block .. first_block + n_blocks - 1`` and accumulate their statistics.

    Per-slot integer accumulators (first axis = slot; each path adds its weight ``W``: 1, or a
    fixed-point likelihood weight with 32 fractional bits when ``weighted``):
    ``attained[s, k]``; ``attained_by_year[s, k, t]`` (target k's rule evaluated with step t in
    place of its own); ``joint[s]`` (every target met); ``n_met_hist[s, m]`` (exactly m met);
    ``pair_fail[s, a, b]`` (targets a and b both missed); ``weight_total[s]``;
    ``nonfinite[s, i]`` (paths where indicator i was NaN or infinite, unweighted);
    ``sketch[s, i, t, :]`` log-histograms; ``vmin/vmax[s, i, t]`` extremes of ``ln X``.
    Per-chunk float sums (overwritten): ``chunk_sums[c, i, t]`` of ``w·X``, ``chunk_w2[c]`` of ``w²``.
    """
    n_slots = attained.shape[0]
    n_ind = x0.shape[0]
    n_steps1 = sketch.shape[2]
    n_targets = t_ind.shape[0]
    first_path = first_block * block_size
    has_jumps = jump_prob.shape[0] > 0
    has_obs = False
    for i in range(n_ind):
        for t in range(1, n_steps1):
            has_obs = has_obs or not math.isnan(obs[i, t])
    for s in prange(n_slots):
        val = np.empty((n_ind, n_steps1))
        lg = np.empty((n_ind, n_steps1))
        par = np.zeros(n_ind)
        hidden = np.zeros(n_ind)
        hidden0 = np.zeros(n_ind)
        r_prev = np.zeros(n_ind)
        z = np.zeros(n_ind)
        eps = np.zeros(n_ind)
        jump_add = np.zeros(n_ind)
        proj_step = np.zeros(proj_ind.shape[0], dtype=np.int64)
        failed = np.zeros(n_targets, dtype=np.bool_)
        state = np.empty(4, dtype=np.uint64)
        check0 = np.empty(n_ind)
        hit0 = np.zeros(n_targets, dtype=np.bool_)
        # the slot's paths run in a function without reference counting: called here per
        # path, each call would incref and decref every array argument (atomics, ~0.5 us a path)
        _run_slot(
            key, first_block, n_blocks, block_size, n_paths, chunk, weighted,
            kind, x0, p_mean, p_sd, vol, phi, r0, c_mean, c_disp,
            ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order, shocked,
            chol, correlated, shock_kind, dof, tp,
            proj_ind, proj_size, proj_prob, proj_first, proj_last,
            jump_prob, jump_mask, jump_effect,
            obs, obs_step, cond_b, cond_c, obs_prec,
            t_ind, t_kind, t_cmp, t_step, t_thr, t_lo, t_hi,
            sketch_lo, sketch_inv_width, n_bins,
            attained, attained_by_year, joint, n_met_hist, pair_fail, weight_total, nonfinite,
            sketch, vmin, vmax, chunk_sums, chunk_w2,
            s, n_slots, has_jumps, has_obs,
            val, lg, par, hidden, hidden0, r_prev, z, eps, jump_add, proj_step, failed, state, check0, hit0)


# _nrt=False: see simulate_path; everything is allocated by the caller.
@njit(cache=True, _nrt=False)
def _run_slot(
    key, first_block, n_blocks, block_size, n_paths, chunk, weighted,
    kind, x0, p_mean, p_sd, vol, phi, r0, c_mean, c_disp,
    ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order, shocked,
    chol, correlated, shock_kind, dof, tp,
    proj_ind, proj_size, proj_prob, proj_first, proj_last,
    jump_prob, jump_mask, jump_effect,
    obs, obs_step, cond_b, cond_c, obs_prec,
    t_ind, t_kind, t_cmp, t_step, t_thr, t_lo, t_hi,
    sketch_lo, sketch_inv_width, n_bins,
    attained, attained_by_year, joint, n_met_hist, pair_fail, weight_total, nonfinite,
    sketch, vmin, vmax, chunk_sums, chunk_w2,
    s, n_slots, has_jumps, has_obs,
    val, lg, par, hidden, hidden0, r_prev, z, eps, jump_add, proj_step, failed, state, check0, hit0,
):
    """Slot ``s`` of :func:`simulate_batch`: its blocks of paths, folded into its accumulators."""
    n_ind = x0.shape[0]
    n_steps1 = sketch.shape[2]
    n_targets = t_ind.shape[0]
    first_path = first_block * block_size
    # The base year is the same on every path: set it once, and fold it into the
    # statistics once per slot (counts: the slot's total weight) or chunk (sums).
    base_year(kind, x0, p_mean, p_sd, ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order,
              val, lg, par, hidden0)
    for i in range(n_ind):
        check0[i] = val[i, 0] - val[i, 0]  # NaN iff not finite
    # hit0[k]: target k's rule met at step 0 (only the kinds that count step 0)
    for k in range(n_targets):
        if t_kind[k] == T_LEVEL or t_kind[k] == T_FIRST_PASSAGE:
            hit0[k] = compare(val[t_ind[k], 0], t_thr[k], t_lo[k], t_hi[k], t_cmp[k])
    w_slot = np.int64(0)
    w_chunk = 0.0
    for b in range(s, n_blocks, n_slots):
        block_start = (first_block + b) * block_size
        block_stop = min(block_start + block_size, n_paths)
        for p in range(block_start, block_stop):
            c = (p - first_path) // chunk
            if (p - first_path) % chunk == 0:
                chunk_w2[c] = 0.0
                w_chunk = 0.0
                for i in range(n_ind):
                    for t in range(n_steps1):
                        chunk_sums[c, i, t] = 0.0
            log_w = simulate_path(
                key, p, kind, x0, p_mean, p_sd, vol, phi, r0, c_mean, c_disp,
                ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order, shocked,
                chol, correlated, shock_kind, dof, tp,
                proj_ind, proj_size, proj_prob, proj_first, proj_last,
                jump_prob, jump_mask, jump_effect,
                obs, obs_step, cond_b, cond_c, obs_prec,
                val, lg, par, hidden, hidden0, r_prev, z, eps, jump_add, proj_step, state,
                has_jumps, has_obs)
            if weighted:
                # log_w <= 0 by construction (normalised Gaussian kernels, pmfs <= 1)
                w_int = np.int64(math.exp(min(log_w, 0.0)) * WEIGHT_ONE)
                w = w_int / WEIGHT_ONE
            else:
                w_int = np.int64(1)
                w = 1.0
            weight_total[s] += w_int
            chunk_w2[c] += w * w
            w_slot += w_int
            w_chunk += w
            if p + 1 == block_stop or (p + 1 - first_path) % chunk == 0:
                # end of the chunk: its base-year sums, from its weight sum (path order)
                if w_chunk != 0.0:
                    for i in range(n_ind):
                        chunk_sums[c, i, 0] = w_chunk * val[i, 0]
            if w_int == 0:
                continue
            # indicator distributions (branch-free where the data decide: random data
            # mispredict branches, which would cost more than the arithmetic)
            for i in range(n_ind):
                lo = sketch_lo[i]
                inv_w = sketch_inv_width[i]
                check = check0[i]
                for t in range(1, n_steps1):
                    x = val[i, t]
                    check += x - x  # NaN iff x is NaN or infinite
                    lx = lg[i, t]
                    sketch[s, i, t, sketch_bin(lx, lo, inv_w, n_bins)] += w_int
                    vmin[s, i, t] = min(vmin[s, i, t], lx)
                    vmax[s, i, t] = max(vmax[s, i, t], lx)
                    chunk_sums[c, i, t] += w * x
                if check != 0.0:
                    nonfinite[s, i] += 1
            # targets
            n_met = 0
            for k in range(n_targets):
                i = t_ind[k]
                tk = t_kind[k]
                cmp = t_cmp[k]
                thr = t_thr[k]
                lo_k = t_lo[k]
                hi_k = t_hi[k]
                step = t_step[k]
                if tk == T_LEVEL:
                    for t in range(1, n_steps1):
                        attained_by_year[s, k, t] += w_int * compare(val[i, t], thr, lo_k, hi_k, cmp)
                    met = compare(val[i, step], thr, lo_k, hi_k, cmp)
                elif tk == T_CAGR:
                    for t in range(1, n_steps1):
                        attained_by_year[s, k, t] += w_int * compare((lg[i, t] - lg[i, 0]) / t, thr, lo_k, hi_k, cmp)
                    met = compare((lg[i, step] - lg[i, 0]) / step, thr, lo_k, hi_k, cmp)
                elif tk == T_FIRST_PASSAGE:
                    hold = hit0[k]
                    met = hold  # (a target in the base year)
                    for t in range(1, n_steps1):
                        hold = hold | compare(val[i, t], thr, lo_k, hi_k, cmp)
                        attained_by_year[s, k, t] += w_int * hold
                        if t == step:
                            met = hold
                elif tk == T_GROWTH_EACH_YEAR:
                    hold = True
                    met = False
                    for t in range(1, n_steps1):
                        hold = hold & compare(lg[i, t] - lg[i, t - 1], thr, lo_k, hi_k, cmp)
                        attained_by_year[s, k, t] += w_int * hold
                        if t == step:
                            met = hold
                elif tk == T_PER_YEAR:
                    hold = True
                    met = False
                    is_count = kind[i] == COUNT
                    for t in range(1, n_steps1):
                        flow = val[i, t] - val[i, t - 1] if is_count else val[i, t]
                        hold = hold & compare(flow, thr, lo_k, hi_k, cmp)
                        attained_by_year[s, k, t] += w_int * hold
                        if t == step:
                            met = hold
                else:  # T_CUMULATIVE
                    total = 0.0
                    met = False
                    is_count = kind[i] == COUNT
                    for t in range(1, n_steps1):
                        total += val[i, t] - val[i, t - 1] if is_count else val[i, t]
                        hold = compare(total, thr, lo_k, hi_k, cmp)
                        attained_by_year[s, k, t] += w_int * hold
                        if t == step:
                            met = hold
                failed[k] = not met
                attained[s, k] += w_int * met
                n_met += met
            n_met_hist[s, n_met] += w_int
            joint[s] += w_int * (n_met == n_targets)
            for a in range(n_targets):
                fa = failed[a]
                for b2 in range(a + 1, n_targets):
                    pair_fail[s, a, b2] += w_int * (fa & failed[b2])
    if w_slot != 0:
        for i in range(n_ind):
            lx = lg[i, 0]
            sketch[s, i, 0, sketch_bin(lx, sketch_lo[i], sketch_inv_width[i], n_bins)] += w_slot
            vmin[s, i, 0] = min(vmin[s, i, 0], lx)
            vmax[s, i, 0] = max(vmax[s, i, 0], lx)
        for k in range(n_targets):
            attained_by_year[s, k, 0] += w_slot * hit0[k]
