"""Smart Bird: token pairs sampled per head from a low-dimensional single-head attention sketch.

Wu et al., "Smart Bird: Learnable Sparse Attention for Efficient and Effective Transformer"
(arXiv 2108.09193), method section (§3; the number could not be re-checked here, the three steps
are the abstract's): (1) a single-head, low-dimensional Transformer layer computes a sketched
attention matrix from the layer input; (2) token pairs are sampled from the sketch's
probabilities, with a different sample per head, giving each head its own sparse index set;
(3) sparse attention is computed on the sampled pairs.

Where this NumPy version differs from the paper (no public code; see PAPERS.md):
  * The sketch is not trained with the model. Per layer it is the rank-``dim`` bilinear form
    S = (X~ A)(X~ B)^T on the layer input X~ = [X, 1] that best approximates (least squares over
    the calibration inputs) the head-averaged score form mean_h (W_q,h W_k,h^T) / sqrt(d) of
    MiniLM: closed form, a truncated SVD after whitening with the calibration second moments.
  * ``dim`` = 16 (half the head dimension) is our choice: the paper's sketch size is unconfirmed.
  * Sampling is Gumbel top-k (``budget`` keys per query without replacement, proportional to the
    sketch's softmax probabilities, at ``temperature`` 1); the paper's exact scheme is unconfirmed.
    Temperature 0 keeps the sketch's top-k (the same pairs for every head).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import LayerInput, Predictor, gumbel_topk

DEFAULT_DIM = 16  #: our choice: half the head dimension (the paper's sketch size is unconfirmed)


def _augment(x):
    return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)


class SmartBird(Predictor):
    """``dim``: sketch dimension (>= 1); ``temperature``: Gumbel noise scale (>= 0)."""

    name = "smartbird"
    paper = "Smart Bird arXiv 2108.09193 §3"

    def __init__(self, seed: int = 0, dim: int = DEFAULT_DIM, temperature: float = 1.0):
        super().__init__(seed)
        if dim < 1 or temperature < 0:
            raise ValueError(f"dim = {dim} (allowed >= 1), temperature = {temperature} "
                             "(allowed >= 0)")
        self.dim, self.temperature = int(dim), float(temperature)
        self.sketch: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # layer -> (A, B)
        self.sketch_scores_fn = None

    def fit(self, calibration: Sequence, weights=None) -> "SmartBird":
        """``weights``: a :class:`~swattn.sw.minilm.MiniLM` whose per-head query/key weights give
        the score form to sketch (loaded on demand)."""
        if weights is None:
            from ..minilm import load
            weights = load()
        layers = len(calibration[0].layers)
        for li in range(layers):
            xs = np.concatenate([_augment(t.layers[li].hidden.astype(np.float64))
                                 for t in calibration])
            self.sketch[li] = self._fit_layer(weights, li, xs)
        self.fitted = True
        return self

    def _fit_layer(self, model, li, xs):
        from ..minilm import HEAD_DIM, HEADS
        pre = f"encoder.layer.{li}.attention.self."
        wq, bq = model.lin[pre + "query"]
        wk, bk = model.lin[pre + "key"]
        wq = np.vstack([wq, bq[None]]).astype(np.float64)  # (385, 384): [X, 1] @ wq = Q
        wk = np.vstack([wk, bk[None]]).astype(np.float64)
        m = np.zeros((wq.shape[0], wq.shape[0]))
        for h in range(HEADS):
            sl = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
            m += wq[:, sl] @ wk[:, sl].T
        m /= HEADS * np.sqrt(HEAD_DIM)
        # best rank-dim form under the data: minimise ||L^T (M - A B^T) L|| with C = L L^T
        c = xs.T @ xs / len(xs)
        w, u = np.linalg.eigh(c + 1e-6 * np.trace(c) / len(c) * np.eye(len(c)))
        w = np.maximum(w, 1e-12)
        l_half, l_inv = (u * np.sqrt(w)) @ u.T, (u / np.sqrt(w)) @ u.T
        uu, s, vt = np.linalg.svd(l_half @ m @ l_half)
        r = min(self.dim, len(s))
        a = l_inv @ (uu[:, :r] * np.sqrt(s[:r]))
        b = l_inv @ (vt[:r].T * np.sqrt(s[:r]))
        return a, b

    def sketch_scores(self, x: LayerInput) -> np.ndarray:
        """The single-head sketch's scores (n, n) for one layer input."""
        if self.sketch_scores_fn is not None:  # tests: a given sketch
            return np.asarray(self.sketch_scores_fn(x), dtype=np.float64)
        if x.layer not in self.sketch:
            raise RuntimeError("SmartBird must be fitted first")
        a, b = self.sketch[x.layer]
        xa = _augment(x.hidden.astype(np.float64))
        return (xa @ a) @ (xa @ b).T

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        s = self.sketch_scores(x)
        logp = s - s.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        k = int(round(budget))
        return np.stack([gumbel_topk(logp, k, self.rng(x.layer, h, x.n), self.temperature)
                         for h in range(x.heads)])
