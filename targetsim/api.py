"""The small public Python API; the CLI is a thin shell over it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from targetsim.engine.simulate import DEFAULT_BLOCK_SIZE, ProgressCallback
from targetsim.io.scenarios import load_scenario
from targetsim.model.scenario import Scenario

if TYPE_CHECKING:
    import xarray as xr


def run(scenario: Scenario | str | Path, *, paths: int | None = None, seed: int | None = None,
        threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE,
        progress: ProgressCallback | None = None) -> "xr.Dataset":
    """Simulate a scenario (an object or a YAML path) and return the results dataset.

    ``paths`` and ``seed`` override the scenario's; ``threads`` defaults to all cores.
    The same scenario and seed give bit-identical numbers for any ``threads`` and
    ``block_size`` (a multiple of 256).
    """
    from targetsim import __version__
    from targetsim.engine.plan import build_plan
    from targetsim.engine.results import build_dataset
    from targetsim.engine.simulate import simulate
    from targetsim.errors import TargetsimError

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    n_paths = scenario.paths if paths is None else paths
    use_seed = scenario.seed if seed is None else seed
    if n_paths < 1:
        raise TargetsimError(f"paths must be at least 1, got {n_paths}")
    if use_seed < 0:
        raise TargetsimError(f"seed must be non-negative, got {use_seed}")
    plan = build_plan(scenario)
    stats = simulate(plan, paths=n_paths, seed=use_seed, threads=threads, block_size=block_size,
                     progress=progress)
    check_statistics(scenario, stats)
    return build_dataset(scenario, plan, stats, seed=use_seed, version=__version__)


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
