"""Every catalog target is modelled in exactly one scenario, as the catalog states it; every shipped
scenario validates and runs; the `catalog` and `baselines` commands."""

from __future__ import annotations

import csv
from collections import Counter
import numpy as np
import pytest
from click.testing import CliRunner

import targetsim
from targetsim.cli import main
from targetsim.io.baselines import load_baselines
from targetsim.io.scenarios import load_scenario
from targetsim.report.catalog import SEED_COPIES, baseline_files, load_all_scenarios, own_targets
from tests.conftest import ROOT

SCENARIOS = ROOT / "scenarios"
CATALOG = SCENARIOS / "catalog.csv"
SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))
# catalog units written in percent; scenarios write these thresholds as fractions
PERCENT_UNITS = ("percent", "percent_per_year")


def catalog() -> list[dict[str, str]]:
    with open(CATALOG, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def scenarios():
    return load_all_scenarios(SCENARIOS)


@pytest.fixture(scope="module")
def placements(scenarios) -> dict[str, list[tuple[str, str]]]:
    """target id -> [(scenario file, 'modelled' | 'not_modelled')] over the files' own targets."""
    where: dict[str, list[tuple[str, str]]] = {}
    for path, sc in scenarios.items():
        mine, not_modelled = own_targets(path, sc, scenarios)
        for tid in mine:
            where.setdefault(tid, []).append((path.name, "modelled"))
        for tid in not_modelled:
            where.setdefault(tid, []).append((path.name, "not_modelled"))
    return where


def test_catalog_ids_are_unique():
    counts = Counter(row["target_id"] for row in catalog())
    assert [tid for tid, n in counts.items() if n > 1] == []


def test_every_catalog_target_is_in_exactly_one_scenario_file(placements):
    ids = [row["target_id"] for row in catalog()]
    missing = [tid for tid in ids if tid not in placements]
    twice = {tid: files for tid, files in placements.items() if len(files) > 1}
    unknown = sorted(set(placements) - set(ids))
    assert missing == [], f"{len(missing)} catalog targets in no scenario: {missing}"
    assert twice == {}
    assert unknown == [], "scenario targets with ids that are not in the catalog"


def test_only_kind_other_is_left_unmodelled(placements):
    kinds = {row["target_id"]: row["kind"] for row in catalog()}
    bad = [tid for tid, files in placements.items() for _, status in files
           if status == "not_modelled" and kinds.get(tid) != "other"]
    assert bad == []


def test_targets_keep_the_catalog_wording(scenarios):
    """Threshold, comparator, year and quote as the catalog states them (percent -> fraction).

    Ranks are modelled as a ratio to the city at the cut-off (threshold 1, comparator >=) and
    targets of kind ``other`` in their own terms, so only their quote and year are compared."""
    rows = {row["target_id"]: row for row in catalog()}
    checked = 0
    for sc in scenarios.values():
        for t in sc.targets:
            row = rows[t.id]
            assert t.source.quote == row["quote_zh"], t.id
            assert t.source.seed == row["seed_file"], t.id
            if row["target_year"]:
                assert t.by == int(row["target_year"]), t.id
            if row["kind"] in ("rank", "other"):
                continue
            expected = float(row["threshold"]) / (100.0 if row["unit"] in PERCENT_UNITS else 1.0)
            assert t.threshold == pytest.approx(expected, rel=1e-12), (t.id, t.threshold, expected)
            assert t.comparator == row["comparator"], t.id
            checked += 1
    assert checked > 0


def test_not_modelled_targets_give_a_reason_and_the_quote(scenarios):
    rows = {row["target_id"]: row for row in catalog()}
    for sc in scenarios.values():
        for item in sc.not_modelled:
            assert item.reason.strip(), item.id
            assert item.source.quote == rows[item.id]["quote_zh"], item.id


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_every_shipped_scenario_runs(path, tmp_path):
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(out), "--paths", "4000", "--quiet"])
    assert result.exit_code == 0, result.output
    ds = targetsim.read_dataset(out)
    sc = load_scenario(path)
    assert ds.sizes["target"] == len(sc.targets)
    p = ds["attainment_probability"].values
    assert np.all((p >= 0) & (p <= 1))
    # every indicator says where its start and its parameters come from
    assert all(s for s in ds["indicator_start_source"].values.tolist())
    assert all(s for s in ds["indicator_parameters_source"].values.tolist())


def test_baseline_rows_have_a_source_or_an_assumption():
    files = baseline_files(ROOT / "baselines")
    assert files
    for path in files:
        table = load_baselines(path)
        for row in table.rows:
            assert row.source.strip() or row.assumption.strip(), (path.name, row.line)
    for name in SEED_COPIES:  # verbatim seed copies: each row names its seed file and quote
        with open(ROOT / "baselines" / name, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                assert row["seed_file"] and row["quote_zh"], row


def test_a_value_given_in_several_baseline_files_agrees():
    """Plans share indicators; a value copied into another plan's file must not drift from it.
    (An index may be normalised differently per plan: its unit then says so.)"""
    values: dict[tuple[str, int, str], set[float]] = {}
    for path in baseline_files(ROOT / "baselines"):
        for row in load_baselines(path).rows:
            values.setdefault((row.indicator, row.year, row.unit), set()).add(row.value)
    assert {key: v for key, v in values.items() if len(v) > 1} == {}


def test_catalog_command_lists_every_target():
    result = CliRunner().invoke(main, ["catalog", "--catalog", str(CATALOG), "--scenarios", str(SCENARIOS)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    for row in catalog():
        assert row["target_id"] in result.output
    assert f"{len(catalog())} targets:" in result.output
    assert " 0 missing" in result.output


def test_catalog_command_marks_missing_and_assumed_targets(tmp_path):
    (tmp_path / "catalog.csv").write_text(
        "target_id,plan_zh,kind,tier\nkept,测试计划,level,1\nforgotten,测试计划,level,2\n", encoding="utf-8")
    (tmp_path / "s.yaml").write_text(
        "name: s\nbase_year: 2024\nhorizon: 2026\n"
        "indicators:\n  x:\n    start: {value: 1.0, assumption: no data}\n"
        "    process: {kind: lognormal, growth: 0.1, volatility: 0.1}\n"
        "targets:\n  - {id: kept, indicator: x, kind: level, threshold: 1.2, by: 2026}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "--catalog", str(tmp_path / "catalog.csv"),
                                       "--scenarios", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "kept *" in result.output and "s.yaml" in result.output
    assert "forgotten" in result.output and "missing" in result.output
    assert "2 targets: 1 modelled (1 resting on assumptions, marked *), 0 not modelled, 1 missing" in result.output


def test_baselines_command_shows_history_with_sources(tmp_path):
    (tmp_path / "b.csv").write_text(
        "indicator,year,value,unit,source,quote,assumption\n"
        "x,2023,10,CNY_100m,统计公报 https://example.org/a,全年实现10亿元,\n"
        "x,2024,11,CNY_100m,,,grown by 10 % from 2023: no 2024 figure published\n"
        "y,2024,3,count,seed 000 clause 一,3个,\n", encoding="utf-8")
    runner = CliRunner()
    summary = runner.invoke(main, ["baselines", "--dir", str(tmp_path)], terminal_width=200)
    assert summary.exit_code == 0, summary.output
    assert "x" in summary.output and "2023–2024" in summary.output
    history = runner.invoke(main, ["baselines", "x", "--dir", str(tmp_path)], terminal_width=200)
    assert history.exit_code == 0, history.output
    assert "https://example.org/a" in history.output and "全年实现10亿元" in history.output
    assert "ASSUMPTION" in history.output and "no 2024 figure published" in history.output
    assert "seed 000 clause" not in history.output  # only x's rows
    typo = runner.invoke(main, ["baselines", "xx", "--dir", str(tmp_path)])
    assert typo.exit_code == 1 and "did you mean 'x'" in typo.output and "Traceback" not in typo.output


def test_seed_copies_are_not_read_as_baselines():
    assert (ROOT / "baselines" / SEED_COPIES[0]).is_file()
    assert all(p.name not in SEED_COPIES for p in baseline_files(ROOT / "baselines"))
