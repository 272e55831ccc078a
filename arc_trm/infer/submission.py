"""``submission.json`` from predictions: two attempts per test input, fallbacks for everything
the model could not answer, checked and written atomically. The file format itself (grid check,
fallback entries, atomic write) is :mod:`arc_trm.standalone.arc_format`, shared with the notebook."""

from __future__ import annotations

from pathlib import Path

from arc_trm.atomic import failure_reason
from arc_trm.standalone.arc_format import fallback_entries, submission_problems, write_json_atomic
from arc_trm.data.tasks import LoadReport, Task
from arc_trm.errors import ArcTrmError, TaskError
from arc_trm.infer.vote import InputCandidates, choose_attempts
from arc_trm.jsonfile import read_json


def expected_entries(tasks: list[Task], failed: dict[str, list] | None = None) -> dict[str, int]:
    """Task id → entries owed: one per test input, for good tasks and for failed ones alike."""
    out = {t.task_id: len(t.test_inputs) for t in tasks}
    out.update({task_id: len(inputs) for task_id, inputs in (failed or {}).items()})
    return out


def fallback_submission(tasks: list[Task], failed: dict[str, list] | None = None) -> dict:
    """Every test input answered with itself (a failed task's unreadable inputs with [[0]]):
    valid and complete, and what is left when all else fails."""
    sub = {t.task_id: fallback_entries([g.tolist() for g in t.test_inputs]) for t in tasks}
    sub.update({task_id: fallback_entries(inputs) for task_id, inputs in (failed or {}).items()})
    return sub


def fallback_for(report: LoadReport) -> dict:
    return fallback_submission(report.tasks, report.failed)


def submission_from(tasks: list[Task], cands: dict[tuple[str, int], InputCandidates], strategy: str,
                    failures: list[TaskError] | None = None,
                    unanswered: set[tuple[str, int]] | None = None) -> tuple[dict, dict]:
    """Two attempts per test input, and per input the attempts followed by the other ranked
    candidates (for pass@k). A task whose selection raises keeps its fallback entries (and lands
    in ``failures``); the other tasks are unaffected. ``unanswered`` receives every (task, input)
    whose entry is a fallback: no candidate (no view finished in time) or a failed selection."""
    sub, ranked = {}, {}
    for t in tasks:
        try:
            entries, task_ranked = [], {}
            for k, inp in enumerate(t.test_inputs):
                ic = cands.get((t.task_id, k))
                grids = [c.grid for c in ic.ranked(strategy)] if ic else []
                if not grids and unanswered is not None:
                    unanswered.add((t.task_id, k))
                attempts = choose_attempts(grids, inp)
                task_ranked[(t.task_id, k)] = attempts + grids[2:]
                entries.append({"attempt_1": attempts[0].tolist(), "attempt_2": attempts[1].tolist()})
        except Exception as e:  # one task's failure must not cost the others their answers
            if failures is not None:
                failures.append(TaskError(f"choosing attempts failed ({e!r}); fallback attempts used",
                                          task_id=t.task_id))
            entries = fallback_submission([t])[t.task_id]
            if unanswered is not None:
                unanswered.update((t.task_id, k) for k in range(len(t.test_inputs)))
            task_ranked = {(t.task_id, k): [inp] for k, inp in enumerate(t.test_inputs)}
        sub[t.task_id] = entries
        ranked.update(task_ranked)
    return sub, ranked


def write(path: Path, sub: dict, expected: dict[str, int] | None = None) -> Path:
    """Check, then write atomically; an invalid submission is never written."""
    problems = submission_problems(sub, expected)
    if problems:
        raise ArcTrmError("refusing to write an invalid submission: " + "; ".join(problems[:5]), source=str(path))
    try:
        write_json_atomic(path, sub)
    except OSError as e:
        raise ArcTrmError(f"could not write the submission: {failure_reason(e, Path(path).parent)}; the previous "
                          "file, if any, is unchanged", source=str(path)) from None
    return Path(path)


def read(path: Path) -> dict:
    """A submission file, refused (one line) unless it is a valid submission."""
    sub = read_json(path, "submission file")
    problems = submission_problems(sub)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ArcTrmError("not a valid submission: " + "; ".join(problems[:3]) + more, source=str(path))
    return sub


def previous_submission(path: Path) -> dict | None:
    """The valid submission already at ``path``, if there is one (a rerun must not make it worse)."""
    try:
        sub = read_json(path, "submission file") if Path(path).is_file() else None
    except ArcTrmError:
        return None
    return sub if sub is not None and not submission_problems(sub) else None


def keep_previous(sub: dict, fallback: set[tuple[str, int]], previous: dict | None) -> tuple[dict, int]:
    """``sub`` with each entry that is only a fallback taken from ``previous`` where it answers the
    same task with as many entries; returns the result and how many entries were kept."""
    if not previous:
        return sub, 0
    out, kept = {k: list(v) for k, v in sub.items()}, 0
    for task_id, k in sorted(fallback):
        old = previous.get(task_id)
        if task_id in out and isinstance(old, list) and len(old) == len(out[task_id]) and old[k] != out[task_id][k]:
            out[task_id][k] = old[k]
            kept += 1
    return out, kept
