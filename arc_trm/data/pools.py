"""Example pools: files holding a JSON list of ``{"input", "output"}`` pairs (RE-ARC's
``re_arc/tasks/<task_id>.json``, 1,000 generated pairs per ARC-AGI-1 training task; other
generators write the same shape). A pool is cut into ordinary training puzzles of ``pairs`` pairs
each, drawn without replacement in an order fixed by the seed and the pool's name, so the rest of
the pipeline (augmentation plans, puzzle IDs, batches) treats them like any task. Puzzle ``k`` of
pool ``name`` is the task ``name~k``; its last pair is its test pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from arc_trm.standalone.arc_format import grid_problem
from arc_trm.data.augment import task_rng
from arc_trm.errors import ArcTrmError, TaskError

# Why a pool cannot stand where tasks are predicted: it has no task to predict.
TRAINING_ONLY = ("is an example pool (a JSON list of input/output pairs): pools are training data; give it in "
                 "--tasks / data.tasks, not as tasks to predict or evaluate")


@dataclass(frozen=True)
class PoolCut:
    pairs: int = 8          # pairs per puzzle (the last one is its test pair)
    puzzles: int = 0        # at most this many puzzles per pool; 0: as many as the pool fills
    seed: int = 0

    def __post_init__(self):
        if self.pairs < 2:
            raise ArcTrmError(f"data.pool_pairs must be at least 2 (demonstrations and a test pair), got {self.pairs}")
        if self.puzzles < 0:
            raise ArcTrmError(f"data.pool_puzzles must be 0 (as many as a pool fills) or more, got {self.puzzles}")


def is_pool(raw: Any) -> bool:
    """A pool is a JSON list at the top of its file; a task or challenges file is an object."""
    return isinstance(raw, list)


def puzzle_id(pool: str, k: int) -> str:
    return f"{pool}~{k}"


def valid_pairs(raw: list, source: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[TaskError]]:
    """The pool's well-formed pairs, and one error per entry that is not a pair of grids (named by
    its index in the file; skipped)."""
    pairs, errors = [], []
    for k, entry in enumerate(raw):
        where = dict(source=source, pair=f"entry {k}")
        if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
            errors.append(TaskError("not an {\"input\", \"output\"} pair; skipped", **where))
            continue
        why = next(((side, p) for side in ("input", "output") if (p := grid_problem(entry[side]))), None)
        if why:
            errors.append(TaskError(f"{why[0]}: {why[1]}; skipped", **where))
            continue
        pairs.append((np.array(entry["input"], dtype=np.uint8), np.array(entry["output"], dtype=np.uint8)))
    return pairs, errors


def draws(pool: str, n_pairs: int, cut: PoolCut) -> list[np.ndarray]:
    """Indices of each puzzle's pairs: one permutation of the pool (fixed by the seed and the
    pool's name, not by which other pools are ingested), cut into consecutive runs."""
    n = n_pairs // cut.pairs
    if cut.puzzles:
        n = min(n, cut.puzzles)
    order = task_rng(cut.seed, pool).permutation(n_pairs)
    return [order[k * cut.pairs:(k + 1) * cut.pairs] for k in range(n)]
