"""The Kaggle notebook's job. Standard library only: it runs before our wheels are installed, as part
of :mod:`arc_trm.standalone`, which ``arc-trm package`` writes into the notebook, so the notebook needs
no edits and this module is tested like any other.

Order of work (every step after the first may fail; none can leave the submission invalid):
1. find the challenges file and our payload under ``/kaggle/input`` (mount paths differ
   between Kaggle generations, so both are searched for, not assumed);
2. write a fallback submission (every test input answered with itself);
3. log the machine (Python, torch, accelerate, GPUs), then install the payload's packages
   offline, pip choosing each one's wheel for this Python (``--no-index --find-links``);
4. run ``arc-trm predict`` in a child process (``accelerate launch`` with one process per GPU
   when there are several, every launch setting explicit: no accelerate config file is read or
   needed), with the time left in the budget, killed if it overruns;
5. copy its submission over the fallback only if it is valid and covers every task;
6. write what happened to ``working/arc_trm/summary.json`` (:class:`.summary.JobSummary`).

A package of several checkpoints (``arc-trm package --checkpoint A --checkpoint B``) runs step 4
once per checkpoint, each writing candidates within its share of the time left, then ensembles
the candidate files that exist (``arc-trm ensemble``); a checkpoint that fails or overruns is left
out with its reason logged, and the fallback stays until a valid ensemble replaces it. One
checkpoint is an ensemble of one: the same steps, its own answers. Every predict shares one compile
cache (``working/arc_trm/compile-cache``), so a checkpoint after the first of the same architecture
loads what was compiled and plans with the compile times measured.

Environment variables (all optional; on Kaggle none is set):
``ARC_TRM_KAGGLE_ROOT`` replaces ``/kaggle`` (tests and rehearsals), ``ARC_TRM_PYTHON`` the
interpreter that installs and predicts, ``ARC_TRM_TIME_BUDGET_S`` the packaged time budget,
``ARC_TRM_PROCESSES`` the number of predict processes (default: one per GPU; on a machine
without GPUs several processes run on the CPU with gloo, which is how the multi-GPU branch is
rehearsed). ``KAGGLE_IS_COMPETITION_RERUN`` (set by Kaggle on the scored rerun) selects the full
budget when the package has a shorter one for the public placeholder run.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .arc_format import (CANDIDATES_FORMAT, challenges_entries, challenges_fallback, submission_problems,
                         write_json_atomic)
from .summary import SUMMARY_NAME, CheckpointRecord, JobSummary
from .timeshare import (COMPILE_CACHE_ENV, STARTED_AT_ENV, budget_override_s, ensemble_margin_s, finish_margin_s,
                        kill_grace_s, share_of)

PAYLOAD_MARKER = "arc_trm_payload.json"
CHALLENGES_NAME = "arc-agi_test_challenges.json"


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
    """The job's budget, where the Kaggle budget enters (each predict gets its share as --time-budget):
    ``ARC_TRM_TIME_BUDGET_S`` if set; else, on the public run over the placeholder tasks, the
    packaged placeholder budget when there is one (it saves GPU quota: that run is not scored);
    else the packaged budget."""
    env = budget_override_s()
    if env is not None:
        return env
    if not rerun and meta.get("placeholder_time_budget_s"):
        return float(meta["placeholder_time_budget_s"])
    return float(meta.get("time_budget_s") or 41400)


def gpus() -> list:
    """One line per GPU: name and memory, from nvidia-smi (none on a CPU machine)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def launch_plan(gpu_list: list) -> tuple:
    """(processes, on_gpu): one predict process per GPU, or ``ARC_TRM_PROCESSES``."""
    processes = int(os.environ.get("ARC_TRM_PROCESSES") or len(gpu_list) or 1)
    return max(1, processes), bool(gpu_list)


def log_environment(python: str, gpu_list: list, tested: dict | None = None, shipped: list | None = None) -> None:
    """The first lines of the log: what a failed run on Kaggle most often comes down to, and each
    package the image provides next to the version the package was tested with. A package the
    payload ships (accelerate) may well be absent from the image: it is installed next."""
    probe = ("import json, platform, sys\n"
             "from importlib import metadata\n"
             "print('Python', sys.version.split()[0], platform.platform())\n"
             "for name in ('torch', 'accelerate', 'numpy'):\n"
             "    try:\n"
             "        m = __import__(name); print(name, m.__version__)\n"
             "    except Exception as e:\n"
             "        shipped = name in json.loads(sys.argv[2])\n"
             "        print(name, 'not in the image: installed next from the package' if shipped else "
             "'MISSING ' + repr(e))\n"
             "import torch; print('CUDA', torch.version.cuda, 'devices', torch.cuda.device_count())\n"
             "for name, want in json.loads(sys.argv[1]).items():\n"
             "    try:\n"
             "        have = metadata.version(name)\n"
             "    except metadata.PackageNotFoundError:\n"
             "        have = 'MISSING'\n"
             "    print('image', name, have, '' if have == want else f'(package tested with {want})')\n")
    r = subprocess.run([python, "-c", probe, json.dumps(tested or {}), json.dumps(shipped or [])],
                       capture_output=True, text=True)
    for line in (r.stdout + r.stderr[-500:]).splitlines():
        log(f"env: {line}")
    log(f"env: GPUs: {'; '.join(gpu_list) if gpu_list else 'none'}")


def install_packages(python: str, wheel_dir: Path, names: list) -> bool:
    """Install ``names`` offline from ``wheel_dir``, pip picking each one's wheel for this Python.
    A failure names the package and pip's reason; True when arc_trm imports afterwards."""
    # --ignore-installed: our tested versions, whatever the image (or a rehearsal's machine) has
    cmd = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--ignore-installed", "--find-links",
           str(wheel_dir), "--quiet", "--disable-pip-version-check"]
    r = subprocess.run(cmd + names, capture_output=True, text=True)
    if r.returncode != 0:  # find which package failed, and why, one by one
        for name in names:
            r1 = subprocess.run(cmd + [name], capture_output=True, text=True)
            reason = (r1.stderr.strip().splitlines() or ["?"])[-1][-300:]
            log(f"install {name}: {'ok' if r1.returncode == 0 else 'FAILED: ' + reason}")
    probe = subprocess.run([python, "-c", "import arc_trm, arc_trm.cli; print(arc_trm.__version__, arc_trm.__file__)"],
                           capture_output=True, text=True, cwd=str(wheel_dir.parent))
    if probe.returncode != 0:
        log(f"arc_trm does not import after install: {(probe.stderr.strip().splitlines() or ['?'])[-1]}")
        return False
    log(f"installed arc_trm {probe.stdout.strip()}")
    return True


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkpoint_entries(meta: dict) -> list:
    """The packaged checkpoints, each with its files' name prefix, its folder name here and its
    share of the budget; a package of one checkpoint holds its files unprefixed."""
    return meta.get("checkpoints") or [{"prefix": "", "dir": "checkpoint", "share": 1.0}]


def stage_checkpoint(payload: Path, prefix: str, dest: Path) -> Path:
    """The folder of one checkpoint. Kaggle datasets are uploaded flat (the CLI skips folders
    unless told to archive them), so each checkpoint's files carry a prefix in the dataset and are
    linked back into a folder of their own here."""
    if not prefix:
        return payload
    dest.mkdir(parents=True, exist_ok=True)
    for f in payload.iterdir():
        if f.name.startswith(prefix):
            link = dest / f.name[len(prefix):]
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(f)
    return dest


def predict_command(python: str, processes: int, on_gpu: bool, payload: Path, challenges: Path, out: Path,
                    budget_s: float, port: int = 29500, candidates: Path | None = None) -> tuple:
    """(command, extra environment). Several processes go through ``accelerate launch`` with every
    setting given, so nothing depends on an accelerate config file (Kaggle has none); without
    GPUs the same launch runs gloo processes on the CPU (``ACCELERATE_USE_CPU``)."""
    args = ["-m", "arc_trm.cli", "predict", "--checkpoint", str(payload), "--tasks", str(challenges),
            "--out", str(out), "--time-budget", f"{budget_s:.0f}"]
    if candidates is not None:
        args += ["--candidates", str(candidates)]
    if processes <= 1:
        return [python] + args, {}
    launch = [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
              "--num_machines", "1", "--machine_rank", "0", "--main_process_port", str(port),
              "--mixed_precision", "bf16" if on_gpu else "no", "--dynamo_backend", "no"]
    return launch + args, ({} if on_gpu else {"ACCELERATE_USE_CPU": "1"})


def run_child(cmd: list, cwd: Path, log_path: Path, timeout_s: float, extra_env: dict | None = None,
              what: str = "predict") -> int | None:
    """Run ``cmd``, echoing its output to the notebook and to ``log_path``; terminate it after
    ``timeout_s`` (then kill). Returns the exit code, None when it had to be stopped."""
    env = dict(os.environ, TQDM_MININTERVAL="30", PYTHONUNBUFFERED="1", **(extra_env or {}))
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
            log(f"{what} overran its time ({timeout_s:.0f}s); stopping it")
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            rc = None
        reader.join(timeout=10)
    return rc


def log_tail(path: Path, lines: int = 15) -> list:
    """The last non-empty lines of a log file (progress bars' carriage returns split into lines)."""
    try:
        text = path.read_text(errors="replace").replace("\r", "\n")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def error_line(tail: list) -> str:
    """The line that says what went wrong: arc-trm's own one-line error, else the last line that
    names an error (a traceback's last line), else the last line."""
    for marker in ("arc-trm predict: error", "error", "Error"):
        found = [line for line in tail if marker in line]
        if found:
            return found[-1].strip()
    return tail[-1].strip() if tail else "no output"


def run_predict(python: str, gpu_list: list, checkpoint: Path, challenges_path: Path, out: Path,
                candidates: Path | None, seconds: float, log_path: Path, budget: float) -> dict:
    """One predict child with ``seconds`` to spend: {"exit", "stopped", "error"}; a failure's
    last lines go to the notebook log."""
    processes, on_gpu = launch_plan(gpu_list)
    for f in (out, candidates):
        if f is not None and f.exists():
            f.unlink()
    cmd, extra_env = predict_command(python, processes, on_gpu, checkpoint, challenges_path, out, seconds,
                                     free_port(), candidates)
    log(f"{len(gpu_list)} GPU(s), {processes} predict process(es); predicting with {seconds:.0f}s: {' '.join(cmd)}"
        + (f" ({' '.join(f'{k}={v}' for k, v in extra_env.items())})" if extra_env else ""))
    # One compile cache for every checkpoint: the second of the same architecture loads the kernels
    # the first compiled, and each predict plans its compilation from the times measured before it.
    cache = {COMPILE_CACHE_ENV: os.environ.get(COMPILE_CACHE_ENV) or str(log_path.parent / "compile-cache")}
    rc = run_child(cmd, log_path.parent, log_path, seconds + kill_grace_s(budget),
                   dict(extra_env, **cache, **{STARTED_AT_ENV: f"{time.time():.3f}"}))
    outcome = {"exit": rc, "stopped": rc is None, "error": None}
    if rc is not None and rc != 0:
        tail = log_tail(log_path)
        outcome["error"] = error_line(tail)
        log(f"predict FAILED with exit code {rc}; its last lines:")
        for line in tail:
            log(f"  | {line}")
    return outcome


def replace_if_valid(path: Path, challenges: dict, final: Path, what: str) -> bool:
    """Copy ``path`` over the final submission if it is valid and covers every task."""
    sub = json.loads(path.read_text())
    problems = submission_problems(sub, challenges_entries(challenges))
    if problems:
        log(f"{what}'s submission is unusable ({'; '.join(problems[:5])}); keeping the fallback")
        return False
    write_json_atomic(final, sub)
    log(f"submission from {what} written to {final}")
    return True


def candidates_usable(path: Path) -> bool:
    """Whether a candidate file is whole enough to ensemble (``arc-trm ensemble`` checks every entry)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == CANDIDATES_FORMAT and isinstance(data.get("tasks"), dict)


def run_checkpoints(summary: JobSummary, entries: list, python: str, gpu_list: list, payload: Path,
                    challenges_path: Path, challenges: dict, scratch: Path, final: Path, budget: float, phase) -> None:
    """Predict with each checkpoint in turn within its share of the time left, each writing its
    submission and candidates; one checkpoint's valid answers replace the fallback, several are
    ensembled (one checkpoint is an ensemble of one: its own answers)."""
    several = len(entries) > 1
    shares = [float(e.get("share") or 0.0) for e in entries]
    records = summary.checkpoints
    for i, e in enumerate(entries):
        t = time.time()
        label = f"{e['dir']} ({e.get('source', '?')})" if several else "predict"
        rec = CheckpointRecord(e["dir"], e.get("source"))
        records.append(rec)
        available = (budget - (time.time() - _T0[0]) - finish_margin_s(budget)
                     - (ensemble_margin_s(budget) if several else 0.0))
        seconds = share_of(available, shares, i)
        if seconds < 1:
            rec.reason = "no time left"
            log(f"checkpoint {i + 1}/{len(entries)} {label}: no time left; left out" if several
                else "no time left for predict; keeping the fallback")
            continue
        if several:
            log(f"checkpoint {i + 1}/{len(entries)} {label}: {seconds:.0f}s "
                f"({shares[i] / max(sum(shares), 1e-9):.0%} of the budget)")
        folder = stage_checkpoint(payload, e["prefix"], scratch / e["dir"])
        cand = scratch / f"{e['dir']}.candidates.json"
        log_path = scratch / (f"predict-{e['dir']}.log" if several else "predict.log")
        outcome = run_predict(python, gpu_list, folder, challenges_path, scratch / f"{e['dir']}.submission.json",
                              cand, seconds, log_path, budget)
        rec.seconds, rec.exit, rec.log = round(seconds, 1), outcome["exit"], str(log_path)
        # Whatever predict left counts when its candidates are whole: a predict stopped at its share (or
        # that failed late) wrote the answers of every view that finished, which beat the fallback.
        usable = candidates_usable(cand)
        if outcome["stopped"]:
            rec.overran, rec.note = True, f"overran its {seconds:.0f}s and was stopped"
        elif outcome["error"]:
            rec.failed, rec.note = True, f"predict failed: {outcome['error']}"
        rec.ensembled = usable
        if not usable:
            rec.reason = rec.note or ("predict wrote no candidate file" if not cand.exists()
                                      else "its candidate file is unreadable")
            log(f"checkpoint {label} left out: {rec.reason}" if several
                else f"keeping the fallback because {rec.reason}" if rec.failed else f"keeping the fallback: {rec.reason}")
        elif rec.note:
            log(f"{'checkpoint ' + label if several else 'predict'} {rec.note}; the answers it left are used")
        phase(f"predict {e['dir']}" if several else "predict", t)

    good = [r for r in records if r.ensembled]
    summary.ensembled = len(good)
    if not good:
        if several:
            left_out = "; ".join(f"{r.checkpoint}: {r.reason}" for r in records)
            log(f"no checkpoint wrote candidates (left out: {left_out}); keeping the fallback")
        return
    if not several:
        own = scratch / f"{good[0].checkpoint}.submission.json"
        if own.is_file() and replace_if_valid(own, challenges, final, "predict"):
            summary.used = "predict"
        return
    left_out = "; ".join(f"{r.checkpoint}: {r.reason}" for r in records if not r.ensembled) or "none"
    late = [f"{r.checkpoint} {r.note}" for r in good if r.note]
    t = time.time()
    out = scratch / "ensemble.json"
    if out.exists():
        out.unlink()
    weights = [str(float(entries[i].get("weight", 1.0))) for i, r in enumerate(records) if r.ensembled]
    cmd = [python, "-m", "arc_trm.cli", "ensemble", *(str(scratch / f"{r.checkpoint}.candidates.json") for r in good),
           "--weights", *weights, "--tasks", str(challenges_path), "--out", str(out)]
    log(f"ensembling {len(good)} of {len(entries)} checkpoints: {' '.join(cmd)}")
    rc = run_child(cmd, scratch, scratch / "ensemble.log", max(60.0, ensemble_margin_s(budget)), what="the ensemble")
    phase("ensemble", t)
    if rc == 0 and out.is_file() and replace_if_valid(out, challenges, final, "the ensemble"):
        summary.used = "ensemble"
        log(f"ensembled {len(good)} of {len(entries)} checkpoints ({', '.join(r.checkpoint for r in good)}); "
            f"left out: {left_out}" + (f"; used as they were left: {'; '.join(late)}" if late else ""))
        return
    summary.ensemble_error = (error_line(log_tail(scratch / "ensemble.log")) if rc != 0 or not out.is_file()
                              else "its submission is unusable")
    log(f"the ensemble failed ({'stopped' if rc is None else f'exit {rc}'}): {summary.ensemble_error}")
    for r in good:      # then the first checkpoint's own answers are better than the fallback
        own = scratch / f"{r.checkpoint}.submission.json"
        if own.is_file() and replace_if_valid(own, challenges, final, f"checkpoint {r.checkpoint} alone"):
            summary.used, summary.used_checkpoint = "predict", r.checkpoint
            return
    log("keeping the fallback")


def run_job(start: float | None = None) -> JobSummary:
    """Everything the notebook does; never raises. Returns what happened, also written to
    ``working/arc_trm/summary.json``."""
    _T0[0] = start or time.time()
    root = kaggle_root()
    working = root / "working"
    final = working / "submission.json"
    summary = JobSummary(submission=str(final))
    try:
        _job(summary, root, working, final)
    except Exception as e:  # the fallback on disk stays valid whatever went wrong
        summary.error = repr(e)
        log(f"job failed ({e!r}); keeping the fallback")
    try:
        summary.write(working / "arc_trm" / SUMMARY_NAME)
    except OSError as e:
        log(f"could not write the job's summary ({e}); it is printed below")
    return summary


def _job(summary: JobSummary, root: Path, working: Path, final: Path) -> None:
    rerun = bool(os.environ.get("KAGGLE_IS_COMPETITION_RERUN"))
    log(f"root {root}; competition rerun: {rerun}")
    (working / "arc_trm").mkdir(parents=True, exist_ok=True)

    def phase(name: str, t: float) -> None:
        summary.phases[name] = round(time.time() - t, 1)
        log(f"{name} done in {time.time() - t:.1f}s")

    t = time.time()
    challenges_path = find_challenges(root / "input")
    if challenges_path is None:
        log(f"no *test_challenges.json under {root / 'input'}; nothing to predict")
        return
    try:
        challenges = json.loads(challenges_path.read_text())
        if not isinstance(challenges, dict):
            raise ValueError("not a JSON object of tasks")
    except (OSError, ValueError) as e:
        log(f"cannot read {challenges_path}: {e}")
        return
    write_json_atomic(final, challenges_fallback(challenges))
    summary.used, summary.challenges, summary.tasks = "fallback", str(challenges_path), len(challenges)
    log(f"fallback submission for {len(challenges)} tasks written to {final} ({challenges_path})")
    phase("fallback", t)

    t = time.time()
    payload = find_payload(root / "input")
    if payload is None:
        log(f"no {PAYLOAD_MARKER} under {root / 'input'}: attach the arc-trm dataset to the notebook")
        return
    meta = json.loads((payload / PAYLOAD_MARKER).read_text())
    budget = time_budget_s(meta, rerun)
    python = os.environ.get("ARC_TRM_PYTHON") or sys.executable
    gpu_list = gpus()
    names = meta.get("packages") or sorted({w.split("-")[0] for w in meta.get("wheels", [])})
    log_environment(python, gpu_list, meta.get("image_tested"), names)
    log(f"payload {payload} (arc-trm {meta.get('version')}); budget {budget:.0f}s from notebook start")
    if not install_packages(python, payload, names):
        summary.install_failed = True
        return
    phase("install", t)
    run_checkpoints(summary, checkpoint_entries(meta), python, gpu_list, payload, challenges_path, challenges,
                    working / "arc_trm", final, budget, phase)
