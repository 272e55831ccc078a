"""The references' ACTLossHead call: ``forward(return_keys, carry=, batch=) -> (carry, loss, metrics,
outputs, all_finish)``."""

import torch.nn.functional as F
from torch import nn


class ACTLossHead(nn.Module):
    def __init__(self, model: nn.Module, loss_type: str):
        super().__init__()
        self.model = model

    def initial_carry(self, *args, **kwargs):
        return self.model.initial_carry(*args, **kwargs)

    def forward(self, return_keys, **model_kwargs):
        carry, out = self.model(**model_kwargs)
        labels = carry.current_data["labels"]
        loss = F.cross_entropy(out["logits"].flatten(0, 1).float(), labels.flatten().long(), reduction="sum")
        return carry, loss, {}, {}, carry.halted.all()
