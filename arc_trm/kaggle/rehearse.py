"""``arc-trm rehearse``: run a package's notebook here, against a fake ``/kaggle`` built from a
challenges file, before spending Kaggle GPU quota on it.

The notebook's code cells run as one script in a fresh interpreter, exactly as written; the
payload's wheels install into a fresh virtual environment that sees this machine's packages
(the way the Kaggle image provides torch), so nothing of this environment is touched. Budget
and process count are chosen here (``ARC_TRM_TIME_BUDGET_S``, ``ARC_TRM_PROCESSES``; without
GPUs several processes run on the CPU with gloo).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

import nbformat

from arc_trm.data.tasks import answers_of, load_spec
from arc_trm.errors import ArcTrmError
from arc_trm.infer.score import Score, score_submission
from arc_trm.jsonfile import read_json
from arc_trm.kaggle.job import CHALLENGES_NAME, PAYLOAD_MARKER


@dataclass
class Rehearsal:
    root: Path
    log: str
    returncode: int
    submission: dict
    summary: dict
    score: Score | None


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
             root: Path | None = None, echo: bool = True) -> Rehearsal:
    package_dir = Path(package_dir)
    dataset, notebook_dir = package_dir / "dataset", package_dir / "notebook"
    notebooks = sorted(notebook_dir.glob("*.ipynb"))
    if not (dataset / PAYLOAD_MARKER).is_file() or not notebooks:
        raise ArcTrmError("not a package folder (no dataset/arc_trm_payload.json and notebook/*.ipynb); "
                          "run `arc-trm package` first", source=str(package_dir))
    meta = read_json(dataset / "dataset-metadata.json", "dataset metadata")
    payload = read_json(dataset / PAYLOAD_MARKER, "payload")
    report = load_spec(tasks, solutions=False)
    challenges = {t.task_id: t.to_challenge() for t in report.tasks}
    root = Path(root or tempfile.mkdtemp(prefix="arc-trm-rehearsal-"))
    if root.exists() and any(root.iterdir()):
        raise ArcTrmError("the rehearsal folder must be new or empty", source=str(root))
    fake_kaggle(root / "kaggle", dataset, challenges, payload.get("competition", "competition"), meta["id"])
    env_dir = root / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    script = root / "notebook.py"
    script.write_text(notebook_script(notebooks[0]))
    env = dict(os.environ, ARC_TRM_KAGGLE_ROOT=str(root / "kaggle"), ARC_TRM_PYTHON=str(env_dir / "bin" / "python"),
               ARC_TRM_PROCESSES=str(processes), PYTHONUNBUFFERED="1")
    if budget_s is not None:
        env["ARC_TRM_TIME_BUDGET_S"] = str(budget_s)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=root, env=env, stdout=subprocess.PIPE,
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
    summary = _summary(log)
    answers = answers_of(tasks, report.tasks)
    return Rehearsal(root, log, rc, sub, summary, score_submission(sub, answers) if answers and sub else None)


def _summary(log: str) -> dict:
    """The job's summary: the JSON object the notebook's last cell prints."""
    start = log.rfind("\n{")
    try:
        return json.loads(log[start + 1:]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}
