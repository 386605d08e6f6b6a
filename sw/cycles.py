"""Analytic cycle model of the engine: ``predict_cycles(params, pattern)``.

The model follows the engine's dataflow at the granularity of *groups* (see
:mod:`swattn.sw.spec.schedule`), not cycles: for each group it knows how many keys stream past the
query units, and it applies the same hand-over rules as the RTL (``hw/engine.py``):

* stage 1 (Q.K) takes a group when it has finished the previous one, the scheduler has loaded the
  group's queries and the group's score bank is free (two banks, so group g waits for stage 2 to
  have issued the last key of group g - 2); each key occupies ``chunks`` cycles, and a window key
  cannot be issued before the K/V writer has stored it (one row every ``chunks`` cycles, the
  global rows first);
* stage 2 (softmax and P.V) takes a group ``S2_AFTER_S1`` cycles after stage 1 issued its last key
  (the row maximum must be complete) and when it has finished the previous group; max-only groups
  of the global passes pass through stage 2 in one cycle;
* a final group's rows leave through the epilogue (normaliser, reciprocal, one row per cycle);
  stage 2 cannot start a group (final or not) while its accumulator bank waits for the epilogue.

The loop runs over groups (n / units main groups plus n / subgroup per global pass), so a
16384-token head takes milliseconds. Measured cycles are the engine's ``cycles`` register: from
the accepted start to the state change at the last output handshake, input always valid and
output always ready. ``tests/test_cycle_model.py`` checks the model against the RTL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import numerics as nx
from .spec.engine_params import EngineParams
from .spec.pattern import HybridPattern

#: the job starts after the configuration checks: a cycle of products, a cycle of scalar checks,
#: then one cycle per global index, then the registered job_init pulse
CHECK_BASE = 3
#: the K/V writer takes a row's chunks one per cycle from the cycle after job init; each lands
#: in the ring a cycle after it is taken (from registers), and a row can be read the cycle after
#: its last chunk lands
WRITE_BASE = 2
#: stage 1 -> stage 2 with a three-cycle dot product (hw.blocks.DotLanes): the last key's score reaches the bank three
#: cycles after its issue (plus a cycle for each more cycle of dot product, ``dot_latency``)
S2_AFTER_S1 = 5
#: stage 2 last issue -> the group's accumulators are complete (t1..t7 pipeline, then grp_done;
#: a cycle more with ``pv_pipeline``)
S2_DRAIN = 8
#: epilogue: acc ready -> the reciprocal starts (S's leading one, S's top bits registered, then
#: the start); reciprocal; the normalisers' pipeline (hw.blocks.Normaliser.LATENCY) before the
#: last element group lands
EPI_START = 4
EPI_RECIP = nx.RECIP_WIDTH + 1
NORM_LATENCY = 6
#: after the last output handshake the state register changes one cycle later
DONE_LAG = 1


@dataclass(frozen=True)
class CycleReport:
    """Cycles of one job and the figures derived from them."""

    cycles: int
    useful_macs: int
    lanes: int

    @property
    def ideal_cycles(self) -> float:
        return self.useful_macs / self.lanes

    @property
    def utilisation(self) -> float:
        return self.ideal_cycles / self.cycles


def useful_macs(pattern, head_dim: int) -> int:
    """2 * d MACs per attended (query, key) pair: one for Q.K, one for P.V."""
    return 2 * head_dim * pattern.pairs()


def main_group_keys(pattern: HybridPattern, params: EngineParams):
    """Per main group (in processing order): first window key, number of window keys streamed,
    the first and the last active query unit; and the scheduler cycles spent on skipped groups
    before each kept group and after the last one (length groups + 1)."""
    n, dil, U = pattern.n, pattern.dilation, params.units
    left, right = pattern.left, pattern.right
    bases = np.arange(0, n, U * dil, dtype=np.int64)
    cls = np.arange(dil, dtype=np.int64)
    base = np.repeat(bases, dil)
    c = np.tile(cls, bases.size)
    rows = base[:, None] + c[:, None] + np.arange(U, dtype=np.int64)[None, :] * dil
    is_g = pattern.is_global()
    active = (rows < n) & ~is_g[np.minimum(rows, n - 1)]
    keep = active.any(axis=1)
    # the scheduler spends one visit (two cycles: its tests registered, then acted on) on each
    # group it skips (all its rows global or past n); the groups of the last block that start
    # past n are passed over in one visit together
    empty = base + c >= n
    cost = (~keep & ~empty).astype(np.int64)
    if empty.any():
        cost[np.flatnonzero(empty)[0]] = 1
    kept_at = np.flatnonzero(keep)
    csum = np.concatenate([[0], np.cumsum(cost)])
    prev = np.concatenate([[0], kept_at + 1])
    skips = csum[np.concatenate([kept_at, [keep.size]])] - csum[prev]
    base, c, act = base[keep], c[keep], active[keep]
    first = act.argmax(axis=1)
    last = U - 1 - act[:, ::-1].argmax(axis=1)
    bq = base // dil
    mlo = np.maximum(bq - left, 0)
    kmax = bq + U - 1 + right - mlo
    reach = left * dil
    start = np.where(reach > base + c, c, base + c - reach)
    kw = np.minimum(kmax + 1, -(-(n - start) // dil))
    return start, kw, first, last, skips


def band_slots(pattern) -> list[tuple[int, int]]:
    """The bands of a pattern in the engine's processing order, as (first step, count - 1):
    the bands below the window, the window, the bands above it (an EngineForm's; a
    HybridPattern's window alone)."""
    bands = list(getattr(pattern, "bands", ()))
    low = [(a, c - 1) for a, c in bands if a < 0]
    high = [(a, c - 1) for a, c in bands if a >= 0]
    return low + [(-pattern.left, pattern.left + pattern.right)] + high


def grid_trim(start: int, kmax: int, bq: int, units: int, grid) -> tuple[int, int] | None:
    """With the grid (``(width, radius)``, dilation 1), a band's keys for the group of queries
    bq .. bq + units - 1 as the scheduler streams them (``Scheduler._grid_trim``): the leading
    and trailing keys whose columns lie outside every unit's column range left out, where the
    units' columns do not wrap into the next grid row and the band's keys span less than a row.
    (first position, kmax) after it, or None for a band none of whose keys any unit keeps."""
    w, r = grid
    qc, qend = bq % w, bq % w + units - 1
    if qend >= w or not 0 <= kmax < w:
        return start, kmax
    qlo, qhi = max(0, qc - r), min(w - 1, qend + r)
    scol = start % w
    ecol = (scol + kmax) % w
    lead = qlo - scol if scol < qlo else (w - scol + qlo if scol > qhi else 0)
    trail = ecol - qhi if ecol > qhi else (ecol + w - qhi if ecol < qlo else 0)
    if lead > kmax:
        return None
    return start + lead, kmax - lead - trail


def main_group_segments(pattern, params: EngineParams):
    """Per main group (in processing order), its keys' positions band by band: a list of
    (first position, keys) per band with keys (for engines with bands beside the window)."""
    n, dil, U = pattern.n, pattern.dilation, params.units
    grid = getattr(pattern, "grid", None)
    out = []
    for base in range(0, n, U * dil):
        for c in range(dil):
            bq = base // dil
            segs = []
            for a, span in band_slots(pattern):
                lo = bq + a
                hi = lo + span + U - 1
                mlo = max(lo, 0)
                start = mlo * dil + c
                kmax = hi - mlo
                if grid is not None and kmax >= 0:
                    trimmed = grid_trim(start, kmax, bq, U, grid)
                    if trimmed is None:
                        continue
                    start, kmax = trimmed
                if kmax < 0 or start >= n:
                    continue
                segs.append((start, min(kmax + 1, -(-(n - start) // dil))))
            out.append(segs)
    return out


def predict_cycles(params: EngineParams, pattern: HybridPattern) -> int:
    """Cycles the engine takes for one job (from start to its last output), input never idle
    and output always ready. For lanes = 4, the serial engine's (:func:`predict_serial_cycles`).
    """
    if params.serial:
        return predict_serial_cycles(params, pattern)
    CH, U, d = params.chunks, params.units, params.head_dim
    n, dil, ng = pattern.n, pattern.dilation, len(pattern.globals_)
    epi_rows = max(1, d // params.out_lanes) + NORM_LATENCY
    s2_after_s1 = S2_AFTER_S1 + params.dot_latency - 3

    start, kw, first_u, last_u, skips = main_group_keys(pattern, params)
    NB = params.max_bands
    BSW = int(params.band_switch_register)
    segments = None
    if NB > 1:
        # the kept groups' keys band by band (main_group_keys enumerates the same groups)
        every = main_group_segments(pattern, params)
        bases = [(b, c) for b in range(0, n, U * dil) for c in range(dil)]
        is_g = pattern.is_global()
        kept = [i for i, (b, c) in enumerate(bases)
                if any(b + c + u * dil < n and not is_g[b + c + u * dil] for u in range(U))]
        segments = [every[i] for i in kept]
    # the cycle of the job_init pulse (with bands, a check step more after the globals'; with
    # columns, one more)
    nc = len(getattr(pattern, "columns", ()))
    init = CHECK_BASE + ng + (1 if NB > 1 else 0) + (1 if params.max_columns else 0)
    if params.grid:  # the checks end no sooner than the grid's remainders are in
        init = max(init, params.grid_steps + 4)
    ggroups = -(-ng // U)
    SG = params.subgroup
    paired = params.paired_max and ggroups > 0
    # paired engines: one max pass per pair of global groups before the main pass
    moff = n * ((ggroups + 1) // 2) if paired else 0

    def written(pos):
        """First cycle stage 1 may read K/V stream position ``pos`` (after the global rows)."""
        return init + WRITE_BASE + (ng + nc + pos + 1) * CH

    t_sched = init + 1  # the scheduler starts preparing a group the cycle after this one
    s1_free = 0  # first cycle stage 1 may take a group
    s2_free = 0  # first cycle stage 2 may take a group
    s2_pv = False  # the group stage 2 took last was a P.V group
    bank_free = [0, 0]
    acc_free = [0, 0]  # first cycle stage 2 may take a final group into this accumulator bank
    epi_free = 0  # first cycle the epilogue may start the next bank
    last_out = 0
    bank = 0
    abank = 0

    def run_group(ready, pos0, nwin, nglob, step, final, units, no_pv, segs=None):
        nonlocal s1_free, s2_free, s2_pv, bank, abank, epi_free, last_out, t_sched
        take1 = max(ready, s1_free, bank_free[bank])
        first = take1 + 1
        if segs is not None:  # bands: (first position, keys) each, one after the other
            nwin = sum(k for _, k in segs)
        # with the band switch register, a cycle of its own before each band after the first
        sw = BSW * (len(segs) - 1) if segs else 0
        issue_end = first + (nwin + nglob) * CH + sw  # one past the last issue
        if segs is not None:
            # each band's last key waits for the writer; the keys (and switches) after it follow
            after = nwin + nglob
            for b, (p0, k) in enumerate(segs):
                after -= k
                issue_end = max(issue_end, written(p0 + (k - 1) * step) + (1 + after) * CH
                                + BSW * (len(segs) - 1 - b))
        elif nwin:
            last_win = pos0 + (nwin - 1) * step
            issue_end = max(issue_end, written(last_win) + (1 + nglob) * CH)
        s1_free = issue_end
        t_sched = take1
        # stage 2 decides a take in the first cycle it can (a register) and takes in the next:
        # as the group's last score is written (a cycle before it could take), and after a P.V
        # group in that group's last issue cycle (one before s2_free)
        ready2 = max(issue_end + s2_after_s1 - 2, s2_free - (1 if s2_pv else 0))
        b = bank
        bank ^= 1
        if no_pv:
            take2 = ready2 + 1
            s2_free = take2 + 1
            s2_pv = False
            bank_free[b] = take2 + 1
            return
        take2 = max(ready2, acc_free[abank]) + 1  # the accumulator bank must be free
        s2_pv = True
        s2_end = take2 + 1 + (nwin + nglob) * CH  # one past the last issue
        s2_free = s2_end
        bank_free[b] = s2_end
        if final:
            ready_acc = s2_end + S2_DRAIN + params.pv_pipeline
            epi0 = max(ready_acc, epi_free) + EPI_START
            out0 = epi0 + EPI_RECIP + epi_rows
            # the arbiter visits the units in order, one cycle each (idle ones too); those before
            # the first active unit are passed while the rows are computed
            u_first, u_last = units
            done = out0 + U - u_first
            epi_free = done + 1
            acc_free[abank] = done + 1
            last_out = out0 + u_last - u_first
            abank ^= 1

    if paired:
        # each pair starts once stage 1 is done with the previous one (its two query banks
        # are reloaded), then loads both groups' queries; so does the main pass
        t_grp = t_sched + 1  # the cycle the scheduler looks at the next pair
        for pair in range((ggroups + 1) // 2):
            ready = max(t_grp, s1_free) + 2 * U + 4
            for gsub in range(0, n, SG):
                run_group(ready, pair * n + gsub, min(SG, n - gsub), 0, 1, False,
                          (0, U - 1), True)
                ready = t_sched + 2
            t_grp = t_sched + 1
        t_sched = max(t_grp, s1_free)

    # with bands, the scheduler's band slots (NB + 2 cycles) may outlast the query loads
    # (and with the band switch register, a step more: step S)
    load = max(U, NB + 2 + int(params.grid) + BSW) if NB > 1 else U
    for g in range(start.size):
        ready = t_sched + 2 * int(skips[g]) + load + 4
        segs = None if segments is None else [(moff + p0, k) for p0, k in segments[g]]
        # (the global keys, then the columns')
        run_group(ready, moff + int(start[g]), int(kw[g]), ng + nc, dil, True,
                  (int(first_u[g]), int(last_u[g])), False, segs)

    for gg in range(ggroups):
        rows = min(U, ng - gg * U)
        # from the main pass: the trailing skips and the visit that ends it (two cycles each);
        # between global groups, one state change more than between main groups
        ready = t_sched + U + 4 + (2 * (int(skips[-1]) + 1) if gg == 0 else 0)
        for gpass in ((1,) if paired else (0, 1)):
            base = n + moff + (gg * n if paired else 2 * gg * n + gpass * n)
            for gsub in range(0, n, SG):
                cnt = min(SG, n - gsub)
                run_group(ready, base + gsub, cnt, 0, 1, gpass == 1 and gsub + SG >= n,
                          (0, rows - 1), gpass == 0)
                ready = t_sched + 2
    return last_out + DONE_LAG


def report(params: EngineParams, pattern: HybridPattern) -> CycleReport:
    return CycleReport(predict_cycles(params, pattern), useful_macs(pattern, params.head_dim),
                       params.lanes)


# --- the serial engine (swattn.hw.serial, lanes = 4) ---------------------------------------------

#: the serial engine's cycle constants (hw/serial.py): e of a key (score read to e register) takes
#: SERIAL_E_LATENCY cycles; a K word's part of a score leaves the front's pipeline
#: SERIAL_FRONT_DRAIN cycles after its read; the normaliser's latency with 16-bit multipliers
SERIAL_E_LATENCY = 8
SERIAL_FRONT_DRAIN = 6
SERIAL_NORM_LATENCY = NORM_LATENCY + 1
#: the reciprocal's start to the first output element's read (18 quotient bits, then done)
SERIAL_RECIP = nx.RECIP_WIDTH + 2
#: the init pulse after the checks: a cycle of scalar tests, a cycle of their priority, then
#: one per global index, the outcome a cycle later and init a cycle after that
SERIAL_CHECK_BASE = 3


def predict_serial_cycles(params: EngineParams, pattern: HybridPattern) -> int:
    """Cycles the serial engine takes for one job: the ``cycles`` register from the accepted start
    to DONE. Rows are taken in :func:`swattn.sw.spec.schedule.output_order`; the front (Q row, then
    one K row per key), the back (one V row per key) and the epilogue (shift, reciprocal,
    normaliser) each work on a different row (two score banks, two sum memories), so a row
    costs about ``keys * head_dim / 2`` cycles, the epilogue hidden behind the next row's keys.
    One step per row (a Python loop over rows, for the board sizes: n <= 2^seq_width - 1)."""
    from .spec.schedule import output_order

    R = params.head_dim // 2
    n, dil, ng = pattern.n, pattern.dilation, len(pattern.globals_)
    glob = set(pattern.globals_)
    order = output_order(pattern, params)
    bands = tuple(getattr(pattern, "bands", ()))
    # the registered init pulse: a cycle after the checks pass (scalar tests, their priority,
    # one cycle per global; with bands beside the window, one for them)
    t_init = SERIAL_CHECK_BASE + ng + int(params.max_bands > 1)
    front_free = t_init + 1  # the cycle the front is next in NEXT
    prev_tok = -1
    rel = [-10, -10]  # the cycle each bank was last released
    back_at = t_init + 1  # the back's next TAKE
    epi_free = 0  # the first cycle the epilogue is idle again
    x = None
    for r, i in enumerate(int(x) for x in order):
        b = r & 1
        g_row = i in glob
        # the front walks tokens (NEXT, PICK: two cycles each) to the row
        if g_row:
            pairs = 1 if prev_tok in glob else n - prev_tok + 1
        else:
            pairs = i - prev_tok
        wait = front_free + 2 * pairs
        wp = max(wait, rel[b] + 1)  # WAIT passes when the bank is free
        # KEYS: a cycle to load the first candidate, then R per key and 1 per skipped candidate
        if g_row:
            words, tail, keys = R * n, 0, n
        else:
            # the window's steps, then each band's, every step a candidate (a key inside 0..n-1)
            o = np.concatenate([np.arange(-pattern.left, pattern.right + 1)]
                               + [np.arange(a, a + c) for a, c in bands])
            j = i + o * dil
            ok = (j >= 0) & (j < n)
            win = set(j[ok].tolist())
            g_ok = [g not in win for g in pattern.globals_]
            cand = list(ok) + g_ok
            keys = int(sum(cand))
            words = R * keys + (len(cand) - keys)
            last = max(k for k, c in enumerate(cand) if c)
            tail = len(cand) - 1 - last
        k_end = wp + R + 1 + words
        give = max(k_end + 1, k_end - tail + SERIAL_FRONT_DRAIN)
        front_free = give + 1
        prev_tok = i
        # the back polls every other cycle (TAKE, TAKE2), from back_at; its last key's V row
        # ends at c, the score bank is released when the products are in, and the row waits
        # for the epilogue to be idle (HAND), which then works beside the next row's P.V
        ready = give + 1
        t_take = back_at + 2 * max(0, -(-(ready - back_at) // 2))
        p0 = t_take + 2
        c = p0 + SERIAL_E_LATENCY + keys * R
        rel[b] = c + 4
        hand = max(c + 5, epi_free)
        back_at = hand + 1
        rstart = hand + 1 + max(1, params.sum_width - nx.SUM_NORM_BITS)
        o0 = rstart + SERIAL_RECIP
        x = o0 + params.head_dim + SERIAL_NORM_LATENCY + 1
        epi_free = x + 1
    return x + 1  # DONE is set as the last row's epilogue ends
