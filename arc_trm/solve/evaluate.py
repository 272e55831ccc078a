"""Predict every test input of a dataset and turn the views into a submission and scores.
Used by in-training evaluation and by ``arc-trm predict``."""

from __future__ import annotations

from dataclasses import dataclass

from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.tasks import Task
from arc_trm.errors import TaskError
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
    failures: list[TaskError]


def submission_from(tasks: list[Task], cands: dict, strategy: str,
                    failures: list[TaskError] | None = None) -> tuple[dict, dict]:
    """Two attempts per test input. A task whose selection raises keeps its fallback entries
    (and lands in ``failures``); the other tasks are unaffected."""
    sub, ranked = {}, {}
    for t in tasks:
        try:
            entries, task_ranked = [], {}
            for k, inp in enumerate(t.test_inputs):
                ic = cands.get((t.task_id, k))
                grids = [c.grid for c in ic.ranked(strategy)] if ic else []
                task_ranked[(t.task_id, k)] = grids
                a = choose_attempts(grids, 2, inp)
                entries.append({"attempt_1": a[0].tolist(), "attempt_2": a[1].tolist()} if ic else fallback_entry(inp))
        except Exception as e:  # one task's failure must not cost the others their answers
            if failures is not None:
                failures.append(TaskError(f"choosing attempts failed ({e!r}); fallback attempts used",
                                          task_id=t.task_id))
            entries = [fallback_entry(inp) for inp in t.test_inputs]
            task_ranked = {(t.task_id, k): [] for k in range(len(t.test_inputs))}
        sub[t.task_id] = entries
        ranked.update(task_ranked)
    return sub, ranked


def evaluate(accelerator, model, core: TRM, table: PuzzleEmbeddings, ds: ArcDataset, strategy: str = "vote",
             batch_size: int = 64, max_views: int = 0, deadline: float | None = None, seed: int = 0,
             desc: str = "eval", halt_early: bool = False) -> Evaluation:
    views = PredictionViews.of(ds, max_views or None, seed)
    preds = run_views(accelerator, model, core, table, ds, views, batch_size,
                      keep_logprobs=strategy != "vote", deadline=deadline, desc=desc,
                      halt_early=halt_early)
    tasks = ds.test_tasks()
    cands = collect(ds, preds, score_logprobs=strategy != "vote") if accelerator.is_main_process else {}
    failures: list[TaskError] = []
    sub, ranked = submission_from(tasks, cands, strategy, failures)
    answers = {(t.task_id, k): o for t in tasks for k, o in enumerate(t.test_outputs) if o is not None}
    metrics = pass_at_k(ranked, answers, ks=(1, 2, 5, 10)) if answers else {}
    metrics["views"] = int(preds.complete.sum())
    copy_input = {(t.task_id, k): [inp] for t in tasks for k, inp in enumerate(t.test_inputs)}
    metrics["copy_input_pass@2"] = pass_at_k(copy_input, answers, ks=(2,))["pass@2"] if answers else 0.0
    return Evaluation(sub, metrics, ranked, preds, failures)
