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


def load_edited(tmp_path, text: str, old: str = "", new: str = "") -> Scenario:
    """Scenario ``text`` with ``old`` replaced by ``new`` (once), written to ``tmp_path`` and loaded."""
    import textwrap

    import targetsim

    assert old in text
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text.replace(old, new, 1)), encoding="utf-8")
    return targetsim.load_scenario(path)


def edit_error(tmp_path, text: str, old: str, new: str):
    """The ScenarioError the edited scenario raises; it must name the file."""
    from targetsim.errors import ScenarioError

    with pytest.raises(ScenarioError) as info:
        load_edited(tmp_path, text, old, new)
    assert str(tmp_path / "scenario.yaml") in str(info.value)
    return info.value


def every_start_form() -> dict[str, dict[str, Any]]:
    """One indicator for each start law and each kind that takes an uncertain start (a: log-normal
    range, b: normal, s: logit-normal share range, l: uniform, o: a build-out's range), beside a
    ratio of two of them: for the tests of uncertain starts."""
    return {
        "a": {"start": {"low": 80.0, "high": 125.0, "assumption": "t"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": 0.1}},
        "b": {"start": {"mean": 50.0, "sd": 4.0, "assumption": "t"},
              "process": {"kind": "ar1_growth", "long_run_growth": 0.04, "persistence": 0.5, "volatility": 0.08,
                          "initial_growth": 0.06}},
        "s": {"start": {"low": 0.2, "high": 0.4, "assumption": "t"},
              "process": {"kind": "logit_share", "drift": 0.1, "volatility": 0.2}},
        "l": {"start": {"low": 100.0, "high": 300.0, "law": "uniform", "assumption": "t"},
              "process": {"kind": "logistic", "ceiling": 1000.0, "drift": 0.2, "volatility": 0.1}},
        "o": {"start": {"low": 10.0, "high": 20.0, "assumption": "t"},
              "process": {"kind": "buildout", "organic": {"growth": 0.02, "volatility": 0.05},
                          "projects": [{"size": 5.0, "probability": 0.5, "earliest": 2025, "latest": 2027}]}},
        "r": {"process": {"kind": "ratio", "numerator": "a", "denominator": "b"}},
    }


def assert_error_at(err, key: str, line: int, words: str) -> None:
    """A scenario error names the key and the line, and its reason says ``words``."""
    assert err.location.key == key and err.location.line == line, (err.location, str(err))
    assert words in err.reason, err.reason
    assert f":{line}: {key}: " in str(err)


def assert_matches_reference(ds, ref, targets, k: float) -> None:
    """Each target's probability agrees with the reference model's within ``k`` standard errors of
    the difference of two independent estimates (pooled; effective sample sizes)."""
    ess, n_ref = float(ds.effective_sample_size), ref.effective_sample_size
    for t in targets:
        got, expected = float(ds.attainment_probability.sel(target=t["id"])), ref.probability[t["id"]]
        pooled = (got * ess + expected * n_ref) / (ess + n_ref)
        bound = k * math.sqrt(max(pooled * (1 - pooled), 1.0 / (ess + n_ref)) * (1 / ess + 1 / n_ref))
        assert abs(got - expected) < bound, (t["id"], got, expected)
