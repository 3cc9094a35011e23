"""``targetsim discover``: PRIM (EMA Workbench) finds a box planted in a synthetic sweep.

400 variants of four inputs, uniform on [0, 1]; the target is missed (P = 0.2) exactly when input a < 0.4
and input c > 0.6, met (P = 0.8) elsewhere; b and d do nothing. The box found must restrict a and c to
about the planted ranges (within the peeling's granularity: each peel removes 5 % of the cases), leave b
and d nearly whole, and cover and be dense in the cases of interest.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

pytest.importorskip("ema_workbench")

from targetsim.cli import main  # noqa: E402
from targetsim.errors import TargetsimError  # noqa: E402
from targetsim.explore.discover import discover, format_boxes  # noqa: E402
from targetsim.io.netcdf import write_dataset  # noqa: E402

KEYS = ["indicators.a.process.growth.mean", "indicators.b.process.volatility", "targets.t.threshold",
        "correlations.a.b"]
A, B, C, D = KEYS


@pytest.fixture(scope="module")
def planted() -> xr.Dataset:
    rng = np.random.default_rng(2024)
    n = 400
    x = rng.uniform(0.0, 1.0, (n, 4))
    inside = (x[:, 0] < 0.4) & (x[:, 2] > 0.6)
    p = np.where(inside, 0.2, 0.8)
    return xr.Dataset(
        {"attainment_probability": (("variant", "target"), np.stack([p, np.full(n, 0.9)], axis=1)),
         "joint_attainment_probability": ("variant", p * 0.9)},
        coords={"variant": np.arange(n), "target": ["t", "other"], **{k: ("variant", x[:, j]) for j, k in enumerate(KEYS)}},
        attrs={"sweep_keys": json.dumps(KEYS), "scenario_file": "synthetic"})


def test_prim_finds_the_planted_box(planted):
    result = discover(planted, "t", threshold=0.5)
    box = result.isel(box=0)
    restricts = dict(zip(result["input"].values, box["box_restricts"].values))
    assert restricts[A] and restricts[C]
    lower = dict(zip(result["input"].values, box["box_lower"].values))
    upper = dict(zip(result["input"].values, box["box_upper"].values))
    assert upper[A] == pytest.approx(0.4, abs=0.05) and lower[C] == pytest.approx(0.6, abs=0.05)
    for key in (B, D):  # the inputs that do nothing keep (nearly) their whole range
        assert upper[key] - lower[key] >= 0.9
    assert float(box["box_coverage"]) >= 0.9 and float(box["box_density"]) >= 0.9
    k, n = int(box["box_cases_of_interest"]), int(box["box_cases"])
    assert float(box["box_density"]) == pytest.approx(k / n)
    assert float(box["box_coverage"]) == pytest.approx(k / result.attrs["cases_of_interest"])
    trajectory = box["peeling_coverage"].values
    assert np.isfinite(trajectory[: int(box["box_step"]) + 1]).all()
    text = format_boxes(result)
    assert "coverage" in text and "density" in text and A in text and "peeling trajectory" in text


def test_the_joint_probability_and_the_command(planted, tmp_path):
    sweep_file = tmp_path / "sweep.nc"
    write_dataset(planted, sweep_file)
    out = tmp_path / "boxes.csv"
    result = CliRunner().invoke(main, ["discover", str(sweep_file), "--target", "joint", "--threshold", "0.5",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "P(joint) < 50%" in result.output and "box 1: coverage" in result.output
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("target,threshold,box,coverage,density")
    assert {row.split(",")[8] for row in rows[1:]} >= {A, C}


def test_discovery_errors_name_the_fix(planted):
    with pytest.raises(TargetsimError, match="did you mean 't'"):
        discover(planted, "tt")
    with pytest.raises(TargetsimError, match="no contrast"):
        discover(planted, "other", threshold=0.5)  # P = 0.9 everywhere: no case of interest
    with pytest.raises(TargetsimError, match="neither a sweep result"):
        discover(planted.isel(variant=0), "t")


def test_a_missing_workbench_names_the_extra(planted, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "ema_workbench" or m.startswith("ema_workbench.")] + ["ema_workbench"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(TargetsimError, match=r"pip install 'targetsim\[sensitivity\]'"):
        discover(planted, "t")


@pytest.fixture(scope="module")
def kept_paths() -> xr.Dataset:
    """A run's kept paths: the computing project slips (completion 0) and growth is below 12 % on a planted
    share of the paths, and exactly those miss the target; another draw does nothing."""
    rng = np.random.default_rng(7)
    n = 3000
    growth = rng.normal(0.15, 0.04, n)
    other = rng.normal(0.05, 0.02, n)
    completed = (rng.uniform(size=n) < 0.7).astype(np.int8)
    missed = (completed == 0) & (growth < 0.12)
    return xr.Dataset(
        {"kept_target_met": (("kept_path", "target"), np.stack([~missed, np.ones(n, bool)], axis=1).astype(np.int8)),
         "kept_weight": ("kept_path", np.ones(n)),
         "kept_final_value": (("kept_path", "indicator"), np.stack([growth * 10, other], axis=1)),
         "kept_growth_draw": (("kept_path", "indicator"), np.stack([growth, other], axis=1)),
         "kept_project_completed": (("kept_path", "project"), completed[:, None])},
        coords={"kept_path": np.arange(n), "target": ["t", "other"], "indicator": ["hpc", "trade"],
                "project": ["big_computer"]},
        attrs={"scenario_file": "synthetic"})


def test_prim_on_kept_paths_finds_the_paths_that_miss(kept_paths):
    result = discover(kept_paths, "t")
    assert result.attrs["cases_are"] == "kept paths"
    assert set(result["input"].values) == {"growth_draw.hpc", "growth_draw.trade", "project_completed.big_computer"}
    box = result.isel(box=0)
    lower = dict(zip(result["input"].values, box["box_lower"].values))
    upper = dict(zip(result["input"].values, box["box_upper"].values))
    restricts = dict(zip(result["input"].values, box["box_restricts"].values))
    assert restricts["project_completed.big_computer"] and upper["project_completed.big_computer"] < 1
    assert restricts["growth_draw.hpc"] and upper["growth_draw.hpc"] == pytest.approx(0.12, abs=0.01)
    assert not restricts["growth_draw.trade"] or upper["growth_draw.trade"] - lower["growth_draw.trade"] > 0.1
    assert float(box["box_coverage"]) >= 0.9 and float(box["box_density"]) >= 0.9
    assert "t missed in" in format_boxes(result) and "kept paths of interest" in format_boxes(result)


def test_kept_paths_refused_when_weighted_or_missing(kept_paths):
    weighted = kept_paths.assign(kept_weight=("kept_path", np.linspace(0.5, 1.5, kept_paths.sizes["kept_path"])))
    with pytest.raises(TargetsimError, match="weights its paths by observations"):
        discover(weighted, "t")
    with pytest.raises(TargetsimError, match="--keep-paths N"):
        discover(kept_paths.drop_vars("kept_target_met"), "t")
    with pytest.raises(TargetsimError, match="none of the 3000 kept paths misses other"):
        discover(kept_paths, "other")


def test_no_dense_box_is_said_not_reported_as_the_whole_space():
    """Cases of interest spread so that no box reaches 80 %: an error naming --density, never the whole
    input space labelled 'box 1'."""
    rng = np.random.default_rng(11)
    n = 400
    x = rng.uniform(0.0, 1.0, (n, 2))
    p = np.where(rng.uniform(size=n) < np.where(x[:, 0] < 0.5, 0.6, 0.2), 0.2, 0.8)
    keys = ["indicators.a.process.growth.mean", "indicators.b.process.volatility"]
    ds = xr.Dataset({"attainment_probability": (("variant", "target"), p[:, None]),
                     "joint_attainment_probability": ("variant", p)},
                    coords={"variant": np.arange(n), "target": ["t"],
                            **{k: ("variant", x[:, j]) for j, k in enumerate(keys)}},
                    attrs={"sweep_keys": json.dumps(keys), "scenario_file": "synthetic"})
    with pytest.raises(TargetsimError, match="no box whose density reaches 80%.*lower --density"):
        discover(ds, "t", threshold=0.5, density=0.8)
