"""The recursive model a config names: ``model.recursion`` picks TRM, URM or HRM."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.model.hrm import HRM
from arc_trm.model.trm import TRM, RecursiveModel
from arc_trm.model.urm import URM

CORES = {"trm": TRM, "urm": URM, "hrm": HRM}


def build_model(cfg: ModelConfig, seq_len: int) -> RecursiveModel:
    return CORES[cfg.recursion](cfg, seq_len)
