"""``arc-trm predict``: checkpoint + tasks → ``submission.json``, for tasks never seen in training.

One pass, in an order that leaves a valid, complete file whatever happens after step 3, and never
makes an earlier ``--out`` worse:
1. check the paths the user named (output, candidates, solutions) before any slow work: no output
   is an input or inside the checkpoint or a task folder, and the two outputs differ;
2. load the checkpoint with the overrides applied before the model is built;
3. load the tasks (answers only for scoring); where ``--out`` holds no valid submission yet, write
   a fallback one (every test input answered with itself; malformed tasks too, from what the
   loader kept of them);
4. plan the augmented copies (a task the checkpoint trained on keeps its own copies and their
   rows; unseen tasks get ``ttt.augmentations`` new copies whose rows start at the mean of the
   trained rows) and test-time train the unseen tasks;
5. predict the views round-robin over the test inputs, counting each batch's votes as it finishes,
   and rewrite the submission (with its candidates file, together); score it when answers exist.
Inference is anytime: the time budget, a machine that slows down part-way (each batch is timed and
one that would end past the deadline is not started) or a first SIGINT/SIGTERM end it between two
batches, and every input with a finished view is answered by the vote of its finished views. Only
inputs without one fall back, and such an entry keeps the earlier file's answer. A second signal
stops at once with what was voted so far. A signal exits 130/143.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from accelerate import Accelerator

from arc_trm import clock
from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.standalone.arc_format import json_bytes
from arc_trm.data.overlap import Overlap, find_overlap
from arc_trm.data.tasks import LoadReport, Task, answers_of, inputs_of, load_spec, read_solutions, spec_places
from arc_trm.errors import ArcTrmError, Interrupted
from arc_trm.jsonfile import read_json
from arc_trm.infer.candidates import belongs_to, candidate_lists, matching, write_with_candidates
from arc_trm.infer.evaluate import evaluate, voted
from arc_trm.infer.runner import make_accelerator, make_runner
from arc_trm.infer.score import Score, SplitScore, split_score
from arc_trm.infer.selection import ChosenOn, sidecar_path, write_sidecar
from arc_trm.infer.submission import (expected_entries, fallback_for, keep_previous, previous_submission,
                                      submission_from, write)
from arc_trm.model import checkpoint
from arc_trm.model.flops import train_example_flops, view_flops
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm import slowdown
from arc_trm.paths import check_io, place
from arc_trm.progress import bar as progress_bar
from arc_trm.solve.ttt import test_time_train, ttt_groups, ttt_split
from arc_trm.stopflag import StopFlag


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
    partial_inputs: int = 0               # test inputs voted on fewer views than planned (time, a signal)
    fallback_inputs: int = 0              # test inputs no finished view answered
    fallback_reasons: dict = field(default_factory=dict)   # why those inputs are fallbacks: reason -> count
    chosen_on: list[str] = field(default_factory=list)     # the tasks the checkpoint was chosen on
    split: SplitScore | None = None       # the score apart on the other tasks and on those (when answers exist)


def fallback_reasons(fallback: set, predicted: set, cands: dict) -> dict[str, int]:
    """Why each test input answered by fallback is one, counted: its task was not predicted (too big
    for the canvas, or unreadable), its views finished but none decoded to a grid (a model that has
    not learnt the output format yet), or no view of it finished (time, a signal)."""
    out: dict[str, int] = {}
    for tid, k in fallback:
        ic = cands.get((tid, k))
        why = ("too big for the canvas or unreadable" if tid not in predicted
               else "views decoded to no grid" if ic is not None and ic.views > 0 else "no view finished")
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


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
            fields: dict | None = None, candidates: Path | None = None,
            started_at: float | None = None) -> PredictResult:
    """``overrides``: ``--set`` texts; ``fields``: settings by dotted name with Python values
    (``{"ttt.mode": "off"}``); both apply to the checkpoint's config before its model is built.
    The time budget counts from ``started_at`` (default: now; the CLI passes :func:`arc_trm.clock.started_at`).
    With a budget, compilation is planned: the model runs eager when compiling its TTT and inference
    graphs (as this machine measured them before, else :data:`arc_trm.clock.DEFAULT_COMPILE_S` each) would
    take more than a quarter of the time left; else TTT keeps the inference graph's compilation in
    inference's reserve."""
    t_start = time.time() if started_at is None else started_at
    timings: dict = {}
    slowdown.setting()                  # a malformed ARC_TRM_SLOWDOWN fails now, not in the first step
    out = Path(out)
    cand_path = Path(candidates) if candidates is not None else None
    for path in (out, cand_path):
        if path is not None:
            check_output_path(path)
    ck_folder = checkpoint.resolve(ckpt)
    check_io([place("--checkpoint", ck_folder, whole=True)] + spec_places("--tasks", tasks)
             + ([place("--solutions", solutions)] if solutions is not None else []),
             [place("--out", out), place("--out's chosen-on file", sidecar_path(out))]
             + ([place("--candidates", cand_path)] if cand_path is not None else []))
    scoring_answers = read_solutions(solutions) if solutions is not None else None   # a typo fails now
    ck = checkpoint.load(ck_folder, overrides, fields=fields)
    cfg = ck.cfg
    report: LoadReport = load_spec(tasks, solutions=False)
    skipped = [str(e) for e in report.errors]
    for e in report.errors:
        if on_error is not None:
            on_error(e)
    expected = expected_entries(report.tasks, report.failed)
    sub = fallback_for(report)
    fallback_sub = {tid: list(entries) for tid, entries in sub.items()}
    acc = accelerator or make_accelerator(cfg)
    main = acc.is_main_process
    chosen = ChosenOn.from_info(ck.info)
    chosen_on = chosen.among(report.tasks) if chosen is not None else []
    if main:    # before any answer: the marks its scores need hold from the first file on
        write_sidecar(out, chosen_on, str(ck.folder))
    previous = previous_submission(out) if main else None
    t = time.time()
    if main and previous is None:
        write(out, sub, expected)
    else:
        json_bytes(sub)                 # what writing it costs, without touching the earlier file
    write_s = time.time() - t
    timings["fallback_written_s"] = time.time() - t_start
    budget = time_budget_s if time_budget_s is not None else cfg.predict.time_budget_s
    deadline = t_start + budget if budget and budget > 0 else None
    finish_s = clock.finish_reserve_s(write_s, budget or 0.0, cfg.predict.strategy, cand_path is not None)
    every_input = {(tid, k) for tid, n in expected.items() for k in range(n)}
    # What a stop at any moment writes: the answers so far (fallbacks where none), their candidates.
    state = {"sub": sub, "fallback": set(every_input), "lists": {}, "cands": {}, "partial": set(), "fits": []}
    fits = [t for t in report.tasks if max(max(g.shape) for g in t.plan_grids()) <= ck.canvas]
    warnings = [f"the checkpoint was chosen on {len(chosen_on)} of these tasks ({ck.folder}/info.json): the score is "
                "given on the others, their figure apart with its mark"] if chosen_on else []
    too_big = len(report.tasks) - len(fits)
    if too_big:
        warnings.append(f"{too_big} of {len(report.tasks)} tasks have grids larger than the checkpoint's "
                        f"{ck.canvas}x{ck.canvas} canvas and get fallback answers (train with a larger "
                        "--canvas to predict them)")
    fit_ids = {t.task_id for t in fits}
    answers = scoring_answers if scoring_answers is not None else answers_of(tasks, report.tasks)
    overlap = overlap_with_training(ck, report.tasks, answers or {})
    if overlap is not None:
        warnings += overlap.warnings(f"the checkpoint's training data ({ck.folder})")
    if main and cand_path is not None and cand_path.is_file() and out.is_file():
        try:
            earlier = read_json(cand_path, "candidate file", dict).get("source")
        except ArcTrmError:
            earlier = None
        if isinstance(earlier, dict) and belongs_to(earlier, out) is False:
            warnings.append(f"{cand_path.name} was not written with {out.name} (a run stopped between writing the "
                            "two); this run replaces both")

    def take(answers: dict, unanswered: set, task_ids: set | None = None) -> None:
        """This run's answers for ``task_ids`` (default: every task that fits); inputs it could not answer
        stay fallbacks."""
        state["sub"].update(answers)
        done = fit_ids if task_ids is None else task_ids
        state["fallback"] = {(tid, k) for tid, k in state["fallback"] if tid not in done} | unanswered
        if cand_path is not None:
            state["lists"] = candidate_lists(fits, state["cands"], cfg.predict.strategy, cfg.predict.candidates)

    def answer_from_votes() -> None:
        """Attempts from the votes counted so far (while inference runs, or after a second signal)."""
        unanswered: set = set()
        take(submission_from(fits, state["cands"], cfg.predict.strategy, None, unanswered)[0], unanswered)

    saved = {"at": time.time()}

    def save_votes() -> None:
        """After each inference batch: the answers so far go to disk every ``predict.save_every_s``."""
        every = cfg.predict.save_every_s
        if every > 0 and time.time() - saved["at"] >= every:
            answer_from_votes()
            finish()
            saved["at"] = time.time()

    def finish() -> tuple[dict, int]:
        """Write this run's answers, the earlier file's for entries this run answered by fallback, and
        the candidates behind them: both files together. A run a signal stopped keeps the earlier file's
        answers over its partial votes too (the earlier run may have voted on every view), except where
        the earlier file held a fallback."""
        replaceable = state["fallback"]
        if flag and previous is not None:
            earlier = (lambda tid, k: (previous.get(tid) or [None] * (k + 1))[k])  # noqa: E731
            replaceable = replaceable | {(tid, k) for tid, k in state["partial"]
                                         if earlier(tid, k) != fallback_sub[tid][k]}
        final, kept = keep_previous(state["sub"], replaceable, previous)
        if main:
            if cand_path is not None:
                source = {"checkpoint": str(ck.folder), "strategy": cfg.predict.strategy,
                          "views_per_input": cfg.predict.views_per_input or cfg.ttt.augmentations,
                          "core": cfg.model.core, "chosen_on": chosen_on}
                write_with_candidates(out, final, expected, cand_path, matching(state["lists"], final), source)
            else:
                write(out, final, expected)
        return final, kept

    def run(flag: StopFlag) -> PredictResult:
        metrics: dict = {}
        if fits:
            seed = int(ck.manifest.get("seed", 0))
            tseed = seed + cfg.ttt.seed          # TTT's and the views' draws
            ds = ArcDataset.build([], fits, cfg.ttt.augmentations, seed, canvas=ck.canvas, reuse_plans=ck.puzzles)
            task_index = {tid: i for i, tid in enumerate(ds.table.task_ids)}
            rows, known = checkpoint.embedding_rows(
                ck, ds.table, fresh_std=cfg.model.puzzle_emb_init_std if cfg.ttt.new_rows == "fresh" else None,
                seed=tseed)
            table = PuzzleEmbeddings(rows.shape[0], rows.shape[1])
            table.weight = rows
            runner = make_runner(acc, ck.model, table, cfg)
            will_ttt = cfg.ttt.mode != "off" and not known.all()
            ttt_micro = ttt_split(runner, cfg.ttt, ds.canvas).micro if will_ttt else 0
            inference_key = runner.compile_key("inference", cfg.predict.batch_size)
            compile_est = runner.compile_estimate(inference_key) + (sum(
                runner.compile_estimate(runner.compile_key(f"ttt:{name}", ttt_micro))
                for name, n in cfg.ttt.phases() if n > 0) if will_ttt else 0.0)
            eager_note = ""
            if runner.compiled and deadline is not None and not clock.worth_compiling(
                    compile_est, deadline - time.time()):
                eager_note = (f"; eager: compiling would take about {compile_est:.0f}s, more than "
                              f"{clock.COMPILE_SHARE:.0%} of the {deadline - time.time():.0f}s left")
                stack.enter_context(runner.eager())
            # inference's compilation, planned once: 0 when eager; nothing compiles it before inference
            inference_compile_s = runner.compile_estimate(inference_key)
            if main and progress:
                held = (f"{len(fits)} of {len(report.tasks)} tasks fit the checkpoint's {ck.canvas}x{ck.canvas} "
                        f"canvas (the other {too_big} get fallback answers and no TTT)" if too_big
                        else f"{len(fits)} tasks")
                print(f"arc-trm predict: {held}; {int((~known).sum())} unseen: TTT {cfg.ttt.mode}"
                      f"{' per task' if cfg.ttt.scope == 'task' and cfg.ttt.mode != 'off' else ''}; "
                      f"{acc.device.type} x{acc.num_processes} process(es), precision {acc.mixed_precision}, "
                      f"{'compiled' if runner.compiled else 'eager'}"
                      + (f"; budget {budget:.0f}s" if deadline else "") + eager_note, flush=True)
            t0 = time.time()
            views = PredictionViews.of(ds, cfg.predict.views_per_input or None, tseed, cfg.model.pixel_side(),
                                       cfg.predict.pixel_draws)
            per_view = view_flops(ck.model.cfg, ds.canvas)
            per_batch = cfg.predict.batch_size * acc.num_processes

            def batched(n: int) -> int:        # views as computed: the last batch is padded to full size
                return -(-n // per_batch) * per_batch

            def reserve_for(group: PredictionViews):
                inputs = len(np.unique(group.rows))

                def reserve(flop_per_s: float, seconds_left: float) -> float:
                    """Inference's share, from the rate TTT measured: the group's planned views with a margin,
                    at least three rounds of one view per input, at most two thirds of what was left when TTT
                    first planned; plus the time ranking and writing take."""
                    want = max(batched(len(group)) * per_view / flop_per_s * clock.INFERENCE_MARGIN,
                               batched(3 * inputs) * per_view / flop_per_s)
                    if per_task:    # a task's views are a few batches: their overheads, not their FLOPs, count;
                        # at least two TTT steps' time per batch of its first round (one view per input)
                        want = max(want, batched(inputs) / per_batch * 2 * step_flops / flop_per_s)
                    return min(want, seconds_left * 2 / 3) + finish_s + inference_compile_s
                return reserve
            stop = (lambda: bool(flag))  # noqa: E731
            training = cfg.ttt.mode != "off"
            groups = ttt_groups(known, cfg.ttt.scope, training)
            per_task = len(groups) > 1
            view_task = ds.ex_task[views.rows]
            step_flops = cfg.ttt.global_batch_size * train_example_flops(ck.model.cfg, ds.canvas)
            ttt_flops = sum(n * cfg.ttt.global_batch_size * train_example_flops(ck.model.cfg, ds.canvas, name == "full")
                            for name, n in cfg.ttt.phases())
            # A deadline is shared between the groups by what each costs (its TTT and its views).
            group_views = [views.subset(pred[view_task]) for pred, _ in groups]
            weights = [len(gv) * per_view + (ttt_flops if tr.any() else 0.0) for gv, (_, tr) in zip(group_views, groups)]
            base = None
            if sum(tr.any() for _, tr in groups) > 1:     # each task's TTT starts from the checkpoint's weights
                base = ({k: v.detach().clone() for k, v in runner.model.state_dict().items()},
                        runner.table.weight.detach().clone())
            task_bar = progress_bar(len(groups), "predict per task", "task", main and progress and per_task)
            evs, runs, partial = [], [], set()
            timings["ttt_s"] = timings["inference_s"] = 0.0
            end_all = None if deadline is None else deadline - finish_s
            for g, ((pred, train_mask), group) in enumerate(zip(groups, group_views)):
                t0 = time.time()
                end = None if end_all is None else t0 + (end_all - t0) * weights[g] / max(sum(weights[g:]), 1e-9)
                if train_mask.any() and not flag:
                    if runs and base is not None:
                        runner.model.load_state_dict(base[0])
                        runner.table.weight.copy_(base[1])
                    runs.append(test_time_train(runner, ds, train_mask, cfg.ttt, tseed, cfg.data.translation,
                                                None if end is None else end + finish_s,
                                                reserve_for(group) if deadline is not None else None,
                                                progress=progress and not per_task, stop=stop))
                    if main and progress and not per_task and "flop_per_s" in runs[0]:
                        print_plan(runs[0], len(group), len(np.unique(group.rows)), per_view)
                timings["ttt_s"] += time.time() - t0
                t0 = time.time()
                one_round, stop_g = bool(flag), stop
                if one_round:       # a signal: one round of views of every input left, briefly, then vote and write
                    pred = np.logical_or.reduce([p for p, _ in groups[g:]])
                    group = views.subset(pred[view_task])
                    group = group.subset(np.arange(len(np.unique(group.rows))))   # round-robin: one view each
                    end = min(end_all or float("inf"), flag.at + clock.SIGNAL_ROUND_S - finish_s)
                    stop_g = None
                tasks_g = [t for t in fits if pred[task_index[t.task_id]]]
                # that round never waits for a compilation: it runs eager unless the graph is compiled already
                with runner.eager(one_round and inference_compile_s > 0):
                    ev = evaluate(runner, ds, tasks_g, views=group, deadline=end, desc="predict",
                                  progress=progress and not per_task, stop=stop_g, candidates=state["cands"],
                                  on_votes=save_votes)
                inference_compile_s = runner.compile_estimate(inference_key)    # 0 once compiled here
                timings["inference_s"] += time.time() - t0
                evs.append(ev)
                for e in ev.failures:
                    skipped.append(str(e))
                    if on_error is not None:
                        on_error(e)
                # after one round, every voted input had fewer views than planned
                partial |= ({k for k, ic in state["cands"].items() if ic.views and pred[task_index[k[0]]]}
                            if one_round else ev.partial)
                take(ev.submission, ev.unanswered, {t.task_id for t in tasks_g})
                if per_task and train_mask.any():
                    acc.free_memory()    # accelerate's references to this task's optimizers (hundreds of tasks)
                task_bar.update(1)
                if one_round:
                    break
            task_bar.close()
            if runs:
                timings["ttt"] = runs[0] if len(runs) == 1 else merged_ttt(runs)
            timings["compile_s"] = round(sum(e.predictions.compile_s for e in evs) + sum(
                sum(r["compile_s"].values()) for r in runs), 2)
            state["partial"] = partial
            if len(evs) == 1:
                metrics = evs[0].metrics
            else:
                metrics = voted(fits, state["cands"], cfg.predict.strategy)[2] if main else {}
                for key in ("views", "views_planned", "inputs_voted", "inputs_partial"):
                    metrics[key] = sum(e.metrics[key] for e in evs)
                metrics["test_inputs"] = int(len(ds.test_rows()))
            timings["views_per_s"] = metrics["views"] / max(timings["inference_s"], 1e-9)
            if main and progress and per_task and runs:
                t = timings["ttt"]
                print(f"arc-trm predict: TTT per task: {len(runs)} tasks, steps {t['steps']} in all, "
                      f"{timings['ttt_s']:.1f}s; {metrics['views']} views in {timings['inference_s']:.1f}s", flush=True)
        sub, kept = finish()
        state["kept"] = kept
        if kept:
            warnings.append(f"{kept} entries this run could answer only by fallback keep the earlier {out.name}'s answers")
        timings["total_s"] = time.time() - t_start
        split = split_score(sub, answers, inputs_of(report.tasks), chosen_on) if answers else None
        fallback_tasks = sorted({tid for tid, _ in state["fallback"]})
        return PredictResult(sub, out, split.whole if split else None, metrics, timings, skipped, warnings,
                             fallback_tasks, len(state["partial"] - state["fallback"]), len(state["fallback"]),
                             fallback_reasons(state["fallback"], fit_ids, state["cands"]), chosen_on, split)

    with StopFlag("predict", "stopping at the next step or batch to vote over the views that finished and write",
                  lambda: f"{out} holds a valid submission", quiet=not main) as flag, ExitStack() as stack:
        try:
            res = run(flag)
        except KeyboardInterrupt:      # a second signal: what was voted so far, at once
            flag.signum = flag.signum or signal.SIGINT
            answer_from_votes()
            final, kept = finish()
            raise Interrupted(flag.signum, stopped_line(flag.signum, out, final, state, kept, every_input)) from None
    if flag.signum:
        raise Interrupted(flag.signum, stopped_line(flag.signum, out, res.submission, state, state["kept"],
                                                    every_input))
    return res


def overlap_with_training(ck: checkpoint.Checkpoint, tasks: list[Task], answers: dict) -> Overlap | None:
    """What of ``tasks`` (with ``answers`` where known) the checkpoint trained on, by content; None when
    it does not record what it trained on (an imported checkpoint, an older arc-trm's)."""
    if ck.prints is None:
        return None
    with_answers = [Task(t.task_id, t.train, t.test_inputs,
                         [np.asarray(a, dtype=np.uint8) for a in answers[t.task_id]] if t.task_id in answers
                         and len(answers[t.task_id]) == len(t.test_inputs) else t.test_outputs) for t in tasks]
    return find_overlap(ck.prints, with_answers)


def stopped_line(signum: int, out: Path, final: dict, state: dict, kept: int, every_input: set) -> str:
    fallback = len(state["fallback"])
    voted = len(every_input) - fallback
    partial = len(state["partial"] - state["fallback"])
    return (f"stopped by {signal.Signals(signum).name}: wrote {out} ({len(final)} tasks, {len(every_input)} test "
            f"inputs: {voted} answered by the vote of their finished views ({partial} of them from a partial vote), "
            f"{fallback} by fallback" + (f", {kept} entries kept from the earlier file" if kept else "") + ")")


def print_plan(plan: dict, n_views: int, inputs: int, per_view: float) -> None:
    rates = ", ".join(f"{k} {v:.3f} s/step" + (f" (compiled in {plan['compile_s'][k]:.1f}s)"
                                                if plan["compile_s"].get(k) else "")
                      for k, v in plan["seconds_per_step"].items())
    print(f"arc-trm predict: plan from measured rates ({rates}, {plan['flop_per_s'] / 1e12:.3f} TFLOP/s): "
          f"TTT until {plan['reserve_s']:.1f}s before the deadline, then {n_views} views "
          f"({inputs} inputs) estimated at {n_views * per_view / plan['flop_per_s']:.0f}s", flush=True)


def merged_ttt(runs: list[dict]) -> dict:
    """Several TTT runs (one per task) as one record: steps and compile times summed, the latest rates."""
    out: dict = {"steps": {}, "seconds_per_step": {}, "compile_s": {}, "stopped": False, "runs": len(runs)}
    for r in runs:
        for name, n in r["steps"].items():
            out["steps"][name] = out["steps"].get(name, 0) + n
        for name, v in r["compile_s"].items():
            out["compile_s"][name] = round(out["compile_s"].get(name, 0.0) + v, 2)
        out["seconds_per_step"].update(r["seconds_per_step"])
        out["stopped"] = out["stopped"] or bool(r.get("stopped"))
        out.update({k: r[k] for k in ("flop_per_s", "reserve_s") if k in r})
    return out
