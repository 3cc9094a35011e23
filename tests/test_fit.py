"""targetsim fit: parameter recovery, AICc choice, short and irregular histories, the CLI.

Coverage tests draw many synthetic series with fixed seeds; a 95 % interval must cover the true
value at 95 % within 4 binomial standard errors."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from targetsim.cli import main
from targetsim.errors import FitError
from targetsim.estimate.fitting import PRIOR_VOLATILITY, aicc, fit


def _walk(rng, n, mu, sigma, start=100.0):
    return start * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(mu, sigma, n - 1))]))


def _binomial_band(p, n):
    return 4 * math.sqrt(p * (1 - p) / n)


def test_lognormal_recovers_growth_and_volatility_at_the_stated_rate():
    rng = np.random.default_rng(11)
    reps, n, mu, sigma = 300, 9, 0.07, 0.12
    hit_mu = hit_sigma = 0
    for _ in range(reps):
        f = fit(np.arange(2010, 2010 + n), _walk(rng, n, mu, sigma), "lognormal")
        df = f.df
        q = stats.t.ppf(0.975, df)
        hit_mu += abs(f.estimates["log_growth"] - mu) <= q * f.std_errors["log_growth"]
        s = f.estimates["volatility"]
        lo, hi = s * math.sqrt(df / stats.chi2.ppf(0.975, df)), s * math.sqrt(df / stats.chi2.ppf(0.025, df))
        hit_sigma += lo <= sigma <= hi
    for hits in (hit_mu, hit_sigma):
        assert abs(hits / reps - 0.95) <= _binomial_band(0.95, reps)


def test_logit_share_recovers_drift():
    rng = np.random.default_rng(12)
    reps, n, drift, sigma = 300, 8, 0.05, 0.1
    hits = 0
    for _ in range(reps):
        logit = -1.0 + np.concatenate([[0.0], np.cumsum(rng.normal(drift, sigma, n - 1))])
        share = 100.0 / (1.0 + np.exp(-logit))
        f = fit(np.arange(2010, 2010 + n), share, "auto", unit="percent")
        assert f.kind == "logit_share"
        hits += abs(f.estimates["drift"] - drift) <= stats.t.ppf(0.975, f.df) * f.std_errors["drift"]
    assert abs(hits / reps - 0.95) <= _binomial_band(0.95, reps)


def test_count_recovers_mean_additions():
    rng = np.random.default_rng(13)
    reps, n, lam = 300, 10, 4.0
    hits = 0
    for _ in range(reps):
        stock = 20 + np.concatenate([[0], np.cumsum(rng.poisson(lam, n - 1))])
        f = fit(np.arange(2010, 2010 + n), stock, "count", unit="count")
        hits += abs(f.estimates["mean"] - lam) <= 1.96 * f.std_errors["mean"]
    assert abs(hits / reps - 0.95) <= _binomial_band(0.95, reps)


def test_gaps_count_as_several_years():
    """A gap of k years is k years of change: a smooth 10 % a year with a gap is fitted as 10 %."""
    years = [2010, 2011, 2014, 2015, 2018]
    values = [100 * 1.1 ** (y - 2010) * (1.0 + 0.001 * (-1) ** i) for i, y in enumerate(years)]
    f = fit(years, values, "lognormal")
    assert f.estimates["log_growth"] == pytest.approx(math.log(1.1), abs=2e-3)
    assert any("gap 2011→2014" in n for n in f.notes)


def test_a_named_break_is_left_out_and_an_unnamed_one_is_reported():
    rng = np.random.default_rng(5)
    values = _walk(rng, 12, 0.06, 0.02)
    values[6:] *= 2.0  # a change of statistical scope in the 7th year
    years = np.arange(2010, 2022)
    kept = fit(years, values, "lognormal")
    assert any("possible break at 2016" in n for n in kept.notes)
    assert kept.estimates["volatility"] > 0.1  # the jump, kept, widens the volatility (conservative)
    cut = fit(years, values, "lognormal", breaks=[2016])
    assert cut.estimates["volatility"] < 0.04
    assert cut.estimates["log_growth"] == pytest.approx(0.06, abs=0.03)
    assert any("break at 2016" in n for n in cut.notes)


def test_estimates_count_less():
    rng = np.random.default_rng(6)
    values = _walk(rng, 8, 0.05, 0.1)
    years = np.arange(2010, 2018)
    full = fit(years, values, "lognormal")
    marked = fit(years, values, "lognormal", weights=[1, 1, 1, 1, 1, 1, 1, 0.5])
    assert marked.df < full.df
    assert any("estimates (2017)" in n for n in marked.notes)


def test_two_points_take_a_labelled_prior_volatility():
    f = fit([2020, 2022], [100, 121], "auto")
    assert f.kind == "lognormal"
    assert f.estimates["volatility"] == pytest.approx(PRIOR_VOLATILITY) and f.df == 4
    assert f.assumption and "ASSUMPTION" in f.assumption
    assert f.estimates["log_growth"] == pytest.approx(math.log(1.1))
    assert "assumption" in f.parameters()


def test_three_points_are_fitted_with_few_degrees_of_freedom():
    f = fit([2020, 2021, 2022], [100, 112, 121], "auto")
    assert f.kind == "lognormal" and f.df == 4
    assert any("too few changes" in n for n in f.notes)


@pytest.mark.parametrize("years, values, unit, process, message", [
    ([2020], [1.0], None, "auto", "at least two observed years"),
    ([2020, 2021], [1.0, -2.0], None, "auto", "positive values"),
    ([2020, 2021], [40, 140], "percent", "auto", "strictly between 0 and 1"),
    ([2020, 2021], [40, 50], "percent", "lognormal", "does not suit unit 'percent'"),
    ([2020, 2021, 2022], [5, 4, 6], "count", "auto", "a count only adds"),
    ([2020, 2021], [5.5, 6], "count", "auto", "whole number"),
    ([2020, 2020], [5, 6], None, "auto", "appears twice"),
    ([2020, 2021], [1, 2], "rank", "auto", "ordinal"),
    ([2020, 2021], [1, 2], None, "gamma", "unknown process"),
    ([2020, 2021, 2022], [1, 2, 3], None, "ar1_growth", "needs at least 4 changes"),
])
def test_histories_that_cannot_be_fitted_say_why(years, values, unit, process, message):
    with pytest.raises(FitError, match=message):
        fit(years, values, process, unit=unit, indicator="x")


def test_aicc_prefers_the_simple_process_for_a_random_walk():
    rng = np.random.default_rng(21)
    chosen = [fit(np.arange(2000, 2012), _walk(rng, 12, 0.05, 0.1)).kind for _ in range(40)]
    assert chosen.count("lognormal") >= 32


@pytest.mark.slow
def test_aicc_finds_strong_momentum_in_a_long_series():
    rng = np.random.default_rng(22)
    picks = 0
    for _ in range(30):
        g, prev = [], 0.05
        for _ in range(39):
            prev = 0.05 + 0.85 * (prev - 0.05) + rng.normal(0, 0.03)
            g.append(prev)
        values = 100 * np.exp(np.concatenate([[0.0], np.cumsum(g)]))
        picks += fit(np.arange(1980, 2020), values).kind == "ar1_growth"
    assert picks >= 20


def test_aicc_tells_overdispersed_counts_from_poisson():
    rng = np.random.default_rng(23)
    nb_picks = pois_picks = 0
    for _ in range(20):
        over = rng.negative_binomial(2, 2 / (2 + 20), 30)  # mean 20, dispersion 2
        f = fit(np.arange(1990, 2021), np.concatenate([[0], np.cumsum(over)]), unit="count")
        nb_picks += f.process["additions"]["distribution"] == "negative_binomial"
        plain = rng.poisson(20, 30)
        g = fit(np.arange(1990, 2021), np.concatenate([[0], np.cumsum(plain)]), unit="count")
        pois_picks += g.process["additions"]["distribution"] == "poisson"
    assert nb_picks >= 16 and pois_picks >= 14


def test_aicc_small_sample_correction():
    assert aicc(-10.0, 2, 10) == pytest.approx(20 + 4 + 12 / 7)
    assert aicc(-10.0, 3, 4) == math.inf


@pytest.mark.parametrize("years, breaks", [(list(range(2000, 2010)), []),
                                           ([2000, 2001, 2004, 2005, 2006, 2009, 2010], [])])
def test_random_walk_likelihood_matches_sarimax(years, breaks):
    """The closed-form likelihood AICc uses for the random walks is SARIMAX(0,1,0)'s, with gaps
    (missing years)."""
    from targetsim.estimate.fitting import _random_walk_loglik, _changes, _state_space_loglik, Point

    rng = np.random.default_rng(4)
    z = np.log(_walk(rng, len(years), 0.05, 0.1))
    points = [Point(y, float(np.exp(v))) for y, v in zip(years, z)]
    changes = _changes(points, z, tuple(breaks), "x")
    want, _ = _state_space_loglik(z, np.array(years), tuple(breaks), ar=False)
    assert _random_walk_loglik(changes) == pytest.approx(want, rel=1e-5)


def test_lognormal_likelihood_matches_the_closed_form():
    """The SARIMAX likelihood AICc uses equals the Gaussian likelihood of the yearly log changes."""
    rng = np.random.default_rng(3)
    values = _walk(rng, 10, 0.05, 0.1)
    f = fit(np.arange(2000, 2010), values, "lognormal")
    d = np.diff(np.log(values))
    loglik = stats.norm.logpdf(d, d.mean(), d.std()).sum()
    assert f.criteria["lognormal"] == pytest.approx(aicc(loglik, 2, 9), rel=1e-6)


BASELINES = textwrap.dedent("""\
    indicator,year,value,unit,source,quote,assumption,notes
    x,2016,100,CNY_100m,doc A,,,
    x,2017,109,CNY_100m,doc A,,,
    x,2018,121,CNY_100m,doc A,,,
    x,2019,130,CNY_100m,doc A,,,
    x,2020,146,CNY_100m,doc A,,,
    x,2021,158,CNY_100m,,,derived from a share,
    x,2022,171,CNY_100m,doc B,,,AGG. aggregator summary
    y,2018,50,CNY_100m,doc C,,,
    y,2020,61,CNY_100m,doc C,,,
    y,2021,66,CNY_100m,doc C,,,
    y,2022,73,CNY_100m,doc C,,,
    """)


@pytest.fixture
def baselines(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(BASELINES, encoding="utf-8")
    return path


def test_cli_fit_prints_estimates_criteria_and_a_block_naming_the_rows(baselines):
    res = CliRunner().invoke(main, ["fit", str(baselines), "--indicator", "x"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "lognormal fitted to 6 points" in out  # 2021 is an assumption: not data
    assert "s.e." in out and "AICc" in out
    assert "growth: {log_mean:" in out and "volatility: {estimate:" in out
    flat = " ".join(out.split())
    assert "not used: 2021 (line 7: an assumption, not data)" in flat
    assert "estimates (2022)" in out


def test_cli_fit_until_uses_earlier_rows_only(baselines):
    res = CliRunner().invoke(main, ["fit", str(baselines), "--indicator", "x", "--until", "2019"])
    assert res.exit_code == 0, res.output
    assert "fitted to 4 points (2016–2019)" in res.output


def test_cli_fit_pools_two_series(baselines):
    res = CliRunner().invoke(main, ["fit", str(baselines), "--indicator", "x", "--indicator", "y", "--pool"])
    assert res.exit_code == 0, res.output
    assert "pooled volatility" in res.output and "toward the group" in res.output


def test_cli_fit_unknown_indicator_is_a_clear_error(baselines):
    res = CliRunner().invoke(main, ["fit", str(baselines), "--indicator", "zz"])
    assert res.exit_code == 1
    assert "zz: no rows" in res.output


def test_a_volatility_beyond_the_engines_limit_is_refused_with_the_fix():
    with pytest.raises(FitError, match="exceeds 1, the most a scenario accepts.*--break YEAR"):
        fit(range(2010, 2016), [1, 10, 1, 10, 1, 10], "lognormal", indicator="x")


@pytest.mark.slow
def test_ar1_growth_recovers_its_long_run_growth():
    """The long-run log growth of an AR(1) in the growth, its 95 % interval (delta method) at about
    the stated rate on 40-point series (the interval is asymptotic: the band is 4 binomial s.e.)."""
    rng = np.random.default_rng(31)
    reps, n, m, phi, sigma = 120, 40, 0.05, 0.5, 0.04
    hits = 0
    for _ in range(reps):
        g, prev = [], m + rng.normal(0, sigma / math.sqrt(1 - phi**2))
        for _ in range(n - 1):
            prev = m + phi * (prev - m) + rng.normal(0, sigma)
            g.append(prev)
        values = 100 * np.exp(np.concatenate([[0.0], np.cumsum(g)]))
        f = fit(np.arange(1980, 1980 + n), values, "ar1_growth")
        hits += abs(f.estimates["log_growth"] - m) <= 1.96 * f.std_errors["log_growth"]
        assert abs(f.estimates["persistence"] - phi) < 0.5
    assert abs(hits / reps - 0.95) <= _binomial_band(0.95, reps)


def _series(name, values, start=2000):
    from targetsim.estimate.pooling import Series

    return Series(name, tuple(range(start, start + len(values))), tuple(float(v) for v in values))


def test_pooling_lends_a_short_series_the_groups_volatility():
    """Same true volatility everywhere: the short series moves toward the group and gains degrees of
    freedom; a two-point series (no volatility of its own) takes the group's."""
    from targetsim.estimate.pooling import pool

    rng = np.random.default_rng(41)
    long = [_series(f"n{i}", _walk(rng, 16, 0.06, 0.08)) for i in range(3)]
    short = _series("city", 100 * np.exp(np.cumsum([0, 0.06, 0.30, -0.15, 0.10])))  # s.d. far above 0.08
    two = _series("new", [100.0, 110.0])
    result = pool([*long, short, two])
    by = {f.indicator: f for f in result.fits}
    own = fit(short.years, short.values, "lognormal")
    assert own.data_volatility[0] > 0.15
    assert by["city"].estimates["volatility"] < own.data_volatility[0]   # shrunk toward ~0.08
    assert by["city"].df > own.data_volatility[1]
    assert by["new"].estimates["volatility"] == pytest.approx(result.volatility_centre, rel=1e-9)
    assert result.volatility_shrinkage[4] == 1.0
    assert any(n.startswith("pooled with") for n in by["city"].notes)


def test_pooling_shrinks_little_when_the_group_is_heterogeneous():
    from targetsim.estimate.pooling import pool

    rng = np.random.default_rng(42)
    calm = [_series(f"c{i}", _walk(rng, 16, 0.05, 0.01)) for i in range(2)]
    wild = [_series(f"w{i}", _walk(rng, 16, 0.05, 0.30)) for i in range(2)]
    result = pool([*calm, *wild])
    assert result.volatility_spread > 1.0     # τ on ln σ²: the group is far from homogeneous
    for f in result.fits:
        own = f.data_volatility[0]
        assert f.estimates["volatility"] == pytest.approx(own, rel=0.35)


def test_pooling_refuses_mixed_scales_and_single_series():
    from targetsim.estimate.pooling import Series, pool

    level = _series("a", [1, 2, 3, 4])
    share = Series("s", (2000, 2001, 2002, 2003), (10.0, 11.0, 12.0, 13.0), unit="percent")
    with pytest.raises(FitError, match="cannot pool shares"):
        pool([level, share])
    with pytest.raises(FitError, match="at least two series"):
        pool([level])
