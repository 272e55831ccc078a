"""Exported checkpoints: everything ``predict``, ``package`` and ``train --init-from`` need.

A checkpoint folder holds ``model.safetensors`` (dense weights under the bare module's parameter
names, plus ``ema.``-prefixed EMA weights when trained with EMA), ``puzzle_embeddings.safetensors``,
``config.json`` (the full resolved run config), the puzzle-ID table, the dataset manifest and
``info.json`` (step, scores). A run folder holds ``best/`` and ``last/`` checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from arc_trm.atomic import recover_folder, replacing_folder
from arc_trm.config import RunConfig, apply_overrides, changed_fields, set_fields
from arc_trm.data.canvas import CANVAS
from arc_trm.data.dataset import load_prints, save_prints
from arc_trm.data.overlap import Prints
from arc_trm.data.puzzle_ids import PuzzleTable
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import read_json
from arc_trm.model.ema import EMA
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings, initial_rows
from arc_trm.model.build import build_model
from arc_trm.model.recursion import RecursiveModel

# Settings a trained checkpoint fixes: its weights and its puzzle table were made with them.
FIXED_BY_TRAINING = ("model.", "data.")
CHANGEABLE_DATA = ("data.translation",)   # only shapes TTT's batches


@dataclass
class Checkpoint:
    cfg: RunConfig
    model: RecursiveModel
    table: PuzzleEmbeddings
    puzzles: PuzzleTable
    manifest: dict
    info: dict
    folder: Path
    prints: Prints | None = None      # fingerprints of the pairs it trained on (None: not recorded)

    @property
    def canvas(self) -> int:
        return int(self.manifest.get("canvas", CANVAS))


def export(folder: Path, cfg: RunConfig, model: RecursiveModel, table: PuzzleEmbeddings, puzzles: PuzzleTable,
           manifest: dict, ema: EMA | None = None, info: dict | None = None, prints: Prints | None = None) -> Path:
    """Write atomically (:func:`arc_trm.atomic.replacing_folder`): a kill or a full disk leaves the
    previous checkpoint whole. ``model`` is the bare module (never a DDP or compiled wrapper), so
    names are the same however it was run."""
    folder = Path(folder)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        weights.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.shadow.items()})
    with replacing_folder(folder, "checkpoint") as tmp:
        save_file(weights, tmp / "model.safetensors")
        save_file({"weight": table.weight.detach().float().cpu().contiguous()}, tmp / "puzzle_embeddings.safetensors")
        (tmp / "config.json").write_bytes(orjson.dumps(cfg.to_dict(), option=orjson.OPT_INDENT_2))
        (tmp / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        (tmp / "info.json").write_bytes(orjson.dumps(info or {}, option=orjson.OPT_INDENT_2))
        puzzles.save(tmp)
        save_prints(tmp, prints)          # what it trained on, for predict's overlap check
    return folder


def resolve(folder: Path) -> Path:
    """The checkpoint folder itself, or a run folder's ``best/`` (``last/`` when it has no best)."""
    folder = Path(folder)
    recover_folder(folder)               # a save killed between its two renames
    if (folder / "model.safetensors").exists():
        return folder
    for name in ("best", "last"):
        recover_folder(folder / name)
        if (folder / name / "model.safetensors").is_file():
            return folder / name
    return folder


def check_overrides(cfg: RunConfig, overrides: list[str], source: str, fields: dict | None = None) -> RunConfig:
    """Apply ``--set`` overrides (and ``fields``, dotted names with Python values) to a trained
    checkpoint's config, refusing those its weights cannot follow (the model's shape, the data it
    was trained on)."""
    before = cfg.to_dict()
    apply_overrides(cfg, overrides)
    set_fields(cfg, fields or {})
    fixed = [f for f in changed_fields(before, cfg.to_dict())
             if f.startswith(FIXED_BY_TRAINING) and f not in CHANGEABLE_DATA]
    if fixed:
        raise ArcTrmError(f"cannot change {', '.join(fixed)} of a trained checkpoint (its weights and puzzle "
                          "table were made with them); train a new run for that", source=source)
    return cfg


def load(folder: Path, overrides: list[str] | None = None, device: str | torch.device = "cpu",
         fields: dict | None = None) -> Checkpoint:
    """Read a checkpoint; ``overrides`` and ``fields`` apply before the model is built (see
    :func:`check_overrides`); the EMA weights are used when ``predict.use_ema`` and present."""
    folder = resolve(folder)
    if not folder.is_dir():
        raise ArcTrmError("no such checkpoint or run folder", source=str(folder))
    if not (folder / "model.safetensors").is_file():
        raise ArcTrmError("not a checkpoint (no model.safetensors, best/ or last/); pass a run folder or "
                          "its best/ or last/", source=str(folder))
    try:
        cfg = RunConfig.from_dict(read_json(folder / "config.json", "checkpoint config"))
        weights = load_file(folder / "model.safetensors", device="cpu")
        table_w = load_file(folder / "puzzle_embeddings.safetensors", device="cpu")["weight"]
        puzzles = PuzzleTable.load(folder)
        manifest = read_json(folder / "manifest.json", "checkpoint manifest", dict)
        info = read_json(folder / "info.json", "checkpoint info", dict) if (folder / "info.json").is_file() else {}
        canvas = manifest.get("canvas", CANVAS)
        if type(canvas) is not int or not 1 <= canvas <= CANVAS:
            raise ArcTrmError(f"manifest.json: canvas must be a whole number 1..{CANVAS}, found {canvas!r}")
    except (OSError, ValueError, KeyError, SafetensorError, ArcTrmError) as e:
        raise ArcTrmError(f"checkpoint is incomplete or corrupt ({e})", source=str(folder)) from None
    check_overrides(cfg, overrides or [], str(folder), fields)
    model = build_model(cfg.model, canvas * canvas)       # (a vision core draws on its own canvas)
    dense = {k: v for k, v in weights.items() if not k.startswith("ema.")}
    has_ema = any(k.startswith("ema.") for k in weights)
    if cfg.predict.use_ema and has_ema:
        dense.update({k[4:]: v for k, v in weights.items() if k.startswith("ema.")})
    try:
        model.load_state_dict(dense)
    except RuntimeError as e:
        raise ArcTrmError(f"weights do not fit the checkpoint's model config ({str(e)[:300]})",
                          source=str(folder)) from None
    if table_w.ndim != 2 or table_w.shape[1] != cfg.model.hidden_size or table_w.shape[0] < puzzles.end:
        raise ArcTrmError(f"puzzle embeddings of shape {tuple(table_w.shape)} do not fit hidden size "
                          f"{cfg.model.hidden_size} and {puzzles.end} puzzle IDs", source=str(folder))
    model.to(device)
    table = PuzzleEmbeddings(table_w.shape[0], table_w.shape[1], device)
    table.weight = table_w.to(device)
    try:
        prints = load_prints(folder)
    except (OSError, ValueError, ArcTrmError) as e:
        raise ArcTrmError(f"checkpoint is incomplete or corrupt ({e})", source=str(folder)) from None
    return Checkpoint(cfg, model, table, puzzles, manifest, info, folder, prints)


def embedding_rows(ck: Checkpoint, puzzles: PuzzleTable, fresh_std: float | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Embedding rows for a new puzzle table from a trained checkpoint: a plan the checkpoint
    trained (same task, dihedral and colour permutation) keeps its row; other plans of a task it
    knows start at the mean of that task's rows; tasks it never saw start at the mean of all
    trained rows (the initialisation that worked best for test-time training in public reports).
    With ``fresh_std`` the rows of tasks it never saw are drawn anew instead (VARC's
    ``--resume-skip-task-token``: zeros, or a truncated normal of that deviation, seeded by ``seed``).
    Returns the (``puzzles.end``, hidden) rows and, per task of ``puzzles``, whether it is known."""
    src, w = ck.puzzles, ck.table.weight.float().cpu()
    out = torch.zeros(puzzles.end, w.shape[1])
    trained = w[src.base:]     # (an imported checkpoint without identifiers keeps only their mean)
    out[puzzles.base:] = trained.mean(0) if len(trained) else 0.0
    index = {tid: t for t, tid in enumerate(src.task_ids)}
    known = np.array([tid in index for tid in puzzles.task_ids], dtype=bool)
    for t in np.flatnonzero(known):
        st = index[puzzles.task_ids[t]]
        rows = np.arange(src.task_start[st], src.task_start[st + 1])
        by_plan = {(int(src.plan_dihedral[r]), src.plan_perm[r].tobytes()): r + src.base for r in rows}
        mean = w[rows + src.base].mean(0)
        for r in range(puzzles.task_start[t], puzzles.task_start[t + 1]):
            hit = by_plan.get((int(puzzles.plan_dihedral[r]), puzzles.plan_perm[r].tobytes()))
            out[r + puzzles.base] = w[hit] if hit is not None else mean
    if fresh_std is not None:
        fresh = initial_rows(puzzles.end, w.shape[1], fresh_std, torch.Generator().manual_seed(seed))
        for t in np.flatnonzero(~known):
            rows = slice(puzzles.task_start[t] + puzzles.base, puzzles.task_start[t + 1] + puzzles.base)
            out[rows] = fresh[rows]
    return out, known
