"""Typed run configuration, loaded from TOML presets in ``configs/`` and overridden by ``--set``.

A *model preset* (``tiny-cpu``, ``trm-paper-att``, ``trm-paper-mlp``) holds a ``[model]`` table.
A *run preset* (``smoke``, ``arc1-paper``, ...) names its model preset with ``model_preset`` and
holds any of the other tables. A *predict preset* (``kaggle-l4x4``) holds only ``[ttt]`` and
``[predict]``: it is laid over a trained checkpoint's config. Fields not given keep the
dataclass defaults below, which are the paper's ARC recipe.
"""

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from arc_trm.errors import ArcTrmError


@dataclass
class ModelConfig:
    hidden_size: int = 512
    num_heads: int = 8
    num_layers: int = 2
    expansion: float = 4.0
    H_cycles: int = 3
    L_cycles: int = 4
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    puzzle_emb_len: int = 16
    pos_encoding: Literal["rope", "learned", "none"] = "rope"
    mlp_t: bool = False                       # attention-free token mixer (fixed-size grids)
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    loss: Literal["stablemax", "softmax"] = "stablemax"
    # dtype of the residual stream and of the carried z_H / z_L. "bfloat16" is the TRM reference's
    # forward_dtype: the activations kept for the backward pass take half the memory and the
    # elementwise work half the bandwidth, at bf16 rounding of the state. "float32" (the default)
    # keeps the state exact; under bf16 autocast only the matmuls and attention run in bf16.
    stream_dtype: Literal["float32", "bfloat16"] = "float32"
    # The recursion: "trm" (z_H/z_L, the TRM paper) or "urm" (one hidden state, H_cycles−1 rounds of
    # L_cycles iterations without gradient then L_cycles with gradient: the Universal Reasoning Model,
    # arXiv 2512.14693). Independent of it, the channel MLP: "swiglu" or "conv_swiglu" (URM's short
    # depthwise convolution over the tokens between the gate and the down projection, kernel
    # conv_kernel, its weights and computation in bf16 as in URM's code).
    recursion: Literal["trm", "urm"] = "trm"
    mlp: Literal["swiglu", "conv_swiglu"] = "swiglu"
    conv_kernel: int = 2

    def describe(self) -> str:
        """One line a person reads: "TRM, 512 wide, 2 layers, swiglu, H3 x L6, 16 halting steps"."""
        return (f"{self.recursion.upper()}, {self.hidden_size} wide, {self.num_layers} layers, {self.mlp}, "
                f"H{self.H_cycles} x L{self.L_cycles}, {self.halt_max_steps} halting steps")


# Model fields that set how the state is computed, not what the weights are: a trained model's
# weights run under any of their values.
NUMERICS_FIELDS = ("stream_dtype",)


@dataclass
class DataConfig:
    tasks: list[str] = field(default_factory=lambda: ["arc1-train", "conceptarc"])
    test_tasks: list[str] = field(default_factory=lambda: ["arc1-eval"])
    augmentations: int = 1000
    seed: int = 0
    synthetic_tasks: int = 0                  # >0: add this many generated tasks (demo runs)
    synthetic_test_tasks: int = 0
    synthetic_families: list[str] = field(default_factory=list)  # empty = every rule family
    canvas: int = 30                          # 30 = the paper; smaller canvases for CPU demos
    # Example pools among the tasks (files of input/output pairs, e.g. RE-ARC) are cut into
    # puzzles of pool_pairs pairs, at most pool_puzzles per pool (0: as many as a pool fills).
    pool_pairs: int = 8
    pool_puzzles: int = 0
    # Where a training example sits in the canvas. "fixed" (the reference): one offset per
    # (seed, augmented copy, example), and one example of every copy at (0, 0), where every
    # prediction is made; "per_draw": a fresh offset on every draw; "none": always (0, 0).
    translation: Literal["fixed", "per_draw", "none"] = "fixed"


@dataclass
class OptimConfig:
    lr: float = 1e-4
    lr_warmup_steps: int = 2000
    lr_min_ratio: float = 1.0                 # TRM ARC runs keep the LR flat after warmup
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    ema: bool = True
    ema_rate: float = 0.999
    # "adam_atan2" (TRM's) or "muon" (URM's ARC-AGI-2 recipe: every 2-D dense weight through Muon,
    # the rest through AdamW with these betas and weight decay; see arc_trm/model/muon.py).
    dense: Literal["adam_atan2", "muon"] = "adam_atan2"


@dataclass
class TrainConfig:
    global_batch_size: int = 768
    micro_batch_size: int = 0                 # per process; 0 = global batch / processes (no accumulation)
    epochs: int = 100000                      # passes over the demonstration pairs
    max_steps: int = 0                        # >0 caps the step count
    time_limit_s: float = 0.0                 # >0 stops (with eval + checkpoint) after this long
    eval_interval_epochs: int = 10000         # 0: evaluate only at the end
    eval_interval_steps: int = 0              # >0 overrides the epoch interval
    max_eval_views: int = 0                   # per test input; 0 = every augmented copy
    save_every_steps: int = 1000
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    compile: Literal["auto", True, False] = "auto"   # auto: compiled on CUDA, eager on CPU
    seed: int = 0
    log_every_steps: int = 10


def _ttt_optim() -> OptimConfig:
    # Fine-tuning a trained model: short warmup, no decay of the new embedding rows, no EMA.
    return OptimConfig(lr_warmup_steps=20, puzzle_emb_weight_decay=0.0, ema=False)


@dataclass
class TTTConfig:
    mode: Literal["off", "embeddings", "embeddings_then_full", "full"] = "embeddings_then_full"
    augmentations: int = 100
    embedding_steps: int = 200
    full_steps: int = 200
    global_batch_size: int = 64
    micro_batch_size: int = 0                 # per process; 0 = no accumulation
    optim: OptimConfig = field(default_factory=_ttt_optim)

    def phases(self) -> list[tuple[str, int]]:
        """The phases this mode runs, in order, with their step counts."""
        return {"off": [], "embeddings": [("embeddings", self.embedding_steps)],
                "full": [("full", self.full_steps)],
                "embeddings_then_full": [("embeddings", self.embedding_steps),
                                         ("full", self.full_steps)]}[self.mode]


@dataclass
class PredictConfig:
    strategy: Literal["vote", "poe", "vote+poe"] = "vote"
    views_per_input: int = 0                  # 0 = every augmented copy of the test input
    batch_size: int = 64                      # per process
    time_budget_s: float = 0.0                # 0 = no budget
    use_ema: bool = True                      # predict with the EMA weights when the checkpoint has them
    halt_early: bool = False                  # True: freeze each answer at its first confident halt
    candidates: int = 10                      # ranked candidates per test input in `predict --candidates`


@dataclass
class RunConfig:
    name: str = "run"
    model_preset: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """A config saved by ``to_dict`` (also by older arc-trm versions: retired fields are
        dropped, moved ones moved)."""
        cfg = cls()
        _merge(cfg, _upgrade(d), "")
        return cfg


# Fields older checkpoints carry: (table, field) → None (retired) or the new place under that table.
_RETIRED = {("model", "seq_len"): None, ("model", "vocab_size"): None, ("predict", "top_k"): None,
            ("ttt", "lr"): "optim.lr", ("ttt", "lr_warmup_steps"): "optim.lr_warmup_steps",
            ("ttt", "puzzle_emb_lr"): "optim.puzzle_emb_lr", ("ttt", "weight_decay"): "optim.weight_decay"}


def _upgrade(d: dict) -> dict:
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for (table, key), new in _RETIRED.items():
        if isinstance(d.get(table), dict) and key in d[table]:
            value = d[table].pop(key)
            if new:
                sub, leaf = new.split(".")
                d[table].setdefault(sub, {}).setdefault(leaf, value)
    return d


def _literal_ok(value: Any, allowed: tuple) -> bool:
    # `1 == True` in Python; a Literal of strings and booleans must match the type too.
    return any(type(value) is type(a) and value == a for a in allowed)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if origin is Literal:
        if not _literal_ok(value, get_args(hint)):
            shown = ", ".join(repr(a).lower() if isinstance(a, bool) else repr(a) for a in get_args(hint))
            raise ArcTrmError(f"{where} must be one of {shown}, got {value!r}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if origin is list and isinstance(value, list):
        return list(value)
    raise ArcTrmError(f"{where} expects {getattr(hint, '__name__', hint)}, got {value!r}")


def _merge(obj: Any, values: dict, prefix: str) -> None:
    hints = get_type_hints(type(obj))
    for key, value in values.items():
        where = f"{prefix}{key}"
        if key not in hints:
            raise ArcTrmError(f"unknown config field '{where}'")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ArcTrmError(f"'{where}' is a table of settings")
            _merge(current, value, where + ".")
        else:
            setattr(obj, key, _coerce(value, hints[key], where))


def _nest(fields: dict[str, Any]) -> dict:
    """``{"model.hidden_size": 32}`` → ``{"model": {"hidden_size": 32}}``."""
    out: dict = {}
    for dotted, value in fields.items():
        *parents, leaf = dotted.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def set_fields(cfg: RunConfig, fields: dict[str, Any]) -> RunConfig:
    """Set fields by dotted name with Python values, checked like a preset: unknown names, wrong
    types and values outside a field's choices raise :class:`ArcTrmError`."""
    _merge(cfg, _nest(fields), "")
    return cfg


def preset_names(kind: str | None = None) -> list[str]:
    """Shipped presets, optionally only those of one kind (``model``, ``run`` or ``predict``)."""
    names = sorted(p.name[:-5] for p in resources.files("arc_trm.presets").iterdir() if p.name.endswith(".toml"))
    return [n for n in names if kind is None or preset_kind(n) == kind]


def _read_preset(name_or_path: str) -> dict:
    path = Path(name_or_path)
    try:
        if path.suffix == ".toml" and path.is_file():
            return tomllib.loads(path.read_text())
        res = resources.files("arc_trm.presets") / f"{name_or_path}.toml"
        if res.is_file():
            return tomllib.loads(res.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ArcTrmError(f"bad TOML ({e})", source=name_or_path) from None
    except OSError as e:
        raise ArcTrmError(f"cannot read ({e.strerror})", source=name_or_path) from None
    raise ArcTrmError(f"no such preset or TOML file; presets: {', '.join(preset_names())}", source=name_or_path)


def preset_kind(name_or_path: str) -> str:
    """``model`` (only a [model] table), ``predict`` (only [ttt]/[predict]) or ``run``."""
    raw = _read_preset(name_or_path)
    tables = {k for k, v in raw.items() if isinstance(v, dict)}
    if "model_preset" not in raw and tables <= {"model"}:
        return "model"
    if "model_preset" not in raw and tables <= {"ttt", "predict"}:
        return "predict"
    return "run"


def parse_override(text: str) -> tuple[str, Any]:
    """``model.hidden_size=256`` → ("model.hidden_size", 256); values are TOML literals,
    bare words are taken as strings."""
    if "=" not in text:
        raise ArcTrmError(f"--set needs section.field=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``--set section.field=value`` texts."""
    return set_fields(cfg, dict(parse_override(t) for t in overrides))


def load_config(preset: str, overrides: list[str] | None = None, model: str | None = None) -> RunConfig:
    """A run preset's config; ``model`` (a model preset or TOML file) replaces the run preset's
    model entirely (its ``model_preset`` and any ``[model]`` table of its own)."""
    raw = _read_preset(preset)
    cfg = RunConfig(name=Path(preset).stem)
    if model:
        if preset_kind(model) != "model":
            raise ArcTrmError(f"not a model preset (presets of that kind: {', '.join(preset_names('model'))})",
                              source=model)
        raw = {k: v for k, v in raw.items() if k not in ("model", "model_preset", "name")}
        raw["model_preset"] = model
        cfg.name = f"{cfg.name}-{Path(model).stem}"     # its own default run folder
    model_preset = raw.get("model_preset")
    if model_preset:
        _merge(cfg, {"model": _read_preset(model_preset).get("model", {})}, "")
    _merge(cfg, raw, "")
    apply_overrides(cfg, overrides or [])
    return cfg


def apply_preset_tables(cfg: RunConfig, preset: str, tables: tuple[str, ...]) -> RunConfig:
    """Lay the named tables of a preset over ``cfg`` (``arc-trm package`` puts a predict preset's
    ``[ttt]`` and ``[predict]`` on a trained checkpoint's config)."""
    raw = _read_preset(preset)
    _merge(cfg, {k: raw[k] for k in tables if k in raw}, "")
    return cfg


def changed_fields(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names whose values differ between two ``to_dict`` configs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out
