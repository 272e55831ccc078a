"""How VARC's and Loop-ViT's checkpoints are laid out: their training scripts save ``{"model_state":
state_dict, "config": vars(args), ...}`` (VARC's ``checkpoint_best.pt`` / ``checkpoint_final.pt``, Loop-ViT's
``loop_vit_base.pt``), the names possibly prefixed ``_orig_mod.`` (a compiled model); the task tokens are
``task_token_embed.weight`` (one row per task, in its ``task_lookup`` order, which the file does not keep).
arc-trm's module uses VARC's names, so every other tensor maps to itself; Loop-ViT's weight-tied blocks are
``core_layers.*`` (arc-trm's ``encoder.layers.*``), with ``step_embed`` and ``exit_gate`` beside them."""

from __future__ import annotations

import math

from arc_trm.config import ModelConfig
from arc_trm.model.core import Layout
from arc_trm.model.reference_names import layer_count

TASK_TOKENS = "task_token_embed.weight"


def looped(w: dict) -> bool:
    return any(k.startswith("core_layers.") for k in w)


def shapes(w: dict) -> dict:
    d = int(w["color_embed.weight"].shape[1])
    patch = int(w["patch_embed.proj.weight"].shape[-1])
    grid = math.isqrt(int(w["positional_embed"].shape[1]))
    blocks = "core_layers." if looped(w) else "encoder.layers."
    out = {"hidden_size": d, "num_layers": layer_count(w, blocks), "vit.patch_size": patch,
           "vit.image_size": grid * patch, "vit.mlp_dim": int(w[f"{blocks}0.linear1.weight"].shape[0]),
           "vit.step_embeddings": "step_embed.weight" in w, "vit.exit_gate": "exit_gate.1.weight" in w}
    if "step_embed.weight" in w:
        out["vit.loops"] = int(w["step_embed.weight"].shape[0])
    if TASK_TOKENS in w:
        out["puzzle_emb_len"] = max(1, int(w[TASK_TOKENS].shape[1]) // d)
    return out


def names(cfg: ModelConfig) -> dict[str, str]:
    """VARC's names are arc-trm's (the task tokens go to the puzzle-embedding table instead); a Loop-ViT's
    blocks are its core_layers."""
    from arc_trm.model.cores.vit.module import VisionTransformer
    theirs = "core_layers." if cfg.vit.loops > 1 or cfg.vit.step_embeddings or cfg.vit.exit_gate else "encoder.layers."
    return {k.replace("encoder.layers.", theirs): k for k in VisionTransformer(cfg).state_dict()}


FLOATS = ("vit.dropout", "vit.gate_threshold", "vit.gate_entropy_weight", "vit.loop_penalty_weight")


def arch_fields(args: dict) -> dict:
    """VARC's or Loop-ViT's run arguments (the checkpoint's ``config``, its ``vars(args)``) as arc-trm model
    fields."""
    out = {}
    loop = str(args.get("architecture", "")).startswith("loop_vit")
    pairs = [("embed_dim", "hidden_size"), ("num_heads", "num_heads"), ("mlp_dim", "vit.mlp_dim"),
             ("dropout", "vit.dropout"), ("image_size", "vit.image_size"), ("patch_size", "vit.patch_size"),
             ("num_task_tokens", "puzzle_emb_len")]
    pairs += ([("loop_core_depth", "num_layers"), ("max_loop_steps", "vit.loops"), ("min_loop_steps", "vit.min_loops"),
               ("exit_gate_threshold", "vit.gate_threshold"), ("gate_entropy_weight", "vit.gate_entropy_weight"),
               ("loop_penalty_weight", "vit.loop_penalty_weight")] if loop else [("depth", "num_layers")])
    for theirs, ours in pairs:
        if theirs in args and args[theirs] is not None:
            out[ours] = float(args[theirs]) if ours in FLOATS else int(args[theirs])
    if loop:
        out["vit.exit_gate"] = not args.get("disable_exit_gate", False)
        out["vit.step_embeddings"] = not args.get("no_step_embedding", False)
        out["vit.dynamic_exit"] = bool(args.get("train_dynamic_exit", False)) and out["vit.exit_gate"]
    return out


LAYOUT = Layout("color_embed, patch_embed.proj and encoder.layers.* or core_layers.* (VARC's ARCViT, "
                "Loop-ViT's LoopARCViT)",
                lambda w: "color_embed.weight" in w and "patch_embed.proj.weight" in w, shapes, names,
                {"num_heads": 8, "halt_max_steps": 1, "puzzle_emb_len": 1, "loss": "softmax",
                 "puzzle_emb_init_std": 0.02}, "vit",
                {"core": "vit", "halt_max_steps": 1}, arch_fields, "varc-vit", rows_key=TASK_TOKENS,
                blank_row=False, q_head=False, run_preset="varc-arc1")
