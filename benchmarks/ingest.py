"""Ingest ARC-AGI-1 (or -2) training+evaluation (evaluation as test tasks) plus ConceptARC at
1000 augmentations, or example pools at RE-ARC's scale; print one JSON line with wall seconds,
peak RSS and bytes written.

    python benchmarks/ingest.py [--arc 1|2] [--augmentations 1000] [--cpu-smoke]
    python benchmarks/ingest.py --pools 400x1000 --augmentations 8     # RE-ARC's shape, generated
    python benchmarks/ingest.py --pools-dir re_arc/tasks --augmentations 8   # your RE-ARC copy

``--pools PxN`` writes P generated pools of N pairs each (grids up to 30x30, in a child process,
so the peak RSS is ingest's alone) and ingests them into puzzles of ``--pool-pairs`` pairs.
``--cpu-smoke``: 8 augmentations, and pools of 4x40 when ``--pools`` is given (the test suite's
quick path).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from arc_trm.data.ingest import ingest

GENERATE = ("import sys; from arc_trm.data.synthetic import write_pool_folder; "
            "write_pool_folder(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), seed=0, max_side=30)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arc", choices=["1", "2"], default="1")
    ap.add_argument("--augmentations", type=int, default=1000)
    ap.add_argument("--pools", metavar="PxN", help="generated example pools: P pools of N pairs")
    ap.add_argument("--pools-dir", metavar="DIR", help="a folder of example pools (e.g. RE-ARC's re_arc/tasks)")
    ap.add_argument("--pool-pairs", type=int, default=8)
    ap.add_argument("--cpu-smoke", action="store_true", help="8 augmentations (pools: 4x40)")
    args = ap.parse_args()
    if args.cpu_smoke:
        args.augmentations = 8
        args.pools = "4x40" if args.pools else None
    out = Path(tempfile.mkdtemp())
    record: dict = {"benchmark": "ingest"}
    if args.pools or args.pools_dir:
        folder = Path(args.pools_dir) if args.pools_dir else out / "pools"
        if args.pools:
            n_pools, n_pairs = (int(x) for x in args.pools.lower().split("x"))
            subprocess.run([sys.executable, "-c", GENERATE, str(folder), str(n_pools), str(n_pairs)], check=True)
            record.update(pools=n_pools, pairs_per_pool=n_pairs, generated=True)
        record["pool_json_mb"] = round(sum(f.stat().st_size for f in folder.glob("*.json")) / 2**20, 1)
        tasks, test_tasks = [str(folder)], []
    else:
        tasks, test_tasks = [f"arc{args.arc}-train", "conceptarc"], [f"arc{args.arc}-eval"]   # ConceptARC is bundled
        record.update(arc=f"ARC-AGI-{args.arc}", conceptarc=True)
    t0 = time.perf_counter()
    ds = ingest(tasks, test_tasks, out / "ds", args.augmentations, seed=0, on_error=lambda e: None,
                pool_pairs=args.pool_pairs)
    wall = time.perf_counter() - t0
    written = sum(f.stat().st_size for f in (out / "ds").iterdir())
    shutil.rmtree(out)
    record.update({
        "augmentations": args.augmentations, "tasks": ds.manifest["num_tasks"],
        "puzzle_ids": ds.manifest["num_puzzle_ids"], "wall_s": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "written_mb": round(written / 2**20, 1),
        "table_gb_at_512_float32": round(ds.manifest["num_puzzle_ids"] * 512 * 4 / 1e9, 3),
    })
    if args.pools or args.pools_dir:
        record["pool_pairs"] = args.pool_pairs
    else:
        record["reference_trm_builder"] = {"wall_s": 854, "peak_rss_mb": 15500}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
