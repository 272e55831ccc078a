"""`train.compile = true` on the CPU with the smallest model: compiled steps agree with eager
ones, checkpoints carry the bare module's names (predict and package load them), and a compiled
run stopped by SIGTERM and resumed ends where an uninterrupted compiled run ends. Deadlines that
know about compilation: the time limit counts steady steps, not the step that compiles; an
evaluation's bound is for its views; predict's budget holds with compilation on; a signal during a
compilation stops it at once; a second run loads the compiled kernels from the cache."""

import os
import signal
import time

import orjson

import pytest
import torch
from safetensors.torch import load_file

from arc_trm.config import set_fields
from arc_trm.kaggle.package import PackageOptions, package
from arc_trm.model.checkpoint import load
from arc_trm.solve.predict import predict
from arc_trm.train import run as run_module
from arc_trm.train.run import train
from tests.helpers import tiny_config

STEPS = 4


def _cfg(compile_):
    return set_fields(tiny_config(max_steps=STEPS, eval_interval_steps=0, max_eval_views=2, save_every_steps=2),
                      {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                       "train.compile": compile_, "ttt.embedding_steps": 2, "ttt.full_steps": 2,
                       "ttt.global_batch_size": 4, "ttt.augmentations": 2, "predict.views_per_input": 2})


def _losses(run):
    import orjson
    return [r["loss"] for r in map(orjson.loads, (run / "metrics.jsonl").read_bytes().splitlines())
            if r.get("kind") == "train"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compile")
    torch._dynamo.reset()
    train(_cfg(False), root / "eager", progress=False)
    torch._dynamo.utils.counters.clear()
    train(_cfg(True), root / "compiled", progress=False)
    graphs = dict(torch._dynamo.utils.counters["stats"])
    return root, graphs


def test_time_limit_counts_steady_steps_and_a_second_run_loads_the_compiled_kernels(runs, tmp_path):
    """The step that compiles is timed apart: the limit stops the run after steady steps until about
    the limit (the old clock took the compilation for a step and stopped at step 1 when it took more
    than half the limit), the last line gives a steady step's time and the compilation's. The run
    after `runs` compiles from the cache that one wrote (inductor's FX-graph cache hits)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    from arc_trm import compile_cache
    limit = 8.0
    cfg = set_fields(_cfg(True), {"train.max_steps": 100000, "train.time_limit_s": limit, "train.log_every_steps": 10000,
                                  "train.eval_time_limit_s": 1.0, "predict.batch_size": 1})
    # this machine "measured" the inference graph's compilation at 0.1 s: worth compiling within the
    # evaluation's 1 s bound; it really takes seconds, and the bound is for the views, not the compilation
    compile_cache.record(f"inference | {cfg.model.describe()} | cpu x1 | no | batch 1", 0.1)
    t = time.time()
    s = train(cfg, tmp_path / "limited", progress=False)
    wall = time.time() - t
    print(f"time-limited compiled run: {s['steps']} steps, {s['limit_note']}; {wall:.1f}s in all")
    assert torch._dynamo.utils.counters["inductor"]["fxgraph_cache_hit"] > 0       # the cache `runs` wrote
    assert s["stopped_by_limit"] and s["compile_s"] > 0 and 0 < s["step_s"] < s["compile_s"]
    assert "a steady step takes about" in s["limit_note"] and "compiling took" in s["limit_note"]
    if s["compile_s"] < limit / 2:          # then steady steps filled most of what the compilation left
        assert s["steps"] > 1 and s["steps"] * s["step_s"] >= 0.5 * (limit - s["compile_s"] - 2 * s["step_s"])
    # the final evaluation compiled its graph (one view per batch: the first batch compiles), then went on
    # to its second view: the old clock ended it after the first, past its bound
    ev = s["final_eval"]
    print(f"final evaluation: compiled in {ev['compile_s']}s, {ev['views']} of {ev['views_planned']} views")
    assert ev["compile_s"] > 0 and ev["views"] == ev["views_planned"] == 2
    times = orjson.loads((compile_cache.folder() / compile_cache.TIMES).read_bytes())
    assert any(k.startswith("train | ") for k in times) and times[f"inference | {cfg.model.describe()} | cpu x1 | no | batch 1"]["warm"] > 0.1


def test_a_graph_compiled_once_is_planned_warm(tmp_path, monkeypatch):
    """The first compile of a graph into a folder is cold; the next loads from that folder's caches, so it
    is planned at a share of the cold time until a warm compile has been timed."""
    from arc_trm import compile_cache
    monkeypatch.setenv("ARC_TRM_COMPILE_CACHE", str(tmp_path / "c"))
    assert compile_cache.measured("k") is None
    compile_cache.record("k", 40.0)
    assert compile_cache.measured("k") == pytest.approx(40.0 * compile_cache.WARM_SHARE)
    compile_cache.record("k", 3.5)
    assert compile_cache.measured("k") == 3.5
    (tmp_path / "c" / compile_cache.TIMES).write_text("{torn")        # a kill mid-write: nothing known
    assert compile_cache.measured("k") is None


def test_an_evaluation_bound_shorter_than_its_compilation_runs_eager(runs, tmp_path, monkeypatch):
    """A bound of 1 s against a compilation planned at the default (nothing measured in this folder):
    the evaluation runs eager and votes over every view; the line says why."""
    monkeypatch.setenv("ARC_TRM_COMPILE_CACHE", str(tmp_path / "fresh-cache"))
    lines = []
    monkeypatch.setattr(run_module.tqdm, "write", lambda text, *a, **k: lines.append(text))
    s = train(set_fields(_cfg(True), {"train.eval_time_limit_s": 1.0, "train.max_steps": 2}), tmp_path / "r",
              progress=False)
    ev = s["final_eval"]
    assert ev["compile_s"] == 0 and ev["views"] == ev["views_planned"]
    assert any("eager: compiling would take about 60 s, more than 25% of its 1 s bound" in line for line in lines), lines


def test_predict_with_a_budget_and_compilation_on_ends_within_the_budget(runs, tmp_path, monkeypatch):
    """Nothing measured on this machine yet: the planned compilations (a default each) do not fit a
    quarter of the budget, so predict runs eager, says so, and ends within its budget."""
    import time as _time
    root, _ = runs
    monkeypatch.setenv("ARC_TRM_COMPILE_CACHE", str(tmp_path / "fresh-cache"))
    started = _time.time()
    res = predict(root / "compiled", str(_challenges(tmp_path)), tmp_path / "s.json",
                  ["train.compile=true", "ttt.embedding_steps=100000", "ttt.full_steps=100000"], time_budget_s=8.0,
                  progress=False, started_at=started)
    assert _time.time() - started <= 8.0 + 1.0
    assert res.metrics["inputs_voted"] == res.metrics["test_inputs"] and res.timings.get("compile_s", 0) == 0
    assert res.timings["ttt"]["steps"]["embeddings"] > 1


def test_sigterm_while_compiling_leaves_a_valid_submission_and_ends_at_once(runs, tmp_path):
    """`arc-trm predict` compiling its TTT step from an empty cache (tens of seconds on this machine)
    gets SIGTERM: the compilation stops at once, the file is a valid submission, the exit code 143."""
    import subprocess
    import sys
    from arc_trm.standalone.arc_format import challenges_entries, submission_problems
    root, _ = runs
    challenges = _challenges(tmp_path)
    env = dict(os.environ, ARC_TRM_COMPILE_CACHE=str(tmp_path / "cold-cache"), PYTHONUNBUFFERED="1")
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    out = tmp_path / "sub.json"
    proc = subprocess.Popen([sys.executable, "-m", "arc_trm.cli", "predict", "--checkpoint", str(root / "compiled"),
                             "--tasks", str(challenges), "--out", str(out), "--set", "train.compile=true"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:            # the line before TTT starts compiling
        if line.startswith("arc-trm predict:") and "compiled" in line:
            break
    time.sleep(2.0)
    assert proc.poll() is None, "predict ended before the signal"
    proc.send_signal(signal.SIGTERM)
    t = time.time()
    try:
        rest, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("predict did not end within 20 s of SIGTERM while compiling")
    print(f"ended {time.time() - t:.1f}s after SIGTERM:\n{rest[-800:]}")
    assert proc.returncode == 143
    assert "torch is compiling: stopping the compilation now" in rest
    sub = orjson.loads(out.read_bytes())
    assert submission_problems(sub, challenges_entries(orjson.loads(challenges.read_bytes()))) == []


def test_compiled_steps_agree_with_eager_ones(runs):
    root, graphs = runs
    assert _losses(root / "compiled") == pytest.approx(_losses(root / "eager"), rel=1e-5)
    eager, compiled = load_file(root / "eager/last/model.safetensors"), load_file(root / "compiled/last/model.safetensors")
    assert sorted(eager) == sorted(compiled) and not any("_orig_mod" in k for k in compiled)
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-5, atol=1e-6)
    # fixed shapes: one graph for training steps and one for evaluation, not one per batch
    print(f"dynamo stats: {graphs}")
    assert graphs.get("unique_graphs", 0) <= 4


def test_compiled_checkpoint_predicts_and_packages(runs, tmp_path, wheelhouse):
    root, _ = runs
    ck = load(root / "compiled")
    assert ck.cfg.train.compile is True
    res = predict(root / "compiled", str(_challenges(tmp_path)), tmp_path / "s.json",
                  ["train.compile=false"], progress=False)
    assert res.metrics["views"] > 0
    pkg = package(PackageOptions(root / "compiled", tmp_path / "pkg", "arc-prize-2025", "someone",
                                 preset=str(_preset(tmp_path)), offline=True, wheelhouse=[wheelhouse]))
    assert (pkg.dataset / "model.safetensors").is_file()


def _challenges(tmp_path):
    from arc_trm.data.synthetic import make_tasks, write_challenges
    return write_challenges(make_tasks(2, seed=3, prefix="new"), tmp_path / "new_challenges.json")


def _preset(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[ttt]\nmode = \"off\"\n[predict]\ntime_budget_s = 60\n")
    return p


def test_compiled_run_stopped_by_sigterm_resumes_to_the_uninterrupted_result(runs, tmp_path, monkeypatch):
    root, _ = runs
    real_log = run_module.MetricLog.log

    def log_then_kill(self, record):
        real_log(self, record)
        if record.get("kind") == "train" and record["step"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)     # as a scheduler would
    monkeypatch.setattr(run_module.MetricLog, "log", log_then_kill)
    first = train(_cfg(True), tmp_path / "run", progress=False)
    assert first["signal"] == signal.SIGTERM and first["steps"] == 2
    assert (tmp_path / "run/last/model.safetensors").is_file()      # something to predict with at once
    monkeypatch.setattr(run_module.MetricLog, "log", real_log)
    second = train(_cfg(True), tmp_path / "run", progress=False)
    assert second["steps"] == STEPS and not second["signal"]
    assert _losses(tmp_path / "run") == pytest.approx(_losses(root / "compiled"), rel=1e-6)
    want, got = load_file(root / "compiled/last/model.safetensors"), load_file(tmp_path / "run/last/model.safetensors")
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    torch.testing.assert_close(load_file(tmp_path / "run/last/puzzle_embeddings.safetensors")["weight"],
                               load_file(root / "compiled/last/puzzle_embeddings.safetensors")["weight"])
