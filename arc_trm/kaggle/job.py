"""The Kaggle notebook's job. Standard library only: it runs before our wheels are installed, and
``arc-trm package`` pastes this file's source into the notebook, so the notebook needs no edits
and this module is tested like any other.

Order of work (every step after the first may fail; none can leave the submission invalid):
1. find the challenges file and our payload under ``/kaggle/input`` (mount paths differ
   between Kaggle generations, so both are searched for, not assumed);
2. write a fallback submission (every test input answered with itself);
3. install the payload's wheels offline (``pip install --no-index --no-deps``);
4. run ``arc-trm predict`` in a child process (``accelerate launch`` with one process per GPU
   when there are several), with the time left in the budget, killed if it overruns;
5. copy its submission over the fallback only if it is valid and covers every task.

Environment variables (all optional; on Kaggle none is set):
``ARC_TRM_KAGGLE_ROOT`` replaces ``/kaggle`` (tests and rehearsals), ``ARC_TRM_PYTHON`` the
interpreter that installs and predicts, ``ARC_TRM_TIME_BUDGET_S`` the packaged time budget.
``KAGGLE_IS_COMPETITION_RERUN`` (set by Kaggle on the scored rerun) selects the full budget when
the package has a shorter one for the public placeholder run.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

try:  # installed: the shared format module; in the notebook, the cell above pastes its source
    from arc_trm.data.arc_format import expected_entries, fallback_submission, submission_problems, write_json_atomic
except ImportError:
    pass

PAYLOAD_MARKER = "arc_trm_payload.json"
CHALLENGES_NAME = "arc-agi_test_challenges.json"


def finish_margin_s(budget_s: float) -> float:
    """Kept back at the end of the budget for stopping the child and copying its file."""
    return min(120.0, 0.02 * budget_s)


def kill_grace_s(budget_s: float) -> float:
    """Time the child gets past its own budget (it stops itself there) before it is stopped."""
    return min(60.0, 0.05 * budget_s)


_T0 = [time.time()]


def log(msg: str) -> None:
    print(f"[arc-trm {time.time() - _T0[0]:8.1f}s] {msg}", flush=True)


def kaggle_root() -> Path:
    return Path(os.environ.get("ARC_TRM_KAGGLE_ROOT", "/kaggle"))


def find_challenges(input_dir: Path) -> Path | None:
    """The competition's test challenges: the exact Kaggle name first, then any
    ``*test_challenges.json``; the shortest path wins when several match."""
    exact, loose = [], []
    for dirpath, _, files in os.walk(input_dir, followlinks=True):
        for f in files:
            if f == CHALLENGES_NAME:
                exact.append(Path(dirpath) / f)
            elif f.endswith("test_challenges.json"):
                loose.append(Path(dirpath) / f)
    for found in (exact, loose):
        if found:
            return sorted(found, key=lambda p: (len(p.parts), str(p)))[0]
    return None


def find_payload(input_dir: Path) -> Path | None:
    for dirpath, _, files in os.walk(input_dir, followlinks=True):
        if PAYLOAD_MARKER in files:
            return Path(dirpath)
    return None


def time_budget_s(meta: dict, rerun: bool) -> float:
    """``ARC_TRM_TIME_BUDGET_S`` if set; else, on the public run over the placeholder tasks, the
    packaged placeholder budget when there is one (it saves GPU quota: that run is not scored);
    else the packaged budget."""
    env = os.environ.get("ARC_TRM_TIME_BUDGET_S")
    if env:
        return float(env)
    if not rerun and meta.get("placeholder_time_budget_s"):
        return float(meta["placeholder_time_budget_s"])
    return float(meta.get("time_budget_s") or 41400)


def gpu_count() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def install_wheels(python: str, wheel_dir: Path) -> bool:
    wheels = sorted(str(p) for p in wheel_dir.glob("*.whl"))
    if not wheels:
        log(f"no wheels in {wheel_dir}")
        return False
    cmd = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", "--disable-pip-version-check"]
    r = subprocess.run(cmd + wheels, capture_output=True, text=True)
    if r.returncode != 0:  # one bad wheel (e.g. built for another Python) must not block the rest
        log(f"pip install of all wheels failed; installing one by one\n{r.stderr[-2000:]}")
        for w in wheels:
            r1 = subprocess.run(cmd + [w], capture_output=True, text=True)
            log(f"  {Path(w).name}: {'ok' if r1.returncode == 0 else 'FAILED ' + r1.stderr[-300:]}")
    probe = subprocess.run([python, "-c", "import arc_trm, arc_trm.cli; print(arc_trm.__version__, arc_trm.__file__)"],
                           capture_output=True, text=True, cwd=str(wheel_dir.parent))
    if probe.returncode != 0:
        log(f"arc_trm does not import after install:\n{probe.stderr[-2000:]}")
        return False
    log(f"installed arc_trm {probe.stdout.strip()}")
    return True


def predict_command(python: str, gpus: int, payload: Path, challenges: Path, out: Path, budget_s: float) -> list:
    args = ["-m", "arc_trm.cli", "predict", "--checkpoint", str(payload), "--tasks", str(challenges),
            "--out", str(out), "--time-budget", f"{budget_s:.0f}"]
    if gpus > 1:
        return [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus),
                "--num_machines", "1"] + args
    return [python] + args


def run_child(cmd: list, cwd: Path, log_path: Path, timeout_s: float) -> int | None:
    """Run ``cmd``, echoing its output to the notebook and to ``log_path``; terminate it after
    ``timeout_s`` (then kill). Returns the exit code, None when it had to be stopped."""
    env = dict(os.environ, TQDM_MININTERVAL="30", PYTHONUNBUFFERED="1")
    with open(log_path, "w") as logf:
        child = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, errors="replace")

        def pump():
            for line in child.stdout:
                logf.write(line)
                logf.flush()
                sys.stdout.write("    " + line.replace("\r", "\n    "))
                sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = child.wait(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            log(f"predict overran its time ({timeout_s:.0f}s); stopping it")
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            rc = None
        reader.join(timeout=10)
    return rc


def run_job(start: float | None = None) -> dict:
    """Everything the notebook does; never raises. Returns a summary of what happened."""
    _T0[0] = start or time.time()
    root = kaggle_root()
    working = root / "working"
    final = working / "submission.json"
    summary = {"submission": str(final), "phases": {}, "used": "none"}
    rerun = bool(os.environ.get("KAGGLE_IS_COMPETITION_RERUN"))
    log(f"root {root}; competition rerun: {rerun}")

    def phase(name: str, t: float) -> None:
        summary["phases"][name] = round(time.time() - t, 1)
        log(f"{name} done in {time.time() - t:.1f}s")

    t = time.time()
    challenges_path = find_challenges(root / "input")
    if challenges_path is None:
        log(f"no *test_challenges.json under {root / 'input'}; nothing to predict")
        return summary
    try:
        challenges = json.loads(challenges_path.read_text())
        if not isinstance(challenges, dict):
            raise ValueError("not a JSON object of tasks")
    except (OSError, ValueError) as e:
        log(f"cannot read {challenges_path}: {e}")
        return summary
    write_json_atomic(final, fallback_submission(challenges))
    summary.update(used="fallback", challenges=str(challenges_path), tasks=len(challenges))
    log(f"fallback submission for {len(challenges)} tasks written to {final} ({challenges_path})")
    phase("fallback", t)

    try:
        t = time.time()
        payload = find_payload(root / "input")
        if payload is None:
            log(f"no {PAYLOAD_MARKER} under {root / 'input'}: attach the arc-trm dataset to the notebook")
            return summary
        meta = json.loads((payload / PAYLOAD_MARKER).read_text())
        budget = time_budget_s(meta, rerun)
        python = os.environ.get("ARC_TRM_PYTHON") or sys.executable
        log(f"payload {payload} (arc-trm {meta.get('version')}); budget {budget:.0f}s from notebook start")
        if not install_wheels(python, payload):
            return summary
        phase("install", t)

        t = time.time()
        gpus = gpu_count()
        left = budget - (time.time() - _T0[0]) - finish_margin_s(budget)
        if left <= 0:
            log("no time left for predict; keeping the fallback")
            return summary
        scratch = working / "arc_trm"
        scratch.mkdir(parents=True, exist_ok=True)
        out = scratch / "submission.json"
        if out.exists():
            out.unlink()
        cmd = predict_command(python, gpus, payload, challenges_path, out, left)
        log(f"{gpus} GPU(s); predicting with {left:.0f}s: {' '.join(cmd)}")
        rc = run_child(cmd, scratch, scratch / "predict.log", left + kill_grace_s(budget))
        summary["predict_exit"] = rc
        phase("predict", t)

        if not out.is_file():
            log("predict wrote no submission; keeping the fallback")
            return summary
        sub = json.loads(out.read_text())
        problems = submission_problems(sub, expected_entries(challenges))
        if problems:
            log(f"predict's submission is unusable ({'; '.join(problems[:5])}); keeping the fallback")
            return summary
        write_json_atomic(final, sub)
        summary["used"] = "predict"
        log(f"submission from predict written to {final}")
    except Exception as e:  # the fallback on disk stays valid whatever went wrong
        log(f"job failed ({e!r}); keeping the fallback")
    return summary
