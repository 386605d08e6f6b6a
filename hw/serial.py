"""The serial engine: one query row at a time, for a small FPGA whose row buffers are 16 bits wide.

On the iCE40UP5K the Q, K, V and O rows live in single-port SPRAM blocks of 16-bit words, so a
key row arrives two int8 elements per cycle however many multipliers wait for it. This engine is
shaped by that bandwidth instead of by lanes: it computes the same formulas as
:class:`swattn.hw.engine.Engine` (:mod:`swattn.sw.numerics`; every sum is an exact integer, so
the order of the keys does not matter) with two Q.K and two P.V multipliers (``lanes = 4``),
reading the buffers directly, without row feeders. Rows come out in
:func:`swattn.sw.schedule.output_order` of a one-unit engine (the rows that are not global in
ascending order, then the global rows), so the host driver is the same.

Three machines run side by side, each on a different row:

* the *front* takes a row: its Q row into a small memory, then each of its keys (the window,
  ``i + o * dil`` for ``o`` in ``-left..right`` inside ``0..n-1``, then the globals that were not
  in the window; every key for a global row), reading the key's K row a word per cycle into the
  Q.K multipliers. Each key's score and index go to the row's bank of the score memory, and the
  row maximum is kept. Then the bank is handed to the back.
* the *back* reads a full bank: for each stored key ``e = 2^-x`` of ``x = (m - s) * M``
  (computed while the previous key's V row streams), then the key's V row a word per cycle into
  the P.V multipliers, accumulated in one of two sum memories of ``head_dim / 2`` words of two
  sums each. After the last key it hands the sums (and S) to the epilogue and takes the next
  bank.
* the *epilogue* normalises the previous row from the other sum memory: the sum's normalising
  shift, the reciprocal, and the output row through the normaliser into the O buffer.

So the K buffer (front) and the V buffer (back) are both busy while rows are in flight: about
``head_dim / 2`` cycles per key and row, the epilogue hidden behind the next row's P.V
(:func:`swattn.sw.cycles.predict_serial_cycles`).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..sw import numerics as nx
from ..sw import regs
from ..sw.engine_params import EngineParams
from .blocks import DotLanes, ExpUnit, Normaliser, Reciprocal, ScaleLanes

#: bytes per buffer word (the iCE40UP's SPRAM is 16 bits wide)
WORD_BYTES = 2
#: cycles from a key's score read to its e (score memory, difference, product, rounding, shift,
#: clamp, table); at most head_dim / 2 - 1, so that the next key's e is ready in time
E_LATENCY = 8
#: front pipeline: issue, operands, products, sum
DOT_LATENCY = 3


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
        R = params.head_dim // WORD_BYTES
        depth = (1 << params.seq_width) * R
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
        d = P.head_dim
        R = d // WORD_BYTES
        # (head_dim >= 32: a key's words outlast the e pipeline and the front's tags, which the
        # single e slot and the kdone register below rely on)
        assert R > max(E_LATENCY, DOT_LATENCY + 2), R
        RB = (R - 1).bit_length()
        NB = P.seq_width
        GM = max(1, P.max_globals)
        SW = P.score_width
        AW = P.acc_width
        m = Module()
        cfg = self.cfg

        # ---------------------------------------------------------------- status and checks
        state = Signal(2)
        error = Signal(4)
        cycles = Signal(32)
        m.d.comb += [self.status.state.eq(state), self.status.error.eq(error),
                     self.cycles.eq(cycles)]
        busy = state == regs.State.BUSY
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        n = Signal(NB + 1)
        ng = Signal(range(GM + 1))
        DB = P.max_dilation.bit_length()
        dil = Signal(DB)
        glob = [cfg.globals[i][:NB] for i in range(GM)]
        m.d.comb += [n.eq(cfg.n), ng.eq(cfg.n_globals), dil.eq(cfg.dilation)]
        reach_l = Signal(range(P.max_radius + 1))  # left * dilation, set by the checks
        span = Signal(range(2 * P.max_radius + 1))  # left + right

        checking = Signal()
        running = Signal()
        ci = Signal(range(GM + 4))
        chk_seen, chk_last = Signal(), Signal()
        chk_fail = Signal(4)
        passed = Signal()  # the checks passed
        init = Signal()  # a cycle later, one-cycle pulse: the job starts (a register: the link's
        # start decode reaches the checks in the same cycle)
        m.d.sync += init.eq(passed)
        with m.If(self.start):
            with m.If(busy):
                m.d.sync += error.eq(regs.Error.BUSY)
            with m.Else():
                m.d.sync += [state.eq(regs.State.BUSY), error.eq(0), cycles.eq(0),
                             checking.eq(1), ci.eq(0), running.eq(0), chk_seen.eq(0)]
        # one check per cycle: the scalars, then each global (its range, then whether
        # an earlier global has the same index); the codes and their order are the stream
        # engine's, so a configuration gets the same error on every board
        fail = Signal(4)
        rlim = Array(Const(P.max_radius // k if k else 0, range(P.max_radius + 1))
                     for k in range(1 << DB))[dil]
        cur = Array(glob)[(ci - 2)[:max(1, (GM - 1).bit_length())]]
        # step 0 registers each scalar test, step 1 picks the first that fails (so no compare
        # feeds a priority chain in the same cycle), step 2 + k checks global k
        f_n, f_dil, f_rad, f_cnt = Signal(), Signal(), Signal(), Signal()
        # (a start while BUSY is refused above: the checks go on as if it had not come)
        with m.If(checking):
            with m.If(ci == 0):
                m.d.sync += [f_n.eq((cfg.n == 0) | (cfg.n > P.n_max)),
                             f_dil.eq((cfg.dilation == 0) | (cfg.dilation > P.max_dilation)),
                             f_rad.eq((cfg.left > rlim) | (cfg.right > rlim)),
                             f_cnt.eq(cfg.n_globals > P.max_globals)]
                m.d.sync += [reach_l.eq(sum((Mux(dil[b], cfg.left[:reach_l.shape().width] << b,
                                                 0) for b in range(DB)), Const(0, 1))),
                             span.eq(cfg.left + cfg.right)]
            with m.Elif(ci == 1):
                with m.If(f_n):
                    m.d.comb += fail.eq(regs.Error.N_RANGE)
                with m.Elif(f_dil):
                    m.d.comb += fail.eq(regs.Error.DILATION)
                with m.Elif(f_rad):
                    m.d.comb += fail.eq(regs.Error.RADIUS)
                with m.Elif(f_cnt):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_COUNT)
            with m.Else():
                dup = Const(0, 1)
                for j in range(GM):
                    dup = dup | ((j < ci - 2) & (glob[j] == cur))
                with m.If(Array(cfg.globals[i] for i in range(GM))[
                        (ci - 2)[:max(1, (GM - 1).bit_length())]] >= cfg.n):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_RANGE)
                with m.Elif(dup):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_DUP)
            # a step's outcome is registered and acted on a cycle later (its compares do not
            # drive the job's control in the same cycle)
            m.d.sync += [ci.eq(ci + 1), chk_seen.eq(1), chk_fail.eq(fail),
                         chk_last.eq(ci >= ng + 1)]
            with m.If(chk_seen & (chk_fail != 0)):
                m.d.sync += [error.eq(chk_fail), state.eq(regs.State.IDLE), checking.eq(0)]
            with m.Elif(chk_seen & chk_last):
                m.d.sync += [checking.eq(0), running.eq(1)]
                m.d.comb += passed.eq(1)

        def is_global(idx):
            hit = Const(0, 1)
            for i in range(GM):
                hit = hit | ((i < ng) & (glob[i] == idx))
            return hit

        # ---------------------------------------------------------------- memories
        # scores and key indices, one bank per row in flight (a global row has n keys)
        m.submodules.scores = smem = memory.Memory(shape=unsigned(SW + NB), depth=2 << NB, init=[])
        s_wr = smem.write_port()
        s_rd = smem.read_port()
        m.submodules.qrow = qmem = memory.Memory(shape=unsigned(8 * WORD_BYTES), depth=R, init=[])
        q_wr = qmem.write_port()
        q_rd = qmem.read_port()
        # P.V sums, two banks: the back accumulates a row in one while the epilogue normalises
        # the previous row from the other; word w holds elements 2w and 2w + 1
        a_wr, a_rd = [], []
        for k in range(2):
            m.submodules[f"acc{k}"] = amem = memory.Memory(shape=unsigned(2 * AW), depth=R,
                                                           init=[])
            a_wr.append(amem.write_port())
            a_rd.append(amem.read_port())

        # the two banks: full (front -> back), and what the front leaves for the back
        full = Signal(2)
        b_max = [Signal(signed(SW), name=f"b{i}_max") for i in range(2)]
        b_keys = [Signal(NB + 1, name=f"b{i}_keys") for i in range(2)]
        b_pos = [Signal(NB, name=f"b{i}_pos") for i in range(2)]
        rel = Signal(2)  # back: release a bank (one-hot), this cycle
        give = Signal(2)  # front: hand a bank over, this cycle
        m.d.sync += full.eq((full | give) & ~rel)
        with m.If(init):
            m.d.sync += full.eq(0)

        # ---------------------------------------------------------------- front
        fbank = Signal()
        pos = Signal(NB)  # output position of the row
        tok = Signal(NB + 1)  # its token
        grows = Signal()  # in the global rows
        gr = Signal(range(GM + 1))
        grow = Signal()  # the row is a global row
        tok_end, tok_glob, gr_end = Signal(), Signal(), Signal()
        w = Signal(RB)  # word of the row being read
        # The keys of a row come from a generator: the window (kj, kc), the globals (gk), or
        # every key (global row). It offers the next candidate key (g_j, whether it is a key
        # of the row g_ok, whether it is the row's last g_last), which is registered (c_*) before
        # the K words are read: the range and window tests never steer the reads in the same
        # cycle.
        kj = Signal(signed(NB + 2))
        kc = Signal(range(2 * P.max_radius + 1))
        gk = Signal(range(GM))
        seen = Signal(GM)  # globals already met in the window
        kphase = Signal(2)  # 0 window, 1 globals, 2 all keys
        g_j, g_ok, g_last = Signal(NB), Signal(), Signal()
        gen_done = Signal()
        cand = Signal(NB)  # c_j
        cand_ok, c_last, c_valid = Signal(), Signal(), Signal()
        kcount = Signal(NB + 1)
        smax = Signal(signed(SW))
        issue = Signal()  # a K word is read this cycle
        ifirst, ilast = Signal(), Signal()
        w_last = Signal()  # w == R - 1, a register moved with w
        kc_end = Signal()  # kc == span, likewise
        m.d.comb += [self.q_addr.eq(Cat(w, pos)), self.k_addr.eq(Cat(w, cand)),
                     q_rd.addr.eq(w), ifirst.eq(w == 0), ilast.eq(w_last)]
        with m.Switch(kphase):
            with m.Case(0):
                m.d.comb += [g_j.eq(kj), g_ok.eq((kj >= 0) & (kj < n)),
                             g_last.eq(kc_end & (ng == 0))]
            with m.Case(1):
                m.d.comb += [g_j.eq(Array(glob)[gk]), g_ok.eq(~Array(seen[i] for i in range(GM))[gk]),
                             g_last.eq(gk == ng - 1)]
            with m.Default():
                m.d.comb += [g_j.eq(kj), g_ok.eq(1), g_last.eq(kj == n - 1)]
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
            m.d.sync += kdone.eq(cand)
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

        def next_key():
            """Register the generator's candidate and move the generator on."""
            m.d.sync += [cand.eq(g_j), cand_ok.eq(g_ok), c_last.eq(g_last), c_valid.eq(1),
                         gen_done.eq(g_last)]
            with m.Switch(kphase):
                with m.Case(0):
                    # (kj at full width: a step outside 0..n-1 matches no global index)
                    m.d.sync += seen.eq(seen | Cat((i < ng) & (glob[i] == kj)
                                                   for i in range(GM)))
                    with m.If(kc_end):
                        m.d.sync += [kphase.eq(1), gk.eq(0)]
                    with m.Else():
                        m.d.sync += [kj.eq(kj + dil), kc.eq(kc + 1), kc_end.eq(kc + 1 == span)]
                with m.Case(1):
                    m.d.sync += gk.eq(gk + 1)
                with m.Default():
                    m.d.sync += kj.eq(kj + 1)

        with m.FSM(name="front"):
            with m.State("IDLE"):
                with m.If(init):
                    m.d.sync += [fbank.eq(0), pos.eq(0), tok.eq(0), grows.eq(0), gr.eq(0)]
                    m.next = "NEXT"
            with m.State("NEXT"):  # find the next row: its tests, registered for PICK
                m.d.sync += [tok_end.eq(tok >= n), tok_glob.eq(is_global(tok)),
                             gr_end.eq(gr >= ng)]
                m.next = "PICK"
            with m.State("PICK"):
                m.next = "NEXT"
                with m.If(~running):
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
                    m.d.sync += [kj.eq(Mux(grow, 0, Cat(tok, 0).as_signed() - reach_l)), kc.eq(0),
                                 gk.eq(0), seen.eq(0), kphase.eq(Mux(grow, 2, 0)), kcount.eq(0),
                                 kc_end.eq(span == 0),
                                 c_valid.eq(0), gen_done.eq(0)]
                    m.next = "KEYS"
            with m.State("KEYS"):
                consume = c_valid & (~cand_ok | ilast)  # the candidate is done with
                with m.If(c_valid & cand_ok):
                    m.d.comb += issue.eq(1)
                    m.d.sync += [w.eq(w + 1), w_last.eq(w == R - 2)]
                with m.If(consume & c_last):
                    m.next = "DRAIN"
                with m.If((~c_valid | consume) & ~gen_done):
                    next_key()
                with m.Elif(consume):
                    m.d.sync += c_valid.eq(0)
            with m.State("DRAIN"):  # the last scores through the pipeline
                with m.If(~in_flight):
                    m.d.comb += give.eq(Mux(fbank, 0b10, 0b01))
                    for i in range(2):
                        with m.If(fbank == i):
                            m.d.sync += [b_max[i].eq(smax), b_keys[i].eq(kcount),
                                         b_pos[i].eq(pos)]
                    m.d.sync += [fbank.eq(~fbank), pos.eq(pos + 1)]
                    with m.If(grow):
                        m.d.sync += gr.eq(gr + 1)
                    with m.Else():
                        m.d.sync += tok.eq(tok + 1)
                    m.next = "NEXT"

        # ---------------------------------------------------------------- back
        bbank = Signal()
        bmax = Signal(signed(SW))
        bkeys = Signal(NB + 1)
        bpos = Signal(NB)
        sidx = Signal(NB + 1)  # next score to read
        taken = Signal(NB + 1)  # keys whose V row has started
        more, all_taken = Signal(), Signal()  # sidx < bkeys, taken == bkeys (registers)
        b_full = Signal()
        ssum = Signal(P.sum_width)
        # e of the next key: score read, t = m - s, t * M, the shift, the table
        m.submodules.exp = expu = ExpUnit()
        fetch = Signal()
        e_pipe = Signal(E_LATENCY)
        m.d.sync += e_pipe.eq(Cat(fetch, e_pipe[:-1]))
        e_busy = e_pipe.any()
        e_rdy = Signal()
        e_next = Signal(nx.EXP_WIDTH)
        # the key's index, taken from the score memory beside its score: one e is in flight at a
        # time (a fetch waits for an empty pipeline and a consumed e), so one register holds it
        # from the read until the key's V row starts
        j_next = Signal(NB)
        m.d.comb += s_rd.addr.eq(Cat(sidx[:NB], bbank))
        s_score = s_rd.data[:SW].as_signed()
        # one operation per stage: t = m - s; t * M; + the rounding; the shift; the clamp
        with m.If(e_pipe[0]):  # the fetched score and index are out of the memory
            m.d.sync += j_next.eq(s_rd.data[SW:])
        t = Signal(SW + 1)
        m.d.sync += t.eq(bmax - s_score)
        tm = Signal(SW + 1 + nx.MULT_MANT_WIDTH)
        m.d.sync += tm.eq(t * cfg.mult_mant)
        # x = (t * M + 2^(shift - 1)) >> shift; t * M < 2^big, so a shift over big leaves 0
        # with or without the rounding term, which is left out there
        sh = cfg.mult_shift
        big = len(tm)
        rnd = Signal(big)  # the rounding term, fixed for the job
        with m.If(init):
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
        abank = Signal()
        ebank = Signal()
        epi_rd = Signal()  # the epilogue reads a word of its bank this cycle
        el = Signal(range(d + 1))
        pv_old = Mux(abank, a_rd[1].data, a_rd[0].data)
        old = [pv_old[k * AW:(k + 1) * AW].as_signed() for k in range(2)]
        for k in range(2):
            m.d.comb += [a_rd[k].addr.eq(Mux(epi_rd & (ebank == k), el[1:], vt[1][2:])),
                         a_wr[k].addr.eq(vt[2][2:]), a_wr[k].en.eq(vt[2][0] & (abank == k)),
                         a_wr[k].data.eq(Cat(*[(Mux(vt[2][1], 0, old[i]) + pv.prod[i])
                                               .as_unsigned()[:AW] for i in range(2)]))]

        # the epilogue: the sum's normalising shift, the reciprocal, one element per cycle
        m.submodules.recip = recip = Reciprocal()
        rgo = Signal()  # high in RSTART only
        m.d.sync += rgo.eq(0)
        m.d.comb += recip.start.eq(rgo)
        m.submodules.norm = norm = Normaliser(AW, dsp_width=16)
        p = Signal(range(P.sum_width + 1))
        esum = Signal(P.sum_width)  # the row's S, handed over by the back
        epos = Signal(NB)  # and its output position
        # S < 2^sum_width: at most this many halvings bring it below 2^16; the shift always
        # takes them all, so a row's cycles do not depend on the data
        shift_steps = max(1, P.sum_width - nx.SUM_NORM_BITS)
        sc = Signal(range(shift_steps + 1))
        et = [Signal(1 + (d - 1).bit_length(), name=f"otag{i}") for i in range(norm.latency + 1)]
        low = Signal(8)
        m.d.comb += [recip.divisor.eq(esum[:nx.SUM_NORM_BITS]), norm.p.eq(p),
                     norm.r.eq(recip.quotient), norm.out_shift.eq(cfg.out_shift)]
        m.d.sync += et[0].eq(Cat(epi_rd, el[:(d - 1).bit_length()]))
        for a, b in zip(et, et[1:]):
            m.d.sync += b.eq(a)
        # et[0]: the sums' word is out of the memory; the element goes into the normaliser
        el1 = et[0][1:]
        e_word = Mux(ebank, a_rd[1].data, a_rd[0].data)
        m.d.comb += norm.a.eq(Mux(el1[0], e_word[AW:2 * AW], e_word[:AW]).as_signed())
        o_t = et[norm.latency]
        o_el = o_t[1:]
        with m.If(o_t[0] & ~o_el[0]):
            m.d.sync += low.eq(norm.o)
        m.d.comb += [self.o_addr.eq(Cat(o_el[1:], epos)), self.o_wdata.eq(Cat(low, norm.o)),
                     self.o_we.eq(o_t[0] & o_el[0])]
        rows_done = Signal(NB + 1)
        last_row = Signal()  # the epilogue's row is the job's last (a register)
        m.d.sync += last_row.eq(rows_done + 1 == n)
        m.d.comb += self.rows_out.eq(rows_done)
        epi_go = Signal()  # the back hands a row to the epilogue (this cycle)
        epi_busy = Signal()

        with m.FSM(name="back"):
            with m.State("IDLE"):
                with m.If(init):
                    m.d.sync += [bbank.eq(0), abank.eq(0)]
                    m.next = "TAKE"
            with m.State("TAKE"):  # its test, registered for TAKE2
                m.d.sync += b_full.eq(Mux(bbank, full[1], full[0]))
                m.next = "TAKE2"
            with m.State("TAKE2"):
                m.next = "TAKE"
                with m.If(~running):
                    m.next = "IDLE"
                with m.Elif(b_full):
                    for i in range(2):
                        with m.If(bbank == i):
                            m.d.sync += [bmax.eq(b_max[i]), bkeys.eq(b_keys[i]),
                                         bpos.eq(b_pos[i])]
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
                    m.d.comb += rel.eq(Mux(bbank, 0b10, 0b01))
                    m.d.sync += bbank.eq(~bbank)
                    m.next = "HAND"
            with m.State("HAND"):  # to the epilogue, once it is done with its row
                with m.If(~epi_busy):
                    m.d.comb += epi_go.eq(1)
                    m.d.sync += [esum.eq(ssum), epos.eq(bpos), ebank.eq(abank),
                                 abank.eq(~abank)]
                    m.next = "TAKE"

        with m.FSM(name="epilogue"):
            with m.State("IDLE"):
                with m.If(init):
                    m.d.sync += rows_done.eq(0)
                with m.If(epi_go):
                    m.d.sync += [epi_busy.eq(1), p.eq(0), sc.eq(0)]
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
                m.d.comb += epi_rd.eq(1)
                m.d.sync += el.eq(el + 1)
                with m.If(el == d - 1):
                    m.next = "OUT_DRAIN"
            with m.State("OUT_DRAIN"):
                with m.If(~Cat(x[0] for x in et).any()):
                    m.d.sync += [rows_done.eq(rows_done + 1), epi_busy.eq(0)]
                    with m.If(last_row):
                        m.d.sync += [state.eq(regs.State.DONE), running.eq(0)]
                    m.next = "IDLE"
        return m
