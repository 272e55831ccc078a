"""Every benchmark script runs and prints one JSON line (its quick path, ``--cpu-smoke``), so none
can rot unnoticed; the GPU script also prints its skip line without CUDA and measures every record
at toy sizes on the CPU (so the script a GPU session runs has run before)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "gpu_step.py"


def _run(*args, script=SCRIPT):
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                         cwd=BENCHMARKS.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, out.stdout       # one JSON line, nothing else on stdout
    return json.loads(lines[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine measures instead of skipping")
def test_gpu_benchmark_skips_without_cuda():
    assert _run() == {"benchmark": "gpu_step", "skipped": "no CUDA device"}


def test_gpu_benchmark_measures_everything_at_toy_sizes_on_cpu():
    res = _run("--cpu-smoke")
    whats = [r["what"] for r in res["results"]]
    assert whats == ["sdpa_fwd_bwd_ms", "bare_step_eager", "train_step_eager", "bare_step_compiled",
                     "train_step_compiled", "inference_compiled", "ttt_step_compiled"]
    assert res["stream_dtype"] == "float32" and res["preset"] == "tiny-cpu"
    sdpa, steps = res["results"][0], res["results"][1:]
    assert isinstance(sdpa["default"], float) and sdpa["default"] > 0   # the others may be unsupported on CPU
    assert all(r["per_s"] > 0 and r["tflop_per_s"] >= 0 for r in steps)


def test_gpu_benchmark_measures_only_the_named_records_of_the_named_preset_and_stream():
    """What a GPU session runs for URM (one run: preset, --only and --stream-dtype together)."""
    res = _run("--cpu-smoke", "--preset", "urm-paper", "--stream-dtype", "bfloat16",
               "--only", "bare_step_eager,inference_compiled")
    assert res["preset"] == "urm-tiny" and [r["what"] for r in res["results"]] == ["bare_step_eager", "inference_compiled"]
    assert res["stream_dtype"] == "bfloat16" and all(r["per_s"] > 0 for r in res["results"])


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem != "gpu_step"))
def test_every_benchmark_prints_its_json_line(name):
    res = _run("--cpu-smoke", script=BENCHMARKS / f"{name}.py")
    assert res["benchmark"] == name
    assert res.get("results") or res.get("wall_s", 0) > 0
