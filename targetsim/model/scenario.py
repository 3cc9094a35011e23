"""Typed, immutable scenario objects. No I/O and no numerics here.

A :class:`Scenario` is built from parsed YAML by :func:`targetsim.model.parse.parse_scenario`;
every field has already been validated when an instance exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

TargetKind = Literal["level", "cagr"]
Comparator = Literal[">=", ">", "<=", "<"]

TARGET_KINDS: tuple[str, ...] = ("level", "cagr")
COMPARATORS: tuple[str, ...] = (">=", ">", "<=", "<")
PROCESS_KINDS: tuple[str, ...] = ("lognormal",)
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class Growth:
    """Annual growth rate as a fraction: ``g ~ Normal(mean, sd)``, drawn once per path."""

    mean: float
    sd: float = 0.0


@dataclass(frozen=True)
class LognormalProcess:
    """``ln X(t+1) = ln X(t) + ln(1+g) + volatility·ε(t)``, ``g ~ Normal(growth.mean, growth.sd)``."""

    growth: Growth
    volatility: float
    kind: Literal["lognormal"] = "lognormal"


Process = LognormalProcess


@dataclass(frozen=True)
class Start:
    """Where an indicator starts in the base year.

    ``from_baseline``: take the baselines file's value for the base year (``value`` and
    ``source`` are filled in when the scenario is loaded with its baselines). Otherwise
    ``value`` is given in the scenario. ``assumption`` says why the value is assumed rather
    than observed; ``source`` names the document (or baseline row) it comes from.
    """

    from_baseline: bool
    value: float | None = None
    assumption: str | None = None
    source: str = ""

    @property
    def is_assumption(self) -> bool:
        return bool(self.assumption) or not self.source

    def provenance(self) -> str:
        if self.assumption:
            text = f"assumption: {self.assumption}"
            return f"{text} (inputs: {self.source})" if self.source else text
        return self.source or "assumption: value given in the scenario without a source"


@dataclass(frozen=True)
class Indicator:
    id: str
    label: str
    unit: str
    start: Start
    process: Process


@dataclass(frozen=True)
class Source:
    """Where a target comes from: seed file, clause and verbatim quote (any may be empty)."""

    seed: str = ""
    clause: str = ""
    quote: str = ""
    document: str = ""
    url: str = ""

    def render(self) -> str:
        parts = [p for p in (self.document, self.seed, self.clause, self.url) if p]
        text = ", ".join(parts)
        if self.quote:
            text = f"{text}: 「{self.quote}」" if text else f"「{self.quote}」"
        return text


@dataclass(frozen=True)
class Target:
    """A rule on one indicator's path, evaluated in year ``by``.

    ``level``: ``X(by) <comparator> threshold``.
    ``cagr``: ``(X(by)/X(base_year))^(1/(by-base_year)) - 1 <comparator> threshold``.
    """

    id: str
    indicator: str
    kind: TargetKind
    threshold: float
    by: int
    comparator: Comparator = ">="
    source: Source = field(default_factory=Source)
    label: str | None = None
    tier: int | None = None


@dataclass(frozen=True)
class Correlation:
    a: str
    b: str
    rho: float


@dataclass(frozen=True)
class Scenario:
    name: str
    base_year: int
    horizon: int
    indicators: tuple[Indicator, ...]
    targets: tuple[Target, ...]
    description: str = ""
    paths: int = 100_000
    seed: int = 0
    baselines: Path | None = None
    correlations: tuple[Correlation, ...] = ()
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    file: Path | None = None
    sha256: str = ""

    @cached_property
    def indicator_by_id(self) -> dict[str, Indicator]:
        return {ind.id: ind for ind in self.indicators}

    @property
    def years(self) -> range:
        return range(self.base_year, self.horizon + 1)
