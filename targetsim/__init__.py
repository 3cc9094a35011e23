"""targetsim: how likely is a plan's numeric target to be met, by when, and at what pace.

Public API::

    import targetsim
    scenario = targetsim.load_scenario("scenarios/base.yaml")
    ds = targetsim.run(scenario, paths=100_000)
    targetsim.write_dataset(ds, "results/base.nc")
    f = targetsim.fit(years, values, process="auto")   # f.process: a scenario's process: block
    bt = targetsim.backtest("baselines/china.csv", horizon=3)

Importing the package is cheap: numba, xarray and the kernels load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "__version__", "load_scenario", "run", "write_dataset", "read_dataset", "fit", "pool", "backtest", "goal",
    "TargetsimError", "ScenarioError", "BaselineError", "OutputError", "TargetsimWarning",
]

from targetsim.errors import BaselineError, OutputError, ScenarioError, TargetsimError, TargetsimWarning

_LAZY = {
    "load_scenario": ("targetsim.io.scenarios", "load_scenario"),
    "run": ("targetsim.api", "run"),
    "write_dataset": ("targetsim.io.netcdf", "write_dataset"),
    "read_dataset": ("targetsim.io.netcdf", "read_dataset"),
    "fit": ("targetsim.estimate.fitting", "fit"),
    "pool": ("targetsim.estimate.pooling", "pool"),
    "backtest": ("targetsim.backtest", "backtest"),
    "goal": ("targetsim.goal", "goal"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'targetsim' has no attribute {name!r}")
