"""Typed, immutable scenario objects. No I/O and no numerics here.

A :class:`Scenario` is built from parsed YAML by :func:`targetsim.model.parse.parse_scenario`;
every field has already been validated when an instance exists.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from targetsim.model.processes import (  # noqa: F401 - the process kinds, re-exported with the scenario's types
    COUNT_DISTRIBUTIONS,
    DERIVED_KINDS,
    OBSERVABLE_KINDS,
    PROCESS_KINDS,
    SHOCKED_KINDS,
    Ar1GrowthProcess,
    BuildoutProcess,
    CountProcess,
    Growth,
    LogitShareProcess,
    LognormalProcess,
    Process,
    Project,
    RatioProcess,
    SumProcess,
)
from targetsim.model.targets import SHARE_KINDS, TARGET_KINDS  # noqa: F401 - re-exported

TargetKind = Literal["level", "cagr", "first_passage", "share", "growth_each_year",
                     "count_stock", "count_per_year", "cumulative", "in_year"]
Comparator = Literal[">=", ">", "<=", "<", "~", "~>="]

COMPARATORS: tuple[str, ...] = (">=", ">", "<=", "<", "~", "~>=")
#: comparators read with a tolerance: "~" (about, a two-sided band) and "~>=" (about, or more: the band's lower edge)
ABOUT_COMPARATORS: tuple[str, ...] = ("~", "~>=")
SHOCK_DISTRIBUTIONS: tuple[str, ...] = ("normal", "student_t", "two_piece")
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
DEFAULT_TOLERANCE = 0.1
#: an indicator's price basis (``price_basis:``): current prices, constant (comparable) prices, an index,
#: or not money at all; not given is recorded as ``unknown``
PRICE_BASES: tuple[str, ...] = ("nominal", "real", "index", "not_monetary")
UNKNOWN_PRICE_BASIS = "unknown"
#: the monetary bases that must never be mixed in one ratio or sum
MONETARY_PRICE_BASES: tuple[str, ...] = ("nominal", "real")


@dataclass(frozen=True)
class Shocks:
    """Distribution of the yearly shocks ε (always mean 0, variance 1).

    ``student_t``: a multivariate t with ``dof`` degrees of freedom (one scale draw per year shared
    by all indicators). ``two_piece``: a two-piece normal with ``skew`` in (−1, 1): the right
    half's s.d. over the left half's is ``(1 + skew) / (1 − skew)``; applied to each indicator's
    correlated normal through its rank (a Gaussian copula).
    """

    distribution: Literal["normal", "student_t", "two_piece"] = "normal"
    dof: float | None = None
    skew: float = 0.0


@dataclass(frozen=True)
class Jump:
    """A rare common event: in each of ``years`` it happens with ``probability`` and then adds
    ``effects[indicator]`` to that indicator's log level (logit, for a share)."""

    name: str
    probability: float
    years: tuple[int, ...]
    effects: tuple[tuple[str, float], ...]


def _provenance(source: str, assumption: str | None, what: str) -> str:
    """One line: the source, or the assumption (with the sourced inputs it builds on)."""
    if assumption:
        text = f"assumption: {assumption}"
        return f"{text} (inputs: {source})" if source else text
    return source or f"assumption: {what} given in the scenario without a source"


# The standard normal's 95 % quantile: a range {low, high} is the central 90 % interval of its law.
START_Z90 = 1.6448536269514722


@dataclass(frozen=True)
class Start:
    """Where an indicator starts in the base year.

    ``from_baseline``: take the baselines file's value for the base year (``value`` and
    ``source`` are filled in when the scenario is loaded with its baselines). Otherwise
    ``value`` is given in the scenario. ``assumption`` says why the value is assumed rather
    than observed; ``source`` names the document (or baseline row) it comes from.

    An uncertain start (``law`` not ``known``) is drawn once per path: ``lognormal`` (``{low, high}``,
    the default law of a range): the indicator's natural scale (``ln X`` for a level, the logit of the
    share — of the ceiling, for a logistic — for a share) is normal with 5 % and 95 % quantiles at those
    of ``low`` and ``high`` (for a share: a logit-normal law); ``uniform``: X uniform on ``[low, high]``;
    ``normal`` (``{mean, sd}``): X normal (``sd`` kept, ``mean`` in ``value``), its deviation limited
    to ±6 s.d. (validation keeps that range valid). ``value`` is then the law's median.
    """

    from_baseline: bool
    value: float | None = None
    assumption: str | None = None
    source: str = ""
    law: Literal["known", "lognormal", "uniform", "normal"] = "known"
    low: float | None = None
    high: float | None = None
    sd: float | None = None

    @property
    def is_assumption(self) -> bool:
        return bool(self.assumption) or not self.source

    @property
    def uncertain(self) -> bool:
        """Whether each path draws its own start (``law`` other than ``known``)."""
        return self.law != "known"

    def interval(self) -> tuple[float, float]:
        """``(low, high)`` as the dataset records them: the given ``low``/``high`` of a range (a log-normal's
        or logit-normal's 5 % and 95 % quantiles, a uniform law's ends), a normal's ``mean ∓ 1.6449·sd``
        (its 5 % and 95 % quantiles); NaN for a known start."""
        if self.law == "normal":
            return self.value - START_Z90 * self.sd, self.value + START_Z90 * self.sd
        if self.law in ("lognormal", "uniform"):
            return self.low, self.high
        return math.nan, math.nan

    def provenance(self) -> str:
        return _provenance(self.source, self.assumption, "value")


@dataclass(frozen=True)
class Parameters:
    """Where an indicator's process parameters come from.

    ``source``: the history they are estimated from (baseline rows, documents) and how;
    ``assumption``: why they are assumed. Parameters with no source at all are an assumption.
    """

    source: str = ""
    assumption: str = ""

    @property
    def is_assumption(self) -> bool:
        return bool(self.assumption) or not self.source

    def provenance(self) -> str:
        return _provenance(self.source, self.assumption, "parameters")


@dataclass(frozen=True)
class FittedParameters:
    """What ``process: {fit: ...}`` estimated from the baselines when the scenario was loaded
    (:mod:`targetsim.estimate`): the kind chosen, each parameter's estimate and standard error
    (NaN where it has none), the observed years used, the degrees of freedom of the volatility,
    the AICc of each candidate and the fit's notes (gaps, breaks, estimates, short histories)."""

    kind: str
    estimates: tuple[tuple[str, float, float], ...]
    years: tuple[int, ...]
    df: float
    criteria: tuple[tuple[str, float], ...] = ()
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        crit = ", ".join(f"{k} {v:.2f}" if v != float("inf") else f"{k} n/a" for k, v in self.criteria)
        text = (f"{self.kind} fitted to {len(self.years)} observed values ({', '.join(map(str, self.years))}), "
                f"volatility df {self.df:g}")
        text += f"; AICc {crit}" if crit else ""
        return text + "".join(f"; {n}" for n in self.notes)


@dataclass(frozen=True)
class Indicator:
    id: str
    label: str
    unit: str
    start: Start | None
    process: Process
    parameters: Parameters = field(default_factory=Parameters)
    fitted: FittedParameters | None = None  # set when the process was fitted at load time
    # the statistic this indicator's figures stand in for, or what stands in for it (empty: not a proxy)
    proxy_for: str = ""
    # nominal | real | index | not_monetary; "unknown" when the scenario does not say
    price_basis: str = UNKNOWN_PRICE_BASIS

    @property
    def is_proxy(self) -> bool:
        return bool(self.proxy_for)

    @property
    def is_derived(self) -> bool:
        return self.process.kind in DERIVED_KINDS


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
    """A rule on one indicator's path, evaluated in year ``by`` (see the README for each kind).

    ``level``: ``X(by) <comparator> threshold``.
    ``cagr``: ``(X(by)/X(base_year))^(1/(by-base_year)) - 1 <comparator> threshold``.
    Comparator ``~`` (about, 左右, a two-sided band): within ``tolerance`` × |threshold| of the threshold.
    Comparator ``~>=`` (about, or more: 左右 read as a soft floor): at least ``threshold − tolerance × |threshold|``,
    the lower edge of the ``~`` band (for a growth rate, compared as ``ln(1 + g)`` like every rate).
    ``aspirational``: the plan only strives for it (力争). ``reading``: why the target departs from the
    reading rules of :mod:`targetsim.model.reading` (empty: it follows them).
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
    tolerance: float = DEFAULT_TOLERANCE
    aspirational: bool = False
    reading: str = ""
    plan: str = ""


@dataclass(frozen=True)
class NotModelled:
    """A target of the plan that cannot honestly be simulated (e.g. a delivery-time promise)."""

    id: str
    reason: str
    kind: str = "other"
    source: Source = field(default_factory=Source)


@dataclass(frozen=True)
class Correlation:
    a: str
    b: str
    rho: float


@dataclass(frozen=True)
class Factor:
    """A common yearly shock ``f ~ N(0, 1)`` that loads on indicators: indicator ``i``'s standardised
    shock is ``λ_i f + sqrt(1 − Σ λ²) u_i``, where the ``u`` are correlated as the declared pairs say.
    So the shocks' correlation is ``Λ Λᵀ + D R D`` (``D = diag(sqrt(1 − Σ λ²))``, ``R`` the pairs'
    matrix): a city-wide cycle shared by every plan that uses these indicators."""

    name: str
    loadings: tuple[tuple[str, float], ...]
    label: str = ""
    source: str = ""
    assumption: str = ""


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
    shocks: Shocks = field(default_factory=Shocks)
    jumps: tuple[Jump, ...] = ()
    # observed values after the base year: ((indicator, ((year, value), ...)), ...)
    observations: tuple[tuple[str, tuple[tuple[int, float], ...]], ...] = ()
    not_modelled: tuple[NotModelled, ...] = ()
    file: Path | None = None
    sha256: str = ""
    factors: tuple[Factor, ...] = ()
    # the city model the scenario names (models/<city>.yaml), and every baselines file it reads, in
    # order (the model's, then the plan's); ``baselines`` is the first of them
    model: Path | None = None
    baseline_files: tuple[Path, ...] = ()

    @cached_property
    def indicator_by_id(self) -> dict[str, Indicator]:
        return {ind.id: ind for ind in self.indicators}

    @property
    def years(self) -> range:
        return range(self.base_year, self.horizon + 1)

    @property
    def plans(self) -> tuple[str, ...]:
        """The plans whose targets the scenario holds, in order (a target without one: the scenario's)."""
        return tuple(dict.fromkeys(t.plan or self.name for t in self.targets))


def assumption_flags(indicators: tuple[Indicator, ...], *, parameters: bool = True) -> dict[str, bool]:
    """For each indicator id: does it rest on an assumption? Its start value (and, with
    ``parameters``, its process parameters) does; a derived indicator (``ratio``, ``sum``) does
    when any of its parts does."""
    by_id = {ind.id: ind for ind in indicators}
    flags: dict[str, bool] = {}

    def assumed(ind: Indicator) -> bool:
        if ind.id not in flags:
            if ind.start is not None:
                flags[ind.id] = ind.start.is_assumption or (parameters and ind.parameters.is_assumption)
            else:
                flags[ind.id] = any(assumed(by_id[r]) for r in parts_of(ind))
        return flags[ind.id]

    for ind in indicators:
        assumed(ind)
    return flags


def parts_of(ind: Indicator) -> tuple[str, ...]:
    """The indicators a derived indicator (``ratio``, ``sum``) is computed from; none for a simulated one."""
    if ind.start is not None:
        return ()
    proc = ind.process
    return (proc.numerator, proc.denominator) if proc.kind == "ratio" else tuple(proc.terms)


def restricted_to(scenario: Scenario, target_ids) -> Scenario:
    """The scenario with only the targets ``target_ids`` and the indicators they need: their indicators and
    parts, and every observed indicator whose shock is tied to a kept one (a declared pair, a common factor
    or a common jump; transitively), since its observations weight the kept ones' paths. The kept indicators
    have exactly the joint law they have in the whole scenario (the rule ``targetsim.io.models.prune``
    applies to a plan's document); the paths' random numbers differ, since fewer indicators draw them."""
    wanted = set(target_ids)
    targets = tuple(t for t in scenario.targets if t.id in wanted)
    by_id = {ind.id: ind for ind in scenario.indicators}

    def close(names: set[str]) -> set[str]:
        todo, out = list(names), set(names)
        while todo:
            for part in parts_of(by_id[todo.pop()]):
                if part not in out:
                    out.add(part)
                    todo.append(part)
        return out

    keep = close({t.indicator for t in targets})
    tied: dict[str, set[str]] = {}
    groups = ([(c.a, c.b) for c in scenario.correlations] + [[i for i, _ in f.loadings] for f in scenario.factors]
              + [[i for i, _ in j.effects] for j in scenario.jumps])
    for group in groups:
        for a in group:
            tied.setdefault(a, set()).update(b for b in group if b != a)
    observed = {name for name, _ in scenario.observations}
    grew = True
    while grew:
        grew = False
        for name in sorted(observed - keep):
            if tied.get(name, set()) & keep:
                keep, grew = close(keep | {name}), True
    factors = tuple(dataclasses.replace(f, loadings=tuple((i, v) for i, v in f.loadings if i in keep))
                    for f in scenario.factors)
    jumps = tuple(dataclasses.replace(j, effects=tuple((i, v) for i, v in j.effects if i in keep))
                  for j in scenario.jumps)
    return dataclasses.replace(
        scenario, targets=targets, indicators=tuple(i for i in scenario.indicators if i.id in keep),
        correlations=tuple(c for c in scenario.correlations if c.a in keep and c.b in keep),
        factors=tuple(f for f in factors if f.loadings), jumps=tuple(j for j in jumps if j.effects),
        observations=tuple((name, obs) for name, obs in scenario.observations if name in keep))
