"""The shipped city models (issue 16): one definition per indicator in every plan of a city, and each
target's probability the same (within Monte Carlo error) in a joint run of all the city's plans as in
its own plan's run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml

import targetsim
from tests.conftest import ROOT

SCENARIOS = ROOT / "scenarios"
MODELS = ROOT / "models"
WUHAN_PLANS = ["wuhan_digital_trade.yaml", "wuhan_service_trade.yaml", "wuhan_consumption_centre.yaml",
               "wuhan_rd_centre.yaml", "wuhan_expo_centre.yaml"]
# a plan's variants (extends) may change a model indicator on purpose: they are not plans of their own
VARIANTS = {"base_optimistic.yaml", "base_pessimistic.yaml"}
PLANS = sorted(p.name for p in SCENARIOS.glob("*.yaml")
               if p.name not in VARIANTS and "plans" not in yaml.safe_load(p.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def loaded():
    return {name: targetsim.load_scenario(SCENARIOS / name) for name in PLANS}


def test_every_plan_runs_on_its_city_s_model(loaded):
    for name, scenario in loaded.items():
        assert scenario.model is not None, f"{name} names no city model"
        city = "hangzhou" if name.startswith("hangzhou") else "wuhan"
        assert scenario.model.resolve() == (MODELS / f"{city}.yaml").resolve(), name


def test_no_plan_file_defines_an_indicator(loaded):
    """Every indicator is the city's: a plan file lists targets (the loader also refuses a redefinition)."""
    for name in PLANS:
        data = yaml.safe_load((SCENARIOS / name).read_text(encoding="utf-8"))
        assert not data.get("indicators"), f"{name} defines indicators of its own: {list(data['indicators'])[:5]}"


def _same_definition(a, b) -> bool:
    """Equal indicators; a fit at load time records a missing standard error as NaN, which is unequal to
    itself, so the fits are compared by their text (the same fit prints the same)."""
    return (dataclasses.replace(a, fitted=None) == dataclasses.replace(b, fitted=None)
            and repr(a.fitted) == repr(b.fitted))


def test_an_indicator_used_by_several_plans_has_one_definition(loaded):
    seen: dict[str, tuple[str, object]] = {}
    shared = set()
    for name, scenario in loaded.items():
        for ind in scenario.indicators:
            if ind.id in seen:
                shared.add(ind.id)
                first, definition = seen[ind.id]
                assert _same_definition(ind, definition), f"{ind.id}: {first} and {name} define it differently"
            else:
                seen[ind.id] = (name, ind)
    assert len(shared) >= 20  # the Wuhan plans share many indicators: the check is not vacuous


def test_the_wuhan_joint_run_lists_every_plan():
    joint = targetsim.load_scenario(SCENARIOS / "wuhan_all_plans.yaml")
    data = yaml.safe_load((SCENARIOS / "wuhan_all_plans.yaml").read_text(encoding="utf-8"))
    assert sorted(data["plans"]) == sorted(WUHAN_PLANS)
    assert len(joint.plans) == len(WUHAN_PLANS)


PATHS = 20_000


def test_each_wuhan_target_has_the_same_probability_alone_and_in_the_joint_run():
    """Two independent runs (different seeds): the difference of each target's probability lies within five
    standard errors of a difference (a one-in-three-million event per target under the null)."""
    joint = targetsim.run(targetsim.load_scenario(SCENARIOS / "wuhan_all_plans.yaml"), paths=PATHS)
    p_joint = dict(zip(joint.target.values.tolist(), joint.attainment_probability.values[0].tolist()))
    ess_joint = float(joint.effective_sample_size.values[0])
    checked = 0
    for name in WUHAN_PLANS:
        alone = targetsim.run(targetsim.load_scenario(SCENARIOS / name), paths=PATHS)
        ess = float(alone.effective_sample_size.values[0])
        for target, p in zip(alone.target.values.tolist(), alone.attainment_probability.values[0].tolist()):
            q = p_joint[target]
            pooled = (p + q) / 2
            se = math.sqrt(max(pooled * (1 - pooled), 1.0 / PATHS) * (1 / ess + 1 / ess_joint))
            assert abs(p - q) <= 5 * se, f"{name}: {target} alone {p:.4f}, joint {q:.4f} (5 s.e. = {5 * se:.4f})"
            checked += 1
    assert checked == len(joint.target)


@pytest.mark.parametrize("model", sorted(MODELS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_model_indicator_states_its_price_basis(model):
    """The plans' runs audit the indicators they use (tests/test_proxy_and_basis.py); this audits the whole
    model, context indicators that no target needs included."""
    indicators = yaml.safe_load(model.read_text(encoding="utf-8"))["indicators"]
    for ind_id, spec in indicators.items():
        unit = spec.get("unit") or ""
        basis = spec.get("price_basis")
        if unit:
            assert basis is not None, f"{ind_id}: a unit and no price_basis"
        if unit.startswith(("CNY", "USD")):
            assert basis in ("nominal", "real"), f"{ind_id}: money without a nominal/real basis"
        if unit.startswith("index"):
            assert basis == "index", f"{ind_id}: an index not marked price_basis: index"
        parameters = spec.get("parameters") or {}
        process = spec.get("process") or {}
        if process.get("kind") not in ("ratio", "sum"):
            assert parameters.get("source") or parameters.get("assumption"), f"{ind_id}: parameters without provenance"


def test_a_shipped_fit_rests_on_five_observed_years_of_its_own_series(loaded):
    """Issue 17: an indicator the city model fits at load time uses at least five observed (sourced, not
    assumed) yearly values of that very indicator up to the base year, and records them."""
    fitted = {}
    for name, scenario in loaded.items():
        for ind in scenario.indicators:
            # the outside view records its parameters like a fit (ind.fitted), but from no series: not a fit
            if ind.fitted is not None and ind.fitted.kind != "outside_view":
                fitted[ind.id] = ind.fitted
                assert len(ind.fitted.years) >= 5, f"{ind.id} ({name}): fitted to {ind.fitted.years}"
                assert max(ind.fitted.years) <= scenario.base_year, ind.id
    # the Wuhan model fits the China-Europe trains and the port's containers (models/wuhan.yaml)
    assert {"wuhan_china_europe_rail_trains", "wuhan_port_container_throughput"} <= set(fitted)
