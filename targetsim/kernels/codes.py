"""The integer codes by which the kernel knows process kinds, target kinds, comparators and shock laws.

Defined once, here: the plan encodes a scenario with the mappings, the kernel branches on the
constants. No numba here. The mappings' keys are the model's names
(:mod:`targetsim.model.scenario`); the engine's plan checks at import that every kind has a code.
"""

from __future__ import annotations

PROCESS_CODES = {"lognormal": 0, "ar1_growth": 1, "logit_share": 2, "buildout": 3, "count": 4, "ratio": 5, "sum": 6,
                 "logistic": 7, "scheduled": 8}
LOGNORMAL, AR1, LOGIT, BUILDOUT, COUNT, RATIO, SUM, LOGISTIC, SCHEDULED = (PROCESS_CODES[k] for k in (
    "lognormal", "ar1_growth", "logit_share", "buildout", "count", "ratio", "sum", "logistic", "scheduled"))

# level, share and count_stock are one rule: the value in the target year
TARGET_CODES = {"level": 0, "share": 0, "count_stock": 0, "cagr": 1, "first_passage": 2,
                "growth_each_year": 3, "count_per_year": 4, "cumulative": 5,
                "in_year": 6}
T_LEVEL, T_CAGR, T_FIRST_PASSAGE, T_GROWTH_EACH_YEAR, T_PER_YEAR, T_CUMULATIVE, T_IN_YEAR = (TARGET_CODES[k] for k in (
    "level", "cagr", "first_passage", "growth_each_year", "count_per_year", "cumulative", "in_year"))

# "~>=" (about, or more) is ">=" at the lower edge of the "~" band: the plan moves its threshold there, and the
# kernel compares it as ">=" (no branch of its own)
COMPARATOR_CODES = {">=": 0, ">": 1, "<=": 2, "<": 3, "~": 4, "~>=": 0}
GE, GT, LE, LT, ABOUT = (COMPARATOR_CODES[k] for k in (">=", ">", "<=", "<", "~"))

SHOCK_CODES = {"normal": 0, "student_t": 1, "two_piece": 2}
NORMAL, STUDENT_T, TWO_PIECE = (SHOCK_CODES[k] for k in ("normal", "student_t", "two_piece"))

# an indicator's start: known (the same on every path), or drawn once per path from its law
START_LAW_CODES = {"known": 0, "lognormal": 1, "uniform": 2, "normal": 3}
START_KNOWN, START_LOGNORMAL, START_UNIFORM, START_NORMAL = (START_LAW_CODES[k] for k in (
    "known", "lognormal", "uniform", "normal"))
# a normal start's deviation is limited to ± this many s.d. (validation keeps that range valid)
START_NORMAL_SD = 6.0
