"""Scenario files: read, hash, parse, validate, and resolve start values from baselines."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from targetsim.io.baselines import Baselines, load_baselines
from targetsim.io.yaml_source import YamlSource, load_yaml
from targetsim.model.parse import parse_scenario
from targetsim.model.scenario import Indicator, Scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file, with its baselines.

    Raises :class:`targetsim.errors.ScenarioError` naming the file, key and line of any
    problem in the scenario, and :class:`targetsim.errors.BaselineError` for one in the
    baselines file.
    """
    path = Path(path)
    source = load_yaml(path)
    sha256 = hashlib.sha256(source.text.encode("utf-8")).hexdigest()
    scenario = parse_scenario(source.data, source, file=path, sha256=sha256)
    return _resolve_starts(scenario, source)


def _resolve_starts(scenario: Scenario, src: YamlSource) -> Scenario:
    needs_baselines = [ind for ind in scenario.indicators if ind.start.from_baseline]
    if not needs_baselines:
        return scenario
    if scenario.baselines is None:
        ind = needs_baselines[0]
        raise src.error(("indicators", ind.id, "start"),
                        "'start: baseline' needs a 'baselines' file at the top of the scenario")
    if not scenario.baselines.is_file():
        raise src.error(("baselines",), f"baselines file not found: {scenario.baselines}")
    table = load_baselines(scenario.baselines)
    indicators = tuple(_resolve_one(ind, table, scenario, src) for ind in scenario.indicators)
    return dataclasses.replace(scenario, indicators=indicators)


def _resolve_one(ind: Indicator, table: Baselines, scenario: Scenario, src: YamlSource) -> Indicator:
    if not ind.start.from_baseline:
        return ind
    row = table.get(ind.id, scenario.base_year)
    if row is None:
        years = [r.year for r in table.history(ind.id)]
        have = f"it has {', '.join(map(str, years))}" if years else "it has no rows for this indicator"
        raise src.error(("indicators", ind.id, "start"),
                        f"no baseline value for {ind.id} in base year {scenario.base_year} "
                        f"in {table.file} ({have})")
    if row.value <= 0:
        raise src.error(("indicators", ind.id, "start"),
                        f"the baseline value {row.value:g} ({table.file}, line {row.line}) must be positive "
                        f"for a {ind.process.kind} process")
    unit = ind.unit
    if unit and row.unit and unit != row.unit:
        raise src.error(("indicators", ind.id, "unit"),
                        f"unit {unit!r} differs from the baseline's {row.unit!r} ({table.file}, line {row.line})")
    start = dataclasses.replace(ind.start, value=row.value, assumption=row.assumption or None,
                                source=row.source)
    return dataclasses.replace(ind, unit=unit or row.unit, start=start)
