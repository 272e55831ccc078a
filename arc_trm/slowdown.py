"""A slower machine on purpose, to see a time budget hold before it matters (``arc-trm rehearse
--slowdown``, the tests): with ``ARC_TRM_SLOWDOWN=FACTOR``, ``FACTOR@SECONDS`` or
``FACTOR@SECONDS-UNTIL`` in the environment, every ACT step of the model (in TTT, in inference, in
training) takes FACTOR times as long as it really does, from SECONDS after the process started (0:
from the start) until UNTIL seconds (a neighbour that runs a while, then stops; default: for good).
Unset, it costs nothing."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager, nullcontext

from arc_trm.errors import ArcTrmError

STARTED = time.time()
ENV = "ARC_TRM_SLOWDOWN"


def parse(text: str) -> tuple[float, float, float]:
    """``"3"`` → (3.0, 0.0, inf); ``"2@30"`` → (2.0, 30.0, inf); ``"5@0-2"`` → (5.0, 0.0, 2.0)."""
    factor, _, window = text.partition("@")
    after, _, until = window.partition("-")
    try:
        f, a, u = float(factor), float(after or 0), float(until or "inf")
    except ValueError:
        raise ArcTrmError(f"{ENV}={text!r}: expected FACTOR, FACTOR@SECONDS or FACTOR@SECONDS-UNTIL, "
                          "such as 2, 3@30 or 5@0-20") from None
    if not (f >= 1 and a >= 0) or f == float("inf") or a == float("inf"):
        raise ArcTrmError(f"{ENV}={text!r}: the factor must be at least 1 and the start 0 or more seconds")
    if not u > a:
        raise ArcTrmError(f"{ENV}={text!r}: the slowdown must end after it starts ({u:g} s is not after {a:g} s)")
    return f, a, u


def setting() -> tuple[float, float, float] | None:
    text = os.environ.get(ENV)
    return parse(text) if text else None


@contextmanager
def _slowed(factor: float, after: float, until: float, device_type: str):
    t = time.perf_counter()
    yield
    if not after <= time.time() - STARTED < until:
        return
    if device_type == "cuda":          # the step's real length, not the time to queue it
        import torch
        torch.cuda.synchronize()
    time.sleep((factor - 1) * (time.perf_counter() - t))


def paced(device_type: str = "cpu"):
    """Wrap one model step: a no-op unless ``ARC_TRM_SLOWDOWN`` is set."""
    s = setting()
    return nullcontext() if s is None or s[0] == 1 else _slowed(*s, device_type)
