"""``arc-trm import-reference``: a checkpoint written by the TRM reference code or by URM's (a
``torch.save`` of its model's state dict, as published on model hubs) → an ordinary arc-trm
checkpoint folder. Which of the two a file holds is read from its tensor names (TRM:
``L_level.layers.*`` and ``H_init``; URM: ``layers.*`` and ``init_hidden``).

arc-trm's forward is the reference's, so the weights carry over as they are: only names change
(and the halting head keeps row 0 of the reference's two-row Q head, the halt logit; row 1 is
the unused "continue" logit). The file is read with ``weights_only=True``: nothing beyond
tensors is ever unpickled. With the run's ``identifiers.json`` every puzzle-embedding row is
mapped to arc-trm's (task, dihedral, colour permutation) plan, so tasks the reference trained
on keep their rows; without it only the mean of the trained rows is kept and every task is
treated as unseen (test-time training from mean-initialised rows, the Kaggle path).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from arc_trm.config import ModelConfig, RunConfig, apply_overrides, set_fields
from arc_trm.data.canvas import CANVAS, VOCAB_SIZE
from arc_trm.data.puzzle_ids import PuzzleTable
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import read_json
from arc_trm.model import checkpoint
from arc_trm.model.layers import swiglu_width
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model

PREFIXES = ("_orig_mod.", "model.inner.")
# Buffers the reference may save that carry no weights.
IGNORED = re.compile(r"^(rotary_emb\..*|puzzle_emb\.local_.*)$")
SEPARATOR = "|||"
# The reference's ARC runs, for what tensor shapes cannot tell.
ARC_DEFAULTS = {"num_heads": 8, "H_cycles": 3, "L_cycles": 4, "halt_max_steps": 16, "puzzle_emb_len": 16,
                "stream_dtype": "bfloat16"}   # the reference's forward_dtype


def _first_sentence(e: Exception, limit: int = 200) -> str:
    """torch's load errors run to paragraphs; their first sentence says what is wrong."""
    text = " ".join(str(e).split()) or type(e).__name__
    end = text.find(". ")
    text = text[: end + 1] if 0 < end < limit else text
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + " ..."


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The reference file's tensors, names stripped of the compile and wrapper prefixes."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArcTrmError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ArcTrmError("is a folder; pass the step_N file itself", source=str(path)) from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise ArcTrmError(f"not a readable torch checkpoint (truncated or another format: {_first_sentence(e)})",
                          source=str(path)) from None
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ArcTrmError("not a tensor state dict (expected the model.state_dict() the reference saves)",
                          source=str(path))
    out = strip_prefixes(raw)
    if architecture(out) is None:
        hint = " (it has H_level weights: an HRM checkpoint?)" if any("H_level" in k for k in out) else ""
        raise ArcTrmError("not a TRM or URM checkpoint: no model.inner.L_level.layers.* (TRM) or "
                          f"model.inner.layers.* with init_hidden (URM) weights{hint}", source=str(path))
    return out


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
    """"trm" or "urm" by the tensor names, None for neither."""
    if "H_init" in w and any(k.startswith("L_level.layers.") for k in w):
        return "trm"
    if "init_hidden" in w and any(k.startswith("layers.") for k in w):
        return "urm"
    return None


def hidden_size_of(w: dict[str, torch.Tensor]) -> int:
    return int((w["init_hidden"] if "init_hidden" in w else w["H_init"]).shape[0])


def config_from_yaml(path: Path) -> dict:
    """The ``arch:`` table of a reference ``all_config.yaml`` as arc-trm model fields."""
    import yaml

    try:
        arch = (yaml.safe_load(Path(path).read_text()) or {}).get("arch")
    except (OSError, yaml.YAMLError) as e:
        raise ArcTrmError(f"cannot read the reference config ({str(e)[:160]})", source=str(path)) from None
    if not isinstance(arch, dict):
        raise ArcTrmError("no arch: table (expected the reference run's all_config.yaml)", source=str(path))
    fields = {k: arch[k] for k in ("hidden_size", "num_heads", "expansion", "H_cycles", "L_cycles", "halt_max_steps",
                                   "halt_exploration_prob", "puzzle_emb_len", "mlp_t", "rope_theta") if k in arch}
    if "urm" in str(arch.get("name", "")).lower():   # URM's name: urm.urm@URM; its code always has ConvSwiGLU
        fields.update(recursion="urm", mlp="conv_swiglu")
        if "loops" in arch:
            fields["halt_max_steps"] = arch["loops"]
        if "num_layers" in arch:
            fields["num_layers"] = arch["num_layers"]
    else:
        fields["recursion"] = "trm"
    if "L_layers" in arch:
        fields["num_layers"] = arch["L_layers"]
    if "pos_encodings" in arch:
        fields["pos_encoding"] = arch["pos_encodings"]
    if arch.get("forward_dtype") in ("bfloat16", "float32"):   # the dtype its weights were trained with
        fields["stream_dtype"] = arch["forward_dtype"]
    loss = (arch.get("loss") or {}).get("loss_type", "stablemax_cross_entropy")
    fields["loss"] = "softmax" if "softmax" in str(loss) else "stablemax"
    ndim, hidden = arch.get("puzzle_emb_ndim"), arch.get("hidden_size")
    if ndim is not None and hidden is not None and ndim != hidden:
        raise ArcTrmError(f"puzzle_emb_ndim {ndim} differs from hidden_size {hidden}; arc-trm's puzzle rows are "
                          "hidden_size wide", source=str(path))
    if fields.get("puzzle_emb_len") == 0 or (fields.get("recursion") == "urm" and ndim):
        fields["puzzle_emb_len"] = 1          # ceil(puzzle_emb_ndim / hidden_size) positions
    for k in ("expansion", "halt_exploration_prob", "rope_theta"):
        if k in fields:
            fields[k] = float(fields[k])
    return fields


# URM's ARC runs (scripts/URM_arcagi*.sh), for what its tensor shapes cannot tell.
URM_ARC_DEFAULTS = {"num_heads": 8, "H_cycles": 2, "L_cycles": 6, "halt_max_steps": 16, "puzzle_emb_len": 1,
                    "stream_dtype": "bfloat16", "recursion": "urm", "mlp": "conv_swiglu", "pos_encoding": "rope"}


def use_muon(path: Path) -> bool:
    """Whether the run was trained with Muon (URM's ARC-AGI-2 script: ``use_muon: true``)."""
    import yaml
    try:
        return bool((yaml.safe_load(Path(path).read_text()) or {}).get("use_muon"))
    except (OSError, yaml.YAMLError):
        return False


def config_from_shapes(w: dict[str, torch.Tensor]) -> dict:
    """Model fields the tensors determine, with the reference's ARC defaults for the rest."""
    if architecture(w) == "urm":
        d = int(w["init_hidden"].shape[0])
        layers = sorted({int(k.split(".")[1]) for k in w if k.startswith("layers.")})
        conv = w.get("layers.0.mlp.dwconv.weight")
        inter = int(w["layers.0.mlp.gate_up_proj.weight"].shape[0]) // 2 if "layers.0.mlp.gate_up_proj.weight" in w else 0
        expansion = 4.0 if swiglu_width(d, 4.0) == inter or not inter else inter * 3 / (2 * d)
        return {**URM_ARC_DEFAULTS, "hidden_size": d, "num_layers": len(layers), "expansion": expansion,
                "conv_kernel": int(conv.shape[-1]) if conv is not None else 2}
    d = int(w["H_init"].shape[0])
    layers = sorted({int(k.split(".")[2]) for k in w if k.startswith("L_level.layers.")})
    mlp_t = any(".mlp_t." in k for k in w)
    inter = int(w["L_level.layers.0.mlp.gate_up_proj.weight"].shape[0]) // 2
    expansion = 4.0 if swiglu_width(d, 4.0) == inter else inter * 3 / (2 * d)
    return {**ARC_DEFAULTS, "hidden_size": d, "num_layers": len(layers), "mlp_t": mlp_t, "expansion": expansion,
            "pos_encoding": "learned" if "embed_pos.embedding_weight" in w else ("none" if mlp_t else "rope"),
            "recursion": "trm", "mlp": "swiglu"}


def mapped_weights(w: dict[str, torch.Tensor], cfg: ModelConfig, source: str) -> dict[str, torch.Tensor]:
    """arc-trm's names for the reference's tensors; a missing, unknown or mis-shaped tensor is
    refused with its name, the expected and the found shape."""
    names = {"H_init": "H_init", "L_init": "L_init", "init_hidden": "init_hidden",
             "embed_tokens.embedding_weight": "embed_tokens", "lm_head.weight": "lm_head.weight",
             "embed_pos.embedding_weight": "embed_pos"}
    for i in range(cfg.num_layers):
        ref, ours = (f"layers.{i}" if cfg.recursion == "urm" else f"L_level.layers.{i}"), f"layers.{i}"
        names.update({f"{ref}.mlp.gate_up_proj.weight": f"{ours}.mlp.gate_up.weight",
                      f"{ref}.mlp.down_proj.weight": f"{ours}.mlp.down.weight",
                      f"{ref}.mlp.dwconv.weight": f"{ours}.mlp.dwconv.weight",
                      f"{ref}.mlp.dwconv.bias": f"{ours}.mlp.dwconv.bias"})
        if cfg.mlp_t:
            names.update({f"{ref}.mlp_t.gate_up_proj.weight": f"{ours}.mlp_t.gate_up.weight",
                          f"{ref}.mlp_t.down_proj.weight": f"{ours}.mlp_t.down.weight"})
        else:
            names.update({f"{ref}.self_attn.qkv_proj.weight": f"{ours}.attn.qkv.weight",
                          f"{ref}.self_attn.o_proj.weight": f"{ours}.attn.out.weight"})
    want = build_model(cfg, CANVAS * CANVAS).state_dict()
    unknown = sorted(k for k in w if (k not in names or names[k] not in want)
                     and k not in ("q_head.weight", "q_head.bias", "puzzle_emb.weights") and not IGNORED.match(k))
    if unknown:
        kind = "URM" if cfg.recursion == "urm" else f"{'MLP-t' if cfg.mlp_t else 'attention'} TRM"
        raise ArcTrmError(f"unexpected tensor {unknown[0]} for a {cfg.num_layers}-layer {kind} with "
                          f"{cfg.mlp} ({len(unknown)} unexpected)", source=source)
    out = {}
    for ref, ours in names.items():
        if ours not in want:
            continue
        if ref not in w:
            raise ArcTrmError(f"missing tensor {ref} (expected shape {tuple(want[ours].shape)})", source=source)
        out[ours] = w[ref]
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


def import_reference(step_file: Path, out: Path, config: Path | None = None, identifiers: Path | None = None,
                     overrides: list[str] | None = None) -> checkpoint.Checkpoint:
    """Convert and write ``out`` (nothing is written unless every check passes)."""
    step_file, out = Path(step_file), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArcTrmError("already exists; choose a new folder for the imported checkpoint", source=str(out))
    w = read_state_dict(step_file)
    arch = architecture(w)
    cfg = RunConfig(name="reference-import", model_preset="urm-paper" if arch == "urm" else "trm-paper-att")
    set_fields(cfg, {f"model.{k}": v for k, v in config_from_shapes(w).items()})
    if config is not None:
        set_fields(cfg, {f"model.{k}": v for k, v in config_from_yaml(config).items()})
        if use_muon(config):
            cfg.optim.dense = "muon"
    apply_overrides(cfg, overrides or [])
    if cfg.model.recursion != arch:
        raise ArcTrmError(f"the config describes a {cfg.model.recursion.upper()} but the weights are a "
                          f"{arch.upper()}'s", source=str(config or step_file))
    if cfg.model.hidden_size != hidden_size_of(w):
        raise ArcTrmError(f"the config's hidden size {cfg.model.hidden_size} disagrees with the checkpoint's "
                          f"{hidden_size_of(w)}", source=str(config or step_file))
    if int(w["embed_tokens.embedding_weight"].shape[0]) != VOCAB_SIZE:
        raise ArcTrmError(f"vocabulary of {w['embed_tokens.embedding_weight'].shape[0]} tokens; ARC TRMs have "
                          f"{VOCAB_SIZE}", source=str(step_file))
    dense = mapped_weights(w, cfg.model, str(step_file))
    model = build_model(cfg.model, CANVAS * CANVAS)
    model.load_state_dict(dense)
    rows = w.get("puzzle_emb.weights")
    if rows is None or rows.ndim != 2 or rows.shape[1] != cfg.model.hidden_size:
        raise ArcTrmError(f"puzzle_emb.weights must be (puzzle ids, {cfg.model.hidden_size}), found "
                          f"{None if rows is None else tuple(rows.shape)}", source=str(step_file))
    rows = rows.float()
    if identifiers is not None:
        table, weight = puzzle_table_from_identifiers(identifiers, rows)
    else:   # unseen-task mode: the blank row and the mean of the trained rows
        table = PuzzleTable([], np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros((0, 10), np.uint8),
                            np.zeros(1, np.int64), base=1)
        weight = torch.cat([rows[:1], rows[1:].mean(0, keepdim=True)])
    emb = PuzzleEmbeddings(weight.shape[0], weight.shape[1])
    emb.weight = weight
    manifest = {"format_version": 1, "canvas": CANVAS, "seq_len": CANVAS * CANVAS, "vocab_size": VOCAB_SIZE,
                "seed": 0, "sources": {"reference_checkpoint": str(step_file),
                                       "identifiers": str(identifiers) if identifiers else None},
                "num_puzzle_ids": table.end, "test_task_ids": []}
    info = {"imported_from": str(step_file), "reference_rows": int(rows.shape[0]),
            "tasks_known": len(table.task_ids)}
    checkpoint.export(out, cfg, model, emb, table, manifest, None, info)     # atomic; a failure is one line
    return checkpoint.load(out)
