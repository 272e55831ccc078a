"""``arc-trm predict``: checkpoint + tasks → ``submission.json``, for tasks never seen in training.

Order of work, so that a crash or time-out at any point still leaves a valid, complete file:
1. write a fallback submission (every test input answered with itself);
2. test-time train the unseen tasks (known tasks reuse their trained embedding rows);
3. predict every view, invert, vote, and rewrite the submission.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import torch
from accelerate import Accelerator

from arc_trm.config import RunConfig, apply_overrides
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.tasks import LoadReport, Task, load_spec, solutions_path_for
from arc_trm.errors import ArcTrmError
from arc_trm.solve.evaluate import evaluate
from arc_trm.solve.score import score_submission
from arc_trm.solve.submission import fallback_submission, write_atomic
from arc_trm.solve.ttt import test_time_train
from arc_trm.train import checkpoint as ckpt_io
from arc_trm.train.loop import default_mixed_precision


@dataclass
class PredictResult:
    submission: dict
    path: Path
    score: float | None
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _test_count(task) -> int:
    return len(task["test"]) if isinstance(task, dict) and isinstance(task.get("test"), list) and task["test"] else 1


def _bad_task_entries(spec: str, good: set[str]) -> dict:
    """For tasks that failed validation, still emit ``[[0]]`` attempts for each test entry we can
    count (one when the file cannot even be read), so the submission covers every task of a
    challenges file, a task file or a task folder."""
    path = Path(spec)

    def read(p: Path):
        try:
            return orjson.loads(p.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
    raw: dict = {}
    if path.is_dir():
        raw = {f.stem: read(f) for f in sorted(path.rglob("*.json")) if not f.name.startswith(".")}
    elif path.is_file():
        data = read(path)
        if isinstance(data, dict) and "train" in data and "test" in data:
            raw = {path.stem: data}
        elif isinstance(data, dict):
            raw = data
    return {task_id: [{"attempt_1": [[0]], "attempt_2": [[0]]} for _ in range(_test_count(task))]
            for task_id, task in raw.items() if task_id not in good}


def copy_known_embeddings(ck, ds: ArcDataset, known: np.ndarray) -> None:
    """Rows of tasks the checkpoint already knows: the trained row of the same plan when it
    exists, else the mean of that task's trained rows."""
    src = ck.puzzles
    index = {tid: t for t, tid in enumerate(src.task_ids)}
    w = ck.table.weight
    for t in np.flatnonzero(known):
        st = index[ds.table.task_ids[t]]
        rows = np.arange(src.task_start[st], src.task_start[st + 1])
        keys = {(int(src.plan_dihedral[r]), src.plan_perm[r].tobytes()): r + src.base for r in rows}
        mean = w[torch.as_tensor(rows + src.base)].mean(0)
        for r in range(ds.table.task_start[t], ds.table.task_start[t + 1]):
            key = (int(ds.table.plan_dihedral[r]), ds.table.plan_perm[r].tobytes())
            w[r + ds.table.base] = w[keys[key]] if key in keys else mean


def predict(checkpoint: Path, tasks: str, out: Path, overrides: list[str] | None = None,
            time_budget_s: float | None = None, accelerator: Accelerator | None = None,
            solutions: Path | None = None, on_error=None) -> PredictResult:
    t_start = time.time()
    timings = {}
    ck = ckpt_io.load(checkpoint)
    cfg: RunConfig = ck.cfg
    apply_overrides(cfg, overrides or [])
    budget = time_budget_s if time_budget_s is not None else cfg.predict.time_budget_s
    deadline = t_start + budget if budget and budget > 0 else None
    acc = accelerator or Accelerator(mixed_precision=default_mixed_precision(cfg.train.mixed_precision))
    errors = []
    report: LoadReport = load_spec(tasks)
    for e in report.errors:
        errors.append(str(e))
        if on_error is not None:
            on_error(e)
    task_list: list[Task] = report.tasks
    extra = _bad_task_entries(tasks, {t.task_id for t in task_list})
    out = Path(out)
    sub = {**fallback_submission(task_list), **extra}
    if acc.is_main_process:
        write_atomic(out, sub)
    timings["fallback_written_s"] = time.time() - t_start
    canvas = int(ck.manifest.get("canvas", 30))
    fits = [t for t in task_list if max(max(g.shape) for g in t.plan_grids()) <= canvas]
    if not fits:
        return PredictResult(sub, out, None, {}, timings, errors)

    # One dataset for all tasks to predict: their plans get IDs after the checkpoint's table.
    seed = int(ck.manifest.get("seed", 0))
    core, table = ck.model.to(acc.device), ck.table
    ds = ArcDataset.build([], fits, cfg.ttt.augmentations, seed, id_base=table.num_ids, canvas=canvas)
    table.extend(ds.table.num_plans, init="mean")
    known_ids = set(ck.puzzles.task_ids)
    known = np.array([tid in known_ids for tid in ds.table.task_ids])
    copy_known_embeddings(ck, ds, known)

    t0 = time.time()
    if cfg.ttt.mode != "off":
        ttt_deadline = None
        if deadline is not None:  # keep at least a third of what is left for inference
            ttt_deadline = t0 + (deadline - t0) * 2 / 3
        timings["ttt_steps"] = test_time_train(acc, core, table, ds, ~known, cfg.ttt, seed, ttt_deadline)
    timings["ttt_s"] = time.time() - t0

    t0 = time.time()
    core.eval()
    ev = evaluate(acc, core, core, table, ds, strategy=cfg.predict.strategy, batch_size=cfg.predict.batch_size,
                  max_views=cfg.predict.views_per_input, deadline=deadline, seed=seed, desc="predict",
                  halt_early=cfg.predict.halt_early)
    timings["inference_s"] = time.time() - t0
    for e in ev.failures:
        errors.append(str(e))
        if on_error is not None:
            on_error(e)
    sub.update(ev.submission)
    if acc.is_main_process:
        write_atomic(out, sub)
    timings["total_s"] = time.time() - t_start
    score = None
    sols = _solutions(tasks, solutions, task_list)
    if sols:
        score = score_submission(sub, sols).score
    return PredictResult(sub, out, score, ev.metrics, timings, errors)


def _solutions(spec: str, solutions: Path | None, tasks: list[Task]) -> dict | None:
    if solutions is not None:
        try:
            return orjson.loads(Path(solutions).read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise ArcTrmError(f"cannot read solutions ({e})", source=str(solutions)) from None
    if all(o is not None for t in tasks for o in t.test_outputs) and tasks:
        return {t.task_id: [o.tolist() for o in t.test_outputs] for t in tasks}
    p = Path(spec)
    sp = solutions_path_for(p) if p.is_file() else None
    return orjson.loads(sp.read_bytes()) if sp else None
