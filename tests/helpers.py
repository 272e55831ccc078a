"""Small shared builders for tests (tiny configs, datasets and runners)."""

from __future__ import annotations

from accelerate import Accelerator

from arc_trm.config import RunConfig, load_config, set_fields
from arc_trm.data.ingest import build_dataset
from arc_trm.infer.runner import Runner, make_runner
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.build import build_model

TINY_MODEL = {"model.hidden_size": 32, "model.num_heads": 2, "model.H_cycles": 2, "model.L_cycles": 1,
              "model.halt_max_steps": 3, "model.puzzle_emb_len": 1}
# The same sizes as URM: one hidden state, ConvSwiGLU; as HRM: a one-block high-level module and the
# Q-learning halt.
URM = {"model.core": "urm", "model.mlp": "conv_swiglu"}
HRM = {"model.core": "hrm", "model.hrm.h_layers": 1, "model.no_ACT_continue": False}
# and as VARC's ViT on a 12-pixel canvas (the 10x10 grids scaled by 1, with a border and a margin)
VIT = {"model.core": "vit", "model.halt_max_steps": 1, "model.vit.image_size": 12, "model.vit.mlp_dim": 64,
       "model.puzzle_emb_init_std": 0.02}
ARCHS = {"trm": {}, "urm": URM, "hrm": HRM, "vit": VIT}


def tiny_config(arch: str = "trm", **train) -> RunConfig:
    """The smoke preset with a smaller model (``arch="urm"`` or ``"hrm"``: the same sizes as a URM or HRM), a 10x10
    canvas (make_tasks' 8x8 grids fit with their EOS markers) and a global batch of 8; ``train``
    sets fields of [train]."""
    return set_fields(load_config("smoke"), {**TINY_MODEL, **ARCHS[arch], "data.canvas": 10,
                                             "train.global_batch_size": 8, "train.log_every_steps": 1,
                                             **{f"train.{k}": v for k, v in train.items()}})


def tiny_dataset(n_train: int = 4, n_test: int = 2, aug: int = 4, canvas: int = 10):
    return build_dataset([], [], aug, 0, synthetic_tasks=n_train, synthetic_test_tasks=n_test,
                         on_error=None, canvas=canvas)


def tiny_runner(cfg: RunConfig, seq_len: int, num_ids: int = 5, seed: int = 0, acc: Accelerator | None = None) -> Runner:
    import torch
    torch.manual_seed(seed)
    model = build_model(cfg.model, seq_len)
    return make_runner(acc or Accelerator(cpu=True), model, PuzzleEmbeddings(num_ids, cfg.model.hidden_size), cfg)


def run_two_processes(module: str, func: str, path: str) -> None:
    """Run ``module.func(path)`` on 2 gloo CPU processes through accelerate's debug_launcher,
    from a fresh interpreter: forking pytest itself after torch has started its thread pool
    can deadlock the children."""
    import subprocess
    import sys
    from pathlib import Path

    code = (f"import importlib; from accelerate import debug_launcher; "
            f"f = getattr(importlib.import_module('{module}'), '{func}'); "
            f"debug_launcher(f, args=({path!r},), num_processes=2)")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=300)
