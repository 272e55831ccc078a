"""URM's convolution as a shifted multiply-add (``model.conv_form``): bit-identical to URM's own call of
torch's depthwise kernel, forward and every gradient, at the paper's width in a float32 and a bf16 stream;
and at model level: logits, halting logits, carried state, loss and every gradient of URM's training step."""

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from arc_trm.config import ModelConfig, load_config
from arc_trm.errors import ArcTrmError
from arc_trm.model.build import build_model
from arc_trm.model.layers import ConvSwiGLU, exact_shift_rounding, settle_conv_forms
from arc_trm.model.losses import step_loss
from arc_trm.model.recursion import Carry, act_step
from arc_trm.model.shift_conv import ROUNDINGS
from tests.test_golden import SEQ, _batch
from tests.test_golden_bf16 import _model_fn, _table, urm_cfg


def urm_forward(m: ConvSwiGLU, x: torch.Tensor) -> torch.Tensor:
    """URM's ConvSwiGLU.forward (UbiquantAI/URM models/layers.py) line for line, on ``m``'s weights; its
    CastedLinear runs in its input's dtype."""
    def casted(lin, t):
        return F.linear(t, lin.weight.to(t.dtype))
    gate, up = casted(m.gate_up, x).chunk(2, dim=-1)
    x_ffn = F.silu(gate) * up
    x_conv = m.dwconv(x_ffn.transpose(1, 2).to(m.dwconv.weight.dtype))
    x_conv = x_conv[..., :up.size(1)]
    x_conv = F.silu(x_conv)
    x_conv = x_conv.transpose(1, 2).contiguous()
    return casted(m.down, x_conv)


def _trained_scale(m: ConvSwiGLU) -> ConvSwiGLU:
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        m.dwconv.weight.copy_(torch.randn(m.dwconv.weight.shape, generator=g) * 0.7)
        m.dwconv.bias.copy_(torch.randn(m.dwconv.bias.shape, generator=g) * 0.3)
    return m


@pytest.mark.parametrize("stream", [torch.float32, torch.bfloat16])
def test_shifted_convolution_is_urms_bit_for_bit_at_512_wide(stream):
    torch.manual_seed(0)
    ours = _trained_scale(ConvSwiGLU(512, 4.0, 2, "auto"))
    ours.settle(torch.device("cpu"), compiled=True)
    assert ours.rounding is not None and ours.dwconv.weight.dtype == torch.bfloat16
    ref = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 900 // 9 + 1, 512, generator=g).to(stream)    # 4 x 101 tokens, 1536 channels inside
    up = torch.randn(x.shape, generator=g).to(stream)
    got = []
    for run, m in ((urm_forward, ref), (ConvSwiGLU.forward, ours)):
        xl = x.clone().requires_grad_(True)
        out = run(m, xl)
        out.backward(up)
        got.append({"out": out.detach(), "grad.x": xl.grad, **{f"grad.{n}": p.grad for n, p in m.named_parameters()}})
    want, have = got
    assert sorted(have) == ["grad.down.weight", "grad.dwconv.bias", "grad.dwconv.weight", "grad.gate_up.weight",
                            "grad.x", "out"]
    differ = {k: (want[k] != have[k]).sum().item() for k in want}
    assert differ == dict.fromkeys(want, 0)
    assert all(want[k].abs().sum() > 0 for k in want)          # nothing compared is trivially zero


def _one_training_step(cfg: ModelConfig) -> dict[str, torch.Tensor]:
    m = _model_fn(lambda: cfg)(SEQ).train()
    table, batch = _table(cfg.hidden_size), _batch()
    carry = Carry.initial(m, batch)
    out = {}
    for s in range(3):        # the state carried over three ACT steps; the loss of the last one
        m.zero_grad(set_to_none=True)
        carry, o = act_step(m, cfg, carry, batch, lambda ids: table.lookup(ids, True), True,
                            torch.tensor([0, 2, 0, 3], dtype=torch.int32))
        out.update({f"{s}.logits": o["logits"].detach(), f"{s}.q_halt": o["q_halt"].detach(),
                    f"{s}.state": carry.z_H.detach()})
        loss, *_ = step_loss(o, cfg.loss)
        (loss / 4).backward()
        out[f"{s}.loss"] = loss.detach()
    out.update({f"grad.{n}": p.grad for n, p in m.named_parameters()})
    return out


@pytest.mark.parametrize("stream", ["float32", "bfloat16"])
def test_urm_training_step_is_bit_identical_with_the_shifted_convolution(stream):
    """URM at the paper's width (512, 8 heads, 4 layers): the kernel (URM's call) against the shifted form."""
    base = dict(vars(urm_cfg()), stream_dtype=stream)
    kernel = _one_training_step(ModelConfig(**{**base, "conv_form": "kernel"}))
    shifted = _one_training_step(ModelConfig(**{**base, "conv_form": "shift"}))
    assert sorted(kernel) == sorted(shifted) and any(".dwconv." in k for k in kernel)
    assert [k for k in kernel if not torch.equal(kernel[k], shifted[k])] == []


def test_auto_takes_the_shifted_form_only_compiled_and_where_it_was_measured_identical():
    cfg = load_config("smoke", model="urm-tiny").model
    assert cfg.conv_form == "auto"
    m = build_model(cfg, 16)
    convs = [x for x in m.modules() if isinstance(x, ConvSwiGLU)]
    assert convs and not any(c.settled for c in convs)        # not settled until it meets its device
    settle_conv_forms(m, torch.device("cpu"), compiled=False)
    assert all(c.settled and c.rounding is None for c in convs)      # eager: torch's kernel, the faster there
    settle_conv_forms(m, torch.device("cpu"), compiled=True)
    # the CPU this runs on: one rounding is measured identical, so compiled auto takes the fused form with it
    # (with oneDNN held to AVX2, as conftest holds it on x86-64, the stepwise order)
    rounding = exact_shift_rounding("cpu")
    assert rounding in ROUNDINGS and all(c.rounding == rounding for c in convs)
    if os.environ.get("ONEDNN_MAX_CPU_ISA") == "AVX2":
        assert rounding == "stepwise"
    three = ConvSwiGLU(32, 2.0, 3, "auto")
    three.settle(torch.device("cpu"), compiled=True)
    assert three.rounding is None                               # only kernel 2 has a shifted form
    with pytest.raises(ArcTrmError, match="conv_form = shift computes a kernel-2 convolution"):
        load_config("smoke", ["model.conv_form=shift", "model.conv_kernel=3"], model="urm-tiny")


def test_auto_finds_an_identical_rounding_on_the_cpus_own_instruction_set():
    """Users run without the suite's AVX2 pin: the machine's widest instruction set rounds differently."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    r = subprocess.run([sys.executable, "-c", "from arc_trm.model.layers import exact_shift_rounding as e; "
                        "print(e('cpu'))"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ROUNDINGS


def test_compiled_shifted_form_computes_the_convolution_to_bf16_rounding():
    """Compiled, the compiler fuses the shifted form with the gate; like any compiled graph (the kernel's
    too) it rounds a fused intermediate differently from eager, by bf16 units, never by more."""
    torch.manual_seed(0)
    eager = _trained_scale(ConvSwiGLU(64, 4.0, 2, "kernel"))
    fused = copy.deepcopy(eager)
    fused.form = "auto"
    fused.settle(torch.device("cpu"), compiled=True)
    assert fused.rounding in ROUNDINGS
    step = torch.compile(fused)
    g = torch.Generator().manual_seed(2)
    x, up = torch.randn(3, 20, 64, generator=g), torch.randn(3, 20, 64, generator=g)
    got = []
    for m, run in ((eager, eager), (fused, step)):
        xl = x.clone().requires_grad_(True)
        out = run(xl)
        out.backward(up)
        got.append([out.detach(), xl.grad] + [p.grad for p in m.parameters()])
    for want, have in zip(*got):
        scale = want.float().abs().max()
        assert scale > 0 and (want.float() - have.float()).abs().max() <= 4 * 2.0 ** -8 * scale
