"""The tiny-cpu model, through the real training session, memorises a handful of synthetic
tasks: every demonstration pair exactly right when predicted the way `predict` does."""

import torch
from accelerate import Accelerator

from arc_trm.config import load_config
from arc_trm.data.batches import TrainStream, render_examples
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.synthetic import make_tasks
from arc_trm.config import OptimConfig
from arc_trm.data.batches import split_batch
from arc_trm.infer.inference import predict_logits
from arc_trm.infer.runner import make_runner
from arc_trm.model.puzzle_embedding import PuzzleEmbeddings
from arc_trm.model.cores.trm.module import TRM
from arc_trm.train.session import Schedule, TrainSession

MAX_STEPS = 1000


def test_tiny_cpu_overfits_a_handful_of_tasks():
    tasks = make_tasks(4, seed=0, families=["border", "colour_map", "dihedral", "fill_background"], max_side=5)
    ds = ArcDataset.build(tasks, [], n_aug=1, seed=0, canvas=6)
    cfg = load_config("tiny-cpu")
    torch.manual_seed(0)
    core = TRM(cfg.model, ds.canvas ** 2)
    runner = make_runner(Accelerator(cpu=True), core, PuzzleEmbeddings(ds.num_puzzle_ids, cfg.model.hidden_size), cfg)
    stream = TrainStream(ds, 16, seed=0, translation="none")
    optim = OptimConfig(lr=1e-3, puzzle_emb_lr=1e-2, lr_warmup_steps=20, ema=False)
    session = TrainSession(runner, stream, Schedule(optim, MAX_STEPS), split_batch(16, 1), seed=0)
    rows = ds.demo_rows()
    plans = ds.table.task_start[ds.ex_task[rows]]  # each task's identity view
    batch = {k: torch.from_numpy(v) for k, v in render_examples(ds, rows, plans).items()}
    labels = batch["labels"]
    history = []
    while session.progress.step < MAX_STEPS:
        for _ in range(50):
            session.step()
        logits, _ = predict_logits(runner, batch, halt_early=True)
        exact = ((logits.argmax(-1) == labels) | (labels < 0)).all(-1).float().mean().item()
        history.append((session.progress.step, exact))
        if exact == 1.0:
            break
    print("step, exact accuracy on the demonstration pairs:", history)
    assert history[-1][1] == 1.0, history
