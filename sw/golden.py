"""Bit-exact NumPy golden model of the swattn engine, and float references.

``attention`` computes, for int8 Q, K, V and a :class:`HybridPattern`, the int8 output that the
engine produces (formulas in :mod:`swattn.sw.spec.numerics`). It is vectorised over blocks of rows:
memory and time grow with the pattern's work (n x window), never with n^2, so n = 16384 runs.

Exactness of the fast paths: scores are computed with float32 matrix products. Every partial sum
of int8 x int8 products over d <= 128 is an integer of magnitude <= 2^21 < 2^24, so float32
represents each exactly and the product is exact in any summation order. The weighted sums of V use
float64: |e * v| <= 2^22 per key and at most 2^31 keys gives < 2^53.
"""

from __future__ import annotations

import numpy as np

from .spec import numerics as nx
from .spec.pattern import HybridPattern

#: rows per block of the vectorised model; bounds the working set at about BLOCK x (BLOCK + window)
BLOCK = 256


class ShapeError(ValueError):
    """Q, K, V arrays do not match each other or the pattern."""


def check_inputs(q, k, v, pattern: HybridPattern, dtype=np.int8) -> int:
    """Validate Q, K, V against the pattern; return the head dim."""
    for name, a in (("q", q), ("k", k), ("v", v)):
        if not isinstance(a, np.ndarray):
            raise ShapeError(f"{name} must be a numpy array, got {type(a).__name__}")
        if dtype is not None and a.dtype != dtype:
            raise ShapeError(f"{name} has dtype {a.dtype}: the golden model takes {np.dtype(dtype)}")
        if a.ndim != 2:
            raise ShapeError(f"{name} has shape {a.shape}: expected (n, d), 2 dimensions")
    if not q.shape == k.shape == v.shape:
        raise ShapeError(f"q, k, v shapes differ: {q.shape}, {k.shape}, {v.shape}")
    n, d = q.shape
    if n != pattern.n:
        raise ShapeError(f"arrays have n = {n} rows but the pattern has n = {pattern.n}")
    if not 1 <= d <= nx.HEAD_DIM_MAX:
        raise ShapeError(f"head dim d = {d} is out of range: allowed 1..{nx.HEAD_DIM_MAX}")
    return d


def _softmax_rows(scores: np.ndarray, valid: np.ndarray, cfg: nx.SoftmaxConfig):
    """Integer exponentials e (0 where not valid) and row sums S for a block of score rows."""
    s = np.where(valid, scores, np.iinfo(np.int64).min)
    m = s.max(axis=1, keepdims=True)
    t = np.where(valid, m - scores, 0)
    e = np.where(valid, nx.exp2_neg(nx.scale_diff(t, cfg.mult_mant, cfg.mult_shift)), 0)
    return e, e.sum(axis=1)


def _finish(e: np.ndarray, ssum: np.ndarray, vals: np.ndarray, cfg: nx.SoftmaxConfig):
    a = np.rint(e.astype(np.float64) @ vals.astype(np.float64)).astype(np.int64)
    p, sn = nx.normalise_sum(ssum)
    return nx.normalise_output(a, p, nx.reciprocal(sn), cfg.out_shift)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, pattern: HybridPattern,
              cfg: nx.SoftmaxConfig, on_rows=None) -> np.ndarray:
    """Engine-exact int8 attention output, shape (n, d), for int8 inputs of shape (n, d).

    on_rows : optional, called with the number of rows done after each block of rows (a
    progress report; the global rows, which see every key, are computed again after the last)."""
    check_inputs(q, k, v, pattern)
    n, d = q.shape
    out = np.zeros((n, d), dtype=np.int8)
    dil, left, right = pattern.dilation, pattern.left, pattern.right
    g = pattern.global_array
    is_g = pattern.is_global()
    qf, kf = q.astype(np.float32), k.astype(np.float32)

    # Reorder tokens by residue class mod dilation: a dilated window becomes a plain band inside
    # each class's segment of the permuted order.
    idx = np.arange(n, dtype=np.int64)
    perm = np.lexsort((idx // dil, idx % dil))
    cls = perm % dil
    pos_in_cls = perm // dil

    for b0 in range(0, n, BLOCK):
        rows = perm[b0:b0 + BLOCK]
        c0, c1 = max(b0 - left, 0), min(b0 + len(rows) + right, n)
        cols = perm[c0:c1]
        # window keys: same class, class position within -left..right
        dpos = pos_in_cls[c0:c1][None, :] - pos_in_cls[b0:b0 + len(rows)][:, None]
        valid = ((cls[c0:c1][None, :] == cls[b0:b0 + len(rows)][:, None])
                 & (dpos >= -left) & (dpos <= right))
        if g.size:
            # global keys not already inside the row's window
            cols = np.concatenate([cols, g])
            valid = np.concatenate([valid, ~pattern.in_window(rows[:, None], g[None, :])], axis=1)
        scores = np.rint(qf[rows] @ kf[cols].T).astype(np.int64)
        e, ssum = _softmax_rows(scores, valid, cfg)
        out[rows] = _finish(e, ssum, v[cols], cfg)
        if on_rows is not None:
            on_rows(b0 + len(rows))

    if g.size:
        # global rows see every key
        scores = np.rint(qf[g] @ kf.T).astype(np.int64)
        e, ssum = _softmax_rows(scores, np.ones_like(scores, dtype=bool), cfg)
        out[g] = _finish(e, ssum, v, cfg)
    del is_g
    return out


def attention_engine(q: np.ndarray, k: np.ndarray, v: np.ndarray, pattern,
                     cfg: nx.SoftmaxConfig) -> np.ndarray:
    """The engine's rows for a pattern as the engines take it: :func:`attention` for a
    HybridPattern, :func:`attention_keys` of its key sets for an EngineForm (bands beside the
    window, key-only columns, the grid)."""
    if isinstance(pattern, HybridPattern):
        return attention(q, k, v, pattern, cfg)
    return attention_keys(q, k, v, pattern.keyset(), cfg)


def attention_keys(q: np.ndarray, k: np.ndarray, v: np.ndarray, pattern,
                   cfg: nx.SoftmaxConfig, on_rows=None) -> np.ndarray:
    """:func:`attention` for any pattern that says which keys each query attends to through
    ``allowed(rows, cols)`` (a :class:`~swattn.sw.spec.keyset.KeySetPattern`: bands, a 2D grid,
    key-only columns, globals): the same arithmetic per row over that row's set of keys. A
    block of rows at a time over the keys any of them attends to (memory: BLOCK x n booleans
    per block). A row with no key at all (every band clipped away, no column, no global)
    returns zeros. ``on_rows`` as for :func:`attention`."""
    check_inputs(q, k, v, pattern)
    n, d = q.shape
    out = np.zeros((n, d), dtype=np.int8)
    qf, kf = q.astype(np.float32), k.astype(np.float32)
    all_cols = np.arange(n, dtype=np.int64)
    for r0 in range(0, n, BLOCK):
        rows = np.arange(r0, min(r0 + BLOCK, n), dtype=np.int64)
        hit = pattern.allowed(rows[:, None], all_cols[None, :])
        live = hit.any(axis=1)
        rows, hit = rows[live], hit[live]
        if rows.size:
            cols = np.flatnonzero(hit.any(axis=0))
            scores = np.rint(qf[rows] @ kf[cols].T).astype(np.int64)
            e, ssum = _softmax_rows(scores, hit[:, cols], cfg)
            out[rows] = _finish(e, ssum, v[cols], cfg)
        if on_rows is not None:
            on_rows(min(r0 + BLOCK, n))
    return out


def attention_rowwise(q, k, v, pattern: HybridPattern, cfg: nx.SoftmaxConfig) -> np.ndarray:
    """The same computation, one row at a time in plain integer arithmetic (slow; a reference)."""
    check_inputs(q, k, v, pattern)
    n, d = q.shape
    out = np.zeros((n, d), dtype=np.int8)
    q64, k64, v64 = (a.astype(np.int64) for a in (q, k, v))
    for i in range(n):
        keys = pattern.row_keys(i)
        if not keys.size:  # (a key-set pattern's row with no key: zeros)
            continue
        s = k64[keys] @ q64[i]
        t = s.max() - s
        e = nx.exp2_neg(nx.scale_diff(t, cfg.mult_mant, cfg.mult_shift))
        a = e @ v64[keys]
        ssum = int(e.sum())
        p = max(ssum.bit_length() - nx.SUM_NORM_BITS, 0)
        r = (1 << nx.RECIP_NUM_SHIFT) // (ssum >> p)
        sh = nx.RECIP_NUM_SHIFT - cfg.out_shift
        o = ((a >> p) * r + (1 << (sh - 1))) >> sh
        out[i] = np.clip(o, nx.DATA_MIN, nx.DATA_MAX)
    return out


# --- float references ---------------------------------------------------------------------------

def reference_masked(q, k, v, pattern: HybridPattern, scale: float | None = None) -> np.ndarray:
    """Float64 softmax attention restricted to the pattern (dense mask: for small and medium n)."""
    check_inputs(q, k, v, pattern, dtype=None)
    return _softmax_attention(q, k, v, pattern.mask(), scale)


def reference_dense(q, k, v, scale: float | None = None) -> np.ndarray:
    """Float64 dense softmax attention."""
    n = np.asarray(q).shape[0]
    return _softmax_attention(q, k, v, np.ones((n, n), dtype=bool), scale)


def _softmax_attention(q, k, v, mask, scale):
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[1])
    z = np.where(mask, (q @ k.T) * scale, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p @ v


# --- a run on random data -----------------------------------------------------------------------

#: above this n the dense float reference (n^2 floats) is skipped
REFERENCE_MAX_N = 4096


def effective_log2_multiplier(cfg: nx.SoftmaxConfig) -> float:
    """log2 units per integer score unit that the engine applies: x/2^8 = t * mant / 2^(shift+8)."""
    return cfg.mult_mant / 2.0 ** (cfg.mult_shift + nx.EXP_FRAC_BITS)


def random_run(pattern, head_dim: int, seed: int = 0,
               multiplier: tuple[int, int] | None = None, out_shift: int = 0) -> dict:
    """Run :func:`attention` on random data and summarise it (JSON-ready; ``swattn golden``).
    ``pattern``: a HybridPattern, or an EngineForm or KeySetPattern (bands, columns, a grid),
    run through :func:`attention_keys`; the summary's ``pattern`` is its JSON form
    (:func:`swattn.sw.spec.keyset.pattern_to_json`).

    Q, K and V are standard-normal matrices quantised per tensor with :func:`numerics.quantise`,
    so their scales are the ones a real model would give; unless ``multiplier`` (mantissa,
    shift) is given, the softmax multiplier comes from those scales through
    :meth:`SoftmaxConfig.from_scales`. For n <= :data:`REFERENCE_MAX_N` the output is compared
    with the float64 masked reference (run with the multiplier the engine actually applies) and
    the largest difference is reported in output LSBs.
    """
    import math
    import time

    from .progress import Progress
    from .spec.keyset import EngineForm

    if isinstance(pattern, EngineForm):
        pattern = pattern.hybrid() if not (pattern.bands or pattern.columns) else \
            pattern.keyset()
    n, d = pattern.n, head_dim
    with Progress(f"golden model, n = {n:,}, d = {d}", total=n, unit="rows") as prog:
        prog.update(detail="random data")
        rng = np.random.default_rng(seed)
        (q, sq), (k, sk), (v, sv) = (nx.quantise(rng.standard_normal((n, d))) for _ in range(3))
        if multiplier is None:
            cfg = nx.SoftmaxConfig.from_scales(sq, sk, d, out_shift=out_shift)
            ideal = sq * sk * math.log2(math.e) / math.sqrt(d)
        else:
            cfg = nx.SoftmaxConfig(multiplier[0], multiplier[1], out_shift)
            ideal = None

        def rows_done(rows: int):
            # the global rows (every key) come after, in the hybrid model
            last = rows == n and pattern.globals_ and isinstance(pattern, HybridPattern)
            prog.update(rows, detail=f"the {len(pattern.globals_)} global rows" if last else "")

        t0 = time.perf_counter()
        run = attention if isinstance(pattern, HybridPattern) else attention_keys
        out = run(q, k, v, pattern, cfg, on_rows=rows_done)
        elapsed = time.perf_counter() - t0
        prog.update(detail="summary" + (" and float reference" if n <= REFERENCE_MAX_N else ""))
        return _summary(pattern, seed, cfg, ideal, (q, k, v), (sq, sk, sv), out, elapsed)


def _summary(pattern, seed: int, cfg: nx.SoftmaxConfig, ideal: float | None,
             qkv, scales, out: np.ndarray, elapsed: float) -> dict:
    """:func:`random_run`'s result from its inputs and the golden model's output."""
    import math

    from .spec.keyset import pattern_to_json

    (q, k, v), (sq, sk, sv) = qkv, scales
    n, d = q.shape
    c = effective_log2_multiplier(cfg)
    o = out.astype(np.int64)
    res = {
        "pattern": pattern_to_json(pattern),
        "head_dim": d,
        "seed": seed,
        "softmax": {"mult_mant": cfg.mult_mant, "mult_shift": cfg.mult_shift,
                    "out_shift": cfg.out_shift, "log2_multiplier": c,
                    "from_scales": ideal is not None,
                    "multiplier_rel_error": None if ideal is None else abs(c / ideal - 1.0)},
        "scales": {"q": sq, "k": sk, "v": sv, "out": sv * 2.0 ** -cfg.out_shift},
        "pairs": pattern.pairs(),
        "sparsity": pattern.sparsity(),
        "time_s": elapsed,
        "output": {"min": int(o.min()), "max": int(o.max()), "mean": float(o.mean()),
                   "std": float(o.std()),
                   "saturated_fraction": float(np.mean((o == nx.DATA_MIN) | (o == nx.DATA_MAX)))},
        "max_abs_error_lsb": None,
        "mean_abs_error_lsb": None,
    }
    if n <= REFERENCE_MAX_N:
        # same multiplier as the engine, so the difference is the engine's arithmetic alone
        ref = reference_masked(q, k, v, pattern, scale=c * math.log(2.0))
        ref = np.clip(ref * 2.0 ** cfg.out_shift, nx.DATA_MIN, nx.DATA_MAX)
        err = np.abs(o - ref)
        res["max_abs_error_lsb"] = float(err.max())
        res["mean_abs_error_lsb"] = float(err.mean())
    return res
