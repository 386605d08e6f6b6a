"""The integer numerics against direct Python/float formulas (docs/numerics.md).

Expected values come from math, fractions and Python integers, never from the module under test.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swattn.sw.spec import numerics as nx

SETTINGS = settings(max_examples=200, deadline=None)


def py_table_entry(i: int) -> int:
    """round(2^15 * 2^(-i/256)), half up (no entry is a tie)."""
    return math.floor(2**15 * math.exp2(-i / 256) + 0.5)


def py_exp2_neg(x: int) -> int:
    """e = 0 for x >= 4096, else TABLE[x mod 256] shifted right (floor) by x // 256."""
    if x >= 4096:
        return 0
    return py_table_entry(x % 256) >> (x // 256)


# --- widths ------------------------------------------------------------------------------------

def test_widths_hold_their_extremes():
    # score: |s| <= d * 128 * 128 = 2^21 for d = 128; +2^21 needs 23 signed bits
    assert nx.SCORE_WIDTH == 23
    for d, bits in ((32, 21), (64, 22), (128, 23)):
        assert nx.score_width(d) == bits
        assert d * 128 * 128 <= 2 ** (bits - 1) - 1 and -d * 128 * 127 >= -2 ** (bits - 1)
        assert d * 128 * 128 > 2 ** (bits - 2) - 1          # one bit fewer would not do
    # t = m - s = q . (k_max - k) <= 128 * 255 * 128 per row
    assert 128 * 255 * 128 < 2**nx.DIFF_WIDTH
    assert nx.XPROD_WIDTH == nx.DIFF_WIDTH + 16
    assert (2**nx.DIFF_WIDTH - 1) * (2**16 - 1) < 2**nx.XPROD_WIDTH
    assert nx.EXP_CUTOFF == 4096 and nx.EXP_IN_WIDTH == 13 and nx.EXP_WIDTH == 16
    # R = floor(2^32 / Sn), Sn in [2^15, 2^16): R in (2^16, 2^17], 18 bits
    assert nx.RECIP_WIDTH == 18
    # sum and accumulator for n_max = 131071 keys: S <= n * 2^15, |A| <= n * 2^15 * 128
    assert nx.sum_width(131071) == 32 and 131071 * 2**15 < 2**32
    assert nx.acc_width(131071) == 40 and -131071 * 2**22 >= -(2**39)
    assert nx.sum_width(131072) == 33 and nx.acc_width(131072) == 41
    for n in (1, 2, 3, 1000, 4096, 16384, 131071):
        assert n * 2**15 < 2 ** nx.sum_width(n)
        assert n * 2**22 <= 2 ** (nx.acc_width(n) - 1)


# --- exp ---------------------------------------------------------------------------------------

def test_exp_table_vs_math_exp2():
    t = nx.EXP_TABLE
    assert t.shape == (256,) and t[0] == 2**15
    worst = 0.0
    for i in range(256):
        exact = 2**15 * math.exp2(-i / 256)
        assert int(t[i]) == py_table_entry(i), i
        worst = max(worst, abs(t[i] / exact - 1))
    assert worst <= 0.003                    # the error budget
    assert worst <= 0.5 / 2**14              # rounding only: 0.0031%
    assert nx.EXP_TABLE_REL_ERROR == pytest.approx(worst, rel=1e-12)
    assert all(2**14 < int(x) <= 2**15 for x in t)
    assert all(int(a) > int(b) for a, b in zip(t[:-1], t[1:]))
    assert not t.flags.writeable


def test_exp_rel_error_constant():
    # x rounded to 1/256 (error <= 1/512 of a power of two) times the table's rounding
    want = 2 ** (1 / 512) * (1 + 0.5 / 2**14) - 1
    assert 0.00135 < nx.EXP_REL_ERROR <= want < 0.003


def test_exp2_neg_whole_input_range():
    xs = list(range(0, 4096 + 600)) + [2**20, 2**39]
    got = nx.exp2_neg(np.array(xs)).tolist()
    assert got == [py_exp2_neg(x) for x in xs]
    # against the exact 2^-x: table rounding plus at most one LSB from the floor of the shift
    for x, e in zip(xs, got):
        exact = 2**15 * math.exp2(-x / 256)
        assert exact * (1 - 0.5 / 2**14) - 1 < e <= exact * (1 + 0.5 / 2**14), x
    assert got[0] == 2**15 and got[4095] == 0 and got[15 * 256] == 1 and got[15 * 256 + 1] == 0


def test_exp2_neg_scalar_and_shape():
    assert int(nx.exp2_neg(256)) == 2**14
    assert nx.exp2_neg(np.zeros((3, 4), dtype=np.int64)).shape == (3, 4)


# --- x = round(t * mant / 2^shift) --------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 2**23 - 1), st.integers(0, 2**16 - 1), st.integers(0, 63))
def test_scale_diff_half_up(t, mant, shift):
    want = math.floor(Fraction(t * mant, 2**shift) + Fraction(1, 2))
    assert int(nx.scale_diff(np.array([t]), mant, shift)[0]) == want


def test_scale_diff_ties_round_up():
    # t * mant / 2^shift = k + 1/2 exactly -> k + 1
    assert nx.scale_diff(np.array([1, 3, 5, 2]), 1, 1).tolist() == [1, 2, 3, 1]
    assert nx.scale_diff(np.array([1, 3]), 3, 3).tolist() == [0, 1]   # 3/8 -> 0, 9/8 -> 1
    assert nx.scale_diff(np.array([0]), 65535, 63).tolist() == [0]    # the row maximum: x = 0
    assert nx.scale_diff(np.array([2**23 - 1]), 65535, 0).tolist() == [(2**23 - 1) * 65535]


# --- row sum, reciprocal, output ----------------------------------------------------------------

def test_reciprocal_every_normalised_sum():
    sn = np.arange(2**15, 2**16)
    r = nx.reciprocal(sn)
    assert r.tolist() == [2**32 // int(s) for s in sn]
    assert r.max() == 2**17 and r.min() == 2**32 // (2**16 - 1) > 2**16
    assert int(r.max()).bit_length() == nx.RECIP_WIDTH


@SETTINGS
@given(st.lists(st.integers(2**15, 131071 * 2**15), min_size=1, max_size=20))
def test_normalise_sum(sums):
    p, sn = nx.normalise_sum(np.array(sums))
    for s, pp, ss in zip(sums, p.tolist(), sn.tolist()):
        want_p = max(s.bit_length() - 16, 0)
        assert (pp, ss) == (want_p, s >> want_p)
        assert 2**15 <= ss < 2**16


def test_normalise_sum_edges():
    s = np.array([2**15, 2**16 - 1, 2**16, 2**17 + 1, 131071 * 2**15])
    p, sn = nx.normalise_sum(s)
    assert p.tolist() == [0, 0, 1, 2, 16]
    assert sn.tolist() == [2**15, 2**16 - 1, 2**15, 2**15, 131071 * 2**15 >> 16]


def py_output(a: int, p: int, r: int, out_shift: int) -> int:
    """sat8(round_half_up((a >> p) * r / 2^(32 - out_shift))), from Fractions."""
    o = math.floor(Fraction((a >> p) * r, 2 ** (32 - out_shift)) + Fraction(1, 2))
    return min(max(o, -128), 127)


@SETTINGS
@given(st.lists(st.integers(-(2**39), 2**39 - 1), min_size=1, max_size=8),
       st.integers(0, 17), st.integers(2**16 + 1, 2**17), st.integers(0, 7))
def test_normalise_output_random(a, p, r, out_shift):
    got = nx.normalise_output(np.array([a]), np.array([p]), np.array([r]), out_shift)
    assert got.dtype == np.int8
    assert got[0].tolist() == [py_output(x, p, r, out_shift) for x in a]


def test_normalise_output_rounding_and_saturation_edges():
    r, p = np.array([2**17]), np.array([0])          # R = 2^17: o = round(A / 2^15)
    a = np.array([[2**14, -(2**14), 3 * 2**14, -3 * 2**14, 2**14 - 1, -(2**14) - 1,
                   127 * 2**15, 127 * 2**15 + 2**14, 128 * 2**15, -128 * 2**15,
                   -128 * 2**15 - 2**14, -129 * 2**15]])
    want = [1, 0, 2, -1, 0, -1, 127, 127, 127, -128, -128, -128]
    assert nx.normalise_output(a, p, r, 0)[0].tolist() == want
    # out_shift 7: output = 128 * A / S, so 1.0 already saturates, -1.0 does not
    a7 = np.array([[2**15, -(2**15), 2**8, -(2**8), 2**7, -(2**7)]])
    assert nx.normalise_output(a7, p, r, 7)[0].tolist() == [127, -128, 1, -1, 1, 0]
    # A >> p floors toward minus infinity before the multiply
    assert nx.normalise_output(np.array([[-1]]), np.array([1]), r, 7)[0].tolist() == [0]
    assert nx.saturate8(np.array([-1000, -129, -128, 127, 128, 1000])).tolist() == \
        [-128, -128, -128, 127, 127, 127]


# --- quantiser ---------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1,
                max_size=64))
def test_quantise_round_trip(xs):
    x = np.array(xs)
    q, scale = nx.quantise(x)
    assert q.dtype == np.int8
    if np.max(np.abs(x)) == 0:
        assert scale == 1.0 and not q.any()
        return
    assert scale == pytest.approx(np.max(np.abs(x)) / 127, rel=1e-12)
    assert np.all(np.abs(q * scale - x) <= scale / 2 * (1 + 1e-9))


def test_quantise_given_scale_saturates_and_checks():
    q, s = nx.quantise(np.array([-1000.0, -0.26, 0.25, 0.75, 1000.0]), scale=0.5)
    assert s == 0.5 and q.tolist() == [-128, -1, 0, 2, 127]   # round half to even: 0.5 -> 0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            nx.quantise(np.ones(3), scale=bad)


# --- SoftmaxConfig ------------------------------------------------------------------------------

def effective_log2_multiplier(cfg) -> float:
    """What scale_diff applies: x = t * mant / 2^shift in units of 2^-8, i.e. mant/2^(shift+8)."""
    return cfg.mult_mant / 2.0 ** (cfg.mult_shift + 8)


@SETTINGS
@given(st.floats(1e-4, 2.0), st.floats(1e-4, 2.0), st.sampled_from([32, 64, 128]),
       st.integers(0, 7))
def test_from_scales_multiplier_relative_error(sq, sk, d, out_shift):
    ideal = sq * sk * math.log2(math.e) / math.sqrt(d)
    cfg = nx.SoftmaxConfig.from_scales(sq, sk, d, out_shift)
    assert cfg.out_shift == out_shift
    assert 2**15 <= cfg.mult_mant < 2**16               # 16 significant bits
    assert abs(effective_log2_multiplier(cfg) / ideal - 1) < 2**-15
    assert cfg.multiplier == pytest.approx(effective_log2_multiplier(cfg), rel=1e-12)


@pytest.mark.parametrize("m", [2.0**-10 * (1 - 2**-30), 2.0**-3 * (1 - 2**-20), 2.0**-12])
def test_from_scales_just_below_a_power_of_two(m):
    # the mantissa rounds up to 2^16 here; the multiplier is still well inside the range
    cfg = nx.SoftmaxConfig.from_scales(m * math.sqrt(64) / math.log2(math.e), 1.0, 64)
    assert abs(effective_log2_multiplier(cfg) / m - 1) < 2**-15


@pytest.mark.parametrize("kwargs, msg", [
    (dict(mult_mant=-1, mult_shift=0), "mult_mant = -1 is out of range: allowed 0..65535"),
    (dict(mult_mant=65536, mult_shift=0), "mult_mant = 65536 is out of range: allowed 0..65535"),
    (dict(mult_mant=1, mult_shift=64), "mult_shift = 64 is out of range: allowed 0..63"),
    (dict(mult_mant=1, mult_shift=-1), "mult_shift = -1 is out of range: allowed 0..63"),
    (dict(mult_mant=1, mult_shift=0, out_shift=8), "out_shift = 8 is out of range: allowed 0..7"),
    (dict(mult_mant=1.5, mult_shift=0), "mult_mant = 1.5 is out of range"),
    (dict(mult_mant=True, mult_shift=0), "mult_mant = True is out of range"),
])
def test_softmax_config_range_errors(kwargs, msg):
    with pytest.raises(ValueError) as info:
        nx.SoftmaxConfig(**kwargs)
    assert msg in str(info.value)


def test_softmax_config_limits_accepted():
    cfg = nx.SoftmaxConfig(65535, 63, 7)
    assert (cfg.mult_mant, cfg.mult_shift, cfg.out_shift) == (65535, 63, 7)


@pytest.mark.parametrize("sq, sk", [(0.0, 1.0), (-0.1, 0.1), (float("nan"), 1.0),
                                    (float("inf"), 1.0)])
def test_from_scales_bad_scales(sq, sk):
    with pytest.raises(ValueError, match="multiplier"):
        nx.SoftmaxConfig.from_scales(sq, sk, 64)


def test_from_scales_too_large():
    # largest representable: 65535 * 2^-8 log2 units per score unit (shift 0)
    with pytest.raises(ValueError, match="too large"):
        nx.SoftmaxConfig.from_scales(1e4, 1e4, 64)
    s = math.sqrt(200 * 8 / math.log2(math.e))          # m = 200: inside the range
    cfg = nx.SoftmaxConfig.from_scales(s, s, 64)
    assert abs(effective_log2_multiplier(cfg) / 200 - 1) < 2**-15
