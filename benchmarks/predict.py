"""Inference views/s and TTT steps/s on CPU (no autocast) for tiny-cpu and trm-paper-att, and the
projected wall time of the Kaggle job (240 tasks) on 4x L4, derived from FLOP counts (not
measured on a GPU). One JSON line.

    python benchmarks/predict.py [--cpu-smoke]

``--cpu-smoke``: tiny-cpu only (the test suite's quick path).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from accelerate import Accelerator

from arc_trm.config import load_config
from arc_trm.data.batches import TrainStream, split_batch
from arc_trm.data.ingest import build_dataset
from arc_trm.infer.inference import predict_logits
from arc_trm.infer.runner import make_runner
from arc_trm.kaggle.budget import KAGGLE_TASKS, KAGGLE_TEST_INPUTS, L4X4, project
from arc_trm.model.flops import train_example_flops, view_flops
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model
from arc_trm.train.session import Schedule, TrainSession


def cpu_rates(preset: str, canvas: int, batch: int) -> dict:
    cfg = load_config(preset)
    seq = canvas ** 2
    torch.manual_seed(0)
    ds = build_dataset([], [], 4, 0, synthetic_tasks=8, synthetic_test_tasks=2, on_error=None, canvas=canvas)
    runner = make_runner(Accelerator(cpu=True), build_model(cfg.model, seq).eval(),
                         PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size), cfg)
    b = {"inputs": torch.zeros(batch, seq, dtype=torch.int32), "labels": torch.zeros(batch, seq),
         "puzzle_ids": torch.ones(batch, dtype=torch.int32)}
    t = time.perf_counter()
    predict_logits(runner, b)
    views_s = batch / (time.perf_counter() - t)
    s = TrainSession(runner, TrainStream(ds, batch, 0), Schedule(cfg.ttt.optim, 10), split_batch(batch, 1), 0)
    s.step()
    s.pop_metrics()
    t = time.perf_counter()
    s.step()
    s.pop_metrics()
    rate = 1 / (time.perf_counter() - t)
    s.close()
    return {"preset": preset, "stream_dtype": cfg.model.stream_dtype, "seq_len": seq, "batch": batch,
            "views_per_s": round(views_s, 3),
            "ttt_steps_per_s": round(rate, 3)}


def kaggle_projection() -> dict:
    cfg = load_config("kaggle-l4x4")   # its [ttt]/[predict] on the default (paper) model
    p = project(cfg.model, cfg.ttt, cfg.predict, L4X4)
    return {"preset": "kaggle-l4x4", "hardware": L4X4.name, "assumed_mfu": L4X4.mfu, "tasks": KAGGLE_TASKS,
            "test_inputs": KAGGLE_TEST_INPUTS, "tflop_per_view": round(view_flops(cfg.model) / 1e12, 2),
            "tflop_per_ttt_example": round(train_example_flops(cfg.model) / 1e12, 3), **p.as_dict(),
            "budget_h": round(cfg.predict.time_budget_s / 3600, 2), "limit_hours": 12}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny-cpu only")
    args = ap.parse_args()
    cases = [("tiny-cpu", 10, 64)] + ([] if args.cpu_smoke else [("trm-paper-att", 30, 2)])
    print(json.dumps({"benchmark": "predict", "device": "cpu", "autocast": False,
                      "results": [cpu_rates(*c) for c in cases],
                      "kaggle_projection_from_flops": kaggle_projection()}))


if __name__ == "__main__":
    main()
