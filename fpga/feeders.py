"""Row movers between the board's word-wide buffer RAMs and the engine's row streams.

A buffer holds ``rows`` rows of ``row_bits``, as ``words`` consecutive RAM words per row (word 0
holds the row's low bits, i.e. its first bytes). The iCE40's SPRAM is 16 bits wide, so a row takes
many words there; on the ECP5 a word is a whole row and a row moves every cycle.

:class:`EngineFeeders` puts them together for the stream engine inside the board core: Q rows by
position, K/V rows in the engine's order, output rows back to the O buffer.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..hw.blocks import int8_row
from ..hw.kv_ring import kv_layout
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .buffers import buffer_read_signature, buffer_write_signature


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


def row_buffer(m: Module, name: str, src, clear):
    """``src`` (a row stream) through a two-row :class:`RowBuffer` named ``name`` (a cycle of
    latency at full rate, every path through it cut; ``clear`` drops its rows): the stream it
    offers."""
    m.submodules[name] = rb = RowBuffer(len(Value.cast(src.payload)))
    m.d.comb += [rb.clear.eq(clear), rb.i.payload.eq(src.payload), rb.i.valid.eq(src.valid),
                 src.ready.eq(rb.i.ready)]
    return rb.o


class EngineFeeders(wiring.Component):
    """The stream engine's feeders on the board: its ``q`` and ``kv`` rows from the Q, K and V
    buffers, its ``o`` rows into the O buffer.

    params : the engine's; word_bytes : the buffers' word (a row is ``head_dim / word_bytes``
    words).

    Ports: ``cfg`` (the configuration register, held still during a job), ``start`` (the job's
    start pulse, a register) and ``start_set`` (its next value), the engine's streams ``q``,
    ``kv`` (out) and ``o`` (in), the buffers' engine side (``q_read``, ``k_read``, ``v_read``,
    ``o_write``: :class:`~swattn.fpga.buffers.BufferPorts`) and ``rows_out`` (rows written since
    the start).

    Per cycle: an index generator offers the next row to read, while the buffer is the engine
    side's (``q_read.own``, ``k_read.own``): Q rows by output position 0 .. n-1
    (:func:`swattn.sw.spec.schedule.output_order`; an engine with paired max passes takes the
    global rows, the last n_globals positions, once before them), K/V rows the global rows in
    register order, then ``EngineParams.kv_passes`` passes of 0 .. n-1. The readers
    (:class:`RowReader`, or :class:`RowFetcher` with a row per word) read them and offer the rows;
    the writer (:class:`RowWriter`) writes the output rows to consecutive positions. A start
    resets them all, each from a copy of its own of the pulse (``start_*_dup``, registers set
    from ``start_set``: one register reaching them all is a net across the die).

    With a row per RAM word the rows pass two-row :class:`RowBuffer` stages (a cycle of latency
    each, at full rate): one for Q; two in a row for K/V, so that a row crosses from the reader's
    FIFO beside the K/V buffers to the engine's ring writer, whose registers lie beside the
    ring's slices spread over the die, in three steps; two for the output rows, so that the O
    buffer's write enable does not follow the engine's valid in the same cycle, and a row crosses
    the die from the engine's normalisers to the O buffer's block RAMs in two steps.
    """

    def __init__(self, params: EngineParams, word_bytes: int):
        d = params.head_dim
        self.params = params
        self._rows = 1 << params.seq_width
        self._words = d // word_bytes
        self._wb = 8 * word_bytes
        depth = self._rows * self._words
        super().__init__({
            "cfg": In(regs.config_layout(params)),
            "start": In(1),
            "start_set": In(1),
            "q": Out(stream.Signature(int8_row(d))),
            "kv": Out(stream.Signature(kv_layout(d))),
            "o": In(stream.Signature(int8_row(d))),
            "q_read": Out(buffer_read_signature(self._wb, depth)),
            "k_read": Out(buffer_read_signature(self._wb, depth)),
            "v_read": Out(buffer_read_signature(self._wb, depth)),
            "o_write": Out(buffer_write_signature(self._wb, depth)),
            "rows_out": Out(range(self._rows + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, R, WB = self._rows, self._words, self._wb

        def start_copy(name):
            c = Signal(name=f"start_{name}_dup")
            m.d.sync += c.eq(self.start_set)
            return c

        if R == 1:  # block RAM: its read data registered beside it (RowFetcher)
            m.submodules.q_reader = qr = RowFetcher(rows, WB, 1)
            m.submodules.kv_reader = kvr = RowFetcher(rows, WB, 2)
        else:
            m.submodules.q_reader = qr = RowReader(rows, R, WB, 1)
            m.submodules.kv_reader = kvr = RowReader(rows, R, WB, 2)
        m.submodules.o_writer = ow = RowWriter(rows, R, WB)
        m.d.comb += [qr.clear.eq(start_copy("qr")), kvr.clear.eq(start_copy("kvr")),
                     ow.clear.eq(start_copy("ow"))]
        qi_n = self._q_index(m, qr)
        kidx_n = self._kv_index(m, kvr)
        m.d.comb += [self.q_read.addr.eq(qr.addr), self.q_read.re.eq(qr.re),
                     self.q_read.addr_next.eq(qi_n), qr.rdata.eq(self.q_read.rdata)]
        for part, port in enumerate((self.k_read, self.v_read)):
            m.d.comb += [port.addr.eq(kvr.addr), port.re.eq(kvr.re), port.addr_next.eq(kidx_n),
                         kvr.rdata[part * WB:(part + 1) * WB].eq(port.rdata)]

        q_src = row_buffer(m, "q_buf", qr.row, start_copy("q_buf")) if R == 1 else qr.row
        m.d.comb += [self.q.payload.as_value().eq(q_src.payload), self.q.valid.eq(q_src.valid),
                     q_src.ready.eq(self.q.ready)]
        kv_src = kvr.row
        if R == 1:
            kv_mid = row_buffer(m, "kv_buf", kvr.row, start_copy("kv_buf"))
            kv_src = row_buffer(m, "kv_buf1", kv_mid, start_copy("kv_buf1"))
        m.d.comb += [self.kv.valid.eq(kv_src.valid),
                     self.kv.payload.as_value().eq(kv_src.payload),
                     kv_src.ready.eq(self.kv.ready)]
        o_src = self.o
        o_held = Const(0, 1)  # a row on its way to the writer
        if R == 1:
            o_mid = row_buffer(m, "o_buf", self.o, start_copy("o_buf"))
            o_held = o_mid.valid
            o_src = row_buffer(m, "o_buf1", o_mid, start_copy("o_buf1"))
        m.d.comb += [ow.row.valid.eq(o_src.valid), ow.row.payload.eq(o_src.payload),
                     o_src.ready.eq(ow.row.ready)]
        # the O buffer is the writer's until its last row is written
        m.d.comb += [self.o_write.addr.eq(ow.addr), self.o_write.wdata.eq(ow.wdata),
                     self.o_write.we.eq(ow.we), self.o_write.held.eq(ow.row.valid | o_held),
                     self.rows_out.eq(ow.count)]
        return m

    def _q_index(self, m: Module, qr):
        """Q rows by output position (an engine with paired max passes: the global rows, the
        last ng positions, once before them). Returns the index's next value (the buffer
        slices' copies follow it)."""
        P, rows, start = self.params, self._rows, self.start
        n, ng = self.cfg.n, self.cfg.n_globals
        qi = Signal(range(rows + 1))
        qi_n = Signal.like(qi)
        # qi < n, a register set with qi (from compares of registers: qi + 1 < n as
        # qi < n - 1), so that no carry chain lies between the index's handshake and the
        # copies of qi_n beside the Q buffer's slices
        q_more = Signal()
        n_m1 = Signal(signed(len(n) + 1))  # (of the configuration: it holds before a START)
        m.d.sync += n_m1.eq(n - 1)
        m.d.comb += [qr.index.valid.eq(self.q_read.own & q_more), qr.index.payload.eq(qi),
                     qi_n.eq(qi)]
        m.d.sync += qi.eq(qi_n)
        if P.paired_max:
            qpre = Signal()  # in the global rows' first copy
            with m.If(start):
                m.d.comb += qi_n.eq(Mux(ng != 0, n - ng, 0))
                m.d.sync += [qpre.eq(ng != 0), q_more.eq((n != 0) & (ng <= n))]
            with m.Elif(qr.index.valid & qr.index.ready):
                with m.If(qpre & (qi + 1 >= n)):
                    m.d.comb += qi_n.eq(0)
                    m.d.sync += [qpre.eq(0), q_more.eq(n != 0)]
                with m.Else():
                    m.d.comb += qi_n.eq(qi + 1)
                    m.d.sync += q_more.eq(qi < n_m1)
        else:
            with m.If(start):
                m.d.comb += qi_n.eq(0)
                m.d.sync += q_more.eq(n != 0)
            with m.Elif(qr.index.valid & qr.index.ready):
                m.d.comb += qi_n.eq(qi + 1)
                m.d.sync += q_more.eq(qi < n_m1)
        return qi_n

    def _kv_index(self, m: Module, kvr):
        """K/V rows: the globals in register order, the key-only columns in register order (an
        engine with max_columns), then EngineParams.kv_passes passes of 0 .. n-1
        (:func:`swattn.sw.spec.schedule.kv_order`). Returns the index's next value (the buffer
        slices' copies follow it).

        The index offered now (``kidx``, the K and V buffers' read address: their block RAMs
        spread over the die) and whether there is one (``kmore``) are registers, and so is
        everything their next values are picked from, so that a step is one multiplexer after
        the handshake: ``gt`` (a thermometer of the global and column rows still to come, the
        one offered now included) and ``gsh`` (those rows' indices, shifted down a step at a
        time; with columns loaded from ``pre``, the globals and then the columns packed
        together, a register of the configuration, which holds still before a START);
        ``kpos1`` the next position of the pass (no adder after the handshake); ``rem`` counts
        the positions of a pass down to -1 (its sign: the pass's last row) and ``prem`` the
        passes (its sign: the last pass)."""
        P, rows, start, cfg = self.params, self._rows, self.start, self.cfg
        U = P.units
        n, ng = cfg.n, cfg.n_globals
        GM = max(1, P.max_globals)
        CM = P.max_columns
        KM = GM + CM  # the rows before the passes: globals, then columns
        passes = Signal(9)  # EngineParams.kv_passes(ng), of the configuration (still in a job)
        ngg = (ng + U - 1) >> (U.bit_length() - 1)
        m.d.comb += passes.eq(1 + ngg + ((ngg + 1) >> 1) if P.paired_max else 1 + (ngg << 1))
        n_m2 = Signal(signed(len(n) + 1))  # registers of the configuration: it holds
        passes_m2 = Signal(signed(len(passes) + 1))  # still for many cycles before a START
        m.d.sync += [n_m2.eq(n - 2), passes_m2.eq(passes - 2)]
        gt = Signal(KM)
        gsh = [Signal(range(rows), name=f"gsh{i}") for i in range(KM)]
        if CM:
            pre, nk = self._prefix_rows(m, KM)
        else:
            pre, nk = [cfg.globals[i] for i in range(GM)], ng
        kpos = Signal(range(rows))
        kpos1 = Signal(range(rows + 1))  # kpos + 1, a register set with kpos
        rem = Signal(signed(len(kpos) + 2))
        prem = Signal.like(passes_m2)
        kidx = Signal(range(rows))
        kidx_n = Signal.like(kidx)  # its next value (the buffer slices' copies follow it too)
        m.d.comb += kidx_n.eq(kidx)
        m.d.sync += kidx.eq(kidx_n)
        kmore = Signal(init=1)  # (as the index generator always had it after a reset; no
        # row is read before a start, as the buffers are the link's until the engine is BUSY)
        m.d.comb += [kvr.index.valid.eq(self.k_read.own & kmore), kvr.index.payload.eq(kidx)]
        last = rem[-1]
        with m.If(start):
            m.d.sync += [gt.eq(Cat(*[nk > i for i in range(KM)])), kpos.eq(0), kpos1.eq(1),
                         rem.eq(n_m2), prem.eq(passes_m2), kmore.eq(1)]
            m.d.comb += kidx_n.eq(Mux(nk != 0, pre[0], 0))
            m.d.sync += [gsh[i].eq(pre[i]) for i in range(KM)]
        with m.Elif(kvr.index.valid & kvr.index.ready):
            m.d.sync += [gt.eq(gt >> 1), *[gsh[i].eq(gsh[i + 1]) for i in range(KM - 1)]]
            with m.If(gt[1] if KM > 1 else 0):
                m.d.comb += kidx_n.eq(gsh[1] if KM > 1 else 0)
            with m.Elif(gt[0]):  # the last global or column row: position 0 of pass 0 next
                m.d.comb += kidx_n.eq(0)
            with m.Elif(last):  # a pass's last row
                m.d.comb += kidx_n.eq(0)
                m.d.sync += [kpos.eq(0), kpos1.eq(1), rem.eq(n_m2), prem.eq(prem - 1),
                             kmore.eq(~prem[-1])]
            with m.Else():
                m.d.comb += kidx_n.eq(kpos1)
                m.d.sync += [kpos.eq(kpos1), kpos1.eq(kpos1 + 1), rem.eq(rem - 1)]
        return kidx_n

    def _prefix_rows(self, m: Module, slots: int):
        """The rows streamed before the passes on an engine with key-only columns, as registers
        of the configuration (which holds still before a START): ``pre[i]`` is global i for
        i < n_globals, else column i - n_globals; and ``nk``, their count."""
        cfg, GM, CM = self.cfg, self.params.max_globals, self.params.max_columns
        # (the selects from a copy of the global count, and the rows from copies of the
        # globals and columns, beside the rows' registers: the store holds the configuration
        # long before a START, so two cycles more are free)
        ng_c = Signal.like(cfg.n_globals, name="kv_pre_ng")
        m.d.sync += ng_c.eq(cfg.n_globals)
        ng, nc = cfg.n_globals, cfg.n_columns
        g_c = [Signal.like(cfg.globals[i], name=f"kv_pre_g{i}") for i in range(GM)]
        c_c = [Signal.like(cfg.columns[j], name=f"kv_pre_c{j}") for j in range(CM)]
        m.d.sync += [g_c[i].eq(cfg.globals[i]) for i in range(GM)]
        m.d.sync += [c_c[j].eq(cfg.columns[j]) for j in range(CM)]
        pre = [Signal(range(self._rows), name=f"kv_pre{i}") for i in range(slots)]
        nk = Signal(range(slots + 1), name="kv_pre_count")
        m.d.sync += nk.eq(Mux(ng > GM, GM, ng) + Mux(nc > CM, CM, nc))
        for i, r in enumerate(pre):
            with m.Switch(ng_c):
                for g in range(GM + 1):
                    with m.Case(g):
                        if i < g:
                            m.d.sync += r.eq(g_c[i])
                        elif i - g < CM:
                            m.d.sync += r.eq(c_c[i - g])
                        else:
                            m.d.sync += r.eq(0)
        return pre, nk
