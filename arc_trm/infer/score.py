"""Score a submission as ARC Prize does: a test input counts when either attempt equals the
answer exactly; a task scores the fraction of its test inputs solved; the score is the mean
over the tasks of the solutions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Score:
    score: float
    tasks: int
    per_task: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)        # in the solutions, not in the submission
    extra: list[str] = field(default_factory=list)          # in the submission, not in the solutions
    wrong_counts: dict[str, tuple[int, int]] = field(default_factory=dict)   # task → (entries, answers)

    def warnings(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} task(s) of the solutions have no entry and score 0: "
                       + ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else ""))
        if self.extra:
            out.append(f"{len(self.extra)} task(s) of the submission are not in the solutions and are ignored: "
                       + ", ".join(self.extra[:5]) + (" ..." if len(self.extra) > 5 else ""))
        for task_id, (n, want) in sorted(self.wrong_counts.items())[:5]:
            out.append(f"task {task_id}: {n} entries for {want} test inputs (Kaggle rejects such a file)")
        return out


def score_submission(sub: dict, solutions: dict[str, list]) -> Score:
    """``solutions``: task id → list of answer grids (lists or arrays), in test-input order."""
    per_task, wrong = {}, {}
    for task_id, answers in solutions.items():
        entries = sub.get(task_id, [])
        if task_id in sub and len(entries) != len(answers):
            wrong[task_id] = (len(entries), len(answers))
        solved = 0
        for i, ans in enumerate(answers):
            ans = np.asarray(ans).tolist()
            e = entries[i] if i < len(entries) and isinstance(entries[i], dict) else {}
            if any(e.get(a) == ans for a in ("attempt_1", "attempt_2")):
                solved += 1
        per_task[task_id] = solved / max(len(answers), 1)
    total = sum(per_task.values()) / max(len(per_task), 1)
    return Score(total, len(per_task), per_task, missing=sorted(set(solutions) - set(sub)),
                 extra=sorted(set(sub) - set(solutions)), wrong_counts=wrong)


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
