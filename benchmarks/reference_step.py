"""arc-trm's training ACT step against its reference's own model, same shapes, batch and precision, one run.

    python benchmarks/reference_step.py --core trm|urm|hrm --reference DIR [--batch N] [--seq N] [--steps 10]
        [--eager] [--cpu-smoke]

DIR is your checkout of the reference's repository (nothing of it ships with arc-trm): TRM and HRM from
SamsungSAILMontreal/TinyRecursiveModels (``models/recursive_reasoning/trm.py``, ``hrm.py``), URM from
UbiquantAI/URM (``models/urm/urm.py``); they import ``pydantic`` and ``einops``. Where ``flash_attn`` does
not import (a CPU, or no wheel), URM's attention call is served by torch's SDPA in flash-attn's
(batch, tokens, heads, dim) layout, as the measured figures in the README were. One training step each
side: the ACT step's forward from a fresh carry, the loss (the reference's ``ACTLossHead``, arc-trm's
``step_loss``), backward; no optimizer. Both run their preset's stream dtype (bf16 for the paper presets,
the references' ``forward_dtype``), compiled unless ``--eager`` (the reference's pretrain.py compiles too),
one side after the other, each with its first call (compilation) timed apart. One JSON line:
examples per second and peak memory (CUDA) of each side, the bytes each step keeps for its backward
(``saved_mb``, on any device: the activation memory, which a CPU run can compare), compiled, the bytes
each step's kernels read and write as the compiler counts them (``moved_mb``, ``generated_mb``:
:mod:`kernel_bytes`; the reference's count includes its loss, which its step compiles and arc-trm's runs
eagerly), and ``"ratio"`` (arc-trm / reference).

``--cpu-smoke`` runs toy sizes (the core's tiny preset, batch 4, eager, 2 steps) on the CPU; the suite
runs it against a stand-in reference (tests/reference_standin) so the script cannot rot.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from kernel_bytes import counting, in_mb      # beside this script

from arc_trm.config import ModelConfig, load_config
from arc_trm.model.build import build_model
from arc_trm.model.layers import settle_conv_forms
from arc_trm.model.losses import step_loss
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.recursion import Carry, act_step

# core → (the reference's module and class, arc-trm's paper preset, its tiny preset, default GPU batch)
CORES = {
    "trm": ("models.recursive_reasoning.trm", "TinyRecursiveReasoningModel_ACTV1", "trm-paper-att", "tiny-cpu", 192),
    "hrm": ("models.recursive_reasoning.hrm", "HierarchicalReasoningModel_ACTV1", "hrm-paper", "hrm-tiny", 192),
    "urm": ("models.urm.urm", "URM", "urm-paper", "urm-tiny", 96),
}
PUZZLES = 64
VOCAB = 12


def reference_arch(core: str, cfg: ModelConfig, batch: int, seq: int) -> dict:
    """The reference's config dict for arc-trm's model config (the fields of its pydantic config)."""
    out = {"batch_size": batch, "seq_len": seq, "puzzle_emb_ndim": cfg.hidden_size,
           "num_puzzle_identifiers": PUZZLES, "vocab_size": VOCAB, "H_cycles": cfg.H_cycles,
           "L_cycles": cfg.L_cycles, "hidden_size": cfg.hidden_size, "expansion": cfg.expansion,
           "num_heads": cfg.num_heads, "pos_encodings": "rope", "rms_norm_eps": cfg.rms_norm_eps,
           "rope_theta": cfg.rope_theta, "forward_dtype": cfg.stream_dtype}
    if core == "urm":
        return {**out, "num_layers": cfg.num_layers, "loops": cfg.halt_max_steps}
    out.update(L_layers=cfg.num_layers, halt_max_steps=cfg.halt_max_steps,
               halt_exploration_prob=cfg.halt_exploration_prob, mlp_t=cfg.mlp_t)
    if core == "hrm":
        return {**out, "H_layers": cfg.hrm.h_layers}
    return {**out, "H_layers": 0, "puzzle_emb_len": cfg.puzzle_emb_len, "no_ACT_continue": cfg.no_ACT_continue}


def _sdpa_flash_attn_func(q, k, v, causal=False, **_):
    """flash-attn's call, (B, S, H, D) in and out, through torch's SDPA."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal)
    return out.transpose(1, 2)


def import_reference(core: str, root: Path):
    """The reference's model class and its ACTLossHead, imported from the checkout at ``root``."""
    for name in ("flash_attn_interface", "flash_attn"):
        try:
            importlib.import_module(name)
            break
        except ImportError:
            continue
    else:
        sys.modules["flash_attn_interface"] = types.SimpleNamespace(flash_attn_func=_sdpa_flash_attn_func)
    sys.path.insert(0, str(root))
    module, cls, *_ = CORES[core]
    return getattr(importlib.import_module(module), cls), importlib.import_module("models.losses").ACTLossHead


def random_batch(batch: int, seq: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"inputs": torch.randint(0, VOCAB, (batch, seq), dtype=torch.int32, generator=g).to(device),
            "labels": torch.randint(2, VOCAB, (batch, seq), generator=g).to(device),
            "puzzle_identifiers": torch.randint(1, PUZZLES, (batch,), dtype=torch.int32, generator=g).to(device)}


def ours_step(cfg: ModelConfig, data: dict, device: torch.device, compiled: bool):
    torch.manual_seed(0)
    m = build_model(cfg, data["inputs"].shape[1]).to(device).train()
    settle_conv_forms(m, device, compiled)
    if compiled:
        m.compile()
    table = PuzzleEmbeddings(PUZZLES, cfg.hidden_size)
    table.weight = table.weight.to(device)
    batch = {"inputs": data["inputs"], "labels": data["labels"], "puzzle_ids": data["puzzle_identifiers"]}
    first = Carry.initial(m, batch)
    n = data["inputs"].shape[0]

    def run():
        """One step; its logits and gradients (for a caller that compares two forms)."""
        m.zero_grad(set_to_none=True)
        _, out = act_step(m, cfg, first, batch, lambda ids: table.lookup(ids, True), True)
        loss, *_ = step_loss(out, cfg.loss)
        (loss / n).backward()
        return [out["logits"].detach()] + [p.grad for p in m.parameters()]
    return run


def reference_step(core: str, root: Path, cfg: ModelConfig, data: dict, device: torch.device, compiled: bool):
    model_cls, loss_head = import_reference(core, root)
    n, seq = data["inputs"].shape
    torch.manual_seed(0)
    with torch.device(device):
        model = loss_head(model_cls(reference_arch(core, cfg, n, seq)), loss_type="stablemax_cross_entropy")
        first = model.initial_carry(data)
    model.train()
    step = torch.compile(model) if compiled else model

    def run():
        model.zero_grad(set_to_none=True)
        _, loss, *_ = step(return_keys=[], carry=first, batch=data)
        (loss / n).backward()
    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(make, device: torch.device, steps: int, batch: int, compiled: bool = False) -> dict:
    """First call (compilation included, counting its kernels' bytes) apart, then the best of ``steps`` calls;
    peak memory of the side alone."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    run = make()
    with counting(compiled) as kernels:
        t = time.perf_counter()
        run()
        sync(device)
        first = time.perf_counter() - t
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - t)
    best = min(times)
    return {"examples_per_s": round(batch / best, 2), "step_s": round(best, 4), "first_call_s": round(first, 2),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if device.type == "cuda" else None,
            "saved_mb": round(saved_bytes(run) / 1e6, 2), **in_mb(kernels)}


def saved_bytes(run) -> int:
    """The bytes one step keeps for its backward (each storage once, whatever views of it are kept): the
    activation memory, measured alike on any device (the compiled graphs do not recompile for the hook)."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen.setdefault((str(t.device), storage.data_ptr()), storage.nbytes())
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--core", choices=sorted(CORES), required=True)
    ap.add_argument("--reference", type=Path, required=True, help="your checkout of the reference's repository")
    ap.add_argument("--batch", type=int, default=None, help="default: 192 (TRM, HRM) or 96 (URM) on CUDA, 4 on the CPU")
    ap.add_argument("--seq", type=int, default=900, help="tokens per example (default 900: a 30 x 30 grid)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per side after the first")
    ap.add_argument("--eager", action="store_true", help="do not compile either side")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny preset, batch 4, 36 tokens, eager, 2 steps, CPU")
    args = ap.parse_args()
    if not (args.reference / "models").is_dir():
        ap.error(f"{args.reference} has no models/ folder: pass your checkout of the reference's repository "
                 f"(TRM, HRM: SamsungSAILMontreal/TinyRecursiveModels; URM: UbiquantAI/URM)")
    _, _, paper, tiny, gpu_batch = CORES[args.core]
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    smoke = args.cpu_smoke
    batch = 4 if smoke else (args.batch or (gpu_batch if device.type == "cuda" else 4))
    seq, steps = (36, 2) if smoke else (args.seq, args.steps)
    compiled = not (args.eager or smoke)
    cfg = load_config("smoke", model=tiny if smoke else paper).model
    data = random_batch(batch, seq, device)
    ours = measure(lambda: ours_step(cfg, data, device, compiled), device, steps, batch, compiled)
    ref = measure(lambda: reference_step(args.core, args.reference, cfg, data, device, compiled), device, steps, batch,
                  compiled)
    print(json.dumps({"benchmark": "reference_step", "core": args.core, "preset": tiny if smoke else paper,
                      "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                      "torch": torch.__version__, "batch": batch, "seq_len": seq, "stream_dtype": cfg.stream_dtype,
                      "compiled": compiled, "arc_trm": ours, "reference": ref,
                      "ratio": round(ours["examples_per_s"] / ref["examples_per_s"], 3)}))


if __name__ == "__main__":
    main()
