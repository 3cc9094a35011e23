"""The results table's formats (csv, json, markdown), its --sort risk and --only at-risk, and its notes
on observations (effective sample size) and share targets."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

import targetsim
from targetsim.cli import main
from targetsim.report.table import (OFF_TRACK, ON_TRACK, ROW_KEYS, format_results, print_results, select_rows,
                                    status_of, target_rows)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def base():
    return targetsim.run(ROOT / "scenarios/base.yaml", paths=4096, seed=1)


@pytest.fixture(scope="module")
def expo():
    """A plan with 2025 observations: its paths are weighted, so the effective sample size is below the paths."""
    return targetsim.run(ROOT / "scenarios/wuhan_expo_centre.yaml", paths=5000, seed=1)


def _probabilities(ds) -> dict[str, float]:
    return dict(zip(ds["target"].values.tolist(), ds["attainment_probability"].values[0].tolist()))


def _table_text(ds, width=300, **kwargs) -> str:  # wide enough for the id column beside the labels
    console = Console(width=width, record=True, force_terminal=False)
    print_results(ds, console, **kwargs)
    return console.export_text()


def _table_ids(text: str) -> list[str]:
    """The target ids of the table's rows (its id column; a wrapped label's continuation lines have none)."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    column = [c.strip() for c in header.split("┃")].index("id")
    cells = [line.split("│")[column].split() for line in lines if line.startswith("│")]
    return [c[0] for c in cells if c]


# ------------------------------------------------------------------ the machine-readable formats

@pytest.mark.parametrize("name", ["base", "expo"])
def test_csv_carries_the_dataset_probabilities_exactly(name, request):
    ds = request.getfixturevalue(name)
    rows = list(csv.DictReader(io.StringIO(format_results(ds, "csv"))))
    assert list(rows[0]) == list(ROW_KEYS)
    assert [r["target"] for r in rows] == ds["target"].values.tolist()  # the plan's order
    for r, k in zip(rows, range(ds.sizes["target"])):
        sel = ds.isel(scenario=0, target=k)
        assert float(r["probability"]) == float(sel["attainment_probability"])
        assert float(r["probability_lower"]) == float(sel["attainment_probability_lower"])
        assert float(r["probability_upper"]) == float(sel["attainment_probability_upper"])
        assert float(r["standard_error"]) == float(sel["attainment_probability_standard_error"])
        assert r["label"] == str(sel["target_label"].values)          # Chinese intact
        assert r["rests_on_assumption"] == str(int(sel["target_rests_on_assumption"]))
        needs = float(sel["required_growth"])
        assert (r["required_growth"] == "") if math.isnan(needs) else float(r["required_growth"]) == needs
    assert "[" not in "".join(r["target"] for r in rows)              # no rich markup


def test_json_carries_the_dataset_probabilities_and_the_run(expo):
    doc = json.loads(format_results(expo, "json"))
    assert doc["paths"] == 5000 and doc["seed"] == 1 and doc["total"] == doc["shown"] == expo.sizes["target"]
    assert doc["effective_sample_size"] == float(expo["effective_sample_size"][0])
    assert doc["status_bands"] == {"on_track_from": 0.8, "off_track_below": 0.5}
    probabilities = _probabilities(expo)
    assert {t["target"]: t["probability"] for t in doc["targets"]} == probabilities
    for t in doc["targets"]:
        assert set(t) == set(ROW_KEYS)
        assert t["status"] == status_of(probabilities[t["target"]])
        assert t["required_growth"] is None or math.isfinite(t["required_growth"])  # NaN written as null


def test_markdown_carries_the_probabilities_in_full(expo):
    text = format_results(expo, "markdown")
    rows = [line for line in text.splitlines() if line.startswith("| wh_")]
    assert len(rows) == expo.sizes["target"]
    for row, (tid, p) in zip(rows, _probabilities(expo).items()):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0].split()[0] == tid                 # the whole id: nothing truncated
        assert cells[4] == f"{p * 100:.1f} %"
        assert "…" not in row
    assert "effective sample size" in text and "[bold]" not in text


# ------------------------------------------------------------------ --sort risk, --only at-risk

def test_status_bands_are_the_agreed_numbers():
    assert (ON_TRACK, OFF_TRACK) == (0.8, 0.5)
    assert [status_of(p) for p in (0.0, 0.4999, 0.5, 0.7999, 0.8, 1.0)] == \
        ["off-track", "off-track", "at-risk", "at-risk", "on-track", "on-track"]


def test_sort_risk_orders_by_probability(expo):
    p = expo["attainment_probability"].values[0]
    ids = expo["target"].values.tolist()
    expected = [ids[k] for k in np.argsort(p, kind="stable")]   # lowest first, ties in the plan's order
    assert [r["target"] for r in select_rows(target_rows(expo), sort="risk")] == expected
    assert _table_ids(_table_text(expo, sort="risk")) == expected
    assert [r["target"] for r in csv.DictReader(io.StringIO(format_results(expo, "csv", sort="risk")))] == expected
    assert "sorted by risk" in _table_text(expo, sort="risk")
    assert _table_ids(_table_text(expo)) == ids                 # default: the plan's order
    assert "sorted by risk" not in _table_text(expo)


def test_only_at_risk_keeps_exactly_the_rows_below_80_percent(expo):
    probabilities = _probabilities(expo)
    below = [tid for tid, p in probabilities.items() if p < 0.8]
    assert 0 < len(below) < len(probabilities)              # the test separates something
    text = _table_text(expo, only="at-risk")
    assert _table_ids(text) == below
    text = " ".join(text.split())
    assert f"showing {len(below)} of {len(probabilities)} targets: those with P(met) below 80 %" in text
    doc = json.loads(format_results(expo, "json", only="at-risk", sort="risk"))
    assert sorted(t["target"] for t in doc["targets"]) == sorted(below)
    assert all(t["status"] in ("at-risk", "off-track") for t in doc["targets"])
    assert doc["shown"] == len(below) and doc["total"] == len(probabilities)
    assert "showing" not in _table_text(expo)


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_sorted_and_filtered_tables_fit_the_terminal(base, width):
    text = _table_text(base, width=width, sort="risk", only="at-risk")
    assert max(len(line) for line in text.splitlines()) <= width
    p = base["attainment_probability"].values[0]
    # one row per target below 80 %; a row's first line carries its year (a wrapped label's next lines do not)
    years = {str(y) for y in base["target_year"].values}
    rows = [line for line in text.splitlines() if line.startswith("│") and any(f"│ {y} │" in line for y in years)]
    assert len(rows) == int((p < 0.8).sum())


# ------------------------------------------------------------------ notes: observations, shares

def test_the_effective_sample_size_is_shown_with_observations(expo, base):
    ess = float(expo["effective_sample_size"][0])
    assert expo.attrs["observations"] and round(ess) < 5000
    text = " ".join(_table_text(expo).split())   # the note wraps at the console's width
    assert "observations used" in text and f"effective sample size {ess:,.0f} of 5,000 paths" in text
    assert "effective sample size" in format_results(expo, "markdown")
    plain = _table_text(base)
    assert base.attrs["observations"] == "" and float(base["effective_sample_size"][0]) == 4096
    assert "observations used" not in plain and "effective sample size" not in plain


def test_the_share_note_states_what_needs_computes(base):
    """The footer's formula, (threshold ÷ start)^(1/years) − 1, recomputed from the dataset's start value."""
    sel = base.isel(scenario=0)
    kinds = sel["target_kind"].values.tolist()
    k = kinds.index("share")
    indicator = str(sel["target_indicator"].values[k])
    start = float(sel["indicator_start"].sel(indicator=indicator))
    years = int(sel["target_year"].values[k]) - base.attrs["base_year"]
    threshold = float(sel["target_threshold"].values[k])
    assert float(sel["required_growth"].values[k]) == pytest.approx((threshold / start) ** (1 / years) - 1, rel=1e-12)
    # the note's worked example: 45 % → 47 % in 3 years needs 1.5 %/yr
    assert f"{((0.47 / 0.45) ** (1 / 3) - 1) * 100:.1f}" == "1.5"
    text = " ".join(_table_text(base).split())
    assert "share targets: needs is (threshold ÷ start share)^(1/years) − 1" in text
    assert "not percentage points" in text
    without_share = base.isel(target=[i for i, kind in enumerate(kinds) if kind != "share"])
    assert "share targets" not in _table_text(without_share)


# ------------------------------------------------------------------ the command line

def test_run_prints_a_clean_machine_readable_table(tmp_path):
    out = tmp_path / "r.nc"
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios/base.yaml"), "-o", str(out), "--paths", "2000",
                                       "--seed", "3", "--format", "json", "--sort", "risk"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)                 # stdout holds the json alone ("wrote ..." goes to stderr)
    ds = targetsim.read_dataset(out)
    probabilities = _probabilities(ds)
    assert [t["probability"] for t in doc["targets"]] == sorted(probabilities.values())
    assert "wrote" in result.stderr
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios/base.yaml"), "-o", str(out), "--paths", "2000",
                                       "--seed", "3", "--format", "csv", "--only", "at-risk"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["target"]: float(r["probability"]) for r in rows} == {t: p for t, p in probabilities.items() if p < 0.8}
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios/base.yaml"), "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.output


def test_markdown_cells_escape_pipes(base):
    ds = base.copy(deep=True)
    labels = ds["target_label"].values.copy().astype(object)
    labels[0] = "a|b"
    ds = ds.assign_coords(target_label=("target", labels))
    text = format_results(ds, "markdown")
    row = next(line for line in text.splitlines() if line.startswith("| wh_"))
    assert r"a\|b" in row and len(re.split(r"(?<!\\)\|", row)) == 12


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_long_ids_give_way_to_the_year_probability_and_pace(expo, width):
    """The expo plan's ids run to 41 characters: at these widths the id goes and the labels wrap, never
    the figures."""
    text = _table_text(expo, width=width, sort="risk")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    header = [c.strip() for c in lines[2].split("┃")[1:-1]]
    assert "id" not in header
    by = header.index("by") + 1
    rows = [line for line in lines if line.startswith("│") and line.split("│")[by].strip()]
    rows_by_p = [r for r in select_rows(target_rows(expo), sort="risk")]
    assert len(rows) == len(rows_by_p)
    for line, row in zip(rows, rows_by_p):
        cells = [c.strip() for c in line.split("│")[1:-1]]
        assert cells[header.index("by")] == str(row["year"])
        assert f"{row['probability'] * 100:.1f}" in line
        needs = cells[header.index("needs")]
        assert "…" not in needs and needs == ("–" if math.isnan(row["required_growth"])
                                              else f"{row['required_growth'] * 100:.1f} %")
