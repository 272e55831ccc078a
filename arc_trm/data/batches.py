"""Batches drawn from a dataset: training streams (augmented at draw time) and test views.

Every rank computes the same global batch from the same seed and keeps its own slice, so
1 process and N processes see exactly the same examples for the same global batch size; a
rank's slice is cut into micro-batches in order, so chunk ``rank × accumulation + micro`` of
the global batch is the same examples for any split of the work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import numpy as np

from arc_trm.data import pixel_canvas
from arc_trm.data.augment import TRANSPOSES_SHAPE, apply_plan, keyed_uniform, offsets_from_uniform, render_canvases
from arc_trm.data.canvas import IGNORE_LABEL, PAD
from arc_trm.data.dataset import ArcDataset
from arc_trm.data.puzzle_ids import BLANK_ID
from arc_trm.errors import ArcTrmError

Translation = Literal["fixed", "per_draw", "none"]


@dataclass(frozen=True)
class BatchSplit:
    """How a global batch is shared out: ``processes`` × ``accumulation`` micro-batches of ``micro``."""

    global_batch: int
    processes: int
    micro: int
    accumulation: int

    @property
    def local(self) -> int:
        return self.micro * self.accumulation


def split_batch(global_batch: int, processes: int, micro_batch: int = 0, what: str = "global batch") -> BatchSplit:
    """``micro_batch`` 0 = the whole per-process share at once. Refuses splits that do not divide."""
    if global_batch < 1:
        raise ArcTrmError(f"{what} must be at least 1, got {global_batch}")
    if global_batch % processes:
        raise ArcTrmError(f"{what} {global_batch} is not divisible by {processes} processes; "
                          f"use a multiple of {processes}")
    local = global_batch // processes
    micro = micro_batch or local
    if micro < 1 or local % micro:
        raise ArcTrmError(f"micro-batch {micro_batch} does not divide the per-process batch {local} "
                          f"({what} {global_batch} over {processes} processes)")
    return BatchSplit(global_batch, processes, micro, local // micro)


def _labels(canvas: np.ndarray) -> np.ndarray:
    labels = canvas.astype(np.int64)
    labels[canvas == PAD] = IGNORE_LABEL
    return labels


def render_examples(ds: ArcDataset, rows: np.ndarray, plan_rows: np.ndarray,
                    offsets: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Canvases for example ``rows`` under plans ``plan_rows`` (and translation ``offsets``)."""
    t = ds.table
    d = t.plan_dihedral[plan_rows].astype(np.int64)
    perm = t.plan_perm[plan_rows]
    if offsets is None:
        offsets = np.zeros((len(rows), 2), dtype=np.int64)
    inputs = render_canvases(ds.pool, ds.shapes, ds.ex_input[rows], d, perm, offsets, ds.canvas)
    out_idx = ds.ex_output[rows]
    known = out_idx >= 0
    labels = np.full((len(rows), inputs.shape[1]), IGNORE_LABEL, dtype=np.int64)
    if known.any():
        canv = render_canvases(ds.pool, ds.shapes, out_idx[known], d[known], perm[known], offsets[known], ds.canvas)
        labels[known] = _labels(canv)
    return {"inputs": inputs.astype(np.int32), "labels": labels,
            "puzzle_ids": (plan_rows + t.base).astype(np.int32)}


def render_pixel_examples(ds: ArcDataset, rows: np.ndarray, plan_rows: np.ndarray, side: int,
                          placements: np.ndarray) -> dict[str, np.ndarray]:
    """The vision cores' batch: example ``rows`` under plans ``plan_rows`` drawn on the pixel canvas of
    ``side`` at ``placements`` (B, 3: scale, x, y); the background's label is ``IGNORE_LABEL``."""
    t = ds.table
    inputs = np.empty((len(rows), side * side), dtype=np.int32)
    labels = np.full((len(rows), side * side), IGNORE_LABEL, dtype=np.int64)
    for k, (r, plan) in enumerate(zip(rows, plan_rows)):
        d, perm = int(t.plan_dihedral[plan]), t.plan_perm[plan]
        at = pixel_canvas.Placement(*map(int, placements[k]))
        inputs[k] = pixel_canvas.draw(apply_plan(ds.grid(ds.ex_input[r]), d, perm), at, side, border=False).ravel()
        if ds.ex_output[r] >= 0:
            target = pixel_canvas.draw(apply_plan(ds.grid(ds.ex_output[r]), d, perm), at, side, border=True).ravel()
            labels[k] = np.where(target == pixel_canvas.BACKGROUND, IGNORE_LABEL, target)
    return {"inputs": inputs, "labels": labels, "puzzle_ids": (plan_rows + t.base).astype(np.int32)}


def draw_placements(ds: ArcDataset, rows: np.ndarray, plan_rows: np.ndarray, side: int,
                    rng: random.Random) -> np.ndarray:
    """VARC's resolution and translation draws, in order, for each example: from the larger of its input's and
    output's heights and widths (a dihedral transform that swaps them swaps the extent too)."""
    out = np.zeros((len(rows), 3), dtype=np.int64)
    for k, (r, plan) in enumerate(zip(rows, plan_rows)):
        sh = ds.shapes[ds.ex_input[r]].astype(np.int64)
        if ds.ex_output[r] >= 0:
            sh = np.maximum(sh, ds.shapes[ds.ex_output[r]])
        h, w = (sh[::-1] if TRANSPOSES_SHAPE[ds.table.plan_dihedral[plan]] else sh).tolist()
        at = pixel_canvas.draw_placement(rng, h, w, side)
        out[k] = (at.scale, at.x, at.y)
    return out


def seeded_random(*keys: int) -> random.Random:
    """A ``random.Random`` (VARC's generator) from integer keys, the same on every process."""
    return random.Random(int(np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0]))


@dataclass
class StreamState:
    pass_index: int = 0   # which shuffled pass over the tasks
    position: int = 0     # examples already consumed from that pass
    batches: int = 0      # batches drawn so far (seeds translation)


class TrainStream:
    """Endless stream of training batches, TRM style: each pass shuffles the tasks, picks one
    random augmented copy per task and emits all its demonstration pairs in random order.
    Resumable from :class:`StreamState`.

    ``translation``: ``fixed`` (the reference's dataset): an example of an augmented copy always
    sits at the same offset for a seed, and one example of every copy sits at (0, 0), where
    predictions are made; ``per_draw``: a fresh offset every time; ``none``: always (0, 0)."""

    def __init__(self, ds: ArcDataset, global_batch: int, seed: int, rank: int = 0, world: int = 1,
                 translation: Translation = "fixed", task_mask: np.ndarray | None = None, pixel_side: int | None = None):
        split_batch(global_batch, world)
        self.ds, self.global_batch, self.seed = ds, global_batch, seed
        # a vision core's pixel canvas: every draw takes a fresh scale and offset, as VARC's loader does
        self.pixel_side = pixel_side
        self.rank, self.world, self.translation = rank, world, translation
        all_demos = ds.demo_rows()
        # each demonstration's position among its task's demonstrations (for the (0, 0) example)
        order = np.argsort(ds.ex_task[all_demos], kind="stable")
        sorted_tasks = ds.ex_task[all_demos][order]
        first = np.searchsorted(sorted_tasks, sorted_tasks)
        self._demo_pos = np.zeros(len(ds.ex_task), dtype=np.int64)
        self._demo_pos[all_demos[order]] = np.arange(len(order)) - first
        self._demo_count = np.bincount(ds.ex_task[all_demos], minlength=len(ds.table.task_ids))
        demos = all_demos
        if task_mask is not None:  # train on these tasks only (test-time training)
            demos = demos[task_mask[ds.ex_task[demos]]]
        if len(demos) == 0:
            raise ArcTrmError("the dataset has no demonstration pairs to train on (no task, or none that fits "
                              "its canvas)")
        order = np.argsort(ds.ex_task[demos], kind="stable")
        self._demos = demos[order]
        tasks = ds.ex_task[self._demos]
        self._tasks, first = np.unique(tasks, return_index=True)
        self._starts = np.append(first, len(tasks))
        self.state = StreamState()
        self._pass: tuple[np.ndarray, np.ndarray] | None = None

    def _make_pass(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 0, p])
        rows, plans = [], []
        table = self.ds.table
        for k in rng.permutation(len(self._tasks)):
            t = self._tasks[k]
            mine = self._demos[self._starts[k]:self._starts[k + 1]]
            plan = rng.integers(table.task_start[t], table.task_start[t + 1])
            rows.append(rng.permutation(mine))
            plans.append(np.full(len(mine), plan, dtype=np.int64))
        return np.concatenate(rows), np.concatenate(plans)

    def _current_pass(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pass is None or self._pass_index != self.state.pass_index:
            self._pass, self._pass_index = self._make_pass(self.state.pass_index), self.state.pass_index
        return self._pass

    def examples_per_pass(self) -> int:
        return len(self._demos)

    def next_global_indices(self) -> tuple[np.ndarray, np.ndarray]:
        rows, plans, need = [], [], self.global_batch
        while need:
            pr, pp = self._current_pass()
            take = min(need, len(pr) - self.state.position)
            rows.append(pr[self.state.position:self.state.position + take])
            plans.append(pp[self.state.position:self.state.position + take])
            self.state.position += take
            need -= take
            if self.state.position == len(pr):
                self.state.pass_index += 1
                self.state.position = 0
        return np.concatenate(rows), np.concatenate(plans)

    def offsets(self, rows: np.ndarray, plans: np.ndarray, batch_index: int) -> np.ndarray:
        """Where each example of a batch sits in the canvas (see ``translation``)."""
        if self.translation == "none":
            return np.zeros((len(rows), 2), dtype=np.int64)
        ds = self.ds
        d = ds.table.plan_dihedral[plans]
        sh = np.maximum(ds.shapes[ds.ex_input[rows]], ds.shapes[ds.ex_output[rows]]).astype(np.int64)
        extent = np.where(TRANSPOSES_SHAPE[d][:, None], sh[:, ::-1], sh)
        if self.translation == "per_draw":
            u = np.random.default_rng([self.seed, 1, batch_index]).random(extent.shape)
            return offsets_from_uniform(u, extent, ds.canvas)
        u = keyed_uniform(self.seed, plans[:, None], rows[:, None], np.arange(2)[None, :])
        offsets = offsets_from_uniform(u, extent, ds.canvas)
        tasks = ds.ex_task[rows]
        at_origin = keyed_uniform(self.seed, plans, 2) * self._demo_count[tasks]
        offsets[self._demo_pos[rows] == at_origin.astype(np.int64)] = 0
        return offsets

    def next_batch(self) -> dict[str, np.ndarray]:
        """This rank's share of the next global batch."""
        rows, plans = self.next_global_indices()
        b = self.state.batches
        self.state.batches += 1
        local = slice(self.rank * len(rows) // self.world, (self.rank + 1) * len(rows) // self.world)
        if self.pixel_side is not None:
            at = draw_placements(self.ds, rows, plans, self.pixel_side, seeded_random(self.seed, 4, b))
            return render_pixel_examples(self.ds, rows[local], plans[local], self.pixel_side, at[local])
        offsets = self.offsets(rows, plans, b)
        return render_examples(self.ds, rows[local], plans[local], offsets[local])

    def __iter__(self):
        while True:
            yield self.next_batch()


@dataclass
class PredictionViews:
    """Every augmented copy of every test input: the views the model predicts and votes over.

    Ordered round-robin (the identity view of every input, then every input's second view, ...),
    so that inference cut short by a deadline leaves every input with about as many views as the
    others instead of some inputs with all and the last ones with none."""

    rows: np.ndarray       # (V,) example row (kind TEST)
    plans: np.ndarray      # (V,) plan row
    # a vision core's views: the pixel canvas's side and each view's placement (V, 3: scale, x, y)
    pixel_side: int | None = None
    placements: np.ndarray | None = None

    @classmethod
    def of(cls, ds: ArcDataset, max_views_per_input: int | None = None, seed: int = 0,
           pixel_side: int | None = None, draws: int = 1) -> "PredictionViews":
        """``pixel_side``: views on a vision core's pixel canvas, each plan drawn ``draws`` times at a random
        scale and offset (VARC's attempts)."""
        rows, plans = [], []
        table = ds.table
        for r in ds.test_rows():
            t = ds.ex_task[r]
            own = np.arange(table.task_start[t], table.task_start[t + 1])
            if max_views_per_input is not None and len(own) > max_views_per_input:
                # keep the identity view (first) plus a fixed random subset of the rest
                rest = np.random.default_rng([seed, 2, int(r)]).permutation(own[1:])[:max_views_per_input - 1]
                own = np.concatenate([own[:1], np.sort(rest)])
            rows.append(np.full(len(own), r, dtype=np.int64))
            plans.append(own)
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
        if pixel_side is not None and draws > 1:
            rows, plans = [np.tile(r, draws) for r in rows], [np.tile(p, draws) for p in plans]
        rank = cat([np.arange(len(p)) for p in plans])
        order = np.lexsort((np.arange(len(rank)), rank))
        rows_o, plans_o = cat(rows)[order], cat(plans)[order]
        if pixel_side is None:
            return cls(rows_o, plans_o)
        at = draw_placements(ds, rows_o, plans_o, pixel_side, seeded_random(seed, 5))
        return cls(rows_o, plans_o, pixel_side, at)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> "PredictionViews":
        """The views ``keep`` selects (a bool mask or indices), in their order, placements kept."""
        return PredictionViews(self.rows[keep], self.plans[keep], self.pixel_side,
                               None if self.placements is None else self.placements[keep])

    def batches(self, ds: ArcDataset, local_batch: int, rank: int = 0, world: int = 1):
        """Yield (view indices, batch) for this rank; every rank yields the same number of
        batches, all of ``local_batch`` views (the last padded with blank views, index -1), so
        collective calls line up and a compiled model sees one shape."""
        n = len(self)
        per_step = local_batch * world
        steps = max(1, -(-n // per_step))
        for s in range(steps):
            idx = np.arange(s * per_step + rank * local_batch, s * per_step + (rank + 1) * local_batch)
            idx = np.where(idx < n, idx, -1)
            valid = idx >= 0
            safe = np.where(valid, idx, 0)
            if n == 0:
                safe = np.zeros(local_batch, dtype=np.int64)
                valid[:] = False
                n_tok = (self.pixel_side or ds.canvas) ** 2
                fill = pixel_canvas.BACKGROUND if self.pixel_side else 0
                batch = {"inputs": np.full((local_batch, n_tok), fill, np.int32),
                         "labels": np.full((local_batch, n_tok), IGNORE_LABEL, np.int64),
                         "puzzle_ids": np.zeros(local_batch, np.int32)}
            elif self.pixel_side is not None:
                batch = render_pixel_examples(ds, self.rows[safe], self.plans[safe], self.pixel_side,
                                              self.placements[safe])
            else:
                batch = render_examples(ds, self.rows[safe], self.plans[safe])
            batch["puzzle_ids"][~valid] = BLANK_ID
            yield idx, batch
