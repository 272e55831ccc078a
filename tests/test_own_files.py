"""arc-trm never harms a file it did not write (issue 26): outputs that are inputs, folders full of a
user's files, symbolic links, pickles in a run folder, values no run can use, JSON of the wrong shape,
leftovers of a killed run, and lines that say what really happened. Each case is one line and exit 2
before any work, with the user's files byte for byte as they were."""

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arc_trm.config import set_fields
from arc_trm.data.synthetic import make_tasks, write_challenges, write_pool_folder
from arc_trm.train.run import train
from tests.helpers import tiny_config
from tests.test_cli_errors import TINY_SETS, cli, one_error_line


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run, 3 generated tasks with solutions beside them, and a candidates file."""
    root = tmp_path_factory.mktemp("own")
    cfg = set_fields(tiny_config(max_steps=4, eval_interval_steps=0, save_every_steps=2, max_eval_views=2),
                     {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                      "ttt.mode": "off", "predict.views_per_input": 2})
    train(cfg, root / "run", progress=False)
    write_challenges(make_tasks(3, seed=11, prefix="six", max_side=6), root / "six_challenges.json")
    r = cli("predict", "--checkpoint", root / "run", "--tasks", root / "six_challenges.json",
            "--out", root / "sub.json", "--candidates", root / "c.json")
    assert r.returncode == 0, r.stderr
    return root


def _snapshot(*paths: Path) -> dict:
    """Every file under ``paths`` with its bytes (and symbolic links as links)."""
    out = {}
    for p in paths:
        for f in [p] if not p.is_dir() else sorted(p.rglob("*")):
            if f.is_symlink():
                out[str(f)] = ("link", os.readlink(f))
            elif f.is_file():
                out[str(f)] = f.read_bytes()
    return out


# ----------------------------------------------------------------------------- 1. folders arc-trm owns
def test_ingest_into_a_folder_of_someone_elses_files_is_refused_and_touches_nothing(tmp_path):
    mydata = tmp_path / "mydata"
    pools = write_pool_folder(mydata / "re_arc" / "tasks", pools=2, pairs=10, seed=0)
    (mydata / "thesis.txt").write_text("four years of work")
    before = _snapshot(mydata)
    line = one_error_line(cli("ingest", "--tasks", pools, "--out", mydata), "holds the input --tasks")
    assert str(mydata) in line
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.txt").write_text("also mine")
    one_error_line(cli("ingest", "--tasks", pools, "--out", tmp_path / "other"),
                   "entries that arc-trm did not write (thesis.txt)", "choose a new or empty folder")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    one_error_line(cli("ingest", "--tasks", pools, "--out", notes), "is a file, not a dataset folder")
    assert _snapshot(mydata) == before and notes.read_text() == '{"mine": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata", "notes.json", "other"]   # no .old, no temp
    assert (tmp_path / "other" / "thesis.txt").read_text() == "also mine"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "keep.txt").write_text("x")
    one_error_line(cli("ingest", "--tasks", pools, "--out", ".", cwd=cwd), "is the current folder")
    # a new folder, its own dataset folder again and an empty one are fine: rewriting a dataset is the point
    (tmp_path / "empty").mkdir()
    for out in ("ds", "ds", "empty"):
        assert cli("ingest", "--tasks", pools, "--augmentations", "1", "--out", tmp_path / out).returncode == 0


def test_train_into_someone_elses_folder_and_package_over_their_files_are_refused(run, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"their": "config"}')
    (theirs / "metrics.jsonl").write_text("their log\n")
    before = _snapshot(theirs)
    one_error_line(cli("train", "--out", theirs, *TINY_SETS, "--set=train.max_steps=1"),
                   "entries that arc-trm did not write")
    one_error_line(cli("ingest", "--tasks", run / "six_challenges.json", "--out", run / "run"),
                   "is an arc-trm training run folder, not a dataset folder")
    pkg = tmp_path / "pkg"
    (pkg / "dataset").mkdir(parents=True)
    (pkg / "dataset" / "photos.zip").write_bytes(b"PK")
    (pkg / "README.md").write_text("# my project\n")
    (tmp_path / "wheels").mkdir()
    base = ["package", "--checkpoint", run / "run", "--competition", "arc-prize-2025", "--owner", "me", "--offline",
            "--wheelhouse", tmp_path / "wheels"]
    one_error_line(cli(*base, "--out", pkg), "photos.zip")
    shutil.rmtree(pkg / "dataset")
    one_error_line(cli(*base, "--out", pkg), "README.md that arc-trm did not write")
    assert _snapshot(theirs) == before and (pkg / "README.md").read_text() == "# my project\n"


def test_a_run_folder_whose_lock_is_just_being_taken_is_the_runs_own():
    """The other processes of a multi-process run check the folder as the main process creates its lock file
    and before it writes its pid there (a refusal one run in six on 2 processes, before): an empty lock is a
    run starting now; someone else's lock file is not."""
    import tempfile

    from arc_trm.atomic import owner_problem
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "run"
        folder.mkdir()
        (folder / ".lock").write_text("")
        assert owner_problem(folder, "run") is None
        (folder / ".lock").write_text("pid 4242")
        assert owner_problem(folder, "run") is None
        (folder / ".lock").write_text("held by my editor")
        assert "entries that arc-trm did not write (.lock)" in owner_problem(folder, "run")


# ----------------------------------------------------------------------------- 2. an output that is an input
def test_every_verb_refuses_an_output_that_is_one_of_its_inputs(run, tmp_path):
    chal, sols = run / "six_challenges.json", run / "six_solutions.json"
    tf = tmp_path / "tf"
    tf.mkdir()
    (tf / "a.json").write_text(json.dumps(json.loads(chal.read_text())[next(iter(json.loads(chal.read_text())))]))
    guarded = [chal, sols, run / "c.json", run / "sub.json", run / "run" / "metrics.jsonl", tf]
    before = _snapshot(*guarded)
    ckpt = ["--checkpoint", run / "run"]
    cases = [
        (["predict", *ckpt, "--tasks", chal, "--out", chal], "--out", "is also the input --tasks"),
        (["predict", *ckpt, "--tasks", chal, "--out", sols], "is also the input --tasks (its solutions)"),
        (["predict", *ckpt, "--tasks", chal, "--out", tmp_path / "x.json", "--candidates", tmp_path / "x.json"],
         "--out and --candidates name the same path"),
        (["predict", *ckpt, "--tasks", chal, "--out", run / "run" / "best" / "config.json"], "lies inside --checkpoint"),
        (["predict", *ckpt, "--tasks", tf, "--out", tf / "submission.json"], "a folder read as a whole"),
        (["ensemble", run / "c.json", "--out", run / "c.json"], "is also the input CANDIDATES"),
        (["plot", run / "run", "--out", run / "run" / "metrics.jsonl"], "is also the input RUN"),
        (["show", "six0110000", "--tasks", chal, "--out", chal], "is also the input --tasks"),
        (["show", "six0110000", "--tasks", chal, "--submission", run / "sub.json", "--out", run / "sub.json"],
         "is also the input --submission"),
        (["ingest", "--tasks", tf, "--out", tf], "is also the input --tasks"),
        (["train", "--init-from", run / "run", "--out", run / "run", *TINY_SETS], "is also the input --init-from"),
        (["score", run / "sub.json", "--solutions", sols], None),       # writes nothing: fine
    ]
    for args, *needles in cases:
        r = cli(*args)
        if needles == [None]:
            assert r.returncode == 0, r.stderr
            continue
        one_error_line(r, *needles)
    assert _snapshot(*guarded) == before


# ----------------------------------------------------------------------------- 3. symbolic links
def test_writing_through_a_symbolic_link_updates_its_target_and_keeps_the_link(run, tmp_path):
    target = tmp_path / "real" / "submission.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    r = cli("predict", "--checkpoint", run / "run", "--tasks", run / "six_challenges.json", "--out", link)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()).keys() == json.loads((run / "sub.json").read_text()).keys()
    # a link to an input is that input
    (tmp_path / "to_challenges.json").symlink_to(run / "six_challenges.json")
    one_error_line(cli("predict", "--checkpoint", run / "run", "--tasks", run / "six_challenges.json",
                       "--out", tmp_path / "to_challenges.json"), "is also the input --tasks")


# ----------------------------------------------------------------------------- 4. no pickles on resume
class _Payload:
    """Unpickling this writes a marker file: what a malicious run folder would do (run code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _seal(gen: Path) -> None:
    seal = json.loads((gen / "complete.json").read_text())
    seal["files"] = {p.name: p.stat().st_size for p in sorted(gen.iterdir()) if p.name != "complete.json"}
    (gen / "complete.json").write_text(json.dumps(seal))


def test_a_pickle_in_the_run_folder_never_runs_and_the_run_names_it(run, tmp_path):
    import torch
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    marker = tmp_path / "PWNED"
    newest = sorted((copy / "state").glob("step_*"))[-1]
    torch.save({"obj": _Payload(marker)}, tmp_path / "payload.pkl")
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl"):
        shutil.copy(tmp_path / "payload.pkl", newest / name)
    _seal(newest)                                           # sizes updated: the seal alone cannot tell
    r = cli("train", "--out", copy, *TINY_SETS, "--set=train.save_every_steps=2", "--set=train.max_steps=6",
            "--set=data.synthetic_test_tasks=1", "--set=ttt.mode=off", "--set=predict.views_per_input=2")
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    assert f"{newest.name} is damaged: holds custom_checkpoint_0.pkl, which arc-trm does not write" in r.stdout
    assert "resumed from step_0000002 instead" in r.stdout
    # the payload is real: unpickling it the way accelerate's loader does writes the marker
    torch.load(tmp_path / "payload.pkl", weights_only=False)
    assert marker.exists()


def test_a_session_file_replaced_by_a_pickle_is_refused_too(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    marker = tmp_path / "PWNED"
    for gen in (copy / "state").glob("step_*"):
        (gen / "session.json").write_bytes(pickle.dumps(_Payload(marker)))
        _seal(gen)
    line = one_error_line(cli("train", "--out", copy, *TINY_SETS, "--set=train.max_steps=6"),
                          "no usable training state", "unreadable")
    assert not marker.exists() and "--init-from" in line


# ----------------------------------------------------------------------------- 5. values and shapes
@pytest.mark.parametrize("setting,needle", [
    ("train=3", "'train' is a table of settings"), ("data.canvas=0", "data.canvas = 0: must be between 1 and 30"),
    ("model.num_heads=3", "model.num_heads = 3: must divide model.hidden_size (32)"),
    ("optim.lr=nan", "optim.lr = nan: must be a finite number"), ("optim.lr=inf", "must be a finite number"),
    ("train.max_steps=99999999999999999999999", "too large"), ("train.max_steps=-5", "must be 0 or more"),
    ("model.halt_exploration_prob=2", "between 0 and 1"), ("optim.beta2=1", "below 1"),
    ("data.tasks=[1]", "a list of strings"), ("model.core=hmr", "must be one of"),
    ("model.hidden_size=true", "expects int"), ("ttt.optim=1", "is a table of settings"),
])
def test_a_value_no_run_can_use_is_one_line_before_any_work(tmp_path, setting, needle):
    one_error_line(cli("train", "--out", tmp_path / "r", *TINY_SETS, f"--set={setting}"), needle)
    assert not (tmp_path / "r").exists()


def test_json_of_the_wrong_shape_is_one_line_wherever_arc_trm_reads_it(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run / "run", copy)
    gens = sorted((copy / "state").glob("step_*"))
    for gen, bad in zip(gens, ("[]", '{"step": 4, "files": []}')):
        (gen / "complete.json").write_text(bad)
    one_error_line(cli("train", "--out", copy, *TINY_SETS, "--set=train.max_steps=6"), "no usable training state",
                   "no readable complete.json")
    for name, bad, needle in (("config.json", "[]", "a config must be a table"),
                              ("manifest.json", "[]", "checkpoint manifest must be a JSON object"),
                              ("manifest.json", '{"canvas": "big"}', "canvas must be a whole number"),
                              ("info.json", "3", "checkpoint info must be a JSON object")):
        ck = tmp_path / f"ck_{name}_{len(bad)}"
        shutil.copytree(run / "run" / "best", ck)
        (ck / name).write_text(bad)
        one_error_line(cli("predict", "--checkpoint", ck, "--tasks", run / "six_challenges.json",
                           "--out", tmp_path / "s.json"), needle)
    ds = tmp_path / "ds"
    shutil.copytree(run / "run" / "data", ds)
    (ds / "manifest.json").write_text("[1]")
    one_error_line(cli("train", "--dataset", ds, "--out", tmp_path / "r2", *TINY_SETS), "dataset manifest must be")
    sols = json.loads((run / "six_solutions.json").read_text())
    first = next(iter(sols))
    for bad, needle in (([[[1, 2], [3]]], "ragged grid"), ([[1, 2, 3]], "row 0 is not a non-empty list"),
                        ([], "has no answers")):
        (tmp_path / "bad_solutions.json").write_text(json.dumps({**sols, first: bad}))
        one_error_line(cli("score", run / "sub.json", "--solutions", tmp_path / "bad_solutions.json"), needle, first)
        t = time.time()
        one_error_line(cli("predict", "--checkpoint", run / "run", "--tasks", run / "six_challenges.json",
                           "--out", tmp_path / "p.json", "--solutions", tmp_path / "bad_solutions.json"), needle)
        assert time.time() - t < 30 and not (tmp_path / "p.json").exists()      # before the run, not after it


# ----------------------------------------------------------------------------- 6. pairs and leftovers
def test_a_submission_and_its_candidates_are_written_together_and_carry_its_hash(run, tmp_path):
    from arc_trm.infer.candidates import belongs_to, read_candidates
    source, _ = read_candidates(run / "c.json")
    assert belongs_to(source, run / "sub.json") is True
    shutil.copy(run / "sub.json", tmp_path / "other.json")
    sub = json.loads((tmp_path / "other.json").read_text())
    first = next(iter(sub))
    sub[first][0]["attempt_1"] = [[9]]
    (tmp_path / "other.json").write_text(json.dumps(sub))
    assert belongs_to(source, tmp_path / "other.json") is False
    # a pair that does not belong together (a machine that died between the two renames) is named
    shutil.copy(run / "c.json", tmp_path / "c.json")
    r = cli("predict", "--checkpoint", run / "run", "--tasks", run / "six_challenges.json",
            "--out", tmp_path / "other.json", "--candidates", tmp_path / "c.json")
    assert r.returncode == 0 and "c.json was not written with other.json" in r.stderr
    assert belongs_to(read_candidates(tmp_path / "c.json")[0], tmp_path / "other.json") is True


def test_leftovers_of_a_killed_run_go_with_the_next_run_and_files_get_the_usual_modes(run, tmp_path):
    out = tmp_path / "sub.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [tmp_path / f".sub.json.{dead}.k3j4h5g6.tmp", tmp_path / ".sub.json.abcd1234.tmp"]
    for s in stale:
        s.write_bytes(b"half a file" * 1000)
    alive = tmp_path / f".sub.json.{os.getpid()}.zzzzzzzz.tmp"     # a live writer's copy stays
    alive.write_bytes(b"being written")
    old = os.umask(0o022)
    try:
        r = cli("predict", "--checkpoint", run / "run", "--tasks", run / "six_challenges.json", "--out", out)
        assert r.returncode == 0, r.stderr
        assert not any(s.exists() for s in stale) and alive.exists()
        ds = tmp_path / "ds"
        (tmp_path / f".ds.{dead}.aaaaaaaa.tmp").mkdir()
        (tmp_path / f".ds.{dead}.aaaaaaaa.tmp" / "pool.npy").write_bytes(b"x" * 10_000)
        assert cli("ingest", "--tasks", run / "six_challenges.json", "--augmentations", "1",
                   "--out", ds).returncode == 0
        assert not (tmp_path / f".ds.{dead}.aaaaaaaa.tmp").exists()
        copy = tmp_path / "run"
        shutil.copytree(run / "run", copy)
        assert cli("train", "--out", copy, *TINY_SETS, "--set=train.max_steps=6", "--set=train.save_every_steps=2",
                   "--set=data.synthetic_test_tasks=1", "--set=ttt.mode=off",
                   "--set=predict.views_per_input=2").returncode == 0
    finally:
        os.umask(old)
    for f in [*(copy / "last").iterdir(), *(copy / "state").rglob("*.safetensors"), *(ds.iterdir())]:
        assert f.stat().st_mode & 0o777 == 0o644, f


# ----------------------------------------------------------------------------- 7. honest lines
def test_lines_say_what_really_happened(run, tmp_path):
    # every pool puzzle too big for the canvas: one line, not "0 tasks" and a traceback later
    pools = write_pool_folder(tmp_path / "pools", pools=2, pairs=10, seed=0, max_side=12)
    r = cli("ingest", "--tasks", pools, "--canvas", "6", "--out", tmp_path / "d")
    assert r.returncode == 2 and r.stderr.count("has a 12-cell side") == 2            # each named, then one error
    assert r.stderr.strip().splitlines()[-1].startswith("arc-trm ingest: error: no task fits the 6x6 canvas")
    # a task file without "test" says so
    (tmp_path / "notest.json").write_text(json.dumps({"train": [{"input": [[1]], "output": [[2]]}]}))
    r = cli("ingest", "--tasks", tmp_path / "notest.json", "--out", tmp_path / "d2")
    assert "task notest: missing 'test'" in r.stderr
    # two files with one task id in a folder: the second is named and skipped, by predict as by ingest
    folder = tmp_path / "twice"
    task = next(iter(json.loads((run / "six_challenges.json").read_text()).values()))
    for sub in ("a", "b"):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "same.json").write_text(json.dumps(task))
    r = cli("predict", "--checkpoint", run / "run", "--tasks", folder, "--out", tmp_path / "p.json")
    assert r.returncode == 0 and "duplicate task id (first seen in" in r.stderr and str(folder / "b") in r.stderr
    # a preset is a name or a .toml file, and a refusal lists presets of the kind asked for
    one_error_line(cli("train", "--preset", "../configs/smoke"), "neither a preset name nor a .toml file")
    one_error_line(cli("train", "--preset", "/etc/passwd"), "neither a preset name nor a .toml file")
    line = one_error_line(cli("train", "--preset", "nope"), "no such preset", "run presets: ")
    assert "tiny-cpu" not in line and "kaggle-l4x4" not in line
    # help: every option explained, a default said once
    for verb in ("ingest", "package", "train", "predict"):
        text = cli(verb, "--help").stdout
        options = re.split(r"\n  -", text)
        assert "(default: None)" not in text and all(o.count("default") <= 1 for o in options), text
    assert "augmented copies per task" in cli("ingest", "--help").stdout
    assert "Kaggle user name" in cli("package", "--help").stdout


def test_a_write_error_names_the_target_not_the_temporary_file(tmp_path):
    from arc_trm.atomic import replacing_file
    from arc_trm.errors import ArcTrmError
    target = tmp_path / "curves.png"
    with pytest.raises(ArcTrmError) as e:
        with replacing_file(target) as tmp:
            raise RuntimeError(f"libpng error writing {tmp}: broken pipe")
    assert str(target) in str(e.value) and ".tmp" not in str(e.value)


def test_training_on_pools_alone_says_there_is_nothing_to_evaluate_and_spends_no_time_on_it(tmp_path):
    pools = write_pool_folder(tmp_path / "pools", pools=2, pairs=20, seed=0, max_side=6)
    t = time.time()
    r = cli("train", "--out", tmp_path / "r", *TINY_SETS, "--set=data.synthetic_tasks=0",
            "--set=data.synthetic_test_tasks=0", f"--set=data.tasks=[\"{pools}\"]", "--set=data.test_tasks=[]",
            "--set=train.max_steps=3")
    assert r.returncode == 0, r.stderr
    assert "holds no test tasks, so nothing is evaluated" in r.stdout and "no evaluation" in r.stdout
    assert (tmp_path / "r" / "last" / "model.safetensors").is_file() and time.time() - t < 60
