"""The runner: what every stage that runs the model holds, in one object. The accelerator, the
bare model (its parameter names are what checkpoints, EMA and resume state use), the module to
call (the same model, DDP-wrapped while training several processes), the puzzle-embedding table
and the run config."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from torch import nn

from arc_trm import clock, compile_cache
from arc_trm.config import RunConfig
from arc_trm.model.layers import settle_conv_forms
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.recursion import Carry, RecursiveModel, act_step
from arc_trm.slowdown import paced


def default_mixed_precision(choice: str) -> str:
    """'auto' → bf16 on GPUs that support it, else full precision (CPU tests stay exact)."""
    if choice != "auto":
        return choice
    if os.environ.get("ACCELERATE_USE_CPU") or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "no"


def compile_enabled(choice, device: torch.device) -> bool:
    """``train.compile``: "auto" compiles on CUDA and stays eager elsewhere (CPU compile costs
    more than it saves at test sizes); true/false force it."""
    return device.type == "cuda" if choice == "auto" else bool(choice)


def make_accelerator(cfg: RunConfig, log_with: str | None = None, project_dir=None) -> Accelerator:
    return Accelerator(mixed_precision=default_mixed_precision(cfg.train.mixed_precision),
                       log_with=log_with, project_dir=str(project_dir) if project_dir else None)


@dataclass
class Runner:
    acc: Accelerator
    model: RecursiveModel
    table: PuzzleEmbeddings
    cfg: RunConfig
    forward: nn.Module | None = None
    compiled: bool = False
    warm: set = field(default_factory=set)      # compile keys of the graphs this process has compiled

    def __post_init__(self):
        self.forward = self.forward or self.model

    def compile_key(self, kind: str, batch: int) -> str:
        """What one compiled graph is, for the compile times this machine keeps: the kind of step
        (``train``, ``ttt:embeddings``, ``inference``), the model, the device, the precision, the batch."""
        a = self.acc
        return (f"{kind} | {self.model.cfg.describe()} | {self.device.type} x{a.num_processes} | "
                f"{a.mixed_precision} | batch {batch}")

    def compile_estimate(self, key: str) -> float:
        """Seconds compiling ``key`` will take: 0 when compiled in this process or not compiling, else
        what this machine measured last time, else the clock's default."""
        if not self.compiled or key in self.warm:
            return 0.0
        known = compile_cache.measured(key)
        return clock.DEFAULT_COMPILE_S if known is None else known

    def compiled_now(self, key: str, seconds: float) -> None:
        """``key``'s graph compiled here in ``seconds`` (as torch reported): kept for the next plan."""
        if self.compiled and seconds > 0 and key not in self.warm:
            self.warm.add(key)
            if self.acc.is_main_process:
                compile_cache.record(key, seconds)

    @contextmanager
    def eager(self, enabled: bool = True):
        """Run uncompiled inside (a bound shorter than a compilation): the compiled graphs stay for later."""
        impl = getattr(self.model, "_compiled_call_impl", None)
        if not enabled or not self.compiled or impl is None:
            yield
            return
        self.model._compiled_call_impl, self.compiled = None, False
        try:
            yield
        finally:
            self.model._compiled_call_impl, self.compiled = impl, True

    @property
    def device(self) -> torch.device:
        return self.acc.device

    def act_step(self, carry: Carry, batch: dict[str, torch.Tensor], training: bool,
                 min_halt_steps: torch.Tensor | None = None):
        """One ACT step; in training through the (DDP-wrapped) module with the batch's embedding
        rows collecting gradients, else through the bare model (no DDP buffer broadcasts)."""
        with paced(self.device.type):      # ARC_TRM_SLOWDOWN: a slower machine on purpose (rehearsals)
            return act_step(self.forward if training else self.model, self.model.cfg, carry, batch,
                            lambda ids: self.table.lookup(ids, training), training, min_halt_steps)

    def to_device(self, batch: dict) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v).to(self.device, non_blocking=True) for k, v in batch.items()}

    def stop_agreed(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on any (:func:`arc_trm.clock.agreed`)."""
        return clock.agreed(self.acc, flag)


def make_runner(acc: Accelerator, model: RecursiveModel, table: PuzzleEmbeddings, cfg: RunConfig) -> Runner:
    """Put the model and table on the accelerator's device and compile the model in place when
    ``train.compile`` says so (``nn.Module.compile`` keeps parameter names, so checkpoints,
    EMA and resume state are the same as an eager run's)."""
    model.to(acc.device)
    table.weight = table.weight.to(acc.device)
    compiled = compile_enabled(cfg.train.compile, acc.device)
    settle_conv_forms(model, acc.device, compiled)   # measured eagerly, before compilation
    if compiled:
        compile_cache.use()           # compiled kernels are kept for the next run on this machine
    if compiled and getattr(model, "_compiled_call_impl", None) is None:
        model.compile()
    return Runner(acc, model, table, cfg, compiled=compiled)
