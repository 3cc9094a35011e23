"""City models shared by plans (``model:``), common factors, and joint runs of several plans (``plans:``)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

import targetsim
from targetsim.errors import BaselineError, ScenarioError

MODEL = """\
name: city
description: a small city for tests
baselines: ../baselines/city.csv
indicators:
  a: {unit: CNY_100m, start: baseline, process: {kind: lognormal, growth: 0.05, volatility: 0.10},
      parameters: {assumption: test}}
  b: {unit: CNY_100m, start: {value: 50, assumption: test}, process: {kind: lognormal, growth: 0.08, volatility: 0.20},
      parameters: {assumption: test}}
  c: {unit: count, start: {value: 3, assumption: test}, process: {kind: count, additions: {distribution: poisson, mean: 2}},
      parameters: {assumption: test}}
  d: {unit: fraction, process: {kind: ratio, numerator: b, denominator: a}}
  e: {unit: CNY_100m, start: {value: 10, assumption: test}, process: {kind: lognormal, growth: 0.0, volatility: 0.10},
      parameters: {assumption: test}}
factors:
  cycle: {label: city cycle, loadings: {a: 0.6, b: 0.5}, assumption: test loadings}
correlations:
  - [a, e, 0.3]
"""

PLAN_ONE = """\
name: plan-one
model: ../models/city.yaml
base_year: 2024
horizon: 2027
paths: 40000
seed: 11
targets:
  - {id: t_a, indicator: a, kind: level, threshold: 115, by: 2027}
  - {id: t_d, indicator: d, kind: level, threshold: 0.6, by: 2027}
"""

PLAN_TWO = """\
name: plan-two
model: ../models/city.yaml
base_year: 2024
horizon: 2027
paths: 40000
seed: 12
targets:
  - {id: t_c, indicator: c, kind: count_stock, threshold: 9, by: 2027}
  - {id: t_b, indicator: b, kind: level, threshold: 60, by: 2026}
"""

JOINT = """\
name: city-all
plans: [one.yaml, two.yaml]
paths: 40000
seed: 13
"""


def write_city(root: Path, model: str = MODEL, one: str = PLAN_ONE, two: str = PLAN_TWO, joint: str = JOINT,
               baselines: str = "indicator,year,value,unit,source\na,2024,100,CNY_100m,test row\n") -> Path:
    (root / "models").mkdir(exist_ok=True)
    (root / "plans").mkdir(exist_ok=True)
    (root / "baselines").mkdir(exist_ok=True)
    (root / "models" / "city.yaml").write_text(model, encoding="utf-8")
    (root / "plans" / "one.yaml").write_text(one, encoding="utf-8")
    (root / "plans" / "two.yaml").write_text(two, encoding="utf-8")
    (root / "plans" / "both.yaml").write_text(joint, encoding="utf-8")
    (root / "baselines" / "city.csv").write_text(baselines, encoding="utf-8")
    return root / "plans"


def ids(scenario) -> list[str]:
    return [ind.id for ind in scenario.indicators]


def test_a_plan_simulates_only_what_its_targets_need(tmp_path):
    plans = write_city(tmp_path)
    one = targetsim.load_scenario(plans / "one.yaml")
    assert ids(one) == ["a", "b", "d"]             # d's parts come along; c and e are not needed
    assert one.correlations == ()                  # the pair (a, e) went with e
    assert [f.loadings for f in one.factors] == [(("a", 0.6), ("b", 0.5))]
    assert one.model.resolve() == (tmp_path / "models" / "city.yaml").resolve()
    assert one.indicator_by_id["a"].start.value == 100.0   # the model's baselines resolve the start
    two = targetsim.load_scenario(plans / "two.yaml")
    assert ids(two) == ["b", "c"]
    assert [f.loadings for f in two.factors] == [(("b", 0.5),)]


def test_the_scenario_hash_covers_the_model(tmp_path):
    plans = write_city(tmp_path)
    before = targetsim.load_scenario(plans / "one.yaml").sha256
    (tmp_path / "models" / "city.yaml").write_text(MODEL.replace("growth: 0.05", "growth: 0.06"), encoding="utf-8")
    assert targetsim.load_scenario(plans / "one.yaml").sha256 != before


def test_a_plan_may_not_define_a_model_indicator_again(tmp_path):
    plan = PLAN_ONE + textwrap.dedent("""\
        indicators:
          a: {unit: CNY_100m, start: {value: 1, assumption: x}, process: {kind: lognormal, growth: 0.2, volatility: 0.1}}
        """)
    plans = write_city(tmp_path, one=plan)
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "one.yaml")
    text = str(err.value)
    assert "one.yaml" in text and "indicators.a" in text and "city.yaml, line 5" in text
    assert "one indicator, one definition" in text


@pytest.mark.parametrize("extra, key", [
    ("observations:\n  a: {2025: 105}\n", "observations.a"),
    ("correlations:\n  - [a, b, 0.2]\n", "correlations[0]"),
    ("factors:\n  f: {loadings: {a: 0.1}, assumption: x}\n", "factors"),
])
def test_a_plan_leaves_the_city_s_shocks_and_data_to_the_model(tmp_path, extra, key):
    plans = write_city(tmp_path, one=PLAN_ONE + extra)
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "one.yaml")
    assert key in str(err.value) and "model" in str(err.value)


def test_a_plan_adds_its_own_indicators_and_baselines(tmp_path):
    plan = PLAN_ONE.replace("targets:\n", textwrap.dedent("""\
        baselines: own.csv
        indicators:
          own: {unit: count, start: baseline, process: {kind: count, additions: {distribution: poisson, mean: 1}},
                parameters: {assumption: x}}
        correlations: []
        targets:
          - {id: t_own, indicator: own, kind: count_stock, threshold: 8, by: 2027}
        """))
    plans = write_city(tmp_path, one=plan)
    (plans / "own.csv").write_text("indicator,year,value,unit,source\nown,2024,5,count,plan row\n", encoding="utf-8")
    one = targetsim.load_scenario(plans / "one.yaml")
    assert ids(one) == ["a", "b", "d", "own"]
    assert [p.name for p in one.baseline_files] == ["city.csv", "own.csv"]
    assert one.indicator_by_id["own"].start.value == 5.0


def test_two_baselines_files_that_disagree_are_an_error(tmp_path):
    plan = PLAN_ONE.replace("targets:\n", "baselines: own.csv\ntargets:\n")
    plans = write_city(tmp_path, one=plan)
    (plans / "own.csv").write_text("indicator,year,value,unit,source\na,2024,101,CNY_100m,other row\n",
                                   encoding="utf-8")
    with pytest.raises(BaselineError) as err:
        targetsim.load_scenario(plans / "one.yaml")
    assert "own.csv" in str(err.value) and "city.csv, line 2" in str(err.value)


def test_a_variant_of_a_plan_may_change_a_model_indicator(tmp_path):
    plans = write_city(tmp_path)
    (plans / "low.yaml").write_text("extends: one.yaml\nname: low\nindicators:\n  a: {process: {growth: 0.01}}\n",
                                    encoding="utf-8")
    low = targetsim.load_scenario(plans / "low.yaml")
    assert low.indicator_by_id["a"].process.growth.mean == pytest.approx(0.01)
    assert "low.yaml" in low.indicator_by_id["a"].parameters.assumption  # provenance follows the value
    assert ids(low) == ["a", "b", "d"]


def test_model_errors_name_the_model_file(tmp_path):
    plans = write_city(tmp_path, model=MODEL + "targets: []\n")
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "one.yaml")
    assert "city.yaml" in str(err.value) and "belong to a plan" in str(err.value)
    plans = write_city(tmp_path, model=MODEL.replace("volatility: 0.20", "volatility: -0.20"))
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "two.yaml")
    assert "city.yaml:7" in str(err.value) and "indicators.b.process.volatility" in str(err.value)
    plans = write_city(tmp_path, one=PLAN_ONE.replace("../models/city.yaml", "../models/town.yaml"))
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "one.yaml")
    assert "one.yaml:2" in str(err.value) and "town.yaml is not found" in str(err.value)


# --- factors: closed forms ---------------------------------------------------------------------

def _two_levels(factors: str, pairs: str = "") -> str:
    head = textwrap.dedent("""\
        name: factor-test
        base_year: 2024
        horizon: 2027
        paths: 200000
        seed: 5
        indicators:
          a: {start: {value: 100, assumption: t}, process: {kind: lognormal, growth: 0.05, volatility: 0.10}}
          b: {start: {value: 50, assumption: t}, process: {kind: lognormal, growth: 0.08, volatility: 0.20}}
        targets:
          - {id: ta, indicator: a, kind: level, threshold: 112, by: 2027}
          - {id: tb, indicator: b, kind: level, threshold: 62, by: 2027}
        """)
    return head + factors + "\n" + pairs + "\n"


def _orthant(rho: float) -> tuple[float, float, float]:
    """P(a ≥ 112), P(b ≥ 62) and both, for ln X_T ~ N(ln x0 + 3 ln(1+g), 3σ²) with correlation rho."""
    za = (math.log(112) - math.log(100) - 3 * math.log(1.05)) / (0.10 * math.sqrt(3))
    zb = (math.log(62) - math.log(50) - 3 * math.log(1.08)) / (0.20 * math.sqrt(3))
    both = float(multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([-za, -zb]))
    return float(norm.sf(za)), float(norm.sf(zb)), both


@pytest.mark.parametrize("factors, pairs, rho", [
    ("factors:\n  cycle: {loadings: {a: 0.8, b: 0.7}, assumption: t}", "", 0.8 * 0.7),
    ("factors:\n  cycle: {loadings: {a: 0.8, b: -0.5}, assumption: t}", "correlations: [[a, b, 0.4]]",
     -0.8 * 0.5 + math.sqrt(1 - 0.64) * math.sqrt(1 - 0.25) * 0.4),
    ("factors:\n  f1: {loadings: {a: 0.6}, assumption: t}\n  f2: {loadings: {a: 0.3, b: 0.9}, assumption: t}", "",
     0.3 * 0.9),
])
def test_a_common_factor_correlates_shocks_as_its_loadings_say(tmp_path, factors, pairs, rho):
    path = tmp_path / "f.yaml"
    path.write_text(_two_levels(factors, pairs), encoding="utf-8")
    ds = targetsim.run(targetsim.load_scenario(path))
    pa, pb, both = _orthant(rho)
    n = 200_000
    p = ds.attainment_probability.values[0]
    assert abs(p[0] - pa) < 5 * math.sqrt(pa * (1 - pa) / n)
    assert abs(p[1] - pb) < 5 * math.sqrt(pb * (1 - pb) / n)
    joint = float(ds.joint_attainment_probability.values[0])
    assert abs(joint - both) < 5 * math.sqrt(both * (1 - both) / n)
    # and the run without the factor is measurably different (the check can fail)
    independent = pa * pb
    assert abs(both - independent) > 10 * math.sqrt(both * (1 - both) / n)


@pytest.mark.parametrize("factors, message", [
    ("factors:\n  cycle: {loadings: {a: 0.8, b: 1.2}, assumption: t}", "must be at most 1"),
    ("factors:\n  f1: {loadings: {a: 0.8}, assumption: t}\n  f2: {loadings: {a: 0.8}, assumption: t}", "add up to 1.28"),
    ("factors:\n  cycle: {loadings: {a: 0.8, z: 0.1}, assumption: t}", "unknown indicator 'z'"),
    ("factors:\n  cycle: {loadings: {a: 0.8}}", "needs a 'source'"),
])
def test_bad_factors_are_errors_at_their_line(tmp_path, factors, message):
    path = tmp_path / "f.yaml"
    path.write_text(_two_levels(factors), encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(path)
    assert message in str(err.value) and "f.yaml:" in str(err.value) and "factors" in str(err.value)


# --- which observations a plan keeps -----------------------------------------------------------

def test_an_observation_tied_to_a_kept_indicator_is_kept_and_no_other(tmp_path):
    model = MODEL + "observations:\n  e: {2025: 11}\n"
    plans = write_city(tmp_path, model=model)
    one = targetsim.load_scenario(plans / "one.yaml")        # a is tied to e by the pair (a, e)
    assert "e" in ids(one) and [o[0] for o in one.observations] == ["e"]
    assert [(c.a, c.b) for c in one.correlations] == [("a", "e")]
    two = targetsim.load_scenario(plans / "two.yaml")        # b and c: e's shocks are independent of them
    assert "e" not in ids(two) and two.observations == ()


# --- joint runs ---------------------------------------------------------------------------------

def test_a_joint_run_holds_every_plan_s_targets(tmp_path):
    plans = write_city(tmp_path)
    both = targetsim.load_scenario(plans / "both.yaml")
    assert [(t.id, t.plan) for t in both.targets] == [("t_a", "plan-one"), ("t_d", "plan-one"),
                                                       ("t_c", "plan-two"), ("t_b", "plan-two")]
    assert ids(both) == ["a", "b", "c", "d"]
    assert (both.base_year, both.horizon, both.seed, both.paths) == (2024, 2027, 13, 40000)
    assert both.plans == ("plan-one", "plan-two")


def test_each_target_has_the_same_probability_in_its_plan_and_in_the_joint_run(tmp_path):
    plans = write_city(tmp_path)
    joint = targetsim.run(targetsim.load_scenario(plans / "both.yaml"))
    alone = {}
    for name in ("one", "two"):
        ds = targetsim.run(targetsim.load_scenario(plans / f"{name}.yaml"))
        alone.update(zip(ds.target.values.tolist(), ds.attainment_probability.values[0].tolist()))
    n = 40_000
    for target, p in zip(joint.target.values.tolist(), joint.attainment_probability.values[0].tolist()):
        q = alone[target]
        assert abs(p - q) < 5 * math.sqrt(q * (1 - q) * 2 / n), target


@pytest.mark.parametrize("edit, message", [
    (lambda one, two: (one, two.replace("base_year: 2024", "base_year: 2023")), "share one base year"),
    (lambda one, two: (one, two.replace("name: plan-two", "name: plan-one")), "two plans are named 'plan-one'"),
    (lambda one, two: (one, two.replace("model: ../models/city.yaml\n", "")), "names no city model"),
    (lambda one, two: (one, two.replace("id: t_c", "id: t_a")), "duplicate target id 't_a'"),
])
def test_joint_run_errors(tmp_path, edit, message):
    one, two = edit(PLAN_ONE, PLAN_TWO)
    plans = write_city(tmp_path, one=one, two=two)
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "both.yaml")
    assert message in str(err.value)


def test_a_joint_run_refuses_its_own_indicators(tmp_path):
    plans = write_city(tmp_path, joint=JOINT + "indicators: {}\n")
    with pytest.raises(ScenarioError) as err:
        targetsim.load_scenario(plans / "both.yaml")
    assert "both.yaml:5" in str(err.value) and "takes its indicators and targets from its plans" in str(err.value)


def test_the_joint_run_is_the_same_for_any_threads(tmp_path):
    plans = write_city(tmp_path)
    scenario = targetsim.load_scenario(plans / "both.yaml")
    a = targetsim.run(scenario, paths=5000, threads=1)
    b = targetsim.run(scenario, paths=5000, threads=2)
    np.testing.assert_array_equal(a.attainment_probability.values, b.attainment_probability.values)


def test_plan_joint_and_at_least_k_plans_against_closed_forms(tmp_path):
    """Four independent log-normal levels in two plans: a plan is met with the product of its
    targets' probabilities, and 'at least k plans' follows the Poisson-binomial law of the two."""
    lines = ["name: plans-closed-form", "base_year: 2024", "horizon: 2027", "paths: 200000", "seed: 8", "indicators:"]
    specs = {"a": (100, 0.05, 0.10, 112), "b": (50, 0.08, 0.20, 62), "c": (10, 0.02, 0.15, 10.5),
             "d": (7, 0.00, 0.05, 6.8)}
    for name, (x0, g, vol, _) in specs.items():
        lines.append(f"  {name}: {{start: {{value: {x0}, assumption: t}}, "
                     f"process: {{kind: lognormal, growth: {g}, volatility: {vol}}}}}")
    lines.append("targets:")
    for name, plan in zip(specs, ["p1", "p1", "p2", "p2"]):
        lines.append(f"  - {{id: t{name}, indicator: {name}, kind: level, threshold: {specs[name][3]}, "
                     f"by: 2027, plan: {plan}}}")
    path = tmp_path / "p.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = targetsim.run(targetsim.load_scenario(path))
    exact = {}
    for name, (x0, g, vol, thr) in specs.items():
        exact[name] = float(norm.sf((math.log(thr / x0) - 3 * math.log1p(g)) / (vol * math.sqrt(3))))
    p1, p2 = exact["a"] * exact["b"], exact["c"] * exact["d"]
    n = 200_000
    got = ds.plan_joint_attainment_probability.sel(scenario="plans-closed-form")
    assert list(ds.plan.values) == ["p1", "p2"] and list(ds.target_plan.values) == ["p1", "p1", "p2", "p2"]
    for plan, p in (("p1", p1), ("p2", p2)):
        assert abs(float(got.sel(plan=plan)) - p) < 5 * math.sqrt(p * (1 - p) / n)
    at_least = ds.at_least_k_plans_attainment_probability.values[0]
    expected = [1.0, 1 - (1 - p1) * (1 - p2), p1 * p2]
    assert at_least[0] == 1.0
    for k in (1, 2):
        assert abs(at_least[k] - expected[k]) < 5 * math.sqrt(expected[k] * (1 - expected[k]) / n)
    assert float(ds.joint_attainment_probability.values[0]) == pytest.approx(at_least[2], abs=0)
    lower = ds.plan_joint_attainment_probability_lower.values[0]
    upper = ds.plan_joint_attainment_probability_upper.values[0]
    assert np.all(lower < got.values) and np.all(got.values < upper)


def test_a_single_plan_is_its_own_group(tmp_path):
    plans = write_city(tmp_path)
    ds = targetsim.run(targetsim.load_scenario(plans / "one.yaml"), paths=5000)
    assert list(ds.plan.values) == ["plan-one"]
    assert float(ds.plan_joint_attainment_probability.values[0, 0]) == float(ds.joint_attainment_probability.values[0])
    joint = targetsim.run(targetsim.load_scenario(plans / "both.yaml"), paths=5000)
    assert list(joint.plan.values) == ["plan-one", "plan-two"]
    assert joint.at_least_k_plans_attainment_probability.shape == (1, 3)
