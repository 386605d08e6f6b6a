"""From a predicted mask (or attention weights) to an engine configuration.

The engine runs one pattern per head: a window of ``left`` and ``right`` steps of ``dilation``
tokens around each query plus up to G global tokens (a global query sees every key, every query
sees a global key), a :class:`~swattn.sw.spec.pattern.HybridPattern`; an engine generated with
band and column fields (``max_bands > 1``, ``max_columns > 0``) also takes more bands at the
window's step and key-only columns, an :class:`~swattn.sw.spec.keyset.EngineForm`.
:func:`map_to_pattern` picks the pattern that covers the most of a weight matrix, the predicted
mask's entries (each 1) or attention probabilities, while computing at most ``budget`` keys per
query on average (``pattern.pairs() / n <= budget``), and reports the fraction of the weight it
covers. It returns a HybridPattern whenever the winner has no band beside the window and no
column (always so under the default limits, one band and no column), else an EngineForm; both
have ``n``, ``left``, ``right``, ``dilation`` and ``globals_``, and :func:`keyset` gives either
as a :class:`~swattn.sw.spec.keyset.KeySetPattern` (its ``mask()``, ``pairs()``, and the golden
model's :func:`~swattn.sw.golden.attention_keys`).

The search, for each dilation 1..max_dilation and each global count 0..max_globals:
  * the window: of all (left, right) whose pairs fit what the globals leave of the budget, the
    one covering the most weight (every pair at once, from prefix sums of the weight along the
    diagonals);
  * the globals: greedily, the token whose row and column add the most weight not yet covered
    (exact marginal gains, updated in O(n) after each pick);
  * with globals, windows that could fit (globals overlap the window, so their cost is only
    bounded until they are picked) are tried best bound first, the bound being the window's
    weight plus the g largest gains a global could bring with it; each try picks its globals
    and counts pairs exactly, and the search stops when no untried bound beats the best found.
With more than one band or any column allowed, key-set candidates join these, for each
dilation: starting from the query's own key (the diagonal), and again from the best hybrid
candidate, a greedy fill adds one item at a time, the one bringing the most uncovered weight per
pair it adds that still fits the budget: a diagonal at the dilation's step (widening the window
or a band, or starting a new band while fewer than ``max_bands`` exist), a key-only column (up
to ``max_columns``) or a global token (up to ``max_globals``), every overlap counted once. The
best candidate by covered weight (then fewer pairs) wins; the hybrid candidates are always among
them, so the key-set search never covers less than the window and globals alone. With a
``grid_width`` (tokens that are an image read row by row), 2D windows on that grid, with greedy
globals, join the candidates (:func:`_grid_search`; a k x k window on the image maps exactly)
and win where they cover more (then where they compute fewer pairs). Without
globals, bands or columns the result is the optimum over all windows and dilations searched; the
greedy choices make it a good configuration, not a proven optimum, otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spec.keyset import EngineForm, KeySetPattern
from .spec.pattern import HybridPattern, PatternLimits

DEFAULT_MAX_DILATION = 4  #: dilations tried when the limits do not bound them
DEFAULT_MAX_GLOBALS = 4  #: global tokens allowed when the limits do not bound them
DEFAULT_MAX_BANDS = 1  #: bands (the window is one) where neither argument nor limits say
DEFAULT_MAX_COLUMNS = 0  #: key-only columns where neither argument nor limits say


def keyset(pattern) -> KeySetPattern:
    """A mapped pattern (HybridPattern or EngineForm) as a KeySetPattern (for
    :func:`swattn.sw.golden.attention_keys`)."""
    if isinstance(pattern, KeySetPattern):
        return pattern
    return EngineForm.from_pattern(pattern).keyset()


def pattern_mask(pattern) -> np.ndarray:
    """The dense n x n mask of a mapped pattern (HybridPattern or EngineForm)."""
    if isinstance(pattern, (HybridPattern, KeySetPattern)):
        return pattern.mask()
    return keyset(pattern).mask()


@dataclass(frozen=True)
class Mapping:
    """A mapped configuration. ``pattern``: a HybridPattern, or an EngineForm where the winner
    has bands beside the window or columns; ``coverage``: covered weight / total weight (0..1);
    ``keys_per_query``: pairs / n (``keyset(pattern).pairs() / n``); ``budget``: the budget it
    was mapped under."""

    pattern: HybridPattern | EngineForm
    coverage: float
    keys_per_query: float
    budget: float

    @property
    def sparsity(self) -> float:
        return 1.0 - self.keys_per_query / self.pattern.n

    def as_dict(self) -> dict:
        """The pattern in the JSON form of :func:`swattn.sw.spec.keyset.pattern_to_json` (what
        ``--pattern FILE`` reads), with ``coverage``, ``keys_per_query`` and ``budget``."""
        from .spec.keyset import pattern_to_json

        return {**pattern_to_json(self.pattern), "coverage": self.coverage,
                "keys_per_query": self.keys_per_query, "budget": self.budget}


class _Diagonals:
    """Weights re-indexed by offset o = j - i: row view B[i, o] = W[i, i+o], column view
    C[j, o] = W[j-o, j] (zero outside the matrix); offsets stored at index o + n - 1."""

    def __init__(self, w: np.ndarray):
        n = w.shape[0]
        self.n = n
        i, j = np.indices((n, n))
        off = j - i + n - 1
        self.rows = np.zeros((n, 2 * n - 1))
        self.rows[i, off] = w
        self.cols = np.zeros((n, 2 * n - 1))
        self.cols[j, off] = w
        self.diag = self.rows.sum(axis=0)  # weight on each diagonal
        self._prefix = {}

    def prefix(self, dil: int, reach: int):
        """Per row and per column, prefix sums of the weight over the offsets -reach..reach
        steps of ``dil`` (index i + 1: through offset i - reach), kept for the dilation's
        searches with any number of globals."""
        key = (dil, reach)
        if key not in self._prefix:
            idx = np.arange(-reach, reach + 1) * dil + self.n - 1
            zero = np.zeros((self.n, 1))
            self._prefix[key] = tuple(np.concatenate([zero, np.cumsum(a[:, idx], axis=1)], axis=1)
                                      for a in (self.rows, self.cols))
        return self._prefix[key]

    def window_sums(self, offsets: np.ndarray):
        """Per row and per column, the weight inside the window of the given offsets."""
        idx = offsets + self.n - 1
        return self.rows[:, idx].sum(axis=1), self.cols[:, idx].sum(axis=1)


class _Windows:
    """Covered weight and pair count of every window (left, right) of one dilation, as
    (reach+1) x (reach+1) arrays indexed [left, right]: prefix sums over the diagonals."""

    def __init__(self, diag: np.ndarray, n: int, dil: int, reach: int, cap: float):
        # no window reaching further than the cheapest one-sided window that fits can fit
        side = np.cumsum(np.maximum(n - np.arange(reach + 1) * dil, 0))
        reach = int(min(reach, max(np.searchsorted(side, cap, side="right") - 1, 0)))
        o = np.arange(-reach, reach + 1)
        cum = np.concatenate([[0.0], np.cumsum(diag[o * dil + n - 1])])
        steps = np.arange(reach + 1)
        # window -left..right covers indices reach-left .. reach+right of the offsets
        self.mass = cum[reach + steps[None, :] + 1] - cum[reach - steps[:, None]]
        side = side[:reach + 1]  # pairs of the offsets 0..x over all rows
        self.pairs = side[:, None] + side[None, :] - n
        self.reach = reach
        # windows no other window beats with as much weight for as few pairs (flat indices)
        m, p = self.mass.ravel(), self.pairs.ravel()
        order = np.lexsort((-m, p))
        prev = np.concatenate([[-np.inf], np.maximum.accumulate(m[order])[:-1]])
        self.frontier = np.sort(order[m[order] > prev])

    def best(self, cap: float):
        """(left, right, mass, pairs) of the heaviest window with at most ``cap`` pairs."""
        ok = self.pairs <= cap
        if not ok.any():
            return None
        key = np.where(ok, self.mass, -np.inf)
        top = key.max()
        # among the heaviest (ties), the cheapest
        cand = np.where(ok & (key >= top), self.pairs, np.iinfo(np.int64).max)
        left, right = np.unravel_index(int(np.argmin(cand)), cand.shape)
        return int(left), int(right), float(self.mass[left, right]), int(self.pairs[left, right])


def _greedy_globals(w: np.ndarray, row_u: np.ndarray, col_u: np.ndarray, in_win, count: int):
    """Greedy global tokens; row_u/col_u: weight of each row/column outside the window."""
    gain = row_u + col_u  # the diagonal entry is always in the window: no double count
    picked, total = [], 0.0
    n = w.shape[0]
    idx = np.arange(n)
    for _ in range(count):  # loop over globals (a handful), O(n) each
        g = int(np.argmax(gain))
        if not np.isfinite(gain[g]):
            break
        picked.append(g)
        total += float(gain[g])
        # entries of g's row and column that other candidates would have counted again
        u_row = np.where(in_win(g, idx), 0.0, w[g, :])
        u_col = np.where(in_win(idx, g), 0.0, w[:, g])
        gain = gain - u_row - u_col
        gain[picked] = -np.inf
    return picked, total


def map_to_pattern(weights: np.ndarray, budget: float, limits: PatternLimits | None = None,
                   max_dilation: int = DEFAULT_MAX_DILATION,
                   max_globals: int = DEFAULT_MAX_GLOBALS, max_bands: int | None = None,
                   max_columns: int | None = None, grid_width: int | None = None) -> Mapping:
    """The pattern covering the most of ``weights`` within ``budget`` keys per query: a
    HybridPattern, or an EngineForm where bands beside the window or columns cover more.

    Parameters
    ----------
    weights : (n, n) array, nonnegative: a boolean mask (each entry counts 1) or attention
        probabilities / scores (negative values are clipped to 0).
    budget : mean keys per query the pattern may compute, 1..n.
    limits : optional engine limits; ``max_radius``, ``max_dilation``, ``max_globals``,
        ``max_bands`` and ``max_columns`` bound the search, ``max_n`` is checked by the pattern.
    max_dilation, max_globals : search bounds used where ``limits`` leaves them open.
    max_bands, max_columns : bands (the window included) and key-only columns allowed; each the
        smaller of the argument and the limit where both are given, else whichever is given,
        else :data:`DEFAULT_MAX_BANDS` / :data:`DEFAULT_MAX_COLUMNS` (one band, no column: the
        hybrid search alone).
    grid_width : for tokens that are an image read row by row, the image's width W in tokens,
        1..n: 2D windows on that grid join the candidates (:func:`_grid_search`), rows of keys
        ``-up .. down`` of ``2r + 1`` keys each around the query (bands at step 1 with the
        engine's grid ``(W, r)``, ``2r < W``), plus greedy globals; the window's rows count
        against ``max_bands`` only where the argument or the limits give it (else as many rows
        as the budget pays for). None (the default): no grid.
    """
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 1:
        raise ValueError(f"weights must be a square (n, n) array, got shape {w.shape}")
    w = np.maximum(w.astype(np.float64), 0.0)
    n = w.shape[0]
    if not 1 <= budget <= n:
        raise ValueError(f"budget = {budget} keys per query is out of range: allowed 1..{n}")
    limits = limits or PatternLimits()
    if limits.max_dilation is not None:
        max_dilation = min(max_dilation, limits.max_dilation)
    if limits.max_globals is not None:
        max_globals = min(max_globals, limits.max_globals)
    max_globals = min(max_globals, n)
    grid_bands = _bound(max_bands, limits.max_bands, n)
    max_bands = _bound(max_bands, limits.max_bands, DEFAULT_MAX_BANDS)
    max_columns = min(_bound(max_columns, limits.max_columns, DEFAULT_MAX_COLUMNS), n)
    if grid_width is not None:
        if isinstance(grid_width, bool) or int(grid_width) != grid_width \
                or not 1 <= grid_width <= n:
            raise ValueError(f"grid_width = {grid_width!r} is out of range: allowed an integer "
                             f"1..{n} (the image's width in tokens, at most the {n} tokens)")
        if limits.grid is False:
            raise ValueError(f"grid_width = {grid_width}: this engine has no 2D grid (built "
                             "without grid = True)")
    total = float(w.sum())
    dg = _Diagonals(w)
    cap = math.floor(budget * n + 1e-6)  # pairs allowed (the epsilon absorbs rounding)

    best = None
    for dil in range(1, max(max_dilation, 1) + 1):
        reach = (n - 1) // dil
        if limits.max_radius is not None:
            reach = min(reach, limits.max_radius // dil)
        if dil > 1 and reach == 0:
            break

        wins = _Windows(dg.diag, n, dil, reach, cap)
        for g in range(max_globals + 1):
            cand = _fit_window(w, dg, wins, n, dil, g, cap, limits)
            if cand is None:
                continue
            pattern, covered = cand
            pairs = pattern.pairs()
            key = (covered, -pairs)
            if best is None or key > best[0]:
                best = (key, pattern, covered, pairs)
    if best is None:  # budget below what any window needs: the diagonal alone
        pattern = HybridPattern(n, 0, 0, 1, (), limits)
        covered = float(np.trace(w))
        pairs = pattern.pairs()
    else:
        _, pattern, covered, pairs = best
    if max_bands > 1 or max_columns > 0:
        pattern, covered, pairs = _keyset_search(w, dg, pattern, covered, pairs, cap, limits,
                                                 max_dilation, max_globals, max_bands,
                                                 max_columns)
    if grid_width is not None:
        found = _grid_search(w, int(grid_width), cap, limits, grid_bands, max_globals)
        tol = 1e-9 * max(total, 1e-300)
        if found is not None and (found[1] > covered + tol
                                  or (found[1] > covered - tol and found[2] < pairs)):
            pattern, covered, pairs = found
    return Mapping(pattern, covered / total if total > 0 else 1.0, pairs / n, float(budget))


def _grid_search(w, width, cap, limits, max_bands, max_globals, evals: int = 32):
    """The 2D window on a grid ``width`` tokens wide covering the most of ``w`` within ``cap``
    pairs, with up to ``max_globals`` greedy globals: (EngineForm, covered, pairs), or None
    where none fits.

    A window of rows ``-up .. down`` and radius ``r`` (``2r < width``) is the engine form with
    the window ``-r .. r``, bands ``(dy * width - r, 2r + 1)`` for the other rows and the grid
    ``(width, r)``: query ``i`` (row ``i // width``, column ``i % width``) keeps exactly the keys
    whose row differs by ``dy`` in ``-up .. down`` and whose column differs by ``dx`` in
    ``-r .. r`` (a band key that wraps into another row lies ``width - |dx| > r`` columns away,
    and the grid drops it). So each window's weight and pairs are sums over (dy, dx) of the
    weight and count of the token pairs at that row and column difference, every window at once
    from 2D prefix sums. Globals are then added as in the hybrid search, greedily by weight not
    yet covered, to the heaviest windows (at most ``evals`` per global count)."""
    n = w.shape[0]
    r_max = (width - 1) // 2
    if limits.max_radius is not None:
        r_max = min(r_max, limits.max_radius)
    h = -(-n // width)  # rows of the grid (the last one may be short)
    t = np.arange(n)
    row, col = t // width, t % width
    dy = (row[None, :] - row[:, None]) + h - 1
    dx = (col[None, :] - col[:, None]) + width - 1
    shape = (2 * h - 1, 2 * width - 1)
    flat = (dy * shape[1] + dx).ravel()
    mass = np.bincount(flat, w.ravel(), shape[0] * shape[1]).reshape(shape)
    count = np.bincount(flat, None, shape[0] * shape[1]).reshape(shape)

    def prefix(a):
        out = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
        out[1:, 1:] = a.cumsum(0).cumsum(1)
        return out
    pm, pc = prefix(mass), prefix(count)
    ups = np.arange(h)
    cands = []  # (mass, pairs, up, down, r) of each window that fits the limits alone
    for r in range(r_max + 1):
        c0, c1 = width - 1 - r, width + r  # dx -r..r as prefix-sum bounds
        lo = h - 1 - ups[:, None]  # rows -up..down
        hi = h + ups[None, :]

        def rect(p):
            return p[hi, c1] - p[lo, c1] - p[hi, c0] + p[lo, c0]
        m, c = rect(pm), rect(pc)
        up, down = np.meshgrid(ups, ups, indexing="ij")
        bands = np.where(2 * r + 1 == width, 1, up + down + 1)  # touching rows merge
        ok = (c <= cap) & (bands <= max_bands)
        if limits.max_radius is not None:
            ok &= np.maximum(up, down) * width + r <= limits.max_radius
        for a, b in zip(*np.nonzero(ok)):
            cands.append((float(m[a, b]), int(c[a, b]), int(a), int(b), r))
    if not cands:
        return None
    cands.sort(key=lambda x: (-x[0], x[1]))

    def form(up, down, r, globals_=()):
        bands = tuple((d * width - r, 2 * r + 1) for d in range(-up, down + 1) if d)
        f = EngineForm(n, r, r, 1, bands, (), tuple(globals_), (width, r))
        f = EngineForm.from_pattern(f.keyset())  # touching rows merged
        f.check(limits)
        return f
    m0, p0, up, down, r = cands[0]
    best = (form(up, down, r), m0, p0)
    line = w.sum(0) + w.sum(1)
    for g in range(1, max_globals + 1):
        top = float(np.sort(line)[-g:].sum())  # no g globals add more
        for m0, p0, up, down, r in cands[:evals]:
            if m0 + top <= best[1]:
                break
            f = form(up, down, r)
            cov = f.keyset().mask()
            mass0, pairs = m0, p0
            picked = []
            for _ in range(g):
                un = ~cov
                gain = (w * un).sum(1) + (w * un).sum(0) - np.diag(w) * np.diag(un)
                cost = un.sum(1) + un.sum(0) - np.diag(un)
                fits = (cost <= cap - pairs) & (gain > 0)
                fits[picked] = False
                if not fits.any():
                    break
                j = int(np.argmax(np.where(fits, gain, -np.inf)))
                picked.append(j)
                mass0 += float(gain[j])
                pairs += int(cost[j])
                cov[j, :] = cov[:, j] = True
            if len(picked) == g and (mass0, -pairs) > (best[1], -best[2]):
                best = (form(up, down, r, sorted(picked)), mass0, pairs)
    return best


def _bound(arg, limit, default):
    """The smaller of an argument and a limit, either of which may be None (open)."""
    given = [x for x in (arg, limit) if x is not None]
    return min(given) if given else default


class _Fill:
    """A key-set candidate being filled greedily (:func:`_keyset_search`): the cells covered so
    far, and of the cells not yet covered the weight and the count per offset (diagonal), per
    column and per row, kept up to date as cells are covered (O(n) per item)."""

    def __init__(self, w: np.ndarray, dg: _Diagonals, dil: int, steps: int):
        n = w.shape[0]
        self.w, self.n, self.dil, self.steps = w, n, dil, steps
        self.cov = np.zeros((n, n), dtype=bool)
        o = np.arange(-(n - 1), n)
        self.off_w = dg.diag.copy()
        self.off_c = (n - np.abs(o)).astype(np.int64)
        self.col_w, self.col_c = w.sum(0), np.full(n, n, dtype=np.int64)
        self.row_w, self.row_c = w.sum(1), np.full(n, n, dtype=np.int64)
        self.mass, self.pairs = 0.0, 0
        self.chosen = np.zeros(2 * steps + 3, dtype=bool)  # window steps -steps-1..steps+1
        self.runs = 0  # runs of chosen steps: the window and the bands
        self.columns: list[int] = []
        self.globals_: list[int] = []

    def _cover(self, rows: np.ndarray, cols: np.ndarray):
        new = ~self.cov[rows, cols]
        r, c = rows[new], cols[new]
        if not r.size:
            return
        wv = self.w[r, c]
        self.cov[r, c] = True
        n = self.n
        off = c - r + n - 1
        self.off_w -= np.bincount(off, wv, 2 * n - 1)
        self.off_c -= np.bincount(off, None, 2 * n - 1).astype(np.int64)
        self.col_w -= np.bincount(c, wv, n)
        self.col_c -= np.bincount(c, None, n).astype(np.int64)
        self.row_w -= np.bincount(r, wv, n)
        self.row_c -= np.bincount(r, None, n).astype(np.int64)
        self.mass += float(wv.sum())
        self.pairs += int(r.size)

    def add_step(self, k: int):
        o = k * self.dil
        rows = np.arange(max(0, -o), min(self.n, self.n - o))
        self._cover(rows, rows + o)
        i = k + self.steps + 1
        left, right = self.chosen[i - 1], self.chosen[i + 1]
        self.runs += 1 - int(left) - int(right)
        self.chosen[i] = True

    def add_column(self, j: int):
        self._cover(np.arange(self.n), np.full(self.n, j))
        self.columns.append(j)

    def add_global(self, t: int):
        idx = np.arange(self.n)
        self._cover(np.full(self.n, t), idx)
        self._cover(idx, np.full(self.n, t))
        self.globals_.append(t)

    def form(self) -> EngineForm:
        """The engine form of what was chosen."""
        ks = np.flatnonzero(self.chosen) - self.steps - 1
        runs, start = [], None
        for a, b in zip(ks, np.append(ks[1:], ks[-1] + 2)):
            start = a if start is None else start
            if b != a + 1:
                runs.append((int(start), int(a)))
                start = None
        (lo, hi), = [r for r in runs if r[0] <= 0 <= r[1]]
        bands = tuple((a, b - a + 1) for a, b in runs if (a, b) != (lo, hi))
        cols = tuple(sorted(set(self.columns) - set(self.globals_)))
        dil = self.dil if (bands or lo < hi) else 1
        return EngineForm(self.n, -lo, hi, dil, bands, cols, tuple(self.globals_))


def _keyset_search(w, dg, pattern, covered, pairs, cap, limits, max_dilation, max_globals,
                   max_bands, max_columns):
    """The best of the hybrid winner (``pattern``, ``covered``, ``pairs``) and the greedy
    key-set candidates of each dilation (module docstring); (pattern, covered, pairs)."""
    n = w.shape[0]
    best = ((covered, -pairs), pattern, covered, pairs)
    tol = 1e-9 * max(float(w.sum()), 1e-300)  # sums in another order differ in the last bits
    for dil in range(1, max(max_dilation, 1) + 1):
        reach = n - 1
        if limits.max_radius is not None:
            reach = min(reach, limits.max_radius)
        steps = reach // dil
        if dil > 1 and steps == 0:
            break
        seeds = [None]
        if pattern.dilation == dil or pattern.left + pattern.right == 0:
            seeds.append(pattern)
        for seed in seeds:
            fill = _Fill(w, dg, dil, steps)
            if seed is None:
                fill.add_step(0)
            else:
                for k in range(-seed.left, seed.right + 1):
                    fill.add_step(k)
                for t in seed.globals_:
                    fill.add_global(t)
            if fill.pairs > cap:
                continue
            _greedy_fill(fill, cap, max_bands, max_columns, max_globals)
            (mass, neg), key = best[0], (fill.mass, -fill.pairs)
            if key[0] > mass + tol or (key[0] > mass - tol and key[1] > neg):
                best = (key, fill, fill.mass, fill.pairs)
    _, winner, covered, pairs = best
    if isinstance(winner, _Fill):
        form = winner.form()
        form.check(limits)
        winner = form.hybrid() if not (form.bands or form.columns) else form
        if isinstance(winner, HybridPattern):
            winner = HybridPattern(winner.n, winner.left, winner.right, winner.dilation,
                                   winner.globals_, limits)
    return winner, covered, pairs


def _greedy_fill(fill: _Fill, cap: int, max_bands: int, max_columns: int, max_globals: int):
    """Add items to ``fill`` while one fits ``cap`` pairs and brings weight: each time the one
    with the most uncovered weight per added pair (ties: the most weight)."""
    n, dil, steps = fill.n, fill.dil, fill.steps
    ks = np.arange(-steps, steps + 1)
    oidx = ks * dil + n - 1
    tokens = np.arange(n)
    while True:
        room = cap - fill.pairs
        if room <= 0:
            break
        cands = []  # (gain, cost, allowed, kind) per kind: 0 steps, 1 columns, 2 globals
        i = ks + steps + 1
        ok = ~fill.chosen[i]
        if fill.runs >= max_bands:  # only steps next to a chosen one
            ok &= fill.chosen[i - 1] | fill.chosen[i + 1]
        cands.append((fill.off_w[oidx], fill.off_c[oidx], ok, 0))
        if len(fill.columns) < max_columns:
            ok = np.ones(n, dtype=bool)
            ok[fill.columns + fill.globals_] = False
            cands.append((fill.col_w, fill.col_c, ok, 1))
        if len(fill.globals_) < max_globals:
            ok = np.ones(n, dtype=bool)
            ok[fill.globals_] = False
            gain = fill.row_w + fill.col_w - np.where(fill.cov[tokens, tokens], 0.0,
                                                      fill.w[tokens, tokens])
            cost = fill.row_c + fill.col_c - (~fill.cov[tokens, tokens]).astype(np.int64)
            cands.append((gain, cost, ok, 2))
        top = None
        for gain, cost, ok, kind in cands:
            ok = ok & (cost > 0) & (cost <= room) & (gain > 1e-12)
            if not ok.any():
                continue
            dens = np.where(ok, gain / np.maximum(cost, 1), -np.inf)
            d = dens.max()
            j = int(np.argmax(np.where(dens >= d * (1 - 1e-12), gain, -np.inf)))
            key = (float(dens[j]), float(gain[j]))
            if top is None or key > top[0]:
                top = (key, kind, j)
        if top is None:
            break
        _, kind, j = top
        if kind == 0:
            fill.add_step(int(ks[j]))
        elif kind == 1:
            fill.add_column(j)
        else:
            fill.add_global(j)


def _fit_window(w, dg, wins, n, dil, g, cap, limits, evals: int = 64):
    """The window plus g greedy globals covering the most weight within ``cap`` pairs.

    Each window on the weight/pairs frontier that could fit once the globals' overlap with it is
    subtracted (a lower bound on what the globals add in pairs) gets an upper bound on what it
    can cover: its own weight plus the g largest gains a global could bring with that window
    (gains only shrink as globals are picked, so no g globals add more). Windows are tried in
    order of that bound; each try picks its globals greedily and counts its pairs exactly, and
    the search stops when no untried window's bound beats the best found (or after ``evals``
    tries).
    """
    if g == 0:
        win = wins.best(cap)
        if win is None:
            return None
        left, right, mass, _ = win
        return HybridPattern(n, left, right, dil if left + right > 0 else 1, (), limits), mass
    row_total, col_total = w.sum(1), w.sum(0)
    steps = np.arange(wins.reach + 1)
    width = steps[:, None] + steps[None, :] + 1
    # each global adds its row and column, less what the window already holds of them
    lower = wins.pairs + g * (2 * n - g) - 2 * g * width
    cand = np.intersect1d(wins.frontier, np.flatnonzero((lower <= cap).ravel()))
    if cand.size == 0:
        return None
    left_c, right_c = np.unravel_index(cand, wins.mass.shape)
    bound = wins.mass.ravel()[cand] + _global_bound(dg, row_total, col_total, dil, wins.reach,
                                                    left_c, right_c, g)
    bound = np.minimum(bound, float(w.sum()))
    order = np.lexsort((-wins.mass.ravel()[cand], -bound))
    best = None
    for k in order[:evals]:  # a bounded number of exact tries
        if best is not None and bound[k] <= best[1]:
            break
        left, right = int(left_c[k]), int(right_c[k])
        offsets = np.arange(-left, right + 1) * dil
        win_row, win_col = dg.window_sums(offsets)

        def in_win(rows, cols):
            d = np.asarray(cols) - np.asarray(rows)
            return (d % dil == 0) & (d >= -left * dil) & (d <= right * dil)
        picked, gain = _greedy_globals(w, row_total - win_row, col_total - win_col, in_win, g)
        if len(picked) < g:
            continue
        pat = HybridPattern(n, left, right, dil if left + right > 0 else 1, tuple(picked),
                            limits)
        if pat.pairs() <= cap:
            total = float(wins.mass[left, right]) + gain
            if best is None or total > best[1]:
                best = (pat, total)
    return best


def _global_bound(dg, row_total, col_total, dil, reach, left, right, g, block: int = 1 << 20):
    """For each window (left[i], right[i]): the sum of the g largest row + column weights
    outside it, an upper bound on what g globals add to it."""
    n = dg.n
    cum_r, cum_c = dg.prefix(dil, reach)
    out = np.empty(len(left))
    per = max(1, block // n)  # windows per block: bounds the (windows, n) temporaries
    for s in range(0, len(left), per):
        lo, hi = reach - left[s:s + per], reach + right[s:s + per] + 1
        outside = (row_total[None, :] - (cum_r[:, hi] - cum_r[:, lo]).T
                   + col_total[None, :] - (cum_c[:, hi] - cum_c[:, lo]).T)
        k = min(g, n)
        out[s:s + per] = np.partition(outside, n - k, axis=1)[:, n - k:].sum(1)
    return out


def map_masks(masks: np.ndarray, budget: float | None = None, **kw) -> list[Mapping]:
    """Map each head's mask of (heads, n, n); the budget defaults to each mask's own keys per
    query, so the mapped pattern computes about as much as the prediction."""
    out = []
    for m in masks:
        b = budget if budget is not None else max(float(m.sum()) / m.shape[0], 1.0)
        out.append(map_to_pattern(m, b, **kw))
    return out
