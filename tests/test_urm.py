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
from arc_trm.model.flops import application_flops, blocks_per_step, train_example_flops
from arc_trm.model.memory import bytes_per_sample
from arc_trm.convert.reference import strip_prefixes
from tests.test_cli_errors import ROOT, TINY_SETS, cli, one_error_line
from tests.urm_format import small_urm_config, urm_state_dict


def test_urm_presets_resolve_to_the_published_settings():
    for name, dense, tasks in (("urm-arc1-paper", "adam_atan2", "arc1-train"), ("urm-arc2-paper", "muon", "arc2-train")):
        cfg = load_config(name)
        m = cfg.model
        assert (m.core, m.mlp, m.num_layers, m.hidden_size, m.num_heads, m.H_cycles, m.L_cycles,
                m.halt_max_steps, m.puzzle_emb_len, m.stream_dtype) == \
            ("urm", "conv_swiglu", 4, 512, 8, 2, 6, 16, 1, "bfloat16")
        assert (cfg.optim.puzzle_emb_lr, cfg.optim.lr, cfg.optim.lr_warmup_steps, cfg.optim.weight_decay,
                cfg.optim.ema_rate, cfg.train.global_batch_size, cfg.train.epochs, cfg.train.eval_interval_epochs,
                cfg.data.augmentations) == (1e-2, 1e-4, 2000, 0.1, 0.999, 768, 200000, 2000, 1000)
        assert cfg.optim.dense == dense and cfg.data.tasks == [tasks, "conceptarc"]
        # URM's pretrain.py: its first step at lr 0, its EMAHelper's arithmetic, its dataset builder's seed
        assert (cfg.optim.warmup_start, cfg.optim.ema_update, cfg.data.seed) == ("zero", "reference", 42)
    paper = build_model(load_config("urm-paper").model, 900)
    assert sum(p.numel() for p in paper.parameters()) == 13_663_234          # URM's own count


def test_urms_schedule_starts_at_lr_zero_and_its_ema_is_computed_as_urms_code_computes_it():
    from arc_trm.model.ema import EMA
    from arc_trm.model.optim import lr_at
    # URM's cosine_schedule_with_warmup_lr_lambda at its step counter (0 for the first update)
    assert [lr_at(k, 1e-4, 2000, 10**6, 1.0, "zero") for k in (0, 1, 1999, 2000)] == \
        pytest.approx([0.0, 1e-4 / 2000, 1e-4 * 1999 / 2000, 1e-4], rel=1e-12)
    assert lr_at(0, 1e-4, 2000, 10**6, 1.0) == pytest.approx(1e-4 / 2000)   # TRM's: the counter advanced first
    m = build_model(ModelConfig(hidden_size=32, num_heads=2, mlp="conv_swiglu", puzzle_emb_len=1), 16)
    ema = {mode: EMA(m, 0.999, mode) for mode in ("lerp", "reference", "float32")}
    conv = "layers.0.mlp.dwconv.weight"
    start = ema["reference"].shadow[conv].clone()
    with torch.no_grad():
        for step in range(20):
            for p in m.parameters():
                p.add_(0.01 if p.dtype == torch.bfloat16 else 1e-3)
            want = (1.0 - 0.999) * dict(m.named_parameters())[conv].detach() + 0.999 * start   # URM's line, in bf16
            for e in ema.values():
                e.update(m)
            start = want
    assert ema["reference"].shadow[conv].dtype == torch.bfloat16 and torch.equal(ema["reference"].shadow[conv], want)
    # the three round differently on a bf16 parameter; a float32 shadow keeps steps bf16 rounds away
    assert ema["float32"].shadow[conv].dtype == torch.float32
    assert not torch.equal(ema["lerp"].shadow[conv], ema["reference"].shadow[conv])
    assert not torch.equal(ema["float32"].shadow[conv].bfloat16(), ema["reference"].shadow[conv])


def test_a_run_preset_takes_another_model_preset():
    cfg = load_config("smoke", model="urm-tiny")
    assert cfg.model.core == "urm" and cfg.model.mlp == "conv_swiglu" and cfg.name == "smoke-urm-tiny"
    assert cfg.data.synthetic_tasks == load_config("smoke").data.synthetic_tasks       # the run's settings stay
    r = cli("train", "--model", "smoke", "--out", "x")
    one_error_line(r, "not a model preset")


def test_urm_costs_48_block_applications_per_step_24_with_gradient():
    urm, trm = load_config("urm-paper").model, load_config("trm-paper-att").model
    assert blocks_per_step(urm) == (48, 24) and blocks_per_step(trm) == (30, 10)
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
    assert (m.core, m.mlp, m.H_cycles, m.L_cycles, m.halt_max_steps, m.num_layers, m.puzzle_emb_len,
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


def _pretrain_py_files(root, with_config=True):
    """A step_N.pt as URM's pretrain.py saves it (save_train_state) and, beside it, the config.yaml its
    save_code_and_config writes: the PretrainConfig dumped as YAML, the arch table inline."""
    cfg = small_urm_config()
    raw = urm_state_dict(cfg, puzzle_ids=4, seed=1)
    adam_like = {"state": {0: {"step": torch.tensor(7.0), "exp_avg": torch.zeros(3), "exp_avg_sq": torch.ones(3)}},
                 "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.95), "weight_decay": 0.1, "params": [0]}]}
    sign_sgd = {"state": {}, "param_groups": [{"lr": 1e-2, "weight_decay": 0.1, "world_size": 8, "params": [0, 1, 2]}]}
    state = {"step": 1000, "model_state_dict": raw, "optimizer_states": [sign_sgd, adam_like],
             "rng_state": torch.random.get_rng_state()}
    step = root / "step_1000.pt"
    torch.save(state, step)
    if with_config:
        config = {"arch": {"name": "urm.urm@URM", "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
                           "loops": cfg.halt_max_steps, "num_layers": cfg.num_layers, "hidden_size": cfg.hidden_size,
                           "num_heads": cfg.num_heads, "expansion": cfg.expansion, "H_cycles": cfg.H_cycles,
                           "L_cycles": cfg.L_cycles, "loop_deltas": [0, 8], "puzzle_emb_ndim": cfg.hidden_size,
                           "pos_encodings": "rope", "profile": True},
                  "data_path": "data/arc2concept-aug-1000", "evaluators": [{"name": "arc@ARC"}], "global_batch_size": 768,
                  "epochs": 200000, "lr": 1e-4, "lr_min_ratio": 1.0, "lr_warmup_steps": 2000, "weight_decay": 0.1,
                  "beta1": 0.9, "beta2": 0.95, "target_q_update_every": 4, "puzzle_emb_lr": 1e-2,
                  "puzzle_emb_weight_decay": 0.1, "grad_accum_steps": 1, "project_name": None,
                  "run_name": "URM-arcagi2", "checkpoint_path": str(root), "seed": 0, "eval_interval": 2000,
                  "ema": True, "ema_rate": 0.999, "use_muon": True}
        (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return step, raw


def test_urms_own_training_checkpoint_imports_with_the_config_beside_it(tmp_path):
    step, raw = _pretrain_py_files(tmp_path)
    r = cli("import-reference", step, "--out", tmp_path / "ck")
    assert r.returncode == 0, r.stderr
    assert "read the model_state_dict of a training checkpoint (step 1000)" in r.stdout
    assert f"read the run's config beside the checkpoint: {tmp_path / 'config.yaml'}" in r.stdout
    ck = checkpoint.load(tmp_path / "ck")
    m = ck.cfg.model
    assert (m.core, m.H_cycles, m.L_cycles, m.halt_max_steps, m.num_layers) == ("urm", 2, 2, 3, 2)
    assert ck.cfg.optim.dense == "muon" and ck.info["reference_step"] == 1000
    sd, w = ck.model.state_dict(), strip_prefixes(raw)
    assert torch.equal(sd["layers.1.mlp.dwconv.weight"], w["layers.1.mlp.dwconv.weight"])
    assert torch.equal(sd["q_head.weight"], w["q_head.weight"]) and torch.equal(sd["init_hidden"], w["init_hidden"])
    assert torch.equal(sd["layers.0.attn.qkv.weight"], w["layers.0.self_attn.qkv_proj.weight"])


def test_urms_own_training_checkpoint_without_any_config_takes_urms_published_settings(tmp_path):
    step, _ = _pretrain_py_files(tmp_path, with_config=False)
    r = cli("import-reference", step, "--set", "model.num_heads=2", "--out", tmp_path / "ck")
    assert r.returncode == 0, r.stderr
    assert "took URM's published ARC settings for what the tensors cannot tell (num_heads 8, H_cycles 2, " \
           "L_cycles 6, halt_max_steps 16" in r.stdout
    m = checkpoint.load(tmp_path / "ck").cfg.model
    assert (m.core, m.mlp, m.H_cycles, m.L_cycles, m.halt_max_steps, m.stream_dtype) == \
        ("urm", "conv_swiglu", 2, 6, 16, "bfloat16")
    other = tmp_path / "other.pt"
    torch.save({"step": 3, "optimizer_states": []}, other)
    one_error_line(cli("import-reference", other, "--out", tmp_path / "x"), "not a tensor state dict (it holds "
                   "optimizer_states, step")


def test_predict_and_package_run_on_an_imported_urm(imported, tmp_path, wheelhouse):
    root, _, tasks, _ = imported
    write_challenges(tasks, tmp_path / "k_challenges.json")
    r = cli("predict", "--checkpoint", root / "ck", "--tasks", tmp_path / "k_challenges.json", "--out",
            tmp_path / "s.json", "--ttt", "embeddings", "--set=ttt.embedding_steps=2", "--set=ttt.augmentations=2",
            "--set=ttt.global_batch_size=4", "--set=predict.views_per_input=2")
    assert r.returncode == 0, r.stderr
    assert "pass@2" in r.stdout and json.loads((tmp_path / "s.json").read_text()).keys() == {tasks[0].task_id}
    r = cli("package", "--checkpoint", root / "ck", "--out", tmp_path / "pkg", "--competition",
            "arc-prize-2026-arc-agi-2", "--owner", "someone", "--offline", "--wheelhouse", wheelhouse)
    assert r.returncode == 0, r.stderr
    assert "model: URM, 32 wide, 2 layers, conv_swiglu, H2 x L2, 3 halting steps" in r.stdout
    assert "FLOP projection on 4x L4" in r.stdout


@pytest.mark.parametrize("case", ["no_conv", "trm_config", "recursion_typo", "dense_typo"])
def test_bad_urm_input_is_one_line_and_writes_nothing(case, tmp_path):
    step, raw, _ = _urm_files(tmp_path, arch_name="trm.trm@TRM" if case == "trm_config" else "urm.urm@URM")
    if case == "no_conv":
        torch.save({k: v for k, v in raw.items() if ".dwconv." not in k}, step)
    extra = {"recursion_typo": ["--set", "model.core=urn"], "dense_typo": ["--set", "optim.dense=adam"]}.get(case, [])
    r = cli("import-reference", step, "--config", tmp_path / "all_config.yaml", "--out", tmp_path / "out", *extra)
    want = {"no_conv": "missing tensor layers.0.mlp.dwconv.weight", "trm_config": "the config describes a TRM but the "
            "weights are a URM's", "recursion_typo": "model.core must be one of 'trm', 'urm'",
            "dense_typo": "optim.dense must be one of 'adam_atan2', 'muon'"}[case]
    one_error_line(r, want)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- training through the CLI
def test_smoke_trains_a_urm_and_init_from_refuses_mixing_architectures(tmp_path):
    out = tmp_path / "urm"
    r = cli("train", "--out", out, *TINY_SETS, "--set=model.core=urm", "--set=model.mlp=conv_swiglu",
            "--set=train.max_steps=3", "--set=train.eval_interval_steps=3", "--set=optim.dense=muon")
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(out)
    assert ck.cfg.model.core == "urm" and "layers.0.mlp.dwconv.weight" in ck.model.state_dict()
    line = one_error_line(cli("train", "--out", tmp_path / "trm", *TINY_SETS, "--set=train.max_steps=1",
                              "--init-from", out / "last"), "another architecture", "model.core ('urm' there, 'trm' here)")
    assert "--init-from" in line or "model preset" in line
