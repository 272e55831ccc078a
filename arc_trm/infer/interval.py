"""How sure a pass@2 over a few tasks is, and whether two submissions differ by more than chance.

The interval is the exact binomial (Clopper-Pearson) 95 % interval over tasks: the successes are the
tasks' scores summed, the trials the number of tasks. A task with several test outputs scores a
fraction; a variable in [0, 1] with a given mean varies at most as a Bernoulli one does, so counting
fractions as fractional successes keeps the interval at least as wide as it must be (scipy's beta
quantiles take a non-integer count). Unlike a bootstrap it does not collapse at 0 of 8 or 8 of 8
(a bootstrap prints 0.00-0.00 there), and 4 of 8 reads 0.16-0.84, what a reader must know.

Two submissions on the same tasks are compared paired: only the tasks where their scores differ
carry information, and an exact two-sided sign test over those says whether one is better more often
than chance allows (one task of difference is never distinguishable)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
METHOD = "exact binomial over tasks"


def binomial_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` Clopper-Pearson interval of the mean of ``values`` (one score in [0, 1] per task)."""
    v = np.asarray(list(values), dtype=np.float64)
    n = len(v)
    if n == 0:
        return 0.0, 0.0
    x, a = float(v.sum()), (1 - level) / 2
    lo = 0.0 if x <= 0 else float(stats.beta.ppf(a, x, n - x + 1))
    hi = 1.0 if x >= n else float(stats.beta.ppf(1 - a, x + 1, n - x))
    return lo, hi


def interval_text(values) -> str:
    """``95 % interval LO-HI (exact binomial over tasks)``: the words every verb prints beside a pass@2."""
    lo, hi = binomial_interval(values)
    return f"95 % interval {lo:.2f}-{hi:.2f} ({METHOD})"


@dataclass
class Paired:
    """Two submissions' scores over the same tasks."""

    difference: float        # mean over the tasks of a - b
    better: int              # tasks where a scores more
    worse: int               # tasks where a scores less
    p_value: float           # exact two-sided sign test over the tasks that differ (1.0 when none do)

    @property
    def distinguishable(self) -> bool:
        return self.p_value < 1 - LEVEL

    def text(self, a: str, b: str) -> str:
        verdict = ("distinguishable" if self.distinguishable else "not distinguishable")
        return (f"{a} - {b}: {self.difference:+.4f} ({a} better on {self.better} tasks, worse on {self.worse}); "
                f"{verdict} at 95 % (exact sign test over the tasks where they differ, p = {self.p_value:.3f})")


def paired(a: dict[str, float], b: dict[str, float]) -> Paired:
    """``a`` and ``b``: task → score; the tasks of ``a`` (a task missing from ``b`` scores 0 there)."""
    d = np.array([a[t] - b.get(t, 0.0) for t in a], dtype=np.float64)
    better, worse = int((d > 0).sum()), int((d < 0).sum())
    p = float(stats.binomtest(better, better + worse, 0.5).pvalue) if better + worse else 1.0
    return Paired(float(d.mean()) if len(d) else 0.0, better, worse, p)
