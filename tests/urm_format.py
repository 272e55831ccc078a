"""URM checkpoints as URM's own ``pretrain.py`` saves them, built from the names and shapes alone
(no reference code at test time): the compiled-model prefix, the two-row ``q_head``, the bf16
depthwise convolution, ``init_hidden``."""

import torch

from arc_trm.config import ModelConfig
from arc_trm.model.layers import swiglu_width

PREFIX = "_orig_mod.model.inner."


def small_urm_config() -> ModelConfig:
    """The size of the golden file: 32 wide, 2 heads, 2 layers, H2 x L2, 3 loops, one puzzle position."""
    return ModelConfig(core="urm", mlp="conv_swiglu", hidden_size=32, num_heads=2, num_layers=2, expansion=4.0,
                       H_cycles=2, L_cycles=2, halt_max_steps=3, halt_exploration_prob=0.5, puzzle_emb_len=1,
                       loss="stablemax")


def urm_shapes(cfg: ModelConfig, puzzle_ids: int) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    d, inter = cfg.hidden_size, swiglu_width(cfg.hidden_size, cfg.expansion)
    shapes = {"init_hidden": ((d,), torch.float32), "embed_tokens.embedding_weight": ((12, d), torch.float32),
              "lm_head.weight": ((12, d), torch.float32), "q_head.weight": ((2, d), torch.float32),
              "q_head.bias": ((2,), torch.float32), "puzzle_emb.weights": ((puzzle_ids, d), torch.float32)}
    for i in range(cfg.num_layers):
        shapes.update({f"layers.{i}.self_attn.qkv_proj.weight": ((3 * d, d), torch.float32),
                       f"layers.{i}.self_attn.o_proj.weight": ((d, d), torch.float32),
                       f"layers.{i}.mlp.gate_up_proj.weight": ((2 * inter, d), torch.float32),
                       f"layers.{i}.mlp.dwconv.weight": ((inter, 1, cfg.conv_kernel), torch.bfloat16),
                       f"layers.{i}.mlp.dwconv.bias": ((inter,), torch.bfloat16),
                       f"layers.{i}.mlp.down_proj.weight": ((d, inter), torch.float32)})
    return shapes


def urm_state_dict(cfg: ModelConfig, puzzle_ids: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded tensors of URM's names and shapes, each scaled like URM's initialisation (LeCun for
    the projections, 1 for init_hidden), the halting head and puzzle rows non-zero so that halting
    logits and embedding gradients are not trivial."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, (shape, dtype) in sorted(urm_shapes(cfg, puzzle_ids).items()):
        fan_in = shape[-1] if len(shape) > 1 else 1
        scale = {"init_hidden": 1.0, "embed_tokens.embedding_weight": cfg.hidden_size ** -0.5,
                 "puzzle_emb.weights": 0.1, "q_head.bias": 1.0}.get(name, fan_in ** -0.5)
        if name.endswith("dwconv.weight") or name.endswith("dwconv.bias"):
            scale = 0.5
        out[PREFIX + name] = (torch.randn(shape, generator=g) * scale).to(dtype)
    return out
