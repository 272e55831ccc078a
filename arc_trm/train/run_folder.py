"""A training run's folder: one writer at a time, and a rerun that continues the *same* run.

The lock is an advisory ``flock`` on ``RUN/.lock``: the kernel drops it when its process dies,
so a run killed by a scheduler or by the kernel never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import orjson

from arc_trm.atomic import write_bytes
from arc_trm.config import RunConfig, changed_fields
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import read_json

# What a resumed run must keep: its weights, data, optimizer state and data order were made with
# these. Step counts, limits, intervals, compile and precision may change between runs.
FIXED_FOR_RESUME = ("model.", "data.", "optim.", "train.global_batch_size", "train.seed")


@contextmanager
def locked(folder: Path, enabled: bool = True, agree=None):
    """Hold the run folder's lock for the block; a second writer gets a clear error at once.
    ``agree(failed) -> any process failed`` lets the processes of one run fail together (only the
    main process takes the lock; the others must not wait for it in a collective)."""
    agree = agree or (lambda failed: failed)
    if not enabled:
        if agree(False):
            raise ArcTrmError("another `arc-trm train` is writing to this run folder", source=str(folder))
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            agree(True)
            raise ArcTrmError(f"another `arc-trm train` ({holder}) is writing to this run folder; wait for it "
                              "to finish or choose another --out", source=str(folder)) from None
        agree(False)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)      # releases the lock


def check_resume_config(folder: Path, cfg: RunConfig) -> None:
    """Refuse, before anything is overwritten, a rerun whose config changes what the saved run
    was trained with."""
    path = folder / "config.json"
    if not path.is_file():
        return
    saved = RunConfig.from_dict(read_json(path, "run config")).to_dict()
    conflicts = [f for f in changed_fields(saved, cfg.to_dict()) if f.startswith(FIXED_FOR_RESUME)]
    if conflicts:
        shown = ", ".join(f"{f} (saved {_get(saved, f)!r}, now {_get(cfg.to_dict(), f)!r})" for f in conflicts[:4])
        raise ArcTrmError(f"this run folder holds a run with other settings: {shown}; continue it without "
                          "these changes, or start over with --fresh or another --out", source=str(folder))


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part, {}) if isinstance(d, dict) else None
    return d


def save_config(folder: Path, cfg: RunConfig) -> None:
    write_bytes(folder / "config.json", orjson.dumps(cfg.to_dict(), option=orjson.OPT_INDENT_2))
