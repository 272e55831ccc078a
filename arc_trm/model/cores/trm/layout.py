"""How the TRM reference's checkpoints are laid out: ``model.inner.L_level.layers.*`` with ``H_init`` /
``L_init``, token embeddings, optional learned positions or MLP-t, and its published ARC settings
(config/arch/trm.yaml and its README's commands)."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.model.core import Layout
from arc_trm.model.reference_names import channel_names, gate_expansion, has, layer_count


def shapes(w: dict) -> dict:
    d = int(w["H_init"].shape[0])
    mlp_t = any(".mlp_t." in k for k in w)
    return {"hidden_size": d, "num_layers": layer_count(w, "L_level.layers."), "mlp_t": mlp_t,
            "expansion": gate_expansion(w, d, "L_level.layers.0.mlp.gate_up_proj.weight"),
            "pos_encoding": "learned" if "embed_pos.embedding_weight" in w else ("none" if mlp_t else "rope")}


def names(cfg: ModelConfig) -> dict[str, str]:
    out = {"H_init": "H_init", "L_init": "L_init", "embed_tokens.embedding_weight": "embed_tokens",
           "lm_head.weight": "lm_head.weight", "embed_pos.embedding_weight": "embed_pos"}
    for i in range(cfg.num_layers):
        out.update(channel_names(f"L_level.layers.{i}", f"layers.{i}", attention=not cfg.mlp_t))
    return out


def arch_fields(arch: dict) -> dict:
    out = {}
    if "L_layers" in arch:
        out["num_layers"] = arch["L_layers"]
    if "no_ACT_continue" in arch:
        out["no_ACT_continue"] = bool(arch["no_ACT_continue"])
    return out


LAYOUT = Layout("model.inner.L_level.layers.* with H_init",
                lambda w: "H_init" in w and has(w, "L_level.layers."), shapes, names,
                {"num_heads": 8, "H_cycles": 3, "L_cycles": 4, "halt_max_steps": 16, "puzzle_emb_len": 16,
                 "stream_dtype": "bfloat16"}, "trm", {"core": "trm", "mlp": "swiglu"}, arch_fields,
                "trm-paper-att")
