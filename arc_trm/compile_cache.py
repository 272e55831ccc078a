"""Compile once per machine: the folder where torch keeps what it compiled for arc-trm, and the compile
times this machine measured (which :mod:`arc_trm.clock` plans with).

The folder is ``ARC_TRM_COMPILE_CACHE`` when set, else ``$XDG_CACHE_HOME/arc-trm/compile`` (by default
``~/.cache/arc-trm/compile``). Inductor's caches (its FX-graph and AOTAutograd caches, and Triton's
kernels on a GPU) go to ``inductor/`` inside it, unless the user named ``TORCHINDUCTOR_CACHE_DIR``
already, so a resume, a predict after training, and the second checkpoint of a Kaggle ensemble of the
same architecture load compiled kernels instead of compiling them again (dynamo still traces: a warm
compile is shorter, not free). ``compile-times.json`` holds each graph's measured compile times, cold and
warm, by what it is (the kind of step, the model, the device, the batch), so the next plan knows them.
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


# A graph compiled before into this folder loads from inductor's caches: dynamo still traces it. Measured on
# the 2-core CPU (benchmarks/compile_cache.py): warm took 9-11 % of cold; until a warm compile of a graph
# has been timed, it is planned at this share of its cold time.
WARM_SHARE = 0.15


def _entry(value) -> dict:
    """A graph's ``{"cold": s, "warm": s}`` as read (anything else in the file counts as nothing known)."""
    if not isinstance(value, dict):
        return {}
    return {k: float(v) for k, v in value.items() if k in ("cold", "warm") and isinstance(v, (int, float))}


def measured(key: str) -> float | None:
    """What compiling ``key`` will take on this machine: its latest warm compile, else its cold one
    times :data:`WARM_SHARE` (it was compiled into this folder, so it loads warm now); None: never
    compiled here."""
    entry = _entry(_times().get(key))
    if "warm" in entry:
        return entry["warm"]
    return entry["cold"] * WARM_SHARE if "cold" in entry else None


def record(key: str, seconds: float) -> None:
    """Keep ``seconds`` as ``key``'s compile time: cold the first time this folder sees the graph, warm
    after; a cache that cannot be written costs only the plan."""
    times = _times()
    entry = _entry(times.get(key))
    entry["warm" if "cold" in entry else "cold"] = round(float(seconds), 2)
    times[key] = entry
    try:
        folder().mkdir(parents=True, exist_ok=True)
        write_bytes(folder() / TIMES, orjson.dumps(times, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    except (OSError, ArcTrmError):
        pass
