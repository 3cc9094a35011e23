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

import stat
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


# Nesting deeper than this is refused (with its line) before the document is built: no scenario
# needs more than a handful of levels, and deep nesting would exhaust Python's recursion limit.
MAX_DEPTH = 64

# Full-width punctuation typed with a Chinese input method, where YAML needs the ASCII character.
FULL_WIDTH = {"：": ":", "，": ",", "［": "[", "］": "]", "｛": "{", "｝": "}", "＃": "#", "－": "-",
              "＂": '"', "＇": "'", "　": "a space"}


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose value errors (``2024-13-45`` read as a date, ``!!int abc``) are
    YAML errors with the value's line, instead of a bare ``ValueError`` from deep inside PyYAML."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001 - any constructor failure is a malformed value
            tag = str(node.tag).rsplit(":", 1)[-1]
            what = "a date" if tag == "timestamp" else f"a {tag}" if tag in ("int", "float", "bool") else tag
            value = node.value if isinstance(node, yaml.ScalarNode) else f"<{type(node).__name__}>"
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {value!r} as {what} ({exc}); put it in quotes if it is text",
                node.start_mark) from None


def _key_part(loader: yaml.SafeLoader, key_node: yaml.Node) -> tuple[Any, str]:
    """The key as Python sees it (``1.0`` and ``1`` are the same key; ``yes`` is ``True``) and its
    key-path element (``str`` of it, as :mod:`targetsim.model.parse` names non-string keys)."""
    if isinstance(key_node, yaml.ScalarNode):
        if key_node.tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"):
            return key_node.value, key_node.value
        key = loader.construct_object(key_node)
        return key, key if isinstance(key, str) else str(key)
    return None, str(key_node.value)


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str,
          budget: list[int], depth: int = 0) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        # an aliased node's own line is where its anchor was written, not where it is expanded:
        # name the top-level key being expanded (its line is where it is written)
        top = path[:1]
        raise ScenarioError(
            f"the document expands to more than {MAX_NODES} nodes (an alias bomb?): aliases (*name) "
            "repeat what they refer to; write the values out, or use fewer nested aliases",
            Location(file=file, key=render_key(top) or None, line=lines.get(top, node.start_mark.line + 1)),
        )
    if depth > MAX_DEPTH:
        raise ScenarioError(
            f"nested more than {MAX_DEPTH} levels deep (or an alias refers to itself)",
            Location(file=file, key=render_key(path[:8]) + ("…" if len(path) > 8 else ""),
                     line=node.start_mark.line + 1),
        )
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key, part = _key_part(loader, key_node)
            try:
                hash(key)
            except TypeError:
                key = part
            if key is not None and key in seen:
                raise ScenarioError(
                    f"duplicate key {part!r} (first defined on line {seen[key]})",
                    Location(file=file, key=render_key((*path, part)), line=key_node.start_mark.line + 1),
                )
            if key is not None:
                seen[key] = key_node.start_mark.line + 1
            # a value is located at its key (a block mapping's value starts on the next line)
            lines.setdefault((*path, part), key_node.start_mark.line + 1)
            _walk(loader, value_node, (*path, part), lines, file, budget, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(loader, item, (*path, i), lines, file, budget, depth + 1)


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting from the event stream (PyYAML's parser is not recursive; its composer is)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ScenarioError(f"nested more than {MAX_DEPTH} levels deep",
                                    Location(file=file, line=event.start_mark.line + 1))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _full_width_hint(text: str, first: int, last: int) -> str:
    """A hint when lines ``first..last`` (1-based) hold full-width punctuation outside quotes."""
    lines = text.splitlines()
    for number in range(max(1, first), min(last, len(lines)) + 1):
        # only where a key or list marker is written: a full-width character in a value is text
        line = lines[number - 1].split("#", 1)[0].split(": ", 1)[0]
        for char, ascii_char in FULL_WIDTH.items():
            if char in line:
                return (f"; line {number} has a full-width {char!r} where YAML needs {ascii_char!r} "
                        f"(switch the input method to half-width)")
    return ""


def parse_yaml(text: str, file: str) -> YamlSource:
    """Parse YAML text safely; errors become :class:`ScenarioError` naming the file and line."""
    try:
        _check_depth(text, file)
        loader = _SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ScenarioError("the file is empty", Location(file=file, line=1))
            lines: dict[KeyPath, int] = {}
            _walk(loader, node, (), lines, file, [MAX_NODES])
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
        hint = ""
        if line is not None and not isinstance(exc, yaml.constructor.ConstructorError):
            first = line - 2
            if exc.context_mark is not None:
                first = min(first, exc.context_mark.line + 1)
            hint = _full_width_hint(text, first, line)
        raise ScenarioError(f"invalid YAML: {problem}{hint}", Location(file=file, line=line)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", Location(file=file)) from None
    except RecursionError:
        raise ScenarioError("the document is nested too deeply to read", Location(file=file)) from None
    return YamlSource(file=file, data=data, lines=lines, text=text)


def decode_text(raw: bytes, file: str | Path, error: type = ScenarioError) -> str:
    """UTF-8 text of a user file (a byte-order mark is dropped by YAML and CSV readers); a file in
    another encoding is an error at its first undecodable line, naming GBK when it looks like it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = ""
        try:
            if any("\u4e00" <= ch <= "\u9fff" for ch in raw.decode("gb18030")):
                hint = " (it looks like GBK/GB18030, a Chinese Windows encoding)"
        except UnicodeDecodeError:
            pass
        message = f"not valid UTF-8{hint}; save the file as UTF-8"
        if error is ScenarioError:
            raise ScenarioError(message, Location(file=str(file), line=line)) from None
        raise error(message, file, line) from None


# A scenario file larger than this is refused unread (the largest shipped one is a few dozen KiB).
MAX_SCENARIO_BYTES = 16 * 2**20


def file_kind(path: Path) -> str:
    """What ``path`` names: ``"file"`` (a regular file, after symbolic links), ``"directory"``,
    ``"missing"``, ``"other"`` (a device, a pipe, a socket), or the operating system's reason it
    cannot be told (a name too long, a permission denied on a folder)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: an embedded NUL character
        return "missing"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISREG(mode):
        return "file"
    return "directory" if stat.S_ISDIR(mode) else "other"


def read_user_file(path: Path, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``what`` names it in messages).

    Anything else raises :class:`UserFileProblem` with the reason, for the caller to raise as its own
    error type. A device (``/dev/zero``), a pipe or a huge file is never read: it could block or fill
    memory."""
    kind = file_kind(path)
    if kind == "missing":
        raise UserFileProblem("file not found")
    if kind == "directory":
        raise UserFileProblem(f"is a directory, not {what}")
    if kind == "other":
        raise UserFileProblem(f"is not a regular file (a device, pipe or socket), so it is not read as {what}")
    if kind != "file":
        raise UserFileProblem(f"cannot read: {kind}")
    try:
        size = path.stat().st_size
        if size > limit:
            raise UserFileProblem(f"is {size:,} bytes, more than the {limit:,} a {what} may have")
        return path.read_bytes()
    except OSError as exc:
        raise UserFileProblem(f"cannot read: {exc.strerror or exc}") from None


class UserFileProblem(Exception):
    """Why a user file cannot be read (worded for a message; not a :class:`TargetsimError` itself)."""


def load_yaml(path: str | Path) -> YamlSource:
    """Read and parse a YAML file (a regular file of at most :data:`MAX_SCENARIO_BYTES`)."""
    path = Path(path)
    try:
        raw = read_user_file(path, "a scenario file", MAX_SCENARIO_BYTES)
    except UserFileProblem as exc:
        raise ScenarioError(str(exc), Location(file=str(path))) from None
    return parse_yaml(decode_text(raw, path), str(path))
