"""The terminal table of a run and its progress bar (rich)."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import xarray as xr
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from targetsim.model.targets import TARGET_SPECS

# A progress bar appears only once a run has taken this long, so quick runs stay quiet.
PROGRESS_DELAY_S = 0.5
#: the width of tables written to a log or a pipe: wide enough for the ids beside the labels, one line a row
LOG_WIDTH = 240


class ProgressBar:
    """A progress callback ``update(done, total)`` that shows a bar only for runs longer than a moment."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        self._started = time.perf_counter()

    def __enter__(self) -> "ProgressBar":
        self._started = time.perf_counter()
        return self

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if time.perf_counter() - self._started < PROGRESS_DELAY_S or done >= total:
                return
            self._progress = Progress(
                TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} paths"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("paths", total=total)
        self._progress.update(self._task, completed=done, total=total)  # a run to a precision grows its goal

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


#: how the table writes each comparator ("≈≥": about, or more — met from the lower edge of the "≈" band up)
COMPARATOR_SIGNS = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "~": "≈", "~>=": "≈≥"}
#: the table's mark of an aspirational target (力争: the plan strives for it)
ASPIRATIONAL_MARK = " (力争)"
#: the table's mark of a target whose indicator is a proxy (its figures stand in for another statistic)
PROXY_MARK = " †"


def format_threshold(kind: str, comparator: str, threshold: float, unit: str, tolerance: float = math.nan) -> str:
    """The rule as the table writes it; for "about, or more" with the value it is met from, e.g.
    ``≈≥ 10.0 %/yr (from 9.0 %/yr)``."""
    text = TARGET_SPECS[kind].render(COMPARATOR_SIGNS[comparator], threshold, unit)
    if comparator == "~>=" and math.isfinite(tolerance):
        edge = threshold - tolerance * abs(threshold)
        text += f" (from {TARGET_SPECS[kind].render('', edge, unit).strip()})"
    return text


# The table's columns. The Chinese label, the planner's key column, comes first at every width (wrapping
# onto more lines where it must, never squeezed to a character); the target id comes only where every column
# fits on one line beside it. Below WIDTH_FOR_FULL_INTERVAL the interval is written as ± its larger half,
# below WIDTH_FOR_SIMULATED the simulated pace goes.
COLUMN_KEYS = ("label", "target", "by", "threshold", "P(met)", "needs", "simulated", "basis")
#: the table's short name of each basis (targetsim.model.basis; the dataset's ``target_basis`` spells it out)
BASIS_CODES = {"fit": "fit", "pooled": "pool", "outside view": "ov", "sourced": "src", "assumption": "asm",
               "plan pace": "pace"}
WIDTH_FOR_FULL_INTERVAL = 120
WIDTH_FOR_SIMULATED = 100
#: the least room the label keeps (terminal cells: 8 Chinese characters a line)
MIN_LABEL_WIDTH = 16


def _one_line_width(shown: set[str], headers: list[str], cell_rows: list[list[str]]) -> int:
    """The width the shown columns need with every cell on one line: each at its widest cell, a border and a
    space either side, and the last border."""
    from rich.cells import cell_len

    return sum(max(cell_len(headers[j]), *(cell_len(cells[j]) for cells in cell_rows)) + 3
               for j, key in enumerate(COLUMN_KEYS) if key in shown) + 1


def _shown_columns(width: int, headers: list[str], cell_rows: list[list[str]]) -> set[str]:
    shown = set(COLUMN_KEYS)
    if width < WIDTH_FOR_SIMULATED:
        shown.discard("simulated")
    if not cell_rows or _one_line_width(shown, headers, cell_rows) > width:
        shown.discard("target")  # the id is the first to go: the label says what the target is
    return shown


def _probability_cell(p: float, lower: float, upper: float, full: bool) -> str:
    """``50.6 % [49.9 % – 51.3 %]``, or narrow: ``50.6 ±0.7`` (percent; the interval's larger half)."""
    if full:
        return f"{_pct(p)} [{_pct(lower)} – {_pct(upper)}]"
    if not (math.isfinite(p) and math.isfinite(lower) and math.isfinite(upper)):
        return _pct(p)
    return f"{p * 100:.1f} ±{max(p - lower, upper - p) * 100:.1f}"


def _pct(value: float, digits: int = 1) -> str:
    return "–" if not math.isfinite(value) else f"{value * 100:.{digits}f} %"


# Status of a target by its probability, the same bands as the HTML report: on track from ON_TRACK up,
# off track below OFF_TRACK, at risk between; `--only at-risk` keeps every target below ON_TRACK.
ON_TRACK = 0.8
OFF_TRACK = 0.5
STATUS_NOTE = (f"on track: P(met) ≥ {ON_TRACK * 100:.0f} %; at risk: {OFF_TRACK * 100:.0f}–{ON_TRACK * 100:.0f} %; "
               f"off track: below {OFF_TRACK * 100:.0f} %")
#: the table's output formats (csv, json and markdown are for other tools: no markup, nothing cut)
FORMATS = ("table", "csv", "json", "markdown")
#: row orders: the plan's (the dataset's order), or lowest probability first
SORTS = ("plan", "risk")
#: row filters: every target, or those below ON_TRACK (at risk or off track)
FILTERS = ("all", "at-risk")


def status_of(p: float) -> str:
    """``on-track`` (P ≥ 0.8), ``at-risk`` (0.5 ≤ P < 0.8) or ``off-track`` (P < 0.5); ``–`` for NaN."""
    if not math.isfinite(p):
        return "–"
    return "on-track" if p >= ON_TRACK else "at-risk" if p >= OFF_TRACK else "off-track"


@dataclass(frozen=True)
class Column:
    """A field of a target's row: its key (csv header, json name), English and Chinese headers, its
    meaning, and how a spreadsheet shows it (``text``, ``int``, ``percent``, ``percent2``, ``flag``,
    ``number``; ``threshold``: percent for rates and shares, else a number)."""

    key: str
    header: str
    chinese: str
    meaning: str
    style: str = "text"


#: The fields of a target's row, in order: the machine-readable table (csv, json) and the export's summary.
ROW_COLUMNS: tuple[Column, ...] = (
    Column("plan", "plan", "规划", "the plan the target belongs to (a joint run's plan; otherwise the scenario name)"),
    Column("target", "target id", "目标编号", "the target's id (scenarios/catalog.csv)"),
    Column("label", "label", "指标名称", "the target's label as the plan writes it"),
    Column("indicator", "indicator", "模拟指标", "the simulated indicator the target reads"),
    Column("kind", "kind", "目标类型", "the target's rule: level, cagr, share, count_stock, cumulative, ... "
           "(README: Targets)"),
    Column("comparator", "comparator", "比较", "how the value is compared with the threshold (>=, >, <=, <, ~, ~>=)"),
    Column("threshold", "threshold", "目标值", "the threshold: a fraction for rates and shares (0.3 = 30 %), else in "
           "the indicator's unit", "threshold"),
    Column("unit", "unit", "单位", "the indicator's unit"),
    Column("threshold_text", "rule", "目标", "the rule as the terminal table writes it"),
    Column("year", "by", "年份", "the year by which the target is to be met", "int"),
    Column("probability", "P(met)", "达标概率", "probability that the target is met (attainment_probability)",
           "percent"),
    Column("probability_lower", "95 % low", "95%区间下限", "lower end of the 95 % Wilson interval of P(met)",
           "percent"),
    Column("probability_upper", "95 % high", "95%区间上限", "upper end of the 95 % Wilson interval of P(met)",
           "percent"),
    Column("standard_error", "MC s.e.", "蒙特卡洛标准误", "Monte Carlo standard error of P(met), from the effective "
           "sample size", "percent2"),
    Column("status", "status", "状态", STATUS_NOTE),
    Column("required_growth", "needs /yr", "所需年均增速", "average annual growth from the base year the target "
           "needs (required_growth); for a share target the average annual relative change of the share itself, "
           "not percentage points; empty: the rule has no single pace (per-year, cumulative, in-year)", "percent"),
    Column("simulated_growth", "simulated /yr", "模拟年均增速", "median simulated average annual growth from the base "
           "year to the target year (baseline_growth), measured like needs", "percent"),
    Column("rests_on_assumption", "rests on assumption", "依赖假设", "1: the indicator's start value or process "
           "parameters (or a part's) rest on an assumption rather than a published figure", "flag"),
    Column("proxy", "proxy", "代理指标", "1: the indicator's figures stand in for another statistic, or another "
           "statistic stands in for them (see proxy_for)", "flag"),
    Column("proxy_for", "proxy for", "代理说明", "what the proxy stands in for (empty when not a proxy)"),
    Column("aspirational", "aspirational (力争)", "力争", "1: the plan only strives for the target (力争)", "flag"),
    Column("basis", "basis", "参数依据", "what the indicator's process parameters rest on (target_basis): fit (on >= 5 "
           "observed values of the city's own series), pooled (a shorter, pooled or proxy fit), outside view (past "
           "plan targets), sourced (hand-set from sourced figures), assumption, plan pace"),
    Column("source", "source", "出处原文", "the plan's file, clause and verbatim quote"),
)
ROW_KEYS: tuple[str, ...] = tuple(c.key for c in ROW_COLUMNS)


def target_rows(ds: xr.Dataset) -> list[dict]:
    """One dict per target of the results' first scenario, in the plan's order, with the fields of
    :data:`ROW_COLUMNS` (floats as in the dataset; flags as bool)."""
    sel = ds.isel(scenario=0)
    units = dict(zip(sel["indicator"].values.tolist(), sel["indicator_unit"].values.tolist()))
    has = set(sel.coords) | set(sel.data_vars)
    proxies = (dict(zip(sel["indicator"].values.tolist(), sel["indicator_is_proxy"].values.tolist()))
               if "indicator_is_proxy" in has else {})
    proxy_for = (dict(zip(sel["indicator"].values.tolist(), sel["indicator_proxy_for"].values.tolist()))
                 if "indicator_proxy_for" in has else {})

    def column(name, default):
        return sel[name].values.tolist() if name in has else [default] * sel.sizes["target"]

    plans = column("target_plan", str(ds.attrs.get("scenario_name", "")))
    aspirational = column("target_is_aspirational", 0)
    basis = column("target_basis", "")
    tolerance = column("target_tolerance", math.nan)
    rows = []
    for k, tid in enumerate(sel["target"].values.tolist()):
        indicator = str(sel["target_indicator"].values[k])
        kind, comparator = str(sel["target_kind"].values[k]), str(sel["target_comparator"].values[k])
        threshold = float(sel["target_threshold"].values[k])
        p = float(sel["attainment_probability"].values[k])
        rows.append({
            "plan": str(plans[k]), "target": str(tid), "label": str(sel["target_label"].values[k]),
            "indicator": indicator, "kind": kind, "comparator": comparator, "threshold": threshold,
            "unit": str(units.get(indicator, "")),
            "threshold_text": format_threshold(kind, comparator, threshold, str(units.get(indicator, "")),
                                               float(tolerance[k])),
            "year": int(sel["target_year"].values[k]),
            "probability": p,
            "probability_lower": float(sel["attainment_probability_lower"].values[k]),
            "probability_upper": float(sel["attainment_probability_upper"].values[k]),
            "standard_error": float(sel["attainment_probability_standard_error"].values[k]),
            "status": status_of(p),
            "required_growth": float(sel["required_growth"].values[k]),
            "simulated_growth": float(sel["baseline_growth"].values[k]),
            "rests_on_assumption": bool(sel["target_rests_on_assumption"].values[k]),
            "proxy": bool(proxies.get(indicator, 0)),
            "proxy_for": str(proxy_for.get(indicator, "")),
            "aspirational": bool(aspirational[k]),
            "basis": str(basis[k]),
            "source": str(sel["target_source"].values[k]),
        })
    return rows


def select_rows(rows: list[dict], *, sort: str = "plan", only: str = "all") -> list[dict]:
    """``only='at-risk'``: the rows with P(met) below :data:`ON_TRACK`; ``sort='risk'``: lowest
    probability first (ties, and NaN at the end, keep the plan's order)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    if only not in FILTERS:
        raise ValueError(f"only must be one of {FILTERS}, got {only!r}")
    if only == "at-risk":
        rows = [r for r in rows if r["probability"] < ON_TRACK]
    if sort == "risk":
        rows = sorted(rows, key=lambda r: (not math.isfinite(r["probability"]), r["probability"]))
    return list(rows)


def _observation_note(ds: xr.Dataset) -> str | None:
    """Observations weighted the paths: which, and the effective sample size when it differs from the paths."""
    observed = str(ds.attrs.get("observations", "") or "")
    paths = int(ds.attrs.get("paths", 0))
    ess = (float(ds["effective_sample_size"].values.ravel()[0]) if "effective_sample_size" in ds
           else float(ds.attrs.get("effective_sample_size", paths)))
    differs = round(ess) != paths
    if not observed and not differs:
        return None
    parts = [p.strip() for p in observed.split(";") if p.strip()]
    listed = "; ".join(parts[:3]) + ("; …" if len(parts) > 3 else "")
    text = f"observations used ({listed}): paths are weighted by their likelihood" if parts else \
        "paths are weighted"
    if differs:
        text += (f"; effective sample size {ess:,.0f} of {paths:,} paths (`effective_sample_size`; the intervals "
                 "and standard errors use it)")
    else:
        text += f"; effective sample size = paths ({paths:,})"
    return text + "."


def _selection_note(shown: int, total: int, sort: str, only: str) -> str | None:
    notes = []
    if only == "at-risk":
        notes.append(f"showing {shown} of {total} targets: those with P(met) below {ON_TRACK * 100:.0f} % "
                     f"(at risk or off track; {STATUS_NOTE})")
    if sort == "risk":
        notes.append("sorted by risk: lowest P(met) first")
    return "; ".join(notes) + "." if notes else None


SHARE_NOTE = ("share targets: needs is (threshold ÷ start share)^(1/years) − 1, the average annual relative change "
              "of the share itself, not percentage points (45 % → 47 % in 3 years needs 1.5 %/yr); simulated: "
              "the same for the median simulated share.")
NO_PACE_NOTE = "needs –: a per-year, cumulative or in-year rule has no single pace."


def _pace_notes(rows: list[dict]) -> list[str]:
    notes = []
    if any(r["kind"] == "share" for r in rows):
        notes.append(SHARE_NOTE)
    if any(not math.isfinite(r["required_growth"]) for r in rows):
        notes.append(NO_PACE_NOTE)
    return notes


def _title(ds: xr.Dataset) -> str:
    return f"{ds.attrs['scenario_name']}: {ds.attrs['paths']:,} paths, seed {ds.attrs['seed']}"


def print_results(ds: xr.Dataset, console: Console | None = None, *, sort: str = "plan",
                  only: str = "all") -> None:
    """Print one row per target: threshold, probability with its interval, required vs simulated pace.
    ``sort='risk'``: lowest probability first; ``only='at-risk'``: the targets below 80 % (see
    :func:`select_rows`)."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and pipes: wide enough for one line per target
            console = Console(width=LOG_WIDTH)
    sel = ds.isel(scenario=0)
    all_rows = target_rows(ds)
    rows = select_rows(all_rows, sort=sort, only=only)
    table = Table(title=_title(ds), title_justify="left")
    # a narrow terminal drops the id and secondary columns and shortens the interval, rather than squeezing
    # the label or the figures (the dataset and --format csv hold every field)
    full_interval = console.width >= WIDTH_FOR_FULL_INTERVAL
    cell_rows = [[_marked_label(row), row["target"], str(row["year"]), row["threshold_text"],
                  _probability_cell(row["probability"], row["probability_lower"], row["probability_upper"],
                                    full_interval),
                  _pct(row["required_growth"]), _pct(row["simulated_growth"]),
                  BASIS_CODES.get(row["basis"], row["basis"])] for row in rows]
    headers = ["target", "id", "by", "threshold", "P(met) [95 % interval]" if full_interval else "P(met) % ±95",
               "needs", "simulated", "basis"]
    shown = _shown_columns(console.width, headers, cell_rows)
    for key, name, justify in zip(COLUMN_KEYS, headers,
                                  ("left", "left", "right", "right", "right", "right", "right", "left")):
        if key not in shown:
            continue
        table.add_column(name, justify=justify, no_wrap=key != "label",
                         overflow="fold" if key == "label" else "ellipsis",
                         min_width=MIN_LABEL_WIDTH if key == "label" else None)
    for cells in cell_rows:
        table.add_row(*(cell for cell, key in zip(cells, COLUMN_KEYS) if key in shown))
    console.print(table)
    for note in _notes(ds, rows, all_rows, sort=sort, only=only, simulated_shown="simulated" in shown,
                       ids_shown="target" in shown):
        console.print(note)
    for line in _plan_lines(sel):
        console.print(line)


def _marks(row: dict) -> str:
    return ((" *" if row["rests_on_assumption"] else "") + (PROXY_MARK if row["proxy"] else "")
            + (ASPIRATIONAL_MARK if row["aspirational"] else ""))


def _marked_id(row: dict) -> str:
    return row["target"] + _marks(row)


def _marked_label(row: dict) -> str:
    return (row["label"] or row["target"]) + _marks(row)


def _notes(ds: xr.Dataset, rows: list[dict], all_rows: list[dict], *, sort: str, only: str,
           simulated_shown: bool = True, ids_shown: bool = True) -> list[str]:
    """The lines under the table (plain text)."""
    sel = ds.isel(scenario=0)
    notes = []
    if not ids_shown:
        notes.append("target ids: a wider terminal shows them beside the labels, and --format csv|json|markdown "
                     "lists them.")
    selection = _selection_note(len(rows), len(all_rows), sort, only)
    if selection:
        notes.append(selection)
    joint = float(sel["joint_attainment_probability"])
    notes.append(f"all {sel.sizes['target']} targets met together: {_pct(joint)} "
                 f"({_pct(float(sel['joint_attainment_probability_lower']))} – "
                 f"{_pct(float(sel['joint_attainment_probability_upper']))})")
    observed = _observation_note(ds)
    if observed:
        notes.append(observed)
    if any(r["rests_on_assumption"] for r in rows):
        notes.append("* rests on an assumption: the indicator's start value or process parameters (see "
                     "`indicator_start_source`, `indicator_parameters_source`).")
    if any(r["proxy"] for r in rows):
        notes.append(f"{PROXY_MARK.strip()} proxy: the indicator's figures stand in for another statistic, or "
                     "another statistic stands in for them (`indicator_proxy_for`).")
    if any(r["aspirational"] for r in rows):
        notes.append("(力争): aspirational — the plan strives for the target rather than commits to it "
                     "(`target_is_aspirational`).")
    shown_note = "" if simulated_shown else f" (a terminal {WIDTH_FOR_SIMULATED} columns wide or more shows it)"
    notes.append("needs: average annual growth the target requires; simulated: median simulated growth"
                 f"{shown_note}.")
    notes.extend(_pace_notes(rows))
    if any(r["basis"] for r in rows):
        counts = {code: sum(BASIS_CODES.get(r["basis"]) == code for r in rows) for code in BASIS_CODES.values()}
        notes.append("basis of the parameters (`target_basis`): fit = fitted on >= 5 observed values of the city's own "
                     "series, pool = pooled, proxy or shorter fit, ov = outside view (past plan targets), src = "
                     "sourced figures, asm = assumption, pace = plan-pace prior; here "
                     + ", ".join(f"{code} {n}" for code, n in counts.items() if n) + ".")
    if "indicator_mean_is_defined" in sel:
        undefined = [str(ind) for ind, row in zip(sel["indicator"].values, sel["indicator_mean_is_defined"].values)
                     if not row.all()]
        if undefined:
            notes.append(f"mean not defined for {len(undefined)} indicator(s) ({', '.join(undefined[:3])}"
                         f"{', …' if len(undefined) > 3 else ''}): Student-t shocks, or a volatility estimated with "
                         "finite degrees of freedom, give a level no finite mean, so `indicator_mean` is NaN "
                         "there; quantiles are reported.")
    median = np.asarray(sel["at_least_k_attainment_probability"].values)
    if median.size > 2:
        half = int(math.ceil((median.size - 1) / 2))
        notes.append(f"at least {half} of {median.size - 1} targets met: {_pct(float(median[half]))}")
    return notes


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def csv_cell(value) -> str:
    """A row's value in a CSV cell: flags 1/0, floats at full precision, NaN empty."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def format_results(ds: xr.Dataset, fmt: str, *, sort: str = "plan", only: str = "all") -> str:
    """The table's rows as ``csv`` (every field of :data:`ROW_COLUMNS`, fractions at full precision,
    flags 1/0, empty for NaN), ``json`` (an object: the run, the selection and ``targets``, each
    with every field; NaN as null) or ``markdown`` (the terminal table's columns and notes, in
    percent, nothing truncated)."""
    all_rows = target_rows(ds)
    rows = select_rows(all_rows, sort=sort, only=only)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ROW_KEYS)
        for r in rows:
            writer.writerow([csv_cell(r[k]) for k in ROW_KEYS])
        return out.getvalue()
    if fmt == "json":
        sel = ds.isel(scenario=0)
        doc = {
            "scenario": str(ds.attrs.get("scenario_name", "")),
            "paths": int(ds.attrs.get("paths", 0)), "seed": int(ds.attrs.get("seed", 0)),
            "effective_sample_size": float(sel["effective_sample_size"]) if "effective_sample_size" in sel
            else float(ds.attrs.get("effective_sample_size", math.nan)),
            "observations": str(ds.attrs.get("observations", "")),
            "sort": sort, "only": only, "shown": len(rows), "total": len(all_rows),
            "status_bands": {"on_track_from": ON_TRACK, "off_track_below": OFF_TRACK},
            "joint_probability": _json_value(float(sel["joint_attainment_probability"])),
            "targets": [{k: _json_value(r[k]) for k in ROW_KEYS} for r in rows],
        }
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if fmt == "markdown":
        header = ["target", "label", "by", "threshold", "P(met)", "95 % interval", "s.e.", "status", "needs",
                  "simulated"]
        lines = [f"**{_title(ds)}**", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join(("---:" if h not in ("target", "label", "status") else "---") for h in header) + "|"]
        for r in rows:
            cells = [_marked_id(r), r["label"], str(r["year"]), r["threshold_text"], _pct(r["probability"]),
                     f"{_pct(r['probability_lower'])} – {_pct(r['probability_upper'])}",
                     _pct(r["standard_error"], 2), r["status"], _pct(r["required_growth"]),
                     _pct(r["simulated_growth"])]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
        notes = _notes(ds, rows, all_rows, sort=sort, only=only) + _plan_lines(ds.isel(scenario=0))
        lines.extend(f"- {_md_cell(note)}" for note in notes)
        return "\n".join(lines) + "\n"
    raise ValueError(f"format must be one of {FORMATS[1:]} here (table: print_results), got {fmt!r}")


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _plan_lines(sel) -> list[str]:
    """A joint run of several plans: each plan's targets all met, and every target of at least k plans."""
    if "plan" not in sel.dims or sel.sizes["plan"] <= 1:
        return []
    counts = {}
    for plan in sel["target_plan"].values:
        counts[str(plan)] = counts.get(str(plan), 0) + 1
    lines = []
    for plan in sel["plan"].values:
        row = sel.sel(plan=plan)
        lines.append(f"plan {plan}: all {counts.get(str(plan), 0)} targets met together: "
                     f"{_pct(float(row['plan_joint_attainment_probability']))} "
                     f"({_pct(float(row['plan_joint_attainment_probability_lower']))} – "
                     f"{_pct(float(row['plan_joint_attainment_probability_upper']))})")
    plans = np.asarray(sel["at_least_k_plans_attainment_probability"].values)
    lines.append("every target met in at least k of the " + str(plans.size - 1) + " plans: "
                 + ", ".join(f"k={k}: {_pct(float(plans[k]))}" for k in range(1, plans.size)))
    return lines


def _console(console: Console | None) -> Console:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=LOG_WIDTH)
    return console


def print_catalog(rows, console: Console | None = None) -> None:
    """One line per catalog target: plan, kind, tier, the scenario that models it, assumptions."""
    console = _console(console)
    table = Table(title="catalog targets and the scenarios that model them", title_justify="left")
    for name in ("target", "kind", "tier", "scenario", "basis", "status"):
        table.add_column(name, no_wrap=name != "status")
    for r in rows:
        table.add_row(r.target_id + (" *" if r.assumption else ""), r.kind, r.tier, r.scenario or "–",
                      BASIS_CODES.get(r.basis, r.basis) or "–", r.status)
    console.print(table)
    modelled = sum(r.status == "modelled" for r in rows)
    missing = sum(r.status == "missing" for r in rows)
    ids = [r.target_id for r in rows]
    twice = len(ids) - len(set(ids))
    console.print(f"{len(set(ids))} targets: {modelled} modelled ({sum(r.assumption for r in rows)} resting on "
                  f"assumptions, marked *), {len(rows) - modelled - missing} not modelled, {missing} missing"
                  + (f"; {twice} listed in more than one scenario" if twice else ""))
    print_basis_counts(rows, console)


def print_basis_counts(rows, console: Console | None = None) -> None:
    """Per plan, how many modelled targets rest on each basis (:func:`targetsim.report.catalog.basis_counts`)."""
    from targetsim.model.basis import BASES
    from targetsim.report.catalog import basis_counts

    console = _console(console)
    counts = basis_counts(rows)
    if not counts:
        return
    table = Table(title="what the modelled targets' parameters rest on, per plan (target_basis)", title_justify="left")
    table.add_column("plan", overflow="fold")
    for basis in BASES:
        table.add_column(basis, justify="right")
    table.add_column("all", justify="right")
    for plan, by_basis in counts.items():
        table.add_row(plan, *(str(by_basis[b]) for b in BASES), str(sum(by_basis.values())))
    totals = [sum(c[b] for c in counts.values()) for b in BASES]
    table.add_row("all plans", *map(str, totals), str(sum(totals)))
    console.print(table)


def print_baseline_summary(rows, console: Console | None = None) -> None:
    """One line per indicator: file, years, observed and assumed values."""
    console = _console(console)
    table = Table(title="baseline indicators (targetsim baselines INDICATOR shows one)", title_justify="left")
    for name, justify in (("indicator", "left"), ("file", "left"), ("unit", "left"), ("years", "left"),
                          ("observed", "right"), ("assumed", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    groups: dict[tuple[str, str], list] = {}
    for path, row in rows:
        groups.setdefault((row.indicator, path.name), []).append(row)
    for (indicator, file), values in sorted(groups.items()):
        years = sorted(v.year for v in values)
        span = str(years[0]) if len(years) == 1 else f"{years[0]}–{years[-1]}"
        assumed = sum(bool(v.assumption) for v in values)
        table.add_row(indicator, file, values[0].unit, span, str(len(values) - assumed), str(assumed))
    console.print(table)


def print_baseline_history(indicator: str, rows, console: Console | None = None) -> None:
    """An indicator's values by year with each value's source, quote and (if any) assumption."""
    console = _console(console)
    table = Table(title=f"{indicator}: baseline history", title_justify="left", show_lines=True)
    for name, justify in (("year", "right"), ("value", "right"), ("unit", "left"), ("file", "left"),
                          ("source / assumption", "left")):
        table.add_column(name, justify=justify, no_wrap=name not in ("source / assumption",))
    for path, row in rows:
        if row.assumption:
            provenance = f"[bold]ASSUMPTION[/bold]: {row.assumption}" + (f"\ninputs: {row.source}" if row.source else "")
        else:
            provenance = row.source + (f"\n“{row.quote}”" if row.quote else "")
        table.add_row(str(row.year), f"{row.value:,.6g}", row.unit, f"{path.name}:{row.line}", provenance)
    console.print(table)
