"""How the plan's wording is read: one table of reading rules, keyword → what the target must be.

A plan's target is read as a planner reads it; a reading that manufactures failure is a bug: 年均
(annual average) read as "every year", 左右 (about) read as a band that a faster growth misses, 每年
read as every year from the base year when the sentence names the target year. Each rule names the
keyword (a regular expression over the target's ``source.quote``), the target kinds or comparators the
keyword requires (empty: no requirement on that part), or that the target is ``aspirational``, and
why. The README's section "Reading the plan" renders this table (a test checks they agree), and
``tests/test_reading_rules.py`` checks every shipped target against it: a target that departs from a
rule carries ``reading: "why"`` in its scenario (recorded as ``target_reading_note``).

No I/O and no numerics here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadingRule:
    """One keyword and what it requires of a target whose quote contains it."""

    keyword: str                      # the keyword as the README shows it
    pattern: str                      # a regular expression over the quote
    meaning: str                      # what the keyword means, in a few words
    kinds: tuple[str, ...] = ()       # the target kinds it allows (empty: any)
    comparators: tuple[str, ...] = ()  # the comparators it allows (empty: any)
    aspirational: bool = False        # the target must be marked aspirational
    why: str = ""

    def matches(self, quote: str) -> bool:
        return re.search(self.pattern, quote) is not None


#: The reading rules, in the order the README lists them. A quote may match several; each applies.
READING_RULES: tuple[ReadingRule, ...] = (
    ReadingRule(
        keyword="年均增长, 年均复合增长", pattern=r"年均(复合)?增长",
        meaning="average growth over the period", kinds=("cagr",),
        why="an average: a slow year made up by a fast one still meets it; never `growth_each_year`"),
    ReadingRule(
        keyword="年均 (a count or flow: 年均新增, 年均举办)", pattern=r"年均(?!(复合)?增长)",
        meaning="an average per year over the period", kinds=("cumulative",),
        why="the period's total at least the yearly average × the years (threshold = average × years); "
            "never `count_per_year`, which needs every year"),
    ReadingRule(
        keyword="每年, 年度", pattern=r"每年|年度",
        meaning="per year, in the years the sentence names",
        kinds=("count_per_year", "in_year", "level", "cumulative"),
        why="`count_per_year` when the sentence means each year of the plan; the target year's own count when it "
            "names the target year (到2027年每年…: the yearly count by 2027): `in_year` at `by` (a count's additions "
            "that year), or `level` of a yearly flow in `by`"),
    ReadingRule(
        keyword="累计", pattern=r"累计",
        meaning="cumulative, or a stock with its existing start", kinds=("cumulative", "count_stock", "level"),
        why="new things over the period (`cumulative`), or the stock including what exists at the start "
            "(`count_stock`, `level`) when the total counts the existing ones"),
    ReadingRule(
        keyword="左右", pattern=r"左右",
        meaning="about: by default a soft floor", comparators=("~>=",),
        why="`~>=`: met from threshold × (1 − tolerance) up, so doing better is never a miss; `~` (a two-sided "
            "band) only where the plan clearly means one, said in `reading:`"),
    ReadingRule(
        keyword="超过, 突破, 超 (a number)", pattern=r"超过|突破|超\s*[0-9一二三四五六七八九十百千万]",
        meaning="more than", comparators=(">",),
        why="strictly above the threshold"),
    ReadingRule(
        keyword="达到, 达, 不低于, 不少于, 以上, ≥", pattern=r"达|不低于|不少于|(?<!规模)(?<!级)以上|≥",
        meaning="at least", comparators=(">=",),
        why="the threshold itself meets it (规模以上 and 省级以上 name a class, not a bound)"),
    ReadingRule(
        keyword="力争", pattern=r"力争",
        meaning="strive for: aspirational", aspirational=True,
        why="the plan does not commit to it: `aspirational: true` (the number is unchanged)"),
)


def rule_problems(quote: str, kind: str, comparator: str, aspirational: bool) -> list[str]:
    """Every rule the target's reading departs from: one line each (empty: it follows them all).

    ``>`` and ``>=`` rules: where a quote holds keywords of both (several clauses in one sentence),
    either comparator satisfies them.
    """
    problems = []
    matched = [rule for rule in READING_RULES if rule.matches(quote)]
    bounds = {c for rule in matched if rule.comparators in ((">",), (">=",)) for c in rule.comparators}
    for rule in matched:
        if rule.kinds and kind not in rule.kinds:
            problems.append(f"{rule.keyword}: kind {kind!r}, the rule reads it as {' or '.join(rule.kinds)}")
        allowed = bounds if rule.comparators in ((">",), (">=",)) else set(rule.comparators)
        if allowed and comparator not in allowed:
            problems.append(f"{rule.keyword}: comparator {comparator!r}, the rule reads it as "
                            f"{' or '.join(sorted(allowed))}")
        if rule.aspirational and not aspirational:
            problems.append(f"{rule.keyword}: not marked aspirational")
    return problems


def readme_table() -> str:
    """The rules as the README's table (section "Reading the plan")."""
    lines = ["| keyword | meaning | kind | comparator | reading |", "|---|---|---|---|---|"]
    for rule in READING_RULES:
        kinds = ", ".join(f"`{k}`" for k in rule.kinds) or "any"
        comparators = ", ".join(f"`{c}`" for c in rule.comparators) or "any"
        if rule.aspirational:
            comparators += "; `aspirational: true`"
        lines.append(f"| {rule.keyword} | {rule.meaning} | {kinds} | {comparators} | {rule.why} |")
    return "\n".join(lines)
