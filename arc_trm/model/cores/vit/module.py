"""VARC's ViT, computing what lillian039/VARC's ``src/ARC_ViT.py`` computes (its ``ARCViT`` with
``utils/pos_embed.py``'s ``VisionRotaryEmbeddingFast``), written for arc-trm's one training step.

Pixels (B, side²) of the pixel canvas → colour embeddings → a 2×2 (``patch_size``) convolution → learned
positions → the task token(s) prepended → ``num_layers`` post-norm blocks (attention with 2-D RoPE on the
patches, the task tokens unrotated, keys limited to the task tokens and the patches the input covers;
then a GELU MLP) → LayerNorm → per patch the logits of its patch_size² pixels. The tensor names are VARC's,
so its checkpoints load by name; its ``task_token_embed`` rows are arc-trm's puzzle-embedding rows, passed in
as for the token cores.

With ``model.vit.loops`` > 1 it is Loop-ViT (WenjieShu/LoopViT's ``src/ARC_LoopViT.py``, ``LoopARCViT`` with
its default layer, VARC's encoder layer, as its ARC-AGI-1 scripts train it): the blocks are one weight-tied
core applied ``loops`` times, a learned step embedding added before each pass, an exit gate read from the
task token after each pass, and optionally a dynamic exit (a sample's state frozen once its gate fires).
The blocks keep VARC's names (``encoder.layers.*``; LoopViT's ``core_layers.*`` map onto them).

Either way it is one ACT step, not a recursion: the carry is two empty tensors and the halting logit says
"halt", so arc-trm's ACT step, training session, TTT and inference drive it with ``halt_max_steps = 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import IGNORE_LABEL
from arc_trm.data.pixel_canvas import BACKGROUND, PIXEL_VOCAB


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Adjacent pairs (x₁, x₂) → (−x₂, x₁), as the reference's einops form."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(dim=-1)
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


class VisionRoPE(nn.Module):
    """2-D rotary embedding over a ``grid`` × ``grid`` patch grid: the first half of each head's channels
    rotate with the patch row, the second half with its column; the first ``skip`` positions (the task
    tokens) are left as they are. Frequencies and angles are computed as the reference computes them."""

    def __init__(self, head_dim: int, grid: int, skip: int, theta: float = 10000.0):
        super().__init__()
        dim = head_dim // 2
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        t = torch.arange(grid) / grid * grid
        freqs = torch.einsum("..., f -> ... f", t, freqs).repeat_interleave(2, dim=-1)
        freqs = torch.cat((freqs[:, None, :].expand(grid, grid, -1), freqs[None, :, :].expand(grid, grid, -1)), dim=-1)
        self.register_buffer("freqs_cos", freqs.cos().reshape(-1, freqs.shape[-1]), persistent=False)
        self.register_buffer("freqs_sin", freqs.sin().reshape(-1, freqs.shape[-1]), persistent=False)
        self.skip = skip

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        s = self.skip
        ret = t[:, :, s:] * self.freqs_cos + rotate_half(t[:, :, s:]) * self.freqs_sin
        return ret if s == 0 else torch.cat((t[:, :, :s], ret), dim=2)


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, rope: VisionRoPE, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.attn_dropout = nn.Dropout(dropout)
        self.proj_dropout = nn.Dropout(dropout)
        self.rotary = rope

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = self.rotary(q), self.rotary(k)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        if key_padding is not None:
            scores = scores.masked_fill(key_padding[:, None, None, :], torch.finfo(scores.dtype).min)
        weights = self.attn_dropout(torch.softmax(scores, dim=-1))
        out = torch.matmul(weights, v).transpose(1, 2).reshape(b, n, d)
        return self.proj_dropout(self.proj(out))


class EncoderBlock(nn.Module):
    """Post-norm: x ← LN(x + attention(x)); x ← LN(x + MLP(x)), dropout after each sub-layer."""

    def __init__(self, d: int, heads: int, mlp_dim: int, rope: VisionRoPE, dropout: float):
        super().__init__()
        self.self_attn = SelfAttention(d, heads, rope, dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, mlp_dim)
        self.activation = nn.GELU()
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(mlp_dim, d)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x, key_padding)))
        h = self.linear2(self.dropout2(self.activation(self.linear1(x))))
        return self.norm2(x + self.dropout3(h))


class Encoder(nn.Module):
    def __init__(self, blocks: list[EncoderBlock]):
        super().__init__()
        self.layers = nn.ModuleList(blocks)


class PatchEmbed(nn.Module):
    """timm's PatchEmbed as VARC builds it: a patch-sized, patch-strided convolution, flattened to tokens."""

    def __init__(self, d: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(d, d, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """One forward pass per example over the pixel canvas of ``model.vit.image_size`` (``token_cells``, the
    token canvas's cell count the token cores are built with, means nothing to it)."""

    def __init__(self, cfg: ModelConfig, token_cells: int = 0):
        super().__init__()
        v, d = cfg.vit, cfg.hidden_size
        side = v.image_size
        self.cfg, self.seq_len, self.side, self.patch = cfg, side * side, side, v.patch_size
        self.grid = side // v.patch_size
        self.tasks = cfg.puzzle_emb_len
        self.seq_total = self.tasks + self.grid * self.grid
        # the reference sizes its RoPE grid from the whole sequence, task tokens included
        rope_grid = int((self.seq_total) ** 0.5)
        rope = VisionRoPE(d // cfg.num_heads, rope_grid, skip=self.tasks)
        self.color_embed = nn.Embedding(PIXEL_VOCAB, d)
        self.patch_embed = PatchEmbed(d, v.patch_size)
        self.positional_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, d))
        self.encoder = Encoder([EncoderBlock(d, cfg.num_heads, v.mlp_dim, rope, v.dropout)
                                for _ in range(cfg.num_layers)])
        # Loop-ViT's pieces, in its order of construction
        self.step_embed = nn.Embedding(v.loops, d) if v.step_embeddings else None
        self.exit_gate = (nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d // 2), nn.GELU(), nn.Linear(d // 2, 1))
                          if v.exit_gate else None)
        self.dropout = nn.Dropout(v.dropout)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, PIXEL_VOCAB * v.patch_size ** 2)
        nn.init.trunc_normal_(self.positional_embed, std=0.02)
        nn.init.trunc_normal_(self.color_embed.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        if self.step_embed is not None:
            nn.init.trunc_normal_(self.step_embed.weight, std=0.02)
        if self.exit_gate is not None:
            for m in self.exit_gate:
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

    def empty_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        empty = torch.zeros(batch, 0, self.cfg.hidden_size, device=device)
        return empty, empty

    def key_padding(self, pixels: torch.Tensor) -> torch.Tensor:
        """True for keys no query attends to: patches the input grid does not touch (the task tokens are
        always attended to). The input canvas has no border, so the grid is where it is not background."""
        b, p, g = pixels.shape[0], self.patch, self.grid
        covered = (pixels != BACKGROUND).view(b, g, p, g, p).amax(dim=(2, 4)).reshape(b, g * g)
        return torch.cat([torch.zeros(b, self.tasks, dtype=torch.bool, device=pixels.device), ~covered], dim=1)

    def logits(self, inputs: torch.Tensor, puzzle_emb: torch.Tensor) -> torch.Tensor:
        """(B, side²) pixel tokens and (B, tasks × hidden) task-token rows → (B, side², PIXEL_VOCAB) logits."""
        return self.looped(inputs, puzzle_emb)[0]

    def looped(self, inputs: torch.Tensor, puzzle_emb: torch.Tensor, dynamic_exit: bool | None = None):
        """The logits, and Loop-ViT's gate: (logits, gate probabilities (B, passes run) or None, passes per
        sample (B,)). ``dynamic_exit`` defaults to ``model.vit.dynamic_exit``."""
        b, side, p, g, v = inputs.shape[0], self.side, self.patch, self.grid, self.cfg.vit
        pixels = inputs.long().view(b, side, side)
        x = self.patch_embed(self.color_embed(pixels).permute(0, 3, 1, 2))
        x = x + self.positional_embed[:, : x.size(1), :]
        task = puzzle_emb.reshape(b, self.tasks, -1)
        x = self.dropout(torch.cat([task, x], dim=1))
        pad = self.key_padding(pixels)
        dynamic = (v.dynamic_exit if dynamic_exit is None else dynamic_exit) and self.exit_gate is not None
        exit_steps = torch.full((b,), v.loops, dtype=torch.long, device=x.device)
        finished = cached = None
        if dynamic:
            finished, cached = torch.zeros(b, dtype=torch.bool, device=x.device), torch.zeros_like(x)
        gates = []
        for step in range(v.loops):
            if self.step_embed is not None:
                x = x + self.step_embed.weight[min(step, self.step_embed.num_embeddings - 1)].view(1, 1, -1)
            for layer in self.encoder.layers:
                x = layer(x, pad)
            if self.exit_gate is None:
                continue
            prob = torch.sigmoid(self.exit_gate(x[:, 0, :]).squeeze(-1))
            gates.append(prob)
            if dynamic:        # the reference's exit: a sample's state frozen at its first confident pass
                now = (prob >= v.gate_threshold) & (step + 1 >= v.min_loops) & ~finished
                if now.any():
                    cached[now] = x[now]
                    exit_steps[now] = step + 1
                    finished = finished | now
                x = torch.where(finished.view(b, 1, 1), cached, x)
                if finished.all():
                    break
        if dynamic:
            x = torch.where(finished.view(b, 1, 1), cached, x)
        out = self.head(self.norm(x)[:, self.tasks:])
        # (B, g·g, p·p·V) → (B, side, side, V) → flat pixels, as the reference reshapes its (B, V, side, side)
        out = out.reshape(b, g, g, p, p, PIXEL_VOCAB).permute(0, 1, 3, 2, 4, 5).reshape(b, side * side, PIXEL_VOCAB)
        return out, (torch.stack(gates, dim=1) if gates else None), exit_steps

    def forward(self, z_H: torch.Tensor, z_L: torch.Tensor, reset: torch.Tensor, inputs: torch.Tensor,
                puzzle_emb: torch.Tensor):
        """arc-trm's step signature: the carry passes through empty, one pass gives the logits, and the
        halting logit is +inf-like so every sample halts after its one step."""
        logits, gates, exit_steps = self.looped(inputs, puzzle_emb)
        q = torch.full((inputs.shape[0], 1), 1e4, device=inputs.device)
        aux = {} if gates is None else {"gate_probs": gates, "exit_steps": exit_steps}
        return z_H, z_L, logits, q, aux


def pixel_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """VARC's loss: cross-entropy over every scored pixel of the batch (the grid and its border; the
    background's label is ``IGNORE_LABEL``), averaged over those pixels."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long(), ignore_index=IGNORE_LABEL)


def step_loss(out: dict, cfg: ModelConfig):
    """arc-trm's loss convention (summed over the batch; the training session divides by its local batch)
    for VARC's pixel-averaged loss: the mean times the micro-batch. With one micro-batch per step (VARC's
    setting) the session's division gives VARC's mean back (exactly for power-of-two batches, where the
    multiply and divide are exact); with accumulation each micro-batch's mean counts by its share.
    Returns (loss, exact per sample, valid per sample, metric sums) as the token cores' loss does."""
    logits, labels = out["logits"], out["data"]["labels"]
    mask = labels != IGNORE_LABEL
    counts = mask.sum(-1)
    with torch.no_grad():
        correct = mask & (logits.argmax(-1) == labels)
        exact = correct.sum(-1) == counts
        valid = counts > 0
    loss = pixel_loss(logits, labels)
    v = cfg.vit
    aux = out.get("aux") or {}
    if "gate_probs" in aux:
        neg_entropy, share = gate_regularizers(aux["gate_probs"], aux["exit_steps"], v.loops)
        if v.gate_entropy_weight > 0:
            loss = loss + v.gate_entropy_weight * neg_entropy
        if v.loop_penalty_weight > 0:
            loss = loss + v.loop_penalty_weight * share
    loss = loss * labels.shape[0]
    zero = torch.zeros((), device=logits.device)
    metrics = {"lm_loss": loss.detach(), "halt_loss": zero,
               "cell_accuracy": torch.where(valid, correct.sum(-1) / counts.clamp_min(1), 0).sum().detach()}
    return loss, exact, valid, metrics


def gate_regularizers(gates: torch.Tensor, exit_steps: torch.Tensor, loops: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Loop-ViT's two terms: the negative mean binary entropy of the gate's probabilities (so adding it
    maximises the entropy) and the mean share of the loops each sample ran."""
    eps = 1e-6
    entropy = -(gates * torch.log(gates + eps) + (1 - gates) * torch.log(1 - gates + eps))
    return -entropy.mean(), (exit_steps.float() / loops).mean()
