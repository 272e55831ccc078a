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
import torch
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


# Steps timed at the start of TTT to plan the rest when there is a deadline.
PROBE_STEPS = 3


def fit_steps(phase_steps: list[int], step_s: float, seconds: float) -> list[int]:
    """Scale every phase by one factor so that all of them fit ``seconds`` (never up): a deadline
    must shorten both phases of ``embeddings_then_full``, not let the first eat the second."""
    total = sum(phase_steps)
    if total == 0 or step_s * total <= seconds:
        return list(phase_steps)
    f = max(seconds, 0.0) / (step_s * total)
    return [max(1, int(n * f)) if n > 0 else 0 for n in phase_steps]


def test_time_train(accelerator, core: TRM, table: PuzzleEmbeddings, ds: ArcDataset, task_mask: np.ndarray,
                    cfg: TTTConfig, seed: int, deadline: float | None = None, log=None) -> dict:
    """Train in place (``core`` and ``table`` are updated). Returns steps run per phase."""
    done = {}
    if not task_mask.any():
        return done
    world = accelerator.num_processes
    batch = max(world, cfg.global_batch_size // world * world)
    plan = [(name, steps) for name, steps in phases(cfg) if steps > 0]
    for k, (name, steps) in enumerate(plan):
        stream = TrainStream(ds, batch, seed, accelerator.process_index, world, task_mask=task_mask)
        sched = Schedule(cfg.lr, cfg.puzzle_emb_lr, cfg.lr_warmup_steps, steps, 1.0, cfg.weight_decay,
                         0.0, train_dense=(name == "full"))
        session = TrainSession(accelerator, core, table, stream, sched, seed)
        bar = tqdm(total=steps, desc=f"ttt:{name}", disable=not accelerator.is_main_process, unit="step")
        ran, t_probe = 0, 0.0
        while ran < steps:
            if ran == 1:
                t_probe = time.time()
            m = session.step()
            ran += 1
            bar.update(1)
            if deadline is not None and k == 0 and ran == min(PROBE_STEPS, steps) and ran > 1:
                # Time a step (the first one warms up), agree on it across ranks, fit every phase.
                step_s = (time.time() - t_probe) / (ran - 1)
                if world > 1:
                    step_s = float(accelerator.reduce(torch.tensor([step_s], device=accelerator.device), "max").item())
                left = [steps - ran] + [n for _, n in plan[1:]]
                fitted = fit_steps(left, step_s, deadline - time.time())
                steps = ran + fitted[0]
                plan[1:] = [(n, s) for (n, _), s in zip(plan[1:], fitted[1:])]   # in place: the loop reads it
                session.schedule.total_steps = steps
                bar.total = steps
                bar.refresh()
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
