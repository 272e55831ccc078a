"""The README's commands, as a user would type them.

The walk-through under "The verbs" runs as written, in order, in a fresh folder (each line through
the console script's `main`; `rehearse` starts its own processes as on Kaggle); the only change
is that `train` is capped at a few steps (the README's 4-minute run would dominate the suite).
`import-reference` gets a small reference-format checkpoint under the README's file names. Every
other `arc-trm` command in the README (GPU and hub examples) must parse with the real argument
parser, name an existing preset and set only existing config fields."""

import json
import re
import shlex
from pathlib import Path

import torch
import yaml

from arc_trm.cli import build_parser
from arc_trm.config import load_config
from tests.test_cli_errors import cli
from tests.test_reference import D, HEADS, LAYERS, PREFIX, reference_tensors

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TRAIN_CAP = ["--set", "train.max_steps=30", "--set", "train.eval_interval_steps=15"]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    """One command per line, a line ending in a backslash continued on the next."""
    return [line.split("  #")[0].strip() for line in block.replace("\\\n", " ").splitlines()
            if line.strip() and not line.strip().startswith("#")]


def walkthrough() -> list[str]:
    section = README.split("## The verbs", 1)[1]
    return commands(bash_blocks(section)[0])


def arc_trm_args(line: str) -> list[str] | None:
    """The arc-trm arguments of a command line (`arc-trm ...` or `accelerate launch ... -m arc_trm.cli ...`)."""
    words = shlex.split(line)
    if words[:1] == ["arc-trm"]:
        return words[1:]
    if "arc_trm.cli" in words:
        return words[words.index("arc_trm.cli") + 1:]
    return None


def _reference_files(folder: Path) -> None:
    names = ["<blank>", "00576224", "00576224|||t2|||0312456789"]
    torch.save({PREFIX + k: v for k, v in reference_tensors(len(names)).items()}, folder / "step_155718")
    (folder / "identifiers.json").write_text(json.dumps(names))
    (folder / "all_config.yaml").write_text(yaml.safe_dump({"arch": {
        "hidden_size": D, "num_heads": HEADS, "L_layers": LAYERS, "expansion": 4, "H_cycles": 3, "L_cycles": 4,
        "halt_max_steps": 16, "puzzle_emb_len": 16, "puzzle_emb_ndim": D, "pos_encodings": "rope"}}))


def test_the_walkthrough_runs_as_written(tmp_path):
    steps = walkthrough()
    assert [arc_trm_args(s)[0] for s in steps] == ["ingest", "train", "plot", "predict", "score", "report", "show",
                                                   "package", "rehearse", "import-reference"]
    _reference_files(tmp_path)
    for line in steps:       # through the console script's main, in this process (no torch import per line)
        args = arc_trm_args(line)
        if args[0] == "train":
            args = args + TRAIN_CAP
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr[-2000:])
        if args[0] == "predict":
            assert "pass@2" in r.stdout and "canvas" in r.stderr        # the smoke canvas cannot hold most tasks
    for made in ("data/arc1/manifest.json", "runs/smoke/best/model.safetensors", "runs/smoke/curves.png",
                 "submission.json", "report.html", "task.png", "submission/dataset/arc_trm_payload.json", "runs/trm-ref/config.json"):
        assert (tmp_path / made).exists(), made


def test_every_other_readme_command_parses_with_real_presets_and_fields():
    parser = build_parser()
    walk = set(walkthrough())
    checked = 0
    for block in bash_blocks(README):
        for line in commands(block):
            args = arc_trm_args(line)
            if args is None or line in walk:
                continue
            ns = parser.parse_args(args)            # exits (fails the test) on a bad flag
            if ns.verb == "train":
                load_config(ns.preset, ns.set or [])
            checked += 1
    assert checked >= 6


def test_table_and_sections_name_only_existing_verbs():
    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    named = set(re.findall(r"^\| `([a-z-]+)` \|", README.split("## The verbs", 1)[1].split("##", 1)[0], flags=re.M))
    assert named == verbs
