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
from targetsim.kernels.weights import MAX_WEIGHTED_PATHS
from targetsim.model.processes import (ESTIMATED_VOLATILITY_KEYS, ESTIMATED_VOLATILITY_KINDS, PROCESS_SPECS,
                                       START_NORMAL_SD, UNCERTAIN_START_KINDS, WHOLE_START_KINDS,
                                       start_scale)
from targetsim.model.targets import MAX_RATE, RATE_HINT, TARGET_SPECS
from targetsim.model.scenario import (
    ABOUT_COMPARATORS,
    COMPARATORS,
    DEFAULT_QUANTILES,
    DEFAULT_TOLERANCE,
    DERIVED_KINDS,
    MONETARY_PRICE_BASES,
    OBSERVABLE_KINDS,
    PRICE_BASES,
    PROCESS_KINDS,
    SHOCK_DISTRIBUTIONS,
    SHOCKED_KINDS,
    TARGET_KINDS,
    UNKNOWN_PRICE_BASIS,
    Correlation,
    Factor,
    Growth,
    Indicator,
    Jump,
    NotModelled,
    Parameters,
    Process,
    RatioProcess,
    Scenario,
    Shocks,
    Source,
    Start,
    SumProcess,
    Target,
)

KeyPath = tuple[str | int, ...]

TOP_KEYS = (
    "name", "description", "base_year", "horizon", "paths", "seed", "baselines",
    "indicators", "correlations", "targets", "quantiles", "shocks", "jumps", "observations", "not_modelled",
    "model", "factors",
)
FACTOR_KEYS = ("label", "loadings", "source", "assumption")
NOT_MODELLED_KEYS = ("id", "kind", "reason", "source")
INDICATOR_KEYS = ("label", "unit", "start", "process", "parameters", "proxy_for", "price_basis")
PARAMETERS_KEYS = ("source", "assumption")
TARGET_KEYS = ("id", "indicator", "kind", "threshold", "by", "comparator", "source", "label", "tier",
               "tolerance", "aspirational", "reading", "plan")
SOURCE_KEYS = ("seed", "clause", "quote", "document", "url")
SHOCKS_KEYS = ("distribution", "dof", "skew")
JUMP_KEYS = ("name", "probability", "years", "effects")
GROWTH_KEYS = ("mean", "sd")
# A growth rate on the log scale: ln(1+g) ~ Normal(log_mean, log_sd) (what `targetsim fit` writes).
LOG_GROWTH_KEYS = ("log_mean", "log_sd")
# Bounds of a log growth: ln(1 + MAX_RATE) above; a yearly fall to e^-10 (99.995 %) below.
MIN_LOG_GROWTH = -10.0
START_KEYS = ("value", "assumption", "source", "low", "high", "law", "mean", "sd")
# An uncertain start's keys: a range (with its law) or a normal's mean and s.d.
START_RANGE_KEYS, START_NORMAL_KEYS = ("low", "high", "law"), ("mean", "sd")
START_RANGE_LAWS = ("lognormal", "uniform")

MAX_PATHS = 10**10
MAX_YEARS = 100
# The yearly shocks' s.d. of the log level: 1.0 is already a factor e ≈ 2.7 up or down in a typical
# year; a larger value is taken for a percentage written as a number (3 for 3 %).
MAX_VOLATILITY = 1.0
VOLATILITY_HINT = "the s.d. of the yearly change of the log level, a fraction: 0.1 means about ±10 % a year"
# An estimated volatility's degrees of freedom: at least 1 (fractional for pooled estimates); beyond
# 1e6 the s.d. of its posterior is below 0.1 % of the estimate (about 1/sqrt(2·df)): a known volatility.
MIN_VOLATILITY_DF, MAX_VOLATILITY_DF = 1.0, 1e6
# A logit drift per year beyond this moves any share to within 1e-4 of 0 or 1 in one year.
MAX_LOGIT_DRIFT = 10.0
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
        if "：" in value:  # a year and a value run together by a full-width colon
            return (f"the string {value!r}, which holds a full-width '：' where YAML needs ': ' (a colon and a "
                    f"space; switch the input method to half-width: {value.replace('：', ': ', 1)!r})")
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _text_hint(value: Any) -> str:
    """Why a number written as text was not read as one, and how to write it."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    try:
        if text.endswith(("%", "％")):
            number = float(text[:-1])
            return f"; write a percentage as a fraction: {number / 100:g} for {text}"
        if "," in text or "，" in text:
            number = float(text.replace(",", "").replace("，", ""))
            return f"; write numbers without thousands separators: {number:g}"
        number = float(text)
    except ValueError:
        return ""
    if not math.isfinite(number):
        return "; YAML writes these as .nan and .inf (which are not allowed here either)"
    if text.isascii() and re.fullmatch(r"[+-]?\d+", text):
        return "; remove the quotes around the number"
    return (f"; YAML reads {text!r} as text: write it as a plain number "
            f"({number:.17g}, or with a dot before the exponent: 1.0e+10)")


class _Reader:
    def __init__(self, src: ErrorSource):
        self.src = src
        self.horizon: int | None = None  # the scenario's horizon, once read (a scheduled process's years)

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
            raise self.fail(path, f"expected a whole number, got {_type_name(value)}{_text_hint(value)}")
        if isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                raise self.fail(path, f"expected a whole number, got {value!r}")
            value = int(value)
        if low is not None and value < low:
            raise self.fail(path, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(path, f"must be at most {high}, got {value}")
        return value

    # --- helpers for the process kinds' parsers (targetsim.model.processes)

    def type_name(self, value: Any) -> str:
        return _type_name(value)

    def growth(self, raw: Any, path: KeyPath, *, rate: bool) -> Growth:
        """A growth rate (``rate``) or a logit drift: a number, or ``{mean, sd}``."""
        return _parse_growth(self, raw, path, rate=rate)

    def uncertain_mean(self, raw: Any, path: KeyPath, *, high: float, what: str = "") -> tuple[float, float]:
        """``(mean, sd)`` of a non-negative quantity: a number (sd 0), or ``{mean, sd}`` for one drawn
        once per path from a gamma law with that mean and s.d. (a count's mean additions)."""
        return _parse_uncertain_mean(self, raw, path, high=high, what=what)

    def volatility(self, spec: Mapping[str, Any], path: KeyPath, *, owner: str = "this process") -> float:
        """A known volatility: a number (the kinds that accept ``{estimate, df}`` read
        :meth:`estimated_volatility`); ``owner`` names what it belongs to in the refusal of the mapping."""
        raw = self.required(spec, "volatility", path)
        if isinstance(raw, Mapping):
            raise self.fail((*path, "volatility"), _estimated_volatility_refused(f"{owner} takes a known "
                                                                                 "volatility: a number"))
        return self.number(raw, (*path, "volatility"), low=0.0, high=MAX_VOLATILITY, what=VOLATILITY_HINT)

    def estimated_volatility(self, spec: Mapping[str, Any], path: KeyPath) -> tuple[float, float]:
        """``(volatility, df)``: a known volatility (a number; df 0) or one estimated with ``df``
        degrees of freedom, ``{estimate, df}`` (see :class:`targetsim.model.processes.LognormalProcess`)."""
        raw = self.required(spec, "volatility", path)
        vpath = (*path, "volatility")
        if not isinstance(raw, Mapping):
            return self.number(raw, vpath, low=0.0, high=MAX_VOLATILITY, what=VOLATILITY_HINT), 0.0
        v = self.mapping(raw, vpath, ESTIMATED_VOLATILITY_KEYS)
        estimate = self.number(self.required(v, "estimate", vpath), (*vpath, "estimate"), low=0.0,
                               high=MAX_VOLATILITY, what=VOLATILITY_HINT)
        df = self.number(self.required(v, "df", vpath), (*vpath, "df"), low=MIN_VOLATILITY_DF, high=MAX_VOLATILITY_DF,
                         what="the degrees of freedom of the estimate: at least 1, the number of yearly changes "
                              "it was estimated from less the parameters fitted (6 from 7 changes about their "
                              "mean); a fraction for a pooled estimate; a volatility known for sure is a number")
        return estimate, df

    def rate(self, value: Any, path: KeyPath) -> float:
        """A yearly growth rate, a fraction above -1."""
        return self.number(value, path, low=-1.0, low_open=True, high=MAX_RATE, what=RATE_HINT)

    def choice(self, value: Any, path: KeyPath, known: tuple[str, ...], what: str) -> str:
        if value not in known:
            hint = difflib.get_close_matches(str(value), known, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.fail(path, f"unknown {what} {value!r} (known: {', '.join(known)}){extra}")
        return value

    def number(self, value: Any, path: KeyPath, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, what: str = "") -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {_type_name(value)}{_text_hint(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise self.fail(path, f"the number is too large ({len(str(abs(value)))} digits)") from None
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
    r.horizon = horizon
    paths = r.integer(top.get("paths", 100_000), ("paths",), low=1, high=MAX_PATHS)
    seed = r.integer(top.get("seed", 0), ("seed",), low=0, high=2**63 - 1)

    baseline_files = _parse_paths(r, top.get("baselines"), ("baselines",), file)
    model = _parse_paths(r, top.get("model"), ("model",), file, several=False)

    indicators = _parse_indicators(r, top, base_year)
    correlations = _parse_correlations(r, top.get("correlations"), indicators)
    factors = _parse_factors(r, top.get("factors"), indicators)
    targets = _parse_targets(r, top, indicators, base_year, horizon)
    quantiles = _parse_quantiles(r, top.get("quantiles"))
    shocks = _parse_shocks(r, top.get("shocks"))
    kinds = {ind.id: ind.process.kind for ind in indicators}
    jumps = _parse_jumps(r, top.get("jumps"), kinds, base_year, horizon)
    observations = _parse_observations(r, top.get("observations"), indicators, base_year, horizon, shocks)
    if observations and paths > MAX_WEIGHTED_PATHS:
        raise r.fail(("paths",), f"with observations at most {MAX_WEIGHTED_PATHS} paths, got {paths}")

    not_modelled = _parse_not_modelled(r, top.get("not_modelled"), {t.id for t in targets})
    return Scenario(
        not_modelled=not_modelled,
        name=name, description=description, base_year=base_year, horizon=horizon,
        paths=paths, seed=seed, baselines=baseline_files[0] if baseline_files else None,
        baseline_files=baseline_files, model=model[0] if model else None, factors=factors, indicators=indicators,
        correlations=correlations, targets=targets, quantiles=quantiles, shocks=shocks, jumps=jumps,
        observations=observations, file=file, sha256=sha256,
    )


def _parse_paths(r: _Reader, raw: Any, path: KeyPath, file: Path | None, *, several: bool = True
                 ) -> tuple[Path, ...]:
    """A file path (or, with ``several``, a list of them) relative to the scenario file."""
    if raw is None:
        return ()
    items = raw if several and isinstance(raw, list) else [raw]
    if several and isinstance(raw, list) and not raw:
        raise r.fail(path, "expected a file or a non-empty list of files")
    out = []
    for k, item in enumerate(items):
        rel = Path(r.string(item, (*path, k) if isinstance(raw, list) else path))
        out.append(rel if rel.is_absolute() or file is None else file.parent / rel)
    return tuple(out)


def _shocked_indicator(r: _Reader, kinds: Mapping[str, str], ind: Any, path: KeyPath,
                       not_shocked: Any) -> None:
    """``ind`` must be a known indicator with a yearly shock of its own; ``not_shocked(kind)`` words the
    error when it has none."""
    if ind not in kinds:
        hint = difflib.get_close_matches(str(ind), list(kinds), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise r.fail(path, f"unknown indicator {ind!r}{extra}")
    if kinds[ind] not in SHOCKED_KINDS:
        raise r.fail(path, not_shocked(kinds[ind]))


def _parse_factors(r: _Reader, raw: Any, indicators: tuple[Indicator, ...]) -> tuple[Factor, ...]:
    """``factors: {name: {loadings: {indicator: λ}, label, source | assumption}}`` (see :class:`Factor`)."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise r.fail(("factors",), f"expected a mapping of factor names to {{loadings, source}}, got {_type_name(raw)}")
    kinds = {ind.id: ind.process.kind for ind in indicators}
    total: dict[str, float] = {}
    out = []
    for name, spec in raw.items():
        path: KeyPath = ("factors", str(name))
        spec = r.mapping(spec, path, FACTOR_KEYS)
        loadings_raw = r.required(spec, "loadings", path)
        if not isinstance(loadings_raw, Mapping) or not loadings_raw:
            raise r.fail((*path, "loadings"), f"expected a mapping indicator: loading, got {_type_name(loadings_raw)}")
        loadings = []
        for ind, value in loadings_raw.items():
            lpath = (*path, "loadings", str(ind))
            _shocked_indicator(r, kinds, ind, lpath, lambda kind: (
                f"{ind} is a {kind}: it has no yearly shock of its own for a factor to load on; factors load on "
                f"{', '.join(SHOCKED_KINDS)} indicators"))
            loading = r.number(value, lpath, low=-1.0, high=1.0)
            total[ind] = total.get(ind, 0.0) + loading * loading
            if total[ind] > 1.0 + 1e-12:
                raise r.fail(lpath, f"the squared loadings of {ind} on its factors add up to {total[ind]:.4g}, over 1: "
                                    "a shock's variance cannot be shared out more than whole")
            loadings.append((str(ind), loading))
        source = r.string(spec.get("source", "") or "", (*path, "source"), allow_empty=True)
        assumption = r.string(spec.get("assumption", "") or "", (*path, "assumption"), allow_empty=True)
        if not source and not assumption:
            raise r.fail(path, "a factor needs a 'source' (the series its loadings are estimated from) or an "
                               "'assumption' saying why they are set as they are")
        label = r.string(spec.get("label", "") or "", (*path, "label"), allow_empty=True)
        out.append(Factor(name=str(name), loadings=tuple(loadings), label=label, source=source,
                          assumption=assumption))
    return tuple(out)


def _parse_indicators(r: _Reader, top: Mapping[str, Any], base_year: int) -> tuple[Indicator, ...]:
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
        process = _parse_process(r, r.required(spec, "process", path), (*path, "process"), base_year)
        if process.kind in DERIVED_KINDS:
            if spec.get("start") is not None:
                raise r.fail((*path, "start"), f"a {process.kind} is computed from other indicators; remove 'start'")
            start = None
        else:
            start = _parse_start(r, r.required(spec, "start", path), (*path, "start"), process)
        parameters = _parse_parameters(r, spec.get("parameters"), (*path, "parameters"))
        proxy_for = spec.get("proxy_for")
        proxy_for = "" if proxy_for is None else r.string(proxy_for, (*path, "proxy_for"))
        price_basis = spec.get("price_basis")
        price_basis = (UNKNOWN_PRICE_BASIS if price_basis is None else
                       r.choice(price_basis, (*path, "price_basis"), PRICE_BASES, "price basis"))
        out.append(Indicator(id=ind_id, label=label, unit=unit, start=start, process=process,
                             parameters=parameters, proxy_for=proxy_for, price_basis=price_basis))
    indicators = tuple(out)
    _check_derived(r, indicators)
    return indicators


def _check_derived(r: _Reader, indicators: tuple[Indicator, ...]) -> None:
    """Derived indicators must name known, different indicators, without cycles, and never mix a
    nominal part with a real one (``price_basis``)."""
    ids = [ind.id for ind in indicators]
    deps: dict[str, tuple[str, ...]] = {}
    for ind in indicators:
        proc = ind.process
        path: KeyPath = ("indicators", ind.id, "process")
        if isinstance(proc, RatioProcess):
            refs = (("numerator", proc.numerator), ("denominator", proc.denominator))
            if proc.numerator == proc.denominator:
                raise r.fail((*path, "denominator"), "numerator and denominator must differ")
        elif isinstance(proc, SumProcess):
            refs = tuple(((("terms", k)), t) for k, t in enumerate(proc.terms))
        else:
            continue
        for key, ref in refs:
            key_path = (*path, *key) if isinstance(key, tuple) else (*path, key)
            if ref not in ids:
                hint = difflib.get_close_matches(ref, ids, n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise r.fail(key_path, f"unknown indicator {ref!r}{extra}")
        deps[ind.id] = tuple(ref for _, ref in refs)
        _check_price_bases(r, ind, deps[ind.id], {i.id: i for i in indicators})
    # depth-first search for a cycle among derived indicators
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2 or node not in deps:
            return
        if state.get(node) == 1:
            cycle = trail[trail.index(node):] + [node]
            raise r.fail(("indicators", node, "process"), f"derived indicators form a cycle: {' → '.join(cycle)}")
        state[node] = 1
        for ref in deps[node]:
            visit(ref, trail + [node])
        state[node] = 2

    for node in deps:
        visit(node, [])


def _check_price_bases(r: _Reader, ind: Indicator, refs: tuple[str, ...], by_id: Mapping[str, Indicator]) -> None:
    """A ratio or sum whose parts have different known monetary bases (nominal and real) is refused at
    the derived indicator's line: a nominal value over (or plus) a real one measures nothing."""
    bases: dict[str, list[str]] = {}
    for ref in refs:
        basis = by_id[ref].price_basis
        if basis in MONETARY_PRICE_BASES and ref not in bases.get(basis, []):
            bases.setdefault(basis, []).append(ref)
    if len(bases) > 1:
        parts = "; ".join(f"{basis}: {', '.join(ids)}" for basis, ids in bases.items())
        raise r.fail(("indicators", ind.id), f"this {ind.process.kind} mixes nominal and real parts ({parts}); "
                     "deflate the nominal ones (or inflate the real ones) so that every part has one price "
                     "basis")


def _parse_parameters(r: _Reader, value: Any, path: KeyPath) -> Parameters:
    """Where the process parameters come from: ``{source, assumption}`` (either or both)."""
    if value is None:
        return Parameters()
    spec = r.mapping(value, path, PARAMETERS_KEYS)
    source = r.string(spec.get("source", "") or "", (*path, "source"), allow_empty=True)
    assumption = r.string(spec.get("assumption", "") or "", (*path, "assumption"), allow_empty=True)
    if not source and not assumption:
        raise r.fail(path, "give the parameters' 'source' (the history they are estimated from), or an "
                           "'assumption' saying why they are assumed")
    return Parameters(source=source, assumption=assumption)


def _parse_start(r: _Reader, value: Any, path: KeyPath, process: Any = None) -> Start:
    if value == "baseline":
        return Start(from_baseline=True)
    if isinstance(value, Mapping) and any(k in value for k in (*START_RANGE_KEYS, *START_NORMAL_KEYS)):
        return _parse_uncertain_start(r, r.mapping(value, path, START_KEYS), path, process)
    if isinstance(value, Mapping):
        spec = r.mapping(value, path, START_KEYS)
        number = r.number(r.required(spec, "value", path), (*path, "value"), low=0.0)
        assumption = spec.get("assumption")
        if assumption is not None:
            assumption = r.string(assumption, (*path, "assumption"))
        source = r.string(spec.get("source", "") or "", (*path, "source"), allow_empty=True)
        if not assumption and not source:
            raise r.fail(path, "a start value needs a 'source' or an 'assumption' saying why it is assumed")
        return Start(from_baseline=False, value=number, assumption=assumption, source=source)
    if isinstance(value, str):
        raise r.fail(path, f"expected a number, 'baseline' or {{value, assumption}}, got {_type_name(value)}")
    return Start(from_baseline=False, value=r.number(value, path, low=0.0))


def _parse_uncertain_start(r: _Reader, spec: Mapping[str, Any], path: KeyPath, process: Any) -> Start:
    """``{low, high[, law]}`` (a range: the central 90 % interval of a log-normal law, a logit-normal for a
    share, or the ends of a uniform one) or ``{mean, sd}`` (a normal law), each with its source or
    assumption: each path draws its own start."""
    given = [k for k in (*START_RANGE_KEYS, *START_NORMAL_KEYS) if k in spec]
    kind = process.kind if process is not None else "?"
    if kind not in UNCERTAIN_START_KINDS:
        raise r.fail((*path, given[0]), f"an uncertain start ({{low, high}} or {{mean, sd}}) is accepted by "
                                        f"{', '.join(UNCERTAIN_START_KINDS)}, not by a {kind}")
    if "value" in spec:
        raise r.fail((*path, "value"), f"give the start's value or its law ({', '.join(given)}), not both")
    ranged = [k for k in START_RANGE_KEYS if k in spec]
    normal = [k for k in START_NORMAL_KEYS if k in spec]
    if ranged and normal:
        raise r.fail((*path, normal[0]), "give a range {low, high} (with its law) or a normal {mean, sd}, not both")
    assumption = spec.get("assumption")
    if assumption is not None:
        assumption = r.string(assumption, (*path, "assumption"))
    source = r.string(spec.get("source", "") or "", (*path, "source"), allow_empty=True)
    if not assumption and not source:
        raise r.fail(path, "an uncertain start needs a 'source' or an 'assumption' saying where its range comes from")
    if kind in WHOLE_START_KINDS:
        return _parse_whole_start(r, spec, path, kind, ranged, normal, assumption, source)
    pspec = PROCESS_SPECS[kind]

    def check(value: float, key: str, what: str = "") -> None:
        problem = pspec.start_problem(value) or _outside(pspec, process, value, "starts")
        if problem:
            raise r.fail((*path, key), f"{what}{problem}")

    fwd, inv = start_scale(process)
    if ranged:
        low = r.number(r.required(spec, "low", path), (*path, "low"))
        check(low, "low")
        high = r.number(r.required(spec, "high", path), (*path, "high"))
        check(high, "high")
        if not low < high:
            raise r.fail((*path, "high"), f"high ({high:g}) must exceed low ({low:g})")
        law = r.choice(spec.get("law", "lognormal"), (*path, "law"), START_RANGE_LAWS, "start law")
        median = inv(0.5 * (fwd(low) + fwd(high))) if law == "lognormal" else 0.5 * (low + high)
        return Start(from_baseline=False, value=median, assumption=assumption, source=source, law=law,
                     low=low, high=high)
    mean = r.number(r.required(spec, "mean", path), (*path, "mean"))
    check(mean, "mean")
    sd = r.number(r.required(spec, "sd", path), (*path, "sd"), low=0.0, low_open=True)
    for edge in (mean - START_NORMAL_SD * sd, mean + START_NORMAL_SD * sd):
        check(edge, "sd", f"mean ± {START_NORMAL_SD:g} sd reaches {edge:g}, outside the valid values "
                          "(give a range {low, high} instead: a log-normal, or logit-normal, law): ")
    return Start(from_baseline=False, value=mean, assumption=assumption, source=source, law="normal", sd=sd)


# The largest bound of a count's uncertain start (whole numbers are exact in a double up to 2^53).
MAX_WHOLE_START = 1e15


def _parse_whole_start(r: _Reader, spec: Mapping[str, Any], path: KeyPath, kind: str, ranged: list[str],
                       normal: list[str], assumption: str | None, source: str) -> Start:
    """A count's (or scheduled count's) uncertain start, drawn once per path as a whole number: ``{low,
    high, law: uniform}``, uniform on the whole numbers ``low..high`` (``0 ≤ low < high``, both whole);
    ``{low, high}`` (law ``lognormal``, the default), the log-normal law with 5 % and 95 % quantiles at
    ``low`` and ``high`` (``0 < low < high``, any numbers), rounded to the nearest whole number. ``value``
    is the law's median, a whole number: a uniform law's lower median ``(low + high) // 2``, a rounded
    log-normal's ``round(sqrt(low·high))``. ``{mean, sd}`` is refused: a normal would have to be rounded
    and cut at 0, and would then no longer have the mean and s.d. given."""
    what = "a count" if kind == "count" else "a scheduled count"
    if normal:
        raise r.fail((*path, normal[0]), f"{what} starts at a whole number: give its uncertain start as "
                                         "a range {low, high} (law: uniform, each whole number low..high equally "
                                         "likely; or lognormal, the default, rounded to the nearest whole "
                                         "number), not a normal {mean, sd}, which would have to be rounded and "
                                         "cut at 0")
    law = r.choice(spec.get("law", "lognormal"), (*path, "law"), START_RANGE_LAWS, "start law")
    bounds = {}
    for key in ("low", "high"):
        value = r.number(r.required(spec, key, path), (*path, key), high=MAX_WHOLE_START)
        if law == "uniform" and not (value >= 0 and value == int(value)):
            raise r.fail((*path, key), f"{what}'s uniform start is drawn on the whole numbers low..high: "
                                       f"'{key}' must be a whole number ≥ 0, got {value:g}")
        if law == "lognormal" and not value > 0:
            raise r.fail((*path, key), f"{what}'s log-normal start needs 0 < low < high (low and high "
                                       f"are its 5 % and 95 % quantiles), got {key} {value:g}; for a range from "
                                       "0 give law: uniform (whole numbers low..high)")
        bounds[key] = value
    low, high = bounds["low"], bounds["high"]
    if not low < high:
        raise r.fail((*path, "high"), f"high ({high:g}) must exceed low ({low:g})")
    if law == "uniform":
        median = float((int(low) + int(high)) // 2)
    else:
        median = float(math.floor(math.sqrt(low * high) + 0.5))
    return Start(from_baseline=False, value=median, assumption=assumption, source=source, law=law, low=low,
                 high=high)


def check_start(r_or_src: Any, ind: Indicator, value: float, path: KeyPath) -> None:
    """The start value must suit the process (its spec's rule: positive for levels, a fraction for
    shares, a whole count)."""
    r = r_or_src if isinstance(r_or_src, _Reader) else _Reader(r_or_src)
    spec = PROCESS_SPECS[ind.process.kind]
    problem = spec.start_problem(value) or _outside(spec, ind.process, value, "starts")
    if problem:
        raise r.fail(path, problem)


def _outside(spec: Any, process: Any, value: float, verb: str) -> str | None:
    """A value outside the open interval a bounded kind's values lie in (a logistic below its ceiling)."""
    bounds = spec.bounds(process)
    if bounds is None or bounds[0] < value < bounds[1]:
        return None
    return f"a {spec.kind} indicator {verb} strictly between {bounds[0]:g} and {bounds[1]:g}, got {value:g}"


def _parse_growth(r: _Reader, raw: Any, path: KeyPath, *, rate: bool) -> Growth:
    """A number, or ``{mean, sd}`` for a parameter drawn once per path, or (a growth rate only)
    ``{log_mean, log_sd}``: ``ln(1+g)`` drawn as ``Normal(log_mean, log_sd)``."""
    low = -1.0 if rate else -MAX_LOGIT_DRIFT
    high = MAX_RATE if rate else MAX_LOGIT_DRIFT
    what = RATE_HINT if rate else "a logit change per year: 0.1 moves a share near 50 % by about 2.5 points"
    if isinstance(raw, Mapping) and any(k in raw for k in LOG_GROWTH_KEYS):
        if not rate:
            raise r.fail(path, "a drift is already on the logit scale: give it as {mean, sd}")
        g = r.mapping(raw, path, LOG_GROWTH_KEYS)
        mean = r.number(r.required(g, "log_mean", path), (*path, "log_mean"), low=MIN_LOG_GROWTH,
                        high=math.log1p(MAX_RATE), what="the mean yearly change of ln X: 0.0953 means +10 %/yr")
        sd = r.number(g.get("log_sd", 0.0), (*path, "log_sd"), low=0.0, high=5.0,
                      what="the s.d. of the yearly change of ln X drawn once per path")
        return Growth(mean=mean, sd=sd, log=True)
    if isinstance(raw, Mapping):
        g = r.mapping(raw, path, GROWTH_KEYS)
        mean = r.number(r.required(g, "mean", path), (*path, "mean"), low=low, low_open=rate, high=high, what=what)
        sd = r.number(g.get("sd", 0.0), (*path, "sd"), low=0.0, high=high, what=what)
    else:
        mean = r.number(raw, path, low=low, low_open=rate, high=high, what=what)
        sd = 0.0
    if rate and mean - GROWTH_SD_MARGIN * sd <= -1.0:
        raise r.fail((*path, "sd"), f"mean - {GROWTH_SD_MARGIN:g}·sd must stay above -1 "
                     f"(a fall of 100 %), got {mean:g} - {GROWTH_SD_MARGIN:g}·{sd:g}")
    return Growth(mean=mean, sd=sd)


def _parse_uncertain_mean(r: _Reader, raw: Any, path: KeyPath, *, high: float, what: str) -> tuple[float, float]:
    """A number ≥ 0, or ``{mean, sd}``: ``mean`` ≥ 0 as the number, ``sd`` ≥ 0 its standard error
    (the s.d. of the gamma law each path draws it from); ``sd > 0`` needs ``mean > 0`` (a gamma law
    of mean 0 is the point 0)."""
    if not isinstance(raw, Mapping):
        return r.number(raw, path, low=0.0, high=high, what=what), 0.0
    m = r.mapping(raw, path, GROWTH_KEYS)
    mean = r.number(r.required(m, "mean", path), (*path, "mean"), low=0.0, high=high, what=what)
    sd = r.number(m.get("sd", 0.0), (*path, "sd"), low=0.0, high=high,
                  what="the standard error of the mean, drawn once per path from a gamma law")
    if sd > 0.0 and mean == 0.0:
        raise r.fail((*path, "sd"), f"an uncertain mean needs a positive mean, got mean 0 with sd {sd:g} (a gamma "
                     "law with mean 0 is the point 0): give a positive mean, or sd: 0")
    return mean, sd


def _estimated_volatility_refused(instead: str) -> str:
    kinds = ", ".join(ESTIMATED_VOLATILITY_KINDS[:-1]) + " and " + ESTIMATED_VOLATILITY_KINDS[-1]
    return f"an estimated volatility {{estimate, df}} is accepted by {kinds} processes only; {instead}"


def _parse_process(r: _Reader, value: Any, path: KeyPath, base_year: int) -> Process:
    """A ``process:`` mapping, read by its kind's spec (:mod:`targetsim.model.processes`)."""
    if not isinstance(value, Mapping):
        raise r.fail(path, f"expected a mapping with a 'kind', got {_type_name(value)}")
    kind = r.choice(r.required(value, "kind", path), (*path, "kind"), PROCESS_KINDS, "process kind")
    spec = PROCESS_SPECS[kind]
    if isinstance(value.get("volatility"), Mapping) and not spec.estimated_volatility:
        instead = (f"a {kind} takes a known volatility: a number" if "volatility" in spec.keys else
                   f"a {kind} has no volatility")
        raise r.fail((*path, "volatility"), _estimated_volatility_refused(instead))
    return spec.parse(r, r.mapping(value, path, spec.keys), path, base_year)


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
            raise r.fail(path, "an indicator's correlation with itself is 1; list pairs of different indicators")
        for j, name in ((0, a), (1, b)):
            kind = indicators[index[name]].process.kind
            if kind not in SHOCKED_KINDS:
                # its row of the factor would take a share of the partner's shock and drop it
                what = ("correlate its parts instead" if kind in DERIVED_KINDS else
                        "its yearly additions are drawn independently")
                raise r.fail((*path, j), f"{name} is a {kind}: it has no yearly shock of its own, so a correlation "
                             f"with it has no defined meaning ({what}); correlations join the shocks of "
                             f"{', '.join(SHOCKED_KINDS)} indicators")
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


def _parse_targets(r: _Reader, top: Mapping[str, Any], indicators: tuple[Indicator, ...],
                   base_year: int, horizon: int) -> tuple[Target, ...]:
    raw = r.required(top, "targets", ())
    if not isinstance(raw, list) or not raw:
        raise r.fail(("targets",), f"expected a non-empty list of targets, got {_type_name(raw)}")
    processes = {ind.id: ind.process for ind in indicators}
    kinds = {ind.id: ind.process.kind for ind in indicators}
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
        if indicator not in kinds:
            hint = difflib.get_close_matches(indicator, sorted(kinds), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise r.fail((*path, "indicator"), f"unknown indicator {indicator!r}{extra}")
        kind = r.required(spec, "kind", path)
        if kind not in TARGET_KINDS:
            hint = difflib.get_close_matches(str(kind), TARGET_KINDS, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise r.fail((*path, "kind"), f"unknown target kind {kind!r} (known: {', '.join(TARGET_KINDS)}){extra}")
        process_kind = kinds[indicator]
        tpath = (*path, "threshold")
        raw_threshold = r.required(spec, "threshold", path)
        target_spec = TARGET_SPECS[kind]
        if target_spec.indicators is not None and process_kind not in target_spec.indicators:
            needed = (f"a share indicator ({', '.join(target_spec.indicators)})" if kind == "share" else
                      f"a {' or '.join(target_spec.indicators)} indicator")
            instead = f" (use {target_spec.instead!r})" if target_spec.instead else ""
            raise r.fail((*path, "kind"), f"a {kind} target needs {needed}; {indicator} is a {process_kind}{instead}")
        low, high, low_open, what = target_spec.threshold(indicator)
        threshold = r.number(raw_threshold, tpath, low=low, high=high, low_open=low_open, what=what)
        bounds = PROCESS_SPECS[process_kind].bounds(processes[indicator])
        if bounds is not None and target_spec.compares_value and not bounds[0] < threshold < bounds[1]:
            raise r.fail(tpath, f"{indicator} is a {process_kind}, which lies strictly between {bounds[0]:g} and "
                         f"{bounds[1]:g} and never reaches {threshold:g}: the rule would be decided by "
                         f"construction; set a threshold inside ({bounds[0]:g}, {bounds[1]:g}), or model a value "
                         "that can reach its bound as a ratio")
        by = r.integer(r.required(spec, "by", path), (*path, "by"))
        if not base_year < by <= horizon:
            raise r.fail((*path, "by"), f"must lie after base_year {base_year} and at most horizon {horizon}, got {by}")
        comparator = spec.get("comparator", ">=")
        if comparator not in COMPARATORS:
            raise r.fail((*path, "comparator"), f"unknown comparator {comparator!r} (known: {', '.join(COMPARATORS)})")
        tolerance = DEFAULT_TOLERANCE
        if spec.get("tolerance") is not None:
            if comparator not in ABOUT_COMPARATORS:
                raise r.fail((*path, "tolerance"), "a tolerance only applies to the comparators '~' (about) and "
                             "'~>=' (about, or more)")
            tolerance = r.number(spec["tolerance"], (*path, "tolerance"), low=0.0, low_open=True, high=1.0,
                                 what="relative to the threshold: 0.1 means within ±10 % of it")
        if comparator in ABOUT_COMPARATORS and threshold == 0:
            raise r.fail(tpath, f"'{comparator}' (about) needs a non-zero threshold: its tolerance is relative to it")
        source = _parse_source(r, spec.get("source"), (*path, "source"))
        label = spec.get("label")
        if label is not None:
            label = r.string(label, (*path, "label"))
        tier = spec.get("tier")
        if tier is not None:
            tier = r.integer(tier, (*path, "tier"), low=1, high=9)
        aspirational = spec.get("aspirational", False)
        if not isinstance(aspirational, bool):
            raise r.fail((*path, "aspirational"), f"expected true or false (力争: the plan strives for it), got "
                         f"{_type_name(aspirational)}")
        reading = spec.get("reading")
        reading = "" if reading is None else r.string(reading, (*path, "reading"))
        plan = spec.get("plan")
        plan = "" if plan is None else r.string(plan, (*path, "plan"))
        out.append(Target(id=tid, indicator=indicator, kind=kind, threshold=threshold, by=by,
                          comparator=comparator, source=source, label=label, tier=tier, tolerance=tolerance,
                          aspirational=aspirational, reading=reading, plan=plan))
    return tuple(out)


def _parse_not_modelled(r: _Reader, raw: Any, target_ids: set[str]) -> tuple[NotModelled, ...]:
    """Targets of the plan that cannot honestly be simulated: listed with the reason, not run."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise r.fail(("not_modelled",), f"expected a list of {{id, reason, source}}, got {_type_name(raw)}")
    out = []
    for k, item in enumerate(raw):
        path: KeyPath = ("not_modelled", k)
        spec = r.mapping(item, path, NOT_MODELLED_KEYS)
        tid = r.string(r.required(spec, "id", path), (*path, "id"))
        if tid in target_ids or tid in {n.id for n in out}:
            raise r.fail((*path, "id"), f"target {tid!r} is listed twice")
        out.append(NotModelled(
            id=tid, kind=r.string(spec.get("kind", "other"), (*path, "kind")),
            reason=r.string(r.required(spec, "reason", path), (*path, "reason")),
            source=_parse_source(r, spec.get("source"), (*path, "source"))))
    return tuple(out)


def _parse_shocks(r: _Reader, raw: Any) -> Shocks:
    if raw is None:
        return Shocks()
    spec = r.mapping(raw, ("shocks",), SHOCKS_KEYS)
    dist = spec.get("distribution", "normal")
    if dist not in SHOCK_DISTRIBUTIONS:
        hint = difflib.get_close_matches(str(dist), SHOCK_DISTRIBUTIONS, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise r.fail(("shocks", "distribution"), f"unknown shock distribution {dist!r} "
                     f"(known: {', '.join(SHOCK_DISTRIBUTIONS)}){extra}")
    dof = None
    if dist == "student_t":
        dof = r.number(r.required(spec, "dof", ("shocks",)), ("shocks", "dof"), low=2.0, low_open=True, high=1e6,
                       what="the variance exists only for dof > 2")
    elif spec.get("dof") is not None:
        raise r.fail(("shocks", "dof"), "only student_t shocks have 'dof'")
    skew = 0.0
    if dist == "two_piece":
        skew = r.number(r.required(spec, "skew", ("shocks",)), ("shocks", "skew"), low=-0.99, high=0.99)
    elif spec.get("skew") is not None:
        raise r.fail(("shocks", "skew"), "only two_piece shocks have 'skew'")
    return Shocks(distribution=dist, dof=dof, skew=skew)


def _parse_jumps(r: _Reader, raw: Any, kinds: dict[str, str], base_year: int, horizon: int) -> tuple[Jump, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise r.fail(("jumps",), f"expected a list of jumps, got {_type_name(raw)}")
    out = []
    for k, item in enumerate(raw):
        path: KeyPath = ("jumps", k)
        spec = r.mapping(item, path, JUMP_KEYS)
        name = r.string(spec.get("name", f"jump {k + 1}"), (*path, "name"))
        prob = r.number(r.required(spec, "probability", path), (*path, "probability"), low=0.0, high=1.0)
        raw_years = spec.get("years")
        if raw_years is None:
            years = tuple(range(base_year + 1, horizon + 1))
        else:
            if not isinstance(raw_years, list) or not raw_years:
                raise r.fail((*path, "years"), f"expected a non-empty list of years, got {_type_name(raw_years)}")
            years = tuple(r.integer(y, (*path, "years", j), low=base_year + 1, high=horizon)
                          for j, y in enumerate(raw_years))
            if len(set(years)) != len(years):
                raise r.fail((*path, "years"), "a year appears twice")
        effects_raw = r.required(spec, "effects", path)
        if not isinstance(effects_raw, Mapping) or not effects_raw:
            raise r.fail((*path, "effects"), f"expected a mapping indicator: log-size, got {_type_name(effects_raw)}")
        effects = []
        for ind, size in effects_raw.items():
            epath = (*path, "effects", str(ind))
            _shocked_indicator(r, kinds, ind, epath, lambda kind: (
                f"a jump moves the log level (or logit) of {', '.join(SHOCKED_KINDS)} indicators; {ind} is a {kind}"))
            effects.append((str(ind), r.number(size, epath, low=-20.0, high=20.0, what="a log-size: -0.1 ≈ -10 %")))
        out.append(Jump(name=name, probability=prob, years=years, effects=tuple(effects)))
    return tuple(out)


def _parse_observations(r: _Reader, raw: Any, indicators: tuple[Indicator, ...], base_year: int, horizon: int,
                        shocks: Shocks) -> tuple[tuple[str, tuple[tuple[int, float], ...]], ...]:
    processes = {ind.id: ind.process for ind in indicators}
    kinds = {ind.id: ind.process.kind for ind in indicators}
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise r.fail(("observations",), f"expected a mapping indicator: {{year: value}}, got {_type_name(raw)}")
    if raw and shocks.distribution != "normal":
        raise r.fail(("observations",), "observations need normal shocks (the likelihood of other shock "
                     "distributions is not implemented)")
    out = []
    for ind, years in raw.items():
        path: KeyPath = ("observations", str(ind))
        if ind not in kinds:
            hint = difflib.get_close_matches(str(ind), list(kinds), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise r.fail(path, f"unknown indicator {ind!r}{extra}")
        if kinds[ind] == "scheduled":
            raise r.fail(path, "observations of a scheduled indicator are not supported: with carry-over, the "
                         "likelihood of an observed stock depends on the units still carried, which are not "
                         "observed; start the scenario in the observed year instead (its value as the start)")
        if kinds[ind] not in OBSERVABLE_KINDS:
            raise r.fail(path, f"observations of a {kinds[ind]} indicator are not supported "
                         f"(observable: {', '.join(OBSERVABLE_KINDS)}); observe its parts instead")
        if not isinstance(years, Mapping) or not years:
            raise r.fail(path, f"expected a mapping year: value, got {_type_name(years)}")
        values = []
        for year, value in years.items():
            ypath = (*path, str(year))
            y = r.integer(year, ypath, low=base_year + 1, high=horizon)
            v = r.number(value, ypath)
            spec = PROCESS_SPECS[kinds[ind]]
            problem = spec.observation_problem(v) or _outside(spec, processes[ind], v, "is observed")
            if problem:
                raise r.fail(ypath, problem)
            values.append((y, v))
        out.append((str(ind), tuple(sorted(values))))
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
