"""Count draws by table inversion (kernels.distributions.count_tables / count_from_table).

The tables are checked against SciPy's CDFs, the guided search against a plain search, the
draws against the closed-form moments and pmf (fixed keys; 5 standard errors or p > 1e-4,
as in test_distributions), and for Poisson laws with mean < 10 against the sequential
inversion sampler draw for draw.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import stats

from targetsim.kernels.distributions import count_from_table, count_tables
from targetsim.kernels.rng import key_from_seed, next_double, seed_path_state
from tests.test_distributions import assert_mean_var, chisq_gof_discrete, draw_poisson

KEY = key_from_seed(20261123)
N = 200_000
BLOCK = 1000

LAWS = [(0.333, 0.0), (3.33, 0.0), (9.99, 0.0), (10.0, 0.0), (37.5, 0.0), (1000.0, 0.0),
        (3.33, 4.0), (100.0, 4.0), (900.0, 4.0), (60.0, 0.5), (5.0, 20.0)]


def frozen(mean, dispersion):
    if dispersion == 0.0:
        return stats.poisson(mean)
    return stats.nbinom(n=dispersion, p=dispersion / (dispersion + mean))


def one_table(mean, dispersion, max_len=1 << 15):
    cdf, guide, c0, g0, gm = count_tables(np.array([mean]), np.array([dispersion]), max_len=max_len)
    return cdf, guide, int(c0[0]), int(g0[0]), int(gm[0])


@njit
def draw_table(key, cdf, guide, c0, g0, gm, n, block):
    out = np.empty(n, np.int64)
    state = np.empty(4, np.uint64)
    for i in range(n):
        if i % block == 0:
            seed_path_state(key, i // block, state)
        out[i] = count_from_table(next_double(state), cdf, guide, c0, g0, gm)
    return out


@njit
def search_all(us, cdf, guide, c0, g0, gm):
    out = np.empty(us.shape[0], np.int64)
    for i in range(us.shape[0]):
        out[i] = count_from_table(us[i], cdf, guide, c0, g0, gm)
    return out


@pytest.mark.parametrize("mean,dispersion", LAWS)
def test_table_is_the_cdf_and_its_sentinel_holds_a_negligible_tail(mean, dispersion):
    cdf, guide, c0, g0, gm = one_table(mean, dispersion)
    assert gm > 0 and gm & (gm - 1) == 0 and len(guide) == gm
    ks = np.arange(len(cdf) - 1)
    ref = frozen(mean, dispersion)
    assert np.all(np.diff(cdf[:-1]) >= 0)
    np.testing.assert_allclose(cdf[:-1], ref.cdf(ks), rtol=0, atol=1e-12)
    assert cdf[-1] == 2.0  # the sentinel: the mass beyond the last value tabulated
    assert ref.sf(len(cdf) - 2) < 1e-15


@pytest.mark.parametrize("mean,dispersion", LAWS)
def test_guided_search_is_the_first_step_above_u(mean, dispersion):
    cdf, guide, c0, g0, gm = one_table(mean, dispersion)
    rng = np.random.default_rng(5)
    # uniforms, and uniforms at and beside every step of the CDF (where the search decides)
    steps = cdf[:-1]
    us = np.concatenate([rng.random(20_000), steps, np.nextafter(steps, 0.0), [0.0, np.nextafter(1.0, 0.0)]])
    us = us[(us >= 0.0) & (us < 1.0)]
    expected = np.searchsorted(cdf, us, side="right")
    np.testing.assert_array_equal(search_all(us, cdf, guide, c0, g0, gm), expected)


@pytest.mark.parametrize("mean,dispersion", LAWS)
def test_table_draws_have_the_law_moments_and_pmf(mean, dispersion):
    cdf, guide, c0, g0, gm = one_table(mean, dispersion)
    x = draw_table(KEY, cdf, guide, c0, g0, gm, N, BLOCK)
    ref = frozen(mean, dispersion)
    m, v, k = (float(t) for t in ref.stats(moments="mvk"))
    assert_mean_var(x, m, v, k)
    p = chisq_gof_discrete(x, ref)
    assert p > 1e-4, f"chi-square GOF p = {p}"


@settings(max_examples=40, deadline=None)
@given(lam=st.floats(min_value=1e-3, max_value=9.999), seed=st.integers(0, 2**32))
def test_small_poisson_tables_draw_exactly_what_inversion_draws(lam, seed):
    cdf, guide, c0, g0, gm = one_table(lam, 0.0)
    key = key_from_seed(seed)
    np.testing.assert_array_equal(draw_table(key, cdf, guide, c0, g0, gm, 5000, 100),
                                  draw_poisson(key, lam, 5000, 100))


def test_several_laws_share_one_array_and_long_or_empty_laws_get_no_table():
    means = np.array([0.0, 4.0, 5670.0, 100.0])
    disps = np.array([0.0, 0.0, 4.0, 4.0])
    cdf, guide, c0, g0, gm = count_tables(means, disps, max_len=20_000)
    assert gm[0] == 0  # mean 0: no draw at all (the samplers return 0 without drawing)
    assert gm[2] == 0  # NB(5670, 4) needs ~77,000 entries: it keeps the gamma-Poisson sampler
    assert gm[1] > 0 and gm[3] > 0
    for i in (1, 3):
        ref = frozen(means[i], disps[i])
        length = (len(cdf) if i == 3 else c0[3]) - c0[i]
        np.testing.assert_allclose(cdf[c0[i]:c0[i] + length - 1], ref.cdf(np.arange(length - 1)), atol=1e-12, rtol=0)
        x = draw_table(KEY, cdf, guide, c0[i], g0[i], gm[i], 50_000, BLOCK)
        m, v, k = (float(t) for t in ref.stats(moments="mvk"))
        assert_mean_var(x, m, v, k)


def test_table_length_grows_with_the_spread_and_stops_at_the_bound():
    # past the mode the table stops once the mass beyond is below 2**-64
    lengths = [len(one_table(m, 4.0)[0]) for m in (10.0, 100.0, 1000.0)]
    assert lengths[0] < lengths[1] < lengths[2]
    ref = frozen(1000.0, 4.0)
    assert ref.sf(lengths[2] - 2) < 2.0 ** -60
    # and not much further: 10 % shorter, the tail beyond would still be far above the bound
    assert ref.sf(int(0.9 * lengths[2])) > 2.0 ** -58
