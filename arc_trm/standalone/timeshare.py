"""The time rules the Kaggle job (standard library only) and arc-trm's clock (:mod:`arc_trm.clock`)
share, written once: how a time budget is shared by weights, and the environment variables through
which a budget, its start and the compile cache reach ``arc-trm predict``."""

import os

# When the budget of an `arc-trm predict` began (epoch seconds), set by whoever times and kills it (the
# Kaggle job): its clock runs from the launch, through the interpreter's start and torch's import.
STARTED_AT_ENV = "ARC_TRM_STARTED_AT"
# The job's whole budget in seconds, replacing the packaged one (rehearsals, a shorter trial on Kaggle).
BUDGET_ENV = "ARC_TRM_TIME_BUDGET_S"
# Where compiled kernels and measured compile times are kept (arc_trm.compile_cache); the job gives every
# checkpoint's predict the same folder.
COMPILE_CACHE_ENV = "ARC_TRM_COMPILE_CACHE"


def share_of(available_s: float, weights: list, i: int) -> float:
    """Part ``i``'s time: its weight over the weights of it and the parts after it, of ``available_s``
    (the time left for all of them), so time an earlier part did not use goes to the later ones.
    All-zero weights share equally."""
    rest = sum(weights[i:])
    return available_s * weights[i] / rest if rest > 0 else available_s / (len(weights) - i)


def budget_override_s():
    """``ARC_TRM_TIME_BUDGET_S`` as seconds, or None when unset; a malformed value is an error naming it."""
    text = os.environ.get(BUDGET_ENV)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV}={text!r}: expected seconds, such as 3600") from None
    if not value > 0:
        raise ValueError(f"{BUDGET_ENV}={text!r}: the budget must be more than 0 seconds")
    return value


# The Kaggle job's own margins, by its budget.
def finish_margin_s(budget_s: float) -> float:
    """Kept back at the end of the budget for stopping the child and copying its file."""
    return min(120.0, 0.02 * budget_s)


def kill_grace_s(budget_s: float) -> float:
    """Time the child gets past its own budget (it stops itself there) before it is stopped."""
    return min(60.0, 0.05 * budget_s)


def ensemble_margin_s(budget_s: float) -> float:
    """Kept back, when several checkpoints run, for ensembling their candidate files."""
    return min(300.0, 0.03 * budget_s)
