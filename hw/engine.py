"""The swattn attention engine: hybrid sliding-window + global attention for one head per job.

Dataflow (see docs/engine.md):

* ``units`` query units each own ``lane_width`` Q.K lanes and ``lane_width`` P.V lanes. A *group*
  is up to ``units`` queries of one residue class mod dilation (i, i + dil, ...); its window keys
  stream past all units at once (one key every ``chunks`` cycles) followed by the global keys.
* Stage 1 computes scores into a double-banked score buffer and the row maximum; stage 2 reads
  them back, forms e = 2^-(m - s) M, accumulates S and A = sum e v; the epilogue normalises with
  one reciprocal per row. Stage 1 of group g + 1 overlaps stage 2 of group g, so both arrays stay
  busy.
* K/V rows stream through a ring of ``ring_rows`` rows: memory grows with the window, not with n.
* Global query rows attend to every key: after the main pass the host streams K/V twice per
  group of ``units`` global queries (first pass: row maximum; second: exponentials and P.V).
  Engines of more than one unit (``EngineParams.paired_max``) run the max passes first, before
  the main pass, two groups per pass: the Q.K lanes score one group, the P.V lanes (idle then)
  the next, and the maxima wait in registers for the groups' P.V passes after the main pass.

Streams (payloads are arrays of int8):

* ``kv``: the G global rows (config order), then rows 0..n-1 once per pass: the main pass, then
  per global group a max pass and a P.V pass (paired: the max passes, one per pair of global
  groups, come first, then the main pass, then one P.V pass per group).
  The engine reads a row chunk by chunk from the payload and takes it (``ready``) with its last
  chunk, so a row once offered must stay offered (the stream rule: ``valid`` held and the
  payload stable until it is taken).
* ``q``: the non-global rows in processing order (``swattn.sw.schedule``), then per global group
  its global queries (paired: the global queries once before all that, for the max passes).
* ``o``: output rows: the non-global rows in processing order, then the global rows.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw import numerics as nx
from ..sw import regs
from ..sw.engine_params import EngineParams
from .blocks import (AccumulatorRing, Accumulators, DotLanes, ExpUnit, Normaliser, PairedLanes,
                     Reciprocal, RowMax, ScaleLanes, int8_row, lane_group, lane_groups,
                     registered_product)

#: pipeline latencies, cycles from issue to the write of the result (the cycle model,
#: ``swattn.sw.cycles``, follows them): stage 1 depends on the dot product's latency
STAGE2_LATENCY = 7
#: cycles from stage 2 taking a group to the K/V writer seeing the rows it releases: the V read
#: of the previous group's last key (address at t5, data at t6) must come first
RELEASE_DELAY = 7


def stage1_latency(params: EngineParams) -> int:
    return params.dot_latency + 2


class SlicedMemory:
    """A memory of ``width``-bit words cut into :attr:`slices` memories of at most
    ``SLICE_BITS`` side by side, each with a write port and a read port of its own, so that no
    address or enable net has to reach all the blocks of a wide memory.

    ``addr[j]`` is slice j's read address (its data the next cycle; ``data`` is the whole word).
    :meth:`write_next` writes a word a cycle after its address and enable, which it registers
    once per slice (``*_dup``: kept apart by the FPGA builds)."""

    SLICE_BITS = 64

    def __init__(self, m: Module, name: str, depth: int, width: int):
        self.name = name
        self.slices = max(1, -(-width // self.SLICE_BITS))
        widths = [min(self.SLICE_BITS, width - j * self.SLICE_BITS) for j in range(self.slices)]
        mems = []
        for j, w in enumerate(widths):
            m.submodules[f"{name}{j}"] = mm = memory.Memory(shape=unsigned(w), depth=depth,
                                                            init=[])
            mems.append(mm)
        self._widths = widths
        self._rps = [mm.read_port() for mm in mems]
        self._wps = [mm.write_port() for mm in mems]
        self.addr = [rp.addr for rp in self._rps]
        self.data = Cat(*[rp.data for rp in self._rps])

    def write_next(self, m: Module, addr, data, en) -> None:
        """Write ``data`` (registered by the caller) at ``addr`` when ``en``, both given a cycle
        ahead of it."""
        lo = 0
        for j, (wp, w) in enumerate(zip(self._wps, self._widths)):
            a = Signal.like(addr, name=f"{self.name}_wa{j}_dup")
            e = Signal(name=f"{self.name}_we{j}_dup")
            m.d.sync += [a.eq(addr), e.eq(en)]
            m.d.comb += [wp.addr.eq(a), wp.en.eq(e), wp.data.eq(data[lo:lo + w])]
            lo += w


def delayed(m: Module, x, name: str, reset_less: bool = False):
    """``x`` a cycle later, from a register named ``name`` (with no reset: datapath)."""
    r = Signal.like(x, name=name, reset_less=reset_less)
    m.d.sync += r.eq(x)
    return r


def kv_layout(head_dim: int) -> data.StructLayout:
    return data.StructLayout({"k": int8_row(head_dim), "v": int8_row(head_dim)})


class Engine(wiring.Component):
    """The attention engine. See the module docstring for the streams and the dataflow.

    Ports: ``cfg`` (the configuration register, :func:`swattn.sw.regs.config_layout`), ``start``
    (one-cycle pulse), ``status`` (state and error code), ``cycles`` (cycles since the last
    accepted start, frozen when the job is done), streams ``q``, ``kv`` in and ``o`` out.

    ``hold_config``: the engine copies ``cfg`` at the start, so its source may change during a
    job. ``False`` leaves the copy out (about 180 flip-flops fewer) and reads ``cfg`` directly:
    only for a source that holds it from the start until the job is done, such as the board
    core, which refuses WRITE_CONFIG while a job runs.
    """

    def __init__(self, params: EngineParams, hold_config: bool = True):
        if params.serial:
            raise ValueError(f"lanes = {params.lanes}: the stream engine needs 8..4096 (4 lanes "
                             f"is the serial engine, swattn.hw.serial)")
        self.params = params
        self._hold_config = hold_config
        d = params.head_dim
        super().__init__({
            "cfg": In(regs.config_layout(params)),
            "start": In(1),
            "status": Out(regs.STATUS_LAYOUT),
            "cycles": Out(32),
            "q": In(stream.Signature(int8_row(d))),
            "kv": In(stream.Signature(kv_layout(d))),
            "o": Out(stream.Signature(int8_row(d))),
        })

    def elaborate(self, platform):
        P = self.params
        d, LW, U, CH = P.head_dim, P.lane_width, P.units, P.chunks
        GM = max(1, P.max_globals)
        B, SD, SG = P.ring_rows, P.score_depth, P.subgroup
        SW, PW, NW = P.score_width, P.pos_width, P.seq_width + 1
        m = Module()

        chunk_bits = LW * nx.DATA_WIDTH

        def chunk_of(row, c):
            """Chunk ``c`` (a Value) of an int8 row view, as raw bits."""
            flat = row.as_value()
            return Array(flat[i * chunk_bits:(i + 1) * chunk_bits] for i in range(CH))[c]

        # ---------------------------------------------------------------- configuration & status
        cfg = Signal(regs.config_layout(P)) if self._hold_config else self.cfg
        n = Signal(NW)
        left, right, dil = Signal(16), Signal(16), Signal(16)
        ng = Signal(8)
        # Widths after the checks: a job runs only with dil <= max_dilation and left, right <=
        # max_radius / dil, so the scheduler and the stages use them at these widths
        RB, DB = P.max_radius.bit_length(), P.max_dilation.bit_length()
        GB = max(1, P.max_globals.bit_length())
        GGB = P.global_groups_max.bit_length()
        left_s, right_s, dil_s = Signal(RB), Signal(RB), Signal(DB)
        reach_l = Signal(RB)
        span = Signal(RB + 1)
        ngg = Signal(8)  # global groups
        total_pos = Signal(PW + 1)
        PA = P.paired_max
        # paired: the stream position where the main pass starts (n per pair of global groups)
        moff = Signal(PW + 1, name="moff") if PA else Const(0, 1)
        m.d.comb += [n.eq(cfg.n), left.eq(cfg.left), right.eq(cfg.right), dil.eq(cfg.dilation),
                     ng.eq(cfg.n_globals), left_s.eq(left), right_s.eq(right), dil_s.eq(dil)]
        # reach_l, span and ngg are registered during the checks (they hold for the whole job)
        glob = [cfg.globals[i] for i in range(GM)]

        state = Signal(2)
        error = Signal(4)
        m.d.comb += [self.status.state.eq(state), self.status.error.eq(error)]
        running = Signal()  # job validated and in progress
        checking = Signal()
        chk_i = Signal(8)
        job_go = Signal()  # the checks have passed (this cycle)
        # one-cycle pulse, a register a cycle after job_go: reset all job state (a register, as
        # it reaches some 170 flip-flops all over the engine)
        job_init = Signal()
        chk_seen = Signal()
        chk_fail = Signal(4)
        chk_last = Signal()

        cycles = Signal(32)
        m.d.comb += self.cycles.eq(cycles)
        with m.If(state == regs.State.BUSY):
            m.d.sync += cycles.eq(cycles + 1)

        gval = Signal(GM)  # (i < ng) per global, of the configuration (still during a job)
        m.d.sync += gval.eq(Cat(*[ng > i for i in range(GM)]))

        def tok(pos):
            """The token index of a main-pass stream position."""
            return pos - moff if PA else pos

        def global_hits(idx):
            """Per global: ``idx`` is that (valid) global's row."""
            return Cat(*[gval[i] & (glob[i] == idx) for i in range(GM)])

        def is_global(idx):
            """``idx`` is a (valid) global's row (the count's compares from the register gval)."""
            return global_hits(idx).any()

        with m.If(self.start):
            with m.If(state == regs.State.BUSY):
                m.d.sync += error.eq(regs.Error.BUSY)
            with m.Else():
                if self._hold_config:
                    m.d.sync += cfg.eq(self.cfg)
                m.d.sync += [state.eq(regs.State.BUSY), error.eq(0),
                             cycles.eq(0), checking.eq(1), chk_i.eq(0), running.eq(0),
                             chk_seen.eq(0), chk_fail.eq(0), chk_last.eq(0)]
        # The checks, one step per cycle: step 0 registers what they need, step 1 the
        # scalar checks, step 2 + i global i (range, then duplicate of an earlier one): per
        # global, both tests are registers of the configuration (g_rng, g_dup; it holds from the
        # cycle after the start), and global chk_i - 2's are loaded a cycle ahead (cur_rng,
        # cur_dup).
        # A step's outcome is registered (chk_fail, chk_last) and acted on a cycle later, so the
        # compares do not drive the job's control in the same cycle.
        fail = Signal(4)
        # left * dil > max_radius exactly when left > max_radius // dil (dil in 1..max_dilation,
        # checked first): a table of max_dilation constants in place of two multipliers
        rlim = Signal(RB)
        rlim_tab = Array(Const(P.max_radius // k if 1 <= k <= P.max_dilation else 0, RB)
                         for k in range(1 << DB))

        def times_small(x, k, kbits):
            """x * k for a k of kbits bits, as shifted adds (no hard multiplier)."""
            return sum((Mux(k[b], x << b, 0) for b in range(kbits)), Const(0, 1))
        g_rng, g_dup = Signal(GM), Signal(GM)
        m.d.sync += [g_rng.eq(Cat(*[glob[i] >= cfg.n for i in range(GM)])),
                     g_dup.eq(Cat(*[Cat(*[glob[j] == glob[i] for j in range(i)]).any()
                                    for i in range(GM)]))]
        cur_rng, cur_dup = Signal(), Signal()
        n_step = Signal.like(total_pos)  # n or 2 n, the step of total_pos per global group
        g_mod = Signal(range(2 * U))  # global checks done, mod 2 U
        # the scalar checks' compares of the configuration alone, registered at step 0
        bad_n, bad_dil, bad_ng = Signal(), Signal(), Signal()
        # (a start while BUSY is refused above and changes nothing here: the checks, job_init and
        # the scheduler's start go on as if it had not come)
        with m.If(checking):
            with m.If(chk_i == 0):
                m.d.sync += [rlim.eq(rlim_tab[dil_s]), span.eq(left_s + right_s),
                             reach_l.eq(times_small(left_s, dil_s, DB)),
                             ngg.eq((ng + U - 1) >> (U.bit_length() - 1)),
                             bad_n.eq((cfg.n == 0) | (cfg.n > P.n_max)),
                             bad_dil.eq((dil == 0) | (dil > P.max_dilation)),
                             bad_ng.eq(ng > P.max_globals)]
            with m.Elif(chk_i == 1):
                # total_pos and moff start here and grow by a step per global check below
                m.d.sync += [total_pos.eq(n), n_step.eq(n if PA else n << 1), g_mod.eq(0)]
                if PA:
                    m.d.sync += moff.eq(0)
                with m.If(bad_n):
                    m.d.comb += fail.eq(regs.Error.N_RANGE)
                with m.Elif(bad_dil):
                    m.d.comb += fail.eq(regs.Error.DILATION)
                with m.Elif((left > rlim) | (right > rlim)):
                    m.d.comb += fail.eq(regs.Error.RADIUS)
                with m.Elif(bad_ng):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_COUNT)
            with m.Else():
                with m.If(cur_rng):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_RANGE)
                with m.Elif(cur_dup):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_DUP)
                # The stream's length (total_pos = n + 2 n ngg; paired: n + n (ngg + pairs),
                # moff = n pairs) as one addition per global step (ng steps: chk_last is still
                # low in the last), a step in U adding n_step and, paired, one in 2 U another n:
                # one adder from registers, where a product of n and ngg had several after a
                # compare
                with m.If(~chk_last):
                    step_a = g_mod[:U.bit_length() - 1] == 0 if U > 1 else Const(1, 1)
                    step_p = g_mod == 0
                    m.d.sync += [total_pos.eq(total_pos + Mux(step_a, n_step, 0)
                                              + (Mux(step_p, n, 0) if PA else 0)),
                                 g_mod.eq(g_mod + 1)]
                    if PA:
                        m.d.sync += moff.eq(moff + Mux(step_p, n, 0))
            nxt_g = Signal(8)
            m.d.comb += nxt_g.eq(chk_i - 1)
            g_at = nxt_g[:max(1, (GM - 1).bit_length())]
            m.d.sync += [cur_rng.eq(Array(g_rng)[g_at]), cur_dup.eq(Array(g_dup)[g_at])]
            m.d.sync += [chk_seen.eq(1), chk_fail.eq(fail),
                         chk_last.eq((chk_i >= 1) & (chk_i >= ng + 1)), chk_i.eq(chk_i + 1)]
            with m.If(chk_seen & (chk_fail != 0)):
                m.d.sync += [error.eq(chk_fail), state.eq(regs.State.IDLE), checking.eq(0)]
            with m.Elif(chk_seen & chk_last):
                m.d.sync += checking.eq(0)
                m.d.comb += job_go.eq(1)
        m.d.sync += job_init.eq(job_go)
        with m.If(job_init):
            m.d.sync += running.eq(1)

        # ---------------------------------------------------------------- memories
        def mem(name, depth, width):
            m.submodules[name] = mm = memory.Memory(shape=unsigned(width), depth=depth, init=[])
            return mm
        # The K/V rings and global rows: each cut into KS memories of at most 64 bits side by
        # side, each with its own copies of the addresses and write enable (``*_dup`` registers),
        # so that no address net reaches all of a wide memory's blocks, spread over an FPGA
        ring_k = SlicedMemory(m, "ring_k", B * CH, chunk_bits)
        ring_v = SlicedMemory(m, "ring_v", B * CH, chunk_bits)
        glob_k = SlicedMemory(m, "glob_k", GM * CH, chunk_bits)
        glob_v = SlicedMemory(m, "glob_v", GM * CH, chunk_bits)
        KS = ring_k.slices

        # ---------------------------------------------------------------- K/V writer
        pl = Signal(8)  # global rows preloaded
        wpos = Signal(PW + 1)  # ring rows committed (stream position)
        release = Signal(PW + 1)  # lowest position still needed (see rel_req below)
        # release's value in the next cycle (rel_pipe[-2], below) + B and + B - 1, registers
        # set from the pipe's register before it (and at a job's start): the writer's room
        # test compares registers
        rel_b = Signal(PW + 2, name="rel_b")
        rel_b1 = Signal(PW + 2, name="rel_b1")
        # The writer reads a row straight from the stream, one chunk per cycle, and takes it
        # (``ready``) with its last chunk: no copy of the row is kept. A new row starts only
        # with room for it; a row once started continues whenever the input is valid.
        hchunk = Signal(range(CH))  # the chunk written next; nonzero: in the middle of a row
        mid_row = Const(0, 1) if CH == 1 else (hchunk != 0)
        next_pl = Signal.like(pl)
        next_wpos = Signal.like(wpos)
        # The compares behind ``room`` are registered a cycle ahead: pl < ng, wpos < total_pos
        # and the ring's fill wpos - release < B (release is rel_pipe's last register, so its
        # next value is the one before it).
        plt = Signal(name="plt")
        wlt = Signal(name="wlt")
        gap_ok = Signal(name="gap_ok")
        to_glob = plt
        room = Signal()
        m.d.comb += room.eq(plt | (wlt & gap_ok))
        wr = Signal()  # a chunk is written this cycle
        m.d.comb += wr.eq(running & self.kv.valid & (mid_row | room))
        last_chunk = wr & (hchunk == CH - 1)
        m.d.comb += [next_pl.eq(pl), next_wpos.eq(wpos)]
        with m.If(last_chunk):
            with m.If(to_glob):
                m.d.comb += next_pl.eq(pl + 1)
            with m.Else():
                m.d.comb += next_wpos.eq(wpos + 1)
        # ready does not wait for valid (a round trip to the stream's source in one cycle):
        # it says that a valid chunk now would be the row's last and would be written
        m.d.comb += self.kv.ready.eq(running & (mid_row | room) & (hchunk == CH - 1))
        waddr_ring = Cat(Const(0, 0) if CH == 1 else hchunk, wpos[:(B - 1).bit_length()])
        waddr_glob = Cat(Const(0, 0) if CH == 1 else hchunk, pl[:max(1, (GM - 1).bit_length())])
        kbits = chunk_of(self.kv.payload.k, hchunk)
        vbits = chunk_of(self.kv.payload.v, hchunk)
        # The chunk reaches the memories a cycle later, from registers (address, data and the
        # enables), so that the input's valid, which the writer's control follows, does not also
        # drive the memories' write enables, spread over the die, in the same cycle. Stage 1
        # reads the ring up to ``wpos_w``, wpos a cycle later: a row is readable the cycle after
        # its last chunk lands (sw/cycles.py: WRITE_BASE).
        wk, wv = Signal.like(kbits, reset_less=True), Signal.like(vbits, reset_less=True)
        wpos_w = Signal.like(wpos)
        m.d.sync += [wk.eq(kbits), wv.eq(vbits), wpos_w.eq(wpos)]
        for sm, data_, addr, en in ((ring_k, wk, waddr_ring, wr & ~to_glob),
                                    (ring_v, wv, waddr_ring, wr & ~to_glob),
                                    (glob_k, wk, waddr_glob, wr & to_glob),
                                    (glob_v, wv, waddr_glob, wr & to_glob)):
            sm.write_next(m, addr, data_, en)
        with m.If(wr):
            m.d.sync += hchunk.eq(Mux(hchunk == CH - 1, 0, hchunk + 1))
        # each test for both ways the position can move, from registers, then picked by
        # whether this cycle's chunk is a row's last (which follows the input's valid)
        # (wpos + 1 < x as wpos < x - 1: one carry chain each, the bound's from a register)
        inc_pl, inc_w = last_chunk & to_glob, last_chunk & ~to_glob
        # (wpos < total_pos as wrem = total_pos - wpos > 0, a down-counter set at job_init:
        # its tests are against constants, no carry chain)
        wrem = Signal(len(total_pos) + 1, name="wrem")
        with m.If(inc_w):
            m.d.sync += wrem.eq(wrem - 1)
        # (wpos - rel_pipe[-2] < B exactly when wpos < rel_pipe[-2] + B)
        m.d.sync += [pl.eq(next_pl), wpos.eq(next_wpos),
                     plt.eq(Mux(inc_pl, pl + 1 < ng, pl < ng)),
                     wlt.eq(Mux(inc_w, wrem[1:] != 0, wrem != 0)),
                     gap_ok.eq(Mux(inc_w, wpos < rel_b1, wpos < rel_b))]

        # ---------------------------------------------------------------- query registers
        qregs = [[Signal(int8_row(d), name=f"q_b{b}_u{u}", reset_less=True) for u in range(U)]
                 for b in range(2)]
        # A q row taken in a cycle is written a cycle later, from registers: the row (``q_pay``)
        # and, per bank, unit and 64 bits of the row, its write enable (``q_we_*_dup``, copies
        # that synthesis keeps apart, each beside its flip-flops: fpga/build.py). The scheduler
        # reads a bank at least two cycles after its last row is taken (MAIN_LOAD / MAX_LOAD hand
        # the descriptor over a cycle after ``uload`` reaches U).
        uload = Signal(range(U + 1))  # the scheduler's next unit to load
        q_load = Signal()  # (load_queries) a row is taken into ``q_bank``, unit ``uload``
        q_bank = Signal()
        q_pay = Signal(int8_row(d), reset_less=True)
        q_bits = len(q_pay.as_value())
        q_slices = [(lo, min(q_bits, lo + 64)) for lo in range(0, q_bits, 64)]
        m.d.sync += q_pay.eq(self.q.payload)
        for b in range(2):
            for u in range(U):
                for j, (lo, hi) in enumerate(q_slices):
                    we = Signal(name=f"q_we_b{b}_u{u}_{j}_dup")
                    m.d.sync += we.eq(q_load & (q_bank == b) & (uload == u))
                    with m.If(we):
                        m.d.sync += qregs[b][u].as_value()[lo:hi].eq(q_pay.as_value()[lo:hi])

        # ---------------------------------------------------------------- scheduler
        # Descriptor of the next group, handed to stage 1.
        # paired engines: ``pair`` marks a max pass of two groups (the second's rows in
        # ``active_b``, its queries in the other bank); ``gmax`` a group's first P.V sub-group,
        # whose row maxima come from the max pass's registers of global group ``gidx``
        paired_fields = {"pair": 1, "active_b": U, "gmax": 1, "gidx": GGB} if PA else {}
        desc_layout = data.StructLayout({
            "main": 1, "no_pv": 1, "reset_max": 1, "reset_acc": 1, "final": 1, "qbank": 1,
            "active": U, "start": PW + 1, "step": DB, "kmax": PW + 1, "lim": PW + 1,
            "clip": RB, "nglob": GB, "kig": 1, "hits2": GM, "nxt": 1, **paired_fields,
        })
        desc = Signal(desc_layout)
        s1_run = Signal()  # stage 1 is working on a group (below)
        desc_valid = Signal()
        desc_take = Signal()
        sched_bank = Signal()
        # Main-pass positions: base0 < n + U dil and bc, idx_u below n + (2 U + 1) dil, with dil
        # at most max_dilation once the checks have passed (the scheduler runs only then), so
        # XW bits hold them (not NW + 16: these registers feed every global compare)
        XW = (P.n_max + (2 * U + 1) * P.max_dilation).bit_length()
        base0 = Signal(XW)
        cls = Signal(range(P.max_dilation))
        bq = Signal(NW + 1)
        ggrp = Signal(8)
        gpass = Signal()  # 0: max pass, 1: P.V pass
        gsub = Signal(PW + 1)  # first position of the sub-group within the pass
        g_end = Signal()  # the sub-group is its pass's last (registered in *_SUB for *_HAND)
        pbase = Signal(PW + 1)  # first stream position of the pass: n + (2 ggrp + gpass) n
        # a main group's descriptor fields, registered when the group is formed
        g_start = Signal(PW + 1)
        g_kig = Signal()
        g_tok2 = Signal(PW + 2)  # the token of the group's second window key (g_start + step)
        # whether the group has a second window key (desc.nxt) from registers: its position
        # g_pos2 = g_start + step, g_more = g_kbase > g_mlo (the window has two keys), g_lim the
        # main pass's end
        g_pos2 = Signal(PW + 2)
        g_more = Signal()
        g_lim = Signal(PW + 1)
        m.d.sync += g_lim.eq(n + moff if PA else n)  # (of the configuration and the checks)
        g_kbase = Signal(max(NW + 1, RB) + 2)
        g_mlo = Signal(NW + 1)
        g_clip = Signal(RB)
        active = Signal(U)
        active_b = Signal(U) if PA else None
        # bc = base0 + cls, kept in a register (the scheduler's compares start from it)
        bc = Signal(XW)
        # MAIN_GROUP's tests, registered for MAIN_DECIDE: bc >= n, base0 >= n, the rows to compute
        m_past, m_done, m_act = Signal(), Signal(), Signal(U)
        # a step behind base0 and cls (each changes at least two cycles before it is read again):
        # the next block's base and whether the class is the block's last
        nb = Signal(XW)
        cls_last = Signal()
        m.d.sync += [nb.eq(base0 + U * dil_s), cls_last.eq(cls + 1 >= dil_s)]
        idx_u = [Signal(XW, name=f"idx_u{u}") for u in range(U)]
        for u in range(U):
            m.d.comb += idx_u[u].eq(bc + u * dil_s)

        def next_block():
            m.d.sync += [cls.eq(0), base0.eq(nb), bc.eq(nb), bq.eq(bq + U)]

        def advance_main():
            with m.If(cls_last):
                next_block()
            with m.Else():
                m.d.sync += [cls.eq(cls + 1), bc.eq(bc + 1)]

        def load_queries(rows=active, other_bank=False):
            """Take one q row per unit of ``rows`` (in unit order) into the scheduler's bank (or
            the other one)."""
            act = Array(rows[u] for u in range(U))
            bank = ~sched_bank if other_bank else sched_bank
            with m.If(uload < U):
                with m.If(~act[uload]):
                    m.d.sync += uload.eq(uload + 1)
                with m.Else():
                    # (only while a job runs: outside one no row is ever taken, whatever state
                    # the scheduler is in)
                    m.d.comb += [self.q.ready.eq(running), q_bank.eq(bank)]
                    with m.If(self.q.valid & running):
                        m.d.comb += q_load.eq(1)
                        m.d.sync += uload.eq(uload + 1)

        def paired_desc(pair=0, gmax=0, gidx=0, active_b=0):
            return [desc.pair.eq(pair), desc.gmax.eq(gmax), desc.gidx.eq(gidx),
                    desc.active_b.eq(active_b)] if PA else []

        def global_sub_desc(no_pv, reset_max, reset_acc, final, **paired):
            """A global pass's sub-group: keys pbase + gsub on, SG of them or up to n."""
            return [
                desc.main.eq(0), desc.no_pv.eq(no_pv), desc.reset_max.eq(reset_max),
                desc.reset_acc.eq(reset_acc), desc.final.eq(final),
                desc.qbank.eq(sched_bank), desc.active.eq(active),
                desc.start.eq(pbase + gsub), desc.step.eq(1), desc.kmax.eq(SG - 1),
                desc.lim.eq(pbase + n), desc.clip.eq(0), desc.nglob.eq(0),
                desc.nxt.eq((gsub + 1 < n) if SG >= 2 else 0),  # pbase + gsub + 1 < lim
                *paired_desc(**paired), desc_valid.eq(1),
            ]

        # the scheduler starts a cycle after job_init (a register: the checks' outcome does not
        # reach the enables of its positions in the same cycle)
        sched_go = Signal()
        m.d.sync += sched_go.eq(job_init)
        with m.FSM(name="sched"):
            with m.State("IDLE"):
                with m.If(sched_go):
                    m.d.sync += [base0.eq(0), cls.eq(0), bc.eq(0), bq.eq(0), ggrp.eq(0),
                                 sched_bank.eq(0),
                                 desc_valid.eq(0)]
                    if PA:
                        m.d.sync += pbase.eq(0)
                        with m.If(ngg != 0):
                            m.next = "MAX_GROUP"
                        with m.Else():
                            m.next = "MAIN_GROUP"
                    else:
                        m.next = "MAIN_GROUP"
            if PA:
                # the paired max passes. A pair's two query banks are both read by its
                # sub-groups, so the next pair (and the main pass) loads once stage 1 is done
                with m.State("MAX_GROUP"):
                    with m.If(ggrp >= ngg):
                        with m.If(~s1_run):
                            m.d.sync += ggrp.eq(0)
                            m.next = "MAIN_GROUP"
                    with m.Elif(~s1_run):
                        m.d.sync += [active.eq(Cat(*[(ggrp * U + u) < ng for u in range(U)])),
                                     active_b.eq(Cat(*[(ggrp * U + U + u) < ng
                                                       for u in range(U)])),
                                     uload.eq(0), gsub.eq(0)]
                        m.next = "MAX_LOAD_A"
                with m.State("MAX_LOAD_A"):
                    load_queries()
                    with m.If(uload == U):
                        m.d.sync += uload.eq(0)
                        m.next = "MAX_LOAD_B"
                with m.State("MAX_LOAD_B"):
                    load_queries(active_b, other_bank=True)
                    with m.If(uload == U):
                        m.next = "MAX_SUB"
                with m.State("MAX_SUB"):
                    m.d.sync += global_sub_desc(1, gsub == 0, 0, gsub + SG >= n, pair=1,
                                                gidx=ggrp, active_b=active_b)
                    m.d.sync += g_end.eq(gsub + SG >= n)
                    m.next = "MAX_HAND"
                with m.State("MAX_HAND"):
                    with m.If(desc_take):
                        m.d.sync += desc_valid.eq(0)
                        with m.If(g_end):
                            m.d.sync += [gsub.eq(0), pbase.eq(pbase + n), ggrp.eq(ggrp + 2)]
                            m.next = "MAX_GROUP"
                        with m.Else():
                            m.d.sync += gsub.eq(gsub + SG)
                            m.next = "MAX_SUB"
            with m.State("MAIN_GROUP"):
                # the group's tests and fields, registered for MAIN_DECIDE to act on: the global
                # compares and the position tests do not reach the scheduler's enables
                m.d.sync += [m_past.eq(bc >= n), m_done.eq(base0 >= n),
                             m_act.eq(Cat(*[(idx_u[u] < n) & ~is_global(idx_u[u])
                                            for u in range(U)])),
                             g_start.eq(Mux(reach_l > bc, cls, bc - reach_l) + moff
                                        if PA else Mux(reach_l > bc, cls, bc - reach_l)),
                             g_kbase.eq(bq + U - 1 + right_s),
                             g_mlo.eq(Mux(bq > left_s, bq - left_s, 0)),
                             g_clip.eq(Mux(bq > left_s, 0, left_s - bq))]
                m.next = "MAIN_DECIDE"
            with m.State("MAIN_DECIDE"):
                m.next = "MAIN_GROUP"
                with m.If(m_past):
                    with m.If(m_done):
                        m.d.sync += pbase.eq(n + moff if PA else n)
                        m.next = "GLOBAL_GROUP"
                    with m.Else():  # a class with no rows in this last block
                        next_block()
                with m.Elif(m_act == 0):  # only global rows: nothing to compute here
                    advance_main()
                with m.Else():
                    m.d.sync += [active.eq(m_act), uload.eq(0)]
                    m.next = "MAIN_LOAD"
            with m.State("MAIN_LOAD"):
                # whether the group's first two window keys are global rows (for stage 1's
                # kig_r and its compares a key ahead), from g_start, set in MAIN_GROUP; the second
                # key's token registered first, compared in the cycle the descriptor is set
                m.d.sync += [g_kig.eq(is_global(tok(g_start))), g_tok2.eq(tok(g_start + dil_s)),
                             g_pos2.eq(g_start + dil_s), g_more.eq(g_kbase > g_mlo)]
                load_queries()
                with m.If(uload == U):  # at least a cycle after MAIN_GROUP set the g_* fields
                    m.d.sync += [
                        desc.main.eq(1), desc.no_pv.eq(0), desc.reset_max.eq(1),
                        desc.reset_acc.eq(1), desc.final.eq(1), desc.qbank.eq(sched_bank),
                        desc.active.eq(active), desc.start.eq(g_start),
                        desc.step.eq(dil_s), desc.kmax.eq(g_kbase - g_mlo),
                        desc.lim.eq(g_lim), desc.clip.eq(g_clip),
                        desc.nglob.eq(ng), desc.kig.eq(g_kig),
                        desc.hits2.eq(global_hits(g_tok2)),
                        desc.nxt.eq(g_more & (g_pos2 < g_lim)),
                        *paired_desc(),
                        desc_valid.eq(1),
                    ]
                    m.next = "MAIN_HAND"
            with m.State("MAIN_HAND"):
                with m.If(desc_take):
                    m.d.sync += [desc_valid.eq(0), sched_bank.eq(~sched_bank)]
                    advance_main()
                    m.next = "MAIN_GROUP"
            with m.State("GLOBAL_GROUP"):
                with m.If(ggrp >= ngg):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [active.eq(Cat(*[(ggrp * U + u) < ng for u in range(U)])),
                                 uload.eq(0), gpass.eq(1 if PA else 0), gsub.eq(0)]
                    m.next = "GLOBAL_LOAD"
            with m.State("GLOBAL_LOAD"):
                load_queries()
                with m.If(uload == U):
                    m.next = "GLOBAL_SUB"
            with m.State("GLOBAL_SUB"):
                m.d.sync += global_sub_desc(~gpass, ~gpass & (gsub == 0), gsub == 0,
                                            gpass & (gsub + SG >= n), gmax=gsub == 0, gidx=ggrp)
                m.d.sync += g_end.eq(gsub + SG >= n)
                m.next = "GLOBAL_HAND"
            with m.State("GLOBAL_HAND"):
                with m.If(desc_take):
                    m.d.sync += desc_valid.eq(0)
                    with m.If(g_end):
                        m.d.sync += [gsub.eq(0), pbase.eq(pbase + n)]
                        with m.If(gpass):
                            m.d.sync += [ggrp.eq(ggrp + 1), sched_bank.eq(~sched_bank)]
                            m.next = "GLOBAL_GROUP"
                        with m.Else():
                            m.d.sync += gpass.eq(1)
                            m.next = "GLOBAL_SUB"
                    with m.Else():
                        m.d.sync += gsub.eq(gsub + SG)
                        m.next = "GLOBAL_SUB"

        # ---------------------------------------------------------------- stage 1: Q.K^T
        s1_bank = Signal()  # bank of the next group stage 1 takes
        bank_busy = Signal(2)  # set by stage 1 start, cleared when stage 2 is done with it
        s1_done = Signal(2)  # all scores of the bank's group written
        s1 = Signal(desc_layout)
        s1_k = Signal(PW + 1)  # window key count so far
        s1_pos = Signal(PW + 1)
        s1_pnext = Signal(PW + 1)  # s1_pos + step
        s1_gi = Signal(8)
        # copies of s1_chunk and the address bits of s1_pos and s1_gi, one per memory slice of
        # the K ring and global rows (set wherever those are, through set_all), and of s1.qbank
        # per unit and 64 bits of the query rows (the query multiplexers' select)
        kchunk_d = [Signal(range(CH), name=f"kchunk{j}_dup") for j in range(KS)]
        kpos_d = [Signal((B - 1).bit_length(), name=f"kpos{j}_dup") for j in range(KS)]
        kgi_d = [Signal(max(1, (GM - 1).bit_length()), name=f"kgi{j}_dup") for j in range(KS)]
        qbank_d = [[Signal(name=f"qbank_u{u}_{j}_dup") for j in range(KS)] for u in range(U)]

        def set_all(copies, v):
            return [c.eq(v) for c in copies]
        # With EngineParams.key_addr_register the key memories' addresses are registers a cycle
        # behind s1_chunk, s1_pos and s1_gi (plain copies of them, with no issue logic in
        # front: the lanes' inputs a cycle later); else the copies follow them (set_ka)
        AD = int(P.key_addr_register)

        def set_ka(copies, v):
            return [] if AD else set_all(copies, v)
        s1_glob = Signal()  # in the global-key part
        s1_chunk = Signal(range(CH))
        s1_p = Signal(range(SD + 1))
        s1_bnk = Signal()
        # queue of groups from stage 1 to stage 2 (depth 2, indexed by bank)
        q2_desc = [Signal(desc_layout, name=f"q2_desc{b}") for b in range(2)]
        q2_count = [Signal(range(SD + 1), name=f"q2_count{b}") for b in range(2)]
        q2_valid = Signal(2)

        bank_busy_set = Signal(2)
        bank_busy_clr = Signal(2)  # released by a max-only group leaving stage 2
        bank_busy_done = Signal(2)  # released at the last stage-2 issue of the bank's group
        s1_done_set = Signal(2)
        s1_done_clr = Signal(2)
        q2_set = Signal(2)
        q2_clr = Signal(2)
        m.d.sync += [
            bank_busy.eq((bank_busy | bank_busy_set) & ~bank_busy_clr & ~bank_busy_done),
            s1_done.eq((s1_done | s1_done_set) & ~s1_done_clr),
            q2_valid.eq((q2_valid | q2_set) & ~q2_clr),
        ]

        bank_free = ~Array([bank_busy[0], bank_busy[1]])[s1_bank]
        m.d.comb += desc_take.eq(desc_valid & ~s1_run & bank_free & running)
        with m.If(desc_take):
            m.d.sync += [s1.eq(desc), s1_run.eq(1), s1_k.eq(0), s1_pos.eq(desc.start),
                         s1_gi.eq(0), s1_glob.eq(0), s1_chunk.eq(0), s1_p.eq(0),
                         s1_bnk.eq(s1_bank), s1_bank.eq(~s1_bank)]
            m.d.sync += (set_ka(kpos_d, desc.start) + set_ka(kgi_d, 0) + set_ka(kchunk_d, 0)
                         + set_all(sum(qbank_d, []), desc.qbank))
            m.d.comb += bank_busy_set.eq(Mux(s1_bank, 0b10, 0b01))

        # Registered a key ahead (they decide every issue, so they are not computed from s1_k,
        # s1_pos and s1_gi in the cycle that uses them): win_r = s1_k <= kmax & s1_pos < lim;
        # nxt_r: the same for the next window key (at a group's start desc.nxt, which the
        # scheduler registers beforehand); gmore_r = s1_gi < nglob; glast_r = s1_gi + 1
        # >= nglob; kc_r = s1_k + clip; kig_r: s1_pos is a global row.
        # (the key after next is compared with bounds lowered by two steps, s1_kmax2 and s1_lim2)
        win_r, nxt_r = Signal(name="win_r"), Signal(name="nxt_r")
        gmore_r, glast_r = Signal(name="gmore_r"), Signal(name="glast_r")
        kig_r = Signal(name="kig_r")
        # the global compares a key ahead: hits_n per global for s1_pnext, from s1_pnext2 =
        # s1_pnext + step (the scheduler gives both for a group's first keys: desc.kig, hits2)
        hits_n = Signal(GM, name="hits_n")
        s1_pnext2 = Signal(PW + 1)
        kc_r = Signal(max(PW + 1, RB) + 1)
        s1_kmax2 = Signal(signed(PW + 3))
        s1_lim2 = Signal(signed(max(PW + 1, DB + 2) + 1))
        with m.If(desc_take):
            m.d.sync += [win_r.eq(desc.start < desc.lim),
                         nxt_r.eq(desc.nxt),
                         gmore_r.eq(desc.nglob != 0), glast_r.eq(desc.nglob <= 1),
                         kc_r.eq(desc.clip), kig_r.eq(desc.kig), hits_n.eq(desc.hits2),
                         s1_pnext2.eq(desc.start + (desc.step << 1)),
                         s1_kmax2.eq(desc.kmax - 2), s1_lim2.eq(desc.lim - (desc.step << 1)),
                         s1_pnext.eq(desc.start + desc.step)]
        win_more = win_r
        glob_more = gmore_r
        have_key = Mux(s1_glob, glob_more, win_more)
        # s1_pos < wpos_w as a register (av_r), from s1_pos's next value and wpos (wpos_w's next
        # value): no carry chain in front of the issue
        av_r = Signal()
        adv1 = Signal()  # (below) s1_pos steps to s1_pnext
        m.d.sync += av_r.eq(Mux(desc_take, desc.start < wpos,
                                Mux(adv1, s1_pnext < wpos, s1_pos < wpos)))
        avail = s1_glob | av_r
        issue1 = Signal()
        m.d.comb += issue1.eq(s1_run & have_key & avail)
        # after the last chunk of a key: is there another key?
        nxt_win = nxt_r
        last_key1 = Signal()
        m.d.comb += last_key1.eq(Mux(s1_glob, glast_r, ~nxt_win & (s1.nglob == 0)))
        with m.If(s1_run & ~have_key):
            # no keys at all (cannot happen for a valid group) -> finish
            m.d.sync += s1_run.eq(0)
        with m.If(issue1):
            with m.If(s1_chunk == CH - 1):
                m.d.sync += [s1_chunk.eq(0), s1_p.eq(s1_p + 1)] + set_ka(kchunk_d, 0)
                with m.If(s1_glob):
                    m.d.sync += [s1_gi.eq(s1_gi + 1), gmore_r.eq(~glast_r),
                                 glast_r.eq(s1_gi + 2 >= s1.nglob)] + set_ka(kgi_d, s1_gi + 1)
                with m.Else():
                    m.d.comb += adv1.eq(1)
                    m.d.sync += [s1_k.eq(s1_k + 1), s1_pos.eq(s1_pnext),
                                 s1_pnext.eq(s1_pnext + s1.step),
                                 win_r.eq(nxt_r),
                                 nxt_r.eq((s1_k <= s1_kmax2) & (s1_pos < s1_lim2)),
                                 kc_r.eq(kc_r + 1), kig_r.eq(hits_n.any()),
                                 hits_n.eq(global_hits(tok(s1_pnext2))),
                                 s1_pnext2.eq(s1_pnext2 + s1.step)] + set_ka(kpos_d, s1_pnext)
                    with m.If(~nxt_win):
                        m.d.sync += s1_glob.eq(1)
                with m.If(last_key1):
                    m.d.sync += s1_run.eq(0)
                    m.d.comb += q2_set.eq(Mux(s1_bnk, 0b10, 0b01))
                    for b in range(2):
                        with m.If(s1_bnk == b):
                            m.d.sync += [q2_desc[b].eq(s1), q2_count[b].eq(s1_p + 1)]
            with m.Else():
                m.d.sync += [s1_chunk.eq(s1_chunk + 1)] + set_ka(kchunk_d, s1_chunk + 1)

        # addresses for stage 1 reads (issued this cycle, data next cycle; with AD a cycle
        # later), per memory slice from the copies of s1_chunk, s1_pos and s1_gi
        if AD:
            m.d.sync += (set_all(kpos_d, s1_pos[:len(kpos_d[0])])
                         + set_all(kgi_d, s1_gi[:len(kgi_d[0])]) + set_all(kchunk_d, s1_chunk))
        for j in range(KS):
            m.d.comb += [
                ring_k.addr[j].eq(Cat(Const(0, 0) if CH == 1 else kchunk_d[j], kpos_d[j])),
                glob_k.addr[j].eq(Cat(Const(0, 0) if CH == 1 else kchunk_d[j], kgi_d[j])),
            ]
        # per-unit validity of the key for this issue
        key_is_glob = Signal()
        m.d.comb += key_is_glob.eq(s1.main & ~s1_glob & kig_r)
        uvalid = Signal(U)
        for u in range(U):
            kc = kc_r
            inwin = ~s1.main | ((kc >= u) & (kc <= span + u))
            m.d.comb += uvalid[u].eq(s1.active[u] & (s1_glob | (inwin & ~key_is_glob)))

        # pipeline registers i1..i4
        p1 = Signal(data.StructLayout({
            "valid": 1, "glob": 1, "first": 1, "last": 1, "p": range(SD + 1), "bank": 1,
            "uvalid": U, "fkey": 1, "lkey": 1, "reset_max": 1,
            **({"pair": 1, "uvalid_b": U, "final": 1, "gmax": 1, "gidx": GGB} if PA else {})}))
        m.d.sync += [
            p1.valid.eq(issue1), p1.glob.eq(s1_glob), p1.first.eq(s1_chunk == 0),
            p1.last.eq(s1_chunk == CH - 1), p1.p.eq(s1_p), p1.bank.eq(s1_bnk),
            p1.uvalid.eq(uvalid), p1.fkey.eq(s1_p == 0), p1.lkey.eq(last_key1),
            p1.reset_max.eq(s1.reset_max),
        ]
        if PA:
            m.d.sync += [p1.pair.eq(s1.pair), p1.uvalid_b.eq(s1.active_b), p1.final.eq(s1.final),
                         p1.gmax.eq(s1.gmax), p1.gidx.eq(s1.gidx)]
        def qbank_mux(u, first, second):
            """The chunk of ``first`` (bank of s1.qbank) or ``second``, 64 bits at a time."""
            a, b = chunk_of(first, s1_chunk), chunk_of(second, s1_chunk)
            return Cat(*[Mux(qbank_d[u][j], a[j * 64:(j + 1) * 64], b[j * 64:(j + 1) * 64])
                         for j in range(KS)])

        qsel = [Signal(chunk_bits, name=f"qsel{u}", reset_less=True) for u in range(U)]
        for u in range(U):
            m.d.sync += qsel[u].eq(qbank_mux(u, qregs[1][u], qregs[0][u]))
        if PA:  # the second group of a paired max pass: the other bank's queries
            qsel_b = [Signal(chunk_bits, name=f"qsel_b{u}", reset_less=True) for u in range(U)]
            for u in range(U):
                m.d.sync += qsel_b[u].eq(qbank_mux(u, qregs[0][u], qregs[1][u]))
        # the issue's tags follow the dot product (DL cycles from p1), then two more stages
        DL = P.dot_latency
        pipe = [p1] + [Signal.like(p1, name=f"p{i}") for i in range(2, DL + 3)]
        for i in range(1, DL + 1):
            m.d.sync += pipe[i].eq(pipe[i - 1])
        p3, p4 = pipe[DL], pipe[DL + 1]  # the dot product is out; the score is written
        # The key rows from the memories, and with EngineParams.key_register the rows registered
        # beside the memories first; with AD the memories' data comes a cycle later. The queries
        # wait a cycle for each (KA in all), and the lanes' inputs come from pipe[KA], the tags
        # of their issue
        KR = int(P.key_register)
        KA = KR + AD
        for k in range(KA):
            qsel = [delayed(m, q, f"qsel_d{k}_{u}", True) for u, q in enumerate(qsel)]
            if PA:
                qsel_b = [delayed(m, q, f"qsel_bd{k}_{u}", True) for u, q in enumerate(qsel_b)]
        if KR:
            rk_d = Signal(chunk_bits, name="rk_d", reset_less=True)
            gk_d = Signal(chunk_bits, name="gk_d", reset_less=True)
            m.d.sync += [rk_d.eq(ring_k.data), gk_d.eq(glob_k.data)]
        else:
            rk_d, gk_d = ring_k.data, glob_k.data
        pk = pipe[KA]
        kdat = Signal(chunk_bits)
        if KR:
            # the ring/global choice per 64 bits of the row from a copy of the tag's glob bit
            # (``kglob*_dup``, set with pipe[KA]) beside those lanes' multipliers
            for j in range(-(-chunk_bits // 64)):
                lo, hi = 64 * j, min(chunk_bits, 64 * (j + 1))
                g_j = delayed(m, pipe[KA - 1].glob, f"kglob{j}_dup")
                m.d.comb += kdat[lo:hi].eq(Mux(g_j, gk_d[lo:hi], rk_d[lo:hi]))
        else:
            m.d.comb += kdat.eq(Mux(pk.glob, gk_d, rk_d))
        dots = []
        for u in range(U):
            m.submodules[f"dot{u}"] = dot = DotLanes(LW, DL - KA)
            m.d.comb += [dot.a.as_value().eq(qsel[u]), dot.b.as_value().eq(kdat)]
            dots.append(dot)
        # on paired engines the P.V lanes are PairedLanes, which also give the second group's
        # dot products in the paired max passes (their e and v: stage 2, where one-unit
        # engines' ScaleLanes are)
        paired_lanes = []
        for u in range(U) if PA else ():
            m.submodules[f"scale{u}"] = sc = PairedLanes(LW, DL - KA)
            m.d.comb += [sc.dot.eq(pk.valid & pk.pair), sc.a.as_value().eq(qsel_b[u]),
                         sc.b.as_value().eq(kdat)]
            paired_lanes.append(sc)
        # p3: accumulate chunks; p4: write score and update max
        accs = [Signal(signed(SW), name=f"acc{u}", reset_less=True) for u in range(U)]
        scores = [Signal(signed(SW), name=f"score{u}", reset_less=True) for u in range(U)]
        m.d.sync += p4.eq(p3)
        m.d.sync += p4.valid.eq(p3.valid & p3.last)
        accvs = []  # the scores' next values
        for u in range(U):
            accv = Mux(p3.first, 0, accs[u]) + dots[u].sum
            accvs.append(accv)
            with m.If(p3.valid):
                m.d.sync += accs[u].eq(accv)
            m.d.sync += scores[u].eq(accv)
        if PA:
            # paired max passes: the second group's scores (from the P.V lanes) and both
            # groups' running maxima over the pass; at its end they go to the registers of
            # global groups gidx and gidx + 1, where the groups' first P.V sub-groups read them
            # (at that sub-group's first score: at least two cycles after they are written, as
            # stage 1 runs one group at a time; a group's P.V pass may follow its max pass
            # closely when every row is global)
            accs_b = [Signal(signed(SW), name=f"acc_b{u}", reset_less=True) for u in range(U)]
            scores_b = [Signal(signed(SW), name=f"score_b{u}", reset_less=True)
                        for u in range(U)]
            GGM = max(1, P.global_groups_max)
            # (each RowMax.max_ext: the maximum, or RowMax's NONE with no valid score)
            gmax = [[Signal(signed(SW + 1), name=f"gmax{g}_{u}", init=-(1 << SW))
                     for u in range(U)] for g in range(GGM)]
            pass_done = Signal()
            pass_gidx = Signal(GGB)
            m.d.sync += [pass_done.eq(p4.valid & p4.pair & p4.lkey & p4.final),
                         pass_gidx.eq(p4.gidx)]
            for u in range(U):
                accv = Mux(p3.first, 0, accs_b[u]) + paired_lanes[u].sum
                with m.If(p3.valid):
                    m.d.sync += accs_b[u].eq(accv)
                m.d.sync += scores_b[u].eq(accv)
                pmax = []
                for name, sc, sv in (("a", scores[u], p4.uvalid[u]),
                                     ("b", scores_b[u], p4.uvalid_b[u])):
                    m.submodules[f"pmax_{name}{u}"] = rm = RowMax(SW)
                    m.d.comb += [rm.en.eq(p4.valid & p4.pair), rm.first.eq(p4.fkey & p4.reset_max),
                                 rm.init.eq(0), rm.init_valid.eq(0),
                                 rm.score.eq(sc), rm.score_valid.eq(sv)]
                    pmax.append(rm)
                for g in range(GGM):
                    for k, rm in enumerate(pmax):
                        with m.If(pass_done & (pass_gidx + k == g)):
                            m.d.sync += gmax[g][u].eq(rm.max_ext)

        score_mems, maxes = [], []
        for u in range(U):
            sm = mem(f"scores{u}", 2 * SD, SW + 1)
            wp = sm.write_port()
            m.d.comb += [wp.addr.eq(Cat(p4.p[:(SD - 1).bit_length()], p4.bank)),
                         wp.data.eq(Cat(scores[u], p4.uvalid[u])), wp.en.eq(p4.valid)]
            score_mems.append(sm)
            bank_max = []
            for b in range(2):
                m.submodules[f"rowmax{u}_{b}"] = rm = RowMax(SW, ext_score=True)
                bank_max.append(rm)
            if PA:
                # a global group's P.V pass starts from its max pass's maximum: gmax[gidx],
                # chosen a cycle ahead with p3 (gmax is written at least two cycles before p4
                # reads it) into a register beside the row maxima
                gsel = Signal(signed(SW + 1), name=f"gsel{u}", reset_less=True)
                m.d.sync += gsel.eq(Array(gmax[g][u] for g in range(GGM))[p3.gidx])
            for b in range(2):
                rm, other = bank_max[b], bank_max[1 - b]
                # per bank, the update's enable, first and continue flags and the score as
                # registers of their own (set with p4 and scores), beside that bank's running
                # maximum: no decode or shared net in front of its compare and its flip-flops'
                # enable. A row continues from the other bank's value (max_ext: no valid score
                # counts as none) unless reset_max.
                en_b = Signal(name=f"rm_en{u}_{b}")
                first_b = Signal(name=f"rm_first{u}_{b}")
                cont_b = Signal(name=f"rm_cont{u}_{b}")
                # (the score with its validity folded in: RowMax.NONE for none)
                sc_b = Signal(signed(SW + 1), name=f"rm_score{u}_{b}", reset_less=True)
                m.d.sync += [en_b.eq(p3.valid & p3.last & (p3.bank == b)),
                             first_b.eq(p3.fkey), cont_b.eq(~p3.reset_max),
                             sc_b.eq(Mux(p3.uvalid[u], accvs[u], rm.NONE))]
                m.d.comb += [
                    rm.en.eq(en_b), rm.first.eq(first_b),
                    rm.init.eq(other.max_ext), rm.init_valid.eq(cont_b),
                    rm.score.eq(sc_b),
                ]
                if PA:  # (p4.gmax, as a register of this bank's)
                    gm_b = Signal(name=f"rm_gmax{u}_{b}")
                    m.d.sync += gm_b.eq(p3.gmax)
                    m.d.comb += [rm.init.eq(Mux(gm_b, gsel, other.max_ext)),
                                 rm.init_valid.eq(gm_b | cont_b)]
            maxes.append(bank_max)
        # Stage 2 may take the bank one cycle before the last score is written: it reads the
        # first key's score at its first issue and the row maximum one cycle later, when the
        # last key's update has landed.
        with m.If(p3.valid & p3.last & p3.lkey):
            m.d.comb += s1_done_set.eq(Mux(p3.bank, 0b10, 0b01))

        # ---------------------------------------------------------------- stage 2: softmax and P.V
        s2_run = Signal()
        s2_bank = Signal()  # bank stage 2 takes next (groups alternate banks)
        s2 = Signal(desc_layout)
        s2_bnk = Signal()
        s2_count = Signal(range(SD + 1))
        s2_p = Signal(range(SD + 1))
        s2_chunk = Signal(range(CH))
        s2_pos = Signal(PW + 1)
        s2_gi = Signal(8)
        s2_kw = Signal(range(SD + 1))  # number of window keys = count - nglob
        # s2_p >= s2_kw (the key is a global row's) and s2_p + 1 >= s2_count (the group's last
        # key), as registers set with s2_p
        s2_inglob, s2_lastkey = Signal(), Signal()
        s2_abank = Signal()  # accumulator bank of the running group
        abank_next = Signal()  # accumulator bank the next group accumulates into
        acc_full = Signal(2)  # bank claimed by a final group whose rows are not emitted yet
        acc_claim = Signal(2)
        acc_ready = Signal(2)  # bank's group has finished stage 2: the epilogue may start

        qv = Array([q2_valid[0], q2_valid[1]])[s2_bank]
        sd1 = Array([s1_done[0], s1_done[1]])[s2_bank]
        head = Signal(desc_layout)
        head_count = Signal(range(SD + 1))
        m.d.comb += [head.eq(Mux(s2_bank, q2_desc[1].as_value(), q2_desc[0].as_value())),
                     head_count.eq(Mux(s2_bank, q2_count[1], q2_count[0]))]
        # A take is decided a cycle ahead (``s2_go``, a register) from registers only, and made
        # in the next cycle: nothing it waits on can be withdrawn in between (the accumulator
        # bank only frees), and s2_go is not set twice in a row, so one decision is one take
        # (decided in the running group's last issue cycle too, so that P.V groups follow each
        # other without a gap)
        s2_go = Signal()
        s2_ending = Signal()
        # (and in the cycle the group's last score is written, s1_done_set)
        s2_ok = (running & (~s2_run | s2_ending) & qv & (sd1 | Mux(s2_bank, s1_done_set[1],
                 s1_done_set[0])) & (head.no_pv | ~Array([acc_full[0], acc_full[1]])[abank_next]))
        m.d.sync += s2_go.eq(s2_ok & ~s2_go)
        # The lowest K/V position later groups still need. Window starts rise with the group
        # order except at the front, where a window clipped at row 0 starts at its residue class
        # (0..dil-1) and the next block's class 0 starts lower again: hold those rows until the
        # first unclipped group.
        head_release = Signal(PW + 1)
        if PA:  # the main pass starts at stream position moff
            m.d.comb += head_release.eq(Mux(head.main & (head.start < moff + dil_s), moff,
                                            head.start))
        else:
            m.d.comb += head_release.eq(Mux(head.main & (head.start < dil_s), 0, head.start))
        # Taking a group releases the rows below its first key, but the previous group's last V
        # reads are still in the pipeline (address at t5): the release reaches the K/V writer
        # RELEASE_DELAY cycles later, or the writer could overwrite a row still to be read (the
        # last main group's keys when the global passes begin, a sub-group's last keys).
        rel_pipe = [Signal(PW + 1, name=f"rel_req{i}") for i in range(RELEASE_DELAY)]
        rel_req = rel_pipe[0]
        for i in range(1, RELEASE_DELAY):
            m.d.sync += rel_pipe[i].eq(rel_pipe[i - 1])
        m.d.comb += release.eq(rel_pipe[-1])
        m.d.sync += [rel_b.eq(rel_pipe[-3] + B), rel_b1.eq(rel_pipe[-3] + (B - 1))]
        head_rel = Signal.like(head_release)  # (head stands still from decision to take)
        m.d.sync += head_rel.eq(head_release)
        with m.If(s2_go):
            bit = Mux(s2_bank, 0b10, 0b01)
            with m.If(head.no_pv):
                # max-only pass: nothing to do in stage 2, release the bank and the rows
                m.d.comb += [q2_clr.eq(bit), s1_done_clr.eq(bit), bank_busy_clr.eq(bit)]
                m.d.sync += [s2_bank.eq(~s2_bank), rel_req.eq(head_rel)]
            with m.Else():
                m.d.comb += [q2_clr.eq(bit), s1_done_clr.eq(bit)]
                m.d.sync += [s2_abank.eq(abank_next), abank_next.eq(abank_next ^ head.final)]
                # the bank is claimed from the take of its final group until its rows are out
                with m.If(head.final):
                    m.d.comb += acc_claim.eq(Mux(abank_next, 0b10, 0b01))
                kw_new = Signal.like(s2_kw)
                m.d.comb += kw_new.eq(head_count - head.nglob)
                m.d.sync += [s2.eq(head), s2_bnk.eq(s2_bank), s2_bank.eq(~s2_bank), s2_run.eq(1),
                             s2_count.eq(head_count), s2_p.eq(0), s2_chunk.eq(0),
                             s2_pos.eq(head.start), s2_gi.eq(0),
                             s2_kw.eq(kw_new), rel_req.eq(head_rel),
                             s2_inglob.eq(kw_new == 0), s2_lastkey.eq(head_count <= 1)]
        issue2 = s2_run
        m.d.comb += s2_ending.eq(s2_run & (s2_chunk == CH - 1) & s2_lastkey)
        with m.If(issue2):
            with m.If(s2_chunk == CH - 1):
                m.d.sync += [s2_chunk.eq(0), s2_p.eq(s2_p + 1),
                             s2_inglob.eq(s2_p + 1 >= s2_kw), s2_lastkey.eq(s2_p + 2 >= s2_count)]
                with m.If(s2_inglob):
                    m.d.sync += s2_gi.eq(s2_gi + 1)
                with m.Else():
                    m.d.sync += s2_pos.eq(s2_pos + s2.step)
                with m.If(s2_lastkey):
                    m.d.sync += s2_run.eq(0)
            with m.Else():
                m.d.sync += s2_chunk.eq(s2_chunk + 1)

        meta2 = data.StructLayout({
            "valid": 1, "first": 1, "fkey": 1, "lkey": 1, "bank": 1, "glob": 1,
            "vaddr": (B * CH - 1).bit_length() or 1,
            "gaddr": (GM * CH - 1).bit_length() or 1, "final": 1, "abank": 1, "active": U})
        t0 = Signal(meta2)
        m.d.comb += [
            t0.valid.eq(issue2), t0.first.eq(s2_chunk == 0), t0.fkey.eq((s2_p == 0) & s2.reset_acc),
            t0.lkey.eq(s2_lastkey & (s2_chunk == CH - 1)), t0.bank.eq(s2_bnk), t0.glob.eq(s2_inglob),
            t0.final.eq(s2.final), t0.abank.eq(s2_abank), t0.active.eq(s2.active),
            t0.vaddr.eq(Cat(Const(0, 0) if CH == 1 else s2_chunk, s2_pos[:(B - 1).bit_length()])),
            t0.gaddr.eq(Cat(Const(0, 0) if CH == 1 else s2_chunk,
                            s2_gi[:max(1, (GM - 1).bit_length())])),
        ]
        # EngineParams.pv_pipeline's stages, each a cycle more from issue to accumulate: EC, the
        # exponential registered once more, a copy per 8 P.V lanes; PR, the products registered
        # beside the accumulators; EL, the exponential table's output registered (ExpUnit
        # latency 2); SR, the score read registered beside the score memory; XP, the softmax
        # multiplier's product as two partial products registered in their multipliers, summed
        # a cycle later. Without them: e at t5, registered (e5) for the products at t6 (TM),
        # accumulate at t7.
        X = P.pv_pipeline
        EC, PR, EL, SR, XP = (int(X >= k) for k in (1, 2, 3, 4, 5))
        TM = 6 + SR + EL + EC + XP  # e meets v at the multipliers
        t = [t0] + [Signal(meta2, name=f"t{i}") for i in range(1, 8 + X)]
        for i in range(1, 8 + X):
            m.d.sync += t[i].eq(t[i - 1])
        # V read at t3, data at t4, registered beside the memories at t5 and after the ring/global
        # choice at t6 (a memory's output never feeds logic far away or a multiplier in the same
        # cycle); with the pipeline stages, read a cycle later (never after t4: RELEASE_DELAY)
        # and held in registers (vdat*) until TM
        VR = 3 + min(TM - 6, 1)
        for j in range(KS):  # (copies of t[VR]'s addresses, one per memory slice)
            va = delayed(m, t[VR - 1].vaddr, f"va{j}_dup")
            ga = delayed(m, t[VR - 1].gaddr, f"ga{j}_dup")
            m.d.comb += [ring_v.addr[j].eq(va), glob_v.addr[j].eq(ga)]
        rv_d = Signal(chunk_bits, name="rv_d", reset_less=True)
        gv_d = Signal(chunk_bits, name="gv_d", reset_less=True)
        vdat = Signal(chunk_bits, reset_less=True)
        m.d.sync += [rv_d.eq(ring_v.data), gv_d.eq(glob_v.data)]
        # (with a cycle to spare before TM, both rows registered once more before the choice:
        # the ring's and the global rows' memories lie apart)
        VC = VR + 2 + (TM > VR + 3)  # the choice's cycle
        if VC > VR + 2:
            rv_d, gv_d = delayed(m, rv_d, "rv_d2", True), delayed(m, gv_d, "gv_d2", True)
        m.d.sync += vdat.eq(Mux(t[VC].glob, gv_d, rv_d))
        for k in range(VC + 1, TM):
            vdat = delayed(m, vdat, f"vdat{k + 1}", True)

        mant = cfg.mult_mant
        mshift = cfg.mult_shift
        epi_bank = Signal()  # bank the epilogue serves next
        epi_turn = [Signal(name=f"epi_turn{u}") for u in range(U)]  # turn the bank's ring
        accA = []  # per unit and bank: the head chunk of the accumulator ring (LW values)
        sums = []
        for u in range(U):
            rp = score_mems[u].read_port()
            m.d.comb += rp.addr.eq(Cat(s2_p[:(SD - 1).bit_length()], s2_bnk))
            # t1: score data -> difference (with SR, the data registered first)
            sdata = delayed(m, rp.data, f"sdata{u}", True) if SR else rp.data
            sval = sdata[:SW].as_signed()
            svalid = sdata[SW]
            mx = Mux(t[1 + SR].bank, maxes[u][1].max, maxes[u][0].max)
            diff = Signal(nx.DIFF_WIDTH, name=f"diff{u}", reset_less=True)
            dv2 = Signal(name=f"dv2_{u}")
            m.d.sync += [diff.eq(mx - sval), dv2.eq(svalid & t[1 + SR].valid)]
            # t2: product with the multiplier mantissa (XP: t2 its partial products with diff's
            # low 17 bits and its high bits, each in one 18 x 18 multiplier's output register,
            # and t3 their sum)
            xprod = Signal(nx.XPROD_WIDTH, name=f"xprod{u}", reset_less=True)
            dv3 = Signal(name=f"dv3_{u}")
            m.d.sync += dv3.eq(dv2)
            if XP:
                XS = 17
                x_lo = Signal(XS + nx.MULT_MANT_WIDTH, name=f"xlo{u}", reset_less=True)
                x_hi = Signal(nx.XPROD_WIDTH - XS, name=f"xhi{u}", reset_less=True)
                registered_product(m, platform, diff[:XS], mant, x_lo, reg_inputs=False,
                                   name=f"xmul_lo{u}")
                registered_product(m, platform, diff[XS:], mant, x_hi, reg_inputs=False,
                                   name=f"xmul_hi{u}")
                m.d.sync += xprod.eq((x_hi << XS) + x_lo)
                dv3 = delayed(m, dv3, f"dv3b_{u}")
            else:
                m.d.sync += xprod.eq(diff * mant)
            # t3: z = floor(2 xprod / 2^mshift); t4: the exponential of x = (z + 1) >> 1, which
            # is xprod / 2^mshift rounded half up, clamped at EXP_CUTOFF (ExpUnit ``halves``:
            # the rounding folded into its table, z's low bits its address)
            z = Signal(nx.XPROD_WIDTH + 1, name=f"z{u}", reset_less=True)
            dv4 = Signal(name=f"dv4_{u}")
            m.d.sync += [z.eq((xprod << 1) >> mshift), dv4.eq(dv3)]
            m.submodules[f"exp{u}"] = ex = ExpUnit(1 + EL, halves=True, z_width=len(z))
            m.d.comb += ex.x.eq(z)
            dv5 = Signal(name=f"dv5_{u}")
            m.d.sync += dv5.eq(dv4)
            if EL:
                dv5 = delayed(m, dv5, f"dv5b_{u}")
            # t5: e valid; register it for t6 (both SR + EL later with those stages)
            e5 = Signal(nx.EXP_WIDTH, name=f"e5_{u}", reset_less=True)
            m.d.sync += e5.eq(Mux(dv5, ex.e, 0))
            # TM: products e * v (with EC a copy of e per 8 lanes, registered from e5 beside its
            # multipliers, meets v a cycle later)
            if PA:
                sc = paired_lanes[u]
            else:
                m.submodules[f"scale{u}"] = sc = ScaleLanes(LW)
            for c in range(lane_groups(LW)):
                m.d.comb += sc.e[c].eq(delayed(m, e5, f"e6_{u}_{c}_dup", True) if EC else e5)
            m.d.comb += sc.v.as_value().eq(vdat)
            # (PR: the products registered beside the accumulators)
            prod = delayed(m, sc.prod, f"prod_r{u}", True) if PR else sc.prod
            e_sum = e5  # e for the sum of exponentials, in step with the products
            for k in range(1 + EC + PR):
                e_sum = delayed(m, e_sum, f"e{TM - EC + k}_{u}", True)
            # t7: accumulate
            # two accumulator banks: the epilogue reads one while the next group fills the other
            abanks, sbanks = [], []
            for ab in range(2):
                # the bank's add and clear at t7, registered from t6, a copy per 8 accumulators
                # or, with PR (the products registered beside them), per accumulator (``*_dup``;
                # each drives the adders of its accumulators, with no logic between the register
                # and that fan-out), and once more for the sum of exponentials
                tp = t[TM + PR]
                take_v = tp.valid & (tp.abank == ab)
                clear_v = take_v & tp.fkey
                m.submodules[f"acc{u}_{ab}"] = ring = AccumulatorRing(
                    signed(nx.EXP_WIDTH + nx.DATA_WIDTH), signed(P.acc_width), LW, CH,
                    per_lane=bool(PR))
                AG = ring.copies
                if PR:
                    # per accumulator: the copies from a copy per 8 a cycle earlier (two
                    # register levels of fan-out from the tag t[TM + PR - 1])
                    tq = t[TM + PR - 1]
                    take_q = tq.valid & (tq.abank == ab)
                    LG = lane_groups(LW)
                    take_g = [delayed(m, take_q, f"take{u}_{ab}_g{g}_dup") for g in range(LG)]
                    clear_g = [delayed(m, take_q & tq.fkey, f"aclr{u}_{ab}_g{g}_dup")
                               for g in range(LG)]
                    takes = Cat(*[delayed(m, take_g[lane_group(i, LW)], f"take{u}_{ab}_{i}_dup")
                                  for i in range(AG)])
                    clears = Cat(*[delayed(m, clear_g[lane_group(i, LW)],
                                           f"aclr{u}_{ab}_{i}_dup") for i in range(AG)])
                else:
                    takes = Cat(*[delayed(m, take_v, f"take{u}_{ab}_{g}_dup") for g in range(AG)])
                    clears = Cat(*[delayed(m, clear_v, f"aclr{u}_{ab}_{g}_dup")
                                   for g in range(AG)])
                clear = delayed(m, clear_v, f"aclr{u}_{ab}")
                take_s = delayed(m, take_v & tp.first, f"stake{u}_{ab}")
                m.d.comb += [ring.add.eq(takes), ring.clear.eq(clears), ring.x.eq(prod),
                             ring.turn.eq(epi_turn[u] & (epi_bank == ab) if CH > 1 else 0)]
                chunks = ring.head
                m.submodules[f"sum{u}_{ab}"] = ssum = Accumulators(
                    unsigned(nx.EXP_WIDTH), unsigned(P.sum_width), 1)
                m.d.comb += [ssum.en.eq(take_s), ssum.clear.eq(clear),
                             ssum.x[0].eq(e_sum)]
                abanks.append(chunks)
                sbanks.append(ssum.acc[0])
            accA.append(abanks)
            sums.append(sbanks)
        grp_done = Signal()
        m.d.sync += grp_done.eq(t[7 + X].valid & t[7 + X].lkey)
        done_final = Signal()
        done_abank = Signal()
        grp_active = Signal(U)
        m.d.sync += [done_final.eq(t[7 + X].final), done_abank.eq(t[7 + X].abank),
                     grp_active.eq(t[7 + X].active)]
        # The score bank (scores and row maximum) is last read at t1 of the group's last key;
        # stage 1 writes a new group's first score at least five cycles after it takes the bank,
        # so the bank is handed back at the last issue rather than when the group drains.
        with m.If(issue2 & s2_lastkey & (s2_chunk == CH - 1)):
            m.d.comb += bank_busy_done.eq(Mux(s2_bnk, 0b10, 0b01))

        # ---------------------------------------------------------------- epilogue and output
        # A finished group waits in its accumulator bank; the epilogue takes banks in order.
        copy = grp_done & done_final
        act_bank = [Signal(U, name=f"act_bank{b}") for b in range(2)]
        acc_full_set = Signal(2)
        acc_full_clr = Signal(2)
        m.d.sync += [acc_full.eq((acc_full | acc_claim) & ~acc_full_clr),
                     acc_ready.eq((acc_ready | acc_full_set) & ~acc_full_clr)]
        with m.If(copy):
            m.d.comb += acc_full_set.eq(Mux(done_abank, 0b10, 0b01))
            for b in range(2):
                with m.If(done_abank == b):
                    m.d.sync += act_bank[b].eq(grp_active)
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
        ol = P.out_lanes
        epi_bank_dups = []  # copies of epi_bank, one per normaliser (per element with SHIFT_IN)
        for u in range(U):
            # the bank's sum S, registered as the row's epilogue starts (the bank's sums stand
            # still until its rows are out)
            sel_s = Signal.like(sums[u][0], name=f"sel_s{u}")
            rstart = Signal(name=f"rstart{u}")  # the reciprocal's start: a register, high in
            m.d.sync += rstart.eq(0)  # RSTART only (no state decode in front of the divider)
            pshift = Signal(range(P.sum_width + 1), name=f"p{u}")
            m.submodules[f"recip{u}"] = rc = Reciprocal()
            div_r = Signal(nx.SUM_NORM_BITS, name=f"div_r{u}")
            m.d.comb += [rc.start.eq(rstart), rc.divisor.eq(div_r)]
            row = Signal(int8_row(d), name=f"orow{u}", reset_less=True)
            out_rows.append(row)
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
            bank_d = ([] if SHIFT_IN else
                      [Signal(name=f"epi_bank_u{u}_{j}_dup") for j in range(ol)])
            epi_bank_dups += bank_d
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
                # the bank's copy per element: a copy per normaliser drove 8 elements' worth of
                # multiplexers (272) beside accumulators across the die, 10.2 ns of routing
                bank_e = [Signal(name=f"epi_bank_u{u}_{j}_{k}_dup") for k in range(per_chunk)]
                epi_bank_dups += bank_e
                for k, i in enumerate(range(j, LW, ol)):
                    with m.If(ld):
                        m.d.sync += sr[k].eq(Mux(bank_e[k], accA[u][1][i], accA[u][0][i]))
                    if k + 1 < per_chunk:
                        with m.Else():
                            m.d.sync += sr[k].eq(sr[k + 1])
                elem_sr.append(sr[0])
            act_u = Mux(epi_bank, act_bank[1][u], act_bank[0][u])
            with m.FSM(name=f"epi{u}"):
                with m.State("IDLE"):
                    m.d.sync += sel_s.eq(Mux(epi_bank, sums[u][1], sums[u][0]))
                    with m.If(epi_go & act_u):
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
                    m.d.comb += epi_turn[u].eq((sub == per_chunk - 1) & (oc < d // ol))
                    for j in range(ol):
                        m.submodules[f"norm{u}_{j}"] = nm = Normaliser(P.acc_width)
                        if SHIFT_IN:
                            a_in = elem_sr[j]
                        else:
                            elems = Array(Mux(bank_d[j], accA[u][1][i], accA[u][0][i])
                                          for i in range(j, LW, ol))
                            a_in = elems[sub_d[j]] if per_chunk > 1 else elems[0]
                        m.d.comb += [nm.a.eq(a_in), nm.p.eq(pshift),
                                     nm.r.eq(rc.quotient), nm.out_shift.eq(cfg.out_shift)]
                        with m.Switch(oc):
                            for k in range(d // ol):
                                with m.Case(k + NL):
                                    m.d.sync += row[k * ol + j].eq(nm.o)
                    m.d.sync += [oc.eq(oc + 1)] + [c.eq(c + 1) for c in sub_d]
                    with m.If(oc == d // ol - 1 + NL):
                        m.next = "READY"
                with m.State("READY"):
                    m.d.comb += ready_rows[u].eq(1)
                    with m.If(self.o.valid & self.o.ready & (ou == u)):
                        m.next = "IDLE"

        # output arbiter: the bank's rows in unit order
        out_left = Signal(NW + 8)
        out_one = Signal()  # out_left == 1 (a register, set with out_left)
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
                m.d.comb += self.o.valid.eq(ready_arr[ou] & running)
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += ou.eq(ou + 1)

        # ---------------------------------------------------------------- job completion
        with m.If(job_init):
            m.d.sync += [r.eq(0) for r in rel_pipe] + [rel_b.eq(B), rel_b1.eq(B - 1)]
            m.d.sync += [plt.eq(ng != 0), wlt.eq(total_pos != 0), wrem.eq(total_pos),
                         gap_ok.eq(1)]
            m.d.sync += [out_left.eq(n), out_one.eq(n == 1), pl.eq(0), wpos.eq(0), wpos_w.eq(0),
                         av_r.eq(0), hchunk.eq(0), s1_bank.eq(0), s2_bank.eq(0),
                         bank_busy.eq(0), s1_done.eq(0), s2_go.eq(0), q2_valid.eq(0),
                         s1_run.eq(0), s2_run.eq(0), pending.eq(0), acc_full.eq(0),
                         acc_ready.eq(0), abank_next.eq(0), epi_bank.eq(0), epi_run.eq(0)]
            m.d.sync += [c.eq(0) for c in epi_bank_dups]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += [out_left.eq(out_left - 1), out_one.eq(out_left == 2)]
            with m.If(out_one):
                m.d.sync += [state.eq(regs.State.DONE), running.eq(0)]
        return m
