"""Path weights when observations condition the paths: the one place that fixes their format.

A path's weight is the likelihood of the observations given the path, relative to a reference:
``w = exp(log L - reference)``, a fixed-point integer with :data:`WEIGHT_BITS` fractional bits,
rounded to the nearest, so that sums of weights merge exactly in any order. Every log-likelihood is
at most 0 (normalised Gaussian kernels, probabilities of counts, and an estimated volatility's density
factor relative to its largest: see :data:`VOL_W_MIN`), so a run first weighs its paths relative to 0.
Rounding moves any weighted sum by at most half a unit per path: relative to the total weight, at
most ``paths / (2 · total)`` units. When that bound passes :data:`ROUNDING_BOUND`
(an improbable observation, or a long record whose likelihood is a product of many small factors:
weights that underflow), the run is repeated relative to its likeliest path, whose weight is then 1.
The decision rests on an integer total and an exact maximum, the same for any threads and blocks,
and so is the result.

No numba here: the model and the engine import these constants without loading the compiler.
"""

from __future__ import annotations

WEIGHT_BITS = 32
WEIGHT_ONE = float(2**WEIGHT_BITS)
# the largest relative effect of rounding the weights that a run accepts without repeating itself
ROUNDING_BOUND = 1e-6
# sums of weights (each at most 1) are int64: paths × 2^32 stays below 2^63
MAX_WEIGHTED_PATHS = 2**31 - 1
# An estimated volatility's per-path factor w = sqrt(ν / χ²_ν) (σ = estimate·w) is drawn no smaller than
# this: the law is cut where P(w < 0.1) = P(χ²_ν > 100ν) ≤ P(χ²_1 > 100) = 1.5e-23 (ν ≥ 1), a change no
# run can see. An observation's density carries the factor 1/σ = 1/(estimate·w), unbounded as w → 0;
# relative to its largest, 1/(estimate·VOL_W_MIN), it is at most 1, and the log-likelihood at most 0.
VOL_W_MIN = 0.1
