"""Losses: stablemax / softmax cross-entropy on the canvas, and the halting BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from arc_trm.data.canvas import IGNORE_LABEL


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log of stablemax: s(x) = x+1 for x ≥ 0, 1/(1−x) for x < 0, normalised over ``dim``
    (Prieto et al., "Grokking at the Edge of Numerical Stability")."""
    s = torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, kind: str = "stablemax") -> torch.Tensor:
    """Per-cell loss (B, S); zero where the label is ignored."""
    mask = labels != IGNORE_LABEL
    safe = torch.where(mask, labels, 0).long()
    if kind == "stablemax":
        logp = log_stablemax(logits.double(), dim=-1)
    else:
        logp = F.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, nll, torch.zeros_like(nll))


def recomputed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, kind: str = "stablemax") -> torch.Tensor:
    """:func:`token_cross_entropy` whose float64 intermediates are not kept for the backward: it runs again
    there from the logits (the same operations on the same inputs, so the gradients are the same bits).
    Eager, autograd would keep four logits-sized float64 tensors (about 66 MB at the paper's batch of 192 x
    900 cells), the whole of what arc-trm's compiled step kept above the references', whose compiled loss
    head lets the compiler recompute them."""
    if not (torch.is_grad_enabled() and logits.requires_grad):
        return token_cross_entropy(logits, labels, kind)
    return checkpoint(token_cross_entropy, logits, labels, kind, use_reentrant=False, preserve_rng_state=False)


def act_loss(logits: torch.Tensor, q_halt: torch.Tensor, labels: torch.Tensor, kind: str = "stablemax",
             q_continue: torch.Tensor | None = None, target_q_continue: torch.Tensor | None = None):
    """The references' loss for one supervision step, summed over the batch (the caller divides by
    the batch size): per-sample mean token CE + 0.5 · BCE(halt logit, whole grid exactly right), and
    with HRM's Q-learning (``target_q_continue``) + 0.5 · BCE(continue logit, its bootstrapped target),
    added in the references' order.
    Returns (loss, per-sample exact-correct flags, per-sample valid flags, metric sums)."""
    mask = labels != IGNORE_LABEL
    counts = mask.sum(-1)
    divisor = counts.clamp_min(1).unsqueeze(-1)
    with torch.no_grad():
        correct = mask & (logits.argmax(-1) == labels)
        exact = correct.sum(-1) == counts
        valid = counts > 0
    lm = (recomputed_cross_entropy(logits, labels, kind) / divisor).sum()
    halt = F.binary_cross_entropy_with_logits(q_halt, exact.to(q_halt.dtype), reduction="sum")
    metrics = {"lm_loss": lm.detach(), "halt_loss": halt.detach(),
               "cell_accuracy": torch.where(valid, correct.sum(-1) / divisor.squeeze(-1), 0).sum().detach()}
    if target_q_continue is None:
        return lm + 0.5 * halt, exact, valid, metrics
    cont = F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="sum")
    metrics["continue_loss"] = cont.detach()
    return lm + 0.5 * (halt + cont), exact, valid, metrics


def step_loss(out: dict, kind: str = "stablemax"):
    """:func:`act_loss` of one :func:`arc_trm.model.recursion.act_step`'s outputs."""
    return act_loss(out["logits"], out["q_halt"], out["data"]["labels"], kind, out.get("q_continue"),
                    out.get("target_q_continue"))
