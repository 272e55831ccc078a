"""Temporary files and folders written beside their target, in the standard library only (part of
:mod:`arc_trm.standalone`, which the Kaggle notebook carries).

A temporary copy is named ``.<target name>.<pid>.<random>.tmp``: the process id says who owns it, so
the next write of the same target removes what a killed process left (a 92 MB dataset folder, half a
submission) without touching the copy of a process that is still writing. Older arc-trm versions named
them ``.<target name>.<8 random characters>.tmp``; those are removed too.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path


def real_target(path) -> Path:
    """Where a write of ``path`` really goes: through a symbolic link to the file it names (the link
    stays a link and points to the new content), and as an absolute path."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def new_temp(target: Path, folder: bool = False) -> Path:
    """A new, empty temporary file (or folder) beside ``target``, after removing stale ones."""
    target = Path(target)
    remove_stale(target)
    prefix, parent = f".{target.name}.{os.getpid()}.", str(target.parent)
    if folder:
        return Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".tmp"))
    fd, name = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=".tmp")
    os.close(fd)
    return Path(name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # it exists but belongs to someone else
        return True
    return True


def stale_temps(target: Path) -> list:
    """The temporary copies of ``target`` that no running process owns."""
    target = Path(target)
    name = re.escape(target.name)
    ours = re.compile(rf"^\.{name}\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
    older = re.compile(rf"^\.{name}\.[A-Za-z0-9_]{{8}}\.tmp$")
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    found = []
    for e in entries:
        m = ours.match(e.name)
        if (m and not _alive(int(m.group(1)))) or (not m and older.match(e.name)):
            found.append(Path(e.path))
    return found


def remove_stale(target: Path) -> None:
    for p in stale_temps(target):
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
        except OSError:
            pass


def usual_mode(folder: bool = False) -> int:
    """0666 (0777 for a folder) less the umask: what a new file gets from ``open``, rather than the
    0600 of a temporary file or of a library that writes through one."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask
