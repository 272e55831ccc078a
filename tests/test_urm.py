"""URM on every path: presets, FLOP counts and memory, import of a checkpoint in URM's own format
(compiled prefix, all_config.yaml, identifiers.json), predict and package on it, a smoke training
run through the CLI, and the one-line refusals."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

from arc_trm.config import ModelConfig, load_config
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.model import checkpoint
from arc_trm.model.build import build_model
from arc_trm.model.flops import application_flops, applications_per_cycle, train_example_flops
from arc_trm.model.memory import bytes_per_sample
from arc_trm.model.reference import strip_prefixes
from tests.test_cli_errors import ROOT, TINY_SETS, cli, one_error_line
from tests.urm_format import small_urm_config, urm_state_dict


def test_urm_presets_resolve_to_the_published_settings():
    for name, dense, tasks in (("urm-arc1-paper", "adam_atan2", "arc1-train"), ("urm-arc2-paper", "muon", "arc2-train")):
        cfg = load_config(name)
        m = cfg.model
        assert (m.recursion, m.mlp, m.num_layers, m.hidden_size, m.num_heads, m.H_cycles, m.L_cycles,
                m.halt_max_steps, m.puzzle_emb_len, m.stream_dtype) == \
            ("urm", "conv_swiglu", 4, 512, 8, 2, 6, 16, 1, "bfloat16")
        assert (cfg.optim.puzzle_emb_lr, cfg.optim.lr, cfg.optim.lr_warmup_steps, cfg.optim.weight_decay,
                cfg.optim.ema_rate, cfg.train.global_batch_size, cfg.train.epochs, cfg.train.eval_interval_epochs,
                cfg.data.augmentations) == (1e-2, 1e-4, 2000, 0.1, 0.999, 768, 200000, 2000, 1000)
        assert cfg.optim.dense == dense and cfg.data.tasks == [tasks, "conceptarc"]
    paper = build_model(load_config("urm-paper").model, 900)
    assert sum(p.numel() for p in paper.parameters()) == 13_663_234          # URM's own count


def test_a_run_preset_takes_another_model_preset():
    cfg = load_config("smoke", model="urm-tiny")
    assert cfg.model.recursion == "urm" and cfg.model.mlp == "conv_swiglu" and cfg.name == "smoke-urm-tiny"
    assert cfg.data.synthetic_tasks == load_config("smoke").data.synthetic_tasks       # the run's settings stay
    r = cli("train", "--model", "smoke", "--out", "x")
    one_error_line(r, "not a model preset")


def test_urm_costs_48_block_applications_per_step_24_with_gradient():
    urm, trm = load_config("urm-paper").model, load_config("trm-paper-att").model
    blocks = lambda m: m.H_cycles * applications_per_cycle(m) * m.num_layers
    assert blocks(urm) == 48 and urm.L_cycles * urm.num_layers == 24
    assert blocks(trm) == 30 and (trm.L_cycles + 1) * trm.num_layers == 10
    ratio = train_example_flops(urm) / train_example_flops(trm)
    assert 1.8 < ratio < 2.0, ratio                   # "about 1.9x TRM's compute per example"
    assert application_flops(urm) > application_flops(ModelConfig(**{**vars(urm), "mlp": "swiglu"}))
    assert bytes_per_sample(urm, 30, "cuda", "bf16") > bytes_per_sample(trm, 30, "cuda", "bf16")


def test_trm_with_the_convolution_is_a_choice_too():
    m = build_model(ModelConfig(hidden_size=32, num_heads=2, mlp="conv_swiglu", puzzle_emb_len=1), 16)
    assert "layers.0.mlp.dwconv.weight" in m.state_dict() and "H_init" in m.state_dict()


# ----------------------------------------------------------------------------- import
def _urm_files(root, use_muon=True, arch_name="urm.urm@URM"):
    cfg = small_urm_config()
    raw = urm_state_dict(cfg, puzzle_ids=4, seed=1)
    step = root / "step_1000"
    torch.save(raw, step)
    conf = {"arch": {"name": arch_name, "loops": cfg.halt_max_steps, "H_cycles": cfg.H_cycles, "L_cycles": cfg.L_cycles,
                     "num_layers": cfg.num_layers, "hidden_size": cfg.hidden_size, "num_heads": cfg.num_heads,
                     "expansion": cfg.expansion, "puzzle_emb_ndim": cfg.hidden_size, "pos_encodings": "rope",
                     "forward_dtype": "float32", "loss": {"loss_type": "stablemax_cross_entropy"}},
            "use_muon": use_muon}
    (root / "all_config.yaml").write_text(yaml.safe_dump(conf))
    tasks = make_tasks(1, seed=3, prefix="k")
    names = ["<blank>", tasks[0].task_id, f"{tasks[0].task_id}|||t1|||0123456789", f"{tasks[0].task_id}|||t2|||0213456789"]
    (root / "identifiers.json").write_text(json.dumps(names))
    return step, raw, tasks


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("urm-import")
    step, raw, tasks = _urm_files(root)
    r = cli("import-reference", step, "--config", root / "all_config.yaml", "--identifiers",
            root / "identifiers.json", "--out", root / "ck")
    assert r.returncode == 0, r.stderr
    return root, raw, tasks, r


def test_import_of_a_urm_checkpoint_keeps_every_tensor_and_urm_config(imported):
    root, raw, _, r = imported
    assert "URM, 32 wide, 2 layers, conv_swiglu, H2 x L2, 3 halting steps" in r.stdout
    ck = checkpoint.load(root / "ck")
    m = ck.cfg.model
    assert (m.recursion, m.mlp, m.H_cycles, m.L_cycles, m.halt_max_steps, m.num_layers, m.puzzle_emb_len,
            m.stream_dtype) == ("urm", "conv_swiglu", 2, 2, 3, 2, 1, "float32")
    assert ck.cfg.optim.dense == "muon"                                   # use_muon: true in the run's config
    w = strip_prefixes(raw)
    sd = ck.model.state_dict()
    mapping = {"embed_tokens": "embed_tokens.embedding_weight", "init_hidden": "init_hidden"}
    for ours, t in sd.items():
        ref = mapping.get(ours) or ours.replace(".attn.qkv.", ".self_attn.qkv_proj.").replace(
            ".attn.out.", ".self_attn.o_proj.").replace(".mlp.gate_up.", ".mlp.gate_up_proj.").replace(
            ".mlp.down.", ".mlp.down_proj.")
        assert t.dtype == w[ref].dtype and torch.equal(t, w[ref]), ours     # q_head rows, bf16 conv, init_hidden
    assert ck.puzzles.num_plans == 3 and torch.equal(ck.table.weight[1:], w["puzzle_emb.weights"][1:])


def test_predict_and_package_run_on_an_imported_urm(imported, tmp_path):
    root, _, tasks, _ = imported
    write_challenges(tasks, tmp_path / "k_challenges.json")
    r = cli("predict", "--checkpoint", root / "ck", "--tasks", tmp_path / "k_challenges.json", "--out",
            tmp_path / "s.json", "--ttt", "embeddings", "--set=ttt.embedding_steps=2", "--set=ttt.augmentations=2",
            "--set=ttt.global_batch_size=4", "--set=predict.views_per_input=2")
    assert r.returncode == 0, r.stderr
    assert "pass@2" in r.stdout and json.loads((tmp_path / "s.json").read_text()).keys() == {tasks[0].task_id}
    r = cli("package", "--checkpoint", root / "ck", "--out", tmp_path / "pkg", "--competition",
            "arc-prize-2026-arc-agi-2", "--owner", "someone")
    assert r.returncode == 0, r.stderr
    assert "model: URM, 32 wide, 2 layers, conv_swiglu, H2 x L2, 3 halting steps" in r.stdout
    assert "FLOP projection on 4x L4" in r.stdout


@pytest.mark.parametrize("case", ["no_conv", "trm_config", "recursion_typo", "dense_typo"])
def test_bad_urm_input_is_one_line_and_writes_nothing(case, tmp_path):
    step, raw, _ = _urm_files(tmp_path, arch_name="trm.trm@TRM" if case == "trm_config" else "urm.urm@URM")
    if case == "no_conv":
        torch.save({k: v for k, v in raw.items() if ".dwconv." not in k}, step)
    extra = {"recursion_typo": ["--set", "model.recursion=urn"], "dense_typo": ["--set", "optim.dense=adam"]}.get(case, [])
    r = cli("import-reference", step, "--config", tmp_path / "all_config.yaml", "--out", tmp_path / "out", *extra)
    want = {"no_conv": "missing tensor layers.0.mlp.dwconv.weight", "trm_config": "the config describes a TRM but the "
            "weights are a URM's", "recursion_typo": "model.recursion must be one of 'trm', 'urm'",
            "dense_typo": "optim.dense must be one of 'adam_atan2', 'muon'"}[case]
    one_error_line(r, want)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- training through the CLI
def test_smoke_trains_a_urm_and_init_from_refuses_mixing_architectures(tmp_path):
    out = tmp_path / "urm"
    r = cli("train", "--out", out, *TINY_SETS, "--set=model.recursion=urm", "--set=model.mlp=conv_swiglu",
            "--set=train.max_steps=3", "--set=train.eval_interval_steps=3", "--set=optim.dense=muon")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(out)
    assert ck.cfg.model.recursion == "urm" and "layers.0.mlp.dwconv.weight" in ck.model.state_dict()
    line = one_error_line(cli("train", "--out", tmp_path / "trm", *TINY_SETS, "--set=train.max_steps=1",
                              "--init-from", out / "last"), "another architecture", "model.recursion ('urm' there, 'trm' here)")
    assert "--init-from" in line or "model preset" in line
