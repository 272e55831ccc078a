"""``arc-trm ingest``: task specs → a dataset directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from arc_trm.data.dataset import ArcDataset
from arc_trm.data.pools import PoolCut
from arc_trm.data.synthetic import make_tasks
from arc_trm.data.tasks import load_specs, report_error
from arc_trm.errors import ArcTrmError


def build_dataset(tasks: list[str], test_tasks: list[str], augmentations: int, seed: int,
                  synthetic_tasks: int = 0, synthetic_test_tasks: int = 0,
                  on_error: Callable = report_error, canvas: int = 30,
                  synthetic_families: list[str] | None = None, pool_pairs: int = 8,
                  pool_puzzles: int = 0) -> ArcDataset:
    """Example pools among ``tasks`` become puzzles (``pool_pairs``, ``pool_puzzles``); among
    ``test_tasks`` they are refused: a pool has nothing to predict."""
    train = load_specs(tasks, on_error, cut=PoolCut(pool_pairs, pool_puzzles, seed))
    test = load_specs(test_tasks, on_error)
    if synthetic_tasks:
        train += make_tasks(synthetic_tasks, seed=seed, prefix="syntrain", max_side=min(8, canvas),
                            families=synthetic_families or None)
    if synthetic_test_tasks:
        test += make_tasks(synthetic_test_tasks, seed=seed + 1, prefix="syntest", max_side=min(8, canvas),
                           families=synthetic_families or None)
    if not train and not test:
        raise ArcTrmError("no usable tasks in " + ", ".join(tasks + test_tasks or ["(nothing given)"]))
    sources = {"tasks": tasks, "test_tasks": test_tasks, "synthetic_tasks": synthetic_tasks,
               "synthetic_test_tasks": synthetic_test_tasks, "synthetic_families": synthetic_families or [],
               "pool_pairs": pool_pairs, "pool_puzzles": pool_puzzles,
               "pools": len({t.pool for t in train if t.pool is not None}),
               "pool_puzzles_made": sum(t.pool is not None for t in train)}
    return ArcDataset.build(train, test, augmentations, seed, sources=sources, canvas=canvas, on_error=on_error)


def ingest(tasks: list[str], test_tasks: list[str], out: Path, augmentations: int = 1000, seed: int = 0,
           synthetic_tasks: int = 0, synthetic_test_tasks: int = 0,
           on_error: Callable = report_error, canvas: int = 30,
           synthetic_families: list[str] | None = None, pool_pairs: int = 8, pool_puzzles: int = 0) -> ArcDataset:
    ds = build_dataset(tasks, test_tasks, augmentations, seed, synthetic_tasks, synthetic_test_tasks, on_error, canvas,
                       synthetic_families, pool_pairs, pool_puzzles)
    ds.save(Path(out))
    return ds
