"""``arc-trm train``: dataset → checkpoints, evaluated as it goes, resumable after a kill."""

from __future__ import annotations

import signal
import time
from contextlib import nullcontext
from pathlib import Path

import orjson
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from arc_trm.config import RunConfig
from arc_trm.data.batches import TrainStream
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.ingest import build_dataset
from arc_trm.data.tasks import report_error
from arc_trm.errors import ArcTrmError
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.solve.evaluate import evaluate
from arc_trm.solve.submission import write_atomic
from arc_trm.train import checkpoint
from arc_trm.train.loop import Schedule, TrainSession, any_process, default_mixed_precision
from arc_trm.train.metrics import MetricLog, plot_curves


def make_accelerator(cfg: RunConfig, log_with: str | None = None, project_dir: Path | None = None) -> Accelerator:
    return Accelerator(mixed_precision=default_mixed_precision(cfg.train.mixed_precision),
                       log_with=log_with, project_dir=str(project_dir) if project_dir else None)


def prepare_dataset(cfg: RunConfig, acc: Accelerator, out_dir: Path, dataset: Path | None) -> ArcDataset:
    """Load the given dataset directory, or ingest ``cfg.data`` into ``out_dir/data`` once."""
    if dataset is not None:
        return ArcDataset.load(dataset)
    target = out_dir / "data"
    if not (target / "manifest.json").is_file():
        if acc.is_main_process:
            d = cfg.data
            ds = build_dataset(d.tasks, d.test_tasks, d.augmentations, d.seed, d.synthetic_tasks,
                               d.synthetic_test_tasks, report_error, d.canvas, d.synthetic_families)
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


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to save and stop at the end of the current step."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(cfg: RunConfig, out_dir: Path, dataset: Path | None = None, resume: bool = True,
          log_with: str | None = None, accelerator: Accelerator | None = None, progress: bool = True) -> dict:
    """Train and return a summary (steps, best pass@2, paths)."""
    out_dir = Path(out_dir)
    acc = accelerator or make_accelerator(cfg, log_with, out_dir)
    if acc.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.train.seed)
    ds = prepare_dataset(cfg, acc, out_dir, dataset)
    cfg.model.seq_len = ds.canvas ** 2
    cfg.model.vocab_size = int(ds.manifest["vocab_size"])
    if cfg.train.global_batch_size % acc.num_processes:
        raise ArcTrmError(f"global batch {cfg.train.global_batch_size} is not divisible by "
                          f"{acc.num_processes} processes")
    torch.manual_seed(cfg.train.seed)
    core = TRM(cfg.model)
    if cfg.train.compile:
        core = torch.compile(core)  # type: ignore[assignment]
    table = PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size)
    stream = TrainStream(ds, cfg.train.global_batch_size, cfg.train.seed, acc.process_index, acc.num_processes)
    steps = total_steps(cfg, stream)
    o = cfg.optim
    schedule = Schedule(o.lr, o.puzzle_emb_lr, o.lr_warmup_steps, steps, o.lr_min_ratio, o.weight_decay,
                        o.puzzle_emb_weight_decay, (o.beta1, o.beta2))
    session = TrainSession(acc, core, table, stream, schedule, cfg.train.seed, o.ema_rate if o.ema else None)
    state_dir = out_dir / "state"
    if resume and (state_dir / "session.pt").is_file():
        session.load_state(state_dir)
        if acc.is_main_process:
            print(f"arc-trm train: resumed from {state_dir} at step {session.progress.step}")
    if acc.is_main_process:
        (out_dir / "config.json").write_bytes(orjson.dumps(cfg.to_dict(), option=orjson.OPT_INDENT_2))
    if log_with:
        acc.init_trackers(cfg.name, config={k: str(v) for k, v in cfg.to_dict().items()})
    log = MetricLog(out_dir / "metrics.jsonl", acc, enabled=acc.is_main_process)
    best_path = out_dir / "best_score.json"
    best = orjson.loads(best_path.read_bytes())["pass@2"] if best_path.is_file() else -1.0
    every = eval_every(cfg, stream)
    t0 = time.time()

    def run_eval() -> dict:
        nonlocal best
        ctx = session.ema.applied(core) if session.ema is not None else nullcontext()
        with ctx:
            ev = evaluate(acc, session.model, core, session.table, ds, strategy=cfg.predict.strategy,
                          batch_size=cfg.predict.batch_size, max_views=cfg.train.max_eval_views,
                          seed=cfg.train.seed, halt_early=cfg.predict.halt_early)
        step = session.progress.step
        rec = {"kind": "eval", "step": step, **ev.metrics}
        log.log(rec)
        if acc.is_main_process:
            edir = out_dir / "evals" / f"step_{step:07d}"
            write_atomic(edir / "submission.json", ev.submission)
            info = {"step": step, **ev.metrics}
            checkpoint.export(out_dir / "last", cfg, core, session.table, ds.table, ds.manifest, session.ema, info)
            if ev.metrics.get("pass@2", 0.0) > best or not (out_dir / "best").exists():
                best = ev.metrics.get("pass@2", 0.0)
                checkpoint.export(out_dir / "best", cfg, core, session.table, ds.table, ds.manifest, session.ema, info)
                best_path.write_bytes(orjson.dumps({"pass@2": best, "step": step}))
            tqdm.write(f"eval @ step {step}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in ev.metrics.items()))
        acc.wait_for_everyone()
        return rec

    bar = tqdm(total=steps, initial=session.progress.step, desc="train", unit="step",
               disable=not (acc.is_main_process and progress), dynamic_ncols=True)
    interrupted = False
    last_eval_step = -1
    examples = 0
    rate_t = time.time()
    with _StopFlag() as flag:
        while session.progress.step < steps:
            m = session.step()
            step = session.progress.step
            examples += cfg.train.global_batch_size
            bar.update(1)
            if step % cfg.train.log_every_steps == 0 or step == steps:
                now = time.time()
                rate = examples / max(now - rate_t, 1e-9)
                examples, rate_t = 0, now
                bar.set_postfix(loss=f"{m['loss']:.3f}", exact=f"{m['exact_accuracy']:.2f}", ex_s=f"{rate:.0f}")
                log.log({"kind": "train", **m, "examples_per_s": rate, "elapsed_s": now - t0})
            if every and step % every == 0 and step < steps:
                run_eval()
                last_eval_step = step
            stop_now = any_process(acc, flag.stop or (cfg.train.time_limit_s > 0
                                                       and time.time() - t0 > cfg.train.time_limit_s))
            if step % cfg.train.save_every_steps == 0 or stop_now:
                session.save_state(state_dir)
            if stop_now:
                interrupted = flag.stop
                break
    bar.close()
    if interrupted:
        if acc.is_main_process:
            print(f"arc-trm train: stopped at step {session.progress.step}; state saved to {state_dir}; "
                  f"run the same command again to resume")
        return {"steps": session.progress.step, "interrupted": True, "out_dir": str(out_dir)}
    session.save_state(state_dir)
    rec = run_eval() if last_eval_step != session.progress.step else {}
    plot = plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png") if acc.is_main_process else None
    if log_with:
        acc.end_training()
    return {"steps": session.progress.step, "interrupted": False, "out_dir": str(out_dir),
            "final_eval": rec, "best_pass@2": best, "plot": str(plot) if plot else None,
            "checkpoint": str(out_dir / "best")}

