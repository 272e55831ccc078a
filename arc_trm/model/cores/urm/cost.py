"""URM's cost: H_cycles × L_cycles applications of the block stack per ACT step, the last L_cycles with
gradient. At paper size: 48 blocks, 24 with gradient."""

from arc_trm.config import ModelConfig


def blocks_per_step(m: ModelConfig) -> tuple[int, int]:
    n, H, L = m.num_layers, m.H_cycles, m.L_cycles
    return H * L * n, L * n
