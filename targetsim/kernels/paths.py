"""The fused Monte Carlo kernel: simulate paths of all indicators and fold them into statistics.

Pure numba: arrays in, integer counts and float partial sums out; no I/O, no Python objects.

Reproducibility: each path ``p`` draws from its own xoshiro256++ stream seeded from
``(key, p)``, always in the same order (parameters: indicator by indicator, its parameter's normal
then, for an estimated volatility, its χ², for a count with an uncertain mean its gamma-distributed
mean λ, for a scheduled count with programme-level risk its delivery's (then its carry-over's) beta
draw, and for an uncertain start its start's draw (a normal, or a uniform for a uniform law), last;
project completions; then year by year: jumps, shocks, fat-tail scale, then the counts and scheduled
counts indicator by indicator: a count's additions; a scheduled count's deliveries, then its
carry-over). Counts are
integers (path weights are fixed-point integers when observations weight the paths), so they merge
exactly. Float sums (for the mean and the effective sample size) are taken over fixed chunks of
``chunk`` consecutive paths, so the caller can add them in path order. Hence results are bit-identical for any thread count
and any block size that is a multiple of ``chunk``.

Layout, for speed: paths run in *groups* of ``LANES`` consecutive paths. A group first draws
every random number of each of its paths, year by year: a path's shocks of a year in one go
(the generator's state in registers), its counts indicator by indicator across the lanes (whose
table look-ups then overlap), each path's state kept between its draws. Then it advances all
its paths in lockstep, year by year and indicator by indicator,
in loops over the lanes that the compiler vectorises; the statistics are folded in the same
way. Each lane does exactly the arithmetic a path would do alone, so a path's values do not
depend on its group. Accumulators are indexed by *slot*; slot ``s`` runs blocks
``s, s + n_slots, ...`` of the batch, so slots never share memory and need no locks: the
caller runs each slot (:func:`simulate_slot`, which releases the GIL) on a thread of its own.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from targetsim.kernels.codes import (AR1, BUILDOUT, COUNT, GE, GT, LE, LOGISTIC, LOGIT, LOGNORMAL, LT, NORMAL, RATIO,
                                      SCHEDULED, START_LOGNORMAL, START_NORMAL_SD, START_UNIFORM, STUDENT_T, SUM,
                                      T_CAGR, T_FIRST_PASSAGE, T_GROWTH_EACH_YEAR, T_IN_YEAR, T_LEVEL, T_PER_YEAR,
                                      TWO_PIECE)
from targetsim.kernels.distributions import (count_from_table, count_log_pmf, next_binomial, next_chi2, next_gamma,
                                              next_gamma_mean, next_negative_binomial, next_poisson,
                                              student_t_scale)
from targetsim.kernels.elementary import exp_lanes, fast_exp, fast_log, popcount
from targetsim.kernels.geometry import LANES
from targetsim.kernels.rng import double_from_words, next_double, normal_from_words, seed_path_state
from targetsim.kernels.sketch import sketch_bin
from targetsim.kernels.special import two_piece_from_normal
from targetsim.kernels.weights import VOL_W_MIN, WEIGHT_ONE

# The extremes of a logit share: the doubles next to 0 and 1.
SHARE_MIN, SHARE_MAX = 5e-324, 1.0 - 2.0**-53


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
def _compare_lanes(x, n, threshold, low, high, comparator, out):
    """``out[l] = compare(x[l], ...)`` for the first ``n`` lanes (one loop per comparator, so
    that each vectorises)."""
    if comparator == GE:
        for lane in range(n):
            out[lane] = x[lane] >= threshold
    elif comparator == GT:
        for lane in range(n):
            out[lane] = x[lane] > threshold
    elif comparator == LE:
        for lane in range(n):
            out[lane] = x[lane] <= threshold
    elif comparator == LT:
        for lane in range(n):
            out[lane] = x[lane] < threshold
    else:
        for lane in range(n):
            out[lane] = (x[lane] >= low) & (x[lane] <= high)


@njit(cache=True, _nrt=False)
def _weight_of(flags, w_int, n, weighted):
    """Sum of the weights of the lanes whose flag is set (their number when unweighted)."""
    total = np.int64(0)
    if weighted:
        for lane in range(n):
            total += w_int[lane] * flags[lane]
    else:
        for lane in range(n):
            total += flags[lane]
    return total


@njit(cache=True, _nrt=False)
def _log_gamma(state, shape):
    """``ln G``, ``G ~ Gamma(shape, 1)``, from the same draws as ``next_gamma(state, shape)``: for shape ≥ 1
    the log of its draw; below 1 its boost ``G = G₁·U^(1/shape)``, ``G₁ ~ Gamma(shape + 1)``, taken in logs,
    ``ln G₁ + ln(U)/shape``, so that a small shape's draw (often below the smallest double) keeps its size."""
    if shape >= 1.0:
        return math.log(next_gamma(state, shape))
    g = next_gamma(state, shape + 1.0)
    u = 1.0 - next_double(state)  # in (0, 1], as in next_gamma
    return math.log(g) + math.log(u) / shape


@njit(cache=True, _nrt=False)
def next_beta_mean(state, mean, kappa):
    """``Beta(mean·κ, (1 − mean)·κ)`` (mean ``mean``, variance ``mean(1 − mean)/(κ + 1)``) as the ratio of
    gammas ``X/(X + Y)``, ``X ~ Gamma(mean·κ)``, ``Y ~ Gamma((1 − mean)·κ)`` independent (exact), drawn in
    that order with the project's gamma sampler; formed as ``1/(1 + e^(ln Y − ln X))`` from their logs
    (:func:`_log_gamma`), which lies in [0, 1] for any shapes: a scheduled count's per-path probability
    (programme-level risk). ``0 < mean < 1`` and ``κ > 0`` (the plan packs nothing else)."""
    lx = _log_gamma(state, mean * kappa)
    ly = _log_gamma(state, (1.0 - mean) * kappa)
    return 1.0 / (1.0 + math.exp(ly - lx))


@njit(cache=True, inline="always")
def whole_start(law, a, b, u):
    """A count's (or scheduled count's) uncertain start from its draw ``u``: ``uniform``, ``X = a +
    ⌊(b − a + 1)·u⌋`` (uniform on the whole numbers a..b); ``lognormal``, ``X = ⌊e^(a + b·u) + 1/2⌋``
    (the log-normal rounded to the nearest whole number)."""
    if law == START_UNIFORM:
        return min(a + math.floor((b - a + 1.0) * u), b)
    return math.floor(math.exp(a + b * u) + 0.5)


@njit(cache=True, inline="always")
def planned_to(stock, margin, cum_now, cum_before, start):
    """A scheduled count planned from its own start (``plan_to``): ``N = ⌈margin·max(stock − start, 0)⌉``
    units in all, of which the year's share: ``⌊N·cum_now + 1/2⌋ − ⌊N·cum_before + 1/2⌋`` (cumulative
    shares of the years' weights); ``targetsim.model.processes.ScheduledProcess.planned_from`` is the same rule."""
    total = math.ceil(margin * max(stock - start, 0.0) - 1e-9)
    return math.floor(total * cum_now + 0.5) - math.floor(total * cum_before + 0.5)


# _nrt=False (here and below): the function allocates nothing, and without it numba wraps every
# array argument in atomic reference-count updates, which cost more than the simulation itself.
@njit(cache=True, _nrt=False)
def _draw_group(key, first_path, n, plan, has_jumps, has_obs, has_counts, draws):
    """Every random number of paths ``first_path .. first_path + n - 1``, stored by lane (the
    last axis). Each path draws from its own stream in the order the model consumes them
    (parameters, indicator by indicator: its parameter's normal, then, if its volatility is
    estimated, the χ²_ν of its factor ``w = sqrt(ν/χ²_ν)``, floored at ``VOL_W_MIN``; if it is a count
    with an uncertain mean, its own mean ``λ``, a gamma draw kept in ``c_lam``; if it is a scheduled count
    with programme-level risk (``s_delivery_kappa`` > 0, then ``s_carry_kappa`` > 0), its own delivery
    (carry-over) probability, a beta draw kept in ``s_dlv`` (``s_car``); if its start is uncertain,
    the start's standard normal (a uniform for a uniform law) in ``x0_u``, but for a count or scheduled
    count, whose start is drawn after every year's draws (its additions are then those of the same path
    with a known start), unless it is a scheduled count planned from its start (``s_to_stock`` > 0:
    ``plan_to``), whose deliveries need it; project
    completions; then year by year: jumps, shocks, fat-tail scale, then indicator by indicator the counts
    (by table inversion for a known mean, with the samplers at the path's ``λ`` for an uncertain one) and
    the scheduled counts (its deliveries ``D ~ Binomial(planned + carried, delivery)``, ``planned`` from
    the schedule or, for ``plan_to``, from the path's start (:func:`planned_to`) (the path's own
    delivery where it is drawn per path, likewise its carry-over), kept in ``added``,
    then, but in the last year, the units carried to the next year, ``Binomial(planned + carried − D,
    carry_over)``, kept in ``carried``; draws with a probability 0 or 1, or of 0 units, consume nothing));
    the group goes year
    by year, and within a year the counts indicator by indicator over the lanes, so that the
    lanes' independent draws overlap. ``states[lane]`` keeps each
    path's generator state between its draws."""
    kind, p_sd, shocked = plan.processes.kind, plan.processes.p_sd, plan.processes.shocked
    vol_df, x0_law = plan.processes.vol_df, plan.processes.x0_law
    shock_kind, dof = plan.shocks.shock_kind, plan.shocks.dof
    c_mean, c_disp, c_sd, c_cdf, c_guide = (plan.counts.c_mean, plan.counts.c_disp, plan.counts.c_sd,
                                            plan.counts.c_cdf, plan.counts.c_guide)
    c_cdf_start, c_guide_start, c_guide_size = (plan.counts.c_cdf_start, plan.counts.c_guide_start,
                                                plan.counts.c_guide_size)
    s_plan, s_delivery, s_carry = plan.counts.s_plan, plan.counts.s_delivery, plan.counts.s_carry
    s_delivery_kappa, s_carry_kappa = plan.counts.s_delivery_kappa, plan.counts.s_carry_kappa
    s_to_stock, s_to_margin, s_to_cum = plan.counts.s_to_stock, plan.counts.s_to_margin, plan.counts.s_to_cum
    x0, x0_a, x0_b = plan.processes.x0, plan.processes.x0_a, plan.processes.x0_b
    proj_ind = plan.projects.proj_ind
    jump_prob, jump_mask = plan.jumps.jump_prob, plan.jumps.jump_mask
    obs, obs_step = plan.observations.obs, plan.observations.obs_step
    state, states, pdraw, proj_u, jump_hit, z, tscale, added, vol_w, c_lam, x0_u, carried, s_dlv, s_car = draws
    n_ind = kind.shape[0]
    n_steps1 = z.shape[0]
    # while a path draws, its state lives in four scalars (registers)
    for lane in range(n):
        seed_path_state(key, first_path + lane, state)
        s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
        for i in range(n_ind):
            if p_sd[i] > 0.0:  # an uncertain parameter (only kinds with one have a p_sd)
                pdraw[i, lane], s0, s1, s2, s3 = normal_from_words(s0, s1, s2, s3)
            if vol_df[i] > 0.0:  # an estimated volatility: σ = vol·w for the whole path
                state[0], state[1], state[2], state[3] = s0, s1, s2, s3  # the sampler takes an array
                chi2 = next_chi2(state, vol_df[i])
                s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
                vol_w[i, lane] = max(math.sqrt(vol_df[i] / chi2), VOL_W_MIN)
            if c_sd[i] > 0.0:  # a count's uncertain mean: the path's own λ, for every year
                state[0], state[1], state[2], state[3] = s0, s1, s2, s3
                c_lam[i, lane] = next_gamma_mean(state, c_mean[i], c_sd[i])
                s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
            # a scheduled count's programme-level risk: the path's own delivery, then carry-over,
            # probability (none drawn where it is known: every other draw is then unchanged)
            if s_delivery_kappa[i] > 0.0:
                state[0], state[1], state[2], state[3] = s0, s1, s2, s3
                s_dlv[i, lane] = next_beta_mean(state, s_delivery[i], s_delivery_kappa[i])
                s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
            if s_carry_kappa[i] > 0.0:
                state[0], state[1], state[2], state[3] = s0, s1, s2, s3
                s_car[i, lane] = next_beta_mean(state, s_carry[i], s_carry_kappa[i])
                s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
            # an uncertain start: the path's own, after its other parameters' draws (a count's or
            # scheduled count's is drawn after every year's draws, below; but a scheduled count planned
            # from its start (plan_to) needs it before its deliveries)
            if x0_law[i] > 0 and ((kind[i] != COUNT and kind[i] != SCHEDULED) or s_to_stock[i] > 0.0):
                if x0_law[i] == START_UNIFORM:
                    x0_u[i, lane], s0, s1, s2, s3 = double_from_words(s0, s1, s2, s3)
                else:
                    x0_u[i, lane], s0, s1, s2, s3 = normal_from_words(s0, s1, s2, s3)
        for j in range(proj_ind.shape[0]):
            proj_u[j, 0, lane], s0, s1, s2, s3 = double_from_words(s0, s1, s2, s3)
            proj_u[j, 1, lane], s0, s1, s2, s3 = double_from_words(s0, s1, s2, s3)
        states[lane, 0], states[lane, 1], states[lane, 2], states[lane, 3] = s0, s1, s2, s3
    for t in range(1, n_steps1):
        fat = shock_kind == STUDENT_T and obs_step[t] < 0
        for lane in range(n):
            s0, s1, s2, s3 = states[lane, 0], states[lane, 1], states[lane, 2], states[lane, 3]
            if has_jumps:
                for j in range(jump_prob.shape[0]):
                    hit = False
                    if jump_mask[j, t]:
                        u, s0, s1, s2, s3 = double_from_words(s0, s1, s2, s3)
                        hit = u < jump_prob[j]
                    jump_hit[j, t, lane] = hit
            for i in range(n_ind):
                if shocked[i]:
                    z[t, i, lane], s0, s1, s2, s3 = normal_from_words(s0, s1, s2, s3)
                else:
                    z[t, i, lane] = 0.0
            states[lane, 0], states[lane, 1], states[lane, 2], states[lane, 3] = s0, s1, s2, s3
            if fat:  # the sampler takes the state as an array
                tscale[t, lane] = student_t_scale(states[lane], dof)
        if has_counts:
            for i in range(n_ind):
                if kind[i] == SCHEDULED:  # never observed (validation refuses it)
                    last = t + 1 == n_steps1
                    own_dlv, own_car = s_delivery_kappa[i] > 0.0, s_carry_kappa[i] > 0.0
                    to_start = s_to_stock[i] > 0.0
                    for lane in range(n):
                        if to_start:  # planned from the path's own start
                            start = (whole_start(x0_law[i], x0_a[i], x0_b[i], x0_u[i, lane]) if x0_law[i] > 0
                                     else x0[i])
                            due = planned_to(s_to_stock[i], s_to_margin[i], s_to_cum[i, t], s_to_cum[i, t - 1],
                                             start) + carried[t, i, lane]
                        else:
                            due = s_plan[i, t] + carried[t, i, lane]
                        p_dlv = s_dlv[i, lane] if own_dlv else s_delivery[i]
                        done = next_binomial(states[lane], due, p_dlv)
                        added[t, i, lane] = done
                        if not last:
                            p_car = s_car[i, lane] if own_car else s_carry[i]
                            carried[t + 1, i, lane] = next_binomial(states[lane], due - done, p_car)
                    continue
                if kind[i] != COUNT or (has_obs and not math.isnan(obs[i, t])):
                    continue
                if c_sd[i] > 0.0:  # an uncertain mean: each path's own λ, with the samplers
                    if c_disp[i] > 0.0:
                        for lane in range(n):
                            added[t, i, lane] = next_negative_binomial(states[lane], c_lam[i, lane], c_disp[i])
                    else:
                        for lane in range(n):
                            added[t, i, lane] = next_poisson(states[lane], c_lam[i, lane])
                elif c_guide_size[i] > 0:  # the law's table (see engine.plan): one uniform
                    c0, g0, gm = c_cdf_start[i], c_guide_start[i], c_guide_size[i]
                    for lane in range(n):
                        u, s0, s1, s2, s3 = double_from_words(states[lane, 0], states[lane, 1],
                                                              states[lane, 2], states[lane, 3])
                        states[lane, 0], states[lane, 1], states[lane, 2], states[lane, 3] = s0, s1, s2, s3
                        added[t, i, lane] = count_from_table(u, c_cdf, c_guide, c0, g0, gm)
                elif c_disp[i] > 0.0:
                    for lane in range(n):
                        added[t, i, lane] = next_negative_binomial(states[lane], c_mean[i], c_disp[i])
                else:
                    for lane in range(n):
                        added[t, i, lane] = next_poisson(states[lane], c_mean[i])
    # a count's (or scheduled count's) uncertain start: drawn last, so that its additions (and every other
    # draw) are those of the same path with a known start
    for i in range(n_ind):
        if x0_law[i] > 0 and (kind[i] == COUNT or kind[i] == SCHEDULED) and not s_to_stock[i] > 0.0:
            for lane in range(n):
                s0, s1, s2, s3 = states[lane, 0], states[lane, 1], states[lane, 2], states[lane, 3]
                if x0_law[i] == START_UNIFORM:
                    x0_u[i, lane], s0, s1, s2, s3 = double_from_words(s0, s1, s2, s3)
                else:
                    x0_u[i, lane], s0, s1, s2, s3 = normal_from_words(s0, s1, s2, s3)
                states[lane, 0], states[lane, 1], states[lane, 2], states[lane, 3] = s0, s1, s2, s3


# error_model="numpy" (here and in _derive): see elementary.log_lanes
@njit(cache=True, _nrt=False, error_model="numpy")
def _advance_group(n, plan, has_jumps, has_obs, draws, paths, acc):
    """Advance the group's ``n`` paths in lockstep into ``val[i, t, lane]`` (level) and
    ``lg[i, t, lane]`` (its log) for t >= 1, and their log weights into ``log_w``. The base
    year ``val[:, 0, :]``, ``lg[:, 0, :]`` and the parameters without uncertainty
    in ``par`` are the same on every path: :func:`base_year` set them once.

    An estimated volatility (``vol_df[i] > 0``): the path's volatility is ``vol[i]·w`` (``w`` in
    ``vol_w``), applied as ``vol[i]·(w·ε)``: its standardised shock ``ε`` is scaled in ``eps``,
    so every kind's branch reads it as it reads a known volatility's; and its parameter's deviation
    from the mean is ``p_sd·w·Z``. Where no volatility is estimated, nothing of this runs. A count
    with an uncertain mean (``c_sd[i] > 0``): an observed year's likelihood is that of its additions
    at the path's own mean ``λ`` (in ``c_lam``). An uncertain start (``x0_law[i] > 0``): the group's base
    year, its hidden state and the derived indicators' base year are the paths' own (:func:`_start_group`)."""
    (kind, x0, p_mean, p_sd, vol, phi, r0, shocked, additive, h0, scale, log_scale, vol_df,
     x0_law, _, _) = plan.processes
    c_mean, c_disp, c_sd = plan.counts.c_mean, plan.counts.c_disp, plan.counts.c_sd
    chol, correlated, shock_kind, dof, tp = plan.shocks
    proj_ind, proj_size, proj_prob, proj_first, proj_last = plan.projects
    jump_effect = plan.jumps.jump_effect
    obs, obs_step, obs_level = plan.observations.obs, plan.observations.obs_step, plan.observations.obs_level
    state, states, pdraw, proj_u, jump_hit, z, tscale, added, vol_w, c_lam, x0_u, _, _, _ = draws
    val, lg, par, hidden, r_prev, eps, jump_add, proj_step, log_w = paths
    n_ind, n_steps1 = val.shape[0], val.shape[1]
    estimated = False  # any estimated volatility (its shocks are then scaled path by path)
    for i in range(n_ind):
        if vol_df[i] > 0.0:
            estimated = True
    # uncertain parameters, one per indicator and path
    for i in range(n_ind):
        if p_sd[i] > 0.0:
            dev = pdraw[i]  # the standard normal deviation of the parameter
            if vol_df[i] > 0.0:  # scaled by the path's w (normal–inverse-χ²: its s.e. is proportional to σ)
                for lane in range(n):
                    acc[lane] = pdraw[i, lane] * vol_w[i, lane]
                dev = acc
            if additive[i]:  # a drift, added as it is
                for lane in range(n):
                    par[i, lane] = p_mean[i] + p_sd[i] * dev[lane]
            else:  # a growth rate: its log; 1+g > 0 is guaranteed to 8 s.d. by validation (with an
                # estimated volatility w's heavy tail may pass -100 % on a few paths: floored, the
                # level falls to 0 there)
                for lane in range(n):
                    growth = 1.0 + (p_mean[i] + p_sd[i] * dev[lane])
                    par[i, lane] = fast_log(growth if growth > 1e-300 else 1e-300)
    # build-out projects: completed or not, and when
    for j in range(proj_ind.shape[0]):
        for lane in range(n):
            if proj_u[j, 0, lane] < proj_prob[j]:
                proj_step[j, lane] = proj_first[j] + int(proj_u[j, 1, lane] * (proj_last[j] - proj_first[j] + 1))
            else:
                proj_step[j, lane] = 1 << 30
    # base-year state: the hidden level (logit, organic log level) and the AR(1) growth
    for i in range(n_ind):
        for lane in range(n):
            hidden[i, lane] = h0[i]
        if kind[i] == AR1:
            for lane in range(n):
                r_prev[i, lane] = r0[i]
    # uncertain starts: each path's own base year (the others keep base_year's)
    for i in range(n_ind):
        if x0_law[i] > 0:
            _start_group(n, plan, draws, paths)
            break
    for lane in range(n):
        log_w[lane] = 0.0

    for t in range(1, n_steps1):
        # rare common events (without any, jump_add stays all zero)
        if has_jumps:
            for i in range(n_ind):
                for lane in range(n):
                    jump_add[i, lane] = 0.0
            for j in range(jump_effect.shape[0]):
                for i in range(n_ind):
                    effect = jump_effect[j, i]
                    for lane in range(n):
                        if jump_hit[j, t, lane]:
                            jump_add[i, lane] += effect
        o = obs_step[t]
        # plain independent normal shocks are used as drawn; the others are formed in eps
        direct = o < 0 and not correlated and shock_kind == NORMAL and not estimated
        if o >= 0:
            _observe(t, o, n, plan, draws, paths, acc)
        elif not direct:
            if correlated:
                # zero factor entries (every unshocked indicator's row and column, and
                # uncorrelated blocks) are skipped: their terms are exact zeros (z is finite)
                for i in range(n_ind):
                    for lane in range(n):
                        eps[i, lane] = 0.0
                    for j in range(i + 1):
                        c = chol[i, j]
                        if c != 0.0:
                            for lane in range(n):
                                eps[i, lane] += c * z[t, j, lane]
            else:
                for i in range(n_ind):
                    for lane in range(n):
                        eps[i, lane] = z[t, i, lane]
            if shock_kind == STUDENT_T:
                for i in range(n_ind):
                    for lane in range(n):
                        eps[i, lane] *= tscale[t, lane]
            elif shock_kind == TWO_PIECE:
                for i in range(n_ind):
                    if shocked[i]:
                        for lane in range(n):
                            eps[i, lane] = two_piece_from_normal(eps[i, lane], tp[0], tp[1], tp[2], tp[3])
        if estimated:  # an estimated volatility: the path's σ·ε = vol·(w·ε)
            for i in range(n_ind):
                if vol_df[i] > 0.0:
                    for lane in range(n):
                        eps[i, lane] *= vol_w[i, lane]
        shock = z[t] if direct else eps
        # advance every base indicator
        for i in range(n_ind):
            k = kind[i]
            x = obs[i, t] if has_obs else np.nan  # lets the compiler drop the checks
            observed = not math.isnan(x)
            v = vol[i]
            if k == LOGNORMAL:
                if has_jumps:
                    for lane in range(n):
                        lg[i, t, lane] = lg[i, t - 1, lane] + par[i, lane] + v * shock[i, lane] + jump_add[i, lane]
                else:
                    for lane in range(n):
                        lg[i, t, lane] = lg[i, t - 1, lane] + par[i, lane] + v * shock[i, lane]
                if observed:
                    for lane in range(n):
                        lg[i, t, lane] = obs_level[i, t]
                exp_lanes(lg[i, t], n, val[i, t])
            elif k == AR1:
                ph = phi[i]
                for lane in range(n):
                    r = par[i, lane] + ph * (r_prev[i, lane] - par[i, lane]) + v * shock[i, lane]
                    lg[i, t, lane] = lg[i, t - 1, lane] + r + jump_add[i, lane]
                    r_prev[i, lane] = r
                if observed:
                    for lane in range(n):
                        lg[i, t, lane] = obs_level[i, t]
                        r_prev[i, lane] = lg[i, t, lane] - lg[i, t - 1, lane] - jump_add[i, lane]
                exp_lanes(lg[i, t], n, val[i, t])
            elif k == LOGIT or k == LOGISTIC:
                sc, log_sc = scale[i], log_scale[i]  # a logistic's ceiling (1 for a share)
                for lane in range(n):
                    hidden[i, lane] += par[i, lane] + v * shock[i, lane] + jump_add[i, lane]
                    if observed:
                        hidden[i, lane] = obs_level[i, t]
                    # a logit share lies strictly inside (0, 1): far out, 1 / (1 + e^-h) rounds to
                    # 0 or 1, which would meet rules it never can
                    share = min(max(1.0 / (1.0 + fast_exp(-hidden[i, lane])), SHARE_MIN), SHARE_MAX)
                    val[i, t, lane] = sc * share
                    lg[i, t, lane] = fast_log(share) + log_sc
            elif k == BUILDOUT:
                for lane in range(n):
                    hidden[i, lane] += par[i, lane] + v * shock[i, lane] + jump_add[i, lane]
                    total = fast_exp(hidden[i, lane])
                    for j in range(proj_ind.shape[0]):
                        if proj_ind[j] == i and proj_step[j, lane] <= t:
                            total += proj_size[j]
                    val[i, t, lane] = total
                    lg[i, t, lane] = fast_log(total)
            elif k == COUNT:
                if observed and c_sd[i] > 0.0:  # the additions' likelihood at the path's own mean
                    for lane in range(n):
                        more = x - val[i, t - 1, lane]
                        log_w[lane] += count_log_pmf(int(more) if more >= 0 else -1, c_lam[i, lane], c_disp[i])
                        val[i, t, lane] = x
                elif observed:
                    for lane in range(n):
                        more = x - val[i, t - 1, lane]
                        log_w[lane] += count_log_pmf(int(more) if more >= 0 else -1, c_mean[i], c_disp[i])
                        val[i, t, lane] = x
                else:
                    for lane in range(n):
                        val[i, t, lane] = val[i, t - 1, lane] + added[t, i, lane]
                # a loop of its own, so that it vectorises
                for lane in range(n):
                    v_l = val[i, t, lane]
                    lg[i, t, lane] = fast_log(v_l) if v_l > 0.0 else -np.inf
            elif k == SCHEDULED:  # its deliveries, drawn with the carry-over in _draw_group
                for lane in range(n):
                    val[i, t, lane] = val[i, t - 1, lane] + added[t, i, lane]
                for lane in range(n):
                    v_l = val[i, t, lane]
                    lg[i, t, lane] = fast_log(v_l) if v_l > 0.0 else -np.inf
        _derive(t, n, val, lg, kind, plan.derived)


@njit(cache=True, _nrt=False, error_model="numpy")
def _start_group(n, plan, draws, paths):
    """Each path's own start for the indicators whose start is uncertain (``x0_law[i] > 0``), from its
    draw ``u`` in ``x0_u``: its base-year value, log and hidden state (a logit, an organic log level), then
    the derived indicators' base year. ``lognormal``: the natural scale ``h = x0_a + x0_b·u`` (``ln X``
    for a level; for a bounded kind the logit of its share of the ceiling: a logit-normal law);
    ``uniform``: ``X = low + (high − low)·u``; ``normal``: ``X = mean + sd·u``, ``u`` limited to
    ±START_NORMAL_SD. A count or scheduled count starts at a whole number: ``uniform``, ``X = low +
    ⌊(high − low + 1)·u⌋`` (uniform on the whole numbers low..high); ``lognormal``, ``X = ⌊e^h + 1/2⌋``
    (the log-normal rounded to the nearest whole number; ln 0 = −inf)."""
    kind, x0_law, x0_a, x0_b = plan.processes.kind, plan.processes.x0_law, plan.processes.x0_a, plan.processes.x0_b
    scale, log_scale = plan.processes.scale, plan.processes.log_scale
    x0_u = draws.x0_u
    val, lg, hidden = paths.val, paths.lg, paths.hidden
    for i in range(kind.shape[0]):
        law = x0_law[i]
        if law == 0:
            continue
        k = kind[i]
        bounded = k == LOGIT or k == LOGISTIC
        sc, log_sc, a, b = scale[i], log_scale[i], x0_a[i], x0_b[i]
        if k == COUNT or k == SCHEDULED:  # a whole number
            for lane in range(n):
                u = x0_u[i, lane]
                x = whole_start(law, a, b, u)
                val[i, 0, lane] = x
                lg[i, 0, lane] = math.log(x) if x > 0.0 else -np.inf
            continue
        for lane in range(n):
            u = x0_u[i, lane]
            if law == START_LOGNORMAL:
                h = a + b * u
                if bounded:
                    share = min(max(1.0 / (1.0 + math.exp(-h)), SHARE_MIN), SHARE_MAX)
                    x = sc * share
                    lx = math.log(share) + log_sc
                else:
                    x = math.exp(h)
                    lx = h
            else:
                if law == START_UNIFORM:
                    x = a + (b - a) * u
                else:
                    x = a + b * min(max(u, -START_NORMAL_SD), START_NORMAL_SD)
                lx = math.log(x)
                h = math.log(x / (sc - x)) if bounded else lx
            val[i, 0, lane] = x
            lg[i, 0, lane] = lx
            if bounded or k == BUILDOUT:
                hidden[i, lane] = h
    base_step = np.int64(0)
    _derive(base_step, n, val, lg, kind, plan.derived)


@njit(cache=True, _nrt=False)
def _observe(t, o, n, plan, draws, paths, acc):
    """An observation year: the observed indicators' shocks are implied by the observations
    (and weigh the path by their likelihood); the others are drawn from their conditional
    distribution given them (normal shocks only). An estimated volatility's shock is implied
    with the path's own ``σ = vol·w``, and its density's factor ``1/σ`` enters the likelihood
    (relative to its largest, ``1/(vol·VOL_W_MIN)``: see :mod:`targetsim.kernels.weights`).

    Loops run over the lanes innermost (vectorised), and the sums skip the terms whose matrix
    entries are zero (most of them: only observed indicators enter the likelihood): such a term
    is an exact zero, so each lane's sums are the same, term by term, as the full ones."""
    kind, vol, phi, shocked = plan.processes.kind, plan.processes.vol, plan.processes.phi, plan.processes.shocked
    vol_df = plan.processes.vol_df
    z, vol_w = draws.z, draws.vol_w
    obs, _, cond_b, cond_c, obs_prec, obs_level = plan.observations
    lg, par, hidden, r_prev = paths.lg, paths.par, paths.hidden, paths.r_prev
    eps, jump_add, log_w = paths.eps, paths.jump_add, paths.log_w
    n_ind = kind.shape[0]
    for i in range(n_ind):
        x = obs[i, t]
        if not (shocked[i] and not math.isnan(x)):
            for lane in range(n):
                eps[i, lane] = 0.0
            continue
        k = kind[i]
        level = obs_level[i, t]  # the observed value on the scale of its shocks (ln X, logit)
        v = vol[i]
        ph = phi[i]
        estimated = vol_df[i] > 0.0
        for lane in range(n):
            if k == LOGNORMAL:
                resid = level - lg[i, t - 1, lane] - par[i, lane] - jump_add[i, lane]
            elif k == AR1:
                resid = (level - lg[i, t - 1, lane] - jump_add[i, lane]
                         - (par[i, lane] + ph * (r_prev[i, lane] - par[i, lane])))
            else:  # LOGIT, LOGISTIC (observations of other kinds are refused by validation)
                resid = level - hidden[i, lane] - par[i, lane] - jump_add[i, lane]
            if v > 0.0:
                eps[i, lane] = resid / (v * vol_w[i, lane]) if estimated else resid / v
            else:
                eps[i, lane] = 0.0
                if abs(resid) > 1e-9:
                    log_w[lane] = -np.inf
        if estimated and v > 0.0:  # the density's 1/σ, relative to 1/(v·VOL_W_MIN): at most 1
            for lane in range(n):
                log_w[lane] -= math.log(vol_w[i, lane] / VOL_W_MIN)
    # the Gaussian log-likelihood of the implied shocks
    for lane in range(n):
        acc[lane] = 0.0
    for i in range(n_ind):
        for j in range(n_ind):
            p_ij = obs_prec[o, i, j]
            if p_ij != 0.0:
                for lane in range(n):
                    acc[lane] += eps[i, lane] * p_ij * eps[j, lane]
    for lane in range(n):
        log_w[lane] -= 0.5 * acc[lane]
    # the unobserved shocks, given the observed ones
    for i in range(n_ind):
        if shocked[i] and math.isnan(obs[i, t]):
            for lane in range(n):
                acc[lane] = 0.0
            for j in range(n_ind):
                b_ij = cond_b[o, i, j]
                c_ij = cond_c[o, i, j]
                if b_ij != 0.0 or c_ij != 0.0:
                    for lane in range(n):
                        acc[lane] += b_ij * eps[j, lane] + c_ij * z[t, j, lane]
            for lane in range(n):
                eps[i, lane] = acc[lane]


@njit(cache=True, _nrt=False)
def base_year(plan, paths):
    """The deterministic part of every path, in lane 0: the base year ``val[:, 0, 0]``,
    ``lg[:, 0, 0]`` and the parameters that have no uncertainty (``par[:, 0]``, where ``p_sd == 0``)."""
    kind, x0, p_mean, p_sd, additive = (plan.processes.kind, plan.processes.x0, plan.processes.p_mean,
                                        plan.processes.p_sd, plan.processes.additive)
    val, lg, par = paths.val, paths.lg, paths.par
    for i in range(x0.shape[0]):
        k = kind[i]
        if not p_sd[i] > 0.0:  # (unused by kinds without a parameter)
            par[i, 0] = p_mean[i] if additive[i] else math.log(max(1.0 + p_mean[i], 1e-300))
        if k == RATIO or k == SUM:
            continue
        val[i, 0, 0] = x0[i]
        lg[i, 0, 0] = math.log(x0[i]) if x0[i] > 0.0 else -np.inf
    base_step, one_lane = np.int64(0), np.int64(1)  # not literals: _derive compiles once
    _derive(base_step, one_lane, val, lg, kind, plan.derived)


@njit(cache=True, _nrt=False, error_model="numpy")
def _derive(t, n, val, lg, kind, derived):
    """Ratios and sums at step ``t``, in dependency order."""
    ref_a, ref_b, sum_start, sum_len, sum_terms, derived_order = derived
    for m in range(derived_order.shape[0]):
        i = derived_order[m]
        if kind[i] == RATIO:
            a, b = ref_a[i], ref_b[i]
            for lane in range(n):
                val[i, t, lane] = val[a, t, lane] / val[b, t, lane]
        else:
            for lane in range(n):
                val[i, t, lane] = 0.0
            for q in range(sum_len[i]):
                term = sum_terms[sum_start[i] + q]
                for lane in range(n):
                    val[i, t, lane] += val[term, t, lane]
        for lane in range(n):
            v = val[i, t, lane]
            lg[i, t, lane] = fast_log(v) if v > 0.0 else -np.inf


@njit(cache=True)
def _has_kind(kind, code):
    """Whether any indicator's process is of kind ``code``."""
    for k in kind:
        if k == code:
            return True
    return False


@njit(cache=True)
def _has_varied_start(x0_law):
    """Whether any indicator's start is drawn path by path."""
    for law in x0_law:
        if law > 0:
            return True
    return False


@njit(cache=True)
def _has_observations(obs):
    """Whether any indicator is observed after the base year."""
    for i in range(obs.shape[0]):
        for t in range(1, obs.shape[1]):
            if not math.isnan(obs[i, t]):
                return True
    return False


# nogil: the caller runs one slot per thread (a parallel prange kernel would compile the kernel
# several times over: numba types a prange body again with other integer types). _nrt=False: see
# above; the working arrays come from kernels.layout.work_arrays.
@njit(cache=True, nogil=True, _nrt=False)
def simulate_slot(s, n_slots, run, plan, acc, work, kept):
    """Slot ``s`` of ``n_slots``: simulate its share (blocks ``s``, ``s + n_slots``, ... below
    ``n_blocks`` of ``block_size`` paths from ``first_path``, none past ``n_paths``) and accumulate its
    statistics. The slots of a batch are independent (each writes only its own accumulators and
    its own chunks), so the caller may run them on parallel threads in any order.

    Per-slot integer accumulators (first axis = slot; each path adds its weight ``W``: 1, or a
    fixed-point likelihood weight relative to ``exp(log_w_ref)`` when ``weighted``, see
    :mod:`targetsim.kernels.weights`; ``log_w_max[s]`` takes the largest log-likelihood seen):
    ``attained[s, k]``; ``attained_by_year[s, k, t]`` (target k's rule evaluated with step t in
    place of its own); ``joint[s]`` (every target met); ``n_met_hist[s, m]`` (exactly m met);
    ``pair_fail[s, a, b]`` (targets a and b both missed); ``weight_total[s]``;
    ``nonfinite[s, i]`` (paths where indicator i was NaN or infinite, unweighted);
    ``sketch[s, i, t, :]`` log-histograms; ``vmin/vmax[s, i, t]`` extremes of ``ln X``.
    Per-chunk float sums (overwritten): ``chunk_sums[c, i, t]`` of ``w·X``, ``chunk_w2[c]`` of ``w²``.
    The slot's paths run group by group: drawn, advanced, then folded into its accumulators.
    The arguments are named bundles (see :mod:`targetsim.kernels.layout`): ``run`` (which paths),
    ``plan`` (the scenario's sections), ``acc`` (the accumulators), ``work`` (the slot's arrays) and
    ``kept`` (the kept paths' rows, :class:`~targetsim.kernels.layout.Kept`: written for the paths of the
    call that lie in ``kept.first .. kept.stop - 1``; one comparison per group when none is kept).
    """
    key, first_path, n_blocks, block_size, n_paths, chunk, weighted, log_w_ref = run
    kind, x0 = plan.processes.kind, plan.processes.x0
    t_ind, t_kind, t_cmp, t_thr, t_lo, t_hi = (plan.targets.t_ind, plan.targets.t_kind, plan.targets.t_cmp,
                                               plan.targets.t_thr, plan.targets.t_lo, plan.targets.t_hi)
    sketch_lo, sketch_inv_width, n_bins = plan.grid
    attained_by_year, weight_total, log_w_max = acc.attained_by_year, acc.weight_total, acc.log_w_max
    sketch, vmin, vmax, chunk_sums, chunk_w2 = acc.sketch, acc.vmin, acc.vmax, acc.chunk_sums, acc.chunk_w2
    draws, paths, fold = work
    val, lg, par, log_w = paths.val, paths.lg, paths.par, paths.log_w
    w, w_int, hit0 = fold.w, fold.w_int, fold.hit0
    jump_prob, obs = plan.jumps.jump_prob, plan.observations.obs
    n_ind = x0.shape[0]
    n_steps1 = sketch.shape[2]
    n_targets = t_ind.shape[0]
    has_jumps = jump_prob.shape[0] > 0
    # from functions, so that numba types them as plain booleans: a flag first set to the
    # constant False would be a literal, and every function taking it compiled twice
    has_counts = _has_kind(kind, COUNT) or _has_kind(kind, SCHEDULED)  # counts or scheduled counts to draw
    has_obs = _has_observations(obs)
    # an uncertain start: the base year differs path by path, and is folded with the other years
    varied = _has_varied_start(plan.processes.x0_law)
    # The base year is the same on every path: set it once (lane 0, then every lane), and fold
    # it into the statistics once per slot (counts: the slot's total weight) or chunk (sums).
    # With an uncertain start (varied) each group sets its paths' own (_start_group) and folds them.
    base_year(plan, paths)
    for i in range(n_ind):
        for lane in range(1, LANES):
            val[i, 0, lane] = val[i, 0, 0]
            lg[i, 0, lane] = lg[i, 0, 0]
            par[i, lane] = par[i, 0]
    # hit0[k]: target k's rule met at step 0 (only the kinds that count step 0)
    for k in range(n_targets):
        if t_kind[k] == T_LEVEL or t_kind[k] == T_FIRST_PASSAGE:
            hit0[k] = compare(val[t_ind[k], 0, 0], t_thr[k], t_lo[k], t_hi[k], t_cmp[k])
    w_slot = np.int64(0)
    w_chunk = 0.0
    lw_max = log_w_max[s]
    for b in range(s, n_blocks, n_slots):
        block_start = first_path + b * block_size
        block_stop = min(block_start + block_size, n_paths)
        for g in range(block_start, block_stop, LANES):
            n = min(LANES, block_stop - g)
            c = (g - first_path) // chunk
            if (g - first_path) % chunk == 0:
                chunk_w2[c] = 0.0
                w_chunk = 0.0
                for i in range(n_ind):
                    for t in range(n_steps1):
                        chunk_sums[c, i, t] = 0.0
            _draw_group(key, g, n, plan, has_jumps, has_obs, has_counts, draws)
            _advance_group(n, plan, has_jumps, has_obs, draws, paths, fold.scratch)
            # path weights, in path order
            w_group = np.int64(0)
            for lane in range(n):
                if weighted:
                    # relative to the run's reference, an upper bound of every log-likelihood (see
                    # kernels.weights), rounded to the nearest fixed-point value (exp(-inf) = 0: an
                    # impossible path weighs nothing)
                    lw = log_w[lane]
                    lw_max = max(lw_max, lw)
                    w_int[lane] = np.int64(math.exp(min(lw - log_w_ref, 0.0)) * WEIGHT_ONE + 0.5)
                    w[lane] = w_int[lane] / WEIGHT_ONE
                chunk_w2[c] += w[lane] * w[lane]
                w_chunk += w[lane]
                w_group += w_int[lane]
            weight_total[s] += w_group
            w_slot += w_group
            if not varied and (g + n == block_stop or (g + n - first_path) % chunk == 0):
                # end of the chunk: its base-year sums, from its weight sum (path order)
                if w_chunk != 0.0:
                    for i in range(n_ind):
                        chunk_sums[c, i, 0] = w_chunk * val[i, 0, 0]
            _fold_indicators(s, c, n, weighted, varied, paths, plan.grid, fold, acc)
            _fold_targets(s, n, weighted, varied, kind, paths, plan.targets, fold, acc)
            if g < kept.stop and g + n > kept.first:
                _keep_group(g, n, plan, draws, paths, fold, kept)
    log_w_max[s] = lw_max
    if w_slot != 0 and not varied:
        for i in range(n_ind):
            lx = lg[i, 0, 0]
            sketch[s, i, 0, sketch_bin(lx, sketch_lo[i], sketch_inv_width[i], n_bins)] += w_slot
            vmin[s, i, 0] = min(vmin[s, i, 0], lx)
            vmax[s, i, 0] = max(vmax[s, i, 0], lx)
        for k in range(n_targets):
            attained_by_year[s, k, 0] += w_slot * hit0[k]


@njit(cache=True, _nrt=False)
def _keep_group(g, n, plan, draws, paths, fold, kept):
    """Write the group's kept paths (those of ``g .. g + n - 1`` in ``kept.first .. kept.stop - 1``) into
    their rows of ``kept``: each target met, the weight, the final and base-year values, and the inputs
    the path drew: its growth (or drift) parameter ``p_mean + p_sd·dev`` (the same arithmetic as
    :func:`_advance_group`), an uncertain count mean ``λ``, a per-path delivery probability, the projects'
    completion steps, and how many jumps hit each indicator."""
    p_mean, p_sd, vol_df = plan.processes.p_mean, plan.processes.p_sd, plan.processes.vol_df
    c_sd, s_delivery_kappa = plan.counts.c_sd, plan.counts.s_delivery_kappa
    jump_effect = plan.jumps.jump_effect
    val = paths.val
    n_ind, n_steps1 = val.shape[0], val.shape[1]
    n_targets = fold.met.shape[0]
    n_proj = paths.proj_step.shape[0]
    n_jumps = jump_effect.shape[0]
    for lane in range(max(kept.first - g, 0), min(n, kept.stop - g)):
        row = g + lane - kept.first
        for k in range(n_targets):
            kept.target_met[row, k] = fold.met[k, lane]
        kept.weight[row] = fold.w[lane]
        for i in range(n_ind):
            kept.final_value[row, i] = val[i, n_steps1 - 1, lane]
            kept.start_value[row, i] = val[i, 0, lane]
            if p_sd[i] > 0.0:
                dev = draws.pdraw[i, lane] * draws.vol_w[i, lane] if vol_df[i] > 0.0 else draws.pdraw[i, lane]
                kept.growth_draw[row, i] = p_mean[i] + p_sd[i] * dev
            if c_sd[i] > 0.0:
                kept.count_mean[row, i] = draws.c_lam[i, lane]
            if s_delivery_kappa[i] > 0.0:
                kept.delivery[row, i] = draws.s_dlv[i, lane]
            hits = 0
            for j in range(n_jumps):
                if jump_effect[j, i] != 0.0:
                    for t in range(1, n_steps1):
                        if draws.jump_hit[j, t, lane]:
                            hits += 1
            kept.jump_count[row, i] = hits
        for j in range(n_proj):
            step = paths.proj_step[j, lane]
            kept.project_step[row, j] = step if step < n_steps1 else -1


@njit(cache=True, _nrt=False)
def _fold_indicators(s, c, n, weighted, varied, paths, grid, fold, acc):
    """Fold the group's indicator values into the distributions: log-histograms, extremes of
    ``ln X``, chunk sums of ``w·X``, and the count of paths with a non-finite value. Paths of
    weight zero are left out (their histogram and sum terms are zero anyway). The base year too
    when ``varied`` (an uncertain start); otherwise the caller folds it once."""
    val, lg = paths.val, paths.lg
    sketch_lo, sketch_inv_width, n_bins = grid
    w, w_int, bins, check = fold.w, fold.w_int, fold.bins, fold.check
    sketch, vmin, vmax, chunk_sums, nonfinite = acc.sketch, acc.vmin, acc.vmax, acc.chunk_sums, acc.nonfinite
    n_ind, n_steps1 = val.shape[0], val.shape[1]
    for i in range(n_ind):
        lo = sketch_lo[i]
        inv_w = sketch_inv_width[i]
        for lane in range(n):
            check[lane] = val[i, 0, lane] - val[i, 0, lane]  # NaN iff not finite
        for t in range(0 if varied else 1, n_steps1):
            x = val[i, t]
            lx = lg[i, t]
            for lane in range(n):
                check[lane] += x[lane] - x[lane]
                bins[lane] = sketch_bin(lx[lane], lo, inv_w, n_bins)
            # sums of w·X: four interleaved partial sums (fixed order, vectorisable)
            a0 = a1 = a2 = a3 = 0.0
            lane = 0
            if weighted:
                while lane + 4 <= n:
                    a0 += w[lane] * x[lane]
                    a1 += w[lane + 1] * x[lane + 1]
                    a2 += w[lane + 2] * x[lane + 2]
                    a3 += w[lane + 3] * x[lane + 3]
                    lane += 4
                while lane < n:
                    a0 += w[lane] * x[lane]
                    lane += 1
            else:
                while lane + 4 <= n:
                    a0 += x[lane]
                    a1 += x[lane + 1]
                    a2 += x[lane + 2]
                    a3 += x[lane + 3]
                    lane += 4
                while lane < n:
                    a0 += x[lane]
                    lane += 1
            chunk_sums[c, i, t] += (a0 + a1) + (a2 + a3)
            if weighted:
                lo_t = vmin[s, i, t]
                hi_t = vmax[s, i, t]
                for lane in range(n):
                    if w_int[lane] != 0:
                        sketch[s, i, t, bins[lane]] += w_int[lane]
                        lo_t = min(lo_t, lx[lane])
                        hi_t = max(hi_t, lx[lane])
                vmin[s, i, t] = lo_t
                vmax[s, i, t] = hi_t
            else:
                for lane in range(n):
                    sketch[s, i, t, bins[lane]] += 1
                # extremes: four interleaved partial results (vectorisable; exact in any order)
                lo0 = lo1 = lo2 = lo3 = vmin[s, i, t]
                hi0 = hi1 = hi2 = hi3 = vmax[s, i, t]
                lane = 0
                while lane + 4 <= n:
                    lo0 = min(lo0, lx[lane])
                    lo1 = min(lo1, lx[lane + 1])
                    lo2 = min(lo2, lx[lane + 2])
                    lo3 = min(lo3, lx[lane + 3])
                    hi0 = max(hi0, lx[lane])
                    hi1 = max(hi1, lx[lane + 1])
                    hi2 = max(hi2, lx[lane + 2])
                    hi3 = max(hi3, lx[lane + 3])
                    lane += 4
                while lane < n:
                    lo0 = min(lo0, lx[lane])
                    hi0 = max(hi0, lx[lane])
                    lane += 1
                vmin[s, i, t] = min(min(lo0, lo1), min(lo2, lo3))
                vmax[s, i, t] = max(max(hi0, hi1), max(hi2, hi3))
        for lane in range(n):
            if check[lane] != 0.0 and w_int[lane] != 0:
                nonfinite[s, i] += 1


@njit(cache=True, _nrt=False)
def _fold_groups(s, n, t_group, fold, acc):
    """The groups (plans) whose every target the path met, and how many such groups it has."""
    met, w_int, missed, groups_met = fold.met, fold.w_int, fold.group_missed, fold.groups_met
    group_joint, hist = acc.group_joint, acc.groups_met_hist
    n_groups = group_joint.shape[1]
    for g in range(n_groups):
        for lane in range(n):
            missed[g, lane] = 0
    for k in range(t_group.shape[0]):
        g = t_group[k]
        for lane in range(n):
            missed[g, lane] |= 1 - met[k, lane]
    for lane in range(n):
        groups_met[lane] = 0
    for g in range(n_groups):
        for lane in range(n):
            whole = np.int64(1 - missed[g, lane])
            group_joint[s, g] += w_int[lane] * whole
            groups_met[lane] += whole
    for lane in range(n):
        hist[s, groups_met[lane]] += w_int[lane]


@njit(cache=True, _nrt=False)
def _fold_targets(s, n, weighted, varied, kind, paths, targets, fold, acc):
    """Evaluate every target on the group's paths: by year, at its own year, jointly, in pairs. With
    ``varied`` (an uncertain start) the rules that count the base year are evaluated there path by path
    (otherwise ``hit0``, once for all paths)."""
    val, lg = paths.val, paths.lg
    t_ind, t_kind, t_cmp, t_step, t_thr, t_lo, t_hi, _ = targets
    w_int, scratch, hit, hold, total = fold.w_int, fold.scratch, fold.hit, fold.hold, fold.total
    met, n_met, missed, missed_weight, missed_mask, hit0 = (fold.met, fold.n_met, fold.missed, fold.missed_weight,
                                                            fold.missed_mask, fold.hit0)
    attained, attained_by_year, joint = acc.attained, acc.attained_by_year, acc.joint
    n_met_hist, pair_fail = acc.n_met_hist, acc.pair_fail
    n_steps1 = val.shape[1]
    n_targets = t_ind.shape[0]
    for lane in range(n):
        n_met[lane] = 0
    for k in range(n_targets):
        i = t_ind[k]
        tk = t_kind[k]
        cmp = t_cmp[k]
        thr = t_thr[k]
        lo_k = t_lo[k]
        hi_k = t_hi[k]
        step = t_step[k]
        is_count = kind[i] == COUNT or kind[i] == SCHEDULED  # per-year and cumulative rules read its additions
        for lane in range(n):
            hold[lane] = 1 if tk == T_GROWTH_EACH_YEAR or tk == T_PER_YEAR else hit0[k]
            total[lane] = 0.0
        if varied and (tk == T_LEVEL or tk == T_FIRST_PASSAGE):
            _compare_lanes(val[i, 0], n, thr, lo_k, hi_k, cmp, hold)
            attained_by_year[s, k, 0] += _weight_of(hold, w_int, n, weighted)
        for t in range(1, n_steps1):
            if tk == T_LEVEL:
                _compare_lanes(val[i, t], n, thr, lo_k, hi_k, cmp, hold)
            elif tk == T_CAGR:
                for lane in range(n):
                    scratch[lane] = (lg[i, t, lane] - lg[i, 0, lane]) / t
                _compare_lanes(scratch, n, thr, lo_k, hi_k, cmp, hold)
            elif tk == T_FIRST_PASSAGE:
                _compare_lanes(val[i, t], n, thr, lo_k, hi_k, cmp, hit)
                for lane in range(n):
                    hold[lane] |= hit[lane]
            elif tk == T_GROWTH_EACH_YEAR:
                for lane in range(n):
                    scratch[lane] = lg[i, t, lane] - lg[i, t - 1, lane]
                _compare_lanes(scratch, n, thr, lo_k, hi_k, cmp, hit)
                for lane in range(n):
                    hold[lane] &= hit[lane]
            elif tk == T_PER_YEAR:
                for lane in range(n):
                    scratch[lane] = val[i, t, lane] - val[i, t - 1, lane] if is_count else val[i, t, lane]
                _compare_lanes(scratch, n, thr, lo_k, hi_k, cmp, hit)
                for lane in range(n):
                    hold[lane] &= hit[lane]
            elif tk == T_IN_YEAR:  # the year's increase alone: a count's additions, a level's change
                for lane in range(n):
                    scratch[lane] = val[i, t, lane] - val[i, t - 1, lane]
                _compare_lanes(scratch, n, thr, lo_k, hi_k, cmp, hold)
            else:  # T_CUMULATIVE (kernels.codes)
                for lane in range(n):
                    total[lane] += val[i, t, lane] - val[i, t - 1, lane] if is_count else val[i, t, lane]
                _compare_lanes(total, n, thr, lo_k, hi_k, cmp, hold)
            attained_by_year[s, k, t] += _weight_of(hold, w_int, n, weighted)
            if t == step:
                for lane in range(n):
                    met[k, lane] = hold[lane]
        attained[s, k] += _weight_of(met[k], w_int, n, weighted)
        for lane in range(n):
            n_met[lane] += met[k, lane]
    for lane in range(n):
        n_met_hist[s, n_met[lane]] += w_int[lane]
        joint[s] += w_int[lane] * (n_met[lane] == n_targets)
    _fold_groups(s, n, targets.t_group, fold, acc)
    # pairs of targets both missed: 1 - met is 1 exactly when missed
    if weighted:
        # each target's weighted misses, and its misses as all-ones masks: a pair is then an AND
        # and an add per lane, which vectorise in 64-bit integers (a multiply would not)
        for k in range(n_targets):
            for lane in range(n):
                missed_lane = np.int64(1 - met[k, lane])
                missed_weight[k, lane] = w_int[lane] * missed_lane
                missed_mask[k, lane] = -missed_lane
        for a in range(n_targets):
            for b in range(a + 1, n_targets):
                both = np.int64(0)
                for lane in range(n):
                    both += missed_weight[a, lane] & missed_mask[b, lane]
                pair_fail[s, a, b] += both
    else:
        # each target's misses as bits (64 lanes a word): a pair is then an AND and a popcount
        # per word instead of a pass over the lanes (the counts are the same integers)
        n_words = (n + 63) // 64
        for k in range(n_targets):
            for word in range(n_words):
                bits = np.uint64(0)
                first = word * 64
                for b in range(min(64, n - first)):
                    bits |= np.uint64(1 - met[k, first + b]) << np.uint64(b)
                missed[k, word] = bits
        for a in range(n_targets):
            for b in range(a + 1, n_targets):
                both = np.uint64(0)
                for word in range(n_words):
                    both += popcount(missed[a, word] & missed[b, word])
                pair_fail[s, a, b] += np.int64(both)
