"""The ViT's cost: one pass of ``num_layers`` blocks per step (``loops`` passes of them for Loop-ViT), all with
gradient; per token of the sequence
(the task tokens and the patches) a block does its qkv and output projections, attention scores and values
over the whole sequence, and the GELU MLP. The patch embedding and the head are left out, as the token cores
leave out their embeddings and heads."""

from __future__ import annotations

from arc_trm.config import ModelConfig


def seq_total(m: ModelConfig) -> int:
    return m.puzzle_emb_len + (m.vit.image_size // m.vit.patch_size) ** 2


def blocks_per_step(m: ModelConfig) -> tuple[int, int]:
    n = m.num_layers * m.vit.loops
    return n, n


def block_flops(m: ModelConfig, canvas: int = 0) -> float:
    """One block over one example's whole sequence (``canvas``, the token canvas's side, is not the ViT's)."""
    d, s = m.hidden_size, seq_total(m)
    per_token = 2 * 4 * d * d + 4 * s * d + 2 * 2 * d * m.vit.mlp_dim
    return per_token * s


def activation_bytes(m: ModelConfig, canvas: int, device_type: str, mixed_precision: str) -> float:
    """What one sample's step keeps per block and token: the projections, norms and residuals (about 14·d),
    the MLP's three mlp_dim-wide tensors, and the attention's scores, weights and dropout mask (heads × seq
    each: the reference's explicit attention keeps them on every device)."""
    s = seq_total(m)
    per_token = 14 * m.hidden_size + 3 * m.vit.mlp_dim + 3 * m.num_heads * s
    width = 2 if mixed_precision in ("bf16", "fp16") else 4
    return per_token * s * blocks_per_step(m)[1] * width
