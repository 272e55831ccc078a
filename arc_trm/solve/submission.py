"""The Kaggle ``submission.json``: build, validate, write atomically, fill fallbacks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import orjson

from arc_trm.data.tasks import Task
from arc_trm.errors import ArcTrmError


def _grid_ok(g) -> bool:
    return (isinstance(g, list) and 1 <= len(g) <= 30 and all(isinstance(r, list) for r in g)
            and len({len(r) for r in g}) == 1 and 1 <= len(g[0]) <= 30
            and all(type(v) is int and 0 <= v <= 9 for r in g for v in r))


def validate(sub: dict, tasks: list[Task] | None = None) -> list[str]:
    """Problems with a submission (empty list = valid). With ``tasks``, also check that every
    task is present with one entry per test input."""
    problems = []
    if not isinstance(sub, dict):
        return ["submission must be a JSON object of task id → list of attempts"]
    for task_id, entries in sub.items():
        if not isinstance(entries, list) or not entries:
            problems.append(f"{task_id}: must be a non-empty list")
            continue
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or set(e) != {"attempt_1", "attempt_2"}:
                problems.append(f"{task_id}[{i}]: needs exactly attempt_1 and attempt_2")
                continue
            for a in ("attempt_1", "attempt_2"):
                if not _grid_ok(e[a]):
                    problems.append(f"{task_id}[{i}].{a}: not a rectangular grid of ints 0..9 up to 30x30")
    if tasks is not None:
        for t in tasks:
            if t.task_id not in sub:
                problems.append(f"{t.task_id}: missing")
            elif isinstance(sub[t.task_id], list) and len(sub[t.task_id]) != len(t.test_inputs):
                problems.append(f"{t.task_id}: {len(sub[t.task_id])} entries for {len(t.test_inputs)} test inputs")
    return problems


def fallback_entry(test_input: np.ndarray) -> dict:
    g = np.asarray(test_input).tolist()
    return {"attempt_1": g, "attempt_2": g}


def fallback_submission(tasks: list[Task]) -> dict:
    """Every test input answered with itself: valid, and what is left when all else fails."""
    return {t.task_id: [fallback_entry(i) for i in t.test_inputs] for t in tasks}


def write_atomic(path: Path, sub: dict, tasks: list[Task] | None = None) -> None:
    problems = validate(sub, tasks)
    if problems:
        raise ArcTrmError("refusing to write an invalid submission: " + "; ".join(problems[:5]), source=str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".submission.", suffix=".json")
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(sub))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(path: Path) -> dict:
    try:
        return orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise ArcTrmError(f"cannot read submission ({e})", source=str(path)) from None
