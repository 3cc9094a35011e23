"""Running the kernel's slots on threads, and the notice of a first compilation."""

from __future__ import annotations

import threading

import pytest
from numba import njit

from targetsim.engine.simulate import on_first_compile, slot_runner


@pytest.mark.parametrize("n_slots", [1, 2, 3])
def test_every_slot_runs_once_per_batch(n_slots):
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    with slot_runner(n_slots) as run_slots:
        for batch in range(3):
            def work(s, batch=batch):
                with lock:
                    seen.append((batch, s))
            run_slots(work)
            # a batch is complete when run_slots returns
            assert sorted(s for b, s in seen if b == batch) == list(range(n_slots))
    assert len(seen) == 3 * n_slots


def test_an_error_in_a_slot_is_raised():
    def work(s):
        if s == 1:
            raise MemoryError("slot 1")

    with slot_runner(2) as run_slots, pytest.raises(MemoryError, match="slot 1"):
        run_slots(work)


def test_first_compile_calls_back_once():
    calls = []
    with on_first_compile(lambda: calls.append(1)):
        njit(cache=False)(lambda x: x * 2)(3)
        njit(cache=False)(lambda x: x * 3)(3)
    assert calls == [1]


def test_no_call_back_without_compilation():
    compiled = njit(cache=False)(lambda x: x - 1)
    compiled(1)
    calls = []
    with on_first_compile(lambda: calls.append(1)):
        assert compiled(5) == 4
    assert calls == []


def test_concurrent_runs_from_several_threads_match_a_run_alone():
    # each run has its own slot threads (numba's parallel region, whose default layer is not
    # thread-safe, is not used), so callers such as a threaded scheduler may run scenarios at once
    import numpy as np

    import targetsim
    from tests.conftest import ROOT

    scenario = targetsim.load_scenario(ROOT / "scenarios" / "hangzhou_digital_trade.yaml")
    alone = targetsim.run(scenario, paths=5000, threads=2)
    results = [None] * 3

    def run(k):
        results[k] = targetsim.run(scenario, paths=5000, threads=2)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ds in results:
        for name in ("attainment_probability", "attainment_by_year", "indicator_quantiles", "indicator_mean"):
            np.testing.assert_array_equal(ds[name].values, alone[name].values)
