"""The mapper's key-set forms against masks built from their definitions: the hybrid candidates
kept where the key-set greedy alone would lose, and 2D windows on an image's grid
(``grid_width``) mapped exactly."""

import numpy as np
import pytest

from swattn.sw import mapper
from swattn.sw.spec.keyset import EngineForm
from swattn.sw.spec.pattern import PatternLimits


def _window_mask(n, left, right):
    """Query i attends to keys i - left .. i + right (by definition, one pair at a time)."""
    return np.array([[-left <= j - i <= right for j in range(n)] for i in range(n)])


def _trap(n=40):
    """A mask where taking the densest item first loses: offsets -1 and +1 nine tenths full
    (each n - 1 pairs), and two keys at offset -(n - 2), full but cheap. With 3n - 2 pairs the
    window -1..1 holds both long diagonals; the far band first leaves room for one of them."""
    w = np.eye(n, dtype=bool)
    for o in (-1, 1):
        d = np.eye(n, k=o, dtype=bool)
        rows = np.flatnonzero(d.any(1))
        d[rows[::10], :] = False  # every tenth entry of the diagonal empty
        w |= d
    w[n - 2, 0] = w[n - 1, 1] = True  # offset -(n - 2): two keys
    return w


def test_hybrid_is_kept_where_the_keyset_greedy_alone_loses():
    n = 40
    w = _trap(n)
    budget = (3 * n - 2) / n
    kw = dict(max_globals=0, max_dilation=1)
    # the best window by brute force over every (left, right) that fits the budget
    best = max(float((w & m).sum()) / w.sum() for left in range(n) for right in range(n)
               if (m := _window_mask(n, left, right)).sum() <= budget * n + 1e-9)
    # the greedy fill from the query's own key alone: the far band, then one long diagonal
    dg = mapper._Diagonals(w.astype(float))
    fill = mapper._Fill(w.astype(float), dg, 1, n - 1)
    fill.add_step(0)
    mapper._greedy_fill(fill, 3 * n - 2, 4, 8, 0)
    assert fill.mass / w.sum() < best - 0.1  # the case is a trap for the greedy
    m = mapper.map_to_pattern(w, budget, max_bands=4, max_columns=8, **kw)
    mask = mapper.pattern_mask(m.pattern)
    assert mask.sum() <= budget * n + 1e-9
    assert m.coverage == pytest.approx(float((w & mask).sum()) / w.sum())
    assert m.coverage >= best - 1e-12


# --- 2D windows on a grid ------------------------------------------------------------------------

def _grid_window(h, w, k, globals_=()):
    """A k x k window on an h x w image read row by row, by definition: query (y, x) attends to
    key (y', x') where |y' - y| <= k // 2 and |x' - x| <= k // 2; a global attends and is
    attended to by every token."""
    r = k // 2
    n = h * w
    out = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            out[i, j] = abs(i // w - j // w) <= r and abs(i % w - j % w) <= r
    for g in globals_:
        out[g, :] = out[:, g] = True
    return out


GRIDS = [(6, 8, 3), (8, 8, 5), (14, 14, 3), (10, 6, 3), (5, 7, 7), (3, 16, 5), (7, 9, 1),
         (9, 12, 7)]


@pytest.mark.parametrize("h, w, k", GRIDS)
def test_a_window_on_a_grid_is_mapped_exactly(h, w, k):
    from swattn.sw.spec.keyset import window_2d

    n = h * w
    mask = _grid_window(h, w, k)
    assert np.array_equal(window_2d(h, w, k).mask(), mask)  # the spec's helper agrees
    m = mapper.map_to_pattern(mask, mask.sum() / n, grid_width=w)
    assert np.array_equal(mapper.pattern_mask(m.pattern), mask), m.pattern
    assert m.coverage == 1.0 and m.keys_per_query == mask.sum() / n
    if k > 1:
        assert m.pattern.grid == (w, k // 2)
        assert m.pattern.dilation == 1
    # rows of keys other than the query's are bands at whole rows' distance
    for start, count in getattr(m.pattern, "bands", ()):
        assert count == k and (start + k // 2) % w == 0


@pytest.mark.parametrize("h, w, k, globals_", [(8, 10, 3, (0,)), (12, 12, 5, (0, 77))])
def test_a_window_on_a_grid_with_globals_is_mapped_exactly(h, w, k, globals_):
    n = h * w
    mask = _grid_window(h, w, k, globals_)
    m = mapper.map_to_pattern(mask, mask.sum() / n, grid_width=w)
    assert np.array_equal(mapper.pattern_mask(m.pattern), mask), m.pattern
    assert tuple(m.pattern.globals_) == tuple(sorted(globals_))


def test_a_grid_within_the_engines_limits():
    """Fewer bands or a shorter reach than the window needs: the best that fits, honestly
    counted."""
    h, w, k = 10, 10, 5
    n = h * w
    mask = _grid_window(h, w, k)
    for lim in (PatternLimits(max_bands=3), PatternLimits(max_radius=12),
                PatternLimits(max_bands=2, max_globals=0)):
        m = mapper.map_to_pattern(mask, mask.sum() / n, limits=lim, grid_width=w)
        got = mapper.pattern_mask(m.pattern)
        assert got.sum() <= mask.sum()
        assert m.coverage == pytest.approx((got & mask).sum() / mask.sum())
        assert 0.5 < m.coverage < 1.0
        EngineForm.from_pattern(mapper.keyset(m.pattern)).check(lim)
    # without the grid the same budget covers less: the rows' wrapped keys cost pairs
    plain = mapper.map_to_pattern(mask, mask.sum() / n, max_bands=k, max_columns=0)
    assert plain.coverage < 1.0


@pytest.mark.parametrize("width, message", [
    (0, "grid_width = 0 is out of range: allowed an integer 1..48"),
    (49, "grid_width = 49 is out of range: allowed an integer 1..48"),
    (2.5, "grid_width = 2.5 is out of range"),
])
def test_bad_grid_width(width, message):
    with pytest.raises(ValueError, match=message):
        mapper.map_to_pattern(np.eye(48), 3, grid_width=width)
    with pytest.raises(ValueError, match="no 2D grid"):
        mapper.map_to_pattern(np.eye(48), 3, grid_width=8, limits=PatternLimits(grid=False))
