"""Test-time training (TTT) for tasks the checkpoint has never seen.

Their augmented copies get embedding rows initialised from the mean of the trained rows;
training uses their demonstration pairs only, through the same :class:`TrainSession` as
pre-training, with the ``[ttt]`` table's batch and ``[ttt.optim]`` settings. Modes:
``embeddings`` (dense weights frozen), ``full`` (everything from the start),
``embeddings_then_full`` (embeddings first, then all weights: the schedule that worked best in
public reports).

With a deadline, the first steps of the first phase are timed. The measured rate (FLOP/s) sizes
what must be kept for inference (``reserve``); the time before it is shared between the phases by
their configured FLOPs (a phase that trains the dense weights costs more per step than one that does
not), so a deadline shortens every phase alike and the first cannot eat the second. Every tenth step,
and the second phase's own probe, measure again and re-size the reserve. A phase ends at its
configured steps or at the end of its share of the time, whichever comes first: a slow spell costs
the steps it slowed, not the plan for the rest (a phase that finishes early leaves its time to the
next).
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


def phase_seconds_left(weights: list[float], k: int, spent_s: float, ttt_left_s: float) -> float:
    """Seconds phase ``k`` may still run: its share, ``weights[k]`` over the weights of it and the
    phases after it (their configured FLOPs), of the time from its start (``spent_s`` ago) to the end
    of TTT (``ttt_left_s`` from now), less what it has spent. Negative: it is past its share."""
    rest = sum(weights[k:])
    share = weights[k] / rest if rest > 0 else 1.0
    return (spent_s + max(ttt_left_s, 0.0)) * share - spent_s


def test_time_train(runner: Runner, ds: ArcDataset, task_mask: np.ndarray, cfg: TTTConfig, seed: int,
                    translation: str = "fixed", deadline: float | None = None,
                    reserve: Callable[[float, float], float] | None = None, log=None, progress: bool = True,
                    stop: Callable[[], bool] | None = None) -> dict:
    """Train ``runner``'s model and table in place on the tasks of ``task_mask``, ending by
    ``deadline`` minus ``reserve(latest measured FLOP/s, seconds left at the first plan)`` seconds
    (values agreed by every process, so they all plan alike). Before every step a stop is agreed:
    ``stop()`` (a signal), or a step that would end past that time or past its phase's share at the
    speed of the latest steps. Returns ``{"steps": {phase: steps run}, "seconds_per_step": {phase:
    measured}, "flop_per_s": ..., "reserve_s": ..., "plan_left_s": ..., "stopped": bool}``."""
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
    plan = [(name, steps) for name, steps in cfg.phases() if steps > 0]
    weights = [steps * cost[name] for name, steps in plan]

    def should_stop(step_s: float, phase_end: float | None) -> bool:
        """Agreed by every process: a signal, or one more step would end inside the inference reserve
        or past this phase's share of the time."""
        if deadline is None and stop is None:
            return False
        now = time.time()
        late = deadline is not None and (now + step_s > deadline - result.get("reserve_s", 0.0)
                                         or (phase_end is not None and now + step_s > phase_end))
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
        t_phase, phase_end = time.time(), None
        try:
            while ran < steps:
                if should_stop(step_s, phase_end):
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
                if deadline is not None and (probing or (window and "reserve_s" in result and ran < steps)):
                    now = time.time()
                    left, spent = deadline - now, now - t_phase
                    if acc.num_processes > 1:   # every process must plan alike: the slowest rate, least time
                        agreed = acc.reduce(torch.tensor([step_s, -left, spent], device=acc.device), "max").tolist()
                        step_s, left, spent = agreed[0], -agreed[1], agreed[2]
                    if probing:
                        rates[name] = step_s
                    # The reserve follows the rate just measured: a probe taken during a spike (a busy
                    # neighbour) must not keep TTT short for good. Its cap comes from the time left at
                    # the first plan, so re-sizing it late in TTT cannot erode it.
                    result.setdefault("plan_left_s", left)
                    result["flop_per_s"] = split.global_batch * cost[name] / step_s
                    result["reserve_s"] = reserve(result["flop_per_s"], result["plan_left_s"]) if reserve else 0.0
                    mine = phase_seconds_left(weights, k, spent, left - result["reserve_s"])
                    phase_end = now + mine
                    # the schedule's length (its cosine) and the bar: the steps the share holds at this rate
                    planned = min(steps, ran + max(int(mine / step_s), 0))
                    session.schedule.total_steps = max(planned, ran + 1)
                    bar.retotal(planned)
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
        if should_stop(0.0, None):
            break
    return result
