"""A plain-Python (NumPy) twin of the fused kernel, for tests: fed the kernel's own draws, it advances
the same paths and evaluates the same target rules, so the two can be compared path by path.

The draws come from the kernel's ``_draw_group`` (the random numbers are the kernel's; the twin checks
what the kernel does with them). Everything after the draws is written here again from the model as
the README states it, with NumPy's and SciPy's functions: the parameters' logs, projects, jumps,
correlated / Student-t / two-piece shocks, estimated volatilities (each path's σ = estimate·w, with the
kernel's drawn w, which also scales its parameter's deviation), counts with an uncertain mean (each
path's own mean λ, the kernel's gamma draw, in its observations' likelihood), uncertain starts (each
path's own, from the kernel's draw: log-normal, logit-normal, uniform, normal), scheduled counts (the
kernel's deliveries and carried units, checked for consistency with the schedule: each year's deliveries
and carried units are whole numbers within the units due; with programme-level risk each path's own
delivery and carry-over probability, the kernel's beta draw, lies in [0, 1], and a path whose probability
is 1 or 0 delivers or carries every unit or none), the observation years'
conditioning and likelihood, every process, derived indicators, every target rule and comparator. The plan's arrays (thresholds with
their tie margin, the correlation factor and the conditioning matrices) are inputs, as they are for
the kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from targetsim.engine.plan import SimulationPlan
from targetsim.kernels.codes import (AR1, BUILDOUT, COUNT, GE, GT, LE, LOGISTIC, LOGIT, LOGNORMAL, LT, RATIO,
                                     SCHEDULED, START_LOGNORMAL, START_UNIFORM, STUDENT_T, SUM, T_CAGR, T_FIRST_PASSAGE,
                                     T_GROWTH_EACH_YEAR, T_IN_YEAR, T_LEVEL,
                                     T_PER_YEAR, TWO_PIECE)
from targetsim.kernels.weights import VOL_W_MIN
from tests.reference_model import _two_piece

SHARE_MIN, SHARE_MAX = 5e-324, 1.0 - 2.0**-53


@dataclass
class GroupPaths:
    val: np.ndarray     # (indicator, step, path)
    lg: np.ndarray
    log_w: np.ndarray   # (path,)


def kernel_group(plan: SimulationPlan, key: np.ndarray, first_path: int, n: int):
    """The kernel's draws and paths for ``n`` paths from ``first_path`` (one group): ``(draws, paths)``."""
    from targetsim.kernels.geometry import LANES
    from targetsim.kernels.layout import work_arrays
    from targetsim.kernels.paths import _advance_group, _draw_group, base_year

    assert n <= LANES
    a = plan.arrays
    work = work_arrays(plan.n_indicators, plan.n_steps + 1, plan.n_targets, len(a["proj_ind"]), len(a["jump_prob"]))
    base_year(plan.kernel, work.paths)
    work.paths.val[:, 0, :] = work.paths.val[:, 0, :1]
    work.paths.lg[:, 0, :] = work.paths.lg[:, 0, :1]
    work.paths.par[:, :] = work.paths.par[:, :1]
    has_jumps = len(a["jump_prob"]) > 0
    has_obs = bool(np.any(~np.isnan(a["obs"][:, 1:])))
    has_counts = bool(np.any((a["kind"] == COUNT) | (a["kind"] == SCHEDULED)))
    _draw_group(key, first_path, n, plan.kernel, has_jumps, has_obs, has_counts, work.draws)
    _advance_group(n, plan.kernel, has_jumps, has_obs, work.draws, work.paths, work.fold.scratch)
    return work.draws, work.paths


def _count_log_pmf(k: np.ndarray, mean, dispersion: float) -> np.ndarray:
    if dispersion > 0:
        # NB(r, p = r/(r + mean)), written out: SciPy's nbinom forms log(1 − p) from p, which loses
        # the digits of a small mean (an uncertain mean's λ can be tiny)
        r = dispersion
        k_ok = np.maximum(k, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (special.gammaln(k_ok + r) - special.gammaln(r) - special.gammaln(k_ok + 1.0)
                   - r * np.log1p(mean / r) + special.xlogy(k_ok, mean) - k_ok * np.log(r + mean))
    else:
        out = stats.poisson.logpmf(k, mean)
    return np.where(k >= 0, out, -np.inf)


def twin_paths(plan: SimulationPlan, draws, n: int, skew: float = 0.0) -> GroupPaths:
    """Advance ``n`` paths from the kernel's ``draws`` (see :func:`kernel_group`)."""
    a = plan.arrays
    kind, x0, vol, phi = a["kind"], a["x0"], a["vol"], a["phi"]
    n_ind, s1 = plan.n_indicators, plan.n_steps + 1
    shocked = a["shocked"]
    val = np.zeros((n_ind, s1, n))
    lg = np.zeros((n_ind, s1, n))
    log_w = np.zeros(n)
    pdraw, proj_u, jump_hit = draws.pdraw[:, :n], draws.proj_u[:, :, :n], draws.jump_hit[:, :, :n]
    z, tscale, added = draws.z[:, :, :n], draws.tscale[:, :n], draws.added[:, :, :n]
    # a count's mean additions: its own λ on each path where the mean is uncertain (c_sd > 0)
    count_mean = [draws.c_lam[i, :n] if a["c_sd"][i] > 0 else a["c_mean"][i] for i in range(n_ind)]
    # an estimated volatility: each path's σ = estimate·w (w drawn once per path); a known one: w = 1
    estimated = a["vol_df"] > 0
    w = np.where(estimated[:, None], draws.vol_w[:, :n], 1.0)  # (indicator, path)
    sigma = vol[:, None] * w

    # per-path parameters: ln(1 + g) for growth rates, the drift itself for a logit share; with an
    # estimated volatility, g = mean + sd·w·Z (the normal–inverse-χ² posterior)
    par = np.zeros((n_ind, n))
    for i in range(n_ind):
        if kind[i] in (LOGNORMAL, AR1, LOGIT, LOGISTIC, BUILDOUT):
            g = a["p_mean"][i] + (a["p_sd"][i] * w[i] * pdraw[i] if a["p_sd"][i] > 0 else 0.0)
            par[i] = g if kind[i] in (LOGIT, LOGISTIC) else np.log(np.maximum(1.0 + g, 1e-300))
    # projects: completed or not, and in which step
    n_proj = len(a["proj_ind"])
    done_at = np.full((n_proj, n), np.inf)
    for j in range(n_proj):
        span = a["proj_last"][j] - a["proj_first"][j] + 1
        done_at[j] = np.where(proj_u[j, 0] < a["proj_prob"][j],
                              a["proj_first"][j] + np.floor(proj_u[j, 1] * span), np.inf)

    state = np.zeros((n_ind, n))  # log level, logit or organic log level
    r_prev = np.zeros((n_ind, n))
    for i in range(n_ind):
        if kind[i] in (RATIO, SUM):
            continue
        val[i, 0] = x0[i]
        lg[i, 0] = math.log(x0[i]) if x0[i] > 0 else -np.inf
        if kind[i] == LOGIT:
            state[i] = math.log(x0[i] / (1 - x0[i]))
        elif kind[i] == LOGISTIC:  # the logit of the share of the ceiling
            state[i] = math.log(x0[i] / (a["scale"][i] - x0[i]))
        elif kind[i] in (LOGNORMAL, AR1, BUILDOUT):
            state[i] = lg[i, 0]
        if kind[i] == AR1:
            r_prev[i] = a["r0"][i]
        if a["x0_law"][i] > 0:  # an uncertain start: the path's own, from the kernel's draw
            _uncertain_start(a, i, draws.x0_u[i, :n], val, lg, state)
    _derive(a, val, lg, 0)

    obs = a["obs"]
    for t in range(1, s1):
        jump = jump_hit[:, t, :].T.astype(float) @ a["jump_effect"] if len(a["jump_prob"]) else np.zeros((n, n_ind))
        jump = jump.T  # (indicator, path)
        o = a["obs_step"][t]
        if o >= 0:
            eps = np.zeros((n_ind, n))
            for i in range(n_ind):
                if not (shocked[i] and not math.isnan(obs[i, t])):
                    continue
                x = obs[i, t]
                if kind[i] == LOGNORMAL:
                    resid = math.log(x) - lg[i, t - 1] - par[i] - jump[i]
                elif kind[i] == AR1:
                    resid = math.log(x) - lg[i, t - 1] - jump[i] - (par[i] + phi[i] * (r_prev[i] - par[i]))
                elif kind[i] == LOGIT:
                    resid = math.log(x / (1 - x)) - state[i] - par[i] - jump[i]
                else:
                    resid = math.log(x / (a["scale"][i] - x)) - state[i] - par[i] - jump[i]
                if vol[i] > 0:
                    eps[i] = resid / sigma[i]
                    if estimated[i]:  # the density's factor 1/σ, relative to its largest (σ ≥ vol·VOL_W_MIN)
                        log_w = log_w - np.log(w[i] / VOL_W_MIN)
                else:
                    log_w = np.where(np.abs(resid) > 1e-9, -np.inf, log_w)
            log_w = log_w - 0.5 * np.einsum("in,ij,jn->n", eps, a["obs_prec"][o], eps)
            unobserved = shocked & np.isnan(obs[:, t])
            cond = a["cond_b"][o] @ eps + a["cond_c"][o] @ z[t]
            eps = np.where(unobserved[:, None], cond, eps)
        else:
            eps = a["chol"] @ z[t] if a["correlated"] else z[t].copy()
            if a["shock_kind"] == STUDENT_T:
                eps = eps * tscale[t]
            elif a["shock_kind"] == TWO_PIECE:
                eps = np.where(shocked[:, None], _two_piece(eps, skew), eps)
        for i in range(n_ind):
            x = obs[i, t]
            observed = not math.isnan(x)
            if kind[i] == LOGNORMAL:
                state[i] = state[i] + par[i] + sigma[i] * eps[i] + jump[i]
                if observed:
                    state[i] = math.log(x)
                lg[i, t], val[i, t] = state[i], np.exp(state[i])
            elif kind[i] == AR1:
                r = par[i] + phi[i] * (r_prev[i] - par[i]) + sigma[i] * eps[i]
                state[i] = state[i] + r + jump[i]
                r_prev[i] = r
                if observed:
                    state[i] = math.log(x)
                    r_prev[i] = state[i] - lg[i, t - 1] - jump[i]
                lg[i, t], val[i, t] = state[i], np.exp(state[i])
            elif kind[i] == LOGIT:
                state[i] = state[i] + par[i] + sigma[i] * eps[i] + jump[i]
                if observed:
                    state[i] = math.log(x / (1 - x))
                val[i, t] = np.clip(special.expit(state[i]), SHARE_MIN, SHARE_MAX)
                lg[i, t] = np.log(val[i, t])
            elif kind[i] == LOGISTIC:
                ceiling = a["scale"][i]
                state[i] = state[i] + par[i] + sigma[i] * eps[i] + jump[i]
                if observed:
                    state[i] = math.log(x / (ceiling - x))
                share = np.clip(special.expit(state[i]), SHARE_MIN, SHARE_MAX)
                val[i, t], lg[i, t] = ceiling * share, np.log(share) + math.log(ceiling)
            elif kind[i] == BUILDOUT:
                state[i] = state[i] + par[i] + sigma[i] * eps[i] + jump[i]
                total = np.exp(state[i])
                for j in range(n_proj):
                    if a["proj_ind"][j] == i:
                        total = total + a["proj_size"][j] * (done_at[j] <= t)
                val[i, t], lg[i, t] = total, np.log(total)
            elif kind[i] == SCHEDULED:
                _check_schedule(a, i, t, added[t, i], draws.carried[:, i, :n], draws.s_dlv[i, :n], draws.s_car[i, :n])
                val[i, t] = val[i, t - 1] + added[t, i]
                with np.errstate(divide="ignore"):
                    lg[i, t] = np.where(val[i, t] > 0, np.log(val[i, t]), -np.inf)
            elif kind[i] == COUNT:
                if observed:
                    log_w = log_w + _count_log_pmf(x - val[i, t - 1], count_mean[i], a["c_disp"][i])
                    val[i, t] = x
                else:
                    val[i, t] = val[i, t - 1] + added[t, i]
                with np.errstate(divide="ignore"):
                    lg[i, t] = np.where(val[i, t] > 0, np.log(val[i, t]), -np.inf)
        _derive(a, val, lg, t)
    return GroupPaths(val=val, lg=lg, log_w=log_w)


def _check_schedule(a, i: int, t: int, done: np.ndarray, carried: np.ndarray, own_delivery: np.ndarray,
                    own_carry: np.ndarray) -> None:
    """A scheduled count's year ``t`` as the kernel drew it: the units due are the year's planned additions
    plus those carried into it (none into the first year); the deliveries and the units carried on are
    whole numbers, at most the units due and the units left; with delivery 1 every unit due is delivered,
    with carry-over 0 none is carried, with delivery 0 none is delivered. Programme-level risk (κ > 0):
    the probabilities are each path's own (``own_delivery``, ``own_carry``: the kernel's beta draws, in
    [0, 1]; left NaN as allocated where the probability is known)."""
    due = a["s_plan"][i, t] + carried[t]
    p_dlv = _own_probability(a["s_delivery"][i], a["s_delivery_kappa"][i], own_delivery)
    p_car = _own_probability(a["s_carry"][i], a["s_carry_kappa"][i], own_carry)
    assert (carried[1] == 0).all()
    assert (done == np.round(done)).all() and (done >= 0).all() and (done <= due).all()
    assert (done[p_dlv == 1.0] == due[p_dlv == 1.0]).all()
    assert (done[p_dlv == 0.0] == 0).all()
    if t + 1 < carried.shape[0]:
        on = carried[t + 1]
        assert (on == np.round(on)).all() and (on >= 0).all() and (on <= due - done).all()
        assert (on[p_car == 0.0] == 0).all()


def _own_probability(mean: float, kappa: float, drawn: np.ndarray) -> np.ndarray:
    """Each path's probability: the kernel's beta draw where ``kappa`` > 0 (in [0, 1]), else ``mean``
    (and the draw is left NaN, never read)."""
    if kappa > 0.0:
        assert ((drawn >= 0.0) & (drawn <= 1.0)).all(), drawn
        return drawn
    assert np.isnan(drawn).all()
    return np.full(drawn.shape, mean)


def _uncertain_start(a, i: int, u: np.ndarray, val, lg, state) -> None:
    """Indicator ``i``'s start on each path from its draw ``u``: ``lognormal``, its natural scale (``ln X``;
    for a share, or a logistic's share of its ceiling, the logit) is ``x0_a + x0_b·u``; ``uniform``,
    ``X = low + (high − low)·u``; ``normal``, ``X = mean + sd·u`` with ``u`` within ±6. A count's (or
    scheduled count's) start is a whole number: ``uniform``, ``low + ⌊(high − low + 1)·u⌋``; ``lognormal``,
    ``e^(x0_a + x0_b·u)`` rounded to the nearest."""
    law, p, q, k = a["x0_law"][i], a["x0_a"][i], a["x0_b"][i], a["kind"][i]
    ceiling = a["scale"][i]
    bounded = k in (LOGIT, LOGISTIC)
    if k in (COUNT, SCHEDULED):  # a whole number: uniform on p..q, or the log-normal rounded to the nearest
        x = np.minimum(p + np.floor((q - p + 1.0) * u), q) if law == START_UNIFORM else np.floor(np.exp(p + q * u) + 0.5)
        with np.errstate(divide="ignore"):
            val[i, 0], lg[i, 0] = x, np.log(x)
        return
    if law == START_LOGNORMAL:
        h = p + q * u
        if bounded:
            share = np.clip(special.expit(h), SHARE_MIN, SHARE_MAX)
            x, lx = ceiling * share, np.log(share) + math.log(ceiling)
        else:
            x, lx = np.exp(h), h
    else:
        x = p + (q - p) * u if law == START_UNIFORM else p + q * np.clip(u, -6.0, 6.0)
        lx = np.log(x)
        h = np.log(x / (ceiling - x)) if bounded else lx
    val[i, 0], lg[i, 0], state[i] = x, lx, h


def _derive(a, val, lg, t) -> None:
    for i in a["derived_order"]:
        if a["kind"][i] == RATIO:
            val[i, t] = val[a["ref_a"][i], t] / val[a["ref_b"][i], t]
        else:
            start, length = a["sum_start"][i], a["sum_len"][i]
            val[i, t] = sum(val[k, t] for k in a["sum_terms"][start:start + length])
        with np.errstate(divide="ignore", invalid="ignore"):
            lg[i, t] = np.where(val[i, t] > 0, np.log(val[i, t]), -np.inf)


def _cmp(x, code, thr, lo, hi):
    if code == GE:
        return x >= thr
    if code == GT:
        return x > thr
    if code == LE:
        return x <= thr
    if code == LT:
        return x < thr
    return (x >= lo) & (x <= hi)


def twin_rules(plan: SimulationPlan, paths: GroupPaths) -> np.ndarray:
    """``(target, step, path)``: whether each target's rule holds with that step in place of its own
    year (step 0 only for the rules that count it, as the kernel does; False otherwise)."""
    a = plan.arrays
    val, lg = paths.val, paths.lg
    s1, n = val.shape[1], val.shape[2]
    out = np.zeros((plan.n_targets, s1, n), dtype=bool)
    for k in range(plan.n_targets):
        i, tk, c = a["t_ind"][k], a["t_kind"][k], a["t_cmp"][k]
        thr, lo, hi = a["t_thr"][k], a["t_lo"][k], a["t_hi"][k]
        count = a["kind"][i] in (COUNT, SCHEDULED)
        hold = np.ones(n, dtype=bool)
        total = np.zeros(n)
        for t in range(s1):
            if t == 0:
                if tk in (T_LEVEL, T_FIRST_PASSAGE):
                    out[k, 0] = hold = _cmp(val[i, 0], c, thr, lo, hi)
                continue
            if tk == T_LEVEL:
                hold = _cmp(val[i, t], c, thr, lo, hi)
            elif tk == T_CAGR:
                with np.errstate(invalid="ignore"):
                    hold = _cmp((lg[i, t] - lg[i, 0]) / t, c, thr, lo, hi)
            elif tk == T_FIRST_PASSAGE:
                hold = hold | _cmp(val[i, t], c, thr, lo, hi)
            elif tk == T_GROWTH_EACH_YEAR:
                with np.errstate(invalid="ignore"):
                    hold = hold & _cmp(lg[i, t] - lg[i, t - 1], c, thr, lo, hi)
            elif tk == T_PER_YEAR:
                hold = hold & _cmp(val[i, t] - val[i, t - 1] if count else val[i, t], c, thr, lo, hi)
            elif tk == T_IN_YEAR:
                hold = _cmp(val[i, t] - val[i, t - 1], c, thr, lo, hi)
            else:
                total = total + (val[i, t] - val[i, t - 1] if count else val[i, t])
                hold = _cmp(total, c, thr, lo, hi)
            out[k, t] = hold
    return out
