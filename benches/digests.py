"""Digests of the numbers the engine produces for every shipped scenario and bench workload.

A change that should leave results unchanged (a refactoring, a speed-up) must leave every digest
unchanged; a change that moves numbers on purpose says which digests moved and why.

    .venv/bin/python -m benches.digests                # print the digests
    .venv/bin/python -m benches.digests --check        # compare with benches/digests.json (exit 1 on a change)
    .venv/bin/python -m benches.digests --write        # store the current digests

Each run uses 30,000 paths, the scenario's seed and 2 threads (threads never change the numbers).
The digest covers every data variable of the results dataset (values and shapes), not the
attributes (which hold the creation time).
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


def dataset_digest(ds) -> str:
    h = hashlib.sha256()
    for name in sorted(ds.data_vars):
        values = np.ascontiguousarray(np.asarray(ds[name].values, dtype=np.float64))
        h.update(name.encode())
        h.update(str(values.shape).encode())
        h.update(values.tobytes())
    return h.hexdigest()[:16]


def workloads():
    from benches.bench import load, workload

    yield "bench:lognormal_20x10", load(workload("lognormal"))
    yield "bench:correlated_20x10", load(workload("lognormal", correlated=True))
    yield "bench:ar1_20x10", load(workload("ar1"))
    import targetsim

    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        yield f"scenario:{path.name}", targetsim.load_scenario(path)


def compute() -> dict[str, str]:
    import targetsim

    return {name: dataset_digest(targetsim.run(scenario, paths=PATHS, threads=2))
            for name, scenario in workloads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored digests")
    parser.add_argument("--write", action="store_true", help="store the current digests")
    args = parser.parse_args(argv)
    digests = compute()
    for name, digest in digests.items():
        print(f"{digest}  {name}")
    if args.write:
        STORED.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    if args.check:
        stored = json.loads(STORED.read_text())
        changed = sorted(k for k in set(stored) | set(digests) if stored.get(k) != digests.get(k))
        for name in changed:
            print(f"changed: {name}: {stored.get(name)} -> {digests.get(name)}")
        print("all digests unchanged" if not changed else f"{len(changed)} digest(s) changed")
        return 1 if changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
