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
from targetsim.model.processes import PROCESS_SPECS, start_law
from targetsim.model.targets import TARGET_SPECS
from targetsim.model.scenario import (
    COMPARATORS,
    PROCESS_KINDS,
    SHOCK_DISTRIBUTIONS,
    SHOCKED_KINDS,
    TARGET_KINDS,
    RatioProcess,
    Scenario,
)

# Quantile sketch: bins per (indicator, year) cell (the span of each kind's grid is its spec's,
# model.processes.SKETCH_SPAN_SD s.d. of ln X either side of its centre).
SKETCH_BINS = 4096
# A heavy-tailed law's grid (an estimated volatility: Student-t tails) covers its quantiles out to
# this many times closer to 0 or 1 than the most extreme quantile reported (model.processes.sketch_span_sd).
SKETCH_TAIL_MARGIN = 100.0
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


# every kind the model knows has a code the kernel knows (a kind added to one and not the other fails here)
for _model, _kernel in ((PROCESS_KINDS, PROCESS_CODES), (TARGET_KINDS, TARGET_CODES), (COMPARATORS, COMPARATOR_CODES),
                        (SHOCK_DISTRIBUTIONS, SHOCK_CODES)):
    if set(_model) != set(_kernel):
        raise TypeError(f"the model's kinds and the kernel's codes differ: {sorted(set(_model) ^ set(_kernel))} "
                        "(see targetsim/model/processes.py and targetsim/kernels/codes.py)")


def correlation_matrix(scenario: Scenario) -> np.ndarray:
    """The correlation of the yearly shocks: the declared pairs ``R``, and with common factors
    ``Λ Λᵀ + D R D``, ``D = diag(sqrt(1 − Σ_f λ²))`` (see :class:`~targetsim.model.scenario.Factor`)."""
    index = {ind.id: i for i, ind in enumerate(scenario.indicators)}
    matrix = np.eye(len(index))
    for c in scenario.correlations:
        i, j = index[c.a], index[c.b]
        matrix[i, j] = matrix[j, i] = c.rho
    if scenario.factors:
        loadings = np.zeros((len(index), len(scenario.factors)))
        for f, factor in enumerate(scenario.factors):
            for ind_id, loading in factor.loadings:
                loadings[index[ind_id], f] = loading
        own = np.sqrt(np.maximum(1.0 - (loadings**2).sum(axis=1), 0.0))
        matrix = loadings @ loadings.T + own[:, None] * matrix * own[None, :]
        np.fill_diagonal(matrix, 1.0)
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


def _observed_levels(scenario: Scenario, obs: np.ndarray) -> np.ndarray:
    """The observed values on the scale of their shocks (ln X, a logit), by each kind's spec."""
    levels = np.full(obs.shape, np.nan)
    for i, ind in enumerate(scenario.indicators):
        for t in np.flatnonzero(~np.isnan(obs[i])):
            levels[i, t] = PROCESS_SPECS[ind.process.kind].observed_level(ind.process, float(obs[i, t]))
    return levels


def _target_arrays(scenario: Scenario, index: dict[str, int], x0: np.ndarray):
    """Target rules as arrays. Thresholds are moved by the tie margin in the direction that
    makes a value equal to the threshold compare as equal: ``>=`` and ``<=`` then hold, ``>``
    and ``<`` do not, and the band of ``~`` includes its ends. ``~>=`` (about, or more) is packed as
    ``>=`` at the band's lower edge (its code is ``>=``'s): a value equal to that edge holds, and the
    edge is moved down by its own tie margin, exactly as the lower end of ``~``'s band."""
    targets = scenario.targets
    n_t = len(targets)
    thr = np.empty(n_t)
    lo = np.empty(n_t)
    hi = np.empty(n_t)
    n_steps = scenario.horizon - scenario.base_year
    starts = x0[x0 > 0]
    magnitude = max(1.0, float(np.abs(np.log(starts)).max()) if starts.size else 1.0)
    for k, t in enumerate(targets):
        rate = TARGET_SPECS[t.kind].rate
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
        if t.comparator == "~>=":  # the lower edge of the band, compared as '>=' (moved down, as '~''s low end)
            thr[k] = low - margin(low)
        else:
            thr[k] = base - margin(base) if t.comparator in (">=", "<") else base + margin(base)
        lo[k], hi[k] = low - margin(low), high + margin(high)
    return dict(
        t_ind=np.array([index[t.indicator] for t in targets], dtype=np.int64),
        t_kind=np.array([TARGET_CODES[t.kind] for t in targets], dtype=np.int64),
        t_cmp=np.array([COMPARATOR_CODES[t.comparator] for t in targets], dtype=np.int64),
        t_step=np.array([t.by - scenario.base_year for t in targets], dtype=np.int64),
        t_thr=thr, t_lo=lo, t_hi=hi,
        t_group=np.array([scenario.plans.index(t.plan or scenario.name) for t in targets], dtype=np.int64),
    )


def count_table_means(c_mean, c_sd) -> np.ndarray:
    """The means to tabulate (:func:`~targetsim.kernels.distributions.count_tables`): a count's mean,
    or 0 (no table) where it is uncertain (``c_sd > 0``: each path draws its own)."""
    return np.where(np.asarray(c_sd, dtype=np.float64) > 0.0, 0.0, np.asarray(c_mean, dtype=np.float64))


def build_plan(scenario: Scenario) -> SimulationPlan:
    """Arrays for ``scenario``; starts must have been resolved (see ``io.scenarios``)."""
    inds = scenario.indicators
    n = len(inds)
    n_steps = scenario.horizon - scenario.base_year
    index = {ind.id: i for i, ind in enumerate(inds)}
    kind = np.array([PROCESS_CODES[ind.process.kind] for ind in inds], dtype=np.int64)
    # each kind's spec writes its parameters into these (lists grow: sum terms, projects)
    packed: dict = {name: np.zeros(n) for name in ("x0", "p_mean", "p_sd", "vol", "phi", "r0", "c_mean", "c_disp",
                                                   "c_sd", "h0", "vol_df")}
    packed["scale"] = np.ones(n)
    packed.update(s_plan=np.zeros((n, n_steps + 1)), s_delivery=np.zeros(n), s_carry=np.zeros(n),
                  s_delivery_kappa=np.zeros(n), s_carry_kappa=np.zeros(n), s_to_stock=np.zeros(n),
                  s_to_margin=np.ones(n), s_to_cum=np.zeros((n, n_steps + 1)))
    packed["additive"] = np.zeros(n, dtype=np.bool_)
    packed.update({name: np.zeros(n, dtype=np.int64) for name in ("ref_a", "ref_b", "sum_start", "sum_len")})
    packed.update({name: [] for name in ("sum_terms", "proj_ind", "proj_size", "proj_prob", "proj_first",
                                         "proj_last")})
    law, law_a, law_b, spread = np.zeros(n, dtype=np.int64), np.zeros(n), np.zeros(n), np.zeros(n)
    for i, ind in enumerate(inds):
        if ind.start is not None:
            if ind.start.value is None or not math.isfinite(ind.start.value):
                raise ValueError("start values must be resolved before planning")
            packed["x0"][i] = ind.start.value
        spec = PROCESS_SPECS[ind.process.kind]
        spec.pack(ind.process, i, packed, index, scenario.base_year)
        packed["additive"][i] |= spec.additive  # pack may set it: a growth given as ln(1+g)
        packed["scale"][i] = spec.scale(ind.process)
        if ind.start is not None:
            packed["h0"][i] = spec.hidden_start(ind.process, ind.start.value)
        # an uncertain start (x0 is then its median): its law, drawn once per path
        law[i], law_a[i], law_b[i], spread[i] = start_law(ind.process, ind.start)
    x0, c_mean, c_disp, c_sd = packed["x0"], packed["c_mean"], packed["c_disp"], packed["c_sd"]
    shocked = np.array([ind.process.kind in SHOCKED_KINDS for ind in inds], dtype=np.bool_)

    matrix = correlation_matrix(scenario)
    correlated = bool(scenario.correlations or scenario.factors)
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
    # table would be too long); a count with an uncertain mean (c_sd > 0) has a law of its own on
    # each path, drawn with the samplers: no table
    c_cdf, c_guide, c_cdf_start, c_guide_start, c_guide_size = count_tables(count_table_means(c_mean, c_sd), c_disp)
    arrays = dict(
        kind=kind, x0=x0, p_mean=packed["p_mean"], p_sd=packed["p_sd"], vol=packed["vol"], phi=packed["phi"],
        r0=packed["r0"], additive=packed["additive"], h0=packed["h0"], scale=packed["scale"], vol_df=packed["vol_df"],
        log_scale=np.log(packed["scale"]), x0_law=law, x0_a=law_a, x0_b=law_b, x0_spread=spread,
        c_mean=c_mean, c_disp=c_disp, c_sd=c_sd,
        c_cdf=c_cdf, c_guide=c_guide, c_cdf_start=c_cdf_start, c_guide_start=c_guide_start,
        c_guide_size=c_guide_size, s_plan=packed["s_plan"], s_delivery=packed["s_delivery"], s_carry=packed["s_carry"],
        s_delivery_kappa=packed["s_delivery_kappa"], s_carry_kappa=packed["s_carry_kappa"],
        s_to_stock=packed["s_to_stock"], s_to_margin=packed["s_to_margin"], s_to_cum=packed["s_to_cum"],
        ref_a=packed["ref_a"], ref_b=packed["ref_b"], sum_start=packed["sum_start"], sum_len=packed["sum_len"],
        sum_terms=np.array(packed["sum_terms"], dtype=np.int64), derived_order=_derived_order(scenario, index),
        shocked=shocked, chol=chol, correlated=correlated, shock_kind=SHOCK_CODES[shocks.distribution],
        dof=float(shocks.dof or 0.0), tp=tp,
        proj_ind=np.array(packed["proj_ind"], dtype=np.int64),
        proj_size=np.array(packed["proj_size"], dtype=np.float64),
        proj_prob=np.array(packed["proj_prob"], dtype=np.float64),
        proj_first=np.array(packed["proj_first"], dtype=np.int64),
        proj_last=np.array(packed["proj_last"], dtype=np.int64),
        jump_prob=jump_prob, jump_mask=jump_mask, jump_effect=jump_effect,
        obs=obs, obs_step=obs_step, cond_b=cond_b, cond_c=cond_c, obs_prec=obs_prec,
        obs_level=_observed_levels(scenario, obs),
        **_target_arrays(scenario, index, x0),
    )
    # the tail a heavy-tailed law's grid covers (see SKETCH_TAIL_MARGIN)
    arrays["sketch_tail"] = min(min(scenario.quantiles), 1.0 - max(scenario.quantiles), 0.5) / SKETCH_TAIL_MARGIN
    lo, width = _sketch_grid(scenario, arrays, n_steps)
    kernel = kernel_plan(arrays, SketchGrid(sketch_lo=lo, sketch_inv_width=1.0 / width, n_bins=SKETCH_BINS))
    return SimulationPlan(n_steps=n_steps, n_indicators=n, n_targets=len(scenario.targets),
                          weighted=bool(scenario.observations), arrays=arrays,
                          sketch_lo=lo, sketch_width=width, n_bins=SKETCH_BINS, kernel=kernel)


def _sketch_grid(scenario: Scenario, a: dict, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per indicator, a log grid covering the bulk of ln X in every year, from its kind's spec
    (:mod:`targetsim.model.processes`): for a shocked level the expected log path ±
    SKETCH_SPAN_SD s.d. (doubled for fat-tailed shocks, widened by jumps, and to the Student-t's
    quantile of ``a["sketch_tail"]`` for an estimated volatility); shares in (0, 1); counts
    around their plausible range (at the largest plausible mean, when it is uncertain); ratios and
    sums from their parts' grids (in dependency order). Values outside land in the under/overflow bins.
    """
    inds = scenario.indicators
    n = len(inds)
    lo = np.zeros(n)
    hi = np.zeros(n)
    fat = 2.0 if scenario.shocks.distribution != "normal" else 1.0
    jump_span = np.abs(a["jump_effect"]).sum(axis=0) * max(1, n_steps)
    derived = set(int(i) for i in a["derived_order"])
    for i in [i for i in range(n) if i not in derived] + [int(i) for i in a["derived_order"]]:
        proc = inds[i].process
        lo[i], hi[i] = PROCESS_SPECS[proc.kind].grid(proc, i, a, n_steps, fat, jump_span, lo, hi)
    span = np.maximum(hi - lo, 1e-6)
    lo = lo - 1e-9 * np.maximum(1.0, np.abs(lo))  # keep the start value strictly inside the grid
    return lo, span / (SKETCH_BINS - 2)
