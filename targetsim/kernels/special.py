"""Special functions for kernels: the normal CDF and its inverse, and the two-piece normal.

``norm_ppf`` is Acklam's rational approximation refined by one Halley step against ``erfc``;
checked against scipy to a relative error below 2e-9 from p = 1e-300 to 1 − 1e-16.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_A = np.array([-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
               1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00])
_B = np.array([-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
               6.680131188771972e+01, -1.328068155288572e+01])
_C = np.array([-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
               -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00])
_D = np.array([7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
               3.754408661907416e+00])
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


@njit(cache=True)
def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True)
def norm_ppf(p: float) -> float:
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    lower = 0.02425
    if p < lower:
        q = math.sqrt(-2.0 * math.log(p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    elif p <= 1.0 - lower:
        q = p - 0.5
        r = q * q
        x = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
             / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
              / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    # one Halley step on Φ(x) − p
    e = norm_cdf(x) - p
    u = e * _SQRT2PI * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


def two_piece_params(skew: float) -> tuple[float, float, float, float]:
    """(σ_left, σ_right, mean, sd) of the two-piece normal with mode 0 and ``σ_right/σ_left = (1+skew)/(1−skew)``,
    scaled so that the standardised variable ``(x − mean)/sd`` has unit variance."""
    s1, s2 = 1.0 - skew, 1.0 + skew
    mean = math.sqrt(2.0 / math.pi) * (s2 - s1)
    var = (1.0 - 2.0 / math.pi) * (s2 - s1) ** 2 + s1 * s2
    return s1, s2, mean, math.sqrt(var)


@njit(cache=True)
def two_piece_from_normal(z: float, s1: float, s2: float, mean: float, sd: float) -> float:
    """Map a standard normal ``z`` through its rank to a standardised two-piece normal draw."""
    p = norm_cdf(z)
    w_left = s1 / (s1 + s2)
    if p < w_left:
        x = s1 * norm_ppf(p * (s1 + s2) / (2.0 * s1))
    else:
        x = s2 * norm_ppf((p * (s1 + s2) - s1 + s2) / (2.0 * s2))
    return (x - mean) / sd
