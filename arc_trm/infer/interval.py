"""How sure a pass@2 over a few tasks is: a percentile bootstrap over tasks.

A task's score is the share of its test outputs solved (0, 1, or between for tasks with several), so an
exact binomial interval does not apply; resampling the tasks does, and over 8 tasks it says what a
reader must know: 4 of 8 is anything from about 0.1 to 0.9."""

from __future__ import annotations

import numpy as np

LEVEL = 0.95
DRAWS = 10_000


def bootstrap_interval(values, level: float = LEVEL, draws: int = DRAWS, seed: int = 0) -> tuple[float, float]:
    """The ``level`` percentile-bootstrap interval of the mean of ``values`` (one per task): ``draws``
    resamples of the tasks with replacement, seeded so the same scores always print the same interval."""
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        return 0.0, 0.0
    means = v[np.random.default_rng(seed).integers(0, len(v), (draws, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
