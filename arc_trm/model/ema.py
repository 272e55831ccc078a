"""Exponential moving average of the dense weights, with a context manager to evaluate with it.

``optim.ema_update`` names how a shadow moves, ``shadow ← (1 − rate)·shadow + rate·w`` written three
ways that round differently (they agree to the last bit or two in float32; a bf16 parameter, URM's
depthwise convolution, is where they part):
- ``lerp``: one ``lerp`` in the parameter's dtype (arc-trm's until the references were matched here,
  and the default, so earlier runs and the golden files are unchanged);
- ``reference``: ``(1 − rate)·w + rate·shadow`` in the parameter's dtype, as both references' EMAHelper
  computes it: to the last bit theirs, including a bf16 shadow that stalls where a 0.001 step is below
  bf16's resolution;
- ``float32``: every shadow kept in float32 (a bf16 parameter's too) and moved by ``lerp``: the steps
  below bf16's resolution add up; the shadow is cast to the parameter's dtype when it is applied.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

UPDATES = ("lerp", "reference", "float32")


class EMA:
    def __init__(self, model: nn.Module, rate: float = 0.999, update: str = "lerp"):
        if update not in UPDATES:
            raise ValueError(f"ema update must be one of {UPDATES}, got {update!r}")
        self.rate, self.mode = rate, update
        wide = update == "float32"
        self.shadow = {n: p.detach().clone().to(torch.float32 if wide else p.dtype)
                       for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                s, w = self.shadow[n], p.detach().to(self.shadow[n].dtype)
                if self.mode == "reference":
                    s.copy_((1.0 - self.rate) * w + self.rate * s)
                else:
                    s.lerp_(w, 1.0 - self.rate)

    @contextmanager
    def applied(self, model: nn.Module):
        """Temporarily load the EMA weights into ``model``; the trained weights come back after."""
        backup = {}
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.shadow:
                    backup[n] = p.detach().clone()
                    p.copy_(self.shadow[n])
        try:
            yield model
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in backup:
                        p.copy_(backup[n])

    def state_dict(self) -> dict:
        return {"rate": self.rate, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.rate = state["rate"]
        for n, t in state["shadow"].items():
            self.shadow[n].copy_(t)
