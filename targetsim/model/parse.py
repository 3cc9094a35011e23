"""Validation of raw scenario data (plain dicts and lists) into :class:`Scenario` objects.

Every problem raises :class:`ScenarioError` through ``source.error(path, message)``, so the
message names the file, the key path and the line. This module does no I/O: the caller
passes an object with an ``error(path, message)`` method (see ``targetsim.io.yaml_source``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from targetsim.errors import ScenarioError
from targetsim.model.scenario import (
    COMPARATORS,
    DEFAULT_QUANTILES,
    PROCESS_KINDS,
    TARGET_KINDS,
    Correlation,
    Growth,
    Indicator,
    LognormalProcess,
    Scenario,
    Source,
    Start,
    Target,
)

KeyPath = tuple[str | int, ...]

TOP_KEYS = (
    "name", "description", "base_year", "horizon", "paths", "seed", "baselines",
    "indicators", "correlations", "targets", "quantiles",
)
INDICATOR_KEYS = ("label", "unit", "start", "process")
TARGET_KEYS = ("id", "indicator", "kind", "threshold", "by", "comparator", "source", "label", "tier")
SOURCE_KEYS = ("seed", "clause", "quote", "document", "url")
LOGNORMAL_KEYS = ("kind", "growth", "volatility")
GROWTH_KEYS = ("mean", "sd")
START_KEYS = ("value", "assumption", "source")

MAX_PATHS = 10**10
MAX_YEARS = 100
# ln(1+g) needs 1+g > 0 on every path: the growth distribution must keep 8 s.d. clear of -100 %.
GROWTH_SD_MARGIN = 8.0
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class ErrorSource(Protocol):
    def error(self, path: KeyPath, message: str) -> ScenarioError: ...


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


class _Reader:
    def __init__(self, src: ErrorSource):
        self.src = src

    def fail(self, path: KeyPath, message: str) -> ScenarioError:
        return self.src.error(path, message)

    def mapping(self, value: Any, path: KeyPath, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else f"; allowed keys: {', '.join(allowed)}"
                raise self.fail((*path, str(key)), f"unknown key {str(key)!r}{extra}")
        return value

    def required(self, mapping: Mapping[str, Any], key: str, path: KeyPath) -> Any:
        if key not in mapping or mapping[key] is None:
            raise self.fail(path, f"missing required key {key!r}")
        return mapping[key]

    def string(self, value: Any, path: KeyPath, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_type_name(value)}")
        if not allow_empty and not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def integer(self, value: Any, path: KeyPath, *, low: int | None = None, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a whole number, got {_type_name(value)}")
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                raise self.fail(path, f"expected a whole number, got {value!r}")
            value = int(value)
        if low is not None and value < low:
            raise self.fail(path, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(path, f"must be at most {high}, got {value}")
        return value

    def number(self, value: Any, path: KeyPath, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, what: str = "") -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_type_name(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(path, f"must be a finite number, got {value!r}")
        suffix = f" ({what})" if what else ""
        if low is not None and (value <= low if low_open else value < low):
            bound = "greater than" if low_open else "at least"
            raise self.fail(path, f"must be {bound} {low:g}, got {value:g}{suffix}")
        if high is not None and value > high:
            raise self.fail(path, f"must be at most {high:g}, got {value:g}{suffix}")
        return value


def parse_scenario(data: Any, src: ErrorSource, *, file: Path | None = None, sha256: str = "") -> Scenario:
    """Validate raw scenario data. ``file`` anchors the relative ``baselines`` path."""
    r = _Reader(src)
    top = r.mapping(data, (), TOP_KEYS)

    name = r.string(r.required(top, "name", ()), ("name",))
    description = r.string(top.get("description", "") or "", ("description",), allow_empty=True)
    base_year = r.integer(r.required(top, "base_year", ()), ("base_year",), low=1900, high=2200)
    horizon = r.integer(r.required(top, "horizon", ()), ("horizon",), low=1900, high=2200)
    if horizon <= base_year:
        raise r.fail(("horizon",), f"must be after base_year ({base_year}), got {horizon}")
    if horizon - base_year > MAX_YEARS:
        raise r.fail(("horizon",), f"at most {MAX_YEARS} years after base_year, got {horizon - base_year}")
    paths = r.integer(top.get("paths", 100_000), ("paths",), low=1, high=MAX_PATHS)
    seed = r.integer(top.get("seed", 0), ("seed",), low=0, high=2**63 - 1)

    baselines = None
    if top.get("baselines") is not None:
        rel = r.string(top["baselines"], ("baselines",))
        baselines = Path(rel)
        if not baselines.is_absolute() and file is not None:
            baselines = file.parent / baselines

    indicators = _parse_indicators(r, top)
    ids = {ind.id for ind in indicators}
    correlations = _parse_correlations(r, top.get("correlations"), indicators)
    targets = _parse_targets(r, top, ids, base_year, horizon)
    quantiles = _parse_quantiles(r, top.get("quantiles"))

    return Scenario(
        name=name, description=description, base_year=base_year, horizon=horizon,
        paths=paths, seed=seed, baselines=baselines, indicators=indicators,
        correlations=correlations, targets=targets, quantiles=quantiles,
        file=file, sha256=sha256,
    )


def _parse_indicators(r: _Reader, top: Mapping[str, Any]) -> tuple[Indicator, ...]:
    raw = r.required(top, "indicators", ())
    if not isinstance(raw, Mapping) or not raw:
        raise r.fail(("indicators",), f"expected a non-empty mapping of indicator ids, got {_type_name(raw)}")
    out = []
    for ind_id, spec in raw.items():
        path: KeyPath = ("indicators", str(ind_id))
        if not isinstance(ind_id, str) or not ID_PATTERN.match(ind_id):
            raise r.fail(path, "an indicator id must start with a letter or '_' and hold only letters, digits, '_', '.', '-'")
        spec = r.mapping(spec, path, INDICATOR_KEYS)
        label = r.string(spec.get("label", ind_id), (*path, "label"))
        unit = r.string(spec.get("unit", "") or "", (*path, "unit"), allow_empty=True)
        start = _parse_start(r, r.required(spec, "start", path), (*path, "start"))
        process = _parse_process(r, r.required(spec, "process", path), (*path, "process"))
        out.append(Indicator(id=ind_id, label=label, unit=unit, start=start, process=process))
    return tuple(out)


def _parse_start(r: _Reader, value: Any, path: KeyPath) -> Start:
    if value == "baseline":
        return Start(from_baseline=True)
    if isinstance(value, Mapping):
        spec = r.mapping(value, path, START_KEYS)
        number = r.number(r.required(spec, "value", path), (*path, "value"), low=0.0, low_open=True)
        assumption = spec.get("assumption")
        if assumption is not None:
            assumption = r.string(assumption, (*path, "assumption"))
        source = r.string(spec.get("source", "") or "", (*path, "source"), allow_empty=True)
        if not assumption and not source:
            raise r.fail(path, "a start value needs a 'source' or an 'assumption' saying why it is assumed")
        return Start(from_baseline=False, value=number, assumption=assumption, source=source)
    if isinstance(value, str):
        raise r.fail(path, f"expected a number, 'baseline' or {{value, assumption}}, got {_type_name(value)}")
    return Start(from_baseline=False, value=r.number(value, path, low=0.0, low_open=True))


def _parse_process(r: _Reader, value: Any, path: KeyPath) -> LognormalProcess:
    if not isinstance(value, Mapping):
        raise r.fail(path, f"expected a mapping with a 'kind', got {_type_name(value)}")
    kind = r.required(value, "kind", path)
    if kind not in PROCESS_KINDS:
        hint = difflib.get_close_matches(str(kind), PROCESS_KINDS, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise r.fail((*path, "kind"), f"unknown process kind {kind!r} (known: {', '.join(PROCESS_KINDS)}){extra}")
    spec = r.mapping(value, path, LOGNORMAL_KEYS)
    growth_raw = r.required(spec, "growth", path)
    gpath = (*path, "growth")
    if isinstance(growth_raw, Mapping):
        g = r.mapping(growth_raw, gpath, GROWTH_KEYS)
        mean = r.number(r.required(g, "mean", gpath), (*gpath, "mean"), low=-1.0, low_open=True,
                        what="a growth rate is a fraction: 0.3 means +30 %/yr")
        sd = r.number(g.get("sd", 0.0), (*gpath, "sd"), low=0.0)
    else:
        mean = r.number(growth_raw, gpath, low=-1.0, low_open=True)
        sd = 0.0
    if mean - GROWTH_SD_MARGIN * sd <= -1.0:
        raise r.fail((*gpath, "sd"), f"growth.mean - {GROWTH_SD_MARGIN:g}·growth.sd must stay above -1 "
                     f"(a fall of 100 %), got {mean:g} - {GROWTH_SD_MARGIN:g}·{sd:g}")
    volatility = r.number(r.required(spec, "volatility", path), (*path, "volatility"), low=0.0, high=5.0)
    return LognormalProcess(growth=Growth(mean=mean, sd=sd), volatility=volatility)


def _parse_correlations(r: _Reader, raw: Any, indicators: tuple[Indicator, ...]) -> tuple[Correlation, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise r.fail(("correlations",), f"expected a list of [indicator_a, indicator_b, rho], got {_type_name(raw)}")
    index = {ind.id: i for i, ind in enumerate(indicators)}
    seen: dict[frozenset[str], tuple[int, float]] = {}
    out = []
    for k, item in enumerate(raw):
        path: KeyPath = ("correlations", k)
        if not isinstance(item, list) or len(item) != 3:
            raise r.fail(path, f"expected [indicator_a, indicator_b, rho], got {_type_name(item)}")
        a = r.string(item[0], (*path, 0))
        b = r.string(item[1], (*path, 1))
        for j, name in ((0, a), (1, b)):
            if name not in index:
                hint = difflib.get_close_matches(name, list(index), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise r.fail((*path, j), f"unknown indicator {name!r}{extra}")
        if a == b:
            raise r.fail(path, f"an indicator's correlation with itself is 1; list pairs of different indicators")
        rho = r.number(item[2], (*path, 2), low=-1.0, high=1.0)
        pair = frozenset((a, b))
        if pair in seen:
            first, first_rho = seen[pair]
            if first_rho != rho:
                raise r.fail(path, f"correlation of {a} and {b} given twice with different values "
                             f"({first_rho:g} at correlations[{first}], {rho:g} here): the matrix must be symmetric")
            continue
        seen[pair] = (k, rho)
        out.append(Correlation(a=a, b=b, rho=rho))
    if out:
        matrix = np.eye(len(indicators))
        for c in out:
            i, j = index[c.a], index[c.b]
            matrix[i, j] = matrix[j, i] = c.rho
        smallest = float(np.linalg.eigvalsh(matrix).min())
        if smallest < -1e-10:
            raise r.fail(("correlations",), f"the correlation matrix is not positive semi-definite "
                         f"(smallest eigenvalue {smallest:.4g}); some pairs contradict each other")
    return tuple(out)


def _parse_targets(r: _Reader, top: Mapping[str, Any], ids: set[str], base_year: int, horizon: int) -> tuple[Target, ...]:
    raw = r.required(top, "targets", ())
    if not isinstance(raw, list) or not raw:
        raise r.fail(("targets",), f"expected a non-empty list of targets, got {_type_name(raw)}")
    seen: dict[str, int] = {}
    out = []
    for k, item in enumerate(raw):
        path: KeyPath = ("targets", k)
        spec = r.mapping(item, path, TARGET_KEYS)
        tid = r.string(r.required(spec, "id", path), (*path, "id"))
        if tid in seen:
            raise r.fail((*path, "id"), f"duplicate target id {tid!r} (also targets[{seen[tid]}])")
        seen[tid] = k
        indicator = r.string(r.required(spec, "indicator", path), (*path, "indicator"))
        if indicator not in ids:
            hint = difflib.get_close_matches(indicator, sorted(ids), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise r.fail((*path, "indicator"), f"unknown indicator {indicator!r}{extra}")
        kind = r.required(spec, "kind", path)
        if kind not in TARGET_KINDS:
            hint = difflib.get_close_matches(str(kind), TARGET_KINDS, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise r.fail((*path, "kind"), f"unknown target kind {kind!r} (known: {', '.join(TARGET_KINDS)}){extra}")
        if kind == "cagr":
            threshold = r.number(r.required(spec, "threshold", path), (*path, "threshold"), low=-1.0, low_open=True,
                                 high=10.0, what="a growth rate is a fraction: 0.3 means +30 %/yr")
        else:
            threshold = r.number(r.required(spec, "threshold", path), (*path, "threshold"))
        by = r.integer(r.required(spec, "by", path), (*path, "by"))
        if not base_year < by <= horizon:
            raise r.fail((*path, "by"), f"must lie after base_year {base_year} and at most horizon {horizon}, got {by}")
        comparator = spec.get("comparator", ">=")
        if comparator not in COMPARATORS:
            raise r.fail((*path, "comparator"), f"unknown comparator {comparator!r} (known: {', '.join(COMPARATORS)})")
        source = _parse_source(r, spec.get("source"), (*path, "source"))
        label = spec.get("label")
        if label is not None:
            label = r.string(label, (*path, "label"))
        tier = spec.get("tier")
        if tier is not None:
            tier = r.integer(tier, (*path, "tier"), low=1, high=9)
        out.append(Target(id=tid, indicator=indicator, kind=kind, threshold=threshold, by=by,
                          comparator=comparator, source=source, label=label, tier=tier))
    return tuple(out)


def _parse_source(r: _Reader, raw: Any, path: KeyPath) -> Source:
    if raw is None:
        return Source()
    if isinstance(raw, str):
        return Source(document=r.string(raw, path))
    spec = r.mapping(raw, path, SOURCE_KEYS)
    fields = {key: r.string(spec[key], (*path, key), allow_empty=True) for key in SOURCE_KEYS if spec.get(key) is not None}
    return Source(**{k: str(v) for k, v in fields.items()})


def _parse_quantiles(r: _Reader, raw: Any) -> tuple[float, ...]:
    if raw is None:
        return DEFAULT_QUANTILES
    if not isinstance(raw, list) or not raw:
        raise r.fail(("quantiles",), f"expected a non-empty list of probabilities, got {_type_name(raw)}")
    values = [r.number(q, ("quantiles", k), low=0.0, high=1.0, low_open=True) for k, q in enumerate(raw)]
    for k, q in enumerate(values):
        if q >= 1.0:
            raise r.fail(("quantiles", k), f"must be below 1, got {q:g}")
    if sorted(set(values)) != values:
        raise r.fail(("quantiles",), "must be strictly increasing")
    return tuple(values)
