"""How much memory a training step needs, checked against the device before training starts.

An estimate, calibrated on two measurements of trm-paper-att at 916 tokens (900 cells + 16
puzzle positions): about 225 MB per sample in bf16 on an H100 (eager, 43.2 GB at batch 192) and
about 525 MB per sample in float32 on the CPU, where attention keeps its score matrices (GPU
SDPA kernels recompute them). Per token, layer and gradient-carrying block application, the step
keeps about 12·d + 4·(SwiGLU width) activations, plus heads × sequence scores on the CPU.
"""

from __future__ import annotations

import os

import torch

from arc_trm.config import ModelConfig
from arc_trm.errors import ArcTrmError
from arc_trm.model.cores.registry import core_of


def bytes_per_sample(m: ModelConfig, canvas: int, device_type: str, mixed_precision: str) -> float:
    """The activations one sample's training step keeps: the core's own estimate."""
    return core_of(m).activation_bytes(m, canvas, device_type, mixed_precision)


def available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def size_text(n: float) -> str:
    """Bytes as a person reads them: 0.92 GB, 41.3 MB, 18 kB."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def table_bytes(rows: int, width: int) -> int:
    """The puzzle-embedding table on the training device: float32 rows (sign-SGD keeps no state)."""
    return rows * width * 4


def fitting_micro_batch(per_sample: float, table: float, have: float, local_batch: int) -> int | None:
    """The largest micro-batch that divides ``local_batch`` and whose step fits: the whole batch where it fits
    in ``have`` bytes, else the largest divisor within 80 % of them (the estimate's margin); None if not even
    one sample fits. On a GPU the largest micro-batch that fits gives the most examples per second (fewer,
    fuller passes), so it is the default choice."""
    if per_sample * local_batch + table <= have:
        return local_batch
    fits = int((have * 0.8 - table) // per_sample)
    return max((d for d in range(1, min(fits, local_batch) + 1) if local_batch % d == 0), default=None)


def fit_micro_batch(m: ModelConfig, canvas: int, micro_batch: int, local_batch: int, device: torch.device,
                    mixed_precision: str, table_rows: int = 0, setting: str = "train.micro_batch_size") -> int:
    """The micro-batch a training step runs: ``micro_batch`` (the user's ``train.micro_batch_size``) if it fits
    this device, or with 0 (the default) the largest that fits (:func:`fitting_micro_batch`). Refuses, with
    the micro-batch that would fit, a step that cannot fit (several processes on one machine share its RAM).
    ``table_rows``: the puzzle-embedding table is counted too (every process holds all of it), once the
    dataset says how many rows it has. ``ARC_TRM_SKIP_MEMORY_CHECK=1`` skips the estimate (0 = the whole
    per-process batch). ``setting``: the config field a refusal names."""
    chosen = micro_batch or local_batch
    if os.environ.get("ARC_TRM_SKIP_MEMORY_CHECK"):
        return chosen
    have = available_bytes(device)
    if have is None:
        return chosen
    if device.type != "cuda":
        have //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    per = bytes_per_sample(m, canvas, device.type, mixed_precision)
    table = table_bytes(table_rows, m.hidden_size)
    if table > 0.8 * have:
        raise ArcTrmError(f"the puzzle-embedding table ({table_rows} rows x {m.hidden_size}, {table / 2**30:.1f} GiB) "
                          f"does not fit this {device.type} ({have / 2**30:.1f} GiB free) beside a training step; "
                          "fewer augmentations (data.augmentations) or pool puzzles (data.pool_puzzles) make it smaller")
    fits = fitting_micro_batch(per, table, have, local_batch)
    with_table = f" beside the {table / 2**30:.1f} GiB puzzle-embedding table" if table_rows else ""
    if fits is None:
        raise ArcTrmError(f"one sample's training step needs about {per / 2**30:.1f} GiB (estimate){with_table} and "
                          f"this {device.type} has {have / 2**30:.1f} GiB free; a smaller model or canvas, or a device "
                          "with more memory")
    if micro_batch == 0:
        return fits
    need = per * chosen + table
    if need > have:
        raise ArcTrmError(f"a training step at micro-batch {chosen}{with_table} needs about {need / 2**30:.1f} GiB "
                          f"(estimate) and this {device.type} has {have / 2**30:.1f} GiB free; "
                          f"--set {setting}={fits} fits (the same math in "
                          f"{local_batch // fits} passes per step)" + (", or use a GPU" if device.type != "cuda" else ""))
    return chosen
