"""``arc-trm ensemble``: several candidate files (checkpoints, seeds, other solvers) → one
submission. Per test input each file's scores are normalised (a distribution: divided by their sum
when none is negative, else a softmax over them), weighted, and summed per identical grid; ties go
to the grid an earlier file, then an earlier position, named first. A file ensembled with itself
keeps its own order, so it gives its own attempts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from arc_trm.errors import ArcTrmError


def normalised(scores: list[float]) -> list[float]:
    if all(s >= 0 for s in scores):
        total = sum(scores)
        return [s / total for s in scores] if total > 0 else [1 / len(scores)] * len(scores)
    top = max(scores)
    exp = [math.exp(s - top) for s in scores]
    return [e / sum(exp) for e in exp]


def _key(grid: list) -> tuple:
    return tuple(tuple(row) for row in grid)


def first_two(grids: list[list], fallback: list | None = None) -> dict:
    """attempt_1/attempt_2: the first two distinct grids; with one, ``fallback`` (the test input)
    or the same grid again."""
    seen = []
    for g in grids:
        if g not in seen:
            seen.append(g)
        if len(seen) == 2:
            break
    if len(seen) == 1:
        seen.append(fallback if fallback is not None else seen[0])
    return {"attempt_1": seen[0], "attempt_2": seen[1]}


@dataclass
class Ensemble:
    ranked: dict[str, list[list[list]]]             # task → per test input → grids, best first
    covered_by: dict[str, int] = field(default_factory=dict)   # task → how many files had it


def combine(files: list[tuple[str, dict]], weights: list[float]) -> Ensemble:
    """``files``: (name, tasks) as :func:`arc_trm.infer.candidates.read_candidates` returns them."""
    if len(weights) != len(files):
        raise ArcTrmError(f"{len(weights)} weights for {len(files)} candidate files")
    if any(not math.isfinite(w) or w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise ArcTrmError(f"weights must be finite, >= 0 and not all 0, got {weights}")
    order = []
    for _, tasks in files:
        order += [t for t in tasks if t not in order]
    ranked, covered = {}, {}
    for task_id in order:
        have = [(i, name, tasks[task_id]) for i, (name, tasks) in enumerate(files) if task_id in tasks]
        counts = {len(inputs) for _, _, inputs in have}
        if len(counts) > 1:
            shown = ", ".join(f"{name}: {len(inputs)}" for _, name, inputs in have)
            raise ArcTrmError(f"the files disagree on the number of test inputs ({shown})", task_id=task_id)
        per_input = []
        for k in range(counts.pop()):
            total: dict[tuple, list] = {}
            for i, _, inputs in have:
                entries = inputs[k]
                for j, (e, p) in enumerate(zip(entries, normalised([float(e.get("score", 0.0)) for e in entries]))):
                    rec = total.setdefault(_key(e["grid"]), [0.0, (i, j), e["grid"]])
                    rec[0] += weights[i] * p
            per_input.append([r[2] for r in sorted(total.values(), key=lambda r: (-r[0], r[1]))])
        ranked[task_id] = per_input
        covered[task_id] = len(have)
    return Ensemble(ranked, covered)
