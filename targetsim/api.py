"""The small public Python API; the CLI is a thin shell over it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from targetsim.engine.simulate import DEFAULT_BLOCK_SIZE, ProgressCallback
from targetsim.io.scenarios import load_scenario
from targetsim.model.scenario import Scenario

if TYPE_CHECKING:
    import xarray as xr

# The largest seed (SeedSequence takes any non-negative int; the scenario format allows int64).
MAX_SEED = 2**63 - 1
# No simulated level may approach float64's limits: the 8-s.d. envelope of ln X must stay
# within ±LOG_LIMIT (1e±250), which leaves room for sums over years and over 1e10 paths.
LOG_LIMIT = 250 * math.log(10)
ENVELOPE_SD = 8.0


def run(scenario: Scenario | str | Path, *, paths: int | None = None, seed: int | None = None,
        threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE,
        progress: ProgressCallback | None = None) -> "xr.Dataset":
    """Simulate a scenario (an object or a YAML path) and return the results dataset.

    ``paths`` and ``seed`` override the scenario's; ``threads`` defaults to all cores.
    The same scenario and seed give bit-identical numbers for any ``threads`` and
    ``block_size`` (a multiple of 256).

    Before simulating, the run is refused (:class:`~targetsim.errors.TargetsimError`) when
    an indicator's plausible range would overflow floating point, or when its estimated peak
    memory exceeds the memory available (see :mod:`targetsim.engine.resources`). After it,
    results that would be silently wrong are refused: non-finite simulated values, no weight
    left after observations, or a NaN where the output contract promises a number.
    """
    from targetsim import __version__
    from targetsim.engine.plan import build_plan
    from targetsim.engine.resources import check_memory, estimate_for_plan
    from targetsim.engine.results import build_dataset
    from targetsim.engine.simulate import simulate
    from targetsim.errors import TargetsimError
    from targetsim.model.parse import MAX_PATHS

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    n_paths = scenario.paths if paths is None else paths
    use_seed = scenario.seed if seed is None else seed
    if n_paths < 1:
        raise TargetsimError(f"paths must be at least 1, got {n_paths}")
    if n_paths > MAX_PATHS:
        raise TargetsimError(f"paths must be at most {MAX_PATHS:,}, got {n_paths:,}")
    if use_seed < 0 or use_seed > MAX_SEED:
        raise TargetsimError(f"seed must lie between 0 and {MAX_SEED}, got {use_seed}")
    check_numeric_range(scenario)
    plan = build_plan(scenario)
    check_memory(estimate_for_plan(plan, paths=n_paths, threads=threads, block_size=block_size,
                                   n_quantiles=len(scenario.quantiles)))
    stats = simulate(plan, paths=n_paths, seed=use_seed, threads=threads, block_size=block_size,
                     progress=progress)
    check_statistics(scenario, stats)
    ds = build_dataset(scenario, plan, stats, seed=use_seed, version=__version__)
    check_dataset(scenario, ds)
    return ds


def check_statistics(scenario: Scenario, stats) -> None:
    """Refuse results that would be silently wrong: non-finite values, or no weight left."""
    from targetsim.errors import TargetsimError

    bad = [(ind.id, int(n)) for ind, n in zip(scenario.indicators, stats.nonfinite) if n]
    if bad:
        detail = ", ".join(f"{name} on {n:,} paths" for name, n in bad)
        raise TargetsimError(f"non-finite values (overflow, or a zero denominator) in {detail}; "
                             "check growth rates, horizon and ratio denominators")
    if stats.weight_total == 0:
        raise TargetsimError("the observations are impossible under the model: every path has likelihood 0 "
                             "(e.g. an observed count below the start, or an exact observation of a "
                             "process with volatility 0)")


def _log_envelope(scenario: Scenario, ind) -> tuple[float, float, int, int]:
    """(highest, lowest) of ln X ± ENVELOPE_SD s.d. over the years, and the years they occur, for
    a level driven by log growth (``lognormal``, ``ar1_growth``, ``buildout``)."""
    proc = ind.process
    n_steps = scenario.horizon - scenario.base_year
    if proc.kind == "buildout":
        growth, vol, phi, r0 = proc.organic.growth, proc.organic.volatility, 0.0, None
    elif proc.kind == "ar1_growth":
        growth, vol, phi = proc.long_run_growth, proc.volatility, proc.persistence
        r0 = math.log1p(proc.initial_growth) if proc.initial_growth is not None else None
    else:
        growth, vol, phi, r0 = proc.growth, proc.volatility, 0.0, None
    m = math.log1p(growth.mean)
    drift_sd = growth.sd / (1.0 + growth.mean)
    shock_sd = vol / max(1e-3, 1.0 - abs(phi))
    log_x = math.log(ind.start.value)
    hi, lo, hi_t, lo_t = log_x, log_x, 0, 0
    r = m if r0 is None else r0
    for t in range(1, n_steps + 1):
        if r0 is not None:
            r = m + phi * (r - m)
        log_x += r
        spread = ENVELOPE_SD * math.sqrt(shock_sd**2 * t + drift_sd**2 * t * t)
        if log_x + spread > hi:
            hi, hi_t = log_x + spread, t
        if log_x - spread < lo:
            lo, lo_t = log_x - spread, t
    if proc.kind == "buildout" and proc.projects:
        hi = max(hi, math.log(sum(p.size for p in proc.projects)) + math.log(2.0))
    return hi, lo, hi_t, lo_t


def check_numeric_range(scenario: Scenario) -> None:
    """Refuse, before simulating, an indicator whose plausible range overflows (or underflows)
    floating point: a start value in the wrong unit, a percentage typed as a growth rate, or a
    very long horizon. The range is the expected log path ± 8 s.d. (yearly shocks and growth
    uncertainty); it must stay within 1e-250 … 1e250."""
    from targetsim.errors import TargetsimError

    for ind in scenario.indicators:
        if ind.process.kind not in ("lognormal", "ar1_growth", "buildout") or ind.start is None \
                or ind.start.value is None or not ind.start.value > 0:
            continue
        hi, lo, hi_t, lo_t = _log_envelope(scenario, ind)
        if hi > LOG_LIMIT or lo < -LOG_LIMIT:
            up = hi > LOG_LIMIT
            year = scenario.base_year + (hi_t if up else lo_t)
            where = f"1e{(hi if up else lo) / math.log(10):.0f}"
            limit = "1e250" if up else "1e-250"
            raise TargetsimError(
                f"{ind.id} could reach about {where} by {year} (start {ind.start.value:g}, {_describe_growth(ind)}, "
                f"{scenario.horizon - scenario.base_year} years; the expected path ± {ENVELOPE_SD:g} s.d.), "
                f"{'beyond' if up else 'below'} {limit}, where floating-point sums and means "
                f"{'overflow' if up else 'underflow'}: check the start value's unit, the growth rate "
                "(a fraction: 0.3 = 30 %/yr), the volatility and the horizon")


def _describe_growth(ind) -> str:
    proc = ind.process
    growth = proc.organic.growth if proc.kind == "buildout" else (
        proc.long_run_growth if proc.kind == "ar1_growth" else proc.growth)
    vol = proc.organic.volatility if proc.kind == "buildout" else proc.volatility
    sd = f" ± {growth.sd:g}" if growth.sd else ""
    return f"growth {growth.mean:g}{sd}/yr, volatility {vol:g}"


# Variables that must be finite numbers everywhere, except the documented NaNs handled below.
_FINITE_TARGET_VARIABLES = ("attainment_probability", "attainment_probability_lower",
                            "attainment_probability_upper", "attainment_probability_standard_error")
_PROBABILITY_VARIABLES = (*_FINITE_TARGET_VARIABLES[:3], "joint_attainment_probability",
                          "joint_attainment_probability_lower", "joint_attainment_probability_upper",
                          "at_least_k_attainment_probability", "joint_failure_probability",
                          "attainment_by_year")
_PERIOD_FREE_KINDS = ("level", "share", "count_stock", "first_passage")


def check_dataset(scenario: Scenario, ds: "xr.Dataset") -> None:
    """Refuse a result with a NaN (or infinity, or a probability outside [0, 1]) where the output
    contract promises a number. Documented NaNs are allowed: ``attainment_by_year`` in the base
    year for rules that need a period, ``failure_dependence`` on its diagonal or where a target
    is never missed (``required_growth`` and ``baseline_growth`` are not checked)."""
    import numpy as np

    from targetsim.errors import TargetsimError

    targets = [t.id for t in scenario.targets]
    indicators = [ind.id for ind in scenario.indicators]
    by_target = {t.id: t for t in scenario.targets}

    def fail(name: str, what: str, where: str, cause: str):
        raise TargetsimError(f"the result '{name}' is {what} for {where}; likely cause: {cause}")

    def target_where(k: int) -> str:
        return f"target {targets[k]!r} (indicator {by_target[targets[k]].indicator!r})"

    prob_cause = "no usable paths (every path non-finite, or weighted out by the observations)"
    for name in (*_FINITE_TARGET_VARIABLES, "joint_attainment_probability", "joint_attainment_probability_lower",
                 "joint_attainment_probability_upper", "at_least_k_attainment_probability",
                 "joint_failure_probability", "attainment_by_year", "failure_dependence", "indicator_mean"):
        if name not in ds:
            continue
        values = np.asarray(ds[name].values, dtype=np.float64)[0]
        allowed = np.zeros(values.shape, dtype=bool)
        if name == "attainment_by_year":
            for k, tid in enumerate(targets):
                if by_target[tid].kind not in _PERIOD_FREE_KINDS:
                    allowed[k, 0] = True
        elif name == "failure_dependence":
            missed = np.asarray(ds["joint_failure_probability"].values, dtype=np.float64)[0].diagonal()
            allowed |= np.eye(len(targets), dtype=bool)
            allowed |= (missed == 0)[:, None] | (missed == 0)[None, :]
        bad = ~np.isfinite(values) & ~allowed
        if name in _PROBABILITY_VARIABLES:
            bad |= np.isfinite(values) & ((values < -1e-12) | (values > 1 + 1e-12))
        if not bad.any():
            continue
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = values[idx]
        what = "NaN" if np.isnan(value) else ("infinite" if not np.isfinite(value) else f"{value!r}, not a probability")
        if name == "indicator_mean":
            year = scenario.base_year + idx[1]
            fail(name, what, f"indicator {indicators[idx[0]]!r} in {year}",
                 "the simulated values are too large to average (overflow); check the start value's unit, "
                 "the growth rate and the horizon")
        if name == "at_least_k_attainment_probability":
            fail(name, what, f"k = {idx[0]}", prob_cause)
        if name.startswith("joint_attainment"):
            fail(name, what, "all targets together", prob_cause)
        if name in ("joint_failure_probability", "failure_dependence"):
            fail(name, what, f"targets {targets[idx[0]]!r} and {targets[idx[1]]!r}", prob_cause)
        if name == "attainment_by_year":
            fail(name, what, f"{target_where(idx[0])} in {scenario.base_year + idx[1]}", prob_cause)
        fail(name, what, target_where(idx[0]), prob_cause)
