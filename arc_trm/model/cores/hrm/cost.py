"""HRM's cost: H_cycles × L_cycles low-level and H_cycles high-level applications per ACT step, one of each
with gradient. At paper size: 24 blocks, 8 with gradient (plus the Q-learning target's forward pass,
which the shared FLOP count adds for any core that halts by that rule)."""

from arc_trm.config import ModelConfig


def blocks_per_step(m: ModelConfig) -> tuple[int, int]:
    n, h, H, L = m.num_layers, m.hrm.h_layers, m.H_cycles, m.L_cycles
    return H * L * n + H * h, n + h
