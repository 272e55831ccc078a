"""Augmented inference: every view through ``halt_max_steps`` ACT steps, in large batches.

Each process runs its share of the views; results are gathered so every process holds the
predictions of all views (the vote runs on the main process).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from arc_trm.clock import CompileInterrupted, StepTimer
from arc_trm.progress import bar as progress_bar
from arc_trm.data.batches import PredictionViews
from arc_trm.data.canvas import VOCAB_SIZE
from arc_trm.data.dataset import ArcDataset
from arc_trm.infer.runner import Runner
from arc_trm.model.recursion import Carry


@dataclass
class ViewPredictions:
    views: PredictionViews
    canvases: np.ndarray            # (V, S) uint8 argmax tokens
    halt_prob: np.ndarray           # (V,) float32 sigmoid of the final halting logit
    logprobs: np.ndarray | None     # (V, S, vocab) float16 when requested (product of experts)
    complete: np.ndarray            # (V,) bool: view was predicted (False if the time ran out)
    compile_s: float = 0.0          # seconds torch spent compiling the inference graph here


@torch.no_grad()
def predict_logits(runner: Runner, batch: dict[str, torch.Tensor], halt_early: bool = False):
    """Run one batch through the ACT steps; return the answer logits and halting logits.

    ``halt_early=False`` (the paper): every sample runs ``halt_max_steps`` steps and the last
    step's answer counts. ``halt_early=True``: a sample's answer is frozen at the first step
    whose halting logit is positive (the model's own "this is right"), as in training; a small
    model trained briefly halts after a step or two and its later, rarely supervised steps can
    drift away from a correct answer; "confident" is the model's own halting rule (the halt logit
    above 0, or above the continue logit for HRM's Q-learning rule). The batch stops once every sample
    has halted."""
    carry = Carry.initial(runner.model, batch)
    logits = q = done = None

    def halts(out):
        return out["q_halt"] > (0 if out["q_continue"] is None else out["q_continue"])
    for _ in range(runner.model.cfg.halt_max_steps):
        carry, out = runner.act_step(carry, batch, training=False)
        if not halt_early:
            logits, q = out["logits"], out["q_halt"]
            continue
        if logits is None:
            logits, q = out["logits"].clone(), out["q_halt"].clone()
            done = halts(out)
        else:
            keep = done.view(-1, 1, 1)
            logits = torch.where(keep, logits, out["logits"])
            q = torch.where(done, q, out["q_halt"])
            done = done | halts(out)
        if bool(done.all()):
            break
    return logits, q


def run_views(runner: Runner, ds: ArcDataset, views: PredictionViews, batch_size: int,
              keep_logprobs: bool = False, deadline: float | None = None, desc: str = "predict",
              halt_early: bool = False, progress: bool = True, stop=None, on_batch=None,
              bound_excludes_compile: bool = False) -> ViewPredictions:
    """Predict ``views`` in order, a batch per process at a time. Before each batch, a stop is agreed
    by every process: ``stop()`` (a signal), or ``deadline`` (time.time()) reached or too near for one
    more batch at the speed of a steady batch (:class:`arc_trm.clock.StepTimer`: the batch that
    compiles the graph is not one; a machine that slows down part-way shows at once); the views that
    finished are kept (``complete``). ``bound_excludes_compile``: the deadline is a bound on the views
    (an in-training evaluation's), so it moves by the time torch spends compiling; else it is a budget
    and compilation counts. A signal while compiling ends it at once (no view of that batch).
    ``on_batch(predictions, finished view indices)`` runs after each batch (the vote counts them as
    they come)."""
    acc, model = runner.acc, runner.model
    n, seq = len(views), runner.model.seq_len
    canvases = np.zeros((n, seq), dtype=np.uint8)
    halt = np.zeros(n, dtype=np.float32)
    logprobs = np.zeros((n, seq, VOCAB_SIZE), dtype=np.float16) if keep_logprobs else None
    complete = np.zeros(n, dtype=bool)
    out = ViewPredictions(views, canvases, halt, logprobs, complete)
    was_training = model.training
    model.eval()
    steps = max(1, -(-n // (batch_size * acc.num_processes)))
    bar = progress_bar(steps, desc, "batch", acc.is_main_process and progress)
    timer = StepTimer(acc.device.type)      # a batch that would end past the deadline is not started
    key = runner.compile_key("inference", batch_size)
    for idx, batch in views.batches(ds, batch_size, acc.process_index, acc.num_processes):
        end = deadline + timer.compile_s if deadline is not None and bound_excludes_compile else deadline
        late = end is not None and time.time() + timer.step_s > end
        if (deadline is not None or stop is not None) and runner.stop_agreed(late or bool(stop and stop())):
            break
        tb = runner.to_device(batch)
        try:
            with timer.step(), acc.autocast():
                logits, q = predict_logits(runner, tb, halt_early)
                preds = logits.argmax(-1).to(torch.uint8)
        except CompileInterrupted:
            break                       # the stop flag holds the signal; no view of this batch finished
        idx_t = torch.from_numpy(idx).to(acc.device)
        parts = [idx_t, preds, torch.sigmoid(q.float())]
        if keep_logprobs:
            parts.append(torch.log_softmax(logits.float(), -1).half())
        if acc.num_processes > 1:
            parts = [acc.gather(p.contiguous()) for p in parts]
        ids = parts[0].cpu().numpy()
        ok = ids >= 0
        canvases[ids[ok]] = parts[1].cpu().numpy()[ok]
        halt[ids[ok]] = parts[2].cpu().numpy()[ok]
        if keep_logprobs:
            logprobs[ids[ok]] = parts[3].cpu().numpy()[ok]
        complete[ids[ok]] = True
        if on_batch is not None:
            on_batch(out, ids[ok])
        timer.synced()                  # the copies to the host above waited for the device
        bar.update(1)
    bar.close()
    model.train(was_training)
    runner.compiled_now(key, timer.compile_s)
    out.compile_s = timer.compile_s
    return out
