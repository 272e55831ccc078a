"""What the Kaggle job did, typed: :class:`JobSummary` with one :class:`CheckpointRecord` per packaged
checkpoint (one checkpoint is an ensemble of one). The job writes it to ``working/arc_trm/summary.json``
as it ends; ``arc-trm rehearse`` and the notebook's last cell read that file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .arc_format import write_json_atomic

SUMMARY_NAME = "summary.json"


@dataclass
class CheckpointRecord:
    checkpoint: str                 # its folder in the job (ckpt_K; "checkpoint" when it is the only one)
    source: str | None = None       # where `arc-trm package` took it from
    seconds: float = 0.0            # the time it was given
    exit: int | None = None         # predict's exit code (None: stopped at its time, or never run)
    log: str | None = None          # predict's log file
    overran: bool = False           # stopped at its time; the answers it left still count
    failed: bool = False            # predict failed (exit code not 0)
    note: str | None = None         # what happened, in words, when it overran or failed
    ensembled: bool = False         # its answers count: its candidate file is whole
    reason: str | None = None       # why it was left out


@dataclass
class JobSummary:
    submission: str = ""            # the file Kaggle scores
    used: str = "none"              # what that file holds: none | fallback | predict | ensemble
    phases: dict = field(default_factory=dict)     # phase -> seconds
    challenges: str | None = None
    tasks: int = 0
    install_failed: bool = False
    checkpoints: list = field(default_factory=list)   # CheckpointRecord, in the order they ran
    ensembled: int = 0              # checkpoints whose answers count
    ensemble_error: str | None = None
    used_checkpoint: str | None = None   # the ensemble failed: whose own answers were used
    error: str | None = None        # the job itself failed (the fallback stays)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: Path) -> None:
        write_json_atomic(Path(path), asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "JobSummary":
        """Known fields only: a summary written by another arc-trm version still reads."""
        known = {f.name for f in fields(cls)}
        rec_known = {f.name for f in fields(CheckpointRecord)}
        out = cls(**{k: v for k, v in data.items() if k in known and k != "checkpoints"})
        out.checkpoints = [CheckpointRecord(**{k: v for k, v in c.items() if k in rec_known})
                           for c in data.get("checkpoints") or [] if isinstance(c, dict) and "checkpoint" in c]
        return out

    @classmethod
    def read(cls, path: Path) -> "JobSummary | None":
        """The summary the job wrote, or None when there is none (the notebook died before its end)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        return cls.from_dict(data) if isinstance(data, dict) else None
