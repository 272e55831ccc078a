"""Ingest ARC-AGI-1 (or -2) training+evaluation (evaluation as test tasks) plus ConceptARC at
1000 augmentations; print one JSON line with wall seconds, peak RSS and bytes written.

    python benchmarks/ingest.py [--arc 1|2] [--augmentations 1000] [--cpu-smoke]

``--cpu-smoke``: 8 augmentations (the test suite's quick path).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from arc_trm.data.ingest import ingest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arc", choices=["1", "2"], default="1")
    ap.add_argument("--augmentations", type=int, default=1000)
    ap.add_argument("--cpu-smoke", action="store_true", help="8 augmentations")
    args = ap.parse_args()
    if args.cpu_smoke:
        args.augmentations = 8
    tasks = [f"arc{args.arc}-train", "conceptarc"]          # ConceptARC is bundled
    out = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    ds = ingest(tasks, [f"arc{args.arc}-eval"], out / "ds", args.augmentations, seed=0, on_error=lambda e: None)
    wall = time.perf_counter() - t0
    written = sum(f.stat().st_size for f in (out / "ds").iterdir())
    shutil.rmtree(out)
    print(json.dumps({
        "benchmark": "ingest", "arc": f"ARC-AGI-{args.arc}", "conceptarc": True,
        "augmentations": args.augmentations, "tasks": ds.manifest["num_tasks"],
        "puzzle_ids": ds.manifest["num_puzzle_ids"], "wall_s": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "written_mb": round(written / 2**20, 1),
        "reference_trm_builder": {"wall_s": 854, "peak_rss_mb": 15500},
    }))


if __name__ == "__main__":
    main()
