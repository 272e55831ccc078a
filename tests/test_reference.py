"""Parity with the TRM reference: its checkpoints import exactly, its dataset's translation rule,
ConceptARC bundled, and `train --init-from`.

The reference-format checkpoint is built here from the names and shapes the reference writes
(``torch.save(model.state_dict())`` of a compiled run: ``_orig_mod.model.inner.`` keys), with
random values, and an ``identifiers.json`` naming its puzzle rows."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from arc_trm.cli import main
from arc_trm.config import ModelConfig, set_fields
from arc_trm.data.batches import TrainStream
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.ingest import build_dataset
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.data.tasks import load_spec
from arc_trm.kaggle.package import PackageOptions, package
from arc_trm.model import checkpoint
from arc_trm.model.layers import swiglu_width
from arc_trm.model.cores.trm.module import TRM
from arc_trm.model.recursion import Carry, act_step
from arc_trm.solve.predict import predict
from arc_trm.train.run import train
from tests.helpers import tiny_config

D, HEADS, LAYERS = 32, 2, 2
INTER = swiglu_width(D, 4.0)
PREFIX = "_orig_mod.model.inner."


def reference_tensors(n_ids: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A TRM-Att state dict under the reference's names (without the prefix)."""
    g = torch.Generator().manual_seed(seed)
    r = (lambda *shape: torch.randn(*shape, generator=g) * 0.2)  # noqa: E731
    w = {"H_init": r(D), "L_init": r(D), "embed_tokens.embedding_weight": r(12, D), "lm_head.weight": r(12, D),
         "q_head.weight": r(2, D), "q_head.bias": torch.tensor([0.3, -7.0]), "puzzle_emb.weights": r(n_ids, D)}
    for i in range(LAYERS):
        w[f"L_level.layers.{i}.self_attn.qkv_proj.weight"] = r(3 * D, D)
        w[f"L_level.layers.{i}.self_attn.o_proj.weight"] = r(D, D)
        w[f"L_level.layers.{i}.mlp.gate_up_proj.weight"] = r(2 * INTER, D)
        w[f"L_level.layers.{i}.mlp.down_proj.weight"] = r(D, INTER)
    return w


def arc_trm_model_from(w: dict[str, torch.Tensor], cfg: ModelConfig) -> TRM:
    """The same tensors put into an arc-trm model by hand, as the issue's name list maps them."""
    m = TRM(cfg, 900)
    with torch.no_grad():
        m.H_init.copy_(w["H_init"])
        m.L_init.copy_(w["L_init"])
        m.embed_tokens.copy_(w["embed_tokens.embedding_weight"])
        m.lm_head.weight.copy_(w["lm_head.weight"])
        m.q_head.weight.copy_(w["q_head.weight"][0:1])     # row 0 is the halting logit
        m.q_head.bias.copy_(w["q_head.bias"][0:1])
        for i, layer in enumerate(m.layers):
            layer.attn.qkv.weight.copy_(w[f"L_level.layers.{i}.self_attn.qkv_proj.weight"])
            layer.attn.out.weight.copy_(w[f"L_level.layers.{i}.self_attn.o_proj.weight"])
            layer.mlp.gate_up.weight.copy_(w[f"L_level.layers.{i}.mlp.gate_up_proj.weight"])
            layer.mlp.down.weight.copy_(w[f"L_level.layers.{i}.mlp.down_proj.weight"])
    return m


def small_tasks(n=2):
    return [t for t in load_spec("arc1-eval").tasks if max(max(g.shape) for g in t.plan_grids()) <= 6][:n]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    a, b = small_tasks()
    names = ["<blank>", a.task_id, f"{a.task_id}|||t3|||0213456789", b.task_id, f"{b.task_id}|||t5|||0987654321",
             f"{b.task_id}|||t1|||0123456798"]
    w = reference_tensors(len(names))
    torch.save({PREFIX + k: v for k, v in w.items()}, root / "step_1000")
    (root / "identifiers.json").write_text(json.dumps(names))
    cfg = {"arch": {"name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1", "hidden_size": D,
                    "num_heads": HEADS, "expansion": 4, "H_cycles": 2, "L_cycles": 2, "H_layers": 0, "L_layers": LAYERS,
                    "halt_max_steps": 3, "halt_exploration_prob": 0.1, "puzzle_emb_len": 2, "puzzle_emb_ndim": D,
                    "pos_encodings": "rope", "forward_dtype": "bfloat16", "no_ACT_continue": True,
                    "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}}}
    (root / "all_config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["import-reference", str(root / "step_1000"), "--config", str(root / "all_config.yaml"),
                 "--identifiers", str(root / "identifiers.json"), "--out", str(root / "imported")]) == 0
    return root, w, names, (a, b)


def test_imported_model_computes_what_the_reference_tensors_compute(reference):
    root, w, _, _ = reference
    ck = checkpoint.load(root / "imported")
    m = ck.cfg.model
    assert (m.hidden_size, m.num_heads, m.num_layers, m.H_cycles, m.L_cycles, m.halt_max_steps, m.puzzle_emb_len) == \
        (D, HEADS, LAYERS, 2, 2, 3, 2)
    direct = arc_trm_model_from(w, m)
    torch.testing.assert_close(ck.model.q_head.weight, w["q_head.weight"][:1])
    assert not torch.allclose(ck.model.q_head.weight, w["q_head.weight"][1:])
    g = torch.Generator().manual_seed(1)
    batch = {"inputs": torch.randint(0, 12, (3, 900), generator=g, dtype=torch.int32),
             "labels": torch.zeros(3, 900, dtype=torch.long), "puzzle_ids": torch.tensor([1, 2, 3], dtype=torch.int32)}
    rows = w["puzzle_emb.weights"]
    emb = (lambda ids: rows[ids.long()])  # noqa: E731
    ca, cb = Carry.initial(ck.model, batch), Carry.initial(direct, batch)
    with torch.no_grad():
        for _ in range(2):
            ca, a = act_step(ck.model, m, ca, batch, emb, False)
            cb, b = act_step(direct, m, cb, batch, emb, False)
            assert torch.equal(a["logits"], b["logits"]) and torch.equal(a["q_halt"], b["q_halt"])
    # the halting logit is row 0 of the reference's Q head, read at the first position, computed in
    # the stream dtype the reference's forward_dtype named
    assert m.stream_dtype == "bfloat16" and ca.z_H.dtype == torch.bfloat16
    z = ca.z_H[:, 0]
    want = (z @ w["q_head.weight"][0].to(z.dtype) + w["q_head.bias"][0].to(z.dtype)).float()
    torch.testing.assert_close(a["q_halt"], want, rtol=1e-2, atol=1e-2)


def test_a_known_tasks_copy_is_predicted_with_the_row_of_its_plan(reference):
    root, w, names, (a, b) = reference
    ck = checkpoint.load(root / "imported")
    ds = ArcDataset.build([], [a, b], 4, 0, canvas=30, reuse_plans=ck.puzzles)
    rows, known = checkpoint.embedding_rows(ck, ds.table)
    assert known.all()
    ref = w["puzzle_emb.weights"]
    for pid, name in enumerate(names[1:], start=1):
        task = name.split("|||")[0]
        d = int(name.split("|||")[1][1]) if "|||" in name else 0
        perm = [int(c) for c in name.split("|||")[2]] if "|||" in name else list(range(10))
        t = ds.table.task_ids.index(task)
        plan = next(r for r in range(ds.table.task_start[t], ds.table.task_start[t + 1])
                    if ds.table.plan_dihedral[r] == d and ds.table.plan_perm[r].tolist() == perm)
        torch.testing.assert_close(rows[plan + ds.table.base], ref[pid])


def test_predict_with_ttt_and_package_run_on_the_imported_checkpoint(reference, tmp_path, wheelhouse):
    root, _, _, (a, b) = reference
    unseen = make_tasks(2, seed=4, prefix="unseen", max_side=5)
    write_challenges([a, b] + unseen, tmp_path / "mix_challenges.json")
    res = predict(root / "imported", str(tmp_path / "mix_challenges.json"), tmp_path / "sub.json",
                  ["ttt.embedding_steps=2", "ttt.full_steps=2", "ttt.global_batch_size=4", "ttt.augmentations=2",
                   "predict.views_per_input=2", "predict.batch_size=8"], progress=False)
    assert res.timings["ttt"]["steps"] == {"embeddings": 2, "full": 2}     # the two unseen tasks were fine-tuned
    assert set(res.submission) == {a.task_id, b.task_id} | {t.task_id for t in unseen}
    (tmp_path / "p.toml").write_text("[ttt]\nmode = \"off\"\n[predict]\ntime_budget_s = 60\n")
    pkg = package(PackageOptions(root / "imported", tmp_path / "pkg", "arc-prize-2025", "someone",
                                 preset=str(tmp_path / "p.toml"), offline=True, wheelhouse=[wheelhouse]))
    assert (pkg.dataset / "puzzle_embeddings.safetensors").is_file()


def test_without_identifiers_every_task_is_unseen_with_mean_rows(reference, tmp_path, capsys):
    root, w, _, (a, _) = reference
    alone = tmp_path / "alone"                  # no all_config.yaml beside it: the published ARC settings
    alone.mkdir()
    shutil.copy(root / "step_1000", alone / "step_1000")
    assert main(["import-reference", str(alone / "step_1000"), "--set", "model.num_heads=2",
                 "--out", str(tmp_path / "plain")]) == 0
    assert "took TRM's published ARC settings" in capsys.readouterr().out
    ck = checkpoint.load(tmp_path / "plain")
    assert ck.cfg.model.H_cycles == 3 and ck.cfg.model.halt_max_steps == 16     # the ARC defaults
    # beside the checkpoint, the run's all_config.yaml is found and read, and the import says so
    assert main(["import-reference", str(root / "step_1000"), "--out", str(tmp_path / "beside")]) == 0
    assert f"read the run's config beside the checkpoint: {root / 'all_config.yaml'}" in capsys.readouterr().out
    assert checkpoint.load(tmp_path / "beside").cfg.model.H_cycles == 2
    ds = ArcDataset.build([], [a], 3, 0, canvas=30, reuse_plans=ck.puzzles)
    rows, known = checkpoint.embedding_rows(ck, ds.table)
    assert not known.any()
    torch.testing.assert_close(rows[1], w["puzzle_emb.weights"][1:].mean(0))


def _bad_cases(root):
    w = reference_tensors(3)
    full = root / "good_step"
    torch.save({PREFIX + k: v for k, v in w.items()}, full)
    cases = {}
    cases["truncated"] = (full.read_bytes()[:len(full.read_bytes()) // 2], None, None, "not a readable torch checkpoint")
    import io
    buf = io.BytesIO()
    torch.save({"step": 5, "config": "x"}, buf)
    cases["not_tensors"] = (buf.getvalue(), None, None, "not a tensor state dict")
    buf = io.BytesIO()
    torch.save({"model.inner.blocks.0.weight": torch.zeros(2)}, buf)
    cases["unknown"] = (buf.getvalue(), None, None, "not a checkpoint of a known layout")
    hrm = {f"model.inner.H_level.layers.0.self_attn.qkv_proj.weight": torch.zeros(3 * D, D),
           "model.inner.H_init": torch.zeros(D)}
    buf = io.BytesIO()
    torch.save(hrm, buf)
    cases["hrm"] = (buf.getvalue(), None, None, "missing module L_level")          # an HRM without its low level
    cases["hidden"] = (full.read_bytes(), {"arch": {"hidden_size": 64, "num_heads": 2, "L_layers": 2}}, None,
                       "hidden size 64 disagrees with the checkpoint's 32")
    cases["few_names"] = (full.read_bytes(), None, ["<blank>", "t1"], "2 names for 3 puzzle-embedding rows")
    cases["bad_name"] = (full.read_bytes(), None, ["<blank>", "t1", "t1|||t9|||0123456789"], "cannot read name 2")
    return cases


@pytest.mark.parametrize("case", ["truncated", "not_tensors", "unknown", "hrm", "hidden", "few_names", "bad_name"])
def test_bad_reference_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    data, cfg, ids, reason = _bad_cases(tmp_path)[case]
    step = tmp_path / "step_7"
    step.write_bytes(data)
    args = ["import-reference", str(step), "--out", str(tmp_path / "out"), "--set", "model.num_heads=2"]
    if cfg is not None:
        (tmp_path / "all_config.yaml").write_text(yaml.safe_dump(cfg))
        args += ["--config", str(tmp_path / "all_config.yaml")]
    if ids is not None:
        (tmp_path / "identifiers.json").write_text(json.dumps(ids))
        args += ["--identifiers", str(tmp_path / "identifiers.json")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0], err
    named = tmp_path / ("identifiers.json" if ids is not None else "all_config.yaml" if cfg is not None else "step_7")
    assert str(named) in err[0] or str(step) in err[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()


def test_fixed_translation_keeps_each_offset_and_one_example_at_the_origin():
    ds = build_dataset([], [], 6, 0, synthetic_tasks=6, on_error=None, canvas=30)
    stream = TrainStream(ds, 16, seed=3)
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    for b in range(60):
        rows, plans = stream.next_global_indices()
        for r, p, off in zip(rows, plans, stream.offsets(rows, plans, b)):
            key = (int(p), int(r))
            assert seen.setdefault(key, tuple(off)) == tuple(off)        # one offset per (copy, example)
    assert len(seen) > 100
    demos = ds.demo_rows()
    for p in range(ds.table.num_plans):                                   # every copy of every task
        t = ds.table.plan_task[p]
        mine = demos[ds.ex_task[demos] == t]
        offs = stream.offsets(mine, np.full(len(mine), p), 0)
        assert (offs == 0).all(1).sum() == 1, (p, offs)
    other = TrainStream(ds, 16, seed=4)
    rows, plans = other.next_global_indices()
    assert not np.array_equal(other.offsets(rows, plans, 0), stream.offsets(rows, plans, 0))   # seed decides
    per_draw = TrainStream(ds, 16, seed=3, translation="per_draw")
    assert not np.array_equal(per_draw.offsets(rows, plans, 0), per_draw.offsets(rows, plans, 1))
    assert (TrainStream(ds, 16, seed=3, translation="none").offsets(rows, plans, 0) == 0).all()


def test_ingest_with_bundled_conceptarc(tmp_path, capsys):
    assert main(["ingest", "--tasks", "arc1-train", "--tasks", "conceptarc", "--test-tasks", "arc1-eval",
                 "--augmentations", "2", "--out", str(tmp_path / "ds")]) == 0
    ds = ArcDataset.load(tmp_path / "ds")
    assert ds.manifest["num_tasks"] == 400 + 160 + 400 and ds.manifest["num_test_tasks"] == 400
    concept = load_spec("conceptarc")
    assert len(concept.tasks) == 160 and not concept.errors
    assert all(o is not None for t in concept.tasks for o in t.test_outputs)      # answers bundled too


def test_train_init_from_starts_at_the_checkpoints_weights_and_rows(tmp_path):
    first = set_fields(tiny_config(max_steps=3, eval_interval_steps=0, max_eval_views=2),
                       {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2})
    train(first, tmp_path / "a", progress=False)
    # a new run on more tasks with learning switched off: it must end exactly where it started
    second = set_fields(tiny_config(max_steps=2, eval_interval_steps=0, max_eval_views=2),
                        {"data.synthetic_tasks": 5, "data.synthetic_test_tasks": 1, "data.augmentations": 2,
                         "optim.lr": 0.0, "optim.puzzle_emb_lr": 0.0, "optim.ema": False})
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path / "b"), "--init-from", str(tmp_path / "a"),
                 *[f"--set={k}={json.dumps(v)}" for k, v in _flat(second.to_dict()).items()]]) == 0
    a, b = checkpoint.load(tmp_path / "a" / "last"), checkpoint.load(tmp_path / "b" / "last")
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[k], v)
    rows, known = checkpoint.embedding_rows(a, b.puzzles)
    torch.testing.assert_close(b.table.weight, rows)
    assert known.sum() == 4 and (~known).sum() == 2       # a's tasks kept their rows, new ones got the mean


def test_init_from_takes_another_stream_dtype_but_refuses_another_architecture(tmp_path, capsys):
    """The stream's dtype is how a run computes, not what its weights are: a bfloat16-stream run
    starts from a float32-stream checkpoint; a different hidden size is refused in one line."""
    fields = {"data.synthetic_tasks": 3, "data.synthetic_test_tasks": 1, "data.augmentations": 2}
    train(set_fields(tiny_config(max_steps=2, eval_interval_steps=0, max_eval_views=1), fields),
          tmp_path / "a", progress=False)
    common = ["train", "--preset", "smoke", "--init-from", str(tmp_path / "a"),
              *[f"--set={k}={json.dumps(v)}" for k, v in _flat(set_fields(tiny_config(
                  max_steps=1, eval_interval_steps=0, max_eval_views=1), fields).to_dict()).items()]]
    assert main([*common, "--out", str(tmp_path / "b"), "--set", "model.stream_dtype=bfloat16"]) == 0
    b = checkpoint.load(tmp_path / "b" / "last")
    assert b.cfg.model.stream_dtype == "bfloat16"
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "c"), "--set", "model.hidden_size=16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another architecture: model.hidden_size (32 there, 16 here)" in err[0], err


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif k not in ("name", "model_preset"):
            out[f"{prefix}{k}"] = v
    return out
