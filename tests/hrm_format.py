"""HRM checkpoints as the TRM repository's ``pretrain.py`` (and sapientinc/HRM's) save them, built from the
names and shapes alone (no reference code at test time): the compiled-model prefix, both modules' blocks
(``H_level.layers.*``, ``L_level.layers.*``), ``H_init`` / ``L_init`` and the two-row ``q_head``."""

import torch

from arc_trm.config import ModelConfig
from arc_trm.model.cores.hrm.settings import HRMSettings
from arc_trm.model.layers import swiglu_width

PREFIX = "_orig_mod.model.inner."


def small_hrm_config() -> ModelConfig:
    """The size of the golden file: 32 wide, 2 heads, 2 + 2 layers, H2 x L2, 3 halting steps, one
    puzzle position, the Q-learning halt."""
    return ModelConfig(core="hrm", hidden_size=32, num_heads=2, num_layers=2, hrm=HRMSettings(h_layers=2), expansion=4.0,
                       H_cycles=2, L_cycles=2, halt_max_steps=3, halt_exploration_prob=0.5, puzzle_emb_len=1,
                       loss="stablemax", no_ACT_continue=False)


def hrm_shapes(cfg: ModelConfig, puzzle_ids: int) -> dict[str, tuple[int, ...]]:
    d, inter = cfg.hidden_size, swiglu_width(cfg.hidden_size, cfg.expansion)
    shapes = {"H_init": (d,), "L_init": (d,), "embed_tokens.embedding_weight": (12, d), "lm_head.weight": (12, d),
              "q_head.weight": (2, d), "q_head.bias": (2,), "puzzle_emb.weights": (puzzle_ids, d)}
    for level, n in (("H_level", cfg.hrm.h_layers), ("L_level", cfg.num_layers)):
        for i in range(n):
            shapes.update({f"{level}.layers.{i}.self_attn.qkv_proj.weight": (3 * d, d),
                           f"{level}.layers.{i}.self_attn.o_proj.weight": (d, d),
                           f"{level}.layers.{i}.mlp.gate_up_proj.weight": (2 * inter, d),
                           f"{level}.layers.{i}.mlp.down_proj.weight": (d, inter)})
    return shapes


def hrm_state_dict(cfg: ModelConfig, puzzle_ids: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded tensors of HRM's names and shapes, scaled like its initialisation (LeCun for the projections,
    1 for the initial states); halting head and puzzle rows non-zero so that both Q logits, the continue
    target and the embedding gradients are not trivial."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in sorted(hrm_shapes(cfg, puzzle_ids).items()):
        fan_in = shape[-1] if len(shape) > 1 else 1
        scale = {"H_init": 1.0, "L_init": 1.0, "embed_tokens.embedding_weight": cfg.hidden_size ** -0.5,
                 "puzzle_emb.weights": 0.1, "q_head.bias": 0.5, "q_head.weight": 0.3}.get(name, fan_in ** -0.5)
        out[PREFIX + name] = torch.randn(shape, generator=g) * scale
    return out
