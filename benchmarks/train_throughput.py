"""Examples/s of the full training step (data drawing + augmentation, forward, backward,
Adam-atan2, sparse sign-SGD, EMA) next to the bare model step, CPU float32. One JSON line;
``loop_overhead`` is (bare step time / full step time)⁻¹ − 1.

    python benchmarks/train_throughput.py [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from accelerate import Accelerator

from arc_trm.config import load_config
from arc_trm.data.batches import TrainStream
from arc_trm.data.ingest import build_dataset
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.train.loop import Schedule, TrainSession

import model_step  # noqa: E402  (same folder)


def full_step(preset: str, batch: int, canvas: int, steps: int) -> dict:
    cfg = load_config(preset).model
    ds = build_dataset([], [], 8, 0, synthetic_tasks=16, synthetic_test_tasks=4, on_error=None, canvas=canvas)
    cfg.seq_len = canvas ** 2
    torch.manual_seed(0)
    core = TRM(cfg)
    table = PuzzleEmbeddings(ds.num_puzzle_ids, cfg.hidden_size)
    s = TrainSession(Accelerator(cpu=True), core, table, TrainStream(ds, batch, 0), Schedule(1e-4, 1e-2, 10, 100), 0,
                     ema_rate=0.999)
    bare = model_step.bare_step(preset, batch, canvas ** 2)
    s.step()
    bare()
    # Interleaved, best of each: the machine is shared, and a slow spell must hit both sides.
    full_t, bare_t = [], []
    for _ in range(steps):
        t = time.perf_counter()
        s.step()
        full_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare()
        bare_t.append(time.perf_counter() - t)
    best, bare_best = min(full_t), min(bare_t)
    return {"preset": preset, "batch": batch, "seq_len": canvas ** 2, "step_s": round(best, 4),
            "examples_per_s": round(batch / best, 2), "bare_step_s": round(bare_best, 4),
            "loop_overhead": round(best / bare_best - 1, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    print(json.dumps({"benchmark": "train_throughput", "device": "cpu", "dtype": "float32",
                      "results": [full_step("tiny-cpu", 64, 10, args.steps),
                                  full_step("trm-paper-att", 4, 30, args.steps)]}))


if __name__ == "__main__":
    main()
