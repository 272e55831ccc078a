"""Augmented inference: every view through ``halt_max_steps`` ACT steps, in large batches.

Each process runs its share of the views; results are gathered so every process holds the
predictions of all views (the vote runs on the main process).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from arc_trm.data.batches import PredictionViews
from arc_trm.data.dataset import ArcDataset
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM, Carry, act_step


@dataclass
class ViewPredictions:
    views: PredictionViews
    canvases: np.ndarray            # (V, S) uint8 argmax tokens
    halt_prob: np.ndarray           # (V,) float32 sigmoid of the final halting logit
    logprobs: np.ndarray | None     # (V, S, vocab) float16 when requested (product of experts)
    complete: np.ndarray            # (V,) bool: view was predicted (False if the time ran out)


@torch.no_grad()
def predict_logits(model, core: TRM, table: PuzzleEmbeddings, batch: dict[str, torch.Tensor]):
    """Run one batch for exactly ``halt_max_steps`` steps; return final logits and halt logits."""
    carry = Carry.initial(core, batch)
    out = None
    for _ in range(core.cfg.halt_max_steps):
        carry, out = act_step(model, core, carry, batch, lambda ids: table.lookup(ids, False), False)
    return out["logits"], out["q_halt"]


def run_views(accelerator, model, core: TRM, table: PuzzleEmbeddings, ds: ArcDataset, views: PredictionViews,
              batch_size: int, keep_logprobs: bool = False, deadline: float | None = None,
              desc: str = "predict") -> ViewPredictions:
    acc = accelerator
    n, seq = len(views), ds.canvas ** 2
    canvases = np.zeros((n, seq), dtype=np.uint8)
    halt = np.zeros(n, dtype=np.float32)
    logprobs = np.zeros((n, seq, core.cfg.vocab_size), dtype=np.float16) if keep_logprobs else None
    complete = np.zeros(n, dtype=bool)
    was_training = model.training
    model.eval()
    steps = max(1, -(-n // (batch_size * acc.num_processes)))
    bar = tqdm(total=steps, desc=desc, disable=not acc.is_main_process, unit="batch")
    for idx, batch in views.batches(ds, batch_size, acc.process_index, acc.num_processes):
        if deadline is not None:
            out_of_time = torch.tensor([time.time() > deadline], device=acc.device)
            if acc.num_processes > 1:
                out_of_time = acc.reduce(out_of_time.int(), "max").bool()
            if out_of_time.item():
                break
        tb = {k: torch.from_numpy(v).to(acc.device) for k, v in batch.items()}
        with acc.autocast():
            logits, q = predict_logits(model, core, table, tb)
        preds = logits.argmax(-1).to(torch.uint8)
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
        bar.update(1)
    bar.close()
    model.train(was_training)
    return ViewPredictions(views, canvases, halt, logprobs, complete)
