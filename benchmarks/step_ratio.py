"""The CPU proxy for a speed change: one training ACT step (forward + backward of the bare model) of the code
at a base commit against the working tree's, in one run, interleaved, compiled by default. One JSON line with
both sides' best and median step times, ``"ratio"`` (base time / working-tree time: above 1, the change is
faster), the spread of the per-round ratios, and whether the two gave the same first loss and gradients (equal
weights from the same seed, so a change that keeps the math gives ``"same_loss": true`` eager; ``grads_differ``
names the parameters whose gradients do not agree). Compiled, a new graph may round differently, and even the
same code can differ from run to run: inductor's CPU scatter-add (the token-embedding gradient) adds with
atomics in the order its threads reach them.

    python benchmarks/step_ratio.py --base HEAD~1 [--preset trm-paper-att] [--batch 2] [--seq 400]
                                    [--rounds 5] [--steps 2] [--eager]
    python benchmarks/step_ratio.py --base-tree OTHER_CHECKOUT ...   # a folder holding arc_trm/ and configs/
    python benchmarks/step_ratio.py --cpu-smoke                     # tiny-cpu, eager, the tree against itself

Each side runs in a process of its own that imports ``arc_trm`` from an exported copy of its tree (so the two
never share a module), compiles once, then waits; the parent asks them for ``--steps`` timed steps in turn,
alternating which goes first, for ``--rounds`` rounds: both see the same machine load. On a GPU it times the
same way (synchronised); figures from a CPU proxy are never GPU figures.

Compiled, each side also reports what its step's kernels read and write as the compiler counts them
(``"moved_mb"``, ``"generated_mb"``: base, working tree; :mod:`kernel_bytes`): the same on every run, so a
change of layout or fusion shows there even where the machine's noise hides it in the times. A side's
first call then compiles without the compile caches.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- one side (a child process)
def child(preset: str, batch: int, seq: int, compiled: bool) -> None:
    """Build the step with this tree's code (``sys.path`` starts at the tree), report readiness and the first
    step's loss and gradient checksum, then time steps when asked (``go N`` on stdin) until ``quit``."""
    import time

    import torch

    from kernel_bytes import counting, in_mb      # beside this script

    from arc_trm.config import load_config
    from arc_trm.model.build import build_model
    from arc_trm.model.losses import step_loss
    from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
    from arc_trm.model.recursion import Carry, act_step
    try:
        from arc_trm.model.layers import settle_conv_forms
    except ImportError:                  # a base from before the convolution's forms
        settle_conv_forms = None

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = load_config(preset).model
    torch.manual_seed(0)
    m = build_model(cfg, seq).to(device).train()
    if settle_conv_forms is not None:
        settle_conv_forms(m, device, compiled)
    if compiled:
        m.compile()
    table = PuzzleEmbeddings(64, cfg.hidden_size)
    table.weight = table.weight.to(device)
    g = torch.Generator().manual_seed(0)
    data = {"inputs": torch.randint(0, 12, (batch, seq), dtype=torch.int32, generator=g).to(device),
            "labels": torch.randint(2, 12, (batch, seq), generator=g).to(device),
            "puzzle_ids": torch.randint(1, 64, (batch,), dtype=torch.int32, generator=g).to(device)}
    first = Carry.initial(m, data)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        m.zero_grad(set_to_none=True)
        _, out = act_step(m, cfg, first, data, lambda ids: table.lookup(ids, True), True)
        loss, *_ = step_loss(out, cfg.loss)
        (loss / batch).backward()
        return loss

    with counting(compiled) as kernels:
        t = time.perf_counter()
        loss = step()
        sync()
        first_s = time.perf_counter() - t
    grads = {name: float(p.grad.double().abs().sum()).hex() for name, p in m.named_parameters() if p.grad is not None}
    print(json.dumps({"ready": True, "first_call_s": round(first_s, 2), **in_mb(kernels),
                      "loss": float(loss.detach()).hex(),
                      "grad_checksums": grads, "arc_trm": str(Path(sys.modules["arc_trm"].__file__).parent)}),
          flush=True)
    for line in sys.stdin:
        if not line.startswith("go"):
            break
        times = []
        for _ in range(int(line.split()[1])):
            t = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t)
        print(json.dumps({"times": times}), flush=True)


# ---------------------------------------------------------------------------- the parent
def refuse(message: str) -> None:
    """A usage error: one line on stderr, exit 2 (as the other benchmarks' argument errors)."""
    print(f"step_ratio: {message}", file=sys.stderr)
    raise SystemExit(2)


def export_tree(dest: Path, base: str | None, tree: Path | None) -> Path:
    """A runnable copy of arc_trm/ and configs/ (as arc_trm/presets too, as the installed package has it): from
    git at ``base``, else from the folder ``tree``."""
    dest.mkdir(parents=True)
    if base is not None:
        try:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", base, "arc_trm", "configs"],
                                     capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", b"") or b""
            refuse(f"cannot export {base!r} from git in {ROOT}: {err.decode(errors='replace').strip() or e}")
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        if not (tree / "arc_trm").is_dir() or not (tree / "configs").is_dir():
            refuse(f"{tree} holds no arc_trm/ and configs/ (a checkout of arc-trm)")
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(tree / "arc_trm", dest / "arc_trm", ignore=skip)
        shutil.copytree(tree / "configs", dest / "configs", ignore=skip)
    shutil.rmtree(dest / "arc_trm" / "presets", ignore_errors=True)
    shutil.copytree(dest / "configs", dest / "arc_trm" / "presets")
    return dest


def start(tree: Path, args) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--preset", args.preset, "--batch",
           str(args.batch), "--seq", str(args.seq)] + (["--eager"] if args.eager else [])
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise SystemExit(f"step_ratio: the side in {tree} failed to build its step (exit {proc.returncode}; "
                         "its error is above)")
    ready = json.loads(line)
    if Path(ready["arc_trm"]).resolve() != (tree / "arc_trm").resolve():
        raise SystemExit(f"step_ratio: the side in {tree} imported arc_trm from {ready['arc_trm']}")
    return proc, ready


def timed(proc: subprocess.Popen, steps: int) -> list[float]:
    proc.stdin.write(f"go {steps}\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())["times"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--base", help="the git commit to compare against (default HEAD: the uncommitted change)")
    where.add_argument("--base-tree", type=Path, help="a folder holding the base's arc_trm/ and configs/")
    ap.add_argument("--preset", default="trm-paper-att", help="a model preset (default trm-paper-att)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=400, help="tokens (default 400: a 20 x 20 canvas)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per side and round")
    ap.add_argument("--eager", action="store_true", help="do not compile either side")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny-cpu, 2 x 36, eager, 1 round of 1 step, "
                                                            "the working tree against a copy of itself")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.preset, args.batch, args.seq, not args.eager)
        return
    if args.cpu_smoke:
        args.preset, args.batch, args.seq, args.rounds, args.steps, args.eager = "tiny-cpu", 2, 36, 1, 1, True
        args.base_tree = args.base_tree or ROOT
    if args.base_tree is None and args.base is None:
        args.base = "HEAD"
    with tempfile.TemporaryDirectory(prefix="arc-trm-step-ratio-") as tmp:
        base_tree = export_tree(Path(tmp) / "base", args.base, args.base_tree)
        head_tree = export_tree(Path(tmp) / "head", None, ROOT)
        sides = {}
        try:
            for name, tree in (("base", base_tree), ("head", head_tree)):    # one compiles at a time
                sides[name] = start(tree, args)
            times = {"base": [], "head": []}
            ratios = []
            for r in range(args.rounds):
                order = ("base", "head") if r % 2 == 0 else ("head", "base")
                got = {name: timed(sides[name][0], args.steps) for name in order}
                for name in order:
                    times[name] += got[name]
                ratios.append(min(got["base"]) / min(got["head"]))
        finally:
            for proc, _ in sides.values():
                if proc.poll() is None:
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
                    proc.wait()
    base, head = sides["base"][1], sides["head"][1]
    print(json.dumps({
        "benchmark": "step_ratio", "base": args.base or str(args.base_tree), "preset": args.preset, "batch": args.batch, "seq_len": args.seq,
        "compiled": not args.eager, "rounds": args.rounds, "steps_per_round": args.steps,
        "base_step_s": round(min(times["base"]), 4), "head_step_s": round(min(times["head"]), 4),
        "base_median_s": round(statistics.median(times["base"]), 4),
        "head_median_s": round(statistics.median(times["head"]), 4),
        "ratio": round(min(times["base"]) / min(times["head"]), 3),
        "round_ratios": [round(x, 3) for x in (min(ratios), max(ratios))],
        "first_call_s": [base["first_call_s"], head["first_call_s"]],
        "moved_mb": [base["moved_mb"], head["moved_mb"]], "generated_mb": [base["generated_mb"], head["generated_mb"]],
        "same_loss": base["loss"] == head["loss"], "same_grads": base["grad_checksums"] == head["grad_checksums"],
        "grads_differ": sorted(k for k in base["grad_checksums"].keys() | head["grad_checksums"].keys()
                               if base["grad_checksums"].get(k) != head["grad_checksums"].get(k))}))


if __name__ == "__main__":
    main()
