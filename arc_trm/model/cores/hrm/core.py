"""HRM as one core: its module, cost and reference layout."""

from arc_trm.model.cores.hrm.cost import blocks_per_step
from arc_trm.model.cores.hrm.layout import LAYOUT
from arc_trm.model.cores.hrm.module import HRM
from arc_trm.model.token_cost import token_core

CORE = token_core("hrm", HRM, blocks_per_step, LAYOUT)
