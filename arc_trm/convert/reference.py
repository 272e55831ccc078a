"""``arc-trm import-reference``: a checkpoint written by a reference code base (the TRM reference's, URM's,
HRM's, in the TRM repository's copy or sapientinc's) → an ordinary arc-trm checkpoint folder.

What a file holds is read, not assumed:
- its container: a ``torch.save`` of the model's state dict (what model hubs publish), or the training
  dict of URM's ``pretrain.py`` (``step``, ``model_state_dict``, ``optimizer_states``, RNG states), whose
  ``model_state_dict`` is taken; the file is read with ``weights_only=True``, so nothing beyond tensors
  and plain values is ever unpickled;
- its architecture: from its tensor names, through the layout each core declares (its folder's
  ``layout.py``: HRM ``H_level.layers.*`` and ``L_level.layers.*`` + ``H_init``; TRM ``L_level.layers.*`` +
  ``H_init``; URM ``layers.*`` + ``init_hidden``), each with its names, its halting head and the published
  ARC settings for what shapes cannot tell;
- its config: ``--config``, else the first of ``all_config.yaml`` (TRM's ``pretrain.py``),
  ``config.yaml`` (URM's ``save_code_and_config``) and ``.hydra/config.yaml`` beside the file; without
  one, the layout's published ARC settings, and the import says which it took.

arc-trm's forward is the references', so the weights carry over as they are: only names change (TRM
keeps row 0 of the two-row Q head, the halt logit, where it halts on that alone; URM and HRM keep both
rows, as their code has them). With
the run's ``identifiers.json`` every puzzle-embedding row is mapped to arc-trm's (task, dihedral, colour
permutation) plan, so tasks the reference trained on keep their rows; without it only the mean of the
trained rows is kept and every task is treated as unseen (test-time training from mean-initialised
rows, the Kaggle path).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from arc_trm.config import ModelConfig, RunConfig, apply_overrides, apply_preset_tables, set_fields
from arc_trm.data.canvas import CANVAS, VOCAB_SIZE
from arc_trm.data.puzzle_ids import PuzzleTable
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import read_json
from arc_trm.model import checkpoint
from arc_trm.model.build import build_model
from arc_trm.model.core import Core
from arc_trm.model.cores.registry import CORES
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings

PREFIXES = ("_orig_mod.", "model.inner.")
# Buffers the reference may save that carry no weights (the vision references' RoPE tables are buffers too).
IGNORED = re.compile(r"^(rotary_emb\..*|puzzle_emb\.local_.*|.*\.rotary\.freqs_(cos|sin))$")
SEPARATOR = "|||"
# Where a reference run keeps its config, beside its checkpoint, in the order they are looked for.
CONFIG_NAMES = ("all_config.yaml", "config.yaml", ".hydra/config.yaml")


def core_matching(w: dict[str, torch.Tensor]) -> Core | None:
    """The core whose reference layout the tensor names match (in the registry's order)."""
    return next((core for core in CORES.values() if core.layout.matches(w)), None)


def _first_sentence(e: Exception, limit: int = 200) -> str:
    """torch's load errors run to paragraphs; their first sentence says what is wrong."""
    text = " ".join(str(e).split()) or type(e).__name__
    end = text.find(". ")
    text = text[: end + 1] if 0 < end < limit else text
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + " ..."


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The file's model tensors, names stripped of the compile and wrapper prefixes, and what the
    container said (``{"container": ..., "step": ...}``)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArcTrmError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ArcTrmError("is a folder; pass the step_N file itself", source=str(path)) from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise ArcTrmError(f"not a readable torch checkpoint (truncated or another format: {_first_sentence(e)})",
                          source=str(path)) from None
    meta = {"container": "state dict"}
    if isinstance(raw, dict) and "model_state_dict" in raw:        # a training dict (URM's pretrain.py)
        meta = {"container": "training checkpoint", "key": "model_state_dict",
                "step": raw.get("step") if type(raw.get("step")) is int else None}
        raw = raw["model_state_dict"]
    elif isinstance(raw, dict) and isinstance(raw.get("model_state"), dict):   # VARC's and Loop-ViT's scripts
        args = raw.get("config")
        meta = {"container": "training checkpoint", "key": "model_state", "step": None,
                "args": args if isinstance(args, dict) else None,
                "epoch": raw.get("epoch") if type(raw.get("epoch")) is int else None}
        raw = raw["model_state"]
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        keys = ", ".join(sorted(map(str, raw))[:6]) if isinstance(raw, dict) else type(raw).__name__
        raise ArcTrmError(f"not a tensor state dict (it holds {keys}; expected the model.state_dict() a reference "
                          "saves, or a training checkpoint with model_state_dict or model_state)", source=str(path))
    out = strip_prefixes(raw)
    core = core_matching(out)
    if core is None:
        known = "; ".join(f"{c.title}: {c.layout.describe}" for c in CORES.values())
        raise ArcTrmError(f"not a checkpoint of a known layout ({known})", source=str(path))
    try:
        core.layout.shapes(out)                  # a layout's own check: an HRM needs both its modules
    except ArcTrmError as e:
        raise ArcTrmError(e.reason, source=str(path)) from None
    return out, meta


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[0]


def strip_prefixes(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Names without the compile (``_orig_mod.``) and wrapper (``model.inner.``) prefixes."""
    out = {}
    for key, value in raw.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def architecture(w: dict[str, torch.Tensor]) -> str | None:
    """The core whose layout the tensor names match (None for none)."""
    core = core_matching(w)
    return core.name if core else None


def config_beside(step_file: Path) -> Path | None:
    """The run's config next to its checkpoint, as the reference code bases write it."""
    for name in CONFIG_NAMES:
        path = Path(step_file).parent / name
        if path.is_file():
            return path
    return None


def _yaml(path: Path) -> dict:
    import yaml
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ArcTrmError(f"cannot read the reference config ({str(e)[:160]})", source=str(path)) from None
    if not isinstance(data, dict):
        raise ArcTrmError("not a reference run config (a YAML mapping with an arch: table)", source=str(path))
    return data


def config_from_yaml(path: Path) -> dict:
    """The ``arch:`` table of a reference run's config as arc-trm model fields."""
    arch = _yaml(path).get("arch")
    if not isinstance(arch, dict):
        raise ArcTrmError("no arch: table (expected the reference run's all_config.yaml or config.yaml)",
                          source=str(path))
    fields = {k: arch[k] for k in ("hidden_size", "num_heads", "expansion", "H_cycles", "L_cycles", "halt_max_steps",
                                   "halt_exploration_prob", "puzzle_emb_len", "mlp_t", "rope_theta") if k in arch}
    name = str(arch.get("name", "")).lower()
    core = next((c for c in CORES.values() if c.name != "trm" and c.layout.arch_name in name), CORES["trm"])
    fields.update(core.layout.fixed)
    fields.update(core.layout.arch_fields(arch))
    if "pos_encodings" in arch:
        fields["pos_encoding"] = arch["pos_encodings"]
    if arch.get("forward_dtype") in ("bfloat16", "float32"):   # the dtype its weights were trained with
        fields["stream_dtype"] = arch["forward_dtype"]
    loss = (arch.get("loss") or {}).get("loss_type", "stablemax_cross_entropy") if isinstance(arch.get("loss"), dict) \
        else "stablemax_cross_entropy"
    fields["loss"] = "softmax" if "softmax" in str(loss) else "stablemax"
    ndim, hidden = arch.get("puzzle_emb_ndim"), arch.get("hidden_size")
    if isinstance(ndim, str) and ndim.startswith("${"):       # Hydra's ${.hidden_size}, unresolved
        ndim = hidden
    if ndim is not None and hidden is not None and ndim != hidden:
        raise ArcTrmError(f"puzzle_emb_ndim {ndim} differs from hidden_size {hidden}; arc-trm's puzzle rows are "
                          "hidden_size wide", source=str(path))
    if fields.get("puzzle_emb_len") == 0:
        fields["puzzle_emb_len"] = 1          # ceil(puzzle_emb_ndim / hidden_size) positions
    for k in ("expansion", "halt_exploration_prob", "rope_theta"):
        if k in fields:
            fields[k] = float(fields[k])
    return fields


def use_muon(path: Path) -> bool:
    """Whether the run was trained with Muon (URM's ARC-AGI-2 script: ``use_muon: true``)."""
    try:
        return bool(_yaml(path).get("use_muon"))
    except ArcTrmError:
        return False


def config_from_shapes(w: dict[str, torch.Tensor]) -> dict:
    """Model fields the tensors determine, with the layout's published ARC settings for the rest."""
    lay = core_matching(w).layout
    return {**lay.defaults, **lay.fixed, **lay.shapes(w)}


def mapped_weights(w: dict[str, torch.Tensor], cfg: ModelConfig, source: str) -> dict[str, torch.Tensor]:
    """arc-trm's names for the reference's tensors; a missing, unknown or mis-shaped tensor is
    refused with its name, the expected and the found shape."""
    lay = CORES[cfg.core].layout
    names = lay.names(cfg)
    want = build_model(cfg, CANVAS * CANVAS).state_dict()
    special = {lay.rows_key} | ({"q_head.weight", "q_head.bias"} if lay.q_head else set())
    unknown = sorted(k for k in w if (k not in names or names[k] not in want)
                     and k not in special and not IGNORED.match(k))
    if unknown:
        kind = {"urm": "URM"}.get(cfg.core, f"{'MLP-t' if cfg.mlp_t else 'attention'} {cfg.core.upper()}")
        raise ArcTrmError(f"unexpected tensor {unknown[0]} for a {cfg.num_layers}-layer {kind} with "
                          f"{cfg.mlp} ({len(unknown)} unexpected)", source=source)
    out = {}
    for ref, ours in names.items():
        if ours not in want:
            continue
        if ref not in w:
            raise ArcTrmError(f"missing tensor {ref} (expected shape {tuple(want[ours].shape)})", source=source)
        out[ours] = w[ref]
    if lay.q_head:
        for ref in ("q_head.weight", "q_head.bias"):
            if ref not in w:
                raise ArcTrmError(f"missing tensor {ref}", source=source)
        rows = want["q_head.weight"].shape[0]      # TRM keeps row 0 (halt); URM both, as its code has them
        out["q_head.weight"], out["q_head.bias"] = w["q_head.weight"][:rows], w["q_head.bias"][:rows]
    for ours, t in out.items():
        if tuple(t.shape) != tuple(want[ours].shape):
            ref = next((r for r, o in names.items() if o == ours), ours)
            raise ArcTrmError(f"tensor {ref} has shape {tuple(t.shape)}, expected {tuple(want[ours].shape)} for "
                              f"hidden size {cfg.hidden_size}", source=source)
    return {k: v.to(want[k].dtype) for k, v in out.items()}    # URM's bf16 convolution stays bf16


def parse_identifier(name: str) -> tuple[str, int, np.ndarray]:
    """``"<task>"`` (the identity copy) or ``"<task>|||t<k>|||<ten digits>"`` → (task, k, perm)."""
    if SEPARATOR not in name:
        if not name or name == "<blank>":
            raise ValueError("empty or blank name")
        return name, 0, np.arange(10, dtype=np.uint8)
    task, t, digits = (name.split(SEPARATOR) + ["", ""])[:3]
    if not task or not re.fullmatch(r"t[0-7]", t) or not re.fullmatch(r"[0-9]{10}", digits) \
            or digits[0] != "0" or sorted(digits) != list("0123456789"):
        raise ValueError("expected <task>|||t<0-7>|||<a permutation of 0-9 starting with 0>")
    return task, int(t[1]), np.frombuffer(digits.encode(), dtype=np.uint8) - ord("0")


def puzzle_table_from_identifiers(path: Path, rows: torch.Tensor) -> tuple[PuzzleTable, torch.Tensor]:
    """A puzzle table (plans grouped by task, in order of first appearance) and its embedding rows,
    reordered to match, from the reference run's ``identifiers.json``."""
    names = read_json(path, "identifiers file")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ArcTrmError("not an identifiers file (expected a JSON list of names, \"<blank>\" first)", source=str(path))
    if len(names) != rows.shape[0]:
        raise ArcTrmError(f"{len(names)} names for {rows.shape[0]} puzzle-embedding rows; it must be the "
                          "identifiers.json of the dataset this checkpoint was trained on", source=str(path))
    plans: dict[str, list[tuple[int, int, np.ndarray]]] = {}
    for pid, name in enumerate(names[1:], start=1):
        try:
            task, d, perm = parse_identifier(name)
        except ValueError as e:
            raise ArcTrmError(f"cannot read name {pid} {name!r}: {e}", source=str(path)) from None
        plans.setdefault(task, []).append((pid, d, perm))
    order, task_of, dih, perms, starts = [], [], [], [], [0]
    for t, (task, entries) in enumerate(plans.items()):
        entries.sort(key=lambda e: (e[1] != 0 or e[2].tolist() != list(range(10)), e[0]))   # identity first
        for pid, d, perm in entries:
            order.append(pid)
            task_of.append(t)
            dih.append(d)
            perms.append(perm)
        starts.append(len(order))
    table = PuzzleTable(list(plans), np.array(task_of, np.int32), np.array(dih, np.uint8),
                        np.array(perms, np.uint8).reshape(-1, 10), np.array(starts, np.int64), base=1)
    weight = torch.cat([rows[:1], rows[torch.as_tensor(order, dtype=torch.long)]]) if order else rows[:1]
    return table, weight


def _settings(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def import_reference(step_file: Path, out: Path, config: Path | None = None, identifiers: Path | None = None,
                     overrides: list[str] | None = None, notes: list[str] | None = None) -> checkpoint.Checkpoint:
    """Convert and write ``out`` (nothing is written unless every check passes). ``notes`` receives
    what the import found and assumed (the container, the config it read, the settings it took)."""
    step_file, out = Path(step_file), Path(out)
    notes = notes if notes is not None else []
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArcTrmError("already exists; choose a new folder for the imported checkpoint", source=str(out))
    w, meta = read_checkpoint(step_file)
    core = core_matching(w)
    lay = core.layout
    if meta["container"] == "training checkpoint":
        notes.append(f"read the {meta['key']} of a training checkpoint"
                     + (f" (step {meta['step']})" if meta.get("step") is not None else "")
                     + (f" (epoch {meta['epoch']})" if meta.get("epoch") is not None else ""))
    cfg = RunConfig(name="reference-import", model_preset=lay.paper_preset)
    fields = {f"model.{k}": v for k, v in config_from_shapes(w).items()}
    if "model.vit.image_size" in fields:      # a pixel canvas holds grids up to its side less a border and margin
        fields["data.canvas"] = min(CANVAS, fields["model.vit.image_size"] - 2)
    set_fields(cfg, fields)
    found = config or (config_beside(step_file) if not meta.get("args") else None)
    if config is None and meta.get("args"):
        notes.append("read the run's arguments saved in the checkpoint")
        set_fields(cfg, {f"model.{k}": v for k, v in lay.arch_fields(meta["args"]).items()})
    elif found is not None:
        if config is None:
            notes.append(f"read the run's config beside the checkpoint: {found}")
        set_fields(cfg, {f"model.{k}": v for k, v in config_from_yaml(found).items()})
        if use_muon(found):
            cfg.optim.dense = "muon"
    if found is None and not meta.get("args"):
        notes.append(f"no config given or beside the checkpoint ({', '.join(CONFIG_NAMES)}): took {core.title}'s "
                     f"published ARC settings for what the tensors cannot tell ({_settings(lay.defaults)})")
    if lay.run_preset:      # its test-time recipe (TTT, views, vote), as the reference's scripts run it
        apply_preset_tables(cfg, lay.run_preset, ("ttt", "predict"))
        notes.append(f"took {lay.run_preset}'s test-time training and prediction settings")
    apply_overrides(cfg, overrides or [])
    if cfg.model.core != core.name:
        raise ArcTrmError(f"the config describes a {cfg.model.core.upper()} but the weights are a "
                          f"{core.title}'s", source=str(found or step_file))
    if cfg.model.hidden_size != lay.shapes(w)["hidden_size"]:
        raise ArcTrmError(f"the config's hidden size {cfg.model.hidden_size} disagrees with the checkpoint's "
                          f"{lay.shapes(w)['hidden_size']}", source=str(found or step_file))
    if "embed_tokens.embedding_weight" in w and int(w["embed_tokens.embedding_weight"].shape[0]) != VOCAB_SIZE:
        raise ArcTrmError(f"vocabulary of {w['embed_tokens.embedding_weight'].shape[0]} tokens; ARC TRMs have "
                          f"{VOCAB_SIZE}", source=str(step_file))
    dense = mapped_weights(w, cfg.model, str(step_file))
    model = build_model(cfg.model, CANVAS * CANVAS)
    model.load_state_dict(dense)
    rows = w.get(lay.rows_key)
    width = cfg.model.hidden_size * (cfg.model.puzzle_emb_len if not lay.blank_row else 1)
    if rows is None or rows.ndim != 2 or rows.shape[1] != width:
        raise ArcTrmError(f"{lay.rows_key} must be (puzzle ids, {width}), found "
                          f"{None if rows is None else tuple(rows.shape)}", source=str(step_file))
    rows = rows.float()
    if identifiers is not None:
        table, weight = puzzle_table_from_identifiers(identifiers, rows)
    else:   # unseen-task mode: the blank row and the mean of the trained rows
        table = PuzzleTable([], np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros((0, 10), np.uint8),
                            np.zeros(1, np.int64), base=1)
        trained = rows[1:] if lay.blank_row else rows     # VARC's table has no blank row: every row is a task's
        blank = rows[:1] if lay.blank_row else torch.zeros_like(rows[:1])
        weight = torch.cat([blank, trained.mean(0, keepdim=True)])
    emb = PuzzleEmbeddings(weight.shape[0], weight.shape[1])
    emb.weight = weight
    canvas = cfg.data.canvas
    manifest = {"format_version": 1, "canvas": canvas, "seq_len": canvas * canvas, "vocab_size": VOCAB_SIZE,
                "seed": 0, "sources": {"reference_checkpoint": str(step_file),
                                       "identifiers": str(identifiers) if identifiers else None},
                "num_puzzle_ids": table.end, "test_task_ids": []}
    info = {"imported_from": str(step_file), "reference_rows": int(rows.shape[0]),
            "tasks_known": len(table.task_ids), "config": str(found) if found else None,
            **({"reference_step": meta["step"]} if meta.get("step") is not None else {})}
    checkpoint.export(out, cfg, model, emb, table, manifest, None, info)     # atomic; a failure is one line
    return checkpoint.load(out)
