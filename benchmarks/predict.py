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
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.solve.budget import KAGGLE_TASKS, KAGGLE_TEST_INPUTS, L4X4, project, ttt_example_flops, view_flops
from arc_trm.solve.inference import predict_logits
from arc_trm.train.loop import Schedule, TrainSession

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
    cfg = load_config("kaggle-l4x4")
    p = project(cfg.model, cfg.ttt, cfg.predict, L4X4)
    return {"preset": "kaggle-l4x4", "hardware": L4X4.name, "assumed_mfu": L4X4.mfu, "tasks": KAGGLE_TASKS,
            "test_inputs": KAGGLE_TEST_INPUTS, "tflop_per_view": round(view_flops(cfg.model) / 1e12, 2),
            "tflop_per_ttt_example": round(ttt_example_flops(cfg.model) / 1e12, 3), **p.as_dict(),
            "budget_h": round(cfg.predict.time_budget_s / 3600, 2), "limit_hours": 12}


def main() -> None:
    print(json.dumps({"benchmark": "predict", "device": "cpu", "dtype": "float32",
                      "results": [cpu_rates("tiny-cpu", 10, 64), cpu_rates("trm-paper-att", 30, 2)],
                      "kaggle_projection_from_flops": kaggle_projection()}))


if __name__ == "__main__":
    main()
