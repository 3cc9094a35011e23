"""Scenario files: read, hash, parse, validate, and resolve start values from baselines."""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

from targetsim.io.baselines import Baselines, load_baselines
from targetsim.io.models import load_document
from targetsim.io.yaml_source import YamlSource, file_kind
from targetsim.errors import ScenarioError
from targetsim.model.numeric import numeric_range_problem, zero_denominator_problem
from targetsim.model.parse import MAX_RATE, MIN_LOG_GROWTH, check_start, parse_scenario
from targetsim.model.scenario import (Ar1GrowthProcess, FittedParameters, Growth, Indicator, LogitShareProcess,
                                      LognormalProcess, Parameters, Scenario)
from targetsim.model.processes import ScheduledProcess, whole_start_pmf


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
    return scenario_from_document(chain.merged, path, sha256=chain.sha256)


def scenario_from_document(source: YamlSource, path: str | Path, *, sha256: str = "") -> Scenario:
    """The scenario of a merged document (what :func:`load_document` returns, as ``source``; a caller
    may have changed values of ``source.data`` first, as a sweep does for each variant): processes
    fitted at load time, parsed, validated, starts read from the baselines. ``path``: the file the
    document was loaded from (relative ``baselines`` are relative to its folder). ``source.data`` is
    changed in place where it asks for fits or the outside view: pass a copy to keep it."""
    path = Path(path)
    priors: dict = {}  # indicator: "outside_view", or the target it reads (_Reading)
    fitted = _fit_requested_processes(source, path, priors)
    outside = _outside_view_requests(source)
    scenario = parse_scenario(source.data, source, file=path, sha256=sha256)
    if fitted:
        scenario = dataclasses.replace(scenario, indicators=tuple(
            dataclasses.replace(ind, fitted=fitted[ind.id]) if ind.id in fitted else ind
            for ind in scenario.indicators))
    scenario = _resolve_starts(scenario, source)
    if priors:
        scenario = _apply_fit_priors(scenario, source, priors)
    return _apply_outside_view(scenario, source, outside) if outside else scenario


# The keys of ``process: {fit: KIND}``: the kind (or auto), the last year to use, the break years, and a
# prior for the growth mean (``prior: outside_view``: the outside view, updated by the fitted series).
FIT_KEYS = ("fit", "until", "breaks", "prior")
FIT_PRIORS = ("outside_view",)


def _fit_requested_processes(src: YamlSource, path: Path,
                             priors: dict[str, str] | None = None) -> dict[str, FittedParameters]:
    """Replace every ``process: {fit: ...}`` of the document by the process fitted to the
    indicator's observed baselines rows up to the base year (or ``until``), and fill its
    ``parameters`` (when the scenario gives none) with where the fit comes from. Returns what
    was fitted, by indicator; ``priors`` receives the indicators whose fit asks for a prior
    (``prior: outside_view``, applied by :func:`_apply_fit_priors` once the starts are known)."""
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
        prior, reading = request.get("prior"), None
        if isinstance(prior, dict) and set(prior) == {"outside_view"}:  # {outside_view: {target: {...}}}
            spec = prior["outside_view"]
            if not isinstance(spec, dict) or set(spec) != {"target"}:
                raise src.error((*at, "prior", "outside_view"), "prior: {outside_view: {target: {kind, threshold, "
                                                                "by}}} names the target the outside view reads")
            reading = _reading(src, (*at, "prior", "outside_view", "target"), spec["target"])
            prior = "outside_view"
        if prior is not None and prior not in FIT_PRIORS:
            raise src.error((*at, "prior"), f"prior must be {' or '.join(FIT_PRIORS)} (or {{outside_view: {{target: "
                                            f"...}}}}), not {prior!r}")
        try:
            series = series_from_rows(table.rows, name, until=until, breaks=tuple(breaks), origin=str(table_path))
            result = fit_series(series, kind)
        except FitError as exc:
            raise src.error((*at, "fit"), str(exc)) from None
        if prior is not None:
            if result.kind != "lognormal":
                raise src.error((*at, "prior"), f"prior: {prior} updates a lognormal fit's growth mean; the fit of "
                                                f"{name} chose {result.kind!r}: ask for fit: lognormal")
            if priors is not None:
                priors[name] = reading or prior
        indicators[name]["process"] = dict(result.process)
        if indicators[name].get("parameters") is None:
            indicators[name]["parameters"] = result.parameters()
        fitted[name] = FittedParameters(
            kind=result.kind,
            estimates=tuple((k, float(v), float(result.std_errors.get(k, float("nan"))))
                            for k, v in result.estimates.items()),
            years=result.years, df=result.df, criteria=tuple(result.criteria.items()), notes=result.notes)
    return fitted


# The keys of ``growth: {outside_view: {...}}``: the cell of the reference class the indicator's first
# target falls in (defaults: an expected target of a city plan, of the kind its target suggests), and
# the centre of the growth (the one that gives the logistic model's P(met), or the predicted margin).
OUTSIDE_VIEW_KEYS = ("binding", "plan_level", "kind", "centre", "sd", "target")
# ``target: {kind, threshold, by, comparator}``: the target the outside view reads, given in the city model
# (default: the indicator's first target in the loaded scenario). An indicator that several plans use needs
# it, so that every plan reads one definition (tests/test_shipped_models.py).
READING_KEYS = ("kind", "threshold", "by", "comparator")
OUTSIDE_VIEW_DEFAULTS = {"binding": "expected", "plan_level": "city", "centre": "p_met"}
# ``sd`` is a scheduled count's alone (its delivery law's s.d., default
# targetsim.estimate.outside_view.DELIVERY_SD), and ``centre`` is not its: its mean is always the one that
# gives the logistic model's P(met).
# Where each process kind takes the outside view: (the key path under ``process``, the placeholder put
# there until the start is known).
OUTSIDE_VIEW_PLACES = {
    "lognormal": (("growth",), {"log_mean": 0.0, "log_sd": 0.0}),
    "logit_share": (("drift",), {"mean": 0.0, "sd": 0.0}),
    "count": (("additions", "mean"), 1.0),
    "scheduled": (("delivery",), {"mean": 0.5, "sd": 0.0}),
}


@dataclasses.dataclass(frozen=True)
class _Reading:
    """The target an outside view reads when the model gives it (``target: {...}``): the attributes of a
    :class:`targetsim.model.targets.Target` the outside view uses."""

    kind: str
    threshold: float
    by: int
    comparator: str = ">="
    id: str = "the model's reference target"


@dataclasses.dataclass(frozen=True)
class OutsideViewParameters(FittedParameters):
    """What ``{outside_view: ...}`` gave an indicator, recorded like a fit: the estimates (a lognormal's
    ``growth_log_mean`` and ``growth_log_sd``, a logit share's ``drift_mean`` and ``drift_sd``, a
    count's ``additions_mean`` and ``additions_mean_sd``, a scheduled count's ``delivery_mean`` and
    ``delivery_sd``; the mean's standard error: the uncertainty of the predicted margin alone, or of the
    logistic model's P(met) for a delivery) and ``outside_view``, the sentence that says how (the dataset's
    ``indicator_outside_view`` and ``fit_description``)."""

    outside_view: str = ""

    def describe(self) -> str:
        return self.outside_view


def _outside_view_requests(src: YamlSource) -> dict[str, dict[str, str | None]]:
    """Find every ``{outside_view: true | {binding, plan_level, kind, centre}}`` (a lognormal's
    ``growth``, a logit share's ``drift``, a count's ``additions: {mean: ...}``), check it, and put a
    placeholder in its place (the parameters need the resolved start, so :func:`_apply_outside_view`
    sets them after :func:`_resolve_starts`)."""
    data = src.data
    indicators = data.get("indicators") if isinstance(data, dict) else None
    if not isinstance(indicators, dict):
        return {}
    requests: dict[str, dict[str, str | None]] = {}
    for name, spec in indicators.items():
        process = spec.get("process") if isinstance(spec, dict) else None
        if not isinstance(process, dict):
            continue
        found = None
        for kind, (keys, placeholder) in OUTSIDE_VIEW_PLACES.items():
            holder, at = process, ("indicators", name, "process")
            for key in keys[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else None
                at = (*at, key)
            value = holder.get(keys[-1]) if isinstance(holder, dict) else None
            if isinstance(value, dict) and "outside_view" in value:
                found = (kind, holder, keys[-1], value, (*at, keys[-1]), placeholder)
                break
        if found is None:
            continue
        kind, holder, key_name, spec_value, at, placeholder = found
        from targetsim.estimate.outside_view import BINDINGS, CENTRES, KINDS, PLAN_LEVELS

        if process.get("kind") != kind:
            if kind == "lognormal":
                raise src.error((*at, "outside_view"), f"outside_view sets a lognormal process's growth (a "
                                                       f"logit_share's drift, a count's additions mean); this "
                                                       f"process is {process.get('kind')!r}")
            raise src.error((*at, "outside_view"), f"outside_view under {'.'.join(OUTSIDE_VIEW_PLACES[kind][0])} "
                                                   f"is for a {kind} process; this process is "
                                                   f"{process.get('kind')!r}")
        for key in spec_value:
            if key != "outside_view":
                raise src.error((*at, key), f"unknown key {key!r} beside 'outside_view': it sets the whole "
                                            f"{key_name}")
        request = spec_value["outside_view"]
        if request is True:
            request = {}
        if not isinstance(request, dict):
            raise src.error((*at, "outside_view"), "outside_view is true, or a mapping with any of "
                                                   f"{', '.join(OUTSIDE_VIEW_KEYS)}")
        allowed = {"binding": BINDINGS, "plan_level": PLAN_LEVELS, "kind": KINDS, "centre": CENTRES}
        keys = tuple(k for k in OUTSIDE_VIEW_KEYS if k != ("centre" if kind == "scheduled" else "sd"))
        for key, value in request.items():
            if key not in keys:
                raise src.error((*at, "outside_view", key),
                                f"unknown key {key!r}; allowed here: {', '.join(keys)}")
            if key == "target":
                continue  # checked below
            if key == "sd":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 0.5:
                    raise src.error((*at, "outside_view", key), f"sd (the s.d. of the per-path delivery "
                                                                f"probability) is a number in [0, 0.5), not {value!r}")
            elif value not in allowed[key]:
                raise src.error((*at, "outside_view", key),
                                f"{key} must be one of {', '.join(allowed[key])}, not {value!r}")
        requests[name] = {**OUTSIDE_VIEW_DEFAULTS, "kind": None, **request}
        requests[name]["target"] = (_reading(src, (*at, "outside_view", "target"), request["target"])
                                    if "target" in request else None)
        holder[key_name] = dict(placeholder) if isinstance(placeholder, dict) else placeholder
        if kind == "scheduled":
            from targetsim.estimate.outside_view import DELIVERY_SD

            requests[name]["sd"] = float(request.get("sd", DELIVERY_SD))
            holder[key_name]["sd"] = requests[name]["sd"]
    return requests


def _reading(src: YamlSource, at, value) -> _Reading:
    """Check ``target: {kind, threshold, by, comparator}`` of an outside-view request."""
    if not isinstance(value, dict) or set(value) - set(READING_KEYS) or not {"kind", "threshold", "by"} <= set(value):
        raise src.error(at, f"target (the target the outside view reads) is a mapping with kind, threshold and by "
                            f"(and optionally comparator), not {value!r}")
    threshold, by, comparator = value["threshold"], value["by"], value.get("comparator", ">=")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise src.error((*at, "threshold"), f"threshold is a number, not {threshold!r}")
    if isinstance(by, bool) or not isinstance(by, int):
        raise src.error((*at, "by"), f"by is a year, not {by!r}")
    if comparator not in (">=", ">", "<=", "<", "~"):
        raise src.error((*at, "comparator"), f"comparator is one of >=, >, <=, <, ~, not {comparator!r}")
    if not isinstance(value["kind"], str):
        raise src.error((*at, "kind"), f"kind is a target kind, not {value['kind']!r}")
    return _Reading(kind=value["kind"], threshold=float(threshold), by=by, comparator=comparator)


def _apply_outside_view(scenario: Scenario, src: YamlSource, requests: dict[str, dict[str, str | None]]) -> Scenario:
    """Give each requesting indicator its parameters from the outside view
    (:mod:`targetsim.estimate.outside_view`), read from the required change and the horizon of its first
    target plus the margin past targets of that kind, type and plan level achieved:

    - a lognormal's ``growth: {log_mean, log_sd}`` (a ``level`` target: ``ln(threshold/start)/h``; a
      ``cagr``: ``ln(1+threshold)``), ``log_sd`` the whole predictive spread of the average yearly log
      growth less what the process's own volatility adds over the horizon (``volatility²/h``), and no
      less than the uncertainty of the predicted margin;
    - a logit share's ``drift: {mean, sd}`` the same way on the logit scale (a ``share`` target:
      ``(logit threshold − logit start)/h``; reference kind ``share``);
    - a count's ``additions: {mean: {mean, sd}}``
      (:func:`targetsim.estimate.outside_view.outside_view_count_additions`): a target on the stock
      (``count_stock``/``level`` from a positive start) as a ``level`` target of the reference class; a
      target on the additions (``cumulative``, or a stock from 0) as a ``count`` target over its horizon;
      one on each year's additions (``count_per_year``, ``in_year``) as a yearly ``count`` target.
    """
    from targetsim.errors import FitError
    from targetsim.estimate.outside_view import default_fit

    try:
        fit = default_fit()
    except FitError as exc:
        raise src.error(("indicators", next(iter(requests)), "process", "outside_view"), str(exc)) from None
    indicators = []
    for ind in scenario.indicators:
        request = requests.get(ind.id)
        if request is None:
            indicators.append(ind)
            continue
        keys = OUTSIDE_VIEW_PLACES[ind.process.kind][0]
        at = ("indicators", ind.id, "process", *keys, "outside_view")
        target = request["target"] or next((t for t in scenario.targets if t.indicator == ind.id), None)
        if target is None:
            raise src.error(at, f"outside_view reads the growth needed from the indicator's first target: no target "
                                f"is on {ind.id} (or give the target it reads: target: {{kind, threshold, by}})")
        horizon = target.by - scenario.base_year
        if horizon < 1:
            raise src.error(at, f"outside_view needs a target after the base year; {target.id} is for {target.by}")
        try:
            if isinstance(ind.process, LognormalProcess):
                ind = _outside_view_lognormal(ind, target, horizon, request, fit, src, at)
            elif isinstance(ind.process, LogitShareProcess):
                ind = _outside_view_share(ind, target, horizon, request, fit, src, at)
            elif isinstance(ind.process, ScheduledProcess):
                ind = _outside_view_scheduled(ind, target, horizon, request, src, at)
            else:
                ind = _outside_view_count(ind, target, horizon, request, fit, src, at)
        except FitError as exc:
            raise src.error(at, str(exc)) from None
        indicators.append(ind)
    scenario = dataclasses.replace(scenario, indicators=tuple(indicators))
    problem = numeric_range_problem(scenario)
    if problem is not None:
        raise src.error(("indicators", problem[0], "process"), problem[1])
    return scenario


def _apply_fit_priors(scenario: Scenario, src: YamlSource, priors: dict) -> Scenario:
    """Combine each ``process: {fit: lognormal, prior: outside_view}``: the outside view of the
    indicator's first target (an expected target of a city plan, centred on the predicted margin:
    :func:`targetsim.estimate.outside_view.outside_view_margin`) is the prior of the growth mean,
    ``N(required + m̂, s_μ²)`` with ``s_μ = sqrt(max(s² − σ²/h, se_m̂²))`` (``s`` the predictive s.d.,
    which already holds the fit's volatility ``σ`` averaged over the ``h`` years and the simulation
    adds it again: :func:`targetsim.estimate.outside_view.growth_mean_prior_sd`, the rule the outside
    view's own parameters use); the fit's ``N(μ̂, se²)`` is the likelihood; the growth becomes the
    posterior (:func:`targetsim.estimate.outside_view.combine_normal`). The fit's volatility stays.
    ``benches/outside_view_combined.py`` checks the rule on the reference class (leave one plan out)."""
    from targetsim.errors import FitError
    from targetsim.estimate.outside_view import (
        combine_normal, default_fit, growth_mean_prior_sd, outside_view_margin,
    )

    indicators = []
    for ind in scenario.indicators:
        if ind.id not in priors:
            indicators.append(ind)
            continue
        at = ("indicators", ind.id, "process", "prior")
        given = priors[ind.id]
        target = given if isinstance(given, _Reading) else next((t for t in scenario.targets if t.indicator == ind.id),
                                                                  None)
        if target is None or target.kind not in ("level", "cagr") or target.by <= scenario.base_year:
            raise src.error(at, f"prior: outside_view reads the growth needed from the indicator's first target, a "
                                f"level or cagr target after the base year; {ind.id} has none")
        horizon = target.by - scenario.base_year
        if target.kind == "level":
            if not target.threshold > 0:
                raise src.error(at, f"prior: outside_view needs a positive level threshold; {target.id} has "
                                    f"{target.threshold:g}")
            required, kind = math.log(target.threshold / ind.start.value) / horizon, "level"
        else:
            required, kind = math.log1p(target.threshold), "growth"
        down = target.comparator in ("<", "<=")
        try:
            centre, spread, centre_se = outside_view_margin(horizon, kind, fit=default_fit(), centre="margin")
        except FitError as exc:
            raise src.error(at, str(exc)) from None
        prior_mean = required + (-centre if down else centre)
        volatility = float(ind.process.volatility)
        prior_sd = growth_mean_prior_sd(spread, volatility, horizon, centre_se)
        growth = ind.process.growth
        mean, sd = combine_normal(prior_mean, prior_sd, growth.log_mean, growth.log_sd)
        note = (f"growth mean combined with the outside view (prior: outside_view): prior N({prior_mean:.4f}, "
                f"{prior_sd:.4f}) from {target.id} ({kind} target of a city plan over {horizon} years; predictive "
                f"s.d. {spread:.4f} less the volatility's {volatility:g}²/{horizon}), the fit's "
                f"N({growth.log_mean:.4f}, {growth.log_sd:.4f}), posterior N({mean:.4f}, {sd:.4f})")
        process = dataclasses.replace(ind.process, growth=Growth(mean=mean, sd=sd, log=True))
        fitted = dataclasses.replace(ind.fitted, notes=(*ind.fitted.notes, note),
                                     estimates=(*ind.fitted.estimates, ("combined_growth_log_mean", mean, sd)))
        parameters = dataclasses.replace(ind.parameters, source=f"{ind.parameters.source}; {note}"
                                         if ind.parameters.source else note)
        indicators.append(dataclasses.replace(ind, process=process, fitted=fitted, parameters=parameters))
    return dataclasses.replace(scenario, indicators=tuple(indicators))


def _cell(request: dict[str, str | None], kind: str, horizon: int) -> str:
    article = "an" if request["binding"] in ("expected", "unknown") else "a"
    return f"as {article} {request['binding']} {kind} target of a {request['plan_level']} plan over {horizon} years"


def _centre_words(request: dict[str, str | None], centre: float, unit: str) -> str:
    if request["centre"] == "margin":
        return f"past targets like it beat the pace they needed by {centre:+.4f}{unit} on average"
    return f"centred {centre:+.4f}{unit} on the side the target asks for, to meet it with the logistic model's P(met)"


def _with_outside_view(ind: Indicator, process, text: str, estimates, df: float) -> Indicator:
    given = ind.parameters
    parameters = Parameters(
        source=text + (f"; {given.source}" if given.source else ""),
        assumption=given.assumption or ("the indicator is assumed to fare as comparable past plan targets "
                                        "did (the reference class), and its volatility is assumed"))
    fitted = OutsideViewParameters(kind="outside_view", estimates=estimates, years=(), df=df, outside_view=text)
    return dataclasses.replace(ind, process=process, parameters=parameters, fitted=fitted)


def _outside_view_pace(required: float, target, horizon: int, kind: str, request, fit, volatility: float):
    """The yearly pace (ln-growth, or a logit drift) the outside view expects of an indicator whose target needs
    ``required`` a year: the pace needed, moved by the margin past targets like it predict, on the side the
    target asks for; and that pace's prior s.d. (the predictive spread less the volatility's share). Returns
    ``(pace, pace_sd, centre, spread, centre_se, down)``, ``down`` for a target asking for a fall."""
    from targetsim.estimate.outside_view import growth_mean_prior_sd, outside_view_margin

    down = target.comparator in ("<", "<=")  # the margin is on the side the target asks for
    centre, spread, centre_se = outside_view_margin(horizon, kind, request["binding"], request["plan_level"], fit=fit,
                                                    centre=request["centre"])
    ahead = (-required if down else required) + centre
    pace = -ahead if down else ahead
    return pace, growth_mean_prior_sd(spread, volatility, horizon, centre_se), centre, spread, centre_se, down


def _outside_view_lognormal(ind, target, horizon, request, fit, src, at) -> Indicator:
    start = ind.start.value
    if target.kind == "level":
        if not target.threshold > 0:
            raise src.error(at, f"outside_view needs a positive level threshold; {target.id} has "
                                f"{target.threshold:g}")
        required = math.log(target.threshold / start) / horizon
        need = f"ln({target.threshold:g}/{start:g})/{horizon}"
    elif target.kind == "cagr":
        required = math.log1p(target.threshold)
        need = f"ln(1+{target.threshold:g})"
    else:
        raise src.error(at, f"outside_view reads a level or cagr target; the first target on {ind.id}, "
                            f"{target.id}, is {target.kind!r}")
    kind = request["kind"] or ("growth" if target.kind == "cagr" else "level")
    volatility = float(ind.process.volatility)
    log_mean, log_sd, centre, spread, centre_se, down = _outside_view_pace(required, target, horizon, kind,
                                                                           request, fit, volatility)
    if not MIN_LOG_GROWTH <= log_mean <= math.log1p(MAX_RATE):
        raise src.error(at, f"the outside view gives ln(1+g) = {log_mean:.4g}, outside "
                            f"[{MIN_LOG_GROWTH:g}, {math.log1p(MAX_RATE):.4g}]: is the target ({target.id}) "
                            f"or the start ({start:g}) right?")
    text = (f"outside view: growth from {fit.n} past plan targets (baselines/reference_targets*.csv, "
            f"targetsim.estimate.outside_view): {_cell(request, kind, horizon)}, {target.id} ({target.comparator} "
            f"{target.threshold:g} by {target.by}) needs ln-growth {need} = {required:.4f}/yr; "
            + (f"past targets like it beat the pace they needed by {centre:+.4f}/yr on average"
               if request["centre"] == "margin" else
               f"centred {centre:+.4f}/yr {'below' if down else 'above'} that to meet it with the logistic "
               f"model's P(met)")
            + f" (predictive s.d. {spread:.4f}), so ln(1+g) ~ N({log_mean:.4f}, {log_sd:.4f}) (the volatility's "
            f"{volatility:g}²/{horizon} taken out of the spread)")
    process = dataclasses.replace(ind.process, growth=Growth(mean=log_mean, sd=log_sd, log=True))
    return _with_outside_view(ind, process, text, (("growth_log_mean", log_mean, centre_se),
                                                   ("growth_log_sd", log_sd, float("nan"))), fit.df)


def _outside_view_share(ind, target, horizon, request, fit, src, at) -> Indicator:
    start = ind.start.value
    if target.kind != "share" or not 0.0 < target.threshold < 1.0 or not 0.0 < start < 1.0:
        raise src.error(at, f"outside_view for a logit_share reads a share target with a threshold and a start "
                            f"strictly between 0 and 1; the first target on {ind.id}, {target.id}, is "
                            f"{target.kind!r} {target.threshold:g} from {start:g}")
    logit = lambda p: math.log(p / (1.0 - p))  # noqa: E731
    required = (logit(target.threshold) - logit(start)) / horizon
    kind = request["kind"] or "share"
    volatility = float(ind.process.volatility)
    drift, drift_sd, centre, spread, centre_se, _ = _outside_view_pace(required, target, horizon, kind, request,
                                                                       fit, volatility)
    text = (f"outside view: logit drift from {fit.n} past plan targets (baselines/reference_targets*.csv, "
            f"targetsim.estimate.outside_view): {_cell(request, kind, horizon)}, {target.id} ({target.comparator} "
            f"{target.threshold:g} by {target.by}) needs a logit change (logit {target.threshold:g} − logit "
            f"{start:.4g})/{horizon} = {required:.4f}/yr; {_centre_words(request, centre, '/yr')} (predictive s.d. "
            f"{spread:.4f}), so the drift ~ N({drift:.4f}, {drift_sd:.4f}) (the volatility's {volatility:g}²/{horizon} "
            f"taken out of the spread)")
    process = dataclasses.replace(ind.process, drift=Growth(mean=drift, sd=drift_sd, log=False))
    return _with_outside_view(ind, process, text, (("drift_mean", drift, centre_se),
                                                   ("drift_sd", drift_sd, float("nan"))), fit.df)


# count target kinds read on each year's additions (a yearly count target of the reference class)
_YEARLY_COUNT_TARGETS = ("count_per_year", "in_year")


def _outside_view_count(ind, target, horizon, request, fit, src, at) -> Indicator:
    from targetsim.estimate.outside_view import outside_view_count_additions, outside_view_margin

    start = float(ind.start.value)
    if target.comparator in ("<", "<=") or not target.threshold > 0:
        raise src.error(at, f"outside_view for a count reads a positive floor (>=, >, ~); the first target on "
                            f"{ind.id}, {target.id}, is {target.comparator} {target.threshold:g}")
    if target.kind in _YEARLY_COUNT_TARGETS:
        on_stock, h, reading = False, 1, f"each year's additions against {target.threshold:g}"
    elif target.kind == "cumulative" or (target.kind in ("count_stock", "level") and start <= 0.0):
        on_stock, h, reading = False, horizon, f"the additions over {horizon} years against {target.threshold:g}"
    elif target.kind in ("count_stock", "level"):
        on_stock, h, reading = True, horizon, f"the stock from {start:g} against {target.threshold:g}"
    else:
        raise src.error(at, f"outside_view for a count reads a count_stock, level, cumulative, count_per_year or "
                            f"in_year target; the first target on {ind.id}, {target.id}, is {target.kind!r}")
    kind = request["kind"] or ("level" if on_stock else "count")
    centre, spread, centre_se = outside_view_margin(h, kind, request["binding"], request["plan_level"], fit=fit,
                                                    centre=request["centre"])
    dispersion = ind.process.dispersion

    def law(c: float, mean_se: float = 0.0):
        return outside_view_count_additions(target.threshold, start, h, c, spread, on_stock=on_stock,
                                            dispersion=dispersion, mean_se=mean_se)

    # the yearly mean's standard error from the predicted margin's own (the floor of the mean's s.d.)
    mean_se = abs(law(centre + centre_se).mean - law(centre - centre_se).mean) / 2.0
    additions = law(centre, mean_se)
    if not additions.mean > 0.0:
        raise src.error(at, f"the outside view gives no additions for {ind.id}: the start {start:g} is far above "
                            f"{target.id}'s {target.threshold:g}; drop outside_view and give the additions")
    text = (f"outside view: additions from {fit.n} past plan targets (baselines/reference_targets*.csv, "
            f"targetsim.estimate.outside_view): {_cell(request, kind, h)}, {target.id} ({target.comparator} "
            f"{target.threshold:g} by {target.by}) read on {reading}, yearly log margin "
            f"~ N({centre:+.4f}, {spread:.4f}) ({_centre_words(request, centre, '/yr')}); the yearly additions "
            f"that implies have mean {additions.implied_mean:.4g} and s.d. {additions.implied_sd:.4g}, so the "
            f"per-path mean ~ Gamma(mean {additions.mean:.4g}, s.d. {additions.mean_sd:.4g}) with "
            f"{ind.process.distribution} additions (their own noise taken out of the spread"
            + (f"; {additions.note}" if additions.note else "") + ")")
    process = dataclasses.replace(ind.process, mean=additions.mean, mean_sd=additions.mean_sd)
    return _with_outside_view(ind, process, text, (("additions_mean", additions.mean, mean_se),
                                                   ("additions_mean_sd", additions.mean_sd, float("nan"))), fit.df)


# what a scheduled count's target reads, by target kind (targetsim.estimate.outside_view.SCHEDULED_MEASURES)
_SCHEDULED_MEASURE = {"count_stock": "stock", "level": "stock", "cumulative": "cumulative", "in_year": "in_year",
                      "count_per_year": "per_year"}


def _schedule_words(proc: ScheduledProcess) -> str:
    if proc.plan_to > 0.0:
        return f"planned from each path's start: {proc.plan_margin:g} x what reaching {proc.plan_to:g} needs"
    return f"{proc.total_planned} units"


def _planned_years(schedule, base: int, horizon: int) -> tuple[int, ...]:
    """The units a schedule plans in each year after the base year, up to ``horizon`` years."""
    planned = [0] * horizon
    for year, n in schedule:
        if base < year <= base + horizon:
            planned[year - base - 1] = n
    return tuple(planned)


#: δ bins for a scheduled count planned from its start (plan_to): its P(met | δ) sums over start nodes
PLAN_TO_BINS = 256


@functools.lru_cache(maxsize=1024)
def _delivery_law(planned, base, carry_over, measure, step, need, strict, start_values, start_probs, p, sd, p_low,
                  p_high):
    """:func:`targetsim.estimate.outside_view.outside_view_delivery` for one scheduled count, cached: every plan
    of a city model reads the same indicators, and a run loads its plans more than once. ``planned``: the
    units planned each year, or the process itself where it plans from each path's start (``plan_to``)."""
    from targetsim.estimate.outside_view import (outside_view_delivery, scheduled_met_given_delivery,
                                                 scheduled_met_planned_from_start)

    if isinstance(planned, ScheduledProcess):
        def met_given(delta):
            return scheduled_met_planned_from_start(
                delta, lambda start: _planned_years(planned.planned_from(start), base, step), carry_over, step=step,
                need=need, strict=strict, start_values=start_values, start_probs=start_probs)

        return outside_view_delivery(met_given, p, sd, p_low=p_low, p_high=p_high, bins=PLAN_TO_BINS)

    def met_given(delta):
        return scheduled_met_given_delivery(delta, planned, carry_over, measure=measure, step=step, need=need,
                                            strict=strict, start_values=start_values, start_probs=start_probs)

    return outside_view_delivery(met_given, p, sd, p_low=p_low, p_high=p_high)


def _outside_view_scheduled(ind, target, horizon, request, src, at) -> Indicator:
    from targetsim.estimate.outside_view import default_logit

    proc = ind.process
    if target.comparator not in (">=", ">") or target.kind not in _SCHEDULED_MEASURE:
        raise src.error(at, f"outside_view for a scheduled count reads a floor (>=, >) on a count_stock, level, "
                            f"cumulative, count_per_year or in_year target; the first target on {ind.id}, "
                            f"{target.id}, is {target.kind} {target.comparator} {target.threshold:g}")
    if proc.carry_over_sd > 0.0:
        raise src.error(at, "outside_view sets the delivery of a scheduled count whose carry_over is a number; "
                            "this one is drawn per path ({mean, sd}): give carry_over as a number")
    measure = _SCHEDULED_MEASURE[target.kind]
    values, probs = whole_start_pmf(proc, ind.start)
    if measure == "stock" and values.max() <= 0.0:
        measure = "cumulative"  # a stock from 0 is its additions: a count target, not a level
    kind = request["kind"] or ("level" if measure == "stock" else "count")
    h = 1 if measure in ("in_year", "per_year") else horizon
    base = target.by - horizon
    sd = request["sd"]
    p, p_low, p_high = default_logit().p_met_interval(kind, request["binding"], request["plan_level"], h)
    if proc.plan_to > 0.0 and measure != "stock":
        raise src.error(at, f"outside_view for a scheduled count planned from its start (plan_to) reads a target on "
                            f"its stock (count_stock, level); {target.id} is {target.kind}")
    law = _delivery_law(proc if proc.plan_to > 0.0 else _planned_years(proc.schedule, base, horizon), base,
                        proc.carry_over, measure, horizon, target.threshold, target.comparator == ">",
                        tuple(values), tuple(probs), p, sd, p_low, p_high)
    reading = {"stock": f"the stock by {target.by}", "cumulative": f"the deliveries over {horizon} years",
               "in_year": f"the deliveries in {target.by}",
               "per_year": f"each year's deliveries (their average P over {horizon} years)"}[measure]
    text = (f"outside view: delivery from the logistic model of met over {default_logit().n} past plan targets "
            f"(baselines/reference_targets*.csv, targetsim.estimate.outside_view): {_cell(request, kind, h)} is met "
            f"with P {p:.3f} (± one s.e. {p_low:.3f}-{p_high:.3f}); {target.id} ({target.comparator} "
            f"{target.threshold:g} by {target.by}) read on {reading} is met with that P when each path's delivery "
            f"probability is Beta(mean {law.mean:.4f}, s.d. {sd:g}) (mean s.e. {law.mean_se:.4f}); the schedule "
            f"({_schedule_words(proc)}), carry_over {proc.carry_over:g} and the s.d. stay as written")
    process = dataclasses.replace(proc, delivery=law.mean, delivery_sd=sd)
    return _with_outside_view(ind, process, text, (("delivery_mean", law.mean, law.mean_se),
                                                   ("delivery_sd", sd, float("nan"))),
                              default_logit().n - len(default_logit().columns))


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
