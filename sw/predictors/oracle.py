"""The oracle: per query, the ``budget`` keys with the highest true attention scores.

It needs the dense scores it is meant to avoid computing, so it is no predictor an engine could
use; it is the upper bound each predictor's recall of attention mass is measured against, and the
mask the tests expect a predictor fed the true attention to recover.
"""

from __future__ import annotations

import numpy as np

from .base import LayerInput, Predictor, scaled_scores, topk_mask


class Oracle(Predictor):
    name = "oracle"
    paper = "upper bound: top-k of the true scores"

    def predict_layer(self, x: LayerInput, budget: float) -> np.ndarray:
        return topk_mask(scaled_scores(x.q, x.k), int(round(budget)))
