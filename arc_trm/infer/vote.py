"""Map every view's prediction back with its exact inverse transform and choose attempts.

Strategies (all rank the distinct candidate grids of one test input):
- ``vote``: most views agreeing; ties by mean halting confidence (the TRM paper).
- ``poe``: product of experts: the candidate's log-probability summed over every view,
  each view scoring the candidate mapped into its own frame (ARC Prize 2024 winners).
- ``vote+poe``: log(vote count) + mean per-view log-probability (count and likelihood
  together, as the 2025 winners combine them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from arc_trm.data.augment import apply_plan, invert_plan
from arc_trm.data.canvas import decode, encode
from arc_trm.data.pixel_canvas import BACKGROUND, Placement, answer_of_view, draw
from arc_trm.data.dataset import ArcDataset
from arc_trm.infer.inference import ViewPredictions

STRATEGIES = ("vote", "poe", "vote+poe")


@dataclass
class Candidate:
    grid: np.ndarray
    count: int = 0
    halt_sum: float = 0.0
    logp_sum: float = 0.0
    logp_views: int = 0

    @property
    def mean_halt(self) -> float:
        return self.halt_sum / max(self.count, 1)

    @property
    def mean_logp(self) -> float:
        return self.logp_sum / self.logp_views if self.logp_views else -math.inf


def grid_key(g: np.ndarray) -> bytes:
    return bytes(np.array(g.shape, dtype=np.uint8)) + np.ascontiguousarray(g, dtype=np.uint8).tobytes()


@dataclass
class InputCandidates:
    """Candidates for one test input of one task."""

    task_id: str
    test_index: int
    candidates: dict[bytes, Candidate] = field(default_factory=dict)
    views: int = 0

    def score(self, c: Candidate, strategy: str) -> float:
        """The value ``strategy`` ranks by: the vote share (vote), the mean log-probability over the
        views (poe), log(votes) + mean log-probability (vote+poe)."""
        if strategy == "vote":
            return c.count / max(self.views, 1)
        if strategy == "poe":
            return c.mean_logp
        if strategy == "vote+poe":
            return math.log(c.count) + c.mean_logp if c.count else c.mean_logp
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")

    def ranked(self, strategy: str) -> list[Candidate]:
        """Best first by :meth:`score`; ties by mean halting confidence (vote) or vote count."""
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        tie = (lambda c: c.mean_halt) if strategy == "vote" else (lambda c: c.count)
        return sorted(self.candidates.values(), key=lambda c: (self.score(c, strategy), tie(c)), reverse=True)


def add_views(out: dict[tuple[str, int], InputCandidates], ds: ArcDataset, preds: ViewPredictions,
              finished: np.ndarray) -> None:
    """Decode and invert the views ``finished`` (indices into ``preds``) and count their votes into
    ``out``: called after every batch, so a stop at any moment leaves the vote of every finished view."""
    table, views = ds.table, preds.views
    for v in finished:
        row, plan = views.rows[v], views.plans[v]
        key = (table.task_ids[ds.ex_task[row]], int(ds.ex_index[row]))
        ic = out.get(key) or out.setdefault(key, InputCandidates(*key))
        d, perm = int(table.plan_dihedral[plan]), table.plan_perm[plan]
        ic.views += 1
        if views.placements is not None:        # a vision core's view: crop, unrotate, scale down, recolour
            grid = answer_of_view(preds.canvases[v], Placement(*map(int, views.placements[v])), d, perm)
            if grid.size == 0:
                continue
        else:
            pred = decode(preds.canvases[v])
            if pred.size == 0:
                continue
            grid = invert_plan(pred, d, perm)
        c = ic.candidates.setdefault(grid_key(grid), Candidate(grid))
        c.count += 1
        c.halt_sum += float(preds.halt_prob[v])


def score_products(out: dict[tuple[str, int], InputCandidates], ds: ArcDataset, preds: ViewPredictions) -> None:
    """Product of experts: every candidate of a test input scored under every finished view of it, the
    candidate mapped into that view's frame."""
    table, views, size = ds.table, preds.views, ds.canvas
    by_input: dict[tuple[str, int], list[int]] = {}
    for v in np.flatnonzero(preds.complete):
        row = views.rows[v]
        by_input.setdefault((table.task_ids[ds.ex_task[row]], int(ds.ex_index[row])), []).append(v)
    for key, vs in by_input.items():
        for c in out[key].candidates.values():
            if views.placements is None and max(c.grid.shape) > size:
                continue
            for v in vs:
                plan = views.plans[v]
                shown = apply_plan(c.grid, int(table.plan_dihedral[plan]), table.plan_perm[plan])
                if views.placements is not None:   # the candidate drawn where this view's answer sits
                    at = Placement(*map(int, views.placements[v]))
                    try:
                        tokens = draw(shown, at, views.pixel_side, border=True).ravel()
                    except ValueError:
                        continue
                    cells = np.flatnonzero(tokens != BACKGROUND)
                else:
                    tokens = encode(shown, size=size).astype(np.int64)
                    cells = np.flatnonzero(tokens != 0)
                c.logp_sum += float(preds.logprobs[v][cells, tokens[cells]].astype(np.float32).sum())
                c.logp_views += 1


def collect(ds: ArcDataset, preds: ViewPredictions, score_logprobs: bool) -> dict[tuple[str, int], InputCandidates]:
    """Decode and invert every completed view; with log-probabilities, score every candidate of
    a test input under every one of its views."""
    out: dict[tuple[str, int], InputCandidates] = {}
    add_views(out, ds, preds, np.flatnonzero(preds.complete))
    if score_logprobs and preds.logprobs is not None:
        score_products(out, ds, preds)
    return out


def choose_attempts(ranked: list[np.ndarray], test_input: np.ndarray) -> list[np.ndarray]:
    """Two attempts: the two best candidates. With one candidate the second attempt is the test
    input itself (copying the input solves a few ARC tasks) rather than the first again; with
    none, both are the test input."""
    if len(ranked) >= 2:
        return [ranked[0], ranked[1]]
    if ranked:
        return [ranked[0], test_input]
    return [test_input, test_input]
