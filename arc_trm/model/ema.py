"""Exponential moving average of the dense weights, with a context manager to evaluate with it."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, rate: float = 0.999):
        self.rate = rate
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach(), 1.0 - self.rate)

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
