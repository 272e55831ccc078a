"""FLOP-based planning of a predict run: how many TTT steps and views fit a time budget on given
hardware. Used to size the ``kaggle-l4x4`` preset, by ``arc-trm package`` to check a package
before upload, and by ``benchmarks/predict.py``. These are projections from FLOP counts and an
assumed utilisation, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from arc_trm.config import ModelConfig, PredictConfig, TTTConfig
from arc_trm.model.layers import swiglu_width
from arc_trm.solve.ttt import phases


@dataclass(frozen=True)
class Hardware:
    name: str
    devices: int
    peak_flops: float          # dense bf16 FLOP/s of one device, without sparsity
    mfu: float                 # assumed fraction of peak reached by small-batch TRM work


# NVIDIA L4 datasheet: 121 TFLOP/s dense bf16. 35 % utilisation is an assumption for a 512-wide,
# 2-layer network at batch 256; the planner's margin absorbs an error of 2x.
L4X4 = Hardware("4x NVIDIA L4", 4, 121e12, 0.35)

# ARC-AGI-2 hidden test set: 240 tasks, about 1.1 test inputs per task.
KAGGLE_TASKS, KAGGLE_TEST_INPUTS = 240, 264


def flops_per_token(m: ModelConfig, seq_total: int) -> float:
    """Forward FLOPs per token of one application of the 2-layer block (projections, attention
    scores and values, SwiGLU)."""
    d = m.hidden_size
    channel_mlp = 2 * 3 * d * swiglu_width(d, m.expansion)
    if m.mlp_t:   # SwiGLU along the sequence, once per channel: per token 2·3·width(seq)·d
        mixing = 2 * 3 * d * swiglu_width(seq_total, m.expansion)
    else:         # qkv + out projections, then scores and values over the sequence
        mixing = 2 * 4 * d * d + 4 * seq_total * d
    return m.num_layers * (channel_mlp + mixing)


def seq_total(m: ModelConfig, canvas: int = 30) -> int:
    return canvas * canvas + m.puzzle_emb_len


def view_flops(m: ModelConfig, canvas: int = 30) -> float:
    """One test view through every ACT step: ``halt_max_steps × H × (L + 1)`` block applications."""
    s = seq_total(m, canvas)
    return m.halt_max_steps * m.H_cycles * (m.L_cycles + 1) * flops_per_token(m, s) * s


def ttt_example_flops(m: ModelConfig, canvas: int = 30) -> float:
    """One training example for one supervision step: H−1 cycles forward without gradient, the last
    cycle forward and backward (≈3× forward)."""
    s = seq_total(m, canvas)
    calls = (m.H_cycles - 1) * (m.L_cycles + 1) + 3 * (m.L_cycles + 1)
    return calls * flops_per_token(m, s) * s


@dataclass
class Projection:
    views: int
    ttt_steps: int
    ttt_batch: int
    inference_s: float
    ttt_s: float

    @property
    def total_s(self) -> float:
        return self.inference_s + self.ttt_s

    def as_dict(self) -> dict:
        return {"views_per_input": self.views, "ttt_steps": self.ttt_steps, "ttt_global_batch": self.ttt_batch,
                "projected_inference_h": round(self.inference_s / 3600, 2),
                "projected_ttt_h": round(self.ttt_s / 3600, 2), "projected_total_h": round(self.total_s / 3600, 2)}


def project(m: ModelConfig, ttt: TTTConfig, pred: PredictConfig, hw: Hardware = L4X4,
            test_inputs: int = KAGGLE_TEST_INPUTS, canvas: int = 30) -> Projection:
    rate = hw.devices * hw.peak_flops * hw.mfu
    views = pred.views_per_input or ttt.augmentations
    steps = sum(n for _, n in phases(ttt))
    return Projection(views, steps, ttt.global_batch_size,
                      test_inputs * views * view_flops(m, canvas) / rate,
                      steps * ttt.global_batch_size * ttt_example_flops(m, canvas) / rate)


def plan(m: ModelConfig, budget_s: float, ttt: TTTConfig, hw: Hardware = L4X4,
         test_inputs: int = KAGGLE_TEST_INPUTS, margin: float = 0.5, canvas: int = 30) -> Projection:
    """Largest plan that uses at most ``(1 − margin)`` of the budget: every augmented view of every
    test input (inference is the cheaper part and votes need views), the rest to TTT steps at
    ``ttt.global_batch_size``, split evenly between the two phases of ``embeddings_then_full``."""
    rate = hw.devices * hw.peak_flops * hw.mfu
    usable = budget_s * (1 - margin)
    views = ttt.augmentations
    per_view = test_inputs * view_flops(m, canvas) / rate
    while views > 1 and views * per_view > usable / 3:     # inference gets at most a third
        views //= 2
    left = usable - views * per_view
    per_step = ttt.global_batch_size * ttt_example_flops(m, canvas) / rate
    steps = max(0, int(left // per_step))
    if ttt.mode == "embeddings_then_full":
        steps -= steps % 2
    return Projection(views, steps, ttt.global_batch_size, views * per_view, steps * per_step)
