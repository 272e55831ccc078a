"""The model a config names: ``model.core`` picks the core (arc_trm/model/cores/registry.py)."""

from __future__ import annotations

from torch import nn

from arc_trm.config import ModelConfig
from arc_trm.model.cores.registry import core_of


def build_model(cfg: ModelConfig, seq_len: int) -> nn.Module:
    return core_of(cfg).module(cfg, seq_len)
