"""Sparsefinder: predicting the entmax-1.5 attention graph from learned low-dimensional projections.

Treviso et al., "Predicting Attention Sparsity in Transformers" (arXiv 2109.12188); public code
``deep-spin/sparsefinder`` (``quantization.py``, ``README.md``). The target of each head is the
support of alpha = 1.5 entmax of its scores (:mod:`.entmax`; paper §2, background on entmax).
The method (paper §3): per head, linear projections with bias map queries and keys from d to
``rank`` dimensions, trained with a triplet loss per query; the projected points are then grouped
to predict the graph. Defaults and where each comes from:

* ``rank`` r = 4 (§3; the code's example command uses 4 "rounds"; the paper also tries 8, 16, 32);
* the loss, margin 1, as many uniformly sampled negatives as positives, Adam, gradient norm
  clipped to 1 (code: ``batch_compute_loss`` and ``train_model`` in ``quantization.py``)::

      loss_i = relu(margin + sum_{j in pos(i)} ||q'_i - k'_j||^2
                           - sum_{j in neg(i)} ||q'_i - k'_j||^2)

* distance (:class:`SparsefinderDistance`, §3): pairs whose squared l2 distance is under a
  threshold t (the paper sweeps t, about 0.5..10);
* quantisation (:class:`SparsefinderQuantization`, §3): per projected dimension, queries and keys
  are each sorted into equal-size buckets of ``bucket_size`` = 16 tokens (code:
  ``--bucket_size 16``, "the number of tokens per bucket"); a pair is predicted when query and
  key share a bucket in at least one dimension;
* clustering (:class:`SparsefinderKMeans`, §3): k-means in the projected space (centroids fitted
  on the calibration projections, 16 clusters: the code's ``convert_kmeans_to_torch_centroids``
  command); a pair is predicted when the key falls in one of the query's ``top_clusters`` = 2
  nearest clusters (the code's MLM evaluation command, ``--top_clusters 2``);
* always added at evaluation: a local window of ``window`` = 11 tokens (radius 5) and the [CLS]
  row and column (the code's MLM evaluation command: ``--window_size 11``; the paper's
  experiments, §4–5).

Section numbers follow the paper's layout (§2 background, §3 the method, §4–5 the machine
translation and masked-LM experiments) and could not be re-checked against the PDF here; the
values cited from the public code are the precise source of each default.

Where this NumPy version differs from the paper:
  * MiniLM was trained with softmax, not entmax, and is not fine-tuned: the entmax-1.5 graph of
    its scores is the target, but the model's own attention stays softmax.
  * The paper sweeps its knobs (t, bucket size, cluster count) to draw Pareto curves. Here the
    knob follows from ``budget`` (keys per query): t is chosen per head so that the learned part
    selects ``budget - window - 2`` keys per query on average; the bucket size is the one whose
    expected pair density matches that; the cluster count is ``top_clusters * n`` / that budget.
    A fixed ``bucket_size`` or ``clusters`` can be given instead.
  * Separate projections for queries and keys; the code's example command also shares projectors
    and rescales queries (``--share-projectors``, ``--rescale-queries``), which is not reproduced.
  * The training loop is a small full-batch NumPy Adam (``steps`` = 200, ``lr`` = 0.01, our
    choices: the code trains 3 epochs of mini-batches at lr 0.001 on GPU) with negatives
    resampled every ``resample`` steps instead of every step, each non-positive key drawn
    independently with the probability that gives as many negatives as positives in expectation.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from .base import LayerInput, Predictor, global_mask, global_topk_mask, window_mask
from .entmax import entmax15_support

DEFAULT_RANK = 4  #: r, paper default (also 8, 16, 32)
MARGIN = 1.0  #: triplet margin (paper, code default)
WINDOW = 11  #: local window added at evaluation (paper)
#: projections fitted per calibration set, shared by the three variants
_FITTED: dict = {}
BUCKET_SIZE = 16  #: tokens per bucket (code: --bucket_size 16)
CLUSTERS = 16  #: k-means clusters (code: centroids with --bucket_size 16)
TOP_CLUSTERS = 2  #: nearest clusters of a query (code, MLM evaluation: --top_clusters 2)


def _pad_stack(arrays):
    """Stack (H, n_t, d) arrays of different n_t by zero-padding; returns stack and lengths."""
    nmax = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays),) + (arrays[0].shape[0], nmax) + arrays[0].shape[2:])
    for i, a in enumerate(arrays):
        out[i, :, :a.shape[1]] = a
    return out, np.array([a.shape[1] for a in arrays])


class TripletProjection:
    """Per-head linear projections (with bias) of queries and keys to ``rank`` dimensions,
    trained with the triplet loss above for all heads of one layer at once."""

    def __init__(self, heads: int, d: int, rank: int, rng: np.random.Generator):
        s = 1.0 / np.sqrt(d)
        self.wq = rng.normal(scale=s, size=(heads, d, rank))
        self.wk = rng.normal(scale=s, size=(heads, d, rank))
        self.bq = np.zeros((heads, 1, rank))
        self.bk = np.zeros((heads, 1, rank))

    def project(self, q, k):
        """q, k: (..., heads, n, d) -> projected (..., heads, n, rank)."""
        return q @ self.wq + self.bq, k @ self.wk + self.bk

    def train(self, q, k, gold, lengths, rng, steps=200, lr=0.01, margin=MARGIN, resample=20):
        """q, k: (T, H, n, d) float64; gold: (T, H, n, n) bool support; lengths: (T,)."""
        t, h, n, _ = q.shape
        valid_k = (np.arange(n)[None, :] < lengths[:, None])[:, None, None, :]  # (T,1,1,n)
        valid_q = (np.arange(n)[None, :] < lengths[:, None])[:, None, :]  # (T,1,n)
        pos = gold & valid_k & valid_q[..., None]
        npos = pos.sum(-1)
        norm = lengths[:, None].astype(np.float64) * t  # mean over queries, then over texts
        params = [self.wq, self.bq, self.wk, self.bk]
        m1 = [np.zeros_like(p) for p in params]
        m2 = [np.zeros_like(p) for p in params]
        b1, b2, eps = 0.9, 0.999, 1e-8
        w = None
        q, k = q.astype(np.float32), k.astype(np.float32)
        qt, kt = np.swapaxes(q, -1, -2), np.swapaxes(k, -1, -2)
        for step in range(steps):
            if step % resample == 0:
                # as many negatives as positives per query (in expectation), uniformly among the
                # other valid keys: a Bernoulli draw per key avoids sorting n x n per step
                nneg = np.maximum(lengths[:, None, None] - npos, 1)
                prob = np.minimum(npos / nneg, 1.0)[..., None]
                neg = (rng.random(pos.shape) < prob) & ~pos & valid_k
                w = pos.astype(np.float32) - neg
                srow = w.sum(-1)  # 0 unless a query has more positives than negatives
            a, b = self.project(q, k)
            a, b = a.astype(np.float32), b.astype(np.float32)  # keep w @ b in float32
            wb = w @ b
            d_i = (srow * (a * a).sum(-1) + (w @ (b * b).sum(-1)[..., None])[..., 0]
                   - 2 * (a * wb).sum(-1))
            g = ((margin + d_i) > 0) & valid_q  # (T, H, n): active queries
            g = (g / norm[..., None]).astype(np.float32)
            ga = 2 * (g * srow)[..., None] * a - 2 * g[..., None] * wb
            gw = np.swapaxes(w, -1, -2) @ g[..., None]  # (T,H,n,1): sum_i g_i w_ij
            gb = 2 * gw * b - 2 * np.swapaxes(w, -1, -2) @ (g[..., None] * a)
            grads = [(qt @ ga).sum(0), ga.sum(axis=(0, 2))[:, None],
                     (kt @ gb).sum(0), gb.sum(axis=(0, 2))[:, None]]
            # clip the gradient norm per head to 1 (the code clips to 1)
            gn = np.sqrt(sum((gr.reshape(h, -1) ** 2).sum(-1) for gr in grads))
            clip = np.minimum(1.0, 1.0 / np.maximum(gn, 1e-12))
            for i, (p, gr) in enumerate(zip(params, grads)):
                gr = gr * clip.reshape((h,) + (1,) * (gr.ndim - 1))
                m1[i] = b1 * m1[i] + (1 - b1) * gr
                m2[i] = b2 * m2[i] + (1 - b2) * gr * gr
                mh = m1[i] / (1 - b1 ** (step + 1))
                vh = m2[i] / (1 - b2 ** (step + 1))
                p -= lr * mh / (np.sqrt(vh) + eps)
        return self


class _Sparsefinder(Predictor):
    """Shared fitting of the projections; subclasses turn projections into a graph."""

    def __init__(self, seed: int = 0, rank: int = DEFAULT_RANK, window: int = WINDOW,
                 steps: int = 200, lr: float = 0.01):
        super().__init__(seed)
        if rank < 1 or window < 1 or window % 2 == 0 or steps < 0 or lr <= 0:
            raise ValueError(f"rank = {rank} (>= 1), window = {window} (odd, >= 1), steps = "
                             f"{steps} (>= 0), lr = {lr} (> 0): a value is out of range")
        self.rank, self.window, self.steps, self.lr = rank, window, steps, lr
        self.proj: dict[int, TripletProjection] = {}
        self.calib_points: dict[int, np.ndarray] = {}  # layer -> (H, N, rank), for k-means

    def fit(self, calibration: Sequence) -> "_Sparsefinder":
        # the three variants share one projection: train it once per calibration set
        key = (tuple(zlib.crc32(t.ids.tobytes()) for t in calibration), self.rank, self.steps,
               self.lr, self.seed)
        if key in _FITTED:
            self.proj, self.calib_points = _FITTED[key]
            self.fitted = True
            return self
        self.proj, self.calib_points = {}, {}
        self._fit(calibration)
        _FITTED.clear()  # keep one calibration set's projections alive, not all of them
        _FITTED[key] = (self.proj, self.calib_points)
        return self

    def _fit(self, calibration: Sequence):
        from .base import scaled_scores
        layers = len(calibration[0].layers)
        for li in range(layers):
            q, lengths = _pad_stack([t.layers[li].q.astype(np.float64) for t in calibration])
            k, _ = _pad_stack([t.layers[li].k.astype(np.float64) for t in calibration])
            n = q.shape[2]
            s = scaled_scores(q, k)
            s = np.where((np.arange(n) < lengths[:, None])[:, None, None, :], s, -np.inf)
            gold = entmax15_support(s)
            h, d = q.shape[1], q.shape[3]
            proj = TripletProjection(h, d, self.rank, self._projection_rng("init", li))
            proj.train(q, k, gold, lengths, self._projection_rng("train", li), steps=self.steps,
                       lr=self.lr)
            self.proj[li] = proj
            a, b = proj.project(q, k)
            keep = [np.concatenate([a[i, :, :m], b[i, :, :m]], axis=1)
                    for i, m in enumerate(lengths)]
            self.calib_points[li] = np.concatenate(keep, axis=1)
        self.fitted = True

    def _projection_rng(self, *key) -> np.random.Generator:
        """The shared projection's draws: the same whichever variant trains it (as the distance
        variant's), so that each variant's results do not depend on which one was fitted
        first in a process, or on which worker process of a parallel ``swattn eval`` runs
        it."""
        return self.rng(*key, name=SparsefinderDistance.name)

    def projected(self, x: LayerInput):
        if x.layer not in self.proj:
            raise RuntimeError(f"{self.name} must be fitted first")
        return self.proj[x.layer].project(x.q.astype(np.float64), x.k.astype(np.float64))

    def fixed(self, n: int) -> np.ndarray:
        """The window and [CLS] row/column the paper always adds."""
        return window_mask(n, self.window // 2) | global_mask(n, (0,))

    def learned_budget(self, n: int, budget: float) -> float:
        return max(budget - self.window - 2, 1.0)

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        a, b = self.projected(x)
        learned = self.graph(x, a, b, self.learned_budget(x.n, budget))
        return learned | self.fixed(x.n)[None]

    def graph(self, x, a, b, budget):
        raise NotImplementedError


class SparsefinderDistance(_Sparsefinder):
    """Distance variant: squared l2 distance of projected q and k under a per-head threshold."""

    name = "sf-distance"
    paper = "Sparsefinder arXiv 2109.12188 (distance)"

    def graph(self, x, a, b, budget):
        d2 = ((a * a).sum(-1)[..., :, None] + (b * b).sum(-1)[..., None, :]
              - 2 * a @ np.swapaxes(b, -1, -2))
        return global_topk_mask(-d2, budget)


def buckets_for_density(density: float, rank: int) -> int:
    """Buckets per dimension B whose chance of sharing a bucket in at least one of ``rank``
    dimensions, 1 - (1 - 1/B)^rank, is closest to ``density`` (for independent uniform ranks)."""
    density = min(max(density, 1e-6), 1.0)
    if density >= 1.0:
        return 1
    b = 1.0 / (1.0 - (1.0 - density) ** (1.0 / rank))
    return max(int(round(b)), 1)


def bucket_ids(x: np.ndarray, buckets: int) -> np.ndarray:
    """Per dimension, equal-size buckets by rank along the token axis: (..., n, r) -> ints."""
    n = x.shape[-2]
    rank = np.argsort(np.argsort(x, axis=-2, kind="stable"), axis=-2, kind="stable")
    return rank * buckets // n


class SparsefinderQuantization(_Sparsefinder):
    """Quantisation variant. ``bucket_size``: tokens per bucket (the code's default is 16), or
    None (default) to choose the bucket count from the budget."""

    name = "sf-quant"
    paper = "Sparsefinder arXiv 2109.12188 (quantization)"

    def __init__(self, seed: int = 0, bucket_size: int | None = None, **kw):
        super().__init__(seed, **kw)
        if bucket_size is not None and bucket_size < 1:
            raise ValueError(f"bucket_size = {bucket_size} is out of range: allowed >= 1 or None")
        self.bucket_size = bucket_size

    def graph(self, x, a, b, budget):
        if self.bucket_size:
            nb = max(-(-x.n // self.bucket_size), 1)
        else:
            nb = buckets_for_density(budget / x.n, self.rank)
        qa, kb = bucket_ids(a, nb), bucket_ids(b, nb)
        out = np.zeros((x.heads, x.n, x.n), dtype=bool)
        for dim in range(a.shape[-1]):  # loop over the r projected dimensions
            out |= qa[..., :, None, dim] == kb[..., None, :, dim]
        return out


def kmeans(points: np.ndarray, clusters: int, rng: np.random.Generator, iters: int = 20
           ) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding on (N, r) points; returns (clusters, r)."""
    n = len(points)
    clusters = min(clusters, n)
    cent = [points[rng.integers(n)]]
    d2 = ((points - cent[0]) ** 2).sum(-1)
    for _ in range(1, clusters):  # loop over clusters, not points
        p = d2 / d2.sum() if d2.sum() > 0 else None
        cent.append(points[rng.choice(n, p=p)])
        d2 = np.minimum(d2, ((points - cent[-1]) ** 2).sum(-1))
    c = np.array(cent)
    sq = (points * points).sum(-1)[:, None]
    for _ in range(iters):
        lab = (sq - 2 * points @ c.T + (c * c).sum(-1)[None]).argmin(1)
        sums = np.zeros_like(c)
        np.add.at(sums, lab, points)
        cnt = np.bincount(lab, minlength=len(c))[:, None]
        new = np.where(cnt > 0, sums / np.maximum(cnt, 1), c)
        if np.allclose(new, c):
            break
        c = new
    return c


class SparsefinderKMeans(_Sparsefinder):
    """Clustering variant. ``clusters``: fixed cluster count (the code's is 16), or None (default)
    to derive it from the budget, 1..``max_clusters``; ``top_clusters``: how many of the query's
    nearest clusters it attends to, 1 or 2 (default 2, the code's MLM evaluation);
    ``max_points``: calibration points per head that k-means is fitted on (a random subset)."""

    name = "sf-kmeans"
    paper = "Sparsefinder arXiv 2109.12188 (k-means)"

    max_clusters = 128

    def __init__(self, seed: int = 0, clusters: int | None = None,
                 top_clusters: int = TOP_CLUSTERS, max_points: int = 2048, **kw):
        super().__init__(seed, **kw)
        if top_clusters not in (1, 2):
            raise ValueError(f"top_clusters = {top_clusters}: allowed 1, 2")
        if clusters is not None and not top_clusters <= clusters <= self.max_clusters:
            raise ValueError(f"clusters = {clusters} is out of range: allowed "
                             f"{top_clusters}..{self.max_clusters} or None")
        self.clusters, self.top_clusters, self.max_points = clusters, top_clusters, max_points
        self._centroids: dict = {}

    def centroids(self, layer: int, clusters: int) -> np.ndarray:
        """(H, clusters, r) centroids fitted on the calibration projections (cached)."""
        key = (layer, clusters)
        if key not in self._centroids:
            pts = self.calib_points[layer]
            out = []
            for h in range(pts.shape[0]):  # loop over heads
                rng = self.rng("kmeans", layer, h, clusters)
                p = pts[h]
                if len(p) > self.max_points:
                    p = p[rng.choice(len(p), self.max_points, replace=False)]
                out.append(kmeans(p, clusters, rng))
            self._centroids[key] = np.stack(out)
        return self._centroids[key]

    def graph(self, x, a, b, budget):
        # a query sees about top_clusters / C of the keys
        c = self.clusters or int(min(max(round(self.top_clusters * x.n / budget),
                                         self.top_clusters), self.max_clusters))
        cent = self.centroids(x.layer, c)  # (H, C, r)
        da = ((a[:, :, None, :] - cent[:, None]) ** 2).sum(-1)  # (H, n, C)
        db = ((b[:, :, None, :] - cent[:, None]) ** 2).sum(-1)
        kb = np.eye(cent.shape[1], dtype=bool)[db.argmin(-1)]  # (H, n, C) one-hot
        near = np.argsort(da, axis=-1)[..., :self.top_clusters]
        qa = np.zeros_like(kb)
        np.put_along_axis(qa, near, True, axis=-1)
        return (qa.astype(np.float32) @ np.swapaxes(kb, -1, -2).astype(np.float32)) > 0
