"""The puzzle-ID table: one ID per augmented copy (task, dihedral, colour permutation).

ID 0 is the blank/padding ID. IDs ``base .. base + n_plans - 1`` name the plans in order, so a
table built from the same tasks and seed is identical on every rank and every run. Predicting
with a checkpoint builds a table of its own for the tasks at hand; tasks the checkpoint knows keep
its plans (``reuse``), and their rows are copied across (``model.checkpoint.embedding_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from arc_trm.data.augment import plan_augmentations, task_rng
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import read_json

BLANK_ID = 0


@dataclass
class PuzzleTable:
    task_ids: list[str]          # tasks in table order
    plan_task: np.ndarray        # (P,) int32 index into task_ids
    plan_dihedral: np.ndarray    # (P,) uint8
    plan_perm: np.ndarray        # (P, 10) uint8
    task_start: np.ndarray       # (T+1,) int64: plans of task t are rows task_start[t]:task_start[t+1]
    base: int = 1                # puzzle ID of plan row 0

    @classmethod
    def build(cls, tasks, n_aug: int, seed: int, base: int = 1, reuse: "PuzzleTable | None" = None) -> "PuzzleTable":
        """Plans for ``tasks``; a task that ``reuse`` (a trained checkpoint's table) knows keeps
        that table's plans, so its trained embedding rows apply to exactly its copies."""
        known = {tid: t for t, tid in enumerate(reuse.task_ids)} if reuse is not None else {}
        ds, perms, owners, starts = [], [], [], [0]
        for t, task in enumerate(tasks):
            if task.task_id in known:
                rows = slice(reuse.task_start[known[task.task_id]], reuse.task_start[known[task.task_id] + 1])
                d, p = reuse.plan_dihedral[rows], reuse.plan_perm[rows]
            else:
                d, p = plan_augmentations(task.plan_grids(), n_aug, task_rng(seed, task.task_id))
            ds.append(d)
            perms.append(p)
            owners.append(np.full(len(d), t, dtype=np.int32))
            starts.append(starts[-1] + len(d))
        cat = (lambda xs, shape, dt: np.concatenate(xs) if xs else np.zeros(shape, dt))
        return cls([t.task_id for t in tasks], cat(owners, (0,), np.int32), cat(ds, (0,), np.uint8),
                    cat(perms, (0, 10), np.uint8), np.array(starts, dtype=np.int64), base)

    @property
    def num_plans(self) -> int:
        return len(self.plan_task)

    @property
    def end(self) -> int:
        """One past the largest ID: the embedding table needs this many rows."""
        return self.base + self.num_plans

    def ids_of_task(self, t: int) -> np.ndarray:
        return np.arange(self.task_start[t], self.task_start[t + 1]) + self.base

    def plan_of(self, puzzle_id: int) -> tuple[str, int, np.ndarray]:
        row = puzzle_id - self.base
        if not 0 <= row < self.num_plans:
            raise KeyError(f"puzzle ID {puzzle_id} is not in this table ({self.base}..{self.end - 1})")
        return self.task_ids[self.plan_task[row]], int(self.plan_dihedral[row]), self.plan_perm[row]

    def name(self, puzzle_id: int) -> str:
        if puzzle_id == BLANK_ID:
            return "<blank>"
        task_id, d, perm = self.plan_of(puzzle_id)
        return f"{task_id}|t{d}|{''.join(map(str, perm))}"

    def save(self, folder: Path, prefix: str = "puzzle_") -> None:
        for key in ("plan_task", "plan_dihedral", "plan_perm", "task_start"):
            np.save(folder / f"{prefix}{key}.npy", getattr(self, key))
        (folder / f"{prefix}tasks.json").write_bytes(orjson.dumps({"base": self.base, "task_ids": self.task_ids}))

    @classmethod
    def load(cls, folder: Path, prefix: str = "puzzle_") -> "PuzzleTable":
        path = folder / f"{prefix}tasks.json"
        meta = read_json(path, "puzzle table", dict)
        ids, base = meta.get("task_ids"), meta.get("base")
        if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids) or type(base) is not int:
            raise ArcTrmError("puzzle table: needs task_ids (a list of names) and base (a whole number)",
                              source=str(path))
        arrays = {k: np.load(folder / f"{prefix}{k}.npy")
                  for k in ("plan_task", "plan_dihedral", "plan_perm", "task_start")}
        return cls(task_ids=meta["task_ids"], base=meta["base"], **arrays)

    def same_as(self, other: "PuzzleTable") -> bool:
        return (self.task_ids == other.task_ids and self.base == other.base
                and all(np.array_equal(getattr(self, k), getattr(other, k))
                        for k in ("plan_task", "plan_dihedral", "plan_perm", "task_start")))
