"""``targetsim sensitivity``: Sobol indices (SALib) and the tornado table, against known indices.

(a) Through a scenario: two build-out indicators, each with one project that completes in the first
year with probability p_a ~ U(0.2, 0.8), p_b ~ U(0.3, 0.5), and a target on each that only its project
can meet. So P(t_a) = p_a and P(t_b) = p_b (up to the paths' resolution; with common random numbers each
is a function of its own p only), the number of targets met has mean p_a + p_b (additive: first-order
indices Var(p_i) / (Var(p_a) + Var(p_b)) = 0.9 and 0.1, totals equal), and the joint probability is
p_a·p_b (independent projects), a product of independent inputs whose indices are closed forms:
with μ_i, σ²_i the inputs' means and variances, V = (σ²_a + μ²_a)(σ²_b + μ²_b) − μ²_a μ²_b,
S_a = σ²_a μ²_b / V, S_Ta = σ²_a (σ²_b + μ²_b) / V (and symmetrically).
(b) The Ishigami function through the same sample → evaluate → analyse glue, against its analytic
indices for a = 7, b = 0.1.

Each estimate must lie within K = 4 bootstrap standard errors of the truth, the standard error being SALib's
99 % bootstrap half-width over z = 2.576 (a 99 % interval is one bootstrap draw from missing on the 1 % side,
and any change of SALib's resampling or of the random stream moves it; four standard errors leave room for
that while still failing on a wrong index); and the input that matters must be told apart from the one that
matters less, by more than K standard errors of the difference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("SALib")

from targetsim.cli import main  # noqa: E402
from targetsim.errors import TargetsimError  # noqa: E402
from targetsim.explore.sensitivity import (  # noqa: E402
    JOINT, Input, default_inputs, format_sensitivity, sensitivity, sobol_indices,
)
from tests.conftest import ROOT  # noqa: E402

KEY_A = "indicators.a.process.projects.build_a.probability"
KEY_B = "indicators.b.process.projects.build_b.probability"
RANGE_A, RANGE_B = (0.2, 0.8), (0.3, 0.5)
PATHS = 4000
SAMPLES = 128


def _project(name: str, p: float) -> dict:
    return {"start": {"value": 1.0, "assumption": "test"},
            "process": {"kind": "buildout", "organic": {"growth": 0.0, "volatility": 0.0},
                        "projects": [{"name": name, "size": 1.0, "probability": p, "earliest": 2025,
                                      "latest": 2025}]}}


PROJECTS = {
    "name": "two-projects", "base_year": 2024, "horizon": 2025, "paths": 1000, "seed": 3,
    "indicators": {"a": _project("build_a", 0.5), "b": _project("build_b", 0.4)},
    "targets": [{"id": "ta", "indicator": "a", "kind": "level", "threshold": 1.5, "by": 2025},
                {"id": "tb", "indicator": "b", "kind": "level", "threshold": 1.5, "by": 2025}],
}


def _uniform(low: float, high: float) -> tuple[float, float]:
    return (low + high) / 2, (high - low) ** 2 / 12


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sensitivity") / "projects.yaml"
    path.write_text(yaml.safe_dump(PROJECTS, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result(projects):
    return sensitivity(projects, inputs=[(KEY_A, *RANGE_A), f"{KEY_B}={RANGE_B[0]}..{RANGE_B[1]}"],
                       samples=SAMPLES, paths=PATHS, threads=2, conf_level=CONF_LEVEL)


CONF_LEVEL = 0.99
K = 4.0  # standard errors of tolerance


def _se(conf: float) -> float:
    """SALib's bootstrap half-width at CONF_LEVEL as a standard error."""
    from scipy import stats

    return conf / float(stats.norm.ppf(0.5 + CONF_LEVEL / 2))


def _within(estimate: float, conf: float, truth: float) -> bool:
    return abs(estimate - truth) <= K * _se(conf) + 1e-12


def _apart(high: float, high_conf: float, low: float, low_conf: float) -> bool:
    """``high`` exceeds ``low`` by more than K standard errors of the difference."""
    return high - low > K * float(np.hypot(_se(high_conf), _se(low_conf)))


def test_each_target_depends_on_its_own_project_only(result):
    for target, own, other in (("ta", KEY_A, KEY_B), ("tb", KEY_B, KEY_A)):
        col = result.sel(target=target)
        for name in ("sobol_first_order", "sobol_total"):
            assert _within(float(col[name].sel(input=own)), float(col[f"{name}_conf"].sel(input=own)), 1.0), name
            # the other project does not touch this target's paths at all (common random numbers): exactly 0
            assert float(col[name].sel(input=other)) == 0.0
        assert float(col["tornado_swing"].sel(input=other)) == 0.0


def test_the_joint_probability_has_the_product_models_indices(result):
    (mu_a, var_a), (mu_b, var_b) = _uniform(*RANGE_A), _uniform(*RANGE_B)
    v = (var_a + mu_a**2) * (var_b + mu_b**2) - mu_a**2 * mu_b**2
    truth = {("sobol_first_order", KEY_A): var_a * mu_b**2 / v, ("sobol_first_order", KEY_B): var_b * mu_a**2 / v,
             ("sobol_total", KEY_A): var_a * (var_b + mu_b**2) / v, ("sobol_total", KEY_B): var_b * (var_a + mu_a**2) / v}
    col = result.sel(target=JOINT)
    for (name, key), expected in truth.items():
        estimate, conf = float(col[name].sel(input=key)), float(col[f"{name}_conf"].sel(input=key))
        assert _within(estimate, conf, expected), (name, key, estimate, conf, expected)
        assert conf < 0.35  # an interval that says something at these sample sizes
    for name in ("sobol_first_order", "sobol_total"):  # p_a (truth ~0.84) is told apart from p_b (~0.15)
        a, b = col[name].sel(input=[KEY_A, KEY_B]).values
        ca, cb = col[f"{name}_conf"].sel(input=[KEY_A, KEY_B]).values
        assert _apart(a, ca, b, cb), (name, a, ca, b, cb)


def test_an_additive_output_through_the_same_runs_has_its_variance_shares(result):
    """E[targets met] = P(t_a) + P(t_b) ≈ p_a + p_b: the same Saltelli sample (same seed and N) evaluated
    by looking up the scenario's runs, analysed by the same glue."""
    inputs = [Input(KEY_A, 0.5, *RANGE_A, "test"), Input(KEY_B, 0.4, *RANGE_B, "test")]
    sample = result["sample_value"].values
    met = result["sample_probability"].sel(target=["ta", "tb"]).sum("target").values

    def evaluate(x):
        np.testing.assert_array_equal(x, sample)  # the glue draws the very sample the scenario ran
        return met

    out = sobol_indices(inputs, evaluate, samples=SAMPLES, seed=int(result.attrs["seed"]), conf_level=CONF_LEVEL)
    var_a, var_b = _uniform(*RANGE_A)[1], _uniform(*RANGE_B)[1]
    for j, share in enumerate((var_a / (var_a + var_b), var_b / (var_a + var_b))):  # 0.9, 0.1
        for name in ("S1", "ST"):
            assert _within(out[name][j, 0], out[f"{name}_conf"][j, 0], share), (name, j, out[name][j, 0])
    for name in ("S1", "ST"):  # the wide input's share is told apart from the narrow one's
        assert _apart(out[name][0, 0], out[f"{name}_conf"][0, 0], out[name][1, 0], out[f"{name}_conf"][1, 0]), name


def test_the_tornado_swings_by_the_inputs_range(result):
    """P(t_a) at p_a = 0.8 less at 0.2 is the share of the paths' uniforms in [0.2, 0.8): 0.6 within
    4.5 binomial standard errors; the nominal run is the scenario as written (p = 0.5 and 0.4)."""
    swing = float(result["tornado_swing"].sel(target="ta", input=KEY_A))
    assert abs(swing - 0.6) <= 4.5 * np.sqrt(0.6 * 0.4 / PATHS)
    nominal = result["nominal_probability"]
    assert abs(float(nominal.sel(target="ta")) - 0.5) <= 4.5 * np.sqrt(0.25 / PATHS)
    assert abs(float(nominal.sel(target="tb")) - 0.4) <= 4.5 * np.sqrt(0.24 / PATHS)
    assert list(result["input_low"].values) == [0.2, 0.3] and list(result["input_high"].values) == [0.8, 0.5]
    text = format_sensitivity(result, top=2)
    block = text.split("ta: ")[1].split("\n\n")[0]
    assert block.index(KEY_A) < block.index(KEY_B)  # sorted: the input that matters first


def test_ishigami_through_the_sobol_glue():
    from SALib.test_functions import Ishigami

    inputs = [Input(f"x{i}", 0.0, -np.pi, np.pi, "test") for i in (1, 2, 3)]
    out = sobol_indices(inputs, Ishigami.evaluate, samples=2048, seed=1, conf_level=CONF_LEVEL)
    s1, st = (0.3139, 0.4424, 0.0), (0.5576, 0.4424, 0.2437)
    for j in range(3):
        assert _within(out["S1"][j, 0], out["S1_conf"][j, 0], s1[j]), ("S1", j, out["S1"][j, 0])
        assert _within(out["ST"][j, 0], out["ST_conf"][j, 0], st[j]), ("ST", j, out["ST"][j, 0])
    # x3 acts only through its interaction with x1: no first-order index, a clear total one; x1's first-order
    # index is clearly above x3's
    assert _apart(out["ST"][2, 0], out["ST_conf"][2, 0], 0.0, 0.0)
    assert _apart(out["S1"][0, 0], out["S1_conf"][0, 0], out["S1"][2, 0], out["S1_conf"][2, 0])
    assert out["X"].shape == (2048 * 5, 3)  # Saltelli without second order: N·(D + 2)


def test_default_inputs_cover_the_declared_uncertainty_of_a_shipped_plan():
    inputs = {i.key: i for i in default_inputs(ROOT / "scenarios" / "base.yaml")}
    mean = inputs["indicators.wuhan_cbec_trade.process.growth.mean"]
    assert (mean.nominal, mean.low, mean.high) == pytest.approx((0.27, 0.07, 0.47))  # ± 2 s.d. (0.10)
    sd = inputs["indicators.wuhan_cbec_trade.process.growth.sd"]
    # 50 % to 150 %, the top cut where 0.07 − 8·sd would near −1 (0.95·1.07/8)
    assert (sd.low, sd.high) == pytest.approx((0.05, 0.95 * 1.07 / 8))
    digital = inputs["indicators.wuhan_digital_economy_core_value_added.process.growth.sd"]
    assert (digital.low, digital.high) == pytest.approx((0.5 * digital.nominal, 1.5 * digital.nominal))
    vol = inputs["indicators.wuhan_cbec_trade.process.volatility"]
    assert (vol.low, vol.high) == pytest.approx((0.05, 0.15))
    low = inputs["indicators.wuhan_high_performance_computing_capacity.start.low"]
    high = inputs["indicators.wuhan_high_performance_computing_capacity.start.high"]
    assert low.low < low.nominal < low.high < high.low < high.nominal < high.high  # the ends never cross
    assert sum(k.startswith("correlations.") for k in inputs) == 4
    hpc = inputs["indicators.wuhan_high_performance_computing_capacity.process.growth.sd"]
    hpc_mean = inputs["indicators.wuhan_high_performance_computing_capacity.process.growth.mean"]
    assert hpc_mean.low - 8 * hpc.high > -1  # kept inside what the scenario accepts


def test_default_correlation_ranges_keep_every_combination_valid():
    """base.yaml's four correlations ± 0.2 would contradict each other at some corners (a Sobol sample
    reaches near them): the block of three that share wuhan_digital_services_trade is narrowed until every
    corner's matrix is positive semi-definite; the scenario accepts all 16 corners."""
    from itertools import product

    from targetsim.explore.variants import ScenarioVariants

    corr = [i for i in default_inputs(ROOT / "scenarios" / "base.yaml") if i.key.startswith("correlations.")]
    narrowed = [i for i in corr if "narrowed" in i.rule]
    assert len(narrowed) == 2 and all(i.high - i.low < 0.4 - 1e-9 for i in narrowed)
    assert any(i.high - i.low == pytest.approx(0.4) for i in corr)  # a pair on its own keeps its ± 0.2
    variants = ScenarioVariants(ROOT / "scenarios" / "base.yaml", tuple(i.key for i in corr))
    for ends in product(*[(i.low, i.high) for i in corr]):
        variants.scenario(dict(zip(variants.keys, ends)))  # raises if the scenario refuses the matrix


def test_default_inputs_of_projects_counts_and_schedules(projects, tmp_path):
    inputs = {i.key: i for i in default_inputs(projects)}
    assert (inputs[KEY_A].low, inputs[KEY_A].high) == pytest.approx((0.25, 0.75))
    data = dict(PROJECTS, indicators={
        **PROJECTS["indicators"],
        "c": {"start": {"value": 3, "assumption": "t"},
              "process": {"kind": "count", "additions": {"distribution": "poisson", "mean": {"mean": 4.0, "sd": 1.0}}}},
        "d": {"start": {"value": 2, "assumption": "t"},
              "process": {"kind": "scheduled", "schedule": {2025: 5}, "delivery": {"mean": 0.9, "sd": 0.05},
                          "carry_over": 0.5}}},
        targets=[*PROJECTS["targets"], {"id": "tc", "indicator": "c", "kind": "count_stock", "threshold": 6, "by": 2025},
                 {"id": "td", "indicator": "d", "kind": "count_stock", "threshold": 6, "by": 2025}])
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    inputs = {i.key: i for i in default_inputs(path)}
    count = inputs["indicators.c.process.additions.mean.mean"]
    assert (count.low, count.high) == pytest.approx((2.0, 6.0))
    delivery = inputs["indicators.d.process.delivery.mean"]
    assert delivery.low == pytest.approx(0.8) and delivery.high < 1 and delivery.high > 0.9
    assert "indicators.d.process.carry_over" in inputs


def test_an_input_outside_the_declared_ones_needs_a_range(projects):
    with pytest.raises(TargetsimError, match=r"give one, targets.ta.threshold=LO..HI"):
        sensitivity(projects, inputs=["targets.ta.threshold"], samples=2, paths=256)
    with pytest.raises(TargetsimError, match="nearest valid keys"):
        sensitivity(projects, inputs=["targets.ta.treshold=1..2"], samples=2, paths=256)


def _without(monkeypatch, package: str) -> None:
    """Make ``import package`` (and its submodules) fail, as when the extra is not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_missing_salib_names_the_extra_before_any_run(projects, monkeypatch, tmp_path):
    _without(monkeypatch, "SALib")
    with pytest.raises(TargetsimError, match=r"pip install 'targetsim\[sensitivity\]'"):
        sensitivity(projects, samples=2, paths=256)
    result = CliRunner().invoke(main, ["sensitivity", str(projects), "-o", str(tmp_path / "s.nc")])
    assert result.exit_code == 1 and "targetsim[sensitivity]" in result.output
    assert not (tmp_path / "s.nc").exists()


def test_the_command_prints_the_top_inputs_and_writes_the_dataset(projects, tmp_path):
    out = tmp_path / "s.nc"
    result = CliRunner().invoke(main, ["sensitivity", str(projects), "--inputs", f"{KEY_A}=0.2..0.8", "--inputs",
                                       KEY_B, "--samples", "4", "--paths", "1000", "--threads", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "ta: P(met)" in result.output and "joint: P(met)" in result.output and "SALib" in result.output
    import targetsim

    ds = targetsim.read_dataset(out)
    assert list(ds["target"].values) == ["ta", "tb", JOINT] and list(ds["input"].values) == [KEY_A, KEY_B]
    assert ds["sobol_total"].dims == ("input", "target") and ds.attrs["sobol_runs"] == 4 * 4
    assert "projects" in str(ds["input_rule"].values[1]) or "completion" in str(ds["input_rule"].values[1])
