"""Training state in generations: ``RUN/state/step_NNNNNNN/``, one complete folder per save.

A save fills ``.step_NNNNNNN.tmp/`` (every process writes its part), then the main process writes
``complete.json`` (the step and every file's size) and renames the folder into place: a
generation either exists whole or not at all, so a kill between two files of a save can never
resume mixed state. The newest two generations are kept: if the newest is found damaged on resume
(a file missing, truncated or unreadable, or another step inside), the run resumes from the one
before, with a warning naming the damage; if none is usable, one line says so and how to go on
without losing ``best/`` and ``last/``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

import orjson

from arc_trm.atomic import failure_reason, usual_modes
from arc_trm.errors import ArcTrmError

MANIFEST = "complete.json"
KEEP = 2
_GEN = re.compile(r"^step_(\d{7,})$")


def generation_name(step: int) -> str:
    return f"step_{step:07d}"


def generations(root: Path) -> list[Path]:
    """Saved generations, newest first; a folder of the layout before generations (accelerate's
    files directly in ``state/``) counts as the oldest."""
    root = Path(root)
    found = sorted((p for p in root.glob("step_*") if p.is_dir() and _GEN.match(p.name)),
                   key=lambda p: int(_GEN.match(p.name).group(1)), reverse=True)
    if any(root.glob("custom_checkpoint_*")):
        found.append(root)
    return found


# The files a generation holds (:meth:`TrainSession.save_state`): safetensors and JSON only.
_OURS = re.compile(r"^(session|rank\d+)\.(safetensors|json)$")
PICKLED = ("written by an older arc-trm as pickles (accelerate's state), which can run code when loaded; "
           "not loaded")


def _seal(folder: Path) -> dict | None:
    """The generation's ``complete.json`` when it has the shape :func:`save` writes, else None."""
    try:
        seal = orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    ok = (isinstance(seal, dict) and type(seal.get("step")) is int and isinstance(seal.get("files"), dict)
          and all(isinstance(k, str) and type(v) is int for k, v in seal["files"].items()))
    return seal if ok else None


def problem_of(folder: Path) -> str | None:
    """Why a generation cannot be resumed from, judged from its files alone (None: it looks whole)."""
    if folder.name == "state":          # the single-folder layout of the first versions
        return PICKLED
    seal = _seal(folder)
    if seal is None:
        return f"no readable {MANIFEST} (the save did not finish, or the file was changed)"
    foreign = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and not _OURS.match(p.name))
    if foreign:
        if any(n.startswith(("random_states_", "custom_checkpoint_")) for n in foreign) and \
                not (folder / "session.json").exists():
            return PICKLED
        return (f"holds {foreign[0]}, which arc-trm does not write (it resumes only from safetensors and JSON, "
                "never from a file that can run code when loaded); refused")
    for name, size in seal["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        have = path.stat().st_size
        if have != size:
            return f"{name} is truncated or changed ({have:,} of {size:,} bytes)"
    return None


def saved_step(folder: Path) -> int | None:
    seal = _seal(folder)
    return seal["step"] if seal is not None else None


def save(root: Path, step: int, write: Callable[[Path], None], is_main: bool, barrier: Callable[[], None]) -> Path:
    """One generation: ``write(folder)`` runs on every process (it writes that process's files and
    synchronises), then the main process seals and publishes it and prunes older generations."""
    root = Path(root)
    final, tmp = root / generation_name(step), root / f".{generation_name(step)}.tmp"
    if is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier()
    try:
        write(tmp)
        if is_main:
            usual_modes(tmp)          # safetensors writes its files 0600
            files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
            with open(tmp / MANIFEST, "wb") as f:
                f.write(orjson.dumps({"step": step, "files": files}))
                f.flush()
                os.fsync(f.fileno())
            if final.exists():           # the same step saved again (a stop right after a periodic save)
                shutil.rmtree(final)
            tmp.rename(final)
    except ArcTrmError:
        raise
    except Exception as e:     # torch and safetensors raise their own types for a failed write
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise ArcTrmError(f"could not save the training state at step {step}: {failure_reason(e, root)}; the "
                          "previous state is unchanged", source=str(root)) from None
    if is_main:
        _prune(root)
    barrier()
    return final


def _prune(root: Path) -> None:
    """Keep the newest KEEP generations; drop older ones, the older layout's files once a generation
    exists, and folders of saves that never finished."""
    gens = [g for g in generations(root) if g != root]
    for old in gens[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    if gens:
        for p in root.iterdir():
            if p.is_file() or (p.name.startswith(".step_") and p.name.endswith(".tmp")):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def resume(root: Path, load: Callable[[Path], int], agree: Callable[[bool], bool], run_dir: Path) -> tuple[Path | None, list[str]]:
    """Load the newest usable generation with ``load(folder) -> step loaded``; ``agree(failed)``
    tells whether any process failed (so all processes fall back together). Returns the folder
    resumed from (None: nothing saved yet, start at step 0) and a warning per damaged generation."""
    damaged: list[str] = []
    for folder in generations(root):
        why = problem_of(folder)
        if why is None:
            try:
                step = load(folder)
                want = saved_step(folder)
                if want is not None and step != want:
                    why = f"holds step {step} but was saved as step {want}"
            except Exception as e:     # torch, accelerate and pickle each raise their own types
                why = f"unreadable ({str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__})"
        if agree(why is not None) and why is None:
            why = "unreadable on another process"
        if why is None:
            return folder, [f"training state {d}; resumed from {folder.name} instead" for d in damaged]
        damaged.append(f"{folder.name} is damaged: {why}")
    if damaged:
        raise ArcTrmError(f"no usable training state in {root} ({'; '.join(damaged)}); to go on from the exported "
                          f"weights without losing best/ and last/: arc-trm train --init-from {run_dir / 'last'} "
                          "--out NEW_RUN (or --fresh, which deletes this run's state, best/ and last/)",
                          source=str(run_dir))
    return None, []
