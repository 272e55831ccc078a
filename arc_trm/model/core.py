"""What a core is to the rest of arc-trm: one value, built in its folder (``arc_trm/model/cores/<core>/core.py``),
that names its module, its cost and its reference checkpoint layout. Nothing outside a core's folder
branches on which core it is: the FLOP count, the memory estimate, the importer and ``build_model`` ask
the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from arc_trm.config import ModelConfig


@dataclass(frozen=True)
class Layout:
    """One reference code base's checkpoint: how its tensors are recognised and named, what its shapes
    tell, its published ARC settings for the rest, and how its run config's ``arch:`` table reads."""

    describe: str                                       # for messages: its tensor names
    matches: Callable[[dict], bool]
    shapes: Callable[[dict], dict]                      # model fields the tensors determine
    names: Callable[[ModelConfig], dict[str, str]]      # reference name → arc-trm name
    defaults: dict                                      # the published ARC runs' settings
    arch_name: str                                      # what its config's arch.name contains
    fixed: dict = field(default_factory=dict)           # fields its code always has
    arch_fields: Callable[[dict], dict] = lambda arch: {}   # its own keys of a config's arch: table
    paper_preset: str = ""                              # the model preset an import starts from
    rows_key: str = "puzzle_emb.weights"                # the puzzle-embedding (task-token) table's name
    blank_row: bool = True                              # its row 0 is the blank puzzle (TRM's code base)
    q_head: bool = True                                 # it has a halting head (q_head.weight, q_head.bias)
    run_preset: str = ""                                # whose [ttt] and [predict] an import takes


@dataclass(frozen=True)
class Core:
    name: str                                           # the value of model.core
    module: Callable[[ModelConfig, int], nn.Module]     # built as module(cfg, cells of the canvas)
    # block applications in one ACT step, and how many of them carry gradient
    blocks_per_step: Callable[[ModelConfig], tuple[int, int]]
    # forward FLOPs of one block over one example's whole sequence (model config, token canvas side)
    block_flops: Callable[[ModelConfig, int], float]
    # bytes of activations one sample's training step keeps (model config, token canvas side, device
    # type, mixed precision): what the memory check counts
    activation_bytes: Callable[[ModelConfig, int, str, str], float]
    layout: Layout
    # one ACT step's loss (its outputs, the model config) → (loss summed over the batch, exact per sample,
    # valid per sample, metric sums)
    step_loss: Callable[[dict, ModelConfig], tuple]

    @property
    def title(self) -> str:
        return self.name.upper()
