"""URM's kernel-2 depthwise convolution over the tokens as a shifted multiply-add (``model.conv_form``).

URM's ConvSwiGLU runs ``nn.Conv1d(C, C, 2, padding=1, groups=C)`` in bf16 on the channels-first
transpose of its (batch, tokens, channels) activations, then cuts the output to the sequence length:
``out[t] = b + w0·y[t−1] + w1·y[t]``. Torch runs that through its depthwise convolution kernel with a
transpose on each side; here it is three element-wise terms on the (B, S, C) layout that the compiler
fuses with the gate before it and the SiLU after it.

Identity with the kernel is a matter of the order of additions and of layout. Measured on the CPU (torch
2.13, the oneDNN path torch picks for a bf16 depthwise convolution): the forward is a float32 sum of the
bias and the two products rounded once to bf16, the input gradient ``w1·g[t] + w0·g[t+1]``, each in an
order that depends on the instruction set oneDNN runs (:data:`ROUNDINGS`); the input gradient must leave
laid out channels-first as the kernel's does, or the float32 matrix products behind it (the gate's
gradients) sum in another order. The weight and bias gradients are reductions over batch x tokens whose order no
simple formula matches, so they are the kernel's own backward (``aten.convolution_backward`` with the
arguments autograd passes it), bit for bit. Another device or release may order things differently, so
``conv_form = "auto"`` (the default) uses this form only with a rounding that
:func:`arc_trm.model.layers.exact_shift_rounding` has just measured bit-identical with the kernel on that
device; where neither is, the kernel runs, as in URM's code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BF16 = torch.bfloat16


def _prev(x: torch.Tensor) -> torch.Tensor:
    """x[:, t-1] at t (zero at t = 0) along the token axis of (B, S, C)."""
    return F.pad(x, (0, 0, 1, 0))[:, :-1]


def _next(x: torch.Tensor) -> torch.Tensor:
    """x[:, t+1] at t (zero at the last token) along the token axis of (B, S, C)."""
    return F.pad(x, (0, 0, 0, 1))[:, 1:]


# The two orders measured in torch's CPU kernel (oneDNN); which one runs depends on the instruction set:
#   "fused"    (AVX-512): forward ((b + w0·y[t−1]) + w1·y[t]) in float32, rounded once to bf16; the input
#              gradient's two products summed in float32, rounded once.
#   "stepwise" (held to AVX2): forward ((w0·y[t−1] + w1·y[t]) + b), rounded once; the input gradient's
#              products each rounded to bf16 first, then their sum.
# A product of two bf16 numbers is exact in float32, so the order of the additions is all there is.
ROUNDINGS = ("fused", "stepwise")


class _ShiftConv(torch.autograd.Function):
    @staticmethod
    def forward(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, rounding: str) -> torch.Tensor:
        w = weight.float()
        before, here = w[:, 0, 0] * _prev(y.float()), w[:, 0, 1] * y.float()
        if rounding == "stepwise":
            return ((before + here) + bias.float()).to(BF16)
        return ((bias.float() + before) + here).to(BF16)

    @staticmethod
    def setup_context(ctx, inputs, output):
        y, weight, _, rounding = inputs
        ctx.save_for_backward(y, weight)
        ctx.rounding = rounding

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        y, weight = ctx.saved_tensors
        g = g.to(BF16)
        gy = gw = gb = None
        if ctx.needs_input_grad[0]:
            w = weight.float()
            here, ahead = w[:, 0, 1] * g.float(), w[:, 0, 0] * _next(g).float()
            if ctx.rounding == "stepwise":
                here, ahead = here.to(BF16).float(), ahead.to(BF16).float()
            # laid out channels-first as the kernel's gradient is: the float32 matrix products behind it
            # (the gate's gradients) sum in the order that layout gives them
            gy = (here + ahead).to(BF16).transpose(1, 2).contiguous().transpose(1, 2)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            b, s, c = g.shape
            # the gradient autograd hands the kernel: the (B, C, S+1) output's, zero past the cut
            full = torch.zeros(b, c, s + 1, dtype=BF16, device=g.device)
            full[..., :s] = g.transpose(1, 2)
            _, gw, gb = torch.ops.aten.convolution_backward(
                full, y.transpose(1, 2), weight, [c], [1], [1], [1], False, [0], c,
                [False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        return gy, gw, gb, None


def shift_conv(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, rounding: str = "fused") -> torch.Tensor:
    """URM's bf16 kernel-2 depthwise convolution of ``y`` (B, S, C) along S, cut to S tokens: (B, S, C) bf16.
    ``rounding`` (one of :data:`ROUNDINGS`) is the order of the additions forward and backward."""
    return _ShiftConv.apply(y.to(BF16), weight, bias, rounding)


def kernel_conv(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The same through torch's convolution, as URM's code calls it: (B, S, C) bf16, a view of the kernel's
    channels-first output (the reference's layout, which its gradients keep)."""
    out = F.conv1d(y.transpose(1, 2).to(weight.dtype), weight, bias, padding=weight.shape[-1] // 2,
                   groups=weight.shape[0])
    return out[..., : y.shape[1]].transpose(1, 2)
