"""FLOP-based planning of the Kaggle job: how many TTT steps and views fit a time budget on given
hardware. Used to size the ``kaggle-l4x4`` preset, by ``arc-trm package`` to check a package
before upload, and by ``benchmarks/predict.py``. These are projections from FLOP counts and an
assumed utilisation, not measurements; on Kaggle, predict times its own steps and fits the plan
to the budget it really has.
"""

from __future__ import annotations

from dataclasses import dataclass

from arc_trm.config import ModelConfig, PredictConfig, TTTConfig
from arc_trm.model.flops import train_example_flops, view_flops


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
            test_inputs: int = KAGGLE_TEST_INPUTS, canvas: int = 30, tasks: int = KAGGLE_TASKS) -> Projection:
    """``ttt.scope = "task"`` runs TTT's steps once per task: ``tasks`` times."""
    rate = hw.devices * hw.peak_flops * hw.mfu
    views = pred.views_per_input or ttt.augmentations
    phases = ttt.phases()
    runs = tasks if ttt.scope == "task" else 1
    example_s = sum(n * step_example_flops(m, name, canvas) for name, n in phases) / rate
    return Projection(views, runs * sum(n for _, n in phases), ttt.global_batch_size,
                      test_inputs * views * view_flops(m, canvas) / rate, runs * example_s * ttt.global_batch_size)


def step_example_flops(m: ModelConfig, phase: str, canvas: int = 30) -> float:
    """One example of one TTT step: the embedding phase back-propagates into the activations only."""
    return train_example_flops(m, canvas, weight_grads=phase != "embeddings")


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
    phases = ttt.phases() or [("full", 1)]
    per_example = sum(step_example_flops(m, name, canvas) for name, _ in phases) / len(phases)
    per_step = ttt.global_batch_size * per_example / rate
    steps = max(0, int(left // per_step))
    if ttt.mode == "embeddings_then_full":
        steps -= steps % 2
    return Projection(views, steps, ttt.global_batch_size, views * per_view, steps * per_step)
