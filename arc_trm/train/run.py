"""``arc-trm train``: dataset → checkpoints, evaluated as it goes, resumable after a kill."""

from __future__ import annotations

import shutil
import signal
import time
from contextlib import nullcontext
from pathlib import Path

import orjson
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm import tqdm

from arc_trm.clock import (COMPILE_SHARE, CompileInterrupted, StepTimer, eval_bound_s, wait_for_device,
                            worth_compiling)
from arc_trm.progress import bar as progress_bar
from arc_trm.atomic import check_owned, mark, write_bytes
from arc_trm.config import NUMERICS_FIELDS, RunConfig
from arc_trm.data.batches import BatchSplit, TrainStream, split_batch
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.ingest import build_dataset
from arc_trm.data.tasks import report_error, spec_places
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import field_of, read_json
from arc_trm.infer.evaluate import evaluate, split_metrics
from arc_trm.infer.selection import SELECTION, VIEW_KEYS, ChosenOn, eval_line, selection_split
from arc_trm.infer.runner import Runner, make_accelerator, make_runner
from arc_trm.infer.submission import write as write_submission
from arc_trm.model import checkpoint
from arc_trm.model.memory import fit_micro_batch, size_text, table_bytes
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model
from arc_trm.model.recursion import RecursiveModel
from arc_trm.paths import check_io, place
from arc_trm.stopflag import StopFlag
from arc_trm.train.metrics import MetricLog, plot_curves
from arc_trm.train import state as training_state
from arc_trm.train.run_folder import check_resume_config, locked, save_config
from arc_trm.train.session import Schedule, TrainSession, warmup_in_steps

# What `--fresh` clears: everything a previous run wrote into the folder (the dataset stays).
RUN_OUTPUTS = ("state", "best", "last", "evals", "metrics.jsonl", "best_score.json", "curves.png", "config.json")


def check_run_paths(cfg: RunConfig, out_dir: Path, dataset: Path | None, init_from: Path | None) -> None:
    """Before any work: the run folder is new, empty or an arc-trm run folder, and nothing train writes
    there (its outputs, and ``data/`` when it ingests) is one of its inputs or lies in a task folder."""
    if dataset is not None:
        inputs = [place("--dataset", dataset, whole=True)]
    else:
        inputs = [p for spec in cfg.data.tasks for p in spec_places("data.tasks", spec)]
        inputs += [p for spec in cfg.data.test_tasks for p in spec_places("data.test_tasks", spec)]
    if init_from is not None:
        inputs.append(place("--init-from", checkpoint.resolve(init_from), whole=True))
    writes = RUN_OUTPUTS + (() if dataset is not None else ("data",))
    check_io(inputs, [place("--out", out_dir / name) for name in writes])
    check_owned(out_dir, "run")


def prepare_dataset(cfg: RunConfig, acc: Accelerator, out_dir: Path, dataset: Path | None) -> ArcDataset:
    """Load the given dataset directory, or ingest ``cfg.data`` into ``out_dir/data`` once."""
    if dataset is not None:
        return ArcDataset.load(dataset)
    target = out_dir / "data"
    if not (target / "manifest.json").is_file():
        if acc.is_main_process:
            d = cfg.data
            ds = build_dataset(d.tasks, d.test_tasks, d.augmentations, d.seed, d.synthetic_tasks,
                               d.synthetic_test_tasks, report_error, d.canvas, d.synthetic_families, d.pool_pairs,
                               d.pool_puzzles, d.exclude_overlap)
            ds.save(target)
        acc.wait_for_everyone()
    return ArcDataset.load(target)


def total_steps(cfg: RunConfig, stream: TrainStream) -> int:
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps
    return max(1, cfg.train.epochs * stream.examples_per_pass() // cfg.train.global_batch_size)


def eval_every(cfg: RunConfig, stream: TrainStream) -> int:
    if cfg.train.eval_interval_steps > 0:
        return cfg.train.eval_interval_steps
    if cfg.train.eval_interval_epochs > 0:
        return max(1, cfg.train.eval_interval_epochs * stream.examples_per_pass() // cfg.train.global_batch_size)
    return 0


def _init_from(source: Path, model: RecursiveModel, table: PuzzleEmbeddings, ds: ArcDataset, cfg: RunConfig) -> str:
    """Start from a checkpoint's weights, and its rows for the plans it knows (new tasks' rows
    start at the mean of the trained rows)."""
    ck = checkpoint.load(source)
    diff = [k for k, v in vars(cfg.model).items() if getattr(ck.cfg.model, k) != v and k not in NUMERICS_FIELDS]
    if diff or ck.canvas != ds.canvas:
        what = ", ".join(f"model.{k} ({getattr(ck.cfg.model, k)!r} there, {getattr(cfg.model, k)!r} here)"
                         for k in diff[:4]) or f"canvas ({ck.canvas} there, {ds.canvas} here)"
        raise ArcTrmError(f"--init-from checkpoint has another architecture: {what}; use its model preset",
                          source=str(ck.folder))
    model.load_state_dict(ck.model.state_dict())
    rows, known = checkpoint.embedding_rows(ck, ds.table)
    table.weight = rows
    return f"initialised from {ck.folder} ({int(known.sum())} of {len(known)} tasks known)"


def train(cfg: RunConfig, out_dir: Path, dataset: Path | None = None, resume: bool = True,
          log_with: str | None = None, accelerator: Accelerator | None = None, progress: bool = True,
          init_from: Path | None = None) -> dict:
    """Train and return a summary (steps, best pass@2, paths; ``signal`` when stopped by one)."""
    out_dir = Path(out_dir)
    check_run_paths(cfg, out_dir, dataset, init_from)
    acc = accelerator or make_accelerator(cfg, log_with, out_dir)
    agree = None
    if acc.num_processes > 1:
        agree = (lambda failed: bool(acc.reduce(torch.tensor([int(failed)], device=acc.device), "max").item()))
    with locked(out_dir, enabled=acc.is_main_process, agree=agree):
        return _train(cfg, out_dir, dataset, resume, log_with, acc, progress, init_from)


def _train(cfg: RunConfig, out_dir: Path, dataset: Path | None, resume: bool, log_with: str | None,
           acc: Accelerator, progress: bool, init_from: Path | None) -> dict:
    main = acc.is_main_process
    state_dir = out_dir / "state"
    if (state_dir / "session.pt").is_file() and resume:
        raise ArcTrmError("this run's saved state was written by an older arc-trm and cannot be resumed; "
                          "predict from its best/ or last/, or start over with --fresh", source=str(out_dir))
    if resume:
        check_resume_config(out_dir, cfg)
    elif main:
        gone = [name for name in RUN_OUTPUTS if (out_dir / name).exists()]
        if gone:
            print(f"arc-trm train: --fresh deletes {', '.join(gone)} in {out_dir}", flush=True)
        for name in gone:
            path = out_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if main:
        mark(out_dir, "run")
    acc.wait_for_everyone()
    split = split_batch(cfg.train.global_batch_size, acc.num_processes, cfg.train.micro_batch_size)

    def fitted(canvas: int, table_rows: int = 0) -> BatchSplit:
        """The split with the micro-batch the memory estimate allows (train.micro_batch_size 0: the largest)."""
        micro = fit_micro_batch(cfg.model, canvas, cfg.train.micro_batch_size, split.local, acc.device,
                                acc.mixed_precision, table_rows)
        # every process runs the same split (devices may have different memory free): the smallest choice
        micro = int(acc.gather(torch.tensor([micro], device=acc.device)).min())
        return split_batch(split.global_batch, split.processes, micro)

    canvas = ArcDataset.read_manifest(dataset).get("canvas", cfg.data.canvas) if dataset else cfg.data.canvas
    fitted(canvas)                                               # before any slow work
    set_seed(cfg.train.seed)
    ds = prepare_dataset(cfg, acc, out_dir, dataset)
    split = fitted(ds.canvas, ds.num_puzzle_ids)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, ds.canvas ** 2)
    table = PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size, init_std=cfg.model.puzzle_emb_init_std)
    start_note = _init_from(Path(init_from), model, table, ds, cfg) if init_from else ""
    runner = make_runner(acc, model, table, cfg)
    stream = TrainStream(ds, cfg.train.global_batch_size, cfg.train.seed, acc.process_index, acc.num_processes,
                         translation=cfg.data.translation, pixel_side=cfg.model.pixel_side())
    steps = total_steps(cfg, stream)
    session = TrainSession(runner, stream, Schedule(warmup_in_steps(cfg.optim, stream.examples_per_pass(),
                                                                    cfg.train.global_batch_size),
                                                    steps), split, cfg.train.seed)
    warnings: list[str] = []
    if resume and state_dir.is_dir():
        resumed, warnings = training_state.resume(state_dir, session.load_state, runner.stop_agreed, out_dir)
        if resumed is not None:
            start_note = f"resumed from {resumed} at step {session.progress.step}"
        saved = session.saved_accumulation
        if resumed is not None and saved is not None and saved != split.accumulation:
            warnings.append(f"the saved state cut each process's batch into {saved} micro-batch(es), this run into "
                            f"{split.accumulation} of {split.micro}: the ACT carries start afresh, so the run is no "
                            "longer step for step the uninterrupted one (--set train.micro_batch_size="
                            f"{split.local // saved} keeps the saved split)")
    micro_note = (" (the largest micro-batch the memory estimate fits here)"
                  if cfg.train.micro_batch_size == 0 and split.accumulation > 1 else "")
    if main:
        for w in warnings:
            print(f"arc-trm train: warning: {w}", flush=True)
        # the curves continue from the resumed step: no repeated steps, no torn last line
        MetricLog(out_dir / "metrics.jsonl").truncate_after(session.progress.step)
        # where this stretch of the run ran: the run-comparison page sums device-hours from these
        MetricLog(out_dir / "metrics.jsonl").log({
            "kind": "start", "step": session.progress.step, "device": device_name(acc.device),
            "processes": acc.num_processes, "precision": acc.mixed_precision, "compiled": runner.compiled,
            "global_batch_size": cfg.train.global_batch_size, "time": time.time()})
        save_config(out_dir, cfg)
        print(f"arc-trm train: {acc.device.type} x{acc.num_processes} process(es), precision "
              f"{acc.mixed_precision}, {'compiled' if runner.compiled else 'eager'}; global batch "
              f"{split.global_batch} = {split.processes} x {split.accumulation} x {split.micro}"
              f"{micro_note}; {steps} steps; "
              f"{ds.manifest['num_tasks']} tasks, puzzle-embedding table {ds.num_puzzle_ids} rows "
              f"({size_text(table_bytes(ds.num_puzzle_ids, cfg.model.hidden_size))})"
              + (f"; {start_note}" if start_note else ""), flush=True)
    if log_with:
        acc.init_trackers(cfg.name, config={k: str(v) for k, v in cfg.to_dict().items()})
    try:
        return _loop(cfg, out_dir, acc, runner, session, ds, steps, stream, progress, log_with)
    finally:
        session.close()


BEST_KEY = SELECTION + "pass@2"     # what best/ is chosen by: pass@2 on the selection split


def device_name(device: torch.device) -> str:
    """The device in words, as the run-comparison page shows it (``cuda: NVIDIA H100 80GB HBM3``, ``cpu``)."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return device.type


def previous_best(path: Path, main: bool) -> dict:
    """The record of the run's best/ so far (``{}``: none yet); a changed or torn file (or one an older
    arc-trm wrote, which chose best/ on the scored tasks) counts as none, with a warning, and the next
    evaluation replaces it."""
    if not path.is_file():
        return {}
    try:
        rec = read_json(path, "best score", dict)
        field_of(rec, BEST_KEY, float, "best score", path)
        return rec
    except ArcTrmError as e:
        if main:
            print(f"arc-trm train: warning: {e}; the next evaluation sets a new best", flush=True)
        return {}


def better(metrics: dict, best: dict) -> bool:
    """Whether this evaluation's selection figures choose it over ``best``: pass@2 on the selection split,
    then one view's answer there (a finer measure of the same); a tie goes to the later, longer-trained step."""
    key = (lambda r: (r.get(BEST_KEY, -1.0), r.get(SELECTION + "single_view", -1.0)))  # noqa: E731
    return key(metrics) >= key(best)


def selection_of(cfg: RunConfig, test_tasks: list) -> tuple[set[str], str]:
    """The tasks best/ is chosen on, and the rule that chose them, in words."""
    t = cfg.train
    chosen, _ = selection_split([x.task_id for x in test_tasks], t.select_share, t.seed, t.select_tasks or None)
    how = ("named by train.select_tasks" if t.select_tasks else
           f"a share of {t.select_share:g} drawn with train.seed {t.seed}")
    return set(chosen), f"{len(chosen)} of {len(test_tasks)} test tasks, {how}"


def best_line(best: dict) -> str:
    """What train prints of best/: where it was chosen and its figure on the other tasks."""
    if not best:
        return "no best/ (nothing to choose it on); last/ is the checkpoint"
    head = (f"best/ chosen on {best[SELECTION + 'tasks']} tasks at step {best['step']} (their pass@2 "
            f"{best[BEST_KEY]:.3f}, chosen on: biased upward)")
    if "tasks" not in best:
        return head + "; every test task was a selection task, so no figure of it is unbiased"
    return (f"{head}; pass@2 on the other {best['tasks']}: {best['pass@2']:.3f}, 95 % interval "
            f"{best['pass@2_lo']:.2f}-{best['pass@2_hi']:.2f} (exact binomial over tasks)")


def _loop(cfg: RunConfig, out_dir: Path, acc: Accelerator, runner: Runner, session: TrainSession, ds: ArcDataset,
          steps: int, stream: TrainStream, progress: bool, log_with: str | None) -> dict:
    main = acc.is_main_process
    state_dir = out_dir / "state"
    log = MetricLog(out_dir / "metrics.jsonl", acc, enabled=main)
    best_path = out_dir / "best_score.json"
    best = previous_best(best_path, main)
    test_tasks = ds.test_tasks()
    chosen, rule = selection_of(cfg, test_tasks)
    if main and test_tasks:
        print(f"arc-trm train: best/ is chosen on {rule}; the figures of the other {len(test_tasks) - len(chosen)} "
              f"are the scores" + ("" if chosen else " (train.select_share = 0: no best/, last/ is the checkpoint)")
              + ("" if len(chosen) < len(test_tasks) else "; every figure is marked 'selection/' (chosen on)"),
              flush=True)
    every = eval_every(cfg, stream) if test_tasks else 0
    model = runner.model
    t0 = time.time()
    limit, bound = cfg.train.time_limit_s, eval_bound_s(cfg.train.eval_time_limit_s, cfg.train.time_limit_s)
    saved_at = -1

    def save_state() -> None:
        nonlocal saved_at
        if saved_at != session.progress.step:
            training_state.save(state_dir, session.progress.step, session.save_state, main, acc.wait_for_everyone)
            saved_at = session.progress.step

    def export(name: str, info: dict) -> None:   # the trained weights, with the EMA ones beside them
        checkpoint.export(out_dir / name, cfg, model, runner.table, ds.table, ds.manifest, session.ema, info, ds.prints)

    def run_eval(flag: StopFlag, final: bool = False) -> dict:
        """Evaluate, bounded in time (and by the run's limit) and stopped by a signal between batches;
        ``last/`` and, when it is better, ``best/`` are exported. Nothing is exported from an evaluation a
        signal cut short: its numbers are not comparable."""
        nonlocal best
        ctx = session.ema.applied(model) if session.ema is not None else nullcontext()
        now = time.time()
        ends = [now + bound] if bound else []
        if limit > 0 and now - t0 < limit and not final:   # a periodic evaluation stays inside the run's limit
            ends.append(t0 + limit)
        compile_est = runner.compile_estimate(runner.compile_key("inference", cfg.predict.batch_size))
        eager = bool(ends) and not worth_compiling(compile_est, min(ends) - now)
        with ctx, runner.eager(eager):
            ev = evaluate(runner, ds, test_tasks, max_views=cfg.train.max_eval_views, progress=progress,
                          deadline=min(ends) if ends else None, stop=lambda: bool(flag.signum),
                          bound_excludes_compile=True)
        step = session.progress.step
        if flag.signum:
            return {}
        # the scored tasks' figures under plain names, the selection split's under selection/ (main only:
        # the votes are counted there)
        metrics = {**split_metrics(test_tasks, ev.candidates, cfg.predict.strategy, chosen),
                   **{k: ev.metrics[k] for k in VIEW_KEYS}}
        rec = {"kind": "eval", "step": step, **metrics, "eval_s": round(time.time() - now, 2),
               "compile_s": round(ev.predictions.compile_s, 2)}
        log.log(rec)
        if main:
            write_submission(out_dir / "evals" / f"step_{step:07d}" / "submission.json", ev.submission)
            info = {"step": step, **metrics}
            export("last", info)
            if chosen and (better(metrics, best) or not (out_dir / "best").exists()):
                best = {"step": step, **{k: v for k, v in metrics.items() if k.startswith(SELECTION) or k in (
                    "pass@2", "pass@2_lo", "pass@2_hi", "tasks")}}
                export("best", {**info, "chosen_on": ChosenOn.of([t for t in test_tasks if t.task_id in chosen],
                                                                 step, rule).to_json()})
                write_bytes(best_path, orjson.dumps(best))
            cut = (f" (stopped at its time bound: {ev.metrics['views']} of {ev.metrics['views_planned']} views)"
                   if ev.metrics["views"] < ev.metrics["views_planned"] else "")
            if eager:
                cut += (f" (eager: compiling would take about {compile_est:.0f} s, more than "
                        f"{COMPILE_SHARE:.0%} of its {min(ends) - now:.0f} s bound)")
            elif ev.predictions.compile_s > 0:
                cut += f" (compiled in {ev.predictions.compile_s:.1f} s, outside its bound)"
            tqdm.write(eval_line(step, metrics) + cut)
        acc.wait_for_everyone()
        return rec

    if main and not test_tasks:
        print("arc-trm train: the dataset holds no test tasks, so nothing is evaluated; last/ is the checkpoint",
              flush=True)
    start_step, signum, last_eval_step, stopped_by_limit = session.progress.step, 0, -1, False
    bar = progress_bar(steps, "train", "step", main and progress, initial=start_step)
    log_every = max(1, cfg.train.log_every_steps)
    rate_t, rate_step = time.time(), start_step
    # steady steps only: the steps that compile (the first of this process, after a resume, a new graph
    # after an evaluation) are timed apart, so the time limit never takes a compilation for a step
    timer, told = StepTimer(acc.device.type), False
    try:
        with StopFlag("train", "stopping at the next step or evaluation batch to save",
                      lambda: f"state saved at step {saved_at}" if saved_at >= 0 else "nothing saved yet",
                      quiet=not main) as flag:
            while session.progress.step < steps:
                # A stop (a signal, the time limit, or a step that would end past it) is looked at before
                # every step, and agreed by every process.
                late = limit > 0 and time.time() - t0 + timer.step_s > limit
                if runner.stop_agreed(bool(flag.signum) or late):
                    signum = flag.signum
                    if acc.num_processes > 1:   # a signal may reach one process only: all take its branch
                        signum = int(acc.reduce(torch.tensor([signum], device=acc.device), "max").item())
                    stopped_by_limit = not signum
                    break
                try:
                    with timer.step():
                        session.step()
                except CompileInterrupted:      # a signal while compiling: the flag holds it, the check stops
                    continue
                step = session.progress.step
                bar.update(1)
                if step == start_step + 2:      # the first steady step, timed as the device finished it
                    wait_for_device(acc.device.type)
                    timer.synced()
                if timer.compile_s > 0 and timer.steady_steps and not told:    # said once: compile and step
                    runner.compiled_now(runner.compile_key("train", session.split.micro), timer.compile_s)
                    if main:
                        tqdm.write(f"train: {timer.describe()}")
                    told = True
                if step % log_every == 0 or step == steps or step == start_step + 1:
                    m = session.pop_metrics()           # the host waits for the device here only
                    timer.synced()
                    now = time.time()
                    rate = (step - rate_step) * cfg.train.global_batch_size / max(now - rate_t, 1e-9)
                    rate_t, rate_step = now, step
                    bar.set_postfix(loss=f"{m['loss']:.3f}", exact=f"{m['exact_accuracy']:.2f}", ex_s=f"{rate:.0f}",
                                    refresh=False)
                    log.log({"kind": "train", **m, "examples_per_s": rate, "elapsed_s": now - t0})
                    if limit > 0 and timer.step_s > 0:   # the bar's end and ETA follow the time limit
                        bar.retotal(min(steps, step + max(0, int((limit - (now - t0)) / timer.step_s))))
                if step % cfg.train.save_every_steps == 0:
                    save_state()
                if every and step % every == 0 and step < steps:
                    run_eval(flag)
                    last_eval_step = step
    finally:   # the bar ends before any error line, so that line is the last one
        bar.retotal(steps)      # its last line: the steps done of all planned, not of what the limit allowed
        bar.close()
    save_state()
    if main:   # before the final evaluation: a kill during it keeps this step's weights
        export("last", {"step": session.progress.step, **({"stopped_by": signal.Signals(signum).name} if signum else {})})
    acc.wait_for_everyone()
    rec = {}
    if not signum and test_tasks and last_eval_step != session.progress.step:
        with StopFlag("train", "stopping the evaluation at its next batch",
                      lambda: f"state and last/ saved at step {saved_at}", quiet=not main) as flag:
            rec = run_eval(flag, final=True)
            signum = flag.signum
    if signum:
        if main:
            print(f"arc-trm train: stopped by {signal.Signals(signum).name} at step {session.progress.step} of "
                  f"{steps}; state saved to {state_dir}, checkpoint {out_dir / 'last'}; run the same command again "
                  "to resume", flush=True)
        acc.wait_for_everyone()
        return {"steps": session.progress.step, "interrupted": True, "signal": signum, "out_dir": str(out_dir),
                "checkpoint": str(out_dir / "last")}
    plot = plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png",
                       warn=lambda w: print(f"arc-trm train: warning: {w}", flush=True)) if main else None
    if log_with:
        acc.end_training()
    done = session.progress.step >= steps
    note = ("" if done else f"the time limit train.time_limit_s = {limit:g} s stopped it at step "
            f"{session.progress.step} of {steps} ("
            + (f"a steady step takes about {timer.step_s:.3g} s here" if timer.steady_steps else
               f"a step takes about {timer.step_s:.3g} s here, from its first step less its compilation")
            + (f"; compiling took {timer.compile_s:.1f} s" if timer.compile_s > 0 else "")
            + "); run the same command again to continue from its state")
    return {"steps": session.progress.step, "planned_steps": steps, "interrupted": False, "signal": 0,
            "out_dir": str(out_dir), "final_eval": rec, "best": best, "best_line": best_line(best) if test_tasks else "",
            "plot": str(plot) if plot else None,
            "checkpoint": str(out_dir / ("best" if (out_dir / "best").exists() else "last")), "limit_note": note,
            "stopped_by_limit": stopped_by_limit and not done,
            "step_s": timer.step_s, "compile_s": timer.compile_s}
