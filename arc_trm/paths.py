"""What a command reads and writes, checked before any work: every path the user named is resolved
once (symbolic links followed, so a link to an input is that input), and an output is refused when it
is one of the inputs, holds one (replacing it would delete the input), lies inside a folder that is read
as a whole (a folder of task files: it would be read as a task next time), or is another output of the
same command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from arc_trm.errors import ArcTrmError
from arc_trm.standalone.tempfiles import real_target


@dataclass(frozen=True)
class Place:
    """A path as the user gave it (``flag``: the option that named it) and where it really is."""

    flag: str
    path: Path
    real: Path
    whole: bool = False      # a folder read as a whole: every file below it is an input

    def shown(self) -> str:
        return f"{self.flag} {self.path}" if self.flag else str(self.path)


def place(flag: str, path: Path | str, whole: bool = False) -> Place:
    return Place(flag, Path(path), real_target(path), whole)


def _within(inner: Path, outer: Path) -> bool:
    return inner != outer and outer in inner.parents


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:      # hard links and bind mounts: one file under two names
        return os.path.samefile(a, b)
    except OSError:
        return False


def collision(inputs: list[Place], outputs: list[Place]) -> str | None:
    """Why these outputs cannot be written (None: they can)."""
    for k, out in enumerate(outputs):
        for other in outputs[:k]:
            if _same(out.real, other.real):
                return f"{other.flag} and {out.flag} name the same path {out.path}; give each its own"
        for inp in inputs:
            if _same(out.real, inp.real):
                return (f"{out.shown()} is also the input {inp.shown()}; arc-trm never writes over what it reads: "
                        "choose another path")
            if _within(inp.real, out.real):
                return (f"{out.shown()} holds the input {inp.shown()}; writing it would replace that input: choose "
                        "a path outside it")
            if inp.whole and _within(out.real, inp.real):
                return (f"{out.shown()} lies inside {inp.shown()}, a folder read as a whole (the output would be "
                        "read as input next time): choose a path outside it")
    return None


def check_io(inputs: list[Place], outputs: list[Place]) -> None:
    why = collision(inputs, outputs)
    if why:
        raise ArcTrmError(why)
