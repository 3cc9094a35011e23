"""The vectorisable kernels' building blocks agree with their plain references.

``exp_lanes`` replaces ``math.exp`` in the kernel; ``popcount`` counts the pairs of targets
missed together; ``normal_from_words`` / ``double_from_words``
replace ``next_normal`` / ``next_double`` with the state in registers; ``sketch_bin`` became
branch-free. Each must give what the reference gives (bit for bit where the claim is exact).
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from targetsim.kernels.elementary import exp_lanes, log_lanes, popcount
from targetsim.kernels.rng import (double_from_words, key_from_seed, next_double, next_normal,
                                   normal_from_words, seed_path_state)
from targetsim.kernels.sketch import sketch_bin

SMALLEST_NORMAL = np.finfo(np.float64).tiny


def ulp_error(got, want):
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_exp_within_two_ulp_wherever_the_result_is_normal():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-708.39, 709.78, 1_000_000), rng.uniform(-3.0, 3.0, 1_000_000),
                        np.linspace(-1e-12, 1e-12, 1001), [0.0, -0.0, 709.782, -708.3964]])
    got = np.empty_like(x)
    exp_lanes(x, x.size, got)
    want = np.array([math.exp(v) for v in x])
    assert want.min() >= SMALLEST_NORMAL
    assert ulp_error(got, want).max() <= 2.0


def test_exp_special_values():
    x = np.array([np.inf, -np.inf, np.nan, 710.0, 1e308, -1e308, -708.4, -745.2, -800.0, 0.0])
    got = np.empty_like(x)
    exp_lanes(x, x.size, got)
    assert got[0] == np.inf and got[3] == np.inf and got[4] == np.inf
    assert got[1] == 0.0 and got[5] == 0.0 and got[8] == 0.0
    assert np.isnan(got[2])
    # below 2^-1022 the result would be subnormal: flushed to zero (documented)
    assert got[6] == 0.0 and got[7] == 0.0
    assert got[9] == 1.0


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_exp_matches_math_exp_property(v):
    got = np.empty(1)
    exp_lanes(np.array([v]), 1, got)
    if math.isnan(v):
        assert math.isnan(got[0])
        return
    want = math.exp(v) if v < 709.79 else math.inf
    if want < SMALLEST_NORMAL:
        assert got[0] == 0.0
    elif math.isinf(want):
        assert got[0] == math.inf
    else:
        assert ulp_error(got, np.array([want]))[0] <= 2.0


def test_exp_lanes_only_writes_the_first_n_lanes():
    out = np.full(8, -1.0)
    exp_lanes(np.zeros(8), 5, out)
    assert out.tolist() == [1.0] * 5 + [-1.0] * 3


def test_log_within_two_ulp_for_every_positive_double():
    rng = np.random.default_rng(8)
    x = np.concatenate([np.exp(rng.uniform(-745.0, 709.7, 1_000_000)), rng.uniform(0.5, 2.0, 1_000_000),
                        1.0 + np.linspace(-1e-9, 1e-9, 2001), [5e-324, 1e-310, SMALLEST_NORMAL, np.finfo(float).max]])
    got = np.empty_like(x)
    log_lanes(x, x.size, got)
    want = np.array([math.log(v) for v in x])
    exact_zero = want == 0.0
    assert np.all(got[exact_zero] == 0.0)
    assert ulp_error(got[~exact_zero], want[~exact_zero]).max() <= 2.0


def test_log_special_values():
    x = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0])
    got = np.empty_like(x)
    log_lanes(x, x.size, got)
    assert got[0] == -np.inf and got[1] == -np.inf and got[3] == np.inf and got[6] == 0.0
    assert np.isnan(got[2]) and np.isnan(got[4]) and np.isnan(got[5])


@njit
def _draws_both_ways(key, n_paths, n_draws):
    state = np.empty(4, dtype=np.uint64)
    by_array = np.empty((n_paths, n_draws))
    by_words = np.empty((n_paths, n_draws))
    for p in range(n_paths):
        seed_path_state(key, p, state)
        for d in range(n_draws):
            by_array[p, d] = next_normal(state) if d % 3 else next_double(state)
        seed_path_state(key, p, state)
        s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
        for d in range(n_draws):
            if d % 3:
                by_words[p, d], s0, s1, s2, s3 = normal_from_words(s0, s1, s2, s3)
            else:
                by_words[p, d], s0, s1, s2, s3 = double_from_words(s0, s1, s2, s3)
    return by_array, by_words


def test_register_state_draws_are_the_array_state_draws():
    # 200 paths x 300 draws: ~600 of the 40,000 normals take the ziggurat's slow path
    a, b = _draws_both_ways(key_from_seed(3), 200, 300)
    assert np.array_equal(a, b)


def _sketch_bin_reference(log_value, lo, inv_width, n_bins):
    if math.isnan(log_value) or log_value == -math.inf:
        return 0  # a zero or a negative value
    pos = (log_value - lo) * inv_width
    if not pos >= 0.0:
        return 1
    if pos >= n_bins:
        return n_bins + 2
    return int(pos) + 2


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-50, 50), st.floats(0.01, 100.0),
       st.integers(1, 5000))
def test_branch_free_sketch_bin_is_the_plain_rule(log_value, lo, inv_width, n_bins):
    assert sketch_bin(log_value, lo, inv_width, n_bins) == _sketch_bin_reference(log_value, lo, inv_width, n_bins)


@njit
def _popcounts(words):
    out = np.empty(words.shape[0], dtype=np.int64)
    for i in range(words.shape[0]):
        out[i] = popcount(words[i])
    return out


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=64))
def test_popcount_counts_the_set_bits(values):
    words = np.array(values + [0, 2**64 - 1, 1 << 63], dtype=np.uint64)
    np.testing.assert_array_equal(_popcounts(words), [bin(int(v)).count("1") for v in words])
