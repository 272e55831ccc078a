"""The vision cores' canvas (VARC's ``src/ARC_loader.py``): a grid scaled up by a whole factor and drawn at an
offset on a square canvas of ``side`` pixels (64 in the papers), everything else background; the target also
marks the shape's border (the column right of it and the row under it, corner included), so the model says
how large its answer is. Pixel tokens: colour c → c, background 10, border 11.

Where VARC draws from its dataset's ``random.Random(42)`` as examples are loaded, arc-trm draws the scale and
offset from a generator the caller passes (:func:`draw_placement` consumes it exactly as VARC's
``process_per_example`` does: ``randint`` for the scale, then for x, then for y), so the same generator
state gives the same canvas as VARC's code."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arc_trm.data.augment import DIHEDRAL_INVERSE, dihedral, inverse_perm

BACKGROUND = 10      # VARC's IGNORE_INDEX: outside the grid (and not scored)
BORDER = 11          # VARC's PAD_INDEX: the target's right column and bottom row beyond the grid
PIXEL_VOCAB = 12     # VARC's --num-colors 12
MAX_GRID = 30


@dataclass(frozen=True)
class Placement:
    """How one example sits on the canvas: every grid of the example scaled by ``scale`` with its top-left
    pixel at (``y``, ``x``)."""

    scale: int
    x: int
    y: int


def max_scale(height: int, width: int, side: int) -> int:
    """The largest whole factor VARC draws: the grid fits ``side − 2`` pixels (a border and a margin)."""
    return max(1, (side - 2) // max(height, width))


def draw_placement(rng, height: int, width: int, side: int, scale: int | None = None,
                   translate: bool = True) -> Placement:
    """VARC's draw for an example whose grids (input and output) span at most ``height`` × ``width``:
    a random scale 1..max (or the given ``scale``), then a random x and y offset in 1..room (1 without room
    or without translation). ``rng`` is a ``random.Random``."""
    room = side - 2
    if scale is None:
        scale = rng.randint(1, room // max(width, height))
    w, h = width * scale, height * scale
    x = rng.randint(1, room - w) if translate and room > w else 1
    y = rng.randint(1, room - h) if translate and room > h else 1
    return Placement(scale, x, y)


def scaled(grid: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(np.asarray(grid), scale, axis=0), scale, axis=1)


def draw(grid: np.ndarray, at: Placement, side: int, border: bool) -> np.ndarray:
    """One grid on the canvas: (side, side) int64, background around it, and with ``border`` the border
    column and row of the target."""
    g = scaled(grid, at.scale)
    h, w = g.shape
    if at.y + h + (1 if border else 0) > side or at.x + w + (1 if border else 0) > side:
        raise ValueError(f"a {h}x{w} grid at ({at.y}, {at.x}) does not fit a {side}-pixel canvas")
    out = np.full((side, side), BACKGROUND, dtype=np.int64)
    out[at.y:at.y + h, at.x:at.x + w] = g
    if border:
        out[at.y:at.y + h, at.x + w] = BORDER
        out[at.y + h, at.x:at.x + w + 1] = BORDER
    return out


def crop(pixels: np.ndarray, at: Placement) -> np.ndarray:
    """The answer a predicted canvas shows, as VARC's ``generate_predictions`` reads it: from the placement's
    corner, as wide as the first row runs before a border pixel and as tall as the first column does (the
    canvas's edge without one). Still scaled; values other than colours 0-9 stay (an invalid answer the
    caller rejects)."""
    p = np.asarray(pixels)[at.y:, at.x:]
    w = int(np.argmax(p[0] == BORDER)) if (p[0] == BORDER).any() else p.shape[1]
    h = int(np.argmax(p[:, 0] == BORDER)) if (p[:, 0] == BORDER).any() else p.shape[0]
    return p[:h, :w].copy()


def downscale(grid: np.ndarray, scale: int) -> np.ndarray:
    """Undo the scale-up by a majority vote over each ``scale`` × ``scale`` block (a partial block at the
    edge votes with the pixels it has; ties go to the smaller value, as VARC's ``np.argmax(np.bincount)``).
    VARC undoes the dihedral transform between :func:`crop` and this, so callers do too."""
    g = np.asarray(grid)
    if scale == 1 or g.size == 0:
        return g.copy()
    rows = []
    for i in range(0, g.shape[0], scale):
        rows.append([int(np.argmax(np.bincount(g[i:i + scale, j:j + scale].ravel())))
                     for j in range(0, g.shape[1], scale)])
    return np.array(rows, dtype=g.dtype)


def encode_pair(inp: np.ndarray, out: np.ndarray | None, rng, side: int, scale: int | None = None,
                translate: bool = True) -> tuple[np.ndarray, np.ndarray, Placement]:
    """One example as VARC's ``process_per_example`` draws it: the placement from the larger of the two grids'
    heights and widths, the input without a border, the target (all background when there is no output)
    with its border."""
    h, w = np.shape(inp)
    if out is not None:
        h, w = max(h, np.shape(out)[0]), max(w, np.shape(out)[1])
    at = draw_placement(rng, h, w, side, scale, translate)
    target = draw(out, at, side, border=True) if out is not None else np.full((side, side), BACKGROUND, np.int64)
    return draw(inp, at, side, border=False), target, at


def answer_of_view(pixels: np.ndarray, at: Placement, d: int, perm: np.ndarray) -> np.ndarray:
    """A view's predicted canvas (flat or square) → the answer in the task's frame, in VARC's order: crop at
    the placement, undo the dihedral transform, scale down, undo the colour permutation. An empty grid when
    the answer holds anything but colours 0-9 (background or border inside it), which no vote should count."""
    side = int(round(np.asarray(pixels).size ** 0.5))
    g = crop(np.asarray(pixels).reshape(side, side), at)
    if g.size == 0 or g.max() > 9:
        return np.zeros((0, 0), dtype=np.uint8)
    g = downscale(np.ascontiguousarray(dihedral(g, DIHEDRAL_INVERSE[d])), at.scale)
    return np.ascontiguousarray(inverse_perm(perm)[g.astype(np.int64)])
