"""The group scheduler and the query banks.

A *group* is up to ``units`` query rows of one residue class mod dilation (i, i + dil, ...) that
share their window keys. :class:`Scheduler` walks the job's groups in the order of the q stream
(``swattn.sw.spec.schedule``): the main pass's groups, then per global group a max pass and a P.V
pass, in sub-groups of ``EngineParams.subgroup`` keys (paired engines: the max passes first, two
global groups at a time). For each group it loads the queries into :class:`QueryBanks` and hands
stage 1 a descriptor (:func:`desc_layout`) on a stream.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec.engine_params import EngineParams
from .blocks import int8_row
from .job import JobSignature, check_widths, global_hits, key_hits, slot_layout, token


def desc_layout(P: EngineParams) -> data.StructLayout:
    """A group's descriptor, from the scheduler to stage 1 and on to stage 2.

    ``main``: a main-pass group (else a global pass's sub-group); ``no_pv``: a max pass (stage 2
    only releases it); ``reset_max`` / ``reset_acc``: the group starts the rows' maxima / sums;
    ``final``: its P.V results are the rows' last (the epilogue takes them); ``qbank``: the query
    bank; ``active``: per unit, a row to compute; ``start``, ``step``: first key's stream
    position and the step between window keys; ``kmax``: window keys - 1; ``lim``: the pass's
    end; ``clip``: window keys clipped at row 0; ``nglob``: global keys after the window;
    ``kig``: the first key is a global row; ``hits2``: per global, the second key is that
    global's row; ``nxt``: there is a second window key. Paired engines: ``pair`` (a max pass of
    two groups; the second's rows ``active_b``, its queries in the other bank), ``gmax`` (the
    group's maxima come from the max pass's registers of global group ``gidx``).
    """
    RB, DB, GB = check_widths(P)
    U, PW, GM = P.units, P.pos_width, P.held_rows
    paired = ({"pair": 1, "active_b": U, "gmax": 1, "gidx": P.global_groups_max.bit_length()}
              if P.paired_max else {})
    bands = ({"span": RB + 1, "more": data.ArrayLayout(band_slot_layout(P), P.max_bands - 1),
              "nmore": range(P.max_bands), "low": PW + 1} if P.max_bands > 1 else {})
    if P.grid:  # the first band's first key's grid column, and each unit's query's
        bands.update(scol=P.seq_width + 1,
                     qcol=data.ArrayLayout(unsigned(P.seq_width + 1), U))
    return data.StructLayout({
        "main": 1, "no_pv": 1, "reset_max": 1, "reset_acc": 1, "final": 1, "qbank": 1,
        "active": U, "start": PW + 1, "step": DB, "kmax": PW + 1, "lim": PW + 1,
        "clip": RB + 2 * int(P.grid), "nglob": GB, "kig": 1, "hits2": GM, "nxt": 1, **paired, **bands,
    })


def grid_add(col, step, width):
    """A grid column ``step`` (< ``width``) further on, wrapped to the row's start."""
    nxt = col + step
    return Mux(nxt >= width, nxt - width, nxt)


def band_slot_layout(P: EngineParams) -> data.StructLayout:
    """A main group's keys of one band (engines with bands beside the window): as the
    descriptor's window fields (``start``, ``kmax``, ``clip``, ``kig``, ``hits2``, ``nxt``) and
    the band's ``span`` (count - 1). The descriptor's own fields are the group's first band
    with keys, ``more[0 .. nmore-1]`` the others in ascending order, and ``low`` the lowest
    position any later group's bands can start from (the K/V rows below it may go). With the
    grid, ``scol``: the grid column of the band's first key."""
    RB, _, _ = check_widths(P)
    grid = {"scol": P.seq_width + 1} if P.grid else {}
    # (with the grid, a band's clip also counts its leading keys outside the units' columns)
    return data.StructLayout({"start": P.pos_width + 1, "kmax": P.pos_width + 1,
                              "clip": RB + 1 + int(P.grid),
                              "span": RB + 1, "kig": 1, "hits2": P.held_rows,
                              "nxt": 1, **grid})


class QueryBanks(wiring.Component):
    """Two banks of ``units`` query rows: the scheduler fills one while stage 1 reads the other.

    Per cycle: with ``load``, the row on ``row`` goes into bank ``bank``, unit ``unit``; it is
    written a cycle later, from registers (the row and, per bank, unit and 64 bits of the row,
    its write enable: ``q_we_*_dup`` copies that synthesis keeps apart, each beside its
    flip-flops). ``rows[b][u]`` are the banks' registers.
    """

    def __init__(self, params: EngineParams):
        self._params = params
        U, row = params.units, int8_row(params.head_dim)
        super().__init__({
            "row": In(row), "load": In(1), "bank": In(1), "unit": In(range(U + 1)),
            "rows": Out(row).array(2, U),
        })

    def elaborate(self, platform):
        U = self._params.units
        m = Module()
        q_pay = Signal.like(self.row, reset_less=True)
        q_bits = len(q_pay.as_value())
        q_slices = [(lo, min(q_bits, lo + 64)) for lo in range(0, q_bits, 64)]
        m.d.sync += q_pay.eq(self.row)
        for b in range(2):
            for u in range(U):
                reg = Signal.like(self.row, name=f"q_b{b}_u{u}", reset_less=True)
                m.d.comb += self.rows[b][u].eq(reg)
                for j, (lo, hi) in enumerate(q_slices):
                    we = Signal(name=f"q_we_b{b}_u{u}_{j}_dup")
                    m.d.sync += we.eq(self.load & (self.bank == b) & (self.unit == u))
                    with m.If(we):
                        m.d.sync += reg.as_value()[lo:hi].eq(q_pay.as_value()[lo:hi])
        return m


class Scheduler(wiring.Component):
    """Forms the job's groups, loads their queries and hands their descriptors to stage 1.

    Per cycle it is in one state of its FSM: a group's tests (MAIN_GROUP) are registered and
    acted on a cycle later (MAIN_DECIDE); a LOAD state takes one q row per active unit a cycle
    (``q.ready`` only while the job runs; ``load``/``bank``/``unit`` tell the query banks where
    it goes); a SUB state sets a global pass's sub-group; a HAND state offers the descriptor on
    ``desc`` until stage 1 takes it. It starts two cycles after the job's ``init`` and returns to
    IDLE after the last global group. ``s1_busy``: stage 1 is still working on a group (a paired
    max pass's next pair, and the main pass after the max passes, wait for it: both banks are
    read by a pair's sub-groups).
    """

    def __init__(self, params: EngineParams):
        self._params = params
        super().__init__({
            "job": In(JobSignature(params)),
            "q_valid": In(1), "q_ready": Out(1),
            "load": Out(1), "bank": Out(1), "unit": Out(range(params.units + 1)),
            "desc": Out(stream.Signature(desc_layout(params))),
            "s1_busy": In(1),
        })

    def elaborate(self, platform):
        P = self._params
        U, PW, NW = P.units, P.pos_width, P.seq_width + 1
        RB, _, _ = check_widths(P)
        PA = P.paired_max
        job = self.job
        m = Module()
        # Main-pass positions: base0 < n + U dil and bc, idx_u below n + (2 U + 1) dil, with dil
        # at most max_dilation once the checks have passed (the scheduler runs only then), so
        # XW bits hold them (not NW + 16: these registers feed every global compare)
        XW = (P.n_max + (2 * U + 1) * P.max_dilation).bit_length()
        r = SimpleNamespace(
            desc=Signal(desc_layout(P)), desc_valid=Signal(), sched_bank=Signal(),
            uload=Signal(range(U + 1)),  # the next unit to load
            base0=Signal(XW), cls=Signal(range(P.max_dilation)), bq=Signal(NW + 1),
            ggrp=Signal(8),
            gpass=Signal(),  # 0: max pass, 1: P.V pass
            gsub=Signal(PW + 1),  # first position of the sub-group within the pass
            g_end=Signal(),  # the sub-group is its pass's last (registered in *_SUB for *_HAND)
            pbase=Signal(PW + 1),  # first stream position of the pass: n + (2 ggrp + gpass) n
            active=Signal(U), active_b=Signal(U) if PA else None,
            # bc = base0 + cls, kept in a register (the scheduler's compares start from it)
            bc=Signal(XW),
            # a step behind base0 and cls (each changes at least two cycles before it is read
            # again): the next block's base and whether the class is the block's last
            nb=Signal(XW), cls_last=Signal(),
        )
        m.d.comb += [self.desc.payload.eq(r.desc), self.desc.valid.eq(r.desc_valid),
                     self.unit.eq(r.uload)]
        m.d.sync += [r.nb.eq(r.base0 + U * job.dil), r.cls_last.eq(r.cls + 1 >= job.dil)]
        if P.grid:
            # the grid column of bq (dilation 1 with a grid: the group's first query)
            r.bq_col = Signal(P.seq_width + 1)

        if P.max_bands > 1:
            self._band_restart = Signal()  # a main group's loads begin (its band slots too)
            self._slots_done = self._band_slots(m, r)
        # the scheduler starts a cycle after job init (a register: the checks' outcome does not
        # reach the enables of its positions in the same cycle)
        sched_go = Signal()
        m.d.sync += sched_go.eq(job.init)
        with m.FSM(name="sched"):
            with m.State("IDLE"):
                with m.If(sched_go):
                    m.d.sync += [r.base0.eq(0), r.cls.eq(0), r.bc.eq(0), r.bq.eq(0),
                                 r.ggrp.eq(0), r.sched_bank.eq(0), r.desc_valid.eq(0)]
                    if P.grid:
                        m.d.sync += r.bq_col.eq(0)
                    if PA:
                        m.d.sync += r.pbase.eq(0)
                        with m.If(job.ngg != 0):
                            m.next = "MAX_GROUP"
                        with m.Else():
                            m.next = "MAIN_GROUP"
                    else:
                        m.next = "MAIN_GROUP"
            if PA:
                self._paired_max_passes(m, r)
            self._main_pass(m, r)
            self._global_passes(m, r)
        return m

    # -- the FSM's parts (each adds its states to the FSM being built) --------------------------

    def _load_queries(self, m, r, rows, other_bank=False):
        """Take one q row per unit of ``rows`` (in unit order) into the scheduler's bank (or
        the other one)."""
        U, job = self._params.units, self.job
        act = Array(rows[u] for u in range(U))
        with m.If(r.uload < U):
            with m.If(~act[r.uload]):
                m.d.sync += r.uload.eq(r.uload + 1)
            with m.Else():
                # (only while a job runs: outside one no row is ever taken, whatever state
                # the scheduler is in)
                m.d.comb += [self.q_ready.eq(job.running),
                             self.bank.eq(~r.sched_bank if other_bank else r.sched_bank)]
                with m.If(self.q_valid & job.running):
                    m.d.comb += self.load.eq(1)
                    m.d.sync += r.uload.eq(r.uload + 1)

    def _paired(self, r, pair=0, gmax=0, gidx=0, active_b=0):
        d = r.desc
        return [d.pair.eq(pair), d.gmax.eq(gmax), d.gidx.eq(gidx),
                d.active_b.eq(active_b)] if self._params.paired_max else []

    def _global_sub(self, r, no_pv, reset_max, reset_acc, final, **paired):
        """A global pass's sub-group: keys pbase + gsub on, SG of them or up to n."""
        SG, n, d = self._params.subgroup, self.job.n, r.desc
        return [
            d.main.eq(0), d.no_pv.eq(no_pv), d.reset_max.eq(reset_max),
            d.reset_acc.eq(reset_acc), d.final.eq(final),
            d.qbank.eq(r.sched_bank), d.active.eq(r.active),
            d.start.eq(r.pbase + r.gsub), d.step.eq(1), d.kmax.eq(SG - 1),
            d.lim.eq(r.pbase + n), d.clip.eq(0), d.nglob.eq(0),
            d.nxt.eq((r.gsub + 1 < n) if SG >= 2 else 0),  # pbase + gsub + 1 < lim
            *self._paired(r, **paired), r.desc_valid.eq(1),
            *([d.nmore.eq(0)] if self._params.max_bands > 1 else []),  # (no band after it)
        ]

    def _hand_sub(self, m, r, sub_state, on_end):
        """A global pass's HAND state: once stage 1 takes the sub-group, the next one
        (``sub_state``) or, after the pass's last, ``on_end()``."""
        with m.If(self.desc.ready):
            m.d.sync += r.desc_valid.eq(0)
            with m.If(r.g_end):
                m.d.sync += r.gsub.eq(0)
                on_end()
            with m.Else():
                m.d.sync += r.gsub.eq(r.gsub + self._params.subgroup)
                m.next = sub_state

    def _rows_of(self, ggrp, offset=0):
        U, ng = self._params.units, self.job.ng
        return Cat(*[(ggrp * U + offset + u) < ng for u in range(U)])

    def _paired_max_passes(self, m, r):
        """Paired engines: the max passes, two global groups each, before the main pass. A
        pair's two query banks are both read by its sub-groups, so the next pair (and the main
        pass) loads once stage 1 is done."""
        U, SG, n, job = self._params.units, self._params.subgroup, self.job.n, self.job
        with m.State("MAX_GROUP"):
            with m.If(r.ggrp >= job.ngg):
                with m.If(~self.s1_busy):
                    m.d.sync += r.ggrp.eq(0)
                    m.next = "MAIN_GROUP"
            with m.Elif(~self.s1_busy):
                m.d.sync += [r.active.eq(self._rows_of(r.ggrp)),
                             r.active_b.eq(self._rows_of(r.ggrp, U)),
                             r.uload.eq(0), r.gsub.eq(0)]
                m.next = "MAX_LOAD_A"
        with m.State("MAX_LOAD_A"):
            self._load_queries(m, r, r.active)
            with m.If(r.uload == U):
                m.d.sync += r.uload.eq(0)
                m.next = "MAX_LOAD_B"
        with m.State("MAX_LOAD_B"):
            self._load_queries(m, r, r.active_b, other_bank=True)
            with m.If(r.uload == U):
                m.next = "MAX_SUB"
        with m.State("MAX_SUB"):
            m.d.sync += self._global_sub(r, 1, r.gsub == 0, 0, r.gsub + SG >= n, pair=1,
                                         gidx=r.ggrp, active_b=r.active_b)
            m.d.sync += r.g_end.eq(r.gsub + SG >= n)
            m.next = "MAX_HAND"
        with m.State("MAX_HAND"):
            def pair_done():
                m.d.sync += [r.pbase.eq(r.pbase + n), r.ggrp.eq(r.ggrp + 2)]
                m.next = "MAX_GROUP"
            self._hand_sub(m, r, "MAX_SUB", pair_done)

    def _main_pass(self, m, r):
        """The main pass: per block of ``units`` rows and per residue class, a group of the
        class's non-global rows with their window keys (then the global keys)."""
        P, job = self._params, self.job
        U, PW, NW = P.units, P.pos_width, P.seq_width + 1
        RB, _, _ = check_widths(P)
        PA = P.paired_max
        GM = max(1, P.max_globals)
        n, dil, moff = job.n, job.dil, job.moff
        XW = len(r.bc)
        # a main group's descriptor fields, registered when the group is formed
        g_start = Signal(PW + 1)
        g_kig = Signal()
        g_tok2 = Signal(PW + 2)  # the token of the group's second window key (g_start + step)
        # whether the group has a second window key (desc.nxt) from registers: its position
        # g_pos2 = g_start + step, g_more = g_kbase > g_mlo (the window has two keys), g_lim the
        # main pass's end
        g_pos2 = Signal(PW + 2)
        g_more = Signal()
        g_lim = Signal(PW + 1)
        m.d.sync += g_lim.eq(n + moff if PA else n)  # (of the configuration and the checks)
        g_kbase = Signal(max(NW + 1, RB) + 2)
        g_mlo = Signal(NW + 1)
        g_clip = Signal(RB)
        # MAIN_GROUP's tests, registered for MAIN_DECIDE: bc >= n, base0 >= n, the rows to compute
        m_past, m_done, m_act = Signal(), Signal(), Signal(U)
        idx_u = [Signal(XW, name=f"idx_u{u}") for u in range(U)]
        for u in range(U):
            m.d.comb += idx_u[u].eq(r.bc + u * dil)

        def is_global(idx):
            return global_hits(job, idx, GM).any()

        def next_block():
            m.d.sync += [r.cls.eq(0), r.base0.eq(r.nb), r.bc.eq(r.nb), r.bq.eq(r.bq + U)]
            if P.grid:
                m.d.sync += r.bq_col.eq(grid_add(r.bq_col, job.umod, job.gw))

        def advance_main():
            with m.If(r.cls_last):
                next_block()
            with m.Else():
                m.d.sync += [r.cls.eq(r.cls + 1), r.bc.eq(r.bc + 1)]

        with m.State("MAIN_GROUP"):
            # the group's tests and fields, registered for MAIN_DECIDE to act on: the global
            # compares and the position tests do not reach the scheduler's enables
            first = Mux(job.reach_l > r.bc, r.cls, r.bc - job.reach_l)
            m.d.sync += [m_past.eq(r.bc >= n), m_done.eq(r.base0 >= n),
                         m_act.eq(Cat(*[(idx_u[u] < n) & ~is_global(idx_u[u])
                                        for u in range(U)])),
                         g_start.eq(first + moff if PA else first),
                         g_kbase.eq(r.bq + U - 1 + job.right),
                         g_mlo.eq(Mux(r.bq > job.left, r.bq - job.left, 0)),
                         g_clip.eq(Mux(r.bq > job.left, 0, job.left - r.bq))]
            m.next = "MAIN_DECIDE"
        with m.State("MAIN_DECIDE"):
            m.next = "MAIN_GROUP"
            with m.If(m_past):
                with m.If(m_done):
                    m.d.sync += r.pbase.eq(n + moff if PA else n)
                    m.next = "GLOBAL_GROUP"
                with m.Else():  # a class with no rows in this last block
                    next_block()
            with m.Elif(m_act == 0):  # only global rows: nothing to compute here
                advance_main()
            with m.Else():
                m.d.sync += [r.active.eq(m_act), r.uload.eq(0)]
                if P.max_bands > 1:
                    m.d.comb += self._band_restart.eq(1)
                m.next = "MAIN_LOAD"
        with m.State("MAIN_LOAD"):
            # whether the group's first two window keys are global rows (for stage 1's
            # kig_r and its compares a key ahead), from g_start, set in MAIN_GROUP; the second
            # key's token registered first, compared in the cycle the descriptor is set
            m.d.sync += [g_kig.eq(key_hits(job, token(job, g_start, PA), P).any()),
                         g_tok2.eq(token(job, g_start + dil, PA)),
                         g_pos2.eq(g_start + dil), g_more.eq(g_kbase > g_mlo)]
            self._load_queries(m, r, r.active)
            loaded = (r.uload == U) & self._slots_done if P.max_bands > 1 else r.uload == U
            with m.If(loaded):  # at least a cycle after MAIN_GROUP set the g_* fields
                d = r.desc
                m.d.sync += [
                    d.main.eq(1), d.no_pv.eq(0), d.reset_max.eq(1),
                    d.reset_acc.eq(1), d.final.eq(1), d.qbank.eq(r.sched_bank),
                    d.active.eq(r.active), d.start.eq(g_start),
                    d.step.eq(dil), d.kmax.eq(g_kbase - g_mlo),
                    d.lim.eq(g_lim), d.clip.eq(g_clip),
                    # (the global keys, then the key-only columns', from the rows held)
                    d.nglob.eq(job.nheld if P.max_columns else job.ng), d.kig.eq(g_kig),
                    d.hits2.eq(key_hits(job, g_tok2, P)),
                    d.nxt.eq(g_more & (g_pos2 < g_lim)),
                    *self._paired(r),
                    r.desc_valid.eq(1),
                ]
                if P.max_bands > 1:
                    self._band_desc(m, r)
                m.next = "MAIN_HAND"
        with m.State("MAIN_HAND"):
            with m.If(self.desc.ready):
                m.d.sync += [r.desc_valid.eq(0), r.sched_bank.eq(~r.sched_bank)]
                advance_main()
                m.next = "MAIN_GROUP"

    def _band_slots(self, m, r):
        """Engines with bands beside the window: while a main group's queries load, its bands'
        key ranges, one slot (``job.slots``) a cycle through three registered steps (A: the
        band's first and last step for the group, clipped at row 0; B: its first position's
        global test and the second position's token; C: the second's global test), each band
        with keys appended to ``r.slots``. Returns "all slots done" (for MAIN_LOAD)."""
        P, job = self._params, self.job
        U, NB, PW = P.units, P.max_bands, P.pos_width
        RB, _, _ = check_widths(P)
        PA = P.paired_max
        GM = max(1, P.max_globals)
        moff, dil = job.moff, job.dil
        SL = band_slot_layout(P)
        g_lim = Signal(PW + 1)
        m.d.sync += g_lim.eq(job.n + moff if PA else job.n)
        r.slots = [Signal(SL, name=f"slot{k}") for k in range(NB)]
        r.nsl = Signal(range(NB + 1))
        r.low = Signal(PW + 1)
        # with EngineParams.band_switch_register, step S registers the slot and its first step
        # for the group before step A (a step more)
        BS = int(P.band_switch_register)
        DONE = NB + 2 + int(P.grid) + BS  # (a step more with the grid, one with step S)
        sk = Signal(range(DONE + 1))  # the slot in step A (S); DONE: all done
        slot = Array(job.slots)[sk[:max(1, (NB - 1).bit_length())]]
        # step A
        a_go, a_start, a_kmax, a_clip, a_span = (Signal(name="sa_go"), Signal(PW + 1, name="sa_start"),
                                                 Signal(signed(PW + 3), name="sa_kmax"),
                                                 Signal(RB + 1, name="sa_clip"),
                                                 Signal(RB + 1, name="sa_span"))
        lo = Signal(signed(PW + 3))
        s_live = (sk < NB) & slot.valid
        if BS:
            slot_s = Signal(slot_layout(P), name="ss_slot")
            s_go = Signal(name="ss_go")
            m.d.sync += [slot_s.eq(slot), s_go.eq(s_live), lo.eq(r.bq + slot.a)]
            slot, s_live = slot_s, s_go
        else:
            m.d.comb += lo.eq(r.bq + slot.a)
        pos = Mux(lo >= 0, r.bc + slot.reach, r.cls)
        if P.grid:
            a_scol = Signal(P.seq_width + 1, name="sa_scol")
            m.d.sync += a_scol.eq(Mux(lo >= 0, grid_add(r.bq_col, slot.acol, job.gw), 0))
        m.d.sync += [a_go.eq(s_live),
                     a_start.eq(pos + moff if PA else pos),
                     a_kmax.eq(lo + slot.span + (U - 1) - Mux(lo >= 0, lo, 0)),
                     a_clip.eq(Mux(lo >= 0, 0, -lo)), a_span.eq(slot.span)]
        if P.grid:
            # step G (engines with the grid): the band's leading and trailing keys that no unit
            # keeps left out
            a_go, a_start, a_kmax, a_clip, a_span, a_scol = self._grid_trim(
                m, r, a_go, a_start, a_kmax, a_clip, a_span, a_scol)
        # step B
        b_go = Signal(name="sb_go")
        b = Signal(SL, name="sb")
        b_tok2 = Signal(PW + 2, name="sb_tok2")
        b_pos2 = Signal(PW + 2, name="sb_pos2")
        m.d.sync += [b_go.eq(a_go & (a_kmax >= 0) & (a_start < g_lim)),
                     b.start.eq(a_start), b.kmax.eq(a_kmax[:PW + 1]), b.clip.eq(a_clip),
                     b.span.eq(a_span), b.kig.eq(key_hits(job, token(job, a_start, PA),
                                                          P).any()),
                     b.nxt.eq(a_kmax >= 1),
                     b_tok2.eq(token(job, a_start + dil, PA)), b_pos2.eq(a_start + dil)]
        if P.grid:
            m.d.sync += b.scol.eq(a_scol)
        # step C: append
        with m.If(b_go):
            for k in range(NB):
                with m.If(r.nsl == k):
                    m.d.sync += [r.slots[k].eq(b), r.slots[k].hits2.eq(key_hits(job, b_tok2, P)),
                                 r.slots[k].nxt.eq(b.nxt & (b_pos2 < g_lim))]
            m.d.sync += r.nsl.eq(r.nsl + 1)
        with m.If(sk < DONE):
            m.d.sync += sk.eq(sk + 1)
        with m.If(self._band_restart):
            m.d.sync += [sk.eq(0), r.nsl.eq(0)]
            # the lowest position this group's bands (and any later group's) start from: slot
            # 0's first step for the group, clipped as a window start is
            low = Signal(signed(PW + 3))
            m.d.comb += low.eq(r.bc + job.slots[0].reach)
            lowc = Mux(low >= 0, low, r.cls)
            m.d.sync += r.low.eq(lowc + moff if PA else lowc)
        if P.grid:
            return (sk == DONE) & self._unit_columns(m, r)
        return sk == DONE

    def _grid_trim(self, m, r, a_go, a_start, a_kmax, a_clip, a_span, a_scol):
        """A registered step after step A on engines with the grid: of a band's keys for the
        group, the leading ``L`` and trailing ``T`` keys whose grid columns lie outside every
        unit's column range are left out (its first key moves L on, its clip grows by L, so the
        units' windows stay where they were), and a band none of whose keys any unit keeps is
        dropped. Only where it is simple and exact: a grid is set, the units' query columns do
        not wrap into the next grid row (bq's column + units - 1 < width) and the band's keys
        span less than a grid row (kmax < width: their columns wrap at most once); else nothing
        is left out, and stage 1 drops those keys unit by unit as it issues them. Returns the
        step's registers in step A's order."""
        P, job = self._params, self.job
        U, PW, WB = P.units, P.pos_width, P.seq_width + 1
        RB, _, _ = check_widths(P)
        W, c = job.gw, job.gr
        # the group's units' column range (registers of bq's column, which holds through the
        # group's loads)
        qlo, qhi, qok = (Signal(WB, name="grid_qlo"), Signal(WB + 1, name="grid_qhi"),
                         Signal(name="grid_qok"))
        qend = r.bq_col + (U - 1)
        m.d.sync += [qlo.eq(Mux(r.bq_col > c, r.bq_col - c, 0)),
                     qhi.eq(Mux(qend + c >= W, W - 1, qend + c)),
                     qok.eq(job.gon & (qend < W))]
        ok = qok & (a_kmax >= 0) & (a_kmax < W)
        eraw = a_scol + a_kmax
        ecol = Mux(eraw >= W, eraw - W, eraw)
        lead = Mux(a_scol < qlo, qlo - a_scol, Mux(a_scol > qhi, W - a_scol + qlo, 0))
        trail = Mux(ecol > qhi, ecol - qhi, Mux(ecol < qlo, ecol + W - qhi, 0))
        L = Signal(WB + 1, name="grid_lead")
        T = Signal(WB + 1, name="grid_trail")
        m.d.comb += [L.eq(Mux(ok, lead, 0)), T.eq(Mux(ok, trail, 0))]
        g_go, g_start, g_kmax, g_clip, g_span, g_scol = (
            Signal(name="sg_go"), Signal(PW + 1, name="sg_start"),
            Signal(signed(PW + 3), name="sg_kmax"), Signal(RB + 2, name="sg_clip"),
            Signal.like(a_span, name="sg_span"), Signal(WB, name="sg_scol"))
        m.d.sync += [g_go.eq(a_go & ~(ok & (L > a_kmax))), g_start.eq(a_start + L),
                     g_kmax.eq(a_kmax - L - T), g_clip.eq(a_clip + L), g_span.eq(a_span),
                     g_scol.eq(Mux(L != 0, qlo, a_scol))]
        return g_go, g_start, g_kmax, g_clip, g_span, g_scol

    def _unit_columns(self, m, r):
        """With the grid: from a main group's restart, each unit's query's grid column
        (``r.qcol``), one unit a cycle from bq's (dilation 1: the units' queries are bq, bq + 1,
        ...). Returns "all units' columns are set" (U cycles after the restart; the query loads
        take at least as long)."""
        P, job = self._params, self.job
        U, WB = P.units, P.seq_width + 1
        r.qcol = [Signal(WB, name=f"qcol{u}") for u in range(U)]
        qc = Signal(WB, name="qcol_next")
        wi = Signal(range(U + 1), name="qcol_unit")
        with m.If(self._band_restart):
            m.d.sync += [qc.eq(r.bq_col), wi.eq(0)]
        with m.Elif(wi < U):
            m.d.sync += [qc.eq(grid_add(qc, 1, job.gw)), wi.eq(wi + 1)]
            for u in range(U):
                with m.If(wi == u):
                    m.d.sync += r.qcol[u].eq(qc)
        return wi == U

    def _band_desc(self, m, r):
        """The descriptor's band fields from the group's slots."""
        d = r.desc
        NB = self._params.max_bands
        first = r.slots[0]
        m.d.sync += [d.start.eq(first.start), d.kmax.eq(first.kmax), d.clip.eq(first.clip),
                     d.kig.eq(first.kig), d.hits2.eq(first.hits2), d.nxt.eq(first.nxt),
                     d.span.eq(first.span), d.nmore.eq(r.nsl - 1), d.low.eq(r.low)]
        m.d.sync += [d.more[k].eq(r.slots[k + 1]) for k in range(NB - 1)]
        if self._params.grid:
            m.d.sync += [d.scol.eq(first.scol)]
            m.d.sync += [d.qcol[u].eq(r.qcol[u]) for u in range(self._params.units)]

    def _global_passes(self, m, r):
        """Per global group of ``units`` global rows: a max pass (paired engines: done before
        the main pass) and a P.V pass over all n keys, in sub-groups of ``subgroup`` keys."""
        P, job = self._params, self.job
        U, SG, n = P.units, P.subgroup, job.n
        with m.State("GLOBAL_GROUP"):
            with m.If(r.ggrp >= job.ngg):
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [r.active.eq(self._rows_of(r.ggrp)),
                             r.uload.eq(0), r.gpass.eq(1 if P.paired_max else 0), r.gsub.eq(0)]
                m.next = "GLOBAL_LOAD"
        with m.State("GLOBAL_LOAD"):
            self._load_queries(m, r, r.active)
            with m.If(r.uload == U):
                m.next = "GLOBAL_SUB"
        with m.State("GLOBAL_SUB"):
            m.d.sync += self._global_sub(r, ~r.gpass, ~r.gpass & (r.gsub == 0), r.gsub == 0,
                                         r.gpass & (r.gsub + SG >= n), gmax=r.gsub == 0,
                                         gidx=r.ggrp)
            m.d.sync += r.g_end.eq(r.gsub + SG >= n)
            m.next = "GLOBAL_HAND"
        with m.State("GLOBAL_HAND"):
            def pass_done():
                m.d.sync += r.pbase.eq(r.pbase + n)
                with m.If(r.gpass):
                    m.d.sync += [r.ggrp.eq(r.ggrp + 1), r.sched_bank.eq(~r.sched_bank)]
                    m.next = "GLOBAL_GROUP"
                with m.Else():
                    m.d.sync += r.gpass.eq(1)
                    m.next = "GLOBAL_SUB"
            self._hand_sub(m, r, "GLOBAL_SUB", pass_done)
