"""No interrupted or failing command leaves a user worse off than before it started: real signals to
real subprocesses, torn and truncated files, and a real full file system (a small tmpfs; skipped
with the reason where this machine cannot mount one)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from arc_trm.config import set_fields
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.infer.score import score_submission
from arc_trm.model import checkpoint
from arc_trm.train.run import train
from tests.helpers import tiny_config
from tests.test_cli_errors import ROOT, TINY_SETS, cli, one_error_line


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run whose state holds two generations, and 4 generated tasks with answers."""
    root = tmp_path_factory.mktemp("lost")
    cfg = set_fields(tiny_config(max_steps=6, eval_interval_steps=0, save_every_steps=2, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "ttt.mode": "off", "predict.views_per_input": 2})
    train(cfg, root / "run", progress=False)
    tasks = make_tasks(4, seed=5, prefix="n", max_side=6)
    write_challenges(tasks, root / "t_challenges.json")
    solutions = json.loads((root / "t_solutions.json").read_text())
    perfect = {tid: [{"attempt_1": g, "attempt_2": g} for g in grids] for tid, grids in solutions.items()}
    return {"root": root, "run": root / "run", "tasks": root / "t_challenges.json", "solutions": solutions,
            "perfect": perfect}


# --------------------------------------------------------------------------- predict over a good file
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_predict_rerun_never_makes_the_earlier_submission_worse(trained, tmp_path, sig, code):
    out = tmp_path / "submission.json"
    out.write_text(json.dumps(trained["perfect"]))
    os.chmod(out, 0o644)
    before = score_submission(trained["perfect"], trained["solutions"]).score
    # A long TTT, so the signal lands in the middle of the slow work.
    child = subprocess.Popen([sys.executable, "-m", "arc_trm.cli", "predict", "--checkpoint", str(trained["run"]),
                              "--tasks", str(trained["tasks"]), "--out", str(out), "--ttt", "full",
                              "--set=ttt.full_steps=100000", "--set=ttt.embedding_steps=0"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()            # predict's first line: the checkpoint and tasks are loaded
    assert line.startswith("arc-trm predict:"), line
    time.sleep(1.5)
    child.send_signal(sig)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == code, stderr
    last = stderr.replace("\r", "\n").strip().splitlines()[-1]     # after the TTT progress bar
    assert "Traceback" not in stderr and last.startswith(f"arc-trm predict: stopped by {sig.name}: wrote"), stderr
    # The TTT never finishes, so an input is answered either by the fallback or by the one round of views the
    # signal still allows (a partial vote, taken in 3 of 6 runs here: a matter of timing); every earlier entry
    # is kept, whichever.
    told = re.search(r"4 test inputs: (\d) answered by the vote of their finished views \((\d) of them from a "
                     r"partial vote\), (\d) by fallback, 4 entries kept from the earlier file", last)
    assert told, last
    voted, partial, fallback = map(int, told.groups())
    assert voted == partial and voted + fallback == 4
    after = json.loads(out.read_text())
    assert score_submission(after, trained["solutions"]).score >= before == 1.0
    assert out.stat().st_mode & 0o777 == 0o644                  # the file keeps its permissions


def test_a_rerun_that_answers_nothing_in_time_keeps_the_earlier_answers(trained, tmp_path):
    out = tmp_path / "submission.json"
    out.write_text(json.dumps(trained["perfect"]))
    r = cli("predict", "--checkpoint", trained["run"], "--tasks", trained["tasks"], "--out", out,
            "--time-budget", "0.001")
    assert r.returncode == 0, r.stderr
    assert "4 answered by fallback (4 test inputs: 4 no view finished)" in r.stdout   # honest, and why
    assert json.loads(out.read_text()) == trained["perfect"]
    assert "keep the earlier submission.json's answers" in r.stderr


def test_a_new_submission_gets_the_usual_permissions(trained, tmp_path):
    out = tmp_path / "fresh.json"
    old = os.umask(0o022)
    try:
        assert cli("predict", "--checkpoint", trained["run"], "--tasks", trained["tasks"], "--out", out).returncode == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- training state
def _copy_run(trained, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    return run


def _resume(run, steps=8):
    return cli("train", "--out", run, *TINY_SETS, "--set=data.synthetic_test_tasks=1",
               "--set=train.save_every_steps=2", f"--set=train.max_steps={steps}", "--set=ttt.mode=off",
               "--set=predict.views_per_input=2")


def test_state_is_kept_in_two_complete_generations(trained):
    gens = sorted(p.name for p in (trained["run"] / "state").iterdir())
    assert gens == ["step_0000004", "step_0000006"]
    assert json.loads((trained["run"] / "state" / "step_0000006" / "complete.json").read_text())["step"] == 6


def test_a_truncated_state_file_resumes_from_the_previous_generation(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    f = run / "state" / "step_0000006" / "session.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    r = _resume(run)
    assert r.returncode == 0, r.stderr
    assert "step_0000006 is damaged: session.safetensors is truncated" in r.stdout
    assert "resumed from step_0000004 instead" in r.stdout and "at step 4" in r.stdout
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 8      # no repeated steps in the curves


def test_no_usable_state_is_one_line_that_keeps_best_and_last(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    for gen in (run / "state").iterdir():
        (gen / "session.json").unlink()
    line = one_error_line(_resume(run), "no usable training state", "step_0000006 is damaged: session.json is missing",
                          "--init-from")
    assert str(run / "last") in line
    checkpoint.load(run / "best")
    checkpoint.load(run / "last")


def test_a_kill_between_the_files_of_a_save_never_resumes_mixed_state(trained, tmp_path):
    """A save killed half-way leaves only its temporary folder: the rerun resumes the last complete
    generation and the step in every file agrees."""
    run = _copy_run(trained, tmp_path)
    half = run / "state" / ".step_0000008.tmp"
    shutil.copytree(run / "state" / "step_0000006", half)
    (half / "complete.json").unlink()
    (half / "session.json").unlink()
    r = _resume(run)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stdout and "at step 6" in r.stdout and "damaged" not in r.stdout
    assert sorted(p.name for p in (run / "state").iterdir()) == ["step_0000006", "step_0000008"]


def test_a_torn_metrics_line_is_skipped_by_plot_and_healed_by_train(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "train", "step": 7, "lo')            # what a kill during a write leaves
    r = cli("plot", run)
    assert r.returncode == 0 and "skipped 1 unreadable line" in r.stderr and (run / "curves.png").stat().st_size > 0
    r = _resume(run)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]   # all whole again
    steps = [x["step"] for x in records if x["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 8


def test_fresh_says_what_it_deletes(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    r = cli("train", "--out", run, *TINY_SETS, "--set=train.max_steps=1", "--fresh")
    assert r.returncode == 0 and "--fresh deletes state, best, last" in r.stdout


# --------------------------------------------------------------------------- package
@pytest.fixture(scope="module")
def package_dir(trained, wheelhouse):
    out = trained["root"] / "submission"
    r = cli("package", "--checkpoint", trained["run"], "--out", out, "--competition", "arc-prize-2025",
            "--owner", "someone", "--offline", "--wheelhouse", wheelhouse)
    assert r.returncode == 0, r.stderr
    return out


def test_a_failing_package_leaves_the_old_one_usable(trained, package_dir, tmp_path):
    out = tmp_path / "submission"
    shutil.copytree(package_dir, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("package", "--checkpoint", trained["run"], "--out", out, "--competition", "arc-prize-2025",
            "--owner", "someone", "--offline", "--wheelhouse", empty)
    assert r.returncode == 2 and "fetching a wheel of accelerate" in r.stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and sorted(p.name for p in out.iterdir()) == ["README.md", "dataset", "notebook"]


# --------------------------------------------------------------------------- a full disk
@pytest.fixture
def full_disk(tmp_path):
    """A 4 MiB tmpfs at ``.path``; ``.fill()`` leaves it with no space at all."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): needs root in a container "
                    "that allows mounts")

    def fill(leave: int = 0):
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        if leave:
            os.truncate(mnt / "filler", max(0, os.path.getsize(mnt / "filler") - leave))
    yield SimpleNamespace(path=mnt, fill=fill)
    subprocess.run(["umount", "-l", str(mnt)], check=False)



def _one_full_disk_line(r, name):
    """Exit 2 and, after any progress bar, one line naming the file and the full disk."""
    lines = [ln for ln in r.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert lines[-1].startswith("arc-trm ") and "no space left on device" in lines[-1] and name in lines[-1], lines
    assert all(ln.startswith(("predict:", "ttt:", "train:")) for ln in lines[:-1]), lines
    return lines[-1]


def test_a_full_disk_during_predict_keeps_the_earlier_submission(trained, full_disk):
    out = full_disk.path / "submission.json"
    out.write_text(json.dumps(trained["perfect"]))
    full_disk.fill()
    r = cli("predict", "--checkpoint", trained["run"], "--tasks", trained["tasks"], "--out", out)
    _one_full_disk_line(r, "submission")
    assert json.loads(out.read_text()) == trained["perfect"]
    assert [p.name for p in full_disk.path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_full_disk_during_show_and_plot_is_one_line_and_no_empty_picture(trained, full_disk):
    (full_disk.path / "old.png").write_bytes(b"old picture")
    full_disk.fill()
    r = cli("plot", trained["run"], "--out", full_disk.path / "old.png")
    _one_full_disk_line(r, "old.png")
    assert (full_disk.path / "old.png").read_bytes() == b"old picture"
    task = next(iter(trained["solutions"]))
    r = cli("show", task, "--tasks", trained["tasks"], "--out", full_disk.path / "task.png")
    _one_full_disk_line(r, "task.png")
    assert not (full_disk.path / "task.png").exists()


def test_a_full_disk_during_train_is_one_line_and_keeps_what_was_saved(trained, full_disk):
    """Room for the config and a few metrics lines, not for the next state generation."""
    run = full_disk.path / "run"
    shutil.copytree(trained["run"], run, ignore=shutil.ignore_patterns("evals", "curves.png"))
    full_disk.fill(leave=48 * 1024)
    r = _resume(run, steps=12)
    line = _one_full_disk_line(r, "could not")
    assert "intact" in line or "unchanged" in line, line
    checkpoint.load(run / "best")
    checkpoint.load(run / "last")
    assert (run / "state" / "step_0000006" / "complete.json").is_file()
    assert not list((run / "state").glob(".*.tmp"))


def test_a_full_disk_during_package_keeps_the_old_package(trained, package_dir, full_disk):
    out = full_disk.path / "submission"
    (out / "notebook").mkdir(parents=True)
    (out / "notebook" / "old.ipynb").write_text("{}")
    (out / "notebook" / "kernel-metadata.json").write_text("{}")     # an earlier package's notebook folder
    full_disk.fill()
    r = cli("package", "--checkpoint", trained["run"], "--out", out, "--competition", "arc-prize-2025",
            "--owner", "someone", "--offline", "--wheelhouse", package_dir / "dataset")
    one_error_line(r, "no space left on device")
    assert (out / "notebook" / "old.ipynb").read_text() == "{}"
    assert sorted(p.name for p in out.iterdir()) == ["notebook"]
