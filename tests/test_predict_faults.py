"""A submission is always written, valid and complete: faults on the real predict path."""

import json
from pathlib import Path

import pytest
import torch

from arc_trm.cli import main
from arc_trm.config import set_fields
from arc_trm.standalone.arc_format import submission_problems
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.errors import ArcTrmError
from arc_trm.infer.submission import read
from arc_trm.solve.predict import predict
from arc_trm.train.run import train
from tests.helpers import run_two_processes, tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    cfg = set_fields(tiny_config(max_steps=2, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "ttt.embedding_steps": 2, "ttt.full_steps": 2, "ttt.augmentations": 2,
                      "ttt.global_batch_size": 4, "predict.views_per_input": 3})
    train(cfg, root / "run", progress=False)
    tasks = make_tasks(4, seed=5, prefix="new")
    write_challenges(tasks, root / "new_challenges.json", with_solutions=False)
    raw = json.loads((root / "new_challenges.json").read_text())
    raw["broken"] = {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}, {"input": [[2]]}]}
    (root / "new_challenges.json").write_text(json.dumps(raw))
    return root


def _check(sub, root):
    raw = json.loads((root / "new_challenges.json").read_text())
    assert submission_problems(sub) == []
    assert set(sub) == set(raw)
    for tid, task in raw.items():
        assert len(sub[tid]) == len(task["test"])


def test_bad_task_and_raising_task_still_give_complete_valid_file(run_dir, monkeypatch):
    from arc_trm.infer.vote import InputCandidates

    real = InputCandidates.ranked

    def raising(self, strategy):
        if self.task_id == "new0050001":
            raise RuntimeError("selection blew up")
        return real(self, strategy)
    monkeypatch.setattr(InputCandidates, "ranked", raising)
    res = predict(run_dir / "run", str(run_dir / "new_challenges.json"), run_dir / "a.json")
    assert any("broken" in e for e in res.skipped)
    assert any("new0050001" in e and "selection blew up" in e for e in res.skipped)
    _check(read(run_dir / "a.json"), run_dir)
    # the malformed task still answers each readable test input with itself, as the notebook does
    assert read(run_dir / "a.json")["broken"][1] == {"attempt_1": [[2]], "attempt_2": [[2]]}


def test_nan_model_output(run_dir, monkeypatch):
    """A model whose outputs are all NaN predicts nothing decodable: every task keeps a valid
    answer (the fallback), and the poisoned model really ran (its views were predicted)."""
    from arc_trm.model import checkpoint

    real, poisoned_models = checkpoint.load, []

    def poisoned(*a, **k):
        ck = real(*a, **k)
        with torch.no_grad():
            for p in ck.model.parameters():
                p.fill_(float("nan"))
        poisoned_models.append(ck.model)
        return ck
    monkeypatch.setattr(checkpoint, "load", poisoned)
    res = predict(run_dir / "run", str(run_dir / "new_challenges.json"), run_dir / "b.json", ["ttt.mode=\"off\""])
    sub = read(run_dir / "b.json")
    _check(sub, run_dir)
    assert len(poisoned_models) == 1 and res.metrics["views"] > 0
    assert all(torch.isnan(p).all() for p in poisoned_models[0].parameters())
    raw = json.loads((run_dir / "new_challenges.json").read_text())
    for tid, task in raw.items():      # nothing decodes from NaN logits: the test inputs come back
        if tid != "broken":
            assert [e["attempt_1"] for e in sub[tid]] == [t["input"] for t in task["test"]]


def test_time_budget_expiring(run_dir):
    res = predict(run_dir / "run", str(run_dir / "new_challenges.json"), run_dir / "c.json", time_budget_s=1e-3)
    _check(read(run_dir / "c.json"), run_dir)
    assert res.metrics.get("views", 0) == 0


def test_cli_predict_and_score(run_dir, capsys):
    assert main(["predict", "--checkpoint", str(run_dir / "run"), "--tasks", str(run_dir / "new_challenges.json"),
                 "--out", str(run_dir / "d.json"), "--ttt", "embeddings"]) == 0
    _check(read(run_dir / "d.json"), run_dir)


def _predict_worker(path):
    root = Path(path)
    predict(root / "run", str(root / "new_challenges.json"), root / "two_processes.json")


def test_two_processes_predict_what_one_process_predicts(run_dir):
    """The Kaggle job runs one predict process per GPU: TTT on sharded batches and inference on
    sharded views must give the submission of a single process."""
    one = predict(run_dir / "run", str(run_dir / "new_challenges.json"), run_dir / "one_process.json")
    run_two_processes("tests.test_predict_faults", "_predict_worker", str(run_dir))
    assert read(run_dir / "two_processes.json") == one.submission


def test_ttt_phases_share_the_time_by_their_configured_flops():
    from arc_trm.clock import phase_seconds_left
    # equal FLOPs: the first phase gets half of the time to TTT's end, the last all that is left to it
    assert phase_seconds_left([100.0, 100.0], 0, spent_s=0.0, ttt_left_s=10.0) == 5.0
    assert phase_seconds_left([100.0, 100.0], 1, spent_s=0.0, ttt_left_s=4.0) == 4.0
    # a dearer second phase (full fine-tune, 3x the FLOPs per step) takes three quarters
    assert phase_seconds_left([100.0, 300.0], 0, spent_s=0.0, ttt_left_s=8.0) == 2.0
    # a re-plan part-way counts the time spent: 2 s spent of a 5 s share, 3 s to go; past it, negative
    assert phase_seconds_left([1.0, 1.0], 0, spent_s=2.0, ttt_left_s=8.0) == 3.0
    assert phase_seconds_left([1.0, 1.0], 0, spent_s=6.0, ttt_left_s=2.0) == -2.0
    # TTT's time already gone: nothing more
    assert phase_seconds_left([1.0, 1.0], 1, spent_s=0.0, ttt_left_s=-1.0) == 0.0


def test_time_budget_plans_both_ttt_phases(run_dir):
    """Far more TTT steps than the budget allows: both phases of embeddings_then_full still run
    (the first must not eat the second), and the file is complete."""
    res = predict(run_dir / "run", str(run_dir / "new_challenges.json"), run_dir / "e.json",
                  ["ttt.embedding_steps=100000", "ttt.full_steps=100000"], time_budget_s=6.0)
    _check(read(run_dir / "e.json"), run_dir)
    steps = res.timings["ttt"]["steps"]
    print(f"TTT steps within a 6 s budget: {steps}; ttt {res.timings['ttt_s']:.1f}s, total {res.timings['total_s']:.1f}s")
    assert steps["embeddings"] > 1 and steps["full"] > 1
    assert steps["full"] >= steps["embeddings"] // 2


def test_the_budget_counts_from_when_the_job_launched_predict(run_dir, monkeypatch):
    """The Kaggle job kills predict at its budget counted from the launch; the interpreter, accelerate's
    launcher and torch's import come first (seconds on a loaded machine). Predict counts from the time
    the job passes, so it finishes by the job's clock, not a few seconds after it."""
    import time
    from arc_trm.standalone import job
    from arc_trm.clock import STARTED_AT_ENV, started_at as command_started_at
    assert job.STARTED_AT_ENV == STARTED_AT_ENV
    launched, budget = time.time() - 3.0, 8.0     # 3 s went to starting up
    monkeypatch.setenv(STARTED_AT_ENV, f"{launched:.3f}")
    res = predict(run_dir / "run", str(run_dir / "new_challenges.json"), run_dir / "late.json",
                  ["ttt.embedding_steps=100000", "ttt.full_steps=100000"], time_budget_s=budget,
                  progress=False, started_at=command_started_at())
    _check(read(run_dir / "late.json"), run_dir)
    assert time.time() - launched <= budget + 1.0
    assert res.timings["total_s"] >= 3.0 and res.metrics["inputs_voted"] == res.metrics["test_inputs"]
    monkeypatch.setenv(STARTED_AT_ENV, "soon")
    with pytest.raises(ArcTrmError, match="ARC_TRM_STARTED_AT='soon'"):
        command_started_at()


def test_bad_tasks_in_a_folder_still_get_entries(run_dir, tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    good = json.loads((run_dir / "new_challenges.json").read_text())
    for tid in list(good)[:2]:
        (folder / f"{tid}.json").write_text(json.dumps(good[tid]))
    (folder / "unreadable.json").write_text("{")
    (folder / "ragged.json").write_text(json.dumps({"train": [{"input": [[1, 2], [3]], "output": [[1]]}],
                                                    "test": [{"input": [[1]]}, {"input": [[2]]}]}))
    res = predict(run_dir / "run", str(folder), tmp_path / "f.json", ["ttt.mode=\"off\""])
    sub = read(tmp_path / "f.json")
    assert submission_problems(sub) == [] and set(sub) == set(list(good)[:2]) | {"unreadable", "ragged"}
    assert len(sub["ragged"]) == 2 and len(sub["unreadable"]) == 1
    assert any("unreadable" in e for e in res.skipped) and any("ragged" in e for e in res.skipped)


@pytest.mark.parametrize("slowdown", ["1", "3", "3@2", "8@0-1"])
def test_budget_holds_at_any_speed_with_every_input_voted(run_dir, monkeypatch, slowdown):
    """Every ACT step made `slowdown` times slower (ARC_TRM_SLOWDOWN, what `rehearse --slowdown` sets),
    from the start, from 2 s in (after TTT planned its steps), or only for TTT's first second (a busy
    neighbour that stops while TTT first times itself; counted from TTT's start, which comes 0.5 to 2 s
    into predict depending on the machine): predict measures its own rates as it goes,
    ends inside its budget with every test input voted on, and does not leave much of the budget
    unused because it once measured a slow spell (the reserve for inference sized once from that
    spell did: 3.6 s of 6). The bounds are the budget itself, so a machine busy with other work is
    one more slowdown, which predict measures too."""
    monkeypatch.setenv("ARC_TRM_SLOWDOWN", slowdown)
    import time as _time
    from arc_trm.solve import predict as predict_module
    monkeypatch.setattr("arc_trm.slowdown.STARTED", _time.time())
    if "-" in slowdown:       # the spell starts with TTT
        real_ttt = predict_module.test_time_train

        def ttt_in_a_spell(*args, **kwargs):
            monkeypatch.setattr("arc_trm.slowdown.STARTED", _time.time())
            return real_ttt(*args, **kwargs)
        monkeypatch.setattr(predict_module, "test_time_train", ttt_in_a_spell)
    budget = 6.0
    out = run_dir / f"slow{slowdown.replace('@', 'at')}.json"
    res = predict(run_dir / "run", str(run_dir / "new_challenges.json"), out,
                  ["ttt.embedding_steps=100000", "ttt.full_steps=100000", "predict.views_per_input=0",
                   "ttt.augmentations=8", "predict.batch_size=8"], time_budget_s=budget, progress=False)
    _check(read(out), run_dir)
    steps = res.timings["ttt"]["steps"]
    print(f"{slowdown}x slower: TTT {steps} in {res.timings['ttt_s']:.1f}s, {res.metrics['views']} views in "
          f"{res.timings['inference_s']:.1f}s, total {res.timings['total_s']:.1f}s of {budget}s")
    assert res.timings["total_s"] <= budget + 1.0
    if "-" in slowdown:   # the slow spell is over: the time once kept for inference went to TTT, not idle
        assert res.timings["total_s"] >= budget * 0.7
    assert res.metrics["inputs_voted"] == res.metrics["test_inputs"] > 0
    assert steps["embeddings"] > 1 and steps["full"] > 1
