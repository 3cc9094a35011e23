"""Fitted processes in scenarios: `process: {fit: ...}` at load time, `fit --write` in place, and
the fitted block run by the engine giving the Student-t predictive it stands for."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from targetsim.api import run, run_document
from targetsim.cli import main
from targetsim.errors import ScenarioError
from targetsim.estimate.fitting import fit
from targetsim.io.scenarios import load_scenario

BASELINES = textwrap.dedent("""\
    indicator,year,value,unit,source,quote,assumption,notes
    x,2016,100,CNY_100m,doc A,,,
    x,2017,109,CNY_100m,doc A,,,
    x,2018,121,CNY_100m,doc A,,,
    x,2019,126,CNY_100m,doc A,,,
    x,2020,146,CNY_100m,doc A,,,
    x,2021,158,CNY_100m,doc A,,,
    x,2022,171,CNY_100m,doc B,,,
    """)

SCENARIO = textwrap.dedent("""\
    # a scenario whose comments must survive --write
    name: fitted
    base_year: 2022
    horizon: 2025
    paths: 20000
    seed: 3
    baselines: b.csv
    indicators:
      # the indicator's own comment
      x:
        label: X
        unit: CNY_100m
        start: baseline
        process:
          kind: lognormal   # an old guess
          growth: 0.05
          volatility: 0.02
        parameters:
          assumption: a guess
    # the targets' comment
    targets:
      - id: t
        indicator: x
        kind: cagr
        threshold: 0.08
        by: 2025
    """)


OLD_PROCESS = """\
    process:
      kind: lognormal   # an old guess
      growth: 0.05
      volatility: 0.02
"""
OLD_PARAMETERS = """\
    parameters:
      assumption: a guess
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "b.csv").write_text(BASELINES, encoding="utf-8")
    (tmp_path / "s.yaml").write_text(SCENARIO, encoding="utf-8")
    return tmp_path


def test_write_replaces_the_process_and_keeps_every_comment(project):
    res = CliRunner().invoke(main, ["fit", str(project / "b.csv"), "--indicator", "x", "--write",
                                    str(project / "s.yaml")])
    assert res.exit_code == 0, res.output
    text = (project / "s.yaml").read_text(encoding="utf-8")
    for comment in ("# a scenario whose comments must survive --write", "# the indicator's own comment",
                    "# the targets' comment"):
        assert comment in text
    assert "an old guess" not in text and "a guess" not in text
    assert "volatility: {estimate: " in text and "df: 5}" in text  # whole numbers written as integers
    sc = load_scenario(project / "s.yaml")
    ind = sc.indicator_by_id["x"]
    f = fit(range(2016, 2023), [100, 109, 121, 126, 146, 158, 171], "lognormal")
    assert ind.process.kind == "lognormal"
    assert ind.process.volatility == pytest.approx(f.estimates["volatility"], rel=1e-5)
    assert "fitted by targetsim fit" in ind.parameters.source
    # the rest of the file is unchanged, line for line
    old, new = SCENARIO.splitlines(), text.splitlines()
    assert old[:12] == new[:12] and old[-7:] == new[-7:]


def test_write_refuses_an_indicator_the_file_does_not_define(project):
    (project / "c.csv").write_text(BASELINES.replace("x,", "z,"), encoding="utf-8")
    before = (project / "s.yaml").read_text(encoding="utf-8")
    res = CliRunner().invoke(main, ["fit", str(project / "c.csv"), "--indicator", "z", "--write",
                                    str(project / "s.yaml")])
    assert res.exit_code == 1 and "no indicator z" in res.output
    assert (project / "s.yaml").read_text(encoding="utf-8") == before


def test_fit_at_load_time_records_the_fit(project):
    text = SCENARIO.replace(OLD_PROCESS + OLD_PARAMETERS, "    process: {fit: auto}\n")
    assert text != SCENARIO
    (project / "s.yaml").write_text(text, encoding="utf-8")
    sc = load_scenario(project / "s.yaml")
    ind = sc.indicator_by_id["x"]
    assert ind.fitted is not None and ind.fitted.kind == "lognormal" and len(ind.fitted.years) == 7
    ds = run(sc, paths=4096)
    assert int(ds["fit_observations"].sel(indicator="x")) == 7
    assert float(ds["fitted_parameter"].sel(indicator="x", fit_parameter="volatility")) > 0
    assert "lognormal fitted to 7 observed values" in str(ds["fit_description"].sel(indicator="x").values)
    res = CliRunner().invoke(main, ["validate", str(project / "s.yaml")])
    assert res.exit_code == 0 and "fitted x: lognormal" in res.output


@pytest.mark.parametrize("process, message", [
    ("{fit: gamma}", "not a process it can fit"),
    ("{fit: auto, until: 2030}", "no later than the base year"),
    ("{fit: auto, breaks: 2019}", "list of years"),
    ("{fit: auto, extra: 1}", "unknown key 'extra'"),
    ("{fit: logit_share}", "does not suit unit"),
])
def test_fit_at_load_time_errors_name_the_key_and_line(project, process, message):
    text = SCENARIO.replace(OLD_PROCESS, f"    process: {process}\n")
    assert text != SCENARIO
    (project / "s.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(project / "s.yaml")
    assert "s.yaml:14" in str(err.value) and "indicators.x.process" in str(err.value)


def test_a_fitted_block_gives_the_student_t_predictive():
    """Run by the engine, the fitted lognormal block reproduces the exact t predictive of a random
    walk with drift: P(ln X_H − ln x0 ≥ c) = t_{n−1} tail at (c − Hμ̂) / (s·√(H + H²/n))."""
    rng = np.random.default_rng(8)
    values = 100 * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(0.06, 0.1, 5))]))
    f = fit(np.arange(2015, 2021), values, "lognormal")
    n, h = 5, 4
    mu, s = f.estimates["log_growth"], f.estimates["volatility"]
    scale = s * math.sqrt(h + h * h / n)
    thresholds = [mu * h + k * scale for k in (-2.5, -1.0, 0.0, 1.0, 2.5)]
    doc = {"name": "t", "base_year": 2020, "horizon": 2020 + h, "paths": 200_000, "seed": 1,
           "indicators": {"x": {"label": "x", "unit": "u", "start": {"value": float(values[-1]), "source": "s"},
                                "process": dict(f.process), "parameters": f.parameters()}},
           "targets": [{"id": f"t{i}", "indicator": "x", "kind": "cagr", "threshold": math.expm1(c / h),
                        "by": 2020 + h} for i, c in enumerate(thresholds)]}
    ds = run_document(doc)
    got = ds["attainment_probability"].values[0]
    want = [stats.t.sf((c - h * mu) / scale, n - 1) for c in thresholds]
    se = np.sqrt(np.array(want) * (1 - np.array(want)) / 200_000)
    # the engine draws the growth as exactly Normal on the log scale: only Monte Carlo error remains
    assert np.all(np.abs(got - want) <= 5 * se + 1e-4), (got, want)


def test_a_fitted_count_block_runs_and_carries_the_mean_uncertainty():
    """A fitted Poisson count: the engine's stock after H years is the Poisson–gamma mixture (a
    negative binomial) that the block's mean and standard error describe."""
    years = list(range(2015, 2025))
    stock = [3, 5, 6, 9, 10, 14, 15, 15, 19, 22]
    f = fit(years, stock, "count", unit="count")
    assert f.process["additions"]["distribution"] == "poisson"
    m, s = f.process["additions"]["mean"]["mean"], f.process["additions"]["mean"]["sd"]
    h, paths = 3, 200_000
    thresholds = [25, 28, 31, 35]
    doc = {"name": "c", "base_year": 2024, "horizon": 2024 + h, "paths": paths, "seed": 5,
           "indicators": {"c": {"label": "c", "unit": "count", "start": {"value": 22, "source": "s"},
                                "process": dict(f.process), "parameters": f.parameters()}},
           "targets": [{"id": f"t{c}", "indicator": "c", "kind": "level", "threshold": c, "by": 2024 + h}
                       for c in thresholds]}
    got = run_document(doc)["attainment_probability"].values[0]
    a, b = (m / s) ** 2, m / s**2
    want = np.array([stats.nbinom.sf(c - 22 - 1, a, b / (b + h)) for c in thresholds])
    se = np.sqrt(want * (1 - want) / paths)
    assert np.all(np.abs(got - want) <= 5 * se + 1e-4), (got, want)
