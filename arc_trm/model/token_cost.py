"""What the token cores (TRM, URM, HRM) cost per block application, shared by their ``core.py``: FLOPs of one
block over one example's sequence (the canvas's cells plus the puzzle positions), and the activations a
training step keeps per sample (the memory estimate's calibration, arc_trm/model/memory.py)."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import CANVAS
from arc_trm.model.core import Core, Layout
from arc_trm.model.layers import swiglu_width
from arc_trm.model.losses import step_loss


def seq_total(m: ModelConfig, canvas: int = CANVAS) -> int:
    return canvas * canvas + m.puzzle_emb_len


def block_flops_per_token(m: ModelConfig, canvas: int = CANVAS) -> float:
    """Forward FLOPs per token of one block (projections, attention scores and values, SwiGLU)."""
    d, s = m.hidden_size, seq_total(m, canvas)
    channel_mlp = 2 * 3 * d * swiglu_width(d, m.expansion)
    if m.mlp == "conv_swiglu":   # the depthwise convolution: kernel multiply-adds per channel
        channel_mlp += 2 * m.conv_kernel * swiglu_width(d, m.expansion)
    if m.mlp_t:   # SwiGLU along the sequence, once per channel: per token 2·3·width(seq)·d
        mixing = 2 * 3 * d * swiglu_width(s, m.expansion)
    else:         # qkv + out projections, then scores and values over the sequence
        mixing = 2 * 4 * d * d + 4 * s * d
    return channel_mlp + mixing


def block_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One block applied to one example's whole sequence."""
    return block_flops_per_token(m, canvas) * seq_total(m, canvas)


def bytes_per_sample(m: ModelConfig, canvas: int, device_type: str, mixed_precision: str, grad_blocks: int) -> float:
    tokens = seq_total(m, canvas)
    per_token = 12 * m.hidden_size + 4 * swiglu_width(m.hidden_size, m.expansion)
    if device_type != "cuda" and not m.mlp_t:
        per_token += m.num_heads * tokens
    if m.mlp == "conv_swiglu":      # the convolution's input and output (bf16)
        per_token += swiglu_width(m.hidden_size, m.expansion)
    width = 2 if mixed_precision in ("bf16", "fp16") else 4
    return per_token * tokens * grad_blocks * width




def token_core(name: str, module, blocks_per_step, layout: Layout) -> Core:
    """A token core: its own module, block count and layout; the shared per-block cost."""
    return Core(name, module, blocks_per_step, block_flops,
                lambda m, canvas, device, mp: bytes_per_sample(m, canvas, device, mp, blocks_per_step(m)[1]), layout,
                lambda out, m: step_loss(out, m.loss))
