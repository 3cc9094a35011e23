"""Figures of a results dataset (matplotlib, an optional extra: ``pip install 'targetsim[report]'``).

Every function reads a dataset written by ``targetsim run`` (and, for the fan chart, the observed history
of its baselines files) and returns a matplotlib ``Figure``; :func:`svg_text` turns one into a small inline
SVG (text as text, coordinates rounded, ids made unique) and :func:`save_figure` writes one atomically.

Chinese labels need a CJK font. :func:`cjk_font` looks for one as matplotlib users do (``font_manager``:
Noto Sans CJK, Source Han Sans, WenQuanYi, SimHei, Microsoft YaHei, PingFang…); without one the figures
label targets and indicators by their ids (never with tofu boxes), and :func:`warn_no_cjk_font` says once
which font to install.
"""

from __future__ import annotations

import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from targetsim.errors import TargetsimError, TargetsimWarning

INSTALL_HINT = "pip install 'targetsim[report]'"

#: CJK fonts in the order they are preferred (families as font_manager names them)
CJK_FONT_NAMES = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans SC", "Noto Sans CJK",
    "Source Han Sans SC", "Source Han Sans CN", "Source Han Sans", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "SimHei", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti", "Arial Unicode MS",
)
NO_CJK_FONT_MESSAGE = (
    "no CJK font found by matplotlib: figure labels use the target and indicator ids instead of Chinese "
    "(the HTML text keeps the Chinese). Install one, e.g. `apt install fonts-noto-cjk` (Debian/Ubuntu), "
    "`dnf install google-noto-sans-cjk-fonts` (Fedora) or Noto Sans CJK SC from "
    "fonts.google.com, then remove matplotlib's font cache (~/.cache/matplotlib) so it is found")
_warned_no_cjk = False

# colours: median and bands of the first scenario, then one per overlaid scenario
PALETTE = ("#1f5fa8", "#e08a00", "#2e8b57", "#8e44ad", "#17a2b8", "#2c3e50")  # none is the thresholds' red
THRESHOLD_COLOUR = "#b03030"
HISTORY_COLOUR = "#222222"
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


def require_matplotlib():
    """matplotlib, or a clear error naming the extra. Figures are made as ``matplotlib.figure.Figure``
    objects, without pyplot, so the caller's backend (a notebook's) is left as it is."""
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise TargetsimError(f"figures and the HTML report need matplotlib, an optional extra: {INSTALL_HINT}"
                             ) from None
    return matplotlib


class _Pyplotless:
    """The two pyplot calls the figures use, on plain Figure objects."""

    @staticmethod
    def subplots(figsize, layout=None):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout=layout)
        return fig, fig.subplots()

    @staticmethod
    def close(fig) -> None:
        fig.clear()


def cjk_font() -> str | None:
    """The first installed CJK font family of :data:`CJK_FONT_NAMES`, else None."""
    require_matplotlib()
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONT_NAMES:
        if name in installed:
            return name
    for name in sorted(installed):  # e.g. a regional Noto Sans CJK not listed above
        if "CJK" in name or "Han Sans" in name:
            return name
    return None


def warn_no_cjk_font() -> None:
    """Warn (once per process) that figure labels fall back to ids."""
    global _warned_no_cjk
    if not _warned_no_cjk:
        _warned_no_cjk = True
        warnings.warn(NO_CJK_FONT_MESSAGE, TargetsimWarning, stacklevel=2)


@dataclass(frozen=True)
class Style:
    """How figures write text: with a CJK font, Chinese labels; without, ids."""

    font: str | None

    def label(self, chinese: str, fallback: str) -> str:
        if self.font is None and CJK.search(chinese or ""):
            return fallback
        return chinese or fallback


def figure_style(warn: bool = True) -> Style:
    font = cjk_font()
    if font is None and warn:
        warn_no_cjk_font()
    return Style(font)


@contextmanager
def _rc(style: Style):
    mpl = require_matplotlib()
    params = {"svg.fonttype": "none", "svg.hashsalt": "targetsim", "font.size": 9, "axes.titlesize": 10,
              "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100}
    if style.font is not None:
        params["font.family"] = "sans-serif"
        params["font.sans-serif"] = [style.font, "DejaVu Sans"]
    with mpl.rc_context(params):
        yield _Pyplotless


# ---------------------------------------------------------------------------------------------------------------
# reading the dataset

def _scalar(sel, name: str, default=math.nan):
    return sel[name].values.item() if name in sel.coords or name in sel.data_vars else default


def _quantile(sel, level: float) -> np.ndarray | None:
    """The indicator's quantile at ``level`` (the nearest stored one within 0.005), by year; None if absent."""
    q = sel["quantile"].values
    k = int(np.argmin(np.abs(q - level)))
    if abs(q[k] - level) > 0.005:
        return None
    return np.asarray(sel["indicator_quantiles"].isel(quantile=k).values, dtype=float)


@dataclass(frozen=True)
class History:
    """Observed (and assumed) values of one indicator, from the baselines files and the run's observations."""

    observed: tuple[tuple[int, float], ...] = ()
    assumed: tuple[tuple[int, float], ...] = ()
    #: (year, rate) of an observed ``<indicator>_growth`` row in percent a year, the latest one
    stated_growth: tuple[int, float] | None = None


def read_histories(ds: xr.Dataset, results_file: str | Path | None = None) -> tuple[dict[str, History], str]:
    """Each indicator's history from the baselines files named in ``ds.attrs['baselines_file']`` (only rows in
    the indicator's unit) plus the run's ``observations``; and a note naming the files that could not be
    read (empty when all were). Paths are tried as written (from the current folder), then from the
    results file's folder and its parents (a run writes them relative to the folder it ran in)."""
    from targetsim.io.baselines import load_baselines
    from targetsim.io.netcdf import locate_recorded_file

    units = dict(zip(ds["indicator"].values.tolist(), ds["indicator_unit"].values.tolist()))
    fractions = {ind for ind in units if fraction_valued(ds.isel(scenario=0), ind)}
    observed: dict[str, dict[int, float]] = {ind: {} for ind in units}
    assumed: dict[str, dict[int, float]] = {ind: {} for ind in units}
    stated: dict[str, tuple[int, float]] = {}
    unread = []
    for name in filter(None, (p.strip() for p in str(ds.attrs.get("baselines_file", "")).split(";"))):
        path = locate_recorded_file(name, results_file)
        if path is None:
            unread.append(f"{name} (not found)")
            continue
        try:
            table = load_baselines(path)
        except TargetsimError as exc:
            unread.append(f"{name} ({exc})")
            continue
        for row in table.rows:
            if row.indicator in units and row.unit == units[row.indicator]:
                # a share simulated as a fraction may be written in percentage points in its baselines
                value = row.value / 100 if row.indicator in fractions and row.value > 1 else row.value
                (assumed if row.is_assumption else observed)[row.indicator].setdefault(row.year, value)
            base = row.indicator.removesuffix("_growth")
            if (base != row.indicator and base in units and not row.is_assumption
                    and row.unit.startswith("percent") and row.year >= stated.get(base, (0, 0.0))[0]):
                stated[base] = (row.year, row.value / 100.0)
    for item in filter(None, (s.strip() for s in str(ds.attrs.get("observations", "")).split(";"))):
        ind, _, values = item.partition(":")
        for pair in values.split(","):
            year, _, value = pair.strip().partition("=")
            try:
                observed.setdefault(ind.strip(), {})[int(year)] = float(value)
            except ValueError:
                continue
    histories = {ind: History(tuple(sorted(observed[ind].items())),
                              tuple(sorted((y, v) for y, v in assumed[ind].items() if y not in observed[ind])),
                              stated.get(ind))
                 for ind in units}
    note = ("observed history not shown from " + "; ".join(unread)) if unread else ""
    return histories, note


def fraction_valued(sel, indicator: str) -> bool:
    """Whether the indicator is simulated as a fraction in (0, 1) (a share: unit ``fraction``, or a
    ``logit_share`` or ratio in ``percent`` whose start is below 1)."""
    unit = str(sel["indicator_unit"].sel(indicator=indicator).values)
    if unit == "fraction":
        return True
    process = str(sel["indicator_process"].sel(indicator=indicator).values)
    start = float(sel["indicator_start"].sel(indicator=indicator))
    return unit == "percent" and start < 1 and process.startswith(("logit_share", "derived: ")) and " / " in process \
        or unit == "percent" and start < 1 and process.startswith("logit_share")


# ---------------------------------------------------------------------------------------------------------------
# figures

def _threshold_marks(sel, indicator: str):
    """(kind, year, value, comparator, target id) of the targets on ``indicator`` drawn on its level scale."""
    marks = []
    start = float(sel["indicator_start"].sel(indicator=indicator))
    base = int(sel["year"].values[0])
    process = str(sel["indicator_process"].sel(indicator=indicator).values)
    counted = process.startswith(("count", "scheduled"))
    for k in np.flatnonzero(sel["target_indicator"].values == indicator):
        t = sel.isel(target=k)
        kind = str(t["target_kind"].values)
        thr = float(t["target_threshold"])
        by = int(t["target_year"])
        cmp_ = str(t["target_comparator"].values)
        tid = str(t["target"].values)
        if kind in ("level", "count_stock", "share", "first_passage"):
            marks.append(("point", by, thr, cmp_, tid))
        elif kind in ("cagr", "growth_each_year") and start > 0 and thr > -1:
            marks.append(("path", by, start * (1 + thr) ** (by - base), cmp_, tid))
        elif kind == "count_per_year" and not counted:
            marks.append(("flow", by, thr, cmp_, tid))
    return marks


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"


FIXED_MARGINS = {"left": 0.15, "right": 0.97, "top": 0.89, "bottom": 0.11}
SIGN = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "~": "≈", "~>=": "≈≥"}


def fan_chart(datasets: list[xr.Dataset] | xr.Dataset, indicator: str, *, histories: list[dict] | None = None,
              style: Style | None = None, names: list[str] | None = None, size=(5.2, 3.0)):
    """Median, 50 % and 90 % bands of ``indicator`` by year (one fan per dataset, overlaid), its observed
    history and the thresholds of the targets on it at their years (a growth target as the path it needs)."""
    datasets = [datasets] if isinstance(datasets, xr.Dataset) else list(datasets)
    style = style or figure_style()
    histories = histories or [{} for _ in datasets]
    with _rc(style) as plt:
        fig, ax = plt.subplots(figsize=size)
        fig.subplots_adjust(**FIXED_MARGINS)  # fixed margins: constrained layout would double the drawing time
        first = datasets[0].isel(scenario=0)
        if indicator not in first["indicator"].values:
            raise TargetsimError(f"indicator {indicator!r} is not in the results "
                                 f"(it has: {', '.join(first['indicator'].values.tolist()[:8])}…)")
        unit = str(first["indicator_unit"].sel(indicator=indicator).values)
        fraction = fraction_valued(first, indicator)
        scale = 100.0 if fraction else 1.0
        shown_unit = "%" if fraction else unit
        for n, ds in enumerate(datasets):
            sel = ds.isel(scenario=0)
            if indicator not in sel["indicator"].values:
                continue
            ind = sel.sel(indicator=indicator)
            years = sel["year"].values.astype(int)
            colour = PALETTE[n % len(PALETTE)]
            tag = f" ({names[n]})" if names and len(datasets) > 1 else ""
            for low, high, alpha, what in ((0.05, 0.95, 0.15, "90 %"), (0.25, 0.75, 0.3, "50 %")):
                lo, hi = _quantile(ind, low), _quantile(ind, high)
                if lo is not None and hi is not None:
                    ax.fill_between(years, lo * scale, hi * scale, color=colour, alpha=alpha, linewidth=0,
                                    label=f"{what} band{tag}" if n == 0 or len(datasets) == 1 else None)
            med = _quantile(ind, 0.5)
            if med is not None:
                ax.plot(years, med * scale, color=colour, linewidth=1.8, label=f"median{tag}")
            hist = histories[n].get(indicator) if n < len(histories) else None
            if hist is not None and n == 0:
                if hist.observed:
                    hy, hv = zip(*hist.observed)
                    ax.plot(hy, np.array(hv) * scale, "o-", color=HISTORY_COLOUR, markersize=3.5, linewidth=1,
                            label="observed")
                if hist.assumed:
                    ay, av = zip(*hist.assumed)
                    ax.plot(ay, np.array(av) * scale, "o", mfc="none", color="#777777", markersize=4,
                            label="assumed value")
            if n == 0:
                start = float(sel["indicator_start"].sel(indicator=indicator))
                for m, (what, by, value, cmp_, tid) in enumerate(_threshold_marks(sel, indicator)):
                    sign = SIGN.get(cmp_, cmp_)
                    if what == "point":
                        ax.plot([by], [value * scale], marker="_", markersize=18, mew=2.2, color=THRESHOLD_COLOUR,
                                linestyle="none", label="target threshold" if m == 0 else None)
                        ax.annotate(f"{sign} {_num(value * scale)}", (by, value * scale), textcoords="offset points",
                                    xytext=(-4, 5), ha="right", fontsize=7.5, color=THRESHOLD_COLOUR)
                    elif what == "path":
                        ax.plot([years[0], by], [start * scale, value * scale], "--", color=THRESHOLD_COLOUR,
                                linewidth=1)
                        ax.annotate(f"needed ({tid})" if len(datasets) == 1 else "needed",
                                    (by, value * scale), textcoords="offset points", xytext=(-4, 5), ha="right",
                                    fontsize=7, color=THRESHOLD_COLOUR)
                    else:
                        ax.hlines(value * scale, years[1] if len(years) > 1 else years[0], by, colors=THRESHOLD_COLOUR,
                                  linestyles="dashed", linewidth=1)
        label = style.label(str(first["indicator_label"].sel(indicator=indicator).values), indicator)
        ax.set_title(label if label != indicator else indicator, loc="left")
        ax.set_ylabel(shown_unit)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        ax.legend(fontsize=7, loc="upper left", framealpha=0.8, edgecolor="none")
    return fig


def attainment_curves(ds: xr.Dataset, targets: list[str], *, style: Style | None = None, size=(5.2, 3.4)):
    """P(the target's rule holds) with each year in place of ``by`` (``attainment_by_year``), one line per target."""
    style = style or figure_style()
    sel = ds.isel(scenario=0)
    years = sel["year"].values.astype(int)
    with _rc(style) as plt:
        fig, ax = plt.subplots(figsize=size)
        fig.subplots_adjust(**{**FIXED_MARGINS, "bottom": 0.36})
        for n, tid in enumerate(targets):
            row = sel.sel(target=tid)
            p = np.asarray(row["attainment_by_year"].values, dtype=float)
            colour = PALETTE[n % len(PALETTE)]
            ax.plot(years, p * 100, "o-", color=colour, markersize=3, linewidth=1.3,
                    label=style.label(str(row["target_label"].values), tid))
            by = int(row["target_year"])
            ax.plot([by], [float(row["attainment_probability"]) * 100], "s", color=colour, markersize=6, mfc="none")
        ax.set_ylim(-3, 103)
        ax.set_ylabel("P(met) %")
        ax.set_title("when: P(met) if the target year were each year (□: its year)", loc="left")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.45, -0.1), ncols=2)
    return fig


def growth_chart(ds: xr.Dataset, targets: list[str], observed: dict[str, float] | None = None, *,
                 style: Style | None = None):
    """Required vs median simulated average growth (and the recent observed growth) per target."""
    style = style or figure_style()
    sel = ds.isel(scenario=0)
    rows = [(tid, float(sel["required_growth"].sel(target=tid)), float(sel["baseline_growth"].sel(target=tid)),
             (observed or {}).get(tid, math.nan)) for tid in targets]
    rows = [r for r in rows if math.isfinite(r[1])]
    height = 0.9 + 0.24 * max(len(rows), 1)
    with _rc(style) as plt:
        fig, ax = plt.subplots(figsize=(5.6, height), layout="constrained")
        y = np.arange(len(rows))[::-1]
        for yy, (tid, need, sim, obs) in zip(y, rows):
            ax.plot([need * 100, sim * 100], [yy, yy], color="#bbbbbb", linewidth=1, zorder=1)
        if rows:
            ax.scatter([r[1] * 100 for r in rows], y, marker="|", s=120, color=THRESHOLD_COLOUR, label="needs",
                       zorder=3)
            ax.scatter([r[2] * 100 for r in rows], y, marker="o", s=18, color=PALETTE[0], label="simulated median",
                       zorder=3)
            obs = [(r[3] * 100, yy) for r, yy in zip(rows, y) if math.isfinite(r[3])]
            if obs:
                ax.scatter(*zip(*obs), marker="D", s=14, color=HISTORY_COLOUR, facecolors="none",
                           label="recent observed", zorder=3)
        ax.set_yticks(y, [style.label(str(sel["target_label"].sel(target=r[0]).values), r[0]) for r in rows],
                      fontsize=7)
        ax.set_xlabel("average annual growth from the base year, %/yr")
        ax.set_title("what pace: needed vs simulated", loc="left")
        ax.grid(axis="x", linewidth=0.4, alpha=0.5)
        ax.axvline(0, color="#888888", linewidth=0.6)
        ax.legend(fontsize=7, frameon=False, loc="lower right", ncols=3)
    return fig


def at_least_k_chart(ds: xr.Dataset, *, style: Style | None = None, plans: bool = False):
    """P(at least k targets met) (``plans``: every target of at least k plans met), k = 1…n."""
    style = style or figure_style()
    sel = ds.isel(scenario=0)
    values = np.asarray(sel["at_least_k_plans_attainment_probability" if plans
                            else "at_least_k_attainment_probability"].values, dtype=float)[1:]
    k = np.arange(1, values.size + 1)
    with _rc(style) as plt:
        fig, ax = plt.subplots(figsize=(5.2, 2.4), layout="constrained")
        if plans:
            ax.bar(k, values * 100, color=PALETTE[0], width=0.6)
        else:
            ax.step(k, values * 100, where="mid", color=PALETTE[0], linewidth=1.5)
            ax.fill_between(k, values * 100, step="mid", color=PALETTE[0], alpha=0.15, linewidth=0)
        ax.set_ylim(0, 103)
        ax.set_xlabel("k plans" if plans else "k targets")
        ax.set_ylabel("P(at least k) %")
        ax.set_title("every target met in at least k plans" if plans else "at least k targets met together",
                     loc="left")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    return fig


def tornado_chart(sensitivity: xr.Dataset, target: str, *, title: str = "", top: int = 8,
                  style: Style | None = None):
    """A tornado of one target of a ``targetsim sensitivity`` dataset: for its ``top`` inputs by swing, the
    probability with the input at the low and at the high end of its range (the others nominal), around the
    probability at the nominal inputs."""
    style = style or figure_style()
    row = sensitivity.sel(target=target)
    swing = np.asarray(row["tornado_swing"].values, dtype=float)
    order = [i for i in np.argsort(-np.nan_to_num(swing, nan=-1.0)) if math.isfinite(swing[i])][:top][::-1]
    nominal = float(row["nominal_probability"]) * 100
    names = [_short_input(str(sensitivity["input"].values[i])) for i in order]
    low = np.asarray(row["tornado_low_probability"].values, dtype=float)[order] * 100
    high = np.asarray(row["tornado_high_probability"].values, dtype=float)[order] * 100
    with _rc(style) as plt:
        fig, ax = plt.subplots(figsize=(5.6, 0.9 + 0.26 * max(len(order), 1)), layout="constrained")
        y = np.arange(len(order))
        ax.barh(y, low - nominal, left=nominal, color=PALETTE[1], height=0.6, label="input at its low end")
        ax.barh(y, high - nominal, left=nominal, color=PALETTE[0], height=0.6, label="input at its high end")
        ax.axvline(nominal, color=HISTORY_COLOUR, linewidth=0.8)
        ax.set_yticks(y, names, fontsize=6.5)
        ax.set_xlabel("P(met) %, the other inputs nominal")
        ax.set_title(title or f"what drives it: {target}", loc="left")
        ax.grid(axis="x", linewidth=0.4, alpha=0.5)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def _short_input(key: str) -> str:
    """An input's key without the words every key repeats (``indicators.``, ``.process``)."""
    return key.replace("indicators.", "").replace(".process.", ".")


# ---------------------------------------------------------------------------------------------------------------
# output

_NUMBER = re.compile(r"(\d+\.\d{2})\d+")
_ID = re.compile(r'\bid="([^"]+)"')


def svg_text(fig, prefix: str = "f") -> str:
    """The figure as an inline ``<svg>`` element: no XML prologue or metadata, coordinates rounded to 0.01,
    width and height left to CSS, ids prefixed with ``prefix`` so that several figures share a page."""
    import io

    mpl = require_matplotlib()
    buffer = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "targetsim"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    _Pyplotless.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = _NUMBER.sub(r"\1", text)
    text = re.sub(r"\s*\n\s*", " ", text)
    text = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r'\1', text, count=1)
    referenced = set(re.findall(r'#([^)"\s]+)[)"]', text))
    for ident in set(_ID.findall(text)):
        if ident not in referenced:  # matplotlib names every group; only references need ids
            text = text.replace(f' id="{ident}"', "")
            continue
        new = f"{prefix}-{ident}"
        text = (text.replace(f'id="{ident}"', f'id="{new}"').replace(f"#{ident})", f"#{new})")
                .replace(f'"#{ident}"', f'"#{new}"'))
    text = re.sub(r"<g>(<(?:path|use)[^<>]*/>)</g>", r"\1", text)
    text = re.sub(r"font-family: [^;\"]*", "font-family: sans-serif", text)  # the page's font
    text = re.sub(r' transform="rotate\(-0 [^)]*\)"', "", text)
    while True:  # a group holding a single group adds nothing
        shorter = re.sub(r"<g><g>((?:(?!<g>|</g>).)*)</g></g>", r"<g>\1</g>", text)
        if shorter == text:
            break
        text = shorter
    return re.sub(r">\s+<", "><", text).strip()


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`targetsim.io.netcdf.atomic_write`)."""
    from targetsim.io.netcdf import atomic_write

    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


SAVE_FORMATS = ("png", "svg", "pdf")


def save_figure(fig, path: str | Path, dpi: int = 200) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF by its suffix) atomically."""
    import io

    mpl = require_matplotlib()
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in SAVE_FORMATS:
        _Pyplotless.close(fig)
        raise TargetsimError(f"{path}: unknown figure format {path.suffix!r}; use .png, .svg or .pdf")
    buffer = io.BytesIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "targetsim"}):
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    _Pyplotless.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())


def plot_indicator(results_file: str | Path, indicator: str, output: str | Path) -> Path:
    """``targetsim plot``: one fan chart of ``indicator`` from a results file, for a slide."""
    from targetsim.io.netcdf import read_dataset

    require_matplotlib()
    ds = read_dataset(results_file)
    histories, _ = read_histories(ds, results_file)
    fig = fan_chart(ds, indicator, histories=[histories], size=(6.4, 3.8))
    return save_figure(fig, output)
