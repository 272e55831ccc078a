"""The ARC and Kaggle JSON formats, in the standard library only: grids, the test inputs of a raw
challenges file, and ``submission.json`` (check, fallback, atomic write).

The Kaggle notebook runs before arc-trm is installed, so this module is part of
:mod:`arc_trm.standalone`, which the notebook carries: the notebook's fallback file and its check of
predict's file are this code, not a copy of it. Standard library and relative imports only.
"""

import json
import os

from .tempfiles import new_temp, real_target, usual_mode

MAX_SIDE = 30                 # ARC grids are at most 30x30
ATTEMPTS = ("attempt_1", "attempt_2")
CANDIDATES_FORMAT = "arc-trm-candidates/1"   # the ranked grids behind a submission (arc_trm.infer.candidates)


def grid_problem(g) -> str | None:
    """Why ``g`` is not an ARC grid (a rectangular list of 1..30 rows of 1..30 integers 0..9);
    None when it is one."""
    if not isinstance(g, list) or not g:
        return "grid must be a non-empty list of rows"
    width = None
    for r, row in enumerate(g):
        if not isinstance(row, list) or not row:
            return f"row {r} is not a non-empty list"
        if width is None:
            width = len(row)
        elif len(row) != width:
            return f"ragged grid: row {r} has {len(row)} cells, row 0 has {width}"
        for v in row:
            if type(v) is not int or not 0 <= v <= 9:  # bool is not a colour either
                return f"cell value {v!r} in row {r} is not an integer 0..9"
    if len(g) > MAX_SIDE or width > MAX_SIDE:
        return f"grid is {len(g)}x{width}; ARC grids are at most {MAX_SIDE}x{MAX_SIDE}"
    return None


def raw_test_inputs(task) -> list:
    """The test inputs of an unvalidated task: each valid grid as is, anything else None; a
    single None when the task has no readable list of test pairs (it still gets one entry)."""
    tests = task.get("test") if isinstance(task, dict) else None
    if not isinstance(tests, list) or not tests:
        return [None]
    grids = [t.get("input") if isinstance(t, dict) else None for t in tests]
    return [g if grid_problem(g) is None else None for g in grids]


def fallback_entries(test_inputs: list) -> list:
    """Each test input answered with itself ([[0]] where the input is not a valid grid)."""
    return [{"attempt_1": g if g is not None else [[0]], "attempt_2": g if g is not None else [[0]]}
            for g in test_inputs]


def challenges_fallback(challenges: dict) -> dict:
    """A valid, complete submission for a raw challenges mapping: what is left when all else fails."""
    return {task_id: fallback_entries(raw_test_inputs(task)) for task_id, task in challenges.items()}


def challenges_entries(challenges: dict) -> dict:
    """Task id → number of entries a submission owes it."""
    return {task_id: len(raw_test_inputs(task)) for task_id, task in challenges.items()}


def submission_problems(sub, expected: dict | None = None) -> list:
    """Problems with a submission; empty when it is valid. With ``expected`` (task id → number of
    test inputs), also every task must be present with exactly that many entries."""
    if not isinstance(sub, dict):
        return ["submission must be a JSON object of task id → list of attempts"]
    problems = []
    for task_id, entries in sub.items():
        if not isinstance(entries, list) or not entries:
            problems.append(f"{task_id}: must be a non-empty list of entries")
            continue
        for i, e in enumerate(entries):
            if not isinstance(e, dict) or set(e) != set(ATTEMPTS):
                problems.append(f"{task_id}[{i}]: needs exactly attempt_1 and attempt_2")
                continue
            for a in ATTEMPTS:
                why = grid_problem(e[a])
                if why:
                    problems.append(f"{task_id}[{i}].{a}: {why}")
    for task_id, n in (expected or {}).items():
        entries = sub.get(task_id)
        if entries is None:
            problems.append(f"{task_id}: missing")
        elif isinstance(entries, list) and entries and len(entries) != n:
            problems.append(f"{task_id}: {len(entries)} entries for {n} test inputs")
    return problems


def json_bytes(obj) -> bytes:
    """The bytes arc-trm writes for a submission (compact JSON)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def write_json_atomic(path, obj) -> None:
    """Write into a temporary file beside ``path`` (beside the file a symbolic link names; the link
    stays) and rename it over: a reader (or a kill) never sees half a file. The temporary file is
    removed if writing fails, and one a killed run left is removed by the next write."""
    path = real_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp(path)
    try:
        with open(tmp, "wb") as f:
            f.write(json_bytes(obj))
            f.flush()
            os.fsync(f.fileno())
        try:   # the old file's permissions, else the usual 0666 less the umask (not mkstemp's 0600)
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = usual_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
