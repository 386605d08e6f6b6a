"""The serial engine: one query row at a time, for a small FPGA whose row buffers are 16 bits wide.

On the iCE40UP5K the Q, K, V and O rows live in single-port SPRAM blocks of 16-bit words, so a
key row arrives two int8 elements per cycle however many multipliers wait for it. This engine is
shaped by that bandwidth instead of by lanes: it computes the same formulas as
:class:`swattn.hw.engine.Engine` (:mod:`swattn.sw.spec.numerics`; every sum is an exact integer, so
the order of the keys does not matter) with two Q.K and two P.V multipliers (``lanes = 4``),
reading the buffers directly, without row feeders. Rows come out in
:func:`swattn.sw.spec.schedule.output_order` of a one-unit engine (the rows that are not global in
ascending order, then the global rows), so the host driver is the same.

:class:`SerialEngine` wires four components: job control (``hw/serial_control.py``) and three
machines that run side by side, each on a different row:

* the *front* (``hw/serial_front.py``) takes a row: its Q row into a small memory, then each of its keys (the window,
  ``i + o * dil`` for ``o`` in ``-left..right`` inside ``0..n-1``, then each band beside the
  window at the same step inside ``0..n-1``, then the globals met in neither; every key for a
  global row), reading the key's K row a word per cycle into the
  Q.K multipliers. Each key's score and index go to the row's bank of the score memory, and the
  row maximum is kept. Then the bank is handed to the back.
* the *back* (``hw/serial_back.py``) reads a full bank: for each stored key ``e = 2^-x`` of ``x = (m - s) * M``
  (computed while the previous key's V row streams), then the key's V row a word per cycle into
  the P.V multipliers, accumulated in one of two sum memories of ``head_dim / 2`` words of two
  sums each. After the last key it hands the sums (and S) to the epilogue and takes the next
  bank.
* the *epilogue* (``hw/serial_epilogue.py``) normalises the previous row from the other sum memory: the sum's normalising
  shift, the reciprocal, and the output row through the normaliser into the O buffer.

So the K buffer (front) and the V buffer (back) are both busy while rows are in flight: about
``head_dim / 2`` cycles per key and row, the epilogue hidden behind the next row's P.V
(:func:`swattn.sw.cycles.predict_serial_cycles`).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .serial_back import E_LATENCY, SerialBack
from .serial_control import WORD_BYTES, SerialControl
from .serial_epilogue import SerialEpilogue
from .serial_front import DOT_LATENCY, SerialFront, buffer_depth

__all__ = ["SerialEngine", "WORD_BYTES", "E_LATENCY", "DOT_LATENCY"]


class SerialEngine(wiring.Component):
    """The serial engine for ``params`` (``lanes`` must be 4: two Q.K and two P.V multipliers).

    Ports: ``cfg``, ``start``, ``status``, ``cycles`` as on :class:`~swattn.hw.engine.Engine`;
    ``rows_out``: output rows written in this job. The buffers (``2 ** seq_width`` rows of
    ``head_dim / 2`` words each, a row's words at ``row * head_dim / 2 + word``): ``q_addr``,
    ``k_addr``, ``v_addr`` with ``*_rdata`` the word of the previous cycle's address, and
    ``o_addr``, ``o_wdata``, ``o_we``. The configuration must hold still while a job runs (the
    board core refuses WRITE_CONFIG then).
    """

    def __init__(self, params: EngineParams):
        if not params.serial:
            raise ValueError(f"lanes = {params.lanes}: the serial engine has "
                             f"{params.SERIAL_LANES} (two Q.K and two P.V multipliers, matched to "
                             f"16-bit buffer words)")
        self.params = params
        depth = buffer_depth(params)
        w = 8 * WORD_BYTES
        super().__init__({
            "cfg": In(regs.config_layout(params)),
            "start": In(1),
            "status": Out(regs.STATUS_LAYOUT),
            "cycles": Out(32),
            "rows_out": Out(params.seq_width + 1),
            "q_addr": Out(range(depth)), "q_rdata": In(w),
            "k_addr": Out(range(depth)), "k_rdata": In(w),
            "v_addr": Out(range(depth)), "v_rdata": In(w),
            "o_addr": Out(range(depth)), "o_wdata": Out(w), "o_we": Out(1),
        })

    def elaborate(self, platform):
        P = self.params
        # (head_dim >= 32: a key's words outlast the e pipeline and the front's tags, which the
        # back's single e slot and the front's kdone register rely on)
        R = P.head_dim // WORD_BYTES
        assert R > max(E_LATENCY, DOT_LATENCY + 2), R
        m = Module()
        m.submodules.control = ctrl = SerialControl(P)
        m.submodules.front = front = SerialFront(P)
        m.submodules.back = back = SerialBack(P)
        m.submodules.epilogue = epi = SerialEpilogue(P)
        for part in (front, back, epi):
            wiring.connect(m, ctrl.job, part.job)
        m.d.comb += [ctrl.cfg.eq(self.cfg), ctrl.start.eq(self.start),
                     ctrl.job_end.eq(epi.job_end), self.status.eq(ctrl.status),
                     self.cycles.eq(ctrl.cycles), self.rows_out.eq(epi.rows_out)]
        # buffers: Q and K to the front, V to the back, O from the epilogue
        m.d.comb += [self.q_addr.eq(front.q_addr), front.q_rdata.eq(self.q_rdata),
                     self.k_addr.eq(front.k_addr), front.k_rdata.eq(self.k_rdata),
                     self.v_addr.eq(back.v_addr), back.v_rdata.eq(self.v_rdata),
                     self.o_addr.eq(epi.o_addr), self.o_wdata.eq(epi.o_wdata),
                     self.o_we.eq(epi.o_we)]
        # front -> back: the score banks
        m.d.comb += [back.full.eq(front.full), front.rel.eq(back.rel),
                     front.s_raddr.eq(back.s_raddr), back.s_rdata.eq(front.s_rdata)]
        for b in range(2):
            m.d.comb += [back.b_max[b].eq(front.b_max[b]), back.b_keys[b].eq(front.b_keys[b]),
                         back.b_pos[b].eq(front.b_pos[b])]
        # back -> epilogue: a row's sums
        m.d.comb += [epi.epi_go.eq(back.epi_go), epi.ssum.eq(back.ssum), epi.bpos.eq(back.bpos),
                     epi.abank.eq(back.abank), back.epi_busy.eq(epi.epi_busy),
                     back.epi_rd.eq(epi.epi_rd), back.epi_word.eq(epi.epi_word),
                     back.ebank.eq(epi.ebank)]
        for b in range(2):
            m.d.comb += epi.acc_rdata[b].eq(back.acc_rdata[b])
        return m
