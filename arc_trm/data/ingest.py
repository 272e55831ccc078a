"""``arc-trm ingest``: task specs → a dataset directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from arc_trm.data.dataset import ArcDataset
from arc_trm.data.synthetic import make_tasks
from arc_trm.data.tasks import load_specs, report_error
from arc_trm.errors import ArcTrmError


def build_dataset(tasks: list[str], test_tasks: list[str], augmentations: int, seed: int,
                  synthetic_tasks: int = 0, synthetic_test_tasks: int = 0,
                  on_error: Callable = report_error, canvas: int = 30,
                  synthetic_families: list[str] | None = None) -> ArcDataset:
    train = load_specs(tasks, on_error)
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
               "synthetic_test_tasks": synthetic_test_tasks, "synthetic_families": synthetic_families or []}
    return ArcDataset.build(train, test, augmentations, seed, sources=sources, canvas=canvas, on_error=on_error)


def ingest(tasks: list[str], test_tasks: list[str], out: Path, augmentations: int = 1000, seed: int = 0,
           synthetic_tasks: int = 0, synthetic_test_tasks: int = 0,
           on_error: Callable = report_error, canvas: int = 30,
           synthetic_families: list[str] | None = None) -> ArcDataset:
    ds = build_dataset(tasks, test_tasks, augmentations, seed, synthetic_tasks, synthetic_test_tasks, on_error, canvas,
                       synthetic_families)
    ds.save(Path(out))
    return ds
