import numpy as np
import pytest

from arc_trm.data.batches import PredictionViews, render_examples
from arc_trm.data.ingest import build_dataset
from arc_trm.standalone.arc_format import submission_problems
from arc_trm.infer.inference import ViewPredictions
from arc_trm.infer.score import score_submission
from arc_trm.infer.submission import expected_entries, submission_from
from arc_trm.infer.vote import Candidate, InputCandidates, choose_attempts, collect, grid_key


def _fake_predictions(ds, right_fraction=1.0, seed=0):
    """A fake model: every view returns the ground truth in that view's frame (or, for the
    wrong views, a grid of its own)."""
    views = PredictionViews.of(ds)
    labels = np.zeros((len(views), ds.canvas ** 2), dtype=np.uint8)
    for s in range(0, len(views), 512):
        b = render_examples(ds, views.rows[s:s + 512], views.plans[s:s + 512])
        labels[s:s + 512] = np.where(b["labels"] < 0, 0, b["labels"])
    rng = np.random.default_rng(seed)
    # the first `right_fraction` of every 10 consecutive views of a test input are right
    _, first = np.unique(views.rows, return_index=True)
    position = np.arange(len(views)) - first[np.searchsorted(views.rows[first], views.rows)]
    wrong = (position % 10) >= round(right_fraction * 10)
    for v in np.flatnonzero(wrong):  # each wrong view: a distinct random 3x3 grid
        c = np.zeros((ds.canvas, ds.canvas), np.uint8)
        c[:3, :3] = rng.integers(2, 12, size=(3, 3))
        c[3, :3] = 1
        c[:3, 3] = 1
        labels[v] = c.reshape(-1)
    return ViewPredictions(views, labels, rng.random(len(views)).astype(np.float32), None,
                           np.ones(len(views), bool))


def test_fake_perfect_model_scores_100_on_arc1_eval():
    ds = build_dataset([], ["arc1-eval"], 8, 0, on_error=None)
    cands = collect(ds, _fake_predictions(ds), score_logprobs=False)
    tasks = ds.test_tasks()
    sub, _ = submission_from(tasks, cands, "vote")
    assert not submission_problems(sub, expected_entries(tasks))
    sols = {t.task_id: [o.tolist() for o in t.test_outputs] for t in tasks}
    assert len(sols) == 400
    assert score_submission(sub, sols).score == 1.0


def test_minority_right_views_still_win_the_vote():
    ds = build_dataset([], ["arc1-eval"], 30, 0, on_error=None)
    ds_tasks = ds.test_tasks()
    cands = collect(ds, _fake_predictions(ds, right_fraction=0.3, seed=1), score_logprobs=False)
    sub, _ = submission_from(ds_tasks, cands, "vote")
    sols = {t.task_id: [o.tolist() for o in t.test_outputs] for t in ds_tasks}
    # tasks with at least 10 views per input: the right answer (3 in 10 views) wins
    many = [t.task_id for t in ds_tasks if len(ds.table.ids_of_task(ds.table.task_ids.index(t.task_id))) >= 10]
    res = score_submission({k: sub[k] for k in many}, {k: sols[k] for k in many})
    assert len(many) > 300 and res.score == 1.0


def _ic(specs):
    ic = InputCandidates("t", 0)
    for name, count, halt, logp in specs:
        g = np.full((1, 1), name, np.uint8)
        ic.candidates[grid_key(g)] = Candidate(g, count, halt * count, logp, 4)
    return ic


def test_selection_strategies_on_hand_built_candidates():
    # grid 1: most votes, poor likelihood; grid 2: fewer votes, best likelihood; 3: tie-breaker
    ic = _ic([(1, 10, 0.2, -40.0), (2, 6, 0.9, -4.0), (3, 10, 0.9, -60.0)])
    top = lambda s: [int(c.grid[0, 0]) for c in ic.ranked(s)]
    assert top("vote") == [3, 1, 2]          # count, ties by mean halting confidence
    assert top("poe") == [2, 1, 3]           # summed log-probability over views
    # vote+poe: log(count) + mean log-prob: 2 → log6 − 1 ≫ others
    assert top("vote+poe")[0] == 2 and top("vote+poe")[1] == 1
    with pytest.raises(ValueError):
        ic.ranked("magic")


def _independent_score(sub, sols):
    total = 0.0
    for tid, answers in sols.items():
        ok = 0
        for i, a in enumerate(answers):
            try:
                e = sub[tid][i]
                ok += e["attempt_1"] == a or e["attempt_2"] == a
            except (KeyError, IndexError, TypeError):
                pass
        total += ok / len(answers)
    return total / len(sols)


def test_score_agrees_with_independent_implementation():
    sols = {"a": [[[1]]], "b": [[[1, 2]], [[3]]], "c": [[[0]]]}
    perfect = {k: [{"attempt_1": [[9]], "attempt_2": a} for a in v] for k, v in sols.items()}
    partial = {"a": [{"attempt_1": [[1]], "attempt_2": [[1]]}],
               "b": [{"attempt_1": [[1, 2]], "attempt_2": [[0]]}, {"attempt_1": [[4]], "attempt_2": [[5]]}]}
    empty = {}
    for sub, want in ((perfect, 1.0), (partial, 0.5), (empty, 0.0)):
        assert score_submission(sub, sols).score == pytest.approx(want)
        assert score_submission(sub, sols).score == pytest.approx(_independent_score(sub, sols))


def test_validator_rejects_bad_submissions():
    good = {"t": [{"attempt_1": [[1]], "attempt_2": [[2, 3]]}]}
    assert submission_problems(good) == []
    assert submission_problems({"t": [{"attempt_1": [[1]]}]})
    assert submission_problems({"t": [{"attempt_1": [[10]], "attempt_2": [[1]]}]})
    assert submission_problems({"t": [{"attempt_1": [[1], [1, 2]], "attempt_2": [[1]]}]})
    assert submission_problems({"t": [{"attempt_1": [[1]] * 31, "attempt_2": [[1]]}]})
    assert submission_problems([good]) and submission_problems({"t": []})
    assert submission_problems(good, {"t": 2}) == ["t: 1 entries for 2 test inputs"]
    assert submission_problems(good, {"u": 1}) == ["u: missing"]


def test_second_attempt_differs_from_the_first_when_anything_else_exists():
    inp = np.array([[1, 2]], np.uint8)
    a, b = np.array([[3]], np.uint8), np.array([[4]], np.uint8)
    assert [x.tolist() for x in choose_attempts([a, b], inp)] == [[[3]], [[4]]]
    assert [x.tolist() for x in choose_attempts([a], inp)] == [[[3]], [[1, 2]]]   # the input, not a again
    assert [x.tolist() for x in choose_attempts([], inp)] == [[[1, 2]], [[1, 2]]]
