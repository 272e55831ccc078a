"""TRM as one core: its module, cost and reference layout."""

from arc_trm.model.cores.trm.cost import blocks_per_step
from arc_trm.model.cores.trm.layout import LAYOUT
from arc_trm.model.cores.trm.module import TRM
from arc_trm.model.token_cost import token_core

CORE = token_core("trm", TRM, blocks_per_step, LAYOUT)
