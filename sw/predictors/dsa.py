"""DSA: dynamic sparse attention from low-dimensional, low-precision approximate scores.

Liu et al., "Transformer Acceleration with Dynamic Sparse Attention" (arXiv 2110.11299; in IEEE
TC 2022 as "Dynamic Sparse Attention for Scalable Transformer Acceleration"), §3: a prediction
path beside each attention layer first approximates the scores at low cost, from low-dimensional
projections of Q and K in low precision, and attention is then computed only where the
approximation is large. Per head the predictor computes approximate scores
S~ = (Q P_q)(K P_k)^T with projections to ``rank`` dimensions, quantises the projected values to
``bits`` bits, and keeps, per query, the top-``budget`` entries (``select="topk"``, default) or,
with ``select="threshold"``, the entries above one threshold per head chosen to give ``budget``
keys per query on average (the selection rules as PAPERS.md summarises them; unconfirmed).

Where this NumPy version differs from the paper (whose code is not public; see PAPERS.md):
  * ``rank`` = d/4 = 8 and ``bits`` = 4 are our choices: the paper's exact values could not be
    confirmed. Both are parameters.
  * ``projection="fitted"`` (default) fits P_q, P_k on calibration data instead of training them
    with the model: the rank-``rank`` factorisation that minimises the squared error of the scores
    over the calibration queries and keys (closed form: SVD of Cq^(1/2) Ck^(1/2) with the
    second-moment matrices Cq, Ck). ``projection="random"`` is the untrained Gaussian projection
    (P_q = P_k, scaled by 1/sqrt(rank)).
  * Quantisation is symmetric per tensor with a scale taken from the current input (dynamic), not
    a calibrated fixed-point format.
  * MiniLM is not fine-tuned with the sparse attention (the paper fine-tunes).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import LayerInput, Predictor, global_topk_mask, topk_mask

DEFAULT_RANK = 8  #: our choice: d/4 for d = 32 (§3's value unconfirmed)
DEFAULT_BITS = 4  #: low precision, about 4 bits (§3 as summarised in PAPERS.md; unconfirmed)


def quantise_symmetric(x: np.ndarray, bits: int | None, axis=None) -> np.ndarray:
    """Round ``x`` to ``bits``-bit signed integers (symmetric, per tensor or along ``axis``),
    returned as integers-valued floats (the scale does not change a top-k)."""
    if bits is None:
        return x
    top = 2 ** (bits - 1) - 1
    amax = np.max(np.abs(x), axis=axis, keepdims=axis is not None)
    scale = np.where(amax > 0, amax / top, 1.0)
    return np.clip(np.round(x / scale), -top - 1, top)


def fit_low_rank(qs: np.ndarray, ks: np.ndarray, rank: int, ridge: float = 1e-6):
    """Projections A, B (d x rank) minimising sum ||Q A B^T K^T - Q K^T||^2 for the stacked
    calibration rows ``qs`` and ``ks`` (N x d) of one head."""
    d = qs.shape[1]
    cq = qs.T @ qs / len(qs)
    ck = ks.T @ ks / len(ks)

    def sqrt_psd(c):
        w, u = np.linalg.eigh(c + ridge * np.trace(c) / d * np.eye(d))
        w = np.maximum(w, 0.0)
        return (u * np.sqrt(w)) @ u.T, (u / np.sqrt(w)) @ u.T

    lq, lq_inv = sqrt_psd(cq)
    lk, lk_inv = sqrt_psd(ck)
    # minimise ||Lq (I - A B^T) Lk||_F: truncated SVD of Lq Lk
    u, s, vt = np.linalg.svd(lq @ lk)
    r = min(rank, d)
    a = lq_inv @ (u[:, :r] * np.sqrt(s[:r]))
    b = lk_inv @ (vt[:r].T * np.sqrt(s[:r]))
    return a, b


class DSA(Predictor):
    """Approximate-score predictor. ``rank``: projected dimension (1..d); ``bits``: bit width of
    the projected values (2..16, None for float); ``projection``: "fitted" or "random";
    ``select``: "topk" (per row) or "threshold" (per head)."""

    name = "dsa"
    paper = "DSA arXiv 2110.11299"

    def __init__(self, seed: int = 0, rank: int = DEFAULT_RANK, bits: int | None = DEFAULT_BITS,
                 projection: str = "fitted", select: str = "topk"):
        super().__init__(seed)
        if projection not in ("fitted", "random"):
            raise ValueError(f"projection = {projection!r}: allowed 'fitted', 'random'")
        if select not in ("topk", "threshold"):
            raise ValueError(f"select = {select!r}: allowed 'topk', 'threshold'")
        if bits is not None and not 2 <= bits <= 16:
            raise ValueError(f"bits = {bits} is out of range: allowed 2..16 or None")
        if rank < 1:
            raise ValueError(f"rank = {rank} is out of range: allowed 1..head dim")
        self.rank, self.bits, self.projection, self.select = rank, bits, projection, select
        self.proj: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # layer -> (A, B), (h, d, r)

    def fit(self, calibration: Sequence) -> "DSA":
        if self.projection == "fitted":
            layers = len(calibration[0].layers)
            for li in range(layers):
                qs = np.concatenate([t.layers[li].q for t in calibration], axis=1)
                ks = np.concatenate([t.layers[li].k for t in calibration], axis=1)
                ab = [fit_low_rank(qs[h].astype(np.float64), ks[h].astype(np.float64),
                                   self.rank) for h in range(qs.shape[0])]
                self.proj[li] = (np.stack([a for a, _ in ab]), np.stack([b for _, b in ab]))
        self.fitted = True
        return self

    def projections(self, x: LayerInput):
        if self.projection == "fitted":
            if x.layer not in self.proj:
                raise RuntimeError("DSA(projection='fitted') must be fitted first")
            return self.proj[x.layer]
        d = x.q.shape[-1]
        p = self.rng(x.layer).normal(size=(x.heads, d, min(self.rank, d))) / np.sqrt(self.rank)
        return p, p

    def approximate_scores(self, x: LayerInput) -> np.ndarray:
        a, b = self.projections(x)
        ql = quantise_symmetric(x.q.astype(np.float64) @ a, self.bits)
        kl = quantise_symmetric(x.k.astype(np.float64) @ b, self.bits)
        return ql @ np.swapaxes(kl, 1, 2)

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        s = self.approximate_scores(x)
        if self.select == "threshold":
            return global_topk_mask(s, budget)
        if self.bits is not None:
            # quantised scores are integers and tie often: break ties towards the diagonal
            # (the offset stays below 1/4, so it never reorders distinct integer scores)
            n = x.n
            s = s - np.abs(np.arange(n)[None, :] - np.arange(n)[:, None]) / (4.0 * n)
        return topk_mask(s, int(round(budget)))
