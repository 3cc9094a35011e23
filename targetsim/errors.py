"""Exception types. Every error caused by user input derives from :class:`TargetsimError`.

The CLI turns a ``TargetsimError`` into a one-line message and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["TargetsimError", "ScenarioError", "BaselineError", "OutputError", "FitError", "Location",
           "TargetsimWarning"]


class TargetsimError(Exception):
    """Root of every user-facing error."""


@dataclass(frozen=True)
class Location:
    """Where in a user file a problem lies: the file, the key path and the 1-based line."""

    file: str | None = None
    key: str | None = None
    line: int | None = None

    def render(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.key:
            parts.append(self.key)
        return ": ".join(parts)


class ScenarioError(TargetsimError):
    """A scenario file is malformed or inconsistent.

    The message names the file, the key path (``targets[2].threshold``) and the line.
    """

    def __init__(self, message: str, location: Location | None = None):
        self.reason = message
        self.location = location or Location()
        prefix = self.location.render()
        super().__init__(f"{prefix}: {message}" if prefix else message)


class BaselineError(TargetsimError):
    """A baselines file is malformed, or lacks a value a scenario needs.

    The message names the file, the line and, for a bad cell, its column (``b.csv:3: value: ...``).
    """

    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None,
                 column: str | None = None):
        self.reason = message
        self.location = Location(file=str(file) if file is not None else None, key=column, line=line)
        prefix = self.location.render()
        super().__init__(f"{prefix}: {message}" if prefix else message)


class OutputError(TargetsimError):
    """An output cannot be written where the user asked."""


class FitError(TargetsimError):
    """A history cannot be fitted (too few observed points, values the process cannot take, a
    process that does not suit the unit). The message names the indicator and, where it comes from
    a baselines file, the file and lines."""


class TargetsimWarning(UserWarning):
    """A result that stands but needs care (e.g. observations so extreme that few paths carry the
    weight); also recorded in the dataset's ``warnings`` attribute."""
