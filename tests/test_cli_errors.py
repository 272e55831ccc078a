"""Ordinary mistakes through the command line: one clear line, an honest exit code, no traceback,
nothing silently wrong and nothing lost. `cli` runs the console script's `main` in this process
(the same parser, verbs, output and exit codes, without a Python and torch start-up per call);
`console` runs the installed `arc-trm` in a subprocess, for what only a real process shows."""

import io
import json
import re
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from arc_trm.config import set_fields
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.data.tasks import load_spec
from arc_trm.train.run import train
from tests.helpers import TINY_MODEL, tiny_config

ROOT = Path(__file__).resolve().parents[1]
# The tiny model and data of tests.helpers, as --set flags for a `train` subprocess.
TINY_SETS = [f"--set={k}={v}" for k, v in {**TINY_MODEL, "data.canvas": 10, "data.synthetic_tasks": 3,
                                           "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                                           "train.global_batch_size": 8, "train.log_every_steps": 1,
                                           "train.eval_interval_steps": 0, "train.max_eval_views": 2,
                                           "train.time_limit_s": 0}.items()]


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """`arc-trm ARGS` run by the console script's own `main`, in this process, from ``cwd``
    (default: the repository); an exception main lets through fails the test with its traceback."""
    from arc_trm.cli import main
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        os.chdir(cwd or ROOT)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                rc = main([str(a) for a in args])
            except SystemExit as e:           # argparse: --help (0), a usage error (2)
                rc = e.code if isinstance(e.code, int) else 0
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def console(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """The installed `arc-trm` command in its own process."""
    r = subprocess.run([sys.executable, "-m", "arc_trm.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd or ROOT, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def one_error_line(r, *needles):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("arc-trm ") and "error" in lines[0], lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run (10x10 canvas) and task files around it."""
    root = tmp_path_factory.mktemp("cli")
    cfg = set_fields(tiny_config(max_steps=2, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "ttt.mode": "off", "predict.views_per_input": 2})
    train(cfg, root / "run", progress=False)
    small = make_tasks(3, seed=11, prefix="small", max_side=6)
    big = next(t for t in load_spec("arc1-eval").tasks if max(max(g.shape) for g in t.plan_grids()) > 10)
    write_challenges(small + [big], root / "mixed_challenges.json")
    return root, small, big


def test_predict_warns_about_tasks_the_canvas_cannot_hold_and_still_scores(run, tmp_path):
    root, small, big = run
    r = cli("predict", "--checkpoint", root / "run", "--tasks", root / "mixed_challenges.json",
            "--out", tmp_path / "s.json", "--detail")
    assert r.returncode == 0, r.stderr
    assert "1 of 4 tasks have grids larger than the checkpoint's 10x10 canvas" in r.stderr
    assert f"{big.task_id}\t0.000\tfallback" in r.stdout          # the per-task line says which
    # the count is every task with a fallback entry: the one too big, and any the 2-step model
    # produced no grid for (the detail lines say which)
    n = int(re.search(r"(\d+) answered by fallback", r.stdout).group(1))
    assert n == r.stdout.count("\tfallback") >= 1 and "pass@2" in r.stdout
    # and the line says why: the big task was not predicted; the others' views gave no grid
    why = re.search(r"answered by fallback \((\d+) test inputs: ([^)]*)\)", r.stdout)
    assert why and "1 too big for the canvas or unreadable" in why.group(2), r.stdout
    assert sum(int(c) for c in re.findall(r"(\d+) [a-z]", why.group(2))) == int(why.group(1))


def test_a_solutions_file_missing_a_task_changes_no_prediction(run, tmp_path):
    root, small, _ = run
    write_challenges(small, tmp_path / "s_challenges.json")
    full = json.loads((tmp_path / "s_solutions.json").read_text())
    r1 = cli("predict", "--checkpoint", root / "run", "--tasks", tmp_path / "s_challenges.json", "--out", tmp_path / "a.json")
    broken = dict(full)
    del broken[small[0].task_id]
    broken[small[1].task_id] = broken[small[1].task_id] * 3          # wrong count
    (tmp_path / "s_solutions.json").write_text(json.dumps(broken))
    r2 = cli("predict", "--checkpoint", root / "run", "--tasks", tmp_path / "s_challenges.json", "--out", tmp_path / "b.json")
    assert r1.returncode == r2.returncode == 0, r2.stderr
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())
    count = lambda r: re.search(r"\d+ answered by fallback", r.stdout).group(0)
    assert count(r1) == count(r2)
    assert "have no entry" not in r2.stderr and "1 task(s) of the submission are not in the solutions" in r2.stderr


def test_score_warns_and_refuses_what_is_not_a_solutions_file(run, tmp_path):
    root, small, _ = run
    write_challenges(small, tmp_path / "s_challenges.json")
    sols = json.loads((tmp_path / "s_solutions.json").read_text())
    a, b, c = (t.task_id for t in small)
    sub = {a: [{"attempt_1": sols[a][0], "attempt_2": [[0]]}] * 3, "zzz": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    r = cli("score", tmp_path / "sub.json", "--solutions", tmp_path / "s_solutions.json")
    assert r.returncode == 0 and "pass@2 0.3333 over 3 tasks" in r.stdout
    assert "2 task(s) of the solutions have no entry" in r.stderr and "not in the solutions" in r.stderr
    assert f"task {a}: 3 entries for 1 test inputs" in r.stderr
    (tmp_path / "alone_challenges.json").write_text((tmp_path / "s_challenges.json").read_text())
    one_error_line(cli("score", tmp_path / "sub.json", "--solutions", tmp_path / "alone_challenges.json"),
                   "holds no answers")
    (tmp_path / "x_solutions.json").write_text((tmp_path / "s_challenges.json").read_text())
    one_error_line(cli("score", tmp_path / "sub.json", "--solutions", tmp_path / "x_solutions.json"), "not a solutions file")
    one_error_line(cli("score", tmp_path / "sub.json", "--solutions", tmp_path / "nope.json"), "nope.json")
    (tmp_path / "junk.json").write_text("{not json")
    one_error_line(cli("score", tmp_path / "junk.json", "--solutions", "arc1-eval"), "not valid JSON")
    (tmp_path / "list.json").write_text("[1, 2]")
    one_error_line(cli("score", tmp_path / "list.json", "--solutions", "arc1-eval"), "not a valid submission")
    (tmp_path / "ragged.json").write_text(json.dumps({a: [{"attempt_1": [[1, 2], [3]], "attempt_2": [[1]]}]}))
    one_error_line(cli("show", a, "--tasks", tmp_path / "s_challenges.json", "--submission", tmp_path / "ragged.json"),
                   "ragged")
    assert cli("score", tmp_path / "sub.json", "--solutions", "arc1-eval").returncode == 0   # a bundled name works


def test_predict_checks_named_paths_before_any_work(run, tmp_path):
    root, *_ = run
    chal = root / "mixed_challenges.json"
    (tmp_path / "folder").mkdir()
    one_error_line(cli("predict", "--checkpoint", root / "run", "--tasks", chal, "--out", tmp_path / "folder"), "is a folder")
    assert list((tmp_path / "folder").iterdir()) == []                       # no stray temporary file
    one_error_line(cli("predict", "--checkpoint", root / "run", "--tasks", chal, "--out", tmp_path / "no/such/x.json"),
                   "does not exist")
    (tmp_path / "file").write_text("")
    one_error_line(cli("predict", "--checkpoint", root / "run", "--tasks", chal, "--out", tmp_path / "file/x.json"),
                   "not a writable folder")
    t = time.time()
    one_error_line(cli("predict", "--checkpoint", root / "run", "--tasks", chal, "--out", tmp_path / "y.json",
                       "--solutions", tmp_path / "typo_solutions.json"), "typo_solutions.json")
    assert not (tmp_path / "y.json").exists()
    one_error_line(cli("predict", "--checkpoint", tmp_path / "nothing", "--tasks", chal, "--out", tmp_path / "y.json"),
                   "no such checkpoint")
    one_error_line(cli("predict", "--checkpoint", root / "run", "--tasks", chal, "--out", tmp_path / "y.json",
                       "--set", "model.hidden_size=64"), "cannot change model.hidden_size")
    assert time.time() - t < 120


def test_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from arc_trm.train.run_folder import locked\n"
        f"with locked(Path({str(out)!r})):\n    print('holding', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout.readline().strip() == "holding"
    one_error_line(cli("train", "--out", out, *TINY_SETS, "--set=train.max_steps=1"), "another `arc-trm train`",
                   f"pid {holder.pid}")
    holder.kill()                      # as the kernel's OOM killer would
    holder.wait()
    r = cli("train", "--out", out, *TINY_SETS, "--set=train.max_steps=1")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_state_and_a_checkpoint_and_exits_as_the_shell_expects(tmp_path, sig, code):
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-m", "arc_trm.cli", "train", "--out", str(out), *TINY_SETS,
                              "--set=train.max_steps=100000"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").is_file() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    child.send_signal(sig)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == code, stderr
    assert "Traceback" not in stderr and f"stopped by {sig.name}" in stdout
    assert (out / "last" / "model.safetensors").is_file() and any((out / "state").glob("step_*/session.safetensors"))
    info = json.loads((out / "last" / "info.json").read_text())
    assert info["stopped_by"] == sig.name and info["step"] > 0


def test_a_rerun_with_other_settings_is_refused_before_anything_is_overwritten(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "--out", out, *TINY_SETS, "--set=train.max_steps=2").returncode == 0
    before = (out / "config.json").read_bytes()
    line = one_error_line(cli("train", "--out", out, *TINY_SETS, "--set=train.max_steps=2",
                              "--set=model.hidden_size=16"), "model.hidden_size (saved 32, now 16)")
    assert "--fresh" in line and (out / "config.json").read_bytes() == before
    line = one_error_line(cli("train", "--out", out, *TINY_SETS, "--set=train.global_batch_size=4"),
                          "train.global_batch_size")
    r = cli("train", "--out", out, *TINY_SETS, "--set=train.max_steps=3")      # a longer run: allowed
    assert r.returncode == 0 and "resumed from" in r.stdout


def test_presets_memory_and_the_bare_command(tmp_path):
    # the real console command, in its own process: the one line on stderr, exit 2, nothing else
    one_error_line(console("train", "--preset", "kaggle-l4x4", "--out", tmp_path / "k"), "is a predict preset")
    assert not (tmp_path / "k").exists()
    if os.environ.get("ARC_TRM_SKIP_MEMORY_CHECK") is None:
        t = time.time()
        # the paper's batch of 768 asked for at once (the default would cut it into micro-batches that fit)
        line = one_error_line(cli("train", "--preset", "arc1-paper", "--out", tmp_path / "p",
                                  "--set", "train.micro_batch_size=768"), "train.micro_batch_size=")
        assert "GiB" in line and time.time() - t < 60 and not (tmp_path / "p" / "data").exists()   # before any ingest
    r = console()
    assert r.returncode == 0 and all(v in r.stdout for v in ("ingest", "train", "predict", "package", "import-reference"))
    assert all(p in r.stdout for p in ("smoke", "arc1-paper", "tiny-cpu", "kaggle-l4x4"))
    h = cli("train", "--help")
    assert "default: smoke" in h.stdout


def test_tracker_without_its_package_is_one_line():
    import importlib.util
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        pytest.skip("tensorboard is installed here")
    one_error_line(cli("train", "--log-with", "tensorboard", *TINY_SETS), "arc-trm[tensorboard]")
