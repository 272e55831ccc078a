"""Score a submission as ARC Prize does: a test input counts when either attempt equals the
answer exactly; a task scores the fraction of its test inputs solved; the score is the mean
over tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Score:
    score: float
    tasks: int
    per_task: dict[str, float] = field(default_factory=dict)


def score_submission(sub: dict, solutions: dict[str, list]) -> Score:
    """``solutions``: task id → list of answer grids (lists or arrays), in test-input order."""
    per_task = {}
    for task_id, answers in solutions.items():
        entries = sub.get(task_id, [])
        solved = 0
        for i, ans in enumerate(answers):
            ans = np.asarray(ans).tolist()
            e = entries[i] if i < len(entries) and isinstance(entries[i], dict) else {}
            if any(e.get(a) == ans for a in ("attempt_1", "attempt_2")):
                solved += 1
        per_task[task_id] = solved / max(len(answers), 1)
    total = sum(per_task.values()) / max(len(per_task), 1)
    return Score(total, len(per_task), per_task)


def pass_at_k(ranked: dict[tuple[str, int], list[np.ndarray]], answers: dict[tuple[str, int], np.ndarray],
              ks=(1, 2)) -> dict[str, float]:
    """pass@k over tasks from ranked candidate lists per (task, test index)."""
    tasks: dict[str, list[list[bool]]] = {}
    for key, ans in answers.items():
        cands = ranked.get(key, [])
        hits = [any(c.shape == ans.shape and (c == ans).all() for c in cands[:k]) for k in ks]
        tasks.setdefault(key[0], []).append(hits)
    out = {}
    for j, k in enumerate(ks):
        out[f"pass@{k}"] = float(np.mean([np.mean([h[j] for h in hs]) for hs in tasks.values()])) if tasks else 0.0
    return out
