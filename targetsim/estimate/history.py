"""An indicator's history from baselines rows: what is data, what is not, and why.

Rows are read duck-typed (``indicator, year, value, unit, assumption, notes, line``: the fields of
:class:`targetsim.io.baselines.BaselineValue`), so this layer does not depend on the reader.

- A row with an ``assumption`` is not data (a derived or assumed value): it is left out and named.
- A row whose ``notes`` carry a low-trust tag (``EST``: a commercial estimate; ``AGG``: an
  aggregator's summary) is used as an estimate: it counts half (see
  :data:`targetsim.estimate.fitting.ESTIMATE_WEIGHT`).
- ``until``: rows after that year are left out (to fit as of an earlier date, for a backtest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from targetsim.errors import FitError
from targetsim.estimate.fitting import ESTIMATE_WEIGHT, Fit, fit
from targetsim.estimate.pooling import Series

LOW_TRUST = re.compile(r"\b(EST|AGG)\b")


def series_from_rows(rows: Iterable[Any], indicator: str, *, until: int | None = None,
                     breaks: Sequence[int] = (), origin: str | None = None) -> Series:
    """The observed history of ``indicator`` among ``rows``; :class:`FitError` when it has none."""
    mine = sorted((r for r in rows if r.indicator == indicator), key=lambda r: r.year)
    where = f" in {origin}" if origin else ""
    if not mine:
        raise FitError(f"{indicator}: no rows{where}; `targetsim baselines` lists the indicators")
    excluded, years, values, weights, lines = [], [], [], [], []
    for r in mine:
        if until is not None and r.year > until:
            continue
        if r.assumption:
            excluded.append(f"{r.year} (line {r.line}: an assumption, not data)")
            continue
        years.append(r.year)
        values.append(r.value)
        weights.append(ESTIMATE_WEIGHT if LOW_TRUST.search(r.notes or "") else 1.0)
        lines.append(f"line {r.line}")
    units = {r.unit for r in mine if r.unit}
    if len(units) > 1:
        raise FitError(f"{indicator}: rows{where} mix units ({', '.join(sorted(units))}); a history needs one unit")
    if len(years) < 2:
        cut = f" up to {until}" if until is not None else ""
        raise FitError(f"{indicator}: {len(years)} observed value(s){cut}{where} "
                       f"({len(excluded)} assumption row(s) are not data); a fit needs at least two. "
                       "Add observed rows, or pool it with related series (--indicator A --indicator B)")
    return Series(indicator, tuple(years), tuple(values), unit=units.pop() if units else None,
                  weights=tuple(weights), breaks=tuple(breaks), where=tuple(lines), origin=origin,
                  excluded=tuple(excluded))


def fit_series(series: Series, process: str = "auto") -> Fit:
    """:func:`~targetsim.estimate.fitting.fit` on a :class:`Series`."""
    return fit(series.years, series.values, process, unit=series.unit, weights=series.weights,
               breaks=series.breaks, indicator=series.indicator, where=series.where, origin=series.origin,
               excluded=series.excluded)
