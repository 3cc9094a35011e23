"""Proper scores and calibration diagnostics: pure functions on NumPy arrays.

Used by ``targetsim backtest`` (rolling-origin forecasts of indicator histories: CRPS, PIT, interval
coverage) and by the calibration benchmark (attainment probabilities against outcomes: Brier score, its
decomposition, reliability tables).

The CRPS and the Brier score come from ``scoringrules`` (the ``calibrate`` extra), imported only when a
score is asked for; the PIT histogram's chi-square test comes from SciPy, imported likewise. Reliability
tables, the Brier decomposition and interval coverage are plain NumPy.

Every function checks its arguments at the edge and raises ``ValueError`` naming the argument: shapes
that do not pair up, NaN or infinite values, probabilities outside [0, 1], outcomes other than 0/1.
Where a function takes an observation and forecast parameters, each parameter is either one value (for
every observation) or one per observation (the observation's shape): arrays are never broadcast against
each other beyond that, so an ``(n,)`` against an ``(n, 1)`` is refused instead of giving ``(n, n)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from targetsim.errors import TargetsimError

__all__ = [
    "require_scoringrules", "crps_normal", "crps_quantiles", "PitHistogram", "pit_histogram",
    "interval_coverage", "brier_score", "ReliabilityTable", "reliability_table", "BrierDecomposition",
    "brier_decomposition", "format_reliability",
]

CALIBRATE_EXTRA = "pip install 'targetsim[calibrate]'"
_SCORES_PURPOSE = "the proper scores of `targetsim backtest` and of the calibration benchmark"


def require_scoringrules(purpose: str = _SCORES_PURPOSE) -> ModuleType:
    """The ``scoringrules`` module; a :class:`TargetsimError` naming the extra to install if it is missing.

    ``purpose`` says what needs it (it goes into the message).
    """
    try:
        import scoringrules
    except ImportError as err:
        raise TargetsimError(f"{purpose} need(s) the scoringrules library, which is not installed; "
                             f"install the 'calibrate' extra: {CALIBRATE_EXTRA}") from err
    return scoringrules


# --------------------------------------------------------------------------------------------------------
# validation helpers


def _as_float(name: str, value, *, allow_inf: bool = False) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers: {err}") from None
    bad = np.isnan(array) if allow_inf else ~np.isfinite(array)
    if bad.any():
        what = "NaN" if allow_inf else "NaN or infinite"
        raise ValueError(f"{name} has {int(bad.sum())} {what} value(s), first at index "
                         f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
    return array


def _common_shape(**arrays: np.ndarray) -> tuple[int, ...]:
    """The one shape of the non-scalar arrays (``()`` if all are scalars); ValueError if they differ."""
    shaped = {name: a.shape for name, a in arrays.items() if a.ndim > 0}
    shapes = set(shaped.values())
    if len(shapes) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shaped.items())
        raise ValueError(f"shapes do not pair up: {listed}; give each either one value or one per observation")
    return shapes.pop() if shapes else ()


def _same_shape(first: str, a: np.ndarray, second: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{first} has shape {a.shape} and {second} {b.shape}: give one {second} per {first}")


def _nonempty(name: str, a: np.ndarray) -> None:
    if a.size == 0:
        raise ValueError(f"{name} is empty")


def _probability(name: str, value) -> np.ndarray:
    p = _as_float(name, value)
    outside = (p < 0.0) | (p > 1.0)
    if outside.any():
        raise ValueError(f"{name} must lie in [0, 1]; {int(outside.sum())} value(s) do not, e.g. "
                         f"{p[outside].flat[0]!r}")
    return p


def _outcome(name: str, value) -> np.ndarray:
    y = _as_float(name, value)
    other = (y != 0.0) & (y != 1.0)
    if other.any():
        raise ValueError(f"{name} must be 0 or 1 (or booleans); {int(other.sum())} value(s) are not, e.g. "
                         f"{y[other].flat[0]!r}")
    return y


def _bins(value, *, least: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"bins must be a whole number of at least {least}, not {value!r}")
    return int(value)


def _bin_index(p: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width bins on [0, 1]: the edges and each value's bin. Bins are ``[a, b)`` except the last,
    ``[a, 1]``; a value on an edge goes to the bin it opens (as ``numpy.histogram``)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum(np.searchsorted(edges, p, side="right") - 1, bins - 1)
    return edges, index


# --------------------------------------------------------------------------------------------------------
# CRPS


def crps_normal(observation, mu, sigma) -> np.ndarray:
    """CRPS of the forecast N(mu, sigma²) for ``observation`` (``scoringrules.crps_normal``).

    Closed form: ``σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π]`` with ``z = (y − μ)/σ`` (Gneiting et al. 2005).
    Each argument is one value or one per observation; ``sigma`` must be positive. Returns an array of the
    observations' shape (lower is better; in the observation's unit).
    """
    y = _as_float("observation", observation)
    m = _as_float("mu", mu)
    s = _as_float("sigma", sigma)
    _common_shape(observation=y, mu=m, sigma=s)
    if (s <= 0).any():
        raise ValueError("sigma must be positive (a point forecast has no normal CRPS: use |observation − mu|)")
    sr = require_scoringrules("crps_normal (the CRPS of `targetsim backtest`)")
    return np.asarray(sr.crps_normal(y, m, s, backend="numpy"), dtype=float)


def crps_quantiles(observation, quantiles, levels) -> np.ndarray:
    """CRPS of a forecast given by its quantiles at ``levels`` (``scoringrules.crps_quantile``).

    ``levels``: a 1-D increasing sequence in the open interval (0, 1); ``quantiles``: the observations'
    shape plus one last axis of ``len(levels)`` values, non-decreasing along it (what the engine reports
    after reducing its paths to quantiles). Returns an array of the observations' shape.

    Normalisation (scoringrules' quantile CRPS, Berrisch & Ziel 2023): with ``K`` levels ``α_k``,

        QCRPS = (2/K) Σ_k PB_{α_k}(q_k, y),   PB_α(q, y) = α (y − q) if y ≥ q else (1 − α)(q − y),

    twice the mean pinball loss, every level weighted alike. Since ``CRPS(F, y) = 2 ∫₀¹ PB_α(F⁻¹(α), y) dα``,
    this is an equal-weight quadrature of that integral: it converges to the CRPS as the levels fill (0, 1)
    evenly, and for a finite set it is close to but not equal to it. For a normal forecast, measured:
    with levels ``k/(K+1)`` the relative error is up to about ``1/K`` (11 % at K = 9, 1 % at K = 99,
    0.1 % at K = 999, largest for observations far in a tail); with midpoints ``(k − ½)/K`` it is about
    ten times smaller. With unevenly spaced levels the equal weights are no quadrature at all: at the
    scenario default (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95) it is 6–25 % below the CRPS of a normal.
    It stays a proper score for those quantiles (a sum of pinball losses), so it ranks forecasts reported
    at the same levels, but its values are not CRPS values: do not compare them with :func:`crps_normal`
    or with scores at other levels.

    A point forecast (every quantile ``x``) scores ``2|x − y|`` times the mean of ``α`` (y > x) or of
    ``1 − α`` (y < x): exactly ``|x − y|``, the CRPS of a point mass, when the levels are symmetric about ½.
    """
    y = _as_float("observation", observation)
    q = _as_float("quantiles", quantiles)
    a = _as_float("levels", levels)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"levels must be a non-empty 1-D sequence, not shape {a.shape}")
    if ((a <= 0) | (a >= 1)).any():
        raise ValueError(f"levels must lie strictly between 0 and 1: {a.tolist()}")
    if (np.diff(a) <= 0).any():
        raise ValueError(f"levels must be strictly increasing: {a.tolist()}")
    if q.shape != y.shape + a.shape:
        raise ValueError(f"quantiles has shape {q.shape}; with observation {y.shape} and {a.size} levels it "
                         f"must be {y.shape + a.shape} (the levels on the last axis)")
    if (np.diff(q, axis=-1) < 0).any():
        raise ValueError("quantiles must not decrease along the levels (last axis)")
    sr = require_scoringrules("crps_quantiles (the CRPS of `targetsim backtest`)")
    # numpy backend: no JIT compilation on first call; the arrays are (forecasts × levels)
    return np.asarray(sr.crps_quantile(y, q, a, backend="numpy"), dtype=float)


# --------------------------------------------------------------------------------------------------------
# PIT and intervals


@dataclass(frozen=True, eq=False)
class PitHistogram:
    """Counts of PIT values in equal-width bins on [0, 1], and a chi-square test of uniformity.

    ``edges`` (bins + 1), ``counts`` and ``expected`` (n / bins) per bin; ``statistic`` and ``p_value``
    of Pearson's chi-square with ``bins − 1`` degrees of freedom.
    """

    edges: np.ndarray
    counts: np.ndarray
    expected: float
    statistic: float
    p_value: float

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def pit_histogram(pit, bins: int = 10) -> PitHistogram:
    """Histogram of PIT values (``F(y)`` of each forecast at its observation) and a uniformity test.

    For calibrated forecasts the PIT is uniform on [0, 1]: a U shape means too narrow forecasts, a hump
    too wide ones, a slope a bias. Bins are ``[a, b)`` except the last, ``[a, 1]``. The chi-square
    p-value (``scipy.stats.chisquare``) assumes independent PIT values and expected counts of at least
    about 5 per bin; PIT values of one history at overlapping horizons are correlated, and then the
    p-value is too small — read it as a screen, not a test.
    """
    u = _as_float("pit", pit).ravel()
    _nonempty("pit", u)
    if ((u < 0) | (u > 1)).any():
        raise ValueError("pit values must lie in [0, 1]")
    bins = _bins(bins, least=2)
    edges, index = _bin_index(u, bins)
    counts = np.bincount(index, minlength=bins)
    from scipy import stats

    statistic, p_value = stats.chisquare(counts)
    return PitHistogram(edges=edges, counts=counts, expected=u.size / bins, statistic=float(statistic),
                        p_value=float(p_value))


def interval_coverage(observation, lower, upper) -> float:
    """Fraction of observations inside their interval, endpoints included: ``lower ≤ y ≤ upper``.

    ``lower`` and ``upper`` are one value or one per observation and may be infinite (a one-sided
    interval); ``lower ≤ upper`` everywhere.
    """
    y = _as_float("observation", observation)
    lo = _as_float("lower", lower, allow_inf=True)
    hi = _as_float("upper", upper, allow_inf=True)
    shape = _common_shape(observation=y, lower=lo, upper=hi)
    if math.prod(shape) == 0:
        raise ValueError("no observations: coverage is undefined")
    if (lo > hi).any():
        raise ValueError("lower must not exceed upper")
    inside = (lo <= y) & (y <= hi)
    return float(np.broadcast_to(inside, shape).mean())


# --------------------------------------------------------------------------------------------------------
# binary forecasts


def brier_score(probability, outcome) -> np.ndarray:
    """Brier score ``(p − y)²`` of each forecast (``scoringrules.brier_score``); average it yourself.

    ``probability`` in [0, 1]; ``outcome`` 0 or 1 (or booleans); each one value or one per forecast.
    """
    p = _probability("probability", probability)
    y = _outcome("outcome", outcome)
    _common_shape(probability=p, outcome=y)
    sr = require_scoringrules("brier_score (the calibration benchmark)")
    return np.asarray(sr.brier_score(y, p, backend="numpy"), dtype=float)


def _binary_pairs(probability, outcome) -> tuple[np.ndarray, np.ndarray]:
    p = _probability("probability", probability)
    y = _outcome("outcome", outcome)
    _same_shape("probability", p, "outcome", y)
    _nonempty("probability", p)
    return p.ravel(), y.ravel()


@dataclass(frozen=True, eq=False)
class ReliabilityTable:
    """Per bin of forecast probability (equal width on [0, 1]; ``edges`` has bins + 1 values):

    ``count`` forecasts; their ``mean_forecast``; the ``observed_frequency`` of the event;
    ``standard_error = sqrt(p̄ (1 − p̄) / count)``, the binomial standard error of the observed frequency
    if the bin's forecasts were calibrated (``p̄`` its mean forecast; slightly conservative: the exact
    variance under calibration, ``Σ p(1 − p) / count²``, is smaller by the spread of the forecasts in the
    bin); ``z = (observed − mean forecast) / standard_error`` (±inf where every forecast in the bin is 0
    or 1 and the outcomes disagree); and ``meaningful``: the bin has at least ``min_count`` forecasts, so
    comparing ``|observed − mean forecast|`` with a tolerance (e.g. ``|z| ≤ 4``) means something.
    Empty bins hold NaN.
    """

    edges: np.ndarray
    count: np.ndarray
    mean_forecast: np.ndarray
    observed_frequency: np.ndarray
    standard_error: np.ndarray
    z: np.ndarray
    meaningful: np.ndarray
    min_count: int

    @property
    def bins(self) -> int:
        return int(self.count.size)

    @property
    def n(self) -> int:
        return int(self.count.sum())


def _per_bin(p: np.ndarray, y: np.ndarray, bins: int):
    edges, index = _bin_index(p, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_forecast = np.bincount(index, weights=p, minlength=bins) / count
        observed = np.bincount(index, weights=y, minlength=bins) / count
    return edges, index, count, mean_forecast, observed


def reliability_table(probability, outcome, bins: int = 10, *, min_count: int = 30) -> ReliabilityTable:
    """Reliability (calibration) table of probability forecasts against 0/1 outcomes.

    ``probability`` and ``outcome`` pair up one to one (same shape; flattened). See
    :class:`ReliabilityTable` for the columns; :func:`format_reliability` prints it.
    """
    p, y = _binary_pairs(probability, outcome)
    bins = _bins(bins, least=1)
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise ValueError(f"min_count must be a whole number of at least 1, not {min_count!r}")
    edges, _, count, mean_forecast, observed = _per_bin(p, y, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(mean_forecast * (1.0 - mean_forecast) / count)
        diff = observed - mean_forecast
        z = diff / se
    z = np.where((se == 0) & (diff == 0), 0.0, z)
    return ReliabilityTable(edges=edges, count=count, mean_forecast=mean_forecast, observed_frequency=observed,
                            standard_error=se, z=z, meaningful=count >= min_count, min_count=int(min_count))


@dataclass(frozen=True, eq=False)
class BrierDecomposition:
    """The mean Brier score and its binned decomposition (see :func:`brier_decomposition`)."""

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float
    bins: int
    n: int

    @property
    def reconstructed(self) -> float:
        """``reliability − resolution + uncertainty + within_bin_variance − within_bin_covariance``:
        the Brier score again, up to rounding."""
        return (self.reliability - self.resolution + self.uncertainty
                + self.within_bin_variance - self.within_bin_covariance)


def brier_decomposition(probability, outcome, bins: int = 10) -> BrierDecomposition:
    """Murphy's (1973) decomposition of the mean Brier score over equal-width probability bins, with the
    two within-bin terms of Stephenson, Coelho & Jolliffe (2008) that make it exact.

    With ``n`` forecasts ``f_i`` and outcomes ``o_i``, bin ``k`` holding ``n_k`` of them with mean forecast
    ``f̄_k`` and observed frequency ``ō_k``, and ``ō`` the overall frequency::

        BS  = (1/n) Σ_i (f_i − o_i)²
        REL = (1/n) Σ_k n_k (f̄_k − ō_k)²                       reliability (lower is better)
        RES = (1/n) Σ_k n_k (ō_k − ō)²                         resolution (higher is better)
        UNC = ō (1 − ō)                                         uncertainty (of the outcomes alone)
        WBV = (1/n) Σ_k Σ_{i∈k} (f_i − f̄_k)²                   within-bin variance of the forecasts
        WBC = (2/n) Σ_k Σ_{i∈k} (o_i − ō_k)(f_i − f̄_k)         within-bin covariance

        BS = REL − RES + UNC + WBV − WBC                        (an identity, not an approximation)

    It follows from writing ``f_i − o_i = (f_i − f̄_k) + (f̄_k − ō_k) − (o_i − ō_k)`` in each bin and
    ``(1/n) Σ_k n_k ō_k (1 − ō_k) = UNC − RES``. Murphy's three-term form drops WBV − WBC, which is exact
    only when every forecast in a bin is the same. (Stephenson, D. B., Coelho, C. A. S. and Jolliffe,
    I. T., 2008: Two extra components in the Brier score decomposition. Weather and Forecasting 23, 752–757.)
    """
    p, y = _binary_pairs(probability, outcome)
    bins = _bins(bins, least=1)
    _, index, count, mean_forecast, observed = _per_bin(p, y, bins)
    n = p.size
    filled = count > 0
    overall = y.mean()
    df = p - mean_forecast[index]
    do = y - observed[index]
    return BrierDecomposition(
        brier=float(np.mean((p - y) ** 2)),
        reliability=float(np.sum(count[filled] * (mean_forecast[filled] - observed[filled]) ** 2) / n),
        resolution=float(np.sum(count[filled] * (observed[filled] - overall) ** 2) / n),
        uncertainty=float(overall * (1.0 - overall)),
        within_bin_variance=float(np.sum(df * df) / n),
        within_bin_covariance=float(2.0 * np.sum(do * df) / n),
        bins=bins, n=n)


# --------------------------------------------------------------------------------------------------------
# text


def _edge_decimals(edges: np.ndarray) -> int:
    for decimals in range(1, 5):
        if np.allclose(np.round(edges, decimals), edges, rtol=0, atol=1e-12):
            return decimals
    return 4


def format_reliability(table: ReliabilityTable, *, decomposition: BrierDecomposition | None = None,
                       title: str | None = None, digits: int = 3) -> str:
    """A plain-text reliability table (under 80 columns for up to 99 bins and a billion forecasts).

    One row per bin: its range, count, mean forecast, observed frequency, standard error and z; bins with
    fewer than ``min_count`` forecasts are starred, empty bins show ``-``. With ``decomposition`` the
    Brier score and its five terms follow.
    """
    if not isinstance(table, ReliabilityTable):
        raise ValueError("table must be a ReliabilityTable (from reliability_table)")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 6:
        raise ValueError(f"digits must be a whole number from 1 to 6, not {digits!r}")
    d = _edge_decimals(table.edges)
    labels = [f"[{a:.{d}f}, {b:.{d}f}{']' if k == table.bins - 1 else ')'}"
              for k, (a, b) in enumerate(zip(table.edges[:-1], table.edges[1:]))]
    lw = max(len("bin"), *(len(s) for s in labels))
    cw = max(len("count"), len(f"{int(table.count.max()):,}"))
    nw = digits + 6
    lines = [title] if title else []
    lines.append(f"{'bin':<{lw}}  {'count':>{cw}}  {'forecast':>{nw}}  {'observed':>{nw}}  "
                 f"{'s.e.':>{nw}}  {'z':>7}")
    for k, label in enumerate(labels):
        count = int(table.count[k])
        if count == 0:
            cells = f"{'-':>{nw}}  {'-':>{nw}}  {'-':>{nw}}  {'-':>7}"
        else:
            z = float(table.z[k])
            zs = f"{z:7.2f}" if math.isfinite(z) and abs(z) < 1e4 else f"{'+inf' if z > 0 else '-inf':>7}"
            cells = (f"{table.mean_forecast[k]:>{nw}.{digits}f}  {table.observed_frequency[k]:>{nw}.{digits}f}  "
                     f"{table.standard_error[k]:>{nw}.{digits + 1}f}  {zs}")
        star = "" if table.meaningful[k] else " *"
        lines.append(f"{label:<{lw}}  {count:>{cw},}  {cells}{star}")
    if not table.meaningful.all():
        lines.append(f"* fewer than {table.min_count} forecasts in the bin: too few to judge")
    if decomposition is not None:
        dec = decomposition
        lines.append("")
        for name, value in (("Brier score", dec.brier), ("  reliability", dec.reliability),
                            ("  resolution", dec.resolution), ("  uncertainty", dec.uncertainty),
                            ("  within-bin variance", dec.within_bin_variance),
                            ("  within-bin covariance", dec.within_bin_covariance)):
            lines.append(f"{name:<24}{value:>{digits + 7}.{digits + 2}f}")
        lines.append("Brier = reliability - resolution + uncertainty + variance - covariance")
    return "\n".join(lines)
