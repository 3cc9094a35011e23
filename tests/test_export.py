"""`targetsim export`: the Excel workbook read back with openpyxl, the CSV with the csv module, the
missing-extra message, and atomic writes."""

from __future__ import annotations

import csv
import math
import re
import sys

import pytest
from click.testing import CliRunner

import targetsim
from targetsim.cli import main
from targetsim.errors import OutputError, TargetsimError
from targetsim.report import export
from targetsim.report.table import ROW_KEYS
from tests.conftest import ROOT

openpyxl = pytest.importorskip("openpyxl")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results file with observations (the expo plan: Chinese labels, a share, counts), 5,000 paths."""
    path = tmp_path_factory.mktemp("export") / "expo.nc"
    targetsim.write_dataset(targetsim.run(ROOT / "scenarios/wuhan_expo_centre.yaml", paths=5000, seed=2), path)
    return path


@pytest.fixture(scope="module")
def ds(results):
    return targetsim.read_dataset(results)


@pytest.fixture(scope="module")
def workbook(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("xlsx") / "results.xlsx"
    result = CliRunner().invoke(main, ["export", str(results), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    return openpyxl.load_workbook(out)


def test_the_workbook_has_its_sheets(workbook):
    assert workbook.sheetnames == ["Summary", "By year", "Indicator quantiles", "Joint", "README"]


def test_the_summary_sheet_holds_the_dataset(workbook, ds):
    ws = workbook["Summary"]
    header = [c.value.split("\n")[0] for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == ds.sizes["target"] and len(header) == len(ROW_KEYS)
    col = {key: j for j, key in enumerate(ROW_KEYS)}
    sel = ds.isel(scenario=0)
    for k, row in enumerate(rows):
        t = sel.isel(target=k)
        assert row[col["target"]] == str(t["target"].values)
        assert row[col["label"]] == str(t["target_label"].values)      # Chinese intact
        assert any("\u4e00" <= ch <= "\u9fff" for ch in row[col["label"]])
        assert row[col["source"]] == str(t["target_source"].values)
        assert row[col["year"]] == int(t["target_year"])
        for key, var in (("probability", "attainment_probability"),
                         ("probability_lower", "attainment_probability_lower"),
                         ("probability_upper", "attainment_probability_upper"),
                         ("standard_error", "attainment_probability_standard_error"),
                         ("threshold", "target_threshold")):
            assert row[col[key]] == pytest.approx(float(t[var]), rel=1e-15, abs=0)
        needs = float(t["required_growth"])
        assert row[col["required_growth"]] is None if math.isnan(needs) else \
            row[col["required_growth"]] == pytest.approx(needs, rel=1e-15)
        assert row[col["rests_on_assumption"]] == ("yes" if int(t["target_rests_on_assumption"]) else "no")
    # a planner's view: frozen header, percent formats, columns wide enough for their text
    assert ws.freeze_panes == "C2"
    assert ws.cell(row=2, column=col["probability"] + 1).number_format == "0.0%"
    assert ws.cell(row=2, column=col["standard_error"] + 1).number_format == "0.00%"
    label_width = ws.column_dimensions[openpyxl.utils.get_column_letter(col["label"] + 1)].width
    assert label_width >= min(60, 2 * max(len(r[col["label"]]) for r in rows))
    kinds = [r[col["kind"]] for r in rows]
    share = kinds.index("share")
    assert ws.cell(row=share + 2, column=col["threshold"] + 1).number_format == "0.0%"


def test_the_per_year_sheets_hold_the_dataset(workbook, ds):
    sel = ds.isel(scenario=0)
    ws = workbook["By year"]
    years = [int(h.value) for h in ws[1][4:]]
    assert years == sel["year"].values.tolist()
    for k, row in enumerate(ws.iter_rows(min_row=2, values_only=True)):
        assert row[1] == str(sel["target"].values[k]) and row[2] == str(sel["target_label"].values[k])
        expected = sel["attainment_by_year"].values[k]
        for e, v in zip(expected.tolist(), row[4:], strict=True):
            assert v is None if math.isnan(e) else v == pytest.approx(e, rel=1e-15, abs=0)
    ws = workbook["Indicator quantiles"]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == sel.sizes["indicator"] * sel.sizes["year"]
    q = sel["indicator_quantiles"].transpose("indicator", "year", "quantile").values
    for n, row in enumerate(rows):
        i, t = divmod(n, sel.sizes["year"])
        assert row[0] == str(sel["indicator"].values[i]) and row[3] == int(sel["year"].values[t])
        assert list(row[4:-1]) == pytest.approx(q[i, t].tolist(), rel=1e-15)
    joint = workbook["Joint"]
    assert joint.cell(row=2, column=2).value == pytest.approx(float(sel["joint_attainment_probability"]), abs=1e-15)


def test_the_readme_sheet_records_the_provenance(workbook, ds, results):
    values = {row[0]: row[1] for row in workbook["README"].iter_rows(values_only=True) if row[0]}
    assert values["scenario sha256"] == ds.attrs["scenario_sha256"] and len(values["scenario sha256"]) == 64
    assert values["seed 随机种子"] == 2 and values["paths 模拟路径数"] == 5000
    assert values["effective sample size 有效样本量"] == pytest.approx(float(ds["effective_sample_size"][0]))
    assert values["results file 结果文件"] == str(results)
    assert values["created 模拟时间 (UTC)"] == ds.attrs["created"]
    assert values["model file 城市模型文件"].endswith("wuhan.yaml")
    assert "80 %" in values["status 状态"] and "50 %" in values["status 状态"]
    described = {key for k in values for key in re.findall(r"\((\w+)\)", k) if key in ROW_KEYS}
    assert described == set(ROW_KEYS)               # every summary column is explained


def test_the_csv_is_the_summary_with_a_byte_order_mark(results, ds, tmp_path):
    out = tmp_path / "summary.csv"
    result = CliRunner().invoke(main, ["export", str(results), "-o", str(out)])
    assert result.exit_code == 0, result.output and "UTF-8 with BOM" in result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(ROW_KEYS)
    sel = ds.isel(scenario=0)
    assert [r["label"] for r in rows] == sel["target_label"].values.tolist()
    assert [float(r["probability"]) for r in rows] == sel["attainment_probability"].values.tolist()


def test_a_missing_openpyxl_names_the_extra(results, ds, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)   # import openpyxl now raises ImportError
    out = tmp_path / "r.xlsx"
    with pytest.raises(TargetsimError, match=r"pip install 'targetsim\[report\]'"):
        export.export_results(ds, out)
    result = CliRunner().invoke(main, ["export", str(results), "-o", str(out)])
    assert result.exit_code == 1 and "pip install 'targetsim[report]'" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    export.export_results(ds, tmp_path / "r.csv")          # the CSV needs no extra
    assert (tmp_path / "r.csv").exists()


def test_a_failed_export_leaves_the_previous_file(ds, tmp_path, monkeypatch):
    out = tmp_path / "r.xlsx"
    out.write_bytes(b"previous")

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(openpyxl.Workbook, "save", failing)
    with pytest.raises(OutputError, match="No space left"):
        export.export_results(ds, out)
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_bad_inputs_give_one_clear_line(results, tmp_path):
    result = CliRunner().invoke(main, ["export", str(results), "-o", str(tmp_path / "r.txt")])
    assert result.exit_code == 1 and "name the file .xlsx" in result.output
    result = CliRunner().invoke(main, ["export", str(tmp_path / "none.nc")])
    assert result.exit_code == 1 and "no such results file" in result.output
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    result = CliRunner().invoke(main, ["export", str(junk), "-o", str(tmp_path / "j.csv")])
    assert result.exit_code == 1 and "not a NetCDF results file" in result.output
    assert not (tmp_path / "j.csv").exists()
