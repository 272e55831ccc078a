"""The default preset learns: on held-out test inputs of synthetic tasks during training, and on
*new* synthetic tasks (never ingested) through `predict` with test-time training.

One short training run (the `smoke` preset capped at a fixed step count, so the result does not
depend on the machine's speed) is shared by both tests.
"""

import pytest

from arc_trm.config import load_config
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.infer.score import score_submission
from arc_trm.infer.submission import fallback_submission
from arc_trm.solve.predict import predict
from arc_trm.train.run import train

STEPS = 500


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    cfg = load_config("smoke", [f"train.max_steps={STEPS}", "train.time_limit_s=0",
                                "train.eval_interval_steps=0"])   # one evaluation, at the end
    summary = train(cfg, root / "run", progress=False)
    return root, cfg, summary


def test_default_preset_learns_held_out_test_inputs(smoke_run):
    _, cfg, summary = smoke_run
    ev = summary["final_eval"]
    print(f"smoke preset, {STEPS} steps: pass@2 {ev['pass@2']:.3f} on {cfg.data.synthetic_test_tasks} test tasks; "
          f"copy-input pass@2 {ev['copy_input_pass@2']:.3f}")
    assert ev["pass@2"] >= 0.25           # at least 2 of the 8 test tasks; the full 4-minute default reaches more
    assert ev["pass@2"] >= ev["copy_input_pass@2"] + 0.25


def test_ttt_on_new_tasks_beats_no_ttt_and_copying_the_input(smoke_run):
    root, cfg, _ = smoke_run
    new = make_tasks(8, seed=99, prefix="unseen", families=cfg.data.synthetic_families,
                     max_side=min(8, cfg.data.canvas))
    spec = write_challenges(new, root / "unseen_challenges.json")
    scores = {}
    for mode in ("off", "embeddings_then_full"):
        res = predict(root / "run", str(spec), root / f"sub_{mode}.json", overrides=[f"ttt.mode={mode}"])
        scores[mode] = res.score.score
    sols = {t.task_id: [o.tolist() for o in t.test_outputs] for t in new}
    copy = score_submission(fallback_submission(new), sols).score
    print(f"unseen tasks pass@2: TTT {scores['embeddings_then_full']:.3f}, no TTT {scores['off']:.3f}, "
          f"copy input {copy:.3f}")
    assert scores["embeddings_then_full"] >= scores["off"] + 0.25
    assert scores["embeddings_then_full"] >= copy + 0.25
