"""Datapath sub-blocks of the engine: dot-product lanes, scale lanes, exponential, reciprocal,
row maximum and output normalisation. Each is small enough to unit-test in amaranth.sim."""


from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from . import vendor


def int8_row(width: int) -> data.ArrayLayout:
    return data.ArrayLayout(signed(nx.DATA_WIDTH), width)


def delayed(m: Module, x, name: str, reset_less: bool = False):
    """``x`` a cycle later, from a register named ``name`` (with no reset: datapath)."""
    r = Signal.like(x, name=name, reset_less=reset_less)
    m.d.sync += r.eq(x)
    return r


def registered_product(m: Module, platform, a, b, out, reg_inputs: bool, name: str) -> None:
    """``out`` <= a * b, one cycle after the operands, or two with ``reg_inputs`` (the operands
    registered first). Operands: signed of at most 18 bits or unsigned of at most 17.

    Where the platform's family has a hard multiplier it places itself (:mod:`.vendor`: the
    ECP5's MULT18X18D, :func:`swattn.hw.ecp5.registered_product`) the product is one, with its
    own registers; elsewhere fabric registers around the product, which synthesis maps as it
    likes (the iCE40's SB_MAC16 takes its registers in the same way).
    """
    for x in (a, b):
        sh = x.shape()
        if sh.width > (18 if sh.signed else 17):
            raise ValueError(f"registered_product {name}: operand of {sh} does not fit 18 x 18 "
                             f"signed")
    prims = vendor.primitives(platform)
    if hasattr(prims, "registered_product"):
        prims.registered_product(m, a, b, out, reg_inputs=reg_inputs, name=name)
        return
    if reg_inputs:
        a_r = Signal(a.shape(), name=f"{name}_a", reset_less=True)
        b_r = Signal(b.shape(), name=f"{name}_b", reset_less=True)
        m.d.sync += [a_r.eq(a), b_r.eq(b)]
        a, b = a_r, b_r
    m.d.sync += out.eq(a * b)


def hard_multiplier_bits(platform) -> int:
    """Signed operand bits of the platform's hard multiplier that :func:`registered_product`
    places itself (0: none; synthesis maps the fabric's products)."""
    prims = vendor.primitives(platform)
    return prims.MULTIPLIER_BITS if hasattr(prims, "registered_product") else 0


def _tree_sum(values: list):
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def _registered_tree(m: Module, prods: list, out, latency: int, group: int) -> None:
    """``out`` <= the sum of ``prods`` through ``latency - 2`` registered stages of the adder
    tree: one (``latency`` 3); two (4): sums of ``group`` products, then their sum; three or four
    (5, 6): the tree's levels split as evenly as they go, the first stages taking the smaller
    share (sums of 2^k products registered, then sums of those, ...): the products come from
    multipliers that may lie far apart, so the first stage has the fewest adders behind its
    routing."""
    stages = latency - 2
    if stages == 2:
        splits = [group]
    else:
        levels = max(1, (len(prods) - 1).bit_length())
        shares = [levels // stages + (k >= stages - levels % stages) for k in range(stages)]
        splits = [1 << lv for lv in shares[:-1]]
    vals, width = list(prods), 1
    for st, g in enumerate(splits):
        nxt = []
        for k in range(0, len(vals), g):
            grp = vals[k:k + g]
            part = Signal(signed(nx.score_width(width * len(grp))), reset_less=True,
                          name=f"part{k // g}" if st == len(splits) - 1 else f"part{st}_{k // g}")
            m.d.sync += part.eq(_tree_sum(list(grp)))
            nxt.append(part)
        vals, width = nxt, width * g
    total = Signal.like(out, name="total", reset_less=True)
    m.d.sync += total.eq(_tree_sum(vals))
    m.d.comb += out.eq(total)


class DotLanes(wiring.Component):
    """``width`` int8 x int8 multipliers and an adder tree: ``sum = a . b``, one dot product per
    cycle, ``latency`` cycles after its inputs.

    Stage 1 registers the inputs (they come from a memory: its output never feeds a multiplier
    in the same cycle), stage 2 the products. With ``latency = 3`` stage 3 registers the whole
    tree sum; with ``latency = 4`` (wide units, where one cycle of five or more adder levels would
    limit the clock) stage 3 registers sums of eight products and stage 4 the sum of those;
    ``latency`` 5 and 6 (the adder-tree stages of ``EngineParams.dot_pipeline``) register the
    tree once or twice more, for FPGAs whose multipliers lie far apart.
    """

    GROUP = 8  #: products summed before the mid-tree register (latency 4)
    LATENCIES = (3, 4, 5, 6)

    def __init__(self, width: int, latency: int = 3):
        if latency not in self.LATENCIES:
            raise ValueError(f"DotLanes latency = {latency!r}: allowed 3, 4, 5 or 6")
        self._width = width
        self.latency = latency
        super().__init__({
            "a": In(int8_row(width)),
            "b": In(int8_row(width)),
            "sum": Out(signed(nx.score_width(width))),
        })

    def elaborate(self, platform):
        m = Module()
        prods = [Signal(signed(nx.PRODUCT_WIDTH), name=f"p{i}", reset_less=True)
                 for i in range(self._width)]
        for i, p in enumerate(prods):
            registered_product(m, platform, self.a[i], self.b[i], p, reg_inputs=True,
                               name=f"mul{i}")
        _registered_tree(m, prods, self.sum, self.latency, self.GROUP)
        return m


def lane_groups(width: int) -> int:
    """Groups of :attr:`DotLanes.GROUP` lanes among ``width``: the copies of a value that
    fans out to all lanes (the exponential of :class:`ScaleLanes` and :class:`PairedLanes`, the
    add and clear of :class:`AccumulatorRing`) that those blocks take, lane i using copy
    :func:`lane_group` (i), so that an engine may give each group its own register."""
    return max(1, width // DotLanes.GROUP)


def lane_group(lane: int, width: int) -> int:
    """The copy that ``lane`` of ``width`` takes: its group of 8, the last copy also serving
    the lanes past the last whole group."""
    return min(lane // DotLanes.GROUP, lane_groups(width) - 1)


class ScaleLanes(wiring.Component):
    """``width`` multipliers of an exponential e in 0..2^15 by int8 values, registered (latency 1).

    ``e`` is at most 2^15 (``numerics``): its low 15 bits times v is a signed 16 x 8 product
    (one 16 x 16 or 18 x 18 hard multiplier; the 17-bit signed e would take two on the iCE40),
    and e = 2^15, whose low bits are zero, is v shifted. ``e`` holds :func:`lane_groups` copies of
    the one value, lane i taking copy :func:`lane_group` (i).
    """

    def __init__(self, width: int):
        self._width = width
        super().__init__({
            "e": In(data.ArrayLayout(unsigned(nx.EXP_WIDTH), lane_groups(width))),
            "v": In(int8_row(width)),
            "prod": Out(data.ArrayLayout(signed(nx.EXP_WIDTH + nx.DATA_WIDTH), width)),
        })

    def elaborate(self, platform):
        m = Module()
        if hard_multiplier_bits(platform) >= 18:  # e (16 bits) x v fits one 18 x 18
            for i in range(self._width):
                registered_product(m, platform, self.e[lane_group(i, self._width)], self.v[i],
                                   self.prod[i], reg_inputs=False, name=f"mul{i}")
            return m
        top = nx.EXP_WIDTH - 1
        prod = Signal.like(self.prod, reset_less=True)
        for i in range(self._width):
            e = self.e[lane_group(i, self._width)]
            m.d.sync += prod[i].eq(Mux(e[top], self.v[i] << top, e[:top] * self.v[i]))
        m.d.comb += self.prod.eq(prod)
        return m


class PairedLanes(wiring.Component):
    """:class:`ScaleLanes` whose multipliers also serve as a second set of Q.K lanes.

    With ``dot`` low they are ScaleLanes: ``prod`` = e x v one cycle after ``e`` and ``v``. With
    ``dot`` high (given with ``a`` and ``b``, which are registered with it, as in
    :class:`DotLanes`) they multiply ``a`` by ``b`` and ``sum`` = a . b arrives ``latency``
    cycles after the inputs, as DotLanes' does. The engine raises ``dot`` only while no group is
    in its softmax and P.V stage (the paired max passes before the main pass), so the two uses
    never meet in a cycle. ``e`` holds copies as ScaleLanes' does; ``dot`` is registered once
    per 8 lanes (``dot*_dup``), each copy selecting its own lanes' operands.
    """

    def __init__(self, width: int, latency: int):
        if latency not in DotLanes.LATENCIES:
            raise ValueError(f"PairedLanes latency = {latency!r}: allowed 3, 4, 5 or 6")
        self._width = width
        self.latency = latency
        super().__init__({
            "e": In(data.ArrayLayout(unsigned(nx.EXP_WIDTH), lane_groups(width))),
            "v": In(int8_row(width)),
            "prod": Out(data.ArrayLayout(signed(nx.EXP_WIDTH + nx.DATA_WIDTH), width)),
            "dot": In(1),
            "a": In(int8_row(width)),
            "b": In(int8_row(width)),
            "sum": Out(signed(nx.score_width(width))),
        })

    def elaborate(self, platform):
        m = Module()
        wide = hard_multiplier_bits(platform) >= 18  # e (17 bits signed) fits one multiplier
        dots = [Signal(name=f"dot{g}_dup") for g in range(lane_groups(self._width))]
        a = Signal(int8_row(self._width), reset_less=True)
        b = Signal(int8_row(self._width), reset_less=True)
        m.d.sync += [a.eq(self.a), b.eq(self.b)] + [d.eq(self.dot) for d in dots]
        top = nx.EXP_WIDTH - 1
        prod = None if wide else Signal.like(self.prod, reset_less=True)  # (fabric products)
        nxt = []  # prod's next value per lane (fabric products)
        for i in range(self._width):
            # e in 0..2^15: on the ECP5 the whole e fits the 18 x 18 multiplier; elsewhere its
            # low 15 bits (signed 16 x 8, with a's sign) and e = 2^15 as v shifted
            dot, e = dots[lane_group(i, self._width)], self.e[lane_group(i, self._width)]
            x = Signal(signed(nx.EXP_WIDTH + 1 if wide else nx.EXP_WIDTH), name=f"x{i}")
            y = Signal(signed(nx.DATA_WIDTH), name=f"y{i}")
            m.d.comb += [x.eq(Mux(dot, a[i], e if wide else e[:top])),
                         y.eq(Mux(dot, b[i], self.v[i]))]
            if wide:
                registered_product(m, platform, x, y, self.prod[i], reg_inputs=False,
                                   name=f"mul{i}")
            else:
                p = Signal(signed(nx.EXP_WIDTH + nx.DATA_WIDTH), name=f"p{i}")
                m.d.comb += p.eq(Mux(~dot & e[top], self.v[i] << top, x * y))
                nxt.append(p)
        if not wide:
            # one assignment of the whole row, not one per lane: Yosys writes a wire assembled
            # from per-lane part assigns, which Icarus re-evaluates whole each time one lane's
            # part changes (a 64-lane row took most of the simulation's time)
            m.d.sync += prod.as_value().eq(Cat(*nxt))
            m.d.comb += self.prod.as_value().eq(prod.as_value())
        _registered_tree(m, list(self.prod), self.sum, self.latency, DotLanes.GROUP)
        return m


class ExpUnit(wiring.Component):
    """e = 2^-x in EXP_OUT_FRAC fixed point for clamped x in 0..EXP_CUTOFF, ``latency`` 1 or 2
    cycles after x.

    A 256-entry ROM (``numerics.EXP_TABLE``) holds 2^-f; the integer part of x shifts it right.
    ``x = EXP_CUTOFF`` (the clamp of any larger x) gives 0. With ``latency`` 2 the table's
    output is registered before the shift (a block RAM's data arrives late in the cycle).

    halves : the input is ``z``, twice the argument before rounding (``z_width`` bits, any
        value): e = 2^-x for x = (z + 1) >> 1, 0 once x >= EXP_CUTOFF. The rounding and the clamp
        then sit in the table (:func:`exp_half_table`: 512 entries) and a registered compare
        beside it, and z's low bits are the ROM's address with no logic in front of it.
    """

    LATENCIES = (1, 2)

    def __init__(self, latency: int = 1, *, halves: bool = False, z_width: int | None = None):
        if latency not in self.LATENCIES:
            raise ValueError(f"ExpUnit latency = {latency!r}: allowed 1 or 2")
        in_width = nx.EXP_IN_WIDTH
        if halves:
            in_width = nx.EXP_IN_WIDTH + 1 if z_width is None else z_width
            if in_width < nx.EXP_IN_WIDTH + 1:
                raise ValueError(f"ExpUnit z_width = {z_width!r}: allowed "
                                 f"{nx.EXP_IN_WIDTH + 1} or more (z reaches 2 EXP_CUTOFF)")
        self.latency = latency
        self.halves = halves
        super().__init__({"x": In(in_width), "e": Out(nx.EXP_WIDTH)})

    def elaborate(self, platform):
        m = Module()
        F, I = nx.EXP_FRAC_BITS, nx.EXP_INT_BITS
        table_init = exp_half_table() if self.halves else nx.EXP_TABLE
        m.submodules.rom = rom = memory.Memory(
            shape=unsigned(nx.EXP_WIDTH), depth=len(table_init),
            init=[int(v) for v in table_init])
        rd = rom.read_port()
        shamt = Signal(I, reset_less=True)
        zero = Signal(reset_less=True)
        if self.halves:
            # z = 2 x' (x' before rounding): address z mod 2^(F + 1); the shift is z >> (F + 1)
            # (entry 2^(F + 1) - 1 has the carry of the rounding folded in)
            m.d.comb += rd.addr.eq(self.x[:F + 1])
            m.d.sync += [shamt.eq(self.x[F + 1:F + 1 + I]),
                         zero.eq(self.x >= 2 * nx.EXP_CUTOFF - 1)]
        else:
            m.d.comb += rd.addr.eq(self.x[:F])
            m.d.sync += [shamt.eq(self.x[F:F + I]), zero.eq(self.x >= nx.EXP_CUTOFF)]
        table = rd.data
        if self.latency == 2:
            table = Signal.like(rd.data, name="table", reset_less=True)
            shamt2 = Signal.like(shamt, name="shamt2", reset_less=True)
            zero2 = Signal(name="zero2", reset_less=True)
            m.d.sync += [table.eq(rd.data), shamt2.eq(shamt), zero2.eq(zero)]
            shamt, zero = shamt2, zero2
        m.d.comb += self.e.eq(Mux(zero, 0, table >> shamt))
        return m


def exp_half_table() -> list[int]:
    """ExpUnit's table with ``halves``: entry i (0 <= i < 2^(F + 1)) is 2^-x for x = (i + 1) >> 1
    taken modulo one power of two: EXP_TABLE[(i + 1) >> 1], and for the last entry, where the
    rounding carries into the integer part, EXP_TABLE[0] >> 1 (the shifts compose:
    (t >> 1) >> s = t >> (s + 1))."""
    half = 1 << (nx.EXP_FRAC_BITS + 1)
    return [int(nx.EXP_TABLE[(i + 1) >> 1]) for i in range(half - 1)] + [int(nx.EXP_TABLE[0]) >> 1]


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
    last: Out(1)  #: the cycle before ``done`` (the last step)
    quotient: Out(nx.RECIP_WIDTH)

    def elaborate(self, platform):
        m = Module()
        steps = nx.RECIP_WIDTH
        # (datapath registers, no reset: every quotient bit is shifted in during the steps, so
        # the quotient needs no clearing at the start either)
        rem = Signal(nx.SUM_NORM_BITS + 1, reset_less=True)
        den = Signal(nx.SUM_NORM_BITS, reset_less=True)
        quot = Signal(nx.RECIP_WIDTH, reset_less=True)
        m.d.comb += self.quotient.eq(quot)
        count = Signal(range(steps + 1))
        m.d.sync += self.done.eq(0)
        m.d.comb += self.last.eq(self.busy & (count == 1))
        with m.If(self.start):
            m.d.sync += [
                rem.eq(1 << (nx.RECIP_NUM_SHIFT - steps)),
                den.eq(self.divisor),
                count.eq(steps),
                self.busy.eq(1),
            ]
        with m.Elif(self.busy):
            trial = Signal(nx.SUM_NORM_BITS + 2)
            diff = Signal(nx.SUM_NORM_BITS + 3)  # trial - den; its sign is the compare (one
            m.d.comb += [trial.eq(rem << 1), diff.eq(trial - den)]  # carry chain, not two)
            with m.If(~diff[-1]):
                m.d.sync += [rem.eq(diff), quot.eq(Cat(1, quot))]
            with m.Else():
                m.d.sync += [rem.eq(trial), quot.eq(Cat(0, quot))]
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


class AccumulatorRing(wiring.Component):
    """One unit's P.V accumulators of one bank: ``chunks`` registers of ``width`` accumulators in a
    ring, of which only the head is ever added to (``width`` adders, not ``width * chunks``).

    ``add``: head <- (``clear`` ? 0 : head) + x, and the ring turns by one, so the next chunk is at
    the head (``clear`` is raised only with ``add``, and takes no gate with it: a register of
    the caller's drives the accumulators' adders directly). ``turn`` (without ``add``): the
    ring turns, values unchanged (the epilogue reads the bank chunk after chunk at the head; a
    one-chunk ring ignores it). A key's chunks arrive in order 0 .. chunks - 1 and a read turns
    the ring ``chunks`` times, so chunk 0 is at the head between keys and between reads.
    ``add`` and ``clear`` come as :func:`lane_groups` copies of one value (accumulator i uses
    copy :func:`lane_group` (i)), or with ``per_lane`` as a copy per accumulator.
    """

    def __init__(self, in_shape, acc_shape, width: int, chunks: int, per_lane: bool = False):
        self._width, self._chunks = width, chunks
        self._acc_shape = acc_shape
        self._per_lane = per_lane
        #: copies of add and clear
        self.copies = width if per_lane else lane_groups(width)
        super().__init__({
            "add": In(self.copies),
            "turn": In(1),
            "clear": In(self.copies),
            "x": In(data.ArrayLayout(in_shape, width)),
            "head": Out(data.ArrayLayout(acc_shape, width)),
        })

    def elaborate(self, platform):
        m = Module()
        ring = [Signal(data.ArrayLayout(self._acc_shape, self._width), name=f"chunk{c}",
                       reset_less=True) for c in range(self._chunks)]
        for i in range(self._width):
            g = i if self._per_lane else lane_group(i, self._width)
            add, clear = self.add[g], self.clear[g]
            # (one chunk: a turn changes nothing, the register loads only with add, and x needs
            # no gate either)
            one = self._chunks == 1
            new = Mux(clear, 0, ring[0][i]) + (self.x[i] if one else Mux(add, self.x[i], 0))
            with m.If(add if one else add | self.turn):
                for c in range(self._chunks - 1):
                    m.d.sync += ring[c][i].eq(ring[c + 1][i])
                m.d.sync += ring[-1][i].eq(new)
        m.d.comb += self.head.eq(ring[0])
        return m


class RowMax(wiring.Component):
    """Running maximum of valid scores. ``first`` starts a new row from ``init`` (when
    ``init_valid``) instead of the held value (so a row can continue from another register).

    The value is held a bit wider than the scores (``max_ext``), as ``NONE`` = -2^width (below
    every score) while no valid score has come: validity is part of the value, so one compare
    and one choice make an update (``cur`` = the held value or the init; ``score > cur``; the
    larger), with no valid flags in front of the compare. ``init`` may be another RowMax's
    ``max_ext`` with ``init_valid`` high (``NONE`` then counts as no value, as it should).
    ``max_valid`` is ``max_ext != NONE``.

    ``ext_score``: the score comes with its validity folded in, as ``score`` one bit wider
    (``NONE`` for no score) and no ``score_valid`` port, so that a caller that registers the
    score leaves no choice between the register and the compares.

    Inside, the values are offset binary (the top bit inverted: ``NONE`` is 0, and a signed
    compare is an unsigned one), and the compare is the borrow of ``cur - score`` (the top bit
    of one carry chain's difference, no fix-up of sign bits after it); ``cur`` is a net of its
    own, kept through synthesis, so that the compare and the choice after it share it.
    """

    def __init__(self, width: int, ext_score: bool = False):
        self._width = width
        self._ext_score = ext_score
        #: the held value with no valid score
        self.NONE = -(1 << width)
        ports = {
            "en": In(1),
            "first": In(1),
            "init": In(signed(width + 1)),
            "init_valid": In(1),
            "score": In(signed(width + ext_score)),
            "max": Out(signed(width)),
            "max_valid": Out(1),
            "max_ext": Out(signed(width + 1)),
        }
        if not ext_score:
            ports["score_valid"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        w = self._width
        top = 1 << w  # offset binary: x + 2^w, the top bit of the (w + 1)-bit x inverted

        def offset(x):
            return (x.as_unsigned() ^ top)[:w + 1]
        held = Signal(w + 1, name="held")  # (0: NONE)
        if self._ext_score:
            s_u = offset(self.score)
        else:
            s_x = Signal(signed(w + 1), name="s_x")  # (the score sign-extended)
            m.d.comb += s_x.eq(self.score)
            s_u = Mux(self.score_valid, offset(s_x), 0)
        cur = Signal(w + 1, name="cur", attrs={"keep": 1})
        m.d.comb += cur.eq(Mux(self.first, Mux(self.init_valid, offset(self.init), 0), held))
        diff = Signal(w + 2, name="diff")  # cur - score: its top bit is score > cur
        m.d.comb += diff.eq(cur - s_u)
        with m.If(self.en):
            m.d.sync += held.eq(Mux(diff[-1], s_u, cur))
        m.d.comb += [self.max_ext.eq((held ^ top).as_signed()), self.max.eq(held[:w]),
                     self.max_valid.eq(held != 0)]
        return m


class Normaliser(wiring.Component):
    """o = sat8(((a >> p) * r + 2^(31 - out_shift)) >> (32 - out_shift)), one result per cycle,
    ``LATENCY`` cycles after its inputs.

    Six register stages, so that no cycle holds more than one wide operation: the inputs (and
    ``a`` shifted by p's multiple of 8); the rest of ``a >> p``; two partial products (``a >> p``
    split at bit 16, each small enough for one 18 x 18 hard multiplier, R < 2^17 on its low 17
    bits and R = 2^17 a shift); their sum; the
    shift by ``31 - out_shift`` (eight choices); the rounding (``(z + 1) >> 1`` equals
    ``(x + 2^(k - 1)) >> k`` for ``z = x >> (k - 1)``) and the saturation (``o`` is a register).

    ``dsp_width = 16`` shapes the partial products for 16 x 16 multipliers (the iCE40's SB_MAC16):
    ``a >> p`` split at bit 15 and R's low 15 bits, R's bits 15 and 16 (R in (2^16, 2^17))
    added as shifted copies of ``a >> p`` and summed with the high partial product in a stage
    of its own (:attr:`latency` 7).
    """

    LATENCY = 6
    SPLIT = 16  #: bit at which ``a >> p`` is split for the partial products

    def __init__(self, acc_width: int, dsp_width: int = 18):
        if dsp_width not in (16, 18):
            raise ValueError(f"Normaliser dsp_width = {dsp_width!r}: allowed 16 or 18")
        self._dsp_width = dsp_width
        #: cycles from the inputs to ``o`` (one more with 16-bit multipliers: stage 4a)
        self.latency = self.LATENCY + (dsp_width == 16)
        super().__init__({
            "a": In(signed(acc_width)),
            "p": In(range(acc_width + 1)),
            "r": In(nx.RECIP_WIDTH),
            "out_shift": In(nx.OUT_SHIFT_WIDTH),
            "o": Out(signed(nx.DATA_WIDTH)),
        })

    def elaborate(self, platform):
        m = Module()
        k0 = nx.RECIP_NUM_SHIFT - (1 << nx.OUT_SHIFT_WIDTH)  # 24: the smallest shift - 1
        # stage 1: inputs, the accumulator shifted by p's multiple of 8 (the shift's coarse
        # half: (a >> 8k) >> j is a >> (8k + j))
        # (datapath registers: no reset, like every stage below)
        a1 = Signal.like(self.a, reset_less=True)
        p1 = Signal(3, reset_less=True)
        r1 = Signal.like(self.r, reset_less=True)
        sh1 = Signal.like(self.out_shift, reset_less=True)
        m.d.sync += [a1.eq(self.a >> Cat(Const(0, 3), self.p[3:])), p1.eq(self.p[:3]),
                     r1.eq(self.r), sh1.eq(self.out_shift)]
        # stage 2: the rest of the normalising shift
        an = Signal(signed(nx.NORM_ACC_WIDTH), reset_less=True)
        r2 = Signal.like(self.r, reset_less=True)
        sh2 = Signal.like(self.out_shift, reset_less=True)
        m.d.sync += [an.eq(a1 >> p1), r2.eq(r1), sh2.eq(sh1)]
        # stage 3: partial products with R's low bits (R = 2^17 has them all zero)
        top = nx.RECIP_WIDTH - 1
        split, rbits = (self.SPLIT, top) if self._dsp_width == 18 else (15, 15)
        r_lo = r2[:rbits]
        plo = Signal(split + rbits, name="plo", reset_less=True)
        phi = Signal(signed(nx.NORM_ACC_WIDTH - split + rbits + 1), name="phi", reset_less=True)
        an3 = Signal.like(an, reset_less=True)
        rtop, sh3 = Signal(reset_less=True), Signal.like(self.out_shift, reset_less=True)
        registered_product(m, platform, an[:split], r_lo, plo, reg_inputs=False, name="mlo")
        registered_product(m, platform, an[split:].as_signed(), r_lo, phi, reg_inputs=False,
                           name="mhi")
        m.d.sync += [an3.eq(an), rtop.eq(r2[top]), sh3.eq(sh2)]
        # stage 4: the product
        prod = Signal(signed(nx.NORM_ACC_WIDTH + nx.RECIP_WIDTH + 1), reset_less=True)
        sh4 = Signal.like(self.out_shift, reset_less=True)
        if rbits == top:
            m.d.sync += prod.eq(Mux(rtop, an3 << top, (phi << split) + plo))
        else:
            # R's bits rbits..top-1 times a >> p, as shifted adds (no multiplier) in stage 3,
            # added to the high partial product in a stage of its own (stage 4a)
            mid_w = nx.NORM_ACC_WIDTH + top - rbits
            mid = Signal(signed(mid_w), reset_less=True)
            m.d.sync += mid.eq(sum((Mux(r2[rbits + b], an << b, 0) for b in range(top - rbits)),
                                   Const(0, 1)))
            hi = Signal(signed(max(len(phi), mid_w) + 2), reset_less=True)
            plo4, an4 = Signal.like(plo, reset_less=True), Signal.like(an3, reset_less=True)
            rtop4, sh4a = Signal(reset_less=True), Signal.like(sh3, reset_less=True)
            m.d.sync += [hi.eq(phi + (mid << (rbits - split))), plo4.eq(plo), an4.eq(an3),
                         rtop4.eq(rtop), sh4a.eq(sh3)]
            m.d.sync += prod.eq(Mux(rtop4, an4 << top, (hi << split) + plo4))
            sh3 = sh4a
        m.d.sync += sh4.eq(sh3)
        # stage 5: z = prod >> (31 - out_shift)
        z = Signal(signed(len(prod) - k0 + 1), reset_less=True)
        m.d.sync += z.eq((prod >> k0) >> ~sh4)  # ~sh4 = 7 - out_shift
        # stage 6: round half up, saturate to int8: y = (z + 1) >> 1 above DATA_MAX exactly when
        # z >= 2 DATA_MAX + 1, below DATA_MIN when z <= 2 DATA_MIN - 2; in between y's 8 bits
        # are those of (z mod 2^9 + 1) >> 1. The two tests without carry chains, from z's low 9
        # bits (lo) and the rest (hi): z >= 255 when z >= 0 and (hi != 0 or lo >= 255);
        # z <= -258 when z < 0 and (hi != -1 or lo < 255) (hi = -1: z = lo - 512)
        L = nx.DATA_WIDTH + 1
        assert 2 * nx.DATA_MAX + 1 == (1 << L) - 1 - (1 << (L - 1)) and len(z) > L
        y = Signal(nx.DATA_WIDTH + 2)
        o = Signal.like(self.o, reset_less=True)
        m.d.comb += [y.eq(z[:L] + 1), self.o.eq(o)]
        lo, hi, neg = z[:L], z[L:], z[-1]
        lo_ge = lo[L - 1] | (lo[:L - 1] == (1 << (L - 1)) - 1)  # lo >= 255
        with m.If(~neg & ((hi != 0) | lo_ge)):
            m.d.sync += o.eq(nx.DATA_MAX)
        with m.Elif(neg & ((hi != (1 << len(hi)) - 1) | ~lo_ge)):
            m.d.sync += o.eq(nx.DATA_MIN)
        with m.Else():
            m.d.sync += o.eq(y[1:nx.DATA_WIDTH + 1])
        return m
