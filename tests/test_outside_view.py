"""The outside view (targetsim.estimate.outside_view): margins, the regression, the folds, the prior."""

from __future__ import annotations

import math

import numpy as np
import pytest

from targetsim.errors import FitError
from targetsim.estimate import outside_view as ov
from targetsim.estimate.outside_view import (ReferenceRow, fit_margin_model, horizon_of, leave_one_plan_out,
                                             load_reference, margin_of, outside_view_growth)


def logit(p):
    return math.log(p / (1 - p))


# ------------------------------------------------------------------------------------------------ margins

def m(kind, unit, target, realised, *, base=None, horizon=1, comparator=">=", indicator="x"):
    return margin_of(kind=kind, unit=unit, indicator=indicator, comparator=comparator, target=target,
                     realised=realised, base=base, horizon=horizon)


def test_level_margin_is_realised_minus_required_log_growth():
    margin, required, scale, _ = m("level", "CNY_100m", 10000, 10053.58, base=5965.71, horizon=5)
    r = math.log(10000 / 5965.71) / 5
    g = math.log(10053.58 / 5965.71) / 5
    assert required == pytest.approx(r)
    assert margin == pytest.approx(g - r) == pytest.approx(math.log(10053.58 / 10000) / 5)
    assert scale == "log level"
    # no base: the margin stands (the base cancels), the required growth does not
    margin2, required2, _, _ = m("count", "count", 2000, 2728)
    assert margin2 == pytest.approx(math.log(2728 / 2000)) and required2 is None


def test_growth_rate_margin():
    margin, required, scale, _ = m("growth", "percent", 7.5, 7.7)
    assert margin == pytest.approx(math.log(1.077) - math.log(1.075))
    assert required == pytest.approx(math.log(1.075))
    assert scale == "log growth"
    # an average yearly rate over five years is already per year
    margin, _, _, _ = m("growth", "percent_per_year", 10, 9.1, horizon=5)
    assert margin == pytest.approx(math.log(1.091) - math.log(1.10))


def test_reduction_rates_count_the_indicator_fall():
    margin, required, _, note = m("growth", "percent", 3.1, 5.6,
                                  indicator="Energy intensity reduction 单位GDP能耗下降")
    assert margin == pytest.approx(-math.log(1 - 0.056) + math.log(1 - 0.031)) and margin > 0
    assert required == pytest.approx(-math.log(1 - 0.031)) and note == "reduction rate"
    # a cumulative reduction over five years, per year
    margin, _, _, _ = m("cumulative", "percent_cumulative", 20, 19.1, horizon=5, comparator="~",
                        indicator="单位国内生产总值能耗降低")
    assert margin == pytest.approx((-math.log(0.809) + math.log(0.8)) / 5) and margin < 0


def test_ceilings_flip_the_sign():
    # CPI at most 4 %, realised 4.8 %: missed
    margin, required, _, _ = m("growth", "percent", 4, 4.8, comparator="<=")
    assert margin == pytest.approx(-(math.log(1.048) - math.log(1.04))) and margin < 0
    assert required == pytest.approx(-math.log(1.04))
    # unemployment at most 5.5 %, realised 5.1 %: met, on the logit scale
    margin, _, scale, _ = m("share", "percent", 5.5, 5.1, comparator="<=")
    assert margin == pytest.approx(logit(0.055) - logit(0.051)) and margin > 0 and scale == "logit share"


def test_share_margins():
    margin, required, scale, _ = m("share", "percent", 62, 66.2, base=58.2, horizon=5)
    assert margin == pytest.approx((logit(0.662) - logit(0.62)) / 5)
    assert required == pytest.approx((logit(0.62) - logit(0.582)) / 5)
    assert scale == "logit share"
    # at 100 %: no logit, the points difference times 4 (the logit's slope at one half)
    margin, _, scale, _ = m("share", "percent_of_remaining", 100, 100)
    assert margin == 0 and scale == "points×4 share"
    margin, _, scale, _ = m("share", "percent", 100, 98, horizon=2)
    assert margin == pytest.approx(4 * (-2 / 100) / 2) and scale == "points×4 share"
    # a gain in points with a base is the share base + gain
    margin, _, scale, _ = m("cumulative", "percentage_points", 4, 7.3, base=43.2, horizon=5)
    assert margin == pytest.approx((logit(0.505) - logit(0.472)) / 5) and scale == "logit share"
    # ... and without one, the points difference times 4
    margin, _, scale, _ = m("cumulative", "percentage_points", 4, 6.2, horizon=5)
    assert margin == pytest.approx(4 * 2.2 / 100 / 5) and scale == "points×4 share"


def test_rows_without_a_margin():
    assert m("level", "USD_100m (target); realised in CNY_100m", 80, 500)[0] is None
    assert m("level", "count", 80, None)[0] is None
    assert m("cumulative", "years", 1, 1.3)[0] is None          # a gain in years needs the base
    margin, _, _, _ = m("cumulative", "years", 1, 1.59, base=76.34, horizon=5)
    assert margin == pytest.approx(math.log(77.93 / 77.34) / 5)


@pytest.mark.parametrize("plan, target_year, expected", [
    ("2019年杭州市政府工作报告", 2019, (1, "annual plan")),
    ("大数据产业发展规划(2016-2020年)", 2020, (5, "plan span")),
    ("电子商务“十二五”发展规划", 2015, (5, "five-year plan")),
    ("武汉市国民经济和社会发展第十三个五年规划纲要", 2020, (5, "five-year plan")),
    ("2018年湖北省政府工作报告 (five-year term targets to 2022)", 2022, (5, "five-year term")),
    ("国家中长期科学和技术发展规划纲要(2006-2020年)", 2020, (15, "plan span")),
    ("something else", 2020, (1, "assumed 1")),
])
def test_horizon_from_the_plan_name(plan, target_year, expected):
    assert horizon_of(None, target_year, plan) == expected
    assert horizon_of(2010, 2015, plan) == (5, "base_year")


def test_loading_reads_the_table(tmp_path):
    header = ("id,plan,plan_level,issuer,indicator,unit,kind,binding,base_year,base_value,trend_growth,target_value,"
              "target_year,comparator,realised_value,realised_year,met,target_source,target_quote,outcome_source,"
              "outcome_quote,notes\n")
    (tmp_path / "reference_targets_national.csv").write_text(
        header
        + "a,P1,national,x,GDP growth,percent,growth,expected,2012,,,7.5,2013,~,7.7,2013,1,,,,,\n"
        + "b,P1,national,x,Jobs,10k_persons,level,binding,,,,1100,2022,>=,1206,2022,,,,,,\n"
        + "c,2019年计划,city,x,Parks,count,count,,,,,65,2019,>=,71,2019,1,,,,,\n", encoding="utf-8")
    rows = load_reference(directory=tmp_path)
    assert [r.id for r in rows] == ["a", "c"]          # b has met empty
    assert rows[0].margin == pytest.approx(math.log(1.077) - math.log(1.075)) and rows[0].horizon == 1
    assert rows[1].binding == "unknown" and rows[1].source == "reference_targets_national.csv:4"
    assert len(load_reference(directory=tmp_path, include_undetermined=True)) == 3
    with pytest.raises(FitError, match="no reference rows"):
        load_reference(directory=tmp_path / "none")


def test_inconsistencies_flag_met_against_the_margin():
    rows = [row("x", "growth", margin=-0.01, met=1, comparator=">="),
            row("y", "growth", margin=-0.01, met=1, comparator="~"),
            row("z", "level", margin=0.02, met=0, comparator="<=")]
    flagged = ov.inconsistencies(rows)
    assert len(flagged) == 2 and flagged[0].startswith("x ") and flagged[1].startswith("z ")


# ------------------------------------------------------------------------------------------------ the regression

def row(id_, kind, *, margin, plan="P", binding="expected", plan_level="city", horizon=1, met=None, comparator=">="):
    return ReferenceRow(id=id_, plan=plan, plan_level=plan_level, kind=kind, binding=binding, unit="x", indicator="x",
                        comparator=comparator, base_year=None, base_value=None, trend_growth=None, target_value=1.0,
                        target_year=2020, realised_value=1.0, realised_year=2020,
                        met=int(margin >= 0) if met is None else met, horizon=horizon, horizon_source="test",
                        required=None, margin=margin, scale="log level", note="", source="test")


TRUE = {"const": 0.01, "kind[level]": 0.03, "kind[count]": 0.10, "kind[share]": -0.02, "binding": 0.02,
        "plan[national]": 0.015, "plan[sectoral]": -0.01, "ln_horizon": -0.008}


def synthetic(n=400, *, seed=7, sd=None):
    """Rows whose margins follow the model with the coefficients TRUE, spread ``sd(kind, h)``."""
    rng = np.random.default_rng(seed)
    sd = sd or (lambda kind, h: 0.02)
    rows = []
    for i in range(n):
        kind = rng.choice(["growth", "level", "count", "share", "cumulative"])
        binding = rng.choice(["expected", "binding", "unknown"], p=[0.7, 0.2, 0.1])
        level = rng.choice(["city", "provincial", "national", "sectoral"])
        h = int(rng.choice([1, 2, 3, 5, 10]))
        x = ov._covariates(kind, binding, level, h, None, None)
        mean = sum(TRUE[c] * x[c] for c in TRUE)
        rows.append(row(f"r{i}", kind, margin=float(mean + sd(kind, h) * rng.standard_normal()), plan=f"P{i % 40}",
                        binding=binding, plan_level=level, horizon=h))
    return rows


def test_regression_recovers_known_coefficients():
    fit = fit_margin_model(synthetic(), variance_model=False, residual="normal")
    assert fit.columns == tuple(TRUE)
    for name, b, se in zip(fit.columns, fit.beta, fit.se):
        assert abs(b - TRUE[name]) < 4 * se, name
    assert math.sqrt(fit.scale) == pytest.approx(0.02, rel=0.15)


def test_the_variance_model_recovers_spreads_by_family_and_horizon():
    sd = lambda kind, h: {"growth": 0.01, "share": 0.04}.get(kind, 0.1) / math.sqrt(h)  # noqa: E731
    rows = synthetic(1200, seed=3, sd=sd)
    fit = fit_margin_model(rows, residual="normal")                       # one slope in ln h
    for name, b, se in zip(fit.columns, fit.beta, fit.se):
        assert abs(b - TRUE[name]) < 4 * se, name
    assert fit.delta["growth"] == fit.delta["share"] == fit.delta["level"] == pytest.approx(-1.0, abs=0.2)
    by_family = fit_margin_model(rows, residual="normal", horizon_slope="family")
    for family in ("growth", "share", "level"):
        assert by_family.delta[family] == pytest.approx(-1.0, abs=0.3), family
    with pytest.raises(ValueError, match="horizon_slope"):
        fit_margin_model(rows, horizon_slope="kind")
    for family, kind, truth in (("growth", "growth", 0.01), ("share", "share", 0.04), ("level", "count", 0.1)):
        assert math.sqrt(fit.scale * fit.relative_variance(kind, 1)) == pytest.approx(truth, rel=0.25), family


def test_t_and_empirical_laws_and_exact_hits():
    rows = synthetic()
    t = fit_margin_model(rows, residual="t")
    assert t.df > 10                       # normal data: the estimated tails are light
    for name, b, se in zip(t.columns, t.beta, t.se):
        assert abs(b - TRUE[name]) < 4 * se, name
    emp = fit_margin_model(rows, residual="empirical")
    assert emp.residuals.size == len(rows)
    normal = fit_margin_model(rows, residual="normal")
    p_emp, p_norm = emp.p_met("level", "expected", "city", 1), normal.p_met("level", "expected", "city", 1)
    assert p_emp == pytest.approx(p_norm, abs=0.08)
    # many outcomes exactly on target: a point mass, and P(met) rises
    hits = [row(f"h{i}", "level", margin=0.0, plan=f"P{i}") for i in range(200)]
    with_hits = fit_margin_model(rows + hits, residual="empirical", exact_hits=True)
    assert with_hits.n == len(rows)
    assert with_hits.exact_hit["level"] == pytest.approx(200 / (200 + sum(r.family == "level" for r in rows)), abs=0.01)
    assert with_hits.p_met("level", "expected", "city", 1) > p_emp
    with pytest.raises(ValueError, match="residual must be"):
        fit_margin_model(rows, residual="cauchy")


# ------------------------------------------------------------------------------------------------ folds

def test_leave_one_plan_out_never_trains_on_the_held_out_plan():
    rows = synthetic(120)
    seen = []
    for plan, train, test in leave_one_plan_out(rows):
        assert test and all(r.plan == plan for r in test)
        assert all(r.plan != plan for r in train)
        assert len(train) + len(test) == len(rows)
        seen.append(plan)
    assert sorted(seen) == sorted({r.plan for r in rows})


def test_the_bench_fits_without_the_held_out_plan(monkeypatch):
    import benches.outside_view as bench

    rows = synthetic(80)
    calls = []
    real = bench.fit_margin_model

    def spy(train, **kw):
        calls.append({r.plan for r in train})
        return real(train, **kw)

    monkeypatch.setattr(bench, "fit_margin_model", spy)
    forecasts, order = bench._forecasts(rows, quick=True)
    plans = sorted({r.plan for r in rows})
    assert len(calls) == len(plans)
    for plan, trained_on in zip(plans, calls):
        assert plan not in trained_on and trained_on == set(plans) - {plan}
    assert len(order) == len(rows) and forecasts["plan pace"].tolist() == [0.5] * len(rows)


# ------------------------------------------------------------------------------------------------ the prior

def test_outside_view_growth_is_the_ols_predictive():
    rows = synthetic(150, seed=11)
    fit = fit_margin_model(rows, variance_model=False, residual="normal")
    X = np.array([[ov._covariates(r.kind, r.binding, r.plan_level, r.horizon, None, None)[c] for c in fit.columns]
                  for r in rows])
    y = np.array([r.margin for r in rows])
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    s2 = float(np.sum((y - X @ beta) ** 2) / (len(rows) - X.shape[1]))
    for kind, binding, level, h, required in (("level", "expected", "city", 5, 0.08),
                                              ("growth", "binding", "national", 1, math.log(1.065)),
                                              ("share", "unknown", "sectoral", 3, -0.01)):
        x = np.array([ov._covariates(kind, binding, level, h, None, None)[c] for c in fit.columns])
        log_mean, log_sd = outside_view_growth(required, h, kind, binding, level, fit=fit)
        assert log_mean == pytest.approx(required + float(x @ beta), abs=1e-10)
        assert log_sd == pytest.approx(math.sqrt(s2 * (1 + x @ np.linalg.solve(X.T @ X, x))), rel=1e-9)


def test_a_centre_matched_to_the_logistic_p_met():
    from scipy import stats

    rows = synthetic(200, seed=5)
    fit = fit_margin_model(rows, variance_model=False, residual="normal")
    logit = ov.fit_met_logit(rows)
    log_mean, log_sd = outside_view_growth(0.05, 3, "count", "binding", "national", fit=fit, centre="p_met",
                                           logit=logit)
    assert log_sd == pytest.approx(outside_view_growth(0.05, 3, "count", "binding", "national", fit=fit)[1])
    p = logit.p_met("count", "binding", "national", 3)
    assert stats.norm.sf(0.0, loc=log_mean - 0.05, scale=log_sd) == pytest.approx(p)
    with pytest.raises(FitError, match="centre must be"):
        outside_view_growth(0.05, 3, "count", fit=fit, centre="median")


def test_outside_view_growth_refuses_what_it_cannot_place():
    fit = fit_margin_model(synthetic(100), variance_model=False, residual="normal")
    with pytest.raises(FitError, match="kind must be"):
        outside_view_growth(0.05, 5, "rate", fit=fit)
    with pytest.raises(FitError, match="binding must be"):
        outside_view_growth(0.05, 5, "level", "soft", fit=fit)
    with pytest.raises(FitError, match="plan_level must be"):
        outside_view_growth(0.05, 5, "level", "expected", "county", fit=fit)
    with pytest.raises(FitError, match="horizon"):
        outside_view_growth(0.05, 0, "level", fit=fit)
    with pytest.raises(FitError, match="required growth"):
        outside_view_growth(float("nan"), 5, "level", fit=fit)


def test_the_shipped_reference_class_fits():
    rows = load_reference()
    assert len(rows) >= 100 and all(r.met in (0, 1) for r in rows)
    assert sum(r.margin is not None for r in rows) >= 0.9 * len(rows)
    fit = ov.default_fit()
    assert np.all(np.isfinite(fit.beta)) and np.all(fit.se > 0)
    log_mean, log_sd = outside_view_growth(0.08, 5, "level", "expected", "city")
    assert math.isfinite(log_mean) and 0 < log_sd < 0.5
    assert 0 < fit.p_met("level", "expected", "city", 5) < 1
    logit_fit = ov.fit_met_logit(rows)
    assert all(0 < logit_fit.p_met_row(r) < 1 for r in rows[:20])


# ------------------------------------------------------------------------------------------------ scenarios

SCENARIO = """\
name: ov
base_year: 2024
horizon: 2029
paths: 4096
seed: 5
indicators:
  x:
    label: X
    unit: CNY_100m
    start: 100
    process:
      kind: lognormal
      growth: {outside_view: {binding: expected, plan_level: city, centre: margin}}
      volatility: 0.02
  y:
    label: Y
    unit: CNY_100m
    start: 50
    process: {kind: lognormal, growth: 0.05, volatility: 0.02}
    parameters: {assumption: a guess}
targets:
  - {id: tx, indicator: x, kind: level, threshold: 150, by: 2029}
  - {id: ty, indicator: y, kind: level, threshold: 60, by: 2029}
"""


def _load(tmp_path, text):
    from targetsim.io.scenarios import load_scenario

    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    return load_scenario(tmp_path / "s.yaml")


def test_a_scenario_takes_its_growth_from_the_outside_view(tmp_path):
    from targetsim.api import run

    sc = _load(tmp_path, SCENARIO)
    ind = sc.indicator_by_id["x"]
    fit = ov.default_fit()
    centre, spread, _ = fit.predict("level", "expected", "city", 5)
    x = fit.vector("level", "expected", "city", 5)
    se = math.sqrt(float(x @ fit.cov @ x))
    growth = ind.process.growth
    assert growth.log
    assert growth.mean == pytest.approx(math.log(1.5) / 5 + centre)
    assert growth.sd == pytest.approx(math.sqrt(max(spread ** 2 - 0.02 ** 2 / 5, se ** 2)))
    assert ind.parameters.source.startswith("outside view: growth from")
    assert "tx (>= 150 by 2029)" in ind.parameters.source
    assert ind.parameters.is_assumption   # the reference class stands in for the city, and the volatility is assumed
    assert ind.fitted.kind == "outside_view" and ind.fitted.describe() == ind.parameters.source
    assert sc.indicator_by_id["y"].fitted is None
    # `outside_view: true` means the defaults (an expected target of a city plan)
    same = _load(tmp_path, SCENARIO.replace("{binding: expected, plan_level: city, centre: margin}",
                                            "{centre: margin}"))
    assert same.indicator_by_id["x"].process.growth == growth
    ds = run(sc, paths=4096)
    text = ds["indicator_outside_view"].values.tolist()
    assert text[0] == ind.parameters.source and text[1] == ""
    fitted = ds["fitted_parameter"].sel(indicator="x")
    assert float(fitted.sel(fit_parameter="growth_log_mean")) == pytest.approx(growth.mean)
    assert float(ds["fitted_parameter_standard_error"].sel(indicator="x", fit_parameter="growth_log_mean")) == \
        pytest.approx(se)
    assert float(ds["fitted_parameter"].sel(indicator="x", fit_parameter="growth_log_sd")) == pytest.approx(growth.sd)
    assert str(ds["fit_description"].sel(indicator="x").values) == ind.parameters.source
    assert "outside view" in str(ds["indicator_parameters_source"].sel(indicator="x").values)


def test_the_outside_view_reads_cagr_targets_ceilings_and_other_cells(tmp_path):
    fit = ov.default_fit()
    cagr = _load(tmp_path, SCENARIO.replace("{id: tx, indicator: x, kind: level, threshold: 150, by: 2029}",
                                            "{id: tx, indicator: x, kind: cagr, threshold: 0.06, by: 2029}"))
    centre, _, _ = fit.predict("growth", "expected", "city", 5)
    assert cagr.indicator_by_id["x"].process.growth.mean == pytest.approx(math.log(1.06) + centre)
    ceiling = _load(tmp_path, SCENARIO.replace("threshold: 150, by: 2029}",
                                               "threshold: 80, by: 2029, comparator: '<='}"))
    centre, _, _ = fit.predict("level", "expected", "city", 5)
    assert ceiling.indicator_by_id["x"].process.growth.mean == pytest.approx(math.log(0.8) / 5 - centre)
    national = _load(tmp_path, SCENARIO.replace("{binding: expected, plan_level: city, centre: margin}",
                                                "{binding: binding, plan_level: national, kind: count, "
                                                "centre: margin}"))
    centre, _, _ = fit.predict("count", "binding", "national", 5)
    assert national.indicator_by_id["x"].process.growth.mean == pytest.approx(math.log(1.5) / 5 + centre)


@pytest.mark.parametrize("old, new, message", [
    ("{outside_view: {binding: expected, plan_level: city, centre: margin}}", "{outside_view: {binding: soft}}",
     "binding must be one of"),
    ("{outside_view: {binding: expected, plan_level: city, centre: margin}}", "{outside_view: {plan_level: county}}",
     "plan_level must be one of"),
    ("{outside_view: {binding: expected, plan_level: city, centre: margin}}", "{outside_view: {trend: 0.1}}", "unknown key 'trend'"),
    ("{outside_view: {binding: expected, plan_level: city, centre: margin}}", "{outside_view: true, log_sd: 0.1}",
     "unknown key 'log_sd' beside 'outside_view'"),
    ("{outside_view: {binding: expected, plan_level: city, centre: margin}}", "{outside_view: yes please}", "outside_view is true"),
    ("kind: lognormal\n      growth: {outside_view", "kind: ar1_growth\n      growth: {outside_view",
     "sets a lognormal process's growth"),
    ("{id: tx, indicator: x, kind: level, threshold: 150, by: 2029}",
     "{id: tx, indicator: y, kind: level, threshold: 150, by: 2029}", "no target is on x"),
    ("{id: tx, indicator: x, kind: level, threshold: 150, by: 2029}",
     "{id: tx, indicator: x, kind: first_passage, threshold: 150, by: 2029}", "reads a level or cagr target"),
])
def test_outside_view_spelling_errors(tmp_path, old, new, message):
    from targetsim.errors import ScenarioError

    text = SCENARIO.replace(old, new)
    assert text != SCENARIO
    with pytest.raises(ScenarioError, match=message) as info:
        _load(tmp_path, text)
    assert "s.yaml" in str(info.value)


def test_the_outside_view_centred_on_the_logistic_p_met(tmp_path):
    sc = _load(tmp_path, SCENARIO.replace("plan_level: city, centre: margin}}", "plan_level: city, centre: p_met}}"))
    ind = sc.indicator_by_id["x"]
    log_mean, _ = outside_view_growth(math.log(1.5) / 5, 5, "level", "expected", "city", centre="p_met")
    assert ind.process.growth.mean == pytest.approx(log_mean)
    assert "logistic model's P(met)" in ind.parameters.source
    with pytest.raises(Exception, match="centre must be one of"):
        _load(tmp_path, SCENARIO.replace("centre: margin}}", "centre: mode}}"))
    # `outside_view: true` means the defaults: an expected target of a city plan, centred on the logistic P(met)
    default = _load(tmp_path, SCENARIO.replace("{binding: expected, plan_level: city, centre: margin}", "true"))
    assert default.indicator_by_id["x"].process.growth == ind.process.growth
