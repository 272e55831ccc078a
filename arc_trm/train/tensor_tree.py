"""Nested training state (dicts, lists and tuples of tensors, arrays and plain values: a model's and an
optimizer's state dicts, RNG states, ACT carries) as one safetensors file and one JSON file.

Resuming reads only these two formats, which hold data and never code: a run folder may come from a
colleague's disk, a Kaggle dataset or a model hub, and unpickling a file from one (what
``accelerator.load_state`` does) runs whatever the file says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from safetensors.torch import load_file, save_file

from arc_trm.errors import ArcTrmError

SUFFIXES = (".safetensors", ".json")


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"$tensor": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"$ndarray": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        return {"$items": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in training state")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$tensor" in obj:
        return tensors[obj["$tensor"]]
    if "$ndarray" in obj:
        return tensors[obj["$ndarray"]].numpy()
    if "$tuple" in obj:
        return tuple(_decode(v, tensors) for v in obj["$tuple"])
    if "$items" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["$items"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def write_tree(stem: Path, obj: Any) -> None:
    """``stem.safetensors`` (every tensor and array) and ``stem.json`` (the structure and plain values)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(obj, tensors)
    save_file(tensors, str(stem) + ".safetensors")
    Path(str(stem) + ".json").write_bytes(orjson.dumps(structure))


def read_tree(stem: Path) -> Any:
    """What :func:`write_tree` wrote, on the CPU; a file that is not what it wrote raises :class:`ArcTrmError`."""
    tensors = load_file(str(stem) + ".safetensors", device="cpu")
    structure = orjson.loads(Path(str(stem) + ".json").read_bytes())
    try:
        return _decode(structure, tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise ArcTrmError(f"{Path(stem).name}.json does not match its tensors ({e!r})") from None
