"""Building blocks of the block stack: RMSNorm (post-norm), SwiGLU, ConvSwiGLU, RoPE, attention, MLP-t."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from arc_trm.config import ModelConfig


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
    CastedLinear follows its input's dtype)."""

    def __init__(self, d: int, expansion: float, kernel: int):
        super().__init__()
        inter = swiglu_width(d, expansion)
        self.gate_up = Linear(d, 2 * inter)
        self.dwconv = nn.Conv1d(inter, inter, kernel, padding=kernel // 2, groups=inter, bias=True).to(torch.bfloat16)
        self.down = Linear(inter, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        y = F.silu(gate) * up
        y = self.dwconv(y.transpose(1, 2).to(self.dwconv.weight.dtype))[..., : up.shape[1]]
        return self.down(F.silu(y).transpose(1, 2).contiguous())


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, max_len: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, S, D); rotate-half convention. Cast once to float32 and rotated there, as the references
    do: in a bf16 stream the backward then adds its two paths in float32 and rounds once."""
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
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, rope.cos, rope.sin), apply_rope(k, rope.cos, rope.sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    """Post-norm block: token mixing (attention or MLP over the sequence), then SwiGLU."""

    def __init__(self, cfg: ModelConfig, seq_total: int):
        super().__init__()
        self.eps = cfg.rms_norm_eps
        self.mlp_t = SwiGLU(seq_total, cfg.expansion) if cfg.mlp_t else None
        self.attn = None if cfg.mlp_t else Attention(cfg)
        self.mlp = (ConvSwiGLU(cfg.hidden_size, cfg.expansion, cfg.conv_kernel) if cfg.mlp == "conv_swiglu"
                    else SwiGLU(cfg.hidden_size, cfg.expansion))

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None) -> torch.Tensor:
        if self.mlp_t is not None:
            xt = x.transpose(1, 2)
            x = rms_norm(xt + self.mlp_t(xt), self.eps).transpose(1, 2)
        else:
            x = rms_norm(x + self.attn(x, rope), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)
