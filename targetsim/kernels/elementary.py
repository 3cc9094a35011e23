"""The exponential and the logarithm over lanes, written so that the compiler vectorises them.

``math.exp`` compiles to a call into the C library, one value at a time (numba has no vector
math library here), and took about a sixth of a path-step. :func:`exp_lanes` does the same
job in plain arithmetic that the compiler turns into SIMD code: the classic reduction
``exp(x) = 2^k · exp(r)`` with ``k = round(x / ln 2)`` and ``|r| <= ln(2) / 2`` (Cody & Waite,
with ``ln 2`` split in two so that ``k · ln2_hi`` is exact), a degree-13 Taylor polynomial for
``exp(r)`` evaluated by Estrin's scheme (truncation error below 1e-17 relative), and ``2^k``
built from its bits. Measured against ``math.exp`` it is within 2 ulp wherever the result is a
normal double (tests/test_elementary.py); results below 2^-1022 (``x < -708.39``), which would be
subnormal, are flushed to 0 (an absolute error below 2.3e-308, which no level or mean here can
see); ``exp(nan)`` is NaN, ``exp(inf)`` is inf, ``exp(-inf)`` is 0.

:func:`fast_log` likewise: ``x = 2^e · m`` from the bits (subnormals scaled up first),
``m`` in ``[sqrt(1/2), sqrt(2))``, and ``ln m = 2 atanh(s)`` with ``s = (m - 1)/(m + 1)``,
``|s| < 0.172``, as an odd series to the s^23 term (truncation below 1e-18 relative); within
2 ulp of ``math.log`` for every positive double (tested); ``log(0) = -inf``, ``log(inf) = inf``,
NaN for negative or NaN input.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
# ln 2 = _LN2_HI + _LN2_LO; _LN2_HI has 32 trailing zero bits, so k * _LN2_HI is exact for |k| < 2^21.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Adding 1.5 * 2^52 rounds to an integer, which then sits in the low bits of the mantissa.
_SHIFTER = 6755399441055744.0
_SHIFTER_BITS = 0x4338000000000000
# Above _X_MAX the result is inf; below ln(2^-1022) it would be subnormal, and is flushed to 0.
_X_MAX = 709.9
_X_MIN_NORMAL = -708.3964185322641
# 1/n! for n = 2 .. 13
_C2, _C3, _C4, _C5 = 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120
_C6, _C7, _C8, _C9 = 1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880
_C10, _C11, _C12, _C13 = 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits``."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bits_of_float(typingctx, x):
    """The IEEE-754 bits of the float64 ``x``, as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def popcount(typingctx, word):
    """The number of set bits of the uint64 ``word`` (one instruction where the CPU has it)."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@njit(cache=True, inline="always")
def fast_exp(x):
    """``exp(x)`` in branch-free arithmetic (see the module docstring)."""
    xc = x if x < _X_MAX else _X_MAX  # NaN goes to _X_MAX here and is put back at the end
    xc = xc if xc > _X_MIN_NORMAL else _X_MIN_NORMAL
    shifted = xc * _LOG2E + _SHIFTER
    kf = shifted - _SHIFTER
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    # Estrin's scheme: a short dependency chain, so that consecutive lanes overlap
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    s0 = (1.0 + r) + (_C2 + _C3 * r) * r2
    s1 = (_C4 + _C5 * r) + (_C6 + _C7 * r) * r2
    s2 = (_C8 + _C9 * r) + (_C10 + _C11 * r) * r2
    s3 = _C12 + _C13 * r
    p = (s0 + s1 * r4) + (s2 + s3 * r4) * r8
    # 2^k from its bits: the integer k sits in the low bits of ``shifted``; k = 1024 (results
    # between 2^1023 and the largest double) takes 2^1023 and a doubling
    k = _bits_of_float(shifted) - _SHIFTER_BITS
    y = p * _float_from_bits(((k if k < 1024 else 1023) + 1023) << 52)
    y = y * 2.0 if k >= 1024 else y
    y = y if x >= _X_MIN_NORMAL else 0.0
    return y if x == x else x


_SMALLEST_NORMAL = 2.2250738585072014e-308
_TWO54 = 18014398509481984.0
_SQRT2 = 1.4142135623730951
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
# 2 / (2j + 1) for j = 1 .. 11: ln m = 2s + s z (_L1 + _L2 z + ...), z = s^2
_L1, _L2, _L3, _L4 = 2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9
_L5, _L6, _L7, _L8 = 2.0 / 11, 2.0 / 13, 2.0 / 15, 2.0 / 17
_L9, _L10, _L11 = 2.0 / 19, 2.0 / 21, 2.0 / 23


@njit(cache=True, inline="always")
def fast_log(x):
    """``log(x)`` in branch-free arithmetic (see the module docstring)."""
    sub = x < _SMALLEST_NORMAL
    xs = x * _TWO54 if sub else x
    bits = _bits_of_float(xs)
    e = (bits >> 52) - (1023 + 54 if sub else 1023)
    m = _float_from_bits((bits & _MANTISSA) | _ONE_BITS)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    z8 = z4 * z4
    q0 = (_L1 + _L2 * z) + (_L3 + _L4 * z) * z2
    q1 = (_L5 + _L6 * z) + (_L7 + _L8 * z) * z2
    q2 = (_L9 + _L10 * z) + _L11 * z2
    log_m = 2.0 * s + s * z * ((q0 + q1 * z4) + q2 * z8)
    ef = _float_from_bits(e + _SHIFTER_BITS) - _SHIFTER  # int -> float (SIMD units lack it)
    y = ef * _LN2_HI + (log_m + ef * _LN2_LO)
    y = y if x < np.inf else x          # inf stays inf
    y = y if x > 0.0 else -np.inf       # log(0) = -inf
    y = y if x >= 0.0 else np.nan       # negative or NaN
    return y


@njit(cache=True, _nrt=False, fastmath={'contract'})
def exp_lanes(x, n, out):
    """``out[l] = exp(x[l])`` for the first ``n`` lanes."""
    for lane in range(n):
        out[lane] = fast_exp(x[lane])


# error_model="numpy": a division by zero gives inf instead of a Python exception, whose check
# would stop the loop from vectorising (fast_log divides, and a caller that inlines it needs the same)
@njit(cache=True, _nrt=False, fastmath={'contract'}, error_model="numpy")
def log_lanes(x, n, out):
    """``out[l] = log(x[l])`` for the first ``n`` lanes."""
    for lane in range(n):
        out[lane] = fast_log(x[lane])
