"""The serial engine's back: a row's exponentials and P.V sums, from a full score bank.

:class:`SerialBack` reads a bank the front has filled: for each stored key it computes
``e = 2^-x`` of ``x = (m - s) * M`` (while the previous key's V row streams), then reads the
key's V row a word per cycle into two P.V multipliers, accumulating into one of two sum
memories of ``head_dim / 2`` words of two sums each. After the last key it hands the row's sums
and S to the epilogue and takes the next bank.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from ..sw.spec.engine_params import EngineParams
from .blocks import ExpUnit, ScaleLanes
from .serial_control import WORD_BYTES, SerialJobSignature
from .serial_front import buffer_depth

#: cycles from a key's score read to its e (score memory, difference, product, rounding, shift,
#: clamp, table); at most head_dim / 2 - 1, so that the next key's e is ready in time
E_LATENCY = 8


class SerialBack(wiring.Component):
    """Exponentials and P.V sums of a row, one V word per cycle.

    Per cycle, in its FSM: TAKE registers whether the next bank is ``full`` and TAKE2 takes it
    (its maximum, key count and output position); in PV an e is fetched (score read through
    ``s_raddr``, ``E_LATENCY`` cycles to e) whenever its slot is free, and the current key's V
    words are read (``v_addr``) and multiplied by its e, the products added into sum bank
    ``abank`` (a word, two sums, written two cycles after its read); PV_DRAIN waits for the
    last products and releases the score bank (``rel``); HAND gives the row to the epilogue
    (``epi_go`` with ``ssum``, ``bpos`` and ``abank``) once it is idle (``epi_busy``). The
    epilogue reads its bank (``ebank``) through the sum memories' read port (``epi_rd``,
    ``epi_word``; ``acc_rdata`` a cycle later).
    """

    def __init__(self, params: EngineParams):
        self._params = params
        P = params
        NB, SW, R = P.seq_width, P.score_width, P.head_dim // WORD_BYTES
        super().__init__({
            "job": In(SerialJobSignature(P)),
            "v_addr": Out(range(buffer_depth(P))), "v_rdata": In(8 * WORD_BYTES),
            "full": In(2), "rel": Out(2),
            "b_max": In(signed(SW)).array(2), "b_keys": In(NB + 1).array(2),
            "b_pos": In(NB).array(2),
            "s_raddr": Out(NB + 1), "s_rdata": In(SW + NB),
            "epi_busy": In(1), "epi_go": Out(1),
            "ssum": Out(P.sum_width), "bpos": Out(NB), "abank": Out(1),
            "epi_rd": In(1), "epi_word": In(range(R)), "ebank": In(1),
            "acc_rdata": Out(2 * P.acc_width).array(2),
        })

    def elaborate(self, platform):
        P, job = self._params, self.job
        R = P.head_dim // WORD_BYTES
        RB = (R - 1).bit_length()
        NB, SW, AW = P.seq_width, P.score_width, P.acc_width
        m = Module()
        # P.V sums, two banks: the back accumulates a row in one while the epilogue normalises
        # the previous row from the other; word w holds elements 2w and 2w + 1
        a_wr, a_rd = [], []
        for k in range(2):
            m.submodules[f"acc{k}"] = amem = memory.Memory(shape=unsigned(2 * AW), depth=R,
                                                           init=[])
            a_wr.append(amem.write_port())
            a_rd.append(amem.read_port())
            m.d.comb += self.acc_rdata[k].eq(a_rd[k].data)

        bbank = Signal()
        bmax = Signal(signed(SW))
        bkeys = Signal(NB + 1)
        bpos = self.bpos
        sidx = Signal(NB + 1)  # next score to read
        taken = Signal(NB + 1)  # keys whose V row has started
        more, all_taken = Signal(), Signal()  # sidx < bkeys, taken == bkeys (registers)
        b_full = Signal()
        ssum = self.ssum
        fetch = Signal()
        e_pipe = Signal(E_LATENCY)
        m.d.sync += e_pipe.eq(Cat(fetch, e_pipe[:-1]))
        e_busy = e_pipe.any()
        e_rdy = Signal()
        e_next = Signal(nx.EXP_WIDTH)
        j_next = Signal(NB)
        m.d.comb += self.s_raddr.eq(Cat(sidx[:NB], bbank))
        self._exponential(m, bmax, e_pipe, e_next, e_rdy, j_next)

        # P.V: V words of the current key; ScaleLanes (latency 1) after the operand registers
        e_cur = Signal(nx.EXP_WIDTH)
        j_cur = Signal(NB)
        vw = Signal(RB)
        vkey = Signal()  # a key's V row is being read
        vfirst = Signal()  # the row's first key: its products start the sums
        m.d.comb += self.v_addr.eq(Cat(vw, j_cur))
        m.submodules.pv = pv = ScaleLanes(WORD_BYTES)
        v_op = Signal(8 * WORD_BYTES)
        e_op = Signal(nx.EXP_WIDTH)
        vt = [Signal(2 + RB, name=f"vtag{i}") for i in range(3)]  # valid, first key, word
        e_d = Signal(nx.EXP_WIDTH)  # e of the word read in the previous cycle
        m.d.sync += [v_op.eq(self.v_rdata), e_d.eq(e_cur), e_op.eq(e_d),
                     vt[0].eq(Cat(vkey, vfirst, vw)), vt[1].eq(vt[0]), vt[2].eq(vt[1])]
        m.d.comb += [pv.e.eq(e_op), pv.v.as_value().eq(v_op)]
        # vt[1]: operands registered (read the sums now), vt[2]: products ready; into the
        # back's sum bank (abank), the other one is the epilogue's
        abank = self.abank
        pv_old = Mux(abank, a_rd[1].data, a_rd[0].data)
        old = [pv_old[k * AW:(k + 1) * AW].as_signed() for k in range(2)]
        for k in range(2):
            m.d.comb += [a_rd[k].addr.eq(Mux(self.epi_rd & (self.ebank == k), self.epi_word,
                                             vt[1][2:])),
                         a_wr[k].addr.eq(vt[2][2:]), a_wr[k].en.eq(vt[2][0] & (abank == k)),
                         a_wr[k].data.eq(Cat(*[(Mux(vt[2][1], 0, old[i]) + pv.prod[i])
                                               .as_unsigned()[:AW] for i in range(2)]))]

        with m.FSM(name="back"):
            with m.State("IDLE"):
                with m.If(job.init):
                    m.d.sync += [bbank.eq(0), abank.eq(0)]
                    m.next = "TAKE"
            with m.State("TAKE"):  # its test, registered for TAKE2
                m.d.sync += b_full.eq(Mux(bbank, self.full[1], self.full[0]))
                m.next = "TAKE2"
            with m.State("TAKE2"):
                m.next = "TAKE"
                with m.If(~job.running):
                    m.next = "IDLE"
                with m.Elif(b_full):
                    for i in range(2):
                        with m.If(bbank == i):
                            m.d.sync += [bmax.eq(self.b_max[i]), bkeys.eq(self.b_keys[i]),
                                         bpos.eq(self.b_pos[i])]
                    m.d.sync += [sidx.eq(0), taken.eq(0), ssum.eq(0), e_rdy.eq(0),
                                 vkey.eq(0), vfirst.eq(1), more.eq(1), all_taken.eq(0)]
                    m.next = "PV"
            with m.State("PV"):
                # fetch the next key's e whenever the slot for it is free
                with m.If(~e_rdy & ~e_busy & more):
                    m.d.comb += fetch.eq(1)
                    m.d.sync += [sidx.eq(sidx + 1), more.eq(sidx + 1 < bkeys)]
                key_end = ~vkey | (vw == R - 1)
                with m.If(vkey):
                    m.d.sync += vw.eq(vw + 1)
                with m.If(key_end):
                    with m.If(vkey):
                        m.d.sync += vfirst.eq(0)
                    with m.If(e_rdy):
                        m.d.sync += [e_cur.eq(e_next), j_cur.eq(j_next), e_rdy.eq(0),
                                     vkey.eq(1), vw.eq(0), taken.eq(taken + 1),
                                     all_taken.eq(taken + 1 == bkeys), ssum.eq(ssum + e_next)]
                    with m.Else():
                        m.d.sync += vkey.eq(0)
                        with m.If(all_taken):
                            m.next = "PV_DRAIN"
            with m.State("PV_DRAIN"):  # the last products into the sums; the scores are used
                with m.If(~Cat(vt[0][0], vt[1][0], vt[2][0]).any()):
                    m.d.comb += self.rel.eq(Mux(bbank, 0b10, 0b01))
                    m.d.sync += bbank.eq(~bbank)
                    m.next = "HAND"
            with m.State("HAND"):  # to the epilogue, once it is done with its row
                with m.If(~self.epi_busy):
                    m.d.comb += self.epi_go.eq(1)
                    m.d.sync += abank.eq(~abank)
                    m.next = "TAKE"
        return m

    def _exponential(self, m, bmax, e_pipe, e_next, e_rdy, j_next):
        """e of the next key: score read, t = m - s, t * M, + the rounding, the shift, the
        clamp, the table (one operation per stage). One e is in flight at a time (a fetch
        waits for an empty pipeline and a consumed e), so one register (``j_next``) holds its
        key's index, read from the score memory beside the score, until the key's V row
        starts."""
        job = self.job
        SW = self._params.score_width
        m.submodules.exp = expu = ExpUnit()
        s_score = self.s_rdata[:SW].as_signed()
        with m.If(e_pipe[0]):  # the fetched score and index are out of the memory
            m.d.sync += j_next.eq(self.s_rdata[SW:])
        t = Signal(SW + 1)
        m.d.sync += t.eq(bmax - s_score)
        tm = Signal(SW + 1 + nx.MULT_MANT_WIDTH)
        m.d.sync += tm.eq(t * job.mult_mant)
        # x = (t * M + 2^(shift - 1)) >> shift; t * M < 2^big, so a shift over big leaves 0
        # with or without the rounding term, which is left out there
        sh = job.mult_shift
        big = len(tm)
        rnd = Signal(big)  # the rounding term, fixed for the job
        with m.If(job.init):
            m.d.sync += rnd.eq(Mux((sh == 0) | (sh > big), 0,
                                   Const(1, big) << (sh - 1)[:nx.MULT_SHIFT_WIDTH]))
        y = Signal(big + 1)
        xs = Signal(big + 1)
        x = Signal(nx.EXP_IN_WIDTH)
        m.d.sync += [y.eq(tm + rnd), xs.eq(y >> sh),
                     x.eq(Mux(xs >= nx.EXP_CUTOFF, nx.EXP_CUTOFF, xs))]
        m.d.comb += expu.x.eq(x)  # ExpUnit: e a cycle after x
        got_e = e_pipe[E_LATENCY - 2]
        with m.If(got_e):
            m.d.sync += [e_next.eq(expu.e), e_rdy.eq(1)]
