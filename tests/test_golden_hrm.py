"""Golden float32 outputs of arc-trm's HRM, from a checkpoint in the TRM repository's HRM format (built from
its names and shapes by :mod:`tests.hrm_format`, imported through ``import-reference``'s mapping).

The numbers were written by this module with an implementation checked against the TRM repository's own
``models/recursive_reasoning/hrm.py`` and ``models/losses.py`` (SamsungSAILMontreal/TinyRecursiveModels at
e7b6871) on the CPU with the same weights: logits, halt and continue logits of three ACT steps, the
continue target, both carried states, the loss with its Q-continue term, every dense gradient and the
puzzle-embedding gradient were bit-identical in float32, and so were two Adam-atan2 and sign-SGD steps
(adam-atan2-pytorch on both sides; the reference's CUDA-only adam_atan2 does not install on a CPU). In
bf16 the same held except the token table's gradient, which arc-trm sums in float32 on purpose.
``ARC_TRM_WRITE_GOLDEN=1`` rewrites the file: only for a deliberate, named change of the math.
"""

from pathlib import Path

import torch

from arc_trm.convert.reference import strip_prefixes
from tests.golden_compat import golden, imported
from tests.hrm_format import hrm_state_dict, small_hrm_config
from tests.test_golden import SEQ, _batch, mismatches

GOLDEN = Path(__file__).parent / "golden" / "hrm_float32.safetensors"
_W = strip_prefixes(hrm_state_dict(small_hrm_config(), puzzle_ids=4, seed=0))


_model, _table = imported(small_hrm_config, _W, "hrm-format test checkpoint")


def compute() -> dict[str, torch.Tensor]:
    from tests.golden_compat import eval_steps, grads_of_one_step, one_training_step
    out = {}
    out.update(eval_steps(small_hrm_config, _batch, _table, SEQ, _model))
    out.update(grads_of_one_step(small_hrm_config, _batch, _table, SEQ, _model))
    out.update(one_training_step(small_hrm_config, _batch, _table, SEQ, _model))
    return out


def test_hrm_matches_the_golden_file():
    got = compute()
    want = golden(got, GOLDEN)
    assert sorted(got) == sorted(want)
    assert mismatches(got, want) == []
    # not trivial: both modules and both halting rows took gradients, the continue logit was trained
    assert want["grad.h_layers.0.attn.qkv.weight"].abs().sum() > 0 and want["grad.layers.1.mlp.down.weight"].abs().sum() > 0
    assert (want["grad.q_head.weight"].abs().sum(-1) > 0).all()
    assert want["grad.continue_loss"].item() > 0


def test_the_imported_hrm_keeps_every_tensor_exactly():
    m = _model(SEQ)
    sd = m.state_dict()
    assert torch.equal(sd["h_layers.1.attn.qkv.weight"], _W["H_level.layers.1.self_attn.qkv_proj.weight"])
    assert torch.equal(sd["layers.0.mlp.down.weight"], _W["L_level.layers.0.mlp.down_proj.weight"])
    assert torch.equal(sd["q_head.weight"], _W["q_head.weight"]) and torch.equal(sd["L_init"], _W["L_init"])
    assert sum(p.numel() for p in m.parameters()) == sum(
        v.numel() for k, v in _W.items() if k not in ("H_init", "L_init", "puzzle_emb.weights"))
