"""What it would take: the value of one parameter (a *lever*) that gives a target a chosen probability.

The scenario is run again and again with only the lever changed, always with the same seed and the
same number of paths (common random numbers): the target's probability is then a deterministic
function of the lever, monotone in practice, and a bracketing root finder (``scipy.optimize.brentq``
on ``P(lever) − goal``) finds where it crosses the goal. Each run keeps only the target asked about and
the indicators it needs (:func:`targetsim.model.scenario.restricted_to`: the same joint law as in the
whole scenario, so a goal in a joint run of five plans costs what it costs in a small one; the paths'
random numbers differ from the full run's, so the probability now agrees with it within Monte Carlo
error, not to the bit).

Levers (each moves one indicator's parameter; a ``ratio`` or ``sum`` target moves one of its parts,
the numerator by default, ``indicator=`` to choose):

- ``growth``: the growth mean. ``lognormal`` and ``buildout`` (organic part): ``growth.mean`` (or
  ``log_mean``); ``ar1_growth``: ``long_run_growth``; ``logit_share`` and ``logistic``: the drift of
  the logit; ``count``: the additions' mean (an uncertain mean keeps its relative s.d.);
  ``scheduled``: the delivery probability's mean. The growth's s.d., the volatility and everything
  else stay as they are. Searched on ``ln(1+g)`` from −50 % to +100 % a year (a drift: ±3 on the
  logit; a count's mean: ÷100 to ×100; a delivery probability: 0.1 % to 99.9 %).
- ``start``: the start value (an uncertain start's law is scaled as a whole: its median, range and
  s.d.). Searched on ``ln x`` from ÷100 to ×100 (a share: ±6 on the logit; a whole-number start:
  0 to ten times it, and the answer is the nearest whole number that reaches the goal).
- ``project``: a ``buildout``'s completion probabilities, all multiplied by one factor, each capped
  at 1 (from 0 to the factor that makes every project certain).

The tolerances are stated with the answer: the root finder's (``tolerance``, on the search scale)
and the Monte Carlo standard error of the probability at the solution, and the standard error this
gives the value itself (the probability's s.e. divided by the slope of the probability in the
lever, from a central difference).

A goal that the lever cannot reach inside its search range is reported as unreachable, with the
probability the lever gets closest to it; no number is given as the answer then.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from targetsim.errors import TargetsimError, TargetsimWarning

if TYPE_CHECKING:
    from targetsim.model.scenario import Indicator, Scenario

#: Paths of each run (small: a goal takes ~15 runs; the HTML report asks for many goals).
DEFAULT_PATHS = 20_000
#: The root finder's tolerance on the lever's search scale (ln(1+g) for a growth: about 0.01 points).
DEFAULT_TOLERANCE = 1e-4
LEVERS = ("growth", "start", "project")
# The widest searches (see the module's docstring).
GROWTH_LOG_RANGE = (math.log(0.5), math.log(2.0))   # −50 % … +100 % a year
DRIFT_RANGE = 3.0
COUNT_FACTOR = 100.0
START_FACTOR = 100.0
START_LOGIT_RANGE = 6.0
DELIVERY_RANGE = (0.001, 0.999)


@dataclass(frozen=True)
class Lever:
    """One parameter to move. ``apply(scenario, x)`` returns the scenario with the parameter at the
    search-scale value ``x``; ``value(x)`` is the parameter in its natural unit."""

    name: str
    indicator: str
    parameter: str        # what moves, in words
    scale: str            # the search scale, in words
    unit: str             # rate | drift | count | probability | level | factor
    current: float        # on the search scale
    low: float
    high: float
    step: float           # the first step of the bracket search
    value: Callable[[float], float]
    apply: Callable[["Scenario", float], "Scenario"]
    whole: bool = False   # the natural value is a whole number
    unit_label: str = ""  # the indicator's unit (a level)
    now: float = math.nan  # the parameter's value in the scenario, in its natural unit (exactly)
    limit: str = ""        # why the search range is narrower than the widest (a kept s.d.)

    def natural(self, x: float) -> float:
        """The parameter's natural value at ``x`` (exactly the scenario's at the current value)."""
        return self.now if x == self.current and math.isfinite(self.now) else self.value(x)


@dataclass(frozen=True)
class GoalResult:
    """What it would take for ``target`` to be met with probability ``goal``.

    ``value``: the lever's value needed (natural unit), None when the goal is unreachable inside the
    search range (``reason`` says why, ``closest_value``/``closest_probability``: the best found).
    ``probability``, ``standard_error``, ``lower``, ``upper``: the probability reached at ``value``,
    its Monte Carlo s.e. and 95 % interval. ``value_standard_error``: the Monte Carlo s.e. of
    ``value`` (the probability's s.e. over the slope; NaN when it cannot be estimated). ``tolerance``:
    the root finder's, on ``scale``. ``runs``: simulations made."""

    target: str
    indicator: str
    lever: str
    parameter: str
    scale: str
    unit: str
    goal: float
    current: float
    current_probability: float
    value: float | None
    probability: float
    standard_error: float
    lower: float
    upper: float
    value_standard_error: float
    tolerance: float
    runs: int
    paths: int
    seed: int
    bounds: tuple[float, float]
    reachable: bool
    reason: str = ""
    closest_value: float = math.nan
    closest_probability: float = math.nan
    unit_label: str = ""
    notes: tuple[str, ...] = ()
    # (P just below, P just above) the value when P(met) jumps across the goal there (no value gives it exactly)
    jump: tuple[float, float] | None = None

    def format_value(self, v: float) -> str:
        return format_value(v, self.unit, self.unit_label)

    def format_value_standard_error(self) -> str:
        """The Monte Carlo s.e. of ``value`` (``0.38 points``), empty when it is not known."""
        return format_step(self.value_standard_error, self.unit) if math.isfinite(self.value_standard_error) else ""

    def describe(self) -> list[str]:
        """The answer as lines of text (what ``targetsim goal`` prints)."""
        lines = [f"{self.target}: what it would take to reach P(met) = {self.goal:.1%}",
                 f"  lever: {self.parameter}",
                 f"  now: {self.format_value(self.current)}, P(met) {self.current_probability:.1%}"]
        lo, hi = (self.format_value(b) for b in self.bounds)
        if self.reachable:
            se = (f" (Monte Carlo s.e. {format_step(self.value_standard_error, self.unit)})"
                  if math.isfinite(self.value_standard_error) else "")
            lines += [f"  needed: {self.format_value(self.value)}{se}",
                      f"  P(met) there: {self.probability:.1%} [{self.lower:.1%} – {self.upper:.1%}], "
                      f"s.e. {self.standard_error:.2%}",
                      f"  tolerance: root finder {self.tolerance:g} on {self.scale}; "
                      f"Monte Carlo s.e. of P {self.standard_error:.2%}"]
        else:
            lines += [f"  unreachable: {self.reason}",
                      f"  searched {lo} to {hi}; closest: P(met) {self.closest_probability:.1%} at "
                      f"{self.format_value(self.closest_value)}"]
        lines.append(f"  {self.runs} runs of {self.paths:,} paths, seed {self.seed} (common random numbers)")
        lines += [f"  note: {n}" for n in self.notes]
        return lines


def format_value(v: float, unit: str, unit_label: str = "") -> str:
    """A lever's value in its natural unit: ``12.30 %/yr``, ``0.0500 on the logit a year``, ..."""
    if v is None or not math.isfinite(v):
        return "n/a"
    if unit == "rate":
        return f"{100 * v:.2f} %/yr"
    if unit == "drift":
        return f"{v:.4f} on the logit a year"
    if unit == "count":
        return f"{v:,.4g} a year"
    if unit == "probability":
        return f"{100 * v:.2f} %"
    if unit == "factor":
        return f"×{v:.4f}"
    return f"{v:,.6g}" + (f" {unit_label}" if unit_label else "")


def format_step(v: float, unit: str) -> str:
    """A difference of a lever's values (an s.e.): percentage points for a rate or probability."""
    if unit in ("rate", "probability"):
        return f"{100 * v:.2f} points"
    return f"{v:.4g}"


# --------------------------------------------------------------------------- levers

def _with_process(scenario: "Scenario", indicator: str, fn: Callable[["Indicator"], "Indicator"]) -> "Scenario":
    return dataclasses.replace(scenario, indicators=tuple(fn(ind) if ind.id == indicator else ind
                                                          for ind in scenario.indicators))


def _replace_process(scenario: "Scenario", indicator: str, **changes) -> "Scenario":
    return _with_process(scenario, indicator,
                         lambda ind: dataclasses.replace(ind, process=dataclasses.replace(ind.process, **changes)))


def applicable_levers(ind: "Indicator") -> tuple[str, ...]:
    """The levers that move a (non-derived) indicator's process."""
    kind = ind.process.kind
    levers = ["growth"]
    if ind.start is not None:
        levers.append("start")
    if kind == "buildout":
        levers.append("project")
    return tuple(levers)


def _growth_lever(ind: "Indicator") -> Lever:
    proc, kind = ind.process, ind.process.kind
    if kind in ("lognormal", "ar1_growth", "buildout"):
        field = {"lognormal": "growth", "ar1_growth": "long_run_growth", "buildout": "growth"}[kind]
        growth = proc.organic.growth if kind == "buildout" else getattr(proc, field)
        current = growth.mean if growth.log else math.log1p(growth.mean)
        low, high = GROWTH_LOG_RANGE
        limit = ""
        if not growth.log and growth.sd > 0 and math.log1p(-1.0 + 8.0 * growth.sd) + 1e-6 > low:
            low = math.log1p(-1.0 + 8.0 * growth.sd) + 1e-6  # validation keeps mean − 8·sd > −1
            limit = (f"with its s.d. {growth.sd:g} kept, the mean must stay above {-1 + 8 * growth.sd:g} "
                     "(mean − 8·sd > −1)")
        low, high = min(low, current), max(high, current)

        def set_growth(sc: "Scenario", x: float) -> "Scenario":
            new = dataclasses.replace(growth, mean=x if growth.log else math.expm1(x))
            if kind == "buildout":
                return _replace_process(sc, ind.id, organic=dataclasses.replace(proc.organic, growth=new))
            return _replace_process(sc, ind.id, **{field: new})

        what = {"lognormal": "growth", "ar1_growth": "long-run growth", "buildout": "organic growth"}[kind]
        sd = (f", its log s.d. {growth.sd:g} kept" if growth.log else f", its s.d. {growth.sd:g} kept") \
            if growth.sd else ""
        name = "exp(log_mean) − 1" if growth.log else "mean"
        return Lever("growth", ind.id, f"the {what} {name} of {ind.id} ({kind}{sd})", "ln(1+g)", "rate",
                     current, low, high, 0.02, math.expm1, set_growth,
                     now=math.expm1(growth.mean) if growth.log else growth.mean, limit=limit)
    if kind in ("logit_share", "logistic"):
        drift = proc.drift
        low, high = min(-DRIFT_RANGE, drift.mean - 1.0), max(DRIFT_RANGE, drift.mean + 1.0)
        return Lever("growth", ind.id, f"the drift of {ind.id}'s logit ({kind}"
                     + (f", its s.d. {drift.sd:g} kept)" if drift.sd else ")"), "the logit's drift", "drift",
                     drift.mean, low, high, 0.05, lambda x: x,
                     lambda sc, x: _replace_process(sc, ind.id, drift=dataclasses.replace(drift, mean=x)),
                     now=drift.mean)
    if kind == "count":
        current = math.log(proc.mean)
        ratio = proc.mean_sd / proc.mean

        def set_mean(sc: "Scenario", x: float) -> "Scenario":
            return _replace_process(sc, ind.id, mean=math.exp(x), mean_sd=ratio * math.exp(x))

        return Lever("growth", ind.id, f"the yearly additions' mean of {ind.id} (count"
                     + (f", its relative s.d. {ratio:.3g} kept)" if ratio else ")"), "ln(mean)", "count",
                     current, current - math.log(COUNT_FACTOR), current + math.log(COUNT_FACTOR), math.log(1.1),
                     math.exp, set_mean, now=proc.mean)
    if kind == "scheduled":
        low, high = DELIVERY_RANGE
        sd = proc.delivery_sd
        limit = ""
        if sd > 0:  # the Beta law needs m(1 − m) > sd²
            half = math.sqrt(max(0.0, 1.0 - 4.0 * sd * sd)) / 2.0
            low, high = max(low, 0.5 - half + 1e-6), min(high, 0.5 + half - 1e-6)
            limit = (f"with the programme-level s.d. {sd:g} kept, the Beta law of the delivery probability needs "
                     f"a mean between {100 * low:.2f} % and {100 * high:.2f} %")
        low, high = min(low, proc.delivery), max(high, proc.delivery)
        return Lever("growth", ind.id, f"the delivery probability of {ind.id}'s scheduled units (scheduled"
                     + (f", its s.d. {sd:g} kept)" if sd else ")"), "the delivery probability", "probability",
                     proc.delivery, low, high, 0.05, lambda x: x,
                     lambda sc, x: _replace_process(sc, ind.id, delivery=x), now=proc.delivery, limit=limit)
    raise TargetsimError(f"the lever 'growth' does not apply to {ind.id} (a {kind})")


def _start_lever(ind: "Indicator") -> Lever:
    proc, kind, start = ind.process, ind.process.kind, ind.start
    if start is None or start.value is None:
        raise TargetsimError(f"the lever 'start' does not apply to {ind.id}: it has no start value")
    x0 = start.value
    if kind in ("count", "scheduled") and start.uncertain:  # a range of whole numbers: shifted by d
        def shifted(d: float) -> tuple[float, float, float]:
            low, high = start.low + round(d), start.high + round(d)
            median = ((int(low) + int(high)) // 2 if start.law == "uniform"
                      else math.floor(math.sqrt(low * high) + 0.5))
            return low, high, float(median)

        def set_range(sc: "Scenario", d: float) -> "Scenario":
            low, high, median = shifted(d)
            return _with_process(sc, ind.id, lambda i: dataclasses.replace(
                i, start=dataclasses.replace(i.start, value=median, low=low, high=high)))

        lowest = -start.low if start.law == "uniform" else math.floor(-start.low) + 1.0
        return Lever("start", ind.id, f"the start value of {ind.id} ({kind}, its {start.law} range "
                     f"{start.low:g}–{start.high:g} shifted by whole numbers)", "the range's shift", "level", 0.0,
                     lowest, max(100.0, 10.0 * start.high), max(1.0, round(0.05 * start.high)),
                     lambda d: shifted(d)[2], set_range, whole=True, unit_label=ind.unit, now=x0)
    if kind in ("count", "scheduled"):
        return Lever("start", ind.id, f"the start value of {ind.id} ({kind}, a whole number)", "the start value",
                     "level", x0, 0.0, x0 + max(100.0, 10.0 * x0), max(1.0, 0.05 * x0), lambda x: x,
                     lambda sc, x: _with_process(sc, ind.id, lambda i: dataclasses.replace(
                         i, start=dataclasses.replace(i.start, value=float(round(x))))),
                     whole=True, unit_label=ind.unit, now=x0)
    if kind in ("logit_share", "logistic"):
        if start.law == "normal":
            raise TargetsimError(f"the lever 'start' does not apply to {ind.id}: its start is a normal law "
                                 "{mean, sd} of a share; use --lever growth, or give the start as a range or a value")
        top = proc.ceiling if kind == "logistic" else 1.0
        current = math.log(x0 / (top - x0))

        def logit(v: float) -> float:
            return math.log(v / (top - v))

        def share(h: float) -> float:
            return top / (1.0 + math.exp(-h))

        def moved(x: float) -> tuple[float, float | None, float | None]:
            """The start's value (a range's median), low and high with its logit at ``x``."""
            if not start.uncertain:
                return share(x), None, None
            shift = x - current  # a range: both ends move by the same step on the logit
            low, high = share(logit(start.low) + shift), share(logit(start.high) + shift)
            median = share(0.5 * (logit(low) + logit(high))) if start.law == "lognormal" else 0.5 * (low + high)
            return median, low, high

        def set_share(sc: "Scenario", x: float) -> "Scenario":
            value, low, high = moved(x)
            return _with_process(sc, ind.id, lambda i: dataclasses.replace(
                i, start=dataclasses.replace(i.start, value=value, low=low, high=high)))

        law = f", its {start.law} range moved as a whole on the logit" if start.uncertain else ""
        return Lever("start", ind.id, f"the start value of {ind.id} ({kind}{law})", "the start's logit", "level",
                     current, current - START_LOGIT_RANGE, current + START_LOGIT_RANGE, 0.1,
                     lambda x: moved(x)[0], set_share, unit_label=ind.unit, now=x0)
    current = math.log(x0)

    def set_level(sc: "Scenario", x: float) -> "Scenario":
        factor = math.exp(x) / x0

        def scaled(i: "Indicator") -> "Indicator":
            s = i.start
            return dataclasses.replace(i, start=dataclasses.replace(
                s, value=s.value * factor, low=None if s.low is None else s.low * factor,
                high=None if s.high is None else s.high * factor, sd=None if s.sd is None else s.sd * factor))

        return _with_process(sc, ind.id, scaled)

    law = f", its {start.law} law scaled as a whole" if start.uncertain else ""
    return Lever("start", ind.id, f"the start value of {ind.id} ({kind}{law})", "ln(start)", "level", current,
                 current - math.log(START_FACTOR), current + math.log(START_FACTOR), math.log(1.05), math.exp,
                 set_level, unit_label=ind.unit, now=x0)


def _project_lever(ind: "Indicator") -> Lever:
    proc = ind.process
    top = max((p.probability for p in proc.projects), default=0.0)
    if top <= 0:
        raise TargetsimError(f"the lever 'project' does not apply to {ind.id}: none of its projects can complete "
                             "(every completion probability is 0)")

    def set_projects(sc: "Scenario", x: float) -> "Scenario":
        projects = tuple(dataclasses.replace(p, probability=min(1.0, p.probability * x)) for p in proc.projects)
        return _replace_process(sc, ind.id, projects=projects)

    mean = sum(p.probability for p in proc.projects) / len(proc.projects)
    least = min(p.probability for p in proc.projects if p.probability > 0)
    return Lever("project", ind.id, f"the completion probabilities of {ind.id}'s {len(proc.projects)} projects, "
                 f"all multiplied by one factor, each at most 100 % (now: mean {mean:.1%}, highest {top:.1%})",
                 "the factor", "factor", 1.0, 0.0, 1.0 / least, 0.1, lambda x: x, set_projects, now=1.0)


_LEVER_BUILDERS = {"growth": _growth_lever, "start": _start_lever, "project": _project_lever}


def _did_you_mean(name: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def find_lever(scenario: "Scenario", target_id: str, lever: str = "growth", indicator: str | None = None) -> Lever:
    """The lever that moves ``target_id``'s indicator (for a ``ratio`` or ``sum``: the part named by
    ``indicator``, the numerator by default). Refuses, with the reason and the levers that apply, a
    lever that does not apply."""
    targets = {t.id: t for t in scenario.targets}
    if target_id not in targets:
        raise TargetsimError(f"{scenario.file or scenario.name}: no target {target_id!r}"
                             f"{_did_you_mean(target_id, list(targets))} ({len(targets)} targets; "
                             "`targetsim validate` lists the scenario)")
    if lever not in LEVERS:
        raise TargetsimError(f"unknown lever {lever!r} (known: {', '.join(LEVERS)})"
                             f"{_did_you_mean(lever, list(LEVERS))}")
    by_id = scenario.indicator_by_id
    target_ind = by_id[targets[target_id].indicator]

    def parts(ind: "Indicator") -> list[str]:
        proc = ind.process
        if proc.kind == "ratio":
            return [proc.numerator, proc.denominator]
        return list(proc.terms) if proc.kind == "sum" else []

    closure, todo = [], [target_ind.id]
    while todo:  # the target's indicator and every part it is derived from
        name = todo.pop(0)
        if name not in closure:
            closure.append(name)
            todo += parts(by_id[name])
    if indicator is not None:
        if indicator not in closure:
            raise TargetsimError(f"--indicator {indicator!r} does not move target {target_id!r}: its indicator "
                                 f"{target_ind.id!r} is built from {', '.join(closure)}"
                                 f"{_did_you_mean(indicator, closure)}")
        chosen = by_id[indicator]
    else:
        chosen = target_ind
    while chosen.is_derived:
        proc = chosen.process
        if proc.kind == "ratio":
            chosen = by_id[proc.numerator]  # the numerator by default
        elif len(proc.terms) == 1:
            chosen = by_id[proc.terms[0]]
        else:
            raise TargetsimError(f"target {target_id!r} is on {chosen.id!r}, a sum of {', '.join(proc.terms)}: "
                                 "name the part to move with --indicator (indicator=)")
    levers = applicable_levers(chosen)
    if lever not in levers:
        raise TargetsimError(f"the lever {lever!r} does not apply to {chosen.id!r} (a {chosen.process.kind}); "
                             f"levers that do: {', '.join(levers)}")
    return _LEVER_BUILDERS[lever](chosen)


# --------------------------------------------------------------------------- the search

def goal(scenario: "Scenario | str", target_id: str, probability: float, lever: str = "growth", *,
         indicator: str | None = None, paths: int = DEFAULT_PATHS, seed: int | None = None,
         tolerance: float = DEFAULT_TOLERANCE, threads: int | None = None) -> GoalResult:
    """The value of ``lever`` that gives ``target_id`` the probability ``probability`` (see the
    module's docstring). ``seed`` defaults to the scenario's. Returns a :class:`GoalResult`; an
    unknown target or a lever that does not apply raises :class:`~targetsim.errors.TargetsimError`."""
    from scipy.optimize import brentq

    from targetsim.api import load_scenario, run
    from targetsim.model.scenario import Scenario, restricted_to

    if not isinstance(probability, (int, float)) or not 0.0 < probability < 1.0:
        raise TargetsimError(f"the probability to reach must lie strictly between 0 and 1, got {probability!r}")
    if not tolerance > 0:
        raise TargetsimError(f"the tolerance must be positive, got {tolerance!r}")
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    lev = find_lever(scenario, target_id, lever, indicator)
    use_seed = scenario.seed if seed is None else seed
    only = restricted_to(scenario, [target_id])
    cache: dict[float, tuple[float, float, float, float, str]] = {}
    problems: list[str] = []

    def evaluate(x: float) -> tuple[float, float, float, float, str]:
        if x not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TargetsimWarning)  # kept in the dataset's attrs
                moved = only if x == lev.current else lev.apply(only, x)  # now: the scenario as it is
                ds = run(moved, paths=paths, seed=use_seed, threads=threads)
            sel = {"target": target_id}
            cache[x] = tuple(float(ds[name].sel(sel).values.ravel()[0]) for name in (
                "attainment_probability", "attainment_probability_standard_error", "attainment_probability_lower",
                "attainment_probability_upper")) + (ds.attrs.get("warnings", ""),)
        return cache[x]

    def p(x: float) -> float:
        return evaluate(x)[0]

    def f(x: float) -> float:
        return p(x) - probability

    x0 = lev.current
    p0 = p(x0)
    root = None
    bracket = None
    if f(x0) == 0.0:
        root = x0
    else:
        above0 = f(x0) > 0
        # the direction in which the probability moves towards the goal first, then the other
        up = min(lev.high, x0 + lev.step)
        down = max(lev.low, x0 - lev.step)
        try:  # up first unless a step down moves towards the goal and a step up does not
            towards_up = (p(up) - p0) * (probability - p0) > 0
            directions = (1, -1) if towards_up or (p(up) == p0 and not (p(down) - p0) * (probability - p0) > 0) \
                else (-1, 1)
        except TargetsimError:  # a first step the engine refuses: the search below says where
            directions = (1, -1)
        for d in directions:
            prev, k = x0, 0
            while bracket is None and root is None:
                x = min(lev.high, max(lev.low, x0 + d * lev.step * 2**k))
                try:
                    fx = f(x)
                except TargetsimError as exc:  # the engine refuses this value (e.g. an overflow): stop here
                    problems.append(f"at {format_value(lev.value(x), lev.unit, lev.unit_label)} the engine "
                                    f"refused the run: {exc}")
                    break
                if fx == 0.0:
                    root = x
                elif (fx > 0) != above0:
                    bracket = (min(prev, x), max(prev, x))
                elif x in (lev.low, lev.high):
                    break
                prev, k = x, k + 1
            if bracket is not None or root is not None:
                break
    if lev.whole:  # a whole number: the crossing to within half a unit, then the whole numbers either side
        tolerance = max(tolerance, 0.5)
    if root is None and bracket is not None:
        root = brentq(f, *bracket, xtol=tolerance)
    bounds = (lev.value(lev.low), lev.value(lev.high))
    common = dict(target=target_id, indicator=lev.indicator, lever=lev.name, parameter=lev.parameter,
                  scale=lev.scale, unit=lev.unit, goal=float(probability), current=lev.natural(x0),
                  current_probability=p0, tolerance=float(tolerance), paths=paths, seed=use_seed, bounds=bounds,
                  unit_label=lev.unit_label)
    if root is None:
        tried = sorted(cache)
        closest = min(tried, key=lambda x: abs(cache[x][0] - probability))
        values = {cache[x][0] for x in tried}
        lo, hi = (format_value(b, lev.unit, lev.unit_label) for b in bounds)
        if len(values) == 1:
            reason = (f"the target's probability does not depend on this lever: P(met) = {p0:.1%} at every value "
                      f"tried from {lo} to {hi}")
        else:
            reason = (f"P(met) stays {'below' if cache[closest][0] < probability else 'above'} {probability:.1%} "
                      f"for every value of the lever from {lo} to {hi}" + (f" ({lev.limit})" if lev.limit else ""))
        return GoalResult(**common, value=None, probability=math.nan, standard_error=math.nan, lower=math.nan,
                          upper=math.nan, value_standard_error=math.nan, runs=len(cache), reachable=False,
                          reason=reason, closest_value=lev.natural(closest), closest_probability=cache[closest][0],
                          notes=tuple(problems))
    if lev.whole:  # the nearest whole number on the goal's side
        candidates = sorted(c for c in {math.floor(root), math.ceil(root)} if lev.low <= c <= lev.high)
        meets = [c for c in candidates if p(c) >= probability]
        if meets:  # the smallest change from the current value that reaches the goal
            root = min(meets, key=lambda c: abs(c - x0))
        else:
            root = min(candidates, key=lambda c: abs(p(c) - probability))
        if len(candidates) == 2 and abs(p(root) - probability) > max(3.0 * evaluate(root)[1], 0.01):
            other = candidates[0] if root == candidates[1] else candidates[1]
            problems.append(f"a whole number: P(met) is {p(other):.1%} at "
                            f"{format_value(lev.value(other), lev.unit, lev.unit_label)} and {p(root):.1%} at "
                            f"{format_value(lev.value(root), lev.unit, lev.unit_label)}; the value given is the "
                            f"nearest to now that reaches {probability:.1%}")
        value_se = math.nan
    else:
        h = lev.step / 2.0
        a, b = max(lev.low, root - h), min(lev.high, root + h)
        slope = (p(b) - p(a)) / (b - a) if b > a else 0.0
        dvalue = (lev.value(b) - lev.value(a)) / (b - a) if b > a else math.nan
        value_se = abs(evaluate(root)[1] / slope * dvalue) if slope != 0 else math.nan
    prob, se, lower, upper, notes = evaluate(root)
    jump = None
    if not lev.whole and abs(prob - probability) > max(3.0 * se, 0.01):
        a, b = max(lev.low, root - tolerance), min(lev.high, root + tolerance)
        jump = (p(a), p(b))
        problems.append(f"P(met) jumps from {p(a):.1%} to {p(b):.1%} between "
                        f"{format_value(lev.value(a), lev.unit, lev.unit_label)} and "
                        f"{format_value(lev.value(b), lev.unit, lev.unit_label)} (many paths cross the threshold "
                        f"together: a process without volatility, projects, whole numbers): no value gives exactly "
                        f"{probability:.1%}; the value given is where P(met) crosses it")
    return GoalResult(**common, value=float(lev.natural(root)), probability=prob, standard_error=se, lower=lower,
                      upper=upper, value_standard_error=value_se, runs=len(cache), reachable=True, jump=jump,
                      notes=tuple(problems) + tuple(filter(None, notes.split("\n"))))


# --------------------------------------------------------------------------- every at-risk target of a run

#: the probabilities the report asks "what would it take" for, of every target below them
REPORT_GOALS = (0.5, 0.8)


@dataclass(frozen=True)
class TargetGoals:
    """What it would take for one target of a run: one :class:`GoalResult` per goal above its probability,
    or ``problem``, why none could be computed (e.g. no lever moves the indicator)."""

    target: str
    label: str
    probability: float
    results: tuple[GoalResult, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class RunGoals:
    """What it would take for every target of a results file below the highest goal. ``note``: why nothing
    was computed (the scenario file is not found, or has changed since the run), else empty."""

    scenario_file: str
    goals: tuple[float, ...]
    paths: int
    seed: int
    targets: tuple[TargetGoals, ...] = ()
    note: str = ""


def goals_for_results(ds, results_file=None, *, goals: tuple[float, ...] = REPORT_GOALS, lever: str = "growth",
                      paths: int = DEFAULT_PATHS, progress: Callable[[str], None] | None = None) -> RunGoals:
    """:func:`goal` for every target of the results ``ds`` whose probability is below the highest of
    ``goals``, at each goal above its probability, with the run's seed. The scenario is the file the run
    recorded (``scenario_file``, found as :func:`targetsim.io.netcdf.locate_recorded_file` finds it), and only
    if it is still the scenario that was run (its ``scenario_sha256``): otherwise ``note`` says why not."""
    from targetsim.api import load_scenario
    from targetsim.io.netcdf import locate_recorded_file

    recorded = str(ds.attrs.get("scenario_file", ""))
    seed = int(ds.attrs.get("seed", 0))
    empty = RunGoals(scenario_file=recorded, goals=tuple(goals), paths=paths, seed=seed)
    path = locate_recorded_file(recorded, results_file) if recorded else None
    if path is None:
        return dataclasses.replace(empty, note=f"the scenario file the run names ({recorded or 'none'}) was not "
                                               "found from here; run the report from the folder the run ran in")
    try:
        scenario = load_scenario(path)
    except TargetsimError as exc:
        return dataclasses.replace(empty, note=f"the scenario file {path} no longer loads: {exc}")
    if scenario.sha256 != str(ds.attrs.get("scenario_sha256", "")):
        return dataclasses.replace(empty, note=f"the scenario {path} (or a file it extends or its model) has changed "
                                               "since the run (its sha256 differs): run it again for these figures")
    sel = ds.isel(scenario=0)
    below = [(str(t), float(p), str(label)) for t, p, label in zip(
        sel["target"].values, sel["attainment_probability"].values, sel["target_label"].values)
        if math.isfinite(float(p)) and float(p) < max(goals)]
    rows = []
    for n, (target, p, label) in enumerate(below, 1):
        if progress is not None:
            progress(f"what it would take: {target} ({n}/{len(below)})")
        try:
            results = tuple(goal(scenario, target, g, lever, paths=paths, seed=seed) for g in goals if g > p)
            rows.append(TargetGoals(target=target, label=label, probability=p, results=results))
        except TargetsimError as exc:
            rows.append(TargetGoals(target=target, label=label, probability=p, problem=str(exc)))
    return dataclasses.replace(empty, targets=tuple(rows))
