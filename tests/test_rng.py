"""Tests for targetsim.kernels.rng: xoshiro256++ streams and the ziggurat normal.

Every test uses fixed keys, so each statistical check is deterministic; the
tolerances are 5 standard errors (or p > 1e-4), so they are not knife-edge
either and would still hold for most other keys.
"""

import math
import time

import numba
import numpy as np
import pytest
from numba import njit, prange
from scipy import stats

from targetsim.kernels import rng
from targetsim.kernels.rng import (
    key_from_seed,
    next_double,
    next_normal,
    next_u64,
    seed_path_state,
)

MASK64 = (1 << 64) - 1
KEY = key_from_seed(20240611)


# ---------------------------------------------------------------------------
# Plain-Python references
# ---------------------------------------------------------------------------


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


def xoshiro256pp_reference(state, n):
    """First n outputs of xoshiro256++ (Blackman & Vigna) in Python ints."""
    s0, s1, s2, s3 = (int(v) for v in state)
    out = []
    for _ in range(n):
        out.append((_rotl((s0 + s3) & MASK64, 23) + s0) & MASK64)
        t = (s1 << 17) & MASK64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 45)
    return out


def splitmix64_reference_state(key, path):
    """Outputs 4p+1..4p+4 of SplitMix64 started at key (the documented seeding)."""
    x = (int(key) + path * 4 * 0x9E3779B97F4A7C15) & MASK64
    words = []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        words.append(z ^ (z >> 31))
    return words


# ---------------------------------------------------------------------------
# njit helpers (what a kernel does: one stream per path)
# ---------------------------------------------------------------------------


@njit
def draw_u64(state, n):
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i] = next_u64(state)
    return out


@njit
def draw_doubles(state, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = next_double(state)
    return out


@njit
def draw_normals(key, n_paths, n_per_path):
    """(n_paths, n_per_path) normals, row p from path p's own stream."""
    out = np.empty((n_paths, n_per_path))
    state = np.empty(4, np.uint64)
    for p in range(n_paths):
        seed_path_state(key, p, state)
        for j in range(n_per_path):
            out[p, j] = next_normal(state)
    return out


@njit
def sum_normals(key, n_paths, n_per_path):
    """Per-path sums of n_per_path normals, paths visited in order."""
    sums = np.empty(n_paths)
    state = np.empty(4, np.uint64)
    for p in range(n_paths):
        seed_path_state(key, p, state)
        acc = 0.0
        for _ in range(n_per_path):
            acc += next_normal(state)
        sums[p] = acc
    return sums


@njit
def sum_normals_blocked(key, n_paths, n_per_path, block):
    """Same sums, paths visited block by block, blocks in reverse order,
    with one state array per block: what a threaded kernel may do."""
    sums = np.empty(n_paths)
    n_blocks = (n_paths + block - 1) // block
    for b in range(n_blocks - 1, -1, -1):
        state = np.empty(4, np.uint64)
        for p in range(b * block, min(n_paths, (b + 1) * block)):
            seed_path_state(key, p, state)
            acc = 0.0
            for _ in range(n_per_path):
                acc += next_normal(state)
            sums[p] = acc
    return sums


@njit(parallel=True)
def sum_normals_parallel(key, n_paths, n_per_path, block):
    """Per-path sums from a prange over blocks of paths, one state per block."""
    sums = np.empty(n_paths)
    n_blocks = (n_paths + block - 1) // block
    for b in prange(n_blocks):
        state = np.empty(4, np.uint64)
        for p in range(b * block, min(n_paths, (b + 1) * block)):
            seed_path_state(key, p, state)
            acc = 0.0
            for _ in range(n_per_path):
                acc += next_normal(state)
            sums[p] = acc
    return sums


@njit
def count_abs_above(key, n_paths, n_per_path, thresholds):
    """Counts of |Z| > t for each threshold, without storing the draws."""
    counts = np.zeros(thresholds.size, np.int64)
    state = np.empty(4, np.uint64)
    for p in range(n_paths):
        seed_path_state(key, p, state)
        for _ in range(n_per_path):
            a = abs(next_normal(state))
            for k in range(thresholds.size):
                if a > thresholds[k]:
                    counts[k] += 1
    return counts


@njit
def draw_tail(key, n):
    """n draws of the base-layer tail sampler (|Z| given |Z| > R)."""
    state = np.empty(4, np.uint64)
    seed_path_state(key, 0, state)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    out = np.empty(n)
    for i in range(n):
        out[i], s0, s1, s2, s3 = rng._normal_tail(s0, s1, s2, s3)
    return out


@njit
def seed_states(key, n_paths):
    out = np.empty((n_paths, 4), np.uint64)
    for p in range(n_paths):
        seed_path_state(key, p, out[p])
    return out


def _state(words):
    return np.array([int(w) for w in words], dtype=np.uint64)


# ---------------------------------------------------------------------------
# xoshiro256++
# ---------------------------------------------------------------------------


def test_next_u64_published_vector_state_1234():
    # From state {1, 2, 3, 4}; produced with the authors' xoshiro256plusplus.c
    # and published in rust-random's rand_xoshiro tests.
    expected = [
        41943041, 58720359, 3588806011781223, 3591011842654386,
        9228616714210784205, 9973669472204895162, 14011001112246962877,
        12406186145184390807, 15849039046786891736, 10450023813501588000,
    ]
    state = _state([1, 2, 3, 4])
    assert [int(v) for v in draw_u64(state, 10)] == expected


def test_next_u64_published_vector_state_0001():
    # From state {0, 0, 0, 1}; xoshiro-fortran's reference output table.
    expected = [
        0x0000000000800000, 0x0000000000800011, 0x0002200000800011,
        0x0002200044000020, 0x00022000448008A1, 0x01102100802208A0,
        0x0114002284200880, 0x0402896644A64095, 0x8A14A0A244ACC891,
        0x8C88BA4680B20495,
    ]
    state = _state([0, 0, 0, 1])
    assert [int(v) for v in draw_u64(state, 10)] == expected


@pytest.mark.parametrize(
    "words",
    [
        [1, 2, 3, 4],
        # Large high bits: any silent float64 promotion would lose them.
        [MASK64, 1 << 63, 0xDEADBEEFCAFEBABE, 0xFFFFFFFF00000001],
        [0x8000000000000001, MASK64 - 1, 1 << 62, 0x9E3779B97F4A7C15],
        splitmix64_reference_state(int(KEY), 12345),
    ],
)
def test_next_u64_matches_python_reference(words):
    state = _state(words)
    got = draw_u64(state, 1000)
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == xoshiro256pp_reference(words, 1000)
    # The state was advanced in place, by exactly 1000 steps.
    ref_next = xoshiro256pp_reference(words, 1001)[-1]
    assert int(next_u64(state)) == ref_next


def test_next_u64_returns_uint64_from_python():
    state = _state([1, 2, 3, 4])
    v = next_u64(state)
    assert isinstance(v, (int, np.integer))
    assert int(v) == 41943041


# ---------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------


def test_key_from_seed():
    k = key_from_seed(7)
    assert isinstance(k, np.uint64)
    assert k == np.random.SeedSequence(7).generate_state(1, np.uint64)[0]
    assert key_from_seed(7) == k
    assert key_from_seed(8) != k
    # Any non-negative int, including numpy ints and ones beyond 64 bits.
    assert key_from_seed(np.int64(7)) == k
    assert isinstance(key_from_seed(2**100 + 3), np.uint64)
    with pytest.raises(ValueError):
        key_from_seed(-1)
    with pytest.raises(TypeError):
        key_from_seed(1.5)


@pytest.mark.parametrize("key", [0, 1, int(KEY), MASK64, 1 << 63])
@pytest.mark.parametrize("path", [0, 1, 2, 999_999, 2**40 + 17])
def test_seed_path_state_matches_splitmix_reference(key, path):
    state = np.zeros(4, np.uint64)
    seed_path_state(np.uint64(key), path, state)
    assert [int(w) for w in state] == splitmix64_reference_state(key, path)


def test_seed_path_state_key_type_does_not_matter():
    # A Python int key is typed int64 by numba; seeding casts it, so it gives
    # the same stream as the np.uint64 key (for keys below 2**63: larger
    # Python ints do not fit the int64 specialisation once it exists, which
    # is why keys travel as np.uint64).
    for key in (12345, int(KEY) >> 1, (1 << 63) - 1):
        a = np.empty(4, np.uint64)
        b = np.empty(4, np.uint64)
        seed_path_state(np.uint64(key), 3, a)
        seed_path_state(key, 3, b)
        assert np.array_equal(a, b)
        assert [int(w) for w in a] == splitmix64_reference_state(key, 3)


def test_seed_path_state_never_zero_and_distinct():
    states = seed_states(KEY, 100_000)
    assert not np.any(np.all(states == 0, axis=1))
    # Every path of a key gets its own state (the first words alone are
    # already distinct: the mixer is a bijection of distinct inputs).
    assert np.unique(states[:, 0]).size == states.shape[0]


def test_seed_path_state_with_a_zero_word_is_still_usable():
    # Choose the key so that the first mixer input is 0, whose output is 0:
    # one zero word, the other three non-zero, and the stream still runs.
    key = (-0x9E3779B97F4A7C15) & MASK64
    state = np.empty(4, np.uint64)
    seed_path_state(np.uint64(key), 0, state)
    assert int(state[0]) == 0
    assert np.all(state[1:] != 0)
    out = draw_u64(state, 100)
    assert np.unique(out).size == 100


# ---------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------


def test_same_key_and_path_gives_identical_sequence():
    a = draw_normals(KEY, 5, 1000)
    b = draw_normals(KEY, 5, 1000)
    assert np.array_equal(a, b)
    # Re-seeding a used state array restarts the path's stream exactly.
    state = np.empty(4, np.uint64)
    seed_path_state(KEY, 3, state)
    first = draw_u64(state, 50)
    seed_path_state(KEY, 3, state)
    assert np.array_equal(draw_u64(state, 50), first)


def test_different_paths_and_keys_give_different_sequences():
    x = draw_normals(KEY, 50, 100)
    assert np.unique(x[:, 0]).size == 50
    for p in range(49):
        assert not np.any(x[p] == x[p + 1])
    y = draw_normals(key_from_seed(1), 50, 100)
    assert not np.any(x == y)


def test_results_invariant_to_blocking_and_order():
    ref = sum_normals(KEY, 1000, 37)
    for block in (1, 7, 64, 1000, 4096):
        assert np.array_equal(sum_normals_blocked(KEY, 1000, 37, block), ref)


def test_parallel_kernel_invariant_to_threads_and_blocks():
    ref = sum_normals(KEY, 3000, 50)
    old = numba.get_num_threads()
    try:
        for threads in sorted({1, 2, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            for block in (1, 16, 1000):
                got = sum_normals_parallel(KEY, 3000, 50, block)
                assert np.array_equal(got, ref), (threads, block)
    finally:
        numba.set_num_threads(old)


def test_adjacent_paths_uncorrelated():
    n_paths, n = 2000, 1000
    x = draw_normals(KEY, n_paths, n)
    xc = x - x.mean(axis=1, keepdims=True)
    xc /= np.sqrt((xc * xc).sum(axis=1, keepdims=True))
    r = (xc[:-1] * xc[1:]).sum(axis=1)  # corr(path p, path p+1), each SE 1/sqrt(n)
    se = 1.0 / math.sqrt(n)
    assert abs(r.mean()) < 5 * se / math.sqrt(r.size)
    assert np.abs(r).max() < 6 * se
    # Their spread is that of independent series.
    assert abs(r.std() / se - 1.0) < 5 / math.sqrt(2 * r.size)


def test_first_draws_across_paths_uncorrelated():
    # Seeding is where neighbouring streams could be related: the first
    # draw of consecutive paths must look independent.
    n_paths = 200_000
    z = draw_normals(KEY, n_paths, 2)
    for j in (0, 1):
        c = np.corrcoef(z[:-1, j], z[1:, j])[0, 1]
        assert abs(c) < 5 / math.sqrt(n_paths)
        assert abs(z[:, j].mean()) < 5 / math.sqrt(n_paths)
    c01 = np.corrcoef(z[:, 0], z[:, 1])[0, 1]
    assert abs(c01) < 5 / math.sqrt(n_paths)


# ---------------------------------------------------------------------------
# next_double
# ---------------------------------------------------------------------------


def test_next_double_range_mean_and_bits():
    state = np.empty(4, np.uint64)
    seed_path_state(KEY, 0, state)
    n = 1_000_000
    u = draw_doubles(state, n)
    assert u.min() >= 0.0 and u.max() < 1.0
    se = math.sqrt(1.0 / 12.0 / n)
    assert abs(u.mean() - 0.5) < 5 * se
    # It is exactly the top 53 bits of the same step of next_u64.
    seed_path_state(KEY, 0, state)
    raw = draw_u64(state, 1000)
    expected = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53
    assert np.array_equal(u[:1000], expected)
    # Uniform over bins as well (chi-square, 100 bins).
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_next_double_largest_value_below_one():
    # All ones in the top 53 bits: the largest possible output is < 1.
    state = _state([MASK64, 0, 0, 0])
    # s0 + s3 = 2**64 - 1; rotl(.., 23) = 2**64 - 1; + s0 wraps to 2**64 - 2.
    assert int(next_u64(state.copy())) == MASK64 - 1
    assert next_double(state) == (2**53 - 1) * 2.0**-53 < 1.0


# ---------------------------------------------------------------------------
# Ziggurat tables
# ---------------------------------------------------------------------------


def test_ziggurat_tables_consistent():
    ki, wi, fi, v = rng._ZIG_KI, rng._ZIG_WI, rng._ZIG_FI, rng._ZIG_V
    assert ki.dtype == np.uint64 and ki.shape == (256,)
    assert wi.shape == (256,) and fi.shape == (257,)
    x = wi * 2.0**52  # layer right edges x_0 (pseudo) .. x_255
    assert x[1] == rng._ZIG_R
    assert np.all(np.diff(x) < 0)
    assert fi[256] == 1.0 and int(ki[255]) == 0
    # Every layer has area v; the top one closes the recursion.
    areas = x[1:] * (fi[2:] - fi[1:-1])
    assert np.allclose(areas, v, rtol=1e-10, atol=0)
    assert abs(rng._ZIG_TOP_AREA - v) < 1e-11 * v
    # The base layer: rectangle up to R plus the exact normal tail.
    tail = math.sqrt(math.pi / 2) * math.erfc(rng._ZIG_R / math.sqrt(2))
    assert math.isclose(x[0] * fi[1], v, rel_tol=1e-14)
    assert math.isclose(v, rng._ZIG_R * fi[1] + tail, rel_tol=1e-14)
    # Together the layers cover the half-normal, with ~0.7% to spare.
    half = math.sqrt(math.pi / 2)
    assert half < 256 * v < 1.01 * half
    # Fast-path thresholds: ki[i] / 2**52 = x_{i+1} / x_i, rounded down.
    assert np.all(ki[:-1].astype(np.float64) <= x[1:] / x[:-1] * 2.0**52)
    assert np.all(ki[:-1].astype(np.float64) > x[1:] / x[:-1] * 2.0**52 - 2)
    assert np.array_equal(rng._ZIG_WI_SIGNED, np.concatenate((wi, -wi)))


def test_ziggurat_tables_are_cheap_to_build():
    best = min(_time_once(rng._build_ziggurat_tables) for _ in range(5))
    assert best < 0.010


def _time_once(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


# ---------------------------------------------------------------------------
# next_normal distribution
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normals():
    """2 * 10**6 normals: 10_000 paths of 200 draws."""
    return draw_normals(KEY, 10_000, 200).ravel()


def test_normal_moments(normals):
    z = normals
    n = z.size
    assert n == 2_000_000
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 5 / math.sqrt(n)
    # var(s^2) = 2 / (n - 1) for a standard normal.
    assert abs(z.var(ddof=1) - 1.0) < 5 * math.sqrt(2.0 / (n - 1))
    # Skewness and excess kurtosis, SE sqrt(6/n) and sqrt(24/n).
    assert abs(stats.skew(z)) < 5 * math.sqrt(6.0 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24.0 / n)
    # Symmetric: half the draws are negative.
    assert abs((z < 0).mean() - 0.5) < 5 * math.sqrt(0.25 / n)


def test_normal_kolmogorov_smirnov(normals):
    assert stats.kstest(normals, stats.norm.cdf).pvalue > 1e-4


def test_normal_chi_square_fine_bins(normals):
    # 1000 equiprobable bins resolve the ziggurat's layers and wedges much
    # more finely than KS does.
    edges = stats.norm.ppf(np.linspace(0.0, 1.0, 1001)[1:-1])
    counts = np.bincount(np.searchsorted(edges, normals), minlength=1000)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_normal_tail_frequencies(normals):
    n = normals.size
    a = np.abs(normals)
    for t in (1.0, 2.0, 3.0, rng._ZIG_R, 4.0):
        p = 2 * stats.norm.sf(t)
        se = math.sqrt(p * (1 - p) / n)
        assert abs((a > t).mean() - p) < 5 * se, t


def test_normal_far_tail_counts():
    # 2 * 10**7 draws, counted in the kernel: |Z| > 5 should occur ~11.5
    # times; beyond R only through the tail sampler.
    n_paths, n_per = 100_000, 200
    n = n_paths * n_per
    thresholds = np.array([rng._ZIG_R, 4.5, 5.0])
    counts = count_abs_above(KEY, n_paths, n_per, thresholds)
    for t, c in zip(thresholds, counts):
        p = 2 * stats.norm.sf(t)
        se = math.sqrt(p * (1 - p) / n)
        assert abs(c / n - p) < 5 * se, t
    assert counts[2] >= 1


def test_tail_sampler_exact():
    r = rng._ZIG_R
    t = draw_tail(KEY, 200_000)
    assert t.min() > r
    # KS against the normal conditioned on Z > R.
    sf_r = stats.norm.sf(r)

    def cdf(x):
        return 1.0 - stats.norm.sf(x) / sf_r

    assert stats.kstest(t, cdf).pvalue > 1e-4
    # Deep tail: P(Z > 5 | Z > R) ~ 2.2e-3, P(Z > 6 | Z > R) ~ 7.6e-6.
    for x in (4.0, 5.0, 6.0):
        p = stats.norm.sf(x) / sf_r
        se = math.sqrt(p * (1 - p) / t.size)
        assert abs((t > x).mean() - p) < 5 * se + 1.0 / t.size, x
    assert (t > 5.0).sum() > 100


def test_normal_pinned_values():
    # Regression pin of the stream layout (seeding, bit use, tables): a
    # change here changes every simulation result for a given seed.
    state = np.empty(4, np.uint64)
    seed_path_state(np.uint64(0x0123456789ABCDEF), 5, state)
    got = [next_normal(state) for _ in range(5)]
    expected = PINNED_NORMALS
    assert np.allclose(got, expected, rtol=1e-13, atol=0)


PINNED_NORMALS = [
    0.5384360630546884, 0.9471097181872554, 0.16713136777760865,
    0.4105359774858963, -0.6710778939472454,
]


class _PyStream:
    def __init__(self, words):
        self.words = [int(w) for w in words]

    def u64(self):
        s0, s1, s2, s3 = self.words
        out = xoshiro256pp_reference(self.words, 1)[0]
        t = (s1 << 17) & MASK64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        self.words = [s0, s1, s2, _rotl(s3, 45)]
        return out

    def u01(self):
        return (self.u64() >> 11) * 2.0**-53


def ziggurat_reference(stream):
    """The documented ziggurat, step by step, on Python ints and floats."""
    ki, wi, fi, r = rng._ZIG_KI, rng._ZIG_WI, rng._ZIG_FI, rng._ZIG_R
    while True:
        u = stream.u64()
        idx = u & 0xFF  # layer
        neg = (u >> 8) & 1  # sign
        m = u >> 12  # 52-bit mantissa
        z = float(m) * float(wi[idx])
        if neg:
            z = -z
        if m < int(ki[idx]):
            return z, "fast"
        if idx == 0:
            while True:
                xx = -math.log(1.0 - stream.u01()) / r
                yy = -math.log(1.0 - stream.u01())
                if yy + yy > xx * xx:
                    return (-(r + xx) if neg else r + xx), "tail"
        y = float(fi[idx]) + (float(fi[idx + 1]) - float(fi[idx])) * stream.u01()
        if y < math.exp(-0.5 * z * z):
            return z, "wedge"


def test_next_normal_matches_python_ziggurat():
    # Every branch (fast path, wedge accept/reject, tail) against a plain
    # Python transcription of the algorithm fed by the reference xoshiro.
    key = np.uint64(0x0123456789ABCDEF)
    n_per = 5000
    seen = set()
    for path in range(4):
        stream = _PyStream(splitmix64_reference_state(int(key), path))
        got = draw_normals_from(key, path, n_per)
        for j in range(n_per):
            ref, kind = ziggurat_reference(stream)
            seen.add(kind)
            if kind == "tail":
                # R + xx: only libm's log (and * 1/R vs / R) may differ.
                assert math.isclose(got[j], ref, rel_tol=1e-14), (path, j)
            else:
                # m * w exactly: bit-identical.
                assert got[j] == ref, (path, j, kind)
    # Layer 0 is hit w.p. 1/256 per draw and its tail w.p. ~6.6% of that:
    # 20_000 draws give ~5 tail draws; this key is known to give some.
    assert seen == {"fast", "wedge", "tail"}


@njit
def draw_normals_from(key, path, n):
    state = np.empty(4, np.uint64)
    seed_path_state(key, path, state)
    out = np.empty(n)
    for i in range(n):
        out[i] = next_normal(state)
    return out
