import numpy as np
import orjson
import pytest
import torch
from accelerate import Accelerator

from arc_trm.cli import main
from arc_trm.data.batches import TrainStream
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.trm import TRM
from arc_trm.train.checkpoint import load
from arc_trm.train.loop import Schedule, TrainSession
from arc_trm.train.run import train
from tests.helpers import run_two_processes, tiny_config, tiny_dataset


def _session(acc, ds, cfg, seed=0):
    cfg.model.seq_len = ds.canvas ** 2
    torch.manual_seed(seed)
    core = TRM(cfg.model)
    table = PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size)
    stream = TrainStream(ds, cfg.train.global_batch_size, seed, acc.process_index, acc.num_processes)
    sched = Schedule(1e-3, 1e-2, 2, 20, 0.1)
    return TrainSession(acc, core, table, stream, sched, seed, ema_rate=0.9)


def _world_worker(path):
    acc = Accelerator(cpu=True)
    ds = tiny_dataset()
    s = _session(acc, ds, tiny_config())
    losses = [s.step()["loss"] for _ in range(4)]
    if acc.is_main_process:
        torch.save({"w": {k: v.clone() for k, v in s.core.state_dict().items()}, "t": s.table.weight.clone(),
                    "losses": losses}, path)


def test_two_processes_equal_one_process(tmp_path):
    run_two_processes("tests.test_train", "_world_worker", str(tmp_path / "two.pt"))
    two = torch.load(tmp_path / "two.pt")
    acc = Accelerator(cpu=True)
    s = _session(acc, tiny_dataset(), tiny_config())
    losses = [s.step()["loss"] for _ in range(4)]
    np.testing.assert_allclose(losses, two["losses"], rtol=1e-4)
    for k, v in s.core.state_dict().items():
        torch.testing.assert_close(v, two["w"][k], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(s.table.weight, two["t"], rtol=1e-4, atol=1e-5)
    assert (s.table.weight != 0).any()


def test_resume_equals_uninterrupted(tmp_path):
    ds = tiny_dataset()
    full = _session(Accelerator(cpu=True), ds, tiny_config())
    want = [full.step() for _ in range(6)]
    first = _session(Accelerator(cpu=True), ds, tiny_config())
    got = [first.step() for _ in range(3)]
    first.save_state(tmp_path / "state")
    second = _session(Accelerator(cpu=True), ds, tiny_config(), seed=0)
    second.load_state(tmp_path / "state")
    assert second.progress.step == 3
    got += [second.step() for _ in range(3)]
    assert [g["step"] for g in got] == [w["step"] for w in want]
    assert [g["lr"] for g in got] == [w["lr"] for w in want]
    np.testing.assert_allclose([g["loss"] for g in got], [w["loss"] for w in want], rtol=1e-5)
    for k, v in full.core.state_dict().items():
        torch.testing.assert_close(second.core.state_dict()[k], v)


def test_train_verb_writes_checkpoints_eval_and_plot(tmp_path):
    cfg = tiny_config(max_steps=6, eval_interval_steps=3, save_every_steps=2, max_eval_views=2)
    cfg.data.synthetic_tasks, cfg.data.synthetic_test_tasks, cfg.data.augmentations = 3, 2, 3
    summary = train(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert summary["steps"] == 6
    for p in ("best/model.safetensors", "last/config.json", "metrics.jsonl", "curves.png", "state/session.pt"):
        assert (run / p).exists(), p
    evals = [orjson.loads(line) for line in (run / "metrics.jsonl").read_bytes().splitlines() if b'"eval"' in line]
    assert [e["step"] for e in evals] == [3, 6]
    assert (run / "evals" / "step_0000006" / "submission.json").is_file()
    ck = load(run)
    assert ck.table.num_ids == ck.puzzles.end and ck.cfg.model.seq_len == cfg.data.canvas ** 2
    # running again resumes at the end: nothing more to do
    again = train(cfg, run, progress=False)
    assert again["steps"] == 6
    # curves on request (e.g. while a run is going)
    assert main(["plot", str(run), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 10_000
    assert main(["plot", str(tmp_path)]) == 2


def test_bad_global_batch_is_a_clear_error(tmp_path):
    from arc_trm.errors import ArcTrmError

    cfg = tiny_config(global_batch_size=7, max_steps=1)
    cfg.data.synthetic_tasks, cfg.data.synthetic_test_tasks = 2, 1

    class Two:
        num_processes = 2
        is_main_process = True
        process_index = 0

        def wait_for_everyone(self):
            pass
    with pytest.raises(ArcTrmError, match="not divisible"):
        train(cfg, tmp_path / "r", accelerator=Two(), progress=False)
