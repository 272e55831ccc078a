"""Predict every test input of a dataset and turn the views into a submission and scores.
Used by in-training evaluation and by ``arc-trm predict``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.tasks import Task
from arc_trm.errors import TaskError
from arc_trm.infer.inference import ViewPredictions, run_views
from arc_trm.infer.runner import Runner
from arc_trm.infer.interval import binomial_interval
from arc_trm.infer.score import pass_at_k, score_submission
from arc_trm.infer.selection import SELECTION
from arc_trm.infer.submission import submission_from
from arc_trm.infer.vote import add_views, grid_key, score_products


@dataclass
class Evaluation:
    submission: dict
    metrics: dict[str, float]
    ranked: dict
    predictions: ViewPredictions
    failures: list[TaskError]
    unanswered: set[tuple[str, int]]    # (task, input) answered by fallback: no view finished in time
    candidates: dict                    # (task, input) → InputCandidates, on the main process
    partial: set[tuple[str, int]]       # (task, input) voted on fewer views than planned (time, a stop)


def evaluate(runner: Runner, ds: ArcDataset, tasks: list[Task], max_views: int = 0,
             deadline: float | None = None, desc: str = "eval", progress: bool = True,
             views: PredictionViews | None = None, stop=None, candidates: dict | None = None,
             on_votes=None, bound_excludes_compile: bool = False) -> Evaluation:
    """``tasks``: the dataset's test tasks (``ds.test_tasks()``, or the tasks the caller loaded
    them from); their known answers give the metrics. ``views``: the views to predict, when the
    caller already chose them; else up to ``max_views`` per input. Strategy, batch size and early
    halting come from ``runner.cfg.predict``. ``deadline`` and ``stop`` end it early (see
    :func:`run_views`): the views are round-robin over the inputs, so each input is voted on with as
    many views as the time allowed. ``candidates``: the dict the votes are counted into as each batch
    finishes (the caller keeps them if it is stopped at once); ``on_votes()`` runs after each batch is
    counted, on the main process. ``bound_excludes_compile``: ``deadline`` bounds the views, and moves
    by the time spent compiling (an in-training evaluation's bound)."""
    p = runner.cfg.predict
    if views is None:
        views = PredictionViews.of(ds, max_views or None, int(ds.manifest.get("seed", 0)),
                                   runner.cfg.model.pixel_side(), p.pixel_draws)
    main = runner.acc.is_main_process
    cands: dict = candidates if candidates is not None else {}

    def count(preds, finished) -> None:
        add_views(cands, ds, preds, finished)
        if on_votes is not None:
            on_votes()
    preds = run_views(runner, ds, views, p.batch_size, keep_logprobs=p.strategy != "vote", deadline=deadline,
                      desc=desc, halt_early=p.halt_early, progress=progress, stop=stop,
                      on_batch=count if main else None, bound_excludes_compile=bound_excludes_compile)
    if main and p.strategy != "vote":
        score_products(cands, ds, preds)
    failures: list[TaskError] = []
    unanswered: set[tuple[str, int]] = set()
    sub, ranked, metrics = voted(tasks, cands, p.strategy, failures, unanswered)
    metrics["views"] = int(preds.complete.sum())
    metrics["views_planned"] = len(views)
    metrics["test_inputs"] = int(len(ds.test_rows()))
    metrics["inputs_voted"] = int(len(np.unique(views.rows[preds.complete])))
    n = int(ds.ex_task.shape[0])
    planned = np.bincount(views.rows, minlength=n)
    done = np.bincount(views.rows[preds.complete], minlength=n)
    partial = {(ds.table.task_ids[ds.ex_task[r]], int(ds.ex_index[r]))
               for r in np.flatnonzero((done > 0) & (done < planned))}
    metrics["inputs_partial"] = len(partial)
    return Evaluation(sub, metrics, ranked, preds, failures, unanswered if main else set(), cands, partial)


def single_view(cands: dict, answers: dict) -> float:
    """One view's answer without voting: per test input the share of its finished views whose answer is
    exact, averaged per task and over tasks (an input no view finished counts 0)."""
    tasks: dict[str, list[float]] = {}
    for key, ans in answers.items():
        ic = cands.get(key)
        right = ic.candidates.get(grid_key(np.asarray(ans))) if ic is not None else None
        tasks.setdefault(key[0], []).append(right.count / ic.views if right is not None and ic.views else 0.0)
    return float(np.mean([np.mean(v) for v in tasks.values()])) if tasks else 0.0


def voted(tasks: list[Task], cands: dict, strategy: str, failures: list[TaskError] | None = None,
          unanswered: set | None = None) -> tuple[dict, dict, dict[str, float]]:
    """The submission, ranked candidates and scores (where ``tasks`` hold answers: pass@k and copying
    the input's pass@2) of the votes counted in ``cands`` so far."""
    sub, ranked = submission_from(tasks, cands, strategy, failures, unanswered)
    answers = {(t.task_id, k): o for t in tasks for k, o in enumerate(t.test_outputs) if o is not None}
    metrics = pass_at_k(ranked, answers, ks=(1, 2, 5, 10)) if answers else {}
    if answers:
        metrics["single_view"] = single_view(cands, answers)
        copy_input = {(t.task_id, k): [inp] for t in tasks for k, inp in enumerate(t.test_inputs)}
        metrics["copy_input_pass@2"] = pass_at_k(copy_input, answers, ks=(2,))["pass@2"]
    return sub, ranked, metrics



def split_metrics(tasks: list[Task], cands: dict, strategy: str, chosen: set[str]) -> dict:
    """The votes in ``cands`` scored apart: the tasks not in ``chosen`` under plain names, with ``tasks``
    and pass@2's 95 % interval (``pass@2_lo``, ``pass@2_hi``); the ``chosen`` ones (the selection split
    training chooses best/ on) under names prefixed ``selection/``, so no reader takes them for a score."""
    out: dict = {}
    for prefix, part in (("", [t for t in tasks if t.task_id not in chosen]),
                         (SELECTION, [t for t in tasks if t.task_id in chosen])):
        if not part:
            continue
        sub, _, metrics = voted(part, cands, strategy)
        answers = {t.task_id: [o for o in t.test_outputs] for t in part if all(o is not None for o in t.test_outputs)}
        if answers:
            lo, hi = binomial_interval(score_submission(sub, answers).per_task.values())
            metrics.update({"pass@2_lo": lo, "pass@2_hi": hi})
        metrics["tasks"] = len(part)
        out.update({prefix + k: v for k, v in metrics.items()})
    return out
