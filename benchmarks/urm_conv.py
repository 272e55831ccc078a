"""URM's training ACT step (forward + backward of the bare model) with its convolution as torch's kernel
against the shifted form (``model.conv_form``), compiled, the two interleaved in one run: one JSON line
with both times and ``"ratio"`` (kernel time / shifted time: above 1, the shifted form is faster). Also
whether the two gave bit-identical logits and gradients, and which rounding the device took.

    python benchmarks/urm_conv.py [--preset urm-paper] [--batch 2] [--seq 400] [--repeats 5] [--eager]
    python benchmarks/urm_conv.py --cpu-smoke      # urm-tiny, eager, one repeat (the suite runs it)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from arc_trm.config import load_config
from arc_trm.model.layers import exact_shift_rounding
from reference_step import ours_step, random_batch, sync    # benchmarks/ is the script's folder on sys.path


def step_fn(preset: str, form: str, data: dict, device: torch.device, compiled: bool):
    """A closure running one training ACT step of ``preset``'s URM with ``conv_form = form``; it returns
    the logits and the gradients, for the identity check."""
    cfg = load_config(preset).model
    cfg.conv_form = form
    return ours_step(cfg, data, device, compiled)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="urm-paper", help="a URM model preset (default urm-paper: 512 wide, 4 layers)")
    ap.add_argument("--batch", type=int, default=None, help="default 2 on the CPU, 96 on CUDA")
    ap.add_argument("--seq", type=int, default=None, help="tokens (default 400 on the CPU, 900 on CUDA)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--eager", action="store_true", help="do not compile")
    ap.add_argument("--cpu-smoke", action="store_true", help="urm-tiny, 16 x 36, eager, one repeat")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    cuda = device.type == "cuda"
    preset = "urm-tiny" if args.cpu_smoke else args.preset
    batch = 16 if args.cpu_smoke else (args.batch or (96 if cuda else 2))
    seq = 36 if args.cpu_smoke else (args.seq or (900 if cuda else 400))
    repeats = 1 if args.cpu_smoke else args.repeats
    compiled = not (args.eager or args.cpu_smoke)
    fns, first_s, results = {}, {}, {}
    data = random_batch(batch, seq, device)
    for form in ("kernel", "shift"):
        fns[form] = step_fn(preset, form, data, device, compiled)
        t = time.perf_counter()
        results[form] = fns[form]()          # the first call compiles
        sync(device)
        first_s[form] = round(time.perf_counter() - t, 2)
    times = {form: [] for form in fns}
    for _ in range(repeats):                  # interleaved: a noisy neighbour slows both alike
        for form, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[form].append(time.perf_counter() - t)
    best = {form: min(v) for form, v in times.items()}
    identical = all(torch.equal(a, b) for a, b in zip(results["kernel"], results["shift"]))
    print(json.dumps({"benchmark": "urm_conv", "device": torch.cuda.get_device_name() if cuda else "cpu",
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "preset": preset,
                      "batch": batch, "seq_len": seq, "compiled": compiled, "repeats": repeats,
                      "rounding": exact_shift_rounding(str(device)),
                      "kernel_step_s": round(best["kernel"], 4), "shift_step_s": round(best["shift"], 4),
                      "first_call_s": first_s, "ratio": round(best["kernel"] / best["shift"], 3),
                      "bit_identical": identical}))


if __name__ == "__main__":
    main()
