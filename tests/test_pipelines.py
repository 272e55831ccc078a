"""The recipes in pipelines/ as a user runs them: each is run by bash with `arc-trm`, `accelerate`
and `kaggle` standing in as recorders, and every arc-trm command it would run must parse with the
real argument parser, name existing presets and set only existing config fields."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from arc_trm.cli import build_parser
from arc_trm.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_RUNS = {"speed_figures.sh"}          # they run benchmarks/, not arc-trm: tested apart below
SCRIPTS = sorted(p for p in (ROOT / "pipelines").glob("*.sh") if p.name not in BENCHMARK_RUNS)
RECORDER = """#!/bin/sh
exec "{python}" -c 'import json, sys; open(sys.argv[1], "a").write(json.dumps(sys.argv[2:]) + "\\n")' "{log}" "$(basename "$0")" "$@"
"""
ENVS = {"overlap.sh": [{}, {"MODEL": "tiny-cpu"}], "smoke.sh": [{}, {"MODEL": "urm-tiny"}],
        "paper.sh": [{}, {"PRESET": "arc2-paper", "NGPU": "2"}], "kaggle.sh": [{"OWNER": "someone", "UPLOAD": "1"}],
        "compare_cores.sh": [{}, {"CORES": "tiny-cpu"}]}


def recorded(script: Path, env: dict, tmp_path: Path) -> list[list[str]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir(exist_ok=True)
    for name in ("arc-trm", "accelerate", "kaggle"):
        (bin_dir / name).write_text(RECORDER.format(python=sys.executable, log=log))
        (bin_dir / name).chmod(0o755 | stat.S_IXUSR)
    log.unlink(missing_ok=True)
    full = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                OUT=str(tmp_path / "out"), **env)
    (tmp_path / "out" / "new").mkdir(parents=True, exist_ok=True)      # smoke.sh writes its new tasks there
    r = subprocess.run(["bash", str(script)], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return [json.loads(line) for line in log.read_text().splitlines()]


def arc_trm_args(call: list[str]) -> list[str] | None:
    if call[0] == "arc-trm":
        return call[1:]
    if call[0] == "accelerate" and "arc_trm.cli" in call:
        return call[call.index("arc_trm.cli") + 1:]
    return None


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_pipeline_runs_commands_that_parse_with_real_presets_and_fields(script, tmp_path):
    assert script.name in ENVS, f"{script.name}: add the environments it is run with to ENVS"
    parser = build_parser()
    for env in ENVS[script.name]:
        calls = [a for a in map(arc_trm_args, recorded(script, env, tmp_path)) if a is not None]
        assert calls, (script.name, env)
        for args in calls:
            ns = parser.parse_args(args)             # exits (fails the test) on a bad flag
            if ns.verb == "train":
                load_config(ns.preset, ns.set or [], model=ns.model)


def test_the_speed_figures_run_keeps_going_past_a_failed_benchmark(tmp_path):
    """What a GPU session runs, at toy sizes on the CPU against the stand-in reference: one JSON line per
    benchmark in order; a reference folder that is not a checkout fails its own line and the others still run."""
    standin = ROOT / "tests" / "reference_standin"
    env = dict(os.environ, SMOKE="1", TRM_REF=str(standin), URM_REF=str(tmp_path / "no-checkout"),
               OUT=str(tmp_path / "speed"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", str(ROOT / "pipelines" / "speed_figures.sh")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "speed" / "speed.jsonl").read_text().splitlines()]
    assert [x["benchmark"] for x in lines] == ["reference-urm", "reference_step", "reference_step", "urm_conv",
                                                "step_profile", "step_profile", "step_profile"]
    assert lines[0]["failed"] == 2 and "has no models/ folder" in (tmp_path / "speed" / "reference-urm.log").read_text()
    assert [x["core"] for x in lines[1:3]] == ["trm", "hrm"] and all(x["ratio"] > 0 for x in lines[1:3])
    assert [x["preset"] for x in lines[4:]] == ["urm-tiny", "tiny-cpu", "hrm-tiny"]
