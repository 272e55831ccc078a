"""One learned embedding row per puzzle ID, trained sparsely by sign-SGD.

The table stays outside the dense model (and so outside DDP): each step looks up the rows of
the batch, lets autograd fill their gradients, gathers ``(ids, grads)`` from every process and
applies the same sign-SGD update everywhere. Work per step is proportional to the batch, never
to the table (≈1.4 M rows × 512 for ARC-AGI-2 at 1000 augmentations).
"""

from __future__ import annotations

from typing import Callable

import torch

from arc_trm.data.puzzle_ids import BLANK_ID


class PuzzleEmbeddings:
    def __init__(self, num_ids: int, dim: int, device: torch.device | str = "cpu"):
        # Zero init, as in the reference: a new puzzle starts from "no information".
        self.weight = torch.zeros(num_ids, dim, device=device)

    @property
    def num_ids(self) -> int:
        return self.weight.shape[0]

    def lookup(self, ids: torch.Tensor, requires_grad: bool) -> torch.Tensor:
        rows = self.weight[ids.long()].detach().clone()
        return rows.requires_grad_(requires_grad)

    @torch.no_grad()
    def sign_sgd_step(self, ids: torch.Tensor, grads: torch.Tensor, lr: float, weight_decay: float,
                      gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Sum the gradients of each distinct ID over all processes, then
        ``w ← w·(1 − lr·wd) − lr·sign(g)`` on those rows only. Returns the updated IDs."""
        if gather is not None:
            ids, grads = gather(ids.contiguous()), gather(grads.contiguous())
        uniq, inv = ids.long().unique(return_inverse=True)
        total = torch.zeros(len(uniq), grads.shape[-1], dtype=grads.dtype, device=grads.device)
        total.index_add_(0, inv, grads)
        keep = uniq != BLANK_ID
        uniq, total = uniq[keep], total[keep]
        rows = self.weight[uniq]
        rows.mul_(1.0 - lr * weight_decay).add_(torch.sign(total).to(rows.dtype), alpha=-lr)
        self.weight[uniq] = rows
        return uniq

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.weight = state["weight"].to(self.weight.device).clone()
