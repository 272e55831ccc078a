"""Examples/s of the full training step (data drawing + augmentation, forward, backward,
Adam-atan2, sparse sign-SGD, EMA) next to the bare model step, CPU without autocast. One JSON line;
``loop_overhead`` is (bare step time / full step time)⁻¹ − 1.

    python benchmarks/train_throughput.py [--steps 4] [--cpu-smoke]

``--cpu-smoke``: tiny-cpu only, two steps (the test suite's quick path).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from accelerate import Accelerator

from arc_trm.config import OptimConfig, load_config
from arc_trm.data.batches import TrainStream, split_batch
from arc_trm.data.ingest import build_dataset
from arc_trm.infer.runner import make_runner
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model
from arc_trm.train.session import Schedule, TrainSession

import model_step  # noqa: E402  (same folder)


def full_step(preset: str, batch: int, canvas: int, steps: int) -> dict:
    cfg = load_config(preset)
    ds = build_dataset([], [], 8, 0, synthetic_tasks=16, synthetic_test_tasks=4, on_error=None, canvas=canvas)
    torch.manual_seed(0)
    core = build_model(cfg.model, canvas ** 2)
    runner = make_runner(Accelerator(cpu=True), core, PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size), cfg)
    optim = OptimConfig(lr_warmup_steps=10)     # EMA on, as in a real run
    s = TrainSession(runner, TrainStream(ds, batch, 0), Schedule(optim, 100), split_batch(batch, 1), 0)
    bare = model_step.bare_step(preset, batch, canvas ** 2)
    s.step()
    s.pop_metrics()
    bare()
    # Interleaved, best of each: the machine is shared, and a slow spell must hit both sides.
    full_t, bare_t = [], []
    for _ in range(steps):
        t = time.perf_counter()
        s.step()
        s.pop_metrics()            # as a log interval of 1 would: the host waits for the step
        full_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare()
        bare_t.append(time.perf_counter() - t)
    s.close()
    best, bare_best = min(full_t), min(bare_t)
    return {"preset": preset, "stream_dtype": cfg.model.stream_dtype, "batch": batch, "seq_len": canvas ** 2,
            "step_s": round(best, 4),
            "examples_per_s": round(batch / best, 2), "bare_step_s": round(bare_best, 4),
            "loop_overhead": round(best / bare_best - 1, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny-cpu only, two steps")
    args = ap.parse_args()
    cases = [("tiny-cpu", 64, 10)] + ([] if args.cpu_smoke else [("trm-paper-att", 4, 30)])
    steps = 2 if args.cpu_smoke else args.steps
    print(json.dumps({"benchmark": "train_throughput", "device": "cpu", "autocast": False,
                      "results": [full_step(p, b, c, steps) for p, b, c in cases]}))


if __name__ == "__main__":
    main()
