"""Datapath sub-blocks of the engine: dot-product lanes, scale lanes, exponential, reciprocal,
row maximum and output normalisation. Each is small enough to unit-test in amaranth.sim."""


from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..sw import numerics as nx


def int8_row(width: int) -> data.ArrayLayout:
    return data.ArrayLayout(signed(nx.DATA_WIDTH), width)


def _tree_sum(values: list):
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


class DotLanes(wiring.Component):
    """``width`` int8 x int8 multipliers and an adder tree: ``sum = a . b`` two cycles later.

    Stage 1 registers the products, stage 2 the tree sum (latency 2, one dot product per cycle).
    """

    def __init__(self, width: int):
        self._width = width
        super().__init__({
            "a": In(int8_row(width)),
            "b": In(int8_row(width)),
            "sum": Out(signed(nx.score_width(width))),
        })

    def elaborate(self, platform):
        m = Module()
        prods = [Signal(signed(nx.PRODUCT_WIDTH), name=f"p{i}") for i in range(self._width)]
        for i, p in enumerate(prods):
            m.d.sync += p.eq(self.a[i] * self.b[i])
        m.d.sync += self.sum.eq(_tree_sum(list(prods)))
        return m


class ScaleLanes(wiring.Component):
    """``width`` multipliers of an unsigned exponential by int8 values, registered (latency 1)."""

    def __init__(self, width: int):
        self._width = width
        super().__init__({
            "e": In(unsigned(nx.EXP_WIDTH)),
            "v": In(int8_row(width)),
            "prod": Out(data.ArrayLayout(signed(nx.EXP_WIDTH + nx.DATA_WIDTH), width)),
        })

    def elaborate(self, platform):
        m = Module()
        e = Signal(signed(nx.EXP_WIDTH + 1))
        m.d.comb += e.eq(self.e)
        for i in range(self._width):
            m.d.sync += self.prod[i].eq(e * self.v[i])
        return m


class ExpUnit(wiring.Component):
    """e = 2^-x in EXP_OUT_FRAC fixed point for clamped x in 0..EXP_CUTOFF (latency 1).

    A 256-entry ROM (``numerics.EXP_TABLE``) holds 2^-f; the integer part of x shifts it right.
    ``x = EXP_CUTOFF`` (the clamp of any larger x) gives 0.
    """

    x: In(nx.EXP_IN_WIDTH)
    e: Out(nx.EXP_WIDTH)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(
            shape=unsigned(nx.EXP_WIDTH), depth=len(nx.EXP_TABLE),
            init=[int(v) for v in nx.EXP_TABLE])
        rd = rom.read_port()
        shamt = Signal(nx.EXP_INT_BITS)
        zero = Signal()
        m.d.comb += rd.addr.eq(self.x[:nx.EXP_FRAC_BITS])
        m.d.sync += [
            shamt.eq(self.x[nx.EXP_FRAC_BITS:nx.EXP_FRAC_BITS + nx.EXP_INT_BITS]),
            zero.eq(self.x >= nx.EXP_CUTOFF),
        ]
        m.d.comb += self.e.eq(Mux(zero, 0, rd.data >> shamt))
        return m


class Reciprocal(wiring.Component):
    """R = floor(2^32 / divisor) for divisor in [2^15, 2^16), by restoring division.

    Pulse ``start`` with ``divisor`` valid; ``done`` rises RECIP_WIDTH cycles later and ``quotient``
    holds until the next start. The quotient's top bits are known zero (2^32 >> 18 < divisor), so
    the remainder starts at 2^14 and 18 quotient bits are produced, one per cycle.
    """

    start: In(1)
    divisor: In(nx.SUM_NORM_BITS)
    busy: Out(1)
    done: Out(1)
    quotient: Out(nx.RECIP_WIDTH)

    def elaborate(self, platform):
        m = Module()
        steps = nx.RECIP_WIDTH
        rem = Signal(nx.SUM_NORM_BITS + 1)
        den = Signal(nx.SUM_NORM_BITS)
        count = Signal(range(steps + 1))
        m.d.sync += self.done.eq(0)
        with m.If(self.start):
            m.d.sync += [
                rem.eq(1 << (nx.RECIP_NUM_SHIFT - steps)),
                den.eq(self.divisor),
                count.eq(steps),
                self.busy.eq(1),
                self.quotient.eq(0),
            ]
        with m.Elif(self.busy):
            trial = Signal(nx.SUM_NORM_BITS + 2)
            m.d.comb += trial.eq(rem << 1)
            with m.If(trial >= den):
                m.d.sync += [rem.eq(trial - den), self.quotient.eq(Cat(1, self.quotient))]
            with m.Else():
                m.d.sync += [rem.eq(trial), self.quotient.eq(Cat(0, self.quotient))]
            m.d.sync += count.eq(count - 1)
            with m.If(count == 1):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        return m


class Accumulators(wiring.Component):
    """``width`` registers: ``acc[i] <= (clear ? 0 : acc[i]) + x[i]`` on cycles with ``en``.

    ``in_shape`` and ``acc_shape`` are the shapes of one addend and one accumulator (the widths
    come from the numerics module, which sizes them so that no sum of a job can overflow).
    """

    def __init__(self, in_shape, acc_shape, width: int):
        self._width = width
        super().__init__({
            "en": In(1),
            "clear": In(1),
            "x": In(data.ArrayLayout(in_shape, width)),
            "acc": Out(data.ArrayLayout(acc_shape, width)),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            for i in range(self._width):
                m.d.sync += self.acc[i].eq(Mux(self.clear, 0, self.acc[i]) + self.x[i])
        return m


class RowMax(wiring.Component):
    """Running maximum of valid scores. ``first`` starts a new row from ``init``/``init_valid``
    instead of the held value (so a row can continue from another register)."""

    def __init__(self, width: int):
        super().__init__({
            "en": In(1),
            "first": In(1),
            "init": In(signed(width)),
            "init_valid": In(1),
            "score": In(signed(width)),
            "score_valid": In(1),
            "max": Out(signed(width)),
            "max_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cur = Mux(self.first, self.init, self.max)
        cur_valid = Mux(self.first, self.init_valid, self.max_valid)
        with m.If(self.en):
            take = self.score_valid & (~cur_valid | (self.score > cur))
            m.d.sync += [
                self.max.eq(Mux(take, self.score, cur)),
                self.max_valid.eq(cur_valid | self.score_valid),
            ]
        return m


class Normaliser(wiring.Component):
    """o = sat8(((a >> p) * r + 2^(31 - out_shift)) >> (32 - out_shift)), combinational."""

    def __init__(self, acc_width: int):
        super().__init__({
            "a": In(signed(acc_width)),
            "p": In(range(acc_width + 1)),
            "r": In(nx.RECIP_WIDTH),
            "out_shift": In(nx.OUT_SHIFT_WIDTH),
            "o": Out(signed(nx.DATA_WIDTH)),
        })

    def elaborate(self, platform):
        m = Module()
        an = Signal(signed(nx.NORM_ACC_WIDTH))
        r = Signal(signed(nx.RECIP_WIDTH + 1))
        prod = Signal(signed(nx.NORM_ACC_WIDTH + nx.RECIP_WIDTH + 1))
        sh = Signal(range(nx.RECIP_NUM_SHIFT + 1))
        y = Signal(signed(len(prod) + 1))
        m.d.comb += [
            an.eq(self.a >> self.p),
            r.eq(self.r),
            prod.eq(an * r),
            sh.eq(nx.RECIP_NUM_SHIFT - self.out_shift),
            y.eq((prod + (Const(1 << (nx.RECIP_NUM_SHIFT - 1), 32) >> self.out_shift)) >> sh),
        ]
        with m.If(y > nx.DATA_MAX):
            m.d.comb += self.o.eq(nx.DATA_MAX)
        with m.Elif(y < nx.DATA_MIN):
            m.d.comb += self.o.eq(nx.DATA_MIN)
        with m.Else():
            m.d.comb += self.o.eq(y)
        return m
