"""The quantile sketch against exact sample quantiles: within its stated relative error bound."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from targetsim.kernels.sketch import OFF_GRID_BINS, relative_error_bound, sketch_bin, sketch_quantile

QS = np.array([0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999])


def build(values: np.ndarray, lo: float, width: float, n_bins: int) -> np.ndarray:
    counts = np.zeros(n_bins + OFF_GRID_BINS, dtype=np.int64)
    with np.errstate(divide="ignore"):
        logs = np.log(values)
    for v in logs:
        counts[sketch_bin(v, lo, 1.0 / width, n_bins)] += 1
    return counts


def type1_quantile(values: np.ndarray, q: float) -> float:
    ordered = np.sort(values)
    rank = max(1, math.ceil(q * len(values) - 1e-9 * len(values)))
    return float(ordered[rank - 1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3000), sigma=st.floats(0.01, 2.0),
       n_bins=st.sampled_from([64, 512, 4096]))
def test_quantiles_within_relative_bound(seed, n, sigma, n_bins):
    rng = np.random.default_rng(seed)
    values = np.exp(rng.normal(3.0, sigma, size=n))
    lo, hi = 3.0 - 10 * sigma, 3.0 + 10 * sigma
    width = (hi - lo) / n_bins
    out = np.empty(QS.shape[0])
    sketch_quantile(build(values, lo, width, n_bins), lo, width, QS, values.min(), values.max(), out)
    bound = relative_error_bound(width)
    for q, got in zip(QS, out):
        exact = type1_quantile(values, q)
        assert abs(got / exact - 1) <= bound * (1 + 1e-12), (q, got, exact)


def test_out_of_grid_mass_is_not_invented():
    values = np.array([1.0, 2.0, 1e9])
    lo, width, n_bins = 0.0 - 1e-9, 0.01, 100  # grid covers [1, e^1]
    counts = build(values, lo, width, n_bins)
    assert counts[0] == counts[1] == 0 and counts[-1] == 1  # 1 and 2 lie on the grid, 1e9 beyond it
    out = np.empty(2)
    sketch_quantile(counts, lo, width, np.array([0.2, 0.9]), 1.0, 1e9, out)
    assert abs(out[0] - 1.0) <= relative_error_bound(width)
    assert math.isnan(out[1])  # in the overflow bin: unknown, so NaN rather than a made-up value


def test_zeros_have_a_bin_of_their_own():
    assert sketch_bin(float("-inf"), 0.0, 1.0, 10) == 0  # ln 0
    assert sketch_bin(float("nan"), 0.0, 1.0, 10) == 0   # ln of a negative value
    assert sketch_bin(-5.0, 0.0, 1.0, 10) == 1           # positive, below the grid
    assert sketch_bin(0.5, 0.0, 1.0, 10) == 2            # the grid's first bin
    assert sketch_bin(100.0, 0.0, 1.0, 10) == 12         # above the grid


def test_quantiles_among_zeros_are_exactly_zero():
    # 30 zeros, 70 values on the grid: every quantile up to 0.3 is 0, the next ones on the grid
    values = np.concatenate([np.zeros(30), np.linspace(1.0, 2.0, 70)])
    lo, width, n_bins = -1e-9, 0.001, 1000
    counts = build(values, lo, width, n_bins)
    assert counts[0] == 30 and counts[1] == 0
    qs = np.array([0.01, 0.05, 0.3, 0.31, 0.9])
    out = np.empty(qs.size)
    sketch_quantile(counts, lo, width, qs, 0.0, 2.0, out)
    assert list(out[:3]) == [0.0, 0.0, 0.0]
    for q, got in zip(qs[3:], out[3:]):
        exact = type1_quantile(values, q)
        assert abs(got / exact - 1) <= relative_error_bound(width) * (1 + 1e-12)
