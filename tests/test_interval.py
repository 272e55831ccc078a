"""pass@2's 95 % interval over tasks, and the paired comparison of two submissions: wide where few tasks are
scored, as the binomial says it must be, and never "better" on a one-task difference over 8."""

import json

import numpy as np

from arc_trm.cli import main
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.infer.interval import binomial_interval, paired


def test_four_of_eight_is_anything_from_about_a_sixth_to_five_sixths():
    lo, hi = binomial_interval([1, 1, 1, 1, 0, 0, 0, 0])
    assert round(lo, 3) == 0.157 and round(hi, 3) == 0.843            # Clopper-Pearson, 4 of 8
    # at the edges it stays open: 0 of 8 is not "exactly 0", 8 of 8 not "exactly 1"
    assert binomial_interval([0] * 8) == (0.0, binomial_interval([0] * 8)[1]) and binomial_interval([0] * 8)[1] > 0.3
    assert binomial_interval([1] * 8)[0] < 0.7 and binomial_interval([1] * 8)[1] == 1.0
    assert binomial_interval([]) == (0.0, 0.0)
    # a task of two outputs with one solved counts half a success: between 3 and 4 of 8
    mid = binomial_interval([1, 1, 1, 0.5, 0, 0, 0, 0])
    assert binomial_interval([1, 1, 1, 0, 0, 0, 0, 0])[0] < mid[0] < lo


def test_the_interval_narrows_with_tasks_and_holds_the_true_rate():
    rng = np.random.default_rng(3)
    held, widths = 0, []
    for _ in range(400):                        # 400 tasks solved with probability 0.4 each
        lo, hi = binomial_interval(rng.random(400) < 0.4)
        held += lo <= 0.4 <= hi
        widths.append(hi - lo)
    assert held >= 372                          # at least 95 % of 400 (exact intervals are conservative), less 8
    assert 0.09 <= np.mean(widths) <= 0.105     # ±4.8 points: 2 × 1.96 × sqrt(0.24 / 400) = 0.096


def test_a_one_task_difference_over_eight_is_not_distinguishable():
    a = {f"t{i}": float(i < 5) for i in range(8)}
    b = {f"t{i}": float(i < 4) for i in range(8)}
    p = paired(a, b)
    assert (p.better, p.worse, p.difference) == (1, 0, 0.125) and not p.distinguishable
    assert "not distinguishable" in p.text("a", "b")
    # 30 tasks better and none worse over 400 is
    many = paired({f"t{i}": float(i < 60) for i in range(400)}, {f"t{i}": float(i < 30) for i in range(400)})
    assert many.distinguishable and "a - b: +0.0750" in many.text("a", "b")
    # equal on every task: nothing to tell apart
    assert paired(a, a).p_value == 1.0


def _solved(tmp_path, tasks, which, name):
    sols = json.loads((tmp_path / "t_solutions.json").read_text())
    wrong = [[0] * 5 for _ in range(5)]          # the answers are at most 4x4
    sub = {t.task_id: [{"attempt_1": a if k in which else wrong, "attempt_2": wrong} for a in sols[t.task_id]]
           for k, t in enumerate(tasks)}
    (tmp_path / name).write_text(json.dumps(sub))
    return str(tmp_path / name)


def test_score_and_report_print_the_interval_and_the_paired_verdict(tmp_path, capsys):
    tasks = make_tasks(8, seed=2, max_side=4)
    write_challenges(tasks, tmp_path / "t_challenges.json")
    four = _solved(tmp_path, tasks, {0, 1, 2, 3}, "four.json")
    five = _solved(tmp_path, tasks, {0, 1, 2, 3, 4}, "five.json")
    assert main(["score", four, "--solutions", str(tmp_path / "t_solutions.json")]) == 0
    out = capsys.readouterr().out
    assert "pass@2 0.5000 over 8 tasks (ARC Prize's score)" in out
    assert "pass@2 95 % interval 0.16-0.84 (exact binomial over tasks)" in out
    assert "pass@1 (top answer after voting, URM's \"pass@1\") 0.5000" in out
    assert main(["report", five, four, "--tasks", str(tmp_path / "t_challenges.json"),
                 "--out", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "five - four: +0.1250 (five better on 1 tasks, worse on 0); not distinguishable at 95 %" in out
    page = (tmp_path / "r.html").read_text()
    assert "Paired comparison" in page and "not distinguishable" in page
    assert "ARC Prize&#x27;s score" in page and "URM reports as" in page
