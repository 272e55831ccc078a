"""``arc-trm predict``: checkpoint + tasks → ``submission.json``, for tasks never seen in training.

One pass, in an order that leaves a valid, complete file whatever happens after step 3, and never
makes an earlier ``--out`` worse:
1. check the paths the user named (output, solutions) before any slow work;
2. load the checkpoint with the overrides applied before the model is built;
3. load the tasks (answers only for scoring); where ``--out`` holds no valid submission yet, write
   a fallback one (every test input answered with itself; malformed tasks too, from what the
   loader kept of them);
4. plan the augmented copies (a task the checkpoint trained on keeps its own copies and their
   rows; unseen tasks get ``ttt.augmentations`` new copies whose rows start at the mean of the
   trained rows) and test-time train the unseen tasks;
5. predict every view, invert, vote, and rewrite the submission; score it when answers exist.
An entry this run can only answer by fallback (time budget, canvas, a failure) keeps the earlier
file's answer. SIGINT/SIGTERM write what the run has on the same rule, then stop (exit 130/143).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator

from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.tasks import LoadReport, answers_of, load_spec, read_solutions
from arc_trm.errors import ArcTrmError, Interrupted
from arc_trm.infer.candidates import candidate_lists, matching, write_candidates
from arc_trm.infer.evaluate import evaluate
from arc_trm.infer.runner import make_accelerator, make_runner
from arc_trm.infer.score import Score, score_submission
from arc_trm.infer.submission import expected_entries, fallback_for, keep_previous, previous_submission, write
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


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM (SIGINT raises KeyboardInterrupt)."""


@contextmanager
def _sigterm_raises():
    def handle(signum, frame):
        raise _Stop()
    try:
        old = signal.signal(signal.SIGTERM, handle)
    except ValueError:      # not the main thread: leave signals to the caller
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def predict(ckpt: Path, tasks: str, out: Path, overrides: list[str] | None = None,
            time_budget_s: float | None = None, accelerator: Accelerator | None = None,
            solutions: Path | None = None, on_error=None, progress: bool = True,
            fields: dict | None = None, candidates: Path | None = None) -> PredictResult:
    """``overrides``: ``--set`` texts; ``fields``: settings by dotted name with Python values
    (``{"ttt.mode": "off"}``); both apply to the checkpoint's config before its model is built."""
    t_start = time.time()
    timings: dict = {}
    out = Path(out)
    check_output_path(out)
    if candidates is not None:
        check_output_path(Path(candidates))
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
    previous = previous_submission(out) if main else None
    if main and previous is None:
        write(out, sub, expected)
    timings["fallback_written_s"] = time.time() - t_start
    state = {"sub": sub, "fallback": {(tid, k) for tid, n in expected.items() for k in range(n)}}

    def finish() -> tuple[dict, int]:
        """Write this run's answers, the earlier file's for entries this run answered by fallback."""
        final, kept = keep_previous(state["sub"], state["fallback"], previous)
        if main:
            write(out, final, expected)
        return final, kept

    def run() -> PredictResult:
        sub = state["sub"]
        budget = time_budget_s if time_budget_s is not None else cfg.predict.time_budget_s
        deadline = t_start + budget if budget and budget > 0 else None

        fits = [t for t in report.tasks if max(max(g.shape) for g in t.plan_grids()) <= ck.canvas]
        warnings = []
        too_big = len(report.tasks) - len(fits)
        if too_big:
            warnings.append(f"{too_big} of {len(report.tasks)} tasks have grids larger than the checkpoint's "
                            f"{ck.canvas}x{ck.canvas} canvas and get fallback answers (train with a larger "
                            "--canvas to predict them)")
        fit_ids = {t.task_id for t in fits}
        metrics: dict = {}
        lists: dict = {}
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
                if on_error is not None:
                    on_error(e)
            sub.update(ev.submission)
            # every entry that is still a fallback: tasks the canvas cannot hold, failed ones, and inputs
            # that no view finished for before the deadline
            state["fallback"] = {(tid, k) for tid, k in state["fallback"] if tid not in fit_ids} | ev.unanswered
            metrics = ev.metrics
            if candidates is not None:
                lists = candidate_lists(fits, ev.candidates, cfg.predict.strategy, cfg.predict.candidates)
        sub, kept = finish()
        if candidates is not None and main:
            write_candidates(Path(candidates), matching(lists, sub),
                             {"checkpoint": str(ck.folder), "strategy": cfg.predict.strategy,
                              "views_per_input": cfg.predict.views_per_input or cfg.ttt.augmentations,
                              "recursion": cfg.model.recursion})
        if kept:
            warnings.append(f"{kept} entries this run could answer only by fallback keep the earlier {out.name}'s answers")
        timings["total_s"] = time.time() - t_start
        answers = scoring_answers if scoring_answers is not None else answers_of(tasks, report.tasks)
        score = score_submission(sub, answers) if answers else None
        fallback_tasks = sorted({tid for tid, _ in state["fallback"]})
        return PredictResult(sub, out, score, metrics, timings, skipped, warnings, fallback_tasks)

    try:
        with _sigterm_raises():
            return run()
    except (KeyboardInterrupt, _Stop) as e:
        signum = signal.SIGINT if isinstance(e, KeyboardInterrupt) else signal.SIGTERM
        final, kept = finish()
        n_fallback = len({tid for tid, _ in state["fallback"]})
        raise Interrupted(signum, f"stopped by {signal.Signals(signum).name}: wrote {out} ({len(final)} tasks: "
                                  f"{len(final) - n_fallback} answered by this run, {kept} entries kept from the "
                                  f"earlier file, the rest fallback)") from None
