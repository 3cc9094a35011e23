"""Partial pooling: related series borrow strength from each other.

Each series is fitted as the random walk of its scale (``lognormal`` for levels, ``logit_share``
for shares). Its volatility estimate ``s_i`` with ``ν_i`` degrees of freedom gives
``y_i = ln s_i²`` with sampling variance about ``2/ν_i``; the group model is
``ln σ_i² ~ Normal(θ, τ²)``. statsmodels' random-effects meta-analysis (Paule–Mandel) estimates
``θ`` and ``τ²`` — so the amount of shrinkage is estimated, not chosen — and each series' volatility
becomes its posterior: ``ln σ_i² | y ~ Normal(m_i, v_i)`` with
``m_i = (θ/τ² + y_i ν_i/2) / (1/τ² + ν_i/2)``, ``v_i = 1 / (1/τ² + ν_i/2)``; its degrees of freedom
become ``2/v_i`` (the df whose ``ln s²`` has that variance), more than ``ν_i`` when the group is
informative. A series whose volatility could not be estimated (a single change) takes the group's
``θ`` and ``τ²`` alone. With ``growth=True`` the yearly log growths (or logit drifts) are shrunk the
same way (``μ_i`` with variance ``se_i²``). ``shrinkage`` reports, per series, the weight the group
gets (0: none, 1: all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from targetsim.errors import FitError
from targetsim.estimate.fitting import MIN_DF, SHARE_UNITS, Fit, _complete_with_prior, _r, fit

# A pooled df is capped: beyond it the volatility is as good as known (and the t as good as normal).
MAX_POOLED_DF = 1000.0


@dataclass(frozen=True)
class Series:
    """One history to pool: the arguments of :func:`~targetsim.estimate.fitting.fit` for it."""

    indicator: str
    years: Sequence[int]
    values: Sequence[float]
    unit: str | None = None
    weights: Sequence[float] | None = None
    breaks: Sequence[int] = ()
    where: Sequence[str] | None = None
    origin: str | None = None
    excluded: Sequence[str] = ()


@dataclass(frozen=True)
class Pooled:
    """The pooled fits (one per series, in order) and what the pooling estimated."""

    fits: tuple[Fit, ...]
    volatility_centre: float      # exp(θ/2): the group's typical volatility
    volatility_spread: float      # τ: s.d. of ln σ² across the group
    volatility_shrinkage: tuple[float, ...]
    growth_centre: float | None = None
    growth_spread: float | None = None
    growth_shrinkage: tuple[float, ...] | None = None

    def summary(self) -> str:
        lines = [f"pooled volatility: group {self.volatility_centre:.4g} a year (τ on ln σ² = "
                 f"{self.volatility_spread:.3g})"]
        if self.growth_centre is not None:
            lines.append(f"pooled growth: group {self.growth_centre:.4g} a year on the process's scale "
                         f"(τ = {self.growth_spread:.3g})")
        for i, f in enumerate(self.fits):
            part = f"  {f.indicator}: volatility shrunk {self.volatility_shrinkage[i]:.0%} toward the group"
            if self.growth_shrinkage is not None:
                part += f", growth {self.growth_shrinkage[i]:.0%}"
            lines.append(part)
        return "\n".join(lines)


def pool(series: Sequence[Series], *, growth: bool = False) -> Pooled:
    """Fit every series, then shrink their volatilities (and, with ``growth``, their growths)
    toward the group. All series must be of one scale (all levels, or all shares)."""
    from statsmodels.stats.meta_analysis import combine_effects

    if len(series) < 2:
        raise FitError("pooling needs at least two series (give --indicator more than once)")
    kinds = {}
    fits = []
    for s in series:
        sort_kind = "logit_share" if _is_share(s.unit) else "lognormal"
        kinds[s.indicator] = sort_kind
        fits.append(fit(s.years, s.values, sort_kind, unit=s.unit, weights=s.weights, breaks=s.breaks,
                        indicator=s.indicator, where=s.where, origin=s.origin, excluded=s.excluded))
    if len(set(kinds.values())) > 1:
        shares = [k for k, v in kinds.items() if v == "logit_share"]
        raise FitError(f"cannot pool shares ({', '.join(shares)}) with levels: their volatilities are on "
                       "different scales; pool them in separate calls")
    # each series' own volatility and df, before any prior (a series with none is uninformative)
    own = np.array([f.data_volatility for f in fits])
    mask = own[:, 1] > 0
    if mask.sum() < 2:
        raise FitError("pooling needs at least two series with enough observed changes to estimate a volatility "
                       "(three or more points each)")
    y = np.where(mask, 2.0 * np.log(np.maximum(np.nan_to_num(own[:, 0]), 1e-12)), 0.0)
    var_y = np.where(mask, 2.0 / np.maximum(own[:, 1], 1e-12), np.inf)
    meta = combine_effects(y[mask], var_y[mask], method_re="pm")
    theta, tau2 = float(meta.mean_effect_re), max(float(meta.tau2), 0.0)
    post_mean, post_var, shrink = _shrink(y, var_y, mask, theta, tau2)
    new_vol = np.exp(post_mean / 2.0)
    new_df = np.minimum(2.0 / post_var, MAX_POOLED_DF)
    prior_notes: list[list[str]] = [[] for _ in fits]
    assumptions: list[str | None] = [None] * len(fits)
    for i in range(len(fits)):
        if new_df[i] < MIN_DF:  # the group is not informative enough either: complete with the prior
            scale = "log" if fits[i].kind == "lognormal" else "logit"
            vol, df, prior_notes[i], assumptions[i] = _complete_with_prior(new_vol[i] ** 2, new_df[i], scale)
            new_vol[i], new_df[i] = vol, df

    g_centre = g_spread = None
    g_shrink = None
    mu = np.array([_growth_of(f) for f in fits])
    se = np.array([_growth_se(f) for f in fits])
    # the growth's s.e. follows the volatility: s/√(Σk) becomes σ_pooled/√(Σk)
    se = se * new_vol / np.array([f.estimates["volatility"] for f in fits])
    if growth:
        gm = combine_effects(mu, se**2, method_re="pm")
        g_theta, g_tau2 = float(gm.mean_effect_re), max(float(gm.tau2), 0.0)
        mu, g_var, g_shrink_arr = _shrink(mu, se**2, np.ones(len(fits), bool), g_theta, g_tau2)
        se = np.sqrt(g_var)
        g_centre, g_spread, g_shrink = g_theta, math.sqrt(g_tau2), tuple(float(x) for x in g_shrink_arr)

    pooled_fits = []
    names = ", ".join(s.indicator for s in series)
    for i, f in enumerate(fits):
        note = (f"pooled with {names}: volatility {f.estimates['volatility']:.4g} ({f.df:g} df) → "
                f"{new_vol[i]:.4g} ({new_df[i]:.3g} df)")
        if growth:
            note += f"; growth {_growth_of(f):.4g} → {mu[i]:.4g} on the process's scale"
        process = _process(f.kind, mu[i], se[i], new_vol[i], new_df[i])
        estimates = {**f.estimates, "volatility": float(new_vol[i])}
        std_errors = dict(f.std_errors)
        if f.kind == "lognormal":
            estimates.update(log_growth=float(mu[i]), growth=math.expm1(mu[i]))
            std_errors.update(log_growth=float(se[i]), growth=math.exp(mu[i]) * float(se[i]))
        else:
            estimates["drift"] = float(mu[i])
            std_errors["drift"] = float(se[i])
        source = f.source + f"; partially pooled with {names} (targetsim fit, random-effects on ln σ²"
        source += " and growth)" if growth else ")"
        pooled_fits.append(replace(f, process=process, estimates=estimates, std_errors=std_errors,
                                   df=float(new_df[i]), source=source, notes=(*_own_notes(f), note, *prior_notes[i]),
                                   assumption=assumptions[i]))
    return Pooled(tuple(pooled_fits), math.exp(theta / 2.0), math.sqrt(tau2), tuple(float(x) for x in shrink),
                  g_centre, g_spread, g_shrink)


def _shrink(y: np.ndarray, var: np.ndarray, informative: np.ndarray, theta: float,
            tau2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal–normal posterior of each ``y_i`` toward ``θ`` (τ² = 0: all the way)."""
    if tau2 <= 0.0:
        return np.full_like(y, theta), np.full_like(y, 1.0 / np.sum(1.0 / var[informative])), np.ones_like(y)
    prec = np.where(informative, 1.0 / np.where(informative, var, 1.0), 0.0)
    post_var = 1.0 / (1.0 / tau2 + prec)
    post_mean = post_var * (theta / tau2 + prec * np.where(informative, y, 0.0))
    return post_mean, post_var, post_var / tau2


def _own_notes(f: Fit) -> tuple[str, ...]:
    """The fit's notes, less its prior completion (pooling replaces it)."""
    return tuple(n for n in f.notes if "completed to" not in n)


def _is_share(unit: str | None) -> bool:
    return unit in SHARE_UNITS


def _growth_of(f: Fit) -> float:
    return f.estimates["log_growth"] if f.kind == "lognormal" else f.estimates["drift"]


def _growth_se(f: Fit) -> float:
    return f.std_errors["log_growth"] if f.kind == "lognormal" else f.std_errors["drift"]


def _process(kind: str, mu: float, se: float, vol: float, df: float) -> dict[str, Any]:
    volatility = {"estimate": _r(vol), "df": _r(df)}
    if kind == "lognormal":
        return {"kind": kind, "growth": {"log_mean": _r(mu), "log_sd": _r(se)}, "volatility": volatility}
    return {"kind": kind, "drift": {"mean": _r(mu), "sd": _r(se)}, "volatility": volatility}
