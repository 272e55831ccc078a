"""One rule for every file and folder arc-trm writes: the new version is written beside the old one
and replaces it in one rename only when it is complete, so a kill, a full disk or a failed write
leaves the old version whole. A failure removes the partial copy and becomes one
:class:`ArcTrmError` naming the file and the reason (the CLI prints it as one line, exit 2).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from arc_trm.errors import ArcTrmError

_REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.EROFS: "read-only file system"}


def failure_reason(exc: BaseException, where: Path) -> str:
    """A short reason for a failed write. Libraries that write through their own C++ code (torch,
    safetensors) raise RuntimeError-like errors whose text buries the cause, so a full disk is
    also recognised by the free space left."""
    if isinstance(exc, OSError) and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = str(exc)
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


def _mode_for(path: Path, new: int = 0o666) -> int:
    """Keep an existing file's permissions; a new one gets ``new`` less the umask (a temporary
    file's 0600 would otherwise leak into the result)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return new & ~umask


def _fail(path: Path, exc: BaseException) -> ArcTrmError:
    return ArcTrmError(f"could not write {path.name}: {failure_reason(exc, path.parent)}; "
                       "the previous version, if any, is unchanged", source=str(path))


@contextmanager
def _removed_on_failure(target: Path, remove) -> Iterator[None]:
    """Run ``remove()`` on any failure of the block; a write error becomes one :class:`ArcTrmError`
    naming ``target``."""
    try:
        yield
    except ArcTrmError:
        remove()
        raise
    except Exception as e:     # torch and safetensors raise their own types for a failed write
        remove()
        raise _fail(target, e) from None
    except BaseException:
        remove()
        raise


@contextmanager
def replacing_file(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` to write; on success it replaces ``path`` in one
    rename (with ``path``'s permissions), on any failure it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    with _removed_on_failure(path, lambda: tmp.unlink(missing_ok=True)):
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


def _old_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def recover_folder(path: Path) -> None:
    """Finish a swap that a kill interrupted between its two renames: the old folder comes back."""
    path = Path(path)
    old = _old_name(path)
    if not path.exists() and old.is_dir():
        old.rename(path)


@contextmanager
def replacing_folder(path: Path) -> Iterator[Path]:
    """Yields a new temporary folder beside ``path`` to fill; on success it takes ``path``'s place
    (the old folder is renamed aside, the new one renamed in, then the old one removed; a kill
    between the two renames is undone by :func:`recover_folder`). On failure it is removed."""
    path = Path(path)
    recover_folder(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, _mode_for(path, new=0o777))
    with _removed_on_failure(path, lambda: shutil.rmtree(tmp, ignore_errors=True)):
        yield tmp
        old = _old_name(path)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
