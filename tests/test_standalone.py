"""What the Kaggle notebook runs before arc-trm is installed is one package, ``arc_trm.standalone``, that
imports nothing outside itself: it imports in an interpreter that sees only the standard library, under
the name the notebook gives it, and the notebook carries every module of it; the job's typed summary
survives its file."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from arc_trm import standalone
from arc_trm.kaggle.notebook import PACKAGE, build_notebook, standalone_sources
from arc_trm.standalone.summary import CheckpointRecord, JobSummary

FOLDER = Path(standalone.__file__).parent


def test_every_import_is_the_standard_library_or_the_package_itself():
    for path in FOLDER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in sys.stdlib_module_names or node.module == "__future__", \
                    f"{path.name}: from {node.module} import ..."
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name.split(".")[0] in sys.stdlib_module_names, f"{path.name}: import {a.name}"


def test_it_imports_under_another_name_with_only_the_standard_library(tmp_path):
    shutil.copytree(FOLDER, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    modules = sorted(p.stem for p in FOLDER.glob("*.py") if p.stem != "__init__")
    code = (f"import sys; assert not any('site-packages' in p for p in sys.path); sys.path.insert(0, {str(tmp_path)!r})\n"
            + "".join(f"import {PACKAGE}.{m}\n" for m in modules)
            + f"assert 'arc_trm' not in sys.modules; print('ok', len({modules!r}))")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr


def test_the_notebook_carries_every_module_as_written(tmp_path):
    nb = build_notebook("t", "s")
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    assert sorted(standalone_sources()) == sorted(p.name for p in FOLDER.glob("*.py"))
    # the cells run as a plain script (the rehearsal runs them so) rebuild the package byte for byte
    script = "\n\n".join(cells[:-1]) + "\nprint(_JOB_DIR)\n"
    r = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    written = Path(r.stdout.strip())
    for path in FOLDER.glob("*.py"):
        assert (written / path.name).read_text() == path.read_text(), path.name
    assert cells[-1].startswith(f"from {PACKAGE}.job import run_job")
    nbformat.validate(nb)


def test_the_summary_file_reads_back_typed(tmp_path):
    s = JobSummary(submission="s.json", used="ensemble", tasks=3, ensembled=1,
                   checkpoints=[CheckpointRecord("ckpt_0", "runs/a", 12.5, 0, "l.log", ensembled=True),
                                CheckpointRecord("ckpt_1", "runs/b", failed=True, note="predict failed: boom",
                                                 reason="predict failed: boom")])
    s.write(tmp_path / "summary.json")
    back = JobSummary.read(tmp_path / "summary.json")
    assert back == s and isinstance(back.checkpoints[1], CheckpointRecord)
    assert JobSummary.read(tmp_path / "none.json") is None
    # a field another version added is ignored, not an error
    assert JobSummary.from_dict({"used": "predict", "later": 1, "checkpoints": [{"checkpoint": "c", "x": 2}]}).used == "predict"
