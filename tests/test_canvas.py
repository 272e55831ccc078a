import numpy as np
import pytest

from arc_trm.data.canvas import EOS, PAD, decode, encode
from arc_trm.data.tasks import load_bundled


@pytest.mark.parametrize("name", ["arc1-train", "arc1-eval", "arc2-train", "arc2-eval"])
def test_round_trip_every_grid_of_arc(name):
    report = load_bundled(name)
    assert report.tasks and not report.errors
    n = 0
    for task in report.tasks:
        for g in task.all_grids():
            assert np.array_equal(decode(encode(g)), g), task.task_id
            n += 1
    assert n > 1000


def test_layout_matches_paper():
    g = np.array([[0, 9], [3, 4], [5, 6]], np.uint8)
    c = encode(g).reshape(30, 30)
    assert c[0, 0] == 2 and c[0, 1] == 11
    assert list(c[3, :2]) == [EOS, EOS] and c[3, 2] == PAD   # EOS row under, no corner
    assert list(c[:3, 2]) == [EOS] * 3                       # EOS column right
    assert (c[4:] == PAD).all() and (c[:, 3:] == PAD).all()
    full = np.ones((30, 30), np.uint8)
    assert (encode(full) >= 2).all()


def test_decode_is_robust_to_garbage():
    rng = np.random.default_rng(0)
    for _ in range(200):
        out = decode(rng.integers(0, 40, size=900))
        assert out.ndim == 2 and (out <= 9).all()
    assert decode(np.zeros(900, np.int64)).shape == (0, 0)
    # a ragged prediction decodes to the largest EOS-free top-left rectangle
    c = np.full((30, 30), PAD)
    c[0, :5] = 3
    c[1, :2] = 4
    c[2, :2] = 4
    assert decode(c).shape == (3, 2)
