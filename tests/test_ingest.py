import json

import numpy as np
import pytest

from arc_trm.cli import main
from arc_trm.data.batches import PredictionViews, TrainStream
from arc_trm.data.canvas import decode
from arc_trm.data.augment import invert_plan
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.ingest import build_dataset
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.data.tasks import load_spec, load_specs
from arc_trm.errors import ArcTrmError

GOOD = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}],
        "test": [{"input": [[5, 6], [7, 8]]}]}


def _bad_variants():
    ragged = {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]}
    ten = {"train": [{"input": [[10]], "output": [[1]]}], "test": [{"input": [[1]]}]}
    neg = {"train": [{"input": [[1]], "output": [[-1]]}], "test": [{"input": [[1]]}]}
    big = {"train": [{"input": [[1] * 31] * 31, "output": [[1]]}], "test": [{"input": [[1]]}]}
    empty_train = {"train": [], "test": [{"input": [[1]]}]}
    no_test = {"train": [{"input": [[1]], "output": [[1]]}]}
    return {"ragged": (ragged, "ragged"), "ten": (ten, "0..9"), "neg": (neg, "0..9"),
            "big": (big, "at most 30x30"), "emptytrain": (empty_train, "non-empty"),
            "notest": (no_test, "missing 'test'")}


@pytest.mark.parametrize("case", sorted(_bad_variants()))
def test_bad_task_in_folder_is_reported_and_others_ingest(tmp_path, case):
    raw, reason = _bad_variants()[case]
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / f"bad_{case}.json").write_text(json.dumps(raw))
    errors = []
    tasks = load_specs([str(tmp_path)], errors.append)
    assert [t.task_id for t in tasks] == ["good"]
    assert len(errors) == 1
    msg = str(errors[0])
    assert f"bad_{case}" in msg and reason in msg


def test_truncated_json_and_non_json_file(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    (tmp_path / "cut.json").write_text(json.dumps(GOOD)[:30])
    (tmp_path / "notes.txt").write_text("hello")
    errors = []
    tasks = load_specs([str(tmp_path)], errors.append)
    assert [t.task_id for t in tasks] == ["good"]
    msgs = sorted(str(e) for e in errors)
    assert any("cut.json" in m and "not valid JSON" in m for m in msgs)
    assert any("notes.txt" in m and "not a .json" in m for m in msgs)


def test_solutions_count_mismatch_and_pair_named(tmp_path):
    ch = {"aaa": GOOD, "bbb": GOOD}
    sol = {"aaa": [[[1]]], "bbb": [[[1]], [[2]]]}
    (tmp_path / "x_challenges.json").write_text(json.dumps(ch))
    (tmp_path / "x_solutions.json").write_text(json.dumps(sol))
    errors = []
    tasks = load_specs([str(tmp_path / "x_challenges.json")], errors.append)
    assert [t.task_id for t in tasks] == ["aaa"]
    assert tasks[0].test_outputs[0].tolist() == [[1]]
    assert "bbb" in str(errors[0]) and "2 outputs for 1 test inputs" in str(errors[0])


def test_error_names_file_task_and_pair(tmp_path):
    bad = {"train": [{"input": [[1]], "output": [[1]]}, {"input": [[1, 2], [3]], "output": [[1]]}],
           "test": [{"input": [[1]]}]}
    (tmp_path / "t.json").write_text(json.dumps({"zzz": bad}))
    report = load_spec(str(tmp_path / "t.json"))
    msg = str(report.errors[0])
    assert "t.json" in msg and "zzz" in msg and "train pair 1 input" in msg


def test_duplicate_ids_identical_ok_different_error(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "t1.json").write_text(json.dumps(GOOD))
    (b / "t1.json").write_text(json.dumps(GOOD))
    assert len(load_specs([str(a), str(b)], lambda e: None)) == 1
    other = json.loads(json.dumps(GOOD))
    other["test"][0]["input"] = [[0]]
    (b / "t1.json").write_text(json.dumps(other))
    errors = []
    assert len(load_specs([str(a), str(b)], errors.append)) == 1
    assert "duplicate task id" in str(errors[0])


def test_unknown_spec_raises():
    with pytest.raises(ArcTrmError, match="bundled"):
        load_spec("/no/such/thing")


def test_puzzle_ids_stable_across_runs(tmp_path):
    a = build_dataset(["arc1-train"], ["arc1-eval"], 20, seed=7, on_error=None)
    b = build_dataset(["arc1-train"], ["arc1-eval"], 20, seed=7, on_error=None)
    assert a.table.same_as(b.table)
    assert a.table.base == 1 and a.num_puzzle_ids == a.table.num_plans + 1
    c = build_dataset(["arc1-train"], ["arc1-eval"], 20, seed=8, on_error=None)
    assert not a.table.same_as(c.table)
    a.save(tmp_path / "ds")
    assert ArcDataset.load(tmp_path / "ds").table.same_as(a.table)


def test_cli_ingest_writes_dataset_and_test_views_invert(tmp_path):
    tasks = make_tasks(6, seed=0)
    write_challenges(tasks[:4], tmp_path / "tr_challenges.json")
    write_challenges(tasks[4:], tmp_path / "te_challenges.json")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text("{")
    rc = main(["ingest", "--tasks", str(tmp_path / "tr_challenges.json"), "--tasks", str(tmp_path / "bad"),
               "--test-tasks", str(tmp_path / "te_challenges.json"), "--augmentations", "5",
               "--out", str(tmp_path / "ds")])
    assert rc == 0
    ds = ArcDataset.load(tmp_path / "ds")
    m = ds.manifest
    assert m["num_tasks"] == 6 and m["num_test_tasks"] == 2 and m["num_test_examples"] == 2
    # every test view, decoded and inverted, gives back the original test input
    views = PredictionViews.of(ds)
    assert len(views) == sum(len(ds.table.ids_of_task(t)) for t in np.flatnonzero(ds.is_test_task))
    for idx, batch in views.batches(ds, 4):
        for k, v in enumerate(idx):
            if v < 0:
                continue
            _, d, perm = ds.table.plan_of(int(batch["puzzle_ids"][k]))
            got = invert_plan(decode(batch["inputs"][k]), d, perm)
            assert np.array_equal(got, ds.grid(ds.ex_input[views.rows[v]]))
    # round-robin: the first views cover every test input once, so a deadline cut spares none
    inputs = ds.test_rows()
    assert sorted(views.rows[:len(inputs)].tolist()) == sorted(np.asarray(inputs).tolist())


def test_train_stream_is_sharded_resumable_and_equal_across_world_sizes():
    ds = build_dataset([], [], 10, 0, synthetic_tasks=5, synthetic_test_tasks=2, on_error=None)
    full = TrainStream(ds, 8, seed=3)
    halves = [TrainStream(ds, 8, seed=3, rank=r, world=2) for r in range(2)]
    for _ in range(6):
        f = full.next_batch()
        h = [s.next_batch() for s in halves]
        for key in f:
            assert np.array_equal(f[key], np.concatenate([x[key] for x in h]))
    # resume from a saved state gives the same next batch
    s1 = TrainStream(ds, 8, seed=3)
    for _ in range(3):
        s1.next_batch()
    s2 = TrainStream(ds, 8, seed=3)
    s2.state = type(s1.state)(**vars(s1.state))
    a, b = s1.next_batch(), s2.next_batch()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # labels ignore PAD, inputs are valid tokens
    assert (a["labels"][a["inputs"] == 0] == -100).any()
    assert a["inputs"].max() <= 11
