"""Sweeps: one scenario run again and again with some of its numbers varied, stacked into one dataset.

``sweep(scenario, {KEY: SPEC, ...})`` (``targetsim sweep SCENARIO --vary KEY=SPEC ...``) runs a
variant of the scenario for each combination of values (KEY: a dotted key of the scenario, see
:mod:`targetsim.explore.variants`). SPEC:

- ``0.1,0.2,0.3``: these values (a grid: several keys give every combination, the first key varying
  slowest);
- ``0.05:0.25:5``: ``count`` values from ``low`` to ``high``, evenly spaced (``numpy.linspace``);
- ``0.05..0.25`` with ``samples=N``: a Latin hypercube of N variants over every varied key
  (``scipy.stats.qmc.LatinHypercube``, seeded with the sweep's seed), each key uniform on its range.

**Common random numbers.** Every variant runs the same number of paths with the same seed, so the
paths' random draws are the same and two variants differ only by their inputs: a variant's numbers
are bit for bit those of ``targetsim run`` of the edited scenario with that seed and paths, and the
differences between variants are not Monte Carlo noise between independent runs.

**Where the runs go.** Sequentially (each run on all the engine's threads), ``threads=N`` in-process
threads (N variants at a time, one engine thread each), or, with ``scheduler`` (a running
``dask.distributed`` scheduler) or ``workers`` (a local cluster of processes), as Dask tasks of
``batch`` variants each: the scenarios are built here, run on the workers through
:func:`targetsim.api.run`, and gathered in variant order. The result is the same whichever way.

The result: one dataset with a ``variant`` dimension stacking each run's per-target variables
(:data:`SWEEP_VARIABLES`) and, for each varied key, a coordinate along ``variant`` named by the key.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from targetsim.errors import TargetsimError, TargetsimWarning
from targetsim.explore.variants import ScenarioVariants, run_provenance

if TYPE_CHECKING:
    import xarray as xr

    from targetsim.model.scenario import Scenario

#: Paths of each variant unless given (a scenario's own count is meant for one run, not hundreds).
DEFAULT_PATHS = 20_000
#: The variables of each run stacked along ``variant`` (those a run has; the scenario dimension dropped).
SWEEP_VARIABLES = (
    "attainment_probability", "attainment_probability_lower", "attainment_probability_upper",
    "attainment_probability_standard_error", "joint_attainment_probability", "joint_attainment_probability_lower",
    "joint_attainment_probability_upper", "at_least_k_attainment_probability", "attainment_by_year",
    "effective_sample_size", "required_growth", "baseline_growth", "indicator_quantiles", "indicator_mean",
)
#: Variants per Dask task unless told: a variant takes tens of milliseconds or more, the scheduler's
#: overhead per task a few milliseconds (benches/sweep.py measures both), so one variant a task keeps
#: the overhead to a few per cent and balances the load best.
DEFAULT_BATCH = 1
#: Tasks kept in flight per worker: the scenarios waiting on the scheduler stay bounded.
IN_FLIGHT_PER_WORKER = 4

_RANGE = re.compile(r"^\s*([^:]+):([^:]+):([^:]+)\s*$")
_INTERVAL = re.compile(r"^\s*(.+?)\.\.(.+)$")


@dataclass(frozen=True)
class Vary:
    """One varied key: ``values`` (a grid or an evenly spaced range), or ``low``/``high`` (a Latin
    hypercube's range). ``spec``: as written."""

    key: str
    spec: str
    values: tuple[float, ...] = ()
    low: float = math.nan
    high: float = math.nan

    @property
    def is_range(self) -> bool:
        return not self.values


def _number(text: str, key: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TargetsimError(f"--vary {key}={spec}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise TargetsimError(f"--vary {key}={spec}: {text.strip()!r} is not a finite number")
    return value


def parse_spec(key: str, spec: str | Sequence[float]) -> Vary:
    """``0.1,0.2,0.3`` (values), ``0.05:0.25:5`` (low:high:count) or ``0.05..0.25`` (a range for a
    Latin hypercube); a sequence of numbers is a list of values."""
    if not isinstance(spec, str):
        values = tuple(_number(str(v), key, str(list(spec))) for v in spec)
        if not values:
            raise TargetsimError(f"--vary {key}: no values given")
        return Vary(key=key, spec=",".join(f"{v:g}" for v in values), values=values)
    text = spec.strip()
    interval = _INTERVAL.match(text)
    if interval:
        low, high = (_number(part, key, spec) for part in interval.groups())
        if not low < high:
            raise TargetsimError(f"--vary {key}={spec}: a range low..high needs low < high")
        return Vary(key=key, spec=text, low=low, high=high)
    stepped = _RANGE.match(text)
    if stepped:
        low, high = (_number(part, key, spec) for part in stepped.groups()[:2])
        count_text = stepped.group(3).strip()
        if not count_text.isdigit() or int(count_text) < 2:
            raise TargetsimError(f"--vary {key}={spec}: low:high:count needs a whole count of at least 2, got "
                                 f"{count_text!r}")
        values = tuple(float(v) for v in np.linspace(low, high, int(count_text)))
        return Vary(key=key, spec=text, values=values)
    if not text:
        raise TargetsimError(f"--vary {key}=: give values (0.1,0.2), low:high:count, or low..high with --samples")
    values = tuple(_number(part, key, spec) for part in text.split(","))
    return Vary(key=key, spec=text, values=values)


def parse_vary(option: str) -> tuple[str, str]:
    """``KEY=SPEC`` → ``(KEY, SPEC)``."""
    key, sep, spec = option.partition("=")
    if not sep or not key.strip():
        raise TargetsimError(f"--vary {option}: expected KEY=SPEC, e.g. "
                             "indicators.wuhan_cbec_trade.process.growth.mean=0.15,0.2,0.25")
    return key.strip(), spec


def design(varies: Sequence[Vary], samples: int | None, seed: int) -> np.ndarray:
    """The variants' values, ``(variant, key)``: the grid's every combination (the first key slowest),
    or ``samples`` points of a Latin hypercube seeded with ``seed``."""
    if not varies:
        raise TargetsimError("give at least one --vary KEY=SPEC")
    ranges = [v for v in varies if v.is_range]
    if samples is None:
        if ranges:
            raise TargetsimError(f"--vary {ranges[0].key}={ranges[0].spec}: a range low..high is sampled by a Latin "
                                 f"hypercube: give --samples N (or list values, or low:high:count for a grid)")
        grids = np.meshgrid(*[np.asarray(v.values) for v in varies], indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1)
    if samples < 1:
        raise TargetsimError(f"--samples must be at least 1, got {samples}")
    grid = [v for v in varies if not v.is_range]
    if grid:
        raise TargetsimError(f"--samples N draws a Latin hypercube over ranges low..high; --vary {grid[0].key}="
                             f"{grid[0].spec} is a list of values: write it as low..high")
    from scipy.stats import qmc

    unit = qmc.LatinHypercube(d=len(varies), rng=np.random.default_rng(seed)).random(samples)
    low = np.array([v.low for v in varies])
    high = np.array([v.high for v in varies])
    return low + unit * (high - low)


# ----------------------------------------------------------------------------------------- running

@dataclass(frozen=True)
class VariantResult:
    """One variant's run: its stacked variables (without the scenario dimension), the dimensions of each,
    the run's warnings, and the seconds its ``targetsim.api.run`` took."""

    arrays: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    warnings: str
    seconds: float


def run_variant(scenario: "Scenario", paths: int, seed: int, threads: int | None = 1,
                variables: Sequence[str] = SWEEP_VARIABLES) -> VariantResult:
    """Run one variant through :func:`targetsim.api.run` and keep ``variables`` (those the run has)."""
    from targetsim import api

    started = time.perf_counter()
    ds = api.run(scenario, paths=paths, seed=seed, threads=threads)
    seconds = time.perf_counter() - started
    found = [ds.variables[name] for name in variables if name in ds.data_vars]  # no DataArray built: cheap
    arrays = {name: np.asarray(v.values)[0] for name, v in zip((n for n in variables if n in ds.data_vars), found)}
    dims = {name: tuple(v.dims[1:]) for name, v in zip(arrays, found)}
    return VariantResult(arrays=arrays, dims=dims, warnings=ds.attrs.get("warnings", ""), seconds=seconds)


def run_batch(scenarios: list["Scenario"], paths: int, seed: int,
              variables: Sequence[str] = SWEEP_VARIABLES) -> list[VariantResult]:
    """A Dask task: several variants, one engine thread each (a worker's thread is the unit of work)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetsimWarning)  # kept in each result's warnings
        return [run_variant(scenario, paths, seed, threads=1, variables=variables) for scenario in scenarios]


#: ``progress(done, total, index, result)`` after each variant (index: its position in the design).
VariantProgress = Callable[[int, int, int, VariantResult], None]


def run_variants(variants: ScenarioVariants, values: np.ndarray, *, paths: int, seed: int,
                 threads: int | None = None, scheduler: str | None = None, workers: int | None = None,
                 batch: int | None = None, progress: VariantProgress | None = None,
                 variables: Sequence[str] = SWEEP_VARIABLES) -> list[VariantResult]:
    """Run every row of ``values`` (``(variant, key)``, the keys of ``variants``) with the same ``paths``
    and ``seed``, keeping ``variables`` of each run; the results in row order, whichever way they ran
    (see the module's docstring)."""
    variables = tuple(variables)
    n = len(values)
    if n == 0:
        raise TargetsimError("no variants to run")
    if threads is not None and threads < 1:
        raise TargetsimError(f"--threads must be at least 1, got {threads}")
    if batch is not None and batch < 1:
        raise TargetsimError(f"--batch must be at least 1, got {batch}")

    def build(i: int) -> "Scenario":
        return variants.scenario(dict(zip(variants.keys, (float(v) for v in values[i]))), label=f"variant {i}")

    results: list[VariantResult | None] = [None] * n
    done = 0

    def finished(i: int, result: VariantResult) -> None:
        nonlocal done
        results[i] = result
        done += 1
        if progress is not None:
            progress(done, n, i, result)

    if scheduler is not None or workers is not None:
        _run_distributed(build, n, paths, seed, variables, scheduler, workers, batch or DEFAULT_BATCH, finished)
    elif threads is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TargetsimWarning)
            for i in range(n):
                finished(i, run_variant(build(i), paths, seed, threads=None, variables=variables))
    else:
        with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=threads) as pool:
            warnings.simplefilter("ignore", TargetsimWarning)  # set here, in the main thread, for every thread
            futures = {pool.submit(lambda i=i: run_variant(build(i), paths, seed, threads=1, variables=variables)): i
                       for i in range(n)}
            try:
                for future in as_completed(futures):
                    finished(futures[future], future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return results  # type: ignore[return-value]


def _run_distributed(build: Callable[[int], "Scenario"], n: int, paths: int, seed: int, variables: tuple[str, ...],
                     scheduler: str | None, workers: int | None, batch: int,
                     finished: Callable[[int, VariantResult], None]) -> None:
    """Batches of variants as Dask tasks, a bounded number in flight; each result stored at its index."""
    import uuid

    from targetsim.distributed import dask_client, require_distributed

    distributed = require_distributed()
    batches = iter([list(range(start, min(start + batch, n))) for start in range(0, n, batch)])
    token = uuid.uuid4().hex[:8]
    with dask_client(scheduler, workers) as client:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        pending = distributed.as_completed()
        owner: dict[str, tuple[list[int], Any]] = {}

        def submit_next() -> None:
            indices = next(batches, None)
            if indices is None:
                return
            scenarios = [build(i) for i in indices]
            future = client.submit(run_batch, scenarios, paths, seed, variables,
                                   key=f"targetsim-sweep-{token}-{indices[0]}", pure=False)
            owner[future.key] = (indices, future)
            pending.add(future)

        for _ in range(IN_FLIGHT_PER_WORKER * n_workers):
            submit_next()
        try:
            for future in pending:
                indices, _ = owner.pop(future.key)
                for i, result in zip(indices, future.result()):
                    finished(i, result)
                future.release()
                submit_next()
        except BaseException:
            # what is still queued or running, so that an error or Ctrl-C stops the cluster's work too
            client.cancel([future for _, future in owner.values()])
            raise


# ------------------------------------------------------------------------------------------ stacking

def stack_results(base: "Scenario", keys: Sequence[str], values: np.ndarray,
                  results: Sequence[VariantResult]) -> "xr.Dataset":
    """The runs' variables stacked along ``variant``, a coordinate along it for each key, and the
    coordinates of the targets and indicators (from ``base``, the scenario as written)."""
    import xarray as xr

    first = results[0]
    data_vars = {}
    for name, dims in first.dims.items():
        data_vars[name] = (("variant", *dims), np.stack([r.arrays[name] for r in results]))
    coords: dict[str, Any] = {
        "variant": np.arange(len(results)),
        "target": [t.id for t in base.targets],
        "target_indicator": ("target", [t.indicator for t in base.targets]),
        "target_kind": ("target", [t.kind for t in base.targets]),
        "indicator": [ind.id for ind in base.indicators],
        "indicator_unit": ("indicator", [ind.unit for ind in base.indicators]),
        "year": list(base.years),
    }
    if "indicator_quantiles" in data_vars:
        coords["quantile"] = list(base.quantiles)
    if "at_least_k_attainment_probability" in data_vars:
        coords["k"] = np.arange(len(base.targets) + 1)
    for j, key in enumerate(keys):
        coords[key] = ("variant", values[:, j].astype(np.float64))
    data_vars["variant_warnings"] = ("variant", np.array([r.warnings for r in results], dtype=object))
    return xr.Dataset(data_vars, coords=coords)


# ------------------------------------------------------------------------------------------- sweep

def sweep(scenario: str | Path, vary: Mapping[str, str | Sequence[float]] | Iterable[tuple[str, Any]], *,
          samples: int | None = None, seed: int | None = None, paths: int | None = None,
          threads: int | None = None, scheduler: str | None = None, workers: int | None = None,
          batch: int | None = None, progress: VariantProgress | None = None) -> "xr.Dataset":
    """Run the scenario file once per variant and stack the results (see the module's docstring).

    ``vary``: key → SPEC (``"0.1,0.2"``, ``"0.05:0.25:5"``, ``"0.05..0.25"`` with ``samples``) or a list
    of values. ``seed``: every variant's (default: the scenario's); it also seeds the Latin hypercube.
    ``paths``: every variant's (default :data:`DEFAULT_PATHS`)."""
    from targetsim.api import preflight

    items = list(vary.items()) if isinstance(vary, Mapping) else list(vary)
    varies = [parse_spec(key, spec) for key, spec in items]
    variants = ScenarioVariants(Path(scenario), tuple(v.key for v in varies))
    base = variants.base
    use_seed = base.seed if seed is None else seed
    use_paths = DEFAULT_PATHS if paths is None else paths
    preflight(base, paths=use_paths, seed=use_seed)  # refuse bad paths/seed before any run
    values = design(varies, samples, use_seed)
    started = time.perf_counter()
    results = run_variants(variants, values, paths=use_paths, seed=use_seed, threads=threads,
                           scheduler=scheduler, workers=workers, batch=batch, progress=progress)
    ds = stack_results(base, variants.keys, values, results)
    where = (f"Dask scheduler {scheduler}" if scheduler else f"a local Dask cluster of {workers} processes" if workers
             else f"{threads} threads" if threads else "sequentially")
    ds.attrs.update({
        **run_provenance(base, scenario, use_seed, use_paths),
        "sweep_keys": json.dumps(list(variants.keys), ensure_ascii=False),
        "sweep_specs": json.dumps([f"{v.key}={v.spec}" for v in varies], ensure_ascii=False),
        "sweep_nominal": json.dumps({k: variants.nominal(k) for k in variants.keys}, ensure_ascii=False),
        "sweep_design": "latin_hypercube" if samples is not None else "grid",
        "sweep_samples": samples if samples is not None else len(values),
        "sample_seed": use_seed if samples is not None else -1,
        "common_random_numbers": (f"every variant ran {use_paths:,} paths with seed {use_seed}: the same random "
                                  "draws, so variants differ by their inputs only"),
        "executed": where,
        "wall_seconds": time.perf_counter() - started,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return ds


def sweep_keys(ds: "xr.Dataset") -> list[str]:
    """The varied keys of a sweep dataset (its coordinates along ``variant``)."""
    if "sweep_keys" in ds.attrs:
        return list(json.loads(ds.attrs["sweep_keys"]))
    return [name for name, coord in ds.coords.items() if coord.dims == ("variant",) and name != "variant"]
