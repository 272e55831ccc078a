"""URM as one core: its module, cost and reference layout."""

from arc_trm.model.cores.urm.cost import blocks_per_step
from arc_trm.model.cores.urm.layout import LAYOUT
from arc_trm.model.cores.urm.module import URM
from arc_trm.model.token_cost import token_core

CORE = token_core("urm", URM, blocks_per_step, LAYOUT)
