"""The order in which the engine takes and returns rows (shared by the host driver, the
testbenches and the cycle model).

Main pass: queries are processed in *groups* of up to ``units`` rows of one residue class mod
dilation: for block base b = 0, units*dil, 2*units*dil, ... and class c = 0..dil-1 the group is
rows b + c + u*dil (u < units) that are < n and not global. Groups with no such row are skipped.
Then the global rows, ``units`` at a time, in ascending order.

Engines of more than one unit (``EngineParams.paired_max``) first run the global rows' max
passes, two groups of global queries per pass over the keys, so their ``q`` stream starts with
the global rows once more.
"""

from __future__ import annotations

import numpy as np

from .engine_params import EngineParams
from .pattern import HybridPattern


def main_groups(pattern: HybridPattern, params: EngineParams) -> np.ndarray:
    """Row index of every (group, unit) slot, shape (groups, units); -1 marks an idle unit.

    Only groups with at least one active row are returned, in processing order.
    """
    n, dil, units = pattern.n, pattern.dilation, params.units
    bases = np.arange(0, n, units * dil, dtype=np.int64)
    cls = np.arange(dil, dtype=np.int64)
    u = np.arange(units, dtype=np.int64)
    idx = bases[:, None, None] + cls[None, :, None] + u[None, None, :] * dil
    idx = idx.reshape(-1, units)
    active = (idx < n) & ~pattern.is_global()[np.minimum(idx, n - 1)]
    idx = np.where(active, idx, -1)
    return idx[active.any(axis=1)]


def output_order(pattern: HybridPattern, params: EngineParams) -> np.ndarray:
    """Row indices in the order the ``o`` stream returns them: the main pass's rows, then the
    global rows."""
    groups = main_groups(pattern, params)
    return np.concatenate([groups[groups >= 0], pattern.global_array]).astype(np.int64)


def query_order(pattern: HybridPattern, params: EngineParams) -> np.ndarray:
    """Row indices in the order the ``q`` stream carries them: :func:`output_order`, after the
    global rows for the paired max passes where the engine has them."""
    out = output_order(pattern, params)
    if params.paired_max:
        out = np.concatenate([pattern.global_array.astype(np.int64), out])
    return out


def kv_order(pattern: HybridPattern, params: EngineParams) -> np.ndarray:
    """Row indices in the order the ``kv`` stream carries them: the global rows, the key-only
    columns' rows (an EngineForm's), then rows 0..n-1 once per pass
    (``EngineParams.kv_passes``)."""
    rows = np.arange(pattern.n, dtype=np.int64)
    passes = params.kv_passes(len(pattern.globals_))
    columns = np.asarray(getattr(pattern, "columns", ()), dtype=np.int64)
    return np.concatenate([pattern.global_array, columns] + [rows] * passes)
