"""The vision cores' own config section, ``[model.vit]``: plain data, imported by ``arc_trm/config.py``.
The width, heads and depth are the shared ``model.hidden_size`` (VARC's embed_dim), ``model.num_heads`` and
``model.num_layers`` (its depth); one task token per task is ``model.puzzle_emb_len = 1``."""

from dataclasses import dataclass, field


def _rule(check, text: str) -> dict:
    return {"rule": (check, text)}


@dataclass
class ViTSettings:
    # the pixel canvas's side (VARC's --image-size: 64) and the patch side (--patch-size: 2)
    image_size: int = field(default=64, metadata=_rule(lambda v: 4 <= v <= 256, "between 4 and 256"))
    patch_size: int = field(default=2, metadata=_rule(lambda v: v >= 1, "at least 1"))
    # the MLP's hidden width (VARC's --mlp-dim; its scripts keep the default 512) and dropout (--dropout 0.1)
    mlp_dim: int = field(default=512, metadata=_rule(lambda v: v >= 1, "at least 1"))
    dropout: float = field(default=0.1, metadata=_rule(lambda v: 0 <= v < 1, "at least 0 and below 1"))
    # Loop-ViT (WenjieShu/LoopViT): the num_layers blocks are one weight-tied core applied ``loops`` times
    # (its --max-loop-steps; 1 = VARC's ViT), with a learned embedding per loop added before each pass
    # (--no-step-embedding turns it off) and an exit gate on the task token after each pass
    # (LayerNorm → Linear(d, d/2) → GELU → Linear(d/2, 1) → sigmoid; --disable-exit-gate)
    loops: int = field(default=1, metadata=_rule(lambda v: v >= 1, "at least 1"))
    step_embeddings: bool = False
    exit_gate: bool = False
    # dynamic exit: a sample stops looping once the gate says so (probability ≥ gate_threshold) after at least
    # min_loops passes (--train-dynamic-exit / --eval-dynamic-exit, --min-loop-steps, --exit-gate-threshold)
    dynamic_exit: bool = False
    min_loops: int = field(default=1, metadata=_rule(lambda v: v >= 1, "at least 1"))
    gate_threshold: float = field(default=0.6, metadata=_rule(lambda v: 0 < v < 1, "between 0 and 1"))
    # the gate's regularizers in the training loss (--gate-entropy-weight 5e-4: the gate's entropy is
    # maximised; --loop-penalty-weight 1e-3: the mean share of loops run)
    gate_entropy_weight: float = field(default=0.0, metadata=_rule(lambda v: v >= 0, "0 or more"))
    loop_penalty_weight: float = field(default=0.0, metadata=_rule(lambda v: v >= 0, "0 or more"))
