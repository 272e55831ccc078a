"""How the golden tests drive a model and read their files: the one place that follows API changes,
while the numbers in ``golden/*.safetensors`` stay fixed. ``model_fn(seq)``, when given, builds the
model (URM, HRM: from an imported checkpoint; bf16: a seeded model with a varied halting head) instead
of a seeded TRM."""

import os
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from arc_trm.config import OptimConfig, RunConfig
from arc_trm.data.batches import split_batch
from arc_trm.infer.runner import Runner
from arc_trm.model.build import build_model
from arc_trm.model.losses import step_loss
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.convert.reference import mapped_weights
from arc_trm.model.cores.trm.module import TRM
from arc_trm.model.recursion import Carry, act_step
from arc_trm.train.session import Schedule, TrainSession


def golden(got: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The golden file's tensors; ``ARC_TRM_WRITE_GOLDEN=1`` first rewrites it with ``got``."""
    if os.environ.get("ARC_TRM_WRITE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        save_file({k: v.contiguous() for k, v in got.items()}, path)
    return load_file(path)


def imported(cfg_fn, weights: dict[str, torch.Tensor], label: str):
    """``(model_fn, table_fn)`` for a checkpoint in a reference's format, through ``import-reference``'s
    mapping: the model loads the mapped weights, the table the checkpoint's puzzle rows."""
    def model_fn(seq):
        cfg = cfg_fn()
        m = build_model(cfg, seq)
        m.load_state_dict(mapped_weights(weights, cfg, label))
        return m

    def table_fn(dim):
        rows = weights["puzzle_emb.weights"]
        t = PuzzleEmbeddings(rows.shape[0], dim)
        t.weight = rows.float().clone()
        return t
    return model_fn, table_fn


def _model(cfg_fn, seq, model_fn=None):
    if model_fn is not None:
        return model_fn(seq)
    torch.manual_seed(0)
    return TRM(cfg_fn(), seq)


def eval_steps(cfg_fn, batch_fn, table_fn, seq, model_fn=None):
    m = _model(cfg_fn, seq, model_fn).eval()
    table, batch = table_fn(m.cfg.hidden_size), batch_fn()
    carry = Carry.initial(m, batch)
    out = {}
    with torch.no_grad():
        for s in range(3):
            carry, o = act_step(m, m.cfg, carry, batch, lambda ids: table.lookup(ids, False), False)
            out[f"eval.logits.{s}"] = o["logits"]
            out[f"eval.q_halt.{s}"] = o["q_halt"]
            if o["q_continue"] is not None:       # HRM's Q-learning rule
                out[f"eval.q_continue.{s}"] = o["q_continue"]
    return out


def grads_of_one_step(cfg_fn, batch_fn, table_fn, seq, model_fn=None):
    m = _model(cfg_fn, seq, model_fn).train()
    table, batch = table_fn(m.cfg.hidden_size), batch_fn()
    carry = Carry.initial(m, batch)
    min_steps = torch.tensor([0, 2, 0, 3], dtype=torch.int32)
    carry, o = act_step(m, m.cfg, carry, batch, lambda ids: table.lookup(ids, True), True, min_steps)
    loss, _, _, metrics = step_loss(o, m.cfg.loss)
    (loss / batch["inputs"].shape[0]).backward()
    out = {f"grad.{n}": p.grad for n, p in m.named_parameters()}
    out["grad.puzzle_emb"] = o["puzzle_emb"].grad
    out["grad.loss"] = loss.detach().reshape(1)
    if o["target_q_continue"] is not None:      # HRM's Q-learning rule: its target and its loss term
        out["grad.target_q_continue"] = o["target_q_continue"]
        out["grad.continue_loss"] = metrics["continue_loss"].reshape(1)
    return out


class _FixedStream:
    def __init__(self, batch):
        from arc_trm.data.batches import StreamState
        self.batch = {k: v.numpy() for k, v in batch.items()}
        self.state = StreamState()

    def next_batch(self):
        return {k: v.copy() for k, v in self.batch.items()}


def one_training_step(cfg_fn, batch_fn, table_fn, seq, model_fn=None, dense="adam_atan2"):
    m = _model(cfg_fn, seq, model_fn)
    table, batch = table_fn(m.cfg.hidden_size), batch_fn()
    out = {"init.table": table.weight.clone()}
    optim = OptimConfig(lr=1e-3, puzzle_emb_lr=1e-2, lr_warmup_steps=1, ema_rate=0.9, dense=dense)
    runner = Runner(Accelerator(cpu=True), m, table, RunConfig())
    n = batch["inputs"].shape[0]
    s = TrainSession(runner, _FixedStream(batch), Schedule(optim, total_steps=10), split_batch(n, 1), seed=5)
    for k in range(2):
        s.step()
    s.close()
    out.update({f"trained.{n}": p.detach().clone() for n, p in m.named_parameters()})
    out.update({f"ema.{n}": v.clone() for n, v in s.ema.shadow.items()})
    out["trained.table"] = s.table.weight.clone()
    out["trained.halted"] = s.carries[0].halted.to(torch.int32)
    out["trained.steps"] = s.carries[0].steps
    return out
