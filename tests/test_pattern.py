"""HybridPattern against a brute-force mask written here with plain loops, and its validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swattn.sw.spec.pattern import HybridPattern, PatternError, PatternLimits


def brute_mask(n, left, right, dilation, globals_):
    """Query i sees key j iff j = i + o*dilation for some o in -left..right, or i or j is global."""
    g = set(globals_)
    mask = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i in g or j in g:
                mask[i][j] = True
                continue
            for o in range(-left, right + 1):
                if i + o * dilation == j:
                    mask[i][j] = True
    return mask


def check_against_brute(p: HybridPattern, n, left, right, dilation, globals_):
    want = brute_mask(n, left, right, dilation, globals_)
    assert p.mask().tolist() == want
    counts = [sum(row) for row in want]
    assert p.row_counts().tolist() == counts
    assert p.pairs() == sum(counts)
    assert p.sparsity() == pytest.approx(1 - sum(counts) / n**2)
    for i in range(n):
        keys = p.row_keys(i)
        assert keys.tolist() == [j for j in range(n) if want[i][j]]
    flags = p.is_global().tolist()
    assert flags == [i in set(globals_) for i in range(n)]


@st.composite
def patterns(draw):
    n = draw(st.integers(1, 40))
    left = draw(st.integers(0, 45))
    right = draw(st.integers(0, 45))
    dilation = draw(st.integers(1, 45))
    globals_ = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 6)))
    return n, left, right, dilation, globals_


@settings(max_examples=150, deadline=None)
@given(patterns())
def test_random_patterns_match_brute_force(args):
    n, left, right, dilation, globals_ = args
    p = HybridPattern(n, left, right, dilation, tuple(globals_))
    assert p.globals_ == tuple(sorted(globals_))
    check_against_brute(p, n, left, right, dilation, globals_)


@pytest.mark.parametrize("n, left, right, dilation, globals_", [
    (1, 0, 0, 1, ()),                    # n = 1
    (1, 5, 5, 3, (0,)),                  # n = 1, its only token global
    (7, 20, 20, 1, ()),                  # window wider than n: dense
    (7, 3, 0, 1, tuple(range(7))),       # every token global
    (9, 2, 2, 1, ()),                    # no global
    (6, 3, 3, 10, ()),                   # dilation larger than n: each row sees itself only
    (6, 3, 3, 10, (2,)),                 # ... plus a global
    (10, 3, 0, 1, ()),                   # causal window
    (10, 0, 3, 2, ()),                   # anti-causal, dilated
    (12, 2, 2, 1, (0, 11)),              # globals at both ends
    (12, 0, 0, 1, (0, 11)),              # zero radius: self plus globals
    (13, 2, 1, 3, (0, 6, 12)),           # dilation with globals inside and outside windows
])
def test_edges(n, left, right, dilation, globals_):
    check_against_brute(HybridPattern(n, left, right, dilation, globals_),
                        n, left, right, dilation, globals_)


def test_edge_counts_by_hand():
    # expected values written out, not brute-forced
    assert HybridPattern(7, 20, 20).row_counts().tolist() == [7] * 7
    assert HybridPattern(6, 3, 3, 10).row_counts().tolist() == [1] * 6
    assert HybridPattern(5, 2, 0).row_counts().tolist() == [1, 2, 3, 3, 3]
    assert HybridPattern(5, 1, 1, 1, (0, 4)).row_counts().tolist() == [5, 4, 5, 4, 5]
    assert HybridPattern(5, 1, 1, 1, (0, 4)).row_keys(2).tolist() == [0, 1, 2, 3, 4]
    assert HybridPattern(8, 1, 1, 3, (5,)).row_keys(3).tolist() == [0, 3, 5, 6]
    assert HybridPattern(4, 0, 0, 1, (0, 1, 2, 3)).sparsity() == 0.0
    assert HybridPattern(4, 0, 0).sparsity() == pytest.approx(0.75)


def test_globals_are_sorted_and_accept_arrays():
    p = HybridPattern(10, 1, 1, 1, np.array([7, 2, 5]))
    assert p.globals_ == (2, 5, 7)
    assert p == HybridPattern(10, 1, 1, 1, (5, 7, 2))


def test_counts_without_dense_mask_at_large_n():
    # n = 100000: a dense mask would be 10^10 booleans, so this only passes if row_counts
    # really avoids it. Expected counts from the formula: interior rows 2*r + 1 + globals.
    n, r = 100_000, 100
    p = HybridPattern(n, r, r, 1, (0, n - 1))
    c = p.row_counts()
    assert c[0] == n and c[-1] == n
    assert c[50_000] == 2 * r + 1 + 2
    assert c[1] == (r + 1 + 1) + 1      # keys 0..101 hold global 0; plus global n-1
    assert p.row_keys(50_000).size == 2 * r + 3


# --- validation ---------------------------------------------------------------------------------
LIM = PatternLimits(max_n=64, max_radius=8, max_dilation=4, max_globals=2)


@pytest.mark.parametrize("kwargs, field, allowed", [
    (dict(n=0, left=1, right=1), "n = 0", "1.."),
    (dict(n=-3, left=1, right=1), "n = -3", "1.."),
    (dict(n=8, left=-1, right=1), "left = -1", "0.."),
    (dict(n=8, left=1, right=-2), "right = -2", "0.."),
    (dict(n=8, left=1, right=1, dilation=0), "dilation = 0", "1.."),
    (dict(n=8, left=1, right=1, globals_=(3, 1, 3)), "unique", "[3]"),
    (dict(n=8, left=1, right=1, globals_=(8,)), "global index 8", "0..7"),
    (dict(n=8, left=1, right=1, globals_=(-1,)), "global index -1", "0..7"),
    (dict(n=65, left=1, right=1, limits=LIM), "n = 65", "1..64"),
    (dict(n=16, left=1, right=1, dilation=5, limits=LIM), "dilation = 5", "1..4"),
    (dict(n=16, left=1, right=1, globals_=(0, 1, 2), limits=LIM), "globals", "0..2"),
    (dict(n=16, left=9, right=1, limits=LIM), "left = 9", "0..8"),
    (dict(n=16, left=1, right=3, dilation=3, limits=LIM), "right = 3", "0..8"),
    (dict(n=2.5, left=1, right=1), "n must be an integer", "2.5"),
    (dict(n=8, left=True, right=1), "left must be an integer", "True"),
])
def test_bad_values_name_field_and_range(kwargs, field, allowed):
    with pytest.raises(PatternError) as info:
        HybridPattern(**kwargs)
    msg = str(info.value)
    assert field in msg and allowed in msg, msg
    assert isinstance(info.value, ValueError)


def test_limits_at_the_boundary_are_accepted():
    p = HybridPattern(64, 4, 2, 2, (0, 63), limits=LIM)   # reach 8 and 4, 2 globals, n = 64
    assert p.row_counts()[32] == 4 + 2 + 1 + 2


def test_row_keys_out_of_range():
    p = HybridPattern(5, 1, 1)
    for row in (-1, 5):
        with pytest.raises(PatternError, match=r"row .* allowed 0\.\.4"):
            p.row_keys(row)
