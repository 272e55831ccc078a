"""``arc-trm predict``: checkpoint + tasks → ``submission.json``, for tasks never seen in training.

One pass, in an order that leaves a valid, complete file whatever happens after step 3:
1. check the paths the user named (output, solutions) before any slow work;
2. load the checkpoint with the overrides applied before the model is built;
3. load the tasks (answers only for scoring) and write a fallback submission (every test input
   answered with itself; malformed tasks too, from what the loader kept of them);
4. plan the augmented copies (a task the checkpoint trained on keeps its own copies and their
   rows; unseen tasks get ``ttt.augmentations`` new copies whose rows start at the mean of the
   trained rows) and test-time train the unseen tasks;
5. predict every view, invert, vote, and rewrite the submission; score it when answers exist.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator

from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.tasks import LoadReport, answers_of, load_spec, read_solutions
from arc_trm.errors import ArcTrmError
from arc_trm.infer.evaluate import evaluate
from arc_trm.infer.runner import make_accelerator, make_runner
from arc_trm.infer.score import Score, score_submission
from arc_trm.infer.submission import expected_entries, fallback_for, write
from arc_trm.model import checkpoint
from arc_trm.model.flops import view_flops
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.solve.ttt import test_time_train


# Inference is planned at this multiple of its FLOP estimate from the TTT rate (inference runs at
# a higher rate per FLOP than training, so this errs on the side of finishing).
INFERENCE_MARGIN = 1.5


@dataclass
class PredictResult:
    submission: dict
    path: Path
    score: Score | None
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fallback_tasks: list[str] = field(default_factory=list)   # answered by fallback only


def check_output_path(out: Path) -> None:
    """``--out`` must be a file path in an existing, writable folder (a folder that does not exist
    is more often a typo or a missing mount than a wish to create it)."""
    if out.is_dir():
        raise ArcTrmError("--out is a folder; give a file path such as submission.json", source=str(out))
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise ArcTrmError(f"the folder {parent} does not exist (create it first)", source=str(out))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ArcTrmError(f"cannot write here ({parent} is not a writable folder)", source=str(out))


def predict(ckpt: Path, tasks: str, out: Path, overrides: list[str] | None = None,
            time_budget_s: float | None = None, accelerator: Accelerator | None = None,
            solutions: Path | None = None, on_error=None, progress: bool = True,
            fields: dict | None = None) -> PredictResult:
    """``overrides``: ``--set`` texts; ``fields``: settings by dotted name with Python values
    (``{"ttt.mode": "off"}``); both apply to the checkpoint's config before its model is built."""
    t_start = time.time()
    timings: dict = {}
    out = Path(out)
    check_output_path(out)
    scoring_answers = read_solutions(solutions) if solutions is not None else None   # a typo fails now
    ck = checkpoint.load(ckpt, overrides, fields=fields)
    cfg = ck.cfg
    report: LoadReport = load_spec(tasks, solutions=False)
    skipped = [str(e) for e in report.errors]
    for e in report.errors:
        if on_error is not None:
            on_error(e)
    expected = expected_entries(report.tasks, report.failed)
    sub = fallback_for(report)
    acc = accelerator or make_accelerator(cfg)
    main = acc.is_main_process
    if main:
        write(out, sub, expected)
    timings["fallback_written_s"] = time.time() - t_start
    budget = time_budget_s if time_budget_s is not None else cfg.predict.time_budget_s
    deadline = t_start + budget if budget and budget > 0 else None

    fits = [t for t in report.tasks if max(max(g.shape) for g in t.plan_grids()) <= ck.canvas]
    warnings = []
    too_big = len(report.tasks) - len(fits)
    if too_big:
        warnings.append(f"{too_big} of {len(report.tasks)} tasks have grids larger than the checkpoint's "
                        f"{ck.canvas}x{ck.canvas} canvas and get fallback answers (train with a larger "
                        "--canvas to predict them)")
    fallback_tasks = sorted({t.task_id for t in report.tasks} - {t.task_id for t in fits} | set(report.failed))
    metrics: dict = {}
    if fits:
        seed = int(ck.manifest.get("seed", 0))
        ds = ArcDataset.build([], fits, cfg.ttt.augmentations, seed, canvas=ck.canvas, reuse_plans=ck.puzzles)
        rows, known = checkpoint.embedding_rows(ck, ds.table)
        table = PuzzleEmbeddings(rows.shape[0], rows.shape[1])
        table.weight = rows
        runner = make_runner(acc, ck.model, table, cfg)
        if main and progress:
            print(f"arc-trm predict: {len(fits)} tasks ({int((~known).sum())} unseen: TTT {cfg.ttt.mode}); "
                  f"{acc.device.type} x{acc.num_processes} process(es), precision {acc.mixed_precision}, "
                  f"{'compiled' if runner.compiled else 'eager'}"
                  + (f"; budget {budget:.0f}s" if deadline else ""), flush=True)
        t0 = time.time()
        views = PredictionViews.of(ds, cfg.predict.views_per_input or None, seed)
        per_view = view_flops(ck.model.cfg, ds.canvas)
        inputs = len(ds.test_rows())

        def reserve(flop_per_s: float, seconds_left: float) -> float:
            """Inference's share, from the rate TTT measured: all planned views with a margin, at
            least three rounds of one view per input, at most two thirds of what is left; plus 2 %
            (at most a minute) for voting and writing the file."""
            want = max(len(views) * per_view / flop_per_s * INFERENCE_MARGIN, 3 * inputs * per_view / flop_per_s)
            return min(want, seconds_left * 2 / 3) + min(60.0, 0.02 * seconds_left)
        if cfg.ttt.mode != "off":
            timings["ttt"] = test_time_train(runner, ds, ~known, cfg.ttt, seed, cfg.data.translation, deadline,
                                             reserve if deadline is not None else None, progress=progress)
            plan = timings["ttt"]
            if main and progress and "flop_per_s" in plan:
                rates = ", ".join(f"{k} {v:.3f} s/step" for k, v in plan["seconds_per_step"].items())
                print(f"arc-trm predict: plan from measured rates ({rates}, {plan['flop_per_s'] / 1e12:.3f} TFLOP/s): "
                      f"TTT until {plan['reserve_s']:.1f}s before the deadline, then {len(views)} views "
                      f"({inputs} inputs) estimated at {len(views) * per_view / plan['flop_per_s']:.0f}s", flush=True)
        timings["ttt_s"] = time.time() - t0
        t0 = time.time()
        ev = evaluate(runner, ds, fits, views=views, deadline=deadline, desc="predict", progress=progress)
        timings["inference_s"] = time.time() - t0
        timings["views_per_s"] = ev.metrics["views"] / max(timings["inference_s"], 1e-9)
        for e in ev.failures:
            skipped.append(str(e))
            fallback_tasks.append(e.task_id)
            if on_error is not None:
                on_error(e)
        sub.update(ev.submission)
        metrics = ev.metrics
        if main:
            write(out, sub, expected)
    timings["total_s"] = time.time() - t_start
    answers = scoring_answers if scoring_answers is not None else answers_of(tasks, report.tasks)
    score = score_submission(sub, answers) if answers else None
    return PredictResult(sub, out, score, metrics, timings, skipped, warnings, sorted(set(fallback_tasks)))
