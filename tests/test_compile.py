"""`train.compile = true` on the CPU with the smallest model: compiled steps agree with eager
ones, checkpoints carry the bare module's names (predict and package load them), and a compiled
run stopped by SIGTERM and resumed ends where an uninterrupted compiled run ends."""

import os
import signal

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
