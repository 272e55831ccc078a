"""TRM's cost: H_cycles × (L_cycles + 1) applications of the block stack per ACT step (L of z_L, one of
z_H), the last cycle's L + 1 with gradient. At paper size: 30 blocks, 10 with gradient."""

from arc_trm.config import ModelConfig


def blocks_per_step(m: ModelConfig) -> tuple[int, int]:
    n, H, L = m.num_layers, m.H_cycles, m.L_cycles
    return H * (L + 1) * n, (L + 1) * n
