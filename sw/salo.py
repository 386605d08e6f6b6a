"""SALO's published cycle model (Shen et al., DAC 2022, arXiv 2206.14550), for side-by-side figures.

Rewritten from the description of its repository's ``performance_model/performance_model.py``
(sjtu-zhao-lab/SALO), not copied. SALO is a ``rows x cols`` array of local PEs (32 x 32 in the
paper) plus one global PE row and one global PE column; each PE does one MAC per cycle.

One *iteration* takes a tile of ``rows`` consecutive queries against ``cols`` window keys on the
array's diagonal and costs, per the model,

    head_dim        Q.K, output-stationary (one score per PE over d cycles)
  + 1 + 1           exponential, then row sum
  + cols            waiting for the row sum to cross the row and its reciprocal
  + 1               scaling by the reciprocal
  + head_dim        P.V
  + 1               flushing the registers before the next iteration (all but the last)

that is ``2 * head_dim + 3 + cols + 1`` cycles, and the last iteration drains the array in
``cols + global_pes - 1`` more. A head of ``n`` queries with a window of ``w`` keys takes
``ceil(n / rows) * ceil(w / cols)`` iterations (:func:`cycles`). With n = 4096, w = 512, d = 64,
12 heads and the 32 x 32 array this is 4.03 ms at 1 GHz; the paper's utilisation (74%) counts
``n * (w + 2)`` pairs per head (the window plus one global key and one global query) against all
1024 + 32 + 32 PEs.

Generalisation to the swattn engine's patterns and MAC counts (:func:`pattern_cycles`):

* Same MAC count: the *local* array gets as many PEs as the engine has lanes, ``rows * cols =
  lanes``, square when lanes is an even power of two (1024 -> 32 x 32, SALO's own design; 64 ->
  8 x 8) and otherwise with twice as many rows as columns (8 -> 4 x 2, 128 -> 16 x 8), the
  orientation with fewer cycles per iteration (the wait grows with ``cols``). SALO keeps its global
  row and column on top (``rows + cols`` extra PEs), so at equal lanes it has slightly more MACs;
  utilisation is computed over all of them, as the paper does.
* Window: ``w = left + right + 1`` keys (a radius-256 window is 513 keys, 17 passes of 32; the
  paper's w = 512 is 16). Dilation changes no count: SALO claims dilated windows (its code has no
  logic for them); the model assumes they run as dense windows of the same key count, which is
  optimistic for SALO.
* Global tokens: the global PE row and column serve ``global_pes`` (1) global token for free, as
  in the paper. Each further global key is one more key column of every window tile (``ceil((w +
  G - 1) / cols)`` passes), and each further global query one more query row seeing all ``n``
  keys (``ceil((G - 1) / rows) * ceil(n / cols)`` iterations). Global rows are not repeated in
  the window tiles (``n - G`` window queries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .spec.pattern import HybridPattern


@dataclass(frozen=True)
class SaloArray:
    """A SALO PE array.

    rows : queries per iteration (local PE rows), >= 1.
    cols : window keys per iteration (local PE columns), >= 1.
    global_pes : global tokens served by the global PE row and column, >= 0 (1 in the paper).
    """

    rows: int = 32
    cols: int = 32
    global_pes: int = 1

    def __post_init__(self):
        for name in ("rows", "cols"):
            if getattr(self, name) < 1:
                raise ValueError(f"SALO {name} = {getattr(self, name)} is out of range: allowed >= 1")
        if self.global_pes < 0:
            raise ValueError(f"SALO global_pes = {self.global_pes} is out of range: allowed >= 0")

    @property
    def local_pes(self) -> int:
        return self.rows * self.cols

    @property
    def pes(self) -> int:
        """All MAC units: the local array plus the global row and column."""
        return self.local_pes + self.global_pes * (self.rows + self.cols)

    @classmethod
    def for_lanes(cls, lanes: int) -> "SaloArray":
        """The array whose local PEs equal ``lanes`` (a power of two >= 2); see the module doc."""
        if lanes < 2 or lanes & (lanes - 1):
            raise ValueError(f"lanes = {lanes} is out of range: allowed a power of two >= 2")
        k = lanes.bit_length() - 1
        cols = 1 << (k // 2)
        return cls(rows=lanes // cols, cols=cols)


def iteration_cycles(head_dim: int, array: SaloArray = SaloArray()) -> int:
    """Cycles of one iteration (with its flush): ``2 * head_dim + 3 + cols + 1``."""
    return 2 * head_dim + 3 + array.cols + 1


def _total(iterations: int, head_dim: int, array: SaloArray) -> int:
    if iterations <= 0:
        return 0
    # every iteration pays its flush except the last, which drains the array instead
    return (iterations * iteration_cycles(head_dim, array) - 1
            + array.cols + array.global_pes - 1)


def cycles(n: int, window: int, head_dim: int, heads: int = 1,
           array: SaloArray = SaloArray()) -> int:
    """SALO's published model: ``ceil(n/rows) * ceil(window/cols) * heads`` iterations.

    n : sequence length (queries), >= 1. window : keys per query in the window, >= 1.
    head_dim : d, >= 1. heads : heads run one after another, >= 1.
    """
    iters = math.ceil(n / array.rows) * math.ceil(window / array.cols) * heads
    return _total(iters, head_dim, array)


def paper_utilisation(n: int, window: int, head_dim: int, heads: int = 1,
                      array: SaloArray = SaloArray()) -> float:
    """Utilisation as the paper counts it: ``n * (window + 2 * global_pes)`` pairs per head, 2 d
    MACs each, over all PEs."""
    macs = 2 * head_dim * n * (window + 2 * array.global_pes) * heads
    return macs / (cycles(n, window, head_dim, heads, array) * array.pes)


def pattern_iterations(pattern: HybridPattern, array: SaloArray) -> int:
    """Iterations of one head of ``pattern`` under the generalisation in the module doc."""
    g = len(pattern.globals_)
    window = pattern.left + pattern.right + 1
    extra = max(g - array.global_pes, 0)
    queries = pattern.n - g
    it = math.ceil(queries / array.rows) * math.ceil((window + extra) / array.cols)
    it += math.ceil(extra / array.rows) * math.ceil(pattern.n / array.cols)
    return it


def pattern_cycles(pattern: HybridPattern, head_dim: int, array: SaloArray) -> int:
    """SALO cycles for one head of ``pattern`` (generalised model, see the module doc)."""
    return _total(pattern_iterations(pattern, array), head_dim, array)


def utilisation(useful_macs: int, cycles_: int, array: SaloArray) -> float:
    """Useful MACs over the MACs all of SALO's PEs could do in ``cycles_``."""
    return useful_macs / (cycles_ * array.pes) if cycles_ else 0.0
