"""The augmentation group: 8 dihedral transforms × colour permutations fixing 0, plus translation.

An augmented copy of a task is a *plan* ``(dihedral id, permutation)``, never stored grids.
Dihedral ids follow the TRM reference so checkpoints and plans mean the same thing:
0 id, 1 rot90, 2 rot180, 3 rot270, 4 flip left-right, 5 flip up-down, 6 transpose,
7 anti-transpose. ``perm[c]`` is the colour that colour ``c`` becomes.
"""

from __future__ import annotations

import zlib

import numpy as np

from arc_trm.data.canvas import CANVAS, COLOR_OFFSET, EOS, PAD

NUM_DIHEDRAL = 8
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
TRANSPOSES_SHAPE = np.array([False, True, False, True, False, False, True, True])
IDENTITY_PERM = np.arange(10, dtype=np.uint8)

# Source cell of output cell (r, c) for a grid of shape (h, w), per dihedral id:
#   i = ih*(h-1) + ir*r + ic*c,   j = jw*(w-1) + jr*r + jc*c
_I_COEF = np.array([(0, 1, 0), (0, 0, 1), (1, -1, 0), (1, 0, -1),
                    (0, 1, 0), (1, -1, 0), (0, 0, 1), (1, 0, -1)], dtype=np.int64)
_J_COEF = np.array([(0, 0, 1), (1, -1, 0), (1, 0, -1), (0, 1, 0),
                    (1, 0, -1), (0, 0, 1), (0, 1, 0), (1, -1, 0)], dtype=np.int64)


def dihedral(grid: np.ndarray, d: int) -> np.ndarray:
    """Apply dihedral transform ``d`` to a 2-D grid: 0 identity, 1-3 rotations by 90, 180, 270
    degrees anticlockwise (``np.rot90``), 4 left-right flip, 5 up-down flip, 6 transpose, 7 the
    anti-transpose (left-right flip of rotation 1). Views by slicing: the same arrays as
    ``np.rot90``/``np.flip`` give, without their per-call overhead (ingest calls this 8 times per
    grid)."""
    if d == 0:
        return grid
    if d == 1:
        return grid.T[::-1]
    if d == 2:
        return grid[::-1, ::-1]
    if d == 3:
        return grid[::-1].T
    if d == 4:
        return grid[:, ::-1]
    if d == 5:
        return grid[::-1]
    if d == 6:
        return grid.T
    if d == 7:
        return grid.T[::-1, ::-1]
    raise ValueError(f"dihedral id must be 0..7, got {d}")


def inverse_perm(perm: np.ndarray) -> np.ndarray:
    return np.argsort(perm).astype(np.uint8)


def apply_plan(grid: np.ndarray, d: int, perm: np.ndarray) -> np.ndarray:
    """Colour-permute then rotate/flip: the grid the model sees for this plan."""
    return np.ascontiguousarray(dihedral(np.asarray(perm, dtype=np.uint8)[grid], d))


def invert_plan(grid: np.ndarray, d: int, perm: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`apply_plan`: maps a prediction back to the task's frame."""
    return np.ascontiguousarray(inverse_perm(perm)[dihedral(grid, DIHEDRAL_INVERSE[d])])


def random_perms(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` colour permutations with 0 fixed, shape (n, 10) uint8."""
    tail = np.argsort(rng.random((n, 9)), axis=1) + 1
    return np.concatenate([np.zeros((n, 1), dtype=np.int64), tail], axis=1).astype(np.uint8)


def task_rng(seed: int, task_id: str) -> np.random.Generator:
    """A task's own generator: its plans do not depend on which other tasks are ingested."""
    return np.random.default_rng([seed, zlib.crc32(task_id.encode())])


def _canonical_colours(grids: list[np.ndarray]) -> tuple[bytes, np.ndarray]:
    """Relabel non-zero colours by first appearance. Returns (pattern key, label → colour)."""
    flat = np.concatenate([g.reshape(-1) for g in grids])
    nz = flat[flat != 0]
    _, first = np.unique(nz, return_index=True)
    order = nz[np.sort(first)]  # colours in order of first appearance
    relabel = np.zeros(10, dtype=np.uint8)
    relabel[order] = np.arange(1, len(order) + 1, dtype=np.uint8)
    shapes = np.array([g.shape for g in grids], dtype=np.uint8).tobytes()
    return shapes + relabel[flat].tobytes(), order.astype(np.uint8)


def plan_augmentations(grids: list[np.ndarray], n_aug: int, rng: np.random.Generator,
                       retries_factor: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_aug`` augmented plans of a task plus the identity, deduplicated.

    Two plans are the same copy when they give identical grids for every grid of the task
    (symmetric tasks). Instead of transforming grids per plan, each dihedral image of the task
    is reduced once to a colour-free pattern; a plan's result is then fixed by
    (pattern class of its dihedral, the colours it gives the pattern's labels).
    Returns ``dihedral`` (k,) uint8 and ``perm`` (k, 10) uint8, identity first.
    """
    patterns, orders = [], []
    for d in range(NUM_DIHEDRAL):
        key, order = _canonical_colours([dihedral(g, d) for g in grids])
        patterns.append(key)
        orders.append(order)
    pattern_class = {}
    cls = np.array([pattern_class.setdefault(p, len(pattern_class)) for p in patterns])
    n_used = len(orders[0])
    order_mat = np.zeros((NUM_DIHEDRAL, max(n_used, 1)), dtype=np.int64)
    for d in range(NUM_DIHEDRAL):
        order_mat[d, :n_used] = orders[d]

    m = max(retries_factor * n_aug, 1)
    ds = np.concatenate([[0], rng.integers(0, NUM_DIHEDRAL, size=m)]).astype(np.uint8)
    perms = np.concatenate([IDENTITY_PERM[None], random_perms(rng, m)])
    # key row: pattern class, then the colour each pattern label gets under the plan
    colours = np.take_along_axis(perms.astype(np.int64), order_mat[ds][:, :n_used], axis=1)
    keys = np.concatenate([cls[ds][:, None], colours], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.sort(first)[: n_aug + 1]
    return ds[keep], perms[keep]


def render_canvases(pool: np.ndarray, shapes: np.ndarray, grid_idx: np.ndarray, d: np.ndarray,
                    perm: np.ndarray, offset: np.ndarray, size: int = CANVAS) -> np.ndarray:
    """Vectorised encode of many grids under their plans and offsets.

    pool: (G, 30, 30) uint8 base grids (top-left aligned); shapes: (G, 2) heights/widths;
    grid_idx, d: (B,); perm: (B, 10); offset: (B, 2). Returns (B, size²) uint8 tokens, equal to
    ``canvas.encode(apply_plan(grid, d, perm), offset, size)`` for every row.
    """
    h = shapes[grid_idx, 0].astype(np.int64)[:, None, None]
    w = shapes[grid_idx, 1].astype(np.int64)[:, None, None]
    transposed = TRANSPOSES_SHAPE[d][:, None, None]
    oh, ow = np.where(transposed, w, h), np.where(transposed, h, w)
    rr = np.arange(size)[None, :, None] - offset[:, 0, None, None]
    cc = np.arange(size)[None, None, :] - offset[:, 1, None, None]
    ic, jc = _I_COEF[d][:, :, None, None], _J_COEF[d][:, :, None, None]
    i = ic[:, 0] * (h - 1) + ic[:, 1] * rr + ic[:, 2] * cc
    j = jc[:, 0] * (w - 1) + jc[:, 1] * rr + jc[:, 2] * cc
    inside = (rr >= 0) & (rr < oh) & (cc >= 0) & (cc < ow)
    src = pool[grid_idx[:, None, None], np.clip(i, 0, pool.shape[1] - 1), np.clip(j, 0, pool.shape[2] - 1)]
    colour = np.take_along_axis(perm, src.reshape(len(d), -1).astype(np.int64), axis=1)
    colour = colour.reshape(src.shape)
    eos = (((rr == oh) & (cc >= 0) & (cc < ow)) | ((cc == ow) & (rr >= 0) & (rr < oh)))
    out = np.where(inside, colour + COLOR_OFFSET, np.where(eos, EOS, PAD)).astype(np.uint8)
    return out.reshape(len(d), size * size)


def offsets_from_uniform(u: np.ndarray, extent: np.ndarray, size: int = CANVAS) -> np.ndarray:
    """Translation offsets (B, 2) from uniforms in [0, 1) so a block of ``extent`` (B, 2)
    rows/cols fits the canvas."""
    return (u * (size - extent + 1)).astype(np.int64)


def random_offsets(rng: np.random.Generator, extent: np.ndarray, size: int = CANVAS) -> np.ndarray:
    """Fresh random translation offsets (B, 2) for blocks of ``extent`` (B, 2)."""
    return offsets_from_uniform(rng.random(extent.shape), extent, size)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def keyed_uniform(*keys) -> np.ndarray:
    """Uniforms in [0, 1) that depend only on their integer keys (broadcast together): the same
    draw for the same (seed, copy, example) in every batch, on every rank, in every run."""
    with np.errstate(over="ignore"):
        h = np.full(np.broadcast(*keys).shape, _GOLDEN, dtype=np.uint64)
        for k in keys:
            h = _splitmix(h ^ (np.asarray(k).astype(np.uint64) + _GOLDEN))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
