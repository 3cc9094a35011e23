"""targetsim backtest: rolling origins, the engine's scores beside the naive reference's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from targetsim.backtest import CRPS_LEVELS, GROWTH_EVENTS, backtest, summary_rows, summary_table
from targetsim.cli import main
from targetsim.errors import FitError
from targetsim.estimate.scores import crps_normal


def _baselines(tmp_path, rows):
    path = tmp_path / "b.csv"
    lines = ["indicator,year,value,unit,source,quote,assumption,notes"]
    lines += [f"{name},{year},{value!r},{unit},synthetic,,," for name, year, value, unit in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(2)
    level = 100 * np.exp(np.cumsum(rng.normal(0.08, 0.05, 8)))
    share = 100 / (1 + np.exp(-(-1.0 + np.cumsum(rng.normal(0.05, 0.05, 7)))))
    stock = 10 + np.cumsum(rng.poisson(3, 7))
    rows = [("lvl", 2010 + i, float(v), "CNY_100m") for i, v in enumerate(level)]
    rows += [("shr", 2012 + i, float(v), "percent") for i, v in enumerate(share)]
    rows += [("cnt", 2012 + i, int(v), "count") for i, v in enumerate(stock)]
    rows += [("rank_x", 2012 + i, i + 1, "rank") for i in range(6)]
    return _baselines(tmp_path, rows)


def test_cases_cover_every_origin_and_later_year(files):
    ds = backtest(files, ["lvl"], horizon=2, paths=4000, min_points=3)
    # origins 2012..2016 have a later year within 2 (2017 has none): 5 origins, 2 years each but the last
    pairs = {(int(o), int(y)) for o, y in zip(ds["origin"].values, ds["year"].values)}
    want = {(o, y) for o in range(2012, 2017) for y in (o + 1, o + 2) if y <= 2017}
    assert pairs == want
    assert set(ds["lead"].values.tolist()) == {1, 2}
    assert ds["event_threshold"].shape[1] == len(GROWTH_EVENTS)
    assert np.all((ds["pit"].values >= 0) & (ds["pit"].values <= 1))


def test_outcomes_and_coverage_follow_from_the_observations(files):
    ds = backtest(files, ["lvl"], horizon=2, paths=4000, min_points=3)
    import pandas as pd

    level = pd.read_csv(files).query("indicator == 'lvl'").set_index("year")["value"]
    for c in range(ds.sizes["case"]):
        o, y = int(ds["origin"][c]), int(ds["year"][c])
        growth = (level[y] / level[o]) ** (1 / (y - o)) - 1
        np.testing.assert_array_equal(ds["event_outcome"].values[c], [float(growth >= g) for g in GROWTH_EVENTS])
        pit = float(ds["pit"][c])
        assert ds["inside"].values[c].tolist() == [int(abs(pit - 0.5) <= w / 2) for w in (0.5, 0.8, 0.95)]


def test_the_naive_reference_is_the_plug_in_random_walk(files):
    """Its PIT is the normal CDF on the log scale with the history's mean and s.d. of log changes,
    and its CRPS (from quantiles at 50 levels) is close to the closed-form CRPS of that law."""
    import pandas as pd

    ds = backtest(files, ["lvl"], horizon=1, paths=4000, min_points=3)
    level = pd.read_csv(files).query("indicator == 'lvl'").set_index("year")["value"]
    checked = 0
    for c in range(ds.sizes["case"]):
        o, y = int(ds["origin"][c]), int(ds["year"][c])
        d = np.diff(np.log(level.loc[:o].values))
        sd = d.std(ddof=1) if d.size > 1 else None
        if sd is None or d.size < 5:  # short histories use the prior-completed volatility
            continue
        z = math.log(level[y])
        assert float(ds["pit_naive"][c]) == pytest.approx(stats.norm.cdf(z, math.log(level[o]) + d.mean(), sd),
                                                          abs=1e-9)
        checked += 1
    assert checked >= 2


def test_shares_and_counts_are_backtested_on_their_own_scales(files):
    ds = backtest(files, ["shr", "cnt"], horizon=2, paths=4000, min_points=3)
    kinds = dict(zip(ds["indicator"].values.tolist(), ds["process"].values.tolist()))
    assert kinds == {"shr": "logit_share", "cnt": "count"}
    shr = ds["indicator"].values == "shr"
    assert np.all(ds["observed"].values[shr] < 1)  # shares as fractions
    assert np.all(np.isnan(ds["event_threshold"].values[ds["indicator"].values == "cnt"]))


def test_default_indicators_skip_ranks_and_short_series(files):
    ds = backtest(files, horizon=1, paths=2000, min_points=3)
    assert "rank_x" not in set(ds["indicator"].values.tolist())


def test_summary_table_fits_120_columns(files):
    ds = backtest(files, ["lvl", "shr"], horizon=2, paths=4000, min_points=3)
    text = summary_table(ds)
    assert max(len(line) for line in text.splitlines()) <= 120
    rows = summary_rows(ds)
    assert rows[-1]["indicator"] == "all" and rows[-1]["cases"] == ds.sizes["case"]


def test_unknown_indicator_and_too_short_histories_are_clear_errors(files, tmp_path):
    with pytest.raises(FitError, match="zz: not in"):
        backtest(files, ["lvl", "zz"], horizon=1, paths=2000)
    short = _baselines(tmp_path, [("a", 2020, 1.0, "u"), ("a", 2021, 2.0, "u")])
    with pytest.raises(FitError, match="no indicator"):
        backtest(short, horizon=1, paths=2000)


def test_cli_backtest_writes_the_cases(files, tmp_path):
    out = tmp_path / "bt.nc"
    res = CliRunner().invoke(main, ["backtest", str(files), "--indicator", "lvl", "--horizon", "2", "--paths",
                                    "4000", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "cover 50/80/95" in res.output and "PIT histogram" in res.output and out.is_file()
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert ds.sizes["case"] > 0 and "crps_naive" in ds


def test_crps_levels_are_evenly_spaced_midpoints():
    levels = np.array(CRPS_LEVELS)
    np.testing.assert_allclose(np.diff(levels), 0.02)
    assert levels[0] == pytest.approx(0.01) and levels[-1] == pytest.approx(0.99)
    # at these levels the quantile CRPS of a normal is within 1 % of its closed form
    from targetsim.estimate.scores import crps_quantiles

    q = stats.norm.ppf(levels, 0.3, 1.2)
    got = crps_quantiles(np.array([1.0]), q[None, :], levels)[0]
    assert got == pytest.approx(crps_normal(np.array([1.0]), 0.3, 1.2)[0], rel=0.01)


def test_an_indicator_in_several_files_is_taken_from_the_fullest(files, tmp_path):
    copy = tmp_path / "copy.csv"
    copy.write_text("indicator,year,value,unit,source,quote,assumption,notes\n"
                    "lvl,2016,1.0,CNY_100m,copied,,,\nlvl,2017,2.0,CNY_100m,copied,,,\n", encoding="utf-8")
    ds = backtest([copy, files], ["lvl"], horizon=1, paths=2000, min_points=3)
    assert ds.sizes["case"] == 5  # origins 2012..2016 of the 8-point history, not the 2-row copy
