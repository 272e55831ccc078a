"""Small generator of ARC-format tasks from simple rule families, for tests and quick demos.

Each task draws one rule with its parameters (which flip, which colour map, ...) and applies it
to random grids, so solving a task needs learning the rule from its demonstration pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import orjson

from arc_trm.data.augment import dihedral
from arc_trm.data.tasks import Task
from arc_trm.errors import ArcTrmError

Rule = Callable[[np.ndarray], np.ndarray]


def _random_grid(rng: np.random.Generator, max_side: int, palette: np.ndarray, density: float = 0.5) -> np.ndarray:
    h, w = rng.integers(2, max_side + 1, size=2)
    colours = rng.choice(palette, size=rng.integers(1, len(palette) + 1), replace=False)
    grid = rng.choice(colours, size=(h, w))
    return np.where(rng.random((h, w)) < density, grid, 0).astype(np.uint8)


def _rule_dihedral(rng):
    d = int(rng.integers(1, 8))
    return f"dihedral{d}", lambda g: np.ascontiguousarray(dihedral(g, d))


def _rule_colour_map(rng):
    mapping = np.arange(10, dtype=np.uint8)
    mapping[1:] = rng.permutation(np.arange(1, 10))
    return "colour_map", lambda g: mapping[g]


def _rule_upscale(rng):
    k = int(rng.integers(2, 4))
    return f"upscale{k}", lambda g: np.kron(g, np.ones((k, k), dtype=np.uint8))


def _rule_border(rng):
    c = np.uint8(rng.integers(1, 10))

    def f(g):
        out = g.copy()
        out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = c
        return out
    return "border", f


def _rule_gravity(rng):
    def f(g):
        out = np.zeros_like(g)
        for c in range(g.shape[1]):
            col = g[:, c][g[:, c] != 0]
            if len(col):
                out[-len(col):, c] = col
        return out
    return "gravity", f


def _rule_fill_background(rng):
    c = np.uint8(rng.integers(1, 10))
    return "fill_background", lambda g: np.where(g == 0, c, g).astype(np.uint8)


def _rule_mirror_concat(rng):
    axis = int(rng.integers(0, 2))
    return f"mirror_concat{axis}", lambda g: np.concatenate([g, np.flip(g, axis=axis)], axis=axis)


RULE_FAMILIES = {
    "dihedral": _rule_dihedral,
    "colour_map": _rule_colour_map,
    "upscale": _rule_upscale,
    "border": _rule_border,
    "gravity": _rule_gravity,
    "fill_background": _rule_fill_background,
    "mirror_concat": _rule_mirror_concat,
}


def make_task(rng: np.random.Generator, task_id: str, family: str | None = None, n_train: int = 3,
              n_test: int = 1, max_side: int = 8) -> Task:
    family = family or str(rng.choice(sorted(RULE_FAMILIES)))
    name, rule = RULE_FAMILIES[family](rng)
    side = max_side // 3 if family == "upscale" else (max_side // 2 if family == "mirror_concat" else max_side)
    side = max(side, 2)
    palette = rng.choice(np.arange(1, 10), size=3, replace=False)
    train = [(g, rule(g).astype(np.uint8)) for g in (_random_grid(rng, side, palette) for _ in range(n_train))]
    # a test input uses only colours the demonstrations show, so the rule is determined by them
    seen = set(np.unique(np.concatenate([i.ravel() for i, _ in train]))) | {0}
    test = []
    while len(test) < n_test:
        g = _random_grid(rng, side, palette)
        if set(np.unique(g)) <= seen:
            test.append((g, rule(g).astype(np.uint8)))
    return Task(task_id, train, [i for i, _ in test], [o for _, o in test], source=f"synthetic:{name}")


def make_tasks(n: int, seed: int = 0, families: list[str] | None = None, prefix: str = "syn",
               **kwargs) -> list[Task]:
    """``n`` tasks cycling through ``families`` (all by default); deterministic for a seed."""
    rng = np.random.default_rng(seed)
    fams = families or sorted(RULE_FAMILIES)
    unknown = sorted(set(fams) - set(RULE_FAMILIES))
    if unknown:
        raise ArcTrmError(f"unknown synthetic rule family {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(RULE_FAMILIES))}")
    return [make_task(rng, f"{prefix}{seed:03d}{k:04d}", fams[k % len(fams)], **kwargs) for k in range(n)]


def write_challenges(tasks: list[Task], path: Path, with_solutions: bool = True) -> Path:
    """Write Kaggle-style ``*_challenges.json`` (+ ``*_solutions.json`` beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({t.task_id: t.to_challenge() for t in tasks}))
    if with_solutions:
        sol = path.with_name(path.name.replace("challenges", "solutions"))
        sol.write_bytes(orjson.dumps({t.task_id: [o.tolist() for o in t.test_outputs] for t in tasks}))
    return path


def write_pool_folder(folder: Path, pools: int, pairs: int, seed: int = 0, max_side: int = 8,
                      families: list[str] | None = None, prefix: str = "pool") -> Path:
    """A folder shaped like RE-ARC's ``re_arc/tasks``: one ``<name>.json`` per pool, a JSON list
    of ``{"input", "output"}`` pairs that one generated rule makes (as RE-ARC's generator for an
    ARC task does)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t in make_tasks(pools, seed=seed, families=families, prefix=prefix, n_train=pairs, n_test=0,
                        max_side=max_side):
        (folder / f"{t.task_id}.json").write_bytes(
            orjson.dumps([{"input": i.tolist(), "output": o.tolist()} for i, o in t.train]))
    return folder
