"""The small public Python API; the CLI is a thin shell over it."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from targetsim.engine.simulate import ProgressCallback
from targetsim.errors import TargetsimWarning
from targetsim.io.scenarios import load_scenario
from targetsim.kernels.geometry import DEFAULT_BLOCK_SIZE
from targetsim.model.numeric import ENVELOPE_SD, LOG_LIMIT  # noqa: F401 - re-exported
from targetsim.model.scenario import Scenario

if TYPE_CHECKING:
    import xarray as xr

    from targetsim.engine.resources import RunEstimate

# The largest seed (SeedSequence takes any non-negative int; the scenario format allows int64).
MAX_SEED = 2**63 - 1


def run(scenario: Scenario | str | Path, *, paths: int | None = None, seed: int | None = None,
        threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE,
        progress: ProgressCallback | None = None, checked: "RunEstimate | None" = None,
        keep_paths: int = 0, precision: float | None = None, max_paths: int | None = None,
        scheduler: str | None = None, workers: int | None = None, client: Any = None,
        task_paths: int | None = None) -> "xr.Dataset":
    """Simulate a scenario (an object or a YAML path) and return the results dataset.

    ``paths`` and ``seed`` override the scenario's; ``threads`` defaults to all cores.
    The same scenario and seed give bit-identical numbers for any ``threads`` and
    ``block_size`` (a multiple of 256), and for any Dask cluster. ``checked``: the estimate
    :func:`preflight` returned for this scenario and these settings, when the caller ran it already (the
    CLI does, before it announces a long run); the run then does not check again.

    ``keep_paths``: store the outcomes and drawn inputs of paths ``0 .. keep_paths - 1`` in the dataset
    (the ``kept_*`` variables; memory grows with ``keep_paths`` only). ``precision``: instead of ``paths``,
    add paths (2^14, doubled, ...) until every target's standard error is at most ``precision``, or
    ``max_paths`` (default 10^8) is reached, which a warning and the dataset's attributes
    (``precision_target``, ``precision_reached``, ``precision_met``) say. ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``), ``workers`` (a local cluster of that many processes) or ``client`` (a
    ``distributed.Client``): run the paths as Dask tasks of ``task_paths`` paths each (default: chosen from
    the measured per-task overhead, :func:`targetsim.distributed.paths_per_task`).

    Before simulating, the run is refused (:class:`~targetsim.errors.TargetsimError`) when
    an indicator's plausible range would overflow floating point, or when its estimated peak
    memory exceeds the memory available (see :mod:`targetsim.engine.resources`). After it,
    results that would be silently wrong are refused: non-finite simulated values, no weight
    left after observations, or a NaN where the output contract promises a number.
    """
    from targetsim import __version__
    from targetsim.engine.plan import build_plan
    from targetsim.engine.results import build_dataset
    from targetsim.engine.simulate import DEFAULT_MAX_PATHS, simulate, simulate_to_precision
    from targetsim.errors import TargetsimError

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if precision is not None and paths is not None:
        raise TargetsimError("give either --paths or --precision (which chooses the paths), not both")
    if max_paths is not None and precision is None:
        raise TargetsimError("--max-paths caps a run to a precision: give --precision too")
    n_paths = scenario.paths if paths is None else paths
    cap = DEFAULT_MAX_PATHS if max_paths is None else max_paths
    use_seed = scenario.seed if seed is None else seed
    if checked is None:
        preflight(scenario, paths=cap if precision is not None else n_paths, seed=use_seed, threads=threads,
                  block_size=block_size, keep_paths=keep_paths,
                  distributed=not (scheduler is None and workers is None and client is None))
    plan = build_plan(scenario)  # memory was checked by preflight, from the scenario's dimensions
    with _executor(scheduler, workers, client, task_paths) as executor:
        if precision is not None:
            stats = simulate_to_precision(plan, precision=precision, max_paths=cap, seed=use_seed, threads=threads,
                                          block_size=block_size, progress=progress, keep_paths=keep_paths,
                                          executor=executor)
        else:
            stats = simulate(plan, paths=n_paths, seed=use_seed, threads=threads, block_size=block_size,
                             progress=progress, keep_paths=keep_paths, executor=executor)
    check_statistics(scenario, stats, seed=use_seed, threads=threads)
    ds = build_dataset(scenario, plan, stats, seed=use_seed, version=__version__)
    check_dataset(scenario, ds)
    notes = observation_warnings(scenario, stats, seed=use_seed, threads=threads)
    if stats.precision is not None and not stats.precision.met:
        notes.append(ds.attrs["precision_note"] + "; raise --max-paths or ask for a larger standard error")
    for note in notes:
        warnings.warn(note, TargetsimWarning, stacklevel=2)
    ds.attrs["warnings"] = "\n".join(notes)
    return ds


def _executor(scheduler: str | None, workers: int | None, client: Any, task_paths: int | None):
    """Where the paths run: here (no executor), or as Dask tasks (:mod:`targetsim.distributed`, imported
    only then: the ``dask`` extra)."""
    if scheduler is None and workers is None and client is None:
        if task_paths is not None:
            from targetsim.errors import TargetsimError

            raise TargetsimError("task_paths applies to a distributed run: give a scheduler, workers or a client")
        return nullcontext(None)
    from targetsim.distributed import executor_for

    return executor_for(scheduler=scheduler, workers=workers, client=client, task_paths=task_paths)


def _minimum_effective_sample_size(paths: int) -> float:
    """Below this effective sample size the observations are called extreme: 1 % of the paths or
    100 (a tenth of the paths in small runs), whichever is larger."""
    return max(0.01 * paths, min(100.0, 0.1 * paths))


def observation_warnings(scenario: Scenario, stats, *, seed: int, threads: int | None = None) -> list[str]:
    """Warnings about a weighted run: observations so extreme under the model that few paths carry
    the weight (the effective sample size, and where each extreme observation lies)."""
    if not stats.weighted:
        return []
    from targetsim.engine.observations import observation_ranges

    ess = stats.effective_sample_size
    if ess >= _minimum_effective_sample_size(stats.paths):
        return []
    extreme = [r.describe() for r in observation_ranges(scenario, seed=seed, threads=threads) if r.extreme]
    where = ("; ".join(extreme) if extreme else
             "each observation lies within its simulated range, but together they are rare under the model")
    return [f"the observations are extreme under the model: effective sample size {ess:,.1f} of "
            f"{stats.paths:,} paths, so the probabilities rest on few paths (their intervals use the effective "
            f"sample size). {where}. Check the values and their units, or widen the process "
            "(volatility, growth uncertainty)"]


def preflight(scenario: Scenario, *, paths: int | None = None, seed: int | None = None,
              threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE,
              output: str | Path | None = None, keep_paths: int = 0, distributed: bool = False) -> "RunEstimate":
    """Everything that can be refused before simulating, in a moment; returns the run's estimate.

    Refuses (:class:`~targetsim.errors.TargetsimError`, with the numbers): ``paths`` or ``seed`` out
    of range, an indicator whose plausible range overflows floating point, an estimated peak memory
    above the memory available now, and, when ``output`` is given, a destination that cannot be
    written or whose disk has too little free space for the results file
    (:func:`targetsim.io.netcdf.check_destination`). ``RunEstimate.seconds`` says how long the run
    should take (:meth:`~targetsim.engine.resources.RunEstimate.is_long`). ``distributed``: the run's paths
    go to Dask tasks (the memory check then counts the results waiting at the client).
    """
    from targetsim.engine.resources import check_memory, estimate_for_scenario
    from targetsim.errors import TargetsimError
    from targetsim.kernels.geometry import checked_threads
    from targetsim.model.parse import MAX_PATHS

    n_paths = scenario.paths if paths is None else paths
    use_seed = scenario.seed if seed is None else seed
    if n_paths < 1:
        raise TargetsimError(f"paths must be at least 1, got {n_paths}")
    if n_paths > MAX_PATHS:
        raise TargetsimError(f"paths must be at most {MAX_PATHS:,}, got {n_paths:,}")
    if use_seed < 0 or use_seed > MAX_SEED:
        raise TargetsimError(f"seed must lie between 0 and {MAX_SEED}, got {use_seed}")
    checked_threads(threads)
    if keep_paths < 0:
        raise TargetsimError(f"--keep-paths must be at least 0, got {keep_paths:,}")
    check_numeric_range(scenario)
    est = estimate_for_scenario(scenario, paths=n_paths, threads=threads, block_size=block_size,
                                keep_paths=keep_paths, distributed=distributed)
    check_memory(est)
    if output is not None:
        from targetsim.io import netcdf

        netcdf.check_destination(output, netcdf.estimate_output_bytes(scenario, keep_paths=keep_paths))
    return est


def check_statistics(scenario: Scenario, stats, *, seed: int = 0, threads: int | None = None) -> None:
    """Refuse results that would be silently wrong: non-finite values, or no weight left (every
    path impossible under the observations: the message places each observation in the law the
    model simulates without them)."""
    from targetsim.errors import TargetsimError

    bad = [(ind.id, int(n)) for ind, n in zip(scenario.indicators, stats.nonfinite) if n]
    if bad:
        detail = ", ".join(f"{name} on {n:,} paths" for name, n in bad)
        raise TargetsimError(f"non-finite values (overflow, or a zero denominator) in {detail}; "
                             "check growth rates, horizon and ratio denominators")
    if stats.weight_total == 0:
        from targetsim.engine.observations import observation_ranges

        ranges = observation_ranges(scenario, seed=seed, threads=threads)
        outside = [r.describe() for r in ranges if r.outside] or [r.describe() for r in ranges if r.extreme]
        where = ("; ".join(outside) if outside else
                 "each observation lies within its simulated range, but not all of them together "
                 "(e.g. a count that falls from one observed year to the next)")
        raise TargetsimError("the observations are impossible under the model: every path has likelihood 0. "
                             f"{where}. A count never falls and a process with volatility 0 takes one value "
                             "only: check the observed values and their units, the start value, or the process")


def check_numeric_range(scenario: Scenario) -> None:
    """Refuse, before simulating, an indicator whose plausible range overflows (or underflows)
    floating point: a start value in the wrong unit, a percentage typed as a growth rate, or a
    very long horizon. The range is the expected log path ± 8 s.d. (yearly shocks and growth
    uncertainty); it must stay within 1e-250 … 1e250 (see :mod:`targetsim.model.numeric`; the
    loader already refuses such a scenario at the indicator's ``process`` line)."""
    from targetsim.errors import TargetsimError
    from targetsim.model.numeric import numeric_range_problem, zero_denominator_problem

    problem = numeric_range_problem(scenario)
    if problem is not None:
        raise TargetsimError(problem[1])
    problem = zero_denominator_problem(scenario)
    if problem is not None:
        raise TargetsimError(f"{problem[0]}: {problem[1]}")


# Variables that must be finite numbers everywhere, except the documented NaNs handled below.
_FINITE_TARGET_VARIABLES = ("attainment_probability", "attainment_probability_lower",
                            "attainment_probability_upper", "attainment_probability_standard_error")
_PROBABILITY_VARIABLES = (*_FINITE_TARGET_VARIABLES[:3], "joint_attainment_probability",
                          "joint_attainment_probability_lower", "joint_attainment_probability_upper",
                          "at_least_k_attainment_probability", "joint_failure_probability",
                          "attainment_by_year")


def check_dataset(scenario: Scenario, ds: "xr.Dataset") -> None:
    """Refuse a result with a NaN (or infinity, or a probability outside [0, 1]) where the output
    contract promises a number. The NaNs the contract documents are allowed
    (:func:`targetsim.engine.results.documented_nans`); ``required_growth``, ``baseline_growth``
    and the quantiles are not checked."""
    import numpy as np

    from targetsim.engine.results import documented_nans
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
        allowed = documented_nans(ds, name)
        bad = ~np.isfinite(values) & ~allowed
        if name in _PROBABILITY_VARIABLES:
            bad |= np.isfinite(values) & ((values < -1e-12) | (values > 1 + 1e-12))
        if not bad.any():
            continue
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = values[idx]
        what = "NaN" if np.isnan(value) else ("infinite" if not np.isfinite(value) else f"{float(value)!r}, not a probability")
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


def fit_baselines(baselines: str | Path, indicators: "list[str] | tuple[str, ...]", *, process: str = "auto",
                  until: int | None = None, breaks: "tuple[int, ...]" = (), pool: bool = False,
                  pool_growth: bool = False) -> "tuple[list, object | None]":
    """Fit each of ``indicators`` from the observed rows of a baselines file (rows marked as
    assumptions are not data; ``until``: only rows up to that year). With ``pool`` (two or more
    indicators), their volatilities (and with ``pool_growth`` their growths) are partially pooled
    (:mod:`targetsim.estimate.pooling`). Returns ``(fits, pooled or None)``."""
    from targetsim.estimate.history import fit_series, series_from_rows
    from targetsim.estimate.pooling import pool as pool_series
    from targetsim.io.baselines import load_baselines

    table = load_baselines(baselines)
    series = [series_from_rows(table.rows, name, until=until, breaks=breaks, origin=str(baselines))
              for name in indicators]
    if pool or pool_growth:
        pooled = pool_series(series, growth=pool_growth)
        return list(pooled.fits), pooled
    return [fit_series(s, process) for s in series], None


def write_fit(scenario: str | Path, fit) -> Path:
    """Replace the fitted indicator's ``process:`` and ``parameters:`` in a scenario file, keeping
    every comment and line outside them; the edited scenario is validated before it replaces the
    file (see :mod:`targetsim.io.scenario_edit`)."""
    from targetsim.io.scenario_edit import replace_indicator_keys

    return replace_indicator_keys(scenario, fit.indicator, fit.blocks(), validate=load_scenario)


def run_document(document: dict, *, name: str = "<generated>", paths: int | None = None,
                 seed: int | None = None) -> "xr.Dataset":
    """Run a scenario given as a mapping (what a scenario file holds, already parsed), e.g. one a
    program generated; validated like a file (errors name ``name`` and the key)."""
    from targetsim.io.yaml_source import YamlSource
    from targetsim.model.parse import parse_scenario

    scenario = parse_scenario(document, YamlSource(file=name, data=document))
    return run(scenario, paths=paths, seed=seed, threads=None)
