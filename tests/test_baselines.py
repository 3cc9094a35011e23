"""Baseline files: every value has a source or a stated assumption."""

from __future__ import annotations

import csv

import pytest

from targetsim.errors import BaselineError
from targetsim.io.baselines import load_baselines
from targetsim.report.catalog import is_reference_table
from tests.conftest import ROOT


@pytest.mark.parametrize("path", sorted((ROOT / "baselines").glob("*.csv")),
                         ids=lambda p: p.name)
def test_shipped_baselines_have_provenance(path):
    if path.name == "seed_facts.csv":  # a verbatim copy of the seed catalog's facts, with its own columns
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert "seed_file" in header and "quote_zh" in header
        return
    if is_reference_table(path):  # past plan targets and their outcomes (issue 17)
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows
        for row in rows:
            assert row["target_source"] and row["target_quote"], row["id"]
            if row["met"] in ("0", "1"):  # a determined outcome is sourced and quoted
                assert row["outcome_source"] and row["outcome_quote"], row["id"]
            else:
                assert row["met"] == "", row["id"]
        return
    table = load_baselines(path)
    assert table.rows
    for row in table.rows:
        assert row.source or row.assumption, (row.indicator, row.year)


def test_a_restated_reference_target_names_its_twin():
    """``restates``: the same target (value and year) of another row, which must exist and not itself restate."""
    from targetsim.estimate.outside_view import load_reference

    rows = {r.id: r for r in load_reference(include_undetermined=True, include_restated=True)}
    restated = [r for r in rows.values() if r.restates]
    assert restated  # the national R&D-intensity targets restated by the S&T plans
    for row in restated:
        twin = rows[row.restates]
        assert not twin.restates and twin.id != row.id
        assert (twin.target_value, twin.target_year, twin.realised_value) == \
            (row.target_value, row.target_year, row.realised_value), row.id
    fitted = {r.id for r in load_reference()}
    assert not fitted & {r.id for r in restated} and {r.restates for r in restated} <= fitted


def test_missing_source_is_rejected(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("indicator,year,value,unit,source,assumption\na,2024,1,x,,\n", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"b.csv:2: source: .*needs a source"):
        load_baselines(path)


@pytest.mark.parametrize("row,words", [
    ("a,20x4,1,x,src,", "year: must be a whole number"),
    ("a,2024,abc,x,src,", "value: must be a number"),
    ("a,2024,nan,x,src,", "value: must be a finite number"),
])
def test_bad_rows(tmp_path, row, words):
    path = tmp_path / "b.csv"
    path.write_text(f"indicator,year,value,unit,source,assumption\n{row}\n", encoding="utf-8")
    with pytest.raises(BaselineError, match=words):
        load_baselines(path)


def test_duplicates_and_missing_columns(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("indicator,year,value,unit,source\na,2024,1,x,s\na,2024,2,x,s\n", encoding="utf-8")
    with pytest.raises(BaselineError, match="appears twice"):
        load_baselines(path)
    path.write_text("indicator,year,value\na,2024,1\n", encoding="utf-8")
    with pytest.raises(BaselineError, match="missing column"):
        load_baselines(path)
