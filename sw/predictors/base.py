"""The interface every sparsity predictor follows, shared helpers, and the registry.

A predictor is fitted once on calibration data (dense forward passes of MiniLM over calibration
texts, :class:`~swattn.sw.minilm.Trace`), then predicts, for one layer of a new text, a boolean
mask per head: ``mask[h, i, j]`` is True when query ``i`` of head ``h`` should attend to key ``j``.

The ``budget`` of :meth:`Predictor.predict` is the mean number of keys per query the prediction
aims at (1..n). Each predictor turns it into its own knob (window radius, top-k, threshold
quantile, bucket count, cluster count, samples per query); the measured sparsity is what the
evaluation reports, so a predictor that overshoots or undershoots its budget is still compared
fairly on the sparsity-recall plane.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class LayerInput:
    """What a predictor may look at for one layer of one text.

    ``q, k``: per-head projections (heads, n, head_dim) before the 1/sqrt(d) scaling;
    ``hidden``: the layer's input (n, hidden); ``layer``: 0-based layer index.
    """

    layer: int
    q: np.ndarray
    k: np.ndarray
    hidden: np.ndarray

    @property
    def heads(self) -> int:
        return self.q.shape[0]

    @property
    def n(self) -> int:
        return self.q.shape[1]

    @classmethod
    def from_trace(cls, trace, layer: int) -> "LayerInput":
        lt = trace.layers[layer]
        return cls(layer, lt.q, lt.k, lt.hidden)


class Predictor:
    """Base class. Subclasses set ``name`` and ``paper`` and implement :meth:`predict_layer`;
    those that learn something override :meth:`fit`."""

    name = "predictor"
    paper = ""
    #: True when the prediction does not depend on the input text (static and layer-wise masks)
    static = False

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.fitted = False

    def fit(self, calibration: Sequence) -> "Predictor":
        """Fit on calibration traces (dense runs with recorded layers). Returns self."""
        self.fitted = True
        return self

    def predict(self, x: LayerInput, budget: float) -> np.ndarray:
        """Boolean masks (heads, n, n) for one layer; ``budget`` in keys per query, 1..n."""
        budget = check_budget(budget, x.n)
        mask = np.asarray(self.predict_layer(x, budget), dtype=bool)
        if mask.shape != (x.heads, x.n, x.n):
            raise AssertionError(f"{self.name} returned shape {mask.shape}")
        return mask

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        raise NotImplementedError

    def rng(self, *key, name: str | None = None) -> np.random.Generator:
        """A generator seeded by the predictor's seed and ``key`` (layer, head, n, ...), so the
        same call always draws the same numbers; ``name`` draws as the predictor of that name
        would (default: this one's)."""
        tag = zlib.crc32(repr((name or self.name,) + key).encode())
        return np.random.default_rng([self.seed, tag])

    def __repr__(self):
        return f"{type(self).__name__}(seed={self.seed})"


def check_budget(budget, n: int) -> float:
    b = float(budget)
    if not 1 <= b <= n:
        raise ValueError(f"budget = {budget} keys per query is out of range: allowed 1..{n}")
    return b


# --- helpers shared by predictors ----------------------------------------------------------------

def scaled_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Q K^T / sqrt(d) per head, float64, (heads, n, n)."""
    q = np.asarray(q, dtype=np.float64)
    return q @ np.swapaxes(np.asarray(k, dtype=np.float64), -1, -2) / np.sqrt(q.shape[-1])


def topk_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the ``k`` largest entries of ``scores`` (..., n, n); ties broken by position."""
    n = scores.shape[-1]
    k = int(min(max(k, 1), n))
    if k == n:
        return np.ones(scores.shape, dtype=bool)
    idx = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=-1)
    return mask


def global_topk_mask(scores: np.ndarray, budget: float) -> np.ndarray:
    """Per head, the ``budget * n`` largest entries of the whole (n, n) matrix: a threshold shared
    by all rows of a head (Sparsefinder's distance threshold, DSA's threshold mode)."""
    h, n, _ = scores.shape
    m = int(round(min(max(budget, 1.0), n) * n))
    flat = scores.reshape(h, -1)
    if m >= n * n:
        return np.ones(scores.shape, dtype=bool)
    kth = np.partition(flat, n * n - m, axis=-1)[:, n * n - m]
    return scores >= kth[:, None, None]


def window_mask(n: int, radius: int, dilation: int = 1) -> np.ndarray:
    """(n, n) band: |i - j| <= radius * dilation with (j - i) a multiple of ``dilation``."""
    d = np.arange(n)[None, :] - np.arange(n)[:, None]
    return (np.abs(d) <= radius * dilation) & (d % dilation == 0)


def global_mask(n: int, tokens: Sequence[int]) -> np.ndarray:
    """(n, n) mask of the rows and columns of ``tokens`` (negative indices count from the end)."""
    g = np.zeros(n, dtype=bool)
    g[[t % n for t in tokens]] = True
    return g[:, None] | g[None, :]


def gumbel_topk(logp: np.ndarray, k: int, rng: np.random.Generator, temperature: float = 1.0
                ) -> np.ndarray:
    """Sample ``k`` keys per row without replacement, proportionally to exp(logp) (the Gumbel
    top-k trick); temperature 0 gives the plain top-k."""
    if temperature > 0:
        g = rng.gumbel(size=logp.shape)
        logp = logp + temperature * g
    return topk_mask(logp, k)


# --- registry ------------------------------------------------------------------------------------

def registry() -> dict[str, type]:
    """name -> predictor class, in the order the evaluation reports them."""
    from .dsa import DSA
    from .oracle import Oracle
    from .smartbird import SmartBird
    from .sparsefinder import SparsefinderDistance, SparsefinderKMeans, SparsefinderQuantization
    from .spion import SPION
    from .static import BigBird, Longformer

    classes = [Oracle, Longformer, BigBird, DSA, SPION, SmartBird, SparsefinderDistance,
               SparsefinderQuantization, SparsefinderKMeans]
    return {c.name: c for c in classes}


def make(name: str, seed: int = 0, **kwargs) -> Predictor:
    """A predictor by name (see :func:`registry`); ValueError names the allowed ones."""
    reg = registry()
    if name not in reg:
        raise ValueError(f"unknown predictor {name!r}: allowed {', '.join(reg)}")
    return reg[name](seed=seed, **kwargs)
