"""The numba kernel against its plain-Python twin (:mod:`tests.kernel_twin`), path by path: on random
scenarios of every process and target kind (the audit's generator), the kernel's values, logs and
likelihoods of each path equal the twin's (to the last few ulps: the kernel's exp and log are its own),
and its integer statistics equal the twin's rules counted path by path, exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from targetsim.engine.plan import build_plan
from targetsim.engine.simulate import simulate
from targetsim.kernels.geometry import LANES
from targetsim.kernels.rng import key_from_seed
from targetsim.kernels.weights import WEIGHT_ONE
from tests.conftest import make_scenario
from tests.kernel_twin import kernel_group, twin_paths, twin_rules
from tests.test_audit_reference import audit_scenarios

PATHS = 300  # two groups: a full one and a partial one


def _close(name, kernel, twin, rtol):
    both_inf = np.isinf(kernel) & np.isinf(twin) & (np.sign(kernel) == np.sign(twin))
    same = both_inf | np.isclose(kernel, twin, rtol=rtol, atol=1e-300, equal_nan=True)
    assert same.all(), (name, np.argwhere(~same)[:3], kernel[~same][:3], twin[~same][:3])


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=audit_scenarios())
def test_the_kernel_and_its_twin_agree_path_by_path(data):
    scenario = make_scenario(data)
    plan = build_plan(scenario)
    key = key_from_seed(data["seed"])
    rtol = 1e-7 if scenario.shocks.distribution == "two_piece" else 1e-10
    groups = []
    for first in range(0, PATHS, LANES):
        n = min(LANES, PATHS - first)
        draws, kernel = kernel_group(plan, key, first, n)
        twin = twin_paths(plan, draws, n, skew=scenario.shocks.skew)
        _close("val", kernel.val[:, :, :n], twin.val, rtol)
        _close("lg", kernel.lg[:, :, :n], twin.lg, rtol)
        _close("log_w", kernel.log_w[:n], twin.log_w, 1e-9)
        groups.append(twin)

    # the statistics: the twin's rules, counted path by path with the kernel's weights' rounding
    stats = simulate(plan, paths=PATHS, seed=data["seed"], threads=1)
    log_w = np.concatenate([g.log_w for g in groups])
    if plan.weighted:
        w = np.floor(np.exp(np.minimum(log_w - stats.log_weight_reference, 0.0)) * WEIGHT_ONE + 0.5).astype(np.int64)
    else:
        w = np.ones(PATHS, dtype=np.int64)
    rules = np.concatenate([twin_rules(plan, g) for g in groups], axis=2)  # (target, step, path)
    steps = plan.arrays["t_step"]
    met = rules[np.arange(plan.n_targets), steps]  # (target, path)
    assert stats.weight_total == w.sum()
    np.testing.assert_array_equal(stats.attained, (met * w).sum(axis=1))
    by_year = (rules * w).sum(axis=2)
    kinds = plan.arrays["t_kind"]
    by_year[:, 0] = np.where(np.isin(kinds, (0, 2)), by_year[:, 0], 0)  # step 0 counts for level-type rules only
    np.testing.assert_array_equal(stats.attained_by_year, by_year)
    assert stats.joint == (met.all(axis=0) * w).sum()
    np.testing.assert_array_equal(stats.n_met, np.bincount(met.sum(axis=0), weights=w,
                                                           minlength=plan.n_targets + 1).astype(np.int64))
    missed = ~met
    for a in range(plan.n_targets):
        for b in range(a + 1, plan.n_targets):
            assert stats.pair_fail[a, b] == ((missed[a] & missed[b]) * w).sum()
