"""Wall time of `arc-trm package`'s wheel fetching: the shipped dependencies for every CPython it
packages for, from the package index or, with ``--wheelhouse DIR``, offline from a folder (as
`package --offline --wheelhouse` does). One JSON line.

    python benchmarks/package_wheels.py [--wheelhouse DIR] [--cpu-smoke]

``--cpu-smoke``: one CPython only (the test suite's quick path). Measured on 2026-12-01 offline
from a package's dataset folder: 12.5 s with one pip call per package and CPython (3ed6b91),
1.9 s with one call per CPython.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from arc_trm.kaggle.image import SHIPPED
from arc_trm.kaggle.wheels import PYTHONS, dependency_wheels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheelhouse", help="take the wheels from this folder only (offline)")
    ap.add_argument("--cpu-smoke", action="store_true", help="one CPython only")
    args = ap.parse_args()
    pythons = PYTHONS[-1:] if args.cpu_smoke else PYTHONS
    house = [Path(args.wheelhouse)] if args.wheelhouse else []
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        got = dependency_wheels(Path(d), SHIPPED, pythons, wheelhouse=house, offline=bool(house))
        wall = time.perf_counter() - t
        size = sum(w.stat().st_size for w in got.files)
    print(json.dumps({"benchmark": "package_wheels", "offline": bool(house), "pythons": list(pythons),
                      "packages": len(SHIPPED), "wheels": len(got.files), "substitutions": [s.line() for s in got.substitutions], "megabytes": round(size / 2**20, 2),
                      "wall_s": round(wall, 2)}))


if __name__ == "__main__":
    main()
