"""Candidate files and `arc-trm ensemble`: the candidates behind predict's attempts, a file
ensembled with itself giving its own attempts, two files giving a valid, complete submission, and
bad input as one line."""

import json

import pytest

from arc_trm.config import set_fields
from arc_trm.standalone.arc_format import submission_problems
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.infer.candidates import FORMAT
from arc_trm.infer.ensemble import combine, normalised
from arc_trm.train.run import train
from tests.helpers import tiny_config
from tests.test_cli_errors import cli, one_error_line


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A tiny run, 4 generated tasks with answers, and two candidate files: TTT off and on."""
    root = tmp_path_factory.mktemp("ens")
    cfg = set_fields(tiny_config(max_steps=4, eval_interval_steps=0, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "ttt.mode": "off", "predict.views_per_input": 4, "ttt.augmentations": 4})
    train(cfg, root / "run", progress=False)
    write_challenges(make_tasks(4, seed=8, prefix="e", max_side=6), root / "e_challenges.json")
    out = {}
    for name, ttt in (("a", "off"), ("b", "embeddings")):
        r = cli("predict", "--checkpoint", root / "run", "--tasks", root / "e_challenges.json", "--out",
                root / f"{name}.json", "--candidates", root / f"{name}.cand.json", "--ttt", ttt,
                "--set=ttt.embedding_steps=3", "--set=ttt.global_batch_size=4")
        assert r.returncode == 0, r.stderr
        out[name] = (json.loads((root / f"{name}.json").read_text()), json.loads((root / f"{name}.cand.json").read_text()))
    return root, out


def test_predict_writes_the_candidates_behind_its_attempts(predicted):
    _, out = predicted
    sub, cand = out["a"]
    assert cand["format"] == FORMAT and cand["source"]["strategy"] == "vote" and sorted(cand["tasks"]) == sorted(sub)
    for task_id, inputs in cand["tasks"].items():
        assert len(inputs) == len(sub[task_id])
        for k, entries in enumerate(inputs):
            assert entries and all(set(e) - {"fallback"} == {"grid", "votes", "score"} for e in entries)
            assert all(e["votes"] == 0 for e in entries if e.get("fallback"))       # the test input standing in
            assert entries[0]["grid"] == sub[task_id][k]["attempt_1"]
            distinct = [e["grid"] for i, e in enumerate(entries) if e["grid"] not in [x["grid"] for x in entries[:i]]]
            if len(distinct) >= 2:
                assert distinct[1] == sub[task_id][k]["attempt_2"]
            assert sum(e["votes"] for e in entries) <= 4            # at most the views of that input


def test_a_file_ensembled_with_itself_gives_its_own_attempts(predicted):
    root, out = predicted
    r = cli("ensemble", root / "a.cand.json", root / "a.cand.json", "--out", root / "aa.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((root / "aa.json").read_text()) == out["a"][0]


def test_two_files_give_a_valid_complete_submission_and_scores(predicted):
    root, out = predicted
    r = cli("ensemble", root / "a.cand.json", root / "b.cand.json", "--weights", "1", "2", "--out", root / "ab.json",
            "--tasks", root / "e_challenges.json")
    assert r.returncode == 0, r.stderr
    sub = json.loads((root / "ab.json").read_text())
    challenges = json.loads((root / "e_challenges.json").read_text())
    assert submission_problems(sub, {t: len(c["test"]) for t, c in challenges.items()}) == []
    lines = r.stdout.splitlines()
    assert sum(line.startswith("pass@2 ") for line in lines) == 3 and lines[-1].endswith("ensemble")


def test_a_task_that_only_some_files_cover_is_a_warning_and_tasks_fills_the_rest(predicted, tmp_path):
    root, out = predicted
    cand = out["b"][1]
    first = sorted(cand["tasks"])[0]
    cand = dict(cand, tasks={k: v for k, v in cand["tasks"].items() if k != first})
    (tmp_path / "part.json").write_text(json.dumps(cand))
    r = cli("ensemble", root / "a.cand.json", tmp_path / "part.json", "--out", tmp_path / "s.json")
    assert r.returncode == 0 and "1 of 4 tasks are in only some files" in r.stderr and "3 tasks" in r.stderr
    r = cli("ensemble", tmp_path / "part.json", "--out", tmp_path / "t.json", "--tasks", root / "e_challenges.json")
    assert r.returncode == 0 and "1 answered by fallback" in r.stdout
    assert first in json.loads((tmp_path / "t.json").read_text())


@pytest.mark.parametrize("case", ["format", "grid", "weights", "empty", "votes"])
def test_bad_candidate_input_is_one_line_and_writes_nothing(predicted, tmp_path, case):
    root, out = predicted
    cand = json.loads(json.dumps(out["a"][1]))
    task = sorted(cand["tasks"])[0]
    args = []
    if case == "format":
        cand["format"] = "other/1"
    elif case == "grid":
        cand["tasks"][task][0][0]["grid"] = [[1, 2], [3]]
    elif case == "weights":
        args = ["--weights", "1", "2"]
    elif case == "empty":
        cand["tasks"] = {}
    elif case == "votes":
        cand["tasks"][task][0][0]["votes"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(cand))
    r = cli("ensemble", tmp_path / "bad.json", "--out", tmp_path / "s.json", *args)
    want = {"format": "not a candidate file (format 'other/1'", "grid": "ragged grid", "weights": "2 weights for 1",
            "empty": "holds no tasks", "votes": "votes must be a whole number"}[case]
    line = one_error_line(r, want)
    assert case == "weights" or "bad.json" in line
    assert not (tmp_path / "s.json").exists()


def test_scores_are_normalised_per_input_and_ties_go_to_the_earlier_file():
    assert normalised([3.0, 1.0]) == [0.75, 0.25] and normalised([0.0, 0.0]) == [0.5, 0.5]
    assert abs(sum(normalised([-1.0, -3.0])) - 1) < 1e-12 and normalised([-1.0, -3.0])[0] > 0.5
    a = {"t": [[{"grid": [[1]], "votes": 1, "score": 1.0}, {"grid": [[2]], "votes": 1, "score": 1.0}]]}
    b = {"t": [[{"grid": [[2]], "votes": 3, "score": 3.0}, {"grid": [[1]], "votes": 3, "score": 3.0}]]}
    assert combine([("a", a), ("b", b)], [1.0, 1.0]).ranked["t"][0] == [[[1]], [[2]]]     # tie: a's order
    assert combine([("a", a), ("b", b)], [1.0, 0.0]).ranked["t"][0] == [[[1]], [[2]]]


def test_a_fallback_entry_does_not_outvote_a_grid_the_model_produced():
    """A checkpoint that ran out of time on an input has only the test input there, marked
    fallback: the other checkpoint's answer wins, whatever the weights, and the fallback grid
    still fills attempt_2 when nothing else is left."""
    inp = [[5, 5], [5, 5]]
    answered = {"t": [[{"grid": [[1]], "votes": 3, "score": 0.3}]]}
    timed_out = {"t": [[{"grid": inp, "votes": 0, "score": 0.0, "fallback": True}]]}
    assert combine([("late", timed_out), ("ok", answered)], [5.0, 1.0]).ranked["t"][0] == [[[1]], inp]
    # without the mark the same entry would have won: the weight is what the flag removes
    unmarked = {"t": [[{"grid": inp, "votes": 0, "score": 0.0}]]}
    assert combine([("late", unmarked), ("ok", answered)], [5.0, 1.0]).ranked["t"][0][0] == inp
    # a file of only fallback entries, ensembled with itself, still gives its own attempts
    both = {"t": [[{"grid": [[2]], "votes": 0, "score": 0.0, "fallback": True},
                   {"grid": [[3]], "votes": 0, "score": 0.0, "fallback": True}]]}
    assert combine([("x", both), ("x", both)], [1.0, 1.0]).ranked["t"][0] == [[[2]], [[3]]]
