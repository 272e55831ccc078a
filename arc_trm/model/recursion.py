"""What the token cores (TRM, URM, HRM) share: the recursive model's embeddings, read-out and halting
head, the carry between supervision steps and the ACT (adaptive computation time) step that drives any
of them. Each core's own recursion is a subclass in ``arc_trm/model/cores/<core>/module.py``.

The puzzle embedding table is *not* part of this module: the caller looks up the rows of the
batch's puzzle IDs and passes them in, so DDP never touches the (very large) table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import VOCAB_SIZE
from arc_trm.model.layers import Block, Linear, RotaryEmbedding, trunc_normal_


class RecursiveModel(nn.Module):
    """What the recursive models share: token embeddings with the puzzle embedding prepended, the
    one block stack ``f``, the answer head and the halting head. ``seq_len`` is the canvas's cell
    count (900 for the paper's 30×30), a property of the dataset, not a model setting."""

    def __init__(self, cfg: ModelConfig, seq_len: int):
        super().__init__()
        self.cfg = cfg
        self.seq_len = seq_len
        d = cfg.hidden_size
        self.seq_total = seq_len + cfg.puzzle_emb_len
        self.embed_scale = math.sqrt(d)
        self.stream_dtype = getattr(torch, cfg.stream_dtype)
        self.embed_tokens = nn.Parameter(trunc_normal_(torch.empty(VOCAB_SIZE, d), std=1 / self.embed_scale))
        self.embed_pos = (nn.Parameter(trunc_normal_(torch.empty(self.seq_total, d), std=1 / self.embed_scale))
                          if cfg.pos_encoding == "learned" else None)
        self.rope = (RotaryEmbedding(d // cfg.num_heads, self.seq_total, cfg.rope_theta)
                     if cfg.pos_encoding == "rope" else None)
        self.layers = nn.ModuleList(Block(cfg, self.seq_total) for _ in range(cfg.num_layers))
        self.lm_head = Linear(d, VOCAB_SIZE)
        # the halting head: one row (halt) where only it is read, both of the references' rows (halt,
        # continue) where the Q-learning rule reads the second, or where a model's code keeps them
        self.q_head = Linear(d, self.q_rows(), bias=True)
        with torch.no_grad():  # halting starts near "don't halt", as in the reference
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    def q_rows(self) -> int:
        return 1 if self.cfg.no_ACT_continue else 2

    # ------------------------------------------------------------------ pieces
    def f(self, z: torch.Tensor, injection: torch.Tensor, layers: nn.ModuleList | None = None) -> torch.Tensor:
        """The one recursive network: add the injection, run the block stack (``layers``: another stack,
        HRM's high-level module)."""
        z = z + injection
        for layer in self.layers if layers is None else layers:
            z = layer(z, self.rope)
        return z

    def input_embedding(self, inputs: torch.Tensor, puzzle_emb: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the puzzle embedding prepended as ``puzzle_emb_len`` positions, in the
        references' order: every piece is cast to the stream's dtype first, then added and scaled by
        √hidden in that dtype (scaling in float32 and casting after rounds differently in bf16
        whenever √hidden is not a power of two). The token rows are looked up by ``F.embedding`` in
        float32 and then cast: the references' forward and, in a float32 stream, their gradient to the
        last bit; in a bf16 stream the table's gradient is summed in float32 where the references sum
        it in bf16 (more accurate, on purpose)."""
        b = inputs.shape[0]
        d, dt = self.cfg.hidden_size, self.stream_dtype
        tok = torch.nn.functional.embedding(inputs.long(), self.embed_tokens).to(dt)
        pe = puzzle_emb.to(dt)
        pad = self.cfg.puzzle_emb_len * d - pe.shape[-1]
        if pad > 0:
            pe = torch.nn.functional.pad(pe, (0, pad))
        x = torch.cat([pe.view(b, self.cfg.puzzle_emb_len, d), tok], dim=1)
        if self.embed_pos is not None:
            x = 0.707106781 * (x + self.embed_pos.to(dt))
        return self.embed_scale * x

    def read_out(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits over the grid positions (B, seq_len, vocab) and the Q head's logits at position 0, in
        float32 (B, rows): row 0 halts; a second row, where the model has one, is "continue"."""
        return self.lm_head(z)[:, self.cfg.puzzle_emb_len:], self.q_head(z[:, 0]).float()


def dense_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class Carry:
    """What persists between ACT steps for each batch slot."""

    z_H: torch.Tensor
    z_L: torch.Tensor
    steps: torch.Tensor      # (B,) int: supervision steps taken by the sample in this slot
    halted: torch.Tensor     # (B,) bool: slot is free; the next step admits a new sample
    data: dict[str, torch.Tensor]

    @classmethod
    def initial(cls, model: RecursiveModel, batch: dict[str, torch.Tensor]) -> "Carry":
        b = batch["inputs"].shape[0]
        device = batch["inputs"].device
        z_H, z_L = model.empty_state(b, device)
        return cls(z_H, z_L, torch.zeros(b, dtype=torch.int32, device=device),
                   torch.ones(b, dtype=torch.bool, device=device), {k: v.clone() for k, v in batch.items()})


def admit(carry: Carry, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Halted slots take the new batch's samples; others keep theirs.
    Returns (current data, reset mask, step counts before this step)."""
    h = carry.halted
    data = {k: torch.where(h.view((-1,) + (1,) * (v.ndim - 1)), batch[k], v) for k, v in carry.data.items()}
    steps = torch.where(h, torch.zeros_like(carry.steps), carry.steps)
    return data, h, steps


def act_step(forward, cfg: ModelConfig, carry: Carry, batch: dict[str, torch.Tensor], puzzle_emb_of,
             training: bool, min_halt_steps: torch.Tensor | None = None):
    """Run one ACT step through ``forward`` (a :class:`TRM`, or the same module DDP-wrapped or
    compiled), with ``cfg`` its model config. ``puzzle_emb_of(ids)`` returns the embedding rows.

    Training: a slot halts when the halting logit is positive (``no_ACT_continue``, TRM's and URM's
    rule), or above the "continue" logit (HRM's Q-learning rule), once it has taken at least its
    exploration minimum; and always at ``halt_max_steps``. Evaluation halts only at
    ``halt_max_steps`` so a batch stays in lock-step. With the Q-learning rule, training also runs the
    model once more without gradient from the new state (as the references do) for the bootstrapped
    target of the "continue" logit: sigmoid of the next step's halt logit at the last step, else of
    the larger of its two logits.
    Returns (new carry, outputs dict with logits/q_halt/q_continue/target_q_continue/puzzle_emb/data;
    the last two None without the Q-learning rule).
    """
    data, reset, steps = admit(carry, batch)
    emb = puzzle_emb_of(data["puzzle_ids"])
    result = forward(carry.z_H, carry.z_L, reset, data["inputs"], emb)
    z_H, z_L, logits, q = result[:4]
    aux = result[4] if len(result) > 4 else None     # a core's extra outputs for its loss (Loop-ViT's gate)
    q_halt = q[..., 0]
    q_continue = None if cfg.no_ACT_continue else q[..., 1]
    target = None
    with torch.no_grad():
        steps = steps + 1
        last = steps >= cfg.halt_max_steps
        halted = last
        if training and cfg.halt_max_steps > 1:
            halted = halted | (q_halt > 0 if q_continue is None else q_halt > q_continue)
            if min_halt_steps is not None:
                halted = halted & (steps >= min_halt_steps)
            if q_continue is not None:
                nq = forward(z_H, z_L, torch.zeros_like(reset), data["inputs"], emb.detach())[3]
                target = torch.sigmoid(torch.where(last, nq[..., 0], torch.maximum(nq[..., 0], nq[..., 1])))
    new = Carry(z_H, z_L, steps, halted, data)
    return new, {"logits": logits, "q_halt": q_halt, "q_continue": q_continue, "target_q_continue": target,
                 "puzzle_emb": emb, "data": data, "aux": aux}


def exploration_min_steps(rng, batch: int, cfg: ModelConfig) -> "torch.Tensor":
    """Per-slot minimum step count: with probability ``halt_exploration_prob`` a slot must run
    2..halt_max_steps steps before it may halt. Drawn by the caller's numpy generator so every
    process draws the same global batch."""
    explore = rng.random(batch) < cfg.halt_exploration_prob
    if cfg.halt_max_steps < 2:          # one step: nothing to explore (the draw keeps the generator's use)
        return torch.zeros(batch, dtype=torch.int32)
    minimum = rng.integers(2, cfg.halt_max_steps + 1, size=batch)
    return torch.from_numpy((explore * minimum).astype("int32"))
