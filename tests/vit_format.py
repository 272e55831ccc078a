"""A checkpoint in VARC's (or Loop-ViT's) own format, built from its names and shapes: what
``offline_train_ARC.py`` saves (``{"model_state": ..., "config": vars(args), "epoch": ...}``, names prefixed
``_orig_mod.`` by its compiled model, the RoPE tables saved as buffers)."""

from __future__ import annotations

import math

import torch

HEAD_ROPE = "self_attn.rotary.freqs_"


def vit_args(embed: int = 32, depth: int = 2, heads: int = 4, mlp: int = 64, image: int = 16,
             loop: bool = False) -> dict:
    args = {"architecture": "loop_vit" if loop else "vit", "embed_dim": embed, "num_heads": heads, "mlp_dim": mlp,
            "dropout": 0.1, "image_size": image, "patch_size": 2, "num_colors": 12, "num_task_tokens": 1,
            "learning_rate": 3e-4, "data_root": "raw_data/ARC-AGI", "no_compile": False}
    if loop:
        args.update(loop_core_depth=depth, max_loop_steps=3, min_loop_steps=3, disable_exit_gate=False,
                    no_step_embedding=False, exit_gate_threshold=0.6, train_dynamic_exit=True,
                    gate_entropy_weight=5e-4, loop_penalty_weight=1e-3)
    else:
        args["depth"] = depth
    return args


def vit_state_dict(args: dict, tasks: int = 5, seed: int = 0, prefix: str = "_orig_mod.") -> dict[str, torch.Tensor]:
    d, mlp, p, side = args["embed_dim"], args["mlp_dim"], args["patch_size"], args["image_size"]
    loop = args["architecture"].startswith("loop")
    depth = args["loop_core_depth"] if loop else args["depth"]
    grid, head = side // p, d // args["num_heads"]
    shapes = {"color_embed.weight": (12, d), "task_token_embed.weight": (tasks, d),
              "patch_embed.proj.weight": (d, d, p, p), "patch_embed.proj.bias": (d,),
              "positional_embed": (1, grid * grid, d), "norm.weight": (d,), "norm.bias": (d,),
              "head.weight": (12 * p * p, d), "head.bias": (12 * p * p,)}
    blocks = "core_layers" if loop else "encoder.layers"
    rope = int(math.isqrt(1 + grid * grid))
    for i in range(depth):
        b = f"{blocks}.{i}."
        shapes.update({b + "self_attn.qkv.weight": (3 * d, d), b + "self_attn.qkv.bias": (3 * d,),
                       b + "self_attn.proj.weight": (d, d), b + "self_attn.proj.bias": (d,),
                       b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "linear1.weight": (mlp, d),
                       b + "linear1.bias": (mlp,), b + "linear2.weight": (d, mlp), b + "linear2.bias": (d,),
                       b + "norm2.weight": (d,), b + "norm2.bias": (d,),
                       b + HEAD_ROPE + "cos": (rope * rope, head), b + HEAD_ROPE + "sin": (rope * rope, head)})
    if loop:
        shapes.update({"step_embed.weight": (args["max_loop_steps"], d), "exit_gate.0.weight": (d,),
                       "exit_gate.0.bias": (d,), "exit_gate.1.weight": (d // 2, d), "exit_gate.1.bias": (d // 2,),
                       "exit_gate.3.weight": (1, d // 2), "exit_gate.3.bias": (1,)})
    g = torch.Generator().manual_seed(seed)
    return {prefix + k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


def write_checkpoint(path, args: dict, tasks: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    state = vit_state_dict(args, tasks, seed)
    torch.save({"model_state": state, "config": args, "best_eval_accuracy": 0.5, "epoch": 7,
                "optimizer_state": {"state": {}, "param_groups": [{"lr": 3e-4, "params": [0]}]}}, path)
    return state
