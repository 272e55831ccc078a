"""The bytes a compiled step's kernels read and write, as the compiler (inductor) counts them: a CPU-side
measure of memory traffic that no machine load disturbs.

On a GPU the element-wise kernels of these models are limited by memory bandwidth, so the bytes they move are
their time; a CPU times them otherwise, which is why a CPU timing understates what a layout change saves on a
GPU. Inductor counts, for every kernel of every graph it lowers, the sizes of the buffers it reads and writes
(``GraphLowering.count_bytes``, computed when its metrics log is on). Used by ``step_ratio.py`` (the base's
count against the working tree's) and ``reference_step.py`` (arc-trm's against the reference's).

What it is not: a GPU figure. The CPU lowering materialises every concatenation (torch disables its fused
"pointwise cat" on the CPU), so the CPU count is at most what a GPU's graph moves for the same code; two
sides compared on one device are lowered alike. Counting needs the compiler to lower the graphs, so the
compile caches are off inside (a cached graph is loaded, not lowered, and would count nothing).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager


@contextmanager
def counting(enabled: bool = True):
    """Count the kernels of the graphs compiled inside. Yields a dict that fills in as graphs are lowered:
    ``bytes`` (all kernels), ``generated_bytes`` (the compiler's own kernels, without the library calls
    such as matrix products and attention), ``graphs``. ``enabled=False`` (an eager run): counts nothing and
    leaves the compiler as it is."""
    got = {"bytes": 0, "generated_bytes": 0, "graphs": 0}
    if not enabled:
        yield got
        return
    try:     # compiler internals (the same in torch 2.11 to 2.14): a torch without them counts nothing, never fails
        import torch._functorch.config as functorch_config
        import torch._inductor.config as inductor_config
        from torch._inductor import compile_fx
        from torch._inductor.graph import GraphLowering
        log = compile_fx.inductor_metrics_log
        caches = inductor_config.fx_graph_cache, functorch_config.enable_autograd_cache
        original = GraphLowering.count_bytes
    except (ImportError, AttributeError):
        yield got
        return
    level, propagate = log.level, log.propagate
    quiet = logging.NullHandler()

    def count_bytes(self):
        counted = original(self)          # (total bytes, [(node, bytes // 4)], [(node, estimated runtime)])
        got["bytes"] += counted[0]
        got["generated_bytes"] += sum(4 * n for node, n in counted[1] if not node.is_extern())
        got["graphs"] += 1
        return counted

    # the metrics log on, its INFO record going nowhere (no propagation, a null handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(quiet)
    # the two caches that load a compiled graph instead of lowering it (its kernels, its forward and backward)
    inductor_config.fx_graph_cache = functorch_config.enable_autograd_cache = False
    GraphLowering.count_bytes = count_bytes
    try:
        yield got
    finally:
        GraphLowering.count_bytes = original
        inductor_config.fx_graph_cache, functorch_config.enable_autograd_cache = caches
        log.removeHandler(quiet)
        log.setLevel(level)
        log.propagate = propagate


def in_mb(got: dict) -> dict:
    """The count as the benchmarks print it: ``moved_mb`` and ``generated_mb`` (None where nothing compiled)."""
    if not got["graphs"]:
        return {"moved_mb": None, "generated_mb": None}
    return {"moved_mb": round(got["bytes"] / 1e6, 1), "generated_mb": round(got["generated_bytes"] / 1e6, 1)}
