"""How URM's checkpoints are laid out: ``model.inner.layers.*`` with ``init_hidden``, a bf16 depthwise
convolution per block, and its published ARC settings (scripts/URM_arcagi1.sh, URM_arcagi2.sh)."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.model.core import Layout
from arc_trm.model.reference_names import channel_names, gate_expansion, layer_count


def shapes(w: dict) -> dict:
    d = int(w["init_hidden"].shape[0])
    conv = w.get("layers.0.mlp.dwconv.weight")
    return {"hidden_size": d, "num_layers": layer_count(w, "layers."),
            "expansion": gate_expansion(w, d, "layers.0.mlp.gate_up_proj.weight"),
            "conv_kernel": int(conv.shape[-1]) if conv is not None else 2}


def names(cfg: ModelConfig) -> dict[str, str]:
    out = {"init_hidden": "init_hidden", "embed_tokens.embedding_weight": "embed_tokens",
           "lm_head.weight": "lm_head.weight"}
    for i in range(cfg.num_layers):
        out.update(channel_names(f"layers.{i}", f"layers.{i}"))
    return out


def arch_fields(arch: dict) -> dict:
    out = {}
    if "loops" in arch:
        out["halt_max_steps"] = arch["loops"]
    if "num_layers" in arch:
        out["num_layers"] = arch["num_layers"]
    if "no_ACT_continue" in arch:
        out["no_ACT_continue"] = bool(arch["no_ACT_continue"])
    if arch.get("puzzle_emb_ndim"):
        out["puzzle_emb_len"] = 1          # ceil(puzzle_emb_ndim / hidden_size) positions
    return out


LAYOUT = Layout("model.inner.layers.* with init_hidden",
                lambda w: "init_hidden" in w and any(k.startswith("layers.") for k in w), shapes, names,
                {"num_heads": 8, "H_cycles": 2, "L_cycles": 6, "halt_max_steps": 16, "puzzle_emb_len": 1,
                 "stream_dtype": "bfloat16", "pos_encoding": "rope"}, "urm",
                {"core": "urm", "mlp": "conv_swiglu"}, arch_fields, "urm-paper")
