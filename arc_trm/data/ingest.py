"""``arc-trm ingest``: task specs → a dataset directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from arc_trm.data.dataset import ArcDataset
from arc_trm.data.overlap import Prints, find_overlap
from arc_trm.data.pools import PoolCut
from arc_trm.data.synthetic import make_tasks
from arc_trm.atomic import check_owned
from arc_trm.data.tasks import load_specs, report_error, spec_places
from arc_trm.errors import ArcTrmError
from arc_trm.paths import check_io, place


def report_warning(text: str) -> None:
    print(f"arc-trm: warning: {text}", file=sys.stderr)


def build_dataset(tasks: list[str], test_tasks: list[str], augmentations: int, seed: int,
                  synthetic_tasks: int = 0, synthetic_test_tasks: int = 0,
                  on_error: Callable = report_error, canvas: int = 30,
                  synthetic_families: list[str] | None = None, pool_pairs: int = 8,
                  pool_puzzles: int = 0, exclude_overlap: list[str] | None = None,
                  on_warning: Callable[[str], None] | None = report_warning) -> ArcDataset:
    """Example pools among ``tasks`` become puzzles (``pool_pairs``, ``pool_puzzles``); among
    ``test_tasks`` they are refused: a pool has nothing to predict.

    Training and test tasks are compared by content (:mod:`arc_trm.data.overlap`): a test task's answer,
    test input or demonstrations held by a training task is a warning; training tasks that hold
    anything of the tasks of ``exclude_overlap`` (specs) are dropped, and the line says how many."""
    warn = on_warning or (lambda text: None)
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
    excluded = 0
    if exclude_overlap:
        against = load_specs(exclude_overlap, on_error)
        ov = find_overlap(Prints.of(train), against)
        drop = set().union(*ov.answers.values(), *ov.inputs.values(), *ov.pairs.values())
        train = [t for t in train if t.task_id not in drop]
        excluded = len(drop)
        warn(f"--exclude-overlap: left out {excluded} training task(s) that hold test pairs, test inputs or "
             f"demonstrations of {', '.join(exclude_overlap)} ({len(ov.answers)} answers, {len(ov.inputs)} test "
             f"inputs without their answers, {len(ov.pairs)} tasks' demonstrations)")
    test_ids = {t.task_id for t in test}
    replaced = [t.task_id for t in train if t.task_id in test_ids]
    if replaced:
        warn(f"{len(replaced)} training task(s) share an id with a test task ({', '.join(replaced[:5])}"
             f"{', ...' if len(replaced) > 5 else ''}); the test task's version is used (its demonstrations "
             "are trained, its test inputs held out)")
    for w in find_overlap(Prints.of([t for t in train if t.task_id not in test_ids]), test).warnings("the training tasks"):
        warn(w)
    sources = {"tasks": tasks, "test_tasks": test_tasks, "synthetic_tasks": synthetic_tasks,
               "synthetic_test_tasks": synthetic_test_tasks, "synthetic_families": synthetic_families or [],
               "pool_pairs": pool_pairs, "pool_puzzles": pool_puzzles,
               "pools": len({t.pool for t in train if t.pool is not None}),
               "pool_puzzles_made": sum(t.pool is not None for t in train),
               "exclude_overlap": list(exclude_overlap or []), "overlap_excluded": excluded}
    return ArcDataset.build(train, test, augmentations, seed, sources=sources, canvas=canvas, on_error=on_error)


def ingest(tasks: list[str], test_tasks: list[str], out: Path, augmentations: int = 1000, seed: int = 0,
           synthetic_tasks: int = 0, synthetic_test_tasks: int = 0,
           on_error: Callable = report_error, canvas: int = 30,
           synthetic_families: list[str] | None = None, pool_pairs: int = 8, pool_puzzles: int = 0,
           exclude_overlap: list[str] | None = None, on_warning: Callable[[str], None] | None = report_warning
           ) -> ArcDataset:
    """Build and write a dataset folder; ``out`` is checked before any work: it is none of the inputs
    and holds none of them, and it is new, empty or a dataset folder arc-trm wrote."""
    inputs = [p for spec in tasks for p in spec_places("--tasks", spec)]
    inputs += [p for spec in test_tasks for p in spec_places("--test-tasks", spec)]
    check_io(inputs, [place("--out", out)])
    check_owned(out, "dataset")
    ds = build_dataset(tasks, test_tasks, augmentations, seed, synthetic_tasks, synthetic_test_tasks, on_error, canvas,
                       synthetic_families, pool_pairs, pool_puzzles, exclude_overlap, on_warning)
    ds.save(Path(out))
    return ds
