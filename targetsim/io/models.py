"""City models shared by plans, and joint runs of several plans.

**A city model** (``models/wuhan.yaml``) declares a city's indicators once: their processes, starts,
correlations, common factors, jumps, observations and the baselines they rest on
(:data:`MODEL_KEYS`). A plan's scenario names it with ``model: ../models/wuhan.yaml`` (relative to
the file that writes it) and lists its targets. One indicator, one definition, in every plan:

- the model is merged under the scenario like the farthest parent of an ``extends`` chain (see
  :mod:`targetsim.io.extends`), so a variant that ``extends`` a plan may still change a model
  indicator's parameters (``base_pessimistic.yaml``), and its provenance follows the value;
- the file that names the model may not define again what the model defines (an indicator of the
  model, an observation of one, a correlation between two, the shock law, the factors): the error
  names both places, and says to change the model (every plan sees it) or write a variant;
- a plan may add indicators of its own (a plan-specific statistic) with their ``baselines``; the
  run reads the model's baselines files first, then the plan's.

**Only what the plan needs is simulated** (:func:`prune`): the indicators its targets name, their
parts (a ratio's, a sum's), the plan's own indicators, and every observed model indicator whose
shock is tied to a kept one (a correlation, a common factor, a jump; transitively through other
observed ones). The kept indicators then have exactly the joint law they have in the whole model:
a Gaussian's marginal is its sub-matrix, and an observation whose shocks are independent of every
kept indicator (given the other kept observations) would only reweigh paths at random. So a target
has the same probability, within Monte Carlo error, in its plan's run and in a run of every plan.

**A joint run** (``plans: [a.yaml, b.yaml]``, with ``name``, ``paths``, ``seed`` and optional
``description``/``quantiles``) runs the plans of one model together: every plan's targets (each
recording its plan in ``plan``), the union of their own indicators and baselines, the common base
year (plans must agree) and the latest horizon. It reports, besides every target's probability, the
joint and at-least-k probabilities across all targets and per plan.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from targetsim.io.extends import (
    Chain, _annotate_file, _describe, _merge, _Node, _part, _plain, _tidy, chain_sources, plain_source,
)
from targetsim.io.yaml_source import (
    MAX_SCENARIO_BYTES, Origin, UserFileProblem, YamlSource, file_kind, load_yaml, read_user_file,
)

__all__ = ["MODEL_KEYS", "JOINT_KEYS", "load_document", "compose_model", "compose_plans", "prune"]

#: The keys a city model may have (a model has no targets, years, paths or seed: those are a plan's).
MODEL_KEYS = ("name", "description", "baselines", "indicators", "correlations", "factors", "shocks", "jumps",
              "observations")
#: The keys of a joint run's file.
JOINT_KEYS = ("name", "description", "paths", "seed", "quantiles", "plans")
#: The process keys that name other indicators (a derived indicator's parts).
_REFERENCE_KEYS = ("numerator", "denominator", "terms")


def load_document(path: str | Path) -> Chain:
    """A scenario file as the engine reads it: its ``extends`` chain merged, the city model it names
    composed under it, or, for a joint run, its plans joined; then pruned to what its targets need.
    ``sources``: every file read (the loaded one first), so its ``sha256`` covers the model too."""
    path = Path(path)
    root = load_yaml(path)
    data = root.data
    if not isinstance(data, Mapping) or not ({"model", "plans"} & set(data)) and "extends" not in data:
        return Chain(merged=root, sources=(root,))
    if "plans" in data:
        if "extends" in data:
            raise root.error(("extends",), "a joint run ('plans:') lists its plans; it does not extend another file")
        merged, sources = compose_plans(root, path)
    else:
        merged, sources = merge_chain(path, path.parent, root=root)
    prune(merged)
    unique: dict[str, YamlSource] = {}
    for src in sources:
        unique.setdefault(src.file, src)
    return Chain(merged=plain_source(merged, root), sources=tuple(unique.values()))


def merge_chain(path: Path, root_dir: Path, *, root: YamlSource | None = None) -> tuple[_Node, list[YamlSource]]:
    """The annotated, merged document of ``path``'s ``extends`` chain, relative paths rebased to
    ``root_dir``; a city model named by a file of the chain is merged under that file (so later
    children may change its indicators). Returns it and every file read, the loaded file first."""
    root = root if root is not None else load_yaml(path)
    sources, paths = chain_sources(path, root)
    models: list[YamlSource] = []
    merged = None
    for i in range(len(sources) - 1, -1, -1):
        node = _annotate_file(sources[i], paths[i], root_dir)
        merged = node if merged is None else _merge(merged, node, (), sources[i], sources[i + 1])
        if isinstance(sources[i].data, Mapping) and "model" in sources[i].data:
            if "_model_indicators" in merged.value:
                raise sources[i].error(("model",), "this file names a city model and so does a file it extends: "
                                                   "name the model once, in the plan")
            merged, model = compose_model(merged, sources[i], root_dir)
            models.append(model)
    return merged, sources + models


def _model_path(ref: _Node, root_dir: Path, src: YamlSource) -> Path:
    """The model file a ``model:`` value names (written relative to its file; rebased to ``root_dir``)."""
    if not isinstance(ref.value, str) or not ref.value.strip():
        raise src.error(ref.origin.key, f"expected the path of a city model file, got {_describe(ref.value)}")
    path = Path(ref.value) if Path(ref.value).is_absolute() else root_dir / ref.value
    kind = file_kind(path)
    if kind != "file":
        what = {"missing": "is not found", "directory": "is a directory",
                "other": "is not a regular file (a device, pipe or socket)"}.get(kind, f"cannot be read: {kind}")
        raise src.error(ref.origin.key, f"the city model {path} {what}")
    return _tidy(path)


def load_model(path: Path) -> YamlSource:
    """Read a city model file and check its keys. Parsed once per process while the file's bytes are
    unchanged: a joint run's plans and a catalog of every plan share it, and a large model takes seconds
    to parse with line numbers. The source is only read, never changed."""
    try:
        raw = read_user_file(Path(path), "a city model file", MAX_SCENARIO_BYTES)
    except UserFileProblem:
        return _load_model(path)  # reports the problem with the file and key
    key = (str(path), hashlib.sha256(raw).hexdigest())
    cached = _MODEL_CACHE.get(key)
    if cached is None:
        cached = _MODEL_CACHE[key] = _load_model(path)
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
    return cached


_MODEL_CACHE: dict[tuple, YamlSource] = {}
_MODEL_CACHE_SIZE = 8


def _load_model(path: Path) -> YamlSource:
    model = load_yaml(path)
    if not isinstance(model.data, Mapping):
        raise model.error((), f"a city model is a mapping of keys ({', '.join(MODEL_KEYS)}), got "
                              f"{_describe(model.data)}")
    for key in model.data:
        if key not in MODEL_KEYS:
            why = (" (targets, years, paths and the seed belong to a plan's scenario, which names the model)"
                   if key in ("targets", "base_year", "horizon", "paths", "seed", "not_modelled", "quantiles",
                              "model", "extends", "plans") else "")
            raise model.error((_part(key),), f"{key!r} is not a key of a city model{why}; allowed: "
                                             f"{', '.join(MODEL_KEYS)}")
    if not isinstance(model.data.get("indicators"), Mapping) or not model.data["indicators"]:
        raise model.error(("indicators",), "a city model declares its indicators: a non-empty mapping of ids")
    return model


def _redefinitions(plan: YamlSource, model: YamlSource) -> None:
    """The file that names a model may not define again what the model defines."""
    data = plan.data if isinstance(plan.data, Mapping) else {}
    defined = model.data["indicators"]
    fix = (f"change it in {model.file}, so that every plan of the city sees the same definition, or write a "
           f"variant that extends {plan.file}")

    def where(*key: str | int) -> str:
        line = model.line_of(key)
        return f"{model.file}, line {line}" if line else model.file

    for ind in (data.get("indicators") or {}) if isinstance(data.get("indicators"), Mapping) else ():
        if ind in defined:
            raise plan.error(("indicators", _part(ind)),
                             f"indicator {ind!r} is defined in the city model ({where('indicators', _part(ind))}): "
                             f"one indicator, one definition in every plan; {fix}")
    observations = data.get("observations")
    if isinstance(observations, Mapping):
        for ind in observations:
            if ind in defined:
                raise plan.error(("observations", _part(ind)),
                                 f"observations of {ind!r}, an indicator of the city model, belong in the model "
                                 f"({model.file}): what the city observed holds in every plan")
    correlations = data.get("correlations")
    if isinstance(correlations, list):
        for k, item in enumerate(correlations):
            if isinstance(item, list) and len(item) == 3 and item[0] in defined and item[1] in defined:
                raise plan.error(("correlations", k),
                                 f"the correlation of {item[0]} and {item[1]}, two indicators of the city model, "
                                 f"belongs in the model ({model.file}); a plan correlates only its own indicators")
    for key in ("factors", "shocks", "jumps"):
        if key in data and (key in model.data or key == "factors"):
            raise plan.error((key,), f"{key!r} belongs in the city model ({model.file}): the city's shocks are "
                                     f"the same in every plan")


def _as_list(node: _Node | None) -> list[_Node]:
    if node is None:
        return []
    if isinstance(node.value, list):
        return list(node.value)
    return [node]


def _baselines(model: _Node | None, plan: _Node | None) -> _Node | None:
    """The model's baselines files, then the plan's (each once)."""
    items, seen = [], set()
    for item in _as_list(model) + _as_list(plan):
        key = os.path.normpath(str(item.value)) if isinstance(item.value, str) else id(item)
        if key not in seen:
            seen.add(key)
            items.append(item)
    if not items:
        return None
    return _Node(items, (plan or model).origin)


def compose_model(merged: _Node, naming: YamlSource, root_dir: Path) -> tuple[_Node, YamlSource]:
    """``merged`` (a scenario's document so far, whose ``model`` key was written in ``naming``) merged over
    the city model it names. Returns the composed document (its ``model`` key: the model's path relative
    to ``root_dir``) and the model's source."""
    top = merged.value
    ref = top.pop("model")
    path = _model_path(ref, root_dir, naming)
    model = load_model(path)
    _redefinitions(naming, model)
    model_node = _annotate_file(model, path, root_dir)
    model_top = model_node.value
    plan_baselines = top.pop("baselines", None)
    model_baselines = model_top.pop("baselines", None)
    model_top.pop("name", None)
    model_top.pop("description", None)
    out = _merge(model_node, merged, (), naming, model)
    baselines = _baselines(model_baselines, plan_baselines)
    if baselines is not None:
        out.value["baselines"] = baselines
    out.value["model"] = ref
    out.value["_model_indicators"] = _Node([_Node(str(k), ref.origin) for k in model.data["indicators"]], ref.origin)
    return out, model


# --- joint runs -------------------------------------------------------------------------------

def compose_plans(joint: YamlSource, joint_path: Path) -> tuple[_Node, list[YamlSource]]:
    """The document of a joint run: every listed plan (each loaded with its ``extends`` and model), one
    model, the plans' targets each tagged with its plan. Returns it and every file it read."""
    data = joint.data
    for key in data:
        if key not in JOINT_KEYS:
            why = (" (a joint run takes its indicators and targets from its plans and their model)"
                   if key in ("indicators", "targets", "model", "base_year", "horizon", "extends") else "")
            raise joint.error((_part(key),), f"{key!r} is not a key of a joint run{why}; allowed: "
                                             f"{', '.join(JOINT_KEYS)}")
    plans = data.get("plans")
    if not isinstance(plans, list) or len(plans) < 2 or not all(isinstance(p, str) for p in plans):
        raise joint.error(("plans",), "expected a list of at least two plan scenario files, e.g. "
                                      "[wuhan_digital_trade.yaml, wuhan_rd_centre.yaml]")
    root_dir = joint_path.parent
    sources: list[YamlSource] = [joint]
    top: dict[Any, _Node] = {}
    targets: list[_Node] = []
    not_modelled: list[_Node] = []
    baselines: list[_Node] = []
    model_at: tuple[str, int] | None = None
    names: dict[str, int] = {}
    base_year: tuple[int, str] | None = None
    horizon = None
    for k, rel in enumerate(plans):
        at = ("plans", k)
        path = root_dir / rel
        if file_kind(path) != "file":
            raise joint.error(at, f"plan scenario file not found: {path}")
        node, plan_sources = merge_chain(_tidy(path), root_dir)
        sources.extend(plan_sources)
        ptop = node.value
        if "plans" in ptop:
            raise joint.error(at, f"{rel} is itself a joint run: list plan files only")
        if "model" not in ptop:
            raise joint.error(at, f"{rel} names no city model ('model:'): a joint run needs plans of one city model")
        model_ref = ptop["model"]
        model_file = os.path.realpath(root_dir / str(model_ref.value))
        if model_at is None:
            model_at = (model_file, k)
            top["model"] = model_ref
        elif model_file != model_at[0]:
            raise joint.error(at, f"{rel} names the city model {model_ref.value}, plans[{model_at[1]}] another "
                                  f"({model_at[0]}): a joint run joins the plans of one model")
        name = ptop.get("name")
        plan_name = str(name.value) if name is not None else Path(rel).stem
        if plan_name in names:
            raise joint.error(at, f"two plans are named {plan_name!r} (plans[{names[plan_name]}] and this one): "
                                  "each plan's name labels its targets")
        names[plan_name] = k
        year = ptop.get("base_year")
        if year is not None:
            if base_year is None:
                base_year = (year.value, rel)
            elif year.value != base_year[0]:
                raise joint.error(at, f"{rel} has base year {year.value}, {base_year[1]} {base_year[0]}: the "
                                      "plans of a joint run share one base year (one start for every path)")
            top.setdefault("base_year", year)
        end = ptop.get("horizon")
        if end is not None and (horizon is None or end.value > horizon.value):
            horizon = end
        for item in _as_list(ptop.get("targets")):
            if isinstance(item.value, dict):
                item.value.setdefault("plan", _Node(plan_name, name.origin if name is not None
                                                    else Origin(joint.file, at, joint.line_of(at))))
            targets.append(item)
        not_modelled.extend(_as_list(ptop.get("not_modelled")))
        baselines.extend(_as_list(ptop.get("baselines")))
        for key in ("indicators", "correlations", "observations", "jumps", "factors", "shocks", "_model_indicators"):
            if key in ptop:
                _join(top, key, ptop[key], joint, at, rel)
    if horizon is not None:
        top["horizon"] = horizon
    top["targets"] = _Node(targets, Origin(joint.file, ("plans",), joint.line_of(("plans",))))
    if not_modelled:
        top["not_modelled"] = _Node(not_modelled, top["targets"].origin)
    joined = _baselines(None, _Node(baselines, top["targets"].origin) if baselines else None)
    if joined is not None:
        top["baselines"] = joined
    own = _annotate_file(joint, joint_path, root_dir).value
    own.pop("plans", None)
    top.update(own)
    return _Node(top, Origin(joint.file, (), 1)), sources


def _join(top: dict[Any, _Node], key: str, node: _Node, joint: YamlSource, at: tuple, rel: str) -> None:
    """Add a plan's ``key`` section to the joint document: the same entry in two plans must agree."""
    if key not in top:
        top[key] = _Node(dict(node.value) if isinstance(node.value, dict) else list(node.value)
                         if isinstance(node.value, list) else node.value, node.origin)
        return
    have = top[key]
    if isinstance(have.value, dict) and isinstance(node.value, dict) and key != "shocks":
        for name, item in node.value.items():
            if name in have.value and _plain(have.value[name], (), {}) != _plain(item, (), {}):
                raise joint.error(at, f"{rel} defines {key}.{name} differently from an earlier plan "
                                      f"({have.value[name].origin.file}, line {have.value[name].origin.line}): "
                                      "one definition in every plan (a variant's change belongs in its own run)")
            have.value.setdefault(name, item)
    elif isinstance(have.value, list) and isinstance(node.value, list):
        known = [_plain(x, (), {}) for x in have.value]
        for item in node.value:
            if _plain(item, (), {}) not in known:
                have.value.append(item)
    elif _plain(have, (), {}) != _plain(node, (), {}):
        raise joint.error(at, f"{rel} sets {key} differently from an earlier plan: one definition in every plan")


# --- what a plan needs ------------------------------------------------------------------------

def _references(spec: _Node) -> list[str]:
    """The indicators a derived indicator's process names."""
    process = spec.value.get("process") if isinstance(spec.value, dict) else None
    if process is None or not isinstance(process.value, dict):
        return []
    out = []
    for key in _REFERENCE_KEYS:
        item = process.value.get(key)
        if item is None:
            continue
        for part in _as_list(item):
            if isinstance(part.value, str):
                out.append(part.value)
    return out


def _pair_of(item: _Node) -> tuple[str, str] | None:
    if isinstance(item.value, list) and len(item.value) == 3:
        a, b = item.value[0].value, item.value[1].value
        if isinstance(a, str) and isinstance(b, str):
            return a, b
    return None


def _jump_effects(jump: _Node) -> dict[str, _Node]:
    if isinstance(jump.value, dict):
        effects = jump.value.get("effects")
        if effects is not None and isinstance(effects.value, dict):
            return effects.value
    return {}


def _factor_loadings(factor: _Node) -> dict[str, _Node]:
    if isinstance(factor.value, dict):
        loadings = factor.value.get("loadings")
        if loadings is not None and isinstance(loadings.value, dict):
            return loadings.value
    return {}


def prune(doc: _Node) -> None:
    """Keep only the model indicators the document needs (see the module's docstring), in place."""
    top = doc.value
    model_ids = {n.value for n in top.pop("_model_indicators").value} if "_model_indicators" in top else set()
    indicators = top.get("indicators")
    if not model_ids or indicators is None or not isinstance(indicators.value, dict):
        return
    specs = indicators.value
    keep = {str(k) for k in specs if str(k) not in model_ids}
    for target in _as_list(top.get("targets")):
        if isinstance(target.value, dict) and isinstance(getattr(target.value.get("indicator"), "value", None), str):
            keep.add(target.value["indicator"].value)

    def close(names: set[str]) -> set[str]:
        todo, out = list(names), set(names)
        while todo:
            name = todo.pop()
            if name in specs:
                for ref in _references(specs[name]):
                    if ref not in out:
                        out.add(ref)
                        todo.append(ref)
        return out

    keep = close(keep)
    # the shocks that are tied: declared pairs, a common factor's loadings, a common jump
    tied: dict[str, set[str]] = {}

    def tie(group: list[str]) -> None:
        for a in group:
            tied.setdefault(a, set()).update(b for b in group if b != a)

    for item in _as_list(top.get("correlations")):
        pair = _pair_of(item)
        if pair is not None:
            tie(list(pair))
    for section in ("factors",):
        node = top.get(section)
        if node is not None and isinstance(node.value, dict):
            for factor in node.value.values():
                tie([str(k) for k in _factor_loadings(factor)])
    for jump in _as_list(top.get("jumps")):
        tie([str(k) for k in _jump_effects(jump)])
    observations = top.get("observations")
    observed = {str(k) for k in observations.value} if observations is not None and isinstance(
        observations.value, dict) else set()
    grew = True
    while grew:
        grew = False
        for name in sorted(observed - keep):
            if tied.get(name, set()) & keep:
                keep = close(keep | {name})
                grew = True
    for name in list(specs):
        if str(name) in model_ids and str(name) not in keep:
            del specs[name]
    if "correlations" in top:
        top["correlations"].value = [item for item in _as_list(top["correlations"])
                                     if _pair_of(item) is None or set(_pair_of(item)) <= keep]
        if not top["correlations"].value:
            del top["correlations"]
    if observations is not None and isinstance(observations.value, dict):
        for name in list(observations.value):
            if str(name) not in keep:
                del observations.value[name]
        if not observations.value:
            del top["observations"]
    factors = top.get("factors")
    if factors is not None and isinstance(factors.value, dict):
        for fname in list(factors.value):
            loadings = _factor_loadings(factors.value[fname])
            for name in list(loadings):
                if str(name) not in keep:
                    del loadings[name]
            if not loadings:
                del factors.value[fname]
        if not factors.value:
            del top["factors"]
    if "jumps" in top:
        for jump in _as_list(top["jumps"]):
            effects = _jump_effects(jump)
            for name in list(effects):
                if str(name) not in keep:
                    del effects[name]
        top["jumps"].value = [j for j in _as_list(top["jumps"]) if _jump_effects(j)]
        if not top["jumps"].value:
            del top["jumps"]
