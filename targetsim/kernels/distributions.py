"""Exact samplers for count processes and fat-tailed shocks, built on ``rng``.

Every sampler is an ``@njit(cache=True)`` function that takes the per-path
``state`` (``np.uint64[4]``) of :mod:`targetsim.kernels.rng` and draws only
through ``next_double`` / ``next_normal``, so a path's draws still depend on
nothing but ``(key, path)``.  "Exact" means each method samples the target
law exactly in real arithmetic (exact inversion or exact rejection); the only
deviations are floating-point rounding, noted per sampler.  The number of
uniforms/normals a call consumes is random (rejection), so later draws of a
path shift with the parameters; results are still bit-reproducible.

``next_gamma(state, shape)`` -- Gamma(shape, scale 1), float64.
    shape >= 1: Marsaglia & Tsang, "A simple method for generating gamma
    variables", ACM TOMS 26(3), 2000.  Candidate d*(1 + c*Z)**3 with
    d = shape - 1/3, c = 1/sqrt(9d), Z normal; accepted by exact rejection
    against the transformed density (the ``1 - 0.0331 Z**4`` squeeze only
    short-cuts the log test, it lies inside the acceptance region).
    Acceptance >= 95%, so ~1 normal + 1 uniform per draw.
    shape < 1: the same paper's boost: if G ~ Gamma(shape + 1) and U ~ U(0,1]
    are independent, G * U**(1/shape) ~ Gamma(shape) exactly (a Beta(a, 1)
    factor times Gamma(a + 1) is Gamma(a)).  For very small shape many true
    values lie below the smallest double and come out as 0.0 (about half of
    them at shape 0.001).

``next_chi2(state, dof)`` -- chi-square(dof) = 2 * Gamma(dof/2), float64.

``next_gamma_mean(state, mean, sd)`` -- Gamma with that mean and s.d. (shape
    (mean/sd)**2, scale sd**2/mean), float64: an uncertain count mean, drawn
    once per path.  Formed as mean * (G / shape), G ~ Gamma(shape), which is
    G * scale in real arithmetic and neither underflows (a tiny sd) nor
    overflows; capped at 2**52, the largest Poisson mean ``next_poisson``
    takes (a change only for draws beyond it).

``next_poisson(state, lam)`` -- Poisson(lam), int64.
    lam = 0: returns 0 without drawing.
    lam < 10: inversion by sequential search from k = 0 with one uniform
    (Devroye, "Non-Uniform Random Variate Generation", 1986, ch. III.2 and
    X.3).  It returns the first k with U < F(k), i.e. exact inversion of the
    CDF.  Rounding can leave the summed CDF ~1e-14 below 1, so a U above it
    would search forever; the search therefore also stops once p(k) < 2**-64
    (only past the mode, where the mass still ahead is < 2**-63).  This moves
    at most ~1e-14 of probability, within the far tail.
    lam >= 10: Hoermann, "The transformed rejection method for generating
    Poisson random variables", Insurance: Mathematics and Economics 12, 1993
    (PTRS, the method numpy uses).  A hat built from a transformed uniform
    with exact rejection against log p(k) = -lam + k log lam - lgamma(k+1);
    the quick-accept box (us >= 0.07, V <= v_r) and quick-reject strip
    (us < 0.013, V > us) are the paper's squeezes and lie inside/outside the
    acceptance region, so they change speed, not the law.  O(1) time for any
    lam: 1.33 iterations per draw at lam = 10, 1.14 at lam = 1000 (measured);
    the quick box settles 46% of draws at lam = 10, 86% at 1000, 90% at 1e6.
    Rounding in the log test grows like eps * lam * log(lam) (~3e-9 at
    lam = 1e6, ~5e-5 at 1e10), and only touches the slow branch.
    lam must be finite and <= 2**52 (beyond that not every integer is a
    double).

``next_negative_binomial(state, mean, dispersion)`` -- NB as a gamma-Poisson
    mixture, int64: lam ~ Gamma(shape=dispersion, scale=mean/dispersion), then
    Poisson(lam).  The mixture integral is exactly the NB pmf with size
    r = dispersion and p = r / (r + mean) (Greenwood & Yule 1920), so
    E = mean and Var = mean + mean**2 / dispersion; dispersion -> inf tends to
    Poisson(mean).  mean = 0 returns 0 without drawing.

``next_binomial(state, n, p)`` -- Binomial(n, p), int64: a ``scheduled``
    process's deliveries and carry-overs.  n = 0, p = 0 or p = 1 return 0 (or
    n) without drawing.  n <= 64: the sum of n Bernoulli(p) draws, U < p, one
    uniform each (exact).  n > 64: inversion by sequential search with one
    uniform, of Binomial(n, q), q = min(p, 1 - p) (returning n - k when
    p > 1/2): from k = 0 when its pmf (1-q)**n is a normal double (>= e**-700),
    else from k0 = floor(nq - 20 sd), sd = sqrt(nq(1-q)), its pmf from lgamma;
    the mass below k0 is < exp(-t**2/(2nq)) <= e**-100 by Chernoff's bound
    (t = 20 sd), far below what a 53-bit U resolves.  Then p(k+1) = p(k) (n-k)/
    (k+1) q/(1-q); as for the Poisson inversion the search also stops past the
    mode once p(k) < 2**-64 (rounding left the summed CDF below U).  O(sqrt(n))
    steps: n must be below 2**52.

``student_t_scale(state, dof)`` -- sqrt((dof - 2) / chi2(dof)), float64.
    For Z standard normal independent of the chi-square, Z * sqrt(dof / chi2)
    is Student-t(dof) (its definition), so Z * student_t_scale is t(dof)
    scaled to unit variance.  See its docstring for the multivariate use.

``count_tables(means, dispersions)`` / ``count_from_table(u, ...)`` -- the
    same Poisson and NB laws by inversion of a tabulated CDF, for laws fixed
    for a whole run (the engine's count processes): one uniform a draw, found
    from a guide table (Chen & Asau 1974, Devroye ch. III.2) in about one step;
    ~4-10 ns a draw against 17-100 ns for the samplers above (measured on a
    2-core EPYC VM, tables in cache).  The table holds F(k) up to the point
    past the mode where the mass beyond is provably below 2**-64 (a geometric
    bound on the remaining pmf ratios), then a sentinel that takes that mass
    (and the ~1e-16 that rounding leaves above the last sum).  For Poisson
    with mean < 10 the table is exactly the partial sums and the tail stop of
    the sequential inversion, so a draw from it equals that sampler's draw
    from the same uniform.  A law whose table would be longer than
    ``max_len`` gets none and keeps its sampler.

Invalid parameters (negative, zero where > 0 is needed, NaN, inf, out of
range) return a sentinel without drawing: ``INVALID_COUNT`` (-1) from the
count samplers, NaN from the float ones.  They never loop (a rejection loop
fed NaN would never end) and never raise: numba does not propagate exceptions
out of ``prange`` bodies (numba issues #2811, #9673; they are dropped or turn
into a SystemError), and these functions are meant for such kernels.  Callers
validate parameters up front and may check for the sentinels.

All functions are compiled with ``_nrt=False``, like ``rng.next_normal``: they
allocate nothing, and with NRT on numba wraps each call in an atomic
incref/decref of ``state`` that it does not prune here (measured: gamma(2.5)
about twice as slow with NRT).
"""

import math

import numpy as np
from numba import njit

from targetsim.kernels.rng import next_double, next_normal

__all__ = [
    "next_gamma",
    "next_chi2",
    "next_gamma_mean",
    "next_poisson",
    "next_negative_binomial",
    "next_binomial",
    "student_t_scale",
    "count_log_pmf",
    "count_tables",
    "count_from_table",
    "INVALID_COUNT",
]

# Returned by the count samplers for invalid parameters (see module docstring).
INVALID_COUNT = np.int64(-1)

_ONE_THIRD = 1.0 / 3.0
# Poisson method switch: below it, inversion's expected ~lam + 1 steps are
# cheaper than PTRS's set-up (sqrt, log, divisions); PTRS needs lam >= 10.
_POISSON_INVERSION_MAX = 10.0
# Once p(k) < 2**-64 past the mode, the remaining mass (< 2 p(k), as
# p(k+1)/p(k) <= lam/(k+1) < 1/2 by then) is below what a 53-bit U resolves.
_POISSON_TAIL_STOP = 2.0 ** -64
# Largest lam accepted: every integer up to here is exactly a float64.
_POISSON_LAM_MAX = 2.0 ** 52
# 1/k for the inversion loop: a multiply instead of a division per step
# (~20% faster).  The tail stop above ends the search by k = 51 for any
# lam < 10, so 64 entries always suffice.
_INV_K = np.array([0.0] + [1.0 / k for k in range(1, 64)])


@njit(cache=True, _nrt=False)
def _gamma_mt(state, a):
    """Gamma(a), a >= 1: Marsaglia-Tsang squeeze method (exact rejection)."""
    d = a - _ONE_THIRD
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = next_normal(state)
        v = 1.0 + c * x
        if v <= 0.0:  # outside the support of the transformed density
            continue
        v = v * v * v
        # U in (0, 1]: keeps log(u) finite.
        u = 1.0 - next_double(state)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:  # squeeze: inside the acceptance region
            return d * v
        if math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v


@njit(cache=True, _nrt=False)
def next_gamma(state, shape):
    """Gamma(shape, scale 1) as float64; shape > 0 and finite, else NaN.

    Marsaglia-Tsang for shape >= 1; for shape < 1 the boost
    Gamma(shape + 1) * U**(1/shape), exact for independent U ~ U(0, 1].
    """
    a = float(shape)
    if not (a > 0.0 and a < math.inf):
        return math.nan
    if a >= 1.0:
        return _gamma_mt(state, a)
    g = _gamma_mt(state, a + 1.0)
    # 1 - U lies in (0, 1]: u == 0 would give exactly 0 (and 0**x for tiny
    # shape); the draw is still exact since U and 1 - U share a law.
    u = 1.0 - next_double(state)
    return g * math.pow(u, 1.0 / a)


@njit(cache=True, _nrt=False)
def next_chi2(state, dof):
    """Chi-square(dof) as float64 = 2 * Gamma(dof / 2); dof > 0, else NaN."""
    return 2.0 * next_gamma(state, 0.5 * float(dof))


@njit(cache=True, _nrt=False)
def next_gamma_mean(state, mean, sd):
    """Gamma(shape (mean/sd)**2, scale sd**2/mean) as float64, at most 2**52; mean > 0 and sd > 0,
    finite, with a finite shape, else NaN (drawing nothing)."""
    m = float(mean)
    s = float(sd)
    if not (m > 0.0 and m < math.inf and s > 0.0 and s < math.inf):
        return math.nan
    ratio = m / s
    shape = ratio * ratio
    if not (shape < math.inf):
        return math.nan
    lam = m * (next_gamma(state, shape) / shape)
    return lam if lam < _POISSON_LAM_MAX else _POISSON_LAM_MAX


@njit(cache=True, _nrt=False)
def _poisson_inversion(state, lam):
    """Poisson(lam), 0 < lam < 10: sequential-search inversion, one uniform."""
    u = next_double(state)
    k = 0
    p = math.exp(-lam)  # >= e**-10: no underflow in this range
    f = p
    while u >= f:
        k += 1
        p *= lam * _INV_K[k]
        f += p
        if p < _POISSON_TAIL_STOP:
            # Reached only when rounding left the summed CDF below u (u within
            # ~1e-14 of 1): the remaining mass is < 2**-63, so stop in the far
            # tail.  Past the mode only, since p(k) >= e**-10 up to the mode.
            break
    return np.int64(k)


@njit(cache=True, _nrt=False)
def _poisson_ptrs(state, lam):
    """Poisson(lam), lam >= 10: Hoermann's PTRS (transformed rejection)."""
    # Hat and squeeze constants from Hoermann (1993), algorithm PTRS.
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    vr = 0.9277 - 3.6224 / (b - 2.0)
    two_a = 2.0 * a
    # The logs are needed only by the exact test, which ~24% of calls reach
    # at lam = 1000 (more near 10): computed on first use, they keep two libm
    # calls off the quick path.
    loglam = 0.0
    log_inv_alpha = 0.0
    have_logs = False
    while True:
        uu = next_double(state) - 0.5
        v = next_double(state)
        us = 0.5 - abs(uu)
        # Kept as float: for us -> 0 the candidate is +-inf / huge, and a cast
        # to int64 would be undefined.  Such candidates are rejected below.
        kf = math.floor((two_a / us + b) * uu + lam + 0.43)
        if us >= 0.07 and v <= vr:  # quick accept (inside the region)
            return np.int64(kf)
        if kf < 0.0 or (us < 0.013 and v > us):  # quick reject
            continue
        if not have_logs:
            loglam = math.log(lam)
            log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
            have_logs = True
        # Exact test; log(0) = -inf accepts, and NaN (kf = inf) rejects.
        lhs = math.log(v) + log_inv_alpha - math.log(a / (us * us) + b)
        rhs = -lam + kf * loglam - math.lgamma(kf + 1.0)
        if lhs <= rhs:
            return np.int64(kf)


@njit(cache=True, _nrt=False)
def next_poisson(state, lam):
    """Poisson(lam) as int64; lam in [0, 2**52], else ``INVALID_COUNT`` (-1).

    lam == 0 returns 0 and draws nothing.  Inversion for lam < 10, Hoermann's
    PTRS for lam >= 10.
    """
    x = float(lam)
    if not (x >= 0.0 and x <= _POISSON_LAM_MAX):
        return INVALID_COUNT
    if x == 0.0:
        return np.int64(0)
    if x < _POISSON_INVERSION_MAX:
        return _poisson_inversion(state, x)
    return _poisson_ptrs(state, x)


@njit(cache=True, _nrt=False)
def next_negative_binomial(state, mean, dispersion):
    """Negative binomial count as int64 via the gamma-Poisson mixture.

    lam ~ Gamma(shape=dispersion, scale=mean/dispersion), then Poisson(lam):
    NB with size r = dispersion, p = r / (r + mean); variance
    mean + mean**2 / dispersion.  mean >= 0 (0 returns 0, drawing nothing),
    dispersion > 0, both finite; else ``INVALID_COUNT`` (-1).
    """
    m = float(mean)
    r = float(dispersion)
    if not (m >= 0.0 and m < math.inf and r > 0.0 and r < math.inf):
        return INVALID_COUNT
    if m == 0.0:
        return np.int64(0)
    lam = next_gamma(state, r) * (m / r)
    # The gamma tail is unbounded; capping at Poisson's limit changes the law
    # only for draws beyond 2**52 (far past anything representable anyway).
    return next_poisson(state, min(lam, _POISSON_LAM_MAX))


# Binomial method switch: up to this many trials, a Bernoulli uniform each.
_BINOMIAL_BERNOULLI_MAX = 64
# Inversion starts this many s.d. below the mean when (1-q)**n underflows.
_BINOMIAL_START_SD = 20.0


@njit(cache=True, _nrt=False)
def next_binomial(state, n, p):
    """Binomial(n, p) as int64 (see the module's docstring); n a whole number in [0, 2**52), p in
    [0, 1], else ``INVALID_COUNT`` (-1). n = 0, p = 0 and p = 1 draw nothing."""
    trials = np.int64(n)
    if not (trials >= 0 and trials == n and trials < np.int64(1) << np.int64(52) and p >= 0.0 and p <= 1.0):
        return INVALID_COUNT
    if trials == 0 or p == 0.0:
        return np.int64(0)
    if p == 1.0:
        return trials
    if trials <= _BINOMIAL_BERNOULLI_MAX:
        k = np.int64(0)
        for _ in range(trials):
            if next_double(state) < p:
                k += 1
        return k
    flip = p > 0.5
    q = 1.0 - p if flip else p
    nf = float(trials)
    log_none = nf * math.log1p(-q)
    if log_none >= -700.0:
        k = np.int64(0)
        pk = math.exp(log_none)
    else:
        sd = math.sqrt(nf * q * (1.0 - q))
        k = np.int64(max(0.0, math.floor(nf * q - _BINOMIAL_START_SD * sd)))
        pk = math.exp(math.lgamma(nf + 1.0) - math.lgamma(k + 1.0) - math.lgamma(nf - k + 1.0)
                      + k * math.log(q) + (nf - k) * math.log1p(-q))
    mode = (nf + 1.0) * q
    ratio = q / (1.0 - q)
    u = next_double(state)
    f = pk
    while u >= f and k < trials:
        pk *= (nf - k) / (k + 1.0) * ratio
        k += 1
        f += pk
        if pk < _POISSON_TAIL_STOP and k > mode:
            break
    return trials - k if flip else k


@njit(cache=True, _nrt=False)
def student_t_scale(state, dof):
    """Multiplier sqrt((dof - 2) / chi2(dof)) for unit-variance Student-t shocks.

    For Z ~ N(0, 1) drawn separately, ``Z * student_t_scale(state, dof)`` is
    Student-t with ``dof`` degrees of freedom scaled by sqrt((dof - 2)/dof),
    i.e. variance exactly 1 (dof > 2 required, else NaN; dof = +inf
    returns 1.0, the normal limit, without drawing).

    Multivariate use (what the engine does): draw ONE multiplier per path and
    year and apply it to all of that year's correlated normals,
    X = L z * s.  X is then multivariate t with ``dof`` degrees of freedom,
    scale matrix C (dof - 2)/dof and covariance exactly C = L L^T: every
    margin is the unit-variance t above and the correlations are unchanged.
    Unlike independent t margins, the components share the chi-square, so
    they are dependent even when uncorrelated: large shocks hit all
    indicators in the same year (tail dependence), which is the intent.
    """
    nu = float(dof)
    if nu == math.inf:
        return 1.0
    if not (nu > 2.0):
        return math.nan
    # chi2 > 0 strictly for dof > 2 (Marsaglia-Tsang returns d * v, v > 0).
    return math.sqrt((nu - 2.0) / next_chi2(state, nu))


# ---------------------------------------------------------------------------
# Count draws by table inversion, for a law whose parameters are fixed for a run.
# ---------------------------------------------------------------------------

# The table stops past the mode once the mass beyond it is below this bound.
_TABLE_TAIL = 2.0 ** -64
# A U at or above every tabulated CDF value (probability <= the tail bound plus rounding)
# meets this sentinel, which ends the search.
_TABLE_SENTINEL = 2.0


@njit(cache=True, _nrt=False)
def count_log_pmf(k, mean, dispersion):
    """log P(A = k) for Poisson(mean) (dispersion 0) or NB(mean, dispersion)."""
    if k < 0:
        return -np.inf
    if dispersion <= 0.0:
        if mean == 0.0:
            return 0.0 if k == 0 else -np.inf
        return k * math.log(mean) - mean - math.lgamma(k + 1.0)
    if mean == 0.0:
        return 0.0 if k == 0 else -np.inf
    r = dispersion
    return (math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1.0)
            + r * math.log(r / (r + mean)) + k * math.log(mean / (r + mean)))


@njit(cache=True, _nrt=False)
def count_cdf_table(mean, dispersion, out):
    """The CDF of Poisson(mean) (dispersion 0) or NB(mean, dispersion) for inversion:
    ``out[k] = F(k)`` for ``k = 0 .. K - 1`` and ``out[K] = 2.0`` (a sentinel that ends
    any search); returns the table's length ``K + 1``, or -1 when ``out`` is too short.

    Poisson with mean < 10: exactly the partial sums ``_poisson_inversion`` forms, and its
    stop (the first ``k`` with ``p(k) < 2**-64``) as the sentinel, so that inverting this
    table with the same uniform gives the same count. Otherwise each ``p(k)`` comes from
    its log (lgamma), summed with Neumaier's compensation, until past the mode the mass
    beyond ``k`` is provably below ``2**-64`` (a geometric bound on the remaining pmf
    ratios); the sentinel then takes that mass, and whatever rounding leaves above the last
    sum (~1e-16).
    """
    n = out.shape[0]
    if dispersion <= 0.0 and mean < _POISSON_INVERSION_MAX:
        p = math.exp(-mean)
        f = p
        out[0] = f
        k = 0
        while True:
            k += 1
            if k >= n:
                return -1
            p *= mean * _INV_K[k]
            f += p
            if p < _POISSON_TAIL_STOP:
                out[k] = _TABLE_SENTINEL
                return k + 1
            out[k] = f
    q = mean / (dispersion + mean) if dispersion > 0.0 else 0.0
    total = 0.0
    comp = 0.0
    k = 0
    while True:
        if k + 1 >= n:
            return -1
        p = math.exp(count_log_pmf(k, mean, dispersion))
        t = total + p
        if abs(total) >= abs(p):
            comp += (total - t) + p
        else:
            comp += (p - t) + total
        total = t
        out[k] = total + comp
        # the ratio p(j + 1) / p(j) for every j >= k is at most rho
        # (NB: (j + r) / (j + 1) * q, which falls towards q when r > 1 and rises to it when r < 1)
        if dispersion > 0.0:
            rho = q if dispersion < 1.0 else (k + dispersion) / (k + 1.0) * q
        else:
            rho = mean / (k + 1.0)
        if rho < 1.0 and p * rho / (1.0 - rho) < _TABLE_TAIL:
            out[k + 1] = _TABLE_SENTINEL
            return k + 2
        k += 1


@njit(cache=True, _nrt=False)
def count_guide_table(cdf, out):
    """Chen & Asau's guide for ``cdf`` (a :func:`count_cdf_table`): ``out[j]`` = the first
    ``k`` with ``cdf[k] > j / m`` (``m = len(out)``, a power of two), where the search for
    a uniform in ``[j/m, (j+1)/m)`` may start: no smaller ``k`` can have ``u < cdf[k]``."""
    m = out.shape[0]
    k = 0
    for j in range(m):
        threshold = j / m
        while cdf[k] <= threshold:
            k += 1
        out[j] = k


@njit(cache=True, _nrt=False, inline="always")
def count_from_table(u, cdf, guide, cdf_start, guide_start, guide_size):
    """The count whose CDF step holds the uniform ``u``: the first ``k`` with
    ``u < F(k)``, found from the guide (``cdf``/``guide`` hold many tables; this one starts
    at ``cdf_start``/``guide_start`` and has ``guide_size`` guide entries, a power of two)."""
    k = guide[guide_start + np.int64(u * guide_size)]
    while u >= cdf[cdf_start + k]:
        k += 1
    return np.int64(k)


def count_tables(means, dispersions, max_len=1 << 15):
    """Inversion tables for counts whose laws are fixed for the run.

    For each entry (mean > 0; dispersion 0 for Poisson), its CDF (:func:`count_cdf_table`)
    and a guide (32-bit indices) of a power-of-two length at least the CDF's, so that a
    search takes about one step. Returns ``(cdf, guide, cdf_start, guide_start,
    guide_size)``: the tables concatenated, and each entry's start in them and guide length;
    ``guide_size`` is 0 where there is no table (mean 0, or a law whose table would exceed
    ``max_len`` entries: those keep their samplers).
    """
    count = len(means)
    cdf_start = np.zeros(count, dtype=np.int64)
    guide_start = np.zeros(count, dtype=np.int64)
    guide_size = np.zeros(count, dtype=np.int64)
    cdfs, guides = [], []
    scratch = np.empty(max_len)
    n_cdf = n_guide = 0
    for i in range(count):
        mean, disp = float(means[i]), float(dispersions[i])
        if not mean > 0.0:
            continue
        length = count_cdf_table(mean, disp, scratch)
        if length < 0:
            continue
        cdf = scratch[:length].copy()
        m = 1 << (length - 1).bit_length()  # the power of two in [length, 2 length)
        guide = np.empty(m, dtype=np.int32)
        count_guide_table(cdf, guide)
        cdf_start[i], guide_start[i], guide_size[i] = n_cdf, n_guide, m
        cdfs.append(cdf)
        guides.append(guide)
        n_cdf += length
        n_guide += m
    cdf_all = np.concatenate(cdfs) if cdfs else np.zeros(1)
    guide_all = np.concatenate(guides) if guides else np.zeros(1, dtype=np.int32)
    return cdf_all, guide_all, cdf_start, guide_start, guide_size
