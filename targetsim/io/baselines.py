"""Baseline CSV files in long form: one observed (or assumed) value per indicator and year.

Columns: ``indicator, year, value, unit, source`` are required; ``quote``, ``assumption``
and ``notes`` are optional. A row must carry a ``source`` or an ``assumption`` (the reason
the value is assumed rather than observed): no number may pose as observed without a source.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
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
    file: str = ""  # the baselines file the row is read from

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

    @classmethod
    def combined(cls, tables: "list[Baselines]") -> "Baselines":
        """Several baselines files read as one (a city model's and a plan's): each (indicator, year)
        once, from the first file that gives it; another file giving a different value is an error
        naming both rows (the same statistic has one value, whichever plan quotes it)."""
        if len(tables) == 1:
            return tables[0]
        first: dict[tuple[str, int], BaselineValue] = {}
        rows = []
        for table in tables:
            for row in table.rows:
                key = (row.indicator, row.year)
                have = first.get(key)
                if have is None:
                    first[key] = row
                    rows.append(row)
                elif have.value != row.value:
                    raise BaselineError(f"{row.indicator} {row.year} is {row.value:g} here but {have.value:g} in "
                                        f"{have.file}, line {have.line}: one statistic has one value in every file "
                                        "a scenario reads; correct one of them, or give the series another id",
                                        table.file, row.line, "value")
        return cls(file=tables[0].file, rows=tuple(rows))


# A baselines file larger than this is refused unread (the shipped ones are well under 1 MiB).
MAX_BASELINE_BYTES = 256 * 2**20

# A year outside this range is a typo (20244 for 2024); scenarios use the same range.
YEAR_RANGE = (1900, 2200)


def _number_hint(text: str) -> str:
    cleaned = text.replace(",", "").replace("，", "")
    try:
        if text.endswith(("%", "％")):
            float(text[:-1])
            return "; write the number without '%' and give the unit (e.g. percent)"
        if cleaned != text:
            float(cleaned)
            return f"; write it without thousands separators: {cleaned}"
    except ValueError:
        pass
    return ""


def load_baselines(path: str | Path) -> Baselines:
    """Read and validate a baselines CSV file.

    Errors (:class:`BaselineError`) name the file and line: a missing column, an empty file, a
    malformed CSV line (an unclosed quote), a year that is not a whole number in 1900–2200, a value
    that is not a finite number, a row without a source or assumption, an (indicator, year) pair
    given twice, and an indicator's years not in increasing order.
    """
    from targetsim.io.yaml_source import UserFileProblem, read_user_file

    path = Path(path)
    try:
        raw = read_user_file(path, "a baselines CSV file", MAX_BASELINE_BYTES)
    except UserFileProblem as exc:
        message = "baselines file not found" if str(exc) == "file not found" else str(exc)
        raise BaselineError(message, path) from None
    # Parsed once per process while the file's bytes are unchanged (a sweep loads the same baselines for
    # every variant); the table is immutable, so sharing it is safe.
    key = (str(path), hashlib.sha256(raw).hexdigest())
    cached = _BASELINES_CACHE.get(key)
    if cached is None:
        cached = _BASELINES_CACHE[key] = _parse_baselines(path, raw)
        while len(_BASELINES_CACHE) > _BASELINES_CACHE_SIZE:
            _BASELINES_CACHE.pop(next(iter(_BASELINES_CACHE)))
    return cached


_BASELINES_CACHE: dict[tuple[str, str], Baselines] = {}
_BASELINES_CACHE_SIZE = 16


def _parse_baselines(path: Path, raw: bytes) -> Baselines:
    from targetsim.io.yaml_source import decode_text

    text = decode_text(raw, path, BaselineError).removeprefix("\ufeff")
    if "\x00" in text:
        raise BaselineError("contains NUL bytes: not a text CSV file (a spreadsheet saved in another "
                            "format?)", path, text[: text.index("\x00")].count("\n") + 1)
    if not text.strip():
        raise BaselineError(f"the file is empty; the first line must be the header "
                            f"{','.join(REQUIRED_COLUMNS)}", path, 1)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [(h or "").strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise BaselineError(f"malformed CSV header: {exc}", path, 1) from None
    reader.fieldnames = header
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column, [h for h in header if h not in REQUIRED_COLUMNS], n=1)
            if close:
                hints.append(f"{close[0]!r} for {column!r}?")
        hint = f" (did you mean {', '.join(hints)})" if hints else ""
        raise BaselineError(f"missing column(s) {', '.join(missing)}{hint}; the header must include "
                            f"{', '.join(REQUIRED_COLUMNS)}", path, 1)
    rows: list[BaselineValue] = []
    seen: dict[tuple[str, int], int] = {}
    last: dict[str, tuple[int, int]] = {}
    while True:
        line = reader.line_num + 1  # where the record starts (a quoted field may span lines)
        try:
            raw_row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise BaselineError(f"malformed CSV ({exc}); a quoted field must end with a quote followed by "
                                "a comma or the end of the line", path, line) from None
        if None not in raw_row and not any((v or "").strip() for v in raw_row.values()):
            continue  # a blank row (",,,,")
        if None in raw_row:
            raise BaselineError("more fields than the header has columns (a number with a thousands "
                                "separator must be quoted, or written without it)", path, line)
        cells = {k: (v or "").strip() for k, v in raw_row.items()}
        indicator = cells["indicator"]
        if not indicator:
            raise BaselineError("must not be empty", path, line, "indicator")
        try:
            year = int(cells["year"])
        except ValueError:
            raise BaselineError(f"must be a whole number, got {cells['year']!r}", path, line, "year") from None
        if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
            raise BaselineError(f"must lie between {YEAR_RANGE[0]} and {YEAR_RANGE[1]}, got {year}",
                                path, line, "year")
        try:
            value = float(cells["value"])
        except ValueError:
            raise BaselineError(f"must be a number, got {cells['value']!r}{_number_hint(cells['value'])}",
                                path, line, "value") from None
        if not math.isfinite(value):
            raise BaselineError(f"must be a finite number, got {cells['value']!r}", path, line, "value")
        if not cells["source"] and not cells.get("assumption"):
            raise BaselineError(f"{indicator} {year}: a value needs a source, or an assumption "
                                "column saying why it is assumed", path, line, "source")
        key = (indicator, year)
        if key in seen:
            raise BaselineError(f"{indicator} {year} appears twice (also line {seen[key]})", path, line, "year")
        seen[key] = line
        if indicator in last and year < last[indicator][0]:
            before, before_line = last[indicator]
            raise BaselineError(f"{indicator}: year {year} comes after {before} (line {before_line}); list "
                                "each indicator's years in increasing order", path, line, "year")
        last[indicator] = (year, line)
        rows.append(BaselineValue(
            indicator=indicator, year=year, value=value, unit=cells["unit"], source=cells["source"],
            quote=cells.get("quote", ""), assumption=cells.get("assumption", ""),
            notes=cells.get("notes", ""), line=line, file=str(path),
        ))
    return Baselines(file=path, rows=tuple(rows))
