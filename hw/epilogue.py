"""The epilogue: each output row normalised by its sum of exponentials, and the ``o`` stream.

Stage 2 leaves a finished group's rows in one of two accumulator banks (per unit: A = sum e v,
``head_dim`` values, read chunk by chunk at the head of a ring, and S = sum e). The
:class:`Epilogue` takes the banks in order; per unit it finds S's leading one, starts a
reciprocal of S's top bits, and runs the row through ``out_lanes`` normalisers (o = A / S,
rounded and scaled by ``out_shift``, saturated to int8); then it offers the bank's rows on ``o``
in unit order.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from ..sw.spec.engine_params import EngineParams
from .blocks import Normaliser, Reciprocal, int8_row
from .job import JobSignature


def head_layout(P: EngineParams) -> data.ArrayLayout:
    """An accumulator ring's head chunk: ``lane_width`` values of ``acc_width`` bits."""
    return data.ArrayLayout(signed(P.acc_width), P.lane_width)


class Epilogue(wiring.Component):
    """Normalises finished groups and emits their rows.

    Inputs from stage 2: ``grp_done`` (a pulse: a group's last P.V accumulation landed) with
    ``grp_final`` (its results are the rows' last), ``grp_abank`` (its accumulator bank) and
    ``grp_active`` (its units with a row); ``acc_claim`` (per bank, a pulse: stage 2 took a
    final group into it); ``heads[u][b]`` and ``sums[u][b]`` (unit u's head chunk of A and its
    S in bank b). Outputs to stage 2: ``acc_full`` (per bank: claimed and not yet emitted; stage
    2 takes no final group into a full bank), ``turn[u]`` (turn unit u's ring of bank
    ``bank``: the next chunk to the head).

    Per cycle: a bank whose group finished is started when the epilogue is idle; each active
    unit goes IDLE -> NORM (S's leading one) -> RECIP -> RSTART -> DIV (the reciprocal) -> OUT
    (``head_dim / out_lanes`` groups of elements through the normalisers) -> READY; the arbiter
    offers the rows in unit order (``o.valid`` only while the job runs) and frees the bank after
    the last.
    """

    def __init__(self, params: EngineParams):
        self._params = params
        P, U = params, params.units
        super().__init__({
            "job": In(JobSignature(params)),
            "grp_done": In(1), "grp_final": In(1), "grp_abank": In(1), "grp_active": In(U),
            "acc_claim": In(2),
            "heads": In(head_layout(P)).array(U, 2),
            "sums": In(unsigned(P.sum_width)).array(U, 2),
            "acc_full": Out(2),
            "turn": Out(U), "bank": Out(1),
            "o": Out(stream.Signature(int8_row(P.head_dim))),
        })

    def elaborate(self, platform):
        U, job = self._params.units, self.job
        m = Module()
        # A finished group waits in its accumulator bank; the epilogue takes banks in order.
        copy = self.grp_done & self.grp_final
        act_bank = [Signal(U, name=f"act_bank{b}") for b in range(2)]
        acc_full, acc_ready = Signal(2), Signal(2)
        acc_full_set = Signal(2)
        acc_full_clr = Signal(2)
        m.d.comb += self.acc_full.eq(acc_full)
        m.d.sync += [acc_full.eq((acc_full | self.acc_claim) & ~acc_full_clr),
                     acc_ready.eq((acc_ready | acc_full_set) & ~acc_full_clr)]
        with m.If(copy):
            m.d.comb += acc_full_set.eq(Mux(self.grp_abank, 0b10, 0b01))
            for b in range(2):
                with m.If(self.grp_abank == b):
                    m.d.sync += act_bank[b].eq(self.grp_active)
        epi_bank = Signal()  # bank the epilogue serves next
        m.d.comb += self.bank.eq(epi_bank)
        epi_go = Signal()  # one-cycle pulse: start normalising bank epi_bank
        epi_run = Signal()
        pending = Signal(U)  # rows of the bank still to emit
        ou = Signal(range(U + 1))
        with m.If(~epi_run & Array([acc_ready[0], acc_ready[1]])[epi_bank]):
            m.d.comb += epi_go.eq(1)
            m.d.sync += [epi_run.eq(1), ou.eq(0),
                         pending.eq(Mux(epi_bank, act_bank[1], act_bank[0]))]
        ready_rows = Signal(U)
        out_rows = []
        epi_bank_dups = []  # copies of epi_bank, one per normaliser (per element with SHIFT_IN)
        for u in range(U):
            act_u = Mux(epi_bank, act_bank[1][u], act_bank[0][u])
            row, dups = self._unit(m, u, epi_bank, epi_go & act_u, ready_rows[u],
                                   self.o.valid & self.o.ready & (ou == u))
            out_rows.append(row)
            epi_bank_dups += dups

        # output arbiter: the bank's rows in unit order
        pend_arr = Array(pending[u] for u in range(U))
        ready_arr = Array(ready_rows[u] for u in range(U))
        row_arr = Array(out_rows)
        # (the payload whatever the state: only ``o.valid`` depends on it, so no control net
        # reaches the row's wide fan-out)
        m.d.comb += self.o.payload.eq(row_arr[ou] if U > 1 else out_rows[0])
        with m.If(epi_run):
            with m.If(ou == U):
                m.d.sync += [epi_run.eq(0), epi_bank.eq(~epi_bank)]
                m.d.sync += [c.eq(~epi_bank) for c in epi_bank_dups]
                m.d.comb += acc_full_clr.eq(Mux(epi_bank, 0b10, 0b01))
            with m.Elif(~pend_arr[ou]):
                m.d.sync += ou.eq(ou + 1)
            with m.Else():
                # gated by ``running``: no row is offered in the cycle a new job starts
                m.d.comb += self.o.valid.eq(ready_arr[ou] & job.running)
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += ou.eq(ou + 1)

        with m.If(job.init):
            m.d.sync += [pending.eq(0), acc_full.eq(0), acc_ready.eq(0), epi_bank.eq(0),
                         epi_run.eq(0)]
            m.d.sync += [c.eq(0) for c in epi_bank_dups]
        return m

    def _unit(self, m, u, epi_bank, go, ready, taken):
        """Unit ``u``'s normalisation: starts on ``go``, raises ``ready`` when its row is done,
        back to IDLE when the row is ``taken``. Returns the row register and the copies of
        ``epi_bank`` it made (the arbiter flips them with the bank)."""
        P = self._params
        d, LW, CH, ol = P.head_dim, P.lane_width, P.chunks, P.out_lanes
        heads, sums = self.heads[u], self.sums[u]
        dups = []
        # the bank's sum S, registered as the row's epilogue starts (the bank's sums stand
        # still until its rows are out)
        sel_s = Signal(unsigned(P.sum_width), name=f"sel_s{u}")
        rstart = Signal(name=f"rstart{u}")  # the reciprocal's start: a register, high in
        m.d.sync += rstart.eq(0)  # RSTART only (no state decode in front of the divider)
        pshift = Signal(range(P.sum_width + 1), name=f"p{u}")
        m.submodules[f"recip{u}"] = rc = Reciprocal()
        div_r = Signal(nx.SUM_NORM_BITS, name=f"div_r{u}")
        m.d.comb += [rc.start.eq(rstart), rc.divisor.eq(div_r)]
        row = Signal(int8_row(d), name=f"orow{u}", reset_less=True)
        NL = Normaliser.LATENCY
        oc = Signal(range(d // ol + NL), name=f"oc{u}")
        per_chunk = LW // ol
        SB = (per_chunk - 1).bit_length()
        SHIFT_IN = CH == 1  # (the normalisers' shift registers below)
        # copies of oc's low bits (the element within the head chunk), one per normaliser,
        # each driving that normaliser's element multiplexer only (none with SHIFT_IN)
        sub_d = [] if SHIFT_IN else [Signal(SB, name=f"sub_u{u}_{j}_dup") for j in range(ol)]
        # the bank picked by a copy of epi_bank beside each normaliser (each copy drives a
        # normaliser's accumulator multiplexers, not all of them)
        bank_d = [] if SHIFT_IN else [Signal(name=f"epi_bank_u{u}_{j}_dup") for j in range(ol)]
        dups += bank_d
        # With one chunk per row (the ring never turns), each normaliser's elements wait in
        # a shift register of its own, loaded from the bank's accumulators (they stand still
        # until the rows are out) in the cycle before OUT (the reciprocal's done: ``ld``, a
        # copy per normaliser of a register set with it) and shifted a place every cycle:
        # the normaliser reads place 0, where a multiplexer over the accumulators spread
        # beside the P.V lanes would otherwise sit in front of its input register
        elem_sr = []
        for j in range(ol if SHIFT_IN else 0):
            ld = Signal(name=f"epi_ld_u{u}_{j}_dup")
            m.d.sync += ld.eq(rc.last)
            sr = [Signal(signed(P.acc_width), name=f"epi_sr_u{u}_{j}_{k}", reset_less=True)
                  for k in range(per_chunk)]
            # a copy of the bank per element: each drives one element's multiplexer, beside
            # its accumulators (a copy per normaliser would reach a whole row's worth)
            bank_e = [Signal(name=f"epi_bank_u{u}_{j}_{k}_dup") for k in range(per_chunk)]
            dups += bank_e
            for k, i in enumerate(range(j, LW, ol)):
                with m.If(ld):
                    m.d.sync += sr[k].eq(Mux(bank_e[k], heads[1][i], heads[0][i]))
                if k + 1 < per_chunk:
                    with m.Else():
                        m.d.sync += sr[k].eq(sr[k + 1])
            elem_sr.append(sr[0])
        with m.FSM(name=f"epi{u}"):
            with m.State("IDLE"):
                m.d.sync += sel_s.eq(Mux(epi_bank, sums[1], sums[0]))
                with m.If(go):
                    m.next = "NORM"
            with m.State("NORM"):
                # S's leading one (registered), then S's top bits start the reciprocal
                bl = Signal(range(P.sum_width + 1))
                for b in range(P.sum_width):
                    with m.If(sel_s[b]):
                        m.d.comb += bl.eq(b + 1)
                m.d.sync += pshift.eq(Mux(bl > nx.SUM_NORM_BITS, bl - nx.SUM_NORM_BITS, 0))
                m.next = "RECIP"
            with m.State("RECIP"):  # S's top bits, registered before they start it
                m.d.sync += [div_r.eq(sel_s >> pshift), rstart.eq(1)]
                m.next = "RSTART"
            with m.State("RSTART"):  # (the start pulse is rstart)
                m.next = "DIV"
            with m.State("DIV"):
                with m.If(rc.done):
                    m.d.sync += [oc.eq(0)] + [c.eq(0) for c in sub_d]
                    m.next = "OUT"
            with m.State("OUT"):
                # element group oc enters the normalisers; group oc - NL leaves them. The
                # elements come from the head chunk of the bank's ring, which turns after
                # its last group
                sub = oc[:SB]
                m.d.comb += self.turn[u].eq((sub == per_chunk - 1) & (oc < d // ol))
                for j in range(ol):
                    m.submodules[f"norm{u}_{j}"] = nm = Normaliser(P.acc_width)
                    if SHIFT_IN:
                        a_in = elem_sr[j]
                    else:
                        elems = Array(Mux(bank_d[j], heads[1][i], heads[0][i])
                                      for i in range(j, LW, ol))
                        a_in = elems[sub_d[j]] if per_chunk > 1 else elems[0]
                    m.d.comb += [nm.a.eq(a_in), nm.p.eq(pshift),
                                 nm.r.eq(rc.quotient), nm.out_shift.eq(self.job.out_shift)]
                    with m.Switch(oc):
                        for k in range(d // ol):
                            with m.Case(k + NL):
                                m.d.sync += row[k * ol + j].eq(nm.o)
                m.d.sync += [oc.eq(oc + 1)] + [c.eq(c + 1) for c in sub_d]
                with m.If(oc == d // ol - 1 + NL):
                    m.next = "READY"
            with m.State("READY"):
                m.d.comb += ready.eq(1)
                with m.If(taken):
                    m.next = "IDLE"
        return row, dups
