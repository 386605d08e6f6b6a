"""Key-set patterns (``swattn.sw.spec.keyset``: bands, a 2D grid, key-only columns, globals)
against definitions written here independently, and the golden model's general form
(``golden.attention_keys``) against the per-row integer reference, the hybrid golden model and
the float reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from swattn.sw import golden
from swattn.sw.spec import regs
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.keyset import Band, EngineForm, Grid, KeySetPattern, window_2d
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.pattern import HybridPattern, PatternError, PatternLimits


def brute_mask(n, bands, grid, columns, globals_):
    """The key sets by their definition, one (query, key) pair at a time."""
    m = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for b in bands:
            for c in range(b.count):
                j = i + b.start + c * b.step
                if 0 <= j < n and (grid is None or abs(j % grid.width - i % grid.width)
                                   <= grid.radius):
                    m[i, j] = True
        for j in list(columns) + list(globals_):
            m[i, j] = True
        if i in globals_:
            m[i, :] = True
    return m


def random_keyset(rng: random.Random, n: int) -> KeySetPattern:
    bands = tuple(Band(rng.randint(-n, n // 2), rng.randint(1, 6), rng.randint(1, 4))
                  for _ in range(rng.randint(0, 4)))
    grid = Grid(rng.randint(1, 12), rng.randint(0, 3)) if rng.random() < 0.4 else None
    columns = rng.sample(range(n), rng.randint(0, 3))
    globals_ = rng.sample(range(n), rng.randint(0, 2))
    if columns and globals_ and rng.random() < 0.5:
        globals_[0] = columns[0]  # a global that is also a column
    return KeySetPattern(n, bands, grid, tuple(columns), tuple(globals_))


@pytest.mark.parametrize("seed", range(40))
def test_mask_is_the_definition(seed):
    rng = random.Random(seed)
    p = random_keyset(rng, rng.randint(1, 40))
    want = brute_mask(p.n, p.bands, p.grid, p.columns, p.globals_)
    assert np.array_equal(p.mask(), want)
    assert np.array_equal(p.row_counts(), want.sum(axis=1))
    for i in range(p.n):
        assert np.array_equal(p.row_keys(i), np.flatnonzero(want[i]))


@pytest.mark.parametrize("seed", range(20))
def test_a_hybrid_pattern_is_one_band(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    dil = rng.randint(1, 3)
    h = HybridPattern(n, rng.randint(0, 5), rng.randint(0, 5), dil,
                      tuple(rng.sample(range(n), rng.randint(0, min(3, n)))))
    assert np.array_equal(KeySetPattern.from_hybrid(h).mask(), h.mask())


def test_2d_window_is_exact_at_the_image_edges():
    """A 3 x 3 window on a 4 x 5 grid: the neighbours by (y, x) coordinates, no wrap-around."""
    H, W, k = 4, 5, 3
    p = window_2d(H, W, k)
    want = np.zeros((H * W, H * W), dtype=bool)
    for y in range(H):
        for x in range(W):
            for yy in range(H):
                for xx in range(W):
                    want[y * W + x, yy * W + xx] = abs(yy - y) <= 1 and abs(xx - x) <= 1
    assert np.array_equal(p.mask(), want)
    # the left edge's query does not reach the previous row's last column
    assert not p.mask()[W, W - 1]
    with pytest.raises(PatternError, match="k = 4: allowed an odd window size"):
        window_2d(H, W, 4)


def test_overlaps_count_once():
    p = KeySetPattern(10, (Band(-2, 5), Band(0, 3)), None, (4,), (4,))
    assert p.mask()[0].sum() == len({0, 1, 2, 4})
    assert p.row_counts()[4] == 10  # a global row sees every key


@pytest.mark.parametrize("kw, message", [
    (dict(columns=(3, 3)), r"columns must be unique: \[3\]"),
    (dict(globals_=(12,)), "global index 12 is out of range: allowed 0..9"),
    (dict(columns=(-1,)), "column index -1 is out of range"),
    (dict(bands=((0, 3),)), "is not a Band"),
    (dict(grid=(4, 1)), "is not a Grid"),
])
def test_bad_fields_are_refused_with_their_values(kw, message):
    with pytest.raises(PatternError, match=message):
        KeySetPattern(10, **kw)


def test_bad_bands_and_grids_are_refused():
    with pytest.raises(PatternError, match="band count = 0 is out of range"):
        Band(0, 0)
    with pytest.raises(PatternError, match="band step = 0 is out of range"):
        Band(0, 2, 0)
    with pytest.raises(PatternError, match="grid width = 0 is out of range"):
        Grid(0, 1)


def _qkv(n, d, seed):
    rs = np.random.default_rng(seed)
    return tuple(rs.integers(-128, 128, (n, d)).astype(np.int8) for _ in range(3))


CFG = SoftmaxConfig.from_multiplier(1 / (32 * 3), 2)


@pytest.mark.parametrize("seed", range(12))
def test_golden_keys_equals_the_row_by_row_reference(seed):
    rng = random.Random(100 + seed)
    p = random_keyset(rng, rng.randint(1, 300))
    q, k, v = _qkv(p.n, 32, seed)
    fast = golden.attention_keys(q, k, v, p, CFG)
    slow = golden.attention_rowwise(q, k, v, p, CFG)
    assert np.array_equal(fast, slow)
    empty = p.row_counts() == 0
    assert not fast[empty].any()


@pytest.mark.parametrize("seed", range(6))
def test_golden_keys_equals_the_hybrid_golden_model(seed):
    rng = random.Random(200 + seed)
    n = rng.randint(1, 600)
    h = HybridPattern(n, rng.randint(0, 40), rng.randint(0, 40), rng.randint(1, 3),
                      tuple(rng.sample(range(n), rng.randint(0, min(4, n)))))
    q, k, v = _qkv(n, 64, seed)
    assert np.array_equal(golden.attention_keys(q, k, v, KeySetPattern.from_hybrid(h), CFG),
                          golden.attention(q, k, v, h, CFG))


def test_golden_keys_follows_the_float_reference_on_a_2d_window():
    """A 5 x 5 window on a 12 x 12 grid with two key-only columns and a global: within the
    quantisation bound of test_golden's float reference, element by element."""
    from test_golden import float_reference_and_bound, mult_for, quantised_gaussian

    p = window_2d(12, 12, 5, globals_=(0,), columns=(7, 90))
    rng = np.random.default_rng(5)
    (q, sq), (k, sk), (v, _) = (quantised_gaussian(rng, p.n, 64) for _ in range(3))
    mant, shift = mult_for(sq, sk, 64, temperature=3.0)
    got = golden.attention_keys(q, k, v, p, SoftmaxConfig(mant, shift, 0))
    ref, bound = float_reference_and_bound(q, k, v, p.mask(), mant, shift, 0)
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) - bound)


# --- the engine form ------------------------------------------------------------------------
def random_engine_keyset(rng: random.Random, n: int) -> KeySetPattern:
    """Bands of one step d starting at multiples of d, one through the query, overlapping and
    touching each other at random; columns, some of them globals."""
    d = rng.randint(1, 3)
    a = rng.randint(0, 5)
    bands = [Band(-a * d, a + 1 + rng.randint(0, 4), d)]
    for _ in range(rng.randint(0, 5)):
        bands.append(Band(rng.randint(-12, 12) * d, rng.randint(1, 5), d))
    rng.shuffle(bands)
    columns = rng.sample(range(n), rng.randint(0, min(4, n)))
    globals_ = rng.sample(range(n), rng.randint(0, min(2, n)))
    if columns and globals_ and rng.random() < 0.5:
        globals_[0] = columns[0]
    return KeySetPattern(n, tuple(bands), None, tuple(columns), tuple(globals_))


@pytest.mark.parametrize("seed", range(30))
def test_engine_form_has_the_same_key_sets(seed):
    rng = random.Random(300 + seed)
    n = rng.randint(1, 90)
    p = random_engine_keyset(rng, n)
    e = EngineForm.from_pattern(p)
    assert np.array_equal(e.keyset().mask(), brute_mask(n, p.bands, None, p.columns, p.globals_))
    # its bands are disjoint from the window and from each other, ascending
    ends = [(-e.left, e.right)] + [(s, s + c - 1) for s, c in e.bands]
    ends.sort()
    assert all(a[1] < b[0] for a, b in zip(ends, ends[1:]))
    assert not set(e.columns) & set(e.globals_)


def test_engine_form_of_a_hybrid_pattern_is_its_window():
    h = HybridPattern(50, 3, 4, 2, (7, 9))
    e = EngineForm.from_pattern(KeySetPattern.from_hybrid(h))
    assert (e.left, e.right, e.dilation, e.bands, e.columns, e.globals_) == (3, 4, 2, (), (),
                                                                            (7, 9))
    assert e.hybrid() == h


@pytest.mark.parametrize("pattern, message", [
    (KeySetPattern(40, (Band(-2, 5, 1), Band(10, 3, 2))), "share one step"),
    (KeySetPattern(40, (Band(-2, 3, 2), Band(5, 3, 2))), "multiple of the bands' step"),
    (KeySetPattern(40, (Band(1, 3, 1),)), "offset 0"),
    (KeySetPattern(40, (Band(-2, 3, 2),), Grid(8, 1)), "grid 8:1 with bands of step 2"),
])
def test_patterns_with_no_engine_form_are_refused(pattern, message):
    with pytest.raises(PatternError, match=message):
        EngineForm.from_pattern(pattern)


@pytest.mark.parametrize("kw, message", [
    (dict(bands=((-1, 2),)), "overlaps the window"),
    (dict(bands=((4, 2), (5, 1))), "ascending order and disjoint"),
    (dict(bands=((4, 0),)), "band 0 count = 0"),
    (dict(columns=(9, 3)), "ascending order"),
    (dict(columns=(3,), globals_=(3,)), r"columns \[3\] are also global"),
    (dict(columns=(40,)), "column index 40 is out of range"),
    (dict(grid=(41, 1)), "grid width = 41 is out of range"),
    (dict(grid=(8, 8)), "grid radius = 8 is out of range"),
    (dict(grid=(0, 0)), "grid width = 0"),
    (dict(grid=(8,)), "not a .width, radius. pair"),
])
def test_bad_engine_forms_are_refused(kw, message):
    with pytest.raises(PatternError, match=message):
        EngineForm(40, 2, 2, 1, **kw)


@pytest.mark.parametrize("kw, limits, message", [
    (dict(bands=((-30, 2),)), PatternLimits(max_radius=20), "reach 30 tokens"),
    (dict(bands=((5, 2), (9, 1))), PatternLimits(max_bands=2), "bands: 3 with the window"),
    (dict(columns=(1, 2, 3)), PatternLimits(max_columns=2), "columns: 3 given"),
    (dict(dilation=3), PatternLimits(max_dilation=2), "dilation"),
    (dict(grid=(8, 1)), PatternLimits(grid=False), "no 2D grid"),
])
def test_engine_limits_are_checked(kw, limits, message):
    args = dict(n=60, left=2, right=2)
    args.update(kw)
    e = EngineForm(**args)
    with pytest.raises(PatternError, match=message):
        e.check(limits)
    e.check(PatternLimits())


def test_the_configuration_register_carries_bands_and_columns():
    P = EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                     seq_width=10, max_bands=4, max_columns=3)
    e = EngineForm(100, 2, 2, 1, ((-9, 2), (5, 3)), (7, 50), (3,))
    view = regs.config_layout(P).from_bits(regs.pack_config(P, e))
    assert (int(view.n_bands), int(view.n_columns)) == (2, 2)
    assert [(int(b.start), int(b.count)) for b in view.bands] == [(-9, 2), (5, 3), (0, 0)]
    assert [int(c) for c in view.columns] == [7, 50, 0]
    with pytest.raises(ValueError, match="no band fields"):
        regs.pack_config(EngineParams(head_dim=32, lanes=16), e)


@pytest.mark.parametrize("seed", range(30))
def test_engine_form_with_a_grid_has_the_same_key_sets(seed):
    """A grid over bands of step 1: the engine form keeps it (a width over n taken down to n, a
    radius over width - 1 to width - 1) and its key sets are the definition's."""
    rng = random.Random(700 + seed)
    n = rng.randint(1, 90)
    p = random_engine_keyset(rng, n)
    bands = (Band(0, 1, 1),) + tuple(Band(b.start, b.count, 1) for b in p.bands)
    p = KeySetPattern(n, bands, Grid(rng.randint(1, n + 5), rng.randint(0, 12)), p.columns,
                      p.globals_)
    e = EngineForm.from_pattern(p)
    assert e.grid[0] <= n and e.grid[1] < e.grid[0]
    assert np.array_equal(e.keyset().mask(), brute_mask(n, p.bands, p.grid, p.columns,
                                                        p.globals_))


def test_a_2d_window_has_an_engine_form_with_its_grid():
    p = window_2d(6, 7, 3, globals_=(4,), columns=(20,))
    e = EngineForm.from_pattern(p)
    assert (e.left, e.right, e.dilation, e.grid) == (1, 1, 1, (7, 1))
    assert e.bands == ((-8, 3), (6, 3))
    assert np.array_equal(e.keyset().mask(), p.mask())
    # the dilated grid has none
    with pytest.raises(PatternError, match="grid 8:1 with dilation 2"):
        EngineForm(40, 1, 1, 2, grid=(8, 1))


def test_the_configuration_register_carries_the_grid():
    P = EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                     seq_width=10, max_bands=4, grid=True)
    e = EngineForm(100, 1, 1, 1, ((-11, 3), (9, 3)), (), (), (10, 1))
    view = regs.config_layout(P).from_bits(regs.pack_config(P, e))
    assert (int(view.grid_width), int(view.grid_radius)) == (10, 1)
    no_grid = EngineForm(100, 1, 1, 1, ((-11, 3),))
    view = regs.config_layout(P).from_bits(regs.pack_config(P, no_grid))
    assert int(view.grid_width) == 0
    with pytest.raises(ValueError, match="no grid fields"):
        regs.pack_config(EngineParams(head_dim=32, lanes=16, max_bands=4), e)
    with pytest.raises(ValueError, match="max_bands = 1"):
        EngineParams(head_dim=32, lanes=16, grid=True)
