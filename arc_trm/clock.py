"""Time, with one owner. Every deadline of arc-trm (train's time limit, an evaluation's bound, TTT's
phases, inference's deadline, predict's budget, a Kaggle checkpoint's share) is decided here:

- when a command's budget began (:func:`started_at`) and how time is shared by weights
  (:func:`share_of`, from :mod:`arc_trm.standalone.timeshare`, which the Kaggle job uses too, with its
  own margins), TTT's phases (:func:`phase_seconds_left`);
- the reserves: predict's for ranking and writing (:func:`finish_reserve_s`), inference's margin over
  its FLOP estimate, a signal's last round of views; an in-training evaluation's bound (:func:`eval_bound_s`);
- compilation as torch reports it (dynamo's compile callbacks): how long this process has compiled,
  whether it is compiling now (a signal then stops at once: :class:`CompileInterrupted`);
- :class:`StepTimer`: the time of a steady step, with the steps that compile (and the first, warm-up
  step of a phase) timed apart, so a 33 s compilation is never taken for a 0.2 s step;
- whether compiling pays within the time at hand (:func:`worth_compiling`), from the compile times
  this machine measured before (:mod:`arc_trm.compile_cache`) or a default until it has;
- the stop agreed by every process (:func:`agreed`).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import arc_trm
from arc_trm.errors import ArcTrmError
from arc_trm.standalone.timeshare import STARTED_AT_ENV, share_of

# A graph never compiled on this machine is planned at this many seconds until it has been measured
# (measured: 33 s for a paper-width training step and 63 s for inference on an H200, 39 s and 23 s for
# the smoke model on a 2-core CPU).
DEFAULT_COMPILE_S = 60.0
# Compile only when the compilation is at most this share of the time at hand: a compiled step is
# about 1.5-3x faster, so compiling for less than four times its cost rarely repays it.
COMPILE_SHARE = 0.25


# Inference is planned at this multiple of its FLOP estimate from the TTT rate (inference runs at
# a higher rate per FLOP than training, so this errs on the side of finishing).
INFERENCE_MARGIN = 1.5
# A signal during TTT still gets one view per test input (the identity copies), for at most this long:
# the Kaggle job waits 30 s after stopping a predict, and the model's answers beat the fallback.
SIGNAL_ROUND_S = 20.0


def finish_reserve_s(write_s: float, budget_s: float, strategy: str, candidates: bool) -> float:
    """Seconds kept at the end for ranking and writing, from the measured time of writing the submission
    once (the candidates file is about ten submissions); product-of-experts scoring runs over every
    view at the end, so it keeps 2 % of the budget (at most a minute) on top."""
    reserve = max(0.5, write_s * (3 + (10 if candidates else 0)))
    return reserve + (min(60.0, 0.02 * budget_s) if strategy != "vote" else 0.0)


def started_at() -> float:
    """When this command's time budget began: ``ARC_TRM_STARTED_AT`` (epoch seconds, set by a parent
    that times the command and kills it late: the Kaggle job), else when this process imported arc-trm."""
    text = os.environ.get(STARTED_AT_ENV)
    try:
        at = float(text) if text else None
    except ValueError:
        raise ArcTrmError(f"{STARTED_AT_ENV}={text!r}: expected seconds since the epoch") from None
    return min(at, time.time()) if at is not None and at > 0 else arc_trm.IMPORTED_AT


def phase_seconds_left(weights: list[float], k: int, spent_s: float, ttt_left_s: float) -> float:
    """Seconds phase ``k`` may still run: its share by ``weights`` of the time from its start (``spent_s``
    ago) to the end (``ttt_left_s`` from now), less what it has spent. Negative: past its share."""
    return share_of(spent_s + max(ttt_left_s, 0.0), weights, k) - spent_s


def eval_bound_s(eval_time_limit_s: float, time_limit_s: float) -> float:
    """How long one in-training evaluation's views may run (0: no bound): ``train.eval_time_limit_s``,
    or, in a run with a time limit, a tenth of it (at least 30 s). A bounded evaluation votes over the
    views that finished, round-robin over the test inputs. Compiling its graph is not in the bound: it
    runs eager when the compilation would take more than a quarter of it (:func:`arc_trm.clock.worth_compiling`),
    else the bound starts again after the compilation."""
    if eval_time_limit_s > 0:
        return eval_time_limit_s
    return max(30.0, time_limit_s / 10) if time_limit_s > 0 else 0.0


# ---------------------------------------------------------------- compilation, as torch reports it
class CompileInterrupted(KeyboardInterrupt):
    """A first SIGINT/SIGTERM that came while torch was compiling: compilation cannot stop at a safe
    point of ours and may take minutes, so the signal stops it at once (``signum`` says which)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _Compiles:
    depth = 0            # compilations under way (dynamo's start callbacks minus its end ones)
    seconds = 0.0        # finished compilation time of this process
    started = 0.0


_C = _Compiles()


def _on_start(*_args) -> None:
    if _C.depth == 0:
        _C.started = time.perf_counter()
    _C.depth += 1


def _on_end(*_args) -> None:
    if _C.depth > 0:
        _C.depth -= 1
        if _C.depth == 0:
            _C.seconds += time.perf_counter() - _C.started


def watch_compilation() -> bool:
    """Register with dynamo's compile callbacks once (tracing a frame and a deferred backward both
    report; ``torch._dynamo.reset()`` clears them, so this is called again at every timer). False where
    this torch has no such callbacks: steps are then classed by position only."""
    try:
        from torch._dynamo.callback import callback_handler
    except ImportError:
        return False
    if _on_start not in callback_handler.start_callbacks:    # torch._dynamo.reset() clears them
        callback_handler.register_start_callback(_on_start)
        callback_handler.register_end_callback(_on_end)
    return True


def compiling_now() -> bool:
    return _C.depth > 0


def compile_seconds() -> float:
    """Seconds this process has spent compiling, the compilation under way included."""
    return _C.seconds + (time.perf_counter() - _C.started if _C.depth else 0.0)


def interrupt_compilation(signum: int) -> None:
    """Called by the signal handler while :func:`compiling_now`: stop the compilation at once."""
    _C.depth = 0        # its end callback will not run
    raise CompileInterrupted(signum)


def worth_compiling(estimate_s: float, available_s: float | None) -> bool:
    """Whether a compilation estimated at ``estimate_s`` pays within ``available_s`` (None: no bound)."""
    return available_s is None or estimate_s <= COMPILE_SHARE * available_s


# ---------------------------------------------------------------- steps
class StepTimer:
    """Times the steps (or inference batches) of one phase. The first step of a phase and every step
    during which torch compiled are *compiling* steps: never in the step time; the compilation torch
    reports during them is summed in :attr:`compile_s`. :attr:`step_s` is a steady step's time: the mean over the steady steps since the last
    :meth:`synced` (the host waited for the device there, so the time is real), raised meanwhile by a
    longer host time of a single steady step (a machine that slows down shows at once). Until a steady
    step has been timed, the compiling step's time less its compilation stands in."""

    def __init__(self, device_type: str = "cpu"):
        self.device_type = device_type
        self.step_s = 0.0
        self.compile_s = 0.0
        self.steady_steps = 0
        watch_compilation()
        self._window_t = time.perf_counter()
        self._window_n = 0
        self._t0 = self._c0 = 0.0
        self._first = True

    @contextmanager
    def step(self):
        self._t0, self._c0 = time.perf_counter(), compile_seconds()
        yield
        now = time.perf_counter()
        compiled_s = compile_seconds() - self._c0
        if self._first or compiled_s > 0:
            if self.device_type == "cuda":    # its kernels finish before the next step is timed
                wait_for_device(self.device_type)
                now = time.perf_counter()
            self.compile_s += compiled_s
            if not self.steady_steps:   # until a steady step is timed: this one without its compilation
                self.step_s = max(self.step_s, now - self._t0 - compiled_s)
            self._first = False
            self._window_t, self._window_n = now, 0
            return
        self.steady_steps += 1
        self._window_n += 1
        self.step_s = max(self.step_s, now - self._t0)

    def synced(self) -> None:
        """The host has just waited for the device: the steady steps since the last call give the step time."""
        now = time.perf_counter()
        if self._window_n:
            self.step_s = (now - self._window_t) / self._window_n
        self._window_t, self._window_n = now, 0

    def describe(self) -> str:
        """``compiled in 33.1 s; steady step 0.20 s`` (what the logs print)."""
        parts = []
        if self.compile_s > 0:
            parts.append(f"compiled in {self.compile_s:.1f} s")
        if self.steady_steps:
            parts.append(f"steady step {self.step_s:.3g} s")
        return "; ".join(parts)


def wait_for_device(device_type: str) -> None:
    """Let the device finish what was queued, so the time read next is real (a no-op on the CPU)."""
    if device_type == "cuda":
        import torch
        torch.cuda.synchronize()


def agreed(acc, flag: bool) -> bool:
    """True on every process when ``flag`` is true on any: a stop (a deadline, a signal) must be
    agreed, or the processes that go on wait forever in the next collective. One process skips
    accelerate's trigger, whose check reads a device tensor (a host sync)."""
    if acc.num_processes == 1:
        return flag
    if flag:
        acc.set_trigger()
    return acc.check_trigger()


def agreed_max(acc, values: list[float]) -> list[float]:
    """Each value's maximum over the processes (the slowest rate, the least time left): every
    process plans alike."""
    if acc.num_processes == 1:
        return list(values)
    import torch
    return acc.reduce(torch.tensor(values, dtype=torch.float64, device=acc.device), "max").tolist()
