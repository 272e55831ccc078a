"""Small shared builders for tests (tiny configs and datasets)."""

from __future__ import annotations

from arc_trm.config import RunConfig, load_config
from arc_trm.data.ingest import build_dataset


def tiny_config(**train) -> RunConfig:
    cfg = load_config("smoke")
    cfg.model.hidden_size = 32
    cfg.model.num_heads = 2
    cfg.model.H_cycles = 2
    cfg.model.L_cycles = 1
    cfg.model.halt_max_steps = 3
    cfg.model.puzzle_emb_len = 1
    cfg.data.canvas = 10          # fits make_tasks' default 8x8 grids with their EOS markers
    cfg.train.global_batch_size = 8
    cfg.train.log_every_steps = 1
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def tiny_dataset(n_train: int = 4, n_test: int = 2, aug: int = 4, canvas: int = 10):
    return build_dataset([], [], aug, 0, synthetic_tasks=n_train, synthetic_test_tasks=n_test,
                         on_error=None, canvas=canvas)


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
