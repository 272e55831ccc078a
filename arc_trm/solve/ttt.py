"""Test-time training (TTT) for tasks the checkpoint has never seen.

Their augmented copies get new embedding rows (initialised from the mean of the trained rows);
training uses their demonstration pairs only, through the same :class:`TrainSession` as
pre-training. Modes: ``embeddings`` (dense weights frozen), ``full`` (everything from the
start), ``embeddings_then_full`` (embeddings first, then all weights: the schedule that worked
best in public reports).
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from arc_trm.config import TTTConfig
from arc_trm.data.batches import TrainStream
from arc_trm.data.dataset import ArcDataset
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.train.loop import Schedule, TrainSession, any_process


def phases(cfg: TTTConfig) -> list[tuple[str, int]]:
    return {"off": [], "embeddings": [("embeddings", cfg.embedding_steps)],
            "full": [("full", cfg.full_steps)],
            "embeddings_then_full": [("embeddings", cfg.embedding_steps), ("full", cfg.full_steps)]}[cfg.mode]


def test_time_train(accelerator, core: TRM, table: PuzzleEmbeddings, ds: ArcDataset, task_mask: np.ndarray,
                    cfg: TTTConfig, seed: int, deadline: float | None = None, log=None) -> dict:
    """Train in place (``core`` and ``table`` are updated). Returns steps run per phase."""
    done = {}
    if not task_mask.any():
        return done
    world = accelerator.num_processes
    batch = max(world, cfg.global_batch_size // world * world)
    for name, steps in phases(cfg):
        if steps <= 0:
            continue
        stream = TrainStream(ds, batch, seed, accelerator.process_index, world, task_mask=task_mask)
        sched = Schedule(cfg.lr, cfg.puzzle_emb_lr, cfg.lr_warmup_steps, steps, 1.0, cfg.weight_decay,
                         0.0, train_dense=(name == "full"))
        session = TrainSession(accelerator, core, table, stream, sched, seed)
        bar = tqdm(total=steps, desc=f"ttt:{name}", disable=not accelerator.is_main_process, unit="step")
        ran = 0
        for _ in range(steps):
            m = session.step()
            ran += 1
            bar.update(1)
            if ran % 10 == 0:
                bar.set_postfix(loss=f"{m['loss']:.3f}", exact=f"{m['exact_accuracy']:.2f}")
                if log is not None:
                    log({"kind": f"ttt_{name}", **m})
            if deadline is not None and any_process(accelerator, time.time() > deadline):
                break
        bar.close()
        table.weight = session.table.weight
        for p in core.parameters():
            p.requires_grad_(True)
        done[name] = ran
        if deadline is not None and any_process(accelerator, time.time() > deadline):
            break
    return done
