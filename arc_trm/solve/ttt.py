"""Test-time training (TTT) for tasks the checkpoint has never seen.

Their augmented copies get embedding rows initialised from the mean of the trained rows;
training uses their demonstration pairs only, through the same :class:`TrainSession` as
pre-training, with the ``[ttt]`` table's batch and ``[ttt.optim]`` settings. Modes:
``embeddings`` (dense weights frozen), ``full`` (everything from the start),
``embeddings_then_full`` (embeddings first, then all weights: the schedule that worked best in
public reports).

With a deadline, the first steady steps of each phase are timed (:class:`arc_trm.clock.StepTimer`: the
first step of a phase, and any step during which torch compiles, are not steady steps). The measured rate (FLOP/s) sizes
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

from arc_trm.clock import CompileInterrupted, StepTimer, agreed_max, phase_seconds_left, wait_for_device
from arc_trm.progress import bar as progress_bar
from arc_trm.config import TTTConfig
from arc_trm.data.batches import BatchSplit, TrainStream, split_batch
from arc_trm.data.dataset import ArcDataset
from arc_trm.infer.runner import Runner
from arc_trm.model.flops import train_example_flops
from arc_trm.model.memory import fit_micro_batch
from arc_trm.train.session import Schedule, TrainSession, warmup_in_steps

# Steady steps timed at the start of a phase to plan the rest when there is a deadline.
PROBE_STEPS = 2


def ttt_groups(known: np.ndarray, scope: str, training: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """What predict does in turn, as (tasks whose views it predicts, tasks it test-time trains on first),
    both masks over the tasks. ``known``: the tasks the checkpoint trained on (no TTT); ``training``: TTT
    is on. Scope "all": one group, TTT on every unseen task; "task": the known tasks first (if any), then
    each unseen task with TTT on it alone."""
    none = np.zeros_like(known)
    if not training or scope == "all" or known.all():
        return [(np.ones_like(known), ~known if training else none)]
    groups = [(known.copy(), none)] if known.any() else []
    for t in np.flatnonzero(~known):
        one = none.copy()
        one[t] = True
        groups.append((one, one))
    return groups


def ttt_split(runner: Runner, cfg: TTTConfig, canvas: int) -> BatchSplit:
    """TTT's split of its global batch: ``ttt.micro_batch_size``, or with 0 (the default) the largest micro-batch
    the memory estimate fits beside what is already on the device (the model and table are: free memory
    counts them), the smallest choice of all processes, as training's."""
    acc = runner.acc
    split = split_batch(cfg.global_batch_size, acc.num_processes, cfg.micro_batch_size, "ttt.global_batch_size")
    micro = fit_micro_batch(runner.model.cfg, canvas, cfg.micro_batch_size, split.local, acc.device,
                            acc.mixed_precision, setting="ttt.micro_batch_size")
    micro = int(acc.gather(torch.tensor([micro], device=acc.device)).min())
    return split_batch(split.global_batch, split.processes, micro, "ttt.global_batch_size")


def test_time_train(runner: Runner, ds: ArcDataset, task_mask: np.ndarray, cfg: TTTConfig, seed: int,
                    translation: str = "fixed", deadline: float | None = None,
                    reserve: Callable[[float, float], float] | None = None, log=None, progress: bool = True,
                    stop: Callable[[], bool] | None = None) -> dict:
    """Train ``runner``'s model and table in place on the tasks of ``task_mask``, ending by
    ``deadline`` minus ``reserve(latest measured FLOP/s, seconds left at the first plan)`` seconds
    (values agreed by every process, so they all plan alike). Before every step a stop is agreed:
    ``stop()`` (a signal), or a step that would end past that time or past its phase's share at the
    speed of a steady step, or a signal while torch compiles (at once). Returns ``{"steps": {phase: steps
    run}, "seconds_per_step": {phase: measured}, "compile_s": {phase: seconds}, "flop_per_s": ...,
    "reserve_s": ..., "plan_left_s": ..., "stopped": bool}``."""
    done: dict = {}
    rates: dict[str, float] = {}
    compiled: dict[str, float] = {}
    result = {"steps": done, "seconds_per_step": rates, "compile_s": compiled}
    if not task_mask.any():
        return result
    acc = runner.acc
    split = ttt_split(runner, cfg, ds.canvas)
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
                             translation=translation, task_mask=task_mask, pixel_side=m.pixel_side())
        optim = warmup_in_steps(cfg.optim, stream.examples_per_pass(), split.global_batch)
        session = TrainSession(runner, stream, Schedule(optim, steps, train_dense=(name == "full")), split, seed)
        bar = progress_bar(steps, f"ttt:{name}", "step", acc.is_main_process and progress)
        timer = StepTimer(acc.device.type)
        ran, probed, planned_at = 0, False, 0
        t_phase, phase_end = time.time(), None

        def replan(probing: bool) -> None:
            """Plan the rest of TTT from the steady step just timed, agreed by every process (the slowest
            rate, the least time): the inference reserve, this phase's end, its schedule's length."""
            nonlocal phase_end, probed, planned_at
            now = time.time()
            step_s, neg_left, spent = agreed_max(acc, [timer.step_s, -(deadline - now), now - t_phase])
            left = -neg_left
            if probing:
                rates[name] = step_s
                probed = True
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
            planned_at = ran

        try:
            while ran < steps:
                if should_stop(timer.step_s, phase_end):
                    # Before the rest of the phase is given up on a plan made some steps ago, plan again from
                    # the steps timed since: a slow spell that has passed must not end TTT early. Every
                    # process ran the same steps, so all take this branch together.
                    if deadline is None or not probed or ran == planned_at or result.get("stopped"):
                        break
                    wait_for_device(acc.device.type)
                    timer.synced()
                    replan(False)
                    if should_stop(timer.step_s, phase_end):
                        break
                try:
                    with timer.step():
                        session.step()
                except CompileInterrupted:    # a signal while compiling: stop at once
                    result["stopped"] = True
                    break
                ran += 1
                bar.update(1)
                probing = (deadline is not None and not probed and timer.steady_steps >= 1
                           and (timer.steady_steps >= PROBE_STEPS or ran == steps))
                window = ran % 10 == 0 or ran == steps
                if probing or window:
                    met = session.pop_metrics()        # waits for the device: the window's time is real
                    timer.synced()
                if deadline is not None and (probing or (window and probed and ran < steps)):
                    replan(probing)
                if window and not probing:
                    bar.set_postfix(loss=f"{met['loss']:.3f}", exact=f"{met['exact_accuracy']:.2f}", refresh=False)
                    if log is not None:
                        log({"kind": f"ttt_{name}", **met})
        finally:
            bar.close()
            session.close()
        compiled[name] = round(timer.compile_s, 2)
        runner.compiled_now(runner.compile_key(f"ttt:{name}", split.micro), timer.compile_s)
        for p in runner.model.parameters():
            p.requires_grad_(True)
        runner.forward = runner.model
        done[name] = ran
        if should_stop(0.0, None):
            break
    return result
