"""Path weights when observations condition the paths: the one place that fixes their format.

A path's weight is the likelihood of the observations given the path, relative to a reference
fixed before the run (the largest log-likelihood among the first paths, see
:func:`targetsim.engine.simulate.simulate`): ``w = exp(min(log L - reference, LOG_WEIGHT_CAP))``.
Weights are then held as fixed-point integers with ``WEIGHT_BITS`` fractional bits (rounded to
the nearest), so that sums of weights merge exactly in any order: results stay bit-identical for
any threads and blocks. Relative to the reference, a weight below 2^-25 rounds to 0 and one above
the cap is refused by a rerun with the run's own largest log-likelihood as the reference.

No numba here: the model and the engine import these constants without loading the compiler.
"""

from __future__ import annotations

import math

# fixed point: 24 fractional bits
WEIGHT_BITS = 24
WEIGHT_ONE = float(2**WEIGHT_BITS)
# a weight may exceed the reference's by at most 2^7 (a path likelier than every path of the pilot)
LOG_WEIGHT_CAP = 7 * math.log(2.0)
# sums of weights are int64: paths × 2^7 × 2^24 stays below 2^62
MAX_WEIGHTED_PATHS = 2**31 - 1
# the paths whose largest log-likelihood is the reference: the first ones, the same for any threads
PILOT_PATHS = 16384
