"""GPU speed of arc-trm at the paper's size: one JSON line.

On CUDA (bf16 autocast, trm-paper-att, 900 cells): examples/s, achieved TFLOP/s, fraction of the
device's bf16 peak and peak memory of the bare step (forward + backward of one ACT step, no
optimizer) and of the full training step (data, forward, backward, Adam-atan2, sign-SGD, EMA),
each eager and compiled; inference views/s; TTT steps/s; compile seconds; and the forward +
backward time of one attention call at the model's shape under each SDPA backend (flash, cuDNN,
memory-efficient), to choose one. Each record is also written to stderr as it is measured, so a
run cut short still reports what it got. Without CUDA it prints a one-line skip (exit 0).
``--cpu-smoke`` runs every measurement at toy sizes on the CPU, to check the script itself where
no GPU is at hand.

    python benchmarks/gpu_step.py [--batch 192] [--infer-batch 128] [--ttt-batch 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from contextlib import nullcontext

import torch
from accelerate import Accelerator

from arc_trm.config import load_config, set_fields
from arc_trm.data.batches import TrainStream, split_batch
from arc_trm.data.ingest import build_dataset
from arc_trm.infer.inference import predict_logits
from arc_trm.infer.runner import make_runner
from arc_trm.model.flops import train_example_flops, view_flops
from arc_trm.model.losses import step_loss
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model
from arc_trm.model.recursion import Carry
from arc_trm.train.session import Schedule, TrainSession

# Dense bf16 peak without sparsity, from the datasheets.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "L40S": 362e12, "A10G": 125e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device):
    return round(torch.cuda.max_memory_allocated() / 1e9, 2) if device.type == "cuda" else None


def timed(fn, steps, device):
    """(first call seconds, best-of-``steps`` seconds); the first call includes any compile."""
    t = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return first, best


def setup(cfg, ds, acc, compiled, backend):
    """A runner as training builds it, from a copy of ``cfg``; compiled with ``backend`` (what
    ``train.compile`` uses is inductor, the default)."""
    cfg = set_fields(copy.deepcopy(cfg), {"train.compile": False})
    torch.manual_seed(0)
    model = build_model(cfg.model, ds.canvas ** 2)
    runner = make_runner(acc, model, PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size), cfg)
    if compiled:
        model.compile(backend=backend)
        runner.compiled = True
    return runner


def emit(results, rec):
    """Keep ``rec`` for the final line and show it now."""
    results.append(rec)
    print(json.dumps(rec), file=sys.stderr, flush=True)


def record(what, batch, first, best, flops_per_example, device, peak):
    out = {"what": what, "batch": batch, "step_s": round(best, 4), "per_s": round(batch / best, 1),
           "first_call_s": round(first, 2), "peak_memory_gb": peak_gb(device)}
    if flops_per_example:
        tflops = batch * flops_per_example / best / 1e12
        out["tflop_per_s"] = round(tflops, 1)
        if peak:
            out["fraction_of_bf16_peak"] = round(tflops * 1e12 / peak, 3)
    return out


def measure(preset, canvas, batch, infer_batch, ttt_batch, steps, device_cpu: bool, backend: str = "inductor",
            stream_dtype: str | None = None, only: set[str] | None = None):
    """Every record, or those named in ``only``; ``stream_dtype`` overrides the preset's.
    Returns the device, the stream dtype measured and the records."""
    def want(*names):
        return only is None or any(n in only for n in names)
    acc = Accelerator(cpu=device_cpu, mixed_precision="no" if device_cpu else "bf16")
    device = acc.device
    peak = peak_flops(torch.cuda.get_device_name()) if device.type == "cuda" else None
    base = load_config(preset)
    ds = build_dataset([], [], 8, 0, synthetic_tasks=64, synthetic_test_tasks=8, on_error=None, canvas=canvas,
                       synthetic_families=None)
    set_fields(base, {"model.stream_dtype": stream_dtype} if stream_dtype else {})
    m = base.model
    train_f, view_f = train_example_flops(m, canvas), view_flops(m, canvas)
    results = []
    if want("sdpa_fwd_bwd_ms"):
        emit(results, sdpa_backends(device, batch, canvas * canvas + m.puzzle_emb_len, m.num_heads,
                                    m.hidden_size // m.num_heads, steps))
    for compiled in (False, True):
        tag = "compiled" if compiled else "eager"
        if not want(f"bare_step_{tag}", f"train_step_{tag}", *(["inference_compiled", "ttt_step_compiled"]
                                                                  if compiled else [])):
            continue
        runner = setup(base, ds, acc, compiled, backend)
        # bare step: one ACT step forward + backward, fixed data, no optimizer
        stream = TrainStream(ds, batch, 0)
        data = runner.to_device(stream.next_batch())
        state = {"carry": Carry.initial(runner.model, data)}

        def bare():
            with acc.autocast():
                state["carry"], out = runner.act_step(state["carry"], data, True)
                loss, *_ = step_loss(out, m.loss)
            (loss / batch).backward()
            runner.model.zero_grad(set_to_none=True)
        if want(f"bare_step_{tag}"):
            reset_peak(device)
            first, best = timed(bare, steps, device)
            rec = record(f"bare_step_{tag}", batch, first, best, train_f, device, peak)
            if compiled:   # the first compiled call builds the training graph
                rec["compile_s_estimate"] = round(first - best, 1)
            emit(results, rec)
        # full training step through the session (its own optimizer and EMA)
        if want(f"train_step_{tag}"):
            emit(results, session_record(f"train_step_{tag}", runner, ds, batch, base.optim, steps, train_f, peak))
        if not compiled:
            continue
        # inference: every ACT step of a batch of views (compiled runner)
        views = runner.to_device(TrainStream(ds, infer_batch, 1).next_batch())

        def infer():
            with acc.autocast():
                predict_logits(runner, views)
        if want("inference_compiled"):
            reset_peak(device)
            first, best = timed(infer, max(2, steps // 3), device)
            emit(results, record("inference_compiled", infer_batch, first, best, view_f, device, peak))
        # TTT: a full fine-tune step at the TTT batch
        if want("ttt_step_compiled"):
            emit(results, session_record("ttt_step_compiled", runner, ds, ttt_batch, base.ttt.optim, steps, train_f,
                                         peak))
    return device, m.stream_dtype, results


def sdpa_backends(device, batch, seq, heads, head_dim, steps):
    """Forward + backward of one non-causal attention call laid out as the model lays it out
    (q, k, v permuted out of one projection), per SDPA backend; compiled graphs call these same
    kernels, so the differences carry over to the compiled step."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    qkv = torch.randn(batch, seq, 3, heads, head_dim, device=device, dtype=dtype, requires_grad=True)
    out = {"what": "sdpa_fwd_bwd_ms", "batch": batch, "seq": seq, "heads": heads, "head_dim": head_dim}

    def call():
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()
    backends = [("default", None)] + [(n, getattr(SDPBackend, n.upper() + "_ATTENTION")) for n in
                                      ("flash", "cudnn", "efficient")]
    for name, backend in backends:
        try:
            with sdpa_kernel(backend) if backend is not None else nullcontext():
                _, best = timed(call, steps, device)
            out[name] = round(best * 1e3, 3)
        except RuntimeError as e:   # a backend this device or shape does not support
            out[name] = f"unsupported: {str(e).splitlines()[0][:80]}"
    return out


def session_record(what, runner, ds, batch, optim, steps, flops_per_example, peak):
    """Steps of a training session (data, forward, backward, optimizers, EMA as configured)."""
    session = TrainSession(runner, TrainStream(ds, batch, 0), Schedule(optim, 1000), split_batch(batch, 1), 0)

    def step():
        session.step()
        session.pop_metrics()
    reset_peak(runner.device)
    first, best = timed(step, steps, runner.device)
    session.close()
    return record(what, batch, first, best, flops_per_example, runner.device, peak)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="trm-paper-att", help="model or run preset (urm-paper for URM, hrm-paper "
                    "for HRM)")
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--infer-batch", type=int, default=128)
    ap.add_argument("--ttt-batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--stream-dtype", choices=["float32", "bfloat16"], default=None,
                    help="model.stream_dtype, the residual stream and carry's dtype (default: the preset's)")
    ap.add_argument("--only", default="", help="comma-separated record names (default: all)")
    ap.add_argument("--cpu-smoke", action="store_true", help="toy sizes on the CPU: checks the script, not speed")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(","))) or None
    if args.cpu_smoke:
        # one batch shape (2 graphs) and a tracing-only backend: this checks the script, quickly
        # the small preset of the same recursion (TRM: tiny-cpu, URM: urm-tiny, HRM: hrm-tiny)
        small = {"urm": "urm-tiny", "hrm": "hrm-tiny"}.get(load_config(args.preset).model.core, "tiny-cpu")
        device, stream_dtype, results = measure(small, 6, 8, 8, 8, 2, device_cpu=True, backend="aot_eager",
                                                stream_dtype=args.stream_dtype, only=only)
        print(json.dumps({"benchmark": "gpu_step", "device": "cpu (smoke: toy sizes, not a speed figure)",
                          "preset": small, "stream_dtype": stream_dtype, "results": results}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu_step", "skipped": "no CUDA device"}))
        return
    device, stream_dtype, results = measure(args.preset, 30, args.batch, args.infer_batch, args.ttt_batch,
                                            args.steps, device_cpu=False, stream_dtype=args.stream_dtype, only=only)
    print(json.dumps({"benchmark": "gpu_step", "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                      "preset": args.preset, "dtype": "bf16 autocast", "stream_dtype": stream_dtype,
                      "peak_bf16_tflops": (peak_flops(torch.cuda.get_device_name()) or 0) / 1e12,
                      "results": results}))


if __name__ == "__main__":
    main()
