"""``arc-trm rehearse``: run a package's notebook here, against a fake ``/kaggle`` built from a
challenges file, before spending Kaggle GPU quota on it.

The notebook's code cells run as one script, exactly as written, in a stand-in for the Kaggle
image (:func:`arc_trm.kaggle.image.image_environment`): a fresh virtual environment that sees
only the distributions the image provides, taken from this machine; the payload's wheels install
into it as on Kaggle, so nothing of this environment is touched or leaks in. Budget and process
count are chosen here (``ARC_TRM_TIME_BUDGET_S``, ``ARC_TRM_PROCESSES``; without GPUs several
processes run on the CPU with gloo).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from arc_trm import slowdown
from arc_trm.data.tasks import answers_of, load_spec
from arc_trm.errors import ArcTrmError
from arc_trm.infer.score import Score, SplitScore, score_submission, split_score
from arc_trm.infer.selection import ChosenOn
from arc_trm.kaggle.image import image_environment
from arc_trm.jsonfile import field_of, read_json
from arc_trm.standalone import timeshare
from arc_trm.standalone.job import CHALLENGES_NAME, PAYLOAD_MARKER
from arc_trm.standalone.summary import SUMMARY_NAME, JobSummary


@dataclass
class Rehearsal:
    root: Path
    log: str
    returncode: int
    submission: dict
    summary: JobSummary             # what the job wrote to working/arc_trm/summary.json
    score: Score | None
    checkpoint_scores: dict[str, Score]         # several checkpoints: each one's own submission
    split: SplitScore | None = None             # apart on the tasks a packaged checkpoint was chosen on


def fake_kaggle(root: Path, dataset: Path, challenges: dict, competition: str, owner_slug: str) -> Path:
    """``/kaggle`` as a current Kaggle image mounts it: competition and dataset in nested folders."""
    comp = root / "input" / "competitions" / competition
    comp.mkdir(parents=True)
    (comp / CHALLENGES_NAME).write_text(json.dumps(challenges))
    shutil.copytree(dataset, root / "input" / "datasets" / owner_slug)
    (root / "working").mkdir()
    return root


def notebook_script(notebook: Path) -> str:
    nb = nbformat.read(str(notebook), as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def rehearse(package_dir: Path, tasks: str, budget_s: float | None = None, processes: int = 1,
             root: Path | None = None, echo: bool = True, slow: str | None = None) -> Rehearsal:
    """``slow``: ``FACTOR``, ``FACTOR@SECONDS`` or ``FACTOR@SECONDS-UNTIL`` (:mod:`arc_trm.slowdown`):
    every model step of each predict takes FACTOR times as long, from SECONDS after that predict started
    (until UNTIL): a machine slower than its plan, to see what the package keeps."""
    if slow is not None:
        slowdown.parse(slow)
    package_dir = Path(package_dir)
    dataset, notebook_dir = package_dir / "dataset", package_dir / "notebook"
    notebooks = sorted(notebook_dir.glob("*.ipynb"))
    if not (dataset / PAYLOAD_MARKER).is_file() or not notebooks:
        raise ArcTrmError("not a package folder (no dataset/arc_trm_payload.json and notebook/*.ipynb); "
                          "run `arc-trm package` first", source=str(package_dir))
    meta = read_json(dataset / "dataset-metadata.json", "dataset metadata", dict)
    slug = field_of(meta, "id", str, "dataset metadata", dataset / "dataset-metadata.json")
    payload = read_json(dataset / PAYLOAD_MARKER, "payload", dict)
    report = load_spec(tasks, solutions=False)
    challenges = {t.task_id: t.to_challenge() for t in report.tasks}
    root = Path(root or tempfile.mkdtemp(prefix="arc-trm-rehearsal-")).absolute()
    if root.exists() and any(root.iterdir()):
        raise ArcTrmError("the rehearsal folder must be new or empty", source=str(root))
    fake_kaggle(root / "kaggle", dataset, challenges, str(payload.get("competition") or "competition"), slug)
    python = image_environment(root / "venv")
    script = root / "notebook.py"
    script.write_text(notebook_script(notebooks[0]))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(ARC_TRM_KAGGLE_ROOT=str(root / "kaggle"), ARC_TRM_PYTHON=str(python),
               ARC_TRM_PROCESSES=str(processes), PYTHONUNBUFFERED="1")
    if budget_s is not None:
        env[timeshare.BUDGET_ENV] = str(budget_s)
    env.pop(slowdown.ENV, None)
    if slow is not None:
        env[slowdown.ENV] = slow
    proc = subprocess.Popen([str(python), str(script)], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            sys.stdout.write(line)
            sys.stdout.flush()
    rc = proc.wait()
    log = "".join(lines)
    sub_path = root / "kaggle" / "working" / "submission.json"
    sub = json.loads(sub_path.read_text()) if sub_path.is_file() else {}
    summary = (JobSummary.read(root / "kaggle" / "working" / "arc_trm" / SUMMARY_NAME)
               or JobSummary(error="the notebook wrote no summary: it ended before its job did"))
    answers = answers_of(tasks, report.tasks)
    per_checkpoint = {}
    for c in summary.checkpoints if answers and len(summary.checkpoints) > 1 else []:
        own = root / "kaggle" / "working" / "arc_trm" / f"{c.checkpoint}.submission.json"
        if c.ensembled and own.is_file():
            per_checkpoint[c.checkpoint] = score_submission(json.loads(own.read_text()), answers)
    chosen = chosen_on_in(dataset, report.tasks)
    split = split_score(sub, answers, chosen=chosen) if answers and sub else None
    return Rehearsal(root, log, rc, sub, summary, split.whole if split else None, per_checkpoint, split)


def chosen_on_in(dataset: Path, tasks: list) -> set[str]:
    """The tasks any packaged checkpoint was chosen on (its ``info.json``): the rehearsal's figure on them
    is marked, as ``predict``'s is."""
    out: set[str] = set()
    for info in sorted(Path(dataset).rglob("info.json")):
        try:
            c = ChosenOn.from_info(read_json(info, "checkpoint info", dict))
        except ArcTrmError:
            continue
        if c is not None:
            out |= set(c.among(tasks))
    return out


def verdict(r: Rehearsal) -> tuple[str | None, list[str]]:
    """(the failure that makes the rehearsal fail, or None; warnings). A package passes when its
    predict ran and its submission replaced the fallback; a predict stopped at its deadline that
    still left a valid file passes with a warning. A package of several checkpoints passes when
    every checkpoint went into the ensemble; one that failed fails the rehearsal even though the
    others submitted (on Kaggle it would be left out too), one that overran is a warning."""
    s = r.summary
    if s.install_failed:
        return "the package's wheels did not install in the rehearsal (see the install lines above)", []
    if s.error:
        return f"the notebook's job failed: {s.error}; see its log above", []
    if len(s.checkpoints) > 1:
        return _ensemble_verdict(r)
    c = s.checkpoints[0] if s.checkpoints else None
    log_path = c.log if c is not None and c.log else r.root / "kaggle" / "working" / "arc_trm" / "predict.log"
    if c is not None and c.failed:
        return f"predict failed in the rehearsal: {c.note.removeprefix('predict failed: ')} (log: {log_path})", []
    if r.returncode != 0:
        return f"the notebook itself failed (exit {r.returncode}); see its log above", []
    if s.used != "predict":
        return (f"the notebook kept the fallback submission ({c.reason if c is not None and c.reason else s.used}); "
                f"see its log above and {log_path}"), []
    if c is not None and c.overran:
        return None, ["predict overran its time and was stopped; the answers it had voted were used (a Kaggle "
                      "machine as slow as this one would cut the plan short too)"]
    return None, []


def _ensemble_verdict(r: Rehearsal) -> tuple[str | None, list[str]]:
    s = r.summary                 # the checkpoints ran, so the install succeeded
    failed = [c for c in s.checkpoints if c.failed or not (c.ensembled or c.overran)]
    warnings = [f"checkpoint {c.checkpoint} ({c.source}) {c.note or c.reason}; "
                + ("the answers it left were used" if c.ensembled else "it was left out")
                for c in s.checkpoints if c.overran]
    others = (f"the submission is the ensemble of {s.ensembled}" if s.used == "ensemble"
              else "the notebook kept the fallback submission")
    if failed:
        named = "; ".join(f"{c.checkpoint} ({c.source}) {c.reason or c.note} (log: {c.log or '?'})" for c in failed)
        return f"{len(failed)} of {len(s.checkpoints)} checkpoints failed in the rehearsal: {named}; {others}", warnings
    if s.ensemble_error:
        kept = (f"checkpoint {s.used_checkpoint}'s own answers were submitted" if s.used_checkpoint
                else "the notebook kept the fallback submission")
        return f"the ensemble failed in the rehearsal: {s.ensemble_error}; {kept}", warnings
    if s.used != "ensemble":
        return "the notebook kept the fallback submission (no checkpoint wrote candidates); see its log above", warnings
    if r.returncode != 0:
        return f"the notebook itself failed (exit {r.returncode}); see its log above", warnings
    return None, warnings
