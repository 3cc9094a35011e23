"""Proper scores and calibration diagnostics (targetsim.estimate.scores) against independent references:
closed forms computed here with SciPy, hand-worked examples, and synthetic forecasts whose calibration is
known by construction."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from targetsim.errors import TargetsimError
from targetsim.estimate.scores import (
    brier_decomposition,
    brier_score,
    crps_normal,
    crps_quantiles,
    format_reliability,
    interval_coverage,
    pit_histogram,
    reliability_table,
    require_scoringrules,
)
from targetsim.model.scenario import DEFAULT_QUANTILES


def closed_form_crps_normal(y, mu, sigma):
    """σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/σ (Gneiting et al. 2005), with SciPy."""
    z = (np.asarray(y) - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


# ------------------------------------------------------------------------------------------------ CRPS


def test_crps_normal_matches_the_closed_form():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 3, 500)
    mu = rng.normal(0, 1, 500)
    sigma = rng.uniform(0.05, 4, 500)
    got = crps_normal(y, mu, sigma)
    assert got.shape == (500,)
    np.testing.assert_allclose(got, closed_form_crps_normal(y, mu, sigma), rtol=1e-12, atol=1e-14)


def test_crps_normal_takes_one_value_or_one_per_observation():
    y = np.array([-1.0, 0.0, 2.5])
    np.testing.assert_allclose(crps_normal(y, 0.5, 2.0), closed_form_crps_normal(y, 0.5, 2.0), rtol=1e-12)
    assert np.ndim(crps_normal(0.3, 0.0, 1.0)) == 0
    # the scoringrules docstring's own example
    assert crps_normal(0.0, 0.1, 0.4) == pytest.approx(0.10339992515976162, rel=1e-12)


def normal_quantiles(y, levels, mu=0.0, sigma=1.0):
    return np.broadcast_to(stats.norm.ppf(levels, mu, sigma), np.shape(y) + (len(levels),))


OBS = np.linspace(-5.0, 5.0, 41)


def test_crps_quantiles_with_999_levels_is_within_a_fifth_of_a_percent_of_the_normal_crps():
    # levels k/1000: the equal-weight pinball quadrature overstates the CRPS by up to ≈ 1/K (0.1 %,
    # largest far in a tail); 0.2 % leaves room, and the midpoint levels do ten times better
    mu, sigma = 1.5, 2.0
    y = mu + sigma * OBS
    exact = closed_form_crps_normal(y, mu, sigma)
    levels = np.arange(1, 1000) / 1000
    got = crps_quantiles(y, normal_quantiles(y, levels, mu, sigma), levels)
    np.testing.assert_allclose(got, exact, rtol=2e-3)
    np.testing.assert_allclose(got, crps_normal(y, mu, sigma), rtol=2e-3)
    assert not np.allclose(got, exact, rtol=1e-6, atol=0)  # close, not equal
    mid = (np.arange(1, 1000) - 0.5) / 999
    np.testing.assert_allclose(crps_quantiles(y, normal_quantiles(y, mid, mu, sigma), mid), exact, rtol=2e-4)


def test_crps_quantiles_converges_as_the_levels_fill_the_interval():
    exact = closed_form_crps_normal(OBS, 0.0, 1.0)
    errors = []
    for k in (9, 99, 999):
        levels = np.arange(1, k + 1) / (k + 1)
        errors.append(np.max(np.abs(crps_quantiles(OBS, normal_quantiles(OBS, levels), levels) / exact - 1)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] < 0.015 and errors[2] < 0.002


def test_crps_quantiles_at_the_scenario_default_levels_is_not_the_crps():
    # documented: unevenly spaced levels weighted alike are no quadrature of the CRPS integral
    levels = np.array(DEFAULT_QUANTILES)
    y = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 5.0])
    ratio = crps_quantiles(y, normal_quantiles(y, levels), levels) / closed_form_crps_normal(y, 0.0, 1.0)
    assert np.all(ratio < 0.95) and np.all(ratio > 0.7)


def test_crps_of_a_point_mass_is_the_absolute_error():
    y = np.array([-3.0, 0.0, 0.25, 7.0])
    x = 0.5
    symmetric = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    q = np.full(y.shape + symmetric.shape, x)
    np.testing.assert_allclose(crps_quantiles(y, q, symmetric), np.abs(y - x), rtol=1e-14, atol=1e-15)
    # asymmetric levels: 2|x − y| times the mean of α (y above x) or of 1 − α (y below)
    skewed = np.array([0.1, 0.2, 0.3])
    q = np.full(y.shape + skewed.shape, x)
    expect = 2 * np.abs(y - x) * np.where(y > x, skewed.mean(), 1 - skewed.mean())
    np.testing.assert_allclose(crps_quantiles(y, q, skewed), expect, rtol=1e-14, atol=1e-15)
    # the normal's CRPS tends to the absolute error as σ → 0
    np.testing.assert_allclose(crps_normal(y, x, 1e-9), np.abs(y - x), atol=1e-8)


# ------------------------------------------------------------------------------------------------ Brier


def test_brier_score_known_values():
    p = np.array([0.2, 0.2, 0.7, 1.0, 0.0, 0.5])
    y = np.array([1, 0, 0, 1, 1, 0])
    np.testing.assert_allclose(brier_score(p, y), [0.64, 0.04, 0.49, 0.0, 1.0, 0.25], rtol=1e-14)
    assert float(brier_score(0.2, True)) == pytest.approx(0.64)
    np.testing.assert_allclose(brier_score(0.25, [0, 1]), [0.0625, 0.5625])


def test_brier_decomposition_hand_worked():
    # two bins, each holding one repeated forecast: Murphy's three terms are exact
    p = [0.15, 0.15, 0.85, 0.85]
    y = [0, 1, 1, 1]
    dec = brier_decomposition(p, y, bins=10)
    assert dec.brier == pytest.approx((0.15**2 + 0.85**2 + 0.15**2 + 0.15**2) / 4)
    assert dec.reliability == pytest.approx((2 * 0.35**2 + 2 * 0.15**2) / 4)
    assert dec.resolution == pytest.approx((2 * 0.25**2 + 2 * 0.25**2) / 4)
    assert dec.uncertainty == pytest.approx(0.75 * 0.25)
    assert dec.within_bin_variance == pytest.approx(0.0, abs=1e-15)
    assert dec.within_bin_covariance == pytest.approx(0.0, abs=1e-15)
    # one bin, two different forecasts: the within-bin terms carry the difference
    dec = brier_decomposition([0.2, 0.6], [0, 1], bins=1)
    assert (dec.brier, dec.reliability, dec.resolution, dec.uncertainty) == pytest.approx((0.1, 0.01, 0.0, 0.25))
    assert dec.within_bin_variance == pytest.approx(0.04)
    assert dec.within_bin_covariance == pytest.approx(0.2)  # (2/2)·[(−½)(−0.2) + (½)(0.2)]


pairs = st.integers(1, 300).flatmap(lambda n: st.tuples(
    st.lists(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])), min_size=n, max_size=n),
    st.lists(st.integers(0, 1), min_size=n, max_size=n)))


@settings(max_examples=150, deadline=None)
@given(pairs, st.integers(1, 25))
def test_brier_decomposition_identity_is_exact(data, bins):
    p, y = map(np.asarray, data)
    dec = brier_decomposition(p, y, bins=bins)
    # the mean Brier score, computed independently through scoringrules
    assert dec.brier == pytest.approx(float(np.mean(brier_score(p, y))), rel=0, abs=1e-15)
    assert abs(dec.reconstructed - dec.brier) <= 1e-13
    assert dec.reliability >= 0 and dec.resolution >= 0 and dec.within_bin_variance >= 0
    assert 0 <= dec.uncertainty <= 0.25
    assert dec.n == len(p) and dec.bins == bins


# ------------------------------------------------------------------------------------------------ reliability

N = 100_000


def test_calibrated_forecasts_lie_within_four_standard_errors_of_the_diagonal():
    rng = np.random.default_rng(20240601)
    p = rng.uniform(0, 1, N)
    y = rng.uniform(0, 1, N) < p
    table = reliability_table(p, y, bins=10, min_count=100)
    assert table.n == N and table.bins == 10 and table.meaningful.all()
    np.testing.assert_allclose(table.edges, np.linspace(0, 1, 11))
    # every bin against an independent count with masks
    for k in range(10):
        inside = (p >= k / 10) & (p < (k + 1) / 10)
        assert table.count[k] == inside.sum()
        assert table.mean_forecast[k] == pytest.approx(p[inside].mean())
        assert table.observed_frequency[k] == pytest.approx(y[inside].mean())
        pbar = p[inside].mean()
        assert table.standard_error[k] == pytest.approx(math.sqrt(pbar * (1 - pbar) / inside.sum()))
    deviation = np.abs(table.observed_frequency - table.mean_forecast)
    assert np.all(deviation <= 4 * table.standard_error), table.z
    dec = brier_decomposition(p, y, bins=10)
    assert dec.reliability < 1e-4


def test_miscalibrated_forecasts_are_detected():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 1, N)
    overconfident = rng.uniform(0, 1, N) < 0.5 + 0.6 * (p - 0.5)  # the truth is less extreme than p
    table = reliability_table(p, overconfident, bins=10, min_count=100)
    assert np.any(table.meaningful & (np.abs(table.z) > 4))
    assert np.abs(table.z[0]) > 4 and np.abs(table.z[-1]) > 4 and table.z[0] > 0 > table.z[-1]
    calibrated = brier_decomposition(p, rng.uniform(0, 1, N) < p).reliability
    assert brier_decomposition(p, overconfident).reliability > 10 * calibrated


def test_small_bins_are_flagged_and_empty_bins_hold_nan():
    p = np.array([0.05, 0.07, 0.5, 0.52, 0.55, 1.0, 1.0])
    y = np.array([0, 0, 1, 0, 1, 1, 1])
    table = reliability_table(p, y, bins=4, min_count=3)
    assert table.count.tolist() == [2, 0, 3, 2]
    assert table.meaningful.tolist() == [False, False, True, False]
    assert np.isnan(table.mean_forecast[1]) and np.isnan(table.observed_frequency[1]) and np.isnan(table.z[1])
    assert table.z[3] == 0.0  # forecasts of 1 that came true: no deviation, no spread
    bad = reliability_table([0.0, 0.0], [0, 1], bins=2, min_count=1)
    assert math.isinf(bad.z[0]) and bad.z[0] > 0


def test_format_reliability_fits_in_80_columns():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 5000) ** 2
    y = rng.uniform(0, 1, 5000) < p
    table = reliability_table(p, y, bins=20, min_count=200)
    text = format_reliability(table, decomposition=brier_decomposition(p, y, bins=20), title="Calibration")
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, text
    assert lines[0] == "Calibration" and lines[1].split()[:3] == ["bin", "count", "forecast"]
    assert lines[2].startswith("[0.00, 0.05)") and "[0.95, 1.00]" in text
    assert any(line.endswith(" *") for line in lines) and "fewer than 200 forecasts" in text
    assert "Brier score" in text and "within-bin covariance" in text
    # huge counts and an empty bin
    big = reliability_table(np.r_[np.zeros(3), np.full(3, 0.9)], [0, 0, 0, 1, 1, 0], bins=10, min_count=1)
    big = dataclasses.replace(big, count=big.count * 300_000_000)
    text = format_reliability(big, digits=6)
    assert max(map(len, text.splitlines())) <= 80, text
    assert "900,000,000" in text and "[0.1, 0.2)" in text


# ------------------------------------------------------------------------------------------------ PIT, intervals


def test_pit_of_calibrated_forecasts_is_uniform():
    rng = np.random.default_rng(11)
    y = rng.normal(2.0, 3.0, 20_000)
    hist = pit_histogram(stats.norm.cdf(y, 2.0, 3.0), bins=10)
    assert hist.n == 20_000 and hist.counts.shape == (10,) and hist.expected == 2000
    statistic = float(np.sum((hist.counts - 2000) ** 2 / 2000))
    assert hist.statistic == pytest.approx(statistic)
    assert hist.p_value == pytest.approx(stats.chi2.sf(statistic, 9))
    assert hist.p_value > 0.01


def test_pit_of_miscalibrated_forecasts_is_not_uniform():
    rng = np.random.default_rng(12)
    y = rng.normal(0.0, 2.0, 20_000)
    too_narrow = pit_histogram(stats.norm.cdf(y, 0.0, 1.0))
    assert too_narrow.p_value < 1e-10
    assert too_narrow.counts[0] > 2 * too_narrow.expected and too_narrow.counts[-1] > 2 * too_narrow.expected
    too_wide = pit_histogram(stats.norm.cdf(y, 0.0, 4.0))
    assert too_wide.p_value < 1e-10 and too_wide.counts[4] > too_wide.expected > too_wide.counts[0]
    biased = pit_histogram(stats.norm.cdf(y, 1.0, 2.0), bins=5)
    assert biased.p_value < 1e-10 and biased.counts[0] > biased.counts[-1]


def test_pit_edges_go_to_the_bin_they_open():
    hist = pit_histogram([0.0, 0.5, 1.0, 0.25], bins=4)
    assert hist.counts.tolist() == [1, 1, 1, 1]


def test_interval_coverage_is_inclusive():
    assert interval_coverage([1.0, 2.0, 3.0, 4.0], 2.0, 3.0) == 0.5
    assert interval_coverage([1.0, 2.0], [0.0, 2.5], [1.0, np.inf]) == 0.5
    assert interval_coverage(5.0, -np.inf, 5.0) == 1.0
    rng = np.random.default_rng(5)
    y = rng.normal(size=N)
    z = stats.norm.ppf(0.95)
    assert abs(interval_coverage(y, -z, z) - 0.9) < 4 * math.sqrt(0.09 / N)


# ------------------------------------------------------------------------------------------------ the library


def test_a_missing_scoringrules_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scoringrules", None)  # makes `import scoringrules` raise ImportError
    with pytest.raises(TargetsimError, match=r"pip install 'targetsim\[calibrate\]'") as err:
        require_scoringrules()
    assert "targetsim backtest" in str(err.value)
    with pytest.raises(TargetsimError, match=r"crps_normal .*targetsim\[calibrate\]"):
        crps_normal(0.0, 0.0, 1.0)
    with pytest.raises(TargetsimError, match=r"brier_score .*targetsim\[calibrate\]"):
        brier_score(0.5, 1)
    # what does not need it still works
    assert brier_decomposition([0.2, 0.6], [0, 1], bins=1).brier == pytest.approx(0.1)


def test_importing_the_module_loads_neither_scoringrules_nor_scipy():
    code = ("import sys, targetsim.estimate.scores; "
            "print(sorted(m for m in ('scoringrules', 'scipy', 'statsmodels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------------ bad input

BAD = [
    (lambda: brier_score([0.1, 0.2], [0, 1, 1]), r"shapes do not pair up"),
    (lambda: brier_score([0.1, 1.2], [0, 1]), r"probability must lie in \[0, 1\]"),
    (lambda: brier_score([-0.1, 0.2], [0, 1]), r"probability must lie in \[0, 1\]"),
    (lambda: brier_score([0.1, 0.2], [0, 0.5]), r"outcome must be 0 or 1"),
    (lambda: brier_score([0.1, 0.2], [0, 2]), r"outcome must be 0 or 1"),
    (lambda: brier_score([0.1, np.nan], [0, 1]), r"probability has 1 NaN"),
    (lambda: brier_score(["a"], [0]), r"probability must be numbers"),
    (lambda: reliability_table([0.1, 0.2], [[0], [1]]), r"probability has shape \(2,\) and outcome \(2, 1\)"),
    (lambda: reliability_table(0.1, [0, 1]), r"probability has shape \(\) and outcome \(2,\)"),
    (lambda: reliability_table([], []), r"probability is empty"),
    (lambda: reliability_table([0.1], [1], bins=0), r"bins must be a whole number"),
    (lambda: reliability_table([0.1], [1], bins=2.5), r"bins must be a whole number"),
    (lambda: reliability_table([0.1], [1], min_count=0), r"min_count must be"),
    (lambda: reliability_table([0.1], [3]), r"outcome must be 0 or 1"),
    (lambda: brier_decomposition([0.1, 2.0], [0, 1]), r"probability must lie in \[0, 1\]"),
    (lambda: brier_decomposition([0.1, 0.2], [0, 1, 0]), r"give one outcome per probability"),
    (lambda: crps_normal([0.0, 1.0], [0.0, 1.0, 2.0], 1.0), r"shapes do not pair up"),
    (lambda: crps_normal(np.zeros(3), np.zeros((3, 1)), 1.0), r"shapes do not pair up"),
    (lambda: crps_normal(0.0, 0.0, 0.0), r"sigma must be positive"),
    (lambda: crps_normal(np.inf, 0.0, 1.0), r"observation has 1 NaN or infinite"),
    (lambda: crps_quantiles([0.0, 1.0], np.zeros((2, 3)), [0.25, 0.5]), r"must be \(2, 2\)"),
    (lambda: crps_quantiles(0.0, [0.0, 1.0], [0.0, 0.5]), r"levels must lie strictly between 0 and 1"),
    (lambda: crps_quantiles(0.0, [0.0, 1.0], [0.5, 1.0]), r"levels must lie strictly between 0 and 1"),
    (lambda: crps_quantiles(0.0, [0.0, 1.0], [0.5, 0.25]), r"levels must be strictly increasing"),
    (lambda: crps_quantiles(0.0, [1.0, 0.0], [0.25, 0.5]), r"quantiles must not decrease"),
    (lambda: crps_quantiles(0.0, [[0.0, 1.0]], [[0.25, 0.5]]), r"levels must be a non-empty 1-D"),
    (lambda: pit_histogram([0.5, 1.5]), r"pit values must lie in \[0, 1\]"),
    (lambda: pit_histogram([]), r"pit is empty"),
    (lambda: pit_histogram([0.5], bins=1), r"bins must be a whole number of at least 2"),
    (lambda: interval_coverage([1.0, 2.0], [0.0, 3.0], 2.5), r"lower must not exceed upper"),
    (lambda: interval_coverage([1.0, 2.0], [0.0, 1.0, 2.0], 2.5), r"shapes do not pair up"),
    (lambda: interval_coverage([], 0.0, 1.0), r"no observations"),
    (lambda: interval_coverage([1.0], np.nan, 1.0), r"lower has 1 NaN"),
    (lambda: format_reliability({"count": [1]}), r"table must be a ReliabilityTable"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
