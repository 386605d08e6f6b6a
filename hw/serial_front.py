"""The serial engine's front: a row's scores and their maximum, into a bank of the score memory.

:class:`SerialFront` takes the job's rows in output order (the rows that are not global in
ascending order, then the global rows), one at a time: the row's Q row into a small memory,
then each of its keys (the window ``i + o * dil`` for ``o`` in ``-left..right`` inside
``0..n-1``, then each band beside the window, ``i + (start + k) * dil`` for ``k < count`` inside
``0..n-1``, then the globals met in neither; every key for a global row), reading the
key's K row a word per cycle into two Q.K multipliers. Each key's score and index go to the
row's bank of the score memory, and the row maximum is kept; then the bank goes to the back.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec.engine_params import EngineParams
from .blocks import DotLanes
from .serial_control import WORD_BYTES, SerialJobSignature

#: front pipeline: issue, operands, products, sum
DOT_LATENCY = 3


def buffer_depth(P: EngineParams) -> int:
    """Words of a serial engine's row buffer: ``2 ** seq_width`` rows of ``head_dim / 2``."""
    return (1 << P.seq_width) * (P.head_dim // WORD_BYTES)


class SerialFront(wiring.Component):
    """Scores of a row, one key word per cycle.

    Per cycle, in its FSM: NEXT registers the next row's tests and PICK acts on them (the row,
    or past a global row, or on to the global rows, or IDLE after the last); WAIT holds until
    the row's bank is empty (``full``); LOADQ reads the Q row a word per cycle (``q_addr``,
    ``q_rdata`` a cycle later); KEYS reads one K word of the current key (``k_addr``) per cycle
    while a generator registers the next candidate key; DRAIN waits for the last score and hands
    the bank over (``full``; its maximum ``b_max``, key count ``b_keys`` and output position
    ``b_pos``). ``rel``: the back is done with a bank. The back reads the scores through
    ``s_raddr`` / ``s_rdata`` (score and key index; a cycle later).
    """

    def __init__(self, params: EngineParams):
        self._params = params
        P = params
        NB, SW = P.seq_width, P.score_width
        super().__init__({
            "job": In(SerialJobSignature(P)),
            "q_addr": Out(range(buffer_depth(P))), "q_rdata": In(8 * WORD_BYTES),
            "k_addr": Out(range(buffer_depth(P))), "k_rdata": In(8 * WORD_BYTES),
            "rel": In(2), "full": Out(2),
            "b_max": Out(signed(SW)).array(2), "b_keys": Out(NB + 1).array(2),
            "b_pos": Out(NB).array(2),
            "s_raddr": In(NB + 1), "s_rdata": Out(SW + NB),
        })

    def elaborate(self, platform):
        P, job = self._params, self.job
        R = P.head_dim // WORD_BYTES
        RB = (R - 1).bit_length()
        NB, SW, GM = P.seq_width, P.score_width, max(1, P.max_globals)
        glob, ng, n = [job.glob[i] for i in range(GM)], job.ng, job.n
        m = Module()
        # scores and key indices, one bank per row in flight (a global row has n keys)
        m.submodules.scores = smem = memory.Memory(shape=unsigned(SW + NB), depth=2 << NB, init=[])
        s_wr = smem.write_port()
        s_rd = smem.read_port()
        m.d.comb += [s_rd.addr.eq(self.s_raddr), self.s_rdata.eq(s_rd.data)]
        m.submodules.qrow = qmem = memory.Memory(shape=unsigned(8 * WORD_BYTES), depth=R, init=[])
        q_wr = qmem.write_port()
        q_rd = qmem.read_port()

        # the two banks: full (front -> back), and what the front leaves for the back
        full = Signal(2)
        give = Signal(2)  # hand a bank over, this cycle
        m.d.comb += self.full.eq(full)
        m.d.sync += full.eq((full | give) & ~self.rel)
        with m.If(job.init):
            m.d.sync += full.eq(0)

        tok = Signal(NB + 1)  # the row's token
        r = self._key_generator(m, tok)
        fbank = Signal()
        pos = Signal(NB)  # output position of the row
        grows = Signal()  # in the global rows
        gr = Signal(range(GM + 1))
        grow = Signal()  # the row is a global row
        tok_end, tok_glob, gr_end = Signal(), Signal(), Signal()
        w = Signal(RB)  # word of the row being read
        kcount = Signal(NB + 1)
        smax = Signal(signed(SW))
        issue = Signal()  # a K word is read this cycle
        ifirst, ilast = Signal(), Signal()
        w_last = Signal()  # w == R - 1, a register moved with w
        m.d.comb += [self.q_addr.eq(Cat(w, pos)), self.k_addr.eq(Cat(w, r.cand)),
                     q_rd.addr.eq(w), ifirst.eq(w == 0), ilast.eq(w_last)]
        # Q words: written a cycle after their read
        qld = Signal()
        qw = Signal(RB)
        m.d.sync += [qld.eq(0), qw.eq(w)]
        m.d.comb += [q_wr.addr.eq(qw), q_wr.data.eq(self.q_rdata), q_wr.en.eq(qld)]

        # Q.K: the K word and the Q word arrive a cycle after the issue; DotLanes registers
        # them, the products and their sum (latency 3); then the sum over the row's words
        m.submodules.dot = dot = DotLanes(WORD_BYTES, latency=3)
        m.d.comb += [dot.a.as_value().eq(q_rd.data), dot.b.as_value().eq(self.k_rdata)]
        tags = [Signal(3, name=f"ftag{i}") for i in range(DOT_LATENCY + 2)]
        m.d.sync += tags[0].eq(Cat(issue, ifirst, ilast))
        # the key of a score: a key's words issue back to back, head_dim / 2 > DOT_LATENCY + 2
        # cycles apart from the next key's last word, so one register holds it until its score
        # is stored
        kdone = Signal(NB)
        with m.If(issue & ilast):
            m.d.sync += kdone.eq(r.cand)
        for a, b in zip(tags, tags[1:]):
            m.d.sync += b.eq(a)
        t_end = tags[DOT_LATENCY]  # the word's part of the sum is in dot.sum now
        sacc = Signal(signed(SW))
        m.d.sync += sacc.eq(Mux(t_end[1], 0, sacc) + dot.sum)
        t_done = tags[DOT_LATENCY + 1]  # sacc holds a whole score when this word was the last
        score_now = t_done[0] & t_done[2]
        m.d.comb += [s_wr.addr.eq(Cat(kcount[:NB], fbank)), s_wr.data.eq(Cat(sacc, kdone)),
                     s_wr.en.eq(score_now)]
        with m.If(score_now):
            m.d.sync += [kcount.eq(kcount + 1),
                         smax.eq(Mux((kcount == 0) | (sacc > smax), sacc, smax))]
        in_flight = Cat(t[0] for t in tags).any()

        def is_global(idx):
            hit = Const(0, 1)
            for i in range(GM):
                hit = hit | ((i < ng) & (glob[i] == idx))
            return hit

        with m.FSM(name="front"):
            with m.State("IDLE"):
                with m.If(job.init):
                    m.d.sync += [fbank.eq(0), pos.eq(0), tok.eq(0), grows.eq(0), gr.eq(0)]
                    m.next = "NEXT"
            with m.State("NEXT"):  # find the next row: its tests, registered for PICK
                m.d.sync += [tok_end.eq(tok >= n), tok_glob.eq(is_global(tok)),
                             gr_end.eq(gr >= ng)]
                m.next = "PICK"
            with m.State("PICK"):
                m.next = "NEXT"
                with m.If(~job.running):
                    m.next = "IDLE"
                with m.Elif(~grows):
                    with m.If(tok_end):
                        m.d.sync += grows.eq(1)
                    with m.Elif(tok_glob):
                        m.d.sync += tok.eq(tok + 1)
                    with m.Else():
                        m.d.sync += grow.eq(0)
                        m.next = "WAIT"
                with m.Elif(gr_end):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [tok.eq(Array(glob)[gr[:max(1, (GM - 1).bit_length())]]),
                                 grow.eq(1)]
                    m.next = "WAIT"
            with m.State("WAIT"):  # for the bank
                with m.If(~Mux(fbank, full[1] | give[1], full[0] | give[0])):
                    m.d.sync += [w.eq(0), w_last.eq(R == 1)]
                    m.next = "LOADQ"
            with m.State("LOADQ"):
                m.d.sync += [w.eq(w + 1), w_last.eq(w == R - 2), qld.eq(1)]
                with m.If(w_last):
                    m.d.sync += [r.kj.eq(Mux(grow, 0, Cat(tok, 0).as_signed() - job.reach_l)),
                                 r.kc.eq(job.span), r.gk.eq(0), r.seen.eq(0),
                                 r.kphase.eq(Mux(grow, 2, 0)), kcount.eq(0),
                                 r.kc_end.eq(job.span == 0), r.c_valid.eq(0), r.gen_done.eq(0)]
                    if P.max_bands > 1:
                        m.d.sync += [r.more.eq(job.nb != 0), r.bi.eq(0)]
                    m.next = "KEYS"
            with m.State("KEYS"):
                consume = r.c_valid & (~r.cand_ok | ilast)  # the candidate is done with
                with m.If(r.c_valid & r.cand_ok):
                    m.d.comb += issue.eq(1)
                    m.d.sync += [w.eq(w + 1), w_last.eq(w == R - 2)]
                with m.If(consume & r.c_last):
                    m.next = "DRAIN"
                with m.If((~r.c_valid | consume) & ~r.gen_done):
                    r.next_key()
                with m.Elif(consume):
                    m.d.sync += r.c_valid.eq(0)
            with m.State("DRAIN"):  # the last scores through the pipeline
                with m.If(~in_flight):
                    m.d.comb += give.eq(Mux(fbank, 0b10, 0b01))
                    for i in range(2):
                        with m.If(fbank == i):
                            m.d.sync += [self.b_max[i].eq(smax), self.b_keys[i].eq(kcount),
                                         self.b_pos[i].eq(pos)]
                    m.d.sync += [fbank.eq(~fbank), pos.eq(pos + 1)]
                    with m.If(grow):
                        m.d.sync += gr.eq(gr + 1)
                    with m.Else():
                        m.d.sync += tok.eq(tok + 1)
                    m.next = "NEXT"
        return m

    def _key_generator(self, m, tok):
        """The keys of a row come from a generator: the window (kj, and kc the steps left),
        each band beside it (kj from ``tok`` and the band's reach, kc), the globals (gk), or
        every key (global row). It offers the next candidate key (g_j, whether it is a key of
        the row g_ok, whether it is the row's last g_last), which ``next_key()`` registers
        (cand, cand_ok, c_last) before the K words are read: the range and window tests never
        steer the reads in the same cycle."""
        from types import SimpleNamespace

        P, job = self._params, self.job
        NB, GM = P.seq_width, max(1, P.max_globals)
        glob, ng, n, dil = [job.glob[i] for i in range(GM)], job.ng, job.n, job.dil
        r = SimpleNamespace(
            kj=Signal(signed(NB + 2)), kc=Signal(range(2 * P.max_radius + 1)),
            gk=Signal(range(GM)),
            seen=Signal(GM),  # globals already met in the window
            kphase=Signal(2),  # 0 window, 1 globals, 2 all keys, 3 a band
            gen_done=Signal(),
            cand=Signal(NB),  # c_j
            cand_ok=Signal(), c_last=Signal(), c_valid=Signal(),
            kc_end=Signal(),  # kc == 0, a register moved with kc
        )
        NBS = P.max_bands - 1  # bands beside the window
        # more: a band follows the window or band being walked; bi: that band
        r.more, r.bi = Signal(), Signal(range(max(2, NBS + 1)))
        more = r.more if NBS else Const(0, 1)
        g_j, g_ok, g_last = Signal(NB), Signal(), Signal()
        with m.Switch(r.kphase):
            with m.Case(0, 3):
                m.d.comb += [g_j.eq(r.kj), g_ok.eq((r.kj >= 0) & (r.kj < n)),
                             g_last.eq(r.kc_end & (ng == 0) & ~more)]
            with m.Case(1):
                m.d.comb += [g_j.eq(Array(glob)[r.gk]),
                             g_ok.eq(~Array(r.seen[i] for i in range(GM))[r.gk]),
                             g_last.eq(r.gk == ng - 1)]
            with m.Default():
                m.d.comb += [g_j.eq(r.kj), g_ok.eq(1), g_last.eq(r.kj == n - 1)]

        def next_key():
            """Register the generator's candidate and move the generator on."""
            m.d.sync += [r.cand.eq(g_j), r.cand_ok.eq(g_ok), r.c_last.eq(g_last),
                         r.c_valid.eq(1), r.gen_done.eq(g_last)]
            with m.Switch(r.kphase):
                with m.Case(0, 3):
                    # (kj at full width: a step outside 0..n-1 matches no global index)
                    m.d.sync += r.seen.eq(r.seen | Cat((i < ng) & (glob[i] == r.kj)
                                                       for i in range(GM)))
                    if NBS:
                        with m.If(r.kc_end & more):  # on to the next band
                            reach = Array(job.b_reach)[r.bi] if NBS > 1 else job.b_reach[0]
                            span = Array(job.b_span)[r.bi] if NBS > 1 else job.b_span[0]
                            m.d.sync += [r.kphase.eq(3),
                                         r.kj.eq(Cat(tok, 0).as_signed() + reach),
                                         r.kc.eq(span), r.kc_end.eq(span == 0),
                                         r.more.eq(r.bi + 1 < job.nb), r.bi.eq(r.bi + 1)]
                    with m.Elif(r.kc_end) if NBS else m.If(r.kc_end):
                        m.d.sync += [r.kphase.eq(1), r.gk.eq(0)]
                    with m.Else():
                        m.d.sync += [r.kj.eq(r.kj + dil), r.kc.eq(r.kc - 1),
                                     r.kc_end.eq(r.kc == 1)]
                with m.Case(1):
                    m.d.sync += r.gk.eq(r.gk + 1)
                with m.Default():
                    m.d.sync += r.kj.eq(r.kj + 1)
        r.next_key = next_key
        return r
