"""Typed run configuration, loaded from TOML presets in ``configs/`` and overridden by ``--set``.

A *model preset* (``tiny-cpu``, ``trm-paper-att``, ``trm-paper-mlp``) holds a ``[model]`` table.
A *run preset* (``smoke``, ``arc1-paper``, ...) names its model preset with ``model_preset`` and
holds any of the other tables. Fields not given keep the dataclass defaults below.
"""

from __future__ import annotations

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
    seq_len: int = 900
    vocab_size: int = 12


@dataclass
class DataConfig:
    tasks: list[str] = field(default_factory=lambda: ["arc1-train"])
    test_tasks: list[str] = field(default_factory=lambda: ["arc1-eval"])
    augmentations: int = 1000
    seed: int = 0
    synthetic_tasks: int = 0                  # >0: add this many generated tasks (demo runs)
    synthetic_test_tasks: int = 0
    synthetic_families: list[str] = field(default_factory=list)  # empty = every rule family
    canvas: int = 30                          # 30 = the paper; smaller canvases for CPU demos


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


@dataclass
class TrainConfig:
    global_batch_size: int = 768
    epochs: int = 100000                      # passes over the demonstration pairs
    max_steps: int = 0                        # >0 caps the step count
    time_limit_s: float = 0.0                 # >0 stops (with eval + checkpoint) after this long
    eval_interval_epochs: int = 10000         # 0: evaluate only at the end
    eval_interval_steps: int = 0              # >0 overrides the epoch interval
    max_eval_views: int = 0                   # per test input; 0 = every augmented copy
    save_every_steps: int = 1000
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    compile: bool = False
    seed: int = 0
    log_every_steps: int = 10


@dataclass
class TTTConfig:
    mode: Literal["off", "embeddings", "embeddings_then_full", "full"] = "embeddings_then_full"
    augmentations: int = 100
    embedding_steps: int = 200
    full_steps: int = 200
    global_batch_size: int = 64
    lr: float = 1e-4
    lr_warmup_steps: int = 20
    puzzle_emb_lr: float = 1e-2
    weight_decay: float = 0.1


@dataclass
class PredictConfig:
    strategy: Literal["vote", "poe", "vote+poe"] = "vote"
    views_per_input: int = 0                  # 0 = every augmented copy of the test input
    batch_size: int = 64
    top_k: int = 2
    time_budget_s: float = 0.0                # 0 = no budget
    use_ema: bool = True
    halt_early: bool = False                  # True: freeze each answer at its first confident halt


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
        cfg = cls()
        _merge(cfg, d, "")
        return cfg


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if origin is Literal:
        if value not in get_args(hint):
            raise ArcTrmError(f"{where} must be one of {get_args(hint)}, got {value!r}")
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


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("arc_trm.presets").iterdir() if p.name.endswith(".toml"))


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
    raise ArcTrmError(f"no such preset or TOML file; presets: {', '.join(preset_names())}", source=name_or_path)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``model.hidden_size=256`` → (["model", "hidden_size"], 256); values are TOML literals,
    bare words are taken as strings."""
    if "=" not in text:
        raise ArcTrmError(f"--set needs section.field=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def load_config(preset: str, overrides: list[str] | None = None) -> RunConfig:
    raw = _read_preset(preset)
    cfg = RunConfig(name=Path(preset).stem)
    model_preset = raw.get("model_preset")
    if model_preset:
        _merge(cfg, {"model": _read_preset(model_preset).get("model", {})}, "")
    elif "model" not in raw:
        raise ArcTrmError("a run preset needs model_preset or a [model] table", source=preset)
    _merge(cfg, raw, "")
    apply_overrides(cfg, overrides or [])
    return cfg


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    for text in overrides:
        path, value = parse_override(text)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        _merge(cfg, nested, "")
    return cfg


def apply_preset_tables(cfg: RunConfig, preset: str, tables: tuple[str, ...]) -> RunConfig:
    """Lay the named tables of a preset over ``cfg`` (``arc-trm package`` puts a predict preset's
    ``[ttt]`` and ``[predict]`` on a trained checkpoint's config)."""
    raw = _read_preset(preset)
    _merge(cfg, {k: raw[k] for k in tables if k in raw}, "")
    return cfg
