"""SPION: one block-sparse pattern per layer by convolution and flood filling.

Yoon et al., "SPION: Layer-Wise Sparse Training of Transformer via Convolutional Flood Filling"
(arXiv 2309.12578); public code ``mlsys-lab-sogang/SPION`` (``main_conv_ff.py``, ``config.py``).
The paper's method section describes the steps below (the section number could not be re-checked
here); every default is cited from the code, which this module follows step for step. Per layer:
  1. the attention map averaged over heads and calibration texts (an n x n map);
  2. a 31 x 31 diagonal (identity) convolution kernel, stride 1, same padding, which sums along
     diagonals (``KERNEL`` = 31: ``main_conv_ff.py``, ``np.fill_diagonal`` of a 31 x 31 kernel);
  3. average pooling to ``block`` x ``block`` blocks (``BLOCK`` = 32: ``config.py`` uses 32 for
     the image and pathfinder tasks, 64 for the 1k..4k-token text tasks);
  4. a threshold at a quantile of the block scores (``config.py``: 0.96 to 0.99; here the quantile
     follows from the budget, see below);
  5. flood fill: from every cell of the first block row and block column, step to the largest of
     the right, lower and lower-right neighbours until the edge, marking each block stepped onto
     that is above the threshold; diagonal blocks are always kept (``flood_fill`` and the loop
     after it in ``main_conv_ff.py``, with its tie rules).
The result is one block mask per layer, shared by all heads (the "CF" variant).

Where this NumPy version differs from the paper:
  * The paper builds the map during training, when it stops changing (relative change of the
    Frobenius distance below 15%), and then trains with the sparse pattern; MiniLM is already
    trained, so the map is the average over the calibration texts and nothing is fine-tuned.
  * The threshold quantile is 1 - budget / n (the fraction of blocks allowed to pass), so the
    pattern can be swept over budgets; the paper's fixed 0.96..0.99 corresponds to budgets of
    1..4% of n, too few for sequences of a few hundred tokens.
  * The map is indexed by absolute position (MiniLM has absolute position embeddings); for
    lengths beyond the calibration texts, the uncovered cells count as zero.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import LayerInput, Predictor

KERNEL = 31  #: diagonal kernel size (code: main_conv_ff.py)
BLOCK = 32  #: block size (code: config.py, 32 or 64)


def diagonal_conv(a: np.ndarray, size: int = KERNEL) -> np.ndarray:
    """Cross-correlation with a size x size identity kernel, stride 1, zero 'same' padding:
    out[i, j] = sum_t a[i + t, j + t] for t in -(size-1)//2 .. size//2."""
    n, m = a.shape
    lo = (size - 1) // 2
    p = np.zeros((n + size - 1, m + size - 1), dtype=np.float64)
    p[lo:lo + n, lo:lo + m] = a
    out = np.zeros((n, m), dtype=np.float64)
    for t in range(size):  # loop over the kernel taps, not over tokens
        out += p[t:t + n, t:t + m]
    return out


def block_average(a: np.ndarray, block: int) -> np.ndarray:
    """Average pooling by ``block`` (a partial last block averages the entries it has)."""
    n, m = a.shape
    nb, mb = -(-n // block), -(-m // block)
    p = np.zeros((nb * block, mb * block))
    c = np.zeros_like(p)
    p[:n, :m] = a
    c[:n, :m] = 1
    s = p.reshape(nb, block, mb, block).sum(axis=(1, 3))
    cnt = c.reshape(nb, block, mb, block).sum(axis=(1, 3))
    return s / np.maximum(cnt, 1)


def flood_fill(scores: np.ndarray, threshold: float) -> np.ndarray:
    """SPION's flood fill on a square block-score map; returns the boolean block mask.

    Walks start at every cell of the first row and first column (all walks advance together, so
    the loop runs over block steps, not seeds). At (x, y) a walk moves to the largest of
    (x+1, y), (x, y+1), (x+1, y+1), ties resolved as in the paper's code (the diagonal wins a tie
    with either, right wins a tie of down and right), and marks the cell it moves to when its score
    exceeds ``threshold``; it stops at the last row or column. Diagonal blocks are always kept.
    """
    nb = scores.shape[0]
    if scores.shape != (nb, nb):
        raise ValueError(f"block map must be square, got {scores.shape}")
    # one extra zero row and column, as the paper's code pads: walks can step onto the border
    tmp = np.zeros((nb + 1, nb + 1))
    tmp[:nb, :nb] = scores
    mark = np.zeros((nb + 1, nb + 1), dtype=bool)
    seeds = np.arange(nb)
    x = np.concatenate([np.zeros(nb, dtype=np.int64), seeds])
    y = np.concatenate([seeds, np.zeros(nb, dtype=np.int64)])
    for _ in range(2 * nb + 1):
        live = (x + 1 < nb + 1) & (y + 1 < nb + 1)
        if not live.any():
            break
        xs, ys = x[live], y[live]
        down, right, diag = tmp[xs + 1, ys], tmp[xs, ys + 1], tmp[xs + 1, ys + 1]
        go_down = (down > right) & (down > diag)
        go_right = (down <= right) & (right > diag)
        nx = xs + np.where(go_right, 0, 1)
        ny = ys + np.where(go_down, 0, 1)
        hit = tmp[nx, ny] > threshold
        mark[nx[hit], ny[hit]] = True
        x[live], y[live] = nx, ny
    out = mark[:nb, :nb]
    out[np.arange(nb), np.arange(nb)] = True
    return out


def expand_blocks(blocks: np.ndarray, block: int, n: int) -> np.ndarray:
    """Token mask (n, n) from a block mask."""
    return np.repeat(np.repeat(blocks, block, axis=0), block, axis=1)[:n, :n]


class SPION(Predictor):
    """Layer-wise block pattern. ``block``: block size in tokens (>= 1); ``kernel``: diagonal
    convolution size (odd, >= 1; 1 gives SPION-F, flood fill without convolution)."""

    name = "spion"
    paper = "SPION arXiv 2309.12578"
    static = True

    def __init__(self, seed: int = 0, block: int = BLOCK, kernel: int = KERNEL):
        super().__init__(seed)
        if block < 1 or kernel < 1:
            raise ValueError(f"block = {block}, kernel = {kernel}: both must be >= 1")
        self.block, self.kernel = int(block), int(kernel)
        self.maps: dict[int, np.ndarray] = {}  # layer -> averaged attention map (max n x max n)
        self._cache: dict = {}

    def fit(self, calibration: Sequence) -> "SPION":
        nmax = max(t.n for t in calibration)
        layers = len(calibration[0].layers)
        for li in range(layers):
            acc = np.zeros((nmax, nmax))
            cnt = np.zeros((nmax, nmax))
            for t in calibration:
                p = t.layers[li].probs
                if p is None:
                    raise ValueError("SPION needs calibration traces with dense probabilities")
                acc[:t.n, :t.n] += p.mean(axis=0)
                cnt[:t.n, :t.n] += 1
            self.maps[li] = acc / np.maximum(cnt, 1)
        self._cache.clear()
        self.fitted = True
        return self

    def fit_maps(self, maps: dict[int, np.ndarray]) -> "SPION":
        """Use given averaged attention maps (layer -> (n, n)) instead of calibration traces."""
        self.maps = {k: np.asarray(v, dtype=np.float64) for k, v in maps.items()}
        self._cache.clear()
        self.fitted = True
        return self

    def block_scores(self, layer: int, n: int) -> np.ndarray:
        if layer not in self.maps:
            raise RuntimeError("SPION must be fitted first")
        m = self.maps[layer]
        a = np.zeros((n, n))
        k = min(n, m.shape[0])
        a[:k, :k] = m[:k, :k]
        return block_average(diagonal_conv(a, self.kernel), self.block)

    def block_mask(self, layer: int, n: int, budget: float) -> np.ndarray:
        key = (layer, n, round(budget, 6))
        if key not in self._cache:
            s = self.block_scores(layer, n)
            q = min(max(1.0 - budget / n, 0.0), 1.0)
            self._cache[key] = flood_fill(s, float(np.quantile(s, q)))
        return self._cache[key]

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        m = expand_blocks(self.block_mask(x.layer, x.n, budget), self.block, x.n)
        return np.broadcast_to(m, (x.heads, x.n, x.n)).copy()
