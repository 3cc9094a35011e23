"""Digests of the numbers the engine produces for every shipped scenario and bench workload.

A change that should leave results unchanged (a refactoring, a speed-up) must leave every digest
unchanged; a change that moves numbers on purpose says which digests moved and why.

    .venv/bin/python -m benches.digests                # print the digests
    .venv/bin/python -m benches.digests --check        # compare with benches/digests.json (exit 1 on a change)
    .venv/bin/python -m benches.digests --write        # store the current digests

Each run uses 30,000 paths, the scenario's seed and 2 threads (threads never change the numbers).
Each data variable of the results dataset has its own digest (values and shape), so a check says
which variables moved; attributes (which hold the creation time) are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "benches" / "digests.json"
PATHS = 30_000


def dataset_digests(ds) -> dict[str, str]:
    """A digest of each data variable (values and shape)."""
    out = {}
    for name in sorted(ds.data_vars):
        raw = np.asarray(ds[name].values)
        h = hashlib.sha256(str(raw.shape).encode())
        if raw.dtype.kind in "OUS":  # text, such as a fit's description: its characters
            h.update("\x1f".join(str(v) for v in raw.ravel()).encode("utf-8"))
        else:
            h.update(np.ascontiguousarray(raw, dtype=np.float64).tobytes())
        out[name] = h.hexdigest()[:16]
    return out


def workloads():
    from benches.bench import load, workload

    yield "bench:lognormal_20x10", load(workload("lognormal"))
    yield "bench:correlated_20x10", load(workload("lognormal", correlated=True))
    yield "bench:ar1_20x10", load(workload("ar1"))
    import targetsim

    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        yield f"scenario:{path.name}", targetsim.load_scenario(path)


def compute() -> dict[str, dict[str, str]]:
    import targetsim

    return {name: dataset_digests(targetsim.run(scenario, paths=PATHS, threads=2))
            for name, scenario in workloads()}


def compare(stored: dict, current: dict) -> list[str]:
    """Lines naming each workload whose variables changed, appeared or disappeared."""
    lines = []
    for name in sorted(set(stored) | set(current)):
        old, new = stored.get(name, {}), current.get(name, {})
        changed = sorted(v for v in set(old) & set(new) if old[v] != new[v])
        added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        if changed or added or removed:
            parts = [f"changed {', '.join(changed)}" if changed else "",
                     f"new {', '.join(added)}" if added else "", f"removed {', '.join(removed)}" if removed else ""]
            lines.append(f"{name}: " + "; ".join(p for p in parts if p))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored digests")
    parser.add_argument("--write", action="store_true", help="store the current digests")
    args = parser.parse_args(argv)
    digests = compute()
    for name, per_variable in digests.items():
        combined = hashlib.sha256(json.dumps(per_variable, sort_keys=True).encode()).hexdigest()[:16]
        print(f"{combined}  {name}")
    if args.write:
        STORED.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    if args.check:
        lines = compare(json.loads(STORED.read_text()), digests)
        for line in lines:
            print(line)
        # a new variable alone leaves the numbers as they were
        moved = [line for line in lines if "changed" in line or "removed" in line]
        print("all digests unchanged" if not lines else f"{len(moved)} workload(s) with changed numbers, "
              f"{len(lines) - len(moved)} with new variables only")
        return 1 if moved else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
