"""Forward+backward time of one ACT training step of the bare model (no data loading, no
optimizer), CPU, no autocast (each preset's own stream dtype). One JSON line.

    python benchmarks/model_step.py [--repeats 3] [--cpu-smoke]

``--cpu-smoke`` times only tiny-cpu, once (the test suite runs it so the script cannot rot).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from arc_trm.config import load_config
from arc_trm.model.losses import step_loss
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model
from arc_trm.model.recursion import Carry, act_step


def bare_step(preset: str, batch: int, seq: int):
    """A closure running one forward+backward ACT step of the bare model on fixed random data."""
    cfg = load_config(preset).model
    torch.manual_seed(0)
    m = build_model(cfg, seq)
    table = PuzzleEmbeddings(64, cfg.hidden_size)
    data = {"inputs": torch.randint(0, 12, (batch, seq), dtype=torch.int32),
            "labels": torch.randint(0, 12, (batch, seq)),
            "puzzle_ids": torch.randint(1, 64, (batch,), dtype=torch.int32)}
    state = {"carry": Carry.initial(m, data)}

    def run():
        state["carry"], out = act_step(m, cfg, state["carry"], data, lambda ids: table.lookup(ids, True), True)
        loss, *_ = step_loss(out, cfg.loss)
        (loss / batch).backward()
        m.zero_grad(set_to_none=True)
    return run


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def time_step(preset: str, batch: int, seq: int, repeats: int) -> dict:
    best = best_time(bare_step(preset, batch, seq), repeats)
    return {"preset": preset, "stream_dtype": load_config(preset).model.stream_dtype, "batch": batch, "seq_len": seq,
            "step_s": round(best, 4),
            "examples_per_s": round(batch / best, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny-cpu only, one repeat")
    args = ap.parse_args()
    cases = [("tiny-cpu", 64, 100)] + ([] if args.cpu_smoke else [("trm-paper-att", 4, 900)])
    repeats = 1 if args.cpu_smoke else args.repeats
    print(json.dumps({"benchmark": "model_step", "device": "cpu", "autocast": False,
                      "threads": torch.get_num_threads(),
                      "results": [time_step(p, b, s, repeats) for p, b, s in cases]}))


if __name__ == "__main__":
    main()
