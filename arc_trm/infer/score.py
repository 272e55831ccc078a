"""Score a submission as ARC Prize does: a test input counts when either attempt equals the
answer exactly; a task scores the fraction of its test inputs solved; the score is the mean
over the tasks of the solutions. Beside it, the numbers that tell a score apart from another:
the share of test outputs solved (different whenever tasks have several), pass@1, entries whose
attempt_2 repeats attempt_1 (pass@2 is pass@1 there) and entries that are only the test input."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arc_trm.infer.interval import bootstrap_interval


@dataclass
class Score:
    score: float                      # pass@2 as ARC Prize scores it: the mean over tasks of each task's share
    tasks: int
    per_task: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)        # in the solutions, not in the submission
    extra: list[str] = field(default_factory=list)          # in the submission, not in the solutions
    wrong_counts: dict[str, tuple[int, int]] = field(default_factory=dict)   # task → (entries, answers)
    outputs: int = 0                  # test outputs of the solutions
    outputs_solved: int = 0           # of them, solved by attempt_1 or attempt_2
    pass1: float = 0.0                # attempt_1 alone, by the same rule
    same_attempts: int = 0            # entries whose attempt_2 repeats attempt_1 (pass@2 is then pass@1 there)
    fallback_entries: int | None = None   # entries whose attempts are both the test input (None: inputs unknown)
    solved: dict[str, list[bool]] = field(default_factory=dict)   # task → per test output, solved

    @property
    def per_output(self) -> float:
        """The share of test outputs solved: a different number from pass@2 whenever tasks have several."""
        return self.outputs_solved / max(self.outputs, 1)

    def summary(self) -> str:
        """The line ``score``, ``predict`` and ``report`` print under the pass@2 line, so the numbers match
        wherever they appear."""
        entries = sum(len(v) for v in self.solved.values())
        lo, hi = bootstrap_interval(self.per_task.values())
        parts = [f"95 % interval of pass@2 over these {self.tasks} tasks {lo:.2f}-{hi:.2f} (bootstrap over tasks)",
                 f"per test output {self.per_output:.4f} ({self.outputs_solved} of {self.outputs})",
                 f"pass@1 {self.pass1:.4f}", f"attempt_2 repeats attempt_1 in {self.same_attempts} of {entries} entries"]
        if self.fallback_entries is not None:
            parts.append(f"{self.fallback_entries} entries are the test input itself (fallback)")
        return "; ".join(parts)

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


def score_submission(sub: dict, solutions: dict[str, list], inputs: dict[str, list] | None = None) -> Score:
    """``solutions``: task id → list of answer grids (lists or arrays), in test-input order; ``inputs``
    (the same, of the test inputs) lets the score count the entries that are only the test input."""
    per_task, per_task1, wrong, solved_of = {}, {}, {}, {}
    outputs = outputs_solved = same = fallback = 0
    for task_id, answers in solutions.items():
        entries = sub.get(task_id, [])
        if task_id in sub and len(entries) != len(answers):
            wrong[task_id] = (len(entries), len(answers))
        hits, firsts = [], []
        for i, ans in enumerate(answers):
            ans = np.asarray(ans).tolist()
            e = entries[i] if i < len(entries) and isinstance(entries[i], dict) else {}
            hits.append(any(e.get(a) == ans for a in ("attempt_1", "attempt_2")))
            firsts.append(e.get("attempt_1") == ans)
            if e and e.get("attempt_2") == e.get("attempt_1"):
                same += 1
            given = (inputs or {}).get(task_id)
            if e and given is not None and i < len(given):
                grid = np.asarray(given[i]).tolist()
                fallback += e.get("attempt_1") == grid and e.get("attempt_2") == grid
        per_task[task_id] = sum(hits) / max(len(answers), 1)
        per_task1[task_id] = sum(firsts) / max(len(answers), 1)
        outputs, outputs_solved = outputs + len(answers), outputs_solved + sum(hits)
        solved_of[task_id] = hits
    n = max(len(per_task), 1)
    return Score(sum(per_task.values()) / n, len(per_task), per_task, missing=sorted(set(solutions) - set(sub)),
                 extra=sorted(set(sub) - set(solutions)), wrong_counts=wrong, outputs=outputs,
                 outputs_solved=outputs_solved, pass1=sum(per_task1.values()) / n, same_attempts=same,
                 fallback_entries=fallback if inputs is not None else None, solved=solved_of)


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
