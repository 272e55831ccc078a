from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from accelerate import Accelerator

from arc_trm.cli import main
from arc_trm.config import OptimConfig, set_fields
from arc_trm.data.batches import TrainStream, split_batch
from arc_trm.model.checkpoint import load
from arc_trm.train.run import train
from arc_trm.train.session import Schedule, TrainSession
from tests.helpers import run_two_processes, tiny_config, tiny_dataset, tiny_runner

OPTIM = OptimConfig(lr=1e-3, puzzle_emb_lr=1e-2, lr_warmup_steps=2, lr_min_ratio=0.1, ema_rate=0.9)
MUON = OptimConfig(lr=1e-3, puzzle_emb_lr=1e-2, lr_warmup_steps=2, lr_min_ratio=0.1, ema_rate=0.9, dense="muon")


def _session(acc, ds, cfg, seed=0, micro=0, batch=None, optim=OPTIM):
    runner = tiny_runner(cfg, ds.canvas ** 2, ds.num_puzzle_ids, seed, acc)
    batch = batch or cfg.train.global_batch_size
    stream = TrainStream(ds, batch, seed, acc.process_index, acc.num_processes, pixel_side=cfg.model.pixel_side())
    return TrainSession(runner, stream, Schedule(optim, 20), split_batch(batch, acc.num_processes, micro), seed)


def _steps(s, n):
    """Run ``n`` steps, reading the metrics after each (as a log interval of 1 does)."""
    out = []
    for _ in range(n):
        s.step()
        out.append(s.pop_metrics())
    return out


def _snapshot(s, losses):
    return {"w": {k: v.clone() for k, v in s.model.state_dict().items()}, "t": s.table.weight.clone(),
            "ema": {k: v.clone() for k, v in s.ema.shadow.items()}, "losses": losses}


def _world_worker(path):
    arch = Path(path).name.split("-")[1].split(".")[0] if Path(path).name.startswith("two-") else "trm"
    acc = Accelerator(cpu=True)
    s = _session(acc, tiny_dataset(), tiny_config(arch), optim=MUON if arch == "urm" else OPTIM)
    losses = [m["loss"] for m in _steps(s, 4)]
    if acc.is_main_process:
        torch.save(_snapshot(s, losses), path)


def _assert_same(a, b, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=rtol)
    for k, v in a["w"].items():
        torch.testing.assert_close(v, b["w"][k], rtol=rtol, atol=atol)
    for k, v in a["ema"].items():
        torch.testing.assert_close(v, b["ema"][k], rtol=rtol, atol=atol)
    torch.testing.assert_close(a["t"], b["t"], rtol=rtol, atol=atol)


def test_two_processes_and_micro_batches_equal_one_process(tmp_path):
    """The same global batch of 8, computed as 1 process x 8, 1 process x 2 micro-batches of 4,
    1 process x 4 micro-batches of 2, and 2 gloo processes x 4: same losses, weights, EMA and
    embedding rows."""
    run_two_processes("tests.test_train", "_world_worker", str(tmp_path / "two.pt"))
    two = torch.load(tmp_path / "two.pt")
    runs = {}
    for micro in (0, 4, 2):
        s = _session(Accelerator(cpu=True), tiny_dataset(), tiny_config(), micro=micro)
        runs[micro] = _snapshot(s, [m["loss"] for m in _steps(s, 4)])
        s.close()
    assert (runs[0]["t"] != 0).any()
    for micro in (4, 2):
        _assert_same(runs[micro], runs[0])
    _assert_same(two, runs[0])
    # and the test is not vacuous: a different global batch gives other numbers
    other = _session(Accelerator(cpu=True), tiny_dataset(), tiny_config(), batch=4)
    assert not np.allclose([m["loss"] for m in _steps(other, 4)], runs[0]["losses"], rtol=1e-3)


def test_resume_equals_uninterrupted(tmp_path):
    ds = tiny_dataset()
    full = _session(Accelerator(cpu=True), ds, tiny_config(), micro=4)
    want = _steps(full, 6)
    first = _session(Accelerator(cpu=True), ds, tiny_config(), micro=4)
    got = _steps(first, 3)
    first.save_state(tmp_path / "state")
    second = _session(Accelerator(cpu=True), ds, tiny_config(), seed=0, micro=4)
    second.load_state(tmp_path / "state")
    assert second.progress.step == 3
    got += _steps(second, 3)
    assert [g["step"] for g in got] == [w["step"] for w in want]
    assert [g["lr"] for g in got] == [w["lr"] for w in want]
    np.testing.assert_allclose([g["loss"] for g in got], [w["loss"] for w in want], rtol=1e-5)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[k], v)
    torch.testing.assert_close(second.table.weight, full.table.weight)
    for k, v in full.ema.shadow.items():
        torch.testing.assert_close(second.ema.shadow[k], v)


def test_train_verb_writes_checkpoints_eval_and_plot(tmp_path):
    cfg = set_fields(tiny_config(max_steps=6, eval_interval_steps=3, save_every_steps=2, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 2, "data.augmentations": 3})
    summary = train(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert summary["steps"] == 6
    for p in ("best/model.safetensors", "last/config.json", "metrics.jsonl", "curves.png", "state/step_0000006/session.safetensors",
              "state/step_0000006/complete.json"):
        assert (run / p).exists(), p
    evals = [orjson.loads(line) for line in (run / "metrics.jsonl").read_bytes().splitlines() if b'"eval"' in line]
    assert [e["step"] for e in evals] == [3, 6]
    assert (run / "evals" / "step_0000006" / "submission.json").is_file()
    ck = load(run)
    assert ck.table.num_ids == ck.puzzles.end and ck.model.seq_len == cfg.data.canvas ** 2
    # running again resumes at the end: nothing more to do
    again = train(cfg, run, progress=False)
    assert again["steps"] == 6
    # curves on request (e.g. while a run is going)
    assert main(["plot", str(run), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 10_000
    assert main(["plot", str(tmp_path)]) == 2


def test_bad_global_or_micro_batch_is_a_clear_error():
    from arc_trm.errors import ArcTrmError

    with pytest.raises(ArcTrmError, match="not divisible by 2 processes"):
        split_batch(7, 2)
    with pytest.raises(ArcTrmError, match="micro-batch 3 does not divide the per-process batch 8"):
        split_batch(16, 2, 3)
    assert split_batch(768, 4, 48).accumulation == 4


def test_urm_with_muon_on_two_processes_and_micro_batches_equals_one_process(tmp_path):
    """URM (ConvSwiGLU) trained with Muon: 2 gloo processes x 4 and 1 process x 2 micro-batches
    of 4 compute what 1 process x 8 computes, to bf16's precision: the convolution's weights and
    gradients are bf16, as in URM's code, and a sum of bf16 partial gradients (micro-batches, the
    processes' all-reduce) rounds differently from one bf16 sum. The first step is the same to
    float32 precision; after 4 steps losses agree to 3e-4 and weights to a few update sizes (lr
    1e-3), while another global batch moves the losses by far more."""
    run_two_processes("tests.test_train", "_world_worker", str(tmp_path / "two-urm.pt"))
    two = torch.load(tmp_path / "two-urm.pt")
    runs = {}
    for micro in (0, 4):
        s = _session(Accelerator(cpu=True), tiny_dataset(), tiny_config("urm"), micro=micro, optim=MUON)
        runs[micro] = _snapshot(s, [m["loss"] for m in _steps(s, 4)])
        s.close()
    assert any(".dwconv." in k for k in runs[0]["w"])
    for other in (runs[4], two):
        assert abs(other["losses"][0] - runs[0]["losses"][0]) < 1e-5
        np.testing.assert_allclose(other["losses"], runs[0]["losses"], rtol=3e-4)
        for key in ("w", "ema"):
            for k, v in other[key].items():
                torch.testing.assert_close(v.float(), runs[0][key][k].float(), rtol=0, atol=8e-3)
        torch.testing.assert_close(other["t"], runs[0]["t"], rtol=1e-3, atol=1e-4)
    s = _session(Accelerator(cpu=True), tiny_dataset(), tiny_config("urm"), batch=4, optim=MUON)
    assert not np.allclose([m["loss"] for m in _steps(s, 4)][1:], runs[0]["losses"][1:], rtol=3e-3)


def assert_resume_equals_uninterrupted(tmp_path, arch: str, optim) -> None:
    """Four steps in one session against two, a saved state, and two more in a new session: the
    same losses and, to the last bit, the same weights."""
    ds = tiny_dataset()
    session = lambda: _session(Accelerator(cpu=True), ds, tiny_config(arch), micro=4, optim=optim)  # noqa: E731
    full = session()
    want = _steps(full, 4)
    first = session()
    got = _steps(first, 2)
    first.save_state(tmp_path / "state")
    second = session()
    assert second.load_state(tmp_path / "state") == 2
    got += _steps(second, 2)
    np.testing.assert_allclose([g["loss"] for g in got], [w["loss"] for w in want], rtol=1e-6)
    for k, v in full.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[k], v), k
    assert torch.equal(second.table.weight, full.table.weight)


def test_urm_resume_equals_uninterrupted(tmp_path):
    assert_resume_equals_uninterrupted(tmp_path, "urm", MUON)          # exact, bf16 convolution included


def test_a_batch_the_device_cannot_hold_trains_in_the_largest_micro_batches_that_fit(tmp_path, monkeypatch, capsys):
    """train.micro_batch_size 0 (the default): where the memory estimate says the per-process batch does not fit,
    the run cuts it into the largest micro-batches that do (what --set train.micro_batch_size=N would run), and
    says so; an explicit micro-batch that does not fit is refused with the one that would."""
    from safetensors.torch import load_file

    from arc_trm.errors import ArcTrmError
    from arc_trm.model import memory
    monkeypatch.setattr(memory, "bytes_per_sample", lambda *args: 2 ** 30)      # 1 GiB a sample
    monkeypatch.setattr(memory, "available_bytes", lambda device: int(3.5 * 2 ** 30))
    cfg = set_fields(tiny_config(max_steps=3, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2})
    train(cfg, tmp_path / "auto", progress=False)
    assert "global batch 8 = 1 x 4 x 2 (the largest micro-batch the memory estimate fits here)" in capsys.readouterr().out
    train(set_fields(cfg, {"train.micro_batch_size": 2}), tmp_path / "two", progress=False)
    auto, two = (load_file(tmp_path / r / "last" / "model.safetensors") for r in ("auto", "two"))
    assert auto.keys() == two.keys() and all(torch.equal(auto[k], two[k]) for k in auto)
    with pytest.raises(ArcTrmError, match=r"micro-batch 8 needs about 8.0 GiB .*micro_batch_size=2 fits"):
        train(set_fields(cfg, {"train.micro_batch_size": 8}), tmp_path / "eight", progress=False)
    # resumed where the whole batch fits: the carries cannot continue, and the warning says how to keep them
    monkeypatch.setattr(memory, "available_bytes", lambda device: 64 * 2 ** 30)
    capsys.readouterr()
    train(set_fields(cfg, {"train.max_steps": 4}), tmp_path / "auto", progress=False)
    out = capsys.readouterr().out
    assert "global batch 8 = 1 x 1 x 8;" in out and "resumed from" in out
    assert ("warning: the saved state cut each process's batch into 4 micro-batch(es), this run into 1 of 8: "
            "the ACT carries start afresh") in out and "--set train.micro_batch_size=2 keeps the saved split" in out


def _train_worker(path):
    from arc_trm.model import memory
    memory.bytes_per_sample = lambda *args: 2 ** 30                            # 1 GiB a sample
    memory.available_bytes = lambda device: int(5 * 2 ** 30)                  # each process: 4 samples fit
    cfg = set_fields(tiny_config(max_steps=2, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "train.global_batch_size": 16})
    train(cfg, Path(path) / "two", progress=False)


def test_two_processes_agree_on_the_micro_batch_the_estimate_chooses(tmp_path):
    """train() on 2 gloo processes, each 8 of a global 16 where the estimate fits 4: both run 2 x 4 (the
    choice is agreed, or the processes would wait on each other's collectives) and the run ends."""
    run_two_processes("tests.test_train", "_train_worker", str(tmp_path))
    start = [orjson.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_bytes().splitlines()][0]
    assert start["kind"] == "start" and start["processes"] == 2
    assert (tmp_path / "two" / "last" / "model.safetensors").is_file()
