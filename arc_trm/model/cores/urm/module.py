"""The Universal Reasoning Model (URM, arXiv 2512.14693; public code in UbiquantAI/URM): TRM's code
base with one hidden state instead of the z_H/z_L pair.

Per ACT step ("loop"): (H_cycles − 1) × L_cycles iterations without gradient, then L_cycles with
gradient (truncated backpropagation through the loops); each iteration adds the input embedding
to the state and runs the block stack (``num_layers`` post-norm blocks, ConvSwiGLU in URM's
recipe). Answer and halting logit are read from the state as in TRM; the state is detached
between steps. The carry's second slot (TRM's z_L) is an empty tensor, so the ACT step, the
training session and checkpoints are TRM's.
"""

from __future__ import annotations

import torch

from arc_trm.config import ModelConfig
from arc_trm.model.layers import Linear, trunc_normal_
from arc_trm.model.recursion import RecursiveModel


class URM(RecursiveModel):
    def __init__(self, cfg: ModelConfig, seq_len: int):
        super().__init__(cfg, seq_len)
        # URM's two-row head (halt, continue), as its code has it: only row 0 is read (the continue
        # row gets no gradient), but the head's matrix product keeps the reference's shape, which
        # makes the gradients bit-identical to URM's code rather than equal to the last bits. (It
        # replaces the base's head, drawing the same initialisation as earlier arc-trm versions.)
        self.q_head = Linear(cfg.hidden_size, 2, bias=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)
        # URM's persistent buffer (trunc-normal, std 1): every reset slot starts from it. Kept in
        # float32 whatever the stream (a bf16 reference buffer imports exactly).
        self.register_buffer("init_hidden", trunc_normal_(torch.empty(cfg.hidden_size), std=1.0))

    def empty_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(batch, self.seq_total, self.cfg.hidden_size, device=device, dtype=self.stream_dtype),
                torch.zeros(batch, 0, self.cfg.hidden_size, device=device, dtype=self.stream_dtype))

    def forward(self, h: torch.Tensor, unused: torch.Tensor, reset: torch.Tensor, inputs: torch.Tensor,
                puzzle_emb: torch.Tensor):
        """One supervision step: returns (h detached, the empty second slot, logits, Q logits (B, 2))."""
        dt = self.stream_dtype
        h = torch.where(reset.view(-1, 1, 1), self.init_hidden.to(dt), h.to(dt))
        x = self.input_embedding(inputs, puzzle_emb)
        c = self.cfg
        with torch.no_grad():
            for _ in range((c.H_cycles - 1) * c.L_cycles):
                h = self.f(h, x)
        for _ in range(c.L_cycles):
            h = self.f(h, x)
        logits, q = self.read_out(h)
        return h.detach(), unused, logits, q
