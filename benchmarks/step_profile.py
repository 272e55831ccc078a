"""Where a core's compiled training ACT step spends its time: one JSON line with the step's time, the share of
device time (CPU time on a CPU) in each kind of work and the largest kernels.

    python benchmarks/step_profile.py [--preset trm-paper-att|urm-paper|hrm-paper|...] [--batch N] [--seq N]
                                      [--eager] [--top 12]
    python benchmarks/step_profile.py --cpu-smoke      # the core's tiny preset, 4 x 36, eager (the suite runs it)

Kinds: ``matmul`` (matrix products), ``fused`` (kernels the compiler generated: element-wise work, norms,
casts, concatenations fused into passes), ``attention`` (the SDPA kernels), ``conv`` (the convolution kernel),
``copy`` (copies, concatenations and layout changes left outside fused kernels), ``elementwise`` (eager
element-wise and reduction kernels), ``other``. It is the map for
removing waste: a large ``copy`` or ``other`` share is work a compiled step should not have, and on a GPU the
``fused`` share is memory traffic (the matrix products are where the FLOPs are). The step is the same as
``reference_step.py``'s (random data, a fresh carry, forward + loss + backward, no optimizer), profiled for
two steps after two unprofiled ones (the first compiles). On a CPU the compiler's kernels are made visible
with inductor's ``cpp.enable_kernel_profile``; CPU shares are no stand-in for a GPU's.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from arc_trm.config import load_config
from reference_step import CORES, ours_step, random_batch, sync    # benchmarks/ is the script's folder on sys.path

# the first pattern that matches a kernel's or an operator's name gives its kind
KINDS = [
    ("fused", r"^triton_(?!tem)|cpp_fused|kernel_cpp"),        # named after the operators they fuse
    ("attention", r"flash|fmha|attention|sdpa"),
    ("matmul", r"^triton_tem|gemm|aten::(mm|addmm|bmm|matmul)$|cutlass|nvjet|xmma|cublas|sm\d{2,3}_"),
    ("conv", r"conv|depthwise"),
    ("copy", r"copy|aten::cat$|catarray|clone|contiguous|memcpy|memset|transpose|permute|index|gather|scatter|"
             r"fill|zero"),
    ("elementwise", r"elementwise|reduce|aten::"),
]
# wrappers whose time is their children's: counting them too would count a kernel twice
WRAPPERS = re.compile(r"CompiledFxGraph|CompiledFunction|Torch-Compiled|TorchDynamo|autograd::|ProfilerStep|"
                      r"^## |evaluate_function")


def kind_of(name: str) -> str:
    low = name.lower()
    return next((k for k, pattern in KINDS if re.search(pattern, low)), "other")


def profile_step(run, device: torch.device, steps: int = 2):
    """Per-name self time in seconds (device time on CUDA) over ``steps`` profiled steps."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            run()
        sync(device)
    times: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        if WRAPPERS.search(e.key):
            continue
        t = (getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)) if cuda \
            else e.self_cpu_time_total
        if t > 0 and not (cuda and e.key.startswith("aten::")):   # on CUDA, operators' time is their kernels'
            times[e.key] += t / 1e6 / steps
    return dict(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="trm-paper-att", help="a model preset (default trm-paper-att)")
    ap.add_argument("--batch", type=int, default=None, help="default 192 (96 for URM presets) on CUDA, 2 on the CPU")
    ap.add_argument("--seq", type=int, default=None, help="tokens (default 900 on CUDA, 400 on the CPU)")
    ap.add_argument("--eager", action="store_true", help="do not compile")
    ap.add_argument("--top", type=int, default=12, help="how many of the largest kernels to list")
    ap.add_argument("--cpu-smoke", action="store_true", help="the core's tiny preset, 4 x 36, eager, CPU")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    preset = args.preset
    if args.cpu_smoke:      # the core's tiny preset
        preset = CORES.get(load_config("smoke", model=preset).model.core, CORES["trm"])[3]
    cfg = load_config("smoke", model=preset).model
    cuda = device.type == "cuda"
    batch = 4 if args.cpu_smoke else args.batch or ((96 if cfg.core == "urm" else 192) if cuda else 2)
    seq = 36 if args.cpu_smoke else args.seq or (900 if cuda else 400)
    compiled = not (args.eager or args.cpu_smoke)
    if compiled and not cuda:
        import torch._inductor.config as inductor_config
        inductor_config.cpp.enable_kernel_profile = True     # the compiler's kernels as events of their own
    run = ours_step(cfg, random_batch(batch, seq, device), device, compiled)
    t = time.perf_counter()
    run()
    sync(device)
    first = time.perf_counter() - t
    run()
    sync(device)
    t = time.perf_counter()
    run()
    sync(device)
    step_s = time.perf_counter() - t
    times = profile_step(run, device)
    total = sum(times.values()) or 1.0
    shares: dict[str, float] = defaultdict(float)
    for name, t in times.items():
        shares[kind_of(name)] += t / total
    top = sorted(times.items(), key=lambda kv: -kv[1])[:args.top]
    print(json.dumps({
        "benchmark": "step_profile", "preset": preset, "core": cfg.core,
        "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "batch": batch, "seq_len": seq, "stream_dtype": cfg.stream_dtype, "compiled": compiled,
        "first_call_s": round(first, 2), "step_s": round(step_s, 4), "profiled_s_per_step": round(total, 4),
        "shares": {k: round(shares.get(k, 0.0), 4) for k, _ in KINDS + [("other", "")]},
        "top": [[name[:120], kind_of(name), round(t * 1e3, 3), round(t / total, 4)] for name, t in top]}))


if __name__ == "__main__":
    main()
