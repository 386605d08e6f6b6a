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

from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class EngineForm:
    """A key-set pattern in the terms the engine's configuration takes.

    The window (``left``, ``right``, ``dilation``: keys ``i + o * dilation``, ``o = -left ..
    right``) is the band through the query; ``bands`` are the other bands as ``(start,
    count)`` in window steps (keys ``i + (start + k) * dilation``, ``k < count``), in ascending
    order, each entirely below or above the window and above the band before it; ``columns``
    are key-only columns in ascending order, none of them a global token; ``globals_`` as in
    :class:`~swattn.sw.spec.pattern.HybridPattern`; ``grid``, ``(width, radius)`` or None: band
    keys (the window's included) are kept only within ``radius`` columns of the query on a grid
    ``width`` tokens wide (dilation 1, ``width`` <= n, ``radius`` < ``width``). Every key-set
    pattern whose bands share one step, start at multiples of it and include one through the
    query (with a grid, step 1) has exactly one engine form (:meth:`from_pattern`): overlapping
    or touching bands of one residue are merged, a column that is also a global is left out
    (the global is a key of every query already), and a grid's width is taken down to n and its
    radius to width - 1 (the same columns), so the key sets are the same.
    """

    n: int
    left: int
    right: int
    dilation: int = 1
    bands: tuple[tuple[int, int], ...] = ()
    columns: tuple[int, ...] = ()
    globals_: tuple[int, ...] = ()
    grid: tuple[int, int] | None = None

    def __post_init__(self):
        _check_int("n", self.n, 1, None)
        _check_int("left", self.left, 0, None)
        _check_int("right", self.right, 0, None)
        _check_int("dilation", self.dilation, 1, None)
        bands = tuple((int(s), int(c)) for s, c in self.bands)
        object.__setattr__(self, "bands", bands)
        prev = None
        for j, (s, c) in enumerate(bands):
            _check_int(f"band {j} count", c, 1, None)
            end = s + c - 1
            if not (end < -self.left or s > self.right):
                raise PatternError(
                    f"band {j} (start {s}, count {c}) overlaps the window {-self.left}.."
                    f"{self.right}: bands must lie entirely below or above it")
            if prev is not None and s <= prev:
                raise PatternError(
                    f"band {j} (start {s}, count {c}) does not start above band {j - 1}'s last "
                    f"step {prev}: bands must be in ascending order and disjoint")
            prev = end
        cols = tuple(int(x) for x in self.columns)
        if list(cols) != sorted(set(cols)):
            raise PatternError(f"columns {list(cols)} must be in ascending order, each once")
        object.__setattr__(self, "columns", token_indices(cols, self.n, "column", "columns"))
        object.__setattr__(self, "globals_",
                           token_indices(self.globals_, self.n, "global", "globals"))
        both = sorted(set(self.columns) & set(self.globals_))
        if both:
            raise PatternError(f"columns {both} are also global tokens: leave them out of the "
                               f"columns (a global is a key of every query)")
        if self.grid is not None:
            g = self.grid
            if not (isinstance(g, (tuple, list)) and len(g) == 2):
                raise PatternError(f"grid: {g!r} is not a (width, radius) pair")
            w, r = int(g[0]), int(g[1])
            _check_int("grid width", w, 1, self.n)
            _check_int("grid radius", r, 0, w - 1)
            if self.dilation != 1:
                raise PatternError(f"grid {w}:{r} with dilation {self.dilation}: the engine's "
                                   f"grid takes bands of step 1 (dilation 1)")
            object.__setattr__(self, "grid", (w, r))

    @property
    def global_array(self) -> np.ndarray:
        return self.hybrid().global_array

    def is_global(self) -> np.ndarray:
        """Boolean vector of length n: which tokens are global."""
        return self.hybrid().is_global()

    def pairs(self) -> int:
        """Total number of (query, key) pairs computed."""
        return self.keyset().pairs()

    @property
    def reach(self) -> int:
        """The farthest key from its query, in tokens: what the engine's ring must hold."""
        steps = [self.left, self.right] + [abs(x) for s, c in self.bands for x in (s, s + c - 1)]
        return max(steps) * self.dilation

    def keyset(self) -> KeySetPattern:
        d = self.dilation
        bands = [Band(-self.left * d, self.left + self.right + 1, d)]
        bands += [Band(s * d, c, d) for s, c in self.bands]
        grid = None if self.grid is None else Grid(*self.grid)
        return KeySetPattern(self.n, tuple(sorted(bands, key=lambda b: b.start)), grid,
                             self.columns, self.globals_)

    def hybrid(self) -> HybridPattern:
        """The window and globals alone (the form with no bands and no columns is exactly it)."""
        return HybridPattern(self.n, self.left, self.right, self.dilation, self.globals_)

    def check(self, limits) -> None:
        """PatternError naming the first field over an engine's ``limits``
        (:class:`~swattn.sw.spec.pattern.PatternLimits`)."""
        lim = limits
        if lim.max_n is not None and self.n > lim.max_n:
            raise PatternError(f"n = {self.n} is out of range: allowed 1..{lim.max_n}")
        if lim.max_dilation is not None and self.dilation > lim.max_dilation:
            raise PatternError(f"dilation (the bands' step) = {self.dilation} is out of range: "
                               f"allowed 1..{lim.max_dilation}")
        if lim.max_radius is not None and self.reach > lim.max_radius:
            raise PatternError(f"the bands reach {self.reach} tokens from the query: allowed "
                               f"0..{lim.max_radius} (the engine's max_radius)")
        nb = 1 + len(self.bands)
        if lim.max_bands is not None and nb > lim.max_bands:
            raise PatternError(f"bands: {nb} with the window, allowed 1..{lim.max_bands}")
        if lim.max_columns is not None and len(self.columns) > lim.max_columns:
            raise PatternError(f"columns: {len(self.columns)} given, allowed "
                               f"0..{lim.max_columns}")
        if lim.max_globals is not None and len(self.globals_) > lim.max_globals:
            raise PatternError(f"globals: {len(self.globals_)} given, allowed "
                               f"0..{lim.max_globals} global tokens")
        if self.grid is not None and getattr(lim, "grid", None) is False:
            raise PatternError(f"grid {self.grid[0]}:{self.grid[1]}: this engine has no 2D grid "
                               f"(built without grid = True)")

    @classmethod
    def from_hybrid(cls, p: HybridPattern) -> "EngineForm":
        return cls(p.n, p.left, p.right, p.dilation, (), (), p.globals_)

    @classmethod
    def from_pattern(cls, p) -> "EngineForm":
        """The engine form of a :class:`KeySetPattern` (or a HybridPattern); PatternError
        saying why when it has none."""
        if isinstance(p, EngineForm):
            return p
        if isinstance(p, HybridPattern):
            return cls.from_hybrid(p)
        steps = {b.step for b in p.bands if b.count > 1}
        if len(steps) > 1:
            raise PatternError(f"band steps {sorted(steps)}: the engine's bands share one step")
        d = steps.pop() if steps else 1
        for b in p.bands:
            if b.start % d:
                raise PatternError(f"band start {b.start} is not a multiple of the bands' step "
                                   f"{d}: the engine's bands start at whole steps")
        # merge bands of the same residue class that overlap or touch, in window steps
        spans = sorted((b.start // d, b.start // d + b.count - 1) for b in p.bands)
        merged: list[list[int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        window = [s for s in merged if s[0] <= 0 <= s[1]]
        if not window:
            raise PatternError("no band reaches the query itself (offset 0): the engine's window "
                               "is the band through the query")
        lo, hi = window[0]
        bands = tuple((a, b - a + 1) for a, b in merged if [a, b] != [lo, hi])
        columns = tuple(c for c in p.columns if c not in set(p.globals_))
        grid = None
        if p.grid is not None:
            if d != 1:
                raise PatternError(f"grid {p.grid.width}:{p.grid.radius} with bands of step {d}: "
                                   f"the engine's grid takes bands of step 1")
            w = min(p.grid.width, p.n)
            grid = (w, min(p.grid.radius, w - 1))
        return cls(p.n, -lo, hi, d, bands, columns, p.globals_, grid)


def pattern_to_json(p) -> dict:
    """A pattern as JSON: ``{"n", "left", "right", "dilation", "bands": [[start, count], ...],
    "columns": [...], "globals": [...]}``, bands in window steps at the window's dilation (as
    :class:`EngineForm` holds them), plus ``"grid": [width, radius]`` for a KeySetPattern with a
    grid. ``p``: a HybridPattern, an EngineForm, or a KeySetPattern that has an engine form once
    its grid is set aside (PatternError saying why otherwise). :func:`pattern_from_json` reads it
    back (an EngineForm with its grid, or a KeySetPattern where the grid's bands have a step
    other than 1)."""
    grid = None
    if isinstance(p, KeySetPattern) and p.grid is not None:
        # (a grid over bands of a step other than 1 has no engine form: written beside it)
        grid = [p.grid.width, p.grid.radius]
        p = replace(p, grid=None)
    f = EngineForm.from_pattern(p)
    grid = grid or (None if f.grid is None else list(f.grid))
    out = {"n": f.n, "left": f.left, "right": f.right, "dilation": f.dilation,
           "bands": [list(b) for b in f.bands], "columns": list(f.columns),
           "globals": list(f.globals_)}
    if grid is not None:
        out["grid"] = grid
    return out


def pattern_from_json(obj, ignore=("coverage", "keys_per_query", "budget")
                      ) -> "EngineForm | KeySetPattern":
    """The pattern of :func:`pattern_to_json`'s JSON (a dict as ``json.load`` gives it): an
    EngineForm (with its ``grid``), or a KeySetPattern where a grid goes with a dilation.
    ``n``, ``left`` and ``right`` are
    required; ``dilation`` defaults to 1, ``bands``, ``columns`` and ``globals`` to none; the
    keys in ``ignore`` are read past (by default those a mapping writes beside its pattern,
    :meth:`swattn.sw.mapper.Mapping.as_dict`). PatternError naming the key and what it
    allows."""
    if not isinstance(obj, dict):
        raise PatternError(f"expected a JSON object with keys n, left, right (dilation, bands, "
                           f"columns, globals, grid optional), got {type(obj).__name__}")
    known = ("n", "left", "right", "dilation", "bands", "columns", "globals", "grid")
    extra = sorted(set(obj) - set(known) - set(ignore))
    if extra:
        raise PatternError(f"unknown key {extra[0]!r}: allowed {', '.join(known)}")
    missing = [k for k in ("n", "left", "right") if k not in obj]
    if missing:
        raise PatternError(f"{missing[0]}: missing (n, left and right are required)")

    def ints(key, value, shape):
        ok = isinstance(value, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in value)
        if not ok:
            raise PatternError(f"{key}: {value!r} is not {shape}")
        return value

    bands = obj.get("bands", [])
    if not isinstance(bands, list):
        raise PatternError(f"bands: {bands!r} is not a list of [start, count] pairs")
    for b in bands:
        if not (isinstance(b, list) and len(b) == 2):
            raise PatternError(f"bands: {b!r} is not a [start, count] pair (in window steps)")
        ints("bands", b, "a [start, count] pair of integers")
    columns = ints("columns", obj.get("columns", []), "a list of token indices")
    globals_ = ints("globals", obj.get("globals", []), "a list of token indices")
    grid = obj.get("grid")
    if grid is not None:
        grid = ints("grid", grid, "a [width, radius] pair of integers")
        if len(grid) != 2:
            raise PatternError(f"grid: {obj['grid']!r} is not a [width, radius] pair of integers")
        Grid(*grid)  # (its own checks)
    form = EngineForm(obj["n"], obj["left"], obj["right"], obj.get("dilation", 1),
                      tuple(tuple(b) for b in bands), tuple(columns), tuple(globals_))
    if grid is None:
        return form
    ks = replace(form.keyset(), grid=Grid(*grid))
    # the engine form where the grid's bands have step 1; else the key set itself
    return ks if form.dilation != 1 else EngineForm.from_pattern(ks)
