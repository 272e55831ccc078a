"""Every core arc-trm has, by the name ``model.core`` gives it. A reference checkpoint is matched against
their layouts in this order (HRM before TRM: an HRM checkpoint holds TRM's names too)."""

from __future__ import annotations

from arc_trm.config import ModelConfig
from arc_trm.model.core import Core
from arc_trm.model.cores.hrm.core import CORE as HRM
from arc_trm.model.cores.trm.core import CORE as TRM
from arc_trm.model.cores.urm.core import CORE as URM
from arc_trm.model.cores.vit.core import CORE as VIT

CORES: dict[str, Core] = {core.name: core for core in (HRM, TRM, URM, VIT)}


def core_of(m: ModelConfig) -> Core:
    return CORES[m.core]
