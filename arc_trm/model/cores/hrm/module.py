"""The Hierarchical Reasoning Model (HRM, arXiv 2506.21734; public code in sapientinc/HRM), as the TRM
repository measured it (its ``models/recursive_reasoning/hrm.py``, which follows sapientinc's
``models/hrm/hrm_act_v1.py``; the two differ only in the TRM copy's optional MLP-t mixer).

Two modules, each its own block stack: a low-level one (``num_layers`` blocks, the reference's
``L_layers``) and a high-level one (``hrm.h_layers``, its ``H_layers``), with persistent initial states
``H_init`` / ``L_init``. Per ACT step, H_cycles × L_cycles low-level updates ``z_L ← L(z_L, z_H + x)``
with a high-level update ``z_H ← H(z_H, z_L)`` after every L_cycles of them; all but the last low-level
and the last high-level update run without gradient (HRM's one-step gradient). The answer is read from
``z_H``; its two-row Q head gives the halt and continue logits, which the Q-learning halting rule
(``no_ACT_continue = false``, the HRM presets) compares and trains (:func:`arc_trm.model.recursion.act_step`).
"""

from __future__ import annotations

import torch
from torch import nn

from arc_trm.config import ModelConfig
from arc_trm.model.layers import Block
from arc_trm.model.cores.trm.module import TRM


class HRM(TRM):
    """TRM's embeddings, read-out, carried (z_H, z_L) and ``H_init`` / ``L_init``; ``layers`` is the
    low-level module, ``h_layers`` the high-level one."""

    def __init__(self, cfg: ModelConfig, seq_len: int):
        super().__init__(cfg, seq_len)
        self.h_layers = nn.ModuleList(Block(cfg, self.seq_total) for _ in range(cfg.hrm.h_layers))

    def forward(self, z_H: torch.Tensor, z_L: torch.Tensor, reset: torch.Tensor, inputs: torch.Tensor,
                puzzle_emb: torch.Tensor):
        """One supervision step. Returns (z_H, z_L) detached, logits (B, seq_len, vocab) and the Q logits
        (B, rows)."""
        z_H, z_L, x = self.start(z_H, z_L, reset, inputs, puzzle_emb)
        c = self.cfg
        with torch.no_grad():
            for h in range(c.H_cycles):
                for k in range(c.L_cycles):
                    if not (h == c.H_cycles - 1 and k == c.L_cycles - 1):
                        z_L = self.f(z_L, z_H + x)
                if h != c.H_cycles - 1:
                    z_H = self.f(z_H, z_L, self.h_layers)
        z_L = self.f(z_L, z_H + x)                 # the one step with gradient
        z_H = self.f(z_H, z_L, self.h_layers)
        logits, q = self.read_out(z_H)
        return z_H.detach(), z_L.detach(), logits, q
