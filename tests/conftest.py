"""Shared helpers: build scenarios in memory, so each test states its model in a few lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from targetsim.io.yaml_source import parse_yaml
from targetsim.model.parse import parse_scenario
from targetsim.model.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent


def make_scenario(data: dict[str, Any]) -> Scenario:
    """Validate a scenario given as a dict (round-tripped through YAML for line numbers)."""
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    src = parse_yaml(text, "<test>")
    return parse_scenario(src.data, src)


def lognormal(start: float, mean: float, sd: float = 0.0, volatility: float = 0.1, **extra) -> dict:
    return {"start": {"value": start, "assumption": "test value"},
            "process": {"kind": "lognormal", "growth": {"mean": mean, "sd": sd}, "volatility": volatility},
            **extra}


def scenario_dict(indicators: dict, targets: list, *, base_year: int = 2024, horizon: int = 2027,
                  paths: int = 100_000, seed: int = 7, correlations=None, **extra) -> dict:
    data = {"name": "test", "base_year": base_year, "horizon": horizon, "paths": paths, "seed": seed,
            "indicators": indicators, "targets": targets, **extra}
    if correlations:
        data["correlations"] = correlations
    return data


def mc_tolerance(p: float, n: int, k: float = 4.5) -> float:
    """k Monte Carlo standard errors of a proportion (with a floor for p near 0 or 1)."""
    return k * math.sqrt(max(p * (1 - p), 1.0 / n) / n)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def assert_same_for_any_threads_and_blocks(scenario: Scenario, paths: int = 20_000) -> None:
    """Every output variable is bit-identical for 1 or 2 threads and block sizes 256, 1024, 4096."""
    import numpy as np

    import targetsim

    runs = [targetsim.run(scenario, paths=paths, threads=threads, block_size=block)
            for threads, block in ((1, 256), (2, 256), (2, 4096), (1, 1024))]
    first = runs[0]
    for other in runs[1:]:
        for name in first.data_vars:
            np.testing.assert_array_equal(first[name].values, other[name].values, err_msg=name)
