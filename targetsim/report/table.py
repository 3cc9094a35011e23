"""The terminal table of a run and its progress bar (rich)."""

from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from targetsim.model.targets import TARGET_SPECS

# A progress bar appears only once a run has taken this long, so quick runs stay quiet.
PROGRESS_DELAY_S = 0.5


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
        self._progress.update(self._task, completed=done)

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


# The table's columns, and the terminal widths below which it drops the label, writes the interval
# as ± its larger half, and drops the simulated pace and truncates long target ids.
COLUMN_KEYS = ("target", "label", "by", "threshold", "P(met)", "needs", "simulated")
WIDTH_FOR_LABEL = 140
WIDTH_FOR_FULL_INTERVAL = 120
WIDTH_FOR_SIMULATED = 100
NARROW_TARGET_WIDTH = 26


def _target_width(width: int) -> int | None:
    """The target column's widest, by terminal width (None: as wide as its ids)."""
    if width >= WIDTH_FOR_FULL_INTERVAL:
        return None
    return NARROW_TARGET_WIDTH if width < WIDTH_FOR_SIMULATED else NARROW_TARGET_WIDTH + 6


def _shown_columns(width: int) -> set[str]:
    shown = set(COLUMN_KEYS)
    if width < WIDTH_FOR_LABEL:
        shown.discard("label")
    if width < WIDTH_FOR_SIMULATED:
        shown.discard("simulated")
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


def print_results(ds: xr.Dataset, console: Console | None = None) -> None:
    """Print one row per target: threshold, probability with its interval, required vs simulated pace."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and pipes: wide enough for one line per target
            console = Console(width=160)
    sel = ds.isel(scenario=0)
    table = Table(title=f"{ds.attrs['scenario_name']}: {ds.attrs['paths']:,} paths, seed {ds.attrs['seed']}",
                  title_justify="left")
    # a narrow terminal drops columns, shortens the interval and truncates long target ids, rather
    # than squeezing columns to nothing (the dataset holds every figure)
    shown = _shown_columns(console.width)
    full_interval = console.width >= WIDTH_FOR_FULL_INTERVAL
    for name, justify in (("target", "left"), ("label", "left"), ("by", "right"), ("threshold", "right"),
                          ("P(met) [95 % interval]" if full_interval else "P(met) % ±95", "right"),
                          ("needs", "right"), ("simulated", "right")):
        if name.split(" ")[0] not in shown:
            continue
        table.add_column(name, justify=justify, no_wrap=name != "label",
                         overflow="fold" if name == "label" else "ellipsis",
                         max_width=_target_width(console.width) if name == "target" else None)
    units = dict(zip(sel["indicator"].values.tolist(), sel["indicator_unit"].values.tolist()))
    proxies = (dict(zip(sel["indicator"].values.tolist(), sel["indicator_is_proxy"].values.tolist()))
               if "indicator_is_proxy" in sel.coords else {})
    any_assumed = any_aspirational = any_proxy = False
    for k, tid in enumerate(sel["target"].values.tolist()):
        row = sel.isel(target=k)
        assumed = bool(row["target_rests_on_assumption"])
        any_assumed |= assumed
        aspirational = "target_is_aspirational" in row.coords and bool(row["target_is_aspirational"])
        any_aspirational |= aspirational
        proxy = bool(proxies.get(str(row["target_indicator"].values), 0))
        any_proxy |= proxy
        tolerance = float(row["target_tolerance"]) if "target_tolerance" in row.coords else math.nan
        cells = [
            tid + (" *" if assumed else "") + (PROXY_MARK if proxy else "")
            + (ASPIRATIONAL_MARK if aspirational else ""),
            str(row["target_label"].values),
            str(int(row["target_year"])),
            format_threshold(str(row["target_kind"].values), str(row["target_comparator"].values),
                             float(row["target_threshold"]), units[str(row["target_indicator"].values)], tolerance),
            _probability_cell(float(row["attainment_probability"]), float(row["attainment_probability_lower"]),
                              float(row["attainment_probability_upper"]), full_interval),
            _pct(float(row["required_growth"])),
            _pct(float(row["baseline_growth"])),
        ]
        table.add_row(*(cell for cell, name in zip(cells, COLUMN_KEYS) if name in shown))
    console.print(table)
    joint = float(sel["joint_attainment_probability"])
    console.print(f"all {sel.sizes['target']} targets met together: {_pct(joint)} "
                  f"({_pct(float(sel['joint_attainment_probability_lower']))} – "
                  f"{_pct(float(sel['joint_attainment_probability_upper']))})")
    if any_assumed:
        console.print("* rests on an assumption: the indicator's start value or process parameters (see "
                      "`indicator_start_source`, `indicator_parameters_source`).")
    if any_proxy:
        console.print(f"{PROXY_MARK.strip()} proxy: the indicator's figures stand in for another statistic, or "
                      "another statistic stands in for them (`indicator_proxy_for`).")
    if any_aspirational:
        console.print("(力争): aspirational — the plan strives for the target rather than commits to it "
                      "(`target_is_aspirational`).")
    shown_note = "" if "simulated" in shown else f" (a terminal {WIDTH_FOR_SIMULATED} columns wide or more shows it)"
    console.print("needs: average annual growth the target requires; simulated: median simulated growth"
                  f"{shown_note}.")
    if "indicator_mean_is_defined" in sel:
        undefined = [str(ind) for ind, row in zip(sel["indicator"].values, sel["indicator_mean_is_defined"].values)
                     if not row.all()]
        if undefined:
            console.print(f"mean not defined for {len(undefined)} indicator(s) ({', '.join(undefined[:3])}"
                          f"{', …' if len(undefined) > 3 else ''}): Student-t shocks, or a volatility estimated with "
                          "finite degrees of freedom, give a level no finite mean, so `indicator_mean` is NaN "
                          "there; quantiles are reported.")
    median = np.asarray(sel["at_least_k_attainment_probability"].values)
    if median.size > 2:
        half = int(math.ceil((median.size - 1) / 2))
        console.print(f"at least {half} of {median.size - 1} targets met: {_pct(float(median[half]))}")
    if "plan" in sel.dims and sel.sizes["plan"] > 1:
        _print_plans(sel, console)


def _print_plans(sel, console: Console) -> None:
    """A joint run of several plans: each plan's targets all met, and every target of at least k plans."""
    counts = {}
    for plan in sel["target_plan"].values:
        counts[str(plan)] = counts.get(str(plan), 0) + 1
    for plan in sel["plan"].values:
        row = sel.sel(plan=plan)
        console.print(f"plan {plan}: all {counts.get(str(plan), 0)} targets met together: "
                      f"{_pct(float(row['plan_joint_attainment_probability']))} "
                      f"({_pct(float(row['plan_joint_attainment_probability_lower']))} – "
                      f"{_pct(float(row['plan_joint_attainment_probability_upper']))})")
    plans = np.asarray(sel["at_least_k_plans_attainment_probability"].values)
    console.print("every target met in at least k of the " + str(plans.size - 1) + " plans: "
                  + ", ".join(f"k={k}: {_pct(float(plans[k]))}" for k in range(1, plans.size)))


def _console(console: Console | None) -> Console:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
    return console


def print_catalog(rows, console: Console | None = None) -> None:
    """One line per catalog target: plan, kind, tier, the scenario that models it, assumptions."""
    console = _console(console)
    table = Table(title="catalog targets and the scenarios that model them", title_justify="left")
    for name in ("target", "kind", "tier", "scenario", "status"):
        table.add_column(name, no_wrap=name != "status")
    for r in rows:
        table.add_row(r.target_id + (" *" if r.assumption else ""), r.kind, r.tier, r.scenario or "–", r.status)
    console.print(table)
    modelled = sum(r.status == "modelled" for r in rows)
    missing = sum(r.status == "missing" for r in rows)
    ids = [r.target_id for r in rows]
    twice = len(ids) - len(set(ids))
    console.print(f"{len(set(ids))} targets: {modelled} modelled ({sum(r.assumption for r in rows)} resting on "
                  f"assumptions, marked *), {len(rows) - modelled - missing} not modelled, {missing} missing"
                  + (f"; {twice} listed in more than one scenario" if twice else ""))


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
