"""A job's control: the start, the configuration checks, the status register and completion.

:class:`JobControl` owns the engine's state (IDLE / BUSY / DONE), the error code and the cycle
counter. It checks a configuration one step per cycle after an accepted start and, once they
pass, pulses ``job_init`` (every stage resets its job state on it) and raises ``running`` until
the job's last output row is taken. Every stage reads the job's configuration, at the widths the
checks guarantee, and the figures derived from it during the checks through :class:`JobSignature`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams


def check_widths(P: EngineParams) -> tuple[int, int, int]:
    """Bits of the radius, the dilation and a global's position in the globals, as the stages use
    them once the checks have passed (dilation <= max_dilation, left, right <= max_radius //
    dilation)."""
    return (P.max_radius.bit_length(), P.max_dilation.bit_length(),
            max(1, (P.max_globals + P.max_columns).bit_length()))


class JobSignature(wiring.Signature):
    """What every stage knows of the running job (driven by :class:`JobControl`).

    Members: ``running`` (the checks passed and the job's last row is not yet out); ``init`` (a
    one-cycle pulse a cycle before ``running`` rises: reset the job's state); the configuration
    at the widths the checks allow: ``n`` (sequence length), ``left``, ``right`` (window radius in
    keys), ``dil`` (dilation), ``ng`` (global count), ``glob`` (global rows, configuration
    order), ``gval`` (per global: its index is below ``ng``), ``mult_mant``, ``mult_shift``,
    ``out_shift`` (softmax and output scaling); figures registered during the checks:
    ``reach_l`` (left * dil), ``span`` (left + right), ``ngg`` (global groups of ``units``),
    ``total_pos`` (K/V stream rows of the job) and ``moff`` (paired engines: the stream position
    where the main pass starts; 0 otherwise).
    """

    def __init__(self, P: EngineParams):
        RB, DB, _ = check_widths(P)
        GM = max(1, P.max_globals)
        super().__init__({
            "running": Out(1), "init": Out(1),
            "n": Out(P.seq_width + 1), "left": Out(RB), "right": Out(RB), "dil": Out(DB),
            "ng": Out(8), "glob": Out(data.ArrayLayout(unsigned(regs.GLOBAL_INDEX_WIDTH), GM)),
            "gval": Out(GM),
            "mult_mant": Out(regs.CONFIG_FIELDS["mult_mant"]),
            "mult_shift": Out(regs.CONFIG_FIELDS["mult_shift"]),
            "out_shift": Out(regs.CONFIG_FIELDS["out_shift"]),
            "reach_l": Out(RB), "span": Out(RB + 1), "ngg": Out(8),
            "total_pos": Out(P.pos_width + 1),
            "moff": Out(P.pos_width + 1 if P.paired_max else 1),
            **(band_members(P) if P.max_bands > 1 else {}),
            **(column_members(P) if P.max_columns else {}),
            **(grid_members(P) if P.grid else {}),
        })


def grid_members(P: EngineParams) -> dict:
    """JobSignature's members on engines with the 2D grid: ``gon`` (a grid is set), ``gw`` (its
    width), ``gr`` (its column radius) and ``umod`` (``units`` mod ``gw``, from the checks), at
    the widths the checks allow (``gw`` <= n)."""
    WB = P.seq_width + 1
    return {"gon": Out(1), "gw": Out(WB), "gr": Out(WB), "umod": Out(WB)}


def column_members(P: EngineParams) -> dict:
    """JobSignature's members on engines with key-only columns: ``nc`` (their count), ``cols``
    (their indices), ``cval`` (per column: its index is below ``nc``) and ``nheld`` (the K/V
    rows held beside the ring: ng + nc, the globals' first)."""
    C = P.max_columns
    return {"nc": Out(8), "cols": Out(data.ArrayLayout(unsigned(regs.COLUMN_INDEX_WIDTH), C)),
            "cval": Out(C), "nheld": Out(9)}


def key_hits(job, idx, P: EngineParams):
    """Per global, then per key-only column: ``idx`` is that (valid) token, a key the group
    takes after its bands (so a band key equal to it is left out there)."""
    hits = global_hits(job, idx, max(1, P.max_globals))
    if not P.max_columns:
        return hits
    return Cat(hits, *[job.cval[j] & (job.cols[j] == idx) for j in range(P.max_columns)])


def slot_layout(P: EngineParams) -> data.StructLayout:
    """A band of the job in processing order (a *slot*): ``a`` its first step (signed, in
    window steps), ``reach`` = ``a * dil`` in tokens, ``span`` = count - 1, ``valid``."""
    RB = P.max_radius.bit_length()
    grid = {"acol": unsigned(P.seq_width + 1)} if P.grid else {}
    return data.StructLayout({"a": signed(RB + 2), "reach": signed(RB + 2),
                              "span": unsigned(RB + 1), "valid": 1, **grid})


def band_members(P: EngineParams) -> dict:
    """JobSignature's members on engines with bands beside the window: ``slots``, the window
    and the other bands in ascending order (slot ``nlow`` is the window; the bands below it
    come first), as the checks leave them."""
    return {"slots": Out(slot_layout(P)).array(P.max_bands)}


def global_hits(job, idx, globals_: int):
    """Per global: ``idx`` is that (valid) global's row."""
    return Cat(*[job.gval[i] & (job.glob[i] == idx) for i in range(globals_)])


def token(job, pos, paired: bool):
    """The token index of a main-pass K/V stream position."""
    return pos - job.moff if paired else pos


def band_tests(m: Module, cfg, b: int, left, right, rlim, prev_end, end_register=False):
    """Band ``b``'s validator tests as expressions, the same on every engine: ``range`` (live,
    and of count 0 or reaching over ``rlim`` = max_radius // dilation steps), ``order`` (live
    and neither wholly below nor wholly above the window, or not above band ``b - 1``, whose
    last step is ``prev_end``), ``end``, its last step (a signal, for band ``b + 1``), and
    ``live`` (n_bands > b). ``end_register``: ``end`` is a register of the configuration (the
    tests then hold a cycle later than the configuration), not an adder in front of them."""
    start, count = cfg.bands[b].start, cfg.bands[b].count
    end = Signal(signed(18), name=f"band_end{b}")
    if end_register:
        m.d.sync += end.eq(start + count - 1)
    else:
        m.d.comb += end.eq(start + count - 1)
    live = cfg.n_bands > b
    clear = (end + left < 0) | (start > right)  # wholly below or above the window
    above_prev = Const(1) if prev_end is None else start > prev_end
    return (live & ((count == 0) | (start + rlim < 0) | (end > rlim)),
            live & ~(clear & above_prev), end, live)


class JobControl(wiring.Component):
    """Start, configuration checks, status and completion of a job.

    Per cycle: a ``start`` while BUSY sets error BUSY and changes nothing else; a start otherwise
    (with ``hold_config``, copying ``cfg``) enters BUSY, clears the error and the cycle counter,
    and begins the checks. The checks take one step per cycle: step 0 registers what they need,
    step 1 the scalar checks, step 2 + i global i (range, then duplicate of an earlier one). A
    failing step ends the job with its error code (state IDLE); after the last step ``init``
    pulses and ``running`` rises. ``out_fire`` counts output rows; the job's n-th sets DONE and
    lowers ``running``. ``cycles`` counts cycles in BUSY.
    """

    def __init__(self, params: EngineParams, hold_config: bool = True):
        self._params = params
        self._hold_config = hold_config
        super().__init__({
            "cfg": In(regs.config_layout(params)),
            "start": In(1),
            "out_fire": In(1),
            "status": Out(regs.STATUS_LAYOUT),
            "cycles": Out(32),
            "job": Out(JobSignature(params)),
        })

    def elaborate(self, platform):
        P = self._params
        U = P.units
        GM = max(1, P.max_globals)
        PA = P.paired_max
        RB, DB, _ = check_widths(P)
        m = Module()
        job = self.job

        cfg, n, left, right, dil, ng, reach_l, span, ngg, total_pos, moff, glob, gval = \
            self._job_view(m, job, RB)
        left_s, right_s, dil_s = job.left, job.right, job.dil

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
        m.d.comb += [job.running.eq(running), job.init.eq(job_init)]

        cycles = Signal(32)
        m.d.comb += self.cycles.eq(cycles)
        with m.If(state == regs.State.BUSY):
            m.d.sync += cycles.eq(cycles + 1)

        with m.If(self.start):
            with m.If(state == regs.State.BUSY):
                m.d.sync += error.eq(regs.Error.BUSY)
            with m.Else():
                if self._hold_config:
                    m.d.sync += cfg.eq(self.cfg)
                m.d.sync += [state.eq(regs.State.BUSY), error.eq(0),
                             cycles.eq(0), checking.eq(1), chk_i.eq(0), running.eq(0),
                             chk_seen.eq(0), chk_fail.eq(0), chk_last.eq(0)]
        # Per global, both tests are registers of the configuration (g_rng, g_dup; it holds from
        # the cycle after the start), and global chk_i - 2's are loaded a cycle ahead (cur_rng,
        # cur_dup). A step's outcome is registered (chk_fail, chk_last) and acted on a cycle
        # later, so the compares do not drive the job's control in the same cycle.
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
        NB = P.max_bands
        # bands beside the window: their count checked with the scalars, each band's range and
        # order in one step after the globals (the first failing band's code, range before
        # order), and the slots (bands and window in ascending order) registered in that step
        if NB > 1:
            band_fail = self._band_checks(m, cfg, job, rlim, left_s, right_s, dil_s, DB,
                                          times_small)
            bad_nb = Signal()
            m.d.sync += bad_nb.eq(cfg.n_bands > NB - 1)
            band_step = Signal()  # the step checking the bands
        C = P.max_columns
        if C:
            # key-only columns: their count with the scalars, each column's range, order and
            # overlap with a global in one step after the globals' (and the bands')
            col_fail = self._column_checks(m, cfg, job, gval, glob)
            bad_nc = Signal()
            m.d.sync += bad_nc.eq(cfg.n_columns > C)
            col_step = Signal()
        if P.grid:
            # the grid: its fields with the scalars, and the remainders of each band's first
            # step and of units by its width (grid_steps cycles from step 1)
            bad_grid = Signal()
            gw = cfg.grid_width
            m.d.sync += bad_grid.eq((gw != 0) & ((gw > cfg.n) | (cfg.grid_radius >= gw)
                                                  | (dil != 1)))
            grid_done = self._grid_remainders(m, cfg, job, chk_i, checking)
            grid_wait = Signal()  # past the last check step, the remainders not yet in
        # (a start while BUSY is refused above and changes nothing here: the checks, job_init and
        # the scheduler's start go on as if it had not come)
        step_flags = ([band_step] if NB > 1 else []) + ([col_step] if C else []) + (
            [grid_wait] if P.grid else [])
        if step_flags:
            with m.If(self.start & (state != regs.State.BUSY)):
                m.d.sync += [f.eq(0) for f in step_flags]
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
                if NB > 1:
                    with m.Elif(bad_nb):
                        m.d.comb += fail.eq(regs.Error.BAND_COUNT)
                if C:
                    with m.Elif(bad_nc):
                        m.d.comb += fail.eq(regs.Error.COLUMN_COUNT)
                if P.grid:
                    with m.Elif(bad_grid):
                        m.d.comb += fail.eq(regs.Error.GRID)
            if NB > 1:
                with m.Elif(band_step):
                    m.d.comb += fail.eq(band_fail)
            if C:
                with m.Elif(col_step):
                    m.d.comb += fail.eq(col_fail)
            if P.grid:
                with m.Elif(grid_wait):
                    pass  # past the last check, until the grid's remainders are in
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
            # (with bands, their step after the globals'; with columns, theirs after that)
            more = int(NB > 1) + int(C > 0)
            last = (chk_i >= 1) & (chk_i >= (ng + 1 + more if more else ng + 1))
            if P.grid:  # (and the grid's remainders are in)
                last = last & grid_done
            m.d.sync += [chk_seen.eq(1), chk_fail.eq(fail), chk_last.eq(last),
                         chk_i.eq(chk_i + 1)]
            # the band, column and grid steps' decodes a step ahead (registers: no adder and
            # compare in front of the outcome's priority), all low at step 0
            if NB > 1:
                m.d.sync += band_step.eq(chk_i == ng + 1)
            if C:
                m.d.sync += col_step.eq(chk_i == ng + 1 + int(NB > 1))
            if P.grid:
                m.d.sync += grid_wait.eq(chk_i >= ng + 1 + int(NB > 1) + int(C > 0))
            with m.If(chk_seen & (chk_fail != 0)):
                m.d.sync += [error.eq(chk_fail), state.eq(regs.State.IDLE), checking.eq(0)]
            with m.Elif(chk_seen & chk_last):
                m.d.sync += checking.eq(0)
                m.d.comb += job_go.eq(1)
        m.d.sync += job_init.eq(job_go)
        with m.If(job_init):
            m.d.sync += running.eq(1)

        self._completion(m, n, job_init, state, running)
        return m

    def _job_view(self, m, job, RB):
        """The configuration the job reads (the copy with ``hold_config``) and the job's view of
        it on ``job``, with the registers the checks set (reach_l, span, ngg, total_pos,
        moff)."""
        P = self._params
        GM = max(1, P.max_globals)
        PA = P.paired_max
        cfg = Signal(regs.config_layout(P)) if self._hold_config else self.cfg
        n = Signal(P.seq_width + 1)
        left, right, dil = Signal(16), Signal(16), Signal(16)
        ng = Signal(8)
        reach_l = Signal(RB)
        span = Signal(RB + 1)
        ngg = Signal(8)  # global groups
        total_pos = Signal(P.pos_width + 1)
        # paired: the stream position where the main pass starts (n per pair of global groups)
        moff = Signal(P.pos_width + 1, name="moff") if PA else Const(0, 1)
        glob = [cfg.globals[i] for i in range(GM)]
        gval = Signal(GM)  # (i < ng) per global, of the configuration (still during a job)
        m.d.sync += gval.eq(Cat(*[ng > i for i in range(GM)]))
        m.d.comb += [n.eq(cfg.n), left.eq(cfg.left), right.eq(cfg.right), dil.eq(cfg.dilation),
                     ng.eq(cfg.n_globals)]
        m.d.comb += [job.n.eq(n), job.left.eq(left), job.right.eq(right), job.dil.eq(dil),
                     job.ng.eq(ng), job.gval.eq(gval), job.reach_l.eq(reach_l),
                     job.span.eq(span), job.ngg.eq(ngg), job.total_pos.eq(total_pos),
                     job.moff.eq(moff), job.mult_mant.eq(cfg.mult_mant),
                     job.mult_shift.eq(cfg.mult_shift), job.out_shift.eq(cfg.out_shift)]
        m.d.comb += [job.glob[i].eq(glob[i]) for i in range(GM)]
        return cfg, n, left, right, dil, ng, reach_l, span, ngg, total_pos, moff, glob, gval

    def _completion(self, m, n, job_init, state, running):
        """The job's n-th output row (``out_fire``) sets DONE and lowers ``running``."""
        out_left = Signal(self._params.seq_width + 9)
        out_one = Signal()  # out_left == 1 (a register, set with out_left)
        with m.If(job_init):
            m.d.sync += [out_left.eq(n), out_one.eq(n == 1)]
        with m.Elif(self.out_fire):
            m.d.sync += [out_left.eq(out_left - 1), out_one.eq(out_left == 2)]
            with m.If(out_one):
                m.d.sync += [state.eq(regs.State.DONE), running.eq(0)]

    def _grid_remainders(self, m, cfg, job, chk_i, checking):
        """The grid's view (``gon``, ``gw``, ``gr``) and, by restoring division one bit a
        cycle, each slot's first step mod the width (``job.slots[k].acol``; a negative step's
        remainder is taken up to the width) and ``units`` mod the width (``job.umod``): the
        dividends are loaded at step 1 (the slots hold from the cycle after the start), divided
        in steps 2 .. K + 1 and the remainders registered at step K + 2 (K =
        EngineParams.grid_steps).
        Returns "the remainders are registered" (from step K + 2 on: the checks may end there).
        """
        P = self._params
        K = P.grid_steps
        WB = P.seq_width + 1
        gw = cfg.grid_width[:WB]
        m.d.comb += [job.gon.eq(cfg.grid_width != 0), job.gw.eq(gw),
                     job.gr.eq(cfg.grid_radius[:WB])]
        xs = []  # (remainder register, negative, output)
        for k in range(P.max_bands):
            a = job.slots[k].a
            acol = Signal(WB, name=f"grid_acol{k}")
            m.d.comb += job.slots[k].acol.eq(acol)
            xs.append((Signal(K, name=f"grid_x{k}"), Signal(name=f"grid_neg{k}"),
                       Mux(a < 0, -a, a), a < 0, acol))
        umod = Signal(WB, name="grid_umod")
        m.d.comb += job.umod.eq(umod)
        xs.append((Signal(K, name="grid_xu"), Signal(name="grid_negu"), P.units, 0, umod))
        with m.If(checking):
            for x, neg, dividend, is_neg, out in xs:
                with m.If(chk_i == 1):
                    m.d.sync += [x.eq(dividend), neg.eq(is_neg)]
                for j in range(K):  # step 2 + j takes off gw << (K - 1 - j) where it fits
                    sh = K - 1 - j
                    with m.If((chk_i == 2 + j) & (x >= (gw << sh))):
                        m.d.sync += x.eq(x - (gw << sh))
                with m.If(chk_i == K + 2):
                    m.d.sync += out.eq(Mux(neg & (x != 0), gw - x, x))
        return chk_i >= K + 2

    def _column_checks(self, m, cfg, job, gval, glob):
        """The key-only columns: the job's view (``nc``, ``cols``, ``cval``, ``nheld``), each
        column's tests as registers of the configuration and the first failing column's error
        code (returned: range, order, then a global's index, column by column)."""
        P = self._params
        C, GM = P.max_columns, max(1, P.max_globals)
        nc = cfg.n_columns
        cval = Signal(C)
        m.d.sync += cval.eq(Cat(*[nc > j for j in range(C)]))
        m.d.comb += [job.nc.eq(nc), job.cval.eq(cval), job.nheld.eq(cfg.n_globals + nc)]
        m.d.comb += [job.cols[j].eq(cfg.columns[j]) for j in range(C)]
        chain = Const(0, 4)
        tests = []
        # the range and order tests from copies of n and the columns of their own (registered
        # beside them: they hold from the cycle after step 0, the column step is step 2 at the
        # earliest), not from the configuration's registers, which the whole engine reads
        n_c = Signal.like(cfg.n, name="col_n")
        col_c = [Signal.like(cfg.columns[j], name=f"col_at{j}") for j in range(C)]
        m.d.sync += [n_c.eq(cfg.n)] + [col_c[j].eq(cfg.columns[j]) for j in range(C)]
        for j in range(C):
            col = cfg.columns[j]
            live = nc > j
            rng, order, both = (Signal(name=f"col_rng{j}"), Signal(name=f"col_ord{j}"),
                                Signal(name=f"col_glob{j}"))
            # (the compares with the globals registered first, beside gval: both tests hold
            # from the cycle after step 0, and the column step is step 3 at the earliest)
            same = Signal(GM, name=f"col_same{j}")
            m.d.sync += [rng.eq(live & (col_c[j] >= n_c)),
                         order.eq(live & ((col_c[j] <= col_c[j - 1]) if j else Const(0))),
                         same.eq(Cat(*[glob[i] == col for i in range(GM)])),
                         both.eq(live & (gval & same).any())]
            tests.append((rng, order, both))
        for rng, order, both in reversed(tests):
            chain = Mux(rng, regs.Error.COLUMN_RANGE,
                        Mux(order, regs.Error.COLUMN_ORDER,
                            Mux(both, regs.Error.COLUMN_GLOBAL, chain)))
        col_fail = Signal(4)
        m.d.comb += col_fail.eq(chain)
        return col_fail

    def _band_checks(self, m, cfg, job, rlim, left, right, dil, DB, times_small):
        """Each band's tests as registers of the configuration (valid from the cycle after the
        start; ``rlim`` from the cycle after step 0), the first failing band's error code
        (returned: range before order, band by band), and the slots (``job.slots``: bands and
        window in ascending order), registers of the configuration that hold once it does."""
        P = self._params
        NB = P.max_bands
        RB = P.max_radius.bit_length()
        nb = cfg.n_bands
        chain = Const(0, 4)
        fails, lows, prev_end = [], [], None
        for b in range(NB - 1):
            # (each band's last step a register: its tests hold from the cycle after step 0,
            # as rlim does, and the band step is step 2 at the earliest)
            rng_t, order_t, end, live = band_tests(m, cfg, b, left, right, rlim, prev_end,
                                                   end_register=True)
            rng, order = Signal(name=f"band_rng{b}"), Signal(name=f"band_ord{b}")
            m.d.sync += [rng.eq(rng_t), order.eq(order_t)]
            prev_end = end
            fails.append((rng, order))
            lows.append(live & (cfg.bands[b].start < 0))
        for rng, order in reversed(fails):
            chain = Mux(rng, regs.Error.BAND_RANGE, Mux(order, regs.Error.BAND_ORDER, chain))
        band_fail = Signal(4)
        m.d.comb += band_fail.eq(chain)
        # slot k: band k below the window, the window at nlow, band k - 1 above it
        nlow = Signal(range(NB))
        m.d.comb += nlow.eq(sum((Mux(x, 1, 0) for x in lows), Const(0, range(NB))))
        for k in range(NB):
            a = Signal(signed(RB + 2), name=f"slot_a{k}")
            span = Signal(RB + 1, name=f"slot_span{k}")
            valid = Signal(name=f"slot_valid{k}")
            reach = Signal(signed(RB + 2), name=f"slot_reach{k}")
            with m.If(k < nlow):
                band = cfg.bands[min(k, NB - 2)]
                m.d.sync += [a.eq(band.start), span.eq(band.count - 1), valid.eq(1)]
            with m.Elif(k == nlow):
                m.d.sync += [a.eq(-left), span.eq(left + right), valid.eq(1)]
            with m.Else():
                band = cfg.bands[max(k - 1, 0)]
                m.d.sync += [a.eq(band.start), span.eq(band.count - 1),
                             valid.eq(nb > max(k - 1, 0) if k >= 1 else 0)]
            m.d.sync += reach.eq(times_small(a, dil, DB))
            sl = job.slots[k]
            m.d.comb += [sl.a.eq(a), sl.reach.eq(reach), sl.span.eq(span), sl.valid.eq(valid)]
        return band_fail
