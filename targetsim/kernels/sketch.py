"""Log-spaced histograms: a mergeable quantile sketch with a relative error bound.

Each cell (indicator, year) counts ``ln X`` in ``n_bins`` equal bins of width ``w`` from
``lo``, plus an underflow bin (index 0, also taking non-positive values) and an overflow bin
(index ``n_bins + 1``). Counts are integers, so merging sketches is exact and independent of
order. The type-1 sample quantile (inverse empirical CDF) lies in the bin that
:func:`sketch_quantile` finds; reporting the bin's geometric centre, clamped to the exact
sample minimum and maximum, is within a factor ``exp(w/2)`` of it: a relative error of at
most ``exp(w/2) - 1``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def sketch_bin(log_value: float, lo: float, inv_width: float, n_bins: int) -> int:
    """Index of the bin of ``log_value`` (``0``: underflow, ``n_bins + 1``: overflow).

    Branch-free (selects, and a 32-bit conversion that SIMD units have), so that a loop over
    many values vectorises; ``n_bins`` must be below 2^31.
    """
    pos = (log_value - lo) * inv_width
    pos = pos if pos >= 0.0 else -1.0  # also catches NaN (a non-positive value has log -inf or NaN)
    pos = pos if pos < n_bins else np.float64(n_bins)
    return np.int64(np.int32(pos)) + 1


@njit(cache=True)
def sketch_quantile(counts: np.ndarray, lo: float, width: float, qs: np.ndarray,
                    vmin: float, vmax: float, out: np.ndarray) -> None:
    """Quantiles of one cell's sketch, as values (not logs), written into ``out``.

    ``counts`` has ``n_bins + 2`` entries; ``vmin``/``vmax`` are the exact sample extremes.
    A quantile that falls in the under- or overflow bin is unknown within the bound: NaN.
    """
    n_bins = counts.shape[0] - 2
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
        if b == 0 or b == n_bins + 1:
            # all mass of this bin is beyond the grid; the extremes are exact when it is all one value
            out[k] = vmin if (b == 0 and vmin == vmax) else (vmax if vmin == vmax else np.nan)
            continue
        value = math.exp(lo + (b - 1 + 0.5) * width)
        out[k] = min(max(value, vmin), vmax)


def relative_error_bound(width: float) -> float:
    """The sketch's bound on the relative error of a quantile, for bin width ``width`` in log units."""
    return math.expm1(width / 2.0)
