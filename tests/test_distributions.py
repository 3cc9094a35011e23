"""Tests for targetsim.kernels.distributions: exact gamma, Poisson, NB and t samplers.

Every test uses fixed keys, so each statistical check is deterministic.  The
tolerances are 5 standard errors or p > 1e-4, so they would also hold for
almost any other key: a failure means a biased sampler, not bad luck.
Draws come from per-path streams, as in the engine: a new path (seed) every
``BLOCK`` draws.
"""

import math

import numpy as np
import pytest
from numba import njit, prange
from scipy import stats

from targetsim.kernels import distributions as dist
from targetsim.kernels.distributions import (
    next_chi2,
    next_gamma,
    next_negative_binomial,
    next_poisson,
    student_t_scale,
)
from targetsim.kernels.rng import key_from_seed, next_normal, seed_path_state

KEY = key_from_seed(20240612)
N = 200_000
BLOCK = 1000  # draws per path stream

# ---------------------------------------------------------------------------
# njit drivers: n draws, re-seeding the stream for path p every BLOCK draws
# ---------------------------------------------------------------------------


@njit
def draw_poisson(key, lam, n, block):
    out = np.empty(n, np.int64)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        out[i] = next_poisson(state, lam)
    return out


@njit
def draw_nb(key, mean, dispersion, n, block):
    out = np.empty(n, np.int64)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        out[i] = next_negative_binomial(state, mean, dispersion)
    return out


@njit
def draw_gamma(key, shape, n, block):
    out = np.empty(n)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        out[i] = next_gamma(state, shape)
    return out


@njit
def draw_chi2(key, dof, n, block):
    out = np.empty(n)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        out[i] = next_chi2(state, dof)
    return out


@njit
def draw_t(key, dof, n, block):
    """z * student_t_scale, z drawn separately (first), as the engine does."""
    out = np.empty(n)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        z = next_normal(state)
        out[i] = z * student_t_scale(state, dof)
    return out


@njit
def draw_t_scale(key, dof, n, block):
    out = np.empty(n)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        out[i] = student_t_scale(state, dof)
    return out


@njit
def draw_t_pairs(key, dof, n, block):
    """Two normals sharing one multiplier (the engine's multivariate t)."""
    out = np.empty((n, 2))
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        z0 = next_normal(state)
        z1 = next_normal(state)
        s = student_t_scale(state, dof)
        out[i, 0] = z0 * s
        out[i, 1] = z1 * s
    return out


@njit
def state_after(key, path, which, param):
    """State words after one draw (which: 0 Poisson, 1 NB with mean param)."""
    state = np.empty(4, np.uint64)
    seed_path_state(key, path, state)
    if which == 0:
        x = next_poisson(state, param)
    else:
        x = next_negative_binomial(state, param, 2.0)
    return x, state.copy()


# ---------------------------------------------------------------------------
# Statistical helpers
# ---------------------------------------------------------------------------


def assert_mean_var(x, mean, var, ex_kurt, k=5.0):
    """Sample mean and variance within k standard errors of the true ones.

    SE(mean) = sqrt(var / n); SE(sample variance) = var * sqrt((ex_kurt + 2) / n).
    """
    n = len(x)
    m = float(np.mean(x))
    v = float(np.var(x, ddof=1))
    se_m = math.sqrt(var / n)
    se_v = var * math.sqrt((ex_kurt + 2.0) / n)
    assert abs(m - mean) < k * se_m, f"mean {m} vs {mean} (SE {se_m})"
    assert abs(v - var) < k * se_v, f"variance {v} vs {var} (SE {se_v})"


def chisq_gof_discrete(x, dist_frozen, min_expected=5.0):
    """Chi-square goodness-of-fit p-value of integer sample x against a pmf.

    Bins are single values where n * pmf >= min_expected (a contiguous range
    for a unimodal pmf); the two tails go into one bin each, merged into the
    neighbouring bin when they are too small themselves.
    """
    n = len(x)
    lo = int(dist_frozen.ppf(1e-12))
    hi = int(dist_frozen.ppf(1.0 - 1e-12)) + 1
    ks = np.arange(lo, hi + 1)
    expected = n * dist_frozen.pmf(ks)
    big = np.nonzero(expected >= min_expected)[0]
    a, b = ks[big[0]], ks[big[-1]]  # single-value bins a..b
    edges = np.arange(a, b + 1)
    exp_bins = n * dist_frozen.pmf(edges)
    obs_bins = np.array([np.count_nonzero(x == k) for k in edges], dtype=float)
    exp_left, obs_left = n * dist_frozen.cdf(a - 1), np.count_nonzero(x < a)
    exp_right, obs_right = n * dist_frozen.sf(b), np.count_nonzero(x > b)
    # Merge each tail into the neighbouring value bin if it is too small.
    if exp_left >= min_expected:
        exp_bins = np.concatenate(([exp_left], exp_bins))
        obs_bins = np.concatenate(([obs_left], obs_bins))
    else:
        exp_bins[0] += exp_left
        obs_bins[0] += obs_left
    if exp_right >= min_expected:
        exp_bins = np.concatenate((exp_bins, [exp_right]))
        obs_bins = np.concatenate((obs_bins, [obs_right]))
    else:
        exp_bins[-1] += exp_right
        obs_bins[-1] += obs_right
    assert obs_bins.sum() == n
    assert len(exp_bins) >= 2
    # expected sums to n up to the pmf's rounding; rescale so scipy accepts it
    exp_bins *= n / exp_bins.sum()
    return stats.chisquare(obs_bins, exp_bins).pvalue


# ---------------------------------------------------------------------------
# Poisson
# ---------------------------------------------------------------------------

POISSON_LAMS = (0.3, 4.0, 9.99, 10.0, 37.5, 1000.0, 2.5e5)


@pytest.mark.parametrize("lam", POISSON_LAMS)
def test_poisson_moments_and_gof(lam):
    # 9.99 / 10.0 straddle the switch from inversion to PTRS.
    x = draw_poisson(KEY, lam, N, BLOCK)
    assert x.dtype == np.int64
    assert x.min() >= 0
    assert_mean_var(x, lam, lam, 1.0 / lam)
    p = chisq_gof_discrete(x, stats.poisson(lam))
    assert p > 1e-4, f"chi-square GOF p = {p}"


def test_poisson_large_lambda_mean():
    lam = 1.0e6
    x = draw_poisson(KEY, lam, 50_000, BLOCK)
    assert_mean_var(x, lam, lam, 1.0 / lam)


def test_poisson_tiny_lambda():
    # P(X >= 1) = 1 - exp(-lam) ~ lam: counts of ones within 5 SE.
    lam = 1e-3
    x = draw_poisson(KEY, lam, N, BLOCK)
    p1 = -math.expm1(-lam)
    assert abs(np.count_nonzero(x) / N - p1) < 5 * math.sqrt(p1 * (1 - p1) / N)
    assert x.max() <= 3


def test_poisson_inversion_table_covers_tail_stop():
    # The inversion's tail stop (p(k) < 2**-64) must end the search inside the
    # 1/k table for the largest lam it handles.
    lam = np.nextafter(10.0, 0.0)
    p, k = math.exp(-lam), 0
    while not p < 2.0 ** -64:
        k += 1
        p *= lam / k
    assert k < len(dist._INV_K)


# ---------------------------------------------------------------------------
# Negative binomial
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mean,dispersion", [(3.0, 0.5), (20.0, 2.0), (200.0, 50.0)])
def test_negative_binomial_moments_and_gof(mean, dispersion):
    x = draw_nb(KEY, mean, dispersion, N, BLOCK)
    assert x.dtype == np.int64
    ref = stats.nbinom(n=dispersion, p=dispersion / (dispersion + mean))
    m, v, k = (float(t) for t in ref.stats(moments="mvk"))
    assert m == pytest.approx(mean)
    assert v == pytest.approx(mean + mean**2 / dispersion)
    assert_mean_var(x, m, v, k)
    p = chisq_gof_discrete(x, ref)
    assert p > 1e-4, f"chi-square GOF p = {p}"


# ---------------------------------------------------------------------------
# Gamma and chi-square
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [0.2, 0.9, 1.0, 2.5, 40.0])
def test_gamma_ks_and_mean(shape):
    x = draw_gamma(KEY, shape, N, BLOCK)
    assert x.dtype == np.float64
    assert np.all(np.isfinite(x)) and x.min() >= 0.0
    assert stats.kstest(x, stats.gamma(shape).cdf).pvalue > 1e-4
    assert abs(x.mean() - shape) < 5 * math.sqrt(shape / N)


def test_gamma_shape_below_one_small_values():
    # The boost G * U**(1/a) must reproduce the steep density near 0:
    # P(X < 1e-3) for shape 0.2 is ~0.28.
    shape = 0.2
    x = draw_gamma(KEY, shape, N, BLOCK)
    q = stats.gamma(shape).cdf(1e-3)
    assert abs(np.mean(x < 1e-3) - q) < 5 * math.sqrt(q * (1 - q) / N)


@pytest.mark.parametrize("dof", [1.0, 7.0])
def test_chi2_ks(dof):
    x = draw_chi2(KEY, dof, N, BLOCK)
    assert stats.kstest(x, stats.chi2(dof).cdf).pvalue > 1e-4
    assert abs(x.mean() - dof) < 5 * math.sqrt(2 * dof / N)


# ---------------------------------------------------------------------------
# Student-t
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dof", [3.0, 5.0, 30.0])
def test_student_t_ks(dof):
    x = draw_t(KEY, dof, N, BLOCK)
    ref = stats.t(dof, scale=math.sqrt((dof - 2.0) / dof))
    assert stats.kstest(x, ref.cdf).pvalue > 1e-4


def test_student_t_unit_variance_dof30():
    dof = 30.0
    x = draw_t(KEY, dof, N, BLOCK)
    assert_mean_var(x, 0.0, 1.0, 6.0 / (dof - 4.0))


@pytest.mark.parametrize("dof", [5.0, 30.0])
def test_student_t_scale_squared_has_mean_one(dof):
    # E[(dof - 2) / chi2(dof)] = 1 exactly, Var = 2 / (dof - 4): the unit
    # variance holds through the multiplier itself.
    s2 = draw_t_scale(KEY, dof, N, BLOCK) ** 2
    assert abs(s2.mean() - 1.0) < 5 * math.sqrt(2.0 / (dof - 4.0) / N)


def test_shared_multiplier_gives_uncorrelated_but_dependent_margins():
    # Multivariate t: components of independent normals stay uncorrelated,
    # but share the multiplier, so their squares are positively correlated
    # (corr(x0^2, x1^2) = 1/9 for dof = 10, vs 0 for independent t margins).
    dof = 10.0
    x = draw_t_pairs(KEY, dof, N, BLOCK)
    r = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert abs(r) < 5 / math.sqrt(N)
    r2 = np.corrcoef(x[:, 0] ** 2, x[:, 1] ** 2)[0, 1]
    # Var(x^2) = 3 E[s^4] - 1, Cov(x0^2, x1^2) = E[s^4] - 1 with
    # E[s^4] = (dof - 2) / (dof - 4).  The estimate's SE is ~0.005 here;
    # 0.03 leaves room for the heavy tails.
    e_s4 = (dof - 2.0) / (dof - 4.0)
    expected = (e_s4 - 1.0) / (3.0 * e_s4 - 1.0)
    assert expected == pytest.approx(1.0 / 9.0)
    assert abs(r2 - expected) < 0.03


def test_student_t_scale_infinite_dof_is_one():
    state = np.empty(4, np.uint64)
    seed_path_state(KEY, 0, state)
    before = state.copy()
    assert student_t_scale(state, math.inf) == 1.0
    assert np.array_equal(state, before)


# ---------------------------------------------------------------------------
# Determinism, zero parameters, types and invalid input
# ---------------------------------------------------------------------------


def test_same_key_and_path_give_identical_draws():
    for f, args in ((draw_poisson, (4.0,)), (draw_poisson, (37.5,)), (draw_nb, (20.0, 2.0)),
                    (draw_gamma, (0.5,)), (draw_gamma, (2.5,)), (draw_t, (5.0,))):
        a = f(KEY, *args, 5000, BLOCK)
        b = f(KEY, *args, 5000, BLOCK)
        assert np.array_equal(a, b)
        # paths are independent streams: path 1 does not repeat path 0
        assert not np.array_equal(a[:BLOCK], a[BLOCK:2 * BLOCK])
        # a different key gives different draws
        c = f(KEY ^ np.uint64(1), *args, 5000, BLOCK)
        assert not np.array_equal(a, c)


def test_zero_lambda_and_zero_mean_give_zero_without_drawing():
    state0 = np.empty(4, np.uint64)
    seed_path_state(KEY, 3, state0)
    x, st = state_after(KEY, 3, 0, 0.0)
    assert x == 0 and np.array_equal(st, state0)
    x, st = state_after(KEY, 3, 1, 0.0)
    assert x == 0 and np.array_equal(st, state0)
    assert np.all(draw_poisson(KEY, 0.0, 1000, BLOCK) == 0)
    assert np.all(draw_nb(KEY, 0.0, 2.0, 1000, BLOCK) == 0)


def test_integer_arguments_and_return_types():
    # Python ints as parameters compile and give the same draws as floats.
    assert np.array_equal(draw_poisson(KEY, 4, 2000, BLOCK), draw_poisson(KEY, 4.0, 2000, BLOCK))
    assert np.array_equal(draw_nb(KEY, 20, 2, 2000, BLOCK), draw_nb(KEY, 20.0, 2.0, 2000, BLOCK))
    assert np.array_equal(draw_gamma(KEY, 3, 2000, BLOCK), draw_gamma(KEY, 3.0, 2000, BLOCK))
    state = np.empty(4, np.uint64)
    seed_path_state(KEY, 0, state)
    assert isinstance(next_poisson(state, 3.0), int)
    assert isinstance(next_poisson(state, 300.0), int)
    assert isinstance(next_negative_binomial(state, 3.0, 1.0), int)
    assert isinstance(next_gamma(state, 0.5), float)
    assert isinstance(student_t_scale(state, 4.0), float)


@pytest.mark.parametrize("call,sentinel", [
    (lambda s: next_poisson(s, -1.0), -1),
    (lambda s: next_poisson(s, math.nan), -1),
    (lambda s: next_poisson(s, math.inf), -1),
    (lambda s: next_poisson(s, 1e17), -1),
    (lambda s: next_negative_binomial(s, -1.0, 2.0), -1),
    (lambda s: next_negative_binomial(s, 3.0, 0.0), -1),
    (lambda s: next_negative_binomial(s, math.nan, 2.0), -1),
    (lambda s: next_negative_binomial(s, 3.0, math.inf), -1),
    (lambda s: next_gamma(s, 0.0), math.nan),
    (lambda s: next_gamma(s, -2.0), math.nan),
    (lambda s: next_gamma(s, math.nan), math.nan),
    (lambda s: next_gamma(s, math.inf), math.nan),
    (lambda s: next_chi2(s, 0.0), math.nan),
    (lambda s: student_t_scale(s, 2.0), math.nan),
    (lambda s: student_t_scale(s, math.nan), math.nan),
])
def test_invalid_parameters_return_sentinel_without_drawing(call, sentinel):
    # Sentinels, not exceptions: numba drops exceptions raised in prange bodies.
    state = np.empty(4, np.uint64)
    seed_path_state(KEY, 0, state)
    before = state.copy()
    x = call(state)
    if isinstance(sentinel, float):
        assert isinstance(x, float) and math.isnan(x)
    else:
        assert x == sentinel == dist.INVALID_COUNT
    assert np.array_equal(state, before)


@njit(parallel=True)
def mixed_draws_parallel(key, n_paths, per_path):
    out = np.empty((n_paths, per_path, 4))
    for p in prange(n_paths):
        state = np.empty(4, np.uint64)
        seed_path_state(key, p, state)
        for j in range(per_path):
            out[p, j, 0] = next_poisson(state, 3.0 + j)
            out[p, j, 1] = next_negative_binomial(state, 20.0, 2.0)
            out[p, j, 2] = next_gamma(state, 0.5)
            out[p, j, 3] = next_normal(state) * student_t_scale(state, 5.0)
    return out


@njit
def mixed_draws_serial(key, n_paths, per_path):
    out = np.empty((n_paths, per_path, 4))
    state = np.empty(4, np.uint64)
    for p in range(n_paths):
        seed_path_state(key, p, state)
        for j in range(per_path):
            out[p, j, 0] = next_poisson(state, 3.0 + j)
            out[p, j, 1] = next_negative_binomial(state, 20.0, 2.0)
            out[p, j, 2] = next_gamma(state, 0.5)
            out[p, j, 3] = next_normal(state) * student_t_scale(state, 5.0)
    return out


def test_parallel_kernel_matches_serial_bit_for_bit():
    # Per-path streams: a prange kernel gives the same draws as a serial loop.
    a = mixed_draws_parallel(KEY, 2000, 20)
    b = mixed_draws_serial(KEY, 2000, 20)
    assert np.array_equal(a, b)
    assert np.all(np.isfinite(a))
