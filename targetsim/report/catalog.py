"""Which scenario models each catalog target, and the baselines behind the indicators.

Functions return plain rows; the CLI prints them with rich.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from targetsim.errors import TargetsimError
from targetsim.io.baselines import BaselineValue, load_baselines
from targetsim.io.scenarios import load_scenario
from targetsim.model.basis import BASES, target_bases
from targetsim.model.scenario import Scenario, assumption_flags


@dataclass(frozen=True)
class CatalogRow:
    target_id: str
    plan: str
    kind: str
    tier: str
    scenario: str          # file that lists it ('' when none)
    status: str            # 'modelled', 'not modelled: <reason>', or 'missing'
    assumption: bool       # the target's indicator (start value or parameters) rests on an assumption
    basis: str = ""        # what its parameters rest on (targetsim.model.basis); '' when not modelled


def read_catalog(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise TargetsimError(f"{path}: catalog not found") from None


def load_all_scenarios(folder: Path) -> dict[Path, Scenario]:
    """Every scenario in ``folder`` (``*.yaml``), keyed by file."""
    return {path: load_scenario(path) for path in sorted(folder.glob("*.yaml"))}


def own_targets(path: Path, scenario: Scenario, scenarios: dict[Path, Scenario]) -> tuple[set[str], set[str]]:
    """Target ids written in this file (not inherited through ``extends``), and its not-modelled ids."""
    from targetsim.io.extends import chain_sources
    from targetsim.io.yaml_source import load_yaml

    root = load_yaml(path)
    if isinstance(root.data, dict) and "plans" in root.data:
        return set(), set()  # a joint run: its targets are its plans'
    sources, paths = chain_sources(Path(path), root)
    parents = paths[1:]  # the files it extends (not its city model)
    inherited: set[str] = set()
    inherited_nm: set[str] = set()
    for parent in parents:
        parent_sc = scenarios.get(Path(parent)) or load_scenario(parent)
        inherited |= {t.id for t in parent_sc.targets}
        inherited_nm |= {n.id for n in parent_sc.not_modelled}
    return ({t.id for t in scenario.targets} - inherited,
            {n.id for n in scenario.not_modelled} - inherited_nm)


def catalog_rows(catalog: Path, folder: Path) -> list[CatalogRow]:
    scenarios = load_all_scenarios(folder)
    where: dict[str, list[tuple[Path, str, bool, str]]] = {}
    for path, sc in scenarios.items():
        mine, not_modelled = own_targets(path, sc, scenarios)
        assumed = assumption_flags(sc.indicators)
        bases = target_bases(sc)
        reasons = {n.id: n.reason for n in sc.not_modelled}
        for t in sc.targets:
            if t.id in mine:
                where.setdefault(t.id, []).append((path, "modelled", assumed.get(t.indicator, False), bases[t.id]))
        for tid in not_modelled:
            where.setdefault(tid, []).append((path, f"not modelled: {reasons[tid]}", False, ""))
    rows = []
    for entry in read_catalog(catalog):
        places = where.get(entry["target_id"], [])
        if not places:
            rows.append(CatalogRow(entry["target_id"], entry["plan_zh"], entry["kind"], entry["tier"], "",
                                   "missing", False))
            continue
        for path, status, assumed, basis in places:
            rows.append(CatalogRow(entry["target_id"], entry["plan_zh"], entry["kind"], entry["tier"],
                                   path.name, status, assumed, basis))
    return rows


def basis_counts(rows: list[CatalogRow]) -> dict[str, dict[str, int]]:
    """Per plan (the catalog's plan title), the number of modelled targets of each basis (every basis of
    :data:`targetsim.model.basis.BASES`, zeros included), a target modelled in several scenarios once."""
    counts: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for r in rows:
        if r.status != "modelled" or r.target_id in seen:
            continue
        seen.add(r.target_id)
        counts.setdefault(r.plan, dict.fromkeys(BASES, 0))[r.basis] += 1
    return counts


# Verbatim copies of the seed catalog's files kept among the baselines, with the seed's own columns
# (their source is the seed file and quote of each row): not long-form baseline tables.
SEED_COPIES = ("seed_facts.csv",)
# The reference class of past plan targets and their outcomes (issue 17), one row per target: not
# long-form baseline tables either (see targetsim.estimate.outside_view).
REFERENCE_TABLE_PREFIX = "reference_targets"


def is_reference_table(path: Path) -> bool:
    return Path(path).name.startswith(REFERENCE_TABLE_PREFIX)


def baseline_files(folder: Path) -> list[Path]:
    """The long-form baseline CSV files of a folder (``*.csv`` except :data:`SEED_COPIES`), by name."""
    files = sorted(p for p in Path(folder).glob("*.csv") if p.name not in SEED_COPIES and not is_reference_table(p))
    if not files:
        raise TargetsimError(f"{folder}: no baseline CSV files (*.csv) found")
    return files


def baseline_rows(files: list[Path], indicator: str | None) -> list[tuple[Path, BaselineValue]]:
    rows = []
    for path in files:
        table = load_baselines(path)
        for row in table.rows:
            if indicator is None or row.indicator == indicator:
                rows.append((path, row))
    if indicator is not None and not rows:
        known = sorted({r.indicator for path in files for r in load_baselines(path).rows})
        import difflib

        hint = difflib.get_close_matches(indicator, known, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise TargetsimError(f"no baseline rows for {indicator!r}{extra}")
    return sorted(rows, key=lambda pr: (pr[1].indicator, pr[1].year))
