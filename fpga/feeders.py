"""Row movers between the board's word-wide buffer RAMs and the engine's row streams.

A buffer holds ``rows`` rows of ``row_bits``, as ``words`` consecutive RAM words per row (word 0
holds the row's low bits, i.e. its first bytes). The iCE40's SPRAM is 16 bits wide, so a row takes
many words there; on the ECP5 a word is a whole row and a row moves every cycle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class RowReader(wiring.Component):
    """Reads the rows named on ``index`` from ``parts`` RAMs that share one address and offers
    them on ``row`` (part p's row in bits [p * row_bits, (p + 1) * row_bits)).

    words : RAM words per row, a power of two of at least 2 (a row per word: :class:`RowFetcher`);
    word_bits : RAM width. ``clear`` drops any row in flight (a new job).
    """

    def __init__(self, rows: int, words: int, word_bits: int, parts: int = 1):
        if words < 2 or words & (words - 1):
            raise ValueError(f"RowReader words = {words}: allowed a power of two >= 2 (a row "
                             f"per RAM word: RowFetcher)")
        self._rows, self._words, self._wb, self._parts = rows, words, word_bits, parts
        row_bits = words * word_bits
        super().__init__({
            "index": In(stream.Signature(range(rows))),
            "row": Out(stream.Signature(parts * row_bits)),
            "addr": Out(range(rows * words)),
            "re": Out(1),
            "rdata": In(parts * word_bits),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        R, WB, NP = self._words, self._wb, self._parts
        RB = R * WB
        shift = (R - 1).bit_length()
        base = Signal(range(self._rows * R))
        w = Signal(range(R))
        cap = Signal()  # a word read last cycle lands now
        cap_w = Signal(range(R))
        m.d.comb += [self.addr.eq(base + w)]
        m.d.sync += cap.eq(0)
        with m.If(cap):
            for p in range(NP):
                with m.Switch(cap_w):
                    for k in range(R):
                        with m.Case(k):
                            m.d.sync += self.row.payload[p * RB + k * WB:p * RB + (k + 1) * WB].eq(
                                self.rdata[p * WB:(p + 1) * WB])
        with m.If(self.row.valid & self.row.ready):
            m.d.sync += self.row.valid.eq(0)
        with m.FSM(name="reader"):
            with m.State("IDLE"):
                m.d.comb += self.index.ready.eq(~self.row.valid & ~self.clear)
                with m.If(self.index.valid & self.index.ready):
                    m.d.sync += [base.eq(self.index.payload << shift), w.eq(0)]
                    m.next = "READ"
            with m.State("READ"):
                m.d.comb += self.re.eq(1)
                m.d.sync += [cap.eq(1), cap_w.eq(w), w.eq(w + 1)]
                with m.If(self.clear):
                    m.next = "IDLE"
                with m.Elif(w == R - 1):
                    m.next = "LAND"
            with m.State("LAND"):  # the last word lands this cycle
                m.d.sync += self.row.valid.eq(~self.clear)
                m.next = "IDLE"
        with m.If(self.clear):
            m.d.sync += self.row.valid.eq(0)
        return m


class RowFetcher(wiring.Component):
    """Reads the rows named on ``index`` from ``parts`` block RAMs of a row per word that share
    one address, and offers them on ``row`` (part p's row in bits [p * row_bits, ...)), for the
    ECP5 build: the RAMs' read data is registered once more before anything uses it (a DP16KD's
    data output comes about 6 ns after the clock, and a buffer's block RAMs spread over the die,
    so that register sits beside them and the row reaches the engine a cycle later).

    A read lands in a FIFO of ``DEPTH`` rows two cycles after its issue; the reader issues only
    against a free place (a credit for each place neither filled nor awaited), so nothing it
    drives waits on ``row.ready``: the RAMs read every cycle (``re`` is 1), their address is the
    index, and ``index.ready`` is a register. ``DEPTH`` 4 covers the round trip (issue, read,
    register, offer, credit back), so a row moves every cycle while the sink takes one. The
    FIFO's rows load the registered read data in every cycle in which they are empty (no reset,
    a load enable per ``SLICE`` bits as in :class:`RowBuffer`) and count once a landing read
    marks them full; ``row.payload`` is a multiplexer on a copy of the read pointer per
    ``SLICE`` bits. ``clear`` (a new job) drops every row held or in flight.
    """

    DEPTH = 4
    SLICE = 32  #: bits of a row register behind one copy of its load enable (as RowBuffer)

    def __init__(self, rows: int, word_bits: int, parts: int = 1):
        self._rows, self._wb, self._parts = rows, word_bits, parts
        super().__init__({
            "index": In(stream.Signature(range(rows))),
            "row": Out(stream.Signature(parts * word_bits)),
            "addr": Out(range(rows)),
            "re": Out(1),
            "rdata": In(parts * word_bits),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        D, width = self.DEPTH, self._parts * self._wb
        credits = Signal(range(D + 1), init=D)
        has_credit = Signal(init=1)  # credits != 0, as a register
        v1, v2 = Signal(), Signal()  # a read issued one / two cycles ago
        rd_r = Signal(width, reset_less=True)  # the RAMs' read data, registered
        m.d.sync += rd_r.eq(self.rdata)
        issue = self.index.valid & has_credit
        m.d.comb += [self.index.ready.eq(has_credit), self.addr.eq(self.index.payload),
                     self.re.eq(1)]

        rows = [Signal(width, name=f"row{k}", reset_less=True) for k in range(D)]
        full = Signal(D)
        wptr, rptr = Signal(range(D), name="wptr"), Signal(range(D), name="rptr")
        set_, clr = Signal(D), Signal(D)
        nrep = max(1, -(-width // self.SLICE))
        for k in range(D):
            for j in range(nrep):
                ld = Signal(name=f"empty{k}_{j}", init=1)  # a copy of ~full[k] (follows itself)
                m.d.sync += ld.eq((ld & ~set_[k]) | clr[k] | self.clear)
                lo, hi = j * self.SLICE, min(width, (j + 1) * self.SLICE)
                with m.If(ld & ~full[k]):
                    m.d.sync += rows[k][lo:hi].eq(rd_r[lo:hi])
        # ``valid``: full[rptr], kept as a register of its own (the sink's ready, and through
        # it the credits, follow it in the same cycle)
        valid = Signal()
        m.d.comb += self.row.valid.eq(valid)
        # the payload multiplexer's select: a copy of rptr per SLICE bits (``rsel*_dup``, kept
        # apart by fpga/build.py), each beside its multiplexers
        rsel = [Signal.like(rptr, name=f"rsel{j}_dup") for j in range(nrep)]
        for j, sel in enumerate(rsel):
            lo, hi = j * self.SLICE, min(width, (j + 1) * self.SLICE)
            m.d.comb += self.row.payload[lo:hi].eq(Array(r[lo:hi] for r in rows)[sel])
        take = valid & self.row.ready
        m.d.comb += [set_.eq(Mux(v2, 1 << wptr, 0)), clr.eq(Mux(take, 1 << rptr, 0))]
        full_n, rptr_n = Signal.like(full, name="full_n"), Signal.like(rptr, name="rptr_n")
        m.d.comb += [full_n.eq((full | set_) & ~clr), rptr_n.eq(rptr + take)]
        # credits - issue + take != 0, without the sum
        more = take | (credits > 1) | ((credits == 1) & ~issue)
        with m.If(self.clear):
            m.d.sync += [credits.eq(D), has_credit.eq(1), v1.eq(0), v2.eq(0), full.eq(0),
                         wptr.eq(0), rptr.eq(0), valid.eq(0), *[r.eq(0) for r in rsel]]
        with m.Else():
            m.d.sync += [credits.eq(credits - issue + take), has_credit.eq(more), v1.eq(issue),
                         v2.eq(v1), full.eq(full_n), wptr.eq(wptr + v2), rptr.eq(rptr_n),
                         valid.eq(full_n.bit_select(rptr_n, 1)), *[r.eq(rptr_n) for r in rsel]]
        return m


class RowWriter(wiring.Component):
    """Writes the rows offered on ``row`` to consecutive buffer positions from 0 (after
    ``clear``), one RAM word per cycle, straight from the held payload (no row register).
    ``count`` is the number of rows written since ``clear``."""

    def __init__(self, rows: int, words: int, word_bits: int):
        self._rows, self._words, self._wb = rows, words, word_bits
        super().__init__({
            "row": In(stream.Signature(words * word_bits)),
            "addr": Out(range(rows * words)),
            "wdata": Out(word_bits),
            "we": Out(1),
            "count": Out(range(rows + 1)),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        R, WB = self._words, self._wb
        shift = (R - 1).bit_length()
        w = Signal(range(R))
        words = [self.row.payload[k * WB:(k + 1) * WB] for k in range(R)]
        with m.Switch(w):
            for k in range(R):
                with m.Case(k):
                    m.d.comb += self.wdata.eq(words[k])
        m.d.comb += [self.addr.eq((self.count << shift) + w), self.we.eq(self.row.valid),
                     self.row.ready.eq(w == R - 1)]
        with m.If(self.clear):
            m.d.sync += [self.count.eq(0), w.eq(0)]
        with m.Elif(self.row.valid):
            if R > 1:
                m.d.sync += w.eq(w + 1)
            with m.If(self.row.ready):
                m.d.sync += self.count.eq(self.count + 1)
        return m


class RowBuffer(wiring.Component):
    """A two-row stream buffer that cuts every combinational path through it, for wide rows.

    ``o.ready`` reaches only the buffer's two flags and its read pointer (and that pointer's
    copies), never the row registers: a row register loads ``i.payload`` in every cycle in which
    it is empty (the value counts only once the entry is marked full, in the cycle the input is
    taken), and ``o.payload`` is a multiplexer selected by the read pointer (a copy of it per
    ``SLICE`` bits). ``i.ready`` is a register. Full rate: a row can enter and another leave in
    the same cycle.

    ``clear`` drops both rows (a new job): it reaches only the flags and pointers; the row
    registers have no reset (a wide row's reset would be one more net to all its flip-flops).
    """

    #: bits of a row register behind one copy of its load enable (and of the read pointer), so
    #: that no load-enable net spans more of a K/V row's slices than 32 bits
    SLICE = 32

    def __init__(self, width: int):
        self._width = width
        super().__init__({
            "i": In(stream.Signature(width)),
            "o": Out(stream.Signature(width)),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        rows = [Signal.like(self.i.payload, name=f"row{k}", reset_less=True) for k in range(2)]
        full = Signal(2)
        wptr, rptr = Signal(), Signal()
        # A row register's load enable (its row is empty) is split per SLICE bits, so that no one
        # net reaches all of a wide row's flip-flops: a copy of ~full per slice, which follows its
        # own previous value (empty <- empty & ~set | clr; synthesis cannot merge such copies),
        # and-ed with ~full itself (so the row provably never loads while full, also from states
        # a proof by induction starts in).
        nrep = max(1, -(-self._width // self.SLICE))
        set_, clr = Signal(2), Signal(2)
        for k in range(2):
            for j in range(nrep):
                ld = Signal(name=f"empty{k}_{j}", init=1)
                m.d.sync += ld.eq((ld & ~set_[k]) | clr[k] | self.clear)
                lo, hi = j * self.SLICE, min(self._width, (j + 1) * self.SLICE)
                with m.If(ld & ~full[k]):
                    m.d.sync += rows[k][lo:hi].eq(self.i.payload[lo:hi])
        m.d.comb += [self.i.ready.eq(~full.bit_select(wptr, 1)),
                     self.o.valid.eq(full.bit_select(rptr, 1))]
        put = self.i.valid & self.i.ready
        take = self.o.valid & self.o.ready
        # The output multiplexer's select, a copy of the read pointer per SLICE bits (``*_dup``:
        # set from rptr's next value, kept apart by the FPGA builds), so that no one net reaches
        # all of a wide row's multiplexers
        rptr_n = Mux(self.clear, 0, rptr ^ take)
        for j in range(nrep):
            sel = Signal(name=f"rsel{j}_dup")
            m.d.sync += sel.eq(rptr_n)
            lo, hi = j * self.SLICE, min(self._width, (j + 1) * self.SLICE)
            m.d.comb += self.o.payload[lo:hi].eq(Mux(sel, rows[1][lo:hi], rows[0][lo:hi]))
        m.d.comb += [set_.eq(Mux(put, Mux(wptr, 0b10, 0b01), 0)),
                     clr.eq(Mux(take, Mux(rptr, 0b10, 0b01), 0))]
        m.d.sync += rptr.eq(rptr_n)
        with m.If(self.clear):
            m.d.sync += [full.eq(0), wptr.eq(0)]
        with m.Else():
            m.d.sync += [full.eq((full | set_) & ~clr), wptr.eq(wptr ^ put)]
        return m
