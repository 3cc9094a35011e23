"""Run geometry, owned here: how paths are grouped, chunked, blocked and batched, and how many threads
run them. The kernel, the engine and the resource estimates all read these numbers from this module.

No numba at import (the thread policy loads it when called), so the model, the engine and the
estimates import it without loading the compiler.

- ``LANES``: paths advanced in lockstep by the kernel (a group). A multiple of 64, because targets'
  misses are packed 64 lanes to a word; 256 rather than 64: each visit of a cell's histogram then
  adds 4x as many paths (its cache lines are reused), and the per-call costs of the fold are spread
  over 4x as many paths (12-15 % faster).
- ``CHUNK``: float sums are formed over this many consecutive paths, then added in path order, so
  that means do not depend on threads or blocks; a multiple of ``LANES``.
- ``DEFAULT_BLOCK_SIZE``: paths per block (one slot's unit of work); block sizes are multiples of ``CHUNK``.
- ``BATCH_PATHS``: paths per kernel call, the granularity of progress reports.
"""

from __future__ import annotations

from targetsim.errors import TargetsimError

LANES = 256
CHUNK = 256
DEFAULT_BLOCK_SIZE = 8192
BATCH_PATHS = 1 << 18

assert LANES % 64 == 0, "misses are packed 64 lanes to a word"
assert CHUNK % LANES == 0, "a chunk is a whole number of groups"
assert DEFAULT_BLOCK_SIZE % CHUNK == 0 and BATCH_PATHS % DEFAULT_BLOCK_SIZE == 0


def resolve_threads(threads: int | None) -> int:
    """The worker slots a run will use (an out-of-range request is left for
    :func:`checked_threads` to refuse; here it is clamped to what can run)."""
    import numba

    limit = max(1, int(numba.config.NUMBA_NUM_THREADS))
    if threads is None:
        return max(1, int(numba.get_num_threads()))
    return max(1, min(int(threads), limit))


def checked_threads(threads: int | None) -> int:
    """The number of threads to run: ``threads``, refused when out of range, or numba's
    setting by default (``NUMBA_NUM_THREADS``: all cores unless set otherwise)."""
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if threads is not None and not 1 <= threads <= limit:
        raise TargetsimError(f"--threads must be between 1 and {limit} on this machine "
                             f"(set NUMBA_NUM_THREADS to allow more), got {threads}")
    return resolve_threads(threads)
