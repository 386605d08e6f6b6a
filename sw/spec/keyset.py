"""Patterns as a set of keys per query: bands, an optional 2D grid, key-only columns and
symmetric global tokens.

:class:`KeySetPattern` is the general form of :class:`~swattn.sw.spec.pattern.HybridPattern`
(one dilated window plus globals is one band plus globals, :meth:`KeySetPattern.from_hybrid`).
Query ``i`` of ``n`` attends to the union of

* each band ``Band(start, count, step)``: keys ``i + start + k * step`` for ``k = 0 .. count-1``,
  clipped to ``0 .. n-1``;
* with a grid ``Grid(width, radius)``, only those band keys whose column (index mod ``width``)
  is within ``radius`` of the query's column: a k x k window on an H x W token grid (Vision
  Longformer) is ``k`` bands of ``k`` keys, one per row of the window, with ``Grid(W, k // 2)``,
  exact at the image's left and right edges (no wrap into the neighbouring rows);
* every key-only column (keys every query attends, with no row of their own);
* every global token; a global query attends to every key.

It is a set: a key reached more than once (overlapping bands, a column inside a band, a global
that is also a column) counts once. The golden model's general form,
:func:`swattn.sw.golden.attention_keys`, and the float reference
(:func:`swattn.sw.golden.reference_masked`) take it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pattern import HybridPattern, PatternError, _check_int, token_indices


@dataclass(frozen=True)
class Band:
    """Keys ``i + start + k * step``, ``k = 0 .. count-1``, of query ``i``."""

    start: int
    count: int
    step: int = 1

    def __post_init__(self):
        _check_int("band start", self.start, -(1 << 31), (1 << 31) - 1)
        _check_int("band count", self.count, 1, None)
        _check_int("band step", self.step, 1, None)


@dataclass(frozen=True)
class Grid:
    """Band keys are kept only within ``radius`` columns of the query on a grid ``width`` wide."""

    width: int
    radius: int

    def __post_init__(self):
        _check_int("grid width", self.width, 1, None)
        _check_int("grid radius", self.radius, 0, None)


@dataclass(frozen=True)
class KeySetPattern:
    """Which keys each query attends to (module docstring). ``columns`` and ``globals_`` are
    kept sorted; each index must lie in ``0 .. n-1`` and appear once in its list."""

    n: int
    bands: tuple[Band, ...] = ()
    grid: Grid | None = None
    columns: tuple[int, ...] = ()
    globals_: tuple[int, ...] = ()

    def __post_init__(self):
        _check_int("n", self.n, 1, None)
        object.__setattr__(self, "bands", tuple(self.bands))
        for b in self.bands:
            if not isinstance(b, Band):
                raise PatternError(f"bands: {b!r} is not a Band(start, count, step)")
        if self.grid is not None and not isinstance(self.grid, Grid):
            raise PatternError(f"grid: {self.grid!r} is not a Grid(width, radius)")
        object.__setattr__(self, "columns",
                           token_indices(self.columns, self.n, "column", "columns"))
        object.__setattr__(self, "globals_",
                           token_indices(self.globals_, self.n, "global", "globals"))

    @classmethod
    def from_hybrid(cls, p: HybridPattern) -> "KeySetPattern":
        """The same key sets as a hybrid pattern: its window is one band."""
        band = Band(-p.left * p.dilation, p.left + p.right + 1, p.dilation)
        return cls(p.n, (band,), None, (), p.globals_)

    # --- the key sets -------------------------------------------------------------------------
    def allowed(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Broadcasting test: does query ``rows`` attend to key ``cols``?"""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        diff = cols - rows
        hit = np.zeros(np.broadcast(rows, cols).shape, dtype=bool)
        for b in self.bands:
            off = diff - b.start
            hit |= (off >= 0) & (off % b.step == 0) & (off // b.step < b.count)
        if self.grid is not None:
            w = self.grid.width
            hit &= np.abs(cols % w - rows % w) <= self.grid.radius
        extra = np.zeros(self.n, dtype=bool)
        extra[list(self.columns) + list(self.globals_)] = True
        glob = np.zeros(self.n, dtype=bool)
        glob[list(self.globals_)] = True
        return hit | extra[cols] | glob[rows]

    def mask(self) -> np.ndarray:
        """The dense n x n boolean mask (for tests and small n)."""
        r = np.arange(self.n)
        return self.allowed(r[:, None], r[None, :])

    def row_keys(self, row: int) -> np.ndarray:
        """Sorted key indices of one query row."""
        if not 0 <= row < self.n:
            raise PatternError(f"row {row} is out of range: allowed 0..{self.n - 1}")
        return np.flatnonzero(self.allowed(np.int64(row), np.arange(self.n)))

    def row_counts(self) -> np.ndarray:
        """Number of keys each query attends to (rows of the mask, a block at a time)."""
        out = np.empty(self.n, dtype=np.int64)
        cols = np.arange(self.n)
        for r0 in range(0, self.n, 256):
            rows = np.arange(r0, min(r0 + 256, self.n))
            out[rows] = self.allowed(rows[:, None], cols[None, :]).sum(axis=1)
        return out

    def pairs(self) -> int:
        """Total number of (query, key) pairs computed."""
        return int(self.row_counts().sum())

    def sparsity(self) -> float:
        """Fraction of the n^2 query-key pairs that are not computed."""
        return 1.0 - self.pairs() / float(self.n) ** 2

    @property
    def global_array(self) -> np.ndarray:
        return np.asarray(self.globals_, dtype=np.int64)


def window_2d(height: int, width: int, k: int, globals_=(), columns=()) -> KeySetPattern:
    """A k x k window (k odd) on a height x width token grid, tokens row by row: ``k`` bands of
    ``k`` keys and ``Grid(width, k // 2)`` (Vision Longformer's local attention)."""
    _check_int("k", k, 1, None)
    if k % 2 == 0:
        raise PatternError(f"k = {k}: allowed an odd window size (centred on the query)")
    r = k // 2
    bands = tuple(Band(dy * width - r, k, 1) for dy in range(-r, r + 1))
    return KeySetPattern(height * width, bands, Grid(width, r), tuple(columns), tuple(globals_))
