"""Cold against warm compilation: a compiled training run (``train.compile = true``) twice, each in a
fresh process, against one compile-cache folder that starts empty. Prints one JSON line: the training
step's and the evaluation's compile seconds (as torch reports them) and the first step's wall time,
cold and warm, and their ratio.

    python benchmarks/compile_cache.py                 # the smoke preset's model (64 wide)
    python benchmarks/compile_cache.py --cpu-smoke     # the tests' tiny model, 3 steps (in the suite: its cache)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from arc_trm.config import load_config, set_fields
from arc_trm.train.run import train
fields = json.loads(sys.argv[2])
cfg = set_fields(load_config("smoke"), fields)
t = time.time()
s = train(cfg, sys.argv[1], progress=False)
print("RESULT " + json.dumps({"train_compile_s": round(s["compile_s"], 2), "step_s": s["step_s"],
                              "eval_compile_s": (s.get("final_eval") or {}).get("compile_s", 0.0),
                              "steps": s["steps"], "wall_s": round(time.time() - t, 2)}))
"""

# the tests' tiny model (tests/helpers.py), so that in the suite this script and tests/test_compile.py
# compile the same graphs into the suite's cache folder: whichever runs first pays the compilation
TINY = {"model.hidden_size": 32, "model.num_heads": 2, "model.H_cycles": 2, "model.L_cycles": 1,
        "model.halt_max_steps": 3, "model.puzzle_emb_len": 1, "data.canvas": 10, "train.global_batch_size": 8,
        "data.synthetic_tasks": 3, "data.synthetic_test_tasks": 0, "data.augmentations": 2}


def run(folder: Path, cache: Path, fields: dict) -> dict:
    env = dict(os.environ, ARC_TRM_COMPILE_CACHE=str(cache))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    r = subprocess.run([sys.executable, "-c", CHILD, str(folder), json.dumps(fields)], env=env,
                       capture_output=True, text=True)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        raise SystemExit(f"the compiled run failed:\n{r.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cpu-smoke", action="store_true", help="the tests' tiny model, 3 steps")
    args = ap.parse_args()
    fields = {"train.compile": True, "train.eval_interval_steps": 0, "train.max_eval_views": 2, "train.eval_time_limit_s": 0, "train.time_limit_s": 0,
              "train.max_steps": 3 if args.cpu_smoke else args.steps}
    if args.cpu_smoke:
        fields.update(TINY)
    t = time.perf_counter()
    # --cpu-smoke inside the suite: one run, in the suite's cache folder (cold only if nothing compiled that
    # graph before it); else two runs against a folder that starts empty
    given = os.environ.get("ARC_TRM_COMPILE_CACHE") if args.cpu_smoke else None
    with tempfile.TemporaryDirectory() as d:
        cache = Path(given) if given else Path(d) / "cache"
        cold = run(Path(d) / "cold", cache, fields)
        # in the suite one run is enough to keep the script working (tests/test_compile.py checks the cache)
        warm = cold if given else run(Path(d) / "warm", cache, fields)
        cached = sum(1 for _ in (cache / "inductor").rglob("*") if _.is_file())
    print(json.dumps({"benchmark": "compile_cache", "model": "tiny" if args.cpu_smoke else "smoke",
                      "cache": "given" if given else "empty at first", "cold": cold, "warm": warm, "cache_files": cached, "wall_s": round(time.perf_counter() - t, 2),
                      "train_compile_ratio": round(cold["train_compile_s"] / max(warm["train_compile_s"], 1e-9), 2)}))


if __name__ == "__main__":
    main()
