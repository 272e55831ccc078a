"""The Tiny Recursive Model (TRM, arXiv 2510.04871; SamsungSAILMontreal/TinyRecursiveModels).

One small block stack ``f`` is applied recursively. Per ACT step (one supervision step):
H_cycles−1 cycles without gradient, then one with gradient; a cycle runs L_cycles updates
``z_L ← f(z_L, z_H + x)`` and then ``z_H ← f(z_H, z_L)``. The answer is read from ``z_H``
and a halting logit from its first position. The carry (z_H, z_L) is detached between steps.
"""

from __future__ import annotations

import torch

from arc_trm.config import ModelConfig
from arc_trm.model.layers import trunc_normal_
from arc_trm.model.recursion import RecursiveModel


class TRM(RecursiveModel):
    def __init__(self, cfg: ModelConfig, seq_len: int):
        super().__init__(cfg, seq_len)
        d = cfg.hidden_size
        # Fixed random initial states (buffers in the reference code too, not trained).
        self.register_buffer("H_init", trunc_normal_(torch.empty(d), std=1.0))
        self.register_buffer("L_init", trunc_normal_(torch.empty(d), std=1.0))

    def empty_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (batch, self.seq_total, self.cfg.hidden_size)
        return (torch.zeros(shape, device=device, dtype=self.stream_dtype),
                torch.zeros(shape, device=device, dtype=self.stream_dtype))

    def start(self, z_H: torch.Tensor, z_L: torch.Tensor, reset: torch.Tensor, inputs: torch.Tensor,
              puzzle_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A step's beginning: reset slots take ``H_init`` / ``L_init``, both states in the stream's dtype,
        and the input embedding."""
        r, dt = reset.view(-1, 1, 1), self.stream_dtype
        z_H = torch.where(r, self.H_init.to(dt), z_H.to(dt))
        z_L = torch.where(r, self.L_init.to(dt), z_L.to(dt))
        return z_H, z_L, self.input_embedding(inputs, puzzle_emb)

    # ------------------------------------------------------------------ one ACT step
    def forward(self, z_H: torch.Tensor, z_L: torch.Tensor, reset: torch.Tensor, inputs: torch.Tensor,
                puzzle_emb: torch.Tensor):
        """One supervision step. Returns (z_H, z_L) detached, logits (B, seq_len, vocab) and the Q
        logits (B, 1)."""
        z_H, z_L, x = self.start(z_H, z_L, reset, inputs, puzzle_emb)
        c = self.cfg
        with torch.no_grad():
            for _ in range(c.H_cycles - 1):
                for _ in range(c.L_cycles):
                    z_L = self.f(z_L, z_H + x)
                z_H = self.f(z_H, z_L)
        for _ in range(c.L_cycles):
            z_L = self.f(z_L, z_H + x)
        z_H = self.f(z_H, z_L)
        logits, q = self.read_out(z_H)
        return z_H.detach(), z_L.detach(), logits, q
