"""A toy ACT model with the references' interface: ``Model(config_dict)``, ``initial_carry(batch)``,
``forward(carry, batch) -> (carry, outputs)``."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Carry:
    steps: torch.Tensor
    halted: torch.Tensor
    current_data: dict


class Model(nn.Module):
    def __init__(self, config_dict: dict):
        super().__init__()
        c = config_dict
        self.config = c
        self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.puzzle = nn.Embedding(c["num_puzzle_identifiers"], c["hidden_size"])
        self.block = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"])
        self.q_head = nn.Linear(c["hidden_size"], 2)

    def initial_carry(self, batch):
        n = batch["inputs"].shape[0]
        return Carry(torch.zeros(n, dtype=torch.int32), torch.ones(n, dtype=torch.bool),
                     {k: torch.empty_like(v) for k, v in batch.items()})

    def forward(self, carry, batch):
        data = {k: torch.where(carry.halted.view((-1,) + (1,) * (v.ndim - 1)), batch[k], v)
                for k, v in carry.current_data.items()}
        h = self.embed(data["inputs"].long()) + self.puzzle(data["puzzle_identifiers"].long())[:, None]
        h = torch.tanh(self.block(h))
        q = self.q_head(h[:, 0])
        steps = torch.where(carry.halted, 0, carry.steps) + 1
        return Carry(steps, steps >= 1, data), {"logits": self.lm_head(h), "q_halt_logits": q[:, 0],
                                                "q_continue_logits": q[:, 1]}
