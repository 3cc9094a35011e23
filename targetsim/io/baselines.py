"""Baseline CSV files in long form: one observed (or assumed) value per indicator and year.

Columns: ``indicator, year, value, unit, source`` are required; ``quote``, ``assumption``
and ``notes`` are optional. A row must carry a ``source`` or an ``assumption`` (the reason
the value is assumed rather than observed): no number may pose as observed without a source.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from targetsim.errors import BaselineError

REQUIRED_COLUMNS = ("indicator", "year", "value", "unit", "source")
OPTIONAL_COLUMNS = ("quote", "assumption", "notes")


@dataclass(frozen=True)
class BaselineValue:
    indicator: str
    year: int
    value: float
    unit: str
    source: str
    quote: str = ""
    assumption: str = ""
    notes: str = ""
    line: int = 0

    @property
    def is_assumption(self) -> bool:
        return bool(self.assumption)

    def provenance(self) -> str:
        """One line saying where the value comes from."""
        if self.is_assumption:
            text = f"assumption: {self.assumption}"
            return f"{text} (inputs: {self.source})" if self.source else text
        return self.source


@dataclass(frozen=True)
class Baselines:
    file: Path
    rows: tuple[BaselineValue, ...]

    def get(self, indicator: str, year: int) -> BaselineValue | None:
        for row in self.rows:
            if row.indicator == indicator and row.year == year:
                return row
        return None

    def history(self, indicator: str) -> list[BaselineValue]:
        return sorted((r for r in self.rows if r.indicator == indicator), key=lambda r: r.year)


def load_baselines(path: str | Path) -> Baselines:
    """Read and validate a baselines CSV file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BaselineError("baselines file not found", path) from None
    except UnicodeDecodeError:
        raise BaselineError("not valid UTF-8", path) from None
    except OSError as exc:
        raise BaselineError(f"cannot read: {exc.strerror}", path) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise BaselineError(f"missing column(s) {', '.join(missing)}; the header must include "
                            f"{', '.join(REQUIRED_COLUMNS)}", path, 1)
    rows: list[BaselineValue] = []
    seen: dict[tuple[str, int], int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            raise BaselineError("more fields than the header has columns", path, line)
        cells = {k: (v or "").strip() for k, v in raw.items()}
        if not any(cells.values()):
            continue
        indicator = cells["indicator"]
        if not indicator:
            raise BaselineError("empty indicator", path, line)
        try:
            year = int(cells["year"])
        except ValueError:
            raise BaselineError(f"year must be a whole number, got {cells['year']!r}", path, line) from None
        try:
            value = float(cells["value"])
        except ValueError:
            raise BaselineError(f"value must be a number, got {cells['value']!r}", path, line) from None
        if not math.isfinite(value):
            raise BaselineError(f"value must be finite, got {cells['value']!r}", path, line)
        if not cells["source"] and not cells.get("assumption"):
            raise BaselineError(f"{indicator} {year}: a value needs a source, or an assumption "
                                "column saying why it is assumed", path, line)
        key = (indicator, year)
        if key in seen:
            raise BaselineError(f"{indicator} {year} appears twice (also line {seen[key]})", path, line)
        seen[key] = line
        rows.append(BaselineValue(
            indicator=indicator, year=year, value=value, unit=cells["unit"], source=cells["source"],
            quote=cells.get("quote", ""), assumption=cells.get("assumption", ""),
            notes=cells.get("notes", ""), line=line,
        ))
    return Baselines(file=path, rows=tuple(rows))
