"""Dense optimizer (Adam-atan2, or URM's Muon) and the LR schedule (linear warmup, then cosine to a floor)."""

from __future__ import annotations

import math

import torch
from adam_atan2_pytorch import AdamAtan2
from torch import nn

from arc_trm.config import OptimConfig
from arc_trm.model.muon import Muon


def dense_optimizer(model: nn.Module, o: OptimConfig) -> torch.optim.Optimizer:
    """``optim.dense``: torch's AdamW (VARC's), Adam-atan2 in the paper's form (update = atan2(m̂, √v̂), a = b = 1, weight
    decay applied as w ← w·(1 − lr·wd)), or Muon for the 2-D weights with AdamW for the rest (URM's
    ARC-AGI-2 recipe). The LR is set before every step from the schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    if o.dense == "adamw":
        return torch.optim.AdamW(params, lr=max(o.lr, 1e-12), betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
    if o.dense == "muon":
        return Muon([p for p in params if p.ndim == 2], [p for p in params if p.ndim != 2], lr=max(o.lr, 1e-12),
                    weight_decay=o.weight_decay, betas=(o.beta1, o.beta2))
    return AdamAtan2(params, lr=max(o.lr, 1e-12), betas=(o.beta1, o.beta2), weight_decay=o.weight_decay,
                     a=1.0, b=1.0)


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float, start: str = "one_step") -> float:
    """LR used for optimizer step ``step`` (0-based): warmup, then cosine from base to
    ``min_ratio``·base (``min_ratio`` = 1 keeps it flat, as TRM's ARC runs do). ``start``: "one_step"
    (TRM: warmup step k at (k+1)/warmup) or "zero" (URM: k/warmup, the first step at lr 0)."""
    if step < warmup:
        return base_lr * (step + (start == "one_step")) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
