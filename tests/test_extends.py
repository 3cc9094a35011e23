"""Scenario inheritance: ``extends:``, the deep-merge rule, and errors that point into the right file."""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import targetsim
from targetsim.cli import main
from targetsim.errors import ScenarioError
from targetsim.io.extends import MAX_DEPTH, load_chain
from targetsim.io.yaml_source import load_yaml

BASE = """\
# the base scenario
name: base
description: the base case
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
      growth: {mean: 0.27, sd: 0.1}
      volatility: 0.1
  b:
    start: {value: 50, assumption: test}
    process: {kind: lognormal, growth: 0.05, volatility: 0.1}
  c:
    start: {value: 10, assumption: test}
    process: {kind: lognormal, growth: 0.08, volatility: 0.2}
correlations:
  - [a, b, 0.3]
  - [b, c, 0.2]
targets:
  - id: t1
    indicator: a
    kind: cagr
    threshold: 0.3
    by: 2027
    label: digital ordering
  - id: t2
    indicator: b
    kind: level
    threshold: 60
    by: 2026
  - id: t3
    indicator: c
    kind: level
    threshold: 12
    by: 2027
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 0) -> int:
    """1-based line of the ``nth`` line of ``path`` containing ``needle``."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return hits[nth]


def error_for(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        targetsim.load_scenario(path)
    return info.value


@pytest.fixture
def base(tmp_path) -> Path:
    return write(tmp_path / "base.yaml", BASE)


def child(tmp_path: Path, body: str, name: str = "variant.yaml", extends: str = "base.yaml") -> Path:
    return write(tmp_path / name, f"extends: {extends}\n" + textwrap.dedent(body))


def test_variant_overrides_one_process_parameter(tmp_path, base):
    variant = child(tmp_path, """\
        name: base-pessimistic
        indicators:
          a:
            process: {growth: {mean: 0.18}}
        """)
    parent = targetsim.load_scenario(base)
    merged = targetsim.load_scenario(variant)
    a = parent.indicator_by_id["a"]
    growth = dataclasses.replace(a.process.growth, mean=0.18)  # sd 0.1 is inherited
    # the new mean has no source of its own: recorded as the variant's assumption
    parameters = dataclasses.replace(a.parameters, assumption=f"set in {variant} (process.growth.mean = 0.18) "
                                                               "without a 'parameters' source of its own")
    expected = dataclasses.replace(
        parent, name="base-pessimistic",
        indicators=(dataclasses.replace(a, process=dataclasses.replace(a.process, growth=growth),
                                        parameters=parameters),
                    *parent.indicators[1:]),
        file=variant, sha256=merged.sha256)
    assert merged == expected
    assert merged.indicator_by_id["a"].process.growth.sd == 0.1
    assert merged.indicator_by_id["a"].label == "数字订购贸易"


def test_file_without_extends_is_loaded_as_before(base):
    chain = load_chain(base)
    plain = load_yaml(base)
    assert chain.sources == (chain.merged,) and chain.merged == plain and not chain.merged.origins
    assert targetsim.load_scenario(base).sha256 == hashlib.sha256(base.read_bytes()).hexdigest()


def test_targets_merge_by_id(tmp_path, base):
    variant = child(tmp_path, """\
        targets:
          - {id: t2, threshold: 70}
          - id: t4
            indicator: a
            kind: level
            threshold: 150
            by: 2027
          - {id: t3, remove: true}
        """)
    parent = targetsim.load_scenario(base)
    merged = targetsim.load_scenario(variant)
    assert [t.id for t in merged.targets] == ["t1", "t2", "t4"]
    t2 = merged.targets[1]
    assert t2 == dataclasses.replace(parent.targets[1], threshold=70.0)
    assert merged.targets[0] == parent.targets[0]
    assert merged.targets[2].indicator == "a" and merged.targets[2].threshold == 150


def test_removing_an_unknown_target_is_an_error(tmp_path, base):
    variant = child(tmp_path, """\
        targets:
          - {id: t2, threshold: 70}
          - {id: t9, remove: true}
        """)
    err = error_for(variant)
    assert err.location.file == str(variant)
    assert err.location.key == "targets[1].id" and err.location.line == line_of(variant, "t9")
    assert "cannot remove target 't9'" in err.reason and str(base) in err.reason


@pytest.mark.parametrize("entry,key,words", [
    ("{id: t1, remove: false}", "targets[0].remove", "can only be true"),
    ("{id: t1, remove: true, threshold: 3}", "targets[0].threshold", "only 'id' and 'remove'"),
    ("{remove: true}", "targets[0]", "needs the 'id'"),
])
def test_bad_removals(tmp_path, base, entry, key, words):
    variant = child(tmp_path, f"targets:\n  - {entry}\n")
    err = error_for(variant)
    assert err.location.file == str(variant) and err.location.key == key and err.location.line == 3
    assert words in err.reason


def test_a_target_listed_twice_in_the_child_is_an_error(tmp_path, base):
    variant = child(tmp_path, "targets:\n  - {id: t1, threshold: 0.2}\n  - {id: t1, by: 2026}\n")
    err = error_for(variant)
    assert err.location.key == "targets[1].id" and err.location.line == 4 and "listed twice" in err.reason


def test_correlations_merge_by_pair(tmp_path, base):
    variant = child(tmp_path, """\
        correlations:
          - [b, a, 0.5]
          - [a, c, 0.1]
        """)
    merged = targetsim.load_scenario(variant)
    pairs = [(frozenset((c.a, c.b)), c.rho) for c in merged.correlations]
    assert pairs == [(frozenset("ab"), 0.5), (frozenset("bc"), 0.2), (frozenset("ac"), 0.1)]
    data = load_chain(variant).merged.data
    assert data["correlations"] == [["b", "a", 0.5], ["b", "c", 0.2], ["a", "c", 0.1]]


def test_other_lists_replace(tmp_path, base):
    write(tmp_path / "base.yaml", BASE.replace("seed: 1", "seed: 1\nquantiles: [0.1, 0.5, 0.9]"))
    variant = child(tmp_path, "quantiles: [0.25, 0.75]\n")
    assert targetsim.load_scenario(variant).quantiles == (0.25, 0.75)


def test_null_deletes_a_key(tmp_path, base):
    variant = child(tmp_path, """\
        description: null
        targets:
          - {id: t1, label: null}
        """)
    data = load_chain(variant).merged.data
    assert "description" not in data and "extends" not in data
    assert "label" not in data["targets"][0] and data["targets"][0]["threshold"] == 0.3
    merged = targetsim.load_scenario(variant)
    assert merged.description == "" and merged.targets[0].label is None
    assert targetsim.load_scenario(base).targets[0].label == "digital ordering"


def test_chain_of_three(tmp_path, base):
    mid = child(tmp_path, """\
        name: mid
        seed: 2
        targets:
          - {id: t1, threshold: 0.25}
          - {id: t2, by: 2027}
        """, name="mid.yaml")
    top = child(tmp_path, """\
        name: top
        indicators:
          b: {process: {volatility: 0.3}}
        targets:
          - {id: t1, threshold: 0.2}
        """, name="top.yaml", extends="mid.yaml")
    sc = targetsim.load_scenario(top)
    assert (sc.name, sc.seed, sc.description) == ("top", 2, "the base case")
    assert [(t.id, t.threshold, t.by) for t in sc.targets] == [("t1", 0.2, 2027), ("t2", 60, 2027), ("t3", 12, 2027)]
    assert sc.indicator_by_id["b"].process.volatility == 0.3
    assert load_chain(top).files == (str(top), str(mid), str(base))
    assert targetsim.load_scenario(mid).targets[0].threshold == 0.25


def test_cycle_is_an_error_naming_the_files(tmp_path):
    a = write(tmp_path / "a.yaml", "extends: b.yaml\nname: a\n")
    b = write(tmp_path / "b.yaml", "# b\nextends: a.yaml\nname: b\n")
    err = error_for(a)
    assert "cycle" in err.reason and str(a) in err.reason and str(b) in err.reason
    assert err.location.file == str(b) and err.location.key == "extends" and err.location.line == 2
    self_ref = write(tmp_path / "self.yaml", "extends: self.yaml\n")
    assert "cycle" in error_for(self_ref).reason


def test_missing_parent_names_the_extends_line(tmp_path):
    variant = write(tmp_path / "variant.yaml", "# a variant\nextends: nope.yaml\nname: v\n")
    err = error_for(variant)
    assert err.location.file == str(variant) and err.location.key == "extends" and err.location.line == 2
    assert "not found" in err.reason and "nope.yaml" in err.reason
    assert f"{variant}:2: extends: " in str(err)


def test_extends_must_be_a_path(tmp_path):
    variant = write(tmp_path / "variant.yaml", "name: v\nextends: [a.yaml]\n")
    err = error_for(variant)
    assert err.location.key == "extends" and err.location.line == 2 and "expected the path" in err.reason


def test_depth_limit(tmp_path, base):
    previous = "base.yaml"
    for i in range(MAX_DEPTH):
        previous = child(tmp_path, f"seed: {i + 2}\n", name=f"level{i}.yaml", extends=previous).name
    assert targetsim.load_scenario(tmp_path / previous).seed == MAX_DEPTH + 1  # 16 links: fine
    too_deep = child(tmp_path, "seed: 99\n", name="too_deep.yaml", extends=previous)
    err = error_for(too_deep)
    assert f"more than {MAX_DEPTH} levels" in err.reason


def test_inherited_invalid_value_points_into_the_parent(tmp_path, base):
    write(base, BASE.replace("threshold: 12", "threshold: twelve"))
    variant = child(tmp_path, "targets:\n  - {id: t2, threshold: 70}\n")
    err = error_for(variant)
    assert err.location.file == str(base)
    assert err.location.key == "targets[2].threshold" and err.location.line == line_of(base, "twelve")
    assert "expected a number" in err.reason
    assert f"{base}:{line_of(base, 'twelve')}: targets[2].threshold: " in str(err)


def test_inherited_error_keeps_the_parents_key_path(tmp_path, base):
    # t1 removed: the bad t3 is targets[1] of the merged document but targets[2] of the parent
    write(base, BASE.replace("threshold: 12", "threshold: twelve"))
    variant = child(tmp_path, "targets:\n  - {id: t1, remove: true}\n")
    err = error_for(variant)
    assert (err.location.file, err.location.key, err.location.line) == (
        str(base), "targets[2].threshold", line_of(base, "twelve"))


def test_inherited_invalid_parameter_under_an_overridden_mapping(tmp_path, base):
    write(base, BASE.replace("      volatility: 0.1", "      volatility: -0.1"))
    variant = child(tmp_path, "indicators:\n  a:\n    process: {growth: {mean: 0.18}}\n")
    err = error_for(variant)
    assert (err.location.file, err.location.key, err.location.line) == (
        str(base), "indicators.a.process.volatility", line_of(base, "volatility: -0.1"))


def test_invalid_override_points_into_the_child(tmp_path, base):
    variant = child(tmp_path, """\
        name: v
        targets:
          - {id: t1, threshold: 0.25}
          - id: t2
            threshold: sixty
        """)
    err = error_for(variant)
    assert (err.location.file, err.location.key, err.location.line) == (
        str(variant), "targets[1].threshold", line_of(variant, "sixty"))
    variant = child(tmp_path, "indicators:\n  a:\n    process: {growht: {mean: 0.18}}\n")
    err = error_for(variant)
    assert (err.location.file, err.location.key, err.location.line) == (
        str(variant), "indicators.a.process.growht", 4)
    assert "did you mean 'growth'" in err.reason


def test_yaml_errors_in_the_parent_name_the_parent(tmp_path, base):
    write(base, BASE.replace("seed: 1", "seed: 1\nseed: 2"))
    err = error_for(child(tmp_path, "name: v\n"))
    assert err.location.file == str(base) and "duplicate key" in err.reason
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    write(base, bomb)
    err = error_for(child(tmp_path, "name: v\n"))
    assert err.location.file == str(base) and "alias" in err.reason


def test_baselines_of_a_parent_in_another_folder_still_resolve(tmp_path):
    data = write(tmp_path / "data" / "b.csv", "indicator,year,value,unit,source\na,2024,90,CNY_100m,somewhere\n")
    text = BASE.replace("seed: 1", "seed: 1\nbaselines: ../data/b.csv").replace(
        "start: {value: 100, assumption: test}", "start: baseline")
    parent = write(tmp_path / "plans" / "base.yaml", text)
    variant = child(tmp_path / "variants" / "deeper", "name: v\n", extends="../../plans/base.yaml")
    sc = targetsim.load_scenario(variant)
    assert sc.indicator_by_id["a"].start.value == 90
    assert sc.baselines.resolve() == data.resolve()
    merged = load_chain(variant).merged.data
    assert merged["baselines"] == str(Path("..") / ".." / "data" / "b.csv")
    assert targetsim.load_scenario(parent).baselines.resolve() == data.resolve()
    # a missing baselines file is reported at the parent's 'baselines' line
    data.unlink()
    err = error_for(variant)
    assert (err.location.file, err.location.key, err.location.line) == (
        str(parent), "baselines", line_of(parent, "baselines:"))


def test_child_baselines_stay_relative_to_the_child(tmp_path):
    write(tmp_path / "variants" / "b.csv", "indicator,year,value,unit,source\na,2024,80,CNY_100m,x\n")
    write(tmp_path / "base.yaml", BASE.replace("start: {value: 100, assumption: test}", "start: baseline"))
    variant = child(tmp_path / "variants", "baselines: b.csv\n", extends="../base.yaml")
    assert targetsim.load_scenario(variant).indicator_by_id["a"].start.value == 80


def test_sha256_covers_every_file_of_the_chain(tmp_path, base):
    variant = child(tmp_path, "name: v\n")
    first = targetsim.load_scenario(variant).sha256
    assert first == hashlib.sha256(variant.read_bytes() + base.read_bytes()).hexdigest()
    write(base, BASE.replace("threshold: 60", "threshold: 61"))
    second = targetsim.load_scenario(variant).sha256
    assert second != first and len(second) == 64
    assert targetsim.load_scenario(base).sha256 == hashlib.sha256(base.read_bytes()).hexdigest()


def test_validate_show_merged(tmp_path, base):
    variant = child(tmp_path, """\
        name: base-pessimistic
        description: null
        indicators:
          a:
            process: {growth: {mean: 0.18}}
        """)
    result = CliRunner().invoke(main, ["validate", str(variant), "--show-merged"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ok:") and "'base-pessimistic'" in lines[0]
    assert lines[1].startswith("start values resting on assumptions:")
    shown = yaml.safe_load("\n".join(lines[lines.index("--- # merged scenario") + 1:]))
    assert shown == load_chain(variant).merged.data
    assert shown["name"] == "base-pessimistic" and "extends" not in shown and "description" not in shown
    assert shown["indicators"]["a"]["process"]["growth"] == {"mean": 0.18, "sd": 0.1}
    assert "数字订购贸易" in result.output  # allow_unicode
    assert list(shown)[:3] == ["name", "base_year", "horizon"]  # the parent's key order, not sorted
    plain = CliRunner().invoke(main, ["validate", str(variant)])
    assert plain.exit_code == 0 and "indicators:" not in plain.output


def test_validate_reports_an_inherited_error(tmp_path, base):
    write(base, BASE.replace("kind: cagr", "kind: cgar"))
    variant = child(tmp_path, "name: v\n")
    result = CliRunner().invoke(main, ["validate", str(variant), "--show-merged"])
    assert result.exit_code == 1
    assert f"{base}:{line_of(base, 'cgar')}: targets[0].kind: " in result.output
