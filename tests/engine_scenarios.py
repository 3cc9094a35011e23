"""Small scenarios that draw every per-path input the kept paths record (growth, project completions,
jumps, an uncertain count mean, a per-path delivery), with and without observations: shared by the
tests of distributed runs, runs to a precision and kept paths."""

from __future__ import annotations

from tests.conftest import lognormal, make_scenario, scenario_dict

GROWTH_MEAN, GROWTH_SD = 0.08, 0.05


#: An observation of trade in 2025 far in the tail of its law (about 5.5 s.d.): most paths' weights relative
#: to the reference 0 would round away, so the run repeats itself relative to its likeliest path.
EXTREME_OBSERVATION = 200.0


def drawn_inputs_dict(*, observed: bool | float = False, seed: int = 11) -> dict:
    indicators = {
        "trade": lognormal(100.0, GROWTH_MEAN, GROWTH_SD, 0.10),
        "compute": {"start": {"value": 10.0, "assumption": "test value"},
                    "process": {"kind": "buildout", "organic": {"growth": {"mean": 0.10, "sd": 0.03},
                                                                "volatility": 0.05},
                                "projects": [{"name": "centre", "size": 5.0, "probability": 0.6,
                                              "earliest": 2025, "latest": 2027}]}},
        "firms": {"start": {"value": 20, "assumption": "test value"},
                  "process": {"kind": "count",
                              "additions": {"distribution": "poisson", "mean": {"mean": 3.0, "sd": 1.0}}}},
        "platforms": {"start": {"value": 4, "assumption": "test value"},
                      "process": {"kind": "scheduled", "schedule": {2025: 3, 2026: 3, 2027: 3},
                                  "delivery": {"mean": 0.8, "sd": 0.1}}},
    }
    targets = [
        {"id": "trade_level", "indicator": "trade", "kind": "level", "threshold": 125.0, "by": 2027},
        {"id": "trade_cagr", "indicator": "trade", "kind": "cagr", "threshold": 0.07, "by": 2027},
        {"id": "compute_level", "indicator": "compute", "kind": "level", "threshold": 17.0, "by": 2027},
        {"id": "firms_stock", "indicator": "firms", "kind": "count_stock", "threshold": 29, "by": 2027},
        {"id": "platforms_stock", "indicator": "platforms", "kind": "count_stock", "threshold": 11, "by": 2027},
    ]
    extra = {"jumps": [{"name": "shock", "probability": 0.2, "effects": {"trade": -0.1}}]}
    if observed:
        extra["observations"] = {"trade": {2025: 109.0 if observed is True else float(observed)}}
    return scenario_dict(indicators, targets, seed=seed, paths=20_000, **extra)


def drawn_inputs(*, observed: bool | float = False, seed: int = 11):
    return make_scenario(drawn_inputs_dict(observed=observed, seed=seed))


def assert_identical(a, b) -> None:
    """Every data variable and coordinate byte for byte (NaNs in the same places); attributes but the
    creation time."""
    import numpy as np

    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in [*a.data_vars, *a.coords]:
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if x.dtype.kind == "f":
            assert x.tobytes() == y.tobytes(), name
        else:
            assert np.array_equal(x, y), name
    skip = {"created"}
    assert {k: v for k, v in a.attrs.items() if k not in skip} == {k: v for k, v in b.attrs.items() if k not in skip}
