"""Which declared uncertain inputs drive each target's probability, and the joint one.

``sensitivity(scenario)`` (``targetsim sensitivity SCENARIO``) varies the scenario's uncertain inputs
over stated ranges and reports, for every target's attainment probability and the joint probability:

- **Sobol indices** (variance-based, :mod:`SALib`): the first-order index ``S1`` (the share of the
  probability's variance over the ranges that the input explains alone) and the total index ``ST``
  (with every interaction it takes part in), each with its bootstrap confidence interval. The runs
  follow Saltelli's scheme (``SALib.sample.sobol.sample``, ``N·(D+2)`` runs for ``D`` inputs, no second-order
  indices) and are analysed by ``SALib.analyze.sobol.analyze``: no index is computed here by hand.
- **A tornado table**: each input at the low and at the high end of its range, every other at its
  nominal value (``2·D`` runs and the nominal one): the probability at both ends and the swing
  ``|P(high) − P(low)|``, sorted by swing.

Every run uses the same seed and paths (common random numbers), so the probability is a deterministic
function of the inputs and the indices measure the inputs' effect, not Monte Carlo noise between runs.

**The inputs** (:func:`default_inputs`), enumerated from the loaded scenario: for each simulated
indicator, its growth's mean and s.d. (a lognormal's or a buildout's ``growth``, an ``ar1_growth``'s
``long_run_growth``, a share's ``drift``, a count's mean additions, a scheduled count's delivery and
carry-over probabilities), its volatility, the ends of an uncertain start, its projects' completion
probabilities; and every declared correlation. Each is varied over a documented range
(:data:`RANGE_RULES`), recorded with the result. ``inputs=`` chooses keys (with ``KEY=LO..HI`` for a range
of one's own). SALib is an optional extra: ``pip install 'targetsim[sensitivity]'``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from targetsim.errors import TargetsimError
from targetsim.explore.variants import ScenarioVariants, numeric_keys, resolve_key, run_provenance
from targetsim.model.parse import GROWTH_SD_MARGIN

if TYPE_CHECKING:
    import xarray as xr

    from targetsim.model.scenario import Scenario

SENSITIVITY_EXTRA_HINT = "pip install 'targetsim[sensitivity]'"
#: Paths of each run and Sobol base samples ``N`` (a power of 2) unless given.
DEFAULT_PATHS = 10_000
DEFAULT_SAMPLES = 64
#: The name of the joint probability on the ``target`` dimension of the result.
JOINT = "joint"

#: How each kind of input's range is set (the result records each input's rule).
RANGE_RULES = {
    "growth_mean": "the declared mean ± 2 × its declared s.d. (no s.d. declared: ± 0.02, two points a year; "
                   "a logit drift: ± 0.1)",
    "growth_sd": "50 % to 150 % of the declared s.d. (a growth rate's top end lower where the mean's low end "
                 "− 8·sd would reach −1, which the scenario refuses)",
    "volatility": "50 % to 150 % of the declared volatility (a volatility of 0 is not varied)",
    "count_mean": "the declared mean ± 2 × its declared s.d. (none declared: 50 % to 150 % of it)",
    "probability": "± 2 × its declared s.d. (none declared: ± 0.1), within [0, 1] and the Beta law's limits",
    "project": "the declared completion probability ± 0.25, within [0, 1]",
    "start_range": "each end moved by up to a quarter of the range's width (on the log scale for a "
                   "log-normal law, on the logit for a share)",
    "start_normal": "the mean ± 1 s.d.; the s.d. 50 % to 150 %",
    "correlation": "the declared rho ± 0.2, within [-0.99, 0.99]",  # narrowed per block: see default_inputs
    "given": "the range given with --inputs KEY=LO..HI",
}


def require_salib() -> Any:
    """``SALib``'s Sobol sampler and analyser, or an error naming the extra that brings them."""
    try:
        from SALib.analyze import sobol as analyze
        from SALib.sample import sobol as sample
    except ImportError as exc:
        raise TargetsimError(f"targetsim sensitivity computes Sobol indices with SALib, which is not installed: "
                             f"{SENSITIVITY_EXTRA_HINT}") from exc
    return sample, analyze


@dataclass(frozen=True)
class Input:
    """One uncertain input: a number of the scenario (``key``, see :mod:`targetsim.explore.variants`),
    its value in the scenario and the range it is varied over, and why that range (``rule``)."""

    key: str
    nominal: float
    low: float
    high: float
    rule: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise TargetsimError(f"input {self.key}: its range {self.low:g}..{self.high:g} needs low < high")


# ------------------------------------------------------------------------------------ the inputs

def _at(data: Any, address: tuple) -> Any:
    node = data
    for part in address:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _mean_sd_inputs(prefix: str, node: Any, *, kind: str, drift: bool = False) -> list[Input]:
    """A growth (or drift): a number, ``{mean, sd}`` or ``{log_mean, log_sd}``: its mean and its s.d."""
    out = []
    fallback = 0.1 if drift else 0.02
    if _num(node) is not None:
        v = _num(node)
        return [Input(prefix, v, v - fallback, v + fallback, RANGE_RULES[kind])]
    if not isinstance(node, Mapping):
        return out
    for mean_key, sd_key in (("mean", "sd"), ("log_mean", "log_sd")):
        mean, sd = _num(node.get(mean_key)), _num(node.get(sd_key))
        if mean is None:
            continue
        low, high = (mean - 2 * sd, mean + 2 * sd) if sd else (mean - fallback, mean + fallback)
        sd_high = 1.5 * sd if sd else 0.0
        if mean_key == "mean" and not drift and sd:
            # a growth rate's law must keep mean − 8·sd above −1 (model.parse) over the whole box of
            # (mean, sd): the s.d.'s top end gives way first (5 % margin), the mean's low end only where the
            # declared s.d. itself would not fit
            cap = 0.95 * (1.0 + low) / GROWTH_SD_MARGIN
            if cap >= sd:
                sd_high = min(sd_high, cap)
            else:
                sd_high = sd
                low = min(max(low, -1.0 + 1.05 * GROWTH_SD_MARGIN * sd), mean - 1e-9)
        out.append(Input(f"{prefix}.{mean_key}", mean, low, high, RANGE_RULES[kind]))
        if sd:
            out.append(Input(f"{prefix}.{sd_key}", sd, 0.5 * sd, sd_high, RANGE_RULES["growth_sd"]))
    return out


def _volatility_inputs(prefix: str, node: Any) -> list[Input]:
    if isinstance(node, Mapping):  # {estimate, df}
        prefix, node = f"{prefix}.estimate", node.get("estimate")
    v = _num(node)
    if not v:
        return []
    return [Input(prefix, v, 0.5 * v, 1.5 * v, RANGE_RULES["volatility"])]


def _probability_inputs(prefix: str, node: Any) -> list[Input]:
    """A scheduled count's delivery or carry-over: a number, or ``{mean, sd}`` (a Beta law: the mean kept
    where ``sd² < mean·(1 − mean)`` holds with a margin)."""
    p = _num(node)
    if p is not None:
        low, high = max(0.0, p - 0.1), min(1.0, p + 0.1)
        return [Input(prefix, p, low, high, RANGE_RULES["probability"])] if low < high else []
    if not isinstance(node, Mapping) or _num(node.get("mean")) is None:
        return []
    mean, sd = _num(node["mean"]), _num(node.get("sd")) or 0.0
    if not sd:
        low, high = max(0.0, mean - 0.1), min(1.0, mean + 0.1)
    else:
        # the Beta law needs mean·(1 − mean) > sd²: keep the mean where that holds with 5 % to spare
        edge = (1.0 - math.sqrt(max(0.0, 1.0 - 4.0 * sd * sd / 0.95))) / 2.0
        low, high = max(edge, mean - 2 * sd), min(1.0 - edge, mean + 2 * sd)
    return [Input(f"{prefix}.mean", mean, low, high, RANGE_RULES["probability"])] if low < high else []


def _count_mean_inputs(prefix: str, node: Any) -> list[Input]:
    v = _num(node)
    if v is not None:
        return [Input(prefix, v, 0.5 * v, 1.5 * v, RANGE_RULES["count_mean"])] if v > 0 else []
    if not isinstance(node, Mapping) or _num(node.get("mean")) is None:
        return []
    mean, sd = _num(node["mean"]), _num(node.get("sd")) or 0.0
    low, high = (max(0.0, mean - 2 * sd), mean + 2 * sd) if sd else (0.5 * mean, 1.5 * mean)
    out = [Input(f"{prefix}.mean", mean, low, high, RANGE_RULES["count_mean"])] if low < high else []
    if sd:
        out.append(Input(f"{prefix}.sd", sd, 0.5 * sd, 1.5 * sd, RANGE_RULES["growth_sd"]))
    return out


def _start_inputs(prefix: str, node: Any, ind: Any) -> list[Input]:
    """The ends of an uncertain start's range, or a normal start's mean and s.d. (whole-number starts are
    left out: their ends are whole numbers, which a continuous design cannot keep)."""
    from targetsim.model.processes import PROCESS_SPECS

    spec = PROCESS_SPECS[ind.process.kind]
    if not isinstance(node, Mapping) or spec.whole_numbers:
        return []
    if _num(node.get("mean")) is not None and _num(node.get("sd")):
        mean, sd = _num(node["mean"]), _num(node["sd"])
        return [Input(f"{prefix}.mean", mean, mean - sd, mean + sd, RANGE_RULES["start_normal"]),
                Input(f"{prefix}.sd", sd, 0.5 * sd, 1.5 * sd, RANGE_RULES["start_normal"])]
    low, high = _num(node.get("low")), _num(node.get("high"))
    if low is None or high is None or not low < high:
        return []
    bounds = spec.bounds(ind.process)
    law = node.get("law", "lognormal")
    if bounds is not None and bounds[0] == 0.0 and math.isfinite(bounds[1]) and law == "lognormal":
        scale = bounds[1]  # a share of its ceiling: quarter-widths on the logit
        to = lambda x: math.log(x / scale) - math.log1p(-x / scale)  # noqa: E731
        back = lambda y: scale / (1.0 + math.exp(-y))  # noqa: E731
    elif law == "lognormal" and low > 0:
        to, back = math.log, math.exp
    else:
        to = back = lambda x: x  # noqa: E731
    a, b = to(low), to(high)
    step = (b - a) / 4.0
    return [Input(f"{prefix}.low", low, back(a - step), back(a + step), RANGE_RULES["start_range"]),
            Input(f"{prefix}.high", high, back(b - step), back(b + step), RANGE_RULES["start_range"])]


def default_inputs(scenario: str | Path) -> list[Input]:
    """Every declared uncertain input of the scenario file and its range (see :data:`RANGE_RULES`),
    enumerated from the loaded scenario's simulated indicators and correlations."""
    from targetsim.io.models import load_document

    variants = ScenarioVariants(Path(scenario), ())
    loaded: Scenario = variants.base
    data = load_document(Path(scenario)).merged.data
    valid = numeric_keys(data)
    inputs: list[Input] = []
    for ind in loaded.indicators:
        if ind.is_derived:
            continue
        doc = _at(data, ("indicators", ind.id))
        if not isinstance(doc, Mapping):
            continue
        at = f"indicators.{ind.id}"
        process = doc.get("process") if isinstance(doc.get("process"), Mapping) else {}
        kind = ind.process.kind
        if kind in ("lognormal", "ar1_growth"):
            name = "growth" if kind == "lognormal" else "long_run_growth"
            inputs += _mean_sd_inputs(f"{at}.process.{name}", process.get(name), kind="growth_mean")
            inputs += _volatility_inputs(f"{at}.process.volatility", process.get("volatility"))
        elif kind in ("logit_share", "logistic"):
            inputs += _mean_sd_inputs(f"{at}.process.drift", process.get("drift"), kind="growth_mean", drift=True)
            inputs += _volatility_inputs(f"{at}.process.volatility", process.get("volatility"))
        elif kind == "buildout":
            organic = process.get("organic") if isinstance(process.get("organic"), Mapping) else {}
            inputs += _mean_sd_inputs(f"{at}.process.organic.growth", organic.get("growth"), kind="growth_mean")
            inputs += _volatility_inputs(f"{at}.process.organic.volatility", organic.get("volatility"))
            for k, project in enumerate(process.get("projects") or []):
                p = _num(project.get("probability")) if isinstance(project, Mapping) else None
                if p is None:
                    continue
                name = project.get("name") if isinstance(project.get("name"), str) else str(k)
                low, high = max(0.0, p - 0.25), min(1.0, p + 0.25)
                if low < high:
                    inputs.append(Input(f"{at}.process.projects.{name}.probability", p, low, high,
                                        RANGE_RULES["project"]))
        elif kind == "count":
            additions = process.get("additions") if isinstance(process.get("additions"), Mapping) else {}
            inputs += _count_mean_inputs(f"{at}.process.additions.mean", additions.get("mean"))
        elif kind == "scheduled":
            for name in ("delivery", "carry_over"):
                inputs += _probability_inputs(f"{at}.process.{name}", process.get(name))
        if ind.start is not None and ind.start.uncertain:
            inputs += _start_inputs(f"{at}.start", doc.get("start"), ind)
    by_pair = {frozenset(key.split(".")[1:]): key for key in valid if key.startswith("correlations.")}
    varied = []
    for corr in loaded.correlations:
        key = by_pair.get(frozenset((corr.a, corr.b)))
        if key is not None:
            varied.append((corr, max(-0.99, corr.rho - 0.2), min(0.99, corr.rho + 0.2)))
    # the indicators' correlation graph falls into independent blocks: each block's ranges are narrowed alone
    block = {name: name for c in loaded.correlations for name in (c.a, c.b)}

    def root(name: str) -> str:
        while block[name] != name:
            name = block[name]
        return name

    for c in loaded.correlations:
        block[root(c.a)] = root(c.b)
    scales = {}
    for top in {root(c.a) for c, _, _ in varied}:
        scales[top] = _positive_semidefinite_scale([c for c in loaded.correlations if root(c.a) == top],
                                                   [v for v in varied if root(v[0].a) == top])
    for corr, low, high in varied:
        scale = scales[root(corr.a)]
        low, high = corr.rho - scale * (corr.rho - low), corr.rho + scale * (high - corr.rho)
        rule = RANGE_RULES["correlation"] + ("" if scale == 1.0 else f", narrowed to {scale:.0%} of it so that every "
                                             "combination keeps the matrix positive semi-definite")
        if low < high:
            inputs.append(Input(by_pair[frozenset((corr.a, corr.b))], corr.rho, low, high, rule))
    # only keys the document sets as numbers (a process spelt another way is left out rather than guessed)
    return [i for i in inputs if i.key in valid]


#: Correlations varied together whose every combination of ends is checked (2^k matrices); above it, a
#: seeded sample of that many combinations is.
MAX_CORNERS = 2**12


def _positive_semidefinite_scale(correlations: list[Any], varied: list[tuple[Any, float, float]]) -> float:
    """The largest share (1: all) of the ranges of ``varied`` (``(correlation, low, high)``) that keeps the
    matrix of ``correlations`` (one block of the declared ones) positive semi-definite, as the scenario
    requires, at every combination of the ranges' ends, and so everywhere inside them (the smallest
    eigenvalue is a concave function of the matrix: its minimum over the box of ranges lies at a
    corner). Found by bisection."""
    if not varied:
        return 1.0
    ids = sorted({c.a for c in correlations} | {c.b for c in correlations})
    index = {name: i for i, name in enumerate(ids)}
    base = np.eye(len(ids))
    for c in correlations:
        base[index[c.a], index[c.b]] = base[index[c.b], index[c.a]] = c.rho
    k = len(varied)
    if 2**k <= MAX_CORNERS:
        corners = np.array([[(m >> j) & 1 for j in range(k)] for m in range(2**k)], dtype=bool)
    else:
        corners = np.random.default_rng(0).integers(0, 2, (MAX_CORNERS, k)).astype(bool)
    where = [(index[c.a], index[c.b]) for c, _, _ in varied]
    rho = np.array([c.rho for c, _, _ in varied])
    down = np.array([c.rho - low for c, low, _ in varied])
    up = np.array([high - c.rho for c, _, high in varied])

    def smallest(scale: float) -> float:
        values = np.where(corners, rho + scale * up, rho - scale * down)
        matrices = np.repeat(base[None], len(values), axis=0)
        for j, (a, b) in enumerate(where):
            matrices[:, a, b] = matrices[:, b, a] = values[:, j]
        return float(np.linalg.eigvalsh(matrices).min())

    margin = 1e-6  # the scenario refuses below -1e-10
    if smallest(1.0) >= margin:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if smallest(mid) >= margin else (low, mid)
    return low


def parse_inputs(scenario: str | Path, given: Sequence[str | tuple[str, float, float]]) -> list[Input]:
    """``--inputs``: ``KEY`` (its default range, when it is one of :func:`default_inputs`) or
    ``KEY=LO..HI``; a tuple ``(key, low, high)`` from Python."""
    from targetsim.explore.sweep import parse_spec
    from targetsim.io.models import load_document

    defaults = {i.key: i for i in default_inputs(scenario)}
    data = load_document(Path(scenario)).merged.data
    out = []
    for item in given:
        if isinstance(item, tuple):
            key, low, high = item[0], float(item[1]), float(item[2])
        else:
            key, sep, spec = item.partition("=")
            key = key.strip()
            if not sep:
                if key in defaults:
                    out.append(defaults[key])
                    continue
                resolve_key(data, key, scenario)  # an unknown key: the error names the nearest ones
                raise TargetsimError(f"--inputs {key}: not one of the scenario's declared uncertain inputs, so it has "
                                     f"no default range: give one, {key}=LO..HI")
            vary = parse_spec(key, spec)
            if not vary.is_range:
                raise TargetsimError(f"--inputs {item}: give the input's range as {key}=LO..HI")
            low, high = vary.low, vary.high
        address = resolve_key(data, key, scenario)
        out.append(Input(key, float(_walk(data, address)), low, high, RANGE_RULES["given"]))
    keys = [i.key for i in out]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice:
        raise TargetsimError(f"--inputs {twice} is given twice")
    return out


def _walk(data: Any, address: tuple) -> Any:
    node = data
    for part in address:
        node = node[part]
    return node


# ----------------------------------------------------------------------------- Sobol glue

def sobol_indices(inputs: Sequence[Input], evaluate: Callable[[np.ndarray], np.ndarray], *, samples: int,
                  seed: int, conf_level: float = 0.95, num_resamples: int = 100) -> dict[str, np.ndarray]:
    """Sobol first-order and total indices of each output of ``evaluate`` with SALib: Saltelli's sample of
    the inputs' ranges (``samples`` base points, scrambled Sobol' sequence seeded with ``seed``),
    ``evaluate(X)`` → ``Y`` (``(run, output)``), then ``SALib.analyze.sobol.analyze`` per output.

    Returns ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (``(input, output)``; the ``_conf`` are the half-widths
    of the ``conf_level`` bootstrap intervals; NaN for an output that does not vary), and ``X``, ``Y``."""
    sample, analyze = require_salib()
    if samples < 2:
        raise TargetsimError(f"--samples must be at least 2, got {samples}")
    problem = {"num_vars": len(inputs), "names": [i.key for i in inputs],
               "bounds": [[i.low, i.high] for i in inputs]}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SALib's note when N is not a power of 2
        x = sample.sample(problem, samples, calc_second_order=False, seed=seed)
    y = np.asarray(evaluate(x), dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    out = {name: np.full((len(inputs), y.shape[1]), np.nan) for name in ("S1", "S1_conf", "ST", "ST_conf")}
    for j in range(y.shape[1]):
        if not np.ptp(y[:, j]) > 0:
            continue  # a constant output has no variance to share out
        with np.errstate(all="ignore"):
            result = analyze.analyze(problem, y[:, j], calc_second_order=False, num_resamples=num_resamples,
                                     conf_level=conf_level, seed=seed, print_to_console=False)
        for name in out:
            out[name][:, j] = result[name]
    out["X"], out["Y"] = x, y
    return out


# ---------------------------------------------------------------------------- the analysis

def _probabilities(results: Sequence[Any]) -> np.ndarray:
    """``(run, target + joint)``: each run's attainment probabilities and its joint probability."""
    return np.stack([np.append(r.arrays["attainment_probability"], r.arrays["joint_attainment_probability"])
                     for r in results])


def sensitivity(scenario: str | Path, *, inputs: Sequence[str | tuple[str, float, float]] | None = None,
                samples: int = DEFAULT_SAMPLES, paths: int | None = None, seed: int | None = None,
                threads: int | None = None, scheduler: str | None = None, workers: int | None = None,
                batch: int | None = None, conf_level: float = 0.95,
                progress: Callable[[int, int], None] | None = None) -> "xr.Dataset":
    """Sobol indices (SALib) and a tornado table of the scenario's uncertain inputs for each target's
    attainment probability and the joint one (see the module's docstring). ``inputs``: keys (with
    ``KEY=LO..HI``) instead of :func:`default_inputs`. ``progress(done, total)`` after each run."""
    import xarray as xr

    from targetsim.api import preflight
    from targetsim.explore.sweep import run_variants

    require_salib()  # before any run
    chosen = parse_inputs(scenario, inputs) if inputs else default_inputs(scenario)
    if not chosen:
        raise TargetsimError(f"{scenario} declares no uncertain input to vary (growth, volatility, uncertain "
                             f"starts, projects, correlations); name some with --inputs KEY=LO..HI")
    variants = ScenarioVariants(Path(scenario), tuple(i.key for i in chosen))
    base = variants.base
    use_seed = base.seed if seed is None else seed
    use_paths = DEFAULT_PATHS if paths is None else paths
    preflight(base, paths=use_paths, seed=use_seed)
    targets = [t.id for t in base.targets]
    if JOINT in targets:
        raise TargetsimError(f"a target is named {JOINT!r}, the name the result gives the joint probability; "
                             "rename the target")
    d = len(chosen)
    nominal = np.array([i.nominal for i in chosen])
    # the tornado's runs: the nominal, then each input at its low and at its high end
    tornado = np.repeat(nominal[None, :], 1 + 2 * d, axis=0)
    for j, item in enumerate(chosen):
        tornado[1 + 2 * j, j], tornado[2 + 2 * j, j] = item.low, item.high
    n_sobol = samples * (d + 2)
    total = n_sobol + len(tornado)
    started = time.perf_counter()
    runs_done = 0
    tornado_p = np.empty(0)

    def counted(done: int, n: int, index: int, result: Any) -> None:
        if progress is not None:
            progress(runs_done + done, total)

    def evaluate(x: np.ndarray) -> np.ndarray:
        nonlocal runs_done, tornado_p
        design = np.concatenate([tornado, x])
        results = run_variants(variants, design, paths=use_paths, seed=use_seed, threads=threads,
                               scheduler=scheduler, workers=workers, batch=batch, progress=counted,
                               variables=("attainment_probability", "joint_attainment_probability"))
        runs_done += len(design)
        probabilities = _probabilities(results)
        tornado_p = probabilities[: len(tornado)]
        return probabilities[len(tornado):]

    indices = sobol_indices(chosen, evaluate, samples=samples, seed=use_seed, conf_level=conf_level)
    low_p, high_p = tornado_p[1::2][:d], tornado_p[2::2][:d]
    names = [*targets, JOINT]
    ds = xr.Dataset(
        {
            "sobol_first_order": (("input", "target"), indices["S1"]),
            "sobol_first_order_conf": (("input", "target"), indices["S1_conf"]),
            "sobol_total": (("input", "target"), indices["ST"]),
            "sobol_total_conf": (("input", "target"), indices["ST_conf"]),
            "nominal_probability": (("target",), tornado_p[0]),
            "tornado_low_probability": (("input", "target"), low_p),
            "tornado_high_probability": (("input", "target"), high_p),
            "tornado_swing": (("input", "target"), np.abs(high_p - low_p)),
            "sample_value": (("run", "input"), indices["X"]),
            "sample_probability": (("run", "target"), indices["Y"]),
        },
        coords={
            "input": [i.key for i in chosen],
            "input_nominal": ("input", nominal),
            "input_low": ("input", np.array([i.low for i in chosen])),
            "input_high": ("input", np.array([i.high for i in chosen])),
            "input_rule": ("input", [i.rule for i in chosen]),
            "target": names,
            "run": np.arange(n_sobol),
        },
    )
    ds.attrs.update({
        **run_provenance(base, scenario, use_seed, use_paths),
        "sobol_samples": samples,
        "sobol_runs": n_sobol,
        "tornado_runs": len(tornado),
        "conf_level": conf_level,
        "method": ("Sobol first-order and total indices: SALib.sample.sobol.sample (Saltelli, scrambled Sobol' "
                   "sequence, calc_second_order=False) and SALib.analyze.sobol.analyze (bootstrap intervals, 100 "
                   "resamples); tornado: each input at its low and high end, the others nominal"),
        "common_random_numbers": (f"every run used {use_paths:,} paths with seed {use_seed}: the same random draws, "
                                  "so the probabilities move with the inputs only"),
        "wall_seconds": time.perf_counter() - started,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return ds


def format_sensitivity(ds: "xr.Dataset", top: int = 5) -> str:
    """The readable summary: for each target and the joint probability, the ``top`` inputs by total
    Sobol index, with both indices, their intervals and the tornado swing."""
    lines = []
    width = min(70, max(len(str(k)) for k in ds["input"].values))
    level = float(ds.attrs.get("conf_level", 0.95))
    for name in ds["target"].values:
        col = ds.sel(target=name)
        p = float(col["nominal_probability"])
        lines.append(f"{name}: P(met) {p:.1%} at the nominal inputs")
        total = col["sobol_total"].values
        if not np.isfinite(total).any():
            lines.append("  the probability does not move over the inputs' ranges")
            lines.append("")
            continue
        order = np.argsort(-np.nan_to_num(total, nan=-1.0))[:top]
        lines.append(f"  {'input':<{width}}  {'S1':>14}  {'ST':>14}  {'swing':>7}")
        for j in order:
            key = str(ds["input"].values[j])
            if len(key) > width:
                key = "…" + key[-(width - 1):]
            s1, s1c = float(col["sobol_first_order"][j]), float(col["sobol_first_order_conf"][j])
            st, stc = float(col["sobol_total"][j]), float(col["sobol_total_conf"][j])
            swing = float(col["tornado_swing"][j])
            lines.append(f"  {key:<{width}}  {s1:6.3f} ±{s1c:6.3f}  {st:6.3f} ±{stc:6.3f}  {swing:6.1%}")
        lines.append("")
    lines.append(f"S1, ST: Sobol first-order and total indices (SALib) ± the half-width of their {level:.0%} "
                 f"bootstrap intervals; swing: |P(high) − P(low)| of the tornado")
    return "\n".join(lines)
