"""``arc-trm ensemble``: several candidate files (checkpoints, seeds, other solvers) → one
submission. Per test input each file's scores are normalised (a distribution: divided by their sum
when none is negative, else a softmax over them), weighted, and summed per identical grid; ties go
to the grid an earlier file, then an earlier position, named first. Entries marked ``fallback``
(not produced by the model) get no weight: they only fill attempts no file produced a grid for. A
file ensembled with itself keeps its own order, so it gives its own attempts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from arc_trm.data.tasks import LoadReport
from arc_trm.errors import ArcTrmError
from arc_trm.infer.submission import expected_entries, fallback_for


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
                produced = normalised([float(e.get("score", 0.0)) for e in entries if not e.get("fallback")] or [0.0])
                shares = iter(produced)
                for j, e in enumerate(entries):
                    rec = total.setdefault(_key(e["grid"]), [0.0, (i, j), e["grid"]])
                    rec[0] += 0.0 if e.get("fallback") else weights[i] * next(shares)
            per_input.append([r[2] for r in sorted(total.values(), key=lambda r: (-r[0], r[1]))])
        ranked[task_id] = per_input
        covered[task_id] = len(have)
    return Ensemble(ranked, covered)


@dataclass
class EnsembleSubmission:
    submission: dict
    expected: dict[str, int]           # task → entries owed
    fallback_tasks: int                # tasks no file had (answered by fallback)
    warnings: list[str]


def ensemble_submission(files: list[tuple[str, dict]], weights: list[float],
                        report: LoadReport | None = None, spec: str = "") -> EnsembleSubmission:
    """The submission of the ensemble: the tasks of the files, or with ``report`` (the tasks of
    ``spec``) every one of those, by fallback where no file has it."""
    ens = combine(files, weights)
    warnings = []
    partial = [t for t, n in ens.covered_by.items() if n < len(files)]
    if partial:
        counts = ", ".join(f"{name}: {len(tasks)} tasks" for name, tasks in files)
        warnings.append(f"{len(partial)} of {len(ens.ranked)} tasks are in only some files ({counts})")
    if report is None:
        sub = {task_id: [first_two(grids) for grids in per_input] for task_id, per_input in ens.ranked.items()}
        return EnsembleSubmission(sub, {t: len(e) for t, e in sub.items()}, 0, warnings)
    expected, sub = expected_entries(report.tasks, report.failed), fallback_for(report)
    inputs = {t.task_id: [g.tolist() for g in t.test_inputs] for t in report.tasks}
    extra = sorted(set(ens.ranked) - set(expected))
    if extra:
        warnings.append(f"{len(extra)} tasks of the candidate files are not in {spec} and are left out "
                        f"(first: {extra[0]})")
    for task_id in expected:
        per_input = ens.ranked.get(task_id)
        if per_input is None:
            continue
        if len(per_input) != expected[task_id]:
            raise ArcTrmError(f"the candidate files have {len(per_input)} test inputs, the task has "
                              f"{expected[task_id]}", task_id=task_id, source=spec)
        given = inputs.get(task_id) or [None] * len(per_input)
        sub[task_id] = [first_two(grids, given[k]) for k, grids in enumerate(per_input)]
    return EnsembleSubmission(sub, expected, sum(t not in ens.ranked for t in expected), warnings)


def own_attempts(tasks: dict) -> dict:
    """One candidate file's own submission: the first two distinct entries of each list."""
    return {t: [first_two([e["grid"] for e in entries]) for entries in per] for t, per in tasks.items()}
