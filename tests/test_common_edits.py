"""The edits people make most, tried as a new user would: each mistake gets a message that names the
cause and the fix, and provenance follows a value that a variant changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import targetsim
from targetsim.cli import main
from targetsim.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
PARENT = """\
name: parent
base_year: 2024
horizon: 2027
indicators:
  wuhan_online_retail_sales:
    start: {value: 4000, source: "bulletin 2024, p. 3"}
    process: {kind: lognormal, growth: {mean: 0.09, sd: 0.02}, volatility: 0.05}
    parameters: {source: "2019-2024 log-growth of the bulletin series"}
  wuhan_software_revenue:
    start: {value: 3000, assumption: "no 2024 figure; 2023 x 1.1"}
    process: {kind: lognormal, growth: 0.12, volatility: 0.04}
targets:
  - {id: retail, indicator: wuhan_online_retail_sales, kind: level, threshold: 5000, by: 2027}
  - {id: software, indicator: wuhan_software_revenue, kind: level, threshold: 4000, by: 2027}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def variant(tmp_path: Path, body: str) -> Path:
    write(tmp_path, "parent.yaml", PARENT)
    return write(tmp_path, "variant.yaml", "extends: parent.yaml\n" + textwrap.dedent(body))


def test_a_misspelt_indicator_in_a_variant_names_the_close_match(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_onlin_retail_sales: {process: {growth: {mean: 0.05}}}
        """)
    with pytest.raises(ScenarioError, match=r"variant.yaml:3: indicators.wuhan_onlin_retail_sales: unknown indicator "
                                            r"'wuhan_onlin_retail_sales'.*parent.yaml.*did you mean "
                                            r"'wuhan_online_retail_sales'"):
        targetsim.load_scenario(path)


def test_a_new_indicator_in_a_variant_is_still_welcome(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_parks: {start: {value: 3, assumption: x}, process: {kind: count, additions: {distribution: poisson, mean: 1}}}
        targets:
          - {id: parks, indicator: wuhan_parks, kind: count_stock, threshold: 5, by: 2027}
        """)
    assert "wuhan_parks" in targetsim.load_scenario(path).indicator_by_id


def test_changing_the_kind_in_a_variant_replaces_the_process(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_online_retail_sales:
            process: {kind: ar1_growth, long_run_growth: 0.08, persistence: 0.5, volatility: 0.05, initial_growth: 0.1}
            parameters: {assumption: "momentum: an AR(1) reading of the same series"}
        """)
    ind = targetsim.load_scenario(path).indicator_by_id["wuhan_online_retail_sales"]
    assert ind.process.kind == "ar1_growth" and ind.process.persistence == 0.5
    assert ind.parameters.assumption.startswith("momentum")


@pytest.mark.parametrize("text, where", [
    ("observations:\n  a: {2025：4290}\n", "observations.a.2025：4290"),
    ("observations:\n  a:\n    2025：4290\n", "observations.a"),
])
def test_a_full_width_colon_in_an_observation_says_so(tmp_path, text, where):
    path = write(tmp_path, "fw.yaml", textwrap.dedent("""\
        name: x
        base_year: 2024
        horizon: 2026
        indicators:
          a: {start: {value: 4000, assumption: x}, process: {kind: lognormal, growth: 0.05, volatility: 0.05}}
        targets: [{id: t, indicator: a, kind: level, threshold: 4500, by: 2026}]
        """) + text)
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(path)
    message = str(err.value)
    assert f"fw.yaml:8: {where}:" in message
    assert "full-width '：' where YAML needs ': '" in message and "'2025: 4290'" in message


def test_a_parameter_override_without_a_source_records_that_the_variant_set_it(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_online_retail_sales: {process: {volatility: 0.125}}
        """)
    ind = targetsim.load_scenario(path).indicator_by_id["wuhan_online_retail_sales"]
    assert ind.parameters.is_assumption and not ind.parameters.source
    text = ind.parameters.assumption
    assert "variant.yaml (process.volatility = 0.125)" in text
    assert "2019-2024 log-growth of the bulletin series" in text and "no longer applies" in text
    # the start was not touched: its source stands
    assert ind.start.source == "bulletin 2024, p. 3" and not ind.start.is_assumption


def test_an_override_that_states_its_source_keeps_it(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_online_retail_sales:
            process: {volatility: 0.125}
            parameters: {source: "2015-2024 series, 2020 excluded"}
        """)
    ind = targetsim.load_scenario(path).indicator_by_id["wuhan_online_retail_sales"]
    assert ind.parameters.source == "2015-2024 series, 2020 excluded" and not ind.parameters.is_assumption


def test_a_start_override_without_a_source_is_the_variants_assumption(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_online_retail_sales: {start: {value: 4290}}
        """)
    ind = targetsim.load_scenario(path).indicator_by_id["wuhan_online_retail_sales"]
    assert ind.start.value == 4290 and ind.start.is_assumption and not ind.start.source
    assert "set in" in ind.start.assumption and "variant.yaml to 4290" in ind.start.assumption
    assert "bulletin 2024, p. 3" in ind.start.assumption and "parent's start 4000" in ind.start.assumption


def test_the_dataset_and_the_table_show_it(tmp_path):
    path = variant(tmp_path, """\
        indicators:
          wuhan_online_retail_sales: {process: {volatility: 0.125}}
        """)
    out = tmp_path / "v.nc"
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(out), "--paths", "2000"], terminal_width=200)
    assert result.exit_code == 0, result.output
    ds = targetsim.read_dataset(out)
    label = str(ds.target_label.sel(target="retail").values) or "retail"
    assert f"{label} *" in result.output  # its label is marked: it rests on an assumption now
    source = str(ds.indicator_parameters_source.sel(indicator="wuhan_online_retail_sales").values)
    assert "variant.yaml (process.volatility = 0.125)" in source
    assert int(ds.indicator_parameters_are_assumption.sel(indicator="wuhan_online_retail_sales")) == 1


def test_the_shipped_pessimistic_variant_no_longer_borrows_its_parents_reasoning():
    sc = targetsim.load_scenario(ROOT / "scenarios" / "base_pessimistic.yaml")
    text = sc.indicator_by_id["wuhan_digital_ordered_trade"].parameters.provenance()
    assert "base_pessimistic.yaml (process.growth.mean = 0.17, process.volatility = 0.125)" in text
    assert "no longer applies" in text


@pytest.mark.parametrize("args", [["catalog"], ["baselines"], ["baselines", "wuhan_online_retail_sales"]])
def test_catalog_and_baselines_work_from_any_folder(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert ("modelled" in result.output) if args == ["catalog"] else ("wuhan_online_retail_sales" in result.output)


def test_baselines_of_a_scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["baselines", "--scenario", str(ROOT / "scenarios" / "base.yaml")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "wuhan.csv" in result.output


def test_project_files_not_found_name_the_option(tmp_path, monkeypatch):
    from targetsim import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "project_path", lambda relative, start=None: None)
    result = CliRunner().invoke(main, ["catalog"])
    assert result.exit_code == 1 and "pass --catalog PATH" in result.output
    result = CliRunner().invoke(main, ["baselines"])
    assert result.exit_code == 1 and "pass --dir FOLDER or --scenario FILE" in result.output
