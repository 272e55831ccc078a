"""pass@2's 95 % interval over tasks: wide where few tasks are scored, as the binomial says it must be."""

import numpy as np

from arc_trm.cli import main
from arc_trm.infer.interval import bootstrap_interval
from arc_trm.infer.score import score_submission


def test_four_of_eight_is_anything_from_about_a_tenth_to_nine_tenths():
    lo, hi = bootstrap_interval([1, 1, 1, 1, 0, 0, 0, 0])
    # the exact (Clopper-Pearson) 95 % interval for 4 of 8 is 0.16-0.84; a bootstrap is a little narrower
    assert 0.1 <= lo <= 0.2 and 0.8 <= hi <= 0.9
    assert bootstrap_interval([1, 1, 1, 1, 0, 0, 0, 0]) == (lo, hi)          # the same scores print the same
    assert bootstrap_interval([0] * 8) == (0.0, 0.0) and bootstrap_interval([]) == (0.0, 0.0)


def test_the_interval_narrows_with_tasks_and_holds_the_true_rate():
    rng = np.random.default_rng(3)
    held, widths = 0, []
    for _ in range(200):                        # 400 tasks solved with probability 0.4 each
        lo, hi = bootstrap_interval(rng.random(400) < 0.4, draws=2000, seed=int(rng.integers(1 << 30)))
        held += lo <= 0.4 <= hi
        widths.append(hi - lo)
    assert held >= 180                          # about 95 % of 200
    assert 0.08 <= np.mean(widths) <= 0.11      # ±4.8 points: 2 × 1.96 × sqrt(0.24 / 400) = 0.096


def test_score_prints_the_interval_with_pass_at_2(tmp_path, capsys):
    import json
    from arc_trm.data.synthetic import make_tasks, write_challenges
    tasks = make_tasks(8, seed=2, max_side=4)
    write_challenges(tasks, tmp_path / "t_challenges.json")
    sols = json.loads((tmp_path / "t_solutions.json").read_text())
    wrong = [[0] * 5 for _ in range(5)]          # the answers are at most 4x4
    sub = {t.task_id: [{"attempt_1": a if k < 4 else wrong, "attempt_2": wrong} for a in sols[t.task_id]]
           for k, t in enumerate(tasks)}
    (tmp_path / "s.json").write_text(json.dumps(sub))
    assert main(["score", str(tmp_path / "s.json"), "--solutions", str(tmp_path / "t_solutions.json")]) == 0
    out = capsys.readouterr().out
    assert "pass@2 0.5000 over 8 tasks" in out
    lo, hi = bootstrap_interval(score_submission(sub, sols).per_task.values())
    assert f"95 % interval of pass@2 over these 8 tasks {lo:.2f}-{hi:.2f} (bootstrap over tasks)" in out
