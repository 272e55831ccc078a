"""FLOP counts of any core: what one test view and one training example cost, from the core's block
applications per step and one block's FLOPs (its folder's ``cost.py``). Used by the benchmarks (achieved TFLOP/s), by test-time training's time planning (the cost of a view
against a training step) and by the Kaggle planner."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import CANVAS
from arc_trm.model.cores.registry import core_of


def application_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One application of the (low-level) block stack to one example's whole sequence."""
    return m.num_layers * block_flops(m, canvas)


def blocks_per_step(m: ModelConfig) -> tuple[int, int]:
    """Block applications in one ACT step, and how many of them carry gradient: the core's own count."""
    return core_of(m).blocks_per_step(m)


def block_flops(m: ModelConfig, canvas: int = CANVAS) -> float:
    """One block applied to one example's whole sequence: the core's own count (a vision core's canvas is
    its own, so ``canvas``, the token canvas's side, means nothing to it)."""
    return core_of(m).block_flops(m, canvas)


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
