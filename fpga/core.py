"""The board core: host-link protocol, row buffers, feeders and the engine, behind byte streams.

``BoardCore`` speaks the frames of :mod:`swattn.sw.protocol` on ``rx``/``tx`` byte streams (a UART
outside, or a testbench directly). Between jobs the host writes the configuration register and the
Q, K, V row buffers and reads the output buffer; during a job the buffers belong to the feeders,
which stream Q rows by position, K/V rows in the engine's order (the global rows, then all rows
once per pass, :func:`swattn.sw.schedule.kv_order`) and write the output rows by position.

A write's payload goes to the buffer as it arrives (there is no room to stage a frame on the
iCE40); its header was checked by CRC before, so only the addressed rows can change, and a payload
CRC error tells the host to send the frame again.
"""


from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..hw.engine import Engine
from ..hw.serial import WORD_BYTES as SERIAL_WORD_BYTES
from ..hw.serial import SerialEngine
from ..sw.spec import protocol as pr
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .feeders import RowBuffer, RowFetcher, RowReader, RowWriter
from .ram import SinglePortRAM

#: reply payload sources
SRC_NONE, SRC_WORD, SRC_IDENTITY, SRC_OUT = range(4)


def _version() -> str:
    try:
        from swattn import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "0.0.0"


def crc16_rtl(m: Module, crc, byte, name: str):
    """:func:`swattn.sw.protocol.crc16_update` as combinational logic."""
    steps = []

    def bind(v):
        s = Signal(16, name=f"{name}_{len(steps)}")
        m.d.comb += s.eq(v)
        steps.append(s)
        return s
    return pr.crc16_update(crc, byte, select=Mux, bind=bind)


def config_store_plan(layout: data.StructLayout, keep: dict[str, int]):
    """Where each bit of the configuration register goes in a store that keeps, of each field
    (of each element of an array field), its low ``keep[name]`` bits and one flag for any higher
    bit set (:func:`swattn.sw.regs.config_bits`).

    Returns ``(n_kept, n_flags, src, view)``: ``src[b]`` is where received bit ``b`` goes,
    ``("k", i)`` kept bit i or ``("f", j)`` into flag j; ``view[b]`` is what the engine sees at
    bit ``b``: a kept bit, a flag (at the field's top bit), or None (zero)."""
    src, view = [None] * layout.size, [None] * layout.size
    n_kept = n_flags = 0
    for name, field in layout:
        shape = field.shape
        elems = ([(field.offset + i * shape.elem_shape.width, shape.elem_shape.width)
                  for i in range(shape.length)] if isinstance(shape, data.ArrayLayout)
                 else [(field.offset, field.width)])
        for off, width in elems:
            k = min(width, keep.get(name, width))
            for b in range(k):
                src[off + b] = view[off + b] = ("k", n_kept)
                n_kept += 1
            if k < width:
                for b in range(k, width):
                    src[off + b] = ("f", n_flags)
                view[off + width - 1] = ("f", n_flags)
                n_flags += 1
    return n_kept, n_flags, src, view


def row_buffer(m: Module, name: str, src, clear):
    """``src`` (a row stream) through a two-row :class:`RowBuffer` named ``name`` (a cycle of
    latency at full rate, every path through it cut; ``clear`` drops its rows): the stream it
    offers."""
    m.submodules[name] = rb = RowBuffer(len(Value.cast(src.payload)))
    m.d.comb += [rb.clear.eq(clear), rb.i.payload.eq(src.payload), rb.i.valid.eq(src.valid),
                 src.ready.eq(rb.i.ready)]
    return rb.o


class BoardCore(wiring.Component):
    """Protocol, buffers and engine.

    params : the engine's parameters; the buffers hold ``2 ** seq_width`` rows each.
    word_bytes : buffer RAM width in bytes (divides head_dim; 2 for iCE40 SPRAM, head_dim for a
        row per cycle on block RAM).
    clock_hz : reported by IDENTIFY.
    timeout_cycles : an unfinished frame is dropped after this many cycles without a byte.
    spram : put the buffers in SB_SPRAM256KA blocks (iCE40UP).

    The engine follows ``params``: the serial engine (:class:`~swattn.hw.serial.SerialEngine`, on
    the buffers' 16-bit words) for ``params.serial`` (lanes 4), else the stream engine
    (:class:`~swattn.hw.engine.Engine` behind row feeders).
    """

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    busy: Out(1)

    #: with a row per block RAM word, the Q/K/V buffers are cut into this many memories side by
    #: side, each with its own copies of the registers its address comes from (8: a 32-bit
    #: slice is 4 DP16KD, so that no address net has to reach block RAMs far apart)
    BRAM_SLICES = 8

    def __init__(self, params: EngineParams, *, word_bytes: int, clock_hz: int,
                 timeout_cycles: int, spram: bool = False):
        d = params.head_dim
        self._MustUse__silence = True  # until the arguments are known good (no warning on error)
        if params.serial and word_bytes != SERIAL_WORD_BYTES:
            raise ValueError(f"word_bytes = {word_bytes}: the serial engine (lanes "
                             f"{params.lanes}) reads words of {SERIAL_WORD_BYTES} bytes")
        if word_bytes < 1 or d % word_bytes or (d // word_bytes) & (d // word_bytes - 1):
            raise ValueError(f"word_bytes = {word_bytes}: must divide head_dim {d} into a power "
                             f"of two of words")
        if spram and word_bytes == d:
            raise ValueError("SPRAM buffers are 16 bits wide: word_bytes must be 2")
        self.params = params
        self._W = word_bytes
        self._clock_hz = int(clock_hz)
        self._timeout = max(16, int(timeout_cycles))
        self._spram = spram
        self.buffer_rows = 1 << params.seq_width
        self._MustUse__silence = False
        super().__init__()

    def identity(self) -> dict:
        return pr.identity_fields(self.params, self.buffer_rows, self._clock_hz, _version())

    def elaborate(self, platform):
        m = Module()
        P = self.params
        d, W = P.head_dim, self._W
        R = d // W
        WB = 8 * W
        shift = (R - 1).bit_length()
        rows = self.buffer_rows
        depth = rows * R
        U = P.units

        # the configuration register below holds still during a job (WRITE_CONFIG is refused
        # while one runs), so the engine reads it without a copy of its own
        serial = P.serial
        if serial:
            m.submodules.engine = eng = SerialEngine(P)
        else:
            # the engine's own copy of the configuration, loaded at the start beside the logic
            # that reads it (180 flip-flops more than reading the core's store directly, which
            # sits across the die from the scheduler's and the checks' compares)
            m.submodules.engine = eng = Engine(P, hold_config=True)
        rams = {}
        # With a row per block RAM word (the ECP5), the Q, K and V buffers are each cut into
        # BRAM_SLICES memories side by side, each addressed by copies of its own of the
        # registers the address comes from (the read index, the link's address, the owner:
        # ``*_dup``, kept apart by fpga/build.py), so that no address net reaches all of a
        # buffer's block RAMs, which spread over the die (29 of them at 2048 x 256 bits).
        NS = self.BRAM_SLICES if (not serial and R == 1 and not self._spram) else 1
        slices = {}
        for name in ("q", "k", "v", "o"):
            if NS > 1:
                slices[name] = [SinglePortRAM(WB // NS, depth) for _ in range(NS)]
                for j, r_ in enumerate(slices[name]):
                    m.submodules[f"buf_{name}{j}"] = r_
            else:
                rams[name] = m.submodules[f"buf_{name}"] = SinglePortRAM(WB, depth, self._spram)

        cfg_layout = regs.config_layout(P)
        cfg_nbytes = pr.config_bytes(P)
        cfg_valid = Signal()
        # only the bits the engine reads, and a flag per field for the rest (the iCE40's cells:
        # 77 flip-flops instead of the register's 184; the ULX3S's 159 instead of 376), and the
        # engine's compares at those widths
        n_kept, n_flags, cfg_src, cfg_view = config_store_plan(cfg_layout, regs.config_bits(P))
        cfg_kept, cfg_flags = Signal(n_kept), Signal(max(1, n_flags))
        cfg_bits = Cat(*[Const(0, 1) if v is None else
                         (cfg_kept if v[0] == "k" else cfg_flags)[v[1]] for v in cfg_view])
        cfg = cfg_layout(cfg_bits)
        m.d.comb += eng.cfg.as_value().eq(cfg_bits)

        start = Signal()  # one-cycle pulse: start a job (a register: the link's state decode
        # does not reach the engine's checks in the same cycle)
        m.d.sync += start.eq(0)
        m.d.comb += eng.start.eq(start)
        # copies of the start pulse, one per feeder and row buffer that it clears, set with it
        # (``*_dup``: one register reaching them all is a net across the die)
        start_dups = []

        def start_copy(name):
            c = Signal(name=f"start_{name}_dup")
            m.d.sync += c.eq(0)
            start_dups.append(c)
            return c
        active = Signal()  # the buffers belong to the feeders
        m.d.comb += [active.eq(eng.status.state == regs.State.BUSY), self.busy.eq(active)]
        # Which side a stream engine's buffer belongs to, per buffer: a register a cycle behind
        # ``active`` (the readers issue and the link writes only by it; the link does not write
        # around a START or a job's end), one copy each, beside its block RAMs (``_dup``:
        # synthesis keeps the copies, fpga/build.py)
        own = {name: Signal(name=f"own_{name}_dup") for name in ("q", "k", "v", "o")}
        m.d.sync += [own[name].eq(active) for name in own]

        # ------------------------------------------------------------- feeders (engine side)
        if not serial:
            if R == 1:  # block RAM: its read data registered beside it (RowFetcher)
                m.submodules.q_reader = qr = RowFetcher(rows, WB, 1)
                m.submodules.kv_reader = kvr = RowFetcher(rows, WB, 2)
            else:
                m.submodules.q_reader = qr = RowReader(rows, R, WB, 1)
                m.submodules.kv_reader = kvr = RowReader(rows, R, WB, 2)
            m.submodules.o_writer = ow = RowWriter(rows, R, WB)
            m.d.comb += [qr.clear.eq(start_copy("qr")), kvr.clear.eq(start_copy("kvr")),
                         ow.clear.eq(start_copy("ow"))]
            n = cfg.n
            ng = cfg.n_globals
            # Q rows by output position 0 .. n-1 (schedule.output_order); an engine with paired max
            # passes takes the global rows, the last ng positions, once before them
            qi = Signal(range(rows + 1))
            qi_n = Signal.like(qi)  # its next value (the buffer slices' copies follow it too)
            # qi < n, a register set with qi (from compares of registers: qi + 1 < n as
            # qi < n - 1), so that no carry chain lies between the index's handshake and the
            # copies of qi_n beside the Q buffer's slices
            q_more = Signal()
            n_m1 = Signal(signed(len(n) + 1))  # (of the configuration: it holds before a START)
            m.d.sync += n_m1.eq(n - 1)
            m.d.comb += [qr.index.valid.eq(own["q"] & q_more), qr.index.payload.eq(qi),
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
            # (a row per RAM word: through a RowBuffer, as the K/V rows below)
            q_src = row_buffer(m, "q_buf", qr.row, start_copy("q_buf")) if R == 1 else qr.row
            m.d.comb += [eng.q.payload.as_value().eq(q_src.payload), eng.q.valid.eq(q_src.valid),
                         q_src.ready.eq(eng.q.ready)]
            # K/V rows: the globals in register order, then EngineParams.kv_passes passes of 0..n-1.
            # The index offered now (``kidx``, the K and V buffers' read address: their block RAMs
            # spread over the die) and whether there is one (``kmore``) are registers, and so is
            # everything their next values are picked from, so that a step is one multiplexer
            # after the handshake: ``gt`` (a thermometer of the global rows still to come, the
            # one offered now included) and ``gsh`` (those rows' indices, shifted down a step at a
            # time); ``kpos1`` the next position of the pass (no adder after the handshake);
            # ``rem`` counts the positions of a pass down to -1 (its sign: the pass's last row)
            # and ``prem`` the passes (its sign: the last pass).
            GM = max(1, P.max_globals)
            passes = Signal(9)  # EngineParams.kv_passes(ng), of the configuration (still in a job)
            ngg = (ng + U - 1) >> (U.bit_length() - 1)
            m.d.comb += passes.eq(1 + ngg + ((ngg + 1) >> 1) if P.paired_max else
                                  1 + (ngg << 1))
            n_m2 = Signal(signed(len(n) + 1))  # registers of the configuration: it holds
            passes_m2 = Signal(signed(len(passes) + 1))  # still for many cycles before a START
            m.d.sync += [n_m2.eq(n - 2), passes_m2.eq(passes - 2)]
            gt = Signal(GM)
            gsh = [Signal(range(rows), name=f"gsh{i}") for i in range(GM)]
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
            m.d.comb += [kvr.index.valid.eq(own["k"] & kmore), kvr.index.payload.eq(kidx)]
            last = rem[-1]
            with m.If(start):
                m.d.sync += [gt.eq(Cat(*[ng > i for i in range(GM)])), kpos.eq(0), kpos1.eq(1),
                             rem.eq(n_m2), prem.eq(passes_m2), kmore.eq(1)]
                m.d.comb += kidx_n.eq(Mux(ng != 0, cfg.globals[0], 0))
                m.d.sync += [gsh[i].eq(cfg.globals[i]) for i in range(GM)]
            with m.Elif(kvr.index.valid & kvr.index.ready):
                m.d.sync += [gt.eq(gt >> 1), *[gsh[i].eq(gsh[i + 1]) for i in range(GM - 1)]]
                with m.If(gt[1] if GM > 1 else 0):
                    m.d.comb += kidx_n.eq(gsh[1] if GM > 1 else 0)
                with m.Elif(gt[0]):  # the last global row: position 0 of pass 0 next
                    m.d.comb += kidx_n.eq(0)
                with m.Elif(last):  # a pass's last row
                    m.d.comb += kidx_n.eq(0)
                    m.d.sync += [kpos.eq(0), kpos1.eq(1), rem.eq(n_m2), prem.eq(prem - 1),
                                 kmore.eq(~prem[-1])]
                with m.Else():
                    m.d.comb += kidx_n.eq(kpos1)
                    m.d.sync += [kpos.eq(kpos1), kpos1.eq(kpos1 + 1), rem.eq(rem - 1)]

            # (a row per RAM word: through two two-row RowBuffers in a row, a cycle of latency
            # each at full rate, so that a row crosses from the reader's FIFO beside the K/V
            # buffers to the engine's ring writer, whose registers lie beside the ring's slices
            # spread over the die, in three steps)
            kv_src = kvr.row
            if R == 1:
                kv_mid = row_buffer(m, "kv_buf", kvr.row, start_copy("kv_buf"))
                kv_src = row_buffer(m, "kv_buf1", kv_mid, start_copy("kv_buf1"))
            m.d.comb += [eng.kv.valid.eq(kv_src.valid),
                         eng.kv.payload.as_value().eq(kv_src.payload),
                         kv_src.ready.eq(eng.kv.ready)]
            # Output rows to the writer; with a row per RAM word through two two-row RowBuffers
            # in a row (a cycle of latency each, full rate), so that the O buffer's write enable
            # does not follow the engine's valid in the same cycle, and a row crosses the die
            # from the engine's normalisers to the O buffer's block RAMs in two steps.
            o_src = eng.o
            o_held = Const(0, 1)  # a row on its way to the writer
            if R == 1:
                o_mid = row_buffer(m, "o_buf", eng.o, start_copy("o_buf"))
                o_held = o_mid.valid
                o_src = row_buffer(m, "o_buf1", o_mid, start_copy("o_buf1"))
            m.d.comb += [ow.row.valid.eq(o_src.valid), ow.row.payload.eq(o_src.payload),
                         o_src.ready.eq(ow.row.ready)]

        # ------------------------------------------------------------- link side of the buffers
        laddr = Signal(range(depth + 1))
        # copies of laddr, one per Q/K/V buffer, each set as laddr is (from its own value when it
        # steps), so that the buffers' slice address copies (8 each) follow a register of their
        # own, not one laddr reaching all 24
        # (only with sliced buffers: a *_dup register is kept through synthesis even unused)
        laddr_c = ({name: Signal.like(laddr, name=f"laddr_{name}_dup") for name in ("q", "k", "v")}
                   if NS > 1 else {})

        def laddr_to(value):
            """laddr and its copies set to ``value(register)``."""
            return [r.eq(value(r)) for r in [laddr, *laddr_c.values()]]
        link_we = Signal()
        link_wdata = Signal(WB)
        wtarget = Signal(2)  # 0: q, 1: k, 2: v
        # The link's writes reach the Q/K/V buffers a cycle later, from registers: a buffer's
        # block RAMs spread over the die, and the frame receiver's decode would otherwise sit in
        # front of that routing. (The link writes only between jobs, bytes apart.)
        lw_addr = Signal.like(laddr)
        lw_data = Signal.like(link_wdata, reset_less=True)
        lw_en, lw_en_n = Signal(3), Signal(3)
        m.d.comb += lw_en_n.eq(Mux(~active & link_we, 1 << wtarget, 0))
        m.d.sync += [lw_addr.eq(laddr), lw_data.eq(link_wdata), lw_en.eq(lw_en_n)]
        for i, name in enumerate(("q", "k", "v")):
            ram = rams.get(name)
            if serial:  # the engine reads its words directly, one per cycle
                m.d.comb += [ram.addr.eq(Mux(active, getattr(eng, f"{name}_addr"), lw_addr)),
                             ram.wdata.eq(lw_data), ram.we.eq(lw_en[i]),
                             getattr(eng, f"{name}_rdata").eq(ram.rdata)]
                continue
            rd = qr if name == "q" else kvr
            part = {"q": 0, "k": 0, "v": 1}[name]
            if NS > 1:
                SB = WB // NS
                for j, r_ in enumerate(slices[name]):
                    own_j = Signal(name=f"own_{name}{j}_dup")
                    src_j = Signal.like(kidx, name=f"idx_{name}{j}_dup")
                    lwa_j = Signal.like(lw_addr, name=f"lwa_{name}{j}_dup")
                    lwe_j = Signal(name=f"lwe_{name}{j}_dup")
                    m.d.sync += [own_j.eq(active), src_j.eq(qi_n if name == "q" else kidx_n),
                                 lwa_j.eq(laddr_c[name]), lwe_j.eq(lw_en_n[i])]
                    lo = part * WB + j * SB
                    m.d.comb += [r_.addr.eq(Mux(own_j, src_j, lwa_j)),
                                 r_.re.eq(Mux(own_j, rd.re, 1)),
                                 r_.wdata.eq(lw_data[j * SB:(j + 1) * SB]), r_.we.eq(lwe_j),
                                 rd.rdata[lo:lo + SB].eq(r_.rdata)]
                continue
            m.d.comb += [
                ram.addr.eq(Mux(own[name], rd.addr, lw_addr)),
                ram.re.eq(Mux(own[name], rd.re, 1)),
                ram.wdata.eq(lw_data),
                ram.we.eq(lw_en[i]),
            ]
            m.d.comb += rd.rdata[part * WB:(part + 1) * WB].eq(ram.rdata)
        o_ram = rams.get("o")
        o_rdata = Signal(WB, reset_less=True)  # the O buffer's read word
        if serial:  # the engine writes its last output word before it leaves BUSY
            rows_out = eng.rows_out
            m.d.comb += [o_ram.addr.eq(Mux(active, eng.o_addr, laddr)),
                         o_ram.wdata.eq(eng.o_wdata), o_ram.we.eq(active & eng.o_we),
                         o_ram.re.eq(1)]
        else:
            rows_out = ow.count
            # the O buffer belongs to the writer while a job runs and until its last row is
            # written
            o_active = own["o"] | ow.row.valid | o_held
            if NS > 1:
                # sliced as Q, K and V are, each slice's address, write enable and data
                # registered beside it (``*_dup`` copies): a write lands a cycle after the
                # writer's, and a link read's word, registered, three cycles after its address
                # (FETCH2, FETCH3)
                SB = WB // NS
                for j, r_ in enumerate(slices["o"]):
                    oa = Signal.like(r_.addr, name=f"oa{j}_dup")
                    owe = Signal(name=f"owe{j}_dup")
                    od = Signal(SB, name=f"od{j}", reset_less=True)
                    m.d.sync += [oa.eq(Mux(o_active, ow.addr, laddr)),
                                 owe.eq(o_active & ow.we), od.eq(ow.wdata[j * SB:(j + 1) * SB])]
                    m.d.comb += [r_.addr.eq(oa), r_.we.eq(owe), r_.wdata.eq(od), r_.re.eq(1)]
                    # (the read data registered beside the slice: a DP16KD's data comes late)
                    m.d.sync += o_rdata[j * SB:(j + 1) * SB].eq(r_.rdata)
            else:
                m.d.comb += [o_ram.addr.eq(Mux(o_active, ow.addr, laddr)),
                             o_ram.wdata.eq(ow.wdata), o_ram.we.eq(o_active & ow.we),
                             o_ram.re.eq(1)]
        if o_ram is not None:
            m.d.comb += o_rdata.eq(o_ram.rdata)

        # ------------------------------------------------------------- receiver
        # The received byte and its valid, registered at the core's input (a cycle's delay of
        # the whole receiver), with copies of the valid per 64 bits of the row word being
        # assembled (``got_w*_dup``): the UART's valid reached all of that word's enables
        byte = Signal(8)
        got = Signal()
        m.d.comb += self.rx.ready.eq(1)
        m.d.sync += [got.eq(self.rx.valid), byte.eq(self.rx.payload)]
        hdr_bits = Signal(pr.HEADER_LAYOUT.size, reset_less=True)
        hdr = pr.HEADER_LAYOUT(hdr_bits)
        crc = Signal(16)
        crc_next = Signal(16)
        m.d.comb += crc_next.eq(crc16_rtl(m, crc, byte, "rx_crc"))
        crc_lo_ok = Signal()  # a frame's CRC: its low byte matched
        cnt = Signal(17)
        skip = Signal(17)  # the last byte index of a refused frame's rest
        h_last1 = Signal(17)  # the payload's last byte index less one (registered in CHECK)
        idle = Signal(range(self._timeout + 1))
        timed_out = Signal()  # idle == the time-out (a register, set with idle)
        with m.If(got):
            m.d.sync += [idle.eq(0), timed_out.eq(0)]  # (the time-out is 16 or more)
        with m.Elif(~timed_out):
            m.d.sync += [idle.eq(idle + 1), timed_out.eq(idle + 1 == self._timeout)]
        err = Signal(8)
        wbuf = Signal(max(8, WB - 8), reset_less=True)
        wsub = Signal(range(W))
        wsub_last = Signal()  # wsub == W - 1 (a register, set with wsub)
        pay_rows = Signal()  # in PAYLOAD of a row write
        pay_last = Signal()  # in PAYLOAD: cnt is the payload's last byte (a register, set with cnt)
        m.d.sync += pay_rows.eq(0)

        # reply request to the transmitter
        tx_go = Signal()
        tx_done = Signal()
        r_hdr = Signal(pr.HEADER_LAYOUT, reset_less=True)
        r_src = Signal(2)
        r_word = Signal(32, reset_less=True)

        cmd = hdr.cmd
        # The header's tests in two register levels, every cycle: the header stands still from
        # its last byte through its two CRC bytes, so the second level is in when VALIDATE
        # reads it even with a byte every cycle. Level one: the command's decodes and the
        # compares (also what CHECK, PAYLOAD and EXEC act on); level two (hdr_bad): their
        # combination.
        c = {k: Signal(name=f"c_{k.name.lower()}") for k in pr.Cmd if k != pr.Cmd.ERROR}
        m.d.sync += [c[k].eq(cmd == k) for k in c]
        c_cfg = c[pr.Cmd.WRITE_CONFIG]
        c_write = Signal()  # a row write
        c_rows = Signal()  # a row write or READ_OUT
        len_nz, wt_r = Signal(), Signal(2)
        len_cfg, len_rows, ro_big, end_bad = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            c_write.eq((cmd == pr.Cmd.WRITE_Q) | (cmd == pr.Cmd.WRITE_K) |
                       (cmd == pr.Cmd.WRITE_V)),
            c_rows.eq((cmd == pr.Cmd.WRITE_Q) | (cmd == pr.Cmd.WRITE_K) |
                      (cmd == pr.Cmd.WRITE_V) | (cmd == pr.Cmd.READ_OUT)),
            len_nz.eq(hdr.length != 0),
            wt_r.eq(Mux(cmd == pr.Cmd.WRITE_Q, 0, Mux(cmd == pr.Cmd.WRITE_K, 1, 2))),
            len_cfg.eq(hdr.length != cfg_nbytes),
            len_rows.eq(hdr.length != hdr.count * d),
            ro_big.eq(hdr.count * d > 0xFFFF),
            end_bad.eq(hdr.addr + hdr.count > rows),
        ]
        # the header's checks: each registered in VALIDATE, then the first that fails, in CHECK
        bad = Signal(data.StructLayout({"cmd": 1, "length": 1, "addr": 1, "busy": 1, "cfg": 1}))
        bad_now = Signal.like(bad)
        hdr_bad = Signal(data.StructLayout({"cmd": 1, "length": 1, "addr": 1}))
        m.d.sync += [
            hdr_bad.cmd.eq(~Cat(*c.values()).any()),
            # the payload's length: the configuration's, the rows', else none
            hdr_bad.length.eq(Mux(c_cfg, len_cfg, Mux(c_write, len_rows, len_nz))
                              | (c[pr.Cmd.READ_OUT] & ro_big)),
            hdr_bad.addr.eq(c_rows & end_bad),
        ]
        m.d.comb += [
            bad_now.cmd.eq(hdr_bad.cmd),
            bad_now.length.eq(hdr_bad.length),
            bad_now.addr.eq(hdr_bad.addr),
            bad_now.busy.eq((c_rows | c_cfg | c[pr.Cmd.START]) & active),
            bad_now.cfg.eq(c[pr.Cmd.START] & ~cfg_valid),
        ]
        check = Signal(8)
        with m.If(bad.cmd):
            m.d.comb += check.eq(pr.LinkError.UNKNOWN_CMD)
        with m.Elif(bad.length):
            m.d.comb += check.eq(pr.LinkError.BAD_LENGTH)
        with m.Elif(bad.addr):
            m.d.comb += check.eq(pr.LinkError.BAD_ADDR)
        with m.Elif(bad.busy):
            m.d.comb += check.eq(pr.LinkError.BUSY)
        with m.Elif(bad.cfg):
            m.d.comb += check.eq(pr.LinkError.NO_CONFIG)

        id_bytes = pr.pack(pr.IDENTITY_LAYOUT, self.identity())
        status_bits = Signal(pr.STATUS_REPLY_LAYOUT)
        m.d.comb += [status_bits.engine.eq(eng.status), status_bits.config_loaded.eq(cfg_valid),
                     status_bits.rows_out.eq(rows_out)]

        r_last = Signal(16)  # the reply payload's last byte index (a register: no subtraction
        # in front of the transmitter's compare)

        # (from the reply header a cycle later: the transmitter sends eight bytes before it
        # compares with r_last)
        r_last1 = Signal(16)  # and the index before it
        m.d.sync += [r_last.eq(r_hdr.length - 1), r_last1.eq(r_hdr.length - 2)]

        def reply(cmd_, length, src):
            m.d.sync += [r_hdr.cmd.eq(cmd_), r_hdr.addr.eq(hdr.addr), r_hdr.count.eq(hdr.count),
                         r_hdr.length.eq(length), r_src.eq(src)]
            m.d.comb += tx_go.eq(1)

        in_frame = Signal()

        cfg_we_now = Signal()  # a WRITE_CONFIG payload byte arrives

        def write_config_byte():
            """The registered WRITE_CONFIG payload byte ``cfg_in`` at index ``cfg_at`` into the
            store, a cycle after it arrived (the frame's CRC bytes follow, so
            it is in long before the frame can be accepted): its kept bits, and each flag it
            touches, set from this byte if it is the first of the flag's bits, else or-ed in (a
            payload always has every byte: its length is checked). From registers only, so the
            store's enables do not follow the link's state decode."""
            first = {}
            for b, s_ in enumerate(cfg_src):
                if s_ is not None and s_[0] == "f":
                    first.setdefault(s_[1], b // 8)
            cfg_we, cfg_in = Signal(), Signal(8)
            cfg_at = Signal(max(1, (cfg_nbytes - 1).bit_length()))
            m.d.sync += [cfg_we.eq(cfg_we_now), cfg_in.eq(byte), cfg_at.eq(cnt)]
            byte_ = cfg_in
            with m.If(cfg_we), m.Switch(cfg_at):
                for k in range(cfg_nbytes):
                    with m.Case(k):
                        hits = {}
                        for j in range(8):
                            s_ = cfg_src[8 * k + j] if 8 * k + j < len(cfg_src) else None
                            if s_ is None:
                                continue
                            if s_[0] == "k":
                                m.d.sync += cfg_kept[s_[1]].eq(byte_[j])
                            else:
                                hits.setdefault(s_[1], []).append(byte_[j])
                        for f, bits in hits.items():
                            any_ = Cat(*bits).any()
                            m.d.sync += cfg_flags[f].eq(any_ if first[f] == k
                                                        else cfg_flags[f] | any_)

        def frame_timeout():
            # placed first in a state: a byte arriving in the same cycle still wins
            with m.If(timed_out):
                m.d.sync += err.eq(pr.LinkError.TIMEOUT)
                m.next = "REPLY_ERR"

        def receive_crc(name, ok_state, bad_state):
            """States ``<name>0`` and ``<name>1``: a frame's CRC, low byte first, compared with
            the running CRC; ``ok_state`` on a match, else BAD_CRC and ``bad_state``."""
            with m.State(f"{name}0"):
                m.d.comb += in_frame.eq(1)
                frame_timeout()
                with m.If(got):  # the low byte's compare registered (the CRC holds still)
                    m.d.sync += crc_lo_ok.eq(byte == crc[:8])
                    m.next = f"{name}1"
            with m.State(f"{name}1"):
                m.d.comb += in_frame.eq(1)
                frame_timeout()
                with m.If(got):
                    with m.If(crc_lo_ok & (byte == crc[8:])):
                        m.next = ok_state
                    with m.Else():
                        m.d.sync += err.eq(pr.LinkError.BAD_CRC)
                        m.next = bad_state

        write_config_byte()

        with m.FSM(name="link"):
            with m.State("HUNT"):
                with m.If(got & (byte == pr.REQ_SYNC)):
                    m.d.sync += [crc.eq(pr.CRC_INIT), cnt.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                m.d.comb += in_frame.eq(1)
                frame_timeout()
                with m.If(got):
                    m.d.sync += [hdr_bits.eq(Cat(hdr_bits[8:], byte)), crc.eq(crc_next),
                                 cnt.eq(cnt + 1)]
                    with m.If(cnt == pr.HEADER_BYTES - 1):
                        m.next = "HCRC0"
            # a bad header CRC: the header cannot be trusted, so neither can its length: wait
            # for the line to go quiet, then answer once
            receive_crc("HCRC", "VALIDATE", "DRAIN")
            with m.State("VALIDATE"):  # the header's checks, registered for CHECK
                m.d.sync += bad.eq(bad_now)
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.sync += [crc.eq(pr.CRC_INIT), cnt.eq(0), wsub.eq(0), wsub_last.eq(W == 1),
                             *laddr_to(lambda r: hdr.addr << shift), h_last1.eq(hdr.length - 2),
                             wtarget.eq(wt_r)]  # (used by row writes only)
                with m.If(check != 0):
                    m.d.sync += [err.eq(check), skip.eq(hdr.length + pr.CRC_BYTES - 1)]
                    with m.If(len_nz):
                        m.next = "SKIP"
                    with m.Else():
                        m.next = "REPLY_ERR"
                with m.Else():
                    with m.If(c_cfg):
                        m.d.sync += cfg_valid.eq(0)
                    with m.If(len_nz):
                        m.d.sync += [pay_rows.eq(~c_cfg), pay_last.eq(hdr.length == 1)]
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.next = "EXEC"
            with m.State("PAYLOAD"):
                m.d.comb += in_frame.eq(1)
                # (pay_rows: this state, with a row write's payload; cleared as it is left)
                m.d.sync += pay_rows.eq(pay_rows & ~(got & pay_last) & (got | ~timed_out))
                frame_timeout()
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), cnt.eq(cnt + 1),
                                 pay_last.eq(cnt == h_last1)]
                    with m.If(c_cfg):
                        m.d.comb += cfg_we_now.eq(1)
                    with m.If(pay_last):
                        m.next = "PCRC0"
            receive_crc("PCRC", "EXEC", "REPLY_ERR")
            with m.State("EXEC"):
                m.d.sync += laddr_to(lambda r: hdr.addr << shift)
                with m.Switch(cmd):
                    with m.Case(pr.Cmd.IDENTIFY):
                        reply(cmd, len(id_bytes), SRC_IDENTITY)
                    with m.Case(pr.Cmd.WRITE_CONFIG):
                        m.d.sync += cfg_valid.eq(1)
                        reply(cmd, 0, SRC_NONE)
                    with m.Case(pr.Cmd.START):
                        m.d.sync += [start.eq(1)] + [c.eq(1) for c in start_dups]
                        reply(cmd, 0, SRC_NONE)
                    with m.Case(pr.Cmd.READ_STATUS):
                        m.d.sync += r_word.eq(status_bits.as_value())
                        reply(cmd, pr.nbytes(pr.STATUS_REPLY_LAYOUT), SRC_WORD)
                    with m.Case(pr.Cmd.READ_CYCLES):
                        m.d.sync += r_word.eq(eng.cycles)
                        reply(cmd, pr.nbytes(pr.CYCLES_LAYOUT), SRC_WORD)
                    with m.Case(pr.Cmd.READ_OUT):
                        reply(cmd, hdr.count * d, SRC_OUT)
                    with m.Default():  # row writes: the rows are in
                        reply(cmd, 0, SRC_NONE)
                m.next = "REPLY"
            with m.State("SKIP"):
                m.d.comb += in_frame.eq(1)
                frame_timeout()
                with m.If(got):
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == skip):
                        m.next = "REPLY_ERR"
            with m.State("DRAIN"):
                with m.If(timed_out):
                    m.next = "REPLY_ERR"
            with m.State("REPLY_ERR"):
                m.d.sync += r_word.eq(Cat(err, hdr.cmd))
                reply(pr.Cmd.ERROR, pr.nbytes(pr.ERROR_LAYOUT), SRC_WORD)
                m.next = "REPLY"
            with m.State("REPLY"):
                with m.If(tx_done):
                    m.next = "HUNT"
        m.d.comb += link_wdata.eq(Cat(wbuf, byte)[-WB:] if W > 1 else byte)
        # a row write's payload byte: into the word being assembled; with the word's last, the
        # word into the buffer (enables from pay_rows and wsub_last, registers, and the byte)
        if W > 1:
            shifted = Cat(wbuf[8:], byte)
            for j in range(-(-len(wbuf) // 64)):
                lo, hi = 64 * j, min(len(wbuf), 64 * (j + 1))
                got_j = Signal(name=f"got_w{j}_dup")
                m.d.sync += got_j.eq(self.rx.valid)
                with m.If(got_j & pay_rows):
                    m.d.sync += wbuf[lo:hi].eq(shifted[lo:hi])
        with m.If(got & pay_rows):
            if W > 1:
                m.d.sync += [wsub.eq(wsub + 1), wsub_last.eq(wsub == W - 2)]
            with m.If(wsub_last):
                m.d.comb += link_we.eq(1)
                m.d.sync += laddr_to(lambda r: r + 1)

        # ------------------------------------------------------------- transmitter
        tcrc = Signal(16)
        tcnt = Signal(17)
        t_last = Signal()  # tcnt is the payload's last byte (a register, set with tcnt)
        tsub = Signal(range(W))
        tword = Signal(WB, reset_less=True)
        out_byte = Signal(8)  # the byte the state offers (a multiplexer over its sources)
        # The offered byte is registered before it reaches the UART and the CRC: a state offers
        # its byte from the third cycle in which it wants to send (``settled``; ``want_r`` marks
        # the second), and its indices move on a handshake or, a row word's shift, a cycle after
        # it, so the registered byte is the state's current byte.
        want = Signal()
        want_r = Signal()
        byte_r = Signal(8)
        settled = Signal()
        tcrc_next = Signal(16)
        m.d.comb += [self.tx.payload.eq(byte_r), self.tx.valid.eq(want & settled),
                     tcrc_next.eq(crc16_rtl(m, tcrc, byte_r, "tx_crc"))]
        fire = self.tx.valid & self.tx.ready
        m.d.sync += [byte_r.eq(out_byte), want_r.eq(want & ~fire),
                     settled.eq(want_r & want & ~fire)]
        # The output row word (``tword``, a 256-bit shift register on wide buffers) loads and
        # shifts from registers of its own per 64 bits, a cycle after the state decode and the
        # handshake that call for it (no decode reaching all its flip-flops' enables; t_sh: a
        # payload byte's handshake)
        t_ld = Signal()
        t_sh = Signal()
        for j in range(-(-WB // 64)):
            lo, hi = 64 * j, min(WB, 64 * (j + 1))
            ld_j = Signal(name=f"tword_ld{j}_dup")
            sh_j = Signal(name=f"tword_sh{j}_dup")
            m.d.sync += [ld_j.eq(t_ld), sh_j.eq(t_sh)]
            with m.If(ld_j):
                m.d.sync += tword[lo:hi].eq(o_rdata[lo:hi])
            with m.Elif(sh_j):
                m.d.sync += tword[lo:hi].eq(tword[lo + 8:hi + 8] if W > 1 else tword[lo:hi])
        # (a status or cycle word's shift, too: a register, a cycle after the handshake; the
        # receiver loads r_word only while no reply is being sent)
        r_sh = Signal()
        m.d.sync += r_sh.eq(t_sh)
        with m.If(r_sh):
            m.d.sync += r_word.eq(r_word >> 8)
        r_hdr_bytes = Array(r_hdr.as_value()[8 * i:8 * (i + 1)] for i in range(pr.HEADER_BYTES))
        id_rom = Array(Const(b, 8) for b in id_bytes)
        # a word and an output row go out low byte first, shifted down a byte per byte sent (no
        # multiplexer over a row's 32 bytes in front of the offered byte)
        with m.FSM(name="reply"):
            with m.State("IDLE"):
                with m.If(tx_go):
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += [want.eq(1), out_byte.eq(pr.REPLY_SYNC)]
                with m.If(fire):
                    m.d.sync += [tcrc.eq(pr.CRC_INIT), tcnt.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                m.d.comb += [want.eq(1), out_byte.eq(r_hdr_bytes[tcnt[:3]])]
                with m.If(fire):
                    m.d.sync += [tcrc.eq(tcrc_next), tcnt.eq(tcnt + 1)]
                    with m.If(tcnt == pr.HEADER_BYTES - 1):
                        m.next = "HCRC0"
            with m.State("HCRC0"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[:8])]
                with m.If(fire):
                    m.next = "HCRC1"
            with m.State("HCRC1"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[8:])]
                with m.If(fire):
                    m.d.sync += [tcrc.eq(pr.CRC_INIT), tcnt.eq(0), tsub.eq(0),
                                 t_last.eq(r_last == 0)]
                    with m.If(r_hdr.length == 0):
                        m.next = "DONE"
                    with m.Elif(r_src == SRC_OUT):
                        m.next = "FETCH"
                    with m.Else():
                        m.next = "PAY"
            with m.State("FETCH"):  # laddr drives the O buffer; its word lands next cycle
                if NS > 1:  # (a sliced O buffer's address and data are registers: two more)
                    m.next = "FETCH2"
                else:
                    m.d.comb += t_ld.eq(1)  # (taken into tword a cycle later, in LATCH)
                    m.next = "LATCH"
            with m.State("FETCH2"):
                m.next = "FETCH3"
            with m.State("FETCH3"):
                m.d.comb += t_ld.eq(1)
                m.next = "LATCH"
            with m.State("LATCH"):
                m.d.sync += laddr_to(lambda r: r + 1)
                m.next = "PAY"
            with m.State("PAY"):
                m.d.comb += want.eq(1)
                with m.Switch(r_src):
                    with m.Case(SRC_WORD):
                        m.d.comb += out_byte.eq(r_word[:8])
                    with m.Case(SRC_IDENTITY):
                        m.d.comb += out_byte.eq(id_rom[tcnt[:max(1, (len(id_bytes) - 1)
                                                                 .bit_length())]])
                    with m.Case(SRC_OUT):
                        m.d.comb += out_byte.eq(tword[:8])
                with m.If(fire):
                    m.d.sync += [tcrc.eq(tcrc_next), tcnt.eq(tcnt + 1),
                                 t_last.eq(tcnt == r_last1)]
                    m.d.comb += t_sh.eq(1)
                    if W > 1:
                        m.d.sync += tsub.eq(tsub + 1)
                    with m.If(t_last):
                        m.next = "PCRC0"
                    with m.Elif((r_src == SRC_OUT) & (tsub == W - 1)):
                        m.next = "FETCH"
            with m.State("PCRC0"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[:8])]
                with m.If(fire):
                    m.next = "PCRC1"
            with m.State("PCRC1"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[8:])]
                with m.If(fire):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += tx_done.eq(1)
                m.next = "IDLE"
        return m
