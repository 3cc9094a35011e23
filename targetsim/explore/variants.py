"""Variants of one scenario: numbers of its document changed by dotted keys, each a scenario of its own.

A key names one number of the scenario's merged document (its ``extends`` chain and city model
composed, pruned to what its targets need: what ``targetsim validate FILE --show-merged`` prints),
spelt as a variant that ``extends`` the scenario would override it:

- mappings by their keys: ``indicators.wuhan_cbec_trade.process.growth.mean``, ``shocks.dof``;
- ``targets`` by id: ``targets.wh_dt_hpc_eflops.threshold``;
- ``correlations`` by the pair, in either order: ``correlations.wuhan_gdp.wuhan_rd_expenditure``
  (the pair's rho);
- any other list by an item's ``name`` (a buildout's projects, jumps) or by its position from 0:
  ``indicators.wuhan_high_performance_computing_capacity.process.projects.0.probability``.

Only numbers the document sets can be varied (a key the scenario leaves at its default is refused:
write it into the scenario, or a variant of it, first), and never ``seed``, ``paths``, ``base_year``
or ``horizon``: every variant runs the same paths with the same seed (common random numbers) over
the same years, so that variants differ by their inputs only and their results stack.

The document is read once; each variant is a copy with its numbers set, parsed and validated like a
file (:func:`targetsim.io.scenarios.scenario_from_document`). A value the scenario refuses (a
negative s.d., a correlation matrix that is not positive semi-definite) is an error naming the
variant and the key.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from targetsim.errors import TargetsimError

if TYPE_CHECKING:
    from targetsim.model.scenario import Scenario

#: Numbers a sweep may not vary (see the module's docstring).
FIXED_KEYS = {"seed": "every variant runs with the same seed (common random numbers); pass --seed instead",
              "paths": "every variant runs the same number of paths; pass --paths instead",
              "base_year": "the variants' results stack over the same years",
              "horizon": "the variants' results stack over the same years"}

Address = tuple[str | int, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _item_name(item: Any) -> str | None:
    if isinstance(item, Mapping):
        for field in ("id", "name"):
            if isinstance(item.get(field), str):
                return item[field]
    return None


def numeric_keys(data: Any) -> dict[str, Address]:
    """Every number of a merged scenario document: its dotted key (as :mod:`this module <targetsim.explore.variants>`
    spells it) → its address in the document (key path with list positions)."""
    found: dict[str, Address] = {}

    def walk(node: Any, spelt: tuple[str, ...], address: Address) -> None:
        if _is_number(node):
            found[".".join(spelt)] = address
        elif isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, (*spelt, str(key)), (*address, key))
        elif isinstance(node, list):
            if address == ("correlations",):
                for k, item in enumerate(node):
                    if isinstance(item, list) and len(item) == 3 and _is_number(item[2]):
                        found[".".join((*spelt, str(item[0]), str(item[1])))] = (*address, k, 2)
                return
            for k, item in enumerate(node):
                name = _item_name(item)
                walk(item, (*spelt, name if name is not None else str(k)), (*address, k))

    walk(data, (), ())
    for key in FIXED_KEYS:
        found.pop(key, None)
    return found


def resolve_key(data: Any, key: str, file: str | Path) -> Address:
    """The address of ``key`` in the document, or an error naming the key, where it stops matching,
    the nearest valid keys and the fix."""
    if key in FIXED_KEYS:
        raise TargetsimError(f"--vary {key}: {key} cannot be varied: {FIXED_KEYS[key]}")
    keys = numeric_keys(data)
    if key in keys:
        return keys[key]
    parts = key.split(".")
    if key.startswith("correlations.") and len(parts) == 3:
        swapped = ".".join((parts[0], parts[2], parts[1]))
        if swapped in keys:
            return keys[swapped]
    nearest = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.6)
    if not nearest:  # keys under the longest prefix that exists
        for n in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:n]) + "."
            under = [k for k in keys if k.startswith(prefix)]
            if under:
                nearest = difflib.get_close_matches(key, under, n=3, cutoff=0.0) or under[:3]
                break
    hint = f"; nearest valid keys: {', '.join(nearest)}" if nearest else ""
    raise TargetsimError(
        f"--vary {key}: {file} sets no number at this key{hint}. A key is a dotted path into the merged "
        f"scenario (`targetsim validate {file} --show-merged` prints it; targets by id, correlations by the "
        f"pair, projects and jumps by name or position), and only numbers the scenario sets can be varied: "
        f"to vary a default, write the key into the scenario (or a variant that extends it) first")


def _set(data: Any, address: Address, value: float) -> None:
    node = data
    for part in address[:-1]:
        node = node[part]
    old = node[address[-1]]
    if isinstance(old, int) and float(value).is_integer():
        value = int(value)  # a whole number stays one (a year, a count's schedule), so the parser takes it
    node[address[-1]] = value


@dataclass
class ScenarioVariants:
    """One scenario file, loaded once, and the keys a sweep varies in it: :meth:`scenario` builds the
    scenario of one variant (its numbers at the keys), validated like a file."""

    file: Path
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        from targetsim.io.models import load_document

        self.file = Path(self.file)
        self._chain = load_document(self.file)
        data = self._chain.merged.data
        if len(set(self.keys)) != len(self.keys):
            twice = next(k for k in self.keys if self.keys.count(k) > 1)
            raise TargetsimError(f"--vary {twice} is given twice; give each key once (a grid's values as a list "
                                 f"0.1,0.2,0.3)")
        self._addresses = {key: resolve_key(data, key, self.file) for key in self.keys}
        self.base = self.scenario({})

    def nominal(self, key: str) -> float:
        """The number the scenario sets at ``key``."""
        node: Any = self._chain.merged.data
        for part in self._addresses[key]:
            node = node[part]
        return float(node)

    def scenario(self, values: Mapping[str, float], *, label: str = "") -> "Scenario":
        """The scenario with ``values`` (key → number) set; an error naming ``label`` (the variant) and the
        keys when the scenario refuses them."""
        from targetsim.errors import ScenarioError
        from targetsim.io.scenarios import scenario_from_document
        from targetsim.io.yaml_source import YamlSource

        merged = self._chain.merged
        data = copy.deepcopy(merged.data)
        for key, value in values.items():
            if key not in self._addresses:
                raise TargetsimError(f"{key} is not one of the varied keys ({', '.join(self.keys)})")
            if not math.isfinite(float(value)):
                raise TargetsimError(f"{label or 'variant'}: {key} = {value}: not a finite number")
            _set(data, self._addresses[key], float(value))
        source = YamlSource(file=merged.file, data=data, lines=merged.lines, text=merged.text,
                            origins=merged.origins)
        try:
            return scenario_from_document(source, self.file, sha256=self._chain.sha256)
        except ScenarioError as exc:
            if not values:
                raise
            moved = [f"{k} = {v:g}" for k, v in values.items() if float(v) != self.nominal(k)]
            what = ", ".join(moved[:4]) + (f" and {len(moved) - 4} more" if len(moved) > 4 else "") or "as written"
            raise TargetsimError(f"{label or 'variant'} ({what}) is refused by the scenario: {exc}. Narrow the "
                                 f"range of the key it names") from None


def run_provenance(base: "Scenario", scenario: str | Path, seed: int, paths: int) -> dict[str, Any]:
    """The attributes every dataset of many runs carries: the version, the scenario (name, file, sha256),
    and the seed and paths every run shared (common random numbers)."""
    from targetsim import __version__

    return {"targetsim_version": __version__, "scenario_name": base.name, "scenario_file": str(scenario),
            "scenario_sha256": base.sha256, "seed": seed, "paths": paths}
