"""HRM's own config section, ``[model.hrm]``: plain data, imported by ``arc_trm/config.py``."""

from dataclasses import dataclass, field


@dataclass
class HRMSettings:
    # the high-level module's blocks (the reference's H_layers; the low-level module is model.num_layers)
    h_layers: int = field(default=4, metadata={"rule": (lambda v: v >= 1, "at least 1 (hrm-paper: 4)")})
