"""Path weights when observations condition the paths: the one place that fixes their format.

A path's weight is the likelihood of the observations given the path, relative to a reference:
``w = exp(log L - reference)``. Every log-likelihood is at most 0 (normalised Gaussian kernels,
probabilities of counts), so the first pass of a run uses the reference 0. When even the likeliest
path of that pass falls below :data:`LOG_WEIGHT_FLOOR` (an improbable observation, or a long record
whose likelihood is a product of many factors), the run is repeated with the pass's own largest
log-likelihood as the reference, so that the likeliest path weighs 1 and nothing underflows. The
largest log-likelihood is a maximum over all paths, exact in any order: the choice, and so the
result, is the same for any threads and blocks.

Weights are fixed-point integers with :data:`WEIGHT_BITS` fractional bits, rounded to the nearest, so
that sums of weights merge exactly in any order. No numba here: the model and the engine import
these constants without loading the compiler.
"""

from __future__ import annotations

import math

WEIGHT_BITS = 32
WEIGHT_ONE = float(2**WEIGHT_BITS)
# the likeliest path must weigh at least 2^-6 relative to the reference, or the run is repeated
LOG_WEIGHT_FLOOR = -6 * math.log(2.0)
# sums of weights (each at most 1) are int64: paths × 2^32 stays below 2^63
MAX_WEIGHTED_PATHS = 2**31 - 1
