"""The engine as drop-in IP: AXI4-Stream data ports and AXI4-Lite registers.

:class:`AxiEngine` wraps the stream engine (:class:`swattn.hw.engine.Engine`) for a SoC:

* ``aclk`` and ``aresetn`` (active low, synchronous to ``aclk``) clock and reset everything.
* ``s_axis_q_*`` and ``s_axis_kv_*`` take the Q rows and the K/V rows (``tdata`` one row: Q,
  head_dim int8; K/V, K in the low half and V above), in the order the engine's streams define
  (docs/engine.md, ``swattn.sw.spec.schedule``); their ``tlast`` is accepted and not needed: the
  configuration fixes each job's row counts. ``m_axis_o_*`` gives the output rows, with ``tlast``
  on the job's last row.
* ``s_axil_*`` is an AXI4-Lite slave (:class:`AxiLiteSlave`) in front of the registers of
  :func:`swattn.sw.spec.axi_regs.register_map`: the configuration, CONTROL.start, STATUS (state
  and error code), CYCLES, IDENT and LIMITS, and the interrupt registers behind ``irq`` (a job
  done; a start refused). On engines with bands beside the window, key-only columns or the 2D
  grid (``max_bands`` > 1, ``max_columns`` > 0, ``grid``), the configuration registers include
  theirs (CONFIG_N_BANDS, BAND_i, CONFIG_N_COLUMNS, COLUMN_i, CONFIG_GRID_WIDTH,
  CONFIG_GRID_RADIUS), each feeding its field of the engine's configuration.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import axi_regs as ar
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .engine import Engine

OKAY, SLVERR = 0b00, 0b10


def axil_members(addr_width: int = ar.ADDR_WIDTH, data_width: int = ar.DATA_WIDTH) -> dict:
    """The AXI4-Lite slave's port members (AWPROT/ARPROT left out: the registers ignore them)."""
    A, D = addr_width, data_width
    return {
        "s_axil_awaddr": In(A), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
        "s_axil_wdata": In(D), "s_axil_wstrb": In(D // 8), "s_axil_wvalid": In(1),
        "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
        "s_axil_araddr": In(A), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
        "s_axil_rdata": Out(D), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1),
        "s_axil_rready": In(1),
    }


class AxiLiteSlave(wiring.Component):
    """The AXI4-Lite protocol, apart from what the registers mean.

    Write: the address and the data are taken independently (``awready`` / ``wready`` while
    each is not yet held); once both are held and no response is waiting, ``write`` pulses with
    ``waddr``, ``wdata_o``, ``wstrb_o`` for one cycle and the response follows in the next cycle
    (``bresp`` SLVERR where ``werr`` says the address takes no write), held until ``bready``.
    Read: ``arready`` while no read response is waiting; the address handshake registers
    ``rdata_i`` and ``rerr`` for ``raddr`` (= ``araddr``) into ``rdata`` / ``rresp``, held until
    ``rready``. One write and one read may be in flight at once.
    """

    def __init__(self, addr_width: int = ar.ADDR_WIDTH, data_width: int = ar.DATA_WIDTH):
        self.addr_width, self.data_width = addr_width, data_width
        A, D = addr_width, data_width
        super().__init__({
            **axil_members(A, D),
            # towards the registers
            "write": Out(1), "waddr": Out(A), "wdata_o": Out(D), "wstrb_o": Out(D // 8),
            "werr": In(1),
            "raddr": Out(A), "rdata_i": In(D), "rerr": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        aw_full = Signal()
        w_full = Signal()
        aw_addr = Signal(self.addr_width)
        w_data = Signal(self.data_width)
        w_strb = Signal(self.data_width // 8)
        bvalid = Signal()
        rvalid = Signal()
        aw_fire = self.s_axil_awvalid & self.s_axil_awready
        w_fire = self.s_axil_wvalid & self.s_axil_wready
        do_write = aw_full & w_full & ~bvalid
        m.d.comb += [
            self.s_axil_awready.eq(~aw_full), self.s_axil_wready.eq(~w_full),
            self.s_axil_bvalid.eq(bvalid), self.s_axil_rvalid.eq(rvalid),
            self.write.eq(do_write), self.waddr.eq(aw_addr), self.wdata_o.eq(w_data),
            self.wstrb_o.eq(w_strb),
            self.s_axil_arready.eq(~rvalid), self.raddr.eq(self.s_axil_araddr),
        ]
        with m.If(aw_fire):
            m.d.sync += [aw_full.eq(1), aw_addr.eq(self.s_axil_awaddr)]
        with m.If(w_fire):
            m.d.sync += [w_full.eq(1), w_data.eq(self.s_axil_wdata), w_strb.eq(self.s_axil_wstrb)]
        with m.If(do_write):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1),
                         self.s_axil_bresp.eq(Mux(self.werr, SLVERR, OKAY))]
        with m.Elif(bvalid & self.s_axil_bready):
            m.d.sync += bvalid.eq(0)
        with m.If(self.s_axil_arvalid & ~rvalid):
            m.d.sync += [rvalid.eq(1), self.s_axil_rdata.eq(self.rdata_i),
                         self.s_axil_rresp.eq(Mux(self.rerr, SLVERR, OKAY))]
        with m.Elif(rvalid & self.s_axil_rready):
            m.d.sync += rvalid.eq(0)
        return m


class AxiEngine(wiring.Component):
    """The stream engine behind AXI4-Stream and AXI4-Lite ports (see the module docstring)."""

    def __init__(self, params: EngineParams):
        if params.serial:
            raise ValueError(f"lanes = {params.lanes}: the AXI top wraps the stream engine "
                             f"(lanes 8..4096); the serial engine reads buffer memories")
        self.params = params
        d = params.head_dim
        self._slave_ports = axil_members()
        super().__init__({
            "aclk": In(1), "aresetn": In(1),
            "s_axis_q_tdata": In(8 * d), "s_axis_q_tvalid": In(1), "s_axis_q_tready": Out(1),
            "s_axis_q_tlast": In(1),
            "s_axis_kv_tdata": In(16 * d), "s_axis_kv_tvalid": In(1),
            "s_axis_kv_tready": Out(1), "s_axis_kv_tlast": In(1),
            "m_axis_o_tdata": Out(8 * d), "m_axis_o_tvalid": Out(1), "m_axis_o_tready": In(1),
            "m_axis_o_tlast": Out(1),
            **self._slave_ports,
            "irq": Out(1),
        })

    def elaborate(self, platform):
        P = self.params
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", local=True)
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.engine = eng = Engine(P, hold_config=True)
        m.submodules.axil = axil = AxiLiteSlave()
        for name in self._slave_ports:
            port, inner = getattr(self, name), getattr(axil, name)
            if self.signature.members[name].flow == In:
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)

        # registers: the configuration words, IRQ_ENABLE, IRQ_STATUS (a register is addressed
        # by its word: the address's two low bits select nothing, the byte strobes do)
        regmap = ar.register_map(P)
        store = {r.name: Signal(32, name=f"reg_{r.name.lower()}") for r in regmap
                 if r.access == "RW"}
        irq_status = Signal(ar.IRQ_LAYOUT.size)
        word = axil.waddr[2:]
        strobe_mask = Signal(32)
        m.d.comb += strobe_mask.eq(Cat(*(axil.wstrb_o[b].replicate(8) for b in range(4))))
        writable = Const(0, 1)
        start = Signal()
        irq_clear = Signal(ar.IRQ_LAYOUT.size)
        for r in regmap:
            hit = word == r.offset // 4
            if r.access == "RO":
                continue
            writable = writable | hit
            data_bits = axil.wdata_o & strobe_mask & r.mask
            if r.access == "RW":
                reg = store[r.name]
                with m.If(axil.write & hit):
                    m.d.sync += reg.eq((reg & ~(strobe_mask & r.mask)) | data_bits)
            elif r.name == "CONTROL":
                m.d.comb += start.eq(axil.write & hit & data_bits[0])
            elif r.name == "IRQ_STATUS":
                m.d.comb += irq_clear.eq(Mux(axil.write & hit, data_bits, 0))
        m.d.comb += axil.werr.eq(~writable)

        # the engine's configuration from the configuration words
        for name in regs.CONFIG_FIELDS:
            m.d.comb += getattr(eng.cfg, name).eq(store[f"CONFIG_{name.upper()}"])
        for i in range(P.max_globals):
            m.d.comb += eng.cfg.globals[i].eq(store[f"GLOBAL_{i}"])
        # (bands, columns and the grid: on engines that have them)
        for name in ar.key_fields(P):
            m.d.comb += getattr(eng.cfg, name).eq(store[f"CONFIG_{name.upper()}"])
        for i in range(P.max_bands - 1):
            m.d.comb += eng.cfg.bands[i].eq(store[f"BAND_{i}"])
        for i in range(P.max_columns):
            m.d.comb += eng.cfg.columns[i].eq(store[f"COLUMN_{i}"])
        m.d.comb += eng.start.eq(start)

        # reads
        status = Signal(32)
        m.d.comb += status.eq(eng.status.as_value())
        values = {"STATUS": status, "CYCLES": eng.cycles, "IRQ_STATUS": irq_status,
                  "IDENT": Const(ar.ident_value(P), 32), "LIMITS": Const(ar.limits_value(P), 32),
                  "CONTROL": Const(0, 32), **store}
        rword = axil.raddr[2:]
        rdata = Const(0, 32)
        mapped = Const(0, 1)
        for r in regmap:
            hit = rword == r.offset // 4
            rdata = Mux(hit, values[r.name], rdata)
            mapped = mapped | hit
        m.d.comb += [axil.rdata_i.eq(rdata), axil.rerr.eq(~mapped)]

        # interrupts: a job done (the state enters DONE), a start refused (the checks fail:
        # BUSY -> IDLE; or a start while BUSY)
        state = eng.status.state
        prev = Signal.like(state)
        m.d.sync += prev.eq(state)
        done_ev = (state == regs.State.DONE) & (prev != regs.State.DONE)
        err_ev = ((prev == regs.State.BUSY) & (state == regs.State.IDLE)) | \
            (start & (state == regs.State.BUSY))
        events = Signal(ar.IRQ_LAYOUT)
        m.d.comb += [events.done.eq(done_ev), events.error.eq(err_ev)]
        m.d.sync += irq_status.eq((irq_status & ~irq_clear) | events.as_value())
        m.d.comb += self.irq.eq((irq_status & store["IRQ_ENABLE"][:irq_status.shape().width])
                                .any())

        # the data streams; tlast on the job's last output row
        m.d.comb += [
            eng.q.payload.eq(self.s_axis_q_tdata), eng.q.valid.eq(self.s_axis_q_tvalid),
            self.s_axis_q_tready.eq(eng.q.ready),
            eng.kv.payload.eq(self.s_axis_kv_tdata), eng.kv.valid.eq(self.s_axis_kv_tvalid),
            self.s_axis_kv_tready.eq(eng.kv.ready),
            self.m_axis_o_tdata.eq(eng.o.payload), self.m_axis_o_tvalid.eq(eng.o.valid),
            eng.o.ready.eq(self.m_axis_o_tready),
        ]
        n_job = Signal(P.seq_width + 1)
        out_count = Signal(P.seq_width + 1)
        with m.If(start & (state != regs.State.BUSY)):
            m.d.sync += [n_job.eq(store["CONFIG_N"]), out_count.eq(0)]
        with m.Elif(eng.o.valid & eng.o.ready):
            m.d.sync += out_count.eq(out_count + 1)
        m.d.comb += self.m_axis_o_tlast.eq(out_count == n_job - 1)
        return m
