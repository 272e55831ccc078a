"""VARC's ViT as one core: its module, cost and reference layout."""

from arc_trm.model.core import Core
from arc_trm.model.cores.vit.cost import activation_bytes, block_flops, blocks_per_step
from arc_trm.model.cores.vit.layout import LAYOUT
from arc_trm.model.cores.vit.module import VisionTransformer, step_loss

CORE = Core("vit", VisionTransformer, blocks_per_step, block_flops, activation_bytes, LAYOUT, step_loss)
