"""No finished answer is thrown away (issue 27): inference that can stop at any moment and votes over
the views that finished, a planner that keeps measuring, and training that stops within a step.
Slow machines are made on purpose (``ARC_TRM_SLOWDOWN``, what ``rehearse --slowdown`` sets), so the
bounds below are the budgets themselves, not the speed of this machine."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from arc_trm.config import set_fields
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.infer.candidates import read_candidates
from arc_trm.train.run import train
from tests.helpers import tiny_config
from tests.test_cli_errors import ROOT, TINY_SETS


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("anytime")
    # 80 steps: enough for the tiny model to draw a grid for every input (at 4 it decodes nothing)
    cfg = set_fields(tiny_config(max_steps=80, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "ttt.mode": "off", "ttt.augmentations": 40, "predict.views_per_input": 0,
                      "predict.batch_size": 4})
    train(cfg, root / "run", progress=False)
    write_challenges(make_tasks(4, seed=5, prefix="n", max_side=6), root / "t_challenges.json")
    return root


def _start(args, env_extra):
    env = dict(os.environ, ARC_TRM_PROGRESS_S="0.05", **env_extra)
    return subprocess.Popen([sys.executable, "-m", "arc_trm.cli", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(child, pattern, timeout=120):
    """Read the child's progress lines until one matches; returns the match."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = child.stderr.readline()
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern!r}")


def test_sigterm_half_way_through_inference_answers_every_input_from_its_finished_views(run, tmp_path):
    out, cand = tmp_path / "sub.json", tmp_path / "cand.json"
    child = _start(["predict", "--checkpoint", run / "run", "--tasks", run / "t_challenges.json", "--out", out,
                    "--candidates", cand, "--ttt", "off"], {"ARC_TRM_SLOWDOWN": "40"})
    m = _wait_for(child, r"predict:.*\| *(\d+)/(\d+) ")        # the inference bar: batches done of planned
    while int(m.group(1)) < 3:
        m = _wait_for(child, r"predict:.*\| *(\d+)/(\d+) ")
    assert int(m.group(1)) < int(m.group(2)) // 2              # the signal lands half-way, or before
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr and last.startswith("arc-trm predict: stopped by SIGTERM: wrote"), last
    assert "4 test inputs: 4 answered by the vote of their finished views (4 of them from a partial vote), " \
           "0 by fallback" in last
    sub = json.loads(out.read_text())
    _, lists = read_candidates(cand)
    for task_id, entries in sub.items():
        for k, e in enumerate(entries):
            produced = [c for c in lists[task_id][k] if not c.get("fallback")]
            assert produced and produced[0]["grid"] == e["attempt_1"] and produced[0]["votes"] >= 1


def test_a_kill_during_inference_keeps_the_answers_saved_so_far(run, tmp_path):
    """kill -9 runs no handler: the answers predict saved while it voted (predict.save_every_s) stay."""
    out = tmp_path / "sub.json"
    child = _start(["predict", "--checkpoint", run / "run", "--tasks", run / "t_challenges.json", "--out", out,
                    "--ttt", "off", "--set", "predict.save_every_s=0.01"], {"ARC_TRM_SLOWDOWN": "40"})
    m = _wait_for(child, r"predict:.*\| *(\d+)/(\d+) ")
    while int(m.group(1)) < 3:
        m = _wait_for(child, r"predict:.*\| *(\d+)/(\d+) ")
    fallback = {t: [{"attempt_1": e["input"], "attempt_2": e["input"]} for e in task["test"]]
                for t, task in json.loads((run / "t_challenges.json").read_text()).items()}
    child.kill()
    child.communicate(timeout=60)
    sub = json.loads(out.read_text())
    assert set(sub) == set(fallback) and sub != fallback           # the model's answers, not the fallback


def test_training_stops_within_one_slow_step_on_the_time_limit_and_on_ctrl_c(tmp_path):
    """Each step made to take seconds: the time limit and Ctrl-C stop the run within one step, and
    both leave the state and last/ of the step they stopped at."""
    env = {"ARC_TRM_SLOWDOWN": "100"}
    quick = [*TINY_SETS, "--set=data.synthetic_test_tasks=0", "--set=train.max_steps=1000"]   # no evaluation
    t = time.time()
    child = _start(["train", "--out", tmp_path / "a", *quick, "--set=train.time_limit_s=4"], env)
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0, stderr
    steps = int(re.search(r"stopped it at step (\d+) of 1000", stdout).group(1))
    step_s = float(re.search(r"a (?:steady )?step takes about ([\d.]+) s", stdout).group(1))
    assert step_s > 0.5 and 1 <= steps <= 4 / step_s + 1 and "run the same command again to continue" in stdout
    assert time.time() - t < 4 + step_s + 30              # the limit, the step in flight, start-up and the save
    assert (tmp_path / "a" / "last" / "model.safetensors").is_file()
    assert (tmp_path / "a" / "state" / f"step_{steps:07d}" / "complete.json").is_file()
    child = _start(["train", "--out", tmp_path / "b", *quick], env)
    _wait_for(child, r"train:")
    time.sleep(1.0)
    t = time.time()
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 130, stderr
    assert time.time() - t < 3 * step_s + 5                  # the step in flight, the save, the exit
    assert "stopping at the next step" in stderr and "stopped by SIGINT at step" in stdout
    info = json.loads((tmp_path / "b" / "last" / "info.json").read_text())
    assert info["stopped_by"] == "SIGINT" and (tmp_path / "b" / "state" / f"step_{info['step']:07d}").is_dir()
