"""What each target's parameters rest on (targetsim.model.basis), and the outside view for counts and shares."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from targetsim.estimate import outside_view as ov
from targetsim.model.basis import BASES, basis_counts, indicator_bases, is_plan_pace, target_bases
from targetsim.model.scenario import FittedParameters

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

BASIS_SCENARIO = """\
name: basis
base_year: 2024
horizon: 2027
paths: 2048
seed: 3
indicators:
  fitted:
    label: F
    unit: CNY_100m
    start: 100
    process: {kind: lognormal, growth: 0.05, volatility: 0.02}
    parameters: {source: "rows f 2016-2024"}
  sourced:
    label: S
    unit: CNY_100m
    start: 100
    process: {kind: lognormal, growth: 0.05, volatility: 0.02}
    parameters: {source: "China's rate 2020-2024 (row c)", assumption: "volatility assumed"}
  assumed:
    label: A
    unit: CNY_100m
    start: 50
    process: {kind: lognormal, growth: 0.05, volatility: 0.02}
    parameters: {source: "none found", assumption: "a guess from the neighbouring province"}
  paced:
    label: P
    unit: count
    start: 0
    process: {kind: count, additions: {distribution: poisson, mean: 3.3}}
    parameters: {source: "none found", assumption: "Uninformative prior at the plan's pace (header convention)."}
  scheduled:
    label: D
    unit: count
    start: 0
    process: {kind: scheduled, schedule: {2025: 4, 2026: 4, 2027: 4}, delivery: 0.85}
    parameters: {source: "none found", assumption: "Schedule, delivery ASSUMED (header convention for scheduled counts)."}
  share_of_fitted:
    label: R
    unit: ratio
    process: {kind: ratio, numerator: fitted, denominator: assumed}
  fitted_plus_sourced:
    label: T
    unit: CNY_100m
    process: {kind: sum, terms: [fitted, sourced]}
targets:
  - {id: t_fitted, indicator: fitted, kind: level, threshold: 110, by: 2027}
  - {id: t_sourced, indicator: sourced, kind: level, threshold: 110, by: 2027}
  - {id: t_assumed, indicator: assumed, kind: level, threshold: 60, by: 2027}
  - {id: t_paced, indicator: paced, kind: cumulative, threshold: 10, by: 2027}
  - {id: t_scheduled, indicator: scheduled, kind: cumulative, threshold: 10, by: 2027}
  - {id: t_ratio, indicator: share_of_fitted, kind: level, threshold: 1.5, by: 2027}
  - {id: t_sum, indicator: fitted_plus_sourced, kind: level, threshold: 230, by: 2027}
"""


def _load(tmp_path, text):
    from targetsim.io.scenarios import load_scenario

    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    return load_scenario(tmp_path / "s.yaml")


def _with_fit(scenario, indicator, years, *, notes=(), kind="lognormal"):
    fitted = FittedParameters(kind=kind, estimates=(("growth_log_mean", 0.05, 0.01),), years=tuple(years), df=3.0,
                              notes=tuple(notes))
    return dataclasses.replace(scenario, indicators=tuple(
        dataclasses.replace(ind, fitted=fitted) if ind.id == indicator else ind for ind in scenario.indicators))


def test_each_basis_by_its_rule(tmp_path):
    sc = _with_fit(_load(tmp_path, BASIS_SCENARIO), "fitted", range(2018, 2025))
    bases = indicator_bases(sc.indicators)
    assert bases == {"fitted": "fit", "sourced": "sourced", "assumed": "assumption", "paced": "plan pace",
                     "scheduled": "assumption",           # a scheduled count's convention is not the plan's pace
                     "share_of_fitted": "assumption",     # a ratio: its weakest part's
                     "fitted_plus_sourced": "sourced"}
    assert target_bases(sc) == {"t_fitted": "fit", "t_sourced": "sourced", "t_assumed": "assumption",
                                "t_paced": "plan pace", "t_scheduled": "assumption", "t_ratio": "assumption",
                                "t_sum": "sourced"}
    counts = basis_counts(sc)
    assert list(counts) == ["basis"] and tuple(counts["basis"]) == BASES
    assert counts["basis"] == {"plan pace": 1, "assumption": 3, "sourced": 2, "outside view": 0, "pooled": 0, "fit": 1}
    # four observed values, a proxy, or a pooled fit: pooled
    assert indicator_bases(_with_fit(sc, "fitted", range(2021, 2025)).indicators)["fitted"] == "pooled"
    assert indicator_bases(_with_fit(sc, "fitted", range(2016, 2025), notes=("pooled with china_x",)).indicators)[
        "fitted"] == "pooled"
    proxy = dataclasses.replace(sc, indicators=tuple(dataclasses.replace(i, proxy_for="China's series") if
                                                     i.id == "fitted" else i for i in sc.indicators))
    assert indicator_bases(proxy.indicators)["fitted"] == "pooled"
    # the outside view wins over any text its parameters keep
    ov_fit = _with_fit(sc, "paced", (), kind="outside_view")
    assert indicator_bases(ov_fit.indicators)["paced"] == "outside view"
    assert not is_plan_pace(ov_fit.indicator_by_id["paced"])


def test_the_dataset_and_the_table_mark_each_target_s_basis(tmp_path):
    import csv
    import io

    from rich.console import Console

    import targetsim
    from targetsim.report.table import format_results, print_results

    sc = _load(tmp_path, BASIS_SCENARIO)
    ds = targetsim.run(sc, paths=2048, seed=1)
    assert ds["target_basis"].values.tolist() == ["sourced", "sourced", "assumption", "plan pace", "assumption",
                                                  "assumption", "sourced"]
    assert dict(zip(ds["indicator"].values.tolist(), ds["indicator_basis"].values.tolist()))["paced"] == "plan pace"
    rows = list(csv.DictReader(io.StringIO(format_results(ds, "csv"))))
    assert [r["basis"] for r in rows] == ds["target_basis"].values.tolist()
    console = Console(width=100, record=True, force_terminal=False)
    print_results(ds, console)
    text = console.export_text()
    assert "basis" in text and "pace" in text and "src 3" in text
    assert max(len(line) for line in text.splitlines()) <= 100


# ------------------------------------------------------------------------------------------------ counts, shares

def test_count_additions_match_the_margin_law_by_closed_form():
    """The moment match: the total additions of a gamma-Poisson count (a negative binomial, exactly) are
    met about as often as the margin law says, P(m >= 0) (the law matches two moments, not the shape:
    within 0.03 here)."""
    from scipy import stats

    for target, start, h, centre, sd, on_stock in ((30, 0, 3, 0.13, 0.156, False), (300, 167, 2, 0.18, 0.18, True),
                                                  (720, 0, 3, 0.05, 0.15, False)):
        law = ov.outside_view_count_additions(target, start, h, centre, sd, on_stock=on_stock)
        need = target - start
        shape = (law.mean / law.mean_sd) ** 2                    # total over h years: NB(shape, b/(b+h))
        b = law.mean / law.mean_sd ** 2
        p_met = stats.nbinom.sf(math.ceil(need) - 1, shape, b / (b + h))
        assert p_met == pytest.approx(stats.norm.sf(-centre / sd), abs=0.03), (target, start)
        # the total's mean and variance are the margin law's (lognormal closed form off the stock)
        mu, var = h * law.mean, h * law.mean + h * h * law.mean_sd ** 2
        if not on_stock:
            assert mu == pytest.approx(target * math.exp(h * centre + (h * sd) ** 2 / 2), rel=1e-6)
            assert var == pytest.approx(target ** 2 * math.exp(2 * h * centre + (h * sd) ** 2)
                                        * math.expm1((h * sd) ** 2), rel=1e-6)
    # a small count: its Poisson noise is wider than the margin's spread; with no floor the mean is known,
    # with the predicted margin's standard error as the floor its s.d. is that floor
    small = ov.outside_view_count_additions(5, 0, 1, 0.25, 0.23, on_stock=False)
    assert small.mean_sd == 0.0 and "already" in small.note
    assert small.mean == pytest.approx(5 * math.exp(0.25 + 0.23 ** 2 / 2), rel=1e-6)
    floored = ov.outside_view_count_additions(5, 0, 1, 0.25, 0.23, on_stock=False, mean_se=0.4)
    assert floored.mean_sd == 0.4 and floored.mean == small.mean and "standard error" in floored.note
    # a floor below the spread's share changes nothing
    wide = ov.outside_view_count_additions(720, 0, 3, 0.05, 0.15, on_stock=False)
    assert ov.outside_view_count_additions(720, 0, 3, 0.05, 0.15, on_stock=False, mean_se=1.0) == wide
    assert wide.mean_sd > 1.0


def test_a_small_outside_view_count_keeps_its_centres_uncertainty(tmp_path):
    """A count target of 3 over 2 years: the Poisson noise is wider than the outside view's spread, so the
    per-path mean's s.d. is the predicted margin's standard error mapped to the yearly mean, by the
    delta method: d/dc of ``E[target·e^{h·m}]/h`` is ``target·e^{h·c + (h·s)²/2}``, times ``se_c``
    (before, 0: the centre's uncertainty dropped)."""
    import textwrap

    text = textwrap.dedent("""\
        name: small-count
        base_year: 2025
        horizon: 2027
        paths: 1000
        seed: 3
        indicators:
          x:
            label: X
            unit: count
            start: {value: 0, assumption: test}
            process: {kind: count, additions: {distribution: poisson, mean: {outside_view: {centre: margin}}}}
        targets:
          - {id: t, indicator: x, kind: cumulative, threshold: 3, by: 2027}
        """)
    ind = _load(tmp_path, text).indicator_by_id["x"]
    centre, spread, centre_se = ov.outside_view_margin(2, "count", centre="margin")
    mean = 3 * math.exp(2 * centre + (2 * spread) ** 2 / 2) / 2
    assert ind.process.mean == pytest.approx(mean, rel=1e-6)
    implied_var = mean ** 2 * math.expm1((2 * spread) ** 2)
    assert implied_var < mean / 2                              # the count's own noise is the wider: the floor
    assert ind.process.mean_sd == pytest.approx(2 * mean * centre_se, rel=0.01)
    assert ind.process.mean_sd > 0.0
    with pytest.raises(ov.FitError):
        ov.outside_view_count_additions(0, 0, 3, 0.1, 0.1, on_stock=False)


def _count_rows(n, seed, mean_count, mean_share, sd=0.1):
    """Reference rows with a count margin of ``mean_count`` and a share margin of ``mean_share`` (h = 1..5),
    the other kinds at 0: what a count or share target's outside view must recover."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind = ("growth", "level", "count", "share")[i % 4]
        h = int(rng.choice([1, 3, 5]))
        centre = {"count": mean_count, "share": mean_share}.get(kind, 0.0)
        rows.append(ov.ReferenceRow(
            id=f"r{i}", plan=f"P{i % 30}", plan_level="city", kind=kind, binding="expected", unit="x", indicator="x",
            comparator=">=", base_year=None, base_value=None, trend_growth=None, target_value=1.0, target_year=2020,
            realised_value=1.0, realised_year=2020, met=None, horizon=h, horizon_source="test", required=None,
            margin=float(centre + sd * rng.standard_normal()), scale="log level", note="", source="test"))
    return rows


def test_a_count_and_a_share_scenario_recover_a_known_margin(tmp_path, monkeypatch):
    """From a synthetic reference class whose count targets beat their pace by 0.2/yr and share targets
    fell 0.1/yr short, a count's additions and a share's drift follow those margins (centre: margin)."""
    import targetsim

    rows = _count_rows(800, 11, 0.2, -0.1)
    fit = ov.fit_margin_model(rows, variance_model=False)
    monkeypatch.setattr(ov, "_DEFAULT", fit)
    assert fit.predict("count", "expected", "city", 3)[0] == pytest.approx(0.2, abs=0.03)
    text = """\
name: ovc
base_year: 2024
horizon: 2027
paths: 20000
seed: 2
indicators:
  c:
    label: C
    unit: count
    start: 0
    process: {kind: count, additions: {distribution: poisson, mean: {outside_view: {centre: margin}}}}
  s:
    label: S
    unit: percent
    start: 0.4
    process: {kind: logit_share, drift: {outside_view: {centre: margin}}, volatility: 0.02}
targets:
  - {id: tc, indicator: c, kind: cumulative, threshold: 60, by: 2027}
  - {id: ts, indicator: s, kind: share, threshold: 0.5, by: 2027}
"""
    sc = _load(tmp_path, text)
    c, s = sc.indicator_by_id["c"], sc.indicator_by_id["s"]
    centre, spread, _ = fit.predict("count", "expected", "city", 3)
    # the yearly mean: the target times the lognormal mean of e^{3m}, over 3 years
    assert c.process.mean == pytest.approx(60 * math.exp(3 * centre + (3 * spread) ** 2 / 2) / 3, rel=1e-6)
    assert c.process.mean == pytest.approx(60 * math.exp(0.6) / 3, rel=0.15)
    required = (math.log(0.5 / 0.5) - math.log(0.4 / 0.6)) / 3
    share_centre = fit.predict("share", "expected", "city", 3)[0]
    assert share_centre == pytest.approx(-0.1, abs=0.03)
    assert s.process.drift.mean == pytest.approx(required + share_centre)
    assert c.fitted.kind == s.fitted.kind == "outside_view"
    assert indicator_bases(sc.indicators) == {"c": "outside view", "s": "outside view"}
    ds = targetsim.run(sc, paths=20000, seed=2)
    p = dict(zip(ds["target"].values.tolist(), ds["attainment_probability"].values[0].tolist()))
    # the count meets its target about as often as the margin law says (moment match; MC s.e. ~0.003)
    assert p["tc"] == pytest.approx(float(fit.p_met("count", "expected", "city", 3)), abs=0.04)
    # the share misses by the margin on the logit scale: P(met) = P(N(-0.1·3, ·) >= 0) < 1/2
    assert p["ts"] < 0.5
    assert str(ds["fit_description"].sel(indicator="c").values).startswith("outside view: additions from")
    assert float(ds["fitted_parameter"].sel(indicator="c", fit_parameter="additions_mean")) == \
        pytest.approx(c.process.mean)


@pytest.mark.parametrize("old, new, message", [
    ("kind: count, additions: {distribution: poisson, mean: {outside_view: true}}",
     "kind: count, additions: {distribution: poisson, mean: {outside_view: true, sd: 1}}", "unknown key 'sd'"),
    ("{id: tc, indicator: c, kind: cumulative, threshold: 6, by: 2027}",
     "{id: tc, indicator: c, kind: cumulative, threshold: 6, by: 2027, comparator: '<='}", "reads a positive floor"),
])
def test_count_outside_view_errors(tmp_path, old, new, message):
    from targetsim.errors import ScenarioError

    text = """\
name: ovc
base_year: 2024
horizon: 2027
indicators:
  c:
    label: C
    unit: count
    start: 0
    process: {kind: count, additions: {distribution: poisson, mean: {outside_view: true}}}
targets:
  - {id: tc, indicator: c, kind: cumulative, threshold: 6, by: 2027}
"""
    assert old in text
    with pytest.raises(ScenarioError, match=message):
        _load(tmp_path, text.replace(old, new))


# ------------------------------------------------------------------------------------------------ shipped

@pytest.fixture(scope="module")
def catalog():
    from targetsim.report.catalog import catalog_rows

    return catalog_rows(SCENARIOS / "catalog.csv", SCENARIOS)


def test_no_shipped_indicator_is_on_the_plan_pace_prior(catalog):
    import targetsim

    for name in ("wuhan_all_plans.yaml", "hangzhou_digital_trade.yaml"):
        sc = targetsim.load_scenario(SCENARIOS / name)
        bases = indicator_bases(sc.indicators)
        assert not [i for i, b in bases.items() if b == "plan pace"], name
        # an indicator on the outside view got its parameters from it at load time
        for ind in sc.indicators:
            if bases[ind.id] == "outside view" and not ind.is_derived:
                assert ind.fitted.kind == "outside_view" and ind.parameters.source.startswith("outside view")
    assert not [r.target_id for r in catalog if r.basis == "plan pace"]
    assert sum(r.basis == "outside view" for r in catalog) >= 50


def test_the_catalog_counts_match_the_runs_bases(catalog):
    """targetsim catalog's counts (per plan, from the plans' own files) are the joint runs' target_basis."""
    import targetsim
    from targetsim.report.catalog import basis_counts as catalog_counts

    by_target = {}
    for name in ("wuhan_all_plans.yaml", "hangzhou_digital_trade.yaml"):
        by_target.update(target_bases(targetsim.load_scenario(SCENARIOS / name)))
    modelled = {r.target_id: r for r in catalog if r.status == "modelled"}
    shared = set(by_target) & set(modelled)
    assert len(shared) >= 200
    assert all(modelled[t].basis == by_target[t] for t in shared)
    counts = catalog_counts(list(modelled.values()))
    assert sum(sum(c.values()) for c in counts.values()) == len(modelled)
    for plan, by_basis in counts.items():
        ids = [t for t, r in modelled.items() if r.plan == plan]
        assert by_basis == {b: sum(modelled[t].basis == b for t in ids) for b in BASES}


# ------------------------------------------------------------------------------------------------ combining

def test_combine_normal_is_the_precision_weighted_mean():
    mean, sd = ov.combine_normal(0.10, 0.04, 0.02, 0.02)
    assert mean == pytest.approx((0.10 / 0.04 ** 2 + 0.02 / 0.02 ** 2) / (1 / 0.04 ** 2 + 1 / 0.02 ** 2))
    assert sd == pytest.approx((1 / 0.04 ** 2 + 1 / 0.02 ** 2) ** -0.5)
    assert ov.combine_normal(0.1, 0.0, 0.02, 0.02) == (0.1, 0.0)
    assert ov.combine_normal(0.1, 0.04, 0.02, 0.0) == (0.02, 0.0)


def test_a_fit_with_the_outside_view_as_its_prior(tmp_path):
    import textwrap

    import targetsim
    from targetsim.errors import ScenarioError
    from targetsim.estimate.fitting import fit

    from tests.test_fit_scenarios import BASELINES  # the same seven-year series the load-time fit tests use

    (tmp_path / "b.csv").write_text(BASELINES, encoding="utf-8")
    text = textwrap.dedent("""\
        name: fitted
        base_year: 2022
        horizon: 2025
        paths: 4096
        seed: 3
        baselines: b.csv
        indicators:
          x:
            label: X
            unit: CNY_100m
            start: baseline
            process: {fit: lognormal, prior: outside_view}
        targets:
          - {id: t, indicator: x, kind: level, threshold: 250, by: 2025}
        """)
    sc = _load(tmp_path, text)
    ind = sc.indicator_by_id["x"]
    f = fit(range(2016, 2023), [100, 109, 121, 126, 146, 158, 171], "lognormal")
    centre, spread, _ = ov.outside_view_margin(3, "level", centre="margin")
    prior = math.log(250 / 171) / 3 + centre
    # the prior's variance: the predictive spread less the volatility the simulation adds (vol²/3)
    prior_var = spread ** 2 - f.estimates["volatility"] ** 2 / 3
    mean, sd = ov.combine_normal(prior, math.sqrt(prior_var), f.estimates["log_growth"], f.std_errors["log_growth"])
    assert ind.process.growth.mean == pytest.approx(mean, rel=1e-4) and ind.process.growth.sd == pytest.approx(sd,
                                                                                                             rel=1e-3)
    # the series (7 points, s.e. ~0.01) outweighs the outside view's wide prior, which still pulls toward the target
    assert f.estimates["log_growth"] < mean < prior
    assert "prior: outside_view" in ind.fitted.describe() and indicator_bases(sc.indicators)["x"] == "fit"
    ds = targetsim.run(sc, paths=4096)
    assert float(ds["fitted_parameter"].sel(indicator="x", fit_parameter="combined_growth_log_mean")) == \
        pytest.approx(ind.process.growth.mean)
    with pytest.raises(ScenarioError, match="prior must be outside_view"):
        _load(tmp_path, text.replace("prior: outside_view", "prior: hunch"))
    # a city model names the target the prior reads: the same posterior whatever the plan's own target
    named = text.replace("prior: outside_view}", "prior: {outside_view: {target: {kind: level, threshold: 250, "
                                                 "by: 2025}}}}")
    other = named.replace("threshold: 250, by: 2025}\n", "threshold: 300, by: 2025}\n")
    assert other != named
    for variant in (named, other):
        growth = _load(tmp_path, variant).indicator_by_id["x"].process.growth
        assert growth.mean == pytest.approx(mean, rel=1e-4) and growth.sd == pytest.approx(sd, rel=1e-3)
    with pytest.raises(ScenarioError, match="names the target the outside view reads"):
        _load(tmp_path, text.replace("prior: outside_view}", "prior: {outside_view: {threshold: 250}}}"))


def test_a_short_noisy_fit_with_the_outside_view_adds_the_volatility_once(tmp_path):
    """Four points (three growths, s.e. ~0.11, volatility ~0.19): the prior of the growth mean is the outside
    view's predictive variance less the volatility's share (vol²/h), so the simulated average growth's
    variance, posterior + vol²/h, stays below the outside view's own predictive variance (the series adds
    information); the prior at the whole spread (before) gave a posterior s.d. 0.089 instead of 0.077."""
    import textwrap

    from targetsim.estimate.fitting import fit

    (tmp_path / "b.csv").write_text("indicator,year,value,unit,source,quote,assumption,notes\n" + "".join(
        f"x,{y},{v},CNY_100m,doc A,,,\n" for y, v in zip(range(2019, 2023), (100, 130, 115, 150))), encoding="utf-8")
    ind = _load(tmp_path, textwrap.dedent("""\
        name: fitted
        base_year: 2022
        horizon: 2025
        paths: 1000
        seed: 3
        baselines: b.csv
        indicators:
          x: {label: X, unit: CNY_100m, start: baseline, process: {fit: lognormal, prior: outside_view}}
        targets:
          - {id: t, indicator: x, kind: level, threshold: 250, by: 2025}
        """)).indicator_by_id["x"]
    f = fit(range(2019, 2023), [100, 130, 115, 150], "lognormal")
    _, spread, _ = ov.outside_view_margin(3, "level", centre="margin")
    vol, se = float(ind.process.volatility), f.std_errors["log_growth"]
    assert vol == pytest.approx(f.estimates["volatility"], rel=1e-5)  # the fit's (rounded to six places)
    posterior_var = 1.0 / (1.0 / (spread ** 2 - vol ** 2 / 3) + 1.0 / se ** 2)
    assert ind.process.growth.sd == pytest.approx(math.sqrt(posterior_var), rel=1e-4)
    assert ind.process.growth.sd ** 2 + vol ** 2 / 3 < spread ** 2
    assert abs(ind.process.growth.sd - 1.0 / math.sqrt(1 / spread ** 2 + 1 / se ** 2)) > 0.01  # not the old rule


def test_growth_mean_prior_sd_leaves_the_outside_views_predictive_variance_without_information():
    """The growth mean's prior plus the volatility the simulation adds is the outside view's predictive
    variance: a fit with no information (huge s.e.) leaves exactly that; never below the centre's s.e."""
    spread, vol, h, centre_se = 0.15, 0.12, 3, 0.02
    prior_sd = ov.growth_mean_prior_sd(spread, vol, h, centre_se)
    _, sd = ov.combine_normal(0.05, prior_sd, 0.3, 1e6)
    assert sd ** 2 + vol ** 2 / h == pytest.approx(spread ** 2, rel=1e-9)
    assert ov.growth_mean_prior_sd(0.1, 0.5, 1, 0.02) == 0.02        # the volatility alone is wider: the floor
    with pytest.raises(ov.FitError):
        ov.growth_mean_prior_sd(0.1, 0.1, 0, 0.02)


def test_the_combination_without_series_information_is_the_outside_view():
    """A trend of (almost) no earlier years carries no information on the growth mean: the combined
    forecast's law is then the outside view's, N(t + c, s²), so the two P(met) agree (before, the year's noise
    was added on top of the whole predictive spread: s² + σ²)."""
    rows = ov.load_reference()
    annual = [r for r in rows if r.kind == "growth" and r.horizon == 1 and r.margin is not None
              and r.plan_level == "city" and r.binding == "expected"][:3]
    assert annual
    trends = {r.id: ov.SeriesTrend(mean=0.3, sd=0.03, n=1e-12, years=()) for r in annual}
    for r, p_ov, _, p_comb in ov.combined_forecasts(rows, trends):
        assert p_comb == pytest.approx(p_ov, abs=1e-6), r.id
        assert abs(p_ov - 0.5) > 1e-3  # the margin's centre is off zero, so the agreement says something


def _annual_rows(values, *, plan_suffix="年X市政府工作报告", target=7.0, start=2001, prefix="r"):
    return [ov.ReferenceRow(
        id=f"{prefix}{k}", plan=f"{start + k}{plan_suffix}", plan_level="city", kind="growth", binding="expected",
        unit="percent", indicator="GDP growth", comparator=">=", base_year=None, base_value=None, trend_growth=None,
        target_value=target, target_year=start + k, realised_value=v, realised_year=start + k, met=int(v >= target),
        horizon=1, horizon_source="annual plan", required=math.log1p(target / 100),
        margin=math.log1p(v / 100) - math.log1p(target / 100), scale="log growth", note="", source="test")
        for k, v in enumerate(values)]


def test_series_trends_use_only_earlier_years_of_the_same_issuer():
    rows = _annual_rows([8.0, 9.0, 10.0, 7.5, 6.0, 5.0, 4.0]) + _annual_rows([1.0] * 7, plan_suffix="年Y市政府工作报告", prefix="y")
    trends = ov.series_trends(rows, min_years=3, max_years=5)
    assert "r0" not in trends and "r2" not in trends          # fewer than three earlier years
    t = trends["r3"]
    assert t.years == (2001, 2002, 2003) and t.n == 3
    assert t.mean == pytest.approx(np.mean(np.log1p([0.08, 0.09, 0.10])))
    assert t.sd == pytest.approx(np.std(np.log1p([0.08, 0.09, 0.10]), ddof=1))
    assert trends["r6"].years == (2002, 2003, 2004, 2005, 2006)   # the five before 2007, never its own year
    assert trends["r6"].mean == pytest.approx(np.mean(np.log1p([0.09, 0.10, 0.075, 0.06, 0.05])))
    assert trends["y6"].mean == pytest.approx(math.log1p(0.01)) and trends["y6"].sd == 0.0


@pytest.mark.slow
def test_the_combination_is_calibrated_on_the_reference_class():
    """Leave one plan out, on every yearly growth target with three or more earlier outcomes of the same
    issuer (benches/outside_view_combined.py): the combined forecast's mean P(met) is within two
    binomial standard errors of the share met, and it scores far better than the plan pace."""
    rows = ov.load_reference()
    result = ov.combined_forecasts(rows, ov.series_trends(rows))
    y = np.array([r.met for r, *_ in result], dtype=float)
    p = np.array([c for *_, c in result])
    assert len(y) >= 25
    assert abs(p.mean() - y.mean()) <= 2 * math.sqrt(y.mean() * (1 - y.mean()) / len(y))
    assert np.mean((p - y) ** 2) < 0.2
