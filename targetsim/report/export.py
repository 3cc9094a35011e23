"""Export a results dataset for planners: an Excel workbook (``.xlsx``) or the summary as CSV.

The workbook (openpyxl, the optional extra ``targetsim[report]``) holds the summary table (one row
per target, the fields of :data:`targetsim.report.table.ROW_COLUMNS`), the probability that each
target's rule holds in each year, the indicators' quantiles by year, the joint probabilities and a
README sheet with the run's provenance and what each column means. Chinese labels are written as
they are (the file is UTF-8 XML); headers are frozen, columns sized to their text (a Chinese
character counts twice) and probabilities formatted as percent. The CSV is the summary only, UTF-8
with a byte-order mark so that Excel and WPS open it with Chinese intact. Both are written
atomically: to a temporary file beside the destination, then renamed.
"""

from __future__ import annotations

import csv
import math
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from targetsim.errors import OutputError, TargetsimError
from targetsim.io.netcdf import atomic_write
from targetsim.model.targets import TARGET_SPECS
from targetsim.report.table import ON_TRACK, ROW_COLUMNS, ROW_KEYS, STATUS_NOTE, csv_cell, target_rows

#: the formats :func:`export_results` writes, by the output's suffix
FORMATS = {".xlsx": "xlsx", ".csv": "csv"}
MISSING_OPENPYXL = ("writing an Excel workbook needs openpyxl, which comes with the report extra: "
                    "pip install 'targetsim[report]' (or export to .csv, which needs nothing more)")
# Sheet names (at most 31 characters, none of []:*?/\).
SUMMARY, BY_YEAR, QUANTILES, JOINT, README = "Summary", "By year", "Indicator quantiles", "Joint", "README"
PERCENT, PERCENT2 = "0.0%", "0.00%"
#: the widest a column gets, in characters (the source quotes wrap within it)
MAX_WIDTH = 60


def export_format(path: str | Path) -> str:
    """``xlsx`` or ``csv`` from the output's suffix; a clear error for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(f"{path}: cannot tell the export format from the suffix {suffix or '(none)'!r}; "
                          "name the file .xlsx (an Excel workbook) or .csv (the summary table)")
    return FORMATS[suffix]


def require_openpyxl():
    """The openpyxl module, or a :class:`TargetsimError` naming the extra that brings it."""
    try:
        import openpyxl
    except ImportError:
        raise TargetsimError(MISSING_OPENPYXL) from None
    return openpyxl


def export_results(ds: xr.Dataset, path: str | Path, *, results_file: str | Path | None = None) -> Path:
    """Write ``ds`` to ``path`` as a workbook (``.xlsx``) or the summary table (``.csv``), atomically.
    ``results_file``: the NetCDF file the dataset was read from (recorded in the README sheet)."""
    fmt = export_format(path)
    if "scenario" in ds.dims and ds.sizes["scenario"] != 1:
        raise TargetsimError(f"the results hold {ds.sizes['scenario']} scenarios; export one at a time "
                             "(ds.isel(scenario=[i]))")
    if fmt == "xlsx":
        openpyxl = require_openpyxl()  # before anything is written
        workbook = build_workbook(ds, openpyxl, results_file=results_file)
        return atomic_write(path, lambda tmp: workbook.save(tmp))
    return atomic_write(path, lambda tmp: write_summary_csv(ds, tmp))


def write_summary_csv(ds: xr.Dataset, path: str | Path) -> None:
    """The summary table as CSV, UTF-8 with a byte-order mark (Excel and WPS then read Chinese right):
    the fields of :data:`ROW_COLUMNS` by key, fractions at full precision (0.402 = 40.2 %), flags
    1/0, empty cells for NaN."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(ROW_KEYS)
        for row in target_rows(ds):
            writer.writerow([csv_cell(row[key]) for key in ROW_KEYS])


# ------------------------------------------------------------------ the workbook

def display_width(text: str) -> int:
    """Columns ``text`` takes in a spreadsheet: a wide (Chinese) character counts two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _finite(value) -> float | None:
    """A float for a cell; None (an empty cell) for NaN."""
    value = float(value)
    return value if math.isfinite(value) else None


def build_workbook(ds: xr.Dataset, openpyxl=None, *, results_file: str | Path | None = None):
    """The workbook (not saved): Summary, By year, Indicator quantiles, Joint and README sheets."""
    openpyxl = openpyxl or require_openpyxl()
    wb = openpyxl.Workbook()
    sel = ds.isel(scenario=0)
    _summary_sheet(wb.active, ds)
    _by_year_sheet(wb.create_sheet(BY_YEAR), sel)
    _quantile_sheet(wb.create_sheet(QUANTILES), sel)
    _joint_sheet(wb.create_sheet(JOINT), sel)
    _readme_sheet(wb.create_sheet(README), ds, results_file)
    return wb


def _style_header(ws, headers: list[str], *, freeze: str) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = freeze


def _fit_columns(ws, *, wrap: set[int] = frozenset(), widest: int = MAX_WIDTH) -> None:
    """Column widths from the text (the header's longest line, the cells' displayed length)."""
    from openpyxl.styles import Alignment
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None:
                continue
            if isinstance(cell.value, float):  # as the cell's format shows it (General: up to 10 digits)
                text = ("100.0%" if "%" in cell.number_format else
                        f"{cell.value:,.0f}" if cell.number_format == "#,##0" else f"{cell.value:.10g}")
            else:
                text = str(cell.value)
            width = max(display_width(line) for line in text.split("\n"))
            widths[cell.column] = max(widths.get(cell.column, 0), width)
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = min(width + 2, widest)
    ws.auto_filter.ref = ws.dimensions
    for column in wrap:
        for (cell,) in ws.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.alignment = Alignment(wrap_text=True, vertical="top")


def _header(column) -> str:
    return f"{column.header}\n{column.chinese}"


def _summary_sheet(ws, ds: xr.Dataset) -> None:
    ws.title = SUMMARY
    _style_header(ws, [_header(c) for c in ROW_COLUMNS], freeze="C2")
    for row in target_rows(ds):
        values = []
        for c in ROW_COLUMNS:
            value = row[c.key]
            if c.style == "flag":
                value = "yes" if value else "no"
            elif isinstance(value, float):
                value = _finite(value)
            values.append(value)
        ws.append(values)
        r = ws.max_row
        spec = TARGET_SPECS.get(row["kind"])
        for j, c in enumerate(ROW_COLUMNS, start=1):
            cell = ws.cell(row=r, column=j)
            if c.style == "percent":
                cell.number_format = PERCENT
            elif c.style == "percent2":
                cell.number_format = PERCENT2
            elif c.style == "threshold":
                fraction = spec is not None and (spec.rate or row["kind"] == "share")
                cell.number_format = PERCENT if fraction else "#,##0.######"
                if not fraction and float(row["threshold"]).is_integer():
                    cell.number_format = "#,##0"
    _fit_columns(ws, wrap={ROW_KEYS.index("source") + 1, ROW_KEYS.index("proxy_for") + 1})


def _by_year_sheet(ws, sel: xr.Dataset) -> None:
    years = [int(y) for y in sel["year"].values]
    _style_header(ws, ["plan\n规划", "target id\n目标编号", "label\n指标名称", "by\n年份"] + [str(y) for y in years],
                  freeze="C2")
    plans = sel["target_plan"].values if "target_plan" in sel.coords else [sel.attrs.get("scenario_name", "")] * \
        sel.sizes["target"]
    by_year = np.asarray(sel["attainment_by_year"].transpose("target", "year").values, dtype=np.float64)
    for k, tid in enumerate(sel["target"].values):
        ws.append([str(plans[k]), str(tid), str(sel["target_label"].values[k]), int(sel["target_year"].values[k])]
                  + [_finite(v) for v in by_year[k]])
        for cell in ws[ws.max_row][4:]:
            cell.number_format = PERCENT
    _fit_columns(ws)


def _quantile_sheet(ws, sel: xr.Dataset) -> None:
    qs = [float(q) for q in sel["quantile"].values]
    _style_header(ws, ["indicator\n模拟指标", "label\n指标名称", "unit\n单位", "year\n年份"]
                  + [f"q{q * 100:g}\n{q * 100:g}%分位数" for q in qs] + ["mean\n均值"], freeze="B2")
    quant = np.asarray(sel["indicator_quantiles"].transpose("indicator", "year", "quantile").values, dtype=np.float64)
    mean = np.asarray(sel["indicator_mean"].transpose("indicator", "year").values, dtype=np.float64)
    for i, ind in enumerate(sel["indicator"].values):
        for t, year in enumerate(sel["year"].values):
            ws.append([str(ind), str(sel["indicator_label"].values[i]), str(sel["indicator_unit"].values[i]),
                       int(year)] + [_finite(v) for v in quant[i, t]] + [_finite(mean[i, t])])
    _fit_columns(ws)


def _joint_sheet(ws, sel: xr.Dataset) -> None:
    _style_header(ws, ["what\n内容", "probability\n概率", "95 % low\n下限", "95 % high\n上限"], freeze="A2")
    n = sel.sizes["target"]
    ws.append([f"all {n} targets met together 全部目标同时达成", _finite(sel["joint_attainment_probability"]),
               _finite(sel["joint_attainment_probability_lower"]), _finite(sel["joint_attainment_probability_upper"])])
    if "plan" in sel.dims and sel.sizes["plan"] > 1:
        for plan in sel["plan"].values:
            row = sel.sel(plan=plan)
            ws.append([f"plan {plan}: all its targets met 该规划全部目标达成",
                       _finite(row["plan_joint_attainment_probability"]),
                       _finite(row["plan_joint_attainment_probability_lower"]),
                       _finite(row["plan_joint_attainment_probability_upper"])])
        plans = np.asarray(sel["at_least_k_plans_attainment_probability"].values)
        for k in range(1, plans.size):
            ws.append([f"every target met in at least {k} of {plans.size - 1} plans 至少{k}个规划全部达成",
                       _finite(plans[k])])
    at_least = np.asarray(sel["at_least_k_attainment_probability"].values)
    for k in range(1, at_least.size):
        ws.append([f"at least {k} of {n} targets met 至少{k}个目标达成", _finite(at_least[k])])
    for row in ws.iter_rows(min_row=2, min_col=2, max_col=4):
        for cell in row:
            cell.number_format = PERCENT
    _fit_columns(ws)


def _readme_sheet(ws, ds: xr.Dataset, results_file: str | Path | None) -> None:
    from openpyxl.styles import Alignment, Font

    attrs = ds.attrs
    try:
        from importlib.metadata import version

        exporter = version("targetsim")
    except Exception:  # not installed as a distribution (a source tree on sys.path)
        exporter = "unknown"
    ess = (float(ds["effective_sample_size"].values.ravel()[0]) if "effective_sample_size" in ds
           else float(attrs.get("effective_sample_size", math.nan)))
    provenance = [
        ("targetsim results 目标达成概率结果", ""),
        ("scenario 情景", attrs.get("scenario_name", "")),
        ("description 说明", attrs.get("scenario_description", "")),
        ("scenario file 情景文件", attrs.get("scenario_file", "")),
        ("scenario sha256", attrs.get("scenario_sha256", "")),
        ("model file 城市模型文件", attrs.get("model_file", "")),
        ("baselines files 基线数据", attrs.get("baselines_file", "")),
        ("seed 随机种子", attrs.get("seed", "")),
        ("paths 模拟路径数", attrs.get("paths", "")),
        ("effective sample size 有效样本量", ess if math.isfinite(ess) else ""),
        ("observations 已观测值", attrs.get("observations", "") or "none"),
        ("shocks 冲击分布", attrs.get("shocks", "")),
        ("years 年份", f"{attrs.get('base_year', '')}–{attrs.get('horizon', '')}"),
        ("simulated with targetsim 模拟版本", attrs.get("targetsim_version", "")),
        ("created 模拟时间 (UTC)", attrs.get("created", "")),
        ("results file 结果文件", str(results_file) if results_file is not None else ""),
        ("exported with targetsim 导出版本", exporter),
        ("exported 导出时间 (UTC)", datetime.now(timezone.utc).isoformat(timespec="seconds")),
        ("warnings 警告", attrs.get("warnings", "") or "none"),
        ("status 状态", f"{STATUS_NOTE} (the same bands as the HTML report; `--only at-risk` keeps P(met) < "
                      f"{ON_TRACK * 100:.0f} %)"),
        ("", ""),
        ("sheets 工作表", ""),
        (SUMMARY, "one row per target 每个目标一行: the columns below"),
        (BY_YEAR, "probability that the target's rule holds in each year (the rule evaluated with that year in "
                  "place of its own; empty: a rule that needs a period, in the base year) 各年份达标概率"),
        (QUANTILES, "quantiles and mean of every simulated indicator by year, in the indicator's unit (empty mean: "
                    "the law has no finite mean) 模拟指标分位数"),
        (JOINT, "probability that all targets (each plan's, at least k) are met together 联合达标概率"),
        ("", ""),
        ("Summary column 列", "meaning 含义"),
    ]
    for key, value in provenance:
        ws.append([key, value])
    for c in ROW_COLUMNS:
        ws.append([f"{c.header} ({c.key}) {c.chinese}", c.meaning])
    ws.append(["", ""])
    ws.append(["note 注", "probabilities are fractions formatted as percent; the .csv export writes the same "
                          "columns by key (fractions, flags 1/0), UTF-8 with a byte-order mark"])
    for row in ws.iter_rows():
        row[0].font = Font(bold=True)
        row[1].alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 100
