"""What each indicator's and each target's process parameters rest on: their *basis* (issue 17).

One place decides it, from the loaded scenario, so the dataset (``indicator_basis``, ``target_basis``),
the results table and ``targetsim catalog`` all say the same. The bases, from the strongest:

- ``fit``: fitted at load time (``process: {fit: ...}``) on at least :data:`MIN_FIT_POINTS` observed
  values of the indicator's own series (not a proxy);
- ``pooled``: fitted, but on fewer points, on a proxy's series (``proxy_for``), or pooled with other
  series (a fit's notes say so);
- ``outside view``: set from how comparable past plan targets turned out (``growth``/``drift``/``mean:
  {outside_view: ...}``; :mod:`targetsim.estimate.outside_view`);
- ``sourced``: written by hand from sourced figures (``parameters.source`` names them), with whatever
  the figures do not pin down assumed;
- ``assumption``: no source (``parameters.source`` empty or "none found"): an assumption with its reason;
- ``plan pace``: the old plan-pace prior: an assumption whose stated reason is that the indicator moves,
  on average, at the pace its target needs (P(met) about one half by construction). It is recognised
  by its written reason in ``parameters``, the wording every shipped model used for it: ``plan's pace``,
  ``plan-pace``, ``uninformative prior``, ``pace the target needs``, ``even odds``, or ``header convention`` with no
  source. A ``scheduled`` count is never plan pace: its convention plans more units than the target
  needs, each delivered with a probability (README "A scheduled count"), so P(met) is not one half by
  construction; it is an ``assumption`` (or ``sourced``). The shipped models no longer use plan pace.

A derived indicator (``ratio``, ``sum``) has the weakest basis of its parts, and a target the basis of
its indicator: a ratio of a fitted numerator and an assumed denominator is ``assumption``. Where an
outside view and a sourced hand-set value are compared, the outside view counts as the stronger: it is
estimated, with its uncertainty, on a reference class (``sourced`` values mostly borrow a rate from a
neighbouring statistic and assume the rest). The basis is about the process parameters; whether the
start value is observed is recorded apart (``indicator_start_is_assumption``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from targetsim.model.scenario import Indicator, Scenario

__all__ = ["BASES", "MIN_FIT_POINTS", "indicator_bases", "target_bases", "basis_counts", "is_plan_pace",
           "OUTSIDE_VIEW_KIND"]

#: the bases, weakest first (a derived indicator takes the first of its parts' in this order)
BASES: tuple[str, ...] = ("plan pace", "assumption", "sourced", "outside view", "pooled", "fit")
#: a fit on at least this many observed values of the city's own series is ``fit``; fewer is ``pooled``
MIN_FIT_POINTS = 5
#: ``FittedParameters.kind`` of parameters set by the outside view (targetsim.io.scenarios)
OUTSIDE_VIEW_KIND = "outside_view"

_PLAN_PACE = re.compile(r"plan'?s pace|plan[- ]pace|uninformative prior|pace the (plan|target) needs|even (odds|chance)", re.IGNORECASE)
_CONVENTION = re.compile(r"header convention", re.IGNORECASE)
_NO_SOURCE = re.compile(r"^\s*(none found|none|no source|n/?a)?\s*[.;]?\s*$", re.IGNORECASE)
_POOLED = re.compile(r"pool", re.IGNORECASE)


def is_plan_pace(ind: Indicator) -> bool:
    """Whether the indicator's written parameters say they are the plan-pace prior (and nothing set them
    from a fit or the outside view)."""
    if ind.fitted is not None or ind.process.kind == "scheduled":
        return False
    text = f"{ind.parameters.source} {ind.parameters.assumption}"
    unsourced = bool(_NO_SOURCE.match(ind.parameters.source or ""))
    return bool(_PLAN_PACE.search(text)) or (unsourced and bool(_CONVENTION.search(text)))


def _own_basis(ind: Indicator) -> str:
    fitted = ind.fitted
    if fitted is not None:
        if fitted.kind == OUTSIDE_VIEW_KIND:
            return "outside view"
        pooled = ind.is_proxy or any(_POOLED.search(note) for note in fitted.notes)
        return "fit" if len(fitted.years) >= MIN_FIT_POINTS and not pooled else "pooled"
    if is_plan_pace(ind):
        return "plan pace"
    if _NO_SOURCE.match(ind.parameters.source or ""):
        return "assumption"
    return "sourced"


def indicator_bases(indicators: Iterable[Indicator]) -> dict[str, str]:
    """Each indicator's basis (see the module docstring), by id; a derived one's is its weakest part's."""
    by_id = {ind.id: ind for ind in indicators}
    bases: dict[str, str] = {}

    def basis(ind: Indicator) -> str:
        if ind.id not in bases:
            proc = ind.process
            if proc.kind == "ratio":
                parts = [basis(by_id[proc.numerator]), basis(by_id[proc.denominator])]
                bases[ind.id] = min(parts, key=BASES.index)
            elif proc.kind == "sum":
                bases[ind.id] = min((basis(by_id[t]) for t in proc.terms), key=BASES.index)
            else:
                bases[ind.id] = _own_basis(ind)
        return bases[ind.id]

    for ind in by_id.values():
        basis(ind)
    return bases


def target_bases(scenario: Scenario) -> dict[str, str]:
    """Each target's basis: its indicator's, by target id."""
    bases = indicator_bases(scenario.indicators)
    return {t.id: bases[t.indicator] for t in scenario.targets}


def basis_counts(scenario: Scenario) -> dict[str, dict[str, int]]:
    """Per plan (a joint run's plans; otherwise the scenario's name), the number of targets of each basis
    (every basis of :data:`BASES` present, zeros included)."""
    bases = target_bases(scenario)
    counts: dict[str, dict[str, int]] = {}
    for t in scenario.targets:
        plan = t.plan or scenario.name
        counts.setdefault(plan, dict.fromkeys(BASES, 0))[bases[t.id]] += 1
    return counts
