"""The package's layers import one way, and no module imports itself back through others.

Layers, from the bottom: ``errors`` and ``units`` (leaves); ``kernels`` (pure numerics); ``model``
(typed scenarios, which may read the kernels' numba-free constants); ``estimate`` (fitting processes
to histories, pooling, proper scores: on model; statsmodels and scoringrules loaded lazily); ``engine`` (builds on model
and kernels) and ``io`` (builds on model), which never import each other; ``report`` (tables, on io
and model); ``api`` (on engine and io); ``backtest`` (on api and estimate); ``goal`` (on api and model); ``distributed`` (the Dask client and tasks, on engine); ``explore`` (sweeps,
sensitivity, discovery: many runs, on api); ``cli`` (on api, report and what they return). Function-level
imports count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "targetsim"

ALLOWED = {
    "errors": set(),
    "units": set(),
    "kernels": {"errors"},
    "model": {"errors", "kernels"},
    "estimate": {"errors", "units", "model"},
    "io": {"errors", "units", "model", "estimate"},
    "engine": {"errors", "units", "kernels", "model"},
    "report": {"errors", "units", "model", "io", "estimate"},
    "distributed": {"errors", "units", "kernels", "model", "engine"},  # Dask client, blocks of paths as tasks
    "api": {"__init__", "errors", "units", "kernels", "model", "estimate", "io", "engine", "distributed"},
    "backtest": {"errors", "units", "model", "estimate", "io", "engine", "api"},
    "goal": {"errors", "units", "model", "io", "api"},  # re-runs a scenario through the API with one parameter moved
    # sweeps, sensitivity and scenario discovery: many runs through the API
    "explore": {"__init__", "errors", "units", "model", "estimate", "io", "engine", "api", "distributed"},
    "cli": {"errors", "units", "model", "estimate", "io", "engine", "api", "report", "backtest", "goal",
            "distributed", "explore"},
    "__init__": {"errors"},
}


def _modules() -> dict[str, Path]:
    return {".".join(("targetsim", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"):
            path for path in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("targetsim"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("targetsim"))
    return found


def test_every_module_is_in_a_known_layer():
    assert {_layer(m) for m in _modules()} <= set(ALLOWED)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_point_down_the_layers(module):
    layer = _layer(module)
    for target in _imports(_modules()[module], top_level_only=False):
        other = _layer(target)
        assert other == layer or other in ALLOWED[layer], f"{module} imports {target}: {layer} → {other}"


def test_no_import_cycle_between_modules():
    modules = _modules()
    graph = defaultdict(set)
    for module, path in modules.items():
        for target in _imports(path, top_level_only=False):
            # 'from targetsim.kernels import x' names the package; count the module it names if any
            graph[module].add(target if target in modules else target.rsplit(".", 1)[0])
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, "import cycle: " + " → ".join(trail[trail.index(node):] + [node])
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt in modules and nxt != node:
                visit(nxt, trail + [node])
        state[node] = 2

    for module in sorted(modules):
        visit(module, [])


def test_the_engine_and_io_do_not_import_each_other():
    for module, path in _modules().items():
        layers = {_layer(t) for t in _imports(path, top_level_only=False)}
        if _layer(module) == "engine":
            assert "io" not in layers, module
        if _layer(module) == "io":
            assert "engine" not in layers, module


def test_kernel_functions_take_at_most_ten_arguments():
    import inspect

    from targetsim.kernels import paths

    counts = {name: len(inspect.signature(getattr(fn, "py_func", fn)).parameters)
              for name, fn in vars(paths).items()
              if callable(fn) and getattr(fn, "__module__", None) == paths.__name__ and hasattr(fn, "py_func")}
    assert counts["simulate_slot"] <= 10 and counts["_advance_group"] <= 10 and counts["_draw_group"] <= 10
    assert max(counts.values()) <= 10, counts


def test_working_arrays_report_their_own_size():
    from targetsim.engine.resources import estimate
    from targetsim.kernels.layout import work_arrays, work_bytes

    shape = (7, 5, 4, 2, 1)
    work = work_arrays(*shape)
    allocated = sum(array.nbytes for bundle in work for array in bundle)
    assert allocated == work_bytes(*shape)
    est = estimate(n_indicators=7, n_steps=4, n_targets=4, n_bins=4096, paths=1000, threads=1, n_projects=2,
                   n_jumps=1)
    assert dict(est.parts)["per-slot path groups"] == work_bytes(*shape)
