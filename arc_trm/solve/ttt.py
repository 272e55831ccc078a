"""Test-time training (TTT) for tasks the checkpoint has never seen.

Their augmented copies get embedding rows initialised from the mean of the trained rows;
training uses their demonstration pairs only, through the same :class:`TrainSession` as
pre-training, with the ``[ttt]`` table's batch and ``[ttt.optim]`` settings. Modes:
``embeddings`` (dense weights frozen), ``full`` (everything from the start),
``embeddings_then_full`` (embeddings first, then all weights: the schedule that worked best in
public reports).

With a deadline, the first steps of the first phase are timed. The measured rate (FLOP/s) sizes
what must be kept for inference (``reserve``), and every phase is shrunk by one factor to fit the
rest (a phase that trains the dense weights costs more per step than one that does not: the FLOP
ratio converts one rate into the other); the second phase times itself again and refits.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from arc_trm.progress import bar as progress_bar
from arc_trm.config import TTTConfig
from arc_trm.data.batches import TrainStream, split_batch
from arc_trm.data.dataset import ArcDataset
from arc_trm.infer.runner import Runner
from arc_trm.model.flops import train_example_flops
from arc_trm.train.session import Schedule, TrainSession

# Steps timed at the start of a phase to plan the rest when there is a deadline (the first one
# warms up and is not counted).
PROBE_STEPS = 3


def fit_steps(phase_steps: list[int], step_s: list[float], seconds: float, cap: list[int] | None = None) -> list[int]:
    """Scale every phase by one factor so that all of them fit ``seconds``: a deadline must shorten both
    phases of ``embeddings_then_full`` alike, not let the first eat the second. ``step_s``: seconds
    per step of each phase. Never up without ``cap``; with it (the configured counts), up to it too,
    when the machine turns out faster than a re-plan had measured."""
    cost = sum(n * s for n, s in zip(phase_steps, step_s))
    if cost == 0 or (cost <= seconds and cap is None):
        return list(phase_steps)
    f = max(seconds, 0.0) / cost
    scaled = [max(1, int(n * f)) if n > 0 else 0 for n in phase_steps]
    return scaled if cap is None else [min(n, c) for n, c in zip(scaled, cap)]


def test_time_train(runner: Runner, ds: ArcDataset, task_mask: np.ndarray, cfg: TTTConfig, seed: int,
                    translation: str = "fixed", deadline: float | None = None,
                    reserve: Callable[[float, float], float] | None = None, log=None, progress: bool = True,
                    stop: Callable[[], bool] | None = None) -> dict:
    """Train ``runner``'s model and table in place on the tasks of ``task_mask``, ending by
    ``deadline`` minus ``reserve(measured FLOP/s, seconds left)`` seconds (both agreed by every
    process, so they all plan the same steps). Before every step a stop is agreed: ``stop()`` (a
    signal), or a step that would end past that time at the speed of the latest steps (a machine that
    slows down after planning). Returns ``{"steps": {phase: steps run}, "seconds_per_step": {phase:
    measured}, "flop_per_s": ..., "reserve_s": ..., "stopped": bool}``."""
    done: dict = {}
    rates: dict[str, float] = {}
    result = {"steps": done, "seconds_per_step": rates}
    if not task_mask.any():
        return result
    acc = runner.acc
    split = split_batch(cfg.global_batch_size, acc.num_processes, cfg.micro_batch_size, "ttt.global_batch_size")
    m, canvas = runner.model.cfg, ds.canvas
    cost = {"embeddings": train_example_flops(m, canvas, weight_grads=False),
            "full": train_example_flops(m, canvas, weight_grads=True)}
    plan = [[name, steps] for name, steps in cfg.phases() if steps > 0]
    configured = [steps for _, steps in plan]

    def should_stop(step_s: float) -> bool:
        """Agreed by every process: a signal, or one more step would end inside the inference reserve."""
        if deadline is None and stop is None:
            return False
        late = deadline is not None and time.time() + step_s > deadline - result.get("reserve_s", 0.0)
        signalled = bool(stop and stop())
        if runner.stop_agreed(late or signalled):
            result["stopped"] = result.get("stopped", False) or signalled
            return True
        return False

    for k, (name, steps) in enumerate(plan):
        stream = TrainStream(ds, split.global_batch, seed, acc.process_index, acc.num_processes,
                             translation=translation, task_mask=task_mask)
        session = TrainSession(runner, stream, Schedule(cfg.optim, steps, train_dense=(name == "full")), split, seed)
        bar = progress_bar(steps, f"ttt:{name}", "step", acc.is_main_process and progress)
        ran, t_probe, step_s, t_window, window_start = 0, 0.0, 0.0, time.time(), 0
        try:
            while ran < steps:
                if should_stop(step_s):
                    break
                if ran == 1:
                    session.pop_metrics()              # wait for the warm-up step before timing
                    t_probe = time.time()
                session.step()
                ran += 1
                bar.update(1)
                probing = deadline is not None and ran == min(PROBE_STEPS, steps) and ran > 1
                window = ran % 10 == 0 or ran == steps
                if probing:
                    session.pop_metrics()
                    step_s = (time.time() - t_probe) / (ran - 1)
                elif window:
                    met = session.pop_metrics()        # waits for the device: the window's time is real
                    step_s = (time.time() - t_window) / max(ran - window_start, 1)
                if deadline is not None and (probing or (window and "reserve_s" in result)):
                    # (Re)fit this phase and the later ones to the time left at the speed just measured:
                    # a machine that slows down part-way shortens every phase alike, not only the last.
                    left = deadline - time.time()
                    if acc.num_processes > 1:   # every process must plan the same steps
                        agreed = acc.reduce(torch.tensor([step_s, -left], device=acc.device), "max").tolist()
                        step_s, left = agreed[0], -agreed[1]
                    if probing:
                        rates[name] = step_s
                    if "flop_per_s" not in result:     # the first phase that times itself plans inference
                        result["flop_per_s"] = split.global_batch * cost[name] / step_s
                        result["reserve_s"] = reserve(result["flop_per_s"], left) if reserve else 0.0
                    later = [n for n, _ in plan[k + 1:]]
                    per_step = [step_s] + [step_s * cost[n] / cost[name] for n in later]
                    # up to the configured counts again too, so one window slower than the next does
                    # not ratchet the plan down for good
                    fitted = fit_steps([steps - ran] + [s for _, s in plan[k + 1:]], per_step,
                                       left - result.get("reserve_s", 0.0),
                                       cap=None if probing else [configured[k] - ran] + configured[k + 1:])
                    steps = ran + fitted[0]
                    for entry, n in zip(plan[k + 1:], fitted[1:]):
                        entry[1] = n
                    session.schedule.total_steps = steps
                    bar.retotal(steps)
                if probing or window:
                    t_window, window_start = time.time(), ran
                if window and not probing:
                    bar.set_postfix(loss=f"{met['loss']:.3f}", exact=f"{met['exact_accuracy']:.2f}", refresh=False)
                    if log is not None:
                        log({"kind": f"ttt_{name}", **met})
        finally:
            bar.close()
            session.close()
        for p in runner.model.parameters():
            p.requires_grad_(True)
        runner.forward = runner.model
        done[name] = ran
        if should_stop(0.0):
            break
    return result
