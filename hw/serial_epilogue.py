"""The serial engine's epilogue: a row's sums normalised into its output row.

:class:`SerialEpilogue` takes a row from the back (its P.V sums in one sum memory bank, its S
and output position), finds S's normalising shift, starts the reciprocal, and runs the row's
``head_dim`` sums through one normaliser, an element per cycle, into the O buffer (two int8
elements per word). It hides behind the next row's P.V.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from ..sw.spec.engine_params import EngineParams
from .blocks import Normaliser, Reciprocal
from .serial_control import WORD_BYTES, SerialJobSignature
from .serial_front import buffer_depth


class SerialEpilogue(wiring.Component):
    """Normalisation of a row, one element per cycle.

    Per cycle, in its FSM: IDLE takes a row on ``epi_go`` (``ssum``, ``bpos``, ``abank``) and
    raises ``epi_busy``; SHIFT halves S a fixed number of steps (p = bitlen(S) - 16, so a row's
    cycles do not depend on the data); RSTART / RECIP run the reciprocal of S's top bits; OUT
    reads an element of the bank per cycle (``epi_rd``, ``epi_word``; ``acc_rdata`` a cycle
    later) through the normaliser; each second element writes an O word (``o_addr``,
    ``o_wdata``, ``o_we``); OUT_DRAIN waits for the normaliser, counts the row (``rows_out``)
    and, after the job's last row, pulses ``job_end``.
    """

    def __init__(self, params: EngineParams):
        self._params = params
        P = params
        NB, R = P.seq_width, P.head_dim // WORD_BYTES
        super().__init__({
            "job": In(SerialJobSignature(P)),
            "epi_go": In(1), "ssum": In(P.sum_width), "bpos": In(NB), "abank": In(1),
            "epi_busy": Out(1), "epi_rd": Out(1), "epi_word": Out(range(R)), "ebank": Out(1),
            "acc_rdata": In(2 * P.acc_width).array(2),
            "o_addr": Out(range(buffer_depth(P))), "o_wdata": Out(8 * WORD_BYTES), "o_we": Out(1),
            "rows_out": Out(NB + 1), "job_end": Out(1),
        })

    def elaborate(self, platform):
        P, job = self._params, self.job
        d, NB, AW = P.head_dim, P.seq_width, P.acc_width
        m = Module()
        m.submodules.recip = recip = Reciprocal()
        rgo = Signal()  # high in RSTART only
        m.d.sync += rgo.eq(0)
        m.d.comb += recip.start.eq(rgo)
        m.submodules.norm = norm = Normaliser(AW, dsp_width=16)
        p = Signal(range(P.sum_width + 1))
        esum = Signal(P.sum_width)  # the row's S, handed over by the back
        epos = Signal(NB)  # and its output position
        ebank = self.ebank
        epi_busy = self.epi_busy
        el = Signal(range(d + 1))
        m.d.comb += self.epi_word.eq(el[1:])
        # S < 2^sum_width: at most this many halvings bring it below 2^16; the shift always
        # takes them all, so a row's cycles do not depend on the data
        shift_steps = max(1, P.sum_width - nx.SUM_NORM_BITS)
        sc = Signal(range(shift_steps + 1))
        et = [Signal(1 + (d - 1).bit_length(), name=f"otag{i}") for i in range(norm.latency + 1)]
        low = Signal(8)
        m.d.comb += [recip.divisor.eq(esum[:nx.SUM_NORM_BITS]), norm.p.eq(p),
                     norm.r.eq(recip.quotient), norm.out_shift.eq(job.out_shift)]
        m.d.sync += et[0].eq(Cat(self.epi_rd, el[:(d - 1).bit_length()]))
        for a, b in zip(et, et[1:]):
            m.d.sync += b.eq(a)
        # et[0]: the sums' word is out of the memory; the element goes into the normaliser
        el1 = et[0][1:]
        e_word = Mux(ebank, self.acc_rdata[1], self.acc_rdata[0])
        m.d.comb += norm.a.eq(Mux(el1[0], e_word[AW:2 * AW], e_word[:AW]).as_signed())
        o_t = et[norm.latency]
        o_el = o_t[1:]
        with m.If(o_t[0] & ~o_el[0]):
            m.d.sync += low.eq(norm.o)
        m.d.comb += [self.o_addr.eq(Cat(o_el[1:], epos)), self.o_wdata.eq(Cat(low, norm.o)),
                     self.o_we.eq(o_t[0] & o_el[0])]
        rows_done = Signal(NB + 1)
        last_row = Signal()  # the epilogue's row is the job's last (a register)
        m.d.sync += last_row.eq(rows_done + 1 == job.n)
        m.d.comb += self.rows_out.eq(rows_done)

        with m.FSM(name="epilogue"):
            with m.State("IDLE"):
                with m.If(job.init):
                    m.d.sync += rows_done.eq(0)
                with m.If(self.epi_go):
                    m.d.sync += [epi_busy.eq(1), p.eq(0), sc.eq(0), esum.eq(self.ssum),
                                 epos.eq(self.bpos), ebank.eq(self.abank)]
                    m.next = "SHIFT"
            with m.State("SHIFT"):  # p = bitlen(S) - 16, S >> p: a fixed number of steps
                m.d.sync += sc.eq(sc + 1)
                with m.If(esum >> nx.SUM_NORM_BITS):
                    m.d.sync += [esum.eq(esum >> 1), p.eq(p + 1)]
                with m.If(sc == shift_steps - 1):
                    m.d.sync += rgo.eq(1)
                    m.next = "RSTART"
            with m.State("RSTART"):  # the reciprocal's start is a register of its own (rgo)
                m.next = "RECIP"
            with m.State("RECIP"):
                with m.If(recip.done):
                    m.d.sync += el.eq(0)
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += self.epi_rd.eq(1)
                m.d.sync += el.eq(el + 1)
                with m.If(el == d - 1):
                    m.next = "OUT_DRAIN"
            with m.State("OUT_DRAIN"):
                with m.If(~Cat(x[0] for x in et).any()):
                    m.d.sync += [rows_done.eq(rows_done + 1), epi_busy.eq(0)]
                    with m.If(last_row):
                        m.d.comb += self.job_end.eq(1)
                    m.next = "IDLE"
        return m
