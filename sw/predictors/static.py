"""Static baselines: Longformer (window + globals) and BigBird (window + globals + random).

Neither looks at the input; both fix the pattern from the sequence length and the budget.

Longformer (Beltagy et al., arXiv 2004.05150): a sliding window of w keys around each query
(§3.1 "Sliding Window"; w = 512 in the paper's fine-tuning runs, far above our n <= 512, so here w
comes from the budget) plus symmetric global attention on task tokens (§3.1 "Global Attention":
[CLS] for classification).

BigBird (Zaheer et al., arXiv 2007.14062, §2; block sizes in its appendix hyperparameter tables):
window, global and random keys at block granularity; BigBird-ITC uses 3 window blocks, 2 global
blocks and 3 random blocks of 64 tokens. Here, at token granularity:
  * the globals are [CLS] and the final [SEP] (two tokens instead of two 64-token blocks, which
    would be a quarter of a 512-token sequence);
  * the rest of the budget is split between window and random keys in BigBird's 3 : 3 ratio;
  * random keys are drawn per query, layer and head, uniformly among the keys outside the window
    and the globals, without replacement.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import LayerInput, Predictor, global_mask, window_mask

#: BigBird-ITC block counts (paper appendix, hyperparameters): window 3, global 2, random 3
BIGBIRD_WINDOW_BLOCKS = 3
BIGBIRD_RANDOM_BLOCKS = 3


def _global_cost(n: int, tokens: Sequence[int]) -> float:
    """Mean extra keys per query that ``len(tokens)`` global tokens cost (row + column each)."""
    g = len(set(t % n for t in tokens))
    return (2 * g * n - g * g) / n


class Longformer(Predictor):
    """Sliding window + global tokens. ``globals_``: token positions (negative from the end),
    default [CLS] only (Longformer §3.1 for classification)."""

    name = "longformer"
    paper = "Longformer arXiv 2004.05150 §3.1"
    static = True

    def __init__(self, seed: int = 0, globals_: Sequence[int] = (0,)):
        super().__init__(seed)
        self.globals_ = tuple(globals_)

    def radius(self, n: int, budget: float) -> int:
        return max(int((budget - 1 - _global_cost(n, self.globals_)) // 2), 0)

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        n = x.n
        m = window_mask(n, self.radius(n, budget)) | global_mask(n, self.globals_)
        return np.broadcast_to(m, (x.heads, n, n)).copy()


class BigBird(Predictor):
    """Window + global + random keys. ``globals_``: token positions, default [CLS] and the last
    [SEP]; ``random_share``: fraction of the non-global budget spent on random keys (3/6 from the
    ITC block counts)."""

    name = "bigbird"
    paper = "BigBird arXiv 2007.14062 §2 (ITC)"
    static = True

    def __init__(self, seed: int = 0, globals_: Sequence[int] = (0, -1),
                 random_share: float = BIGBIRD_RANDOM_BLOCKS / (BIGBIRD_RANDOM_BLOCKS
                                                               + BIGBIRD_WINDOW_BLOCKS)):
        super().__init__(seed)
        if not 0 <= random_share < 1:
            raise ValueError(f"random_share = {random_share} is out of range: allowed 0..<1")
        self.globals_ = tuple(globals_)
        self.random_share = float(random_share)

    def split(self, n: int, budget: float) -> tuple[int, int]:
        """(window radius, random keys per query) for a budget."""
        rest = max(budget - 1 - _global_cost(n, self.globals_), 0.0)
        r = int(round(rest * self.random_share))
        radius = max(int((rest - r) // 2), 0)
        return radius, r

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        n, h = x.n, x.heads
        radius, r = self.split(n, budget)
        fixed = window_mask(n, radius) | global_mask(n, self.globals_)
        out = np.empty((h, n, n), dtype=bool)
        for head in range(h):  # loop over heads only: one random draw each
            u = self.rng(x.layer, head, n).random((n, n))
            u[fixed] = -1.0  # never drawn while other keys are left
            take = min(r, n)
            if take:
                idx = np.argpartition(-u, take - 1, axis=-1)[:, :take]
                rand = np.zeros((n, n), dtype=bool)
                np.put_along_axis(rand, idx, True, axis=-1)
                out[head] = fixed | rand
            else:
                out[head] = fixed
        return out
