"""Bad scenarios: one exception type, naming the file, the key path and the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import targetsim
from targetsim.errors import ScenarioError

GOOD = """\
name: errors
base_year: 2024
horizon: 2027
paths: 1000
seed: 1
indicators:
  a:
    label: 数字订购贸易
    unit: CNY_100m
    start: {value: 100, assumption: test}
    process:
      kind: lognormal
      growth: {mean: 0.1, sd: 0.02}
      volatility: 0.1
  b:
    start: {value: 50, assumption: test}
    process: {kind: lognormal, growth: 0.05, volatility: 0.1}
targets:
  - id: t1
    indicator: a
    kind: cagr
    threshold: 0.3
    by: 2027
  - id: t2
    indicator: b
    kind: level
    threshold: 60
    by: 2026
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ScenarioError:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        targetsim.load_scenario(path)
    assert str(path) in str(info.value)
    return info.value


def test_good_scenario_loads(tmp_path):
    sc = targetsim.load_scenario(write(tmp_path, GOOD))
    assert [t.id for t in sc.targets] == ["t1", "t2"]
    assert sc.indicator_by_id["a"].label == "数字订购贸易"


# (replace this, with this, expected key path, expected line, words in the message)
CASES = [
    ("threshold: 60", "threshold: sixty", "targets[1].threshold", 27, "expected a number"),
    ("kind: cagr", "kind: cgar", "targets[0].kind", 21, "did you mean 'cagr'"),
    ("    by: 2026", "    by: 2030", "targets[1].by", 28, "at most horizon 2027"),
    ("volatility: 0.1\n  b:", "volatility: -0.1\n  b:", "indicators.a.process.volatility", 14, "at least 0"),
    ("kind: lognormal\n      growth", "kind: lognormall\n      growth", "indicators.a.process.kind",
     12, "did you mean 'lognormal'"),
    ("    indicator: b", "    indicator: c", "targets[1].indicator", 25, "unknown indicator 'c'"),
    ("seed: 1", "seed: 1\nhorizont: 2030", "horizont", 6, "did you mean 'horizon'"),
    ("horizon: 2027", "horizon: 2020", "horizon", 3, "after base_year"),
    ("  - id: t2", "  - id: t1", "targets[1].id", 24, "duplicate target id"),
    ("growth: {mean: 0.1, sd: 0.02}", "growth: {mean: 0.1, sd: 0.5}", "indicators.a.process.growth.sd",
     13, "stay above -1"),
    ("threshold: 0.3", "threshold: 30", "targets[0].threshold", 22, "fraction"),
    ("paths: 1000", "paths: 0", "paths", 4, "at least 1"),
    ("paths: 1000", "paths: true", "paths", 4, "boolean"),
    ("start: {value: 50, assumption: test}", "start: {value: -50, assumption: test}",
     "indicators.b.start.value", 16, "at least 0"),
    ("start: {value: 50, assumption: test}", "start: {value: 0, assumption: test}",
     "indicators.b.start", 16, "positive start value"),
    ("start: {value: 50, assumption: test}", "start: {value: 50}", "indicators.b.start", 16,
     "needs a 'source' or an 'assumption'"),
]


@pytest.mark.parametrize("old,new,key,line,words", CASES, ids=[c[2] + ":" + c[4] for c in CASES])
def test_error_names_key_and_line(tmp_path, old, new, key, line, words):
    assert old in GOOD
    err = error_for(tmp_path, GOOD.replace(old, new, 1))
    assert err.location.key == key
    assert err.location.line == line
    assert words in err.reason
    assert f":{line}: {key}: " in str(err)


def test_comparator_error(tmp_path):
    err = error_for(tmp_path, GOOD.replace("    by: 2026", "    by: 2026\n    comparator: '=>'"))
    assert err.location.key == "targets[1].comparator" and err.location.line == 29


def test_correlations_not_psd(tmp_path):
    text = GOOD.replace("targets:", textwrap.dedent("""\
        correlations:
          - [a, b, 0.9]
          - [b, a, 0.9]
        targets:"""))
    sc = targetsim.load_scenario(write(tmp_path, text))  # the same pair twice, consistently: fine
    assert len(sc.correlations) == 1
    text = GOOD.replace("indicators:", "indicators:\n  c:\n    start: {value: 1, assumption: t}\n"
                        "    process: {kind: lognormal, growth: 0.1, volatility: 0.1}").replace(
        "targets:", "correlations:\n  - [a, b, 0.9]\n  - [a, c, 0.9]\n  - [b, c, -0.9]\ntargets:")
    err = error_for(tmp_path, text)
    assert err.location.key == "correlations" and "positive semi-definite" in err.reason
    err = error_for(tmp_path, GOOD.replace("targets:", "correlations:\n  - [a, b, 0.5]\n  - [b, a, 0.4]\ntargets:"))
    assert err.location.key == "correlations[1]" and "symmetric" in err.reason
    err = error_for(tmp_path, GOOD.replace("targets:", "correlations:\n  - [a, b, 1.5]\ntargets:"))
    assert err.location.key == "correlations[0][2]"


def test_yaml_syntax_error_names_line(tmp_path):
    err = error_for(tmp_path, GOOD.replace("    kind: level", "    kind: [level"))
    # detected on the next line; the message points back to where the sequence opened
    assert err.location.line == 27
    assert "invalid YAML" in err.reason and "started on line 26" in err.reason


def test_duplicate_key_is_an_error(tmp_path):
    err = error_for(tmp_path, GOOD.replace("seed: 1", "seed: 1\nseed: 2"))
    assert err.location.key == "seed" and err.location.line == 6 and "duplicate key" in err.reason


def test_empty_and_missing_files(tmp_path):
    err = error_for(tmp_path, "")
    assert "empty" in err.reason
    with pytest.raises(ScenarioError, match="file not found"):
        targetsim.load_scenario(tmp_path / "nope.yaml")


def test_alias_bomb_is_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    err = error_for(tmp_path, bomb)
    assert "alias" in err.reason


def test_python_tags_are_not_executed(tmp_path):
    err = error_for(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    assert "invalid YAML" in err.reason


def test_baseline_start_without_row(tmp_path):
    (tmp_path / "b.csv").write_text("indicator,year,value,unit,source\na,2023,90,CNY_100m,somewhere\n",
                                    encoding="utf-8")
    text = GOOD.replace("start: {value: 100, assumption: test}", "start: baseline").replace(
        "seed: 1", "seed: 1\nbaselines: b.csv")
    err = error_for(tmp_path, text)
    assert err.location.key == "indicators.a.start" and err.location.line == 11
    assert "base year 2024" in err.reason and "2023" in err.reason


def test_baseline_start_resolves_with_source(tmp_path):
    (tmp_path / "b.csv").write_text(
        "indicator,year,value,unit,source,quote,assumption\n"
        "a,2024,90,CNY_100m,Some bulletin https://example.org,「九十」,\n", encoding="utf-8")
    text = GOOD.replace("start: {value: 100, assumption: test}", "start: baseline").replace(
        "seed: 1", "seed: 1\nbaselines: b.csv")
    sc = targetsim.load_scenario(write(tmp_path, text))
    start = sc.indicator_by_id["a"].start
    assert start.value == 90 and not start.is_assumption and "example.org" in start.provenance()
