"""The hybrid sparse-attention pattern: a dilated sliding window plus global tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class PatternError(ValueError):
    """A pattern field is out of its allowed range; the message names field, value and range."""


@dataclass(frozen=True)
class PatternLimits:
    """Limits an engine (or a user) imposes on patterns; ``None`` means unlimited.

    ``max_radius`` bounds the reach of the window on each side in tokens, dilation * radius, since
    that is what the engine's key buffer must hold. ``max_dilation`` and ``max_globals`` bound the
    dilation and the number of global tokens; ``max_n`` the sequence length; ``max_bands`` the
    bands of a key-set pattern (the window is one) and ``max_columns`` its key-only columns
    (:class:`swattn.sw.spec.keyset.EngineForm`); ``grid`` whether a 2D grid is allowed
    (``None``: it is).
    """

    max_n: int | None = None
    max_radius: int | None = None
    max_dilation: int | None = None
    max_globals: int | None = None
    max_bands: int | None = None
    max_columns: int | None = None
    grid: bool | None = None


@dataclass(frozen=True)
class HybridPattern:
    """Which keys each query attends to, for a sequence of ``n`` tokens.

    Query ``i`` sees key ``i + o * dilation`` for every ``o`` in ``-left .. right`` that lies in
    ``0 .. n-1`` (the window), plus every global token. A global query sees every key.

    Parameters
    ----------
    n : sequence length, >= 1.
    left, right : window radius on each side in window steps, >= 0 (``right = 0`` is causal).
    dilation : distance between window keys in tokens, >= 1.
    globals_ : indices of global tokens, unique, each in ``0 .. n-1``. Kept sorted.
    limits : optional :class:`PatternLimits` checked at construction.
    """

    n: int
    left: int
    right: int
    dilation: int = 1
    globals_: tuple[int, ...] = ()
    limits: PatternLimits = field(default_factory=PatternLimits, compare=False, repr=False)

    def __post_init__(self):
        lim = self.limits
        _check_int("n", self.n, 1, lim.max_n)
        _check_int("left", self.left, 0, None)
        _check_int("right", self.right, 0, None)
        _check_int("dilation", self.dilation, 1, lim.max_dilation)
        if lim.max_radius is not None:
            for side in ("left", "right"):
                reach = getattr(self, side) * self.dilation
                if reach > lim.max_radius:
                    raise PatternError(
                        f"{side} = {getattr(self, side)} with dilation {self.dilation} reaches "
                        f"{reach} tokens: allowed reach 0..{lim.max_radius} (dilation * radius)")
        g = tuple(int(x) for x in np.asarray(self.globals_, dtype=np.int64).ravel())
        if lim.max_globals is not None and len(g) > lim.max_globals:
            raise PatternError(
                f"globals: {len(g)} given, allowed 0..{lim.max_globals} global tokens")
        object.__setattr__(self, "globals_", token_indices(g, self.n, "global",
                                                           "global indices"))

    # --- derived views ------------------------------------------------------------------------
    @property
    def global_array(self) -> np.ndarray:
        return np.asarray(self.globals_, dtype=np.int64)

    def is_global(self) -> np.ndarray:
        """Boolean vector of length n: which tokens are global."""
        flags = np.zeros(self.n, dtype=bool)
        flags[self.global_array] = True
        return flags

    def window_bounds(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row, the first and last window step ``o`` that stays inside the sequence."""
        rows = np.asarray(rows, dtype=np.int64)
        d = self.dilation
        o_lo = np.maximum(-self.left, -(rows // d))
        o_hi = np.minimum(self.right, (self.n - 1 - rows) // d)
        return o_lo, o_hi

    def in_window(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Broadcasting test: is key ``cols`` in the window of query ``rows``?"""
        diff = np.asarray(cols, dtype=np.int64) - np.asarray(rows, dtype=np.int64)
        d = self.dilation
        return (diff % d == 0) & (diff >= -self.left * d) & (diff <= self.right * d)

    def allowed(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Broadcasting test: does query ``rows`` attend to key ``cols``?"""
        flags = self.is_global()
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        return self.in_window(rows, cols) | flags[rows] | flags[cols]

    def mask(self) -> np.ndarray:
        """The dense n x n boolean mask (for tests and small n)."""
        r = np.arange(self.n)
        return self.allowed(r[:, None], r[None, :])

    def row_counts(self) -> np.ndarray:
        """Number of keys each query attends to, computed without the dense mask."""
        rows = np.arange(self.n, dtype=np.int64)
        o_lo, o_hi = self.window_bounds(rows)
        counts = np.maximum(o_hi - o_lo + 1, 0)
        g = self.global_array
        if g.size:
            # globals outside the window add one each; O(n * G) with G small
            counts = counts + (~self.in_window(rows[:, None], g[None, :])).sum(axis=1)
            counts[g] = self.n
        return counts

    def pairs(self) -> int:
        """Total number of (query, key) pairs computed."""
        return int(self.row_counts().sum())

    def row_keys(self, row: int) -> np.ndarray:
        """Sorted key indices of one query row."""
        if not 0 <= row < self.n:
            raise PatternError(f"row {row} is out of range: allowed 0..{self.n - 1}")
        if row in self.globals_:
            return np.arange(self.n)
        o_lo, o_hi = self.window_bounds(np.array([row]))
        win = row + np.arange(o_lo[0], o_hi[0] + 1) * self.dilation
        return np.union1d(win, self.global_array)

    def sparsity(self) -> float:
        """Fraction of the n^2 query-key pairs that are not computed."""
        return 1.0 - self.pairs() / float(self.n) ** 2


def token_indices(values, n: int, one: str, many: str) -> tuple[int, ...]:
    """``values`` as sorted token indices, each in ``0 .. n-1`` and given once; PatternError
    naming the index (``one``: "global index 12 is out of range") or the repeated ones
    (``many``: "global indices must be unique")."""
    vals = tuple(int(x) for x in np.asarray(values, dtype=np.int64).ravel())
    for x in vals:
        if not 0 <= x < n:
            raise PatternError(f"{one} index {x} is out of range: allowed 0..{n - 1}")
    if len(set(vals)) != len(vals):
        dup = sorted({x for x in vals if vals.count(x) > 1})
        raise PatternError(f"{many} must be unique: {dup} given more than once")
    return tuple(sorted(vals))


def _check_int(name: str, value, lo: int, hi: int | None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PatternError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f"{lo}.." + (str(hi) if hi is not None else "")
        raise PatternError(f"{name} = {value} is out of range: allowed {allowed}")
