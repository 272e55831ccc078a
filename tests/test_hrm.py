"""HRM, the third core, on every path: presets and its parameter count, FLOP counts and memory, import of
checkpoints in the TRM repository's and in sapientinc/HRM's layout (compiled prefix, both modules, both
halting rows, all_config.yaml), predict on them, the smoke recipe through the CLI, 1 and 2 processes
equal, resume equal to uninterrupted, and the one-line refusals."""

import json

import pytest
import torch
import yaml
from accelerate import Accelerator

from arc_trm.config import load_config
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.kaggle.budget import L4X4, project
from arc_trm.model import checkpoint
from arc_trm.model.build import build_model
from arc_trm.model.flops import blocks_per_step, train_example_flops, view_flops
from arc_trm.model.memory import bytes_per_sample
from arc_trm.convert.reference import strip_prefixes
from tests.helpers import run_two_processes, tiny_config, tiny_dataset
from tests.hrm_format import hrm_state_dict, small_hrm_config
from tests.test_cli_errors import TINY_SETS, cli, one_error_line
from tests.test_train import OPTIM, _assert_same, _session, _snapshot, _steps, assert_resume_equals_uninterrupted


def test_hrm_presets_are_the_papers_and_run_as_the_trm_repository_runs_them():
    m = load_config("hrm-arc1-paper").model
    assert (m.core, m.hidden_size, m.num_heads, m.hrm.h_layers, m.num_layers, m.H_cycles, m.L_cycles,
            m.halt_max_steps, m.puzzle_emb_len, m.stream_dtype, m.no_ACT_continue) == \
        ("hrm", 512, 8, 4, 4, 2, 2, 16, 1, "bfloat16", False)
    assert sum(p.numel() for p in build_model(m, 900).parameters()) == 27_276_290     # the paper's 27 M
    for name, tasks in (("hrm-arc1-paper", "arc1-train"), ("hrm-arc2-paper", "arc2-train")):
        cfg = load_config(name)
        assert cfg.data.tasks == [tasks, "conceptarc"] and cfg.data.augmentations == 1000
        assert (cfg.train.global_batch_size, cfg.train.epochs, cfg.train.eval_interval_epochs, cfg.optim.lr,
                cfg.optim.lr_warmup_steps, cfg.optim.puzzle_emb_lr, cfg.optim.weight_decay, cfg.optim.ema) == \
            (768, 100000, 10000, 1e-4, 2000, 1e-2, 0.1, False)
    smoke = load_config("smoke", model="hrm-tiny")
    assert smoke.model.core == "hrm" and smoke.name == "smoke-hrm-tiny"
    assert "HRM, 512 wide, 4 + 4 layers (H + L)" in m.describe()


def test_hrm_costs_24_block_applications_per_step_8_with_gradient_and_a_target_pass_in_training():
    hrm, trm = load_config("hrm-arc1-paper").model, load_config("arc1-paper").model
    assert blocks_per_step(hrm) == (24, 8) and blocks_per_step(trm) == (30, 10)
    per_block = view_flops(hrm) / 16 / 24
    # 16 blocks forward without gradient + 8 forward and backward, then the whole step again for the target
    assert train_example_flops(hrm) == pytest.approx((16 + 3 * 8 + 24) * per_block)
    assert train_example_flops(hrm, weight_grads=False) == pytest.approx((16 + 2 * 8 + 24) * per_block)
    assert bytes_per_sample(hrm, 30, "cuda", "bf16") < bytes_per_sample(trm, 30, "cuda", "bf16")    # 8 < 10 blocks
    kaggle = load_config("kaggle-l4x4")
    assert project(hrm, kaggle.ttt, kaggle.predict, L4X4).total_s > 0


# ----------------------------------------------------------------------------- import
def _hrm_files(root, arch_name="recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1", config=True):
    cfg = small_hrm_config()
    raw = hrm_state_dict(cfg, puzzle_ids=4, seed=1)
    step = root / "step_1000"
    torch.save(raw, step)
    if config:
        arch = {"name": arch_name, "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"},
                "halt_exploration_prob": 0.1, "halt_max_steps": cfg.halt_max_steps, "H_cycles": cfg.H_cycles,
                "L_cycles": cfg.L_cycles, "H_layers": cfg.hrm.h_layers, "L_layers": cfg.num_layers,
                "hidden_size": cfg.hidden_size, "num_heads": cfg.num_heads, "expansion": cfg.expansion,
                "puzzle_emb_ndim": cfg.hidden_size, "pos_encodings": "rope"}
        if "recursive_reasoning" in arch_name:          # the TRM repository's copy names its dtype and mixer
            arch.update(forward_dtype="float32", mlp_t=False)
        (root / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch, "global_batch_size": 768}))
    tasks = make_tasks(1, seed=3, prefix="k")
    names = ["<blank>", tasks[0].task_id, f"{tasks[0].task_id}|||t1|||0123456789", f"{tasks[0].task_id}|||t2|||0213456789"]
    (root / "identifiers.json").write_text(json.dumps(names))
    return step, raw, tasks


def _reference_name(ours: str) -> str:
    n = {"embed_tokens": "embed_tokens.embedding_weight"}.get(ours, ours)
    for a, b in ((".attn.qkv.", ".self_attn.qkv_proj."), (".attn.out.", ".self_attn.o_proj."),
                 (".mlp.gate_up.", ".mlp.gate_up_proj."), (".mlp.down.", ".mlp.down_proj.")):
        n = n.replace(a, b)
    if n.startswith("layers."):
        return "L_level." + n
    return "H_level.layers." + n[len("h_layers."):] if n.startswith("h_layers.") else n


@pytest.mark.parametrize("arch_name", ["recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1",
                                       "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1"])
def test_an_hrm_checkpoint_imports_with_every_tensor_exact_and_predicts(arch_name, tmp_path):
    step, raw, tasks = _hrm_files(tmp_path, arch_name)
    r = cli("import-reference", step, "--identifiers", tmp_path / "identifiers.json", "--out", tmp_path / "ck")
    assert r.returncode == 0, r.stderr
    assert "read the run's config beside the checkpoint" in r.stdout
    assert "HRM, 32 wide, 2 + 2 layers (H + L), swiglu, H2 x L2, 3 halting steps" in r.stdout
    ck = checkpoint.load(tmp_path / "ck")
    m = ck.cfg.model
    assert (m.core, m.hrm.h_layers, m.num_layers, m.H_cycles, m.L_cycles, m.puzzle_emb_len, m.no_ACT_continue) == \
        ("hrm", 2, 2, 2, 2, 1, False)
    # sapientinc's config names no forward_dtype: its code's default, bf16, as the published runs
    assert m.stream_dtype == ("float32" if "recursive_reasoning" in arch_name else "bfloat16")
    w = strip_prefixes(raw)
    for ours, t in ck.model.state_dict().items():
        assert torch.equal(t, w[_reference_name(ours)]), ours          # both modules, both Q rows, the initial states
    assert ck.puzzles.num_plans == 3 and torch.equal(ck.table.weight[1:], w["puzzle_emb.weights"][1:])
    if "recursive_reasoning" in arch_name:
        return            # predict runs the same code for both layouts: once, in sapientinc's bf16 stream
    write_challenges(make_tasks(2, seed=5, prefix="new", max_side=5) + tasks[:1], tmp_path / "t_challenges.json")
    r = cli("predict", "--checkpoint", tmp_path / "ck", "--tasks", tmp_path / "t_challenges.json", "--out",
            tmp_path / "sub.json", "--set", "ttt.embedding_steps=2", "--set", "ttt.full_steps=2", "--set",
            "ttt.augmentations=2", "--set", "predict.views_per_input=2", "--set", "ttt.global_batch_size=4")
    assert r.returncode == 0, r.stderr
    assert len(json.loads((tmp_path / "sub.json").read_text())) == 3 and "TTT steps embeddings 2, full 2" in r.stdout


def test_bad_hrm_input_is_one_line_and_writes_nothing(tmp_path):
    step, raw, _ = _hrm_files(tmp_path, config=False)
    broken = {k: v for k, v in raw.items() if ".L_level." not in k}      # the low-level module missing
    torch.save(broken, tmp_path / "broken")
    one_error_line(cli("import-reference", tmp_path / "broken", "--set", "model.num_heads=2", "--out",
                       tmp_path / "a"), "missing module L_level")
    from tests.test_reference import PREFIX as TRM_PREFIX, reference_tensors
    torch.save({TRM_PREFIX + k: v for k, v in reference_tensors(3).items()}, tmp_path / "trm_step")
    (tmp_path / "hrm.yaml").write_text(yaml.safe_dump({"arch": {
        "name": "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1", "hidden_size": 32, "num_heads": 2,
        "H_layers": 2, "L_layers": 2}}))
    one_error_line(cli("import-reference", tmp_path / "trm_step", "--config", tmp_path / "hrm.yaml", "--out",
                       tmp_path / "b"), "the config describes a HRM but the weights are a TRM's")
    # the field's old name (model.recursion) still reads, checked under its new one
    one_error_line(cli("train", "--out", tmp_path / "c", *TINY_SETS, "--set=model.recursion=hmr"),
                   "model.core must be one of 'trm', 'urm', 'hrm'")
    one_error_line(cli("train", "--out", tmp_path / "d", *TINY_SETS, "--set=model.core=hrm",
                       "--set=model.hrm.h_layers=0"), "model.hrm.h_layers = 0: must be at least 1")
    assert not any((tmp_path / x).exists() for x in "abcd")


# ----------------------------------------------------------------------------- training
def test_the_smoke_recipe_trains_an_hrm_on_the_cpu(tmp_path):
    r = cli("train", "--preset", "smoke", "--model", "hrm-tiny", "--out", tmp_path / "run", "--set",
            "train.max_steps=20", "--set", "train.eval_interval_steps=10", "--set", "train.max_eval_views=2")
    assert r.returncode == 0, r.stderr
    assert "HRM" in json.dumps(checkpoint.load(tmp_path / "run").cfg.model.describe())
    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert [e["step"] for e in evals] == [10, 20]


def test_hrm_on_two_processes_and_micro_batches_equals_one_process(tmp_path):
    run_two_processes("tests.test_train", "_world_worker", str(tmp_path / "two-hrm.pt"))
    two = torch.load(tmp_path / "two-hrm.pt")
    s = _session(Accelerator(cpu=True), tiny_dataset(), tiny_config("hrm"))
    one = _snapshot(s, [m["loss"] for m in _steps(s, 4)])
    s.close()
    s = _session(Accelerator(cpu=True), tiny_dataset(), tiny_config("hrm"), micro=4)
    micro = _snapshot(s, [m["loss"] for m in _steps(s, 4)])
    assert any(k.startswith("h_layers.") for k in one["w"])
    _assert_same(two, one)
    _assert_same(micro, one)


def test_hrm_resume_equals_uninterrupted(tmp_path):
    assert_resume_equals_uninterrupted(tmp_path, "hrm", OPTIM)


def test_a_config_written_before_the_cores_had_folders_still_reads():
    """Checkpoints and preset files name the core ``model.recursion`` and HRM's module ``model.h_layers``:
    both read, into ``model.core`` and ``model.hrm.h_layers``."""
    from arc_trm.config import RunConfig
    old = RunConfig().to_dict()
    for moved in ("core", "hrm", "vit"):
        old["model"].pop(moved, None)
    old["model"].update(recursion="hrm", h_layers=3, no_ACT_continue=False)
    cfg = RunConfig.from_dict(old)
    assert (cfg.model.core, cfg.model.hrm.h_layers) == ("hrm", 3)
    old["model"].update(recursion="urm", h_layers=0, no_ACT_continue=True)    # a URM's: no HRM module
    assert RunConfig.from_dict(old).model.core == "urm"
