"""The one accelerate training session, used by ``arc-trm train`` and by test-time training.

Dense weights go through ``accelerator.prepare`` (DDP on several processes) and Adam-atan2;
the puzzle-embedding table stays outside DDP and is updated by sparse sign-SGD with the
batch's IDs and gradients gathered from every process. Each process's share of the global
batch is cut into ``accumulation`` micro-batches, each with its own ACT carry (its slots stream
samples through up to ``halt_max_steps`` supervision steps); their gradients accumulate into one
optimizer step and one sign-SGD update, so 1 process × 4 micro-batches computes what 4
processes compute. Metrics stay on the device and are synchronised only when read.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arc_trm.config import OptimConfig
from arc_trm.data.batches import BatchSplit, StreamState, TrainStream
from arc_trm.infer.runner import Runner
from arc_trm.model.ema import EMA
from arc_trm.model.cores.registry import core_of
from arc_trm.model.optim import dense_optimizer, lr_at, set_lr
from arc_trm.model.puzzle_embedding import TableAdamW
from arc_trm.model.recursion import Carry, exploration_min_steps
from arc_trm.train.tensor_tree import read_tree, write_tree

# Per-step sums kept on the device: loss, samples halted, halted and exact, their step counts,
# cell accuracy, valid samples.
_STATS = 6


@dataclass
class Schedule:
    """Learning rates of one phase of training (pre-training or a TTT phase)."""

    optim: OptimConfig
    total_steps: int
    train_dense: bool = True          # False: embeddings only (dense weights frozen)

    def lr(self, step: int) -> float:
        o = self.optim
        return lr_at(step, o.lr, o.lr_warmup_steps, self.total_steps, o.lr_min_ratio, o.warmup_start)

    def emb_lr(self, step: int) -> float:
        o = self.optim
        return lr_at(step, o.puzzle_emb_lr, o.lr_warmup_steps, self.total_steps, o.lr_min_ratio, o.warmup_start)


def warmup_in_steps(o: OptimConfig, examples_per_pass: int, global_batch: int) -> OptimConfig:
    """``optim.lr_warmup_epochs`` as optimizer steps of a stream with ``examples_per_pass`` examples per epoch
    (VARC's warmup is 10 epochs); the config as it is when the warmup is given in steps."""
    if o.lr_warmup_epochs <= 0:
        return o
    return dataclasses.replace(o, lr_warmup_steps=max(1, round(o.lr_warmup_epochs * examples_per_pass / global_batch)))


def rng_states() -> dict:
    """This process's random generators (Python, numpy's global one, torch's CPU and CUDA ones)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class Progress:
    """Step counter and data position of the last batch *used* (not merely drawn ahead),
    checkpointed with the accelerate state."""

    def __init__(self):
        self.step = 0
        self.stream = StreamState()

    def state_dict(self) -> dict:
        return {"step": self.step, "stream": vars(self.stream).copy()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.stream = StreamState(**state["stream"])


class Prefetcher:
    """Draws the next batch on a background thread while the device computes (numpy and torch
    release the GIL for most of the rendering), into pinned memory on CUDA so the copy to the
    device does not block. Draws happen in order, one at a time, so the stream is the same as
    drawing inline."""

    def __init__(self, stream: TrainStream, pin: bool):
        self.stream, self.pin = stream, pin
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="arc-trm-batches")
        self._next = None

    def _draw(self):
        batch = {k: torch.from_numpy(v) for k, v in self.stream.next_batch().items()}
        if self.pin:
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return batch, copy.copy(self.stream.state)

    def next(self) -> tuple[dict[str, torch.Tensor], StreamState]:
        fut = self._next or self._pool.submit(self._draw)
        result = fut.result()
        self._next = self._pool.submit(self._draw)
        return result

    def restart(self, state: StreamState) -> None:
        """Continue from ``state`` (after a resume): drop what was drawn ahead."""
        if self._next is not None:
            self._next.result()
            self._next = None
        self.stream.state = copy.copy(state)

    def close(self) -> None:
        if self._next is not None:
            self._next.result()
            self._next = None
        self._pool.shutdown()


class TrainSession:
    def __init__(self, runner: Runner, stream: TrainStream, schedule: Schedule, split: BatchSplit, seed: int):
        self.runner = runner
        self.acc = runner.acc
        self.stream = stream
        self.schedule = schedule
        self.split = split
        self.seed = seed
        model = runner.model
        for p in model.parameters():
            p.requires_grad_(schedule.train_dense)
        self.optimizer = None
        if schedule.train_dense:
            wrapped, self.optimizer = self.acc.prepare(model, dense_optimizer(model, schedule.optim))
            runner.forward = wrapped
        o = schedule.optim
        self.ema = EMA(model, o.ema_rate, o.ema_update) if o.ema and schedule.train_dense else None
        # VARC's task tokens: AdamW over the whole table (TRM's sign-SGD otherwise)
        self.table_optimizer = (TableAdamW(runner.table, o.lr, (o.beta1, o.beta2), o.weight_decay)
                                if o.puzzle_emb_update == "adamw" else None)
        self.progress = Progress()
        self.progress.stream = copy.copy(stream.state)
        self.carries: list[Carry | None] = [None] * split.accumulation
        self.saved_accumulation: int | None = None    # the micro-batches per process of the state resumed from
        self._stats = torch.zeros(_STATS, device=self.acc.device)
        self._batches = Prefetcher(stream, pin=self.acc.device.type == "cuda")

    @property
    def model(self):
        return self.runner.model

    @property
    def table(self):
        return self.runner.table

    # ------------------------------------------------------------------ one step
    def step(self) -> None:
        """One optimizer step over the global batch. Nothing here waits for the device."""
        acc, split, cfg = self.acc, self.split, self.model.cfg
        step = self.progress.step
        batch, state = self._batches.next()
        rng = np.random.default_rng([self.seed, 3, step])
        min_steps = exploration_min_steps(rng, split.global_batch, cfg)
        mine = min_steps[acc.process_index * split.local:(acc.process_index + 1) * split.local]
        self.runner.forward.train()
        ids, grads = [], []
        for k in range(split.accumulation):
            part = slice(k * split.micro, (k + 1) * split.micro)
            mb = self.runner.to_device({key: v[part] for key, v in batch.items()})
            carry = self.carries[k] or Carry.initial(self.model, mb)
            last = k == split.accumulation - 1
            sync = nullcontext() if last or self.optimizer is None else acc.no_sync(self.runner.forward)
            with sync:
                with acc.autocast():
                    carry, out = self.runner.act_step(carry, mb, True, mine[part].to(acc.device))
                    loss, exact, valid, m = core_of(cfg).step_loss(out, cfg)
                acc.backward(loss / split.local)
            self.carries[k] = carry
            emb = out["puzzle_emb"]
            if emb.grad is not None:
                ids.append(out["data"]["puzzle_ids"])
                grads.append(emb.grad)
            halted = carry.halted & valid
            with torch.no_grad():
                self._stats += torch.stack([loss.detach().float(), halted.sum().float(), (halted & exact).sum().float(),
                                            torch.where(halted, carry.steps, 0).sum().float(),
                                            m["cell_accuracy"].float(), valid.sum().float()])
        o = self.schedule.optim
        gather = acc.gather if acc.num_processes > 1 else None
        if ids and self.table_optimizer is None:
            self.table.sign_sgd_step(torch.cat(ids), torch.cat(grads), self.schedule.emb_lr(step),
                                     o.puzzle_emb_weight_decay, gather)
        elif ids:
            g = self.table_optimizer.gradient(torch.cat(ids), torch.cat(grads), acc.num_processes, gather)
            if acc.scaler is not None:            # fp16: the dense gradients are unscaled below, this one here
                g /= acc.scaler.get_scale()
        if o.max_grad_norm > 0:
            self._clip(o.max_grad_norm)
        if self.table_optimizer is not None and ids:
            finite = acc.scaler is None or bool(torch.isfinite(self.table_optimizer.param.grad).all())
            if finite:
                self.table_optimizer.step(self.schedule.lr(step))
            else:
                self.table_optimizer.param.grad = None
        if self.optimizer is not None:
            set_lr(self.optimizer, self.schedule.lr(step))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None:
                self.ema.update(self.model)
        self.progress.step += 1
        self.progress.stream = state

    def _clip(self, max_norm: float) -> None:
        """Clip the global gradient norm as VARC's ``clip_grad_norm_(model.parameters(), 1.0)`` does: over the
        dense weights and (with AdamW on the table) the task-token table, which its model holds second, after
        the colour embedding. Under fp16 the dense gradients are unscaled first (accelerate's loss scaler)."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.acc.scaler is not None and self.optimizer is not None:
            self.acc.unscale_gradients()
        if self.table_optimizer is not None and self.table_optimizer.param.grad is not None:
            params.insert(min(1, len(params)), self.table_optimizer.param)
        if params:
            torch.nn.utils.clip_grad_norm_(params, max_norm)

    def pop_metrics(self) -> dict[str, float]:
        """Metrics over the slots that halted since the last call (their final answers), summed
        over processes; this is where the host waits for the device."""
        stats = self.acc.reduce(self._stats, "sum") if self.acc.num_processes > 1 else self._stats
        s = stats.tolist()
        self._stats = torch.zeros(_STATS, device=self.acc.device)
        n_halt, n_valid = max(s[1], 1.0), max(s[5], 1.0)
        return {"step": self.progress.step, "lr": self.schedule.lr(self.progress.step - 1),
                "loss": s[0] / n_valid, "exact_accuracy": s[2] / n_halt, "halted": s[1],
                "mean_steps": s[3] / n_halt, "cell_accuracy": s[4] / n_valid}

    # ------------------------------------------------------------------ resume
    def save_state(self, folder: Path) -> None:
        """Exact-resume state in safetensors and JSON (:mod:`arc_trm.train.tensor_tree`), never a pickle:
        ``session.*`` (main process: model, optimizer, loss scaler, embedding table, EMA, step and data
        position) and ``rank<K>.*`` (each process: its RNG states and its micro-batches' ACT carries)."""
        folder, acc = Path(folder), self.acc
        folder.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            write_tree(folder / "session", {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
                "table": self.table.weight, "ema": self.ema.state_dict() if self.ema is not None else None,
                "table_optimizer": self.table_optimizer.state_dict() if self.table_optimizer is not None else None,
                "progress": self.progress.state_dict()})
        carries = [None if c is None else {"z_H": c.z_H, "z_L": c.z_L, "steps": c.steps, "halted": c.halted,
                                           "data": c.data} for c in self.carries]
        write_tree(folder / f"rank{acc.process_index}", {"rng": rng_states(), "carries": carries})
        acc.wait_for_everyone()

    def load_state(self, folder: Path) -> int:
        """Restore a :meth:`save_state` folder; returns the step it holds."""
        folder, acc = Path(folder), self.acc
        self.carries = [None] * len(self.carries)     # nothing of an earlier, failed attempt stays
        state = read_tree(folder / "session")
        mine = read_tree(folder / f"rank{acc.process_index}")
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if acc.scaler is not None and state["scaler"] is not None:
            acc.scaler.load_state_dict(state["scaler"])
        self.table.weight = state["table"].to(acc.device)
        if self.table_optimizer is not None and state.get("table_optimizer") is not None:
            self.table_optimizer.load_state_dict(state["table_optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.progress.load_state_dict(state["progress"])
        set_rng_states(mine["rng"])
        self._batches.restart(self.progress.stream)
        saved = mine["carries"]
        self.saved_accumulation = len(saved)
        if len(saved) == len(self.carries):
            dev = acc.device
            self.carries = [None if c is None else
                            Carry(c["z_H"].to(dev), c["z_L"].to(dev), c["steps"].to(dev), c["halted"].to(dev),
                                  {k: v.to(dev) for k, v in c["data"].items()}) for c in saved]
        return self.progress.step

    def close(self) -> None:
        self._batches.close()
