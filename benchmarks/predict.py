"""Inference views/s and TTT steps/s on CPU (float32) for tiny-cpu and trm-paper-att, and the
projected wall time of the Kaggle job (240 tasks) on 4x L4, derived from FLOP counts (not
measured on a GPU). One JSON line.

    python benchmarks/predict.py
"""

from __future__ import annotations

import json
import time

import torch
from accelerate import Accelerator

from arc_trm.config import load_config
from arc_trm.data.batches import TrainStream
from arc_trm.data.ingest import build_dataset
from arc_trm.model.layers import swiglu_width
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.solve.inference import predict_logits
from arc_trm.train.loop import Schedule, TrainSession

L4_BF16_PEAK = 121e12      # dense bf16 FLOP/s of one L4 (datasheet, without sparsity)
ASSUMED_MFU = 0.35         # assumption for small-batch 512-wide transformer work


def flops_per_f_token(cfg, seq_total: int) -> float:
    d = cfg.hidden_size
    per_layer = 2 * (3 * d * d + d * d + 3 * d * swiglu_width(d, cfg.expansion)) + 4 * seq_total * d
    return cfg.num_layers * per_layer


def cpu_rates(preset: str, canvas: int, batch: int) -> dict:
    cfg = load_config(preset).model
    cfg.seq_len = canvas ** 2
    torch.manual_seed(0)
    core = TRM(cfg).eval()
    ds = build_dataset([], [], 4, 0, synthetic_tasks=8, synthetic_test_tasks=2, on_error=None, canvas=canvas)
    table = PuzzleEmbeddings(ds.num_puzzle_ids, cfg.hidden_size)
    b = {"inputs": torch.zeros(batch, cfg.seq_len, dtype=torch.int32), "labels": torch.zeros(batch, cfg.seq_len),
         "puzzle_ids": torch.ones(batch, dtype=torch.int32)}
    t = time.perf_counter()
    predict_logits(core, core, table, b)
    views_s = batch / (time.perf_counter() - t)
    s = TrainSession(Accelerator(cpu=True), core.train(), table, TrainStream(ds, batch, 0),
                     Schedule(1e-4, 1e-2, 1, 10), 0)
    s.step()
    t = time.perf_counter()
    s.step()
    return {"preset": preset, "seq_len": cfg.seq_len, "batch": batch, "views_per_s": round(views_s, 3),
            "ttt_steps_per_s": round(1 / (time.perf_counter() - t), 3)}


def kaggle_projection() -> dict:
    cfg = load_config("kaggle-2025")
    m = cfg.model
    seq_total = 900 + m.puzzle_emb_len
    f_calls_step = m.H_cycles * (m.L_cycles + 1)
    per_token_f = flops_per_f_token(m, seq_total)
    infer_view = m.halt_max_steps * f_calls_step * per_token_f * seq_total
    # TTT example-step: (H-1) no-grad cycles forward + one cycle forward and backward (×3)
    ttt_example = ((m.H_cycles - 1) * (m.L_cycles + 1) + 3 * (m.L_cycles + 1)) * per_token_f * seq_total
    tasks, inputs = 240, 264           # ARC-AGI-2 averages ~1.1 test inputs per task
    views = inputs * cfg.predict.views_per_input
    ttt_examples = (cfg.ttt.embedding_steps + cfg.ttt.full_steps) * cfg.ttt.global_batch_size
    total = views * infer_view + ttt_examples * ttt_example
    rate = 4 * L4_BF16_PEAK * ASSUMED_MFU
    return {"tasks": tasks, "views_per_input": cfg.predict.views_per_input,
            "ttt_steps": cfg.ttt.embedding_steps + cfg.ttt.full_steps, "ttt_global_batch": cfg.ttt.global_batch_size,
            "tflop_inference": round(views * infer_view / 1e12), "tflop_ttt": round(ttt_examples * ttt_example / 1e12),
            "assumed_mfu": ASSUMED_MFU, "projected_hours_4xL4": round(total / rate / 3600, 2), "limit_hours": 12}


def main() -> None:
    print(json.dumps({"benchmark": "predict", "device": "cpu", "dtype": "float32",
                      "results": [cpu_rates("tiny-cpu", 10, 64), cpu_rates("trm-paper-att", 30, 2)],
                      "kaggle_projection_from_flops": kaggle_projection()}))


if __name__ == "__main__":
    main()
