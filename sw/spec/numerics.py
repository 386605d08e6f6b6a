"""The integer numerics of swattn, defined once.

The golden model (:mod:`swattn.sw.golden`), the RTL generator (:mod:`swattn.hw`) and the tests all
import their widths, tables and rounding rules from here. ``docs/numerics.md`` explains every
choice; the short version, for one query row with key set ``K``::

    s_k  = sum_j q_j * k_kj                       exact, SCORE_WIDTH-bit signed
    m    = max_k s_k                              exact row maximum
    t_k  = m - s_k                                DIFF_WIDTH-bit unsigned
    x_k  = (t_k * mult_mant + 2^(mult_shift-1)) >> mult_shift     log2 units, EXP_FRAC_BITS fraction
    e_k  = EXP_TABLE[x_k mod 2^F] >> (x_k >> F)   if x_k < EXP_CUTOFF else 0   (2^-x, EXP_OUT_FRAC bits)
    S    = sum_k e_k                              exact
    A_j  = sum_k e_k * v_kj                       exact
    p    = bitlen(S) - 16, Sn = S >> p            Sn in [2^15, 2^16)
    R    = floor(2^32 / Sn)                       one reciprocal per row, RECIP_WIDTH bits
    o_j  = sat8(((A_j >> p) * R + 2^(31-out_shift)) >> (32-out_shift))

All sums are exact integers, so the result does not depend on the order in which keys are visited:
any dataflow that computes these formulas is bit-exact with the golden model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# --- Inputs -------------------------------------------------------------------------------------
DATA_WIDTH = 8  #: Q, K, V and output elements are signed 8-bit integers
DATA_MIN = -(1 << (DATA_WIDTH - 1))  #: -128
DATA_MAX = (1 << (DATA_WIDTH - 1)) - 1  #: 127
HEAD_DIMS = (32, 64, 128)  #: head dimensions the engine can be generated for
HEAD_DIM_MAX = max(HEAD_DIMS)

# --- Scores -------------------------------------------------------------------------------------
#: |q_j * k_j| <= 128 * 128 = 2^14 and d <= 128 = 2^7, so |s| <= 2^21, which needs 23 signed bits
#: (+2^21 itself occurs only for all -128 * -128).
PRODUCT_WIDTH = 2 * DATA_WIDTH  #: one int8 x int8 product, signed
SCORE_WIDTH = PRODUCT_WIDTH + math.ceil(math.log2(HEAD_DIM_MAX))  #: 23
#: t = m - s lies in [0, 2^21 + 127*128*128] < 2^23: unsigned
DIFF_WIDTH = SCORE_WIDTH

# --- Softmax multiplier: folds 1/sqrt(d) * log2(e) * scale_q * scale_k ---------------------------
MULT_MANT_WIDTH = 16  #: unsigned mantissa of the multiplier
MULT_SHIFT_WIDTH = 6  #: right shift applied after the product, 0..63
EXP_FRAC_BITS = 8  #: x carries 8 fraction bits (units of 1/256 of a power of two)
EXP_INT_BITS = 4  #: integer part of x used by the shifter: e = 0 once x >= 16
EXP_CUTOFF = 1 << (EXP_FRAC_BITS + EXP_INT_BITS)  #: 4096: x at or above this gives e = 0
EXP_IN_WIDTH = EXP_FRAC_BITS + EXP_INT_BITS + 1  #: clamped x, 0..EXP_CUTOFF inclusive
EXP_OUT_FRAC = 15  #: e = 2^-x with 15 fraction bits: e in [0, 2^15]
EXP_WIDTH = EXP_OUT_FRAC + 1  #: 16 bits unsigned (2^15 itself for the row maximum)
#: product t * mult_mant before the shift
XPROD_WIDTH = DIFF_WIDTH + MULT_MANT_WIDTH

# --- Row sums and the output --------------------------------------------------------------------
SUM_NORM_BITS = 16  #: S is normalised to Sn in [2^15, 2^16) before the reciprocal
RECIP_NUM_SHIFT = 32  #: R = floor(2^32 / Sn)
RECIP_WIDTH = RECIP_NUM_SHIFT - (SUM_NORM_BITS - 1) + 1  #: R in (2^16, 2^17]: 18 bits unsigned
OUT_SHIFT_WIDTH = 3  #: output scale = scale_v * 2^-out_shift, out_shift in 0..7
NORM_ACC_WIDTH = DATA_WIDTH + SUM_NORM_BITS + 1  #: A >> p: |A >> p| <= 128 * 2^16: 25 bits signed


def exp_table() -> np.ndarray:
    """2^-f for f = i / 2^EXP_FRAC_BITS, i in 0..255, rounded to EXP_OUT_FRAC fraction bits.

    Entry 0 is exactly 2^15; every entry is in (2^14, 2^15]. The table's own worst relative error
    (rounding only, against the exact 2^-f at each of its inputs) is below 0.5 / 2^14 = 0.0031%.
    """
    f = np.arange(1 << EXP_FRAC_BITS, dtype=np.float64) / (1 << EXP_FRAC_BITS)
    return np.round(np.exp2(EXP_OUT_FRAC - f)).astype(np.int64)


EXP_TABLE = exp_table()
EXP_TABLE.setflags(write=False)
#: worst relative error of the table entries against 2^-f at their exact inputs
EXP_TABLE_REL_ERROR = float(
    np.max(np.abs(EXP_TABLE / np.exp2(EXP_OUT_FRAC - np.arange(256) / 256.0) - 1.0))
)
#: worst relative error of e against 2^-x for the real x that t * M represents: x is rounded to the
#: nearest 1/256, so 2^(1/512) - 1 = 0.135%, plus the table's rounding. Below the 0.3% budget.
EXP_REL_ERROR = float(2.0 ** (1.0 / (2 << EXP_FRAC_BITS)) * (1 + EXP_TABLE_REL_ERROR) - 1.0)


def sum_width(n_max: int) -> int:
    """Bits of the unsigned row sum S for rows of up to ``n_max`` keys (each e <= 2^15)."""
    return (n_max << EXP_OUT_FRAC).bit_length()


def acc_width(n_max: int) -> int:
    """Bits of the signed accumulator A_j = sum e_k v_kj for rows of up to ``n_max`` keys."""
    return (n_max << (EXP_OUT_FRAC + DATA_WIDTH - 1)).bit_length() + 1


def score_width(head_dim: int) -> int:
    """Bits of an exact signed dot product of two int8 vectors of length ``head_dim``."""
    return (head_dim << (PRODUCT_WIDTH - 2)).bit_length() + 1


# --- Elementwise operations, shared by the golden model and the RTL unit tests -------------------

def exp2_neg(x: np.ndarray) -> np.ndarray:
    """e = 2^-x in EXP_OUT_FRAC fixed point for integer x >= 0 in units of 2^-EXP_FRAC_BITS."""
    x = np.asarray(x, dtype=np.int64)
    xc = np.minimum(x, EXP_CUTOFF - 1)
    e = EXP_TABLE[xc & ((1 << EXP_FRAC_BITS) - 1)] >> (xc >> EXP_FRAC_BITS)
    return np.where(x >= EXP_CUTOFF, 0, e)


def scale_diff(t: np.ndarray, mult_mant: int, mult_shift: int) -> np.ndarray:
    """x = round(t * mult_mant / 2^mult_shift), half up; t >= 0."""
    t = np.asarray(t, dtype=np.int64)
    rnd = (1 << mult_shift) >> 1
    # t < 2^23 and mant < 2^16: the product fits int64 with room to spare.
    return (t * mult_mant + rnd) >> mult_shift


def normalise_sum(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (p, Sn) with Sn = S >> p in [2^15, 2^16); S >= 2^15 always holds for a row."""
    s = np.asarray(s, dtype=np.int64)
    bl = np.zeros_like(s)
    v = s.copy()
    # bit length without a Python loop per element: at most 48 halvings of the whole array
    for _ in range(48):
        nz = v > 0
        if not nz.any():
            break
        bl += nz
        v >>= 1
    p = np.maximum(bl - SUM_NORM_BITS, 0)
    return p, s >> p


def reciprocal(sn: np.ndarray) -> np.ndarray:
    """R = floor(2^32 / Sn) for Sn in [2^15, 2^16): the engine computes it by restoring division."""
    return (np.int64(1) << RECIP_NUM_SHIFT) // np.asarray(sn, dtype=np.int64)


def saturate8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, DATA_MIN, DATA_MAX)


def normalise_output(a: np.ndarray, p: np.ndarray, r: np.ndarray, out_shift: int) -> np.ndarray:
    """o = sat8(((A >> p) * R + 2^(31 - out_shift)) >> (32 - out_shift)), A of shape (..., d)."""
    a = np.asarray(a, dtype=np.int64) >> np.asarray(p, dtype=np.int64)[..., None]
    sh = RECIP_NUM_SHIFT - out_shift
    o = (a * np.asarray(r, dtype=np.int64)[..., None] + (1 << (sh - 1))) >> sh
    return saturate8(o).astype(np.int8)


# --- Quantisation and the softmax multiplier ----------------------------------------------------

def quantise(x: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8 quantisation: q = clip(round(x / scale), -128, 127).

    With ``scale`` None it is max|x| / 127 (1.0 for an all-zero tensor). Returns (q, scale).
    """
    x = np.asarray(x, dtype=np.float64)
    if scale is None:
        amax = float(np.max(np.abs(x))) if x.size else 0.0
        scale = amax / DATA_MAX if amax > 0 else 1.0
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"quantise: scale must be a positive finite number, got {scale!r}")
    return saturate8(np.round(x / scale)).astype(np.int8), float(scale)


@dataclass(frozen=True)
class SoftmaxConfig:
    """The run-time numeric configuration of one head.

    ``mult_mant`` (0..65535) and ``mult_shift`` (0..63) encode the multiplier M that turns a score
    difference into a base-2 exponent: x = t * mult_mant / 2^mult_shift in units of 2^-8, so
    M = mult_mant * 2^-(mult_shift + 8) per score unit. ``out_shift`` (0..7) sets the output scale:
    o = round(attention_output / scale_v * 2^out_shift).
    """

    mult_mant: int
    mult_shift: int
    out_shift: int = 0

    def __post_init__(self):
        _check_range("mult_mant", self.mult_mant, 0, (1 << MULT_MANT_WIDTH) - 1)
        _check_range("mult_shift", self.mult_shift, 0, (1 << MULT_SHIFT_WIDTH) - 1)
        _check_range("out_shift", self.out_shift, 0, (1 << OUT_SHIFT_WIDTH) - 1)

    @property
    def multiplier(self) -> float:
        """M in log2 units per unit of integer score."""
        return self.mult_mant * 2.0 ** -(self.mult_shift + EXP_FRAC_BITS)

    @classmethod
    def from_scales(cls, scale_q: float, scale_k: float, head_dim: int, out_shift: int = 0,
                    ) -> "SoftmaxConfig":
        """Fold 1/sqrt(d) * log2(e) * scale_q * scale_k into (mult_mant, mult_shift).

        The mantissa is normalised to [2^15, 2^16) where the shift range allows, so M carries
        16 significant bits (relative error below 2^-16).
        """
        m = scale_q * scale_k * math.log2(math.e) / math.sqrt(head_dim)
        return cls.from_multiplier(m, out_shift)

    @classmethod
    def from_multiplier(cls, m: float, out_shift: int = 0) -> "SoftmaxConfig":
        """Encode M (log2 units per integer score unit) as (mult_mant, mult_shift)."""
        if not (m > 0 and math.isfinite(m)):
            raise ValueError(f"softmax multiplier must be positive and finite, got {m!r}")
        top = (1 << MULT_SHIFT_WIDTH) - 1
        # mant * 2^-(shift + 8) = m with mant in [2^15, 2^16)
        shift = (MULT_MANT_WIDTH - 1) - EXP_FRAC_BITS - math.floor(math.log2(m))
        shift = min(max(shift, 0), top)
        mant = round(m * 2.0 ** (shift + EXP_FRAC_BITS))
        if mant >= 1 << MULT_MANT_WIDTH and shift > 0:  # rounded up to 2^16: renormalise
            mant, shift = round(m * 2.0 ** (shift - 1 + EXP_FRAC_BITS)), shift - 1
        if mant >= 1 << MULT_MANT_WIDTH:
            raise ValueError(
                f"softmax multiplier {m:.4g} is too large for the engine "
                f"(at most {((1 << MULT_MANT_WIDTH) - 1) * 2.0 ** -EXP_FRAC_BITS:.4g})")
        if mant == 0:
            raise ValueError(f"softmax multiplier {m:.4g} is too small for the engine "
                             f"(at least {2.0 ** -(top + EXP_FRAC_BITS):.3g})")
        return cls(mant, shift, out_shift)


def _check_range(name: str, value, lo: int, hi: int):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} = {value!r} is out of range: allowed {lo}..{hi}")
