"""The recursive model a config names: ``model.recursion`` picks TRM or URM."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.model.trm import TRM, RecursiveModel
from arc_trm.model.urm import URM


def build_model(cfg: ModelConfig, seq_len: int) -> RecursiveModel:
    return URM(cfg, seq_len) if cfg.recursion == "urm" else TRM(cfg, seq_len)
