"""FLOP counts of the recursive models (TRM, URM): what one test view and one training example cost. Used by the
benchmarks (achieved TFLOP/s), by test-time training's time planning (the cost of a view
against a training step) and by the Kaggle planner."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import CANVAS
from arc_trm.model.layers import swiglu_width


def seq_total(m: ModelConfig, canvas: int = CANVAS) -> int:
    return canvas * canvas + m.puzzle_emb_len


def flops_per_token(m: ModelConfig, canvas: int = CANVAS) -> float:
    """Forward FLOPs per token of one application of the block stack (projections, attention
    scores and values, SwiGLU)."""
    d, s = m.hidden_size, seq_total(m, canvas)
    channel_mlp = 2 * 3 * d * swiglu_width(d, m.expansion)
    if m.mlp == "conv_swiglu":   # the depthwise convolution: kernel multiply-adds per channel
        channel_mlp += 2 * m.conv_kernel * swiglu_width(d, m.expansion)
    if m.mlp_t:   # SwiGLU along the sequence, once per channel: per token 2·3·width(seq)·d
        mixing = 2 * 3 * d * swiglu_width(s, m.expansion)
    else:         # qkv + out projections, then scores and values over the sequence
        mixing = 2 * 4 * d * d + 4 * s * d
    return m.num_layers * (channel_mlp + mixing)


def application_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One application of the block stack to one example's whole sequence."""
    return flops_per_token(m, canvas) * seq_total(m, canvas)


def applications_per_cycle(m: ModelConfig) -> int:
    """Block-stack applications per H cycle: TRM runs L updates of z_L and one of z_H; URM runs L
    iterations of its one state."""
    return m.L_cycles if m.recursion == "urm" else m.L_cycles + 1


def view_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One test view through every ACT step: ``halt_max_steps × H × applications per cycle``
    (TRM: L + 1; URM: L)."""
    return m.halt_max_steps * m.H_cycles * applications_per_cycle(m) * application_flops(m, canvas)


def train_example_flops(m: ModelConfig, canvas: int = CANVAS, weight_grads: bool = True) -> float:
    """One training example for one supervision step: H−1 cycles forward without gradient, the
    last cycle forward and backward (≈ 3× forward; ≈ 2× when the dense weights are frozen and
    only the activations' gradients flow back to the puzzle embedding). At paper size URM applies
    48 blocks per step, 24 with gradient; TRM 30 and 10."""
    grad_cycle = 3 if weight_grads else 2
    calls = (m.H_cycles - 1 + grad_cycle) * applications_per_cycle(m)
    return calls * application_flops(m, canvas)
