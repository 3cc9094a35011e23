"""Issue 16, one definition per statistic: an indicator says when its figures are a proxy (``proxy_for``) and
on which price basis its values are (``price_basis``); a ratio or sum never mixes nominal and real parts."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

import targetsim
from tests.conftest import assert_error_at, edit_error, load_edited, lognormal, make_scenario, scenario_dict
from targetsim.errors import ScenarioError
from targetsim.model.scenario import PRICE_BASES
from targetsim.report.table import PROXY_MARK, print_results

TEXT = """\
name: basis
base_year: 2024
horizon: 2027
paths: 1000
indicators:
  cbec:
    unit: CNY_100m
    start: {value: 100.0, assumption: "test"}
    process: {kind: lognormal, growth: 0.05, volatility: 0.1}
    proxy_for: "digitally ordered trade; the series simulated is CBEC"
    price_basis: nominal
  goods:
    unit: CNY_100m
    start: {value: 400.0, assumption: "test"}
    process: {kind: lognormal, growth: 0.03, volatility: 0.1}
    price_basis: nominal
  gdp_real:
    unit: CNY_100m
    start: {value: 2000.0, assumption: "test"}
    process: {kind: lognormal, growth: 0.05, volatility: 0.05}
    price_basis: real
  share:
    process: {kind: ratio, numerator: cbec, denominator: goods}
    price_basis: not_monetary
  total:
    process: {kind: sum, terms: [cbec, goods]}
    price_basis: nominal
targets:
  - {id: t_share, indicator: share, kind: level, threshold: 0.3, by: 2027}
  - {id: t_total, indicator: total, kind: level, threshold: 550.0, by: 2027}
  - {id: t_real, indicator: gdp_real, kind: cagr, threshold: 0.04, by: 2027}
"""


def _line(text: str, needle: str) -> int:
    return next(k for k, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


def test_keys_are_parsed_with_their_defaults(tmp_path):

    scenario = load_edited(tmp_path, TEXT)
    by_id = scenario.indicator_by_id
    assert by_id["cbec"].proxy_for.startswith("digitally ordered trade") and by_id["cbec"].is_proxy
    assert by_id["goods"].proxy_for == "" and not by_id["goods"].is_proxy
    assert [by_id[i].price_basis for i in ("cbec", "gdp_real", "share", "total")] == [
        "nominal", "real", "not_monetary", "nominal"]
    plain = make_scenario(scenario_dict({"a": lognormal(100.0, 0.05)},
                                        [{"id": "t", "indicator": "a", "kind": "level", "threshold": 1, "by": 2027}]))
    assert plain.indicators[0].price_basis == "unknown" and plain.indicators[0].proxy_for == ""
    assert PRICE_BASES == ("nominal", "real", "index", "not_monetary")


def test_dataset_records_proxy_and_price_basis(tmp_path):

    ds = targetsim.run(load_edited(tmp_path, TEXT), paths=1000)
    flag = ds["indicator_is_proxy"]
    assert flag.dims == ("indicator",) and flag.dtype == np.int8
    assert list(flag.values) == [1, 0, 0, 0, 0]
    assert list(flag.attrs["flag_values"]) == [0, 1] and flag.attrs["flag_meanings"] == "direct proxy"
    assert ds["indicator_proxy_for"].values.tolist() == [
        "digitally ordered trade; the series simulated is CBEC", "", "", "", ""]
    assert ds["indicator_price_basis"].values.tolist() == ["nominal", "nominal", "real", "not_monetary", "nominal"]
    for name in ("indicator_is_proxy", "indicator_proxy_for", "indicator_price_basis"):
        assert name in ds.coords and name not in ds.data_vars  # descriptions: no digest moves


def test_dataset_round_trips_through_netcdf(tmp_path):
    from targetsim.io.netcdf import read_dataset, write_dataset


    ds = targetsim.run(load_edited(tmp_path, TEXT), paths=1000)
    out = tmp_path / "out.nc"
    write_dataset(ds, out)
    with read_dataset(out) as back:
        assert back["indicator_proxy_for"].values.tolist()[1] == ""
        assert back["indicator_price_basis"].values.tolist()[2] == "real"
        assert back["indicator_is_proxy"].values.tolist() == [1, 0, 0, 0, 0]


@pytest.mark.parametrize("derived, old, new", [
    ("share", "numerator: cbec, denominator: goods", "numerator: cbec, denominator: gdp_real"),
    ("total", "terms: [cbec, goods]", "terms: [cbec, goods, gdp_real]"),
])
def test_a_ratio_or_sum_of_nominal_and_real_parts_is_refused_at_its_line(tmp_path, derived, old, new):
    err = edit_error(tmp_path, TEXT, old, new)
    assert_error_at(err, f"indicators.{derived}", _line(TEXT, f"  {derived}:"), "mixes nominal and real")
    assert "nominal: cbec" in err.reason and "real: gdp_real" in err.reason


def test_index_and_unknown_parts_mix_with_either_basis(tmp_path):

    load_edited(tmp_path, TEXT, "    price_basis: real\n", "    price_basis: index\n")
    load_edited(tmp_path, TEXT.replace("terms: [cbec, goods]", "terms: [cbec, goods, gdp_real]"),
                "    price_basis: real\n", "")


def test_an_unknown_basis_names_the_close_match(tmp_path):
    err = edit_error(tmp_path, TEXT, "    price_basis: real\n", "    price_basis: reel\n")
    assert_error_at(err, "indicators.gdp_real.price_basis", _line(TEXT, "    price_basis: real"),
                    "unknown price basis 'reel'")
    assert "did you mean 'real'?" in err.reason
    err = edit_error(tmp_path, TEXT, "    price_basis: real\n", "    price_basis: current_prices\n")
    assert "known: nominal, real, index, not_monetary" in err.reason


def test_proxy_for_must_be_a_non_empty_text():
    for bad in ("", "  ", 1, True):
        with pytest.raises(ScenarioError, match="indicators.a.proxy_for"):
            make_scenario(scenario_dict({"a": lognormal(100.0, 0.05, proxy_for=bad)},
                                        [{"id": "t", "indicator": "a", "kind": "level", "threshold": 1, "by": 2027}]))


def test_the_table_marks_a_target_on_a_proxy(tmp_path):

    text = TEXT.replace("indicator: total", "indicator: cbec")
    ds = targetsim.run(load_edited(tmp_path, text), paths=1000)
    console = Console(width=300, record=True)   # wide enough for the id column beside the labels
    print_results(ds, console=console)
    out = console.export_text()
    mark = PROXY_MARK.strip()
    rows = {tid: next(line for line in out.splitlines() if f"│ {tid} " in line)
            for tid in ("t_total", "t_share", "t_real")}
    assert f"*{PROXY_MARK} " in rows["t_total"]
    assert f"*{PROXY_MARK} " not in rows["t_share"] and f"*{PROXY_MARK} " not in rows["t_real"]
    assert f"{mark} proxy:" in out and "indicator_proxy_for" in out
    ds = targetsim.run(load_edited(tmp_path, TEXT, "    proxy_for:", "    # proxy_for:"), paths=1000)
    console = Console(width=200, record=True)
    print_results(ds, console=console)
    assert f"{mark} proxy:" not in console.export_text()


# ------------------------------------------------------------------ audit of the shipped scenarios

MONETARY_UNIT = ("CNY", "USD", "RMB", "EUR")
PROXY_WORDS = ("proxy", "stands in", "stand in")


def _shipped():
    from tests.conftest import ROOT

    return [(path.name, targetsim.load_scenario(path)) for path in sorted((ROOT / "scenarios").glob("*.yaml"))]


@pytest.mark.parametrize("name, scenario", _shipped(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_shipped_monetary_indicator_has_a_price_basis(name, scenario):
    missing = [ind.id for ind in scenario.indicators
               if ind.unit.startswith(MONETARY_UNIT) and ind.price_basis not in ("nominal", "real")]
    assert not missing, f"{name}: monetary indicators without a nominal/real price_basis: {missing}"
    unknown = [ind.id for ind in scenario.indicators if ind.unit and ind.price_basis == "unknown"]
    assert not unknown, f"{name}: indicators with a unit but no price_basis: {unknown}"
    index = [ind.id for ind in scenario.indicators if ind.unit.startswith("index") and ind.price_basis != "index"]
    assert not index, f"{name}: index indicators not marked price_basis: index: {index}"


@pytest.mark.parametrize("name, scenario", _shipped(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_shipped_indicator_whose_parameters_cite_a_proxy_is_marked(name, scenario):
    unmarked = [ind.id for ind in scenario.indicators
                if any(w in f"{ind.parameters.source or ''} {ind.parameters.assumption or ''}".lower()
                       for w in PROXY_WORDS) and not ind.is_proxy]
    assert not unmarked, f"{name}: parameters cite a proxy but proxy_for is not set: {unmarked}"
