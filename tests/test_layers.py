"""The layers of DESIGN.md, read from the source: every import in arc_trm (lazy ones inside
functions too) points down, never up, and the two top stages do not import each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "arc_trm"

# Lower number = lower layer. A module may import its own layer and those below it only.
LAYERS = {"errors": 0, "jsonfile": 0, "config": 0, "atomic": 0, "progress": 0, "paths": 0, "stopflag": 0, "slowdown": 0, "clock": 0, "compile_cache": 0, "standalone": 0, "data": 1, "model": 2, "infer": 3, "train": 4,
          "solve": 5, "kaggle": 5, "convert": 5, "cli": 6,
          # a core's config section (arc_trm/model/cores/<core>/settings.py): plain data that config.py reads
          "core settings": 0}


def _is_core_settings(parts: list[str]) -> bool:
    return len(parts) == 5 and parts[1:3] == ["model", "cores"] and parts[4] == "settings"


def _layer_of(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "arc_trm"
    if _is_core_settings(parts):
        return "core settings"
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    pkg = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("arc_trm")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:       # relative: resolve against the package
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "arc_trm":      # `from arc_trm import config`: the names are the modules
                out += [(node.lineno, f"arc_trm.{a.name}") for a in node.names]
            elif mod.startswith("arc_trm."):
                out.append((node.lineno, mod))
    return out


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _layer_of("arc_trm." + ".".join(path.relative_to(ROOT).with_suffix("").parts))
        if here in ("", "__init__"):
            continue
        for line, mod in _imports(path):
            there = _layer_of(mod)
            if there in ("", "__init__") or there == here:
                continue
            if LAYERS[there] > LAYERS[here] or (LAYERS[there] == LAYERS[here] and there != here
                                                and LAYERS[here] > 0):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} ({here}) imports {mod} ({there})")
    return bad


def test_no_module_imports_from_a_layer_above_it():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: an infer module importing the training session is caught, a
    train module importing infer (downward) is not, nor is a lazy import that points down."""
    fake = tmp_path / "arc_trm"
    for sub in ("infer", "train", "solve", "kaggle"):
        (fake / sub).mkdir(parents=True)
    (fake / "infer" / "bad.py").write_text("def f():\n    from arc_trm.train.session import TrainSession\n")
    (fake / "train" / "good.py").write_text("from arc_trm.infer import runner\n")
    (fake / "kaggle" / "sibling.py").write_text("from arc_trm.solve.ttt import test_time_train\n")
    monkeypatch.setattr(__import__("tests.test_layers", fromlist=["ROOT"]), "ROOT", fake)
    assert upward_imports() == ["arc_trm/infer/bad.py:2 (infer) imports arc_trm.train.session (train)",
                                "arc_trm/kaggle/sibling.py:1 (kaggle) imports arc_trm.solve.ttt (solve)"]


@pytest.mark.parametrize("layer", sorted(set(LAYERS) - {"cli", "core settings"}))
def test_every_layer_is_a_real_package_or_module(layer):
    assert (ROOT / layer).is_dir() or (ROOT / f"{layer}.py").is_file()


def test_pyproject_ships_every_subpackage():
    import tomllib
    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"arc_trm"} | {".".join(p.relative_to(ROOT.parent).parts) for p in ROOT.rglob("*")
                             if (p / "__init__.py").is_file()}
    assert listed == on_disk | {"arc_trm.presets"}
