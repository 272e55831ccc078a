"""Example pools (RE-ARC's shape: a file holding a JSON list of input/output pairs) as training
data: cut into puzzles `<pool>~<k>` of `data.pool_pairs` pairs without replacement, deterministic
for the seed, malformed entries named and skipped, refused where tasks are predicted, counted by
ingest and by the memory check, and trained on."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arc_trm.data.dataset import ArcDataset
from arc_trm.data.ingest import build_dataset
from arc_trm.data.pools import PoolCut
from arc_trm.data.synthetic import write_pool_folder
from arc_trm.data.tasks import load_spec
from arc_trm.errors import ArcTrmError
from arc_trm.model import memory
from arc_trm.config import load_config
from tests.test_cli_errors import cli, one_error_line

ROOT = Path(__file__).resolve().parents[1]


def pool_folder(base: Path, pools: int = 3, pairs: int = 40, max_side: int = 6) -> Path:
    """A RE-ARC-shaped folder of generated pools; the first pool gets two malformed entries, and
    an empty pool sits beside them."""
    folder = write_pool_folder(base / "re_arc" / "tasks", pools, pairs, seed=5, max_side=max_side)
    first = sorted(folder.glob("*.json"))[0]
    entries = json.loads(first.read_text())
    entries[3] = {"input": [[1, 2], [3]], "output": [[1]]}          # a grid that is not a grid
    entries[7] = [[1, 2]]                                           # an entry that is not a pair
    first.write_text(json.dumps(entries))
    (folder / "empty.json").write_text("[]")
    return folder


def pairs_of(task) -> list[tuple[bytes, bytes]]:
    return [(i.tobytes() + bytes(i.shape), o.tobytes() + bytes(o.shape))
            for i, o in task.train + list(zip(task.test_inputs, task.test_outputs))]


def test_ingest_cuts_a_pool_folder_into_puzzles_and_names_what_it_skips(tmp_path):
    folder = pool_folder(tmp_path)
    r = cli("ingest", "--tasks", folder, "--augmentations", "8", "--out", tmp_path / "D")
    assert r.returncode == 0, r.stderr
    # 38 valid pairs in the first pool give 4 puzzles of 8, the others 40 pairs give 5 each
    assert "14 tasks (0 test; 14 puzzles of 8 pairs from 3 example pools), 112 training pairs" in r.stdout
    ds = ArcDataset.load(tmp_path / "D")
    size = memory.size_text(memory.table_bytes(ds.num_puzzle_ids, 512))          # 127 rows x 512 x 4 bytes
    assert f"{ds.table.num_plans} augmented copies" in r.stdout
    assert f"table: {ds.num_puzzle_ids} rows, {size} at the paper models' 512 wide" in r.stdout and size == "0.3 MB"
    names = sorted(p.stem for p in folder.glob("pool*.json"))
    assert sorted(ds.table.task_ids) == sorted(f"{n}~{k}" for n, c in zip(names, (4, 5, 5)) for k in range(c))
    assert ds.table.num_plans <= 14 * 9 and ds.num_puzzle_ids == ds.table.num_plans + 1
    err = r.stderr
    assert f"file {folder / names[0]}.json, entry 3: input: ragged grid" in err
    assert f"file {folder / names[0]}.json, entry 7: not an {{\"input\", \"output\"}} pair; skipped" in err
    assert f"file {folder / 'empty.json'}: is an empty pool (no pairs): no puzzle from it; skipped" in err


def test_puzzles_draw_without_replacement_deterministically_and_independently(tmp_path):
    folder = pool_folder(tmp_path, pools=2, pairs=30)
    cut = PoolCut(pairs=6, seed=0)
    a = load_spec(str(folder), cut=cut).tasks
    same = load_spec(str(folder), cut=cut).tasks
    assert [t.task_id for t in a] == [t.task_id for t in same]
    assert all(pairs_of(x) == pairs_of(y) for x, y in zip(a, same))              # the same draws each time
    by_pool = {}
    for t in a:
        assert len(t.train) == 5 and len(t.test_inputs) == 1 and t.pool == t.task_id.split("~")[0]
        by_pool.setdefault(t.pool, []).extend(pairs_of(t))
    for pool, drawn in by_pool.items():
        assert len(drawn) == len(set(drawn))                                     # no pair twice in a pool
    other_seed = load_spec(str(folder), cut=PoolCut(pairs=6, seed=1)).tasks
    assert any(pairs_of(x) != pairs_of(y) for x, y in zip(a, other_seed))
    # a pool's puzzles do not depend on which other pools are ingested
    alone = load_spec(str(sorted(folder.glob("pool*.json"))[1]), cut=cut).tasks
    assert [pairs_of(t) for t in alone] == [pairs_of(t) for t in a if t.pool == alone[0].pool]
    capped = load_spec(str(folder), cut=PoolCut(pairs=6, puzzles=2, seed=0)).tasks
    assert sorted(t.task_id for t in capped) == sorted(f"{p}~{k}" for p in by_pool for k in (0, 1))
    with pytest.raises(ArcTrmError, match="pool_pairs must be at least 2"):
        PoolCut(pairs=1)


def test_pools_are_refused_where_tasks_are_predicted(tmp_path):
    folder = pool_folder(tmp_path, pools=1, pairs=16)
    one_error_line(cli("ingest", "--tasks", "arc1-train", "--test-tasks", folder, "--out", tmp_path / "D"),
                   "is an example pool", "pools are training data")
    assert not (tmp_path / "D").exists()
    pool = next(folder.glob("pool*.json"))
    one_error_line(cli("show", pool.stem, "--tasks", pool, "--out", tmp_path / "t.png"), "is an example pool")
    with pytest.raises(ArcTrmError, match="is an example pool"):
        build_dataset([], [str(folder)], 2, 0)


def test_training_on_a_pool_trains_and_evaluates(tmp_path):
    folder = pool_folder(tmp_path, pools=4, pairs=24, max_side=5)
    r = cli("train", "--preset", "smoke", "--out", tmp_path / "run", "--set", f'data.tasks=["{folder}"]',
            "--set", "data.synthetic_tasks=0", "--set", "data.pool_pairs=6", "--set", "train.max_steps=8",
            "--set", "train.eval_interval_steps=4", "--set", "train.time_limit_s=0", "--set", "train.max_eval_views=2",
            "--set", "train.global_batch_size=16")
    assert r.returncode == 0, r.stderr[-2000:]
    ds = ArcDataset.load(tmp_path / "run" / "data")
    pooled = [t for t in ds.table.task_ids if "~" in t]
    assert len(pooled) == 3 * 4 + 3 and ds.manifest["sources"]["pool_puzzles_made"] == len(pooled)   # 22 valid in the first
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [4, 8] and all(r["inputs_voted"] == r["test_inputs"] == 16 for r in evals)
    assert any(r["kind"] == "train" and r["loss"] > 0 for r in records) and (tmp_path / "run" / "best" / "model.safetensors").is_file()


def test_the_memory_check_counts_the_puzzle_table(monkeypatch):
    m = load_config("trm-paper-att").model
    per = memory.bytes_per_sample(m, 30, "cuda", "bf16")
    monkeypatch.setattr(memory, "available_bytes", lambda device: int(per * 64))
    dev = type("D", (), {"type": "cuda"})()
    assert memory.fit_micro_batch(m, 30, 32, 32, dev, "bf16") == 32                 # fits without a table
    rows = int(per * 40 / (m.hidden_size * 4))                                     # a table of 40 samples' worth
    with pytest.raises(ArcTrmError, match=r"beside the .* GiB puzzle-embedding table .*micro_batch_size=8 fits"):
        memory.fit_micro_batch(m, 30, 32, 32, dev, "bf16", table_rows=rows)
    with pytest.raises(ArcTrmError, match=r"puzzle-embedding table \(\d+ rows x 512.*data.pool_puzzles"):
        memory.fit_micro_batch(m, 30, 32, 32, dev, "bf16", table_rows=rows * 2)
    assert memory.fit_micro_batch(m, 30, 8, 32, dev, "bf16", table_rows=rows) == 8   # the micro-batch it named fits
    # train.micro_batch_size 0 (the default): the largest divisor of the batch that fits, here the one it named
    assert memory.fit_micro_batch(m, 30, 0, 32, dev, "bf16", table_rows=rows) == 8
    assert memory.fit_micro_batch(m, 30, 0, 32, dev, "bf16") == 32                  # the whole batch where it fits
    assert memory.fit_micro_batch(m, 30, 0, 768, dev, "bf16") == 48                 # 51 fit in 80 %: 768's divisor
    monkeypatch.setattr(memory, "available_bytes", lambda device: int(per * 0.5))
    with pytest.raises(ArcTrmError, match=r"one sample's training step needs about .* GiB"):
        memory.fit_micro_batch(m, 30, 0, 32, dev, "bf16")


def test_the_ingest_benchmark_measures_pools():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--cpu-smoke", "--pools", "400x1000"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert res["pools"] == 4 and res["pairs_per_pool"] == 40 and res["tasks"] == 20 and res["wall_s"] > 0
    assert res["peak_rss_mb"] > 0 and res["table_gb_at_512_float32"] >= 0
