"""Log-spaced histograms: a mergeable quantile sketch with a relative error bound.

Each cell (indicator, year) counts ``ln X`` in ``n_bins`` equal bins of width ``w`` from ``lo``
(indices ``2 .. n_bins + 1``), plus three bins off the grid: ``0`` holds exactly the values that
are zero (or negative: ``ln X`` is ``-inf`` or NaN), ``1`` the positive values below the grid
(underflow) and ``n_bins + 2`` those above it (overflow); :data:`OFF_GRID_BINS` counts them.
Counts are integers, so merging sketches is exact and independent of order. The type-1 sample
quantile (inverse empirical CDF) lies in the bin that :func:`sketch_quantile` finds; reporting
the bin's geometric centre, clamped to the exact sample minimum and maximum, is within a factor
``exp(w/2)`` of it: a relative error of at most ``exp(w/2) - 1``. A quantile in the zero bin is
exactly 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


# Bins off the grid: zeros, underflow and overflow. A cell's sketch has n_bins + OFF_GRID_BINS counters.
OFF_GRID_BINS = 3


@njit(cache=True, inline="always")
def sketch_bin(log_value: float, lo: float, inv_width: float, n_bins: int) -> int:
    """Index of the bin of ``log_value`` (``0``: zero, ``1``: underflow, ``n_bins + 2``: overflow).

    Branch-free (selects, and a 32-bit conversion that SIMD units have), so that a loop over
    many values vectorises; ``n_bins`` must be below 2^31.
    """
    pos = (log_value - lo) * inv_width
    pos = pos if pos >= 0.0 else -1.0  # below the grid (also -inf and NaN, sorted out next)
    pos = pos if pos < n_bins else np.float64(n_bins)
    pos = pos if log_value > -np.inf else -2.0  # a zero (ln 0 = -inf) or a negative value (NaN)
    return np.int64(np.int32(pos)) + 2


@njit(cache=True)
def sketch_quantile(counts: np.ndarray, lo: float, width: float, qs: np.ndarray,
                    vmin: float, vmax: float, out: np.ndarray) -> None:
    """Quantiles of one cell's sketch, as values (not logs), written into ``out``.

    ``counts`` has ``n_bins + OFF_GRID_BINS`` entries; ``vmin``/``vmax`` are the exact sample
    extremes. A quantile among the zeros is 0; one that falls in the under- or overflow bin is
    unknown within the bound: NaN (unless every value is the same).
    """
    n_bins = counts.shape[0] - OFF_GRID_BINS
    total = 0
    for b in range(counts.shape[0]):
        total += counts[b]
    for k in range(qs.shape[0]):
        if total == 0:
            out[k] = np.nan
            continue
        # type-1 quantile: the smallest order statistic whose rank reaches q * n
        rank = max(1, int(math.ceil(qs[k] * total - 1e-9 * total)))
        cum = 0
        b = 0
        while b < counts.shape[0]:
            cum += counts[b]
            if cum >= rank:
                break
            b += 1
        if b == 0:
            out[k] = 0.0
            continue
        if b == 1 or b == n_bins + 2:
            # all mass of this bin is beyond the grid; the extremes are exact when it is all one value
            out[k] = vmin if vmin == vmax else np.nan
            continue
        value = math.exp(lo + (b - 2 + 0.5) * width)
        out[k] = min(max(value, vmin), vmax)


def relative_error_bound(width: float) -> float:
    """The sketch's bound on the relative error of a quantile, for bin width ``width`` in log units."""
    return math.expm1(width / 2.0)
