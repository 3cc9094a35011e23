"""Target kinds: one spec each, in one place.

A target kind's spec says what its threshold is (a value, a share, a growth rate, and the range it
may take), which indicators it applies to, whether its rule can hold in the base year itself,
whether it compares the indicator's value (so that a bounded kind's range applies), the average
growth it needs, and how the table writes it. The parser, the plan, the results and the table read
the spec; the kernel knows a kind by its code (:mod:`targetsim.kernels.codes`) and evaluates its rule
in ``_fold_targets`` (:mod:`targetsim.kernels.paths`). :func:`check_specs` runs at import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

#: processes whose value is a share in (0, 1): `share` targets need one of these
SHARE_KINDS: tuple[str, ...] = ("logit_share", "ratio")


@dataclass(frozen=True)
class TargetSpec:
    """Everything the package knows about one target kind (see the module's docstring).

    ``threshold``: ``(low, high, low_open, what)`` of the threshold's range (None: no bound) and the
    hint that explains it; ``indicators``: the process kinds it applies to (None: any) and ``instead``,
    what to use otherwise; ``needs(threshold, start, years)``: the average yearly growth it needs (NaN
    when a rule has no single pace); ``render(sign, threshold, unit)``: the table's threshold.
    """

    kind: str
    rate: bool                       # the threshold is a yearly growth rate, compared as ln(1 + g)
    period_free: bool                # the rule can hold in the base year itself
    compares_value: bool             # it compares the indicator's value (a bounded kind's range applies)
    threshold: Callable[[str], tuple[float | None, float | None, bool, str]]   # (indicator id) → range and hint
    indicators: tuple[str, ...] | None
    instead: str
    needs: Callable[[float, float, int], float]
    render: Callable[[str, float, str], str]


def _growth_needed(threshold: float, start: float, years: int) -> float:
    if not (start > 0 and threshold > 0 and years > 0):
        return math.nan
    return (threshold / start) ** (1.0 / years) - 1.0


def _no_pace(threshold: float, start: float, years: int) -> float:
    return math.nan  # per-year and cumulative rules have no single pace


RATE_HINT = "a growth rate is a fraction: 0.3 means +30 %/yr"
# A yearly growth rate above this (+1000 %/yr) is taken for a percentage written as a number.
MAX_RATE = 10.0


def _rate_threshold(indicator: str) -> tuple[float | None, float | None, bool, str]:
    return -1.0, MAX_RATE, True, RATE_HINT


def _level_threshold(indicator: str) -> tuple[float | None, float | None, bool, str]:
    # every process is non-negative, so a negative threshold is always met or never met
    return 0.0, None, False, f"{indicator} is never negative; for a decline use a 'cagr' target with a negative rate"


def _flow_threshold(indicator: str) -> tuple[float | None, float | None, bool, str]:
    return 0.0, None, False, f"{indicator} is never negative"


def _value(sign: str, threshold: float, unit: str) -> str:
    return f"{sign} {threshold:,.6g} {unit}"


LEVEL = TargetSpec(kind="level", rate=False, period_free=True, compares_value=True, threshold=_level_threshold,
                   indicators=None, instead="", needs=_growth_needed, render=_value)
CAGR = TargetSpec(kind="cagr", rate=True, period_free=False, compares_value=False, threshold=_rate_threshold,
                  indicators=None, instead="", needs=lambda thr, start, years: thr,
                  render=lambda sign, thr, unit: f"{sign} {thr * 100:.1f} %/yr")
FIRST_PASSAGE = TargetSpec(kind="first_passage", rate=False, period_free=True, compares_value=True,
                           threshold=_level_threshold, indicators=None, instead="", needs=_growth_needed,
                           render=_value)
SHARE = TargetSpec(kind="share", rate=False, period_free=True, compares_value=True,
                   threshold=lambda ind: (0.0, 1.0, False, "a share is a fraction: 0.47 means 47 %"),
                   indicators=SHARE_KINDS, instead="", needs=_growth_needed,
                   render=lambda sign, thr, unit: f"{sign} {thr * 100:.1f} %")
GROWTH_EACH_YEAR = TargetSpec(kind="growth_each_year", rate=True, period_free=False, compares_value=False,
                              threshold=_rate_threshold, indicators=None, instead="",
                              needs=lambda thr, start, years: thr,
                              render=lambda sign, thr, unit: f"{sign} {thr * 100:.1f} % every year")
COUNT_STOCK = TargetSpec(kind="count_stock", rate=False, period_free=True, compares_value=False,
                         threshold=lambda ind: (0.0, None, False, ""), indicators=("count", "scheduled"),
                         instead="level",
                         needs=_growth_needed, render=_value)
COUNT_PER_YEAR = TargetSpec(kind="count_per_year", rate=False, period_free=False, compares_value=True,
                            threshold=_flow_threshold, indicators=None, instead="", needs=_no_pace, render=_value)
CUMULATIVE = TargetSpec(kind="cumulative", rate=False, period_free=False, compares_value=False,
                        threshold=_flow_threshold, indicators=None, instead="", needs=_no_pace, render=_value)
# `in_year`: the indicator's increase during the year `by` alone, X(by) - X(by - 1) (a count's or a scheduled
# stock's additions that year; a level's change that year; 到2027年…每年: the yearly count by 2027, not every
# year before it, as `count_per_year` reads). A share's yearly change is not a count: shares are refused.
# The threshold may be negative (a level's decline that year).
IN_YEAR = TargetSpec(kind="in_year", rate=False, period_free=False, compares_value=False,
                     threshold=lambda ind: (None, None, False, ""),
                     indicators=("lognormal", "ar1_growth", "buildout", "count", "sum", "logistic", "scheduled"),
                     instead="", needs=_no_pace, render=lambda sign, thr, unit: f"{sign} {thr:,.6g} {unit} in the year")

#: Every target kind's spec, by kind.
TARGET_SPECS: dict[str, TargetSpec] = {spec.kind: spec for spec in (
    LEVEL, CAGR, FIRST_PASSAGE, SHARE, GROWTH_EACH_YEAR, COUNT_STOCK, COUNT_PER_YEAR, CUMULATIVE, IN_YEAR)}
TARGET_KINDS: tuple[str, ...] = tuple(TARGET_SPECS)
#: Target kinds whose rule can be evaluated in the base year itself (the others need a period).
PERIOD_FREE_KINDS: tuple[str, ...] = tuple(k for k, s in TARGET_SPECS.items() if s.period_free)


def check_specs(specs: Mapping[str, TargetSpec] = TARGET_SPECS) -> None:
    """Refuse, loudly, a spec with a part missing (run at import)."""
    for kind, spec in specs.items():
        missing = [f.name for f in fields(TargetSpec) if getattr(spec, f.name, None) is None
                   and f.name not in ("indicators",)]
        if missing or spec.kind != kind:
            raise TypeError(f"target kind {kind!r}: its spec lacks {', '.join(missing) or 'its own name'}")


check_specs()
