"""Floating-point range of a scenario: refused before anything is simulated. No I/O.

A level driven by log growth (a kind whose spec has an ``envelope``: ``lognormal``, ``ar1_growth``,
``buildout``) must keep the envelope of its expected log path ± :data:`ENVELOPE_SD` s.d. (yearly
shocks and growth uncertainty, from the start's extreme plausible values when it is uncertain; with
an estimated volatility, ± the Student-t quantile of :data:`ENVELOPE_T_TAIL` s.d., if that is wider)
within ±:data:`LOG_LIMIT` (1e±250): beyond that, sums over years and means over up to 1e10 paths overflow to infinity, or values underflow to zero
and a probability becomes silently wrong. A start value in the wrong unit, a percentage typed as a
growth rate or a very long horizon is caught here, at load time, with the indicator named;
:func:`targetsim.api.run` checks again for scenarios built in code.
"""

from __future__ import annotations

import math

from targetsim.model.processes import PROCESS_SPECS, start_log_range, student_t_isf
from targetsim.model.scenario import Indicator, Scenario

__all__ = ["LOG_LIMIT", "ENVELOPE_SD", "ENVELOPE_T_TAIL", "numeric_range_problem", "zero_denominator_problem"]

# No simulated level may approach float64's limits: the 8-s.d. envelope of ln X must stay
# within ±LOG_LIMIT (1e±250), which leaves room for sums over years and over 1e10 paths.
LOG_LIMIT = 250 * math.log(10)
ENVELOPE_SD = 8.0
# With an estimated volatility (ν degrees of freedom) the deviation of ln X from its expected path is,
# to first order, its Gaussian s.d. times a Student-t T_ν (the yearly shocks and the growth's deviation
# share the path's factor w, and w·Z is T_ν): no number of s.d. holds all but 1e-15 of it without
# refusing every small ν (ν = 2 would need 2.8e7 s.d.). The envelope is then the t's quantile of
# ENVELOPE_T_TAIL (a path in a billion) s.d. when that is wider than ENVELOPE_SD: ν = 2, 22,361 s.d.;
# ν = 3, 1,033; ν = 10, 20. A run of more paths may meet one beyond it, which overflows; the run then
# refuses its non-finite values with the indicator named (targetsim.api.check_statistics).
ENVELOPE_T_TAIL = 1e-9


def envelope_sd(df: float) -> float:
    """How many s.d. of ln X the envelope spans: ENVELOPE_SD, or the Student-t tail quantile of
    ENVELOPE_T_TAIL for a volatility estimated with ``df`` > 0 degrees of freedom, if wider."""
    return max(ENVELOPE_SD, student_t_isf(ENVELOPE_T_TAIL, df)) if df > 0 else ENVELOPE_SD


def _log_envelope(scenario: Scenario, ind: Indicator) -> tuple[float, float, int, int]:
    """(highest, lowest) of ln X ± :func:`envelope_sd` s.d. over the years, and the years they occur,
    for a level driven by log growth (its kind's spec gives the envelope's parameters)."""
    growth, vol, phi, r0, projects_hi, df = PROCESS_SPECS[ind.process.kind].envelope(ind.process)
    n_sd = envelope_sd(df)
    n_steps = scenario.horizon - scenario.base_year
    m, drift_sd = growth.log_mean, growth.log_sd
    log_x = math.log(ind.start.value)
    hi, lo, hi_t, lo_t = log_x, log_x, 0, 0
    # an uncertain start: its extreme plausible values (its median's path moved by their distance)
    up, down = 0.0, 0.0
    if ind.start.uncertain:
        low_start, high_start = start_log_range(ind.start, n_sd)
        up, down = high_start - log_x, low_start - log_x
        hi, lo = high_start, low_start
    r = m if r0 is None else r0
    # the variance of ln X from the shocks after t years: a shock in year j moves the growth of
    # years j..t by φ^0..φ^(t−j), so it adds (Σ_{k≤t−j} φ^k)² σ² (σ² t without persistence); the
    # terms for j = t..1 are the successive values of `reach`
    shock_var, reach = 0.0, 0.0
    for t in range(1, n_steps + 1):
        if r0 is not None:
            r = m + phi * (r - m)
        log_x += r
        reach = 1.0 + phi * reach  # Σ_{k<t} φ^k: how far year 1's shock has moved ln X by year t
        shock_var += (vol * reach) ** 2
        spread = n_sd * math.sqrt(shock_var + drift_sd**2 * t * t)
        if ind.start.uncertain:
            if log_x + up + spread > hi:
                hi, hi_t = log_x + up + spread, t
            if log_x + down - spread < lo:
                lo, lo_t = log_x + down - spread, t
            continue
        if log_x + spread > hi:
            hi, hi_t = log_x + spread, t
        if log_x - spread < lo:
            lo, lo_t = log_x - spread, t
    return max(hi, projects_hi), lo, hi_t, lo_t


def _describe_growth(ind: Indicator) -> str:
    growth, vol, _, _, _, df = PROCESS_SPECS[ind.process.kind].envelope(ind.process)
    sd = f" ± {growth.sd:g}" if growth.sd else ""
    estimated = f" (estimated with {df:g} df: Student-t tails)" if df > 0 else ""
    what = f"log growth {growth.mean:g}{sd}/yr" if growth.log else f"growth {growth.mean:g}{sd}/yr"
    return f"{what}, volatility {vol:g}{estimated}"


def numeric_range_problem(scenario: Scenario) -> tuple[str, str] | None:
    """The first indicator whose plausible range overflows (or underflows) floating point, as
    ``(indicator id, message)``; None when every indicator stays in range. Start values must be
    resolved (an indicator whose start is not known yet is skipped)."""
    for ind in scenario.indicators:
        if PROCESS_SPECS[ind.process.kind].envelope(ind.process) is None or ind.start is None \
                or ind.start.value is None or not ind.start.value > 0:
            continue
        hi, lo, hi_t, lo_t = _log_envelope(scenario, ind)
        if hi > LOG_LIMIT or lo < -LOG_LIMIT:
            up = hi > LOG_LIMIT
            year = scenario.base_year + (hi_t if up else lo_t)
            where = f"1e{(hi if up else lo) / math.log(10):.0f}"
            limit = "1e250" if up else "1e-250"
            df = PROCESS_SPECS[ind.process.kind].envelope(ind.process)[5]
            n_sd = envelope_sd(df)
            width = f"{n_sd:,.0f}" if n_sd >= 100 else f"{n_sd:.3g}"
            volatility = "the volatility, its degrees of freedom" if df > 0 else "the volatility"
            return ind.id, (
                f"{ind.id} could reach about {where} by {year} (start {ind.start.value:g}, {_describe_growth(ind)}, "
                f"{scenario.horizon - scenario.base_year} years; the expected path ± {width} s.d.), "
                f"{'beyond' if up else 'below'} {limit}, where floating-point sums and means "
                f"{'overflow' if up else 'underflow'}: check the start value's unit, the growth rate "
                f"(a fraction: 0.3 = 30 %/yr), {volatility} and the horizon")
    return None


# The largest |z| the kernel's normal sampler can return, rounded up: the ziggurat's base R = 3.654 plus its
# exponential tail's longest draw, −ln(2⁻⁵³)/R ≈ 10.05 (targetsim.kernels.rng).
NORMAL_REACH_SD = 14.0


def _can_be_zero(scenario: Scenario, ind: Indicator) -> bool:
    """Whether the indicator is 0 on some paths: a count that starts at 0 (it is 0 in the base
    year) or whose uncertain start can draw 0 (a uniform range from 0; a log-normal range rounded to
    whole numbers reaches 0 with positive probability), a sum of such, or a ratio whose numerator is.
    Every other process stays positive."""
    proc = ind.process
    if proc.kind in ("count", "scheduled"):
        start = ind.start
        if start is None:
            return False
        law = getattr(start, "law", "known")
        if law == "uniform":
            return start.low == 0
        if law == "lognormal":
            # a draw below 0.5 rounds to 0: reachable when ln 0.5 lies within the reach of the kernel's
            # normal draws (its ziggurat's tail ends near 13.7 s.d.)
            centre = 0.5 * (math.log(start.low) + math.log(start.high))
            sd = (math.log(start.high) - math.log(start.low)) / (2.0 * 1.6448536269514722)
            return centre - math.log(0.5) <= NORMAL_REACH_SD * sd
        return start.value == 0
    if proc.kind == "sum":
        return all(_can_be_zero(scenario, scenario.indicator_by_id[t]) for t in proc.terms)
    if proc.kind == "ratio":
        return _can_be_zero(scenario, scenario.indicator_by_id[proc.numerator])
    return False


def zero_denominator_problem(scenario: Scenario) -> tuple[str, str] | None:
    """The first ratio whose denominator is 0 on some paths (the ratio is undefined there), as
    ``(ratio id, message)``; None when every denominator stays positive. Start values must be
    resolved."""
    for ind in scenario.indicators:
        if ind.process.kind != "ratio":
            continue
        den = scenario.indicator_by_id[ind.process.denominator]
        if _can_be_zero(scenario, den):
            return ind.id, (
                f"the denominator {den.id} ({den.process.kind}) is 0 on some paths (it starts at 0, or its "
                f"uncertain start can draw 0), where "
                f"{ind.id} = {ind.process.numerator} / {den.id} is undefined: give {den.id} its existing "
                "positive start (a stock rarely starts from nothing), or target the numerator itself")
    return None
