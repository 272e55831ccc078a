"""How HRM's checkpoints are laid out (the TRM repository's hrm.py and sapientinc/HRM's hrm_act_v1.py):
TRM's names with a high-level module ``H_level.layers.*`` beside ``L_level.layers.*``, and the published
ARC settings (the TRM repository's config/arch/hrm.yaml = sapientinc/HRM's config/arch/hrm_v1.yaml)."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.errors import ArcTrmError
from arc_trm.model.core import Layout
from arc_trm.model.cores.trm.layout import names as trm_names
from arc_trm.model.reference_names import channel_names, gate_expansion, has, layer_count


def shapes(w: dict) -> dict:
    for level in ("H_level", "L_level"):
        if not has(w, f"{level}.layers."):
            raise ArcTrmError(f"missing module {level}: an HRM checkpoint holds both H_level.layers.* and "
                              "L_level.layers.* tensors")
    d = int(w["H_init"].shape[0])
    return {"hidden_size": d, "num_layers": layer_count(w, "L_level.layers."),
            "hrm.h_layers": layer_count(w, "H_level.layers."), "mlp_t": any(".mlp_t." in k for k in w),
            "expansion": gate_expansion(w, d, "L_level.layers.0.mlp.gate_up_proj.weight"),
            "pos_encoding": "learned" if "embed_pos.embedding_weight" in w else "rope"}


def names(cfg: ModelConfig) -> dict[str, str]:
    out = trm_names(cfg)
    for i in range(cfg.hrm.h_layers):
        out.update(channel_names(f"H_level.layers.{i}", f"h_layers.{i}", attention=not cfg.mlp_t))
    return out


def arch_fields(arch: dict) -> dict:
    out = {"puzzle_emb_len": 1}          # HRM's code: ceil(puzzle_emb_ndim / hidden_size) positions
    if "L_layers" in arch:
        out["num_layers"] = arch["L_layers"]
    if "H_layers" in arch:
        out["hrm.h_layers"] = arch["H_layers"]
    return out


# matched before TRM's: it has TRM's names and a high-level module beside them
LAYOUT = Layout("model.inner.H_level.layers.* and L_level.layers.* with H_init",
                lambda w: "H_init" in w and has(w, "H_level.layers."), shapes, names,
                {"num_heads": 8, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 16, "puzzle_emb_len": 1,
                 "stream_dtype": "bfloat16"}, "hrm", {"core": "hrm", "mlp": "swiglu", "no_ACT_continue": False},
                arch_fields, "hrm-paper")
