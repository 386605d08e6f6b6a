"""amaranth.sim unit tests of the datapath sub-blocks (``hw/blocks.py``) against the numerics
module.

Every expected value comes from ``swattn.sw.spec.numerics`` (exp2_neg, reciprocal, normalise_sum,
normalise_output, the width functions) or from plain NumPy / Python integer arithmetic, never from
the block under test. Each test drives many vectors through one simulation (pysim pays per
simulation and per cycle, not per signal), and streaming blocks get a new input every cycle so the
same run checks latency and throughput.
"""

import numpy as np
import pytest
from amaranth.hdl import Cat, ClockSignal, Const, Elaboratable, Fragment, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from swattn.hw import blocks, ecp5
from swattn.sw.spec import numerics as nx

INT8 = (nx.DATA_MIN, nx.DATA_MAX)


class _Ecp5:
    """Stands for an ECP5 platform: the blocks map their products to MULT18X18D instances."""

    family = "ecp5"


class _Mult18x18dModel(Elaboratable):
    """A behavioural MULT18X18D, built from the keyword arguments the blocks give
    ``Instance("MULT18X18D", ...)`` and read the way the ECP5 sysDSP documentation describes the
    primitive: optional A and B input registers, an 18 x 18 product signed per SIGNEDA/SIGNEDB,
    an optional pipeline and an optional output register, each clocked by the named CLKn. It
    rejects any use the blocks do not intend (other clocks, clock enables, resets, shift inputs,
    the C input, one input register without the other, which nextpnr would time as unregistered).
    """

    def __init__(self, kind, **kw):
        assert kind == "MULT18X18D", kind
        self.kw = kw

    def elaborate(self, platform):
        kw, m = self.kw, Module()
        def const(name):
            v = kw[name]
            assert isinstance(v, Const), f"{name} must be a constant, got {v!r}"
            return v.value
        regs = {r: kw.get(f"p_REG_{r}_CLK", "NONE") for r in ("INPUTA", "INPUTB", "INPUTC",
                                                             "PIPELINE", "OUTPUT")}
        assert set(regs.values()) <= {"NONE", "CLK0"}, regs
        assert regs["INPUTA"] == regs["INPUTB"], "A and B registered differently"
        assert regs["INPUTC"] == "NONE" and regs["PIPELINE"] == "NONE", regs
        assert isinstance(kw["i_CLK0"], ClockSignal) and kw["i_CLK0"].domain == "sync"
        assert const("i_CE0") == 1 and const("i_RST0") == 0
        assert const("i_SOURCEA") == 0 and const("i_SOURCEB") == 0
        # SOURCEB = 0 picks the B input in the default SOURCEB_MODE, B_SHIFT (Project Trellis
        # knows no other value that ecppack accepts here)
        assert kw.get("p_SOURCEB_MODE", "B_SHIFT") == "B_SHIFT"
        assert kw.get("p_MULT_BYPASS") == "DISABLED"
        assert all(const(f"i_C{k}") == 0 for k in range(18))
        a, b = Cat(*[kw[f"i_A{k}"] for k in range(18)]), Cat(*[kw[f"i_B{k}"] for k in range(18)])
        if regs["INPUTA"] == "CLK0":
            a_r, b_r = Signal(18), Signal(18)
            m.d.sync += [a_r.eq(a), b_r.eq(b)]
            a, b = a_r, b_r
        a = a.as_signed() if const("i_SIGNEDA") else a
        b = b.as_signed() if const("i_SIGNEDB") else b
        p = Signal(signed(36))
        if regs["OUTPUT"] == "CLK0":
            m.d.sync += p.eq(a * b)
        else:
            m.d.comb += p.eq(a * b)
        m.d.comb += [kw[f"o_P{k}"].eq(p[k]) for k in range(36)]
        return m


@pytest.fixture(params=["generic", "ecp5"])
def platform(request, monkeypatch):
    """Each product-carrying block is tested as elaborated for any target and for the ECP5 (its
    MULT18X18D instances replaced by the behavioural model above)."""
    if request.param == "generic":
        return None
    monkeypatch.setattr(ecp5, "Instance", _Mult18x18dModel)
    return _Ecp5()


def _simulate(dut, testbench, clock=True, platform=None):
    sim = Simulator(Fragment.get(dut, platform) if platform is not None else dut)
    if clock:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def _int8_vectors(rng, count: int, width: int) -> np.ndarray:
    """``count`` int8 vectors: uniform, drawn from the extremes {-128, -1, 0, 1, 127}, and mixed."""
    uniform = rng.integers(nx.DATA_MIN, nx.DATA_MAX + 1, size=(count, width))
    extreme = rng.choice(np.array([nx.DATA_MIN, -1, 0, 1, nx.DATA_MAX]), size=(count, width))
    pick = rng.random((count, width)) < 0.5
    return np.where(pick, uniform, extreme).astype(np.int64)


# --- DotLanes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("width,latency", [
    (5, 3), (128, 3),  # odd (the adder tree carries one), full head dim
    (5, 4), (20, 4), (128, 4),  # pipelined tree: one partial group, a short last group, 16 groups
    (32, 5), (20, 5), (5, 6), (64, 6),  # EngineParams.dot_pipeline: three and four tree stages
])
def test_dot_lanes_latency_one_per_cycle(width, latency, platform):
    rng = np.random.default_rng(1000 + width)
    def full(v):
        return np.full(width, v, dtype=np.int64)

    alt = np.resize(np.array([nx.DATA_MIN, nx.DATA_MAX]), width).astype(np.int64)
    directed = [
        (full(nx.DATA_MIN), full(nx.DATA_MIN)),  # the largest score, +width * 2^14
        (full(nx.DATA_MAX), full(nx.DATA_MAX)),
        (full(nx.DATA_MIN), full(nx.DATA_MAX)),  # the most negative score
        (full(nx.DATA_MAX), full(nx.DATA_MIN)),
        (alt, alt), (alt, -alt - 1), (full(0), full(nx.DATA_MIN)), (full(-1), full(nx.DATA_MIN)),
        (full(nx.DATA_MIN), full(nx.DATA_MIN)),  # the same result twice in a row
    ]
    n_random = 400
    a = np.concatenate([np.stack([d[0] for d in directed]), _int8_vectors(rng, n_random, width)])
    b = np.concatenate([np.stack([d[1] for d in directed]), _int8_vectors(rng, n_random, width)])
    expected = (a * b).sum(axis=1)
    assert expected[0] == width << (nx.PRODUCT_WIDTH - 2)
    assert expected[2] == width * nx.DATA_MIN * nx.DATA_MAX
    dut = blocks.DotLanes(width, latency)
    assert len(dut.sum) == nx.score_width(width)
    zeros = [0] * width

    async def tb(ctx):
        # latency: one vector, then zeros; the sum appears after exactly `latency` edges
        ctx.set(dut.a, a[0].tolist())
        ctx.set(dut.b, b[0].tolist())
        await ctx.tick()
        ctx.set(dut.a, zeros)
        ctx.set(dut.b, zeros)
        for _ in range(latency - 1):
            assert ctx.get(dut.sum) == 0
            await ctx.tick()
        assert ctx.get(dut.sum) == expected[0]
        await ctx.tick()
        assert ctx.get(dut.sum) == 0
        # throughput: a new vector every cycle; after the edge that took vector i, the output
        # holds the result of vector i + 1 - latency
        for i in range(len(a) + latency - 1):
            if i < len(a):
                ctx.set(dut.a, a[i].tolist())
                ctx.set(dut.b, b[i].tolist())
            await ctx.tick()
            j = i + 1 - latency
            want = expected[j] if 0 <= j < len(a) else 0
            assert ctx.get(dut.sum) == want, f"vector {j}"

    _simulate(dut, tb, platform=platform)


# --- ScaleLanes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [3, 16, 20])
def test_scale_lanes_latency_1(width, platform):
    """Products of each lane's copy of e (lane i: copy i // 8; the copies differ here) by its
    v, against plain integer products, one cycle later."""
    rng = np.random.default_rng(2000 + width)
    e_max = 1 << nx.EXP_OUT_FRAC  # the block's range of e is the numerics': 0..2^15
    copies = max(1, width // 8)
    e = np.concatenate([
        np.repeat([[e_max], [e_max], [0], [1], [e_max - 1], [e_max - 1], [e_max], [1 << 14]],
                  copies, axis=1),
        rng.integers(0, e_max + 1, size=(400, copies)),
    ]).astype(np.int64)
    v = _int8_vectors(rng, len(e), width)
    v[0], v[1], v[4], v[5] = nx.DATA_MIN, nx.DATA_MAX, nx.DATA_MIN, nx.DATA_MAX
    lane_e = e[:, np.minimum(np.arange(width) // 8, copies - 1)]
    expected = lane_e * v  # plain integer products
    dut = blocks.ScaleLanes(width)
    assert blocks.lane_groups(width) == copies

    async def tb(ctx):
        prev = [0] * width
        for i in range(len(e)):
            ctx.set(dut.e, e[i].tolist())
            ctx.set(dut.v, v[i].tolist())
            assert list(ctx.get(dut.prod)) == prev, f"combinational path at vector {i}"
            await ctx.tick()
            prev = expected[i].tolist()
            assert list(ctx.get(dut.prod)) == prev, f"vector {i}: e={e[i]} v={v[i].tolist()}"

    _simulate(dut, tb, platform=platform)


# --- PairedLanes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width,latency", [(3, 3), (16, 4), (20, 4), (32, 5), (20, 6)])
def test_paired_lanes_scale_and_dot_interleaved(width, latency, platform):
    """Cycle by cycle, at random, e x v products (e up to 2^15, the shifted case included) or
    a . b dot products (a and b taken with ``dot``, a cycle before the multipliers use them):
    each product and each sum against plain integer arithmetic, at the documented latency. The
    copies of e differ (lane i takes copy min(i // 8, copies - 1))."""
    rng = np.random.default_rng(2500 + width)
    cycles = 500
    e_max = 1 << nx.EXP_OUT_FRAC
    copies = max(1, width // 8)
    e = rng.integers(0, e_max + 1, size=(cycles, copies)).astype(np.int64)
    e[rng.random((cycles, copies)) < 0.15] = e_max
    lane_e = e[:, np.minimum(np.arange(width) // 8, copies - 1)]
    v, a, b = (_int8_vectors(rng, cycles, width) for _ in range(3))
    dot = (rng.random(cycles) < 0.5).astype(np.int64)
    dot[:3] = 0
    dot[10:14] = 1  # back to back
    # after edge t the multipliers hold the product of what they saw in cycle t: a . b lanes
    # of cycle t - 1 when that cycle raised dot, else e x v of cycle t
    prod = np.zeros((cycles, width), dtype=np.int64)
    for t in range(cycles):
        prod[t] = a[t - 1] * b[t - 1] if t and dot[t - 1] else lane_e[t] * v[t]
    lag = latency - 2  # the adder tree's registers after the products'
    # (the sum of e x v products is not used and overflows the score width: not checked)
    sums = {t: int(prod[t - lag].sum()) for t in range(lag + 1, cycles) if dot[t - lag - 1]}
    dut = blocks.PairedLanes(width, latency)

    async def tb(ctx):
        for t in range(cycles):
            ctx.set(dut.e, e[t].tolist())
            ctx.set(dut.v, v[t].tolist())
            ctx.set(dut.a, a[t].tolist())
            ctx.set(dut.b, b[t].tolist())
            ctx.set(dut.dot, int(dot[t]))
            await ctx.tick()
            assert list(ctx.get(dut.prod)) == prod[t].tolist(), f"products after edge {t}"
            if t in sums:
                assert ctx.get(dut.sum) == sums[t], f"sum after edge {t}"
        # a dot product's sum arrives `latency` edges after its inputs, as DotLanes' does
        for s in np.flatnonzero(dot[:cycles - latency]):
            assert sums[s + latency - 1] == int((a[s] * b[s]).sum())
        assert len(sums) > cycles // 3

    _simulate(dut, tb, platform=platform)


# --- ExpUnit -------------------------------------------------------------------------------------

@pytest.mark.parametrize("latency", [1, 2])
def test_exp_unit_exhaustive(latency):
    rng = np.random.default_rng(3000)
    full = np.arange(nx.EXP_CUTOFF + 1)  # the clamped input range, 0..EXP_CUTOFF
    above = np.array([nx.EXP_CUTOFF + 1, nx.EXP_CUTOFF + 255, nx.EXP_CUTOFF + 256, 6000,
                      (1 << nx.EXP_IN_WIDTH) - 1])
    # in order, then shuffled (neighbours far apart, so a latency error cannot hide behind
    # equal neighbouring outputs), then the out-of-range values
    xs = np.concatenate([full, rng.permutation(full), above]).astype(np.int64)
    expected = nx.exp2_neg(xs).tolist()
    assert expected[0] == 1 << nx.EXP_OUT_FRAC and expected[nx.EXP_CUTOFF] == 0
    assert sum(expected[:nx.EXP_CUTOFF]) > 0 and not any(expected[-len(above):])
    xs = xs.tolist()
    dut = blocks.ExpUnit(latency)

    async def tb(ctx):
        # e of the x given `latency` edges ago, and unchanged until the next edge
        for i, x in enumerate(xs + [0] * (latency - 1)):
            ctx.set(dut.x, x)
            if i >= latency:
                assert ctx.get(dut.e) == expected[i - latency], "output changed before the edge"
            await ctx.tick()
            if i + 1 >= latency:
                got, want = ctx.get(dut.e), expected[i + 1 - latency]
                assert got == want, f"x={xs[i + 1 - latency]}: e={got}, expected {want}"

    _simulate(dut, tb)


@pytest.mark.parametrize("latency", [1, 2])
def test_exp_unit_halves_exhaustive(latency):
    """ExpUnit(halves=True) takes z, twice the argument before rounding: e = exp2_neg((z + 1) >> 1)
    for every z up to past the clamp, and far above it (the engine's z is 30 bits and more)."""
    rng = np.random.default_rng(3001)
    zw = 24
    full = np.arange(2 * nx.EXP_CUTOFF + 2)  # through the clamp (z = 2 CUTOFF - 1 gives 0)
    above = np.array([2 * nx.EXP_CUTOFF + 511, 2 * nx.EXP_CUTOFF + 512, 3 << 13, 1 << 14,
                      (1 << 14) + 511, (1 << 20) + 5, (1 << zw) - 1])
    zs = np.concatenate([full, rng.permutation(full), above]).astype(np.int64)
    expected = nx.exp2_neg((zs + 1) >> 1).tolist()
    # the half steps: z = 1 rounds up to x = 1, z = 511 to x = 256 (the carry into the shift)
    assert expected[1] == expected[2] < expected[0] and expected[511] == expected[512]
    assert sum(expected[:2 * nx.EXP_CUTOFF - 1]) > 0 and not any(expected[-len(above):])
    # without the clamp, z = 2^14 would read entry 0 unshifted (2^15)
    zs = zs.tolist()
    dut = blocks.ExpUnit(latency, halves=True, z_width=zw)

    async def tb(ctx):
        for i, z in enumerate(zs + [0] * (latency - 1)):
            ctx.set(dut.x, z)
            await ctx.tick()
            if i + 1 >= latency:
                got, want = ctx.get(dut.e), expected[i + 1 - latency]
                assert got == want, f"z={zs[i + 1 - latency]}: e={got}, expected {want}"

    _simulate(dut, tb)


def test_exp_unit_rejects_narrow_z():
    with pytest.raises(ValueError, match="z_width = 13: allowed 14 or more"):
        blocks.ExpUnit(1, halves=True, z_width=13)


# --- Reciprocal ----------------------------------------------------------------------------------

def test_reciprocal_timing_and_values():
    rng = np.random.default_rng(4000)
    lo, hi = 1 << (nx.SUM_NORM_BITS - 1), (1 << nx.SUM_NORM_BITS) - 1
    edges = [lo, lo + 1, lo + 2, hi, hi - 1, hi - 2, 3 << (nx.SUM_NORM_BITS - 2), 0xAAAA, 0xD555]
    divisors = np.concatenate([edges, rng.integers(lo, hi + 1, size=2000)]).astype(np.int64)
    expected = nx.reciprocal(divisors).tolist()
    assert expected[0] == 1 << (nx.RECIP_NUM_SHIFT - nx.SUM_NORM_BITS + 1)  # 2^17 fits 18 bits
    idles = rng.integers(0, 3, size=len(divisors)).tolist()  # 0: next start right after done
    junk = rng.integers(0, 1 << nx.SUM_NORM_BITS, size=len(divisors)).tolist()
    divisors = divisors.tolist()
    n_detailed = 60  # check busy/done on every cycle for these; only the done edge for the rest
    dut = blocks.Reciprocal()

    async def tb(ctx):
        assert ctx.get(dut.busy) == 0 and ctx.get(dut.done) == 0
        for i, (d, want) in enumerate(zip(divisors, expected)):
            ctx.set(dut.start, 1)
            ctx.set(dut.divisor, d)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.divisor, junk[i])  # the divisor is latched at start
            if i < n_detailed:
                for cycle in range(1, nx.RECIP_WIDTH):
                    assert ctx.get(dut.busy) == 1, f"divisor {d}: busy low at cycle {cycle}"
                    assert ctx.get(dut.done) == 0, f"divisor {d}: done early at cycle {cycle}"
                    await ctx.tick()
            else:
                await ctx.tick().repeat(nx.RECIP_WIDTH - 1)
                assert ctx.get(dut.done) == 0, f"divisor {d}: done early"
            await ctx.tick()
            assert ctx.get(dut.done) == 1, f"divisor {d}: done late (>{nx.RECIP_WIDTH} cycles)"
            assert ctx.get(dut.busy) == 0
            got = ctx.get(dut.quotient)
            assert got == want, f"divisor {d}: quotient {got}, expected {want}"
            # done is a one-cycle pulse and the quotient holds until the next start
            for _ in range(idles[i]):
                ctx.set(dut.divisor, junk[-1 - i])
                await ctx.tick()
                assert ctx.get(dut.done) == 0 and ctx.get(dut.busy) == 0
                assert ctx.get(dut.quotient) == want, f"divisor {d}: quotient did not hold"
        # a long idle stretch at the end
        for _ in range(5):
            await ctx.tick()
            assert ctx.get(dut.quotient) == expected[-1] and ctx.get(dut.done) == 0

    _simulate(dut, tb)


# --- AccumulatorRing -----------------------------------------------------------------------------

@pytest.mark.parametrize("chunks,width,per_lane", [(1, 3, False), (3, 3, False), (8, 3, False),
                                                    (3, 20, False), (1, 20, True), (3, 20, True)])
def test_accumulator_ring(chunks, width, per_lane):
    """Keys arrive as ``chunks`` consecutive adds (chunk 0 first), rows start with clear, idle
    cycles and whole-bank reads (``chunks`` turns) come in between; the head must always be the
    running sum of the chunk whose turn it is. Reference: a list of per-chunk sums in Python.
    (Width 20: add and clear as three copies, or twenty per lane, all driven alike.)"""
    rng = np.random.default_rng(6100 + chunks + width)
    in_shape, acc_shape, x_min, x_max = _acc_config("acc", 255)
    dut = blocks.AccumulatorRing(in_shape, acc_shape, width, chunks, per_lane=per_lane)
    assert dut.copies == (width if per_lane else blocks.lane_groups(width))
    copies = (1 << dut.copies) - 1  # every copy of add / clear
    # program of (add, turn, clear, x): rows of up to 40 keys with the worst-case values
    program = []
    for row in range(8):
        keys = int(rng.integers(1, 41)) if row else 255  # first row: n_max keys, all extreme
        for k in range(keys):
            for c in range(chunks):
                while rng.random() < 0.1:  # idle: x must be ignored (clear comes only with add)
                    program.append((0, 0, 0, [x_max] * width))
                x = ([x_max, x_min, x_max] * (width // 3) + [x_max] * (width % 3) if row == 0 else
                     rng.integers(x_min, x_max + 1, size=width).tolist())
                program.append((1, int(rng.random() < 0.5), int(k == 0), x))
        for c in range(chunks):  # the epilogue reads the bank: one turn per chunk
            program.append((0, 1, 0, [x_min] * width))

    async def tb(ctx):
        sums = [[0] * width for _ in range(chunks)]  # logical chunk -> sums
        head = 0  # logical chunk at the head
        extremes = set()
        for i, (add, turn, clear, x) in enumerate(program):
            got = [ctx.get(dut.head[j]) for j in range(width)]
            assert got == sums[head], f"step {i}: head {got}, expected chunk {head} {sums[head]}"
            extremes.update(v for v in got if v in (255 * x_max, 255 * x_min))
            ctx.set(dut.add, add * copies)
            ctx.set(dut.turn, turn)
            ctx.set(dut.clear, clear * copies)
            ctx.set(dut.x, x)
            await ctx.tick()
            if add:
                sums[head] = [(0 if clear else s) + v for s, v in zip(sums[head], x)]
            if add or turn:
                head = (head + 1) % chunks
        # the worst-case row's sums (the bounds of acc_width at n_max 255) were at the head
        assert extremes == {255 * x_max, 255 * x_min}

    _simulate(dut, tb)


# --- RowMax --------------------------------------------------------------------------------------

def _rowmax_program(rng, width: int, cycles: int):
    """Per-cycle inputs (en, first, init, init_valid, score, score_valid), directed then random."""
    smin, smax = -(1 << (width - 1)), (1 << (width - 1)) - 1
    ops = [
        # a row of only the most negative score: valid, and equal to the minimum
        (1, 1, 0, 0, smin, 1), (1, 0, 0, 0, smin, 1), (1, 0, smax, 1, smax, 0),
        # a row with nothing valid (init and scores invalid), then the first valid score
        (1, 1, smax, 0, smax, 0), (1, 0, 0, 0, smax, 0), (1, 0, 0, 0, -5, 1),
        (1, 0, 0, 0, smin, 1), (1, 0, 0, 0, smax, 1), (1, 0, 0, 0, smax - 1, 1),
        # en low: first, valid scores and inits are all ignored
        (0, 1, smin, 1, smin, 1), (0, 0, 0, 0, smax, 1),
        # first with a valid init and no score; then scores below it; then equal; then above
        (1, 1, -7, 1, smax, 0), (1, 0, 0, 0, -8, 1), (1, 0, 0, 0, -7, 1), (1, 0, 0, 0, -6, 1),
        # first with an init below the first score of the row, both valid
        (1, 1, smin, 1, smin + 1, 1), (1, 0, 0, 0, smin, 1),
        # first with an invalid init that is above everything: it must not count
        (1, 1, smax, 0, smin, 1), (1, 0, 0, 0, smin, 1),
    ]
    pool = np.array([smin, smin + 1, -1, 0, 1, smax - 1, smax])
    for _ in range(cycles):
        if rng.random() < 0.3:
            score = int(rng.choice(pool))
        elif rng.random() < 0.3:
            score = int(rng.integers(-4, 5))  # ties
        else:
            score = int(rng.integers(smin, smax + 1))
        init = int(rng.choice(pool)) if rng.random() < 0.3 else int(rng.integers(smin, smax + 1))
        ops.append((int(rng.random() < 0.85), int(rng.random() < 0.12), init,
                    int(rng.random() < 0.5), score, int(rng.random() < 0.6)))
    return ops


@pytest.mark.parametrize("ext_score", [False, True])
@pytest.mark.parametrize("width", [nx.score_width(32), nx.SCORE_WIDTH])
def test_row_max(width, ext_score):
    """``ext_score``: the score's validity folded into a score a bit wider (NONE = no score)."""
    rng = np.random.default_rng(5000 + width)
    ops = _rowmax_program(rng, width, 2500)
    dut = blocks.RowMax(width, ext_score=ext_score)

    async def tb(ctx):
        row = []  # the valid values of the current row: the reference is max(row)
        last_rows = []  # (max, valid) at the end of earlier rows, to chain from
        assert ctx.get(dut.max_valid) == 0
        for i, (en, first, init, init_valid, score, score_valid) in enumerate(ops):
            # chaining: half of the rows that start from an init continue an earlier row
            if en and first and last_rows and i % 2:
                init, init_valid = last_rows[-1]
            ctx.set(dut.en, en)
            ctx.set(dut.first, first)
            ctx.set(dut.init, init)
            ctx.set(dut.init_valid, init_valid)
            if ext_score:
                ctx.set(dut.score, score if score_valid else -(1 << width))
            else:
                ctx.set(dut.score, score)
                ctx.set(dut.score_valid, score_valid)
            await ctx.tick()
            if en:
                if first:
                    last_rows.append((max(row) if row else 0, int(bool(row))))
                    row = [init] if init_valid else []
                if score_valid:
                    row.append(score)
            where = f"cycle {i}: {ops[max(0, i - 3):i + 1]}"
            assert ctx.get(dut.max_valid) == int(bool(row)), where
            if row:
                assert ctx.get(dut.max) == max(row), where

    _simulate(dut, tb)


@pytest.mark.parametrize("via", ["flags", "ext"])
def test_row_max_chained_rows(via):
    """A row split in two segments, the second started with ``first`` from the first's result,
    gives the maximum of the whole row (the engine continues a row from another register: its
    ``max_ext`` with ``init_valid`` high, where a segment with no valid score is NONE; "flags"
    chains ``max`` and ``max_valid`` instead)."""
    width = nx.SCORE_WIDTH
    rng = np.random.default_rng(5100)
    smin, smax = -(1 << (width - 1)), (1 << (width - 1)) - 1
    segments = []
    for _ in range(40):
        n1, n2 = rng.integers(0, 6, size=2)
        segments.append((rng.integers(smin, smax + 1, size=(n1, 2)),
                         rng.integers(smin, smax + 1, size=(n2, 2))))
    dut = blocks.RowMax(width)

    async def feed(ctx, seg, first_init):
        # first cycle starts the row (from first_init); a score column < 0 marks it invalid
        for j, (score, flag) in enumerate(seg.tolist()):
            ctx.set(dut.en, 1)
            ctx.set(dut.first, j == 0)
            ctx.set(dut.init, first_init[0])
            ctx.set(dut.init_valid, first_init[1])
            ctx.set(dut.score, score)
            ctx.set(dut.score_valid, flag >= 0)
            await ctx.tick()

    async def tb(ctx):
        for seg1, seg2 in segments:
            if len(seg1) == 0 or len(seg2) == 0:
                continue
            await feed(ctx, seg1, (smax, 0))
            if via == "ext":
                part = (ctx.get(dut.max_ext), 1)
                assert (part[0] == dut.NONE) == (ctx.get(dut.max_valid) == 0)
            else:
                part = (ctx.get(dut.max), ctx.get(dut.max_valid))
            await feed(ctx, seg2, part)
            valid = [s for s, f in np.concatenate([seg1, seg2]).tolist() if f >= 0]
            assert ctx.get(dut.max_valid) == int(bool(valid))
            if valid:
                assert ctx.get(dut.max) == max(valid)

    _simulate(dut, tb)


# --- Accumulators --------------------------------------------------------------------------------

def _acc_config(kind: str, n_max: int):
    """(in_shape, acc_shape, smallest addend, largest addend) as the engine uses them: the row sum
    S of exponentials e in 0..2^15, or A_j of products e * v with v int8."""
    e_max = 1 << nx.EXP_OUT_FRAC
    if kind == "sum":
        return unsigned(nx.EXP_WIDTH), unsigned(nx.sum_width(n_max)), 0, e_max
    return (signed(nx.EXP_WIDTH + nx.DATA_WIDTH), signed(nx.acc_width(n_max)),
            e_max * nx.DATA_MIN, e_max * nx.DATA_MAX)


@pytest.mark.parametrize("kind,n_max", [("sum", 128), ("sum", 255), ("acc", 128), ("acc", 255)])
def test_accumulators(kind, n_max):
    rng = np.random.default_rng(6000 + n_max + (kind == "acc"))
    lanes = 4
    in_shape, acc_shape, x_min, x_max = _acc_config(kind, n_max)
    dut = blocks.Accumulators(in_shape, acc_shape, lanes)

    # Worst-case rows of n_max keys (lane 0 all largest, lane 1 all smallest, lane 2 alternating,
    # lane 3 random), then random rows of up to n_max keys with en low on random cycles. A row's
    # first enabled cycle has clear. Values: (en, clear, x[lanes]).
    program = []
    for _ in range(2):
        alt = [x_max, x_min] * (n_max // 2) + [x_max] * (n_max % 2)
        for k in range(n_max):
            x = [x_max, x_min, alt[k], int(rng.integers(x_min, x_max + 1))]
            program.append((1, int(k == 0), x))
            if rng.random() < 0.1:  # en low: clear and x must be ignored
                program.append((0, int(rng.random() < 0.5), [x_min, x_max, x_max, x_min]))
    for _ in range(12):
        length = int(rng.integers(1, n_max + 1))
        xs = rng.integers(x_min, x_max + 1, size=(length, lanes))
        if rng.random() < 0.3:
            xs[:, rng.integers(lanes)] = rng.choice([x_min, x_max])
        for k in range(length):
            while rng.random() < 0.15:
                program.append((0, int(rng.random() < 0.5), rng.integers(x_min, x_max + 1,
                                                                          size=lanes).tolist()))
            program.append((1, int(k == 0), xs[k].tolist()))
    # the expected sums reach the bounds the numerics module sizes the accumulators for
    hi = n_max * x_max
    lo = n_max * x_min
    if kind == "sum":
        assert hi.bit_length() == nx.sum_width(n_max)
    else:
        assert max(hi.bit_length(), (-lo - 1).bit_length()) + 1 <= nx.acc_width(n_max)
        assert -lo == n_max << (nx.EXP_OUT_FRAC + nx.DATA_WIDTH - 1)

    async def tb(ctx):
        sums = [0] * lanes  # Python integers: the reference
        seen = {"hi": False, "lo": False}
        for i, (en, clear, x) in enumerate(program):
            ctx.set(dut.en, en)
            ctx.set(dut.clear, clear)
            ctx.set(dut.x, x)
            await ctx.tick()
            if en:
                sums = [(0 if clear else s) + v for s, v in zip(sums, x)]
            got = list(ctx.get(dut.acc))
            assert got == sums, f"cycle {i} (en={en} clear={clear} x={x})"
            seen["hi"] |= hi in sums
            seen["lo"] |= lo in sums
        assert seen["hi"] and seen["lo"]

    _simulate(dut, tb)


# --- Normaliser ----------------------------------------------------------------------------------

def _normaliser_vectors(rng, n_max: int, count: int):
    """(a, p, r, out_shift) arrays for rows of up to n_max keys: S, then p and R from the numerics
    module, A anywhere in [-128 S, 127 S] (A / S is a convex combination of int8 values)."""
    s_lo, s_hi = 1 << nx.EXP_OUT_FRAC, n_max << nx.EXP_OUT_FRAC
    # S log-uniform over its range, plus its edges and the p = 0 / p = 1 boundary
    s = np.exp2(rng.uniform(np.log2(s_lo), np.log2(s_hi), size=count)).astype(np.int64)
    edges = np.array([s_lo, s_lo + 1, (1 << nx.SUM_NORM_BITS) - 1, 1 << nx.SUM_NORM_BITS, s_hi,
                      s_hi - 1])
    s = np.clip(np.concatenate([edges, edges, edges, s]), s_lo, s_hi)
    a = rng.integers(nx.DATA_MIN * s, nx.DATA_MAX * s + 1)
    # extremes of A: both ends of the range, zero, +-1, and small values near rounding ties
    k = len(edges)
    a[:k] = nx.DATA_MIN * s[:k]
    a[k:2 * k] = nx.DATA_MAX * s[k:2 * k]
    a[2 * k:3 * k] = rng.choice([0, 1, -1], size=k)
    small = slice(3 * k, 3 * k + count // 4)
    a[small] = rng.integers(-(1 << 18), 1 << 18, size=a[small].shape)
    p, sn = nx.normalise_sum(s)
    r = nx.reciprocal(sn)
    out_shift = rng.integers(0, 1 << nx.OUT_SHIFT_WIDTH, size=len(s))
    return a, p, r, out_shift


def _normaliser_ties():
    """Exact half-way cases (S = 2^15, so p = 0 and R = 2^17): A / 2^(15 - out_shift) = k + 1/2,
    where half-up rounding and floor or half-even rounding differ; and the whole values and
    halves around the saturation bounds (-129, -128.5, -128, 127, 127.5, 128: each side of the
    saturation tests)."""
    rows = []
    r = 1 << (nx.RECIP_NUM_SHIFT - nx.EXP_OUT_FRAC)
    for out_shift in range(1 << nx.OUT_SHIFT_WIDTH):
        unit = 1 << (nx.EXP_OUT_FRAC - out_shift)
        for k in (-130, -129, -128, -3, -2, -1, 0, 1, 2, 126, 127, 128):
            rows.append((k * unit + unit // 2, 0, r, out_shift))
        for k in (-130, -129, -128, 127, 128):
            rows.append((k * unit, 0, r, out_shift))
    return [np.array(c, dtype=np.int64) for c in zip(*rows)]


@pytest.mark.parametrize("dsp_width", [18, 16])  # ECP5 multipliers; the iCE40's (serial engine)
@pytest.mark.parametrize("n_max", [17, 131071])  # small rows; the largest row (S at 32 bits)
def test_normaliser(n_max, dsp_width, platform):
    rng = np.random.default_rng(7000 + n_max)
    acc_width = nx.acc_width(n_max)
    a, p, r, out_shift = _normaliser_vectors(rng, n_max, 1500)
    ta, tp, tr, tsh = _normaliser_ties()
    # the same rows at every out_shift, so saturation (large shifts) is exercised too
    a = np.concatenate([a, ta, np.tile(a[:40], 8)])
    p = np.concatenate([p, tp, np.tile(p[:40], 8)])
    r = np.concatenate([r, tr, np.tile(r[:40], 8)])
    out_shift = np.concatenate([out_shift, tsh, np.repeat(np.arange(8), 40)])
    # raw inputs: any p of the port with A >> p within the documented |A >> p| <= 2^23 and any R
    # in the reciprocal's range
    n_raw = 300
    rp = rng.integers(0, acc_width + 1, size=n_raw)
    top = np.minimum(23, np.maximum(acc_width - 1 - rp, 0))  # A itself must fit the port
    ran = rng.integers(-(1 << top), (1 << top) - (top < 23) + 1)
    ra = np.clip(ran << rp | rng.integers(0, 1 << 62, size=n_raw) & ((1 << rp) - 1),
                 -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1)
    rr = rng.integers((1 << 16) + 1, (1 << 17) + 1, size=n_raw)
    rsh = rng.integers(0, 8, size=n_raw)
    a, p, r = np.concatenate([a, ra]), np.concatenate([p, rp]), np.concatenate([r, rr])
    out_shift = np.concatenate([out_shift, rsh])
    assert a.min() >= -(1 << (acc_width - 1)) and a.max() < 1 << (acc_width - 1)

    # normalise_output takes one out_shift: group the vectors by it (vectorised per group)
    expected = np.empty(len(a), dtype=np.int64)
    for sh in range(1 << nx.OUT_SHIFT_WIDTH):
        sel = out_shift == sh
        expected[sel] = nx.normalise_output(a[sel, None], p[sel], r[sel], sh)[:, 0]
    assert expected.min() == nx.DATA_MIN and expected.max() == nx.DATA_MAX  # saturation reached
    vectors = list(zip(a.tolist(), p.tolist(), r.tolist(), out_shift.tolist(), expected.tolist()))
    dut = blocks.Normaliser(acc_width, dsp_width=dsp_width)
    lat = dut.latency
    assert lat == blocks.Normaliser.LATENCY + (dsp_width == 16)

    async def tb(ctx):
        # a new input every cycle; after the edge that took vector i, o holds vector i + 1 - lat
        for i in range(len(vectors) + lat - 1):
            if i < len(vectors):
                va, vp, vr, vsh, _ = vectors[i]
                ctx.set(dut.a, va)
                ctx.set(dut.p, vp)
                ctx.set(dut.r, vr)
                ctx.set(dut.out_shift, vsh)
            await ctx.tick()
            j = i + 1 - lat
            if j >= 0:
                va, vp, vr, vsh, want = vectors[j]
                got = ctx.get(dut.o)
                assert got == want, (f"a={va} p={vp} r={vr} out_shift={vsh}: o={got}, "
                                     f"expected {want}")

    _simulate(dut, tb, platform=platform)


def test_registered_product_rejects_operands_wider_than_the_multiplier():
    """An operand that does not fit the 18 x 18 signed multiplier is refused by name, on every
    target (a silent truncation would give wrong products only on the ECP5)."""
    for a_shape, b_shape in ((signed(19), signed(8)), (unsigned(18), signed(8)),
                             (signed(8), unsigned(18))):
        m = Module()
        a, b, out = Signal(a_shape), Signal(b_shape), Signal(signed(40))
        with pytest.raises(ValueError, match=r"registered_product wide: operand of "
                                             r"(un)?signed\(1[89]\) does not fit"):
            blocks.registered_product(m, _Ecp5(), a, b, out, reg_inputs=False, name="wide")
        with pytest.raises(ValueError, match="does not fit"):
            blocks.registered_product(m, None, a, b, out, reg_inputs=True, name="wide")
    m = Module()  # the widest operands that fit are taken
    blocks.registered_product(m, _Ecp5(), Signal(signed(18)), Signal(unsigned(17)),
                              Signal(signed(36)), reg_inputs=True, name="ok")
