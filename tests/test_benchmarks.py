"""Every benchmark script runs and prints one JSON line (its quick path, ``--cpu-smoke``), so none
can rot unnoticed; the GPU script also prints its skip line without CUDA and measures every record
at toy sizes on the CPU (so the script a GPU session runs has run before)."""

import json
import os
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


# gpu_step, reference_step, urm_conv, step_ratio and step_profile have tests of their own below; kernel_bytes is
# not a script but the module two of them count with (tested below)
@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("*.py")
                                        if p.stem not in ("gpu_step", "reference_step", "urm_conv", "step_ratio", "step_profile",
                                                          "kernel_bytes")))
def test_every_benchmark_prints_its_json_line(name):
    res = _run("--cpu-smoke", script=BENCHMARKS / f"{name}.py")
    assert res["benchmark"] == name
    assert res.get("results") or res.get("wall_s", 0) > 0


STANDIN = Path(__file__).parent / "reference_standin"


@pytest.mark.parametrize("core", ["trm", "hrm", "urm"])
def test_reference_comparison_runs_both_sides_against_a_stand_in_reference(core):
    """The comparison a GPU session runs (``--reference`` a checkout of the reference's repository), at toy
    sizes against tests/reference_standin (the references' module paths, class names and calls)."""
    res = _run("--core", core, "--reference", str(STANDIN), "--cpu-smoke", script=BENCHMARKS / "reference_step.py")
    assert res["benchmark"] == "reference_step" and res["core"] == core and res["compiled"] is False
    assert res["preset"] == {"trm": "tiny-cpu", "hrm": "hrm-tiny", "urm": "urm-tiny"}[core]
    for side in ("arc_trm", "reference"):
        assert res[side]["examples_per_s"] > 0 and res[side]["first_call_s"] >= 0 and res[side]["saved_mb"] > 0
    assert res["ratio"] == round(res["arc_trm"]["examples_per_s"] / res["reference"]["examples_per_s"], 3)


def test_reference_comparison_names_what_a_reference_folder_must_hold(tmp_path):
    out = subprocess.run([sys.executable, str(BENCHMARKS / "reference_step.py"), "--core", "urm", "--reference",
                          str(tmp_path), "--cpu-smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "has no models/ folder" in out.stderr and "UbiquantAI/URM" in out.stderr


def test_urm_convolution_benchmark_compares_both_forms_and_finds_them_identical_eager():
    res = _run("--cpu-smoke", script=BENCHMARKS / "urm_conv.py")
    assert res["benchmark"] == "urm_conv" and res["compiled"] is False and res["preset"] == "urm-tiny"
    assert res["kernel_step_s"] > 0 and res["shift_step_s"] > 0 and res["ratio"] > 0
    assert res["rounding"] in ("fused", "stepwise") and res["bit_identical"] is True


def test_step_ratio_times_a_base_tree_against_the_working_tree_and_sees_a_change_of_math(tmp_path):
    """The CPU proxy for a speed change: the working tree against a copy of itself reports the same loss and
    gradients; against a base whose math differs (RMSNorm's epsilon doubled), it reports that they differ, so
    each side really runs its own tree's code."""
    res = _run("--cpu-smoke", script=BENCHMARKS / "step_ratio.py")
    assert res["benchmark"] == "step_ratio" and res["preset"] == "tiny-cpu" and res["compiled"] is False
    assert res["base_step_s"] > 0 and res["head_step_s"] > 0
    # the ratio comes from the unrounded times; the printed times carry 4 decimals (0.5 % of a 20 ms step)
    assert res["ratio"] == pytest.approx(res["base_step_s"] / res["head_step_s"], rel=0.01)
    assert res["same_loss"] is True and res["same_grads"] is True and res["grads_differ"] == []
    import shutil
    other = tmp_path / "other"
    for folder in ("arc_trm", "configs"):
        shutil.copytree(BENCHMARKS.parent / folder, other / folder, ignore=shutil.ignore_patterns("__pycache__"))
    layers = other / "arc_trm" / "model" / "layers.py"
    text = layers.read_text()
    assert "eps=eps)" in text
    layers.write_text(text.replace("eps=eps)", "eps=2 * eps)"))
    res = _run("--cpu-smoke", "--base-tree", str(other), script=BENCHMARKS / "step_ratio.py")
    assert res["same_loss"] is False and res["same_grads"] is False and "embed_tokens" in res["grads_differ"]


def test_step_ratio_refuses_a_folder_that_is_not_a_checkout(tmp_path):
    out = subprocess.run([sys.executable, str(BENCHMARKS / "step_ratio.py"), "--cpu-smoke", "--base-tree",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "holds no arc_trm/ and configs/" in out.stderr and not out.stdout


def test_step_profile_splits_the_step_into_kinds_of_work():
    res = _run("--cpu-smoke", script=BENCHMARKS / "step_profile.py")
    assert res["benchmark"] == "step_profile" and res["preset"] == "tiny-cpu" and res["compiled"] is False
    assert abs(sum(res["shares"].values()) - 1) < 1e-3 and res["shares"]["matmul"] > 0.05
    assert res["step_s"] > 0 and res["top"][0][2] >= res["top"][-1][2] and res["top"][0][0] == "aten::mm"


def test_step_profile_names_the_kinds_of_gpu_kernels():
    """The kinds of the kernels a CUDA profile lists (names as torch 2.11's profiler gives them), which no CPU
    run produces."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from step_profile import kind_of
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert kind_of("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1") == "matmul"
    assert kind_of("nvjet_tst_128x192_64x5_2x1_v_bz_coopA_TNT") == "matmul"
    assert kind_of("triton_tem_fused_mm_0") == "matmul"
    assert kind_of("triton_poi_fused__to_copy_add_cat_mul_neg_0") == "fused"
    assert kind_of("triton_red_fused__fused_rms_norm_add_1") == "fused"
    assert kind_of("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4>, true>") == "attention"
    assert kind_of("fmha_cutlassF_bf16_aligned_64x64_rf_sm80") == "attention"
    assert kind_of("void at::native::conv_depthwise2d_forward_kernel<1, c10::BFloat16, int>") == "conv"
    assert kind_of("void at::native::(anonymous namespace)::CatArrayBatchedCopy<...>") == "copy"
    assert kind_of("Memcpy DtoD (Device -> Device)") == "copy"
    assert kind_of("void at::native::vectorized_elementwise_kernel<4, at::native::MulFunctor<float>, ...>") == "elementwise"
    assert kind_of("aten::_log_softmax") == "elementwise"


KERNEL_BYTES = r'''
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from kernel_bytes import counting, in_mb
x = torch.randn(64, 32)
def double(t): return t * 2
def product(t): return (t @ t.t()).relu()
torch.compile(double)(x)            # in the compile caches now: counting must lower it again
out = {}
for name, fn in (("double", double), ("product", product)):
    torch._dynamo.reset()
    with counting() as got:
        torch.compile(fn)(x)
    out[name] = dict(got)
with counting() as got:
    double(x)
out["eager"] = in_mb(got)
torch._dynamo.reset()
with counting(False) as got:        # an eager benchmark run: nothing counted, the caches left on
    torch.compile(product)(x)
out["disabled"] = in_mb(got)
import torch._inductor.config as ic
out["caches_after"] = ic.fx_graph_cache
print(json.dumps(out))
'''


def test_kernel_bytes_counts_what_the_compiled_kernels_read_and_write_silently_and_past_the_caches(tmp_path):
    """The bytes step_ratio and reference_step print: a doubling reads and writes 64 x 32 float32 once each
    (16 kB), even when its graph is already in the compile caches; a product's matrix multiply is a library
    call (counted in the total, not among the compiler's own kernels); eager counts nothing; the compiler's
    metrics log prints nothing."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", KERNEL_BYTES, str(BENCHMARKS)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert got["double"] == {"bytes": 2 * 64 * 32 * 4, "generated_bytes": 2 * 64 * 32 * 4, "graphs": 1}
    # x @ x.t(): reads x once, writes 64 x 64; relu reads and writes 64 x 64
    assert got["product"] == {"bytes": 64 * 32 * 4 + 3 * 64 * 64 * 4, "generated_bytes": 2 * 64 * 64 * 4, "graphs": 1}
    assert got["eager"] == {"moved_mb": None, "generated_mb": None}
    assert got["disabled"] == {"moved_mb": None, "generated_mb": None} and got["caches_after"] is True
    assert "metrics" not in out.stderr.lower(), out.stderr[-2000:]
