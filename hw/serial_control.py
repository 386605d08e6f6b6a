"""The serial engine's job control: start, configuration checks, status and completion.

:class:`SerialControl` gives a configuration the same error codes, in the same order, as the
stream engine's :class:`~swattn.hw.job.JobControl`, so a configuration gets the same verdict on
every board; its steps are its own (the serial engine's cycle model,
:func:`swattn.sw.cycles.predict_serial_cycles`, counts them).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .job import band_tests

#: bytes per buffer word (the iCE40UP's SPRAM is 16 bits wide)
WORD_BYTES = 2


class SerialJobSignature(wiring.Signature):
    """What the serial engine's machines know of the running job (from :class:`SerialControl`):
    ``running`` (the checks passed, the last row is not yet written), ``init`` (a one-cycle
    pulse as the job starts), ``n``, ``ng`` (global count), ``dil``, ``glob`` (the global rows,
    ``seq_width`` bits each), ``reach_l`` (left * dilation) and ``span`` (left + right), both
    registered by the checks, and the softmax and output scaling ``mult_mant``, ``mult_shift``,
    ``out_shift``. With bands beside the window (``max_bands`` > 1): ``nb`` (their count), and
    per band ``b_reach`` (its first step times the dilation, signed) and ``b_span`` (its count
    - 1), registered by the checks."""

    def __init__(self, P: EngineParams):
        NB, GM = P.seq_width, max(1, P.max_globals)
        super().__init__({
            "running": Out(1), "init": Out(1),
            "n": Out(NB + 1), "ng": Out(range(GM + 1)), "dil": Out(P.max_dilation.bit_length()),
            "glob": Out(data.ArrayLayout(unsigned(NB), GM)),
            "reach_l": Out(range(P.max_radius + 1)), "span": Out(range(2 * P.max_radius + 1)),
            "mult_mant": Out(regs.CONFIG_FIELDS["mult_mant"]),
            "mult_shift": Out(regs.CONFIG_FIELDS["mult_shift"]),
            "out_shift": Out(regs.CONFIG_FIELDS["out_shift"]),
            **(band_members(P) if P.max_bands > 1 else {}),
        })


def band_members(P: EngineParams) -> dict:
    """SerialJobSignature's members on engines with bands beside the window."""
    RB, NB = P.max_radius.bit_length(), P.max_bands - 1
    return {"nb": Out(range(NB + 1)), "b_reach": Out(signed(RB + 2)).array(NB),
            "b_span": Out(RB + 1).array(NB)}


class SerialControl(wiring.Component):
    """Start, checks, status and completion of a serial-engine job.

    Per cycle: a ``start`` while BUSY sets error BUSY and changes nothing else; a start otherwise
    enters BUSY, clears the error and the cycle counter and begins the checks, one per cycle:
    step 0 registers each scalar test, step 1 picks the first that fails (so no compare feeds a
    priority chain in the same cycle), step 2 + k checks global k (its range, then whether an
    earlier global has the same index); with bands beside the window, their count is a scalar
    test (after the global count) and one step after the globals' checks every band (its range,
    then its order: below or above the window and above the band before it; the first failing
    band's code), as on the stream engine. A step's outcome acts a cycle later: a failure ends the
    job (state IDLE, its error code); after the last step ``running`` rises and ``init`` pulses a
    cycle later. ``job_end`` (the last row written) sets DONE and lowers ``running``. The
    configuration must hold still while a job runs (the board core refuses WRITE_CONFIG then).
    """

    def __init__(self, params: EngineParams):
        self._params = params
        super().__init__({
            "cfg": In(regs.config_layout(params)),
            "start": In(1), "job_end": In(1),
            "status": Out(regs.STATUS_LAYOUT), "cycles": Out(32),
            "job": Out(SerialJobSignature(params)),
        })

    def elaborate(self, platform):
        P, job, cfg = self._params, self.job, self.cfg
        NB, GM = P.seq_width, max(1, P.max_globals)
        DB = P.max_dilation.bit_length()
        m = Module()
        state = Signal(2)
        error = Signal(4)
        cycles = Signal(32)
        m.d.comb += [self.status.state.eq(state), self.status.error.eq(error),
                     self.cycles.eq(cycles)]
        busy = state == regs.State.BUSY
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        glob = [cfg.globals[i][:NB] for i in range(GM)]
        dil = job.dil
        m.d.comb += [job.n.eq(cfg.n), job.ng.eq(cfg.n_globals), dil.eq(cfg.dilation),
                     job.mult_mant.eq(cfg.mult_mant), job.mult_shift.eq(cfg.mult_shift),
                     job.out_shift.eq(cfg.out_shift)]
        m.d.comb += [job.glob[i].eq(glob[i]) for i in range(GM)]
        reach_l = Signal(range(P.max_radius + 1))  # left * dilation, set by the checks
        span = Signal(range(2 * P.max_radius + 1))  # left + right
        m.d.comb += [job.reach_l.eq(reach_l), job.span.eq(span)]

        checking = Signal()
        running = Signal()
        ci = Signal(range(GM + 4))
        chk_seen, chk_last = Signal(), Signal()
        chk_fail = Signal(4)
        passed = Signal()  # the checks passed
        init = Signal()  # a cycle later, one-cycle pulse: the job starts (a register: the link's
        # start decode reaches the checks in the same cycle)
        m.d.sync += init.eq(passed)
        m.d.comb += [job.running.eq(running), job.init.eq(init)]
        with m.If(self.start):
            with m.If(busy):
                m.d.sync += error.eq(regs.Error.BUSY)
            with m.Else():
                m.d.sync += [state.eq(regs.State.BUSY), error.eq(0), cycles.eq(0),
                             checking.eq(1), ci.eq(0), running.eq(0), chk_seen.eq(0)]
        fail = Signal(4)
        rlim = Array(Const(P.max_radius // k if k else 0, range(P.max_radius + 1))
                     for k in range(1 << DB))[dil]
        gsel = (ci - 2)[:max(1, (GM - 1).bit_length())]
        cur = Array(glob)[gsel]
        f_n, f_dil, f_rad, f_cnt = Signal(), Signal(), Signal(), Signal()
        NBS = P.max_bands - 1  # bands beside the window
        if NBS:
            f_nb = Signal()
            band_fail = self._band_checks(m, cfg, job, rlim, ci)
        # (a start while BUSY is refused above: the checks go on as if it had not come)
        with m.If(checking):
            with m.If(ci == 0):
                m.d.sync += [f_n.eq((cfg.n == 0) | (cfg.n > P.n_max)),
                             f_dil.eq((cfg.dilation == 0) | (cfg.dilation > P.max_dilation)),
                             f_rad.eq((cfg.left > rlim) | (cfg.right > rlim)),
                             f_cnt.eq(cfg.n_globals > P.max_globals)]
                if NBS:
                    m.d.sync += f_nb.eq(cfg.n_bands > NBS)
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
                if NBS:
                    with m.Elif(f_nb):
                        m.d.comb += fail.eq(regs.Error.BAND_COUNT)
            if NBS:  # the bands' step, after the globals'
                with m.Elif(ci == job.ng + 2):
                    m.d.comb += fail.eq(band_fail)
            with m.Else():
                dup = Const(0, 1)
                for j in range(GM):
                    dup = dup | ((j < ci - 2) & (glob[j] == cur))
                with m.If(Array(cfg.globals[i] for i in range(GM))[gsel] >= cfg.n):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_RANGE)
                with m.Elif(dup):
                    m.d.comb += fail.eq(regs.Error.GLOBAL_DUP)
            m.d.sync += [ci.eq(ci + 1), chk_seen.eq(1), chk_fail.eq(fail),
                         chk_last.eq(ci >= job.ng + 1 + int(NBS > 0))]
            with m.If(chk_seen & (chk_fail != 0)):
                m.d.sync += [error.eq(chk_fail), state.eq(regs.State.IDLE), checking.eq(0)]
            with m.Elif(chk_seen & chk_last):
                m.d.sync += [checking.eq(0), running.eq(1)]
                m.d.comb += passed.eq(1)
        with m.If(self.job_end):
            m.d.sync += [state.eq(regs.State.DONE), running.eq(0)]
        return m

    def _band_checks(self, m, cfg, job, rlim, ci):
        """The bands beside the window: each band's range and order tests, registered at step 0
        (``rlim`` = max_radius // dilation), and their first failing band's code (returned:
        range before order, band by band); the job's view of the bands (``nb``, and per band
        ``b_reach`` and ``b_span``, registered at step 0 too)."""
        P = self._params
        NBS, RB, DB = P.max_bands - 1, P.max_radius.bit_length(), P.max_dilation.bit_length()
        nb, left, right, dil = cfg.n_bands, cfg.left, cfg.right, cfg.dilation
        m.d.comb += job.nb.eq(nb[:len(job.nb)])
        fails, prev_end = [], None
        for b in range(NBS):
            start, count = cfg.bands[b].start, cfg.bands[b].count
            rng_t, order_t, end, _ = band_tests(m, cfg, b, left, right, rlim, prev_end)
            rng, order = Signal(name=f"band_rng{b}"), Signal(name=f"band_ord{b}")
            reach = Signal(signed(RB + 2), name=f"band_reach{b}")
            span = Signal(RB + 1, name=f"band_span{b}")
            m.d.comb += [job.b_reach[b].eq(reach), job.b_span[b].eq(span)]
            with m.If(ci == 0):
                # (once the checks pass the band is in range: its steps times the dilation fit)
                a = start[:RB + 2].as_signed()
                m.d.sync += [rng.eq(rng_t), order.eq(order_t),
                             reach.eq(sum((Mux(dil[k], a << k, 0) for k in range(DB)),
                                          Const(0, 1))),
                             span.eq(count - 1)]
            prev_end = end
            fails.append((rng, order))
        chain = Const(0, 4)
        for rng, order in reversed(fails):
            chain = Mux(rng, regs.Error.BAND_RANGE, Mux(order, regs.Error.BAND_ORDER, chain))
        band_fail = Signal(4)
        m.d.comb += band_fail.eq(chain)
        return band_fail
