"""Muon as URM's ARC-AGI-2 recipe runs it (its ``models/muon.py`` and ``pretrain.py``, one process).

Every 2-D dense weight: momentum buffer ``b ← 0.95·b + g``, Nesterov input ``g + 0.95·b`` cast to
bf16, orthogonalised by 5 Newton–Schulz steps computed in float32 with URM's per-step
coefficients, decoupled weight decay ``w ← w·(1 − lr·wd)``, then ``w ← w − lr·0.2·√max(rows,
cols)·update`` (the step scaled to match AdamW's update RMS of 0.2). Every other dense parameter
(biases, the convolution): AdamW with bias correction (``eps`` outside the square root's
correction, as URM computes it), in the parameter's own dtype. Both groups take the run's lr.
"""

from __future__ import annotations

import math

import torch

# URM's table of (a, b, c) per Newton–Schulz step; it runs the first NS_STEPS rows.
NS_COEFFICIENTS = ((7.2086, -15.5131, 9.0178), (3.9623, -2.5813, 0.4542), (3.9466, -2.5765, 0.4544),
                   (3.8991, -2.5671, 0.4566), (3.7186, -2.5308, 0.4653), (3.1390, -2.3073, 0.4733),
                   (2.1715, -1.5246, 0.3885), (1.8648, -1.2224, 0.3577))
NS_STEPS = 5
MOMENTUM = 0.95
MATCHED_ADAMW_RMS = 0.2


def orthogonalise(g: torch.Tensor, steps: int = NS_STEPS) -> torch.Tensor:
    """An approximately orthogonal matrix with ``g``'s singular vectors (singular values pushed
    towards 1 by a quintic Newton–Schulz iteration), in float32."""
    x = g.float()
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp_min(1e-7)
    for i in range(steps):
        a, b, c = NS_COEFFICIENTS[min(i, len(NS_COEFFICIENTS) - 1)]
        s = x @ x.mT
        x = torch.addmm(x, torch.addmm(s, s, s, alpha=c, beta=b), x, alpha=1.0, beta=a)
    return x.mT if tall else x


class Muon(torch.optim.Optimizer):
    """Two groups: ``muon`` (2-D weights) and ``adamw`` (the rest)."""

    def __init__(self, muon_params, adamw_params, lr: float, weight_decay: float, betas: tuple[float, float],
                 eps: float = 1e-8):
        groups = [{"params": list(muon_params), "use_muon": True},
                  {"params": list(adamw_params), "use_muon": False}]
        super().__init__([g for g in groups if g["params"]],
                         dict(lr=lr, weight_decay=weight_decay, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            if group["use_muon"]:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    buf = self.state[p].setdefault("momentum", torch.zeros_like(p.grad))
                    buf.mul_(MOMENTUM).add_(p.grad)
                    update = orthogonalise(p.grad.add(buf, alpha=MOMENTUM).bfloat16())
                    p.mul_(1 - lr * wd)
                    p.add_(update, alpha=-lr * math.sqrt(max(p.shape[0], p.shape[1])) * MATCHED_ADAMW_RMS)
                continue
            group["step"] = group.get("step", 0) + 1
            beta1, beta2 = group["betas"]
            correction = (1 - beta1 ** group["step"]) / (1 - beta2 ** group["step"]) ** 0.5
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p.grad), torch.zeros_like(p.grad)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1 - beta1)
                v.lerp_(p.grad.square(), 1 - beta2)
                p.mul_(1 - lr * wd)
                p.add_(m / (group["eps"] + v.sqrt()), alpha=-lr / correction)
