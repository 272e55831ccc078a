"""Which test tasks a checkpoint was chosen on, so that no figure from them passes for a score.

Training keeps ``best/`` by pass@2 on a *selection split* of the test tasks and scores the rest;
``best/``'s ``info.json`` records the split (:class:`ChosenOn`: task ids and the fingerprints of
their test inputs, so a renamed copy of a task is still recognised). ``predict`` writes the tasks of
its submission that the checkpoint was chosen on beside it (``NAME.chosen-on.json``), and ``score``,
``report`` and ``ensemble`` read that file: every figure is then given for the scored tasks, and the
chosen-on tasks' figure only with the mark :data:`MARK`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from arc_trm.atomic import write_bytes
from arc_trm.data.overlap import grid_print
from arc_trm.data.tasks import Task
from arc_trm.errors import ArcTrmError
from arc_trm.jsonfile import read_json

MARK = "SELECTED ON: the checkpoint was chosen by this figure, so it is biased upward, not a score to report"
SIDECAR_FORMAT = "arc-trm-chosen-on/1"
SELECTION = "selection/"     # the prefix of every figure from the tasks a checkpoint is chosen on
VIEW_KEYS = ("views", "views_planned", "test_inputs", "inputs_voted", "inputs_partial")
_NOT_FIGURES = VIEW_KEYS + ("kind", "step", "eval_s", "compile_s")


def selection_split(task_ids, share: float, seed: int, named: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(the tasks ``best/`` is chosen on, the tasks it is scored on). ``named``: the chosen-on tasks by id;
    else a seeded ``share`` of them: at least one and never all when there are two or more (0: none,
    ``best/`` is not kept; 1, or a single test task: all, and every figure is marked). Every process draws the same split."""
    ids = sorted(task_ids)
    if named:
        unknown = sorted(set(named) - set(ids))
        if unknown:
            raise ArcTrmError(f"--select-on names {len(unknown)} task(s) that are not test tasks of the dataset: "
                              + ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""))
        chosen = set(named)
    elif share <= 0:
        chosen = set()
    elif share >= 1 or len(ids) < 2:     # one task cannot be split: chosen on it, every figure marked
        chosen = set(ids)
    else:
        k = min(len(ids) - 1, max(1, round(share * len(ids))))
        chosen = set(np.random.default_rng(seed).choice(ids, k, replace=False).tolist())
    return [t for t in ids if t in chosen], [t for t in ids if t not in chosen]


@dataclass
class ChosenOn:
    """The tasks a checkpoint was chosen on: ids, their test inputs' fingerprints, the step and the rule."""

    tasks: list[str] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    step: int = 0
    rule: str = ""

    @classmethod
    def of(cls, tasks: list[Task], step: int, rule: str) -> "ChosenOn":
        return cls(sorted(t.task_id for t in tasks), sorted({grid_print(g) for t in tasks for g in t.test_inputs}),
                   step, rule)

    def to_json(self) -> dict:
        return {"tasks": self.tasks, "inputs": self.inputs, "step": self.step, "rule": self.rule}

    @classmethod
    def from_info(cls, info: dict) -> "ChosenOn | None":
        """A checkpoint's record (``info["chosen_on"]``), None when it was not chosen on any task."""
        d = info.get("chosen_on") if isinstance(info, dict) else None
        if not isinstance(d, dict) or not d.get("tasks"):
            return None
        return cls([str(t) for t in d["tasks"]], [int(x) for x in d.get("inputs", [])], int(d.get("step", 0)),
                   str(d.get("rule", "")))

    def among(self, tasks: list[Task]) -> list[str]:
        """The ids of ``tasks`` that are chosen-on tasks: by id, or by all their test inputs' content."""
        prints = set(self.inputs)
        ids = set(self.tasks)
        return sorted(t.task_id for t in tasks if t.task_id in ids
                      or (t.test_inputs and all(grid_print(g) in prints for g in t.test_inputs)))


def sidecar_path(submission: Path) -> Path:
    return Path(submission).with_suffix(".chosen-on.json")


def write_sidecar(submission: Path, tasks: list[str], checkpoint: str) -> None:
    """Beside a submission: which of its tasks its checkpoint was chosen on. An earlier file of that name
    is removed when there are none, so a new submission never inherits an old one's marks."""
    path = sidecar_path(submission)
    if tasks:
        write_bytes(path, orjson.dumps({"format": SIDECAR_FORMAT, "checkpoint": checkpoint, "tasks": sorted(tasks)},
                                       option=orjson.OPT_INDENT_2))
    elif path.is_file():
        path.unlink()


def read_sidecar(submission: Path) -> set[str]:
    """The tasks of a submission its checkpoint was chosen on (empty when no file says so)."""
    path = sidecar_path(submission)
    if not path.is_file():
        return set()
    d = read_json(path, "chosen-on file", dict)
    if d.get("format") != SIDECAR_FORMAT or not isinstance(d.get("tasks"), list):
        raise ArcTrmError(f"is not an {SIDECAR_FORMAT} file (the tasks a checkpoint was chosen on)", source=str(path))
    return {str(t) for t in d["tasks"]}


def eval_line(step: int, metrics: dict) -> str:
    """One evaluation as train prints it: the scored tasks' figures with pass@2's interval, then the
    selection split's, marked as what best/ is chosen by."""
    def figures(prefix: str) -> str:
        shown = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix) and (
            prefix or not k.startswith(SELECTION)) and k[len(prefix):] not in ("tasks", "pass@2_lo", "pass@2_hi")
            and k not in _NOT_FIGURES}
        return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
    parts = []
    if "tasks" in metrics:
        parts.append(f"over {metrics['tasks']} scored tasks: {figures('')} (pass@2 95 % interval "
                     f"{metrics.get('pass@2_lo', 0):.2f}-{metrics.get('pass@2_hi', 0):.2f})")
    if SELECTION + "tasks" in metrics:
        parts.append(f"over the {metrics[SELECTION + 'tasks']} tasks best/ is chosen on (chosen on: biased "
                     f"upward): {figures(SELECTION)}")
    if not parts:       # an older arc-trm's record: its best/ was chosen on these same tasks
        parts.append(f"over every test task, best/ chosen on them (chosen on: biased upward): {figures('')}")
    views = ", ".join(f"{k} {metrics[k]}" for k in ("views", "views_planned") if k in metrics)
    return f"eval @ step {step}: " + "; ".join(parts + [views])
