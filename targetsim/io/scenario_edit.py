"""Editing one indicator of a scenario file in place, keeping everything else byte for byte.

``targetsim fit --write`` replaces an indicator's ``process:`` and ``parameters:`` keys. The file is
edited as text, at the lines the YAML composer reports for those keys, so that every comment and
every other line stays as it was; comments inside the replaced blocks described the old values and
go with them. The edited text is validated as a scenario before it is written; the write is atomic
(a temporary file in the same folder, then ``os.replace``), so a failure leaves the file unchanged.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from targetsim.errors import Location, ScenarioError


def replace_indicator_keys(path: str | Path, indicator: str, blocks: Mapping[str, Any],
                           validate: Callable[[Path], Any]) -> Path:
    """Set ``indicators.<indicator>.<key>`` to each of ``blocks`` (an existing key is replaced where
    it stands; a new one is appended to the indicator), validate the result with ``validate`` (a
    loader given a path: the edited text is written beside the file, loaded, and only then moved
    over it) and return the path."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    node = _indicator_node(text, path, indicator)
    body_indent = _indent_of(lines, node.value[0][0]) if node.value else None
    if body_indent is None:
        raise ScenarioError(f"indicator {indicator} is empty; give it at least a unit and a start first",
                            Location(file=str(path), key=f"indicators.{indicator}", line=node.start_mark.line + 1))
    edits: list[tuple[int, int, str]] = []
    present = {k.value: (k, v) for k, v in node.value}
    append_at = _end_line(lines, node)
    for key, value in blocks.items():
        rendered = _render(key, value, body_indent)
        if key in present:
            k, v = present[key]
            edits.append((k.start_mark.line, _end_line(lines, v, start=k.start_mark.line), rendered))
        else:
            edits.append((append_at, append_at, rendered))
    for first, last, rendered in sorted(edits, key=lambda e: e[0], reverse=True):
        lines[first:last] = [rendered]
    new_text = "".join(lines)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".yaml")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new_text)
        validate(tmp)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _indicator_node(text: str, path: Path, indicator: str) -> yaml.MappingNode:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise ScenarioError("not a scenario (the top level is not a mapping)", Location(file=str(path)))
    for k, v in root.value:
        if k.value == "indicators" and isinstance(v, yaml.MappingNode):
            for ik, iv in v.value:
                if ik.value == indicator:
                    if not isinstance(iv, yaml.MappingNode) or iv.flow_style:
                        raise ScenarioError("--write edits an indicator written as a block mapping",
                                            Location(file=str(path), key=f"indicators.{indicator}",
                                                     line=ik.start_mark.line + 1))
                    return iv
            names = ", ".join(str(ik.value) for ik, _ in v.value)
            raise ScenarioError(f"no indicator {indicator} in this file (it has: {names}); an inherited "
                                "indicator is edited in the file that defines it",
                                Location(file=str(path), key="indicators", line=k.start_mark.line + 1))
    raise ScenarioError("no 'indicators' mapping in this file", Location(file=str(path)))


def _indent_of(lines: list[str], key_node: yaml.Node) -> int:
    line = lines[key_node.start_mark.line]
    return len(line) - len(line.lstrip(" "))


def _end_line(lines: list[str], node: yaml.Node, start: int | None = None) -> int:
    """The line after ``node``'s last line of content. A block node ends where the next token
    begins, so the end mark's line counts only when it has content before the mark; trailing blank
    and comment lines are left out, so that comments heading the next key stay with it."""
    line, column = node.end_mark.line, node.end_mark.column
    end = line + 1 if line < len(lines) and lines[line][:column].strip() else line
    first = node.start_mark.line if start is None else start
    while end > first + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _render(key: str, value: Any, indent: int) -> str:
    # a process's small mappings read best inline ({log_mean: …, log_sd: …}); prose in block style
    flow = None if key == "process" else False
    text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, allow_unicode=True,
                          width=110 - indent)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))
