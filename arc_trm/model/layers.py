"""Building blocks of the block stack: RMSNorm (post-norm), SwiGLU, ConvSwiGLU, RoPE, attention, MLP-t."""

from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from arc_trm.config import ModelConfig
from arc_trm.model.shift_conv import ROUNDINGS, kernel_conv, shift_conv


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """Truncated normal whose *actual* std is ``std`` (JAX/Flax semantics, as TRM uses)."""
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        sqrt2 = math.sqrt(2)
        a, b = math.erf(lower / sqrt2), math.erf(upper / sqrt2)
        z = (b - a) / 2
        c = (2 * math.pi) ** -0.5
        pdf_u, pdf_l = c * math.exp(-0.5 * lower ** 2), c * math.exp(-0.5 * upper ** 2)
        comp_std = std / math.sqrt(1 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z) ** 2)
        tensor.uniform_(a, b).erfinv_().mul_(sqrt2 * comp_std).clip_(lower * comp_std, upper * comp_std)
    return tensor


class Linear(nn.Module):
    """Bias-optional linear layer with truncated LeCun-normal init."""

    def __init__(self, d_in: int, d_out: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(d_out, d_in), std=d_in ** -0.5))
        self.bias = nn.Parameter(torch.zeros(d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weight, self.bias
        if x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type):
            # a bfloat16 stream without autocast: run in the stream's dtype, as the reference's
            # CastedLinear does (under autocast, autocast casts and caches the weights itself)
            w, b = w.to(x.dtype), (b.to(x.dtype) if b is not None else None)
        return F.linear(x, w, b)


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Parameter-free RMSNorm computed in float32 (the paper's post-norm has no gain); torch's
    fused kernel, bit-identical to x·rsqrt(mean(x²) + eps) in float32."""
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def swiglu_width(d: int, expansion: float) -> int:
    """Hidden width: ⅔·expansion·d rounded up to a multiple of 256."""
    return -(round(expansion * d * 2 / 3) // -256) * 256


class SwiGLU(nn.Module):
    def __init__(self, d: int, expansion: float):
        super().__init__()
        inter = swiglu_width(d, expansion)
        self.gate_up = Linear(d, 2 * inter)
        self.down = Linear(inter, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class ConvSwiGLU(nn.Module):
    """URM's channel MLP: SwiGLU whose gated activations pass a depthwise convolution over the
    token axis (kernel ``k``, padding k//2, bias; output cut to the sequence length, so with k = 2
    ``y'[t] = w0·y[t−1] + w1·y[t] + b``) and a SiLU before the down projection. As in URM's code the
    convolution's weight and bias are bf16 parameters and it runs in bf16 whatever the stream's
    dtype; its bf16 output then takes the down projection in bf16 too (the reference's
    CastedLinear follows its input's dtype). ``form`` (``model.conv_form``) picks torch's kernel or
    the fused shifted form (:mod:`arc_trm.model.shift_conv`); "auto" is settled per device by
    :func:`settle_conv_forms` before compilation, or as eager at the first call."""

    def __init__(self, d: int, expansion: float, kernel: int, form: str = "auto"):
        super().__init__()
        inter = swiglu_width(d, expansion)
        self.gate_up = Linear(d, 2 * inter)
        self.dwconv = nn.Conv1d(inter, inter, kernel, padding=kernel // 2, groups=inter, bias=True).to(torch.bfloat16)
        self.down = Linear(inter, d)
        self.form = form if kernel == 2 else "kernel"
        # the shifted form's rounding (shift_conv.ROUNDINGS), None for torch's kernel; settled per device
        self.rounding: str | None = None
        self.settled = self.form == "kernel"

    def settle(self, device: torch.device, compiled: bool = False) -> None:
        """Choose for ``device``. "auto" takes the shifted form when the model is compiled (the compiler fuses
        it; eager, three element-wise passes cost more than the kernel's one) and only with a rounding measured
        bit-identical with the kernel there; "shift" takes it anyway ("fused" where neither rounding is)."""
        if self.form == "shift" or (self.form == "auto" and compiled):
            exact = exact_shift_rounding(str(torch.device(device)))
            self.rounding = exact if self.form == "auto" else (exact or "fused")
        self.settled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        y = F.silu(gate) * up
        if not self.settled and not torch.compiler.is_compiling():
            self.settle(y.device)
        if self.rounding is not None:
            return self.down(F.silu(shift_conv(y, self.dwconv.weight, self.dwconv.bias, self.rounding)))
        return self.down(F.silu(kernel_conv(y, self.dwconv.weight, self.dwconv.bias)).contiguous())


def _forms_agree(device: str, rounding: str) -> bool:
    gen = torch.Generator().manual_seed(0)
    # the convolution alone over many elements: an order of additions shows in the forward only where
    # it moves a bf16 rounding (about one element in a million)
    y = (torch.randn(8, 512, 1536, generator=gen) * 2).to(torch.bfloat16).to(device)
    w = (torch.randn(1536, 1, 2, generator=gen) * 0.7).to(torch.bfloat16).to(device)
    b = (torch.randn(1536, generator=gen) * 0.3).to(torch.bfloat16).to(device)
    if not torch.equal(kernel_conv(y, w, b), shift_conv(y, w, b, rounding)):
        return False
    # the whole channel MLP, every gradient, in both streams: the layouts the gradients leave in
    for stream in (torch.float32, torch.bfloat16):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            kernel = ConvSwiGLU(512, 4.0, 2, "kernel")
        with torch.no_grad():      # weights of the scale training gives them (not the near-zero init)
            kernel.dwconv.weight.copy_(torch.randn(kernel.dwconv.weight.shape, generator=gen) * 0.7)
            kernel.dwconv.bias.copy_(torch.randn(kernel.dwconv.bias.shape, generator=gen) * 0.3)
        shifted = copy.deepcopy(kernel)
        shifted.rounding = rounding
        x = torch.randn(2, 41, 512, generator=gen).to(stream)
        g = torch.randn(2, 41, 512, generator=gen).to(stream)
        got = []
        for m in (kernel, shifted):
            m.to(device)
            xl = x.to(device).requires_grad_(True)
            out = m(xl)
            out.backward(g.to(device))
            got.append([out.detach(), xl.grad] + [p.grad for p in m.parameters()])
        if not all(torch.equal(a, b) for a, b in zip(*got)):
            return False
    return True


@functools.lru_cache(maxsize=None)
def exact_shift_rounding(device: str) -> str | None:
    """The rounding with which the shifted form gives what torch's kernel gives on ``device``, bit for bit:
    the output and every gradient (input, gate, down projection, convolution) of a ConvSwiGLU at URM's
    width (512, inner 1536) in a float32 and a bf16 stream; None when neither rounding does. Measured once
    per device and process (about a second on a CPU)."""
    # a measurement of its own, whatever the caller is inside (the no-gradient cycles, inference, autocast)
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(torch.device(device).type, enabled=False):
        return next((r for r in ROUNDINGS if _forms_agree(device, r)), None)


def settle_conv_forms(model: nn.Module, device: torch.device, compiled: bool) -> None:
    """Settle every ConvSwiGLU's form for the device the model runs on and whether it is compiled (before
    it is compiled, where the measurement cannot run)."""
    for m in model.modules():
        if isinstance(m, ConvSwiGLU):
            m.settle(device, compiled)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, max_len: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (..., D), with ``cos`` and ``sin`` broadcasting to it; rotate-half convention. Cast once to float32
    and rotated there, as the references do: in a bf16 stream the backward then adds its two paths in
    float32 and rounds once."""
    xf = x.float()
    half = xf.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    """Non-causal multi-head attention through ``scaled_dot_product_attention``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.hidden_size
        self.num_heads, self.head_dim = cfg.num_heads, d // cfg.num_heads
        self.qkv = Linear(d, 3 * d)
        self.out = Linear(d, d)

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None) -> torch.Tensor:
        """In the references' layout: q, k, v are slices of the projection's (B, S, 3·heads, D) view, rotated
        there, and only transposed (views) for the attention call. The gradients of q, k and v then land in
        one (B, S, 3·heads, D) buffer the projection's backward reads as it is; split from a (3, B, H, S, D)
        permutation instead, they were copied into it once per block application (measured: ten copies of
        that buffer per TRM training step, 2 % of the bytes its compiled kernels move)."""
        b, s, d = x.shape
        h = self.num_heads
        qkv = self.qkv(x).view(b, s, 3 * h, self.head_dim)
        q, k, v = qkv.split(h, dim=2)         # their gradients are concatenated (slices' would be zero-padded and summed)
        if rope is not None:
            cos, sin = rope.cos.unsqueeze(-2), rope.sin.unsqueeze(-2)      # (S, 1, D): over the heads
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=False)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    """Post-norm block: token mixing (attention or MLP over the sequence), then SwiGLU."""

    def __init__(self, cfg: ModelConfig, seq_total: int):
        super().__init__()
        self.eps = cfg.rms_norm_eps
        self.mlp_t = SwiGLU(seq_total, cfg.expansion) if cfg.mlp_t else None
        self.attn = None if cfg.mlp_t else Attention(cfg)
        self.mlp = (ConvSwiGLU(cfg.hidden_size, cfg.expansion, cfg.conv_kernel, cfg.conv_form) if cfg.mlp == "conv_swiglu"
                    else SwiGLU(cfg.hidden_size, cfg.expansion))

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None) -> torch.Tensor:
        if self.mlp_t is not None:
            xt = x.transpose(1, 2)
            x = rms_norm(xt + self.mlp_t(xt), self.eps).transpose(1, 2)
        else:
            x = rms_norm(x + self.attn(x, rope), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)
