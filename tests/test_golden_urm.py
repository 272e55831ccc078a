"""Golden float32 outputs of arc-trm's URM, from a checkpoint in URM's own format (built from its
names and shapes by :mod:`tests.urm_format`, imported through ``import-reference``'s mapping).

The numbers were written by this module with an implementation checked against URM's own code
(UbiquantAI/URM at 41de2c3, ``models/urm/urm.py``, ``layers.py``, ``muon.py``, flash-attn replaced
by SDPA in the same layout) on the CPU in float32, with the same weights: logits and halting
logits of three ACT steps, the loss, every dense gradient and the puzzle-embedding gradient were
bit-identical; two Muon steps were bit-identical with URM's ``msign`` run eagerly, and within one
bf16 unit (2e-3 on the bf16 convolution, 9e-5 elsewhere) with it compiled as URM ships it. Two
Adam-atan2 steps went through adam-atan2-pytorch on both sides (URM's CUDA-only adam_atan2 does not
install on a CPU). ``ARC_TRM_WRITE_GOLDEN=1`` rewrites the file: only for a deliberate, named
change of the math.
"""

from pathlib import Path

import torch

from arc_trm.convert.reference import strip_prefixes
from tests.golden_compat import golden, imported
from tests.test_golden import SEQ, _batch, mismatches
from tests.urm_format import small_urm_config, urm_state_dict

GOLDEN = Path(__file__).parent / "golden" / "urm_float32.safetensors"
_W = strip_prefixes(urm_state_dict(small_urm_config(), puzzle_ids=4, seed=0))


_model, _table = imported(small_urm_config, _W, "urm-format test checkpoint")


def compute() -> dict[str, torch.Tensor]:
    from tests.golden_compat import eval_steps, grads_of_one_step, one_training_step
    out = {}
    out.update(eval_steps(small_urm_config, _batch, _table, SEQ, _model))
    out.update(grads_of_one_step(small_urm_config, _batch, _table, SEQ, _model))
    for dense in ("adam_atan2", "muon"):
        steps = one_training_step(small_urm_config, _batch, _table, SEQ, _model, dense=dense)
        out.update({f"{dense}.{k}": v for k, v in steps.items()})
    return {k: v.float() if v.dtype == torch.bfloat16 else v for k, v in out.items()}


def test_urm_matches_the_golden_file():
    got = compute()
    want = golden(got, GOLDEN)
    assert sorted(got) == sorted(want)
    assert mismatches(got, want) == []
    # not trivial: the halting head and the convolution took gradients, Muon and Adam-atan2 differ
    assert (want["grad.layers.0.mlp.dwconv.weight"].abs() > 0).any() and want["grad.q_head.weight"][0].abs().sum() > 0
    assert not torch.equal(want["muon.trained.layers.0.attn.qkv.weight"], want["adam_atan2.trained.layers.0.attn.qkv.weight"])


def test_the_imported_urm_keeps_every_tensor_exactly():
    m = _model(SEQ)
    sd = m.state_dict()
    assert sd["layers.0.mlp.dwconv.weight"].dtype == torch.bfloat16
    assert torch.equal(sd["layers.0.mlp.dwconv.weight"], _W["layers.0.mlp.dwconv.weight"])
    assert torch.equal(sd["q_head.weight"], _W["q_head.weight"]) and torch.equal(sd["init_hidden"], _W["init_hidden"])
    assert sum(p.numel() for p in m.parameters()) == sum(
        v.numel() for k, v in _W.items() if k not in ("init_hidden", "puzzle_emb.weights"))
