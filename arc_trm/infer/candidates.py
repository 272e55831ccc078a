"""Candidate files (``arc-trm-candidates/1``): the ranked grids behind a submission's attempts, per
test input, for ensembling (``arc-trm ensemble``) or for another solver to rescore.

    {"format": "arc-trm-candidates/1",
     "source": {"checkpoint": "...", "strategy": "vote", "views_per_input": 64},
     "tasks": {"<task_id>": [[{"grid": [[...]], "votes": 37, "score": 0.58}, ...], ...]}}

One list per test input, in the task's order, best first; ``votes``: how many views produced the
grid; ``score``: the value the producer ranked by (for arc-trm: the vote share, the PoE mean
log-probability, or log votes + mean log-probability). A submission's attempt_1 and attempt_2
are the first two distinct entries of each list. An entry with ``"fallback": true`` was not
produced by the model (the test input standing in, or an earlier file's answer that predict kept):
it comes after the produced ones and an ensemble gives it no weight, so a checkpoint that ran out
of time on an input does not outvote one that answered it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import orjson

from arc_trm.atomic import write_together
from arc_trm.standalone.arc_format import ATTEMPTS, CANDIDATES_FORMAT, grid_problem, json_bytes, submission_problems
from arc_trm.data.tasks import Task
from arc_trm.errors import ArcTrmError
from arc_trm.infer.vote import InputCandidates
from arc_trm.jsonfile import read_json

FORMAT = CANDIDATES_FORMAT


def _score(x: float) -> float:
    return x if math.isfinite(x) else -1e9      # a candidate no view could score (JSON has no -inf)


def candidate_lists(tasks: list[Task], cands: dict[tuple[str, int], InputCandidates], strategy: str,
                    limit: int) -> dict[str, list[list[dict]]]:
    """Per task, per test input: at most ``limit`` ranked candidates. With fewer than two, the test
    input follows as a candidate of no votes, as it does in the attempts (choose_attempts)."""
    out = {}
    for t in tasks:
        lists = []
        for k, inp in enumerate(t.test_inputs):
            try:
                ic = cands.get((t.task_id, k))
                ranked = ic.ranked(strategy)[:max(limit, 2)] if ic else []
                entries = [{"grid": c.grid.tolist(), "votes": c.count, "score": _score(ic.score(c, strategy))}
                           for c in ranked]
            except Exception:   # as in submission_from: this input falls back, the others keep theirs
                entries = []
            if len(entries) < 2 and not any(e["grid"] == inp.tolist() for e in entries):
                entries.append({"grid": inp.tolist(), "votes": 0, "score": 0.0, "fallback": True})
            lists.append(entries)
        out[t.task_id] = lists
    return out


def matching(lists: dict[str, list[list[dict]]], sub: dict) -> dict[str, list[list[dict]]]:
    """The candidate lists of ``sub``'s entries: a list whose best grid is the entry's attempt_1
    as it is; any other entry (a fallback, an earlier file's answer) as its two attempts."""
    out = {}
    for task_id, entries in sub.items():
        have = lists.get(task_id) or []
        out[task_id] = [have[k] if k < len(have) and have[k] and have[k][0]["grid"] == e["attempt_1"] else
                        [{"grid": e[a], "votes": 0, "score": 0.0, "fallback": True} for a in ATTEMPTS
                         if a == "attempt_1" or e[a] != e["attempt_1"]]
                        for k, e in enumerate(entries)]
    return out


def write_with_candidates(sub_path: Path, sub: dict, expected: dict[str, int], cand_path: Path,
                          tasks: dict[str, list[list[dict]]], source: dict) -> None:
    """A submission and its candidates file, replaced together (:func:`arc_trm.atomic.write_together`):
    the candidates carry the submission's SHA-256, so a pair that does not belong together (two renames
    apart when a machine died) is recognised (:func:`belongs_to`)."""
    problems = submission_problems(sub, expected)
    if problems:
        raise ArcTrmError("refusing to write an invalid submission: " + "; ".join(problems[:5]), source=str(sub_path))
    data = json_bytes(sub)
    source = {**source, "submission": {"file": Path(sub_path).name, "sha256": hashlib.sha256(data).hexdigest()}}
    write_together([(Path(cand_path), orjson.dumps({"format": FORMAT, "source": source, "tasks": tasks})),
                    (Path(sub_path), data)])


def belongs_to(source: dict, sub_path: Path) -> bool | None:
    """Whether a candidates file (its ``source``) was written with the submission at ``sub_path``; None
    when it does not say (an older file, another solver's)."""
    want = (source.get("submission") or {}).get("sha256") if isinstance(source.get("submission"), dict) else None
    if not want:
        return None
    try:
        return hashlib.sha256(Path(sub_path).read_bytes()).hexdigest() == want
    except OSError:
        return False


def read_candidates(path: Path) -> tuple[dict, dict[str, list[list[dict]]]]:
    """(source, tasks) of a candidate file; anything else is one error naming the file and where."""
    data = read_json(path, "candidate file")
    src = str(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ArcTrmError(f"not a candidate file (format {found!r}, expected {FORMAT!r})", source=src)
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise ArcTrmError("holds no tasks", source=src)
    for task_id, inputs in tasks.items():
        if not isinstance(inputs, list) or not inputs:
            raise ArcTrmError("needs a non-empty list of test inputs", source=src, task_id=task_id)
        for k, entries in enumerate(inputs):
            if not isinstance(entries, list) or not entries:
                raise ArcTrmError("needs a non-empty list of candidates", source=src, task_id=task_id,
                                  pair=f"test input {k}")
            for j, e in enumerate(entries):
                where = dict(source=src, task_id=task_id, pair=f"test input {k}, candidate {j}")
                if not isinstance(e, dict) or "grid" not in e:
                    raise ArcTrmError("a candidate is an object with grid, votes and score", **where)
                why = grid_problem(e["grid"])
                if why:
                    raise ArcTrmError(why, **where)
                score, votes = e.get("score", 0.0), e.get("votes", 0)
                if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                    raise ArcTrmError(f"score must be a finite number, got {score!r}", **where)
                if isinstance(votes, bool) or not isinstance(votes, int) or votes < 0:
                    raise ArcTrmError(f"votes must be a whole number >= 0, got {votes!r}", **where)
                if not isinstance(e.get("fallback", False), bool):
                    raise ArcTrmError(f"fallback must be true or false, got {e['fallback']!r}", **where)
    return data.get("source") or {}, tasks
