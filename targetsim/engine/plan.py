"""Turn a validated :class:`Scenario` into the plain arrays the kernels consume."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from targetsim.model.scenario import Scenario

COMPARATOR_CODES = {">=": 0, ">": 1, "<=": 2, "<": 3}
KIND_CODES = {"level": 0, "cagr": 1}

# Quantile sketch: bins per (indicator, year) cell, and how many s.d. of ln X the grid spans
# either side of its centre. 10 s.d. leaves < 1e-20 of the mass outside for a Gaussian.
SKETCH_BINS = 4096
SKETCH_SPAN_SD = 10.0


@dataclass(frozen=True)
class SimulationPlan:
    """Everything a kernel needs, as arrays; steps are years after ``base_year`` (step 0)."""

    n_steps: int
    log_start: np.ndarray
    growth_mean: np.ndarray
    growth_sd: np.ndarray
    volatility: np.ndarray
    chol: np.ndarray
    correlated: bool
    target_indicator: np.ndarray
    target_kind: np.ndarray
    target_comparator: np.ndarray
    target_step: np.ndarray
    target_log_threshold: np.ndarray
    sketch_lo: np.ndarray
    sketch_width: np.ndarray
    n_bins: int

    @property
    def n_indicators(self) -> int:
        return int(self.log_start.shape[0])

    @property
    def n_targets(self) -> int:
        return int(self.target_indicator.shape[0])


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


def build_plan(scenario: Scenario) -> SimulationPlan:
    """Arrays for ``scenario``; starts must have been resolved (see ``io.scenarios``)."""
    inds = scenario.indicators
    n_steps = scenario.horizon - scenario.base_year
    index = {ind.id: i for i, ind in enumerate(inds)}
    starts = np.array([ind.start.value for ind in inds], dtype=np.float64)
    if np.any(~np.isfinite(starts)) or np.any(starts <= 0):
        raise ValueError("start values must be resolved and positive before planning")
    growth_mean = np.array([ind.process.growth.mean for ind in inds], dtype=np.float64)
    growth_sd = np.array([ind.process.growth.sd for ind in inds], dtype=np.float64)
    volatility = np.array([ind.process.volatility for ind in inds], dtype=np.float64)
    matrix = correlation_matrix(scenario)
    correlated = bool(scenario.correlations)
    chol = psd_factor(matrix) if correlated else np.eye(len(inds))

    targets = scenario.targets
    t_ind = np.array([index[t.indicator] for t in targets], dtype=np.int64)
    t_kind = np.array([KIND_CODES[t.kind] for t in targets], dtype=np.int64)
    t_cmp = np.array([COMPARATOR_CODES[t.comparator] for t in targets], dtype=np.int64)
    t_step = np.array([t.by - scenario.base_year for t in targets], dtype=np.int64)
    t_log = np.empty(len(targets))
    for k, t in enumerate(targets):
        if t.kind == "cagr":
            t_log[k] = math.log1p(t.threshold)
        else:
            t_log[k] = math.log(t.threshold) if t.threshold > 0 else -math.inf

    # Sketch grid per indicator: centre ln X0 + t·ln(1+mean), spread from the yearly shocks and
    # the growth uncertainty (delta method), widened to SKETCH_SPAN_SD s.d. at every step.
    log_start = np.log(starts)
    drift = np.log1p(growth_mean)
    drift_sd = growth_sd / (1.0 + growth_mean)
    steps = np.arange(n_steps + 1)
    spread = np.sqrt(np.outer(volatility**2, steps) + np.outer(drift_sd**2, steps**2))
    centre = log_start[:, None] + np.outer(drift, steps)
    lo = (centre - SKETCH_SPAN_SD * spread).min(axis=1)
    hi = (centre + SKETCH_SPAN_SD * spread).max(axis=1)
    span = np.maximum(hi - lo, 1e-6)
    lo = lo - 1e-9 * np.maximum(1.0, np.abs(lo))  # keep the start value strictly inside the grid
    width = span / (SKETCH_BINS - 2)

    return SimulationPlan(
        n_steps=n_steps, log_start=log_start, growth_mean=growth_mean, growth_sd=growth_sd,
        volatility=volatility, chol=np.ascontiguousarray(chol), correlated=correlated,
        target_indicator=t_ind, target_kind=t_kind, target_comparator=t_cmp, target_step=t_step,
        target_log_threshold=t_log, sketch_lo=lo, sketch_width=width, n_bins=SKETCH_BINS,
    )
