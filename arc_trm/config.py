"""Typed run configuration, loaded from TOML presets in ``configs/`` and overridden by ``--set``.

A *model preset* (``tiny-cpu``, ``trm-paper-att``, ``trm-paper-mlp``) holds a ``[model]`` table.
A *run preset* (``smoke``, ``arc1-paper``, ...) names its model preset with ``model_preset`` and
holds any of the other tables. A *predict preset* (``kaggle-l4x4``) holds only ``[ttt]`` and
``[predict]``: it is laid over a trained checkpoint's config. Fields not given keep the
dataclass defaults below, which are the paper's ARC recipe.
"""

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from arc_trm.errors import ArcTrmError
from arc_trm.model.cores.hrm.settings import HRMSettings
from arc_trm.model.cores.vit.settings import ViTSettings


def _rule(check, text: str) -> dict:
    """A field's valid range, checked wherever a value enters (preset, ``--set``, a checkpoint's config)."""
    return {"rule": (check, text)}


AT_LEAST_1 = _rule(lambda v: v >= 1, "at least 1")
AT_LEAST_0 = _rule(lambda v: v >= 0, "0 or more")
POSITIVE = _rule(lambda v: v > 0, "greater than 0")
FRACTION = _rule(lambda v: 0 <= v <= 1, "between 0 and 1")
BETA = _rule(lambda v: 0 <= v < 1, "at least 0 and below 1")
CANVAS_SIDE = _rule(lambda v: 1 <= v <= 30, "between 1 and 30 (ARC grids are at most 30x30)")


def _f(default, rule: dict, factory=None):
    return field(default_factory=factory, metadata=rule) if factory else field(default=default, metadata=rule)


@dataclass
class ModelConfig:
    hidden_size: int = _f(512, AT_LEAST_1)
    num_heads: int = _f(8, AT_LEAST_1)
    num_layers: int = _f(2, AT_LEAST_1)
    expansion: float = _f(4.0, POSITIVE)
    H_cycles: int = _f(3, AT_LEAST_1)
    L_cycles: int = _f(4, AT_LEAST_1)
    halt_max_steps: int = _f(16, AT_LEAST_1)
    halt_exploration_prob: float = _f(0.1, FRACTION)
    puzzle_emb_len: int = _f(16, AT_LEAST_1)
    pos_encoding: Literal["rope", "learned", "none"] = "rope"
    mlp_t: bool = False                       # attention-free token mixer (fixed-size grids)
    rms_norm_eps: float = _f(1e-5, POSITIVE)
    rope_theta: float = _f(10000.0, POSITIVE)
    loss: Literal["stablemax", "softmax"] = "stablemax"
    # dtype of the residual stream and of the carried z_H / z_L. "bfloat16" is the TRM reference's
    # forward_dtype: the activations kept for the backward pass take half the memory and the
    # elementwise work half the bandwidth, at bf16 rounding of the state. "float32" (the default)
    # keeps the state exact; under bf16 autocast only the matmuls and attention run in bf16.
    stream_dtype: Literal["float32", "bfloat16"] = "float32"
    # The core (arc_trm/model/cores/<core>/): "trm" (z_H/z_L, the TRM paper), "urm" (one hidden state,
    # H_cycles−1 rounds of L_cycles iterations without gradient then L_cycles with gradient: the Universal
    # Reasoning Model, arXiv 2512.14693) or "hrm" (the Hierarchical Reasoning Model, arXiv 2506.21734, as the
    # TRM repository measured it: a low-level module of num_layers blocks and a high-level module of
    # hrm.h_layers blocks, H_cycles x L_cycles updates per ACT step of which only the last of each carries
    # gradient); or "vit" (VARC's ViT, arXiv 2511.14761: a vision transformer over a pixel canvas, one pass;
    # its own fields in model.vit, and hidden_size, num_heads, num_layers and puzzle_emb_len as its
    # embed_dim, heads, depth and task tokens). The fields above and below are the token cores' shared
    # settings; a field only one core reads sits in that core's own section (model.hrm, model.vit).
    core: Literal["trm", "urm", "hrm", "vit"] = "trm"
    # The channel MLP of any token core: "swiglu" or "conv_swiglu" (URM's short depthwise convolution over
    # the tokens between the gate and the down projection, kernel conv_kernel, its weights and
    # computation in bf16 as in URM's code).
    mlp: Literal["swiglu", "conv_swiglu"] = "swiglu"
    conv_kernel: int = _f(2, AT_LEAST_1)
    # How the kernel-2 convolution is computed (arc_trm/model/shift_conv.py): "kernel" (torch's depthwise
    # convolution, URM's call), "shift" (a shifted multiply-add on the token layout that the compiler fuses
    # with the gate), or "auto": the shifted form where the model is compiled and the device has just been
    # measured to give bit-identical results with it (the CPU), the kernel elsewhere. Same weights and
    # results; only the speed differs.
    conv_form: Literal["auto", "kernel", "shift"] = "auto"
    # The halting rule, as the references name it: True (TRM's and URM's) halts when the halt logit is
    # positive; False (HRM's Q-learning) halts when it exceeds the "continue" logit, which learns a
    # bootstrapped target from one more forward pass without gradient.
    no_ACT_continue: bool = True
    # the puzzle-embedding rows' initial values: 0 (TRM's zeros: a new puzzle starts from "no information")
    # or the standard deviation of a truncated normal (VARC's task tokens: 0.02)
    puzzle_emb_init_std: float = _f(0.0, AT_LEAST_0)
    hrm: HRMSettings = field(default_factory=HRMSettings)
    vit: ViTSettings = field(default_factory=ViTSettings)

    def pixel_side(self) -> int | None:
        """The side of the pixel canvas a vision core draws grids on (None: the token canvas of data.canvas)."""
        return self.vit.image_size if self.core == "vit" else None

    def describe(self) -> str:
        """One line a person reads: "TRM, 512 wide, 2 layers, swiglu, H3 x L6, 16 halting steps"."""
        if self.core == "vit":
            v = self.vit
            depth = (f"a {self.num_layers}-block core x {v.loops} loops" if v.loops > 1
                     else f"{self.num_layers} layers")
            return (f"{'Loop-ViT' if v.loops > 1 else 'ViT'}, {self.hidden_size} wide, {depth}, {self.num_heads} heads, "
                    f"{v.patch_size}x{v.patch_size} patches on a {v.image_size}x{v.image_size} canvas")
        layers = (f"{self.hrm.h_layers} + {self.num_layers} layers (H + L)" if self.core == "hrm"
                  else f"{self.num_layers} layers")
        return (f"{self.core.upper()}, {self.hidden_size} wide, {layers}, {self.mlp}, "
                f"H{self.H_cycles} x L{self.L_cycles}, {self.halt_max_steps} halting steps")

    def problems(self) -> list[str]:
        """Rules between fields (each field's own range is checked as it is set)."""
        out = []
        if self.core == "vit":
            v, heads = self.vit, self.num_heads
            if self.hidden_size % heads or (self.hidden_size // heads) % 4:
                out.append(f"model.num_heads = {heads}: the ViT's 2-D rotary embedding needs a head width "
                           f"(hidden_size / num_heads) divisible by 4, and {self.hidden_size} / {heads} is not")
            if v.image_size % v.patch_size:
                out.append(f"model.vit.patch_size = {v.patch_size}: must divide model.vit.image_size ({v.image_size})")
            if self.halt_max_steps != 1:
                out.append(f"model.halt_max_steps = {self.halt_max_steps}: the ViT answers in one pass (set 1)")
            if v.min_loops > v.loops:
                out.append(f"model.vit.min_loops = {v.min_loops}: at most model.vit.loops ({v.loops})")
            if v.dynamic_exit and not v.exit_gate:
                out.append("model.vit.dynamic_exit = true needs the exit gate (model.vit.exit_gate = true)")
            return out
        if self.mlp == "conv_swiglu" and self.conv_form == "shift" and self.conv_kernel != 2:
            out.append(f"model.conv_form = shift computes a kernel-2 convolution and model.conv_kernel is "
                       f"{self.conv_kernel} (use auto or kernel)")
        if not self.mlp_t and self.hidden_size % self.num_heads:
            out.append(f"model.num_heads = {self.num_heads}: must divide model.hidden_size ({self.hidden_size})")
        elif not self.mlp_t and self.pos_encoding == "rope" and (self.hidden_size // self.num_heads) % 2:
            out.append(f"model.num_heads = {self.num_heads}: the rotary embedding needs an even head width, and "
                       f"{self.hidden_size} / {self.num_heads} = {self.hidden_size // self.num_heads}")
        return out


# Model fields that set how the state is computed, not what the weights are: a trained model's
# weights run under any of their values.
NUMERICS_FIELDS = ("stream_dtype", "conv_form")


@dataclass
class DataConfig:
    tasks: list[str] = field(default_factory=lambda: ["arc1-train", "conceptarc"])
    test_tasks: list[str] = field(default_factory=lambda: ["arc1-eval"])
    augmentations: int = _f(1000, AT_LEAST_0)
    seed: int = _f(0, AT_LEAST_0)
    synthetic_tasks: int = _f(0, AT_LEAST_0)                  # >0: add this many generated tasks (demo runs)
    synthetic_test_tasks: int = _f(0, AT_LEAST_0)
    synthetic_families: list[str] = field(default_factory=list)  # empty = every rule family
    canvas: int = _f(30, CANVAS_SIDE)         # 30 = the paper; smaller canvases for CPU demos
    # Example pools among the tasks (files of input/output pairs, e.g. RE-ARC) are cut into
    # puzzles of pool_pairs pairs, at most pool_puzzles per pool (0: as many as a pool fills).
    pool_pairs: int = _f(8, _rule(lambda v: v >= 2, "at least 2 (demonstrations and a test pair)"))
    pool_puzzles: int = _f(0, AT_LEAST_0)
    # Where a training example sits in the canvas. "fixed" (the reference): one offset per
    # (seed, augmented copy, example), and one example of every copy at (0, 0), where every
    # prediction is made; "per_draw": a fresh offset on every draw; "none": always (0, 0).
    translation: Literal["fixed", "per_draw", "none"] = "fixed"
    # task specs whose tasks must not be seen in training: a training task holding one of their test
    # pairs, test inputs or demonstrations (compared by content) is left out (arc_trm/data/overlap.py)
    exclude_overlap: list[str] = field(default_factory=list)


@dataclass
class OptimConfig:
    lr: float = _f(1e-4, AT_LEAST_0)
    lr_warmup_steps: int = _f(2000, AT_LEAST_0)
    # > 0: the warmup as passes over the data instead (VARC: 10 epochs), converted to steps at the start
    lr_warmup_epochs: float = _f(0.0, AT_LEAST_0)
    lr_min_ratio: float = _f(1.0, FRACTION)    # TRM ARC runs keep the LR flat after warmup
    weight_decay: float = _f(0.1, AT_LEAST_0)
    beta1: float = _f(0.9, BETA)
    beta2: float = _f(0.95, BETA)
    puzzle_emb_lr: float = _f(1e-2, AT_LEAST_0)
    puzzle_emb_weight_decay: float = _f(0.1, AT_LEAST_0)
    ema: bool = True
    ema_rate: float = _f(0.999, FRACTION)
    # how the shadow moves (arc_trm/model/ema.py): "lerp" (arc-trm's), "reference" (TRM's and URM's code,
    # to the last bit: a bf16 parameter's shadow in bf16), "float32" (every shadow in float32)
    ema_update: Literal["lerp", "reference", "float32"] = "lerp"
    # the first optimizer step's learning rate in warmup: "one_step" (TRM: step k runs at (k+1)/warmup of
    # the lr) or "zero" (URM's code, whose step counter advances after the update: k/warmup, so 0 first)
    warmup_start: Literal["one_step", "zero"] = "one_step"
    # "adam_atan2" (TRM's), "muon" (URM's ARC-AGI-2 recipe: every 2-D dense weight through Muon,
    # the rest through AdamW with these betas and weight decay; see arc_trm/model/muon.py) or "adamw"
    # (torch's AdamW: VARC's).
    dense: Literal["adam_atan2", "muon", "adamw"] = "adam_atan2"
    # how the puzzle-embedding rows learn: "sign_sgd" (TRM's: the batch's rows only, at puzzle_emb_lr) or
    # "adamw" (VARC's task tokens, an embedding inside its model: torch's AdamW over the whole table at the
    # dense lr, betas and weight decay, every row every step)
    puzzle_emb_update: Literal["sign_sgd", "adamw"] = "sign_sgd"
    # clip the gradients' global norm to this before a step (0: never; VARC: 1.0, over the dense weights and
    # the task-token table together)
    max_grad_norm: float = _f(0.0, AT_LEAST_0)


@dataclass
class TrainConfig:
    global_batch_size: int = _f(768, AT_LEAST_1)
    micro_batch_size: int = _f(0, AT_LEAST_0)     # per process; 0 = the largest share that fits (memory.fit_micro_batch)
    epochs: int = _f(100000, AT_LEAST_1)          # passes over the demonstration pairs
    max_steps: int = _f(0, AT_LEAST_0)            # >0 caps the step count
    time_limit_s: float = _f(0.0, AT_LEAST_0)     # >0 stops (with eval + checkpoint) after this long
    eval_interval_epochs: int = _f(10000, AT_LEAST_0)   # 0: evaluate only at the end
    eval_interval_steps: int = _f(0, AT_LEAST_0)        # >0 overrides the epoch interval
    max_eval_views: int = _f(0, AT_LEAST_0)       # per test input; 0 = every augmented copy
    # one in-training evaluation stops after this long, voting over the views that finished (0: no bound
    # of its own; in a run with time_limit_s, a tenth of that, at least 30 s)
    eval_time_limit_s: float = _f(0.0, AT_LEAST_0)
    save_every_steps: int = _f(1000, AT_LEAST_1)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    compile: Literal["auto", True, False] = "auto"   # auto: compiled on CUDA, eager on CPU
    seed: int = _f(0, AT_LEAST_0)
    log_every_steps: int = _f(10, AT_LEAST_1)
    # best/ is chosen by pass@2 on a selection split of the test tasks and scored on the others: this
    # share of them, drawn with train.seed (at least one, never all; 0: no best/, last/ is the checkpoint;
    # 1: chosen on every test task, so every figure of it is marked as selected), or the tasks named here
    select_share: float = _f(0.25, FRACTION)
    select_tasks: list[str] = field(default_factory=list)


def _ttt_optim() -> OptimConfig:
    # Fine-tuning a trained model: short warmup, no decay of the new embedding rows, no EMA.
    return OptimConfig(lr_warmup_steps=20, puzzle_emb_weight_decay=0.0, ema=False)


@dataclass
class TTTConfig:
    mode: Literal["off", "embeddings", "embeddings_then_full", "full"] = "embeddings_then_full"
    # the rows of tasks the checkpoint never saw: "mean" (the mean of its trained rows) or "fresh" (drawn as
    # model.puzzle_emb_init_std says: VARC's --resume-skip-task-token)
    new_rows: Literal["mean", "fresh"] = "mean"
    # "all": one fine-tuning on every unseen task together, then every view; "task": per unseen task, the
    # checkpoint's weights fine-tuned on that task alone (its steps and warmup are that task's), its views
    # predicted, the weights put back (VARC's test_time_train_ARC.py, one model per task)
    scope: Literal["all", "task"] = "all"
    # added to the checkpoint's seed for TTT's batches, fresh rows and the views' draws: predicting again
    # with another seed is another TTT run (`arc-trm ensemble` votes over runs, as VARC's --ttt-num-each)
    seed: int = _f(0, AT_LEAST_0)
    augmentations: int = _f(100, AT_LEAST_0)
    embedding_steps: int = _f(200, AT_LEAST_0)
    full_steps: int = _f(200, AT_LEAST_0)
    global_batch_size: int = _f(64, AT_LEAST_1)
    micro_batch_size: int = _f(0, AT_LEAST_0)     # per process; 0 = the largest share that fits (solve.ttt.ttt_split)
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
    views_per_input: int = _f(0, AT_LEAST_0)      # 0 = every augmented copy of the test input
    batch_size: int = _f(64, AT_LEAST_1)          # per process
    time_budget_s: float = _f(0.0, AT_LEAST_0)    # 0 = no budget
    use_ema: bool = True                      # predict with the EMA weights when the checkpoint has them
    halt_early: bool = False                  # True: freeze each answer at its first confident halt
    candidates: int = _f(10, AT_LEAST_1)          # ranked candidates per test input in `predict --candidates`
    # a vision core's draws per augmented view: each at a random scale and offset (VARC's --num-attempts 10)
    pixel_draws: int = _f(10, AT_LEAST_1)
    # during inference, the submission (and candidates) are rewritten from the votes so far at most this
    # often, so even a kill -9 keeps the answers of all but the last interval (0: only at the end)
    save_every_s: float = _f(60.0, AT_LEAST_0)


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
        dropped, moved ones moved), checked like a preset."""
        if not isinstance(d, dict):
            raise ArcTrmError(f"a config must be a table of settings, got {type(d).__name__}")
        cfg = cls()
        _merge(cfg, _upgrade(d), "")
        return check(cfg)

    def problems(self) -> list[str]:
        out = self.model.problems()
        side = self.model.pixel_side()
        if side is not None and side - 2 < self.data.canvas:
            out.append(f"model.vit.image_size = {side}: the pixel canvas holds grids up to {side - 2} cells a side "
                       f"(a border and a margin) and data.canvas is {self.data.canvas}; use image_size "
                       f"{self.data.canvas + 2} or more (varc-vit: 64)")
        return out


def check(cfg: RunConfig) -> RunConfig:
    """Refuse, in one line, a config whose fields do not go together (a width the heads do not divide)."""
    problems = cfg.problems()
    if problems:
        raise ArcTrmError("; ".join(problems))
    return cfg


# Fields older checkpoints carry: (table, field) → None (retired) or the new place under that table.
_RETIRED = {("model", "seq_len"): None, ("model", "vocab_size"): None, ("predict", "top_k"): None,
            ("model", "recursion"): "core", ("model", "h_layers"): "hrm.h_layers",
            ("ttt", "lr"): "optim.lr", ("ttt", "lr_warmup_steps"): "optim.lr_warmup_steps",
            ("ttt", "puzzle_emb_lr"): "optim.puzzle_emb_lr", ("ttt", "weight_decay"): "optim.weight_decay"}


def _upgrade(d: dict) -> dict:
    """Old names moved to where they live now (``model.recursion`` → ``model.core``, ``model.h_layers`` →
    ``model.hrm.h_layers``): a checkpoint, a preset file or a ``--set`` written before still reads."""
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for (table, key), new in _RETIRED.items():
        if isinstance(d.get(table), dict) and key in d[table]:
            value = d[table].pop(key)
            if key == "h_layers" and value == 0:     # what a TRM or URM config carried: no HRM module
                continue
            if new and "." not in new:
                d[table].setdefault(new, value)
            elif new:
                sub, leaf = new.split(".")
                node = d[table].setdefault(sub, {})
                if isinstance(node, dict):
                    node.setdefault(leaf, value)
    return d


def _literal_ok(value: Any, allowed: tuple) -> bool:
    # `1 == True` in Python; a Literal of strings and booleans must match the type too.
    return any(type(value) is type(a) and value == a for a in allowed)


# Whole numbers beyond this are no count, step or seed anyone means (and overflow numpy's int64).
MAX_INT = 2 ** 53


def _coerce(value: Any, hint: Any, where: str, rule=None) -> Any:
    value = _typed(value, hint, where)
    if hint is int and abs(value) > MAX_INT:
        raise ArcTrmError(f"{where} = {value}: too large (at most 2^53)")
    if hint is float and not math.isfinite(value):
        raise ArcTrmError(f"{where} = {value}: must be a finite number")
    if rule is not None and not rule[0](value):
        raise ArcTrmError(f"{where} = {value!r}: must be {rule[1]}")
    return value


def _typed(value: Any, hint: Any, where: str) -> Any:
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
    if origin is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    kind = "a list of strings" if origin is list else getattr(hint, "__name__", hint)
    raise ArcTrmError(f"{where} expects {kind}, got {value!r}")


def _merge(obj: Any, values: dict, prefix: str) -> None:
    hints = get_type_hints(type(obj))
    rules = {f.name: f.metadata.get("rule") for f in dataclasses.fields(obj)}
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
            setattr(obj, key, _coerce(value, hints[key], where, rules[key]))


def _nest(fields: dict[str, Any]) -> dict:
    """``{"model.hidden_size": 32}`` → ``{"model": {"hidden_size": 32}}``."""
    out: dict = {}
    for dotted, value in fields.items():
        *parents, leaf = dotted.split(".")
        node = out
        for k, p in enumerate(parents):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ArcTrmError(f"'{'.'.join(parents[:k + 1])}' is a table of settings; set its fields, "
                                  f"such as {dotted}")
        if isinstance(node.get(leaf), dict):
            raise ArcTrmError(f"'{dotted}' is a table of settings; set its fields, such as {dotted}.FIELD")
        node[leaf] = value
    return out


def set_fields(cfg: RunConfig, fields: dict[str, Any]) -> RunConfig:
    """Set fields by dotted name with Python values, checked like a preset: unknown names, wrong
    types and values outside a field's choices raise :class:`ArcTrmError`."""
    _merge(cfg, _upgrade(_nest(fields)), "")
    return check(cfg)


def preset_names(kind: str | None = None) -> list[str]:
    """Shipped presets, optionally only those of one kind (``model``, ``run`` or ``predict``)."""
    names = sorted(p.name[:-5] for p in resources.files("arc_trm.presets").iterdir() if p.name.endswith(".toml"))
    return [n for n in names if kind is None or preset_kind(n) == kind]


PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _read_preset(name_or_path: str, kind: str | None = None) -> dict:
    """A shipped preset by its plain name (``smoke``), or a file whose path ends in ``.toml``; anything
    else is refused naming what was tried and the shipped presets of ``kind``."""
    listed = f"{kind + ' ' if kind else ''}presets: {', '.join(preset_names(kind))}"

    def fail(reason: str) -> ArcTrmError:
        return ArcTrmError(f"preset {name_or_path!r}: {reason}")
    try:
        if name_or_path.endswith(".toml"):
            path = Path(name_or_path).expanduser()
            if not path.is_file():
                raise fail(f"no such TOML file (a path ending in .toml is read as a preset file; {listed})")
            return _upgrade(tomllib.loads(path.read_text()))
        if not PRESET_NAME.match(name_or_path):
            raise fail(f"neither a preset name nor a .toml file (a preset is a plain name such as smoke, a preset "
                       f"file a path ending in .toml; {listed})")
        res = resources.files("arc_trm.presets") / f"{name_or_path}.toml"
        if not res.is_file():
            raise fail(f"no such preset ({listed}; a preset file is a path ending in .toml)")
        return _upgrade(tomllib.loads(res.read_text()))
    except tomllib.TOMLDecodeError as e:
        raise fail(f"bad TOML ({e})") from None
    except OSError as e:
        raise fail(f"cannot read ({e.strerror})") from None


def preset_kind(name_or_path: str, wanted: str | None = None) -> str:
    """``model`` (only a [model] table), ``predict`` (only [ttt]/[predict]) or ``run``; ``wanted``: the
    kind the caller needs, whose shipped presets a refusal lists."""
    raw = _read_preset(name_or_path, wanted)
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
    raw = _read_preset(preset, "run")
    cfg = RunConfig(name=Path(preset).stem)
    if model:
        if preset_kind(model, "model") != "model":
            raise ArcTrmError(f"not a model preset (presets of that kind: {', '.join(preset_names('model'))})",
                              source=model)
        raw = {k: v for k, v in raw.items() if k not in ("model", "model_preset", "name")}
        raw["model_preset"] = model
        cfg.name = f"{cfg.name}-{Path(model).stem}"     # its own default run folder
    model_preset = raw.get("model_preset")
    if model_preset:
        _merge(cfg, {"model": _read_preset(model_preset, "model").get("model", {})}, "")
    _merge(cfg, raw, "")
    apply_overrides(cfg, overrides or [])
    return cfg


def apply_preset_tables(cfg: RunConfig, preset: str, tables: tuple[str, ...]) -> RunConfig:
    """Lay the named tables of a preset over ``cfg`` (``arc-trm package`` puts a predict preset's
    ``[ttt]`` and ``[predict]`` on a trained checkpoint's config)."""
    raw = _read_preset(preset, "predict")
    _merge(cfg, {k: raw[k] for k in tables if k in raw}, "")
    return check(cfg)


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
