"""``targetsim report``: one self-contained HTML file from one or more results files.

Everything is inside the file: figures are inline SVG, the style sheet is inline, no script, font or image
is fetched from anywhere (the page opens offline, and on a phone: viewport meta and a fluid layout). The
page holds, per results file: the targets sorted by risk with an on-track / at-risk / off-track mark, each
probability's 95 % interval, the pace each target needs beside the recent observed pace and its SDG-style
progress category, the median path's verdict and one sentence where these disagree; the joint and
at-least-k probabilities (per plan in a joint run); the pairs of targets that tend to fail together; fan
charts of the indicators with their observed history and thresholds; attainment-by-year curves; required vs
simulated growth; every target's source quote; the assumptions; and the run's provenance. With several
files, a comparison table and overlaid fans of the indicators they share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import xarray as xr

from targetsim.errors import TargetsimError
from targetsim.report import figures
from targetsim.report.results_file import load_results
from targetsim.report.table import COMPARATOR_SIGNS, format_threshold

#: what the report reads of a results file
REPORT_VARIABLES = ("attainment_probability", "indicator_quantiles", "target_source")

#: The marking of a probability: on track at or above ON_TRACK, at risk from AT_RISK up, else off track.
ON_TRACK = 0.8
AT_RISK = 0.5

# Progress categories, after the UN Statistics Division's SDG Progress Chart method for indicators with an
# explicit numerical target ("Sustainable Development Goals Progress Chart, Technical Note", UN DESA
# Statistics Division, 2022, section II(b)): the ratio of the observed compound annual growth rate to the
# rate the target requires from the base year, read as ≥ 0.95 substantial progress / on track, 0.5–0.95
# fair progress but acceleration needed, −0.1–0.5 limited or no progress, below −0.1 deterioration. Here
# the observed rate is the indicator's CAGR over its observed (not assumed) values of the five years up to
# the base year, else an observed `<indicator>_growth` row (a stated average growth rate).
PROGRESS_CATEGORIES = ((0.95, "on track", "good"), (0.5, "acceleration needed", "warn"),
                       (-0.1, "limited or no progress", "bad"), (-math.inf, "deterioration", "bad"))
TREND_YEARS = 5
#: kinds whose rule has no single pace (a per-year or cumulative rule)
NO_PACE_KINDS = ("count_per_year", "cumulative", "in_year")
#: failure-dependence pairs shown, and the least joint failure probability a pair needs to be shown
TOP_PAIRS = 12
MIN_JOINT_FAILURE = 0.01
MIN_DEPENDENCE = 1.05
#: targets per attainment-by-year figure
CURVES_PER_FIGURE = 6


def _pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f} %"


def _points(value: float) -> str:
    """A difference of probabilities in signed percentage points; – where it is not defined."""
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:+.1f}"


def _rate(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.1f} %/yr"


def mark(p: float) -> tuple[str, str]:
    """(text, css class) of a probability's marking."""
    if not math.isfinite(p):
        return "–", "na"
    if p >= ON_TRACK:
        return "on track", "good"
    if p >= AT_RISK:
        return "at risk", "warn"
    return "off track", "bad"


def progress_category(observed: float, required: float) -> tuple[str, str, float]:
    """(category, css class, ratio) of the observed vs required growth (see PROGRESS_CATEGORIES)."""
    if not math.isfinite(required):
        return "no single pace (a per-year or cumulative rule)", "na", math.nan
    if required <= 0:
        return "at or past the target at the start", "good", math.nan
    if not math.isfinite(observed):
        return "no observed trend", "na", math.nan
    ratio = observed / required
    for floor, text, css in PROGRESS_CATEGORIES:
        if ratio >= floor:
            return text, css, ratio
    return PROGRESS_CATEGORIES[-1][1], "bad", ratio  # pragma: no cover (the last floor is −inf)


def compare(value: float, comparator: str, threshold: float, tolerance: float) -> bool | None:
    """The target's rule on one value (ties hold for ≥, ≤, ≈; see README "Ties")."""
    if not math.isfinite(value):
        return None
    tol = tolerance if math.isfinite(tolerance) else 0.1
    eps = 1e-9 * max(1.0, abs(threshold))
    if comparator == ">=":
        return value >= threshold - eps
    if comparator == ">":
        return value > threshold + eps
    if comparator == "<=":
        return value <= threshold + eps
    if comparator == "<":
        return value < threshold - eps
    if comparator == "~":
        return abs(value - threshold) <= tol * abs(threshold) + eps
    if comparator == "~>=":
        return value >= threshold - tol * abs(threshold) - eps
    return None


@dataclass
class Row:
    """One target as the report shows it."""

    target: str
    label: str
    plan: str
    indicator: str
    kind: str
    by: int
    threshold: str
    p: float
    lower: float
    upper: float
    required: float
    simulated: float
    observed: float
    observed_what: str
    category: str
    category_css: str
    ratio: float
    median_met: bool | None
    median_text: str
    note: str
    assumed: bool
    proxy: bool
    aspirational: bool
    source: str
    basis: str = ""  # what the parameters rest on (target_basis: fit, pooled, outside view, sourced, assumption)


def _median_path(sel, t) -> tuple[bool | None, str]:
    """The median path's verdict: the indicator's median in the target year against the threshold (a
    first passage: in any year up to it; a growth rule: the median simulated average growth)."""
    kind = str(t["target_kind"].values)
    cmp_ = str(t["target_comparator"].values)
    thr = float(t["target_threshold"])
    tol = float(t["target_tolerance"]) if "target_tolerance" in t.coords else math.nan
    by = int(t["target_year"])
    ind = str(t["target_indicator"].values)
    if kind in ("cagr", "growth_each_year"):
        value = float(t["baseline_growth"])
        return compare(value, cmp_, thr, tol), f"median growth {_rate(value)}"
    if kind in ("level", "count_stock", "share", "first_passage"):
        q = sel["indicator_quantiles"].sel(indicator=ind)
        levels = sel["quantile"].values
        k = int(np.argmin(np.abs(levels - 0.5)))
        if abs(levels[k] - 0.5) > 0.005:
            return None, "no median stored"
        med = q.isel(quantile=k)
        if kind == "first_passage":
            years = sel["year"].values
            path = np.asarray(med.sel(year=years[years <= by]).values, dtype=float)
            value = float(path.max() if cmp_ in (">=", ">", "~>=") else path.min())
        else:
            value = float(med.sel(year=by))
        unit = str(sel["indicator_unit"].sel(indicator=ind).values)
        shown = (_pct(value) if kind == "share" or unit == "fraction"
                 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}")
        return compare(value, cmp_, thr, tol), f"median {shown} in {by}" if kind != "first_passage" else \
            f"median path {'peak' if cmp_ in ('>=', '>', '~>=') else 'low'} {shown}"
    return None, "–"


def _observed_growth(history: figures.History | None, base_year: int) -> tuple[float, str]:
    """The recent observed average growth and what it is (see PROGRESS_CATEGORIES)."""
    if history is None:
        return math.nan, ""
    points = [(y, v) for y, v in history.observed if base_year - TREND_YEARS <= y <= base_year and v > 0]
    if len(points) >= 2 and points[-1][0] > points[0][0]:
        (y0, v0), (y1, v1) = points[0], points[-1]
        return (v1 / v0) ** (1.0 / (y1 - y0)) - 1.0, f"observed {y0}–{y1}"
    if history.stated_growth is not None and base_year - TREND_YEARS <= history.stated_growth[0] <= base_year:
        year, rate = history.stated_growth
        return rate, f"stated average growth to {year}"
    return math.nan, ""


def _explain(row: Row, process: str) -> str:
    """One sentence (or two) where the median path or the recent trend disagrees with the probability."""
    sentences = []
    p = row.p
    if row.median_met is True and p < AT_RISK:
        if row.kind == "growth_each_year":
            sentences.append("On track on the median path, but the every-year rule fails in a bad year: one slow "
                             "year anywhere misses it.")
        elif row.threshold.startswith(COMPARATOR_SIGNS["~"] + " "):
            sentences.append("The median lies inside the band, but the band is narrow: most paths end outside it.")
        else:
            sentences.append("The median path meets it only just: about half the paths fall short.")
    elif row.median_met is False and p >= AT_RISK:
        if row.kind == "first_passage":
            sentences.append("The median path never reaches it, but most paths pass it in one year or another, "
                             "which counts.")
        else:
            sentences.append("The median path falls just short, but the spread of the paths puts more than half "
                             "of them over the line.")
    if row.category == PROGRESS_CATEGORIES[0][1] and p < AT_RISK:
        if math.isfinite(row.simulated) and row.simulated < row.required:
            sentences.append(f"The recent observed pace ({_rate(row.observed)}) would be enough, but the simulation "
                             f"expects slower growth ahead (median {_rate(row.simulated)}): see the indicator's "
                             "parameters source.")
        else:
            sentences.append("The recent observed pace would be enough, but the spread of outcomes leaves it "
                             "below even odds.")
    elif row.category == "at or past the target at the start" and p < ON_TRACK:
        sentences.append("It is already met at the start, but the indicator can fall back below the line by the "
                         "target year, and the probability counts those paths.")
    elif row.category_css in ("warn", "bad") and math.isfinite(row.ratio) and p >= ON_TRACK:
        if process.startswith("scheduled"):
            sentences.append("The past trend falls short, but the count follows the plan's schedule, delivered as "
                             "planned on most paths.")
        else:
            sentences.append(f"The recent observed pace ({_rate(row.observed)}) falls short of the "
                             f"{_rate(row.required)} needed, but the simulation expects faster growth ahead (median "
                             f"{_rate(row.simulated)}): check the parameters' source.")
    return " ".join(sentences)


def target_rows(ds: xr.Dataset, histories: dict[str, figures.History]) -> list[Row]:
    """Every target of the dataset's first scenario as a :class:`Row`, sorted by risk (lowest P first)."""
    sel = ds.isel(scenario=0)
    base_year = int(sel["year"].values[0])
    units = dict(zip(sel["indicator"].values.tolist(), sel["indicator_unit"].values.tolist()))
    proxies = (dict(zip(sel["indicator"].values.tolist(), sel["indicator_is_proxy"].values.tolist()))
               if "indicator_is_proxy" in sel.coords else {})
    processes = dict(zip(sel["indicator"].values.tolist(), sel["indicator_process"].values.tolist()))
    rows = []
    for k, tid in enumerate(sel["target"].values.tolist()):
        t = sel.isel(target=k)
        ind = str(t["target_indicator"].values)
        kind = str(t["target_kind"].values)
        tol = float(t["target_tolerance"]) if "target_tolerance" in t.coords else math.nan
        required = float(t["required_growth"])
        observed, observed_what = _observed_growth(histories.get(ind), base_year)
        category, css, ratio = progress_category(observed, required)
        if not math.isfinite(required) and kind not in NO_PACE_KINDS:
            category = "no growth rate (the start is 0)"
        met, median_text = _median_path(sel, t)
        row = Row(
            target=tid, label=str(t["target_label"].values), plan=str(t["target_plan"].values)
            if "target_plan" in t.coords else "", indicator=ind, kind=kind, by=int(t["target_year"]),
            threshold=format_threshold(kind, str(t["target_comparator"].values), float(t["target_threshold"]),
                                       units[ind], tol),
            p=float(t["attainment_probability"]), lower=float(t["attainment_probability_lower"]),
            upper=float(t["attainment_probability_upper"]), required=required,
            simulated=float(t["baseline_growth"]), observed=observed, observed_what=observed_what,
            category=category, category_css=css, ratio=ratio, median_met=met, median_text=median_text, note="",
            assumed=bool(t["target_rests_on_assumption"]), proxy=bool(proxies.get(ind, 0)),
            aspirational="target_is_aspirational" in t.coords and bool(t["target_is_aspirational"]),
            source=str(t["target_source"].values),
            basis=str(t["target_basis"].values) if "target_basis" in t.coords or "target_basis" in t else "")
        row.note = _explain(row, processes.get(ind, ""))
        rows.append(row)
    return sorted(rows, key=lambda r: (r.p if math.isfinite(r.p) else 2.0, r.target))


def failure_pairs(ds: xr.Dataset, top: int = TOP_PAIRS) -> list[tuple[str, str, float, float, float, float]]:
    """(a, b, P(both missed), dependence, P(a missed), P(b missed)) of the pairs most prone to fail together:
    largest ``failure_dependence`` first, among pairs missed together on at least MIN_JOINT_FAILURE of paths."""
    sel = ds.isel(scenario=0)
    joint = np.asarray(sel["joint_failure_probability"].values, dtype=float)
    dep = np.asarray(sel["failure_dependence"].values, dtype=float)
    ids = sel["target"].values.tolist()
    i, j = np.triu_indices(len(ids), k=1)
    keep = (joint[i, j] >= MIN_JOINT_FAILURE) & np.isfinite(dep[i, j]) & (dep[i, j] >= MIN_DEPENDENCE)
    i, j = i[keep], j[keep]
    order = np.lexsort((-joint[i, j], -dep[i, j]))[:top]
    return [(ids[a], ids[b], float(joint[a, b]), float(dep[a, b]), float(joint[a, a]), float(joint[b, b]))
            for a, b in zip(i[order], j[order])]


# ---------------------------------------------------------------------------------------------------------------
# HTML

CSS = """
:root{--good:#1e7b34;--warn:#a86400;--bad:#b3261e;--na:#666;--line:#ddd;--bg:#fafafa}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei",sans-serif;margin:0 auto;max-width:1100px;padding:12px;line-height:1.45;color:#1a1a1a}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.25em;margin-top:1.6em;border-bottom:2px solid var(--line)}
h3{font-size:1.05em;margin-top:1.2em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.86em;width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:0}
td.num{text-align:right;white-space:nowrap}
.badge{display:inline-block;padding:0 6px;border-radius:9px;color:#fff;font-size:.85em;white-space:nowrap}
.badge.good{background:var(--good)}.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}
.badge.na{background:var(--na)}
.cat.good{color:var(--good)}.cat.warn{color:var(--warn)}.cat.bad{color:var(--bad)}.cat.na{color:var(--na)}
.note{font-size:.9em;color:#444}.small{font-size:.85em;color:#555}
table.targets td.who{min-width:11em}.id{word-break:break-all}
table.targets tr.lead td{border-bottom:none}tr.why td{padding-top:0;padding-left:2em;font-style:italic}
.figs{display:flex;flex-wrap:wrap;gap:10px}
.fig{flex:1 1 340px;max-width:560px;border:1px solid var(--line);border-radius:6px;padding:4px;background:#fff}
.fig svg{width:100%;height:auto;display:block}
.fig p{margin:2px 4px;font-size:.8em;color:#444}
blockquote{margin:4px 0 4px 10px;padding-left:8px;border-left:3px solid var(--line)}
.assume{color:var(--bad);font-weight:600}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
dl.prov{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:.86em}
dl.prov dt{font-weight:600}dl.prov dd{margin:0;word-break:break-all}
@media (max-width:600px){body{padding:6px}table{font-size:.78em}.fig{flex-basis:100%}}
"""


class _Figures:
    """Numbered inline figures (each SVG's ids prefixed with its number)."""

    def __init__(self, style: figures.Style):
        self.style = style
        self.count = 0

    def __call__(self, fig, caption: str = "") -> str:
        self.count += 1
        svg = figures.svg_text(fig, prefix=f"g{self.count}")
        return f'<div class="fig">{svg}' + (f"<p>{caption}</p>" if caption else "") + "</div>"


def _e(text) -> str:
    return escape(str(text))


def _marks(row: Row) -> str:
    return (" *" if row.assumed else "") + (" †" if row.proxy else "") + (" (力争)" if row.aspirational else "")


def _summary_table(rows: list[Row], plans: bool) -> str:
    """The targets by risk. The planner's key column comes first: the Chinese label, with the target id
    under it; the interval sits under its probability; where the median path or the trend disagrees with the
    probability, the sentence that says why takes a line of its own under the target's row. The probability and
    its mark come right after the label, so that a phone shows them without scrolling."""
    head = ("<tr><th>target</th><th>P(met)<br><span class='small'>95 % interval</span></th><th>mark</th>"
            + ("<th>plan</th>" if plans else "") + "<th>by</th><th>threshold</th><th>needs</th><th>recent observed (progress ratio)</th><th>simulated median</th><th>median path</th></tr>")
    columns = 9 + plans
    LEAD = " class='lead'"  # a row with a sentence under it
    body = []
    for r in rows:
        text, css = mark(r.p)
        ratio = f" ×{r.ratio:.2f}" if math.isfinite(r.ratio) else ""
        observed = (f"{_rate(r.observed)} <span class='small'>({_e(r.observed_what)})</span><br>"
                    if math.isfinite(r.observed) else "")
        verdict = {True: "meets it", False: "misses it", None: ""}[r.median_met]
        body.append(
            f"<tr{LEAD if r.note else ''}><td class='who'><b>{_e(r.label)}</b>{_e(_marks(r))}<br>"
            f"<span class='small id'>{_e(r.target)}</span>"
            + (f"<br><span class='small basis'>rests on: {_e(r.basis)}</span>" if r.basis else "") + "</td>"
            f"<td class='num'><b>{_pct(r.p)}</b><br><span class='small'>{_pct(r.lower)} – {_pct(r.upper)}</span></td>"
            f"<td><span class='badge {css}'>{text}</span></td>"
            + (f"<td>{_e(r.plan)}</td>" if plans else "")
            + f"<td class='num'>{r.by}</td><td class='num'>{_e(r.threshold)}</td><td class='num'>{_rate(r.required)}</td>"
            f"<td>{observed}<span class='cat {r.category_css}'>{_e(r.category)}{ratio}</span></td>"
            f"<td class='num'>{_rate(r.simulated)}</td><td>{_e(verdict)}<br><span class='small'>"
            f"{_e(r.median_text)}</span></td></tr>")
        if r.note:
            body.append(f"<tr class='why'><td colspan='{columns}' class='note'>Why they differ: {_e(r.note)}</td></tr>")
    return f"<div class='scroll'><table class='targets'>{head}{''.join(body)}</table></div>"


LEGEND = (
    f"<p class='small'>Sorted by risk, lowest probability first. Mark: <span class='badge good'>on track</span> "
    f"P ≥ {ON_TRACK:.0%} · <span class='badge warn'>at risk</span> {AT_RISK:.0%} ≤ P &lt; {ON_TRACK:.0%} · "
    f"<span class='badge bad'>off track</span> P &lt; {AT_RISK:.0%} (on the estimate; the 95 % Wilson interval "
    "beside it is its Monte Carlo error). <b>needs</b>: the average annual growth from the base year the target "
    "requires; <b>recent observed</b>: the indicator's average growth over its observed (not assumed) values "
    f"of the {TREND_YEARS} years up to the base year, else a stated average growth; the <b>progress ratio</b> "
    "is observed ÷ needed, read as the UN SDG Progress Chart does for targets with a number: ≥ 0.95 on "
    "track, 0.5–0.95 acceleration needed, −0.1–0.5 limited or no progress, below −0.1 deterioration. "
    "<b>simulated median</b>: the median simulated average growth; <b>median path</b>: the indicator's "
    "median in the target year (a growth rule: the median growth) against the threshold. "
    "* rests on an assumed start or parameters; † proxy indicator; (力争) aspirational. <b>rests on</b>: what "
    "the target's growth parameters come from (<code>target_basis</code>): a fit on at least 5 observed values of "
    "the city's own series, a pooled or proxy fit, the outside view (how comparable past plan targets turned "
    "out), sourced figures, or an assumption.</p>")


def _joint_section(ds: xr.Dataset, fig: _Figures) -> str:
    sel = ds.isel(scenario=0)
    n = sel.sizes["target"]
    parts = [f"<p>All {n} targets met on the same path: <b>{_pct(float(sel['joint_attainment_probability']), 2)}"
             f"</b> [{_pct(float(sel['joint_attainment_probability_lower']), 2)} – "
             f"{_pct(float(sel['joint_attainment_probability_upper']), 2)}].</p>"]
    k = np.asarray(sel["at_least_k_attainment_probability"].values, dtype=float)
    if k.size > 2:
        half = int(math.ceil((k.size - 1) / 2))
        parts.append(f"<p>At least {half} of {n}: <b>{_pct(float(k[half]))}</b>; expected number met: "
                     f"{float(np.nansum(sel['attainment_probability'].values)):.1f}.</p>")
    figs = [fig(figures.at_least_k_chart(ds, style=fig.style))]
    if "plan" in sel.dims and sel.sizes["plan"] > 1:
        counts = {}
        for plan in sel["target_plan"].values.tolist():
            counts[plan] = counts.get(plan, 0) + 1
        rows = "".join(
            f"<tr><td>{_e(plan)}</td><td class='num'>{counts.get(plan, 0)}</td><td class='num'>"
            f"{_pct(float(sel['plan_joint_attainment_probability'].sel(plan=plan)), 2)} "
            f"[{_pct(float(sel['plan_joint_attainment_probability_lower'].sel(plan=plan)), 2)} – "
            f"{_pct(float(sel['plan_joint_attainment_probability_upper'].sel(plan=plan)), 2)}]</td></tr>"
            for plan in sel["plan"].values.tolist())
        parts.append("<h3>Per plan</h3><div class='scroll'><table><tr><th>plan</th><th>targets</th>"
                     f"<th>all its targets met [95 % interval]</th></tr>{rows}</table></div>")
        figs.append(fig(figures.at_least_k_chart(ds, style=fig.style, plans=True)))
    return "".join(parts) + f"<div class='figs'>{''.join(figs)}</div>"


def _pairs_section(ds: xr.Dataset) -> str:
    pairs = failure_pairs(ds)
    if not pairs:
        return (f"<p>No pair of targets is missed together on {MIN_JOINT_FAILURE:.0%} of paths or more with a "
                f"dependence of {MIN_DEPENDENCE} or more.</p>")
    labels = dict(zip(ds["target"].values.tolist(), ds["target_label"].values.tolist()))

    def who(target: str) -> str:
        return f"<b>{_e(labels.get(target, ''))}</b><br><span class='small id'>{_e(target)}</span>"

    rows = "".join(f"<tr><td>{who(a)}</td><td>{who(b)}</td><td class='num'>{_pct(j)}</td><td class='num'>"
                   f"{_pct(ma)} × {_pct(mb)} = {_pct(ma * mb)}</td><td class='num'>{d:.2f}</td></tr>"
                   for a, b, j, d, ma, mb in pairs)
    return ("<p class='small'>Pairs missed together more often than if they were independent: dependence = "
            "P(both missed) ÷ (P(first missed) · P(second missed)); above 1 they tend to fail together (a shared "
            f"indicator, correlated shocks, a common factor). Largest first, among pairs missed together on at "
            f"least {MIN_JOINT_FAILURE:.0%} of paths with a dependence of {MIN_DEPENDENCE} or more.</p>"
            "<div class='scroll'><table><tr><th>target</th>"
            "<th>and target</th><th>both missed</th><th>if independent</th><th>dependence</th></tr>"
            f"{rows}</table></div>")


def _growth_section(ds: xr.Dataset, rows: list[Row], fig: _Figures) -> str:
    by_plan: dict[str, list[Row]] = {}
    order = ds.isel(scenario=0)["target"].values.tolist()
    for r in sorted(rows, key=lambda r: order.index(r.target)):
        if math.isfinite(r.required):
            by_plan.setdefault(r.plan, []).append(r)
    figs = [fig(figures.growth_chart(ds, [r.target for r in group],
                                     {r.target: r.observed for r in group}, style=fig.style),
                _e(plan) if len(by_plan) > 1 else "")
            for plan, group in by_plan.items()]
    if not figs:
        return "<p>No target here has a single required pace.</p>"
    return f"<div class='figs'>{''.join(figs)}</div>"


def _curves_section(ds: xr.Dataset, fig: _Figures) -> str:
    ids = ds.isel(scenario=0)["target"].values.tolist()
    figs = []
    for start in range(0, len(ids), CURVES_PER_FIGURE):
        group = ids[start:start + CURVES_PER_FIGURE]
        figs.append(fig(figures.attainment_curves(ds, group, style=fig.style)))
    return ("<p class='small'>P(met) if each year were the target year (<code>attainment_by_year</code>); the "
            f"open square is the target year's probability. Targets in the dataset's order, {CURVES_PER_FIGURE} a "
            f"figure.</p><div class='figs'>{''.join(figs)}</div>")


def _fans_section(datasets: list[xr.Dataset], histories: list[dict], indicators: list[str], fig: _Figures,
                  names: list[str] | None = None) -> str:
    sel = datasets[0].isel(scenario=0)
    figs = []
    for ind in indicators:
        users = sorted({str(t) for d in datasets for t, i in zip(d["target"].values, d["target_indicator"].values)
                        if i == ind})
        label = str(sel["indicator_label"].sel(indicator=ind).values) if ind in sel["indicator"].values else ind
        caption = f"<b>{_e(ind)}</b> {_e(label)} — targets: {_e(', '.join(users))}"
        figs.append(fig(figures.fan_chart(datasets, ind, histories=histories, style=fig.style, names=names),
                        caption))
    return f"<div class='figs'>{''.join(figs)}</div>"


def _sources_section(ds: xr.Dataset, rows: list[Row]) -> str:
    order = ds.isel(scenario=0)["target"].values.tolist()
    items = []
    for r in sorted(rows, key=lambda r: order.index(r.target)):
        where, _, quote = r.source.partition(": ")
        body = (f"<blockquote lang='zh'>{_e(quote)}</blockquote><span class='small'>source, clause: {_e(where)}</span>"
                if quote else f"<blockquote lang='zh'>{_e(r.source)}</blockquote>")
        flags = []
        if r.assumed:
            flags.append("<span class='assume'>rests on an assumption</span>")
        if r.proxy:
            flags.append("proxy indicator")
        if r.aspirational:
            flags.append("aspirational (力争)")
        items.append(f"<li><b>{_e(r.target)}</b> {_e(r.label)} — {_e(r.threshold)} by {r.by}, "
                     f"P = {_pct(r.p)} {' · '.join(flags)}{body}</li>")
    return f"<ul>{''.join(items)}</ul>"


def _assumptions_section(ds: xr.Dataset) -> str:
    sel = ds.isel(scenario=0)
    used = set(sel["target_indicator"].values.tolist())
    rows = []
    for k, ind in enumerate(sel["indicator"].values.tolist()):
        if ind not in used:
            continue
        i = sel.isel(indicator=k)
        start_assumed = bool(i["indicator_start_is_assumption"])
        params_assumed = bool(i["indicator_parameters_are_assumption"])
        proxy = str(i["indicator_proxy_for"].values) if "indicator_proxy_for" in i.coords else ""
        law = str(i["indicator_start_law"].values) if "indicator_start_law" in i.coords else "known"
        start = f"{float(i['indicator_start']):,.6g}" + ("" if law in ("known", "derived") else f" ({law} law)")
        rows.append(
            f"<tr><td>{_e(ind)}<br><span class='small'>{_e(i['indicator_label'].values)}</span></td>"
            f"<td class='num'>{_e(start)} {_e(i['indicator_unit'].values)}</td>"
            f"<td>{'<span class=assume>ASSUMED</span> ' if start_assumed else ''}"
            f"<span class='small'>{_e(i['indicator_start_source'].values)}</span></td>"
            f"<td class='small'>{_e(i['indicator_process'].values)}</td>"
            f"<td>{'<span class=assume>ASSUMED</span> ' if params_assumed else ''}"
            f"<span class='small'>{_e(i['indicator_parameters_source'].values)}</span></td>"
            f"<td class='small'>{_e(proxy) or '–'}</td></tr>")
    return ("<div class='scroll'><table><tr><th>indicator</th><th>start</th><th>start source "
            "(<code>indicator_start_source</code>)</th><th>process</th><th>parameters source "
            "(<code>indicator_parameters_source</code>)</th><th>proxy for (<code>indicator_proxy_for</code>)</th>"
            f"</tr>{''.join(rows)}</table></div>")


PROVENANCE_KEYS = ("targetsim_version", "scenario_name", "scenario_file", "scenario_sha256", "seed", "paths",
                   "effective_sample_size", "base_year", "horizon", "shocks", "created", "model_file",
                   "baselines_file", "observations", "warnings")


def _provenance(ds: xr.Dataset, path: Path, history_note: str) -> str:
    items = [("results file", str(path))] + [(k, ds.attrs[k]) for k in PROVENANCE_KEYS if k in ds.attrs
                                              and str(ds.attrs[k]) != ""]
    if history_note:
        items.append(("history", history_note))
    return "<dl class='prov'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _counts(rows: list[Row]) -> str:
    counts = {"on track": 0, "at risk": 0, "off track": 0}
    for r in rows:
        text, _ = mark(r.p)
        if text in counts:
            counts[text] += 1
    css = {"on track": "good", "at risk": "warn", "off track": "bad"}
    return " ".join(f"<span class='badge {css[k]}'>{v} {k}</span>" for k, v in counts.items())


def _dataset_section(n: int, ds: xr.Dataset, path: Path, histories: dict, history_note: str, fig: _Figures,
                     fan_indicators: list[str], several: bool, goals=None) -> str:
    sel = ds.isel(scenario=0)
    rows = target_rows(ds, histories)
    plans = "plan" in sel.dims and sel.sizes["plan"] > 1
    name = ds.attrs.get("scenario_name", path.stem)
    anchor = f"s{n}"
    out = [f"<section id='{anchor}'><h2>{_e(name)}</h2>",
           f"<p>{_e(ds.attrs.get('scenario_description', ''))}</p>",
           f"<p>{len(rows)} targets, {int(ds.attrs.get('paths', 0)):,} paths, seed {_e(ds.attrs.get('seed', ''))}, "
           f"{_e(ds.attrs.get('base_year', ''))}–{_e(ds.attrs.get('horizon', ''))}. {_counts(rows)}</p>",
           f"<h3 id='{anchor}-table'>Targets by risk</h3>", LEGEND, _summary_table(rows, plans),
           f"<h3 id='{anchor}-joint'>Together</h3>", _joint_section(ds, fig),
           f"<h3 id='{anchor}-pairs'>Targets that tend to fail together</h3>", _pairs_section(ds),
           f"<h3 id='{anchor}-fans'>Indicators: fan charts</h3>"]
    if history_note:
        out.append(f"<p class='small'>Note: {_e(history_note)}; the fans show the simulation only.</p>")
    out.append("<p class='small'>Median (line), 50 % and 90 % bands (shaded) of each indicator a target uses; "
               "black dots: observed values (baselines files and the run's observations), open circles: assumed "
               "values; red: the target's threshold at its year (a growth target: the path it needs, dashed).</p>")
    if fan_indicators:
        out.append(_fans_section([ds], [histories], fan_indicators, fig))
    if several:
        out.append("<p class='small'>Indicators shared with another results file are drawn in the comparison "
                   "above, overlaid.</p>")
    out += [f"<h3 id='{anchor}-when'>When</h3>", _curves_section(ds, fig),
            f"<h3 id='{anchor}-pace'>What pace</h3>", _growth_section(ds, rows, fig),
            f"<h3 id='{anchor}-goals'>What it would take</h3>", _goals_section(goals),
            f"<details><summary id='{anchor}-sources'>Every target's source (clause and quote)</summary>",
            _sources_section(ds, rows), "</details>",
            f"<details><summary id='{anchor}-assumptions'>Assumptions: start values, parameters, proxies</summary>",
            _assumptions_section(ds), "</details>",
            f"<h3 id='{anchor}-provenance'>Provenance</h3>", _provenance(ds, path, history_note), "</section>"]
    return "".join(out)


def _goals_section(goals) -> str:
    """What it would take (``targetsim goal``) for every target below the highest goal: the lever's value
    for each goal above the target's probability. ``goals``: a :class:`targetsim.goal.RunGoals`, or None
    when the report was asked not to compute them."""
    if goals is None:
        return ("<p class='small'>Not computed (<code>targetsim report --no-goals</code>); "
                "<code>targetsim goal SCENARIO --target ID --probability 0.8</code> computes one.</p>")
    if goals.note:
        return f"<p class='small'>Not computed: {_e(goals.note)}.</p>"
    if not goals.targets:
        return (f"<p>Every target is at or above {_pct(max(goals.goals), 0)}: nothing to compute.</p>")
    head = "".join(f"<th>for {_pct(g, 0)}</th>" for g in goals.goals)
    body = []
    for t in goals.targets:
        by_goal = {r.goal: r for r in t.results}
        lever = t.results[0].parameter if t.results else ""
        now = t.results[0].format_value(t.results[0].current) if t.results else "–"
        cells = []
        for g in goals.goals:
            r = by_goal.get(g)
            if t.problem:
                cells.append("<td class='small'>–</td>")
            elif r is None:
                cells.append("<td class='small'>above it now</td>")
            elif not r.reachable:
                cells.append(f"<td class='small'>unreachable: P(met) at most {_pct(r.closest_probability)} "
                             f"(at {_e(r.format_value(r.closest_value))})</td>")
            else:
                se = r.format_value_standard_error()
                se = f"<br><span class='small'>s.e. {_e(se)}</span>" if se else ""
                cells.append(f"<td class='num'>{_e(r.format_value(r.value))}{se}</td>")
        notes = "; ".join(dict.fromkeys(n for r in t.results for n in r.notes))
        what = _e(t.problem) if t.problem else _e(lever) + (f"<br><span class='small'>{_e(notes)}</span>" if notes else "")
        body.append(f"<tr><td>{_e(t.label)}<br><span class='small'>{_e(t.target)}</span></td>"
                    f"<td class='num'>{_pct(t.probability)}</td><td>{what}</td><td class='num'>{_e(now)}</td>"
                    f"{''.join(cells)}</tr>")
    return ("<p class='small'>For every target below "
            f"{_pct(max(goals.goals), 0)}: the value of one lever (the growth of the target's indicator: its mean, a "
            "count's additions, a scheduled count's delivery probability, a share's drift) that would give it that "
            "probability, everything else as it is. Each is found by re-running the scenario with the same "
            f"{goals.paths:,} paths and seed {goals.seed} (common random numbers) and a root finder "
            "(<code>targetsim goal</code>; tolerance 0.0001 on ln(1+g)).</p>"
            "<div class='scroll'><table><tr><th>target</th><th>P(met) now</th><th>lever</th><th>now</th>"
            f"{head}</tr>{''.join(body)}</table></div>")


#: inputs listed per target in the report's sensitivity section, and targets given a tornado figure
SENSITIVITY_TOP = 3
TORNADO_FIGURES = 6


def _sensitivity_section(sens: xr.Dataset, path: Path, labels: dict[str, str], fig: _Figures) -> str:
    """What drives each target (``targetsim sensitivity``): its inputs with the largest total Sobol index,
    with the first-order index, both ± their 95 % bootstrap half-widths, and the tornado's swing; tornado
    figures for every target met together and the least likely targets."""
    targets = [str(t) for t in sens["target"].values]
    nominal = {t: float(sens["nominal_probability"].sel(target=t)) for t in targets}
    rows = []
    for t in sorted(targets, key=lambda t: (t != "joint", nominal[t])):
        total = sens["sobol_total"].sel(target=t)
        order = np.argsort(-np.nan_to_num(np.asarray(total.values, dtype=float), nan=-1.0))[:SENSITIVITY_TOP]
        for n, i in enumerate(order):
            key = str(sens["input"].values[i])
            cell = (f"<td rowspan='{len(order)}'><b>{_e(labels.get(t, 'all targets met together' if t == 'joint' else ''))}"
                    f"</b><br><span class='small id'>{_e(t)}</span><br>{_pct(nominal[t])}</td>") if n == 0 else ""

            def index(name: str) -> str:
                value = float(sens[name].sel(target=t).values[i])
                conf = float(sens[f"{name}_conf"].sel(target=t).values[i])
                if not math.isfinite(value):
                    return "–"
                return f"{value:.2f} ± {conf:.2f}" if math.isfinite(conf) else f"{value:.2f} (no interval)"
            rows.append(f"<tr>{cell}<td class='id'>{_e(key)}</td><td class='num'>{index('sobol_first_order')}</td>"
                        f"<td class='num'>{index('sobol_total')}</td><td class='num'>"
                        f"{_pct(float(sens['tornado_swing'].sel(target=t).values[i]))}</td></tr>")
    figs = [t for t in sorted(targets, key=lambda t: (t != "joint", nominal[t]))][:TORNADO_FIGURES]
    charts = "".join(fig(figures.tornado_chart(
        sens, t, style=fig.style,
        title="what drives it: " + (fig.style.label(labels[t], t) if t in labels else "all targets met together")))
        for t in figs)
    attrs = sens.attrs
    return (f"<p class='small'>From {_e(path)}: {int(attrs.get('sobol_runs', 0)) + int(attrs.get('tornado_runs', 0)):,} "
            f"runs of {int(attrs.get('paths', 0)):,} paths, seed {_e(attrs.get('seed', ''))} (common random numbers). "
            "S1: the share of the probability's variance over the inputs' ranges that the input explains alone; ST: "
            "with its interactions (Sobol indices, SALib; ± the half-width of the 95 % bootstrap interval; a "
            "negative S1 within its interval is an estimate of 0); swing: |P(high) − P(low)| with the input at the "
            f"ends of its range, the others nominal. The {SENSITIVITY_TOP} inputs with the largest ST per target; "
            "every input and its range are in the sensitivity file.</p>"
            "<div class='scroll'><table><tr><th>target, P(met) at the nominal inputs</th><th>input</th><th>S1</th>"
            f"<th>ST</th><th>swing</th></tr>{''.join(rows)}</table></div><div class='figs'>{charts}</div>")


def _used_indicators(ds: xr.Dataset) -> list[str]:
    used = []
    for ind in ds.isel(scenario=0)["target_indicator"].values.tolist():
        if ind not in used:
            used.append(ind)
    return used


def _differences_section(datasets: list[xr.Dataset], names: list[str]) -> str:
    """Each file against the first: the difference in P(met) with its 95 % interval (paired over the kept
    paths where the runs share a seed; see :mod:`targetsim.report.compare`)."""
    from targetsim.report.compare import compare_datasets

    out = []
    for ds, name in zip(datasets[1:], names[1:]):
        c = compare_datasets(datasets[0], ds, reference_name=names[0], other_name=name)
        body = "".join(
            f"<tr><td>{_e(d.label)}</td><td class='num'>{_pct(d.reference)}</td><td class='num'>{_pct(d.other)}</td>"
            f"<td class='num cat {'bad' if d.changed and d.difference < 0 else 'good' if d.changed else ''}'>"
            f"{_points(d.difference)}</td><td class='num'>{_points(d.lower)} – {_points(d.upper)}</td></tr>"
            for d in c.differences)
        out.append(f"<h3>{_e(name)} − {_e(names[0])}: P(met), difference in points</h3>"
                   f"<p class='small'>{_e(c.note)} Coloured: the 95 % interval excludes 0.</p>"
                   "<div class='scroll'><table><tr><th>target</th><th>reference</th><th>other</th><th>Δ</th>"
                   f"<th>95 % interval</th></tr>{body}</table></div>")
    return "".join(out)


def build_report(paths: list[str | Path], style: figures.Style | None = None, goals: list | None = None,
                 sensitivity: str | Path | None = None) -> str:
    """The HTML text of the report of ``paths`` (results files written by ``targetsim run``). ``goals``: for
    each file, what it would take (:func:`targetsim.goal.goals_for_results`), or None (not computed).
    ``sensitivity``: a dataset ``targetsim sensitivity`` wrote, shown in the section of the results file of
    the same scenario."""
    figures.require_matplotlib()
    paths = [Path(p) for p in paths]
    datasets = [load_results(p, REPORT_VARIABLES) for p in paths]
    style = style or figures.figure_style()
    fig = _Figures(style)
    loaded = [figures.read_histories(ds, p) for ds, p in zip(datasets, paths)]
    histories = [h for h, _ in loaded]
    names = [str(ds.attrs.get("scenario_name", p.stem)) for ds, p in zip(datasets, paths)]
    used = [_used_indicators(ds) for ds in datasets]
    shared: list[str] = []
    if len(datasets) > 1:
        for ind in dict.fromkeys(i for u in used for i in u):
            if sum(ind in ds["indicator"].values for ds in datasets) > 1:
                shared.append(ind)
    title = "targetsim report: " + ", ".join(names)
    nav = "".join(f"<li><a href='#s{n}'>{_e(name)}</a></li>" for n, name in enumerate(names))
    parts = [f"<h1>{_e(title)}</h1><p class='small'>How likely each numeric target of the plan is met, by when and "
             "at what pace: Monte Carlo estimates from the results file(s) below. Read every probability with its "
             "assumptions (* in the tables; details at the end of each section).</p>"]
    if len(datasets) > 1:
        parts.append(f"<ul>{nav}<li><a href='#compare'>comparison</a></li></ul>")
        comp = "".join(
            f"<tr><td><a href='#s{n}'>{_e(name)}</a></td><td>{_e(p)}</td><td class='num'>{ds.sizes['target']}</td>"
            f"<td class='num'>{_pct(float(ds['joint_attainment_probability'].isel(scenario=0)), 2)}</td>"
            f"<td class='num'>{float(np.nansum(ds['attainment_probability'].values)):.1f}</td></tr>"
            for n, (name, p, ds) in enumerate(zip(names, paths, datasets)))
        parts.append("<section id='compare'><h2>Comparison</h2><div class='scroll'><table><tr><th>scenario</th>"
                     "<th>file</th><th>targets</th><th>all met</th><th>expected number met</th></tr>"
                     f"{comp}</table></div>")
        common = sorted(set.intersection(*(set(ds["target"].values.tolist()) for ds in datasets)))
        if common:
            head = "".join(f"<th>{_e(n)}</th>" for n in names)
            body = "".join(
                "<tr><td>" + _e(t) + "</td>" + "".join(
                    f"<td class='num'>{_pct(float(ds['attainment_probability'].isel(scenario=0).sel(target=t)))}</td>"
                    for ds in datasets) + "</tr>" for t in common)
            parts.append(f"<h3>Targets in every file: P(met)</h3><div class='scroll'><table><tr><th>target</th>"
                         f"{head}</tr>{body}</table></div>")
        parts.append(_differences_section(datasets, names))
        if shared:
            parts.append("<h3>Shared indicators: fans overlaid</h3><p class='small'>One colour per results file "
                         "(" + ", ".join(f"<span style='color:{figures.PALETTE[n % len(figures.PALETTE)]}'>"
                                         f"{_e(name)}</span>" for n, name in enumerate(names))
                         + "); thresholds and history of the first.</p>")
            parts.append(_fans_section(datasets, histories, shared, fig, names))
        parts.append("</section>")
    sens = load_sensitivity(sensitivity, datasets) if sensitivity is not None else None
    for n, (ds, p) in enumerate(zip(datasets, paths)):
        fans = [i for i in used[n] if i not in shared]
        section = _dataset_section(n, ds, p, histories[n], loaded[n][1], fig, fans, len(datasets) > 1,
                                   goals[n] if goals else None)
        if sens is not None and sens[0] == n:
            labels = dict(zip(ds["target"].values.tolist(), ds["target_label"].values.tolist()))
            drives = (f"<h3 id='s{n}-drivers'>What drives it</h3>"
                      + _sensitivity_section(sens[1], Path(sensitivity), labels, fig))
            section = section.replace(f"<h3 id='s{n}-goals'>", drives + f"<h3 id='s{n}-goals'>", 1)
        parts.append(section)
    font_note = ("" if style.font else "<p class='small'>Figure labels use ids: no CJK font was found when the "
                 "figures were drawn (see the warning of <code>targetsim report</code>).</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{''.join(parts)}{font_note}"
            "<p class='small'>Written by targetsim report; self-contained: no external resource.</p></body></html>")


def load_sensitivity(path: str | Path, datasets: list[xr.Dataset]) -> tuple[int, xr.Dataset]:
    """A ``targetsim sensitivity`` dataset and the index of the results file of the same scenario (the same
    name; the first such file), with a clear error when it is not one or matches none."""
    from targetsim.report.results_file import load_results

    sens = load_results(path, ("sobol_total", "tornado_swing", "nominal_probability"))
    name, sha = str(sens.attrs.get("scenario_name", "")), str(sens.attrs.get("scenario_sha256", ""))
    named = [n for n, ds in enumerate(datasets) if str(ds.attrs.get("scenario_name", "")) == name]
    for n in named:
        if str(datasets[n].attrs.get("scenario_sha256", "")) == sha:
            return n, sens
    if named:
        raise TargetsimError(f"{path}: a sensitivity analysis of scenario {name!r} as it was before its last change "
                             "(its scenario_sha256 differs from the results file's): run `targetsim sensitivity` "
                             "again on the scenario that was run")
    raise TargetsimError(f"{path}: a sensitivity analysis of scenario {name!r}, which none of the results files "
                         "is; give the results file of that scenario too")


def write_report(paths: list[str | Path], output: str | Path, goals: list | None = None,
                 sensitivity: str | Path | None = None) -> Path:
    """Write the report of ``paths`` to ``output`` atomically (``goals``, ``sensitivity``: see
    :func:`build_report`)."""
    text = build_report(paths, goals=goals, sensitivity=sensitivity)
    return figures.write_bytes_atomic(output, text.encode("utf-8"))
