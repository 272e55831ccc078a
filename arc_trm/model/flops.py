"""FLOP counts of the recursive models (TRM, URM, HRM): what one test view and one training example cost. Used by the
benchmarks (achieved TFLOP/s), by test-time training's time planning (the cost of a view
against a training step) and by the Kaggle planner."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import CANVAS
from arc_trm.model.layers import swiglu_width


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


def flops_per_token(m: ModelConfig, canvas: int = CANVAS) -> float:
    """Forward FLOPs per token of one application of the (low-level) block stack."""
    return m.num_layers * block_flops_per_token(m, canvas)


def application_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One application of the (low-level) block stack to one example's whole sequence."""
    return flops_per_token(m, canvas) * seq_total(m, canvas)


def blocks_per_step(m: ModelConfig) -> tuple[int, int]:
    """Block applications in one ACT step, and how many of them carry gradient. TRM: H × (L + 1) stack
    applications (L of z_L, one of z_H), the last cycle's L + 1 with gradient; URM: H × L, the last L
    with gradient; HRM: H × L low-level and H high-level applications, one of each with gradient. At
    paper size TRM applies 30 blocks, 10 with gradient; URM 48 and 24; HRM 24 and 8."""
    n, H, L = m.num_layers, m.H_cycles, m.L_cycles
    if m.recursion == "urm":
        return H * L * n, L * n
    if m.recursion == "hrm":
        return H * L * n + H * m.h_layers, n + m.h_layers
    return H * (L + 1) * n, (L + 1) * n


def block_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One block applied to one example's whole sequence."""
    return block_flops_per_token(m, canvas) * seq_total(m, canvas)


def view_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One test view through every ACT step."""
    return m.halt_max_steps * blocks_per_step(m)[0] * block_flops(m, canvas)


def train_example_flops(m: ModelConfig, canvas: int = CANVAS, weight_grads: bool = True) -> float:
    """One training example for one supervision step: the blocks without gradient forward, those with
    gradient forward and backward (≈ 3× forward; ≈ 2× when the dense weights are frozen and only the
    activations' gradients flow back to the puzzle embedding); with HRM's Q-learning rule one more
    whole forward without gradient for the continue logit's target."""
    total, grad = blocks_per_step(m)
    target = total if not m.no_ACT_continue else 0
    return (total - grad + (3 if weight_grads else 2) * grad + target) * block_flops(m, canvas)
