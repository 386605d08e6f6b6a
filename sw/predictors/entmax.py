"""Exact sort-based entmax-1.5 and sparsemax in NumPy, along the last axis.

Sparsefinder (arXiv 2109.12188) predicts the support of alpha = 1.5 entmax attention (Peters
et al. 2019, "Sparse Sequence-to-Sequence Models", which gives the exact sort-based algorithm for
1.5-entmax); sparsemax is alpha = 2 (Martins & Astudillo 2016). Both thresholds are found exactly
from the sorted scores, so the supports are exact up to float rounding; checked against the
``entmax`` package in ``tests/test_entmax.py``.

-inf entries (masked keys) get probability 0; every row needs at least one finite entry.
"""

from __future__ import annotations

import numpy as np


def _prepare(z):
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError("entmax needs at least one entry along the last axis")
    return z


def entmax15_threshold(z: np.ndarray) -> np.ndarray:
    """tau of alpha = 1.5 entmax for z already shifted by the row max and halved; shape (..., 1)."""
    s = -np.sort(-z, axis=-1)  # descending; -inf sorts last
    k = np.arange(1, z.shape[-1] + 1, dtype=np.float64)
    finite = np.isfinite(s)
    sf = np.where(finite, s, 0.0)
    mean = np.cumsum(sf, axis=-1) / k
    msq = np.cumsum(sf * sf, axis=-1) / k
    ss = k * (msq - mean * mean)
    delta = np.maximum((1.0 - ss) / k, 0.0)
    tau = mean - np.sqrt(delta)
    # support size: the largest k whose tau_k <= s_k (a prefix of the sorted row)
    support = np.sum((tau <= s) & finite, axis=-1, keepdims=True)
    return np.take_along_axis(tau, support - 1, axis=-1)


def entmax15(z: np.ndarray) -> np.ndarray:
    """alpha = 1.5 entmax along the last axis: p = max((z - max z)/2 - tau, 0)^2, sums to 1."""
    z = _prepare(z)
    z = (z - z.max(axis=-1, keepdims=True)) / 2.0
    tau = entmax15_threshold(z)
    p = np.maximum(z - tau, 0.0) ** 2
    return np.where(np.isfinite(z), p, 0.0)


def sparsemax(z: np.ndarray) -> np.ndarray:
    """Sparsemax along the last axis: the Euclidean projection of z onto the simplex."""
    z = _prepare(z)
    z = z - z.max(axis=-1, keepdims=True)
    s = -np.sort(-z, axis=-1)
    finite = np.isfinite(s)
    sf = np.where(finite, s, 0.0)
    k = np.arange(1, z.shape[-1] + 1, dtype=np.float64)
    c = np.cumsum(sf, axis=-1) - 1.0
    support = np.sum((k * sf > c) & finite, axis=-1, keepdims=True)
    tau = np.take_along_axis(c, support - 1, axis=-1) / support
    return np.where(np.isfinite(z), np.maximum(z - tau, 0.0), 0.0)


def entmax15_support(scores: np.ndarray) -> np.ndarray:
    """The entmax-1.5 graph: which entries get nonzero probability (bool, same shape)."""
    return entmax15(scores) > 0
