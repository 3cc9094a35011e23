"""`targetsim report` (one self-contained HTML file) and `targetsim plot` (one fan chart), issue 18."""

from __future__ import annotations

import math
import re
import sys
import warnings
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

import targetsim  # noqa: E402
from targetsim.cli import main  # noqa: E402
from targetsim.errors import TargetsimError, TargetsimWarning  # noqa: E402
from targetsim.report import figures, html  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NO_FONT = figures.Style(None)


def _run(scenario: Path, out: Path, paths: int, seed: int = 11) -> Path:
    ds = targetsim.run(targetsim.load_scenario(scenario), paths=paths, seed=seed)
    targetsim.write_dataset(ds, out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    joint = folder / "joint.yaml"
    joint.write_text(f"name: tiny-joint\nplans:\n  - {ROOT / 'scenarios/base.yaml'}\n"
                     f"  - {ROOT / 'scenarios/wuhan_expo_centre.yaml'}\npaths: 5000\nseed: 7\n", encoding="utf-8")
    return {"base": _run(ROOT / "scenarios/base.yaml", folder / "base.nc", 5000),
            "pessimistic": _run(ROOT / "scenarios/base_pessimistic.yaml", folder / "pess.nc", 5000),
            "joint": _run(joint, folder / "joint.nc", 5000)}


@pytest.fixture(scope="module")
def base_html(runs):
    return html.build_report([runs["base"]], style=NO_FONT)


@pytest.fixture(scope="module")
def joint_html(runs):
    return html.build_report([runs["joint"]], style=NO_FONT)


def _quotes(ds) -> list[str]:
    return [re.search(r"「(.*)」", s).group(1) for s in ds["target_source"].values.tolist()]


# ------------------------------------------------------------------------------------------ the report's content

def test_report_embeds_its_figures_and_every_quote(runs, base_html):
    ds = targetsim.read_dataset(runs["base"])
    used = set(ds["target_indicator"].values.tolist())
    n_targets = ds.sizes["target"]
    # one fan per indicator used by a target, the at-least-k chart, the attainment curves (6 targets a
    # figure) and one pace chart (a single plan)
    expected = len(used) + 1 + math.ceil(n_targets / html.CURVES_PER_FIGURE) + 1
    assert base_html.count("<svg") == expected
    for quote in _quotes(ds):
        assert escape(quote) in base_html
    for tid in ds["target"].values.tolist():
        assert tid in base_html
    assert '<meta name=\'viewport\' content=\'width=device-width, initial-scale=1\'>' in base_html
    assert "SDG" in base_html and "0.95" in base_html  # the progress categories are explained


def _external_requests(text: str) -> list[str]:
    found = re.findall(r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?"
                       r"(?:src|href|data)\s*=\s*['\"]?\s*(?:https?:)?//", text, flags=re.I)
    found += re.findall(r"@import|url\(\s*['\"]?\s*(?:https?:)?//", text, flags=re.I)
    found += re.findall(r"<(?:script|link)\b", text, flags=re.I)  # none at all: the page needs neither
    return found


def test_report_makes_no_external_request(base_html, joint_html):
    assert _external_requests(base_html) == []
    assert _external_requests(joint_html) == []
    # the checker itself catches each kind of request
    for bad in ("<script src='https://cdn.example/x.js'></script>", '<link rel="stylesheet" href="//fonts.x/y">',
                "<img src=http://x/y.png>", "<style>@import url(https://x/y.css)</style>"):
        assert _external_requests(bad), bad


def test_summary_is_sorted_by_risk_with_marks(runs, base_html):
    ds = targetsim.read_dataset(runs["base"]).isel(scenario=0)
    p = dict(zip(ds["target"].values.tolist(), ds["attainment_probability"].values.tolist()))
    table = base_html.split("Targets by risk", 1)[1].split("</table>", 1)[0]
    # the Chinese label leads each row, the id under it
    order = re.findall(r"<span class='small id'>([a-z0-9_]+)</span>", table)
    assert sorted(order) == sorted(p)
    assert [p[t] for t in order] == sorted(p[t] for t in order)
    for tid in order:
        label = str(ds["target_label"].sel(target=tid).values)
        before, row = table.split(f"<span class='small id'>{tid}</span>", 1)
        assert before.rsplit("<tr", 1)[1].split("<td class='who'><b>", 1)[1].startswith(escape(label))
        row = row.split("</tr>", 1)[0]
        text, _ = html.mark(p[tid])
        assert f">{text}<" in row
        lower = float(ds["attainment_probability_lower"].sel(target=tid))
        assert f"<b>{p[tid] * 100:.1f} %</b><br><span class='small'>{lower * 100:.1f} %" in row
        basis = str(ds["target_basis"].sel(target=tid).values)
        assert row.startswith(f"<br><span class='small basis'>rests on: {basis}</span>")


@pytest.mark.parametrize("p, text", [(0.8, "on track"), (0.7999, "at risk"), (0.5, "at risk"), (0.4999, "off track"),
                                     (1.0, "on track"), (0.0, "off track"), (math.nan, "–")])
def test_marks_follow_the_stated_thresholds(p, text):
    assert html.mark(p)[0] == text


@pytest.mark.parametrize("observed, required, category", [
    (0.10, 0.10, "on track"), (0.095, 0.10, "on track"), (0.094, 0.10, "acceleration needed"),
    (0.05, 0.10, "acceleration needed"), (0.049, 0.10, "limited or no progress"),
    (-0.01, 0.10, "limited or no progress"),
    (-0.011, 0.10, "deterioration"), (0.05, 0.0, "at or past the target at the start"),
    (math.nan, 0.1, "no observed trend"), (0.1, math.nan, "no single pace (a per-year or cumulative rule)")])
def test_progress_categories_are_the_sdg_ratio_bands(observed, required, category):
    text, _, ratio = html.progress_category(observed, required)
    assert text == category
    if math.isfinite(observed) and required > 0:
        assert ratio == pytest.approx(observed / required)


def test_comparisons_and_ties():
    assert html.compare(10.0, ">=", 10.0, math.nan) and not html.compare(10.0, ">", 10.0, math.nan)
    assert html.compare(9.0, "~>=", 10.0, 0.1) and not html.compare(8.99, "~>=", 10.0, 0.1)
    assert html.compare(11.0, "~", 10.0, 0.1) and not html.compare(11.01, "~", 10.0, 0.1)
    assert html.compare(3.0, "<", 4.0, math.nan) and html.compare(math.nan, ">=", 1, math.nan) is None


def test_median_path_verdict_reads_the_median(runs):
    ds = targetsim.read_dataset(runs["base"])
    rows = {r.target: r for r in html.target_rows(ds, {})}
    sel = ds.isel(scenario=0)
    q = list(sel["quantile"].values).index(0.5)
    for tid, row in rows.items():
        t = sel.sel(target=tid)
        kind, thr, by = str(t["target_kind"].values), float(t["target_threshold"]), int(t["target_year"])
        if kind in ("level", "share"):
            median = float(sel["indicator_quantiles"].sel(indicator=str(t["target_indicator"].values), year=by)[q])
            assert row.median_met == (median >= thr if str(t["target_comparator"].values) == ">=" else median > thr)
        elif kind == "cagr":
            assert row.median_met == (float(t["baseline_growth"]) >= thr)
        # a level's P(X ≥ thr) is ≥ ½ exactly when its median is ≥ thr: both agree away from ½ (5 s.e.)
        se = float(t["attainment_probability_standard_error"])
        if kind in ("level", "share", "cagr") and abs(row.p - 0.5) > 5 * se:
            assert row.median_met == (row.p > 0.5), tid


def _row(**changes) -> html.Row:
    row = html.Row(target="t", label="", plan="", indicator="i", kind="growth_each_year", by=2027,
                   threshold="≥ 10.0 % every year", p=0.3, lower=0.29, upper=0.31, required=0.1, simulated=0.12,
                   observed=math.nan, observed_what="", category="no observed trend", category_css="na",
                   ratio=math.nan, median_met=True, median_text="", note="", assumed=False, proxy=False,
                   aspirational=False, source="")
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def test_a_disagreement_gets_one_sentence_saying_why():
    assert "every-year rule fails in a bad year" in html._explain(_row(), "lognormal")
    assert html._explain(_row(p=0.6), "lognormal") == ""  # median and probability agree
    assert "most paths pass it" in html._explain(_row(kind="first_passage", median_met=False, p=0.7), "lognormal")
    slower = html._explain(_row(kind="cagr", median_met=False, p=0.2, observed=0.2, simulated=0.05,
                                category="on track", category_css="good", ratio=2.0), "lognormal")
    assert "slower growth ahead" in slower
    scheduled = html._explain(_row(kind="count_stock", median_met=True, p=0.9, observed=0.0, ratio=0.0,
                                   category="limited or no progress", category_css="bad"), "scheduled: ...")
    assert "plan's schedule" in scheduled
    fall_back = html._explain(_row(kind="level", median_met=True, p=0.7, required=-0.02,
                                   category="at or past the target at the start", category_css="good"), "lognormal")
    assert "already met at the start" in fall_back


def test_failure_pairs_follow_their_definition(runs):
    full = targetsim.read_dataset(runs["base"])
    ds = full.isel(scenario=0)
    pairs = html.failure_pairs(full)
    assert pairs, "the base scenario has correlated targets"
    deps = [d for _, _, _, d, _, _ in pairs]
    assert deps == sorted(deps, reverse=True)
    for a, b, joint, dep, miss_a, miss_b in pairs:
        # independent reference: 1 − P(met) of each target, and the ratio of the definition
        assert miss_a == pytest.approx(1 - float(ds["attainment_probability"].sel(target=a)), abs=1e-9)
        assert miss_b == pytest.approx(1 - float(ds["attainment_probability"].sel(target=b)), abs=1e-9)
        assert dep == pytest.approx(joint / (miss_a * miss_b), rel=1e-6)
        assert joint >= html.MIN_JOINT_FAILURE and dep >= html.MIN_DEPENDENCE


def test_joint_run_reports_each_plan(runs, joint_html):
    ds = targetsim.read_dataset(runs["joint"]).isel(scenario=0)
    assert ds.sizes["plan"] == 2
    assert "Per plan" in joint_html and "every target met in at least k plans" in joint_html
    for plan in ds["plan"].values.tolist():
        value = float(ds["plan_joint_attainment_probability"].sel(plan=plan))
        assert f"<td>{plan}</td>" in joint_html and f"{value * 100:.2f} %" in joint_html
    for quote in _quotes(ds):
        assert escape(quote) in joint_html


def test_several_results_files_overlay_their_shared_fans(runs):
    text = html.build_report([runs["base"], runs["pessimistic"]], style=NO_FONT)
    assert "Shared indicators: fans overlaid" in text and "Comparison" in text
    a, b = (targetsim.read_dataset(runs[k]) for k in ("base", "pessimistic"))
    shared = set(a["target_indicator"].values.tolist()) & set(b["indicator"].values.tolist())
    overlay = text.split("Shared indicators", 1)[1].split("</section>", 1)[0]
    assert overlay.count("<svg") == len(shared)
    assert a.attrs["scenario_name"] in text and b.attrs["scenario_name"] in text
    assert text.count("Targets by risk") == 2
    # the difference table: every target of both runs, its difference in points, how it was paired
    from targetsim.report.compare import compare_datasets

    differences = text.split("difference in points</h3>", 1)[1].split("</table>", 1)[0]
    comparison = compare_datasets(a, b)
    assert comparison.note.split(":")[0] in text
    for d in comparison.differences:
        assert f"{d.difference * 100:+.1f}</td><td class='num'>{d.lower * 100:+.1f} – {d.upper * 100:+.1f}" \
            in differences


def test_observed_history_comes_from_the_baselines_files(runs):
    ds = targetsim.read_dataset(runs["base"])
    histories, note = figures.read_histories(ds, runs["base"])
    assert note == ""
    from targetsim.io.baselines import load_baselines

    rows = [r for r in load_baselines(ROOT / "baselines/wuhan.csv").rows
            if r.indicator == "wuhan_software_business_revenue" and not r.is_assumption and r.unit == "CNY_100m"]
    assert histories["wuhan_software_business_revenue"].observed == tuple((r.year, r.value) for r in rows)


def test_unreadable_baselines_are_skipped_with_a_note(runs, tmp_path):
    ds = targetsim.read_dataset(runs["base"])
    ds.attrs["baselines_file"] = "nowhere/missing.csv"
    moved = targetsim.write_dataset(ds, tmp_path / "moved.nc")
    text = html.build_report([moved], style=NO_FONT)
    assert "observed history not shown from nowhere/missing.csv (not found)" in text
    assert text.count("<svg") > 0


# ------------------------------------------------------------------------------------------ commands and files

def test_report_command_writes_the_file_atomically(runs, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", str(runs["base"]), "-o", str(out), "--goal-paths", "1000"])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "what it would take: wh_dt_" in result.output  # progress of the goal searches
    assert "Not computed" not in text.split("What it would take</h3>", 1)[1].split("<h3", 1)[0]
    before = out.read_bytes()

    def broken(paths, style=None, **options):
        raise TargetsimError("broken on purpose")

    monkeypatch.setattr(html, "build_report", broken)
    result = CliRunner().invoke(main, ["report", str(runs["base"]), "-o", str(out), "--no-goals"])
    assert result.exit_code == 1 and "broken on purpose" in result.output
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_report_shows_what_it_would_take_for_every_target_below_80_percent(runs):
    """The goal searches of the report are `targetsim goal`'s, with the run's seed: the same answers as
    calling it directly (common random numbers make each search deterministic)."""
    from targetsim.goal import goal, goals_for_results

    ds = targetsim.read_dataset(runs["base"])
    found = goals_for_results(ds, runs["base"], paths=2000)
    assert found.note == "" and found.seed == int(ds.attrs["seed"])
    sel = ds.isel(scenario=0)
    below = {str(t): float(p) for t, p in zip(sel["target"].values, sel["attainment_probability"].values) if p < 0.8}
    assert [t.target for t in found.targets] == list(below) and below
    for t in found.targets:
        assert [r.goal for r in t.results] == [g for g in (0.5, 0.8) if g > below[t.target]]
    first = found.targets[0].results[-1]
    direct = goal(ROOT / "scenarios/base.yaml", found.targets[0].target, first.goal, paths=2000,
                  seed=int(ds.attrs["seed"]))
    assert direct.value == first.value and direct.probability == first.probability
    text = html.build_report([runs["base"]], style=NO_FONT, goals=[found])
    section = text.split("What it would take</h3>", 1)[1].split("<h3", 1)[0]
    for t in found.targets:
        assert f"<span class='small'>{t.target}</span>" in section
        for r in t.results:
            assert escape(r.format_value(r.value) if r.reachable else "unreachable") in section


def test_report_says_why_it_did_not_compute_what_it_would_take(runs):
    from targetsim.goal import goals_for_results

    ds = targetsim.read_dataset(runs["base"])
    changed = ds.assign_attrs(scenario_sha256="0" * 64)
    assert "has changed since the run" in goals_for_results(changed, runs["base"]).note
    moved = ds.assign_attrs(scenario_file="nowhere/none.yaml")
    found = goals_for_results(moved, runs["base"])
    assert "nowhere/none.yaml) was not found" in found.note and not found.targets
    text = html.build_report([runs["base"]], style=NO_FONT, goals=[found])
    assert "Not computed: the scenario file the run names (nowhere/none.yaml)" in text
    assert "targetsim report --no-goals" in html.build_report([runs["base"]], style=NO_FONT)


def test_report_shows_what_drives_each_target_from_a_sensitivity_file(runs, tmp_path):
    pytest.importorskip("SALib")
    from targetsim.explore.sensitivity import sensitivity

    key = "indicators.wuhan_cbec_trade.process.growth.mean"
    sens = sensitivity(ROOT / "scenarios/base.yaml", inputs=[key, "indicators.wuhan_cbec_trade.process.volatility"],
                       samples=4, paths=1000)
    path = targetsim.write_dataset(sens, tmp_path / "sens.nc")
    plain = html.build_report([runs["base"]], style=NO_FONT)
    text = html.build_report([runs["base"]], style=NO_FONT, sensitivity=path)
    section = text.split("What drives it</h3>", 1)[1].split("<h3", 1)[0]
    for target in sens["target"].values.tolist():
        assert f"<span class='small id'>{target}</span>" in section
    row = sens.sel(target="wh_dt_cbec_trade_cagr", input=key)
    assert f"{float(row['sobol_total']):.2f} ± {float(row['sobol_total_conf']):.2f}" in section
    assert text.count("<svg") == plain.count("<svg") + min(html.TORNADO_FIGURES, sens.sizes["target"])
    other = targetsim.write_dataset(sens.assign_attrs(scenario_name="another"), tmp_path / "other.nc")
    with pytest.raises(TargetsimError, match="none of the results files"):
        html.build_report([runs["base"]], style=NO_FONT, sensitivity=other)
    stale = targetsim.write_dataset(sens.assign_attrs(scenario_sha256="0" * 64), tmp_path / "stale.nc")
    with pytest.raises(TargetsimError, match="scenario_sha256 differs"):
        html.build_report([runs["base"]], style=NO_FONT, sensitivity=stale)


def test_report_refuses_a_missing_or_foreign_file(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path / "none.nc")])
    assert result.exit_code == 1 and "no such results file" in result.output
    import xarray as xr

    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(tmp_path / "other.nc")
    result = CliRunner().invoke(main, ["report", str(tmp_path / "other.nc")])
    assert result.exit_code == 1 and "not a targetsim results file" in result.output


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_command_writes_a_valid_figure(runs, tmp_path, suffix):
    out = tmp_path / f"fan{suffix}"
    result = CliRunner().invoke(main, ["plot", str(runs["base"]), "--indicator", "wuhan_online_retail_sales",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    else:
        root = ET.fromstring(data)
        # titled with the Chinese label where a CJK font is installed, else with the id
        title = "网络零售额" if figures.cjk_font() else "wuhan_online_retail_sales"
        assert root.tag.endswith("svg") and title in data.decode()


def test_plot_refuses_an_unknown_indicator_or_format(runs, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(runs["base"]), "--indicator", "nope", "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 1 and "'nope' is not in the results" in result.output
    result = CliRunner().invoke(main, ["plot", str(runs["base"]), "--indicator", "wuhan_online_retail_sales",
                                       "-o", str(tmp_path / "a.bmp")])
    assert result.exit_code == 1 and "use .png, .svg or .pdf" in result.output
    assert list(tmp_path.iterdir()) == []


def test_inline_figures_are_small_and_valid_svg(runs):
    ds = targetsim.read_dataset(runs["base"])
    svg = figures.svg_text(figures.fan_chart(ds, "wuhan_online_retail_sales", style=NO_FONT), prefix="z")
    assert len(svg) < 20_000
    root = ET.fromstring(svg)
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert ids and all(i.startswith("z-") for i in ids)


# ------------------------------------------------------------------------------------------ fonts and the extra

def test_without_a_cjk_font_labels_fall_back_to_ids_with_one_warning(runs, monkeypatch):
    monkeypatch.setattr(figures, "cjk_font", lambda: None)
    monkeypatch.setattr(figures, "_warned_no_cjk", False)
    ds = targetsim.read_dataset(runs["base"])
    with pytest.warns(TargetsimWarning, match="no CJK font.*fonts-noto-cjk"):
        style = figures.figure_style()
    assert style.font is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only; and no "Glyph missing" from matplotlib
        figures.figure_style()
        svg = figures.svg_text(figures.fan_chart(ds, "wuhan_online_retail_sales", style=style))
    assert not figures.CJK.search(svg)
    assert "wuhan_online_retail_sales" in svg
    # the page itself keeps the Chinese, and says why the figures do not
    text = html.build_report([runs["base"]], style=style)
    assert "网络零售额" in text and "no CJK font was found" in text


def test_with_a_cjk_font_labels_are_chinese(runs, monkeypatch):
    name = "DejaVu Sans"  # matplotlib's own font stands in for a CJK font here
    monkeypatch.setattr(figures, "cjk_font", lambda: name)
    style = figures.figure_style()
    assert style.font == name and style.label("网络零售额", "x") == "网络零售额"
    ds = targetsim.read_dataset(runs["base"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stand-in lacks the glyphs; a real CJK font has them
        svg = figures.svg_text(figures.fan_chart(ds, "wuhan_online_retail_sales", style=style))
    assert "网络零售额" in svg


def test_cjk_lookup_finds_an_installed_family(monkeypatch):
    from matplotlib import font_manager

    entry = font_manager.fontManager.ttflist[0]
    # only non-CJK fonts installed, plus one CJK family: that family is found (whatever this machine has)
    others = [f for f in font_manager.fontManager.ttflist if f.name not in figures.CJK_FONT_NAMES
              and "CJK" not in f.name and "Han Sans" not in f.name]
    fake = [type(entry)(**{**entry.__dict__, "name": "WenQuanYi Zen Hei"})] + others
    monkeypatch.setattr(font_manager.fontManager, "ttflist", fake)
    assert figures.cjk_font() == "WenQuanYi Zen Hei"
    monkeypatch.setattr(font_manager.fontManager, "ttflist", others)
    assert figures.cjk_font() is None


def test_missing_matplotlib_names_the_extra(runs, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(TargetsimError, match=r"pip install 'targetsim\[report\]'"):
        figures.require_matplotlib()
    for args in (["report", str(runs["base"]), "-o", str(tmp_path / "r.html")],
                 ["plot", str(runs["base"]), "--indicator", "wuhan_online_retail_sales",
                  "-o", str(tmp_path / "a.png")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "targetsim[report]" in result.output
    assert list(tmp_path.iterdir()) == []


def test_report_extra_is_declared():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("matplotlib") for d in extras["report"])
    assert any(d.startswith("openpyxl") for d in extras["report"])
