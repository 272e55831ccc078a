"""The wheels the Kaggle notebook installs offline: arc-trm itself and the dependencies that
:mod:`arc_trm.kaggle.image` declares shipped, pinned to the versions installed here (what was
tested is what ships)."""

from __future__ import annotations

import subprocess
import sys
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


# The notebook's Python is the Kaggle image's, which changes between image releases: compiled
# dependencies ship for each of these, and pip picks the one that matches.
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")


def dependency_wheels(dest: Path, names: tuple[str, ...] = SHIPPED, pythons: tuple[str, ...] = PYTHONS,
                      wheelhouse: list[Path] = (), offline: bool = False) -> list[Path]:
    """Wheels of ``names`` for every Python of ``pythons`` on Kaggle's platform: the version
    installed here (what was tested is what ships), or, for a Python that version has no wheel
    for, the newest release that has one. From the package index, or only from ``wheelhouse``
    folders when ``offline``."""
    dest.mkdir(parents=True, exist_ok=True)
    pins = {}
    for name in names:
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ArcTrmError(f"{name} is not installed here, so its version for Kaggle is unknown; "
                              "install arc-trm's dependencies first") from None
    base = ["download", "--no-deps", "--only-binary=:all:", "--implementation", "cp", "--quiet", "-d", str(dest)]
    for platform in PLATFORMS:
        base += ["--platform", platform]
    for d in wheelhouse:
        base += ["--find-links", str(d)]
    if offline:
        base.append("--no-index")
    where = " (offline: put them in a --wheelhouse folder)" if offline else ""
    for py in pythons:
        args = base + ["--python-version", py]
        try:   # one pip call for every pin (pip's start-up dominates an offline package)
            _pip(args + [f"{name}=={version}" for name, version in pins.items()], f"fetching wheels for Python {py}",
                 dest)
            continue
        except ArcTrmError:
            pass
        for name, version in pins.items():   # find which one has no such wheel, and take a newer release for it
            try:
                _pip(args + [f"{name}=={version}"], f"fetching {name}=={version} for Python {py}", dest)
            except ArcTrmError:
                _pip(args + [f"{name}>={version}"], f"fetching a wheel of {name}>={version} for Python {py}{where}",
                     dest)
    return sorted(dest.glob("*.whl"))


def wheel_tags(filename: str) -> tuple[str, str, str, str]:
    """(project, version, python tag, abi tag) of a wheel file name."""
    parts = filename[:-4].split("-")
    return parts[0], parts[1], parts[-3], parts[-2]


def covers(filenames: list[str], project: str, python: str) -> bool:
    """Whether a wheel of ``project`` among ``filenames`` installs on CPython ``python`` (x86-64 Linux)."""
    cp = "cp" + python.replace(".", "")
    for f in filenames:
        name, _, py_tags, abi = wheel_tags(f)
        if name.lower().replace("-", "_") != project.lower().replace("-", "_"):
            continue
        tags = py_tags.split(".")
        if "py3" in tags or "py2.py3" in py_tags or cp in tags:
            return True
        if abi == "abi3" and any(t.startswith("cp3") and int(t[3:]) <= int(cp[3:]) for t in tags):
            return True
    return False
