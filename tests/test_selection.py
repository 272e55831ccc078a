"""best/ is chosen on a selection split of the test tasks and scored on the others, and no figure from
the tasks it was chosen on is printed or written unmarked: by train, predict, score, ensemble, report
(terminal and page) and metrics.jsonl. To make a leak visible, the submissions scored after predict are
doctored so that the chosen-on tasks are solved and the scored ones are not: any unmarked figure that
counts a chosen-on task is then above zero."""

import json
import re

import pytest

from arc_trm.data.dataset import ArcDataset
from arc_trm.data.synthetic import write_challenges
from arc_trm.infer.selection import MARK, selection_split
from arc_trm.train.metrics import read_log
from tests.helpers import TINY_MODEL
from tests.test_cli_errors import cli

SETS = [f"--set={k}={v}" for k, v in {**TINY_MODEL, "data.canvas": 10, "train.global_batch_size": 8,
                                      "data.synthetic_tasks": 3, "data.synthetic_test_tasks": 5,
                                      "data.augmentations": 2, "train.max_steps": 4, "train.eval_interval_steps": 2,
                                      "train.max_eval_views": 2, "train.time_limit_s": 0,
                                      "train.select_share": 0.4}.items()]
MARKED = (MARK, "chosen on: biased upward", "\tselected on")
FIGURE = re.compile(r"pass@\d|per test output|single_view|one view")


def counts_of(clause: str) -> list[int]:
    return [int(n) for n in re.findall(r"(?:over|other) (?:the )?(\d+)", clause)]


def check_lines(text: str, scored: int, where: str) -> int:
    """Every clause with a figure is marked, or counts exactly the scored tasks, or is the summary that
    follows a scored line; returns how many clauses were checked."""
    checked, previous_scored = 0, False
    for line in text.splitlines():
        for clause in line.split("; "):
            if not FIGURE.search(clause) or any(m in clause for m in MARKED):
                continue
            n = counts_of(clause)
            assert n == [scored] or (not n and previous_scored), f"{where}: unmarked figure: {clause!r} in {line!r}"
            checked += 1
        previous_scored = bool(FIGURE.search(line)) and counts_of(line)[:1] == [scored] or (
            previous_scored and not counts_of(line))
    return checked


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sel")
    r = cli("train", "--out", root / "run", *SETS)
    assert r.returncode == 0, r.stderr
    tasks = ArcDataset.load(root / "run" / "data").test_tasks()
    write_challenges(tasks, root / "t_challenges.json")
    return root, r.stdout, tasks


def test_best_is_chosen_on_the_selection_split_and_scored_on_the_rest(run):
    root, out, tasks = run
    chosen, scored = selection_split([t.task_id for t in tasks], 0.4, 0)
    assert len(chosen) == 2 and len(scored) == 3 and not set(chosen) & set(scored)
    info = json.loads((root / "run" / "best" / "info.json").read_text())
    assert info["chosen_on"]["tasks"] == chosen and info["tasks"] == 3 and info["selection/tasks"] == 2
    assert "chosen_on" not in json.loads((root / "run" / "last" / "info.json").read_text())
    best = json.loads((root / "run" / "best_score.json").read_text())
    assert best["step"] == info["step"] and best["pass@2_lo"] <= best["pass@2"] <= best["pass@2_hi"]
    line = next(x for x in out.splitlines() if x.startswith("arc-trm train: best/ chosen on 2 tasks at step"))
    assert "pass@2 on the other 3: " in line and "95 % interval" in line
    assert check_lines(out, 3, "train") >= 3        # two evaluations and the closing line
    for rec in read_log(root / "run" / "metrics.jsonl"):
        if rec["kind"] == "eval":                   # every figure of the chosen-on tasks under selection/
            assert rec["tasks"] == 3 and rec["selection/tasks"] == 2
            assert {k for k in rec if k.startswith("selection/")} >= {"selection/pass@2", "selection/pass@1"}


def test_no_figure_on_a_chosen_on_task_is_unmarked(run):
    root, _, tasks = run
    chosen, scored = selection_split([t.task_id for t in tasks], 0.4, 0)
    ch = root / "t_challenges.json"
    sols = json.loads((root / "t_solutions.json").read_text())
    r = cli("predict", "--checkpoint", root / "run", "--tasks", ch, "--out", root / "p.json",
            "--candidates", root / "p.cand.json", "--set=ttt.mode=off", "--set=predict.views_per_input=2")
    assert r.returncode == 0, r.stderr
    assert json.loads((root / "p.chosen-on.json").read_text())["tasks"] == chosen
    assert f"pass@2 " in r.stdout and "over 3 tasks not used to choose the checkpoint" in r.stdout
    assert check_lines(r.stdout, 3, "predict") >= 2
    assert json.loads((root / "p.cand.json").read_text())["source"]["chosen_on"] == chosen

    # doctored: the chosen-on tasks solved, the scored ones not; the sidecar stays beside it
    wrong = [[9] * 9 for _ in range(9)]
    sub = {t: [{"attempt_1": a if t in chosen else wrong, "attempt_2": wrong} for a in sols[t]] for t in sols}
    (root / "p.json").write_text(json.dumps(sub))
    cand = json.loads((root / "p.cand.json").read_text())
    cand["source"].pop("submission", None)
    cand["tasks"] = {t: [[{"grid": a if t in chosen else wrong, "votes": 2, "score": 1.0}] for a in sols[t]]
                     for t in sols}
    (root / "p.cand.json").write_text(json.dumps(cand))
    outputs = {}
    outputs["score"] = cli("score", root / "p.json", "--solutions", root / "t_solutions.json", "--detail")
    outputs["ensemble"] = cli("ensemble", root / "p.cand.json", "--out", root / "e.json", "--tasks", ch)
    outputs["report"] = cli("report", root / "p.json", "--tasks", ch, "--run", root / "run", "--out", root / "r.html")
    for verb, res in outputs.items():
        assert res.returncode == 0, (verb, res.stderr)
        assert check_lines(res.stdout, 3, verb) >= 1
        for clause in (c for line in res.stdout.splitlines() for c in line.split("; ")):
            if re.match(r"pass@2 [\d.]+ over 3 tasks", clause):        # the scored tasks: none solved
                assert clause.startswith("pass@2 0.0000"), (verb, clause)
        assert any(m in res.stdout for m in MARKED), verb     # the chosen-on figure, given apart
    assert json.loads((root / "e.chosen-on.json").read_text())["tasks"] == chosen
    assert all(f"{t}\t1.000\tselected on" in outputs["score"].stdout for t in chosen)

    page = (root / "r.html").read_text()
    row = re.search(r'<td><b>p</b></td>(.*?)</tr>', page).group(1)
    assert row.startswith('<td><span class="pass2" data-name="p">0.0000</span>')
    assert f"1.0000 over 2: {MARK}" in row.replace("&#x27;", "'")
    for table in re.findall(r'<table class="breakdown">(.*?)</table>', page):   # breakdowns: scored tasks only
        assert all(float(v) == 0.0 for v in re.findall(r"<td>(\d\.\d+)</td>", table))
    data = json.loads(re.search(r'<script id=data type="application/json">(.*?)</script>', page, re.S).group(1))
    assert sorted(t["id"] for t in data["tasks"] if t["chosen"]) == chosen
    assert "last evaluation: eval @ step 4: over 3 scored tasks" in page

    # a submission of new tasks carries no marks, and predict removes an earlier file's
    r = cli("predict", "--checkpoint", root / "run" / "last", "--tasks", ch, "--out", root / "p.json",
            "--set=ttt.mode=off", "--set=predict.views_per_input=2")
    assert r.returncode == 0 and not (root / "p.chosen-on.json").exists()
    assert "over 5 tasks (ARC Prize's score)" in r.stdout


def test_select_on_names_tasks_and_a_bad_name_is_one_error(run, tmp_path):
    root, _, tasks = run
    one = tasks[0].task_id
    r = cli("train", "--out", tmp_path / "named", "--dataset", root / "run" / "data", *SETS, "--select-on", one,
            "--set=train.max_steps=2")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "named" / "best" / "info.json").read_text())["chosen_on"]["tasks"] == [one]
    assert "best/ chosen on 1 tasks" in r.stdout and "pass@2 on the other 4" in r.stdout
    bad = cli("train", "--out", tmp_path / "bad", "--dataset", root / "run" / "data", *SETS, "--select-on", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr and "not test tasks" in bad.stderr
    none = cli("train", "--out", tmp_path / "none", "--dataset", root / "run" / "data", *SETS, "--select-on", "0",
               "--set=train.max_steps=2")
    assert none.returncode == 0 and not (tmp_path / "none" / "best").exists()
    assert "over 5 scored tasks" in none.stdout and "last/ is the checkpoint" in none.stdout


def test_runs_compare_on_one_page_that_opens_in_headless_chromium(run, tmp_path):
    """Two runs of different cores and batches on the run-comparison page: what each is, what it cost,
    where best/ was chosen and its scored pass@2 with the interval; and the page renders."""
    import shutil
    import subprocess
    root, _, _ = run
    other = cli("train", "--out", tmp_path / "urm", "--dataset", root / "run" / "data", *SETS,
                "--set=model.core=urm", "--set=model.mlp=conv_swiglu", "--set=train.global_batch_size=4")
    assert other.returncode == 0, other.stderr
    r = cli("report", "--runs", root / "run", tmp_path / "urm", "--out", tmp_path / "runs.html")
    assert r.returncode == 0, r.stderr
    best = json.loads((root / "run" / "best_score.json").read_text())
    line = next(x for x in r.stdout.splitlines() if x.startswith("run: trm"))
    assert (f"4 steps, 32 examples, cpu x1" in line and f"pass@2 {best['pass@2']:.4f} over 3 scored tasks, 95 % "
            f"interval {best['pass@2_lo']:.2f}-{best['pass@2_hi']:.2f}" in line)
    assert any(x.startswith("urm: urm,") and "16 examples" in x for x in r.stdout.splitlines())
    page = (tmp_path / "runs.html").read_text()
    assert page.count("<tr>") == 3 and "2 of 5 test tasks, a share of 0.4 drawn with train.seed 0" in page
    assert 'alt="curves of every run" src="data:image/png;base64,' in page
    assert check_lines(r.stdout, 3, "report --runs") == 2
    bad = cli("report", "--runs", root / "run", "--tasks", root / "t_challenges.json", "--out", tmp_path / "x.html")
    assert bad.returncode == 2 and "either" in bad.stderr
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed here: the page's rendering is not checked")
    args = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(args + ["--dump-dom", f"file://{tmp_path / 'runs.html'}"], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0 and "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    assert dom.stdout.count('class="pass2"') + dom.stdout.count("class=pass2") >= 2
    shot = subprocess.run(args + ["--window-size=1300,900", f"--screenshot={tmp_path / 'runs.png'}",
                                  f"file://{tmp_path / 'runs.html'}"], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and (tmp_path / "runs.png").stat().st_size > 10_000
