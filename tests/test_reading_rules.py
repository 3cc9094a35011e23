"""The reading rules of the plan's wording (targetsim/model/reading.py) against the README and every
shipped target.

Every target of every shipped scenario is checked against the keywords of its ``source.quote``: a
target whose kind, comparator or aspirational mark departs from a rule fails, unless it carries a
``reading:`` justification in its scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import targetsim
from targetsim.model.reading import READING_RULES, readme_table, rule_problems

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_readme_renders_the_code_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- reading rules: generated from targetsim.model.reading.readme_table() -->")
    end = text.index("<!-- end of reading rules -->")
    assert text[start:end].split("\n", 1)[1].strip() == readme_table().strip()


@pytest.mark.parametrize("quote,kind,comparator,aspirational,ok", [
    ("旅游综合收入年均增长 10%左右", "cagr", "~>=", False, True),
    ("旅游综合收入年均增长 10%左右", "growth_each_year", "~>=", False, False),
    ("旅游综合收入年均增长 10%左右", "cagr", ">=", False, False),
    ("年均新增进规入库企业 10 家以上", "cumulative", ">=", False, True),
    ("年均新增进规入库企业 10 家以上", "count_per_year", ">=", False, False),
    ("全市社会消费品零售总额超 1.07 万亿元", "level", ">", False, True),
    ("全市社会消费品零售总额超 1.07 万亿元", "level", ">=", False, False),
    ("规模以上生产性服务业企业营业收入突破 8000 亿元", "level", ">", False, True),
    ("力争机场年中转旅客量达到 360 万人次", "level", ">=", False, False),
    ("力争机场年中转旅客量达到 360 万人次", "level", ">=", True, True),
    ("国际标准累计超过 220 件", "growth_each_year", ">", False, False),
    ("年均增长 10%左右", "cagr", "~", False, False),
    ("到2027年,力争每年举办国际体育赛事 10 项以上", "in_year", ">=", True, True),
    ("到2027年,力争每年举办国际体育赛事 10 项以上", "count_stock", ">=", True, False),
])
def test_rule_problems(quote, kind, comparator, aspirational, ok):
    assert (not rule_problems(quote, kind, comparator, aspirational)) == ok


def test_every_rule_has_an_explanation():
    for rule in READING_RULES:
        assert rule.keyword and rule.meaning and rule.why, rule


def _targets():
    for path in SCENARIOS:
        scenario = targetsim.load_scenario(path)
        for target in scenario.targets:
            yield path.name, target


@pytest.mark.parametrize("scenario,target", list(_targets()),
                         ids=[f"{s}:{t.id}" for s, t in _targets()])
def test_shipped_target_follows_the_reading_rules(scenario, target):
    problems = rule_problems(target.source.quote, target.kind, target.comparator, target.aspirational)
    assert not problems or target.reading.strip(), (
        f"{scenario}: {target.id} 「{target.source.quote}」 departs from the reading rules: {'; '.join(problems)}; "
        "re-read it, or say why in `reading:`")
