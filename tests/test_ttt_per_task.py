"""``ttt.scope = "task"``: VARC's test-time training, one fine-tuning per unseen task from the
checkpoint's weights, on the real predict path."""

import json

import numpy as np
import pytest
import torch

from arc_trm.config import set_fields
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.infer.submission import read
from arc_trm.solve import predict as predict_module
from arc_trm.solve.predict import predict
from arc_trm.solve.ttt import ttt_groups
from arc_trm.standalone.arc_format import submission_problems
from arc_trm.train.run import train
from tests.helpers import tiny_config

SETTINGS = ["ttt.mode=full", "ttt.full_steps=3", "ttt.augmentations=2", "ttt.global_batch_size=4",
            "predict.views_per_input=2", "predict.batch_size=8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("per_task")
    cfg = set_fields(tiny_config(max_steps=2, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2})
    train(cfg, root / "run", progress=False)
    # task a sorts first in every file; b and c are its neighbours in two files
    a, b, c = (make_tasks(1, seed=s, prefix=p, max_side=6)[0] for s, p in ((1, "a"), (2, "b"), (3, "c")))
    write_challenges([a, b], root / "ab_challenges.json")
    write_challenges([a, c], root / "ac_challenges.json")
    write_challenges([b, c, a], root / "bca_challenges.json")
    return root, a.task_id


def _traced(monkeypatch):
    """Wrap TTT: per call, the tasks it trained on, the dense weights it started from and ended with."""
    calls = []
    real = predict_module.test_time_train

    def traced(runner, ds, task_mask, *args, **kwargs):
        before = {k: v.clone() for k, v in runner.model.state_dict().items()}
        res = real(runner, ds, task_mask, *args, **kwargs)
        calls.append(([ds.table.task_ids[t] for t in np.flatnonzero(task_mask)], before,
                      {k: v.clone() for k, v in runner.model.state_dict().items()}))
        return res
    monkeypatch.setattr(predict_module, "test_time_train", traced)
    return calls


def _same(x: dict, y: dict) -> bool:
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_each_unseen_task_is_fine_tuned_alone_from_the_checkpoints_weights(run_dir, monkeypatch):
    root, a = run_dir
    calls = _traced(monkeypatch)
    out = root / "abc.json"
    res = predict(root / "run", str(root / "bca_challenges.json"), out, SETTINGS + ["ttt.scope=task"],
                  progress=False)
    raw = json.loads((root / "bca_challenges.json").read_text())
    assert submission_problems(read(out), {tid: len(t["test"]) for tid, t in raw.items()}) == []
    assert [len(tasks) for tasks, _, _ in calls] == [1, 1, 1]
    assert sorted(t for tasks, _, _ in calls for t in tasks) == sorted(res.submission)
    start = calls[0][1]
    assert all(_same(before, start) for _, before, _ in calls)          # every task starts from the checkpoint
    assert not _same(calls[0][2], start)                                   # and TTT moved the weights
    assert res.timings["ttt"]["steps"] == {"full": 9} and res.timings["ttt"]["runs"] == 3
    assert res.metrics["inputs_voted"] == res.metrics["test_inputs"] == 3


def test_a_tasks_fine_tuning_does_not_depend_on_the_other_tasks(run_dir, monkeypatch):
    """Per task, task a's weights after TTT are the same bits beside b as beside c; with one TTT over
    every task (scope "all") they are not (the check can fail)."""
    root, a = run_dir
    after = {}
    for scope in ("task", "all"):
        for name in ("ab", "ac"):
            calls = _traced(monkeypatch)
            predict(root / "run", str(root / f"{name}_challenges.json"), root / f"{scope}{name}.json",
                    SETTINGS + [f"ttt.scope={scope}"], progress=False)
            after[scope, name] = next(end for tasks, _, end in calls if a in tasks)
    assert _same(after["task", "ab"], after["task", "ac"])
    assert not _same(after["all", "ab"], after["all", "ac"])


def test_a_budget_is_shared_so_every_task_gets_its_fine_tuning_and_its_views(run_dir, monkeypatch):
    root, _ = run_dir
    calls = _traced(monkeypatch)
    budget = 8.0
    res = predict(root / "run", str(root / "bca_challenges.json"), root / "budget.json",
                  ["ttt.mode=full", "ttt.full_steps=100000", "ttt.augmentations=4", "ttt.global_batch_size=4",
                   "ttt.scope=task", "predict.batch_size=8"], time_budget_s=budget, progress=False)
    assert res.timings["total_s"] <= budget + 1.0
    assert len(calls) == 3 and not any(_same(before, end) for _, before, end in calls)   # each task trained
    assert res.metrics["inputs_voted"] == res.metrics["test_inputs"] == 3


def test_groups_put_known_tasks_first_and_each_unseen_task_alone():
    known = np.array([False, True, False, True])
    groups = ttt_groups(known, "task", training=True)
    assert [(p.tolist(), t.tolist()) for p, t in groups] == [
        ([False, True, False, True], [False] * 4),
        ([True, False, False, False], [True, False, False, False]),
        ([False, False, True, False], [False, False, True, False])]
    for scope in ("task", "all"):          # no TTT, or nothing unseen: one group, nothing trained
        for k, train in ((known, False), (np.ones(3, bool), True)):
            [(p, t)] = ttt_groups(k, scope, train)
            assert p.all() and not t.any()
    [(p, t)] = ttt_groups(known, "all", True)
    assert p.all() and t.tolist() == (~known).tolist()


def test_a_ttt_batch_the_device_cannot_hold_runs_in_the_largest_micro_batches_that_fit(run_dir, monkeypatch):
    """ttt.micro_batch_size 0 (the default): TTT's batch is cut as training's is, into the largest micro-batches
    the memory estimate fits: the same weights as asking for them; a micro-batch too large is refused."""
    from arc_trm.errors import ArcTrmError
    from arc_trm.model import memory
    from arc_trm.solve.ttt import ttt_split
    root, _ = run_dir
    monkeypatch.setattr(memory, "bytes_per_sample", lambda *args: 2 ** 30)      # 1 GiB a sample
    monkeypatch.setattr(memory, "available_bytes", lambda device: int(3.5 * 2 ** 30))
    seen = []
    real_split = ttt_split
    monkeypatch.setattr(predict_module, "ttt_split", lambda *a: seen.append(real_split(*a)) or seen[-1])
    after = {}
    for name, extra in (("auto", []), ("two", ["ttt.micro_batch_size=2"])):
        calls = _traced(monkeypatch)
        predict(root / "run", str(root / "bca_challenges.json"), root / f"micro-{name}.json",
                SETTINGS + ["ttt.scope=all"] + extra, progress=False)
        after[name] = calls[0][2]
    assert [(s.micro, s.accumulation) for s in seen] == [(2, 2), (2, 2)]
    assert _same(after["auto"], after["two"])
    with pytest.raises(ArcTrmError, match=r"micro-batch 4 needs about 4.0 GiB .*ttt.micro_batch_size=2 fits"):
        predict(root / "run", str(root / "bca_challenges.json"), root / "micro-four.json",
                SETTINGS + ["ttt.scope=all", "ttt.micro_batch_size=4"], progress=False)
