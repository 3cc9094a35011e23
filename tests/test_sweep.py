"""``targetsim sweep``: variants of a scenario by dotted keys, run with common random numbers.

A variant must be the scenario edited at its keys, run with the sweep's seed and paths, bit for bit:
checked against ``targetsim run`` of a variant file that ``extends`` the shipped plan (the independent
route: the file is merged by the extends machinery, the sweep edits the merged document). The design
(grid product, linspace ranges, Latin hypercube) is checked against its definition, and the same sweep
run sequentially, in threads and on a local Dask cluster of processes must give identical results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

import targetsim
from targetsim.cli import main
from targetsim.errors import TargetsimError
from targetsim.explore.sweep import SWEEP_VARIABLES, design, parse_spec, sweep
from tests.conftest import ROOT

BASE = ROOT / "scenarios" / "base.yaml"
CBEC_MEAN = "indicators.wuhan_cbec_trade.process.growth.mean"
HPC_THRESHOLD = "targets.wh_dt_hpc_eflops.threshold"
PAIR = "correlations.wuhan_digital_ordered_trade.wuhan_cbec_trade"

TINY = {
    "name": "tiny", "base_year": 2024, "horizon": 2027, "paths": 1000, "seed": 11,
    "indicators": {
        "x": {"start": {"value": 100.0, "assumption": "test"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.05, "sd": 0.02}, "volatility": 0.1}},
        "y": {"start": {"value": 50.0, "assumption": "test"},
              "process": {"kind": "lognormal", "growth": {"mean": 0.08, "sd": 0.0}, "volatility": 0.15}},
    },
    "correlations": [["x", "y", 0.3]],
    "targets": [{"id": "tx", "indicator": "x", "kind": "level", "threshold": 115.0, "by": 2027},
                {"id": "ty", "indicator": "y", "kind": "cagr", "threshold": 0.06, "by": 2027}],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of two worker processes (one thread each) for the module's distributed runs."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _numbers(ds: xr.Dataset) -> dict[str, np.ndarray]:
    return {name: ds[name].values for name in SWEEP_VARIABLES if name in ds}


# ----------------------------------------------------------------------------------- the design

def test_a_grid_is_every_combination_with_the_first_key_slowest():
    varies = [parse_spec("a", "1,2,3"), parse_spec("b", "0.5:1.5:3"), parse_spec("c", [7])]
    assert varies[1].values == (0.5, 1.0, 1.5)  # low:high:count is numpy.linspace
    values = design(varies, None, seed=0)
    assert values.shape == (9, 3)
    expected = [(a, b, 7.0) for a in (1, 2, 3) for b in (0.5, 1.0, 1.5)]
    assert [tuple(row) for row in values] == expected


def test_a_latin_hypercube_puts_one_point_in_each_stratum_of_each_key():
    varies = [parse_spec("a", "0.05..0.25"), parse_spec("b", "-1..1")]
    values = design(varies, 16, seed=5)
    assert values.shape == (16, 2)
    for j, (low, high) in enumerate(((0.05, 0.25), (-1.0, 1.0))):
        strata = np.floor((values[:, j] - low) / (high - low) * 16).astype(int)
        assert sorted(strata) == list(range(16))  # the defining property of a Latin hypercube
    assert np.array_equal(values, design(varies, 16, seed=5))  # seeded
    assert not np.array_equal(values, design(varies, 16, seed=6))


@pytest.mark.parametrize("spec, samples, message", [
    ("0.1..0.2", None, "give --samples N"),
    ("0.1,0.2", 8, "write it as low..high"),
    ("0.3..0.2", 8, "needs low < high"),
    ("0.1:0.2:1", None, "count of at least 2"),
    ("0.1,abc", None, "'abc' is not a number"),
    ("nan", None, "not a finite number"),
])
def test_bad_specs_are_refused_with_the_fix(spec, samples, message):
    with pytest.raises(TargetsimError, match=message):
        design([parse_spec("k", spec)], samples, seed=0)


# ----------------------------------------------------------------------------------- the keys

@pytest.mark.parametrize("key, names", [
    ("indicators.wuhan_cbec_trade.process.growth.maen", [CBEC_MEAN]),
    ("targets.wh_dt_hpc_eflop.threshold", [HPC_THRESHOLD]),
    ("indicators.wuhan_cbec_trade.process.growth.median", [CBEC_MEAN]),
])
def test_an_unknown_key_names_the_nearest_valid_keys_and_the_fix(key, names):
    with pytest.raises(TargetsimError) as err:
        sweep(BASE, {key: "0.1,0.2"}, paths=256)
    text = str(err.value)
    assert key in text and "nearest valid keys" in text and "--show-merged" in text
    for name in names:
        assert name in text


def test_the_seed_cannot_be_varied():
    with pytest.raises(TargetsimError, match="common random numbers"):
        sweep(BASE, {"seed": "1,2"}, paths=256)


def test_a_value_the_scenario_refuses_names_the_variant_and_key(tiny):
    with pytest.raises(TargetsimError, match=r"variant 1 \(indicators.x.process.growth.sd = -0.1\) is refused"):
        sweep(tiny, {"indicators.x.process.growth.sd": "0.01,-0.1"}, paths=256, threads=1)


# ------------------------------------------------------------------------- variants = separate runs

def test_each_variant_is_bit_for_bit_a_separate_run_of_the_edited_scenario(tmp_path):
    """Two variants of the shipped plan (three keys: a growth mean, a target's threshold, a correlation
    given in the other order) against `targetsim run` of files that extend the plan with the same edits."""
    paths, seed = 3000, 99
    ds = sweep(BASE, {CBEC_MEAN: "0.12,0.33", HPC_THRESHOLD: [9], "correlations.wuhan_cbec_trade."
                      "wuhan_digital_ordered_trade": [0.55]}, paths=paths, seed=seed, threads=1)
    assert ds.sizes["variant"] == 2 and list(ds[CBEC_MEAN].values) == [0.12, 0.33]
    for v, mean in enumerate((0.12, 0.33)):
        variant = {"extends": str(BASE), "name": f"variant-{v}",
                   "indicators": {"wuhan_cbec_trade": {"process": {"growth": {"mean": mean}}}},
                   "targets": [{"id": "wh_dt_hpc_eflops", "threshold": 9}],
                   "correlations": [["wuhan_cbec_trade", "wuhan_digital_ordered_trade", 0.55]]}
        file = tmp_path / f"variant_{v}.yaml"
        file.write_text(yaml.safe_dump(variant, allow_unicode=True, sort_keys=False), encoding="utf-8")
        out = tmp_path / f"variant_{v}.nc"
        result = CliRunner().invoke(main, ["run", str(file), "-o", str(out), "--paths", str(paths), "--seed",
                                           str(seed), "--quiet"])
        assert result.exit_code == 0, result.output
        alone = targetsim.read_dataset(out)
        for name in SWEEP_VARIABLES:
            np.testing.assert_array_equal(ds[name].isel(variant=v).values, alone[name].isel(scenario=0).values,
                                          err_msg=name)
    # the variants differ (the cbec target moved), so the comparison above is not vacuous
    p = ds["attainment_probability"].sel(target="wh_dt_cbec_trade_cagr").values
    assert p[1] > p[0] + 0.2


def test_a_sweep_dataset_stacks_the_runs_with_a_coordinate_per_key(tiny, tmp_path):
    out = tmp_path / "grid.nc"
    result = CliRunner().invoke(main, ["sweep", str(tiny), "--vary", "indicators.x.process.growth.mean=0.0,0.05,0.1",
                                       "--vary", "correlations.y.x=0:0.6:2", "--paths", "2000", "--threads", "2",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("variant ") >= 6 and "common random numbers" in result.output
    ds = targetsim.read_dataset(out)
    assert ds.sizes["variant"] == 6 and list(ds["target"].values) == ["tx", "ty"]
    assert ds["attainment_probability"].dims == ("variant", "target")
    assert ds["attainment_by_year"].dims == ("variant", "target", "year")
    assert ds["indicator_quantiles"].dims == ("variant", "indicator", "year", "quantile")
    assert list(ds["indicators.x.process.growth.mean"].values) == [0.0, 0.0, 0.05, 0.05, 0.1, 0.1]
    assert list(ds["correlations.y.x"].values) == [0.0, 0.6] * 3
    assert json.loads(ds.attrs["sweep_keys"]) == ["indicators.x.process.growth.mean", "correlations.y.x"]
    assert ds.attrs["seed"] == 11 and ds.attrs["paths"] == 2000 and ds.attrs["sweep_design"] == "grid"
    # common random numbers: x's target moves monotonically with its growth mean, y's not at all
    tx = ds["attainment_probability"].sel(target="tx").values.reshape(3, 2)
    ty = ds["attainment_probability"].sel(target="ty").values.reshape(3, 2)
    assert (np.diff(tx, axis=0) > 0).all()
    assert (ty == ty[0, 0]).all()  # y's own draws do not depend on the correlation or on x's growth


def test_a_latin_hypercube_sweep_records_its_design(tiny):
    ds = sweep(tiny, {"indicators.x.process.growth.mean": "0.0..0.1", "indicators.y.process.volatility": "0.05..0.3"},
               samples=5, paths=1000, threads=1)
    assert ds.sizes["variant"] == 5
    assert ds.attrs["sweep_design"] == "latin_hypercube" and ds.attrs["sample_seed"] == 11
    values = design([parse_spec("a", "0.0..0.1"), parse_spec("b", "0.05..0.3")], 5, seed=11)
    np.testing.assert_array_equal(ds["indicators.x.process.growth.mean"].values, values[:, 0])
    np.testing.assert_array_equal(ds["indicators.y.process.volatility"].values, values[:, 1])


# ----------------------------------------------------------------------------------- distributed

def test_a_distributed_sweep_equals_the_sequential_one(tiny, cluster):
    vary = {"indicators.x.process.growth.mean": "0.0:0.1:3", "indicators.y.process.volatility": "0.1,0.2"}
    sequential = sweep(tiny, vary, paths=3000)
    threaded = sweep(tiny, vary, paths=3000, threads=2)
    dask_one = sweep(tiny, vary, paths=3000, scheduler=cluster.scheduler_address)
    dask_batched = sweep(tiny, vary, paths=3000, scheduler=cluster.scheduler_address, batch=4)
    assert dask_one.attrs["executed"].startswith("Dask scheduler")
    reference = _numbers(sequential)
    for other in (threaded, dask_one, dask_batched):
        for name, values in _numbers(other).items():
            np.testing.assert_array_equal(values, reference[name], err_msg=name)
        for key in vary:
            np.testing.assert_array_equal(other[key].values, sequential[key].values)


def test_a_missing_dask_names_the_extra(tiny, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "distributed" or m.startswith("distributed.")] + ["distributed"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(TargetsimError, match=r"pip install 'targetsim\[dask\]'"):
        sweep(tiny, {"indicators.x.process.growth.mean": "0.0,0.1"}, paths=256, workers=2)
