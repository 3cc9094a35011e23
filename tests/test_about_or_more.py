"""The comparator ``~>=`` (about, or more: 左右 read as a soft floor) and the target keys ``aspirational``
and ``reading``.

``~>=`` is met when the value is at least the lower edge of the ``~`` band: ``threshold − tolerance ×
|threshold|`` (for a growth rate, that rate, compared as ``ln(1 + g)``). Closed forms for the log-normal
process (growth s.d. 0): ln X(n) ~ N(ln X0 + n ln(1+m), n·vol²). Fixed seeds; tolerances are 4.5 Monte
Carlo standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from rich.console import Console
from scipy import stats

import targetsim
from targetsim.engine.plan import build_plan
from targetsim.errors import ScenarioError
from targetsim.report.table import print_results
from tests.conftest import lognormal, make_scenario, mc_tolerance, scenario_dict

N = 200_000


def run(data: dict, paths: int = N, **kw):
    return targetsim.run(make_scenario(data), paths=paths, **kw).isel(scenario=0)


def test_level_about_or_more_matches_the_normal_tail_at_the_lower_edge():
    x0, m, vol, n, thr, tol = 100.0, 0.06, 0.12, 3, 130.0, 0.1
    ds = run(scenario_dict({"a": lognormal(x0, m, volatility=vol)}, [
        {"id": "soft", "indicator": "a", "kind": "level", "threshold": thr, "by": 2027, "comparator": "~>="},
        {"id": "soft5", "indicator": "a", "kind": "level", "threshold": thr, "by": 2027, "comparator": "~>=",
         "tolerance": 0.05},
        {"id": "hard", "indicator": "a", "kind": "level", "threshold": thr, "by": 2027}]))
    mu, sigma = math.log(x0) + n * math.log1p(m), vol * math.sqrt(n)
    for tid, t in (("soft", tol), ("soft5", 0.05)):
        expected = float(stats.norm.sf((math.log(thr * (1 - t)) - mu) / sigma))
        p = float(ds.attainment_probability.sel(target=tid))
        assert abs(p - expected) < mc_tolerance(expected, N), (tid, p, expected)
    # a soft floor is met at least as often as the hard one, and the dataset says which rule it was
    assert float(ds.attainment_probability.sel(target="soft")) > float(ds.attainment_probability.sel(target="hard"))
    assert ds.target_comparator.sel(target="soft").item() == "~>="
    assert float(ds.target_tolerance.sel(target="soft5")) == 0.05
    assert math.isnan(float(ds.target_tolerance.sel(target="hard")))


def test_cagr_about_or_more_matches_the_normal_tail_at_the_lower_edge():
    """A cagr "about 10 %" as a soft floor: met from 9 %/yr up, so growing faster is never a miss."""
    m, vol, n, g, tol = 0.12, 0.15, 3, 0.10, 0.1
    ds = run(scenario_dict({"a": lognormal(50.0, m, volatility=vol)}, [
        {"id": "soft", "indicator": "a", "kind": "cagr", "threshold": g, "by": 2027, "comparator": "~>="},
        {"id": "band", "indicator": "a", "kind": "cagr", "threshold": g, "by": 2027, "comparator": "~"}]))
    mu, sigma = n * math.log1p(m), vol * math.sqrt(n)
    edge = g - tol * abs(g)  # 9 %/yr
    expected = float(stats.norm.sf((n * math.log1p(edge) - mu) / sigma))
    p = float(ds.attainment_probability.sel(target="soft"))
    assert abs(p - expected) < mc_tolerance(expected, N), (p, expected)
    band = float(stats.norm.cdf((n * math.log1p(g + tol * g) - mu) / sigma)) - (1 - expected)
    assert abs(float(ds.attainment_probability.sel(target="band")) - band) < mc_tolerance(band, N)


def test_negative_rate_about_or_more_uses_the_absolute_threshold():
    """A decline of "about 5 %" (threshold −0.05): the lower edge is −0.055 (tolerance × |threshold|)."""
    m, vol, n, g = -0.04, 0.05, 3, -0.05
    ds = run(scenario_dict({"a": lognormal(50.0, m, volatility=vol)}, [
        {"id": "t", "indicator": "a", "kind": "cagr", "threshold": g, "by": 2027, "comparator": "~>="}]))
    expected = float(stats.norm.sf((n * math.log1p(-0.055) - n * math.log1p(m)) / (vol * math.sqrt(n))))
    assert abs(float(ds.attainment_probability.sel(target="t")) - expected) < mc_tolerance(expected, N)


@pytest.mark.parametrize("kind,threshold", [("level", 100.0), ("cagr", 0.1), ("growth_each_year", 0.1)])
def test_a_value_at_the_lower_edge_holds(kind, threshold):
    """Ties: a deterministic path that lands exactly on the lower edge meets ``~>=``, like ``~``'s low end."""
    edge = threshold * 0.9
    x0 = 90.0 if kind == "level" else 10.0
    m = 0.0 if kind == "level" else edge
    data = scenario_dict({"a": lognormal(x0, m, volatility=0.0)}, [
        {"id": "t", "indicator": "a", "kind": kind, "threshold": threshold, "by": 2027, "comparator": "~>="}],
        paths=1000)
    assert float(run(data, paths=1000).attainment_probability.sel(target="t")) == 1.0
    # a shade below the edge misses
    data["targets"][0]["tolerance"] = 0.0999
    assert float(run(data, paths=1000).attainment_probability.sel(target="t")) == 0.0


def test_about_or_more_is_packed_as_greater_or_equal_at_the_lower_edge():
    data = scenario_dict({"a": lognormal(100.0, 0.05)}, [
        {"id": "v", "indicator": "a", "kind": "level", "threshold": 200.0, "by": 2027, "comparator": "~>="},
        {"id": "r", "indicator": "a", "kind": "cagr", "threshold": 0.2, "by": 2027, "comparator": "~>=",
         "tolerance": 0.25}])
    a = build_plan(make_scenario(data)).arrays
    assert list(a["t_cmp"]) == [0, 0]  # the code of '>='
    assert a["t_thr"][0] == pytest.approx(180.0, rel=1e-9) and a["t_thr"][0] < 180.0
    assert a["t_thr"][1] == pytest.approx(math.log1p(0.15), abs=1e-9) and a["t_thr"][1] < math.log1p(0.15)


def test_tolerance_and_zero_threshold_rules_cover_about_or_more():
    base = {"a": lognormal(100.0, 0.05)}
    make_scenario(scenario_dict(base, [{"id": "t", "indicator": "a", "kind": "level", "threshold": 1.0, "by": 2027,
                                        "comparator": "~>=", "tolerance": 0.2}]))
    with pytest.raises(ScenarioError, match="non-zero threshold"):
        make_scenario(scenario_dict(base, [{"id": "t", "indicator": "a", "kind": "cagr", "threshold": 0.0,
                                            "by": 2027, "comparator": "~>="}]))
    with pytest.raises(ScenarioError, match="only applies"):
        make_scenario(scenario_dict(base, [{"id": "t", "indicator": "a", "kind": "cagr", "threshold": 0.1,
                                            "by": 2027, "tolerance": 0.2}]))


def test_aspirational_and_reading_are_recorded_and_shown():
    full = targetsim.run(make_scenario(scenario_dict({"a": lognormal(100.0, 0.05)}, [
        {"id": "strive", "indicator": "a", "kind": "cagr", "threshold": 0.1, "by": 2027, "comparator": "~>=",
         "aspirational": True, "reading": "test: a note"},
        {"id": "plain", "indicator": "a", "kind": "level", "threshold": 90.0, "by": 2027}])), paths=2000)
    ds = full.isel(scenario=0)
    flag = ds["target_is_aspirational"]
    assert flag.dtype == np.int8 and list(flag.values) == [1, 0]
    assert list(flag.attrs["flag_values"]) == [0, 1] and flag.attrs["flag_meanings"] == "binding aspirational"
    assert list(ds["target_reading_note"].values) == ["test: a note", ""]
    console = Console(width=300, record=True)   # wide enough for the id column beside the labels
    print_results(full, console=console)
    text = console.export_text()
    rows = {tid: next(line for line in text.splitlines() if f"│ {tid} " in line) for tid in ("strive", "plain")}
    assert "* (力争)" in rows["strive"] and "(力争)" not in rows["plain"] and " * " in rows["plain"]
    assert "≈≥ 10.0 %/yr (from 9.0 %/yr)" in text


def test_aspirational_must_be_a_boolean():
    with pytest.raises(ScenarioError, match="true or false"):
        make_scenario(scenario_dict({"a": lognormal(100.0, 0.05)}, [
            {"id": "t", "indicator": "a", "kind": "level", "threshold": 90.0, "by": 2027, "aspirational": "yes"}]))
