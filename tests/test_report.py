"""The evaluation report and the overlap check (issue 30): the page's numbers equal `score`'s, it needs
nothing from the network, it opens in headless Chromium without script errors and draws its grids, a
repeated attempt_2 is reported as such, and the bundled sets' overlap is found by content."""

import json
import re
import shutil
import subprocess

import pytest

from arc_trm.data.overlap import Prints, find_overlap
from arc_trm.data.tasks import load_spec
from tests.test_cli_errors import cli


def _small_eval(tmp_path, n=6):
    tasks = [t for t in load_spec("arc1-eval").tasks if max(max(g.shape) for g in t.plan_grids()) <= 10][:n]
    chal = {t.task_id: t.to_challenge() for t in tasks}
    sols = {t.task_id: [o.tolist() for o in t.test_outputs] for t in tasks}
    (tmp_path / "e_challenges.json").write_text(json.dumps(chal))
    (tmp_path / "e_solutions.json").write_text(json.dumps(sols))
    return tasks, sols


def test_the_report_says_what_score_says_and_names_repeated_attempts(tmp_path):
    tasks, sols = _small_eval(tmp_path)
    ids = [t.task_id for t in tasks]
    # a: the right answer for the first half as attempt_2; b: attempt_2 copies attempt_1 everywhere
    a = {t.task_id: [{"attempt_1": i.tolist(), "attempt_2": (sols[t.task_id][k] if n < 3 else i.tolist())}
                     for k, i in enumerate(t.test_inputs)] for n, t in enumerate(tasks)}
    b = {t.task_id: [{"attempt_1": sols[t.task_id][k] if n % 2 else i.tolist(),
                      "attempt_2": sols[t.task_id][k] if n % 2 else i.tolist()} for k, i in enumerate(t.test_inputs)]
         for n, t in enumerate(tasks)}
    for name, sub in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(sub))
    r = cli("report", tmp_path / "a.json", tmp_path / "b.json", "--tasks", tmp_path / "e_challenges.json",
            "--out", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    for name in ("a", "b"):
        s = cli("score", tmp_path / f"{name}.json", "--solutions", tmp_path / "e_solutions.json")
        pass2 = re.search(r"pass@2 ([\d.]+) over", s.stdout).group(1)
        assert f'data-name="{name}">{pass2}</span>' in page
        summary = s.stdout.strip().splitlines()[-1]
        assert summary in r.stdout                       # the same summary line in score and report
    entries = sum(len(t.test_inputs) for t in tasks)
    assert f"attempt_2 repeats attempt_1 in {entries} of {entries} entries" in cli(
        "score", tmp_path / "b.json", "--solutions", tmp_path / "e_solutions.json").stdout
    assert all(i in page for i in ids) and "union" in page and "not a score" in page
    assert not re.search(r"(src|href)=[\"']https?:", page)          # nothing from the network


def test_the_bundled_sets_overlap_by_content_and_exclude_overlap_removes_it(tmp_path):
    train, evaluated = load_spec("arc2-train").tasks, load_spec("arc1-eval").tasks
    ov = find_overlap(Prints.of(train), evaluated)
    assert len(ov.answers) == 368 and len(ov.inputs) == 6          # measured: the answers are in arc2-train
    assert ov.warnings("arc2-train")[0].startswith("the answers of 368 evaluated task(s) are in arc2-train")
    r = cli("ingest", "--tasks", "arc2-train", "--test-tasks", "conceptarc", "--exclude-overlap", "arc1-eval",
            "--augmentations", "1", "--out", tmp_path / "ds")
    assert r.returncode == 0, r.stderr
    assert "left out 374 training task(s)" in r.stderr
    from arc_trm.data.dataset import ArcDataset
    kept = ArcDataset.load(tmp_path / "ds").prints
    assert not find_overlap(kept, evaluated).answers                 # the warning is gone


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed here")
def test_the_report_opens_in_headless_chromium_without_errors_and_draws_its_grids(tmp_path):
    tasks, sols = _small_eval(tmp_path, n=3)
    sub = {t.task_id: [{"attempt_1": sols[t.task_id][k], "attempt_2": i.tolist()} for k, i in enumerate(t.test_inputs)]
           for t in tasks}
    (tmp_path / "s.json").write_text(json.dumps(sub))
    assert cli("report", tmp_path / "s.json", "--tasks", tmp_path / "e_challenges.json",
               "--out", tmp_path / "r.html").returncode == 0
    args = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(args + ["--dump-dom", f"file://{tmp_path / 'r.html'}"], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr and "SyntaxError" not in dom.stderr, dom.stderr[-2000:]
    assert dom.stdout.count("<canvas") >= 3 * 4 and "3 tasks" in dom.stdout       # the script ran and drew
    assert 'data-name="s">1.0000</span>' in dom.stdout
    shot = subprocess.run(args + ["--window-size=1200,1600", f"--screenshot={tmp_path / 'r.png'}",
                                  f"file://{tmp_path / 'r.html'}"], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and (tmp_path / "r.png").stat().st_size > 10_000


def test_each_submission_is_marked_by_the_checkpoint_behind_it(tmp_path):
    """Two checkpoints, one trained on the evaluated tasks' test pairs (their answers) and one on
    generated tasks: the report counts the answers seen per submission, scores the other tasks
    apart, and marks each task with the submissions whose checkpoint saw its answer."""
    from arc_trm.config import set_fields
    from arc_trm.train.run import train
    from tests.helpers import tiny_config
    tasks, sols = _small_eval(tmp_path, n=4)
    seen_cfg = set_fields(tiny_config(max_steps=1, time_limit_s=0, eval_interval_steps=0),
                          {"data.tasks": [str(tmp_path / "e_challenges.json")], "data.test_tasks": [],
                           "data.augmentations": 1})
    train(seen_cfg, tmp_path / "seen", progress=False)
    train(tiny_config(max_steps=1, time_limit_s=0, eval_interval_steps=0), tmp_path / "fresh", progress=False)
    perfect = {t.task_id: [{"attempt_1": o, "attempt_2": o} for o in sols[t.task_id]] for t in tasks}
    (tmp_path / "leaky.json").write_text(json.dumps(perfect))
    (tmp_path / "clean.json").write_text(json.dumps(perfect))
    r = cli("report", tmp_path / "leaky.json", tmp_path / "clean.json", "--tasks", tmp_path / "e_challenges.json",
            "--checkpoint", tmp_path / "seen", "--checkpoint", tmp_path / "fresh", "--out", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    rows = {name: re.search(rf'<td><b>{name}</b></td>(.*?)</tr>', page).group(1) for name in ("leaky", "clean")}
    assert rows["leaky"].endswith("<td>4</td><td>no task left</td><td>—</td>")        # every answer was trained on
    assert rows["clean"].endswith("<td>0</td><td>1.0000 over 4</td><td>—</td>")
    data = json.loads(re.search(r'<script id=data type="application/json">(.*?)</script>', page, re.S).group(1))
    assert all(t["seen"] == ["leaky"] for t in data["tasks"])
    assert "seen/best (behind leaky)" in page and "fresh/best (behind clean)" in page
    one = cli("report", tmp_path / "leaky.json", tmp_path / "clean.json", "--tasks", tmp_path / "e_challenges.json",
              "--checkpoint", tmp_path / "seen", "--checkpoint", tmp_path / "fresh", "--checkpoint", tmp_path / "seen",
              "--out", tmp_path / "r2.html")
    assert one.returncode == 2 and "3 checkpoints for 2 submissions" in one.stderr
    # --run: its curves and last evaluation, its checkpoint behind both; the page may live in the run
    # folder, but never over the run's log
    inside = cli("report", tmp_path / "leaky.json", tmp_path / "clean.json", "--tasks", tmp_path / "e_challenges.json",
                 "--run", tmp_path / "fresh", "--out", tmp_path / "fresh" / "report.html")
    assert inside.returncode == 0, inside.stderr
    page = (tmp_path / "fresh" / "report.html").read_text()
    assert 'alt="training curves" src="data:image/png;base64,' in page and "last evaluation: eval @ step 1: over " in page
    assert "fresh/best (behind leaky, clean)" in page
    over = cli("report", tmp_path / "leaky.json", "--tasks", tmp_path / "e_challenges.json", "--run", tmp_path / "fresh",
               "--out", tmp_path / "fresh" / "metrics.jsonl")
    assert over.returncode == 2 and "metrics.jsonl" in over.stderr
