import numpy as np
import pytest

from arc_trm.data.augment import (DIHEDRAL_INVERSE, TRANSPOSES_SHAPE, apply_plan, dihedral, invert_plan,
                                  plan_augmentations, random_offsets, random_perms, render_canvases)
from arc_trm.data.canvas import encode


def _random_grids(rng, n):
    return [rng.integers(0, 10, size=tuple(rng.integers(1, 31, size=2))).astype(np.uint8) for _ in range(n)]


@pytest.mark.parametrize("d", range(8))
def test_inverse_of_apply_is_identity(d):
    rng = np.random.default_rng(d)
    grids = _random_grids(rng, 60)
    perms = random_perms(rng, len(grids))
    for g, p in zip(grids, perms):
        assert p[0] == 0 and sorted(p) == list(range(10))
        out = apply_plan(g, d, p)
        back = invert_plan(out, d, p)
        assert back.shape == g.shape and np.array_equal(back, g)


def test_dihedral_group_inverse_table():
    g = np.arange(12).reshape(3, 4)
    for d in range(8):
        assert np.array_equal(dihedral(dihedral(g, d), DIHEDRAL_INVERSE[d]), g)
    assert len({dihedral(g, d).tobytes() + bytes(dihedral(g, d).shape) for d in range(8)}) == 8


def test_vectorised_render_matches_reference_encoder():
    rng = np.random.default_rng(1)
    grids = _random_grids(rng, 80)
    pool = np.zeros((len(grids), 30, 30), np.uint8)
    shapes = np.array([g.shape for g in grids])
    for k, g in enumerate(grids):
        pool[k, :g.shape[0], :g.shape[1]] = g
    d = rng.integers(0, 8, size=len(grids))
    perm = random_perms(rng, len(grids))
    extent = np.where(TRANSPOSES_SHAPE[d][:, None], shapes[:, ::-1], shapes)
    off = random_offsets(rng, extent)
    out = render_canvases(pool, shapes, np.arange(len(grids)), d, perm, off)
    for k, g in enumerate(grids):
        assert np.array_equal(out[k], encode(apply_plan(g, d[k], perm[k]), tuple(off[k])))


def test_plans_deduplicate_symmetric_tasks_and_are_deterministic():
    rng = np.random.default_rng(0)
    # all-zero grid: every plan gives the same grid → only the identity survives
    d, p = plan_augmentations([np.zeros((3, 3), np.uint8)], 50, rng)
    assert len(d) == 1
    # 2x2 checkerboard of two colours: dihedral images equal colour swaps → 9*8 distinct copies
    g = np.array([[1, 2], [2, 1]], np.uint8)
    d, p = plan_augmentations([g], 1000, np.random.default_rng(0))
    assert len(d) == 72
    results = {apply_plan(g, int(a), b).tobytes() for a, b in zip(d, p)}
    assert len(results) == 72
    # identity first, determinism for a seed
    assert d[0] == 0 and np.array_equal(p[0], np.arange(10))
    d2, p2 = plan_augmentations([g], 1000, np.random.default_rng(0))
    assert np.array_equal(d, d2) and np.array_equal(p, p2)


def test_plans_of_asymmetric_task_are_all_distinct():
    rng = np.random.default_rng(3)
    grids = _random_grids(rng, 4)
    d, p = plan_augmentations(grids, 200, np.random.default_rng(5))
    assert len(d) == 201
    keys = {b"".join(apply_plan(g, int(a), b).tobytes() + bytes(apply_plan(g, int(a), b).shape) for g in grids)
            for a, b in zip(d, p)}
    assert len(keys) == 201


def test_each_dihedral_id_is_the_reference_transform():
    """Ids 0-7 are the TRM reference's `dihedral_transform` (np.rot90 / fliplr / flipud / transpose),
    on every grid shape: trained embedding rows and imported plans depend on this numbering."""
    reference = [lambda g: g, lambda g: np.rot90(g, 1), lambda g: np.rot90(g, 2), lambda g: np.rot90(g, 3),
                 np.fliplr, np.flipud, lambda g: g.T, lambda g: np.fliplr(np.rot90(g, 1))]
    rng = np.random.default_rng(0)
    for h in range(1, 31, 3):
        for w in range(1, 31, 4):
            g = rng.integers(0, 10, size=(h, w)).astype(np.uint8)
            for d, ref in enumerate(reference):
                assert np.array_equal(dihedral(g, d), ref(g)), (h, w, d)
