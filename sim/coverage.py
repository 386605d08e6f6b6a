"""Functional coverage of the engine's configuration space, from job lists and their results.

A job counts towards its bins only if it passed. Bins (each named ``group: bin``):

* ``n``: 1, small (2..4), window-sized (5 .. 2 x span), several windows (> 2 x span), where the
  span is the window's extent ``(left + right) x dilation + 1``.
* ``radius vs n``: no window, window clipped at the edges only (reach < n - 1), window covering the
  whole sequence (reach >= n - 1), reach at ``max_radius``.
* ``dilation vs radius``: 1, > 1 with a window, > 1 without one, ``max_dilation``, a dilated
  reach of exactly ``max_radius``.
* ``globals``: 0, 1, between, ``max_globals``; a global at the first token, at the last, two
  adjacent, every token global; on engines with paired max passes (more than one unit), a max
  pass of two groups and one of a lone group (an odd number of groups).
* ``window shape``: causal (right = 0), anti-causal (left = 0), symmetric, asymmetric.
* ``backpressure``: idle-input probability x output-stall probability, each 0, 0.2 or 0.6 (not
  on the serial engine, which reads its buffers).
* ``bands`` (engines with bands beside the window): none, one, ``max_bands - 1``; below and
  above the window; touching the window, touching each other; clipped away for some rows (no
  key of theirs within 0..n-1); reaching past n - 1 from row 0.
* ``columns`` (engines with key-only columns): 0, 1, ``max_columns``; at the first token, at
  the last; next to a global; a column that is a key of some row's window or band as well
  (counted once).
* ``grid`` (engines with the 2D grid): none; width 1, width n, a width not dividing n; radius
  0, radius width - 1; a k x k window on an image; a band key cut at the grid's left edge (its
  column left of the query's by more than the radius: the row above's far end) and at its right
  edge.
* ``outcome``: every ``regs.Error`` code the engine has (NONE from normal jobs, the others from
  refused configurations, overlapping bands and a column equal to a global among them, and
  starts while busy) and a reset in the middle of a job.
* ``busy start``: a second start while the first job runs, in each cycle from the one after the
  accepted start to ``max_globals + 9`` cycles after it (the checks, job_init and the first
  running cycles), in the check window's last cycle, in each of the 3 cycles before the last
  output row, and in the cycle of that row's handshake (the one that reaches DONE).

* ``axi`` (the AXI top's jobs, :func:`swattn.sim.jobs.axi_jobs`, counted by
  :meth:`Coverage.add_axi_jobs`): the register checks; a job bit-exact with ``tlast`` on its
  last row and the irq for done; every error code read back from STATUS after an irq (the
  refused configurations and a start while busy); a reset in the middle of a job.

``Coverage.report()`` lists every bin with its count and names the bins no job hit.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..sw.spec.regs import Error

LEVELS = (0.0, 0.2, 0.6)


def _bins_of_job(p, job: dict) -> list[str]:
    """The bins a passed job hits (``p``: the EngineParams it ran on)."""
    kind = job.get("kind", "ok")
    if kind == "invalid":
        return [f"outcome: error {job['expect']}"]
    if kind == "reset_mid":
        return ["outcome: reset in the middle of a job"]
    out = ["outcome: error BUSY" if kind == "busy" else "outcome: error NONE"]
    if kind == "busy":
        out += _busy_bins(job)
    n, left, right, dil = job["n"], job["left"], job["right"], job["dilation"]
    g = sorted(job["globals"])
    span = (left + right) * dil + 1
    reach = max(left, right) * dil
    if n == 1:
        out.append("n: 1")
    elif n <= 4:
        out.append("n: small (2..4)")
    elif n <= 2 * span:
        out.append("n: window-sized (5 .. 2 x span)")
    else:
        out.append("n: several windows (> 2 x span)")
    if left == right == 0:
        out.append("radius vs n: no window (left = right = 0)")
    elif reach < n - 1:
        out.append("radius vs n: clipped at the edges only (reach < n - 1)")
    else:
        out.append("radius vs n: covers the sequence (reach >= n - 1)")
    if reach == p.max_radius:
        out.append("radius vs n: reach = max_radius")
    if dil == 1:
        out.append("dilation vs radius: 1")
    elif left + right > 0:
        out.append("dilation vs radius: > 1 with a window")
    else:
        out.append("dilation vs radius: > 1 without a window")
    if dil == p.max_dilation and dil > 1:
        out.append("dilation vs radius: max_dilation")
    if dil > 1 and reach == p.max_radius:
        out.append("dilation vs radius: dilated reach = max_radius")
    ng = len(g)
    if ng == 0:
        out.append("globals: 0")
    if ng == 1:
        out.append("globals: 1")
    if 1 < ng < p.max_globals:
        out.append("globals: between 1 and max_globals")
    if ng == p.max_globals and ng > 0:
        out.append("globals: max_globals")
    if 0 in g:
        out.append("globals: at the first token")
    if n - 1 in g and n > 1:
        out.append("globals: at the last token")
    if any(b - a == 1 for a, b in zip(g, g[1:])):
        out.append("globals: adjacent")
    if ng == n:
        out.append("globals: every token global")
    if p.paired_max and ng:
        groups = -(-ng // p.units)
        if groups >= 2:
            out.append("globals: paired max pass of two groups")
        if groups % 2:
            out.append("globals: paired max pass of a lone group")
    if right == 0 and left > 0:
        out.append("window shape: causal (right = 0)")
    elif left == 0 and right > 0:
        out.append("window shape: anti-causal (left = 0)")
    elif left == right > 0:
        out.append("window shape: symmetric")
    elif left > 0 and right > 0:
        out.append("window shape: asymmetric")
    if not p.serial:  # (the serial engine reads its buffers: no streams to hold back)
        idle, stall = job.get("idle", 0.0), job.get("stall", 0.0)
        out.append(f"backpressure: idle {_level(idle)} / stall {_level(stall)}")
    return out + _key_bins(p, job)


def _key_bins(p, job: dict) -> list[str]:
    """The bands' and columns' bins of a passed job."""
    out = []
    n, left, right, dil = job["n"], job["left"], job["right"], job["dilation"]
    bands = [tuple(b) for b in job.get("bands", ())]
    if p.max_bands > 1:
        nb = len(bands)
        out.append({0: "bands: none beside the window", 1: "bands: one"}.get(nb, "bands: more"))
        if nb == p.max_bands - 1 and nb:
            out.append("bands: max_bands - 1")
        for a, c in bands:
            last = a + c - 1
            out.append("bands: below the window" if a < 0 else "bands: above the window")
            if last == -left - 1 or a == right + 1:
                out.append("bands: touching the window")
            if any(a == b2 + c2 for b2, c2 in bands):
                out.append("bands: touching each other")
            if any(not any(0 <= r + (a + k) * dil < n for k in range(c)) for r in range(n)):
                out.append("bands: clipped away for some rows")
            if last * dil >= n:
                out.append("bands: reaching past n - 1 from row 0")
    if p.max_columns:
        cols = list(job.get("columns", ()))
        nc = len(cols)
        out.append({0: "columns: 0", 1: "columns: 1"}.get(nc, "columns: more"))
        if nc == p.max_columns:
            out.append("columns: max_columns")
        if 0 in cols:
            out.append("columns: at the first token")
        if n - 1 in cols and n > 1:
            out.append("columns: at the last token")
        if any(abs(c - g) == 1 for c in cols for g in job["globals"]):
            out.append("columns: next to a global")
        spans = [(-left, left + right + 1)] + bands
        glob = set(job["globals"])
        if any((c - r) % dil == 0 and any(a <= (c - r) // dil < a + k for a, k in spans)
               for c in cols for r in range(n) if r not in glob):
            out.append("columns: a key of a window or band as well (counted once)")
    if p.grid:
        out += _grid_bins(job, bands)
    return out


def _grid_bins(job: dict, bands) -> list[str]:
    """The grid's bins of a passed job (dilation 1 wherever a grid is set)."""
    grid = job.get("grid")
    if not grid:
        return ["grid: none"]
    n, left, right = job["n"], job["left"], job["right"]
    w, radius = grid
    out = []
    if w == 1:
        out.append("grid: width 1")
    if w == n:
        out.append("grid: width n")
    if n % w:
        out.append("grid: a width not dividing n")
    if radius == 0:
        out.append("grid: radius 0")
    if radius == w - 1:
        out.append("grid: radius width - 1")
    k = 2 * radius + 1
    rows = sorted([(-left, left + right + 1)] + [tuple(b) for b in bands])
    if (left == right == radius and len(rows) == k
            and all(a == (j - radius) * w - radius and c == k for j, (a, c) in enumerate(rows))):
        out.append("grid: a k x k window on an image")
    offs = np.concatenate([np.arange(a, a + c) for a, c in rows])
    r = np.arange(n)[:, None]
    j = r + offs[None, :]
    ok = (j >= 0) & (j < n)
    if (ok & (j % w < r % w - radius)).any():
        out.append("grid: a band key cut at the left edge")
    if (ok & (j % w > r % w + radius)).any():
        out.append("grid: a band key cut at the right edge")
    return out


def _busy_bins(job: dict) -> list[str]:
    """Where a start while BUSY came (a "busy" job's ``busy_at`` or ``busy_end``)."""
    if "busy_end" in job:
        k = job["busy_end"]
        return ["busy start: in the cycle DONE is reached" if k == 0 else
                f"busy start: {k} cycle(s) before the last output row"]
    out = [f"busy start: {job['busy_at'] + 1} cycle(s) after the accepted start"]
    if job.get("busy_check_last"):
        out.append("busy start: in the check window's last cycle")
    return out


def busy_bins(p) -> list[str]:
    """The start-while-busy bins of an engine with parameters ``p``."""
    from .jobs import BUSY_END_MAX, BUSY_PAST_CHECKS
    return ([f"busy start: {k + 1} cycle(s) after the accepted start"
             for k in range(p.max_globals + BUSY_PAST_CHECKS + 1)]
            + ["busy start: in the check window's last cycle"]
            + [f"busy start: {k} cycle(s) before the last output row"
               for k in range(BUSY_END_MAX, 0, -1)]
            + ["busy start: in the cycle DONE is reached"])


def _level(x: float) -> str:
    return min(LEVELS, key=lambda v: abs(v - x)).__format__(".1f")


def all_bins(p) -> list[str]:
    """Every bin that jobs on an engine with parameters ``p`` can hit, in report order."""
    bins = ["n: 1", "n: small (2..4)", "n: window-sized (5 .. 2 x span)",
            "n: several windows (> 2 x span)",
            "radius vs n: no window (left = right = 0)",
            "radius vs n: clipped at the edges only (reach < n - 1)",
            "radius vs n: covers the sequence (reach >= n - 1)", "radius vs n: reach = max_radius",
            "dilation vs radius: 1"]
    if p.max_dilation > 1:
        bins += ["dilation vs radius: > 1 with a window", "dilation vs radius: > 1 without a window",
                 "dilation vs radius: max_dilation"]
        if any(p.max_radius % d == 0 for d in range(2, p.max_dilation + 1)):
            bins.append("dilation vs radius: dilated reach = max_radius")
    bins.append("globals: 0")
    if p.max_globals >= 1:
        bins += ["globals: 1", "globals: max_globals", "globals: at the first token",
                 "globals: at the last token", "globals: every token global"]
    if p.max_globals >= 2:
        bins.append("globals: adjacent")
    if p.max_globals >= 3:
        bins.append("globals: between 1 and max_globals")
    if p.paired_max and p.max_globals >= 1:
        bins.append("globals: paired max pass of a lone group")
        if p.global_groups_max >= 2:
            bins.append("globals: paired max pass of two groups")
    bins += ["window shape: causal (right = 0)", "window shape: anti-causal (left = 0)",
             "window shape: symmetric", "window shape: asymmetric"]
    if not p.serial:
        bins += [f"backpressure: idle {i:.1f} / stall {s:.1f}" for i in LEVELS for s in LEVELS]
    if p.max_bands > 1:
        bins += ["bands: none beside the window", "bands: one", "bands: max_bands - 1",
                 "bands: below the window", "bands: above the window",
                 "bands: touching the window", "bands: touching each other",
                 "bands: clipped away for some rows", "bands: reaching past n - 1 from row 0"]
    if p.max_columns:
        bins += ["columns: 0", "columns: 1", "columns: max_columns", "columns: at the first token",
                 "columns: at the last token", "columns: next to a global",
                 "columns: a key of a window or band as well (counted once)"]
    if p.grid:
        bins += ["grid: none", "grid: width 1", "grid: width n", "grid: a width not dividing n",
                 "grid: radius 0", "grid: radius width - 1", "grid: a k x k window on an image",
                 "grid: a band key cut at the left edge", "grid: a band key cut at the right edge"]
    bins += [f"outcome: error {e.name}" for e in error_codes(p)]
    bins.append("outcome: reset in the middle of a job")
    return bins + busy_bins(p)


class Coverage:
    """Counts of passed jobs per bin, per engine size (keyed by the parameters' repr)."""

    def __init__(self):
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.expected: dict[str, list[str]] = {}
        self.failed = 0

    def add_jobs(self, p, records: list[dict]) -> None:
        """``records``: job dicts (as ``swattn.sim.jobs`` makes them) with ``ok`` from the
        results."""
        size = _size_name(p)
        self.expected.setdefault(size, all_bins(p))
        for job in records:
            if not job.get("ok"):
                self.failed += 1
                continue
            for b in _bins_of_job(p, job):
                self.counts[b][size] += 1

    def add_axi_jobs(self, p, records: list[dict]) -> None:
        """The AXI top's job records (``swattn.sim.tb_axi``) with ``ok`` from the results."""
        size = _size_name(p) + " axi"
        self.expected.setdefault(size, axi_bins(p))
        for job in records:
            if not job.get("ok"):
                self.failed += 1
                continue
            kind = job.get("kind", "ok")
            b = {"registers": "axi: registers, SLVERR, byte strobes",
                 "ok": "axi: job bit-exact, tlast, irq done",
                 "reset_mid": "axi: reset in a job",
                 "busy": f"axi: error {Error.BUSY.name} read back"}.get(kind)
            if kind == "invalid":
                b = f"axi: error {job['expect']} read back"
            if b:
                self.counts[b][size] += 1

    def unhit(self) -> list[str]:
        """Bins expected for some size that no passed job hit on any size."""
        want = []
        for bins in self.expected.values():
            want += [b for b in bins if b not in want]
        return [b for b in want if sum(self.counts[b].values()) == 0]

    def unhit_per_size(self) -> dict[str, list[str]]:
        return {s: [b for b in bins if self.counts[b][s] == 0] for s, bins in self.expected.items()}

    def as_dict(self) -> dict:
        return {b: dict(c) for b, c in self.counts.items()}

    def report(self) -> str:
        want = []
        for bins in self.expected.values():
            want += [b for b in bins if b not in want]
        lines = ["functional coverage (passed jobs per bin)", "-----------------------------------------"]
        for b in want:
            total = sum(self.counts[b].values())
            lines.append(f"  {'UNHIT' if total == 0 else '     '} {b:58} {total:7}")
        unhit = self.unhit()
        lines.append(f"  {len(want) - len(unhit)}/{len(want)} bins hit")
        if unhit:
            lines.append("  unhit bins: " + "; ".join(unhit))
        for size, bins in self.unhit_per_size().items():
            partial = [b for b in bins if b not in unhit]
            if partial:
                lines.append(f"  not hit on {size} (hit on another size): " + "; ".join(partial))
        return "\n".join(lines)


def axi_bins(p) -> list[str]:
    from .jobs import high_bit_invalid_jobs, invalid_jobs

    codes = {j["expect"] for j in invalid_jobs(p, 0) + high_bit_invalid_jobs(p, 0)}
    codes.add(Error.BUSY.name)
    return (["axi: registers, SLVERR, byte strobes", "axi: job bit-exact, tlast, irq done",
             "axi: reset in a job"]
            + [f"axi: error {e.name} read back" for e in Error if e.name in codes])


def error_codes(p) -> list:
    """The ``regs.Error`` codes an engine with parameters ``p`` can report."""
    def has(e):
        if e == Error.GLOBAL_COUNT:
            return p.max_globals < 255
        if e == Error.GLOBAL_DUP:
            return p.max_globals >= 2
        if e.name.startswith("BAND_"):
            return p.max_bands > 1
        if e.name.startswith("COLUMN_"):
            return p.max_columns > 0 and (e != Error.COLUMN_GLOBAL or p.max_globals > 0)
        if e == Error.GRID:
            return p.grid
        return True
    return [e for e in Error if has(e)]


def _size_name(p) -> str:
    keys = (f"/b{p.max_bands}/c{p.max_columns}" if p.max_bands > 1 or p.max_columns else "")
    keys += "/grid" if p.grid else ""
    return (f"d{p.head_dim}/l{p.lanes}/r{p.max_radius}/g{p.max_globals}/dil{p.max_dilation}"
            f"/s{p.seq_width}{keys}")
