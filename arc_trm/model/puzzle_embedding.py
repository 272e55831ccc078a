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


def initial_rows(num: int, dim: int, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """New rows: zeros (TRM: a new puzzle starts from "no information") or, with ``std`` > 0, a normal of that
    deviation truncated at ±2 (absolute, as ``nn.init.trunc_normal_``: VARC's task tokens at 0.02)."""
    rows = torch.zeros(num, dim)
    if std > 0:
        torch.nn.init.trunc_normal_(rows, std=std, generator=generator)
    return rows


class PuzzleEmbeddings:
    def __init__(self, num_ids: int, dim: int, device: torch.device | str = "cpu", init_std: float = 0.0):
        self.weight = initial_rows(num_ids, dim, init_std).to(device)

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


class TableAdamW:
    """VARC's task tokens learn as an embedding inside its model: torch's AdamW over the whole table, every row
    every step (a row without gradient this step still moves with its momentum). The gradient is the batch
    rows' gradients summed into a table-sized tensor, averaged over processes (DDP averages VARC's)."""

    def __init__(self, table: PuzzleEmbeddings, lr: float, betas: tuple[float, float], weight_decay: float):
        self.table = table
        self.param = torch.nn.Parameter(table.weight, requires_grad=False)
        self.optimizer = torch.optim.AdamW([self.param], lr=max(lr, 1e-12), betas=betas, weight_decay=weight_decay)

    def gradient(self, ids: torch.Tensor, grads: torch.Tensor, processes: int,
                 gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Set and return the table's gradient (the blank row's stays 0)."""
        if gather is not None:
            ids, grads = gather(ids.contiguous()), gather(grads.contiguous())
        g = torch.zeros_like(self.param).index_add_(0, ids.long(), grads.to(self.param.dtype))
        g[BLANK_ID] = 0
        if processes > 1:
            g /= processes
        self.param.grad = g
        return g

    def step(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.param.grad = None
        self.table.weight = self.param.data

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.param.data = self.table.weight
        self.optimizer.load_state_dict(state)
