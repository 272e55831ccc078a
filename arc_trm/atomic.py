"""One rule for every file and folder arc-trm writes: the new version is written beside the old one
and replaces it in one rename only when it is complete, so a kill, a full disk or a failed write
leaves the old version whole. A failure removes the partial copy and becomes one
:class:`ArcTrmError` naming the file and the reason (the CLI prints it as one line, exit 2).

Three more rules keep a user's own files safe:
- a write through a symbolic link replaces the file the link names; the link stays a link;
- a folder is replaced only when it is missing, empty or one arc-trm wrote: every such folder carries
  a marker (``.arc-trm.json``, naming its kind); any other folder, or a file in its place, is refused;
- the temporary copies a killed run left beside a target are removed by the next write of that target
  (:mod:`arc_trm.standalone.tempfiles`).
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson

from arc_trm.errors import ArcTrmError
from arc_trm.standalone.tempfiles import new_temp, real_target, usual_mode

_REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.EROFS: "read-only file system"}

MARKER = ".arc-trm.json"


def _has(*names: str):
    return lambda folder: all((folder / n).exists() for n in names)


def _run_lock(folder: Path) -> bool:
    """A run folder's lock as ``arc-trm train`` writes it (``pid N``): the folder of a run starting now. Empty
    too: the main process creates the file, then locks it, then writes its pid, and the run's other
    processes may look in between (they check the folder as it starts)."""
    try:
        text = (folder / ".lock").read_text(errors="replace")
    except OSError:
        return False
    return text == "" or text.startswith("pid ")


# What each kind of folder is called in a message, and how to tell such a folder written by an arc-trm
# from before the marker.
KINDS = {"dataset": ("dataset", _has("manifest.json", "pool.npy")),
         "checkpoint": ("checkpoint", _has("model.safetensors", "config.json")),
         "run": ("training run", _run_lock),
         "package-dataset": ("Kaggle package dataset", _has("arc_trm_payload.json")),
         "package-notebook": ("Kaggle package notebook", _has("kernel-metadata.json"))}


def failure_reason(exc: BaseException, where: Path, temp: Path | None = None, target: Path | None = None) -> str:
    """A short reason for a failed write. Libraries that write through their own C++ code (torch,
    safetensors) raise RuntimeError-like errors whose text buries the cause, so a full disk is
    also recognised by the free space left. A temporary file's name in the text becomes the target's:
    the user never named the temporary file."""
    if isinstance(exc, OSError) and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = str(exc)
    if temp is not None and target is not None:
        text = text.replace(str(temp), str(target)).replace(temp.name, target.name)
    if "No space left" in text or disk_full(where):
        return "no space left on device"
    if "Permission denied" in text:
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


def disk_full(where: Path) -> bool:
    """Whether the file system holding ``where`` has (almost) no space left for us."""
    where = Path(where)
    try:
        st = os.statvfs(where if where.is_dir() else where.parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def _mode_for(path: Path, folder: bool = False) -> int:
    """Keep an existing file's permissions; a new one gets the usual mode (a temporary file's 0600
    would otherwise leak into the result)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return usual_mode(folder)


def _fail(path: Path, exc: BaseException, temp: Path | None = None) -> ArcTrmError:
    return ArcTrmError(f"could not write {path.name}: {failure_reason(exc, path.parent, temp, path)}; "
                       "the previous version, if any, is unchanged", source=str(path))


@contextmanager
def _removed_on_failure(target: Path, remove, temp: Path | None = None) -> Iterator[None]:
    """Run ``remove()`` on any failure of the block; a write error becomes one :class:`ArcTrmError`
    naming ``target``."""
    try:
        yield
    except ArcTrmError:
        remove()
        raise
    except Exception as e:     # torch and safetensors raise their own types for a failed write
        remove()
        raise _fail(target, e, temp) from None
    except BaseException:
        remove()
        raise


@contextmanager
def replacing_file(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` (beside the file a symbolic link names) to write; on
    success it replaces that file in one rename, keeping its permissions; on any failure it is removed."""
    path = real_target(path)
    if path.is_dir():
        raise ArcTrmError("is a folder; arc-trm writes a file here only in place of a file", source=str(path))
    try:
        tmp = new_temp(path)
    except OSError as e:
        raise _fail(path, e) from None
    with _removed_on_failure(path, lambda: tmp.unlink(missing_ok=True), tmp):
        yield tmp
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)


def write_bytes(path: Path, data: bytes) -> Path:
    with replacing_file(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_together(files: list[tuple[Path, bytes]]) -> None:
    """Files that belong together (a submission and its candidates): every new version is written in
    full first, then they are renamed into place one right after the other, so a failure while writing
    leaves all the old versions, and no half file is ever seen."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = real_target(path)
            tmp = new_temp(path)
            temps.append((tmp, path))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _mode_for(path))
    except BaseException as e:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        if isinstance(e, Exception):
            where = temps[-1][1] if temps else real_target(files[0][0])
            raise _fail(where, e, temps[-1][0] if temps else None) from None
        raise
    for tmp, path in temps:
        os.replace(tmp, path)


def _old_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def recover_folder(path: Path) -> None:
    """Finish a swap that a kill interrupted between its two renames: the old folder comes back."""
    path = Path(path)
    old = _old_name(path)
    if not path.exists() and old.is_dir():
        old.rename(path)


def kind_of(path: Path) -> str | None:
    """The kind an arc-trm folder's marker names (None: no readable marker)."""
    try:
        data = orjson.loads((Path(path) / MARKER).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data.get("kind") if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def owner_problem(path: Path, kind: str) -> str | None:
    """Why arc-trm may not write a {kind} folder at ``path`` (None: it may). Allowed: nothing there,
    an empty folder, or a folder of that kind that arc-trm wrote (its marker, or the files an older
    arc-trm wrote)."""
    path = Path(path)
    name, legacy = KINDS[kind]
    if not path.exists():
        return None
    if not path.is_dir():
        return f"is a file, not a {name} folder; arc-trm replaces only folders it wrote"
    if path == Path.cwd().resolve() or path == Path(path.anchor):
        return f"is the current folder or the file system root; give the {name} a folder of its own"
    try:
        entries = sorted(os.listdir(path))
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if not entries:
        return None
    found = kind_of(path)
    if found == kind or (found is None and legacy(path)):
        return None
    if found is not None:
        return f"is an arc-trm {KINDS.get(found, (found,))[0]} folder, not a {name} folder; choose another folder"
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return (f"holds {len(entries)} entries that arc-trm did not write ({shown}); arc-trm writes a {name} only into "
            "a new or empty folder or one it wrote itself: choose a new or empty folder")


def check_owned(path: Path, kind: str) -> None:
    why = owner_problem(real_target(path), kind)
    if why:
        raise ArcTrmError(why, source=str(path))


def _marker(kind: str) -> bytes:
    return orjson.dumps({"kind": kind, "note": "written by arc-trm; safe to replace"})


def mark(folder: Path, kind: str) -> None:
    """Mark ``folder`` as an arc-trm folder of ``kind``."""
    write_bytes(Path(folder) / MARKER, _marker(kind))


def usual_modes(folder: Path) -> None:
    """Files a library wrote 0600 (safetensors does) get the usual 0644 less the umask."""
    file_mode, dir_mode = usual_mode(), usual_mode(folder=True)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), dir_mode)
        for f in files:
            os.chmod(os.path.join(root, f), file_mode)


@contextmanager
def replacing_folder(path: Path, kind: str) -> Iterator[Path]:
    """Yields a new temporary folder beside ``path`` to fill; on success it takes ``path``'s place
    (the old folder is renamed aside, the new one renamed in, then the old one removed; a kill
    between the two renames is undone by :func:`recover_folder`). On failure it is removed. A folder
    at ``path`` that arc-trm did not write as a ``kind`` folder is refused before anything is written."""
    path = real_target(path)
    recover_folder(path)
    check_owned(path, kind)
    try:
        tmp = new_temp(path, folder=True)
    except OSError as e:
        raise _fail(path, e) from None
    with _removed_on_failure(path, lambda: shutil.rmtree(tmp, ignore_errors=True), tmp):
        yield tmp
        (tmp / MARKER).write_bytes(_marker(kind))
        usual_modes(tmp)
        os.chmod(tmp, _mode_for(path, folder=True))
        old = _old_name(path)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
