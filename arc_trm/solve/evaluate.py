"""Predict every test input of a dataset and turn the views into a submission and scores.
Used by in-training evaluation and by ``arc-trm predict``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.tasks import Task
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.solve.inference import ViewPredictions, run_views
from arc_trm.solve.score import pass_at_k
from arc_trm.solve.submission import fallback_entry
from arc_trm.solve.vote import choose_attempts, collect


@dataclass
class Evaluation:
    submission: dict
    metrics: dict[str, float]
    ranked: dict
    predictions: ViewPredictions


def submission_from(tasks: list[Task], cands: dict, strategy: str, top_k: int = 2) -> tuple[dict, dict]:
    sub, ranked = {}, {}
    for t in tasks:
        entries = []
        for k, inp in enumerate(t.test_inputs):
            ic = cands.get((t.task_id, k))
            ranked[(t.task_id, k)] = [c.grid for c in ic.ranked(strategy)] if ic else []
            a = choose_attempts(ic, strategy, max(top_k, 2), inp)
            entries.append({"attempt_1": a[0].tolist(), "attempt_2": a[1].tolist()} if ic else fallback_entry(inp))
        sub[t.task_id] = entries
    return sub, ranked


def evaluate(accelerator, model, core: TRM, table: PuzzleEmbeddings, ds: ArcDataset, strategy: str = "vote",
             batch_size: int = 64, max_views: int = 0, deadline: float | None = None, seed: int = 0,
             desc: str = "eval") -> Evaluation:
    views = PredictionViews.of(ds, max_views or None, seed)
    preds = run_views(accelerator, model, core, table, ds, views, batch_size,
                      keep_logprobs=strategy != "vote", deadline=deadline, desc=desc)
    tasks = ds.test_tasks()
    cands = collect(ds, preds, score_logprobs=strategy != "vote") if accelerator.is_main_process else {}
    sub, ranked = submission_from(tasks, cands, strategy)
    answers = {(t.task_id, k): o for t in tasks for k, o in enumerate(t.test_outputs) if o is not None}
    metrics = pass_at_k(ranked, answers, ks=(1, 2, 5, 10)) if answers else {}
    metrics["views"] = int(preds.complete.sum())
    metrics["copy_input_pass@2"] = pass_at_k({key: [t.test_inputs[key[1]]] for t in tasks for key in
                                             [(t.task_id, k) for k in range(len(t.test_inputs))]}, answers,
                                            ks=(2,))["pass@2"] if answers else 0.0
    return Evaluation(sub, metrics, ranked, preds)
