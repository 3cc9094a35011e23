"""``targetsim compare``: how two runs' attainment probabilities differ, with intervals that account for
common random numbers.

The difference of two Monte Carlo estimates ``D = p_B − p_A`` has the variance ``Var(p̂_A) + Var(p̂_B) −
2 Cov(p̂_A, p̂_B)``. Runs with different seeds are independent (no covariance). Runs with the same seed
draw the same random numbers path by path (common random numbers: a path's draws depend only on the seed
and its index), so a target met on a path of one run is usually met on the same path of the other, and the
difference is far more precise than either probability. How much more depends on the paths on which the two
runs disagree, which the probabilities alone do not tell:

* **paired**: both runs kept their first paths' outcomes (``run --keep-paths N``: ``kept_target_met``).
  Per path the difference ``b − a`` is −1, 0 or 1; its variance is ``q − D²``, ``q`` the share of paths on
  which the runs disagree. ``q`` is estimated on the kept paths by its Wilson 95 % upper bound (never below
  ``|D|``, which the full runs imply), so the interval errs on the wide side when few paths disagree.
* **bound**: the same seed, but no kept paths (or paths weighted by observations): whatever the coupling,
  ``sd(D̂) ≤ sd(p̂_A) + sd(p̂_B)`` (Cauchy–Schwarz); a valid but wide interval, and the output says how to
  get the paired one.
* **independent**: different seeds: ``sd(D̂)² = sd(p̂_A)² + sd(p̂_B)²``.

The intervals are built so that they stay honest near 0 and 1, where a normal interval has no width
(0 of 10,000 paths against 4 of 10,000 is no evidence of a difference): Newcombe's hybrid score interval
from the runs' Wilson intervals (independent), the Wilson half-widths added (bound), and for paired runs
the normal interval widened to the exact interval of the disagreeing paths' sign. Where the runs' targets
differ, "every target met" is a different event in each and is not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

#: the normal quantile of a two-sided 95 % interval
Z95 = 1.959963984540054
#: how the standard error of a difference was found (see the module's docstring)
METHODS = {
    "paired": "same seed, paired over the kept paths (common random numbers)",
    "bound": "same seed, no kept paths: a bound valid for any coupling (wide)",
    "independent": "different seeds: independent runs",
    "not comparable": "the runs' targets differ: every target met is a different event in each",
}
#: the row standing for every target met together
JOINT = "(all targets)"


@dataclass(frozen=True)
class Difference:
    """One target's probability in the reference run and in the other, and their difference with its
    95 % interval (clipped to [−1, 1])."""

    target: str
    label: str
    year: int | None
    reference: float
    other: float
    difference: float
    standard_error: float
    lower: float
    upper: float
    method: str
    discordant: float = math.nan  # share of kept paths on which the runs disagree (paired only)

    @property
    def changed(self) -> bool:
        """The interval excludes 0: the runs differ beyond Monte Carlo noise."""
        return self.lower > 0.0 or self.upper < 0.0


@dataclass(frozen=True)
class Comparison:
    """The other run against the reference run: their targets' differences and how they were paired."""

    reference_name: str
    other_name: str
    method: str
    note: str
    differences: tuple[Difference, ...]
    only_reference: tuple[str, ...]
    only_other: tuple[str, ...]
    kept_paths: int = 0


def wilson_upper(successes: int, n: int, z: float = Z95) -> float:
    """The upper end of the Wilson score interval of a proportion (1 when ``n`` is 0)."""
    if n <= 0:
        return 1.0
    phat = successes / n
    centre = phat + z * z / (2 * n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return min(1.0, (centre + half) / (1 + z * z / n))


def _weighted(ds: xr.Dataset) -> bool:
    paths = int(ds.attrs.get("paths", 0))
    ess = float(ds.attrs.get("effective_sample_size", paths))
    return bool(str(ds.attrs.get("observations", "") or "")) or round(ess) != paths


def _effective_paths(ds: xr.Dataset) -> float:
    return float(ds.attrs.get("effective_sample_size", ds.attrs.get("paths", 0)))


def _kept(ds: xr.Dataset) -> bool:
    return "kept_target_met" in ds.variables and "kept_path" in ds.dims and ds.sizes["kept_path"] > 0


def pairing(reference: xr.Dataset, other: xr.Dataset) -> tuple[str, str]:
    """(method, sentence): how the two runs' differences get their standard errors."""
    seed_a, seed_b = reference.attrs.get("seed"), other.attrs.get("seed")
    if seed_a is None or seed_b is None or int(seed_a) != int(seed_b):
        return "independent", f"different seeds ({seed_a} and {seed_b}): the runs are independent."
    same_paths = int(reference.attrs.get("paths", 0)) == int(other.attrs.get("paths", 0))
    if same_paths and not (_weighted(reference) or _weighted(other)) and _kept(reference) and _kept(other):
        common = np.intersect1d(reference["kept_path"].values, other["kept_path"].values)
        if common.size:
            return "paired", (f"same seed {int(seed_a)}: common random numbers; the runs' disagreement is measured "
                              f"on the {common.size:,} paths both kept (--keep-paths).")
    why = ("the runs weight their paths by observations" if _weighted(reference) or _weighted(other)
           else "the runs have different numbers of paths" if not same_paths
           else "the runs kept no paths")
    return "bound", (f"same seed {int(seed_a)}: common random numbers, but {why}, so the intervals are a bound "
                     "valid for any coupling (wide); run both with --keep-paths 20000 (same seed and paths) for "
                     "the paired interval.")


def _probability(ds: xr.Dataset, target: str | None) -> tuple[float, float, float, float]:
    """(p, its s.e., its 95 % Wilson interval's ends) of a target, or of every target met together."""
    sel = ds.isel(scenario=0)
    if target is None:
        p = float(sel["joint_attainment_probability"])
        n = _effective_paths(ds)
        return (p, math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.nan,
                float(sel["joint_attainment_probability_lower"]), float(sel["joint_attainment_probability_upper"]))
    row = sel.sel(target=target)
    return (float(row["attainment_probability"]), float(row["attainment_probability_standard_error"]),
            float(row["attainment_probability_lower"]), float(row["attainment_probability_upper"]))


def _kept_flags(ds: xr.Dataset, paths: np.ndarray, target: str | None) -> np.ndarray:
    met = ds["kept_target_met"]
    if "scenario" in met.dims:
        met = met.isel(scenario=0)
    met = met.sel(kept_path=paths)
    if target is None:
        return np.asarray(met.transpose("kept_path", "target").values).astype(bool).all(axis=1)
    return np.asarray(met.sel(target=target).values).astype(bool)


def _paired_interval(d: float, q: float, n: int) -> tuple[float, float, float]:
    """(s.e., lower, upper) of a paired difference ``d`` over ``n`` paths, ``q`` (an upper bound of) the share
    of paths on which the runs disagree. The normal interval of ``d ± z·sqrt((q − d²)/n)``, widened to the
    exact (Clopper–Pearson) interval of the sign of the disagreements, ``d = q(2θ − 1)`` with ``θ`` the share
    of the ``q·n`` disagreeing paths that favour the other run: with few disagreeing paths the normal
    interval alone would call 4 paths out of 10,000, all one way, a difference."""
    from scipy.stats import beta

    se = math.sqrt(max(q - d * d, 0.0) / n)
    lower, upper = d - Z95 * se, d + Z95 * se
    m = q * n
    if m > 0:
        k = min(max((1.0 + d / q) / 2.0 * m, 0.0), m)
        theta_low = float(beta.ppf(0.025, k, m - k + 1)) if k > 0 else 0.0
        theta_high = float(beta.ppf(0.975, k + 1, m - k)) if k < m else 1.0
        lower, upper = min(lower, q * (2 * theta_low - 1)), max(upper, q * (2 * theta_high - 1))
    return se, lower, upper


def _difference(reference: xr.Dataset, other: xr.Dataset, target: str | None, method: str,
                kept: np.ndarray | None) -> Difference:
    """The difference ``other − reference`` with its 95 % interval. Independent runs: Newcombe's hybrid score
    interval from the two Wilson intervals (it stays honest near 0 and 1, where the normal one has no
    width); the same seed without kept paths: the Wilson half-widths added (the bound that holds for any
    coupling); paired: see :func:`_paired_interval`."""
    pa, sea, la, ua = _probability(reference, target)
    pb, seb, lb, ub = _probability(other, target)
    d = pb - pa
    discordant = math.nan
    if method == "paired" and kept is not None:
        a, b = _kept_flags(reference, kept, target), _kept_flags(other, kept, target)
        disagree = int(np.count_nonzero(a != b))
        discordant = disagree / kept.size
        q = max(wilson_upper(disagree, kept.size), abs(d))
        se, lower, upper = _paired_interval(d, q, int(reference.attrs["paths"]))
    elif method == "bound":
        se = sea + seb
        lower, upper = d - ((pb - lb) + (ua - pa)), d + ((ub - pb) + (pa - la))
    else:
        se = math.hypot(sea, seb)
        lower, upper = d - math.hypot(pb - lb, ua - pa), d + math.hypot(ub - pb, pa - la)
    if target is None:
        label, year = JOINT, None
    else:
        row = reference.isel(scenario=0).sel(target=target)
        label, year = str(row["target_label"].values), int(row["target_year"])
    return Difference(target=target or JOINT, label=label, year=year, reference=pa, other=pb, difference=d,
                      standard_error=se, lower=max(-1.0, lower), upper=min(1.0, upper),
                      method=method, discordant=discordant)


def _not_comparable(reference: xr.Dataset, other: xr.Dataset) -> Difference:
    """Every target met together, when the runs' targets differ: two different events, not compared."""
    pa, pb = (float(ds.isel(scenario=0)["joint_attainment_probability"]) for ds in (reference, other))
    return Difference(target=JOINT, label=JOINT, year=None, reference=pa, other=pb, difference=math.nan,
                      standard_error=math.nan, lower=math.nan, upper=math.nan, method="not comparable")


def compare_datasets(reference: xr.Dataset, other: xr.Dataset, *, reference_name: str = "A",
                     other_name: str = "B") -> Comparison:
    """Every target in both runs (the reference's order), then every target met together, as
    :class:`Difference` rows ``other − reference``."""
    method, note = pairing(reference, other)
    kept = (np.intersect1d(reference["kept_path"].values, other["kept_path"].values) if method == "paired"
            else None)
    ids_a = [str(t) for t in reference["target"].values]
    ids_b = [str(t) for t in other["target"].values]
    common = [t for t in ids_a if t in set(ids_b)]
    rows = [_difference(reference, other, t, method, kept) for t in common]
    same_targets = len(common) == len(ids_a) == len(ids_b)
    rows.append(_difference(reference, other, None, method, kept) if same_targets
                else _not_comparable(reference, other))
    return Comparison(reference_name=reference_name, other_name=other_name, method=method, note=note,
                      differences=tuple(rows), only_reference=tuple(t for t in ids_a if t not in set(ids_b)),
                      only_other=tuple(t for t in ids_b if t not in set(ids_a)),
                      kept_paths=0 if kept is None else int(kept.size))


def compare_files(paths: list[str | Path]) -> list[Comparison]:
    """Each results file after the first against the first."""
    from targetsim.errors import TargetsimError
    from targetsim.report.results_file import load_results

    if len(paths) < 2:
        raise TargetsimError("compare needs at least two results files: the reference first, then the others")
    datasets = [load_results(p, ("attainment_probability", "attainment_probability_standard_error"))
                for p in paths]
    names = [_name(ds, Path(p)) for ds, p in zip(datasets, paths)]
    return [compare_datasets(datasets[0], ds, reference_name=names[0], other_name=name)
            for ds, name in zip(datasets[1:], names[1:])]


def _name(ds: xr.Dataset, path: Path) -> str:
    return f"{path.name} ({ds.attrs.get('scenario_name', path.stem)})"


def _pts(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"


#: the fields of a difference row in csv/json, in order
ROW_KEYS = ("reference_file", "other_file", "target", "label", "year", "reference_probability",
            "other_probability", "difference", "difference_lower", "difference_upper", "standard_error",
            "changed", "method", "discordant_share")


def difference_rows(comparisons: list[Comparison]) -> list[dict]:
    """One dict per (comparison, target) with the fields of :data:`ROW_KEYS` (fractions, not percent)."""
    rows = []
    for c in comparisons:
        for d in c.differences:
            rows.append({"reference_file": c.reference_name, "other_file": c.other_name, "target": d.target,
                         "label": d.label, "year": d.year, "reference_probability": d.reference,
                         "other_probability": d.other, "difference": d.difference, "difference_lower": d.lower,
                         "difference_upper": d.upper, "standard_error": d.standard_error, "changed": d.changed,
                         "method": d.method, "discordant_share": d.discordant})
    return rows


def format_comparisons(comparisons: list[Comparison], fmt: str) -> str:
    """``csv`` or ``json`` (every field, fractions at full precision) or ``markdown`` (percent)."""
    import csv
    import io
    import json

    from targetsim.report.table import csv_cell

    rows = difference_rows(comparisons)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ROW_KEYS)
        for r in rows:
            writer.writerow([csv_cell(r[k]) if r[k] is not None else "" for k in ROW_KEYS])
        return out.getvalue()
    if fmt == "json":
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v
        doc = [{"reference": c.reference_name, "other": c.other_name, "method": c.method,
                "method_description": METHODS[c.method], "note": c.note,
                "kept_paths": c.kept_paths, "only_in_reference": list(c.only_reference),
                "only_in_other": list(c.only_other),
                "targets": [{k: clean(r[k]) for k in ROW_KEYS[2:]} for r in difference_rows([c])]}
               for c in comparisons]
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if fmt == "markdown":
        lines = []
        for c in comparisons:
            lines += [f"**{c.other_name} − {c.reference_name}** (percentage points; {c.note})", "",
                      "| target | label | by | reference | other | Δ | 95 % interval |",
                      "|---|---|---:|---:|---:|---:|---:|"]
            for d in c.differences:
                lines.append(f"| {d.target} | {d.label.replace('|', '/')} | {d.year or ''} | {_pts(d.reference)} | "
                             f"{_pts(d.other)} | {_pts(d.difference, True)}{' *' if d.changed else ''} | "
                             f"{_pts(d.lower, True)} – {_pts(d.upper, True)} |")
            lines += ["", *_notes(c), ""]
        return "\n".join(lines)
    raise ValueError(f"format must be csv, json or markdown here (table: print_comparisons), got {fmt!r}")


def _notes(c: Comparison) -> list[str]:
    notes = ["* the 95 % interval of the difference excludes 0: the runs differ beyond Monte Carlo noise."]
    if c.only_reference or c.only_other:
        notes.append(f"{JOINT}: not compared (–): the runs have different targets, so 'every target met' is a "
                     "different event in each.")
    if c.only_reference:
        notes.append(f"only in {c.reference_name}: {', '.join(c.only_reference)}")
    if c.only_other:
        notes.append(f"only in {c.other_name}: {', '.join(c.only_other)}")
    return notes


def print_comparisons(comparisons: list[Comparison], console=None) -> None:
    """One table per comparison: the Chinese label first (the planner's key column), the probabilities
    in percent, the difference in points with its interval; the target id only on wide terminals."""
    from rich.console import Console
    from rich.table import Table

    from targetsim.report.table import LOG_WIDTH

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=LOG_WIDTH)
    wide = console.width >= 120
    for c in comparisons:
        table = Table(title=f"{c.other_name} − {c.reference_name}, P(met) in % and points", title_justify="left")
        table.add_column("target", overflow="fold", max_width=None if wide else 24)
        if wide:
            table.add_column("id", no_wrap=True, overflow="ellipsis", max_width=30)
        for name in ("by", "ref.", "other", "Δ", "95 % interval"):
            table.add_column(name, justify="right", no_wrap=True)
        for d in c.differences:
            cells = [d.label] + ([d.target] if wide else []) + [
                str(d.year or ""), _pts(d.reference), _pts(d.other),
                _pts(d.difference, True) + (" *" if d.changed else "  "),
                f"{_pts(d.lower, True)} – {_pts(d.upper, True)}"]
            table.add_row(*cells)
        console.print(table)
        console.print(c.note)
        for note in _notes(c):
            console.print(note)
