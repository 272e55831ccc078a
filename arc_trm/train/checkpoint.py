"""Exported checkpoints: everything ``predict`` needs and nothing else.

A checkpoint folder holds ``model.safetensors`` (dense weights, EMA weights when trained with
EMA), ``puzzle_embeddings.safetensors``, ``config.json`` (the full resolved run config), the
puzzle-ID table and the dataset manifest.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import orjson
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from arc_trm.config import RunConfig
from arc_trm.data.puzzle_ids import PuzzleTable
from arc_trm.errors import ArcTrmError
from arc_trm.model.ema import EMA
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM


@dataclass
class Checkpoint:
    cfg: RunConfig
    model: TRM
    table: PuzzleEmbeddings
    puzzles: PuzzleTable
    manifest: dict
    info: dict


def export(folder: Path, cfg: RunConfig, core: TRM, table: PuzzleEmbeddings, puzzles: PuzzleTable,
           manifest: dict, ema: EMA | None = None, info: dict | None = None) -> Path:
    """Write atomically: into a temporary sibling, then rename over ``folder``."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in core.state_dict().items()}
    if ema is not None:
        weights.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.shadow.items()})
    save_file(weights, tmp / "model.safetensors")
    save_file({"weight": table.weight.detach().cpu().contiguous()}, tmp / "puzzle_embeddings.safetensors")
    (tmp / "config.json").write_bytes(orjson.dumps(cfg.to_dict(), option=orjson.OPT_INDENT_2))
    (tmp / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    (tmp / "info.json").write_bytes(orjson.dumps(info or {}, option=orjson.OPT_INDENT_2))
    puzzles.save(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def resolve(folder: Path) -> Path:
    """The checkpoint folder itself, or a run directory's ``best/``."""
    folder = Path(folder)
    if (folder / "best").is_dir() and not (folder / "model.safetensors").exists():
        return folder / "best"
    return folder


def load(folder: Path, use_ema: bool = True, device: str | torch.device = "cpu") -> Checkpoint:
    folder = resolve(folder)
    if not (folder / "model.safetensors").is_file():
        raise ArcTrmError("not a checkpoint (no model.safetensors); pass a run's checkpoint folder",
                          source=str(folder))
    try:
        cfg = RunConfig.from_dict(orjson.loads((folder / "config.json").read_bytes()))
        weights = load_file(folder / "model.safetensors", device=str(device))
        table_w = load_file(folder / "puzzle_embeddings.safetensors", device=str(device))["weight"]
        puzzles = PuzzleTable.load(folder)
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
        info_path = folder / "info.json"
        info = orjson.loads(info_path.read_bytes()) if info_path.is_file() else {}
    except (OSError, ValueError, KeyError, SafetensorError) as e:
        raise ArcTrmError(f"checkpoint is incomplete or corrupt ({e})", source=str(folder)) from None
    core = TRM(cfg.model)
    dense = {k: v for k, v in weights.items() if not k.startswith("ema.")}
    if use_ema and any(k.startswith("ema.") for k in weights):
        dense.update({k[4:]: v for k, v in weights.items() if k.startswith("ema.")})
    try:
        core.load_state_dict(dense)
    except RuntimeError as e:
        raise ArcTrmError(f"weights do not fit the checkpoint's model config ({str(e)[:300]})",
                          source=str(folder)) from None
    core.to(device)
    table = PuzzleEmbeddings(table_w.shape[0], table_w.shape[1], device)
    table.weight = table_w
    return Checkpoint(cfg, core, table, puzzles, manifest, info)
