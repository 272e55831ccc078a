"""Score a submission as ARC Prize does: a test input counts when either attempt equals the
answer exactly; a task scores the fraction of its test inputs solved; the score is the mean
over the tasks of the solutions. Beside it, the numbers that tell a score apart from another:
the share of test outputs solved (different whenever tasks have several), pass@1, entries whose
attempt_2 repeats attempt_1 (pass@2 is pass@1 there) and entries that are only the test input.

Each figure is named as the papers name it (:data:`DEFINITIONS`), so a reader can set it beside a
published one, and pass@2 carries its 95 % interval over the scored tasks. A submission whose
checkpoint was chosen on some of its tasks (:mod:`arc_trm.infer.selection`) is scored on the others,
and the chosen-on tasks' figure is printed apart with its mark."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arc_trm.infer.interval import interval_text
from arc_trm.infer.selection import MARK

# What each printed figure is, in the words of the papers that publish one.
DEFINITIONS = {
    "pass@2": "ARC Prize's score: a test output counts when either of two attempts is exact, a task scores its "
              "share of outputs, averaged over tasks (the pass@2 TRM, HRM and VARC report)",
    "pass@1": "attempt_1 alone: the top answer after voting over the views (what URM reports as \"pass@1\")",
    "single_view": "one view's answer: one augmented forward pass without voting (the mean share of views "
                   "that answered right)",
    "pass@k": "oracle top-k: any of the k best-voted candidates is exact; Kaggle takes two, so not a score",
}


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
        parts = [f"pass@2 {interval_text(self.per_task.values())}",
                 f"per test output {self.per_output:.4f} ({self.outputs_solved} of {self.outputs})",
                 f"pass@1 (top answer after voting, URM's \"pass@1\") {self.pass1:.4f}",
                 f"attempt_2 repeats attempt_1 in {self.same_attempts} of {entries} entries"]
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


@dataclass
class SplitScore:
    """A submission scored apart on the tasks its checkpoint was not chosen on (``scored``) and on those it
    was (``selected``, printed only with :data:`MARK`); ``whole`` for the warnings about the file."""

    whole: Score
    scored: Score | None
    selected: Score | None

    def lines(self, detail: bool = False, note: dict[str, str] | None = None) -> list[str]:
        """What ``score``, ``predict`` and ``report`` print; ``note``: a word after a task's detail line."""
        out = []
        if detail:
            sel = self.selected.per_task if self.selected is not None else {}
            for task_id, s in sorted(self.whole.per_task.items()):
                out.append(f"{task_id}\t{s:.3f}" + ("\tselected on" if task_id in sel else "")
                           + (f"\t{note[task_id]}" if note and task_id in note else ""))
        if self.scored is not None:
            out.append(f"{self._scored_head()} (ARC Prize's score)")
            out.append(self.scored.summary())
        return out + self._selected_line("")

    def short(self, name: str, summary: bool = False) -> list[str]:
        """One line per part, ending with ``name`` (``ensemble`` and ``report`` list several submissions);
        ``summary``: the scored part's summary under its line."""
        out = []
        if self.scored is not None:
            out.append(f"{self._scored_head()}, {interval_text(self.scored.per_task.values())}  {name}")
            if summary:
                out.append(f"  {self.scored.summary()}")
        return out + self._selected_line(f"  {name}")

    def _scored_head(self) -> str:
        rest = " not used to choose the checkpoint" if self.selected is not None else ""
        return f"pass@2 {self.scored.score:.4f} over {self.scored.tasks} tasks{rest}"

    def _selected_line(self, tail: str) -> list[str]:
        """The chosen-on tasks' figure, always with its mark (none when there are no such tasks)."""
        if self.selected is None:
            return []
        return [f"pass@2 {self.selected.score:.4f} over the {self.selected.tasks} tasks the checkpoint was chosen on "
                f"[{MARK}]{tail}"]


def split_score(sub: dict, solutions: dict[str, list], inputs: dict[str, list] | None = None,
                chosen=()) -> SplitScore:
    """``chosen``: the task ids the submission's checkpoint was chosen on (see arc_trm.infer.selection)."""
    whole = score_submission(sub, solutions, inputs)
    chosen = set(chosen) & set(solutions)
    if not chosen:
        return SplitScore(whole, whole, None)

    def part(ids: set) -> Score | None:
        return score_submission({t: e for t, e in sub.items() if t in ids},
                                {t: a for t, a in solutions.items() if t in ids}, inputs) if ids else None
    return SplitScore(whole, part(set(solutions) - chosen), part(chosen))


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
