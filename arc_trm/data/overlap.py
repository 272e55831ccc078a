"""Training and evaluation tasks compared by content: every pair and every test input as grids, never by
file name or task id. ARC's sets overlap in ways an id comparison misses: 376 of ARC-AGI-2's training
tasks hold an ARC-AGI-1 evaluation task's test pair (input and answer) among their pairs, none of them
equal to it as a whole, so a model trained on ``arc2-train`` and scored on ``arc1-eval`` has seen 376 of
the answers it is scored on.

A grid's fingerprint is 8 bytes of BLAKE2b over its shape and cells; a pair's, over both grids'. A
checkpoint keeps the fingerprints of every pair it trained on (:func:`fingerprints`), so ``predict``
can check new tasks against it without the training data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from arc_trm.data.tasks import Task


def grid_print(g: np.ndarray) -> int:
    g = np.ascontiguousarray(g, dtype=np.uint8)
    h = hashlib.blake2b(bytes(g.shape) + g.tobytes(), digest_size=8)
    return int.from_bytes(h.digest(), "little", signed=True)


def pair_print(i: np.ndarray, o: np.ndarray) -> int:
    h = hashlib.blake2b(grid_print(i).to_bytes(8, "little", signed=True)
                        + grid_print(o).to_bytes(8, "little", signed=True), digest_size=8)
    return int.from_bytes(h.digest(), "little", signed=True)


def _training_pairs(t: Task) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every pair of a training task with a known answer: its demonstrations and its answered tests."""
    return list(t.train) + [(i, o) for i, o in zip(t.test_inputs, t.test_outputs) if o is not None]


@dataclass
class Prints:
    """Fingerprints of what a model trained on: each pair and each pair's input, with the task that held it."""

    pairs: dict[int, set[str]] = field(default_factory=dict)
    inputs: dict[int, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, tasks: list[Task]) -> "Prints":
        p = cls()
        for t in tasks:
            for i, o in _training_pairs(t):
                p.pairs.setdefault(pair_print(i, o), set()).add(t.task_id)
                p.inputs.setdefault(grid_print(i), set()).add(t.task_id)
        return p

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """For a dataset or checkpoint folder (no pickle: two int64 tables and a list of names): rows of
        (print, task index) for the pairs and for the inputs, and the task ids."""
        ids = sorted({t for s in list(self.pairs.values()) + list(self.inputs.values()) for t in s})
        index = {t: k for k, t in enumerate(ids)}
        rows = [np.array([(h, index[t]) for h, ts in table.items() for t in sorted(ts)], dtype=np.int64).reshape(-1, 2)
                for table in (self.pairs, self.inputs)]
        return rows[0], rows[1], ids

    @classmethod
    def from_arrays(cls, pair_rows: np.ndarray, input_rows: np.ndarray, ids: list[str]) -> "Prints":
        p = cls()
        for table, rows in ((p.pairs, pair_rows), (p.inputs, input_rows)):
            for h, k in rows.tolist():
                table.setdefault(int(h), set()).add(ids[int(k)])
        return p


@dataclass
class Overlap:
    """Evaluated task id → the training task ids that hold, by content: one of its test pairs with the
    answer (``answers``), one of its test inputs without the answer (``inputs``), one of its
    demonstration pairs (``pairs``)."""

    answers: dict[str, set[str]] = field(default_factory=dict)
    inputs: dict[str, set[str]] = field(default_factory=dict)
    pairs: dict[str, set[str]] = field(default_factory=dict)

    def training_tasks_with_answers(self) -> set[str]:
        return {t for ts in self.answers.values() for t in ts}

    def warnings(self, trained: str = "the training data") -> list[str]:
        def shown(d: dict) -> str:
            ids = sorted(d)
            return ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        out = []
        if self.answers:
            trainers = self.training_tasks_with_answers()
            out.append(f"the answers of {len(self.answers)} evaluated task(s) are in {trained} ({shown(self.answers)}), "
                       f"held by {len(trainers)} training task(s) ({', '.join(sorted(trainers)[:5])}"
                       f"{', ...' if len(trainers) > 5 else ''}): answer seen in training; --exclude-overlap "
                       "drops those training tasks")
        if self.inputs:
            out.append(f"the test inputs of {len(self.inputs)} evaluated task(s) are inputs in {trained} without "
                       f"their answers ({shown(self.inputs)})")
        if self.pairs:
            out.append(f"{len(self.pairs)} evaluated task(s) share demonstration pairs with {trained} "
                       f"({shown(self.pairs)}): pairs shared")
        return out


def find_overlap(prints: Prints, evaluated: list[Task]) -> Overlap:
    """What of ``evaluated`` the training ``prints`` hold. A task's test pair (or input) anywhere in
    training counts, also under the task's own id (``arc2-train`` reuses ``arc1-eval``'s ids); its
    demonstrations count only in another task: the paper recipes train on the evaluated tasks' own
    demonstrations and predict their held-out test inputs."""
    ov = Overlap()
    for t in evaluated:
        for i, o in zip(t.test_inputs, t.test_outputs):
            if o is not None and (hit := prints.pairs.get(pair_print(i, o))):
                ov.answers.setdefault(t.task_id, set()).update(hit)
            elif hit := prints.inputs.get(grid_print(i)):
                ov.inputs.setdefault(t.task_id, set()).update(hit)
        for i, o in t.train:
            if hit := prints.pairs.get(pair_print(i, o), set()) - {t.task_id}:
                ov.pairs.setdefault(t.task_id, set()).update(hit)
    return ov


def duplicates(tasks: list[Task]) -> list[tuple[str, str, str]]:
    """Tasks of one set that repeat another's content: (first, second, "the same task" | "a test input")."""
    whole: dict[tuple, str] = {}
    tests: dict[int, str] = {}
    out = []
    for t in tasks:
        key = tuple(sorted(pair_print(i, o) for i, o in t.train)) + tuple(grid_print(i) for i in t.test_inputs)
        if key in whole:
            out.append((whole[key], t.task_id, "the same task"))
            continue
        whole[key] = t.task_id
        for i in t.test_inputs:
            h = grid_print(i)
            if h in tests and tests[h] != t.task_id:
                out.append((tests[h], t.task_id, "a test input"))
                break
            tests.setdefault(h, t.task_id)
    return out
