"""Grid ⇄ token canvas, exactly as the TRM paper lays it out.

PAD=0, EOS=1, colour c → c+2. A grid sits in a 30×30 canvas at an offset (0, 0 unless
translated); EOS fills the row under the grid and the column right of it (no corner cell).
"""

import numpy as np

PAD, EOS, COLOR_OFFSET = 0, 1, 2
VOCAB_SIZE = 12
CANVAS = 30                 # the paper's canvas side, and the largest ARC grid side
IGNORE_LABEL = -100         # label of a PAD cell: no loss, no accuracy


def encode(grid: np.ndarray, offset: tuple[int, int] = (0, 0), size: int = CANVAS) -> np.ndarray:
    """Grid (h, w) of colours 0..9 → flat canvas of size² uint8 tokens (size 30 = the paper)."""
    h, w = grid.shape
    r0, c0 = offset
    if r0 + h > size or c0 + w > size:
        raise ValueError(f"grid {h}x{w} at offset {offset} does not fit a {size}x{size} canvas")
    canvas = np.zeros((size, size), dtype=np.uint8)
    canvas[r0:r0 + h, c0:c0 + w] = grid + COLOR_OFFSET
    if r0 + h < size:
        canvas[r0 + h, c0:c0 + w] = EOS
    if c0 + w < size:
        canvas[r0:r0 + h, c0 + w] = EOS
    return canvas.reshape(-1)


def decode(tokens: np.ndarray) -> np.ndarray:
    """Flat (size²) or square predicted canvas → the largest top-left rectangle free of non-colour tokens.

    Robust to garbage: any token outside 2..11 (PAD, EOS or out of vocabulary) ends a row; a
    canvas whose top-left cell is not a colour decodes to an empty (0, 0) grid.
    """
    tokens = np.asarray(tokens)
    size = int(round(tokens.size ** 0.5))
    canvas = tokens.reshape(size, size)
    is_colour = (canvas >= COLOR_OFFSET) & (canvas < COLOR_OFFSET + 10)
    # Width of the colour run that starts each row at column 0.
    run = np.where(is_colour.all(axis=1), size, np.argmin(is_colour, axis=1))
    # A rectangle of r rows can be as wide as the narrowest of those rows.
    widths = np.minimum.accumulate(run)
    areas = widths * np.arange(1, size + 1)
    rows = int(np.argmax(areas)) + 1
    cols = int(widths[rows - 1])
    if cols == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (canvas[:rows, :cols] - COLOR_OFFSET).astype(np.uint8)
