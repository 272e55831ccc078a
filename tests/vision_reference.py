"""Loading the vision references' own code from a checkout the user passes (nothing of it is shipped):
lillian039/VARC's ``src/ARC_ViT.py`` and ``src/ARC_loader.py``, WenjieShu/LoopViT's ``src/`` models.

VARC imports ``PatchEmbed`` from timm and ``rearrange``/``repeat`` from einops; timm's package import pulls
torchvision, which a CPU machine may lack. Only timm's own ``timm/layers/patch_embed.py`` (and the three
small modules it imports) is loaded, under its real module names, so the reference runs timm's code."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _shell_package(name: str, path: Path) -> None:
    if name not in sys.modules:
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        sys.modules[name] = mod


def _timm_patch_embed() -> None:
    """``timm.models.vision_transformer.PatchEmbed`` from timm's own file, without timm's package import."""
    if "timm.models.vision_transformer" in sys.modules:
        return
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("timm is not installed (pip install timm einops: the reference's own imports)")
    root = Path(list(spec.submodule_search_locations)[0])
    _shell_package("timm", root)
    _shell_package("timm.layers", root / "layers")
    _shell_package("timm.models", root / "models")
    patch_embed = importlib.import_module("timm.layers.patch_embed")
    vt = types.ModuleType("timm.models.vision_transformer")
    vt.PatchEmbed = patch_embed.PatchEmbed
    sys.modules["timm.models.vision_transformer"] = vt


def load(checkout: Path, module: str):
    """``module`` (e.g. ``src.ARC_ViT``) from the reference checkout, with its own imports."""
    checkout = Path(checkout).resolve()
    if not (checkout / "src").is_dir():
        raise FileNotFoundError(f"{checkout} has no src/ (pass a checkout of the reference repository)")
    _timm_patch_embed()
    for name in list(sys.modules):           # two references both name their packages src/ and utils/
        if name in ("src", "utils") or name.startswith(("src.", "utils.")):
            del sys.modules[name]
    sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(checkout))
