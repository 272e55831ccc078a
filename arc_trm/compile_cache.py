"""Compile once per machine: the folder where torch keeps what it compiled for arc-trm, and the compile
times this machine measured (which :mod:`arc_trm.clock` plans with).

The folder is ``ARC_TRM_COMPILE_CACHE`` when set, else ``$XDG_CACHE_HOME/arc-trm/compile`` (by default
``~/.cache/arc-trm/compile``). Inductor's caches (its FX-graph and AOTAutograd caches, and Triton's
kernels on a GPU) go to ``inductor/`` inside it, unless the user named ``TORCHINDUCTOR_CACHE_DIR``
already, so a resume, a predict after training, and the second checkpoint of a Kaggle ensemble of the
same architecture load compiled kernels instead of compiling them again (dynamo still traces: a warm
compile is shorter, not free). ``compile-times.json`` holds the latest measured compile time of each
graph, by what it is (the kind of step, the model, the device, the batch), so the next plan knows it.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from arc_trm.atomic import write_bytes
from arc_trm.errors import ArcTrmError
from arc_trm.standalone.timeshare import COMPILE_CACHE_ENV as ENV
TIMES = "compile-times.json"


def folder() -> Path:
    named = os.environ.get(ENV)
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "arc-trm" / "compile"


def use() -> Path:
    """Point inductor's caches into :func:`folder` (before the first compilation; a folder the user gave
    torch stays theirs). Returns the folder."""
    root = folder()
    try:
        (root / "inductor").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArcTrmError(f"cannot create the compile cache ({e.strerror}); set {ENV} to a writable folder",
                          source=str(root)) from None
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "inductor"))
    return root


def _times() -> dict:
    try:
        data = orjson.loads((folder() / TIMES).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}          # none yet, or torn by a kill: the plan falls back to its default
    return data if isinstance(data, dict) else {}


def measured(key: str) -> float | None:
    """The latest compile time measured for ``key`` on this machine (None: never)."""
    value = _times().get(key)
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


def record(key: str, seconds: float) -> None:
    """Keep ``seconds`` as ``key``'s compile time; a cache that cannot be written costs only the plan."""
    times = _times()
    times[key] = round(float(seconds), 2)
    try:
        folder().mkdir(parents=True, exist_ok=True)
        write_bytes(folder() / TIMES, orjson.dumps(times, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    except (OSError, ArcTrmError):
        pass
