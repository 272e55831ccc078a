"""The wheels the Kaggle notebook installs offline: arc-trm itself and the dependencies that
:mod:`arc_trm.kaggle.image` declares shipped, pinned to the versions installed here (what was
tested is what ships)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import arc_trm
from arc_trm.atomic import disk_full
from arc_trm.errors import ArcTrmError
from arc_trm.kaggle.image import SHIPPED


def source_root() -> Path | None:
    """The source tree arc_trm was installed from (an editable install or a clone), if any."""
    root = Path(arc_trm.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def _pip(args: list[str], what: str, dest: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if disk_full(dest) or "No space left" in (r.stderr or ""):
            raise ArcTrmError(f"{what} failed: no space left on device")
        raise ArcTrmError(f"{what} failed:\n{(r.stderr or r.stdout)[-1500:]}")


def project_wheel(dest: Path, wheelhouse: list[Path] = ()) -> Path:
    """Build arc-trm's wheel from its source tree (offline: no build isolation), or take it from a
    wheelhouse when there is no source tree."""
    dest.mkdir(parents=True, exist_ok=True)
    root = source_root()
    if root is None:
        for d in wheelhouse:
            found = sorted(Path(d).glob(f"arc_trm-{arc_trm.__version__}-*.whl"))
            if found:
                target = dest / found[-1].name
                target.write_bytes(found[-1].read_bytes())
                return target
        raise ArcTrmError("no arc-trm source tree to build the wheel from; run from a clone "
                          f"or pass --wheelhouse with arc_trm-{arc_trm.__version__}-*.whl")
    _pip(["wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(dest), str(root)],
         f"building the arc-trm wheel from {root}", dest)
    found = sorted(dest.glob(f"arc_trm-{arc_trm.__version__}-*.whl"))
    if not found:
        raise ArcTrmError(f"pip built no arc_trm wheel into {dest}")
    return found[-1]


# The notebook's Python is the Kaggle image's. Kaggle builds its image on Colab's (Kaggle/docker-python
# #1444, November 2024): Python 3.11 through 2025, 3.12 since Kaggle's "Python 3.12 bump" (#1496), the
# Python of Colab's 2026 runtime. 3.13 is the next such bump; 3.11 serves a notebook pinned to a 2025
# environment. 3.10 is gone from every image a new notebook gets (and accelerate >= 1.16 dropped it).
# Compiled dependencies ship for each of these, and pip picks the one that matches.
PYTHONS = ("3.11", "3.12", "3.13")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")


@dataclass(frozen=True)
class Substitution:
    """A shipped dependency whose installed version has no wheel for one of the Pythons: the newest
    release that has one ships for that Python instead."""

    name: str
    python: str
    installed: str
    shipped: str

    def line(self) -> str:
        return f"{self.name} {self.shipped} for Python {self.python} ({self.installed} has no wheel there)"


@dataclass
class Wheels:
    files: list[Path]
    substitutions: list[Substitution] = field(default_factory=list)


def _downloaded(args: list[str], requirement: str, what: str, dest: Path) -> list[Path]:
    """Download one requirement into a fresh folder inside ``dest`` and move its wheels to ``dest``;
    returns their paths (pip says nothing about which version it chose; the file names do)."""
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
        into = list(args)
        into[into.index("-d") + 1] = tmp
        _pip(into + [requirement], what, dest)
        out = []
        for f in Path(tmp).glob("*.whl"):
            target = dest / f.name
            os.replace(f, target)
            out.append(target)
        return out


def dependency_wheels(dest: Path, names: tuple[str, ...] = SHIPPED, pythons: tuple[str, ...] = PYTHONS,
                      wheelhouse: list[Path] = (), offline: bool = False, pins: dict[str, str] | None = None) -> Wheels:
    """Wheels of ``names`` for every Python of ``pythons`` on Kaggle's platform: the version installed
    here (what was tested is what ships) where it has a wheel for that Python, else the newest release
    that has one, older or newer (an upstream release that drops a Python must not break ``package``:
    accelerate 1.16.0 dropped 3.10 overnight); each substitution is reported. From the package index,
    or only from ``wheelhouse`` folders when ``offline``. ``pins``: versions to ship instead of the
    installed ones (the tests' stand-in packages)."""
    dest.mkdir(parents=True, exist_ok=True)
    if pins is not None:
        return _fetch(dest, dict(pins), pythons, wheelhouse, offline)
    pins = {}
    for name in names:
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ArcTrmError(f"{name} is not installed here, so its version for Kaggle is unknown; "
                              "install arc-trm's dependencies first") from None
    return _fetch(dest, pins, pythons, wheelhouse, offline)


def _fetch(dest: Path, pins: dict[str, str], pythons: tuple[str, ...], wheelhouse: list[Path], offline: bool) -> Wheels:
    base = ["download", "--no-deps", "--only-binary=:all:", "--implementation", "cp", "--quiet", "-d", str(dest)]
    for platform in PLATFORMS:
        base += ["--platform", platform]
    for d in wheelhouse:
        base += ["--find-links", str(d)]
    if offline:
        base.append("--no-index")
    where = " (offline: put one in a --wheelhouse folder)" if offline else ""
    subs: list[Substitution] = []
    for py in pythons:
        args = base + ["--python-version", py]
        try:   # one pip call for every pin (pip's start-up dominates an offline package)
            _pip(args + [f"{name}=={version}" for name, version in pins.items()], f"fetching wheels for Python {py}",
                 dest)
            continue
        except ArcTrmError:
            pass
        for name, version in pins.items():   # find which have no such wheel, and take the newest release that has one
            try:
                _pip(args + [f"{name}=={version}"], f"fetching {name}=={version} for Python {py}", dest)
            except ArcTrmError:
                got = _downloaded(args, name, f"fetching a wheel of {name} (any release) for Python {py}{where}", dest)
                shipped = next((wheel_tags(f.name)[1] for f in got if _key(wheel_tags(f.name)[0]) == _key(name)), "?")
                subs.append(Substitution(name, py, version, shipped))
    return Wheels(sorted(dest.glob("*.whl")), subs)


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def wheel_tags(filename: str) -> tuple[str, str, str, str]:
    """(project, version, python tag, abi tag) of a wheel file name."""
    parts = filename[:-4].split("-")
    return parts[0], parts[1], parts[-3], parts[-2]


def covers(filenames: list[str], project: str, python: str) -> bool:
    """Whether a wheel of ``project`` among ``filenames`` installs on CPython ``python`` (x86-64 Linux)."""
    cp = "cp" + python.replace(".", "")
    for f in filenames:
        name, _, py_tags, abi = wheel_tags(f)
        if _key(name) != _key(project):
            continue
        tags = py_tags.split(".")
        if "py3" in tags or "py2.py3" in py_tags or cp in tags:
            return True
        if abi == "abi3" and any(t.startswith("cp3") and int(t[3:]) <= int(cp[3:]) for t in tags):
            return True
    return False
