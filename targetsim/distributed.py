"""Dask execution (issue 19): the client a run or a sweep distributes its tasks through.

``dask.distributed`` is an optional extra (``pip install 'targetsim[dask]'``); it is imported only here,
and only when a scheduler address or a worker count is given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from targetsim.errors import TargetsimError

DASK_EXTRA_HINT = "pip install 'targetsim[dask]'"


def require_distributed() -> Any:
    """The ``distributed`` module, or an error naming the extra that brings it."""
    try:
        import distributed
    except ImportError as exc:
        raise TargetsimError(f"--scheduler and --workers need dask.distributed, which is not installed: "
                             f"{DASK_EXTRA_HINT}") from exc
    return distributed


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: connected to the running scheduler at ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``), or to a local cluster of ``workers`` processes started for the block and
    closed after it. Exactly one of the two must be given."""
    if (scheduler is None) == (workers is None):
        raise TargetsimError("give either a scheduler address (--scheduler) or a number of local worker "
                             "processes (--workers), not both")
    if workers is not None and workers < 1:
        raise TargetsimError(f"--workers must be at least 1, got {workers}")
    distributed = require_distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except OSError as exc:
            raise TargetsimError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}. Start one with "
                                 f"`dask scheduler` (and workers with `dask worker {scheduler}`), or use "
                                 f"--workers N for a local cluster") from exc
        with client:
            yield client
        return
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client
