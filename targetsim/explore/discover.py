"""Scenario discovery on a sweep, or on one run's kept paths: the boxes of input ranges in which a target is
mostly missed.

On a run with kept paths (``targetsim run --keep-paths N``; no ``variant`` dimension) the cases are the kept
paths, their inputs the draws the run kept of each (growth draws, project completions, jumps, ...), and a
path is of interest when it misses the target ("the target fails mostly when the computing project slips and
growth is below 12 %"). A run whose paths are weighted by observations is refused (PRIM counts cases, not
weights).

``discover(sweep_dataset, target)`` (``targetsim discover SWEEP.nc --target ID|joint``) takes the variants
of a sweep (:mod:`targetsim.explore.sweep`) as cases, their varied keys as the inputs, and calls a case
*of interest* when the target's attainment probability (or the joint one) is below ``threshold``. PRIM
(the Patient Rule Induction Method, Friedman and Fisher 1999, as the EMA Workbench implements it for
scenario discovery: ``ema_workbench.analysis.prim.Prim``) peels the input space down to a box where the
cases of interest are dense, then pastes back what it peeled too eagerly. Along the peeling trajectory
each box has a **coverage** (the share of all cases of interest that lie in the box) and a **density**
(the share of the box's cases that are of interest); a smaller box is denser but covers less.

The box reported is, on each trajectory, the one with the highest coverage among those whose density
reaches ``density`` (none does: the densest); after it, PRIM looks for the next box in the cases left
outside, up to ``boxes`` boxes, and stops when a box no longer reaches the density. Each box gives its
input ranges (the inputs it restricts, with the quasi-p-value of each restriction: a one-sided binomial
test of whether it matters, Bryant and Lempert 2010), its coverage, density and mass (its share of the
cases), and its peeling trajectory.

The EMA Workbench is an optional extra: ``pip install 'targetsim[sensitivity]'``.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from targetsim.errors import TargetsimError
from targetsim.explore.sensitivity import JOINT, SENSITIVITY_EXTRA_HINT
from targetsim.explore.sweep import sweep_keys

if TYPE_CHECKING:
    import xarray as xr

#: The density a box must reach, and the most boxes looked for, unless given.
DEFAULT_DENSITY = 0.8
DEFAULT_BOXES = 3


def require_prim() -> Any:
    """``ema_workbench.analysis.prim``, or an error naming the extra that brings it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the Workbench's notes on optional parts (ipyparallel, altair)
            from ema_workbench.analysis import prim
    except ImportError as exc:
        raise TargetsimError(f"targetsim discover finds boxes with PRIM from the EMA Workbench, which is not "
                             f"installed: {SENSITIVITY_EXTRA_HINT}") from exc
    logging.getLogger("EMA").setLevel(logging.WARNING)  # its per-box INFO lines would drown the result
    return prim


def cases_of_interest(ds: "xr.Dataset", target: str, threshold: float) -> tuple[np.ndarray, str]:
    """Whether each variant's probability of ``target`` (``joint``: all targets together) is below
    ``threshold``, and the probability's variable name."""
    if "variant" not in ds.dims:
        raise TargetsimError("not a sweep result (no 'variant' dimension): run `targetsim sweep` first")
    if target == JOINT:
        name = "joint_attainment_probability"
        p = np.asarray(ds[name].values, dtype=np.float64)
    else:
        targets = [str(t) for t in ds["target"].values]
        if target not in targets:
            import difflib

            hint = difflib.get_close_matches(target, targets, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f" (it has: {', '.join(targets)}, or joint)"
            raise TargetsimError(f"--target {target}: no such target in the sweep{extra}")
        name = "attainment_probability"
        p = np.asarray(ds[name].sel(target=target).values, dtype=np.float64)
    if not 0.0 < threshold < 1.0:
        raise TargetsimError(f"--threshold must lie strictly between 0 and 1, got {threshold}")
    return p < threshold, name


#: the kept-path variables that are outcomes or weights, not drawn inputs
KEPT_OUTCOMES = ("kept_target_met", "kept_weight", "kept_final_value")


def kept_path_cases(ds: "xr.Dataset", target: str) -> tuple[Any, np.ndarray, str]:
    """The cases of a run with kept paths (``run --keep-paths N``): one per kept path, its drawn inputs (every
    ``kept_*`` variable but the outcomes: growth draws, project completions, jumps, ...) as columns named
    ``<variable>.<coordinate>``, of interest when the path misses ``target`` (``joint``: any target)."""
    import pandas as pd

    if "kept_target_met" not in ds.variables or "kept_path" not in ds.dims:
        raise TargetsimError("neither a sweep result (no 'variant' dimension) nor a run with kept paths (no "
                             "kept_target_met): run `targetsim sweep`, or `targetsim run ... --keep-paths N`")
    met = ds["kept_target_met"]
    if "scenario" in met.dims:
        met = met.isel(scenario=0)
    targets = [str(t) for t in met["target"].values]
    if target == JOINT:
        missed = ~np.asarray(met.transpose("kept_path", "target").values).astype(bool).all(axis=1)
    elif target in targets:
        missed = ~np.asarray(met.sel(target=target).values).astype(bool)
    else:
        raise TargetsimError(f"--target {target}: no such target among the kept paths (it has: "
                             f"{', '.join(targets)}, or joint)")
    if "kept_weight" in ds.variables and np.ptp(np.asarray(ds["kept_weight"].values, dtype=float)) > 0:
        raise TargetsimError("the run weights its paths by observations: PRIM would count each kept path once, "
                             "whatever its weight, and its boxes would describe the prior, not the run; run "
                             "discovery on a sweep, or on a run without observations")
    columns: dict[str, np.ndarray] = {}
    for name in sorted(ds.data_vars):
        if not name.startswith("kept_") or name in KEPT_OUTCOMES or "kept_path" not in ds[name].dims:
            continue
        var = ds[name].isel(scenario=0) if "scenario" in ds[name].dims else ds[name]
        what = name.removeprefix("kept_")
        others = [d for d in var.dims if d != "kept_path"]
        if not others:
            columns[what] = np.asarray(var.values, dtype=np.float64)
        elif len(others) == 1:
            for label in var[others[0]].values:
                columns[f"{what}.{label}"] = np.asarray(var.sel({others[0]: label}).values, dtype=np.float64)
    x = pd.DataFrame({k: v for k, v in columns.items() if np.all(np.isfinite(v))})
    if x.empty:
        raise TargetsimError("the run kept no drawn input of its paths to find boxes in")
    return x, missed, "kept_target_met"


def discover(ds: "xr.Dataset", target: str, *, threshold: float = 0.5, density: float = DEFAULT_DENSITY,
             boxes: int = DEFAULT_BOXES, peel_alpha: float = 0.05, paste_alpha: float = 0.05,
             mass_min: float = 0.05, source: str = "") -> "xr.Dataset":
    """PRIM boxes where ``target`` (an id, or ``joint``) has a probability below ``threshold`` in a sweep
    dataset (see the module's docstring); the result is a dataset (dims ``box``, ``input``, ``step``)."""
    import pandas as pd
    import xarray as xr

    prim = require_prim()
    if not 0.0 < density <= 1.0:
        raise TargetsimError(f"--density must lie in (0, 1], got {density}")
    if boxes < 1:
        raise TargetsimError(f"--boxes must be at least 1, got {boxes}")
    paths = "variant" not in ds.dims
    if paths:  # path-level discovery on a run's kept paths: a path is of interest when it misses the target
        x, interest, variable = kept_path_cases(ds, target)
        cases = "kept paths"
    else:
        keys = sweep_keys(ds)
        if not keys:
            raise TargetsimError("the sweep varies no key: nothing to find boxes in")
        interest, variable = cases_of_interest(ds, target, threshold)
        x = pd.DataFrame({key: np.asarray(ds[key].values, dtype=np.float64) for key in keys})
        cases = "variants"
    n, n_interest = len(interest), int(interest.sum())
    if n_interest == 0 or n_interest == n:
        what = "none" if n_interest == 0 else "every one"
        event = f"misses {target}" if paths else f"has P({target}) below {threshold:g}"
        raise TargetsimError(f"{what} of the {n} {cases} {event}: there is no contrast to find a box in"
                             + ("" if paths else "; choose another --threshold"))
    varied = [key for key in x.columns if np.ptp(x[key].values) > 0]
    if not varied:
        raise TargetsimError("every varied key takes one value only: nothing to find boxes in")
    x = x[varied]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        algorithm = prim.Prim(x, interest.astype(int), threshold=density, peel_alpha=peel_alpha,
                              paste_alpha=paste_alpha, mass_min=mass_min)
        found = []
        for _ in range(boxes):
            box = algorithm.find_box()
            if box is None:
                break
            trajectory = box.peeling_trajectory.reset_index(drop=True)
            dense = trajectory.index[trajectory["density"] >= density]
            if len(dense) == 0 and len(trajectory) == 1:
                # the Workbench's "dump box": its peeled box missed the density, and it returns the whole
                # remaining space instead, which is not a box
                if found:
                    break
                share = float(trajectory["density"].iloc[0])
                raise TargetsimError(f"PRIM found no box whose density reaches {density:.0%}: the {cases} of interest "
                                     f"({share:.0%} of all) are spread across the inputs' ranges; try a lower "
                                     f"--density (between {share:.0%} and {density:.0%}), or more {cases}")
            if len(dense) == 0:
                if found:
                    break  # a later box that never gets dense is what remains, not a box
                chosen = int(trajectory["density"].astype(float).idxmax())
            else:
                # the highest coverage; among boxes that cover as much, the densest
                ranked = trajectory.loc[dense].astype(float).sort_values(["coverage", "density"], ascending=False,
                                                                          kind="stable")
                chosen = int(ranked.index[0])
            box.select(chosen)
            found.append((box, trajectory, chosen))
            if len(dense) == 0:
                break
    n_boxes, n_inputs = len(found), len(varied)
    steps = max(len(t) for _, t, _ in found)
    lower = np.full((n_boxes, n_inputs), np.nan)
    upper = np.full((n_boxes, n_inputs), np.nan)
    restricted = np.zeros((n_boxes, n_inputs), dtype=np.int8)
    qp_lower = np.full((n_boxes, n_inputs), np.nan)
    qp_upper = np.full((n_boxes, n_inputs), np.nan)
    stats = {name: np.full(n_boxes, np.nan) for name in ("coverage", "density", "mass", "n", "k")}
    chosen_step = np.zeros(n_boxes, dtype=np.int64)
    trail = {name: np.full((n_boxes, steps), np.nan) for name in ("coverage", "density", "mass", "res_dim")}
    box_init = algorithm.box_init
    for b, (box, trajectory, chosen) in enumerate(found):
        lims = box.box_lims[chosen]
        qp = box.qp[chosen] if chosen < len(box.qp) else {}
        for j, key in enumerate(varied):
            lower[b, j], upper[b, j] = float(lims[key].iloc[0]), float(lims[key].iloc[1])
            is_restricted = (lims[key].iloc[0] != box_init[key].iloc[0]) or (lims[key].iloc[1] != box_init[key].iloc[1])
            restricted[b, j] = int(is_restricted)
            if key in qp:
                lo_p, hi_p = (float(v) for v in qp[key])
                qp_lower[b, j] = lo_p if lo_p >= 0 else np.nan
                qp_upper[b, j] = hi_p if hi_p >= 0 else np.nan
        row = trajectory.loc[chosen]
        for name in stats:
            stats[name][b] = float(row[name])
        chosen_step[b] = chosen
        for name in trail:
            trail[name][b, : len(trajectory)] = trajectory[name].astype(float).values
    result = xr.Dataset(
        {
            "box_lower": (("box", "input"), lower),
            "box_upper": (("box", "input"), upper),
            "box_restricts": (("box", "input"), restricted),
            "box_quasi_p_lower": (("box", "input"), qp_lower),
            "box_quasi_p_upper": (("box", "input"), qp_upper),
            "box_coverage": (("box",), stats["coverage"]),
            "box_density": (("box",), stats["density"]),
            "box_mass": (("box",), stats["mass"]),
            "box_cases": (("box",), stats["n"].astype(np.int64)),
            "box_cases_of_interest": (("box",), stats["k"].astype(np.int64)),
            "box_step": (("box",), chosen_step),
            "peeling_coverage": (("box", "step"), trail["coverage"]),
            "peeling_density": (("box", "step"), trail["density"]),
            "peeling_mass": (("box", "step"), trail["mass"]),
            "peeling_restricted_inputs": (("box", "step"), trail["res_dim"]),
        },
        coords={
            "box": np.arange(1, n_boxes + 1),
            "input": varied,
            "input_min": ("input", x.min().values),
            "input_max": ("input", x.max().values),
            "step": np.arange(steps),
        },
    )
    result.attrs.update({
        "target": target,
        "probability_variable": variable,
        "cases_are": cases,
        "threshold": threshold,
        "density_threshold": density,
        "cases": n,
        "cases_of_interest": n_interest,
        "peel_alpha": peel_alpha,
        "paste_alpha": paste_alpha,
        "mass_min": mass_min,
        "sweep_file": source,
        "scenario_file": ds.attrs.get("scenario_file", ""),
        "method": ("PRIM (ema_workbench.analysis.prim.Prim, lenient objective): cases = "
                   + (f"the run's kept paths, of interest when the path misses {target}" if paths else
                      f"the sweep's variants, of interest when P({target}) < {threshold:g}")
                   + f"; on each peeling trajectory the box with the highest coverage among those with density >= "
                   f"{density:g} (else the densest)"),
    })
    return result


def format_boxes(result: "xr.Dataset") -> str:
    """The boxes as text: each box's coverage, density and mass, its restricted inputs' ranges (with their
    quasi-p-values), and its peeling trajectory."""
    target, threshold = result.attrs["target"], float(result.attrs["threshold"])
    n, k = int(result.attrs["cases"]), int(result.attrs["cases_of_interest"])
    cases = result.attrs.get("cases_are", "variants")
    event = f"{target} missed" if cases == "kept paths" else f"P({target}) < {threshold * 100:g}%"
    lines = [f"{event} in {k} of {n} {cases} ({k / n:.1%}); PRIM boxes (density threshold "
             f"{float(result.attrs['density_threshold']):.0%}):"]
    width = min(70, max(len(str(i)) for i in result["input"].values))
    for b in range(result.sizes["box"]):
        box = result.isel(box=b)
        lines.append("")
        lines.append(f"box {int(box['box'])}: coverage {float(box['box_coverage']):.1%}, density "
                     f"{float(box['box_density']):.1%}, mass {float(box['box_mass']):.1%} "
                     f"({int(box['box_cases_of_interest'])} of its {int(box['box_cases'])} {cases} of interest)")
        restricted = [j for j in range(result.sizes["input"]) if int(box["box_restricts"][j])]
        if not restricted:
            lines.append("  restricts no input (the whole space)")
        for j in restricted:
            key = str(result["input"].values[j])
            lo, hi = float(box["box_lower"][j]), float(box["box_upper"][j])
            qp = [float(box["box_quasi_p_lower"][j]), float(box["box_quasi_p_upper"][j])]
            qp_text = ", ".join(f"{q:.2g}" for q in qp if math.isfinite(q))
            lines.append(f"  {key:<{width}}  {lo:>10.4g} .. {hi:<10.4g} (of {float(result['input_min'][j]):.4g} .. "
                         f"{float(result['input_max'][j]):.4g})" + (f"  quasi-p {qp_text}" if qp_text else ""))
        lines.append("  peeling trajectory: step  coverage  density   mass  inputs restricted")
        steps = np.isfinite(box["peeling_coverage"].values)
        for s in np.flatnonzero(steps):
            mark = " <" if s == int(box["box_step"]) else ""
            lines.append(f"  {'':>20}{s:>4}  {float(box['peeling_coverage'][s]):8.1%} "
                         f"{float(box['peeling_density'][s]):8.1%} {float(box['peeling_mass'][s]):6.1%}  "
                         f"{int(box['peeling_restricted_inputs'][s]):>3}{mark}")
    return "\n".join(lines)


def boxes_csv(result: "xr.Dataset") -> str:
    """One row per box and restricted input: box, coverage, density, mass, input, lower, upper, quasi-p."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["target", "threshold", "box", "coverage", "density", "mass", "cases", "cases_of_interest",
                     "input", "lower", "upper", "quasi_p_lower", "quasi_p_upper"])
    for b in range(result.sizes["box"]):
        box = result.isel(box=b)
        for j in range(result.sizes["input"]):
            if not int(box["box_restricts"][j]):
                continue
            writer.writerow([result.attrs["target"], result.attrs["threshold"], int(box["box"]),
                             float(box["box_coverage"]), float(box["box_density"]), float(box["box_mass"]),
                             int(box["box_cases"]), int(box["box_cases_of_interest"]), str(result["input"].values[j]),
                             float(box["box_lower"][j]), float(box["box_upper"][j]),
                             float(box["box_quasi_p_lower"][j]), float(box["box_quasi_p_upper"][j])])
    return out.getvalue()


def write_boxes(result: "xr.Dataset", path: str | Path) -> Path:
    """The boxes written atomically: a CSV table (``.csv``) or the whole result as NetCDF."""
    from targetsim.io.netcdf import atomic_write, write_dataset

    path = Path(path)
    if path.suffix.lower() == ".csv":
        text = boxes_csv(result)
        return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return write_dataset(result, path)
