"""Safe YAML loading that remembers the line of every key, for error messages.

Only ``yaml.SafeLoader`` is used: no Python objects, no code, no includes (``extends:``
between scenario files is handled one level up, in :mod:`targetsim.io.extends`, which loads
each file through :func:`load_yaml`, so every file gets its own alias-bomb node budget).

A :class:`YamlSource` for one file maps key paths to that file's lines. A source merged
from several files (see :mod:`targetsim.io.extends`) also carries ``origins``: for every key
path of the merged data, the file that supplied the value, the value's key path in that
file and its line; ``location``/``line_of``/``error`` then point into that file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from targetsim.errors import Location, ScenarioError

KeyPath = tuple[str | int, ...]

# A document with more nodes than this is refused: it protects against alias "bombs"
# that expand a few lines into billions of nodes.
MAX_NODES = 200_000


def render_key(path: Iterable[str | int]) -> str:
    """``('targets', 2, 'threshold')`` → ``targets[2].threshold``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Origin(NamedTuple):
    """Where a value of a merged document was written: file, key path in that file, line."""

    file: str
    key: KeyPath
    line: int | None


@dataclass
class YamlSource:
    """Parsed YAML data with the line of every node, addressed by key path.

    ``lines`` maps the key paths of ``data`` to lines of ``file``. ``origins`` is empty for a
    single file; for data merged from an ``extends`` chain it maps every key path of ``data``
    to the :class:`Origin` of its value, and locations are taken from it (``lines`` then
    holds each origin's line, whichever file it is in; ``file`` and ``text`` are those of the
    file that was loaded, the first of the chain).
    """

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    text: str = ""
    origins: dict[KeyPath, Origin] = field(default_factory=dict)

    def origin_of(self, path: KeyPath) -> Origin:
        """File, key path (as written in that file) and line of ``path``, or of its nearest
        ancestor that has one (the rest of ``path`` is appended to that ancestor's key path)."""
        path = tuple(path)
        if not self.origins:
            return Origin(self.file, path, self._own_line(path))
        prefix = path
        while True:
            origin = self.origins.get(prefix)
            if origin is not None:
                return Origin(origin.file, (*origin.key, *path[len(prefix):]), origin.line)
            if not prefix:
                return Origin(self.file, path, None)
            prefix = prefix[:-1]

    def _own_line(self, path: KeyPath) -> int | None:
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one (in the file that supplied it)."""
        return self.origin_of(path).line

    def location(self, path: KeyPath) -> Location:
        origin = self.origin_of(path)
        return Location(file=origin.file, key=render_key(origin.key), line=origin.line)

    def error(self, path: KeyPath, message: str) -> ScenarioError:
        return ScenarioError(message, self.location(path))


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ScenarioError(
            f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)",
            Location(file=file, line=node.start_mark.line + 1),
        )
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                raise ScenarioError(
                    f"duplicate key {key!r} (first defined on line {seen[key]})",
                    Location(file=file, key=render_key((*path, key)), line=key_node.start_mark.line + 1),
                )
            seen[key] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, file, budget)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, file, budget)


def parse_yaml(text: str, file: str) -> YamlSource:
    """Parse YAML text safely; errors become :class:`ScenarioError` naming the file and line."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ScenarioError("the file is empty", Location(file=file, line=1))
            lines: dict[KeyPath, int] = {}
            _walk(node, (), lines, file, [MAX_NODES])
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" (started on line {exc.context_mark.line + 1})"
        problem = ": ".join(p for p in (context, exc.problem) if p)
        raise ScenarioError(f"invalid YAML: {problem}", Location(file=file, line=line)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", Location(file=file)) from None
    return YamlSource(file=file, data=data, lines=lines, text=text)


def load_yaml(path: str | Path) -> YamlSource:
    """Read and parse a YAML file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError("file not found", Location(file=str(path))) from None
    except IsADirectoryError:
        raise ScenarioError("is a directory, not a scenario file", Location(file=str(path))) from None
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror}", Location(file=str(path))) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError("not valid UTF-8", Location(file=str(path), line=line)) from None
    return parse_yaml(text, str(path))
