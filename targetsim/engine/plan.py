"""Turn a validated :class:`Scenario` into the plain arrays the kernels consume."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from targetsim.errors import ScenarioError
from targetsim.kernels.codes import COMPARATOR_CODES, PROCESS_CODES, SHOCK_CODES, TARGET_CODES
from targetsim.kernels.distributions import count_tables
from targetsim.kernels.layout import KernelPlan, SketchGrid, kernel_plan
from targetsim.kernels.special import two_piece_params
from targetsim.model.scenario import (
    COMPARATORS,
    PROCESS_KINDS,
    SHOCK_DISTRIBUTIONS,
    SHOCKED_KINDS,
    TARGET_KINDS,
    Ar1GrowthProcess,
    BuildoutProcess,
    CountProcess,
    LogitShareProcess,
    LognormalProcess,
    RatioProcess,
    Scenario,
    SumProcess,
)

# Quantile sketch: bins per (indicator, year) cell, and how many s.d. of ln X the grid spans
# either side of its centre. 10 s.d. leaves < 1e-20 of the mass outside for a Gaussian.
SKETCH_BINS = 4096
SKETCH_SPAN_SD = 10.0
# Ties: arithmetic that is exact in mathematics (a deterministic path, a value equal to the
# threshold) drifts by a few ulps of the log level per year. A simulated value within
# TIE_ULPS ulps × (years + 1) × the largest log magnitude of the plan of a threshold compares as
# equal to it (relative to the threshold for levels; absolute, in ln(1 + g), for growth rates):
# about 6e-13 relative for a 3-year plan of values up to e^10, far below any Monte Carlo error.
TIE_ULPS = 64


@dataclass(frozen=True)
class SimulationPlan:
    """Everything the kernel needs, as arrays; steps are years after ``base_year`` (step 0).

    ``arrays`` holds the kernel's inputs by name; ``kernel`` bundles them into the sections the
    kernel takes (:class:`targetsim.kernels.layout.KernelPlan`).
    """

    n_steps: int
    n_indicators: int
    n_targets: int
    weighted: bool
    arrays: dict[str, np.ndarray | float | int | bool]
    sketch_lo: np.ndarray
    sketch_width: np.ndarray
    n_bins: int
    kernel: KernelPlan


# every kind the model knows has a code the kernel knows
assert set(PROCESS_CODES) == set(PROCESS_KINDS) and set(TARGET_CODES) == set(TARGET_KINDS)
assert set(COMPARATOR_CODES) == set(COMPARATORS) and set(SHOCK_CODES) == set(SHOCK_DISTRIBUTIONS)


def correlation_matrix(scenario: Scenario) -> np.ndarray:
    index = {ind.id: i for i, ind in enumerate(scenario.indicators)}
    matrix = np.eye(len(index))
    for c in scenario.correlations:
        i, j = index[c.a], index[c.b]
        matrix[i, j] = matrix[j, i] = c.rho
    return matrix


def psd_factor(matrix: np.ndarray) -> np.ndarray:
    """A lower-triangular ``L`` with ``L Lᵀ = matrix``, also for singular PSD matrices."""
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        # Singular but PSD (validated): a pivot-free LDLᵀ with zero pivots dropped.
        n = matrix.shape[0]
        factor = np.zeros_like(matrix)
        for j in range(n):
            d = matrix[j, j] - factor[j, :j] @ factor[j, :j]
            if d <= 1e-12:
                continue
            factor[j, j] = math.sqrt(d)
            factor[j + 1:, j] = (matrix[j + 1:, j] - factor[j + 1:, :j] @ factor[j, :j]) / factor[j, j]
        return factor


def _derived_order(scenario: Scenario, index: dict[str, int]) -> np.ndarray:
    """Derived indicators in dependency order (validation has excluded cycles)."""
    order: list[int] = []
    done: set[str] = set()

    def visit(ind_id: str) -> None:
        ind = scenario.indicator_by_id[ind_id]
        if ind_id in done or not ind.is_derived:
            return
        refs = (ind.process.numerator, ind.process.denominator) if isinstance(ind.process, RatioProcess) \
            else ind.process.terms
        for ref in refs:
            visit(ref)
        done.add(ind_id)
        order.append(index[ind_id])

    for ind in scenario.indicators:
        visit(ind.id)
    return np.array(order, dtype=np.int64)


def _observation_arrays(scenario: Scenario, index: dict[str, int], matrix: np.ndarray, n_steps: int):
    """Observed values by (indicator, step) and, per step with observed shocked indicators, the
    Gaussian conditioning: precision of the observed shocks, regression and factor for the rest."""
    n = len(index)
    obs = np.full((n, n_steps + 1), np.nan)
    for ind_id, values in scenario.observations:
        for year, value in values:
            obs[index[ind_id], year - scenario.base_year] = value
    shocked = np.array([ind.process.kind in SHOCKED_KINDS for ind in scenario.indicators])
    obs_step = np.full(n_steps + 1, -1, dtype=np.int64)
    precs, bs, cs = [], [], []
    for t in range(1, n_steps + 1):
        observed = shocked & ~np.isnan(obs[:, t])
        if not observed.any():
            continue
        o = np.flatnonzero(observed)
        u = np.flatnonzero(shocked & ~observed)
        r_oo = matrix[np.ix_(o, o)]
        if np.linalg.eigvalsh(r_oo).min() < 1e-10:
            names = ", ".join(scenario.indicators[i].id for i in o)
            raise ScenarioError(f"observed indicators {names} are perfectly correlated in "
                                f"{scenario.base_year + t}; their shocks cannot be conditioned on")
        prec_oo = np.linalg.inv(r_oo)
        prec = np.zeros((n, n))
        prec[np.ix_(o, o)] = prec_oo
        b = np.zeros((n, n))
        c = np.zeros((n, n))
        if u.size:
            r_uo = matrix[np.ix_(u, o)]
            reg = r_uo @ prec_oo
            cov = matrix[np.ix_(u, u)] - reg @ r_uo.T
            b[np.ix_(u, o)] = reg
            c[np.ix_(u, u)] = psd_factor((cov + cov.T) / 2)
        obs_step[t] = len(precs)
        precs.append(prec)
        bs.append(b)
        cs.append(c)
    if not precs:
        precs, bs, cs = [np.zeros((n, n))], [np.zeros((n, n))], [np.zeros((n, n))]
    return obs, obs_step, np.array(bs), np.array(cs), np.array(precs)


def _target_arrays(scenario: Scenario, index: dict[str, int], x0: np.ndarray):
    """Target rules as arrays. Thresholds are moved by the tie margin in the direction that
    makes a value equal to the threshold compare as equal: ``>=`` and ``<=`` then hold, ``>``
    and ``<`` do not, and the band of ``~`` includes its ends."""
    targets = scenario.targets
    n_t = len(targets)
    thr = np.empty(n_t)
    lo = np.empty(n_t)
    hi = np.empty(n_t)
    n_steps = scenario.horizon - scenario.base_year
    starts = x0[x0 > 0]
    magnitude = max(1.0, float(np.abs(np.log(starts)).max()) if starts.size else 1.0)
    for k, t in enumerate(targets):
        rate = t.kind in ("cagr", "growth_each_year")
        band = t.tolerance * abs(t.threshold)
        low, high = t.threshold - band, t.threshold + band
        if rate:  # compared as log growth: ln(1 + g)
            floor = -1.0 + 1e-12
            base, low, high = math.log1p(t.threshold), math.log1p(max(low, floor)), math.log1p(max(high, floor))
        else:
            base = t.threshold
        # the tie margin: absolute for log growth, relative to the threshold for values
        scale = max(magnitude, abs(math.log(t.threshold)) if t.threshold > 0 and not rate else 0.0)
        ulps = TIE_ULPS * np.finfo(np.float64).eps * (n_steps + 1) * scale
        margin = (lambda value: ulps) if rate else (lambda value: ulps * abs(value))  # noqa: E731
        # '>=' and '<' move the threshold down, '>' and '<=' up
        thr[k] = base - margin(base) if t.comparator in (">=", "<") else base + margin(base)
        lo[k], hi[k] = low - margin(low), high + margin(high)
    return dict(
        t_ind=np.array([index[t.indicator] for t in targets], dtype=np.int64),
        t_kind=np.array([TARGET_CODES[t.kind] for t in targets], dtype=np.int64),
        t_cmp=np.array([COMPARATOR_CODES[t.comparator] for t in targets], dtype=np.int64),
        t_step=np.array([t.by - scenario.base_year for t in targets], dtype=np.int64),
        t_thr=thr, t_lo=lo, t_hi=hi,
    )


def build_plan(scenario: Scenario) -> SimulationPlan:
    """Arrays for ``scenario``; starts must have been resolved (see ``io.scenarios``)."""
    inds = scenario.indicators
    n = len(inds)
    n_steps = scenario.horizon - scenario.base_year
    index = {ind.id: i for i, ind in enumerate(inds)}
    f = lambda: np.zeros(n)  # noqa: E731
    kind = np.array([PROCESS_CODES[ind.process.kind] for ind in inds], dtype=np.int64)
    x0, p_mean, p_sd, vol, phi, r0, c_mean, c_disp = f(), f(), f(), f(), f(), f(), f(), f()
    ref_a = np.zeros(n, dtype=np.int64)
    ref_b = np.zeros(n, dtype=np.int64)
    sum_start = np.zeros(n, dtype=np.int64)
    sum_len = np.zeros(n, dtype=np.int64)
    sum_terms: list[int] = []
    proj_ind, proj_size, proj_prob, proj_first, proj_last = [], [], [], [], []
    for i, ind in enumerate(inds):
        proc = ind.process
        if ind.start is not None:
            if ind.start.value is None or not math.isfinite(ind.start.value):
                raise ValueError("start values must be resolved before planning")
            x0[i] = ind.start.value
        if isinstance(proc, LognormalProcess):
            p_mean[i], p_sd[i], vol[i] = proc.growth.mean, proc.growth.sd, proc.volatility
        elif isinstance(proc, Ar1GrowthProcess):
            p_mean[i], p_sd[i], vol[i] = proc.long_run_growth.mean, proc.long_run_growth.sd, proc.volatility
            phi[i] = proc.persistence
            r0[i] = math.log1p(proc.initial_growth)
        elif isinstance(proc, LogitShareProcess):
            p_mean[i], p_sd[i], vol[i] = proc.drift.mean, proc.drift.sd, proc.volatility
        elif isinstance(proc, BuildoutProcess):
            org = proc.organic
            p_mean[i], p_sd[i], vol[i] = org.growth.mean, org.growth.sd, org.volatility
            for pj in proc.projects:
                proj_ind.append(i)
                proj_size.append(pj.size)
                proj_prob.append(pj.probability)
                proj_first.append(pj.earliest - scenario.base_year)
                proj_last.append(pj.latest - scenario.base_year)
        elif isinstance(proc, CountProcess):
            c_mean[i] = proc.mean
            c_disp[i] = proc.dispersion or 0.0
        elif isinstance(proc, RatioProcess):
            ref_a[i], ref_b[i] = index[proc.numerator], index[proc.denominator]
        elif isinstance(proc, SumProcess):
            sum_start[i], sum_len[i] = len(sum_terms), len(proc.terms)
            sum_terms.extend(index[t] for t in proc.terms)
    shocked = np.array([ind.process.kind in SHOCKED_KINDS for ind in inds], dtype=np.bool_)

    matrix = correlation_matrix(scenario)
    correlated = bool(scenario.correlations)
    chol = np.ascontiguousarray(psd_factor(matrix)) if correlated else np.eye(n)
    shocks = scenario.shocks
    tp = np.array(two_piece_params(shocks.skew) if shocks.distribution == "two_piece" else (1.0, 1.0, 0.0, 1.0))

    jumps = scenario.jumps
    jump_prob = np.array([j.probability for j in jumps], dtype=np.float64)
    jump_mask = np.zeros((len(jumps), n_steps + 1), dtype=np.bool_)
    jump_effect = np.zeros((len(jumps), n))
    for j, jump in enumerate(jumps):
        for year in jump.years:
            jump_mask[j, year - scenario.base_year] = True
        for ind_id, size in jump.effects:
            jump_effect[j, index[ind_id]] = size

    obs, obs_step, cond_b, cond_c, obs_prec = _observation_arrays(scenario, index, matrix, n_steps)
    # counts' laws are fixed for the run: draw them by inverting tabulated CDFs (one uniform a
    # draw, several times faster than the gamma-Poisson samplers, which remain for laws whose
    # table would be too long)
    c_cdf, c_guide, c_cdf_start, c_guide_start, c_guide_size = count_tables(c_mean, c_disp)
    arrays = dict(
        kind=kind, x0=x0, p_mean=p_mean, p_sd=p_sd, vol=vol, phi=phi, r0=r0, c_mean=c_mean, c_disp=c_disp,
        c_cdf=c_cdf, c_guide=c_guide, c_cdf_start=c_cdf_start, c_guide_start=c_guide_start,
        c_guide_size=c_guide_size,
        ref_a=ref_a, ref_b=ref_b, sum_start=sum_start, sum_len=sum_len,
        sum_terms=np.array(sum_terms, dtype=np.int64), derived_order=_derived_order(scenario, index),
        shocked=shocked, chol=chol, correlated=correlated, shock_kind=SHOCK_CODES[shocks.distribution],
        dof=float(shocks.dof or 0.0), tp=tp,
        proj_ind=np.array(proj_ind, dtype=np.int64), proj_size=np.array(proj_size, dtype=np.float64),
        proj_prob=np.array(proj_prob, dtype=np.float64), proj_first=np.array(proj_first, dtype=np.int64),
        proj_last=np.array(proj_last, dtype=np.int64),
        jump_prob=jump_prob, jump_mask=jump_mask, jump_effect=jump_effect,
        obs=obs, obs_step=obs_step, cond_b=cond_b, cond_c=cond_c, obs_prec=obs_prec,
        **_target_arrays(scenario, index, x0),
    )
    lo, width = _sketch_grid(scenario, arrays, n_steps)
    kernel = kernel_plan(arrays, SketchGrid(sketch_lo=lo, sketch_inv_width=1.0 / width, n_bins=SKETCH_BINS))
    return SimulationPlan(n_steps=n_steps, n_indicators=n, n_targets=len(scenario.targets),
                          weighted=bool(scenario.observations), arrays=arrays,
                          sketch_lo=lo, sketch_width=width, n_bins=SKETCH_BINS, kernel=kernel)


def _sketch_grid(scenario: Scenario, a: dict, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per indicator, a log grid covering the bulk of ln X in every year.

    Shocked processes: the expected log path ± SKETCH_SPAN_SD s.d. (yearly shocks and parameter
    uncertainty, by the delta method; doubled for fat-tailed shocks and widened by jumps). Shares
    live in (0, 1). Counts, ratios and sums: from 1/10 of the smallest to 10× the largest value
    their parts can plausibly reach. Values outside land in under/overflow bins.
    """
    inds = scenario.indicators
    n = len(inds)
    steps = np.arange(n_steps + 1)
    lo = np.zeros(n)
    hi = np.zeros(n)
    fat = 2.0 if scenario.shocks.distribution != "normal" else 1.0
    jump_span = np.abs(a["jump_effect"]).sum(axis=0) * max(1, n_steps)
    for i, ind in enumerate(inds):
        kind = ind.process.kind
        if kind in ("lognormal", "ar1_growth", "buildout"):
            drift = math.log1p(a["p_mean"][i])
            drift_sd = a["p_sd"][i] / (1.0 + a["p_mean"][i])
            shock_sd = a["vol"][i] * fat
            if kind == "ar1_growth":  # persistence amplifies the long-run variance of the level
                shock_sd /= max(1e-3, 1.0 - abs(a["phi"][i]))
                drift = max(abs(drift), abs(a["r0"][i]))
            spread = np.sqrt(shock_sd**2 * steps + drift_sd**2 * steps**2)
            centre = math.log(a["x0"][i]) + drift * steps
            lo[i] = (centre - SKETCH_SPAN_SD * spread).min() - jump_span[i] - (abs(drift) * n_steps if kind == "ar1_growth" else 0)
            hi[i] = (centre + SKETCH_SPAN_SD * spread).max() + jump_span[i]
            if kind == "buildout":
                hi[i] = max(hi[i], math.log(a["x0"][i] + a["proj_size"][a["proj_ind"] == i].sum()) + 1.0)
        elif kind == "logit_share":
            spread = math.sqrt(a["vol"][i] ** 2 * n_steps + a["p_sd"][i] ** 2 * n_steps**2) * fat
            start_logit = math.log(a["x0"][i] / (1 - a["x0"][i]))
            low_logit = min(start_logit, start_logit + a["p_mean"][i] * n_steps) - SKETCH_SPAN_SD * spread - jump_span[i]
            lo[i] = -math.log1p(math.exp(-low_logit)) if low_logit > -700 else low_logit
            hi[i] = 0.0
        else:
            lo[i], hi[i] = math.log(1e-6), math.log(1e12)
    # counts: around their plausible range
    for i, ind in enumerate(inds):
        if ind.process.kind == "count":
            mean, disp = a["c_mean"][i], a["c_disp"][i]
            var = mean + (mean**2 / disp if disp > 0 else 0.0)
            top = a["x0"][i] + n_steps * mean + SKETCH_SPAN_SD * math.sqrt(n_steps * var) + 10
            # ln 0.5 as the floor: every positive count (at least 1) lies on the grid
            lo[i], hi[i] = math.log(0.5), math.log(top)
    for i in a["derived_order"]:  # derived, from their parts' grids (in dependency order)
        ind = inds[i]
        if ind.process.kind == "ratio":
            na, nb = a["ref_a"][i], a["ref_b"][i]
            lo[i], hi[i] = lo[na] - hi[nb], hi[na] - lo[nb]
        else:
            terms = [index for index in a["sum_terms"][a["sum_start"][i]:a["sum_start"][i] + a["sum_len"][i]]]
            lo[i], hi[i] = min(lo[t] for t in terms), max(hi[t] for t in terms) + math.log(len(terms))
    span = np.maximum(hi - lo, 1e-6)
    lo = lo - 1e-9 * np.maximum(1.0, np.abs(lo))  # keep the start value strictly inside the grid
    return lo, span / (SKETCH_BINS - 2)
