"""Scenario inheritance: a scenario file may start with ``extends: other.yaml``.

The path after ``extends`` is relative to the extending file. The extending file (the
*child*) is deep-merged over the file it extends (the *parent*); **the child wins**:

- mappings merge key by key, recursively (a key keeps the parent's position; new keys come
  after the parent's);
- scalars replace;
- ``targets`` (a list of mappings with ``id``) merges **by id**: a child entry whose id is in
  the parent deep-merges into that target (``- {id: x, threshold: 0.25}`` changes one
  threshold), a new id is appended, and ``- {id: x, remove: true}`` removes target ``x``
  (``remove`` takes only ``true`` and only next to ``id``; removing an id the parent lacks,
  or listing an id twice in one file, is an error);
- ``correlations`` (a list of ``[a, b, rho]``) merges by the unordered pair ``{a, b}``: the
  child's entry replaces the parent's in place (child's rho wins), new pairs are appended;
- any other list replaces the parent's list wholesale (its items are taken as written);
- an indicator's ``process`` that names another ``kind`` than the parent's replaces the parent's
  process whole (the parent's keys belong to its kind); an indicator the parent lacks must give
  its ``process`` with a ``kind`` (a partial entry is reported as an unknown indicator, with the
  closest of the parent's ids);
- provenance follows the value: a child that changes an indicator's process parameters without
  its own ``parameters`` (or its start value without the start's ``source``/``assumption``) gets
  them recorded as set in the child file, an assumption, quoting the parent's reasoning as no
  longer applying to the new numbers;
- a key set to ``null`` in a child's mapping removes the key from the merged result
  (``description: null``);
- ``extends`` itself is not part of the merged result. Chains (a extends b extends c) are
  merged from the far end: c, then b over c, then a over that. At most
  :data:`MAX_DEPTH` ``extends`` links are followed; a cycle (a → b → a) is a
  :class:`~targetsim.errors.ScenarioError` naming the files of the cycle, and a missing
  parent is one at the ``extends`` key, with the file and line.

Relative paths are relative to the file that writes them: a relative ``baselines`` set in a
parent in another folder is rewritten, at merge time, relative to the folder of the file
being loaded (the root of the chain), so the merged document reads as if it were written
there. A file without ``extends`` is returned exactly as :func:`load_yaml` parsed it.

Every value of the merged document remembers where it was written (an
:class:`~targetsim.io.yaml_source.Origin`: file, key path in that file, line), so a
validation error names the file, key path and line that supplied the value: an invalid
threshold inherited from the parent points into the parent, an override into the child.
A merged mapping (a target changed by id, an indicator with one parameter overridden) is
located at the child that mentions it.

:attr:`Chain.sha256` (used as ``Scenario.sha256``) is the SHA-256 over the bytes of every
file of the chain concatenated in chain order, the loaded file first, then its parent, ...;
for a file without ``extends`` it is the SHA-256 of that file, as before.

Each file is read by :func:`load_yaml`, so the safe loader, the duplicate-key check and the
alias-bomb node budget apply to every file of the chain.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targetsim.io.yaml_source import KeyPath, Origin, YamlSource, file_kind, load_yaml

__all__ = ["MAX_DEPTH", "Chain", "load_chain"]

#: The most ``extends`` links followed from the file being loaded (a chain of 17 files).
MAX_DEPTH = 16
#: Top-level keys whose value is a path relative to the file that writes it.
PATH_KEYS: tuple[str, ...] = ("baselines", "model")


class _Node:
    """A value of one file, or of a merge, with the :class:`Origin` it was written at."""

    __slots__ = ("value", "origin")

    def __init__(self, value: Any, origin: Origin):
        self.value = value  # dict[Any, _Node] | list[_Node] | a scalar
        self.origin = origin


@dataclass(frozen=True)
class Chain:
    """A scenario file with its ``extends`` ancestors.

    ``merged``: the merged document (a :class:`YamlSource` whose ``origins`` locate every
    value; the source of the file itself when it has no ``extends``). ``sources``: every file
    of the chain in chain order, the loaded file first, then its parent, its parent's
    parent, ...
    """

    merged: YamlSource
    sources: tuple[YamlSource, ...]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(src.file for src in self.sources)

    @property
    def sha256(self) -> str:
        """SHA-256 over the bytes of every file of the chain, concatenated in chain order
        (the loaded file first). For a file without ``extends`` it is the SHA-256 of that file."""
        digest = hashlib.sha256()
        for src in self.sources:
            digest.update(src.text.encode("utf-8"))
        return digest.hexdigest()


def load_chain(path: str | Path) -> Chain:
    """Load ``path`` and every file it ``extends`` (transitively), and merge them. (A city model or a
    joint run's plans are composed one level up, by :func:`targetsim.io.models.load_document`.)"""
    path = Path(path)
    root = load_yaml(path)
    if not _extends_of(root.data):
        return Chain(merged=root, sources=(root,))
    sources, paths = chain_sources(path, root)
    root_dir = path.parent
    merged = _annotate_file(sources[-1], paths[-1], root_dir)
    for i in range(len(sources) - 2, -1, -1):
        merged = _merge(merged, _annotate_file(sources[i], paths[i], root_dir), (), sources[i], sources[i + 1])
    return Chain(merged=plain_source(merged, root), sources=tuple(sources))


def plain_source(merged: _Node, root: YamlSource) -> YamlSource:
    """A merged document as a :class:`YamlSource` whose origins locate every value."""
    origins: dict[KeyPath, Origin] = {}
    data = _plain(merged, (), origins)
    lines = {key: origin.line for key, origin in origins.items() if origin.line is not None}
    return YamlSource(file=root.file, data=data, lines=lines, text=root.text, origins=origins)


def chain_sources(path: Path, root: YamlSource, depth: int = MAX_DEPTH) -> tuple[list[YamlSource], list[Path]]:
    """``root`` (the file at ``path``) and every file it ``extends``, transitively, with their paths."""
    sources = [root]
    paths = [path]
    seen = {_identity(path): 0}
    current, current_path = root, path
    while _extends_of(current.data):
        ref = current.data["extends"]
        if not isinstance(ref, str) or not ref.strip():
            raise current.error(("extends",), f"expected the path of the scenario file this one extends, "
                                              f"got {_describe(ref)}")
        if len(sources) > depth:
            raise current.error(("extends",), f"more than {depth} levels of 'extends' "
                                              f"(starting at {root.file})")
        parent_path = current_path.parent / ref
        kind = file_kind(parent_path)
        if kind == "missing":
            raise current.error(("extends",), f"extends a file that is not found: {parent_path}")
        if kind == "directory":
            raise current.error(("extends",), f"extends a directory, not a scenario file: {parent_path}")
        if kind == "other":
            raise current.error(("extends",), f"extends {parent_path}, which is not a regular file "
                                              "(a device, pipe or socket)")
        if kind != "file":
            raise current.error(("extends",), f"cannot read the file it extends, {parent_path}: {kind}")
        parent_path = _tidy(parent_path)
        identity = _identity(parent_path)
        if identity in seen:
            cycle = [src.file for src in sources[seen[identity]:]] + [sources[seen[identity]].file]
            raise current.error(("extends",), f"a cycle of 'extends': {' → '.join(cycle)}")
        parent = load_yaml(parent_path)
        if not isinstance(parent.data, Mapping):
            raise parent.error((), f"a scenario that another extends must be a mapping of keys, "
                                   f"got {_describe(parent.data)}")
        seen[identity] = len(sources)
        sources.append(parent)
        paths.append(parent_path)
        current, current_path = parent, parent_path
    return sources, paths


def _extends_of(data: Any) -> bool:
    return isinstance(data, Mapping) and "extends" in data


def _tidy(path: Path) -> Path:
    """``a/b/../c.yaml`` → ``a/c.yaml`` for messages, when both name the same file (no symlink in between)."""
    tidy = Path(os.path.normpath(path))
    try:
        if tidy != path and os.path.samefile(tidy, path):
            return tidy
    except OSError:
        pass
    return path


def _identity(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _part(key: Any) -> str | int:
    # the same key-path element as yaml_source._walk and model.parse use for a mapping key
    return key if isinstance(key, str) else str(key)


# --- one file → annotated tree -------------------------------------------------------------

def _annotate_file(src: YamlSource, file_path: Path, root_dir: Path) -> _Node:
    node = _annotate(src.data, (), src)
    top = node.value
    if isinstance(top, dict):
        top.pop("extends", None)
        if file_path.parent != root_dir:
            for key in PATH_KEYS:
                item = top.get(key)
                for part in (item.value if item is not None and isinstance(item.value, list) else [item]):
                    if part is not None and isinstance(part.value, str) and part.value.strip():
                        part.value = _rebase(part.value, file_path.parent, root_dir)
    return node


def _annotate(value: Any, path: KeyPath, src: YamlSource) -> _Node:
    origin = Origin(src.file, path, src.line_of(path))
    if isinstance(value, Mapping):
        return _Node({k: _annotate(v, (*path, _part(k)), src) for k, v in value.items()}, origin)
    if isinstance(value, list):
        return _Node([_annotate(v, (*path, i), src) for i, v in enumerate(value)], origin)
    return _Node(value, origin)


def _rebase(rel: str, file_dir: Path, root_dir: Path) -> str:
    """``rel`` (relative to ``file_dir``) as a path relative to ``root_dir``.

    Both folders are resolved first, so ``..`` and symbolic links mean what they mean when
    the file is opened; an absolute path is returned when no relative one exists."""
    if Path(rel).is_absolute():
        return rel
    target = (file_dir / rel).resolve()
    try:
        return os.path.relpath(target, root_dir.resolve())
    except ValueError:  # another drive (Windows)
        return str(target)


# --- merge -------------------------------------------------------------------------------

def _merge(base: _Node | None, over: _Node, path: KeyPath, child: YamlSource, parent: YamlSource) -> _Node:
    """``over`` (a child file's node) merged over ``base`` (the merged parent's node, or none)."""
    if isinstance(over.value, dict):
        if _is_process(path) and _kind_changes(base, over):
            return over  # another kind: the parent's keys belong to the parent's kind
        out: dict[Any, _Node] = dict(base.value) if base is not None and isinstance(base.value, dict) else {}
        for key, item in over.value.items():
            if path == ("indicators",) and key not in out:
                _check_new_indicator(key, item, out, child, parent)
            if item.value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out.get(key), item, (*path, _part(key)), child, parent)
        if len(path) == 2 and path[0] == "indicators" and base is not None and isinstance(base.value, dict):
            _provenance_follows_the_value(out, base.value, over, child, parent)
        return _Node(out, over.origin)
    if isinstance(over.value, list):
        base_items = base.value if base is not None and isinstance(base.value, list) else []
        if path == ("targets",):
            return _Node(_merge_targets(base_items, over.value, child, parent), over.origin)
        if path == ("correlations",):
            return _Node(_merge_pairs(base_items, over.value), over.origin)
    return over


def _is_process(path: KeyPath) -> bool:
    return len(path) == 3 and path[0] == "indicators" and path[2] == "process"


def _kind_of(node: _Node | None) -> Any:
    if node is not None and isinstance(node.value, dict) and "kind" in node.value:
        return node.value["kind"].value
    return None


def _kind_changes(base: _Node | None, over: _Node) -> bool:
    """A child's process that names another kind than the parent's replaces it whole."""
    return _kind_of(over) is not None and _kind_of(base) is not None and _kind_of(over) != _kind_of(base)


def _check_new_indicator(key: Any, item: _Node, known: dict[Any, _Node], child: YamlSource,
                         parent: YamlSource) -> None:
    """An indicator the parent lacks is a new one: it must say what it is. A partial entry is
    almost always a misspelt id meant to change one of the parent's."""
    process = item.value.get("process") if isinstance(item.value, dict) else None
    if process is not None and _kind_of(process) is not None:
        return
    names = [str(k) for k in known]
    hint = difflib.get_close_matches(str(key), names, n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    raise child.error(("indicators", _part(key)),
                      f"unknown indicator {key!r}: the scenario this one extends ({parent.file}) has no such "
                      f"indicator{extra} (to add a new indicator, give its 'start' and a 'process' with its 'kind')")


def _leaves(node: _Node, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of every scalar under ``node``."""
    if isinstance(node.value, dict):
        return [leaf for k, v in node.value.items() for leaf in _leaves(v, (*path, str(k)))]
    if isinstance(node.value, list):
        return [(".".join(path), "[…]")]
    return [(".".join(path), node.value)]


def _text(node: _Node | None, key: str) -> str:
    if node is None or not isinstance(node.value, dict) or key not in node.value:
        return ""
    value = node.value[key].value
    return value if isinstance(value, str) else ""


def _provenance_follows_the_value(out: dict[Any, _Node], base: dict[Any, _Node], over: _Node,
                                  child: YamlSource, parent: YamlSource) -> None:
    """An indicator whose process parameters or start value a child changes without stating their
    source: the parent's source described the parent's numbers, so the merged indicator records
    that the child set them, on its own authority (an assumption), and quotes what the parent said."""
    changes = over.value
    if "process" in changes and "parameters" not in changes and isinstance(changes["process"].value, dict):
        what = ", ".join(f"process.{k} = {v}" for k, v in _leaves(changes["process"]))
        said = "; ".join(t for t in (_text(base.get("parameters"), "source"),
                                     _text(base.get("parameters"), "assumption")) if t)
        reason = (f"set in {child.file} ({what}) without a 'parameters' source of its own; the parent's "
                  f"reasoning ({parent.file}: {said}) described the parent's values and no longer applies"
                  if said else f"set in {child.file} ({what}) without a 'parameters' source of its own")
        out["parameters"] = _Node({"assumption": _Node(reason, over.origin)}, changes["process"].origin)
    start = changes.get("start")
    if (start is not None and isinstance(start.value, dict) and "value" in start.value
            and not ({"source", "assumption"} & set(start.value))):
        old = base.get("start")
        old_value = old.value.get("value").value if old is not None and isinstance(old.value, dict) and \
            "value" in old.value else (old.value if old is not None else None)
        said = "; ".join(t for t in (_text(old, "source"), _text(old, "assumption")) if t)
        reason = f"set in {child.file} to {start.value['value'].value} without a source of its own"
        if said:
            reason += (f"; the parent's source ({parent.file}: {said}) described the parent's start "
                       f"{old_value} and no longer applies")
        out["start"] = _Node({"value": start.value["value"], "assumption": _Node(reason, start.origin)},
                             start.origin)


def _target_id(node: _Node) -> str | None:
    if isinstance(node.value, dict):
        ident = node.value.get("id")
        if ident is not None and isinstance(ident.value, str):
            return ident.value
    return None


def _merge_targets(base: list[_Node], over: list[_Node], child: YamlSource, parent: YamlSource) -> list[_Node]:
    items: list[_Node | None] = list(base)
    index: dict[str, int] = {}
    for i, node in enumerate(items):
        tid = _target_id(node)
        if tid is not None:
            index.setdefault(tid, i)
    listed: dict[str, int] = {}
    for entry in over:
        where = entry.origin.key  # the entry's key path in the child file
        tid = _target_id(entry)
        removal = isinstance(entry.value, dict) and "remove" in entry.value
        if tid is None:
            if removal:
                raise child.error(where, "a removal needs the 'id' of the target to remove")
            items.append(_merge(None, entry, ("targets", len(items)), child, parent))
            continue
        if tid in listed:
            raise child.error((*where, "id"), f"target id {tid!r} listed twice in this file "
                                              f"(also targets[{listed[tid]}])")
        listed[tid] = where[-1] if where else 0
        if removal:
            flag = entry.value["remove"].value
            if flag is not True:
                raise child.error((*where, "remove"), f"'remove' can only be true, got {_describe(flag)}")
            extra = [k for k in entry.value if k not in ("id", "remove")]
            if extra:
                raise child.error((*where, _part(extra[0])), f"a removal takes only 'id' and 'remove', "
                                                             f"got {extra[0]!r} too")
            if tid not in index:
                known = sorted(index)
                hint = difflib.get_close_matches(tid, known, n=1)
                extra_text = f"; did you mean {hint[0]!r}?" if hint else (
                    f" (it has: {', '.join(known)})" if known else " (it has no targets)")
                raise child.error((*where, "id"), f"cannot remove target {tid!r}: the scenario this one "
                                                  f"extends ({parent.file}) has no such target{extra_text}")
            items[index.pop(tid)] = None
            continue
        if tid in index:
            i = index[tid]
            items[i] = _merge(items[i], entry, ("targets", i), child, parent)
        else:
            items.append(_merge(None, entry, ("targets", len(items)), child, parent))
            index[tid] = len(items) - 1
    return [node for node in items if node is not None]


def _pair(node: _Node) -> frozenset[str] | None:
    item = node.value
    if isinstance(item, list) and len(item) == 3 and all(isinstance(x.value, str) for x in item[:2]):
        return frozenset((item[0].value, item[1].value))
    return None


def _merge_pairs(base: list[_Node], over: list[_Node]) -> list[_Node]:
    items: list[_Node | None] = list(base)
    index: dict[frozenset[str], list[int]] = {}
    for i, node in enumerate(items):
        pair = _pair(node)
        if pair is not None:
            index.setdefault(pair, []).append(i)
    for entry in over:
        pair = _pair(entry)
        slots = index.pop(pair, None) if pair is not None else None
        if slots:
            # the child's entry takes the place of the parent's (and of any repeat of the same pair)
            items[slots[0]] = entry
            for i in slots[1:]:
                items[i] = None
        else:
            items.append(entry)
    return [node for node in items if node is not None]


# --- annotated tree → plain data + origins ---------------------------------------------------

def _plain(node: _Node, path: KeyPath, origins: dict[KeyPath, Origin]) -> Any:
    origins[path] = node.origin
    if isinstance(node.value, dict):
        return {k: _plain(v, (*path, _part(k)), origins) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v, (*path, i), origins) for i, v in enumerate(node.value)]
    return node.value
