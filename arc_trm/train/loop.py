"""The one accelerate training loop, used by ``arc-trm train`` and by test-time training.

Dense weights go through ``accelerator.prepare`` (DDP on several processes) and Adam-atan2;
the puzzle-embedding table stays outside DDP and is updated by sparse sign-SGD with the
batch's IDs and gradients gathered from every process. The ACT carry streams samples through
up to ``halt_max_steps`` supervision steps: each step admits new samples into halted slots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arc_trm.config import ModelConfig
from arc_trm.data.batches import StreamState, TrainStream
from arc_trm.model.ema import EMA
from arc_trm.model.losses import act_loss
from arc_trm.model.optim import dense_optimizer, lr_at, set_lr
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM, Carry, act_step, exploration_min_steps


@dataclass
class Schedule:
    """Learning rates for one phase of training (pre-training or a TTT phase)."""

    lr: float
    puzzle_emb_lr: float
    warmup_steps: int
    total_steps: int
    min_ratio: float = 1.0
    weight_decay: float = 0.1
    puzzle_emb_weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    train_dense: bool = True          # False: embeddings only (dense weights frozen)


class Progress:
    """Step counter and data position, checkpointed with the accelerate state."""

    def __init__(self, stream: TrainStream):
        self.step = 0
        self.stream = stream

    def state_dict(self) -> dict:
        return {"step": self.step, "stream": vars(self.stream.state).copy()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.stream.state = StreamState(**state["stream"])


class TrainSession:
    def __init__(self, accelerator, core: TRM, table: PuzzleEmbeddings, stream: TrainStream,
                 schedule: Schedule, seed: int, ema_rate: float | None = None):
        self.acc = accelerator
        self.core = core
        self.table = table
        self.stream = stream
        self.schedule = schedule
        self.seed = seed
        self.cfg: ModelConfig = core.cfg
        for p in core.parameters():
            p.requires_grad_(schedule.train_dense)
        self.optimizer = None
        if schedule.train_dense:
            opt = dense_optimizer(core, schedule.lr, schedule.weight_decay, schedule.betas)
            self.model, self.optimizer = accelerator.prepare(core, opt)
        else:
            self.model = core.to(accelerator.device)
        self.table.weight = self.table.weight.to(accelerator.device)
        self.ema = EMA(core, ema_rate) if ema_rate and schedule.train_dense else None
        self.progress = Progress(stream)
        self.carry: Carry | None = None

    # ------------------------------------------------------------------ one step
    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(self.acc.device) for k, v in batch.items()}

    def step(self) -> dict[str, float]:
        s, acc = self.schedule, self.acc
        step = self.progress.step
        lr = lr_at(step, s.lr, s.warmup_steps, s.total_steps, s.min_ratio)
        emb_lr = lr_at(step, s.puzzle_emb_lr, s.warmup_steps, s.total_steps, s.min_ratio)
        batch = self._to_device(self.stream.next_batch())
        if self.carry is None:
            self.carry = Carry.initial(self.core, batch)
        local = batch["inputs"].shape[0]
        rng = np.random.default_rng([self.seed, 3, step])
        min_steps = exploration_min_steps(rng, local * acc.num_processes, self.cfg)
        min_steps = min_steps[acc.process_index * local:(acc.process_index + 1) * local].to(acc.device)
        self.model.train()
        with acc.autocast():
            self.carry, out = act_step(self.model, self.core, self.carry, batch,
                                       lambda ids: self.table.lookup(ids, True), True, min_steps)
            loss, exact, valid, m = act_loss(out["logits"], out["q_halt"], out["data"]["labels"], self.cfg.loss)
        acc.backward(loss / local)
        emb = out["puzzle_emb"]
        if emb.grad is not None:
            gather = acc.gather if acc.num_processes > 1 else None
            self.table.sign_sgd_step(out["data"]["puzzle_ids"], emb.grad, emb_lr, s.puzzle_emb_weight_decay, gather)
        if self.optimizer is not None:
            set_lr(self.optimizer, lr)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None:
                self.ema.update(self.core)
        self.progress.step += 1
        # metrics over slots that halted this step (their final answer), summed over processes
        halted = self.carry.halted & valid
        stats = torch.stack([loss.detach().float(), halted.sum().float(), (halted & exact).sum().float(),
                             torch.where(halted, self.carry.steps, 0).sum().float(), m["cell_accuracy"].float(),
                             valid.sum().float()])
        stats = acc.reduce(stats, "sum") if acc.num_processes > 1 else stats
        n_halt = max(stats[1].item(), 1.0)
        return {"step": self.progress.step, "lr": lr, "loss": stats[0].item() / max(stats[5].item(), 1),
                "exact_accuracy": stats[2].item() / n_halt, "halted": stats[1].item(),
                "mean_steps": stats[3].item() / n_halt, "cell_accuracy": stats[4].item() / max(stats[5].item(), 1)}

    # ------------------------------------------------------------------ resume
    def save_state(self, folder: Path) -> None:
        """Exact-resume state: model, optimizer, RNG (accelerate), plus table, EMA, step, data
        position and each process's ACT carry."""
        folder = Path(folder)
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            folder.mkdir(parents=True, exist_ok=True)
        self.acc.wait_for_everyone()
        if self.optimizer is not None:
            self.acc.save_state(str(folder / "accelerate"))
        if self.acc.is_main_process:
            extra = {"progress": self.progress.state_dict(), "table": self.table.weight.cpu(),
                     "ema": self.ema.state_dict() if self.ema else None}
            torch.save(extra, folder / "session.pt")
        c = self.carry
        if c is not None:
            torch.save({"z_H": c.z_H.cpu(), "z_L": c.z_L.cpu(), "steps": c.steps.cpu(), "halted": c.halted.cpu(),
                        "data": {k: v.cpu() for k, v in c.data.items()}},
                       folder / f"carry_rank{self.acc.process_index}.pt")
        self.acc.wait_for_everyone()

    def load_state(self, folder: Path) -> None:
        folder = Path(folder)
        if self.optimizer is not None:
            self.acc.load_state(str(folder / "accelerate"))
        extra = torch.load(folder / "session.pt", map_location="cpu", weights_only=False)
        self.progress.load_state_dict(extra["progress"])
        self.table.weight = extra["table"].to(self.acc.device)
        if self.ema is not None and extra["ema"] is not None:
            self.ema.load_state_dict(extra["ema"])
        cpath = folder / f"carry_rank{self.acc.process_index}.pt"
        if cpath.is_file():
            c = torch.load(cpath, map_location=self.acc.device, weights_only=False)
            self.carry = Carry(c["z_H"], c["z_L"], c["steps"], c["halted"], c["data"])


def default_mixed_precision(choice: str) -> str:
    """'auto' → bf16 on GPUs that support it, else full precision (CPU tests stay exact)."""
    if choice != "auto":
        return choice
    if os.environ.get("ACCELERATE_USE_CPU") or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "no"


def any_process(accelerator, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any: stop decisions (time limits, signals) must
    agree, or the ranks that go on wait forever in the next collective."""
    if accelerator.num_processes == 1:
        return bool(flag)
    t = torch.tensor([int(flag)], device=accelerator.device)
    return bool(accelerator.reduce(t, "max").item())
