"""Scenario files: read, hash, parse, validate, and resolve start values from baselines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from targetsim.io.baselines import Baselines, load_baselines
from targetsim.io.models import load_document
from targetsim.io.yaml_source import YamlSource, file_kind
from targetsim.errors import ScenarioError
from targetsim.model.numeric import numeric_range_problem, zero_denominator_problem
from targetsim.model.parse import MAX_RATE, check_start, parse_scenario
from targetsim.model.scenario import Ar1GrowthProcess, FittedParameters, Indicator, LogitShareProcess, Scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file, with its baselines.

    A scenario may start with ``extends: other.yaml`` (relative to the file): it is then
    deep-merged over that file, transitively (see :mod:`targetsim.io.extends` for the rule),
    and the merged document is validated. ``Scenario.sha256`` is the SHA-256 over the bytes
    of every file of the ``extends`` chain concatenated in chain order, the loaded file first
    and then its parent, its parent's parent, ...; for a file without ``extends`` this is
    the SHA-256 of that file alone, as before. So editing any file of the chain changes it.

    Raises :class:`targetsim.errors.ScenarioError` naming the file, key and line of any
    problem in the scenario (for an inherited value: the file, key and line that supplied
    it), and :class:`targetsim.errors.BaselineError` for one in the baselines file.
    """
    path = Path(path)
    chain = load_document(path)
    source = chain.merged
    fitted = _fit_requested_processes(source, path)
    scenario = parse_scenario(source.data, source, file=path, sha256=chain.sha256)
    if fitted:
        scenario = dataclasses.replace(scenario, indicators=tuple(
            dataclasses.replace(ind, fitted=fitted[ind.id]) if ind.id in fitted else ind
            for ind in scenario.indicators))
    return _resolve_starts(scenario, source)


# The keys of ``process: {fit: KIND}``: the kind (or auto), the last year to use, the break years.
FIT_KEYS = ("fit", "until", "breaks")


def _fit_requested_processes(src: YamlSource, path: Path) -> dict[str, FittedParameters]:
    """Replace every ``process: {fit: ...}`` of the document by the process fitted to the
    indicator's observed baselines rows up to the base year (or ``until``), and fill its
    ``parameters`` (when the scenario gives none) with where the fit comes from. Returns what
    was fitted, by indicator."""
    data = src.data
    indicators = data.get("indicators") if isinstance(data, dict) else None
    if not isinstance(indicators, dict):
        return {}
    requests = {name: spec["process"] for name, spec in indicators.items()
                if isinstance(spec, dict) and isinstance(spec.get("process"), dict) and "fit" in spec["process"]}
    if not requests:
        return {}
    from targetsim.errors import FitError
    from targetsim.estimate.fitting import PROCESS_CHOICES
    from targetsim.estimate.history import fit_series, series_from_rows

    base_year = data.get("base_year")
    if not isinstance(base_year, int) or isinstance(base_year, bool):
        raise src.error(("base_year",), "a scenario that fits a process needs base_year, a year such as 2024")
    rel = data.get("baselines")
    files = rel if isinstance(rel, list) else [rel]
    if not files or not all(isinstance(f, str) for f in files):
        name = next(iter(requests))
        raise src.error(("indicators", name, "process", "fit"),
                        "'fit' estimates the process from the baselines: name a 'baselines' file at the top "
                        "of the scenario")
    tables = []
    for k, file in enumerate(files):
        table_path = Path(file) if Path(file).is_absolute() else path.parent / file
        if file_kind(table_path) != "file":
            raise src.error(("baselines", k) if isinstance(rel, list) else ("baselines",),
                            f"baselines file not found: {table_path}")
        tables.append(load_baselines(table_path))
    table = Baselines.combined(tables)
    table_path = table.file
    fitted = {}
    for name, request in requests.items():
        at = ("indicators", name, "process")
        for key in request:
            if key not in FIT_KEYS:
                raise src.error((*at, key), f"unknown key {key!r} beside 'fit'; allowed: {', '.join(FIT_KEYS)}")
        kind = request["fit"]
        if kind not in PROCESS_CHOICES:
            raise src.error((*at, "fit"), f"fit: {kind!r} is not a process it can fit; choose one of "
                                          f"{', '.join(PROCESS_CHOICES)}")
        until = request.get("until", base_year)
        breaks = request.get("breaks", [])
        if not isinstance(until, int) or isinstance(until, bool) or until > base_year:
            raise src.error((*at, "until"), f"until must be a year no later than the base year {base_year}")
        if not isinstance(breaks, list) or not all(isinstance(b, int) and not isinstance(b, bool) for b in breaks):
            raise src.error((*at, "breaks"), "breaks is a list of years, e.g. [2019]")
        try:
            series = series_from_rows(table.rows, name, until=until, breaks=tuple(breaks), origin=str(table_path))
            result = fit_series(series, kind)
        except FitError as exc:
            raise src.error((*at, "fit"), str(exc)) from None
        indicators[name]["process"] = dict(result.process)
        if indicators[name].get("parameters") is None:
            indicators[name]["parameters"] = result.parameters()
        fitted[name] = FittedParameters(
            kind=result.kind,
            estimates=tuple((k, float(v), float(result.std_errors.get(k, float("nan"))))
                            for k, v in result.estimates.items()),
            years=result.years, df=result.df, criteria=tuple(result.criteria.items()), notes=result.notes)
    return fitted


def _resolve_starts(scenario: Scenario, src: YamlSource) -> Scenario:
    """Fill start values (and default AR(1) initial growth) from the baselines, then check them,
    and that no indicator's plausible range overflows floating point (:mod:`targetsim.model.numeric`).

    A ``baselines`` file named by the scenario is read and validated even when no indicator
    uses it, so a typo in its name or a malformed row never passes unnoticed.
    """
    needs_table = [ind for ind in scenario.indicators
                   if (ind.start is not None and ind.start.from_baseline)
                   or (isinstance(ind.process, Ar1GrowthProcess) and ind.process.initial_growth is None)]
    table = None
    if scenario.baseline_files:
        tables = []
        for k, file in enumerate(scenario.baseline_files):
            key = ("baselines", k) if len(scenario.baseline_files) > 1 else ("baselines",)
            kind = file_kind(file)
            if kind == "missing":
                raise src.error(key, f"baselines file not found: {file}")
            if kind in ("directory", "other"):
                reason = "a directory" if kind == "directory" else "a device, pipe or socket"
                raise src.error(key, f"not a regular file ({reason}): {file}")
            if kind != "file":
                raise src.error(key, f"cannot open the baselines file ({kind}): {file}")
            tables.append(load_baselines(file))
        table = Baselines.combined(tables)
    elif needs_table:
        ind = needs_table[0]
        key = ("indicators", ind.id, "start" if ind.start.from_baseline else "process")
        raise src.error(key, "'start: baseline' (and an ar1_growth without initial_growth) needs a "
                        "'baselines' file at the top of the scenario")
    indicators = tuple(_resolve_one(ind, table, scenario, src) for ind in scenario.indicators)
    scenario = dataclasses.replace(scenario, indicators=indicators)
    problem = numeric_range_problem(scenario)
    if problem is not None:
        raise src.error(("indicators", problem[0], "process"), problem[1])
    problem = zero_denominator_problem(scenario)
    if problem is not None:
        raise src.error(("indicators", problem[0], "process", "denominator"), problem[1])
    return scenario


def _resolve_one(ind: Indicator, table: Baselines | None, scenario: Scenario, src: YamlSource) -> Indicator:
    if ind.start is None:  # derived
        return ind
    row = None
    if ind.start.from_baseline:
        row = table.get(ind.id, scenario.base_year)
        if row is None:
            years = [r.year for r in table.history(ind.id)]
            have = f"it has {', '.join(map(str, years))}" if years else "it has no rows for this indicator"
            raise src.error(("indicators", ind.id, "start"),
                            f"no baseline value for {ind.id} in base year {scenario.base_year} "
                            f"in {', '.join(map(str, scenario.baseline_files))} ({have})")
        value = row.value
        unit = ind.unit
        if isinstance(ind.process, LogitShareProcess) and row.unit == "percent":
            value = row.value / 100.0  # shares are simulated as fractions
        elif unit and row.unit and unit != row.unit:
            raise src.error(("indicators", ind.id, "unit"),
                            f"unit {unit!r} differs from the baseline's {row.unit!r} ({row.file}, line {row.line})")
        start = dataclasses.replace(ind.start, value=value, assumption=row.assumption or None, source=row.source)
        ind = dataclasses.replace(ind, unit=unit or row.unit, start=start)
    try:
        check_start(src, ind, ind.start.value, ("indicators", ind.id, "start"))
    except ScenarioError as exc:
        if row is None:
            raise
        raise src.error(("indicators", ind.id, "start"),
                        f"{exc.reason} (the baseline value in {row.file}, line {row.line})") from None
    if isinstance(ind.process, Ar1GrowthProcess) and ind.process.initial_growth is None:
        ind = dataclasses.replace(ind, process=dataclasses.replace(
            ind.process, initial_growth=_last_growth(ind, table, scenario, src)))
    return ind


def _last_growth(ind: Indicator, table: Baselines, scenario: Scenario, src: YamlSource) -> float:
    """The last observed growth, ``X(base_year) / X(base_year − 1) − 1``, from the baselines."""
    now = table.get(ind.id, scenario.base_year)
    before = table.get(ind.id, scenario.base_year - 1)
    if now is None or before is None or before.value <= 0:
        raise src.error(("indicators", ind.id, "process"),
                        f"ar1_growth needs 'initial_growth', or baseline values of {ind.id} for "
                        f"{scenario.base_year - 1} and {scenario.base_year} in {table.file} to compute it")
    growth = now.value / before.value - 1.0
    if not growth <= MAX_RATE:
        raise src.error(("indicators", ind.id, "process"),
                        f"the last observed growth of {ind.id}, {before.value:g} ({scenario.base_year - 1}, "
                        f"{table.file} line {before.line}) to {now.value:g} ({scenario.base_year}, line {now.line}), "
                        f"is {growth:.4g} (over +{MAX_RATE * 100:.0f} %/yr): check the two values' units, or "
                        "set 'initial_growth'")
    return growth
