"""amaranth.sim unit tests of the engine's stages, each component alone through its ports.

One test per component of ``hw/job.py``, ``hw/kv_ring.py``, ``hw/scheduler.py``,
``hw/stage1.py``, ``hw/stage2.py`` and ``hw/epilogue.py``; where a component reads the job
(:class:`~swattn.hw.job.JobSignature`) the testbench drives those members itself, and where it
talks to a neighbouring stage the testbench stands in for it (a K/V memory answering read
addresses a cycle later, a score bank queue, an accumulator ring turning on ``turn``).

Expected values never come from the component under test:

* the job's figures, the K/V stream length, the row orders and the passes from
  ``swattn.sw.spec`` (``regs``, ``schedule.kv_order`` / ``query_order`` / ``main_groups``,
  ``pattern.HybridPattern.row_keys``) and from the formulas of the modules' docstrings,
  worked out here by hand (window of a group, sub-groups of ``EngineParams.subgroup`` keys);
* scores as NumPy integer dot products; exponentials, sums and output rows from
  ``swattn.sw.spec.numerics`` (``scale_diff``, ``exp2_neg``, ``normalise_sum``, ``reciprocal``,
  ``normalise_output``), the functions the golden model calls;
* timing from the components' docstrings and ``EngineParams``' description of its pipeline
  stages (registered outputs a cycle after their inputs, rows readable the cycle after
  ``wpos`` passes them, RELEASE_DELAY, the key read's and stage 2's cycles).

Small engines: ``P1`` (one unit, four chunks per key), ``P1P`` (the same with every pipeline
stage, as the ULX3S build has them), ``P2`` (two units, one chunk per key, paired max passes)
and, for the job control alone, ``P4`` (four units, three global groups).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from swattn.hw.epilogue import Epilogue
from swattn.hw.job import JobControl
from swattn.hw.kv_ring import RELEASE_DELAY, KVRing
from swattn.hw.scheduler import QueryBanks, Scheduler, desc_layout
from swattn.hw.stage1 import GroupQueue, KeyIssue, ScoreUnit
from swattn.hw.stage1 import tag_layout as tag1_layout
from swattn.hw.stage2 import STAGE2_LATENCY, PVIssue, SoftmaxPV
from swattn.hw.stage2 import tag_layout as tag2_layout
from swattn.sw.spec import numerics as nx
from swattn.sw.spec import regs, schedule
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.pattern import HybridPattern

#: one unit of 8 + 8 lanes: four chunks per key, no paired max passes
P1 = EngineParams(head_dim=32, lanes=16, max_radius=4, max_globals=2, max_dilation=2,
                  seq_width=5)
#: two units of 32 + 32 lanes: one chunk per key, paired max passes
P2 = EngineParams(head_dim=32, lanes=128, max_radius=4, max_globals=3, max_dilation=2,
                  seq_width=5)
#: P1 with every pipeline stage (the ULX3S build's): the key memories' addresses and data
#: registered, two more adder-tree stages, five more stage-2 stages
P1P = EngineParams(head_dim=32, lanes=16, max_radius=4, max_globals=2, max_dilation=2,
                   seq_width=5, dot_pipeline=4, pv_pipeline=5)
#: four units and up to three global groups (job control only)
P4 = EngineParams(head_dim=32, lanes=256, max_radius=5, max_globals=9, max_dilation=3,
                  seq_width=6)


def key_delay(P: EngineParams) -> int:
    """Cycles the key read adds beyond a memory's one (EngineParams: key_register and
    key_addr_register, a register each)."""
    return int(P.key_register) + int(P.key_addr_register)


def stage2_cycles(P: EngineParams) -> dict:
    """Stage 2's cycles after an issue (t0), from ``EngineParams.pv_pipeline``'s description
    (each stage a cycle more): without them the score read's data (a cycle after its address)
    and the row maximum at t1, the products at t6 (TM: the V chunk there), the accumulation at
    t7 (its add and clear registered from the tag a cycle before); stage 4 registers the score
    read's data beside the score memory (``tag_score`` a cycle later than the data), stages 1,
    3, 4 and 5 each add a cycle before the products, stage 2 registers the products before the
    accumulators."""
    X = P.pv_pipeline
    tm = 6 + (X >= 1) + (X >= 3) + (X >= 4) + (X >= 5)
    acc = tm + 1 + (X >= 2)
    return dict(sdata=1, score=1 + (X >= 4), tm=tm, acc=acc - 1, early=acc - 2,
                accumulate=acc)


def simulate(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def rng_rows(rng, count, width):
    return rng.integers(nx.DATA_MIN, nx.DATA_MAX + 1, size=(count, width), dtype=np.int64)


def ceil_div(a, b):
    return -(-a // b)


# --- the job as the stages see it, from the spec ---------------------------------------------

def job_fields(P: EngineParams, pattern: HybridPattern, cfg_order=None) -> dict:
    """The JobSignature members of a valid job, worked out from the pattern: ``cfg_order`` is
    the globals in configuration order (default: ascending)."""
    glob = list(pattern.globals_ if cfg_order is None else cfg_order)
    assert sorted(glob) == list(pattern.globals_)
    ng, gm = len(glob), max(1, P.max_globals)
    ngg = ceil_div(ng, P.units)
    # ring rows of the K/V stream: everything after the global rows (spec.schedule.kv_order)
    total_pos = len(schedule.kv_order(pattern, P)) - ng
    # paired engines: the max passes (one per pair of global groups) come before the main pass
    moff = pattern.n * ceil_div(ngg, 2) if P.paired_max else 0
    f = dict(n=pattern.n, left=pattern.left, right=pattern.right, dil=pattern.dilation, ng=ng,
             glob=glob + [0] * (gm - ng), gval=(1 << ng) - 1,
             reach_l=pattern.left * pattern.dilation, span=pattern.left + pattern.right,
             ngg=ngg, total_pos=total_pos, moff=moff)
    return f


async def start_job(ctx, dut, fields: dict):
    """Drive the job's members, pulse ``init`` for a cycle, then raise ``running`` (JobControl
    raises it the cycle after ``init``)."""
    ctx.set(dut.job.running, 0)
    for k, v in fields.items():
        ctx.set(getattr(dut.job, k), v)
    ctx.set(dut.job.init, 1)
    await ctx.tick()
    ctx.set(dut.job.init, 0)
    ctx.set(dut.job.running, 1)


# --- JobControl ---------------------------------------------------------------------------------

E = regs.Error
JOB_CASES = {
    P1: [
        (dict(n=13, left=2, right=1, dilation=2, globals=[8, 3]), E.NONE),
        (dict(n=1, left=0, right=0, dilation=1, globals=[]), E.NONE),
        # an unused global slot may hold anything, a duplicate included
        (dict(n=31, left=4, right=4, dilation=1, globals=[30], extra=[30]), E.NONE),
        (dict(n=0, left=1, right=1, dilation=1, globals=[]), E.N_RANGE),
        (dict(n=32, left=1, right=1, dilation=1, globals=[]), E.N_RANGE),
        (dict(n=1000, left=1, right=1, dilation=1, globals=[]), E.N_RANGE),
        (dict(n=9, left=1, right=1, dilation=0, globals=[]), E.DILATION),
        (dict(n=9, left=1, right=1, dilation=3, globals=[]), E.DILATION),
        (dict(n=9, left=3, right=1, dilation=2, globals=[]), E.RADIUS),
        (dict(n=9, left=0, right=5, dilation=1, globals=[]), E.RADIUS),
        (dict(n=9, left=1, right=1, dilation=1, globals=[1, 2], n_globals=3), E.GLOBAL_COUNT),
        (dict(n=13, left=1, right=1, dilation=1, globals=[13]), E.GLOBAL_RANGE),
        (dict(n=13, left=1, right=1, dilation=1, globals=[2, 20]), E.GLOBAL_RANGE),
        (dict(n=13, left=1, right=1, dilation=1, globals=[4, 4]), E.GLOBAL_DUP),
    ],
    P2: [
        (dict(n=11, left=1, right=2, dilation=2, globals=[9, 0, 5]), E.NONE),
        (dict(n=20, left=4, right=0, dilation=1, globals=[7, 19]), E.NONE),
        (dict(n=7, left=1, right=1, dilation=1, globals=[]), E.NONE),
        (dict(n=11, left=1, right=1, dilation=1, globals=[1, 2, 1]), E.GLOBAL_DUP),
        (dict(n=11, left=1, right=1, dilation=1, globals=[1, 2, 11]), E.GLOBAL_RANGE),
        (dict(n=11, left=1, right=1, dilation=1, globals=[1, 2, 3], n_globals=4),
         E.GLOBAL_COUNT),
    ],
}


JOB_CASES[P4] = [
    (dict(n=40, left=1, right=1, dilation=3, globals=[39, 0, 7, 8, 20, 21, 33, 2, 5]), E.NONE),
    (dict(n=63, left=5, right=0, dilation=1, globals=[62, 1, 30, 31, 32]), E.NONE),
    (dict(n=40, left=1, right=1, dilation=3, globals=[3, 4, 5, 6, 7, 8, 9, 10, 4]),
     E.GLOBAL_DUP),
    (dict(n=64, left=1, right=1, dilation=1, globals=[]), E.N_RANGE),
    (dict(n=20, left=2, right=1, dilation=3, globals=[]), E.RADIUS),
]


def random_job_cases(P, count, seed):
    """Valid configurations drawn at random within the engine's limits."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(1, P.n_max + 1))
        dil = int(rng.integers(1, P.max_dilation + 1))
        left, right = (int(rng.integers(0, P.max_radius // dil + 1)) for _ in range(2))
        ng = int(rng.integers(0, min(n, P.max_globals) + 1))
        glob = [int(x) for x in rng.choice(n, size=ng, replace=False)]
        out.append((dict(n=n, left=left, right=right, dilation=dil, globals=glob), E.NONE))
    return out


def _cfg_bits(P, case):
    c = dict(case)
    glob = c.pop("globals")
    extra = c.pop("extra", [])
    c.setdefault("n_globals", len(glob))
    return regs.pack_config(P, globals=glob + extra, mult_mant=40000, mult_shift=20,
                            out_shift=3, **c)


@pytest.mark.parametrize("P", [P1, P2, P4], ids=["u1", "u2", "u4"])
def test_job_control(P):
    """Per configuration (a table, then random valid ones): the status after a start (BUSY and
    one ``init`` for a valid one, IDLE with the error code and no ``init`` for each invalid
    one), the job's members against the pattern and the spec's K/V stream length, a start while
    BUSY (error BUSY, nothing else), and DONE after the job's n-th output row with ``cycles``
    the cycles since the start."""
    dut = JobControl(P)
    cases = JOB_CASES[P] + random_job_cases(P, 12, seed=P.units)
    other = _cfg_bits(P, JOB_CASES[P][0][0])
    bad = _cfg_bits(P, dict(n=0, left=0, right=0, dilation=1, globals=[]))

    async def tb(ctx):
        assert regs.unpack_status(ctx.get(dut.status.as_value())) == (regs.State.IDLE, E.NONE)
        for case, err in cases:
            what = f"{case} -> {err.name}"
            ctx.set(dut.cfg.as_value(), _cfg_bits(P, case))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.cfg.as_value(), bad if err == E.NONE else other)  # held from the start
            ticks, inits, running_seen = 1, [], False
            assert regs.unpack_status(ctx.get(dut.status.as_value())) == (regs.State.BUSY,
                                                                          E.NONE), what
            assert ctx.get(dut.cycles) == 0
            # the checks take a step per cycle: a few steps plus one per global
            for c in range(len(case["globals"]) + 8):
                if ctx.get(dut.job.init):
                    inits.append(c)
                if ctx.get(dut.job.running):
                    running_seen = True
                    assert inits, "running before init"
                await ctx.tick()
                ticks += 1
            state, error = regs.unpack_status(ctx.get(dut.status.as_value()))
            if err != E.NONE:
                assert (state, error) == (regs.State.IDLE, err), what
                assert not inits and not running_seen, what
                continue
            assert (state, error) == (regs.State.BUSY, E.NONE), what
            assert len(inits) == 1, what
            assert ctx.get(dut.job.running) == 1
            g = case["globals"]
            pat = HybridPattern(case["n"], case["left"], case["right"], case["dilation"],
                                tuple(g), limits=P.limits())
            exp = job_fields(P, pat, cfg_order=g)
            passes = P.kv_passes(len(g))
            assert exp["total_pos"] == case["n"] * passes
            for k, v in exp.items():
                got = ctx.get(getattr(dut.job, k))
                if k == "glob":
                    got = [int(x) for x in got][:len(g)]
                    v = v[:len(g)]
                assert got == v, f"{what}: job.{k} = {got}, expected {v}"
            assert (ctx.get(dut.job.mult_mant), ctx.get(dut.job.mult_shift),
                    ctx.get(dut.job.out_shift)) == (40000, 20, 3)
            # a start while BUSY: error BUSY, the job goes on unchanged
            before = {k: ctx.get(getattr(dut.job, k).as_value() if k == "glob"
                                 else getattr(dut.job, k)) for k in exp}
            ctx.set(dut.cfg.as_value(), other)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ticks += 1
            ctx.set(dut.start, 0)
            for _ in range(len(g) + 6):
                assert regs.unpack_status(ctx.get(dut.status.as_value())) == (
                    regs.State.BUSY, E.BUSY), what
                assert ctx.get(dut.job.running) == 1 and ctx.get(dut.job.init) == 0, what
                assert ctx.get(dut.cycles) == ticks - 1, what
                for k, v in before.items():
                    assert ctx.get(getattr(dut.job, k).as_value() if k == "glob"
                                   else getattr(dut.job, k)) == v, f"{what}: job.{k} moved"
                await ctx.tick()
                ticks += 1
            # the output rows: DONE with the n-th, not before
            n = case["n"]
            for i in range(n):
                ctx.set(dut.out_fire, 1)
                await ctx.tick()
                ticks += 1
                ctx.set(dut.out_fire, 0)
                state = regs.unpack_status(ctx.get(dut.status.as_value()))[0]
                if i < n - 1:
                    assert state == regs.State.BUSY and ctx.get(dut.job.running), (what, i)
                    if i % 3 == 0:  # a gap between rows
                        await ctx.tick()
                        ticks += 1
            assert regs.unpack_status(ctx.get(dut.status.as_value())) == (regs.State.DONE,
                                                                          E.BUSY), what
            assert ctx.get(dut.job.running) == 0
            assert ctx.get(dut.cycles) == ticks - 1, what
            for _ in range(3):  # frozen once done; more out_fire changes nothing
                ctx.set(dut.out_fire, 1)
                await ctx.tick()
                assert ctx.get(dut.cycles) == ticks - 1
                assert regs.unpack_status(ctx.get(dut.status.as_value()))[0] == regs.State.DONE
            ctx.set(dut.out_fire, 0)

    simulate(dut, tb)


# --- KVRing -------------------------------------------------------------------------------------

def pack_row(row) -> int:
    """An int8 row as the raw bits of an ``int8_row`` layout (element i at bits 8i..8i+7)."""
    return sum((int(x) & 0xFF) << (nx.DATA_WIDTH * i) for i, x in enumerate(row))


def chunk_bits(P, row, c) -> int:
    """Chunk ``c`` of a row: its ``lane_width`` elements from c * lane_width."""
    lw = P.lane_width
    return pack_row(row[c * lw:(c + 1) * lw])


def test_kv_ring():
    """The K/V writer against the stream rules of its docstring: global rows first (into the
    global rows, ``wpos`` still), one chunk per cycle and the row taken with its last chunk, no
    more than ``ring_rows`` rows ahead of the release position, a release seen RELEASE_DELAY
    cycles after ``release_en``, nothing past the job's ``total_pos`` rows; every row read back
    through the read ports at (chunk, row mod ring_rows) the cycle after ``wpos`` passes it, and
    the ring and global rows after the writes, byte for byte; a row whose ``valid`` drops after
    its first chunks goes on with the next chunk."""
    P = P1
    CH, B, d = P.chunks, P.ring_rows, P.head_dim
    dut = KVRing(P)
    rng = np.random.default_rng(1)
    pat = HybridPattern(8, 1, 1, 1, (1, 5), limits=P.limits())
    fields = job_fields(P, pat)
    assert fields["total_pos"] == 40 and B == 32
    ng = fields["ng"]
    nrows = ng + fields["total_pos"] + 1  # one row more than the job takes
    ks, vs = rng_rows(rng, nrows, d), rng_rows(rng, nrows, d)
    payload = [pack_row(ks[i]) | (pack_row(vs[i]) << (nx.DATA_WIDTH * d)) for i in range(nrows)]
    log = {"taken": [], "cycle": 0, "ng": ng}

    def ring_addr(row, c):
        return (row % B) * CH + c

    async def feed(ctx, until, max_cycles, release=None, gaps=(), pauses=()):
        """Offer the stream's rows in order (after 3 idle cycles before the rows named in
        ``gaps``; ``valid`` low for 2 cycles after the second chunk of those in ``pauses``),
        pulse release at the cycles of ``release`` {cycle offset: pos}; check each row that
        wpos passes at the read ports two cycles later. Stops when ``until()``."""
        release = release or {}
        check = []  # (cycle to look at the data, ring row)
        idle = row_cycles = 0
        start = log["cycle"]
        last_wpos = ctx.get(dut.wpos)
        for _ in range(max_cycles):
            if until():
                return
            cyc = log["cycle"]
            i = len(log["taken"])
            if idle == 0 and i in gaps and not log.get(f"gap{i}"):
                log[f"gap{i}"] = True
                idle = 3
            if idle == 0 and i in pauses and row_cycles == 2 and not log.get(f"pause{i}"):
                log[f"pause{i}"] = True
                idle = 2
            valid = idle == 0 and i < nrows
            ctx.set(dut.kv.valid, valid)
            if valid:
                ctx.set(dut.kv.payload.as_value(), payload[i])
            rel = release.get(cyc - start)
            ctx.set(dut.release_en, rel is not None)
            ctx.set(dut.release_pos, rel or 0)
            # the read port: the row wpos passed in the previous cycle, its last chunk
            wpos = ctx.get(dut.wpos)
            for when, r in [x for x in check if x[0] == cyc]:
                srow = log["ng"] + r
                assert ctx.get(dut.k_data) == chunk_bits(P, ks[srow], CH - 1), r
                assert ctx.get(dut.v_data) == chunk_bits(P, vs[srow], CH - 1), r
            if check and check[-1][0] == cyc + 1:
                r = check[-1][1]
                ctx.set(dut.k_addr[0], ring_addr(r, CH - 1))
                ctx.set(dut.v_addr[0], ring_addr(r, CH - 1))
            if wpos != last_wpos:
                assert wpos == last_wpos + 1
                check.append((cyc + 2, wpos - 1))
                last_wpos = wpos
            row_cycles += valid
            if valid and ctx.get(dut.kv.ready):
                log["taken"].append(cyc)
                row_cycles = 0
            idle = max(0, idle - 1)
            await ctx.tick()
            log["cycle"] += 1
        raise AssertionError(f"feed: no end after {max_cycles} cycles")

    async def read_back(ctx, ring_rows: dict, glob_rows: dict):
        """{ring row: stream row} and {global slot: stream row}: every chunk of each."""
        for r, srow in ring_rows.items():
            for c in range(CH):
                ctx.set(dut.k_addr[0], ring_addr(r, c))
                ctx.set(dut.v_addr[0], ring_addr(r, c))
                await ctx.tick()
                assert ctx.get(dut.k_data) == chunk_bits(P, ks[srow], c), (r, c)
                assert ctx.get(dut.v_data) == chunk_bits(P, vs[srow], c), (r, c)
        for g, srow in glob_rows.items():
            for c in range(CH):
                ctx.set(dut.gk_addr[0], g * CH + c)
                ctx.set(dut.gv_addr[0], g * CH + c)
                await ctx.tick()
                assert ctx.get(dut.gk_data) == chunk_bits(P, ks[srow], c), (g, c)
                assert ctx.get(dut.gv_data) == chunk_bits(P, vs[srow], c), (g, c)

    async def tb(ctx):
        # no job: nothing is taken
        ctx.set(dut.kv.valid, 1)
        ctx.set(dut.kv.payload.as_value(), payload[0])
        for _ in range(6):
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
        await start_job(ctx, dut, fields)
        # the global rows, then ring rows until the ring is full (no release yet)
        await feed(ctx, lambda: len(log["taken"]) == ng + B, 400, gaps=(1, 5))
        taken = log["taken"]
        assert ctx.get(dut.wpos) == B
        # one chunk per cycle: back-to-back rows are taken every CH cycles, a row after a gap
        # CH cycles after it is first offered
        for i in range(1, len(taken)):
            gap = 3 if i in (1, 5) else 0
            assert taken[i] - taken[i - 1] == CH + gap, (i, taken[i] - taken[i - 1])
        # the next row waits: the ring is ring_rows ahead of the release position (0)
        for _ in range(30):
            ctx.set(dut.kv.valid, 1)
            ctx.set(dut.kv.payload.as_value(), payload[ng + B])
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
            log["cycle"] += 1
        assert ctx.get(dut.wpos) == B
        ctx.set(dut.kv.valid, 0)
        await read_back(ctx, {r: ng + r for r in range(B)}, {0: 0, 1: 1})
        # release the rows below 3: three more rows go in, the first RELEASE_DELAY cycles after
        # the release (its first chunk then, the row taken with its last)
        t_rel = log["cycle"]
        await feed(ctx, lambda: len(log["taken"]) == ng + B + 3, 60, release={0: 3})
        first = log["taken"][ng + B] - t_rel
        assert first == RELEASE_DELAY + CH - 1, f"row {B} taken {first} cycles after release"
        for _ in range(30):
            ctx.set(dut.kv.valid, 1)
            ctx.set(dut.kv.payload.as_value(), payload[ng + B + 3])
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
            log["cycle"] += 1
        assert ctx.get(dut.wpos) == B + 3
        ctx.set(dut.kv.valid, 0)
        await read_back(ctx, {0: ng + B, 1: ng + B + 1, 2: ng + B + 2, 3: ng + 3,
                              B - 1: ng + B - 1}, {})
        # release up to 20: the rest of the job's rows, and nothing after its total_pos
        await feed(ctx, lambda: len(log["taken"]) == ng + fields["total_pos"], 80,
                   release={0: 20})
        for _ in range(40):
            ctx.set(dut.kv.valid, 1)
            ctx.set(dut.kv.payload.as_value(), payload[nrows - 1])
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
        assert ctx.get(dut.wpos) == fields["total_pos"]
        ctx.set(dut.kv.valid, 0)
        await read_back(ctx, {r % B: ng + r for r in range(B + 3, 40)}, {0: 0, 1: 1})
        # a new job without globals: init resets the writer; the first row is ring row 0.
        # A row whose valid drops after two chunks goes on where it stopped
        pat2 = HybridPattern(3, 1, 0, 1, (), limits=P.limits())
        await start_job(ctx, dut, job_fields(P, pat2))
        assert ctx.get(dut.wpos) == 0
        log["taken"], log["ng"] = [], 0
        await feed(ctx, lambda: len(log["taken"]) == 3, 40, pauses=(1,))
        taken = log["taken"]
        assert (taken[1] - taken[0], taken[2] - taken[1]) == (CH + 2, CH)
        ctx.set(dut.kv.valid, 1)
        for _ in range(10):
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
        ctx.set(dut.kv.valid, 0)
        assert ctx.get(dut.wpos) == 3
        await read_back(ctx, {0: 0, 1: 1, 2: 2}, {})

    simulate(dut, tb)


def test_kv_ring_slices():
    """The K/V store of a one-chunk engine whose rows span four memory slices: nothing taken
    while the job is not running, then a row every cycle (global row first), nothing past the
    job's ``total_pos`` rows; each slice reads the row at its own address (the read data's
    64-bit slice j is row ``k_addr[j]``'s)."""
    P = P2
    B, d = P.ring_rows, P.head_dim
    dut = KVRing(P)
    KS = len(dut.k_addr)
    assert P.chunks == 1 and KS == 4
    rng = np.random.default_rng(11)
    pat = HybridPattern(6, 1, 1, 1, (2,), limits=P.limits())
    fields = job_fields(P, pat)
    ng, total = fields["ng"], fields["total_pos"]
    assert total == 6 * P.kv_passes(1) < B
    ks, vs = rng_rows(rng, ng + total + 1, d), rng_rows(rng, ng + total + 1, d)

    def bits(row, j):
        return pack_row(row) >> (64 * j) & ((1 << 64) - 1)

    async def tb(ctx):
        await start_job(ctx, dut, fields)
        ctx.set(dut.job.running, 0)
        ctx.set(dut.kv.valid, 1)
        for _ in range(5):
            ctx.set(dut.kv.payload.as_value(), pack_row(ks[0]) | pack_row(vs[0]) << (8 * d))
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
        ctx.set(dut.job.running, 1)
        for i in range(ng + total):
            ctx.set(dut.kv.payload.as_value(), pack_row(ks[i]) | pack_row(vs[i]) << (8 * d))
            assert ctx.get(dut.kv.ready), i
            await ctx.tick()
        for _ in range(10):
            assert not ctx.get(dut.kv.ready)
            await ctx.tick()
        ctx.set(dut.kv.valid, 0)
        assert ctx.get(dut.wpos) == total
        for rows in ([0, 1, 2, 3], [17, 5, 0, 9], [4, 4, 16, 1]):
            for j, r in enumerate(rows):
                ctx.set(dut.k_addr[j], r)
                ctx.set(dut.v_addr[j], rows[-1 - j])
            await ctx.tick()
            kd, vd = ctx.get(dut.k_data), ctx.get(dut.v_data)
            for j, r in enumerate(rows):
                assert kd >> (64 * j) & ((1 << 64) - 1) == bits(ks[ng + r], j), (rows, j)
                assert vd >> (64 * j) & ((1 << 64) - 1) == bits(vs[ng + rows[-1 - j]], j)
        for j in range(KS):
            ctx.set(dut.gk_addr[j], 0)
            ctx.set(dut.gv_addr[j], 0)
        await ctx.tick()
        assert (ctx.get(dut.gk_data), ctx.get(dut.gv_data)) == (pack_row(ks[0]), pack_row(vs[0]))

    simulate(dut, tb)


# --- QueryBanks ---------------------------------------------------------------------------------

def test_query_banks():
    """Loads land in bank ``bank``, unit ``unit``, written a cycle after the load (visible two
    cycles after it), one load per cycle back to back; no other register changes and a cycle
    without ``load`` writes nothing."""
    P = P2
    U, d = P.units, P.head_dim
    dut = QueryBanks(P)
    rng = np.random.default_rng(2)
    rows = rng_rows(rng, 12, d)
    # (bank, unit) per load; None: a cycle without load (its row on the port all the same)
    plan = [(0, 0), (0, 1), (1, 1), None, (1, 0), (0, 1), None, None, (1, 1), (0, 0), (1, 0),
            (0, 0)]

    async def tb(ctx):
        model = {(b, u): 0 for b in range(2) for u in range(U)}  # (the registers' init)
        pending = []  # (cycle visible, (b, u), row)
        for cyc, (what, row) in enumerate(zip(plan + [None, None], list(rows) + [rows[0]] * 2)):
            ctx.set(dut.row.as_value(), pack_row(row))
            ctx.set(dut.load, what is not None)
            if what is not None:
                ctx.set(dut.bank, what[0])
                ctx.set(dut.unit, what[1])
                pending.append((cyc + 2, what, pack_row(row)))
            else:  # an address that would write, without load
                ctx.set(dut.bank, 1)
                ctx.set(dut.unit, 0)
            for when, key, val in [p for p in pending if p[0] == cyc]:
                model[key] = val
            for (b, u), val in model.items():
                assert ctx.get(dut.rows[b][u].as_value()) == val, (cyc, b, u)
            await ctx.tick()
        for when, key, val in [p for p in pending if p[0] == len(plan) + 2]:
            model[key] = val
        for (b, u), val in model.items():
            assert ctx.get(dut.rows[b][u].as_value()) == val, (b, u)

    simulate(dut, tb)


# --- GroupQueue ---------------------------------------------------------------------------------

def test_group_queue():
    """Random set / clear pulses per bank: each flag (busy, done, valid) follows its pulses a
    cycle later (busy cleared by either ``busy_clr`` or ``busy_done``), ``desc[b]`` / ``count[b]``
    hold what came with bank b's last ``q_set``, and ``init`` clears every flag."""
    P = P1
    dut = GroupQueue(P)
    rng = np.random.default_rng(3)
    dbits = len(dut.desc_in.as_value())
    cmax = P.score_depth

    async def tb(ctx):
        flags = {"busy": 0, "done": 0, "valid": 0}
        held = [(0, 0), (0, 0)]
        for cyc in range(300):
            init = cyc in (150, 151, 220)
            # per flag, a set and a clear, never both for the same bank in a cycle
            sets = {k: int(rng.integers(0, 4)) for k in ("busy", "done", "valid")}
            clrs = {k: int(rng.integers(0, 4)) & ~sets[k] & 3 for k in sets}
            clr2 = int(rng.integers(0, 4)) & ~sets["busy"] & 3 if cyc % 2 else 0  # busy_done
            if rng.random() < 0.5:
                sets = {k: v if rng.random() < 0.4 else 0 for k, v in sets.items()}
            desc = int.from_bytes(rng.bytes((dbits + 7) // 8), "little") & ((1 << dbits) - 1)
            count = int(rng.integers(0, cmax + 1))
            ctx.set(dut.busy_set, sets["busy"])
            ctx.set(dut.done_set, sets["done"])
            ctx.set(dut.q_set, sets["valid"])
            ctx.set(dut.busy_clr, clrs["busy"])
            ctx.set(dut.busy_done, clr2)
            ctx.set(dut.done_clr, clrs["done"])
            ctx.set(dut.q_clr, clrs["valid"])
            ctx.set(dut.desc_in.as_value(), desc)
            ctx.set(dut.count_in, count)
            ctx.set(dut.job.init, init)
            for k, v in flags.items():
                assert ctx.get(getattr(dut, k)) == v, (cyc, k)
            for b in range(2):
                assert (ctx.get(dut.desc[b].as_value()), ctx.get(dut.count[b])) == held[b], \
                    (cyc, b)
            await ctx.tick()
            # the model: a cycle after the pulses
            for k in flags:
                clr = clrs[k] | (clr2 if k == "busy" else 0)
                flags[k] = 0 if init else (flags[k] | sets[k]) & ~clr & 3
            for b in range(2):
                if sets["valid"] >> b & 1:
                    held[b] = (desc, count)

    simulate(dut, tb)


# --- Scheduler ----------------------------------------------------------------------------------

def expected_groups(P: EngineParams, pat: HybridPattern) -> list[dict]:
    """The descriptors of a job in the order stage 1 takes them, from the spec: the main pass's
    groups (``schedule.main_groups``) and, per group of ``units`` global rows (ascending), a max
    pass and a P.V pass over the n keys, each in sub-groups of ``subgroup`` keys; the K/V stream
    positions of each pass from the stream's order (``schedule.kv_order``: rows 0..n-1 once per
    pass, the global rows not counted). Paired engines: the max passes first, one per pair of
    global groups (the pair's first group in the descriptor's bank, the second in the other),
    then the main pass, then the P.V passes."""
    U, n, SG = P.units, pat.n, P.subgroup
    g = list(pat.globals_)
    ngg = ceil_div(len(g), U)
    ggroups = [g[i * U:(i + 1) * U] for i in range(ngg)]
    pairs = ceil_div(ngg, 2) if P.paired_max else 0
    moff = n * pairs
    nsub = ceil_div(n, SG)

    def rows_of(grp):
        return [grp[u] if u < len(grp) else -1 for u in range(U)]

    def subs(pbase):
        for k, s in enumerate(range(0, n, SG)):
            yield k, k == nsub - 1, list(range(pbase + s, pbase + min(s + SG, n))), pbase + n

    out = []
    for p in range(pairs):
        b = ggroups[2 * p + 1] if 2 * p + 1 < ngg else []
        for k, last, keys, lim in subs(n * p):
            out.append(dict(kind="max", pair=1, rows=rows_of(ggroups[2 * p]), rows_b=rows_of(b),
                            keys=keys, lim=lim, reset_max=k == 0, gidx=2 * p))
    for grp in schedule.main_groups(pat, P):
        out.append(dict(kind="main", rows=[int(r) for r in grp], lim=moff + n))
    for gi, grp in enumerate(ggroups):
        if not P.paired_max:
            for k, last, keys, lim in subs(n * (1 + 2 * gi)):
                out.append(dict(kind="max", rows=rows_of(grp), keys=keys, lim=lim,
                                reset_max=k == 0))
        pbase = moff + n * (1 + gi) if P.paired_max else n * (2 + 2 * gi)
        for k, last, keys, lim in subs(pbase):
            out.append(dict(kind="pv", rows=rows_of(grp), keys=keys, lim=lim, reset_acc=k == 0,
                            final=last, gmax=k == 0, gidx=gi))
    return out


def desc_keys(d) -> list[int]:
    """The window keys a descriptor names: from ``start`` in steps of ``step``, up to ``kmax +
    1`` of them, below ``lim``."""
    keys, pos = [], int(d.start)
    for _ in range(int(d.kmax) + 1):
        if pos >= int(d.lim):
            break
        keys.append(pos)
        pos += int(d.step)
    return keys


def check_desc(P, pat, cfg_order, exp, d, what):
    U, n, dil = P.units, pat.n, pat.dilation
    mask = sum(1 << u for u, r in enumerate(exp["rows"]) if r >= 0)
    assert int(d.active) == mask, f"{what}: active {int(d.active):b}, expected {mask:b}"
    assert int(d.lim) == exp["lim"], what
    keys = desc_keys(d)
    if P.paired_max:
        assert int(d.pair) == (exp["kind"] == "max"), what
    if exp["kind"] == "main":
        moff = exp["lim"] - n
        assert (d.main, d.no_pv, d.reset_max, d.reset_acc, d.final) == (1, 0, 1, 1, 1), what
        assert int(d.step) == dil and int(d.nglob) == len(cfg_order), what
        u0 = next(u for u, r in enumerate(exp["rows"]) if r >= 0)
        base = exp["rows"][u0] - u0 * dil  # the group's first slot (row of unit 0)
        c, bq = base % dil, base // dil
        lo, hi = base - pat.left * dil, base + (U - 1) * dil + pat.right * dil
        toks = [k - moff for k in keys]
        want = [t for t in range(c, n, dil) if lo <= t <= hi]
        assert toks == want, f"{what}: window keys {toks}, expected {want}"
        for r in exp["rows"]:  # (so every active row's window is among them)
            if r >= 0:
                assert set(pat.row_keys(r)) - set(pat.globals_) <= set(toks), what
        assert int(d.clip) == max(0, pat.left - bq), what
        assert int(d.kig) == (toks[0] in pat.globals_), what
        assert int(d.nxt) == (len(toks) >= 2), what
        if len(toks) >= 2:
            hits = sum(1 << i for i, gx in enumerate(cfg_order) if gx == toks[1])
            assert int(d.hits2) & ((1 << len(cfg_order)) - 1) == hits, what
        if P.paired_max:
            assert int(d.gmax) == 0, what
        return
    assert int(d.main) == 0 and int(d.step) == 1 and int(d.nglob) == 0, what
    assert int(d.clip) == 0, what
    assert keys == exp["keys"], f"{what}: keys {keys}, expected {exp['keys']}"
    assert int(d.nxt) == (len(keys) >= 2), what
    if exp["kind"] == "max":
        assert int(d.no_pv) == 1 and int(d.reset_max) == exp["reset_max"], what
        if P.paired_max:
            mask_b = sum(1 << u for u, r in enumerate(exp["rows_b"]) if r >= 0)
            assert int(d.active_b) == mask_b and int(d.gidx) == exp["gidx"], what
    else:
        assert (int(d.no_pv), int(d.reset_max)) == (0, 0), what
        assert (int(d.reset_acc), int(d.final)) == (exp["reset_acc"], exp["final"]), what
        if P.paired_max:
            assert (int(d.gmax), int(d.gidx)) == (exp["gmax"], exp["gidx"]), what


SCHED_JOBS = {
    P1: [(HybridPattern(13, 2, 1, 2, (3, 8)), [8, 3]),
         (HybridPattern(9, 1, 2, 1, (0,)), [0])],
    P2: [(HybridPattern(11, 1, 2, 2, (0, 5, 9)), [9, 0, 5]),
         (HybridPattern(10, 1, 1, 2, (4, 7)), [7, 4]),
         (HybridPattern(7, 2, 0, 1, ()), [])],
}


@pytest.mark.parametrize("P", [P1, P2], ids=["u1", "u2"])
def test_scheduler(P):
    """Jobs of a few patterns back to back, ``q`` always valid (in one job with gaps),
    ``desc.ready`` paused in a pattern and while a stand-in stage 1 is busy: the descriptors
    come in the order and with the fields of :func:`expected_groups` (window keys of each main
    group, sub-groups of the global passes, flags), each group's queries are in its bank (and a
    pair's second group in the other) when stage 1 takes it, the q rows taken are exactly
    ``schedule.query_order``'s, a descriptor stays put until taken, and nothing moves after the
    job's last group."""
    dut = Scheduler(P)
    U = P.units

    async def tb(ctx):
        cyc = 0
        for job, (pat, order) in enumerate(SCHED_JOBS[P]):
            pat = HybridPattern(pat.n, pat.left, pat.right, pat.dilation, pat.globals_,
                                limits=P.limits())
            exp = expected_groups(P, pat)
            qrows = list(schedule.query_order(pat, P))
            await start_job(ctx, dut, job_fields(P, pat, cfg_order=order))
            banks = [[None] * U for _ in range(2)]
            got, taken_q, busy, held = 0, 0, 0, None
            idle = 0
            while idle < 40:
                assert cyc < 20000
                pause = (cyc % 7) in (2, 3) or (cyc % 11) == 5
                ready = busy == 0 and not pause
                ctx.set(dut.desc.ready, ready)
                ctx.set(dut.s1_busy, busy > 0)
                # (q always valid; in the second job with gaps)
                qv = job != 1 or cyc % 4 != 1
                ctx.set(dut.q_valid, qv)
                # queries: one row a handshake, load says where it goes
                qr = ctx.get(dut.q_ready) and qv
                assert ctx.get(dut.load) == qr, cyc
                if qr:
                    assert taken_q < len(qrows), "more q rows than query_order"
                    banks[ctx.get(dut.bank)][ctx.get(dut.unit)] = qrows[taken_q]
                    taken_q += 1
                valid = ctx.get(dut.desc.valid)
                if valid:
                    val = ctx.get(dut.desc.payload.as_value())
                    if held is not None:
                        assert val == held, f"descriptor {got} changed before it was taken"
                    held = val
                if valid and ready:
                    d = ctx.get(dut.desc.payload)
                    what = f"{pat}: descriptor {got}"
                    assert got < len(exp), f"{what}: more than the {len(exp)} expected"
                    e = exp[got]
                    check_desc(P, pat, order, e, d, f"{what} ({e['kind']})")
                    qb = int(d.qbank)
                    for u, r in enumerate(e["rows"]):
                        if r >= 0:
                            assert banks[qb][u] == r, f"{what}: bank {qb} unit {u}"
                    for u, r in enumerate(e.get("rows_b", [])):
                        if r >= 0:
                            assert banks[1 - qb][u] == r, f"{what}: other bank, unit {u}"
                    got += 1
                    held = None
                    busy = 4 + got % 5
                else:
                    busy = max(0, busy - 1)
                idle = idle + 1 if got == len(exp) and not valid else 0
                await ctx.tick()
                cyc += 1
            assert got == len(exp) and taken_q == len(qrows), (pat, got, taken_q)

    simulate(dut, tb)


# --- KeyIssue -----------------------------------------------------------------------------------

def make_desc(P, **f) -> int:
    return desc_layout(P).const(f).as_bits()


def main_desc(P, pat, order, rows, qbank) -> dict:
    """A main-pass group's descriptor from the spec: rows ``rows`` per unit (-1: none), the
    window keys of the group's residue class from unit 0's slot - left * dil to the last unit's
    slot + right * dil, within 0..n-1, at their main-pass stream positions, then the globals."""
    U, dil, n = P.units, pat.dilation, pat.n
    moff = job_fields(P, pat, order)["moff"]
    u0 = next(u for u, r in enumerate(rows) if r >= 0)
    base = rows[u0] - u0 * dil
    c, bq = base % dil, base // dil
    lo, hi = base - pat.left * dil, base + (U - 1) * dil + pat.right * dil
    win = [t for t in range(c, n, dil) if lo <= t <= hi]
    f = dict(main=1, no_pv=0, reset_max=1, reset_acc=1, final=1, qbank=qbank,
             active=sum(1 << u for u, r in enumerate(rows) if r >= 0), start=moff + win[0],
             step=dil, kmax=len(win) - 1, lim=moff + n, clip=max(0, pat.left - bq),
             nglob=len(order), kig=int(win[0] in pat.globals_),
             hits2=sum(1 << i for i, g in enumerate(order) if len(win) > 1 and g == win[1]),
             nxt=int(len(win) > 1))
    if P.paired_max:
        f.update(pair=0, active_b=0, gmax=0, gidx=0)
    return f


def sub_desc(P, pat, pbase, gsub, **f) -> dict:
    """A global pass's sub-group from ``gsub`` of the pass starting at stream position
    ``pbase``: up to ``subgroup`` keys in steps of one, below the pass's end."""
    SG = P.subgroup
    d = dict(main=0, no_pv=0, reset_max=0, reset_acc=0, final=0, qbank=0, active=1,
             start=pbase + gsub, step=1, kmax=SG - 1, lim=pbase + pat.n, clip=0, nglob=0, kig=0,
             hits2=0, nxt=int(gsub + 1 < pat.n))
    if P.paired_max:
        d.update(pair=0, active_b=0, gmax=0, gidx=0)
    d.update(f)
    return d


def key_issue_groups(P):
    """(pattern, globals in configuration order, [(descriptor, rows per unit or None)])."""
    SG = P.subgroup
    if not P.paired_max:
        pat = HybridPattern(13, 2, 1, 2, (3, 8), limits=P.limits())
        order, n = [8, 3], 13
        groups = [
            # row 6: window keys 2, 4, 6, 8 (8 a global row), then the globals
            (main_desc(P, pat, order, [6], 0), [6]),
            # row 0: the window clipped at row 0 (two of its positions below it)
            (main_desc(P, pat, order, [0], 1), [0]),
            # global row 3's max pass (stream positions n..2n-1), its second sub-group
            (sub_desc(P, pat, n, SG, no_pv=1), None),
            # its P.V pass, second sub-group: positions past the ring's size
            (sub_desc(P, pat, 2 * n, SG, qbank=1, final=1), None),
        ]
        # (the spec's windows, by hand)
        assert [(g[0]["start"], g[0]["kmax"], g[0]["clip"]) for g in groups[:2]] == \
            [(2, 3, 0), (0, 1, 2)]
        return pat, order, groups
    pat = HybridPattern(11, 1, 2, 2, (0, 5, 9), limits=P.limits())
    order, n = [9, 0, 5], 11
    moff = n  # one pair of global groups: (0, 5) and (9)
    groups = [
        # the pair's max pass: both sub-groups, the second the pass's last
        (sub_desc(P, pat, 0, 0, no_pv=1, reset_max=1, active=0b11, pair=1, active_b=0b01),
         None),
        (sub_desc(P, pat, 0, SG, no_pv=1, qbank=0, active=0b11, pair=1, active_b=0b01,
                  final=1), None),
        # rows (0), 2: unit 0's slot a global row, the window from -2 (clip 1), key 0 global
        (main_desc(P, pat, order, [-1, 2], 0), [-1, 2]),
        # rows (5), 7: the second window key (5) a global row
        (main_desc(P, pat, order, [-1, 7], 1), [-1, 7]),
        # rows 8, 10: the window ends at n
        (main_desc(P, pat, order, [8, 10], 0), [8, 10]),
        # the first global group's P.V pass, first sub-group (its maxima from the max pass)
        (sub_desc(P, pat, moff + n, 0, reset_acc=1, qbank=1, active=0b11, gmax=1), None),
    ]
    assert [(g[0]["start"], g[0]["kmax"], g[0]["clip"], g[0]["kig"], g[0]["hits2"])
            for g in groups[2:5]] == [(moff, 3, 1, 1, 0), (moff + 3, 3, 0, 0, 0b100),
                                      (moff + 6, 2, 0, 0, 0)]
    return pat, order, groups


@pytest.mark.parametrize("P", [P1, P2, P1P], ids=["u1", "u2", "u1_p45"])
def test_key_issue(P):
    """Stage 1's control with a stand-in K/V store (a row readable the cycle after ``wpos``
    passes it, read data a cycle after the address; ring rows not yet written hold other data)
    and descriptors of the spec's groups: per group the window keys then the global keys, chunk
    by chunk, each with the right data at the lanes (so each window key issued only once
    ``wpos`` passed it, at the right ring address; every memory slice's address copy alike),
    the tags (place, bank, first / last chunk and key; per unit the keys it attends to: each key
    of its row's pattern exactly once; paired max passes: the second group's units),
    ``tag_acc`` / ``tag_write`` down the dot product's pipeline, the query bank and chunk a
    cycle ahead of the key, ``busy_set`` / ``q_set`` / ``done_set`` and, after a paired max
    pass's last sub-group, ``pass_done``; a descriptor waits while stage 1 runs or its score
    bank is busy."""
    U, CH, B, DL, KA = P.units, P.chunks, P.ring_rows, P.dot_latency, key_delay(P)
    dut = KeyIssue(P)
    rng = np.random.default_rng(4)
    pat, order, groups = key_issue_groups(P)
    kpos = rng_rows(rng, 48, P.head_dim)  # K row per stream position
    gk = rng_rows(rng, len(order), P.head_dim)  # K of the global rows (configuration order)
    poison = rng_rows(rng, B, P.head_dim)  # a ring row before its first write
    moff = job_fields(P, pat, order)["moff"]

    def expected(desc):
        """(data row, position or ("g", slot)) per key."""
        d = type("D", (), desc)
        keys = [(kpos[p], p) for p in desc_keys(d)]
        keys += [(gk[i], ("g", i)) for i in range(desc["nglob"])]
        return keys

    def token_of(key):
        return order[key[1]] if isinstance(key, tuple) else key - moff

    async def tb(ctx):
        await start_job(ctx, dut, job_fields(P, pat, cfg_order=order))
        whist = [0]  # wpos per cycle
        prev_k = prev_g = 0
        bank_busy, busy_clear_at = 0, {}
        gi = 0  # descriptor offered
        takes, qsets, dsets, dots, accs, writes, selects, pdone = [], [], [], [], [], [], [], []
        for cyc in range(700):
            wpos = min(46, cyc // 3)
            ctx.set(dut.wpos, wpos)
            # the stand-in store: ring row r holds the last position p = r mod B that wpos had
            # passed in the cycle before the address
            r, c = prev_k // CH, prev_k % CH
            written = [p for p in range(r, whist[-2] if len(whist) > 1 else 0, B)]
            row = kpos[written[-1]] if written else poison[r]
            ctx.set(dut.k_data, chunk_bits(P, row, c))
            ctx.set(dut.gk_data, chunk_bits(P, gk[(prev_g // CH) % len(order)], prev_g % CH))
            for b, when in list(busy_clear_at.items()):
                if when == cyc:
                    bank_busy &= ~(1 << b)
                    del busy_clear_at[b]
            ctx.set(dut.bank_busy, bank_busy)
            offer = gi < len(groups)
            ctx.set(dut.desc.valid, offer)
            if offer:
                ctx.set(dut.desc.payload.as_value(), make_desc(P, **groups[gi][0]))
            # outputs
            if offer and ctx.get(dut.desc.ready):
                assert not ctx.get(dut.busy)
                assert not (bank_busy >> (gi % 2) & 1), "took a descriptor into a busy bank"
                takes.append(cyc)
                gi += 1
            bs = ctx.get(dut.busy_set)
            if bs:
                assert bs == 1 << ((gi - 1) % 2) and takes[-1] == cyc
                bank_busy |= bs
                # stage 2 hands bank 0 back late, so that group 2 waits for it
                busy_clear_at[bs.bit_length() - 1] = cyc + (60 if bs == 1 and gi == 1 else 8)
            if ctx.get(dut.q_set):
                qsets.append((cyc, ctx.get(dut.q_set), ctx.get(dut.q_desc.as_value()),
                              ctx.get(dut.q_count)))
            if ctx.get(dut.done_set):
                dsets.append((cyc, ctx.get(dut.done_set)))
            if P.paired_max and ctx.get(dut.pass_done):
                pdone.append((cyc, ctx.get(dut.pass_gidx)))
            for lst, tag in ((dots, dut.tag_dot), (accs, dut.tag_acc), (writes, dut.tag_write)):
                t = ctx.get(tag)
                if t.valid:
                    lst.append((cyc, t))
            if dots and dots[-1][0] == cyc:
                dots[-1] = dots[-1] + (ctx.get(dut.kdat),)
            qb = {ctx.get(dut.qbank[u][j]) for u in range(U) for j in range(len(dut.qbank[0]))}
            assert len(qb) == 1, "query bank copies differ"
            selects.append((ctx.get(dut.chunk), qb.pop()))
            ka = {ctx.get(a) for a in dut.k_addr}
            ga = {ctx.get(a) for a in dut.gk_addr}
            assert len(ka) == len(ga) == 1, "address copies differ"
            prev_k, prev_g = ka.pop(), ga.pop()
            whist.append(wpos)
            await ctx.tick()
        assert len(takes) == len(groups), takes
        # group 2 (bank 0) waited for its bank
        assert takes[2] >= takes[0] + 60
        # the issues: keys in order, chunk by chunk
        k = 0
        for g, (desc, rows) in enumerate(groups):
            keys = expected(desc)
            seen = [[] for _ in range(U)]
            for p, (data, key) in enumerate(keys):
                for c in range(CH):
                    cyc, t, kdat = dots[k]
                    k += 1
                    what = f"group {g} key {p} chunk {c}"
                    assert kdat == chunk_bits(P, data, c), f"{what}: wrong key data"
                    assert (t.glob, t.first, t.last, t.p, t.bank) == (
                        isinstance(key, tuple), c == 0, c == CH - 1, p, g % 2), what
                    assert (t.fkey, t.lkey, t.reset_max) == (
                        p == 0, p == len(keys) - 1, desc["reset_max"]), what
                    if P.paired_max:
                        assert (t.pair, t.gmax, t.gidx) == (
                            desc["pair"], desc["gmax"], desc["gidx"]), what
                        if desc["pair"]:
                            assert (t.uvalid_b, t.final) == (desc["active_b"], desc["final"])
                    assert cyc > takes[g], what
                    # the query chunk selected at the issue, the key at the lanes as many
                    # cycles later as its read takes
                    assert selects[cyc - 1 - KA] == (c, desc["qbank"]), what
                    if not isinstance(key, tuple):  # a window key: wpos had passed it
                        assert whist[cyc - 1 - KA] > key, what
                    if rows is None:
                        assert t.uvalid == desc["active"], what
                    elif c == 0:
                        for u in range(U):
                            if t.uvalid >> u & 1:
                                seen[u].append(token_of(key))
            for u in range(U if rows is not None else 0):
                want = list(pat.row_keys(rows[u])) if rows[u] >= 0 else []
                assert sorted(seen[u]) == want, f"group {g} unit {u}: keys {seen[u]}"
            # q_set with the group after its last key; done_set a cycle before the last score
            # is written
            last_issue = dots[k - 1][0] - 1 - KA
            qc, qbit, qdesc, qcount = qsets[g]
            assert qbit == 1 << (g % 2) and qdesc == make_desc(P, **desc), g
            assert qcount == len(keys), g
            assert last_issue <= qc and (g + 1 == len(groups) or qc < takes[g + 1]), g
            lw = [w for w in writes if w[1].bank == g % 2 and w[1].lkey and w[0] > takes[g]]
            assert dsets[g] == (lw[0][0] - 1, 1 << (g % 2)), g
            if P.paired_max and desc["pair"] and desc["final"]:
                assert len(pdone) == 1 and lw[0][0] < pdone[0][0] <= lw[0][0] + 2
                assert pdone[0][1] == desc["gidx"]
        assert k == len(dots) and len(qsets) == len(dsets) == len(groups)
        assert len(pdone) == (1 if P.paired_max else 0)
        # tag_acc: the dot product's output, dot_latency cycles after the issue; tag_write: a
        # key's last chunk, a cycle after that
        assert [(c + DL - KA, t.as_bits()) for c, t, _ in dots] == \
            [(c, t.as_bits()) for c, t in accs]
        want = [(c + 1, t.p, t.bank, t.uvalid, t.lkey) for c, t in accs if t.last]
        assert [(c, t.p, t.bank, t.uvalid, t.lkey) for c, t in writes] == want

    simulate(dut, tb)


# --- ScoreUnit ----------------------------------------------------------------------------------

@pytest.mark.parametrize("P", [P1, P1P], ids=["u1", "u1_p45"])
def test_score_unit(P):
    """One unit driven as KeyIssue's docstring times it (query chunk and bank at the issue, the
    key chunk as many cycles later as the key read takes, ``tag_acc`` dot_latency cycles after
    the issue, ``tag_write`` one more):
    three groups with gaps between issues; every score read back from the score memory at
    (place, bank) equals the NumPy integer dot product of the query and key rows, with the
    key's validity beside it, and ``row_max`` is the maximum of the valid scores (bank 1's
    group, without ``reset_max``, continuing from bank 0's)."""
    CH, DL, SD, SW = P.chunks, P.dot_latency, P.score_depth, P.score_width
    KA = key_delay(P)
    assert P.units == 1 and not P.paired_max
    dut = ScoreUnit(P, 0)
    tl = tag1_layout(P)
    rng = np.random.default_rng(5)
    d = P.head_dim
    q = rng_rows(rng, 3, d)  # group queries: A (bank 0), B (bank 1), C (bank 0)
    # (query, bank, reset_max, key rows, validity)
    groups = [(q[0], 0, 1, rng_rows(rng, 6, d), [1, 1, 0, 1, 1, 1]),
              (q[1], 1, 0, rng_rows(rng, 4, d), [1, 0, 1, 1]),
              (q[2], 0, 1, rng_rows(rng, 3, d), [0, 1, 0])]
    # the issues: (cycle, group, key, chunk), with gaps
    issues, cyc = [], 2
    for g, (_, _, _, keys, _) in enumerate(groups):
        for k in range(len(keys)):
            for c in range(CH):
                issues.append((cyc, g, k, c))
                cyc += 1 + (c == 1 and k % 2 == 0) + 2 * (c == CH - 1 and k == 2)
        cyc += 3 if g != 1 else 12
    end = cyc + DL + 6
    sel, kd, acc, wr = {}, {}, {}, {}
    for x, g, k, c in issues:
        qv, bank, rmax, keys, valid = groups[g]
        sel[x] = (c, bank)
        kd[x + 1 + KA] = chunk_bits(P, keys[k], c)
        tag = tl.const(dict(valid=1, glob=0, first=c == 0, last=c == CH - 1, p=k, bank=bank,
                            uvalid=valid[k], fkey=k == 0, lkey=k == len(keys) - 1,
                            reset_max=rmax)).as_bits()
        acc[x + 1 + DL] = tag
        if c == CH - 1:
            wr[x + 2 + DL] = tag
    last_issue = {g: max(x for x, gg, _, _ in issues if gg == g) for g in range(3)}
    scores = [keys.astype(np.int64) @ qv.astype(np.int64) for qv, _, _, keys, _ in groups]
    gmax = [max(int(s) for s, v in zip(sc, grp[4]) if v) for sc, grp in zip(scores, groups)]

    async def tb(ctx):
        ctx.set(dut.rows[0].as_value(), pack_row(q[0]))
        ctx.set(dut.rows[1].as_value(), pack_row(q[1]))
        for x in range(end):
            junk = int.from_bytes(rng.bytes(8), "little")
            c, bank = sel.get(x, (int(rng.integers(0, CH)), int(rng.integers(0, 2))))
            ctx.set(dut.chunk, c)
            ctx.set(dut.qbank[0], bank)
            ctx.set(dut.kdat, kd.get(x, junk))
            ctx.set(dut.tag_acc.as_value(), acc.get(x, 0))
            ctx.set(dut.tag_write.as_value(), wr.get(x, 0))
            if x == last_issue[0] + 1:  # bank 0's next group (C) has other queries
                ctx.set(dut.rows[0].as_value(), pack_row(q[2]))
            if x == last_issue[1] + DL + 6:  # groups A and B done
                assert ctx.get(dut.row_max[0]) == gmax[0]
                assert ctx.get(dut.row_max[1]) == max(gmax[0], gmax[1])
            await ctx.tick()
        assert ctx.get(dut.row_max[0]) == gmax[2]
        assert ctx.get(dut.row_max[1]) == max(gmax[0], gmax[1])
        # the score memory: bank 0 holds C's scores over A's first ones, bank 1 B's
        want = {(p, 0): (scores[0][p], groups[0][4][p]) for p in range(6)}
        want.update({(p, 0): (scores[2][p], groups[2][4][p]) for p in range(3)})
        want.update({(p, 1): (scores[1][p], groups[1][4][p]) for p in range(4)})
        for (p, b), (s, v) in want.items():
            ctx.set(dut.score_raddr, p + b * SD)
            await ctx.tick()
            raw = ctx.get(dut.score_rdata)
            val = raw & ((1 << SW) - 1)
            val -= (val >> (SW - 1)) << SW
            assert (val, raw >> SW) == (int(s), v), (p, b)

    simulate(dut, tb)


# --- PVIssue ------------------------------------------------------------------------------------

@pytest.mark.parametrize("P", [P1, P1P], ids=["u1", "u1_p45"])
def test_pv_issue(P):
    """Stage 2's control with a stand-in score-bank queue, K/V store (V data a cycle after the
    address) and accumulator-bank flags: five groups (main groups, a max pass, two sub-groups of
    a global P.V pass) taken in bank order once present and written, a max pass only released
    (even into a full accumulator bank), a P.V group not before its accumulator bank is free;
    per P.V group the keys chunk by chunk (window keys then global keys) with the score address
    at the issue (t0), the tags at ``tag_score``, ``tag_acc_early`` and ``tag_acc`` and the V
    chunk at the multipliers at the cycles of :func:`stage2_cycles`; the queue's pulses, the
    release position (a group's first key, the front groups' 0), the accumulator banks claimed
    and ``grp_done`` after each group's last accumulation; a P.V group waiting behind another
    taken the cycle after its last issue."""
    CH, SD, B = P.chunks, P.score_depth, P.ring_rows
    T = stage2_cycles(P)
    assert not P.paired_max
    dut = PVIssue(P)
    rng = np.random.default_rng(6)
    pat = HybridPattern(13, 2, 1, 2, (3, 8), limits=P.limits())
    vpos = rng_rows(rng, 40, P.head_dim)
    gv = rng_rows(rng, 2, P.head_dim)
    base = dict(no_pv=0, reset_max=0, qbank=0, kmax=0, lim=0, clip=0, kig=0, hits2=0, nxt=0)
    E = [  # (descriptor, key count, present at, scores written at, release position, abank)
        (dict(base, main=1, reset_acc=1, final=1, active=1, start=4, step=2, nglob=2), 6, 5,
         12, 4, 0),
        (dict(base, main=0, no_pv=1, reset_acc=1, final=0, active=1, start=13, step=1,
              nglob=0), 8, 10, 20, 13, None),
        (dict(base, main=1, reset_acc=1, final=1, active=1, start=1, step=2, nglob=1), 3, 22,
         26, 0, 1),
        (dict(base, main=0, reset_acc=1, final=0, active=1, start=20, step=1, nglob=0), 8, 30,
         None, 20, 0),
        (dict(base, main=0, reset_acc=0, final=1, active=1, start=28, step=1, nglob=0), 5, 32,
         36, 28, 0),
    ]
    ACC1_FREE = 90  # accumulator bank 1 is full (a previous group's rows) until then
    DSET3 = 150  # entry 3's last score is written (s1_done_set) then
    # the ring's V rows: those of the positions the groups read (no two on one ring row), the
    # others another row's
    ring_v = list(rng_rows(rng, B, P.head_dim))
    for e in (0, 2, 3, 4):
        for p in range(E[e][1] - E[e][0]["nglob"]):
            pos = E[e][0]["start"] + p * E[e][0]["step"]
            ring_v[pos % B] = vpos[pos]

    def issues_of(e):
        desc, count = E[e][0], E[e][1]
        kw = count - desc["nglob"]
        out = []
        for p in range(count):
            for c in range(CH):
                if p < kw:
                    data = chunk_bits(P, vpos[desc["start"] + p * desc["step"]], c)
                else:
                    data = chunk_bits(P, gv[p - kw], c)
                out.append(dict(p=p, c=c, glob=p >= kw, data=data, first=c == 0,
                                fkey=p == 0 and desc["reset_acc"],
                                lkey=p == count - 1 and c == CH - 1))
        return out

    async def tb(ctx):
        await start_job(ctx, dut, job_fields(P, pat, cfg_order=[8, 3]))
        queue = [[0, 2, 4], [1, 3]]  # the entries per score bank, in order
        slot = [None, None]
        done = [0, 0]
        acc_full = 0b10
        acc_clear = {}  # cycle -> bank
        prev_v = prev_g = 0
        log = {k: [] for k in ("take", "rel", "busy_clr", "busy_done", "claim", "grp",
                               "score", "acc", "early", "vdat", "addr")}
        for cyc in range(400):
            for b in range(2):
                if slot[b] is None and queue[b]:
                    slot[b] = queue[b].pop(0)
                    done[b] = 0
                e = slot[b]
                present = e is not None and cyc >= E[e][2]
                if present and E[e][3] is not None and cyc >= E[e][3]:
                    done[b] = 1
            ctx.set(dut.q_valid, sum(1 << b for b in range(2) if slot[b] is not None
                                     and cyc >= E[slot[b]][2]))
            ctx.set(dut.s1_done, done[0] | done[1] << 1)
            # entry 3's scores: s1_done_set, then s1_done a cycle later (as the queue does)
            dset = 0b10 if cyc == DSET3 else 0
            if cyc == DSET3 + 1:
                done[1] = 1
            ctx.set(dut.s1_done_set, dset)
            for b in range(2):
                if slot[b] is not None:
                    ctx.set(dut.q_desc[b].as_value(), make_desc(P, **E[slot[b]][0]))
                    ctx.set(dut.q_count[b], E[slot[b]][1])
            if cyc == ACC1_FREE:
                acc_full &= ~0b10
            if cyc in acc_clear:
                acc_full &= ~(1 << acc_clear.pop(cyc))
            ctx.set(dut.acc_full, acc_full)
            ctx.set(dut.v_data, chunk_bits(P, ring_v[prev_v // CH], prev_v % CH))
            ctx.set(dut.gv_data, chunk_bits(P, gv[(prev_g // CH) % 2], prev_g % CH))
            # outputs
            qc, dc, bc = ctx.get(dut.q_clr), ctx.get(dut.done_clr), ctx.get(dut.busy_clr)
            assert qc == dc, cyc
            if qc:
                b = qc.bit_length() - 1
                assert qc == 1 << b and slot[b] is not None, cyc
                e = slot[b]
                assert cyc >= E[e][2] and (done[b] or dset >> b & 1), f"entry {e} too early"
                log["take"].append((cyc, e))
            if bc:
                log["busy_clr"].append((cyc, bc))
            if ctx.get(dut.busy_done):
                log["busy_done"].append((cyc, ctx.get(dut.busy_done)))
            if ctx.get(dut.release_en):
                log["rel"].append((cyc, ctx.get(dut.release_pos)))
            cl = ctx.get(dut.acc_claim)
            if cl:
                log["claim"].append((cyc, cl))
                acc_full |= cl
            if ctx.get(dut.grp_done):
                g = (cyc, ctx.get(dut.grp_final), ctx.get(dut.grp_abank), ctx.get(dut.grp_active))
                log["grp"].append(g)
                if g[1]:
                    acc_clear[cyc + 30] = g[2]
            for name, sig in (("score", dut.tag_score), ("acc", dut.tag_acc),
                              ("early", dut.tag_acc_early)):
                t = ctx.get(sig)
                if t.valid:
                    log[name].append((cyc, t))
            log["vdat"].append(ctx.get(dut.vdat))
            log["addr"].append(ctx.get(dut.score_addr))
            prev_v, prev_g = ctx.get(dut.v_addr[0]), ctx.get(dut.gv_addr[0])
            await ctx.tick()
            if qc:
                slot[qc.bit_length() - 1] = None

        takes = log["take"]
        assert [e for _, e in takes] == [0, 1, 2, 3, 4], takes
        tk = dict((e, c) for c, e in takes)
        assert tk[3] == DSET3 + 1, "the take of a group whose scores are being written"
        assert tk[2] >= ACC1_FREE, "a P.V group taken into a full accumulator bank"
        assert tk[1] < ACC1_FREE, "the max pass waited for an accumulator bank"
        assert log["rel"] == [(tk[e], E[e][4]) for e in range(5)], log["rel"]
        assert log["busy_clr"] == [(tk[1], 0b10)]
        assert log["claim"] == [(tk[e], 1 << E[e][5]) for e in (0, 2, 4)], log["claim"]
        # the P.V groups' issues
        pv = [0, 2, 3, 4]
        want = [(e, i) for e in pv for i in issues_of(e)]
        assert len(log["score"]) == len(want)
        for (cyc, t), (e, i) in zip(log["score"], want):
            desc = E[e][0]
            what = f"entry {e} key {i['p']} chunk {i['c']}"
            bank = [0, 1, 0, 1, 0][e]
            assert cyc - T["score"] > tk[e], what
            assert log["addr"][cyc - T["score"]] == i["p"] + bank * SD, what  # (at t0)
            assert (t.first, t.fkey, t.lkey, t.bank, t.glob) == (
                i["first"], i["fkey"], i["lkey"], bank, i["glob"]), what
            assert (t.final, t.abank, t.active) == (desc["final"], E[e][5], desc["active"]), what
        # the tags down the pipeline (tag_score, tag_acc, tag_acc_early: one issue's tag at
        # its cycles), the V chunk at the products' cycle
        assert T["accumulate"] == STAGE2_LATENCY + P.pv_pipeline
        assert [(c - T["score"] + T["acc"], t.as_bits()) for c, t in log["score"]] == \
            [(c, t.as_bits()) for c, t in log["acc"]]
        assert [(c + 1, t.as_bits()) for c, t in log["early"]] == \
            [(c, t.as_bits()) for c, t in log["acc"]]
        for (cyc, t), (e, i) in zip(log["acc"], want):
            tm = cyc - T["acc"] + T["tm"]
            assert log["vdat"][tm] == i["data"], f"entry {e} key {i['p']} chunk {i['c']}"
        # the score bank back at each P.V group's last issue
        last = [c - T["score"] for c, t in log["score"] if t.lkey]
        assert log["busy_done"] == [(c, 1 << [0, 1, 0, 1, 0][e]) for c, e in zip(last, pv)]
        # entries 3 and 4 back to back: decided in 3's last issue cycle, taken in the next,
        # issued from the cycle after the take (the cycle model's spacing, sw/cycles.py)
        first4 = [c - T["score"] for (c, t), (e, i) in zip(log["score"], want) if e == 4][0]
        assert tk[4] == last[2] + 1 and first4 == tk[4] + 1, (last[2], tk[4], first4)
        # grp_done after each group's last accumulation lands
        lacc = [c for c, t in log["acc"] if t.lkey]
        assert len(log["grp"]) == 4
        for (c, fin, ab, act), la, e in zip(log["grp"], lacc, pv):
            assert la < c <= la + 3, (e, c, la)
            assert (fin, ab, act) == (E[e][0]["final"], E[e][5], 1), e

    simulate(dut, tb)


# --- SoftmaxPV ----------------------------------------------------------------------------------

@pytest.mark.parametrize("P", [P1, P2, P1P], ids=["u1", "u2", "u1_p45"])
def test_softmax_pv(P):
    """One unit's exponentials and accumulators driven as PVIssue's tags time them (the score
    with ``tag_score``, ``tag_acc_early``, ``tag_acc`` and the V chunk at the cycles of
    :func:`stage2_cycles`): three groups with gaps,
    one continuing another's sums in the same accumulator bank; each bank's S and every chunk of
    its A (read at the ring's head, turned by ``turn``) equal the numerics module's
    ``exp2_neg(scale_diff(m - s, ...))`` summed, and times V, over the valid scores, with m the
    row maximum of the score's bank. Paired engines first: the P.V lanes as Q.K lanes
    (``pair_dot``), ``pair_sum`` the integer dot product of ``pair_a`` and ``pair_b``
    dot_latency cycles after them."""
    CH, SW, LW = P.chunks, P.score_width, P.lane_width
    T = stage2_cycles(P)
    dut = SoftmaxPV(P, P.units - 1)
    tl = tag2_layout(P)
    rng = np.random.default_rng(7)
    sm = nx.SoftmaxConfig(46000, 16, 0)
    d = P.head_dim
    mx = [123456, -40000]  # row maxima of score banks 0 and 1

    def scores_below(m, count):
        s = m - rng.integers(0, 7000, size=count)
        s[0] = m  # (e = 2^15)
        return s

    # (score bank, accumulator bank, reset, scores, validity, V rows)
    groups = [(0, 0, 1, scores_below(mx[0], 5), [1, 1, 0, 1, 1], rng_rows(rng, 5, d)),
              (1, 1, 1, scores_below(mx[1] - 37, 4), [1, 1, 1, 0], rng_rows(rng, 4, d)),
              (0, 0, 0, scores_below(mx[0], 3) - 5, [1, 0, 1], rng_rows(rng, 3, d))]
    issues, cyc = [], 2
    for g, grp in enumerate(groups):
        for k in range(len(grp[3])):
            for c in range(CH):
                issues.append((cyc, g, k, c))
                cyc += 1 + (k == 1 and c == 2) + 3 * (k == 2 and c == CH - 1)
        cyc += 2
    end = cyc + T["accumulate"] + 4
    sc, score, early, acc, vd = {}, {}, {}, {}, {}
    for x, g, k, c in issues:
        sbank, abank, reset, s, valid, v = groups[g]
        tag = tl.const(dict(valid=1, first=c == 0, fkey=k == 0 and reset,
                            lkey=k == len(s) - 1 and c == CH - 1, bank=sbank, glob=0,
                            final=1, abank=abank, active=1)).as_bits()
        sc[x + T["score"]] = tag
        score[x + T["sdata"]] = (int(s[k]) & ((1 << SW) - 1)) | (valid[k] << SW)
        early[x + T["early"]] = tag
        acc[x + T["acc"]] = tag
        vd[x + T["tm"]] = chunk_bits(P, v[k], c)
    # expected per accumulator bank, from the numerics module
    want_s, want_a = [0, 0], [np.zeros(d, np.int64), np.zeros(d, np.int64)]
    for sbank, abank, reset, s, valid, v in groups:
        e = nx.exp2_neg(nx.scale_diff(mx[sbank] - s, sm.mult_mant, sm.mult_shift))
        e = np.where(np.array(valid) == 1, e, 0)
        if reset:
            want_s[abank], want_a[abank] = 0, np.zeros(d, np.int64)
        want_s[abank] += int(e.sum())
        want_a[abank] = want_a[abank] + e @ v
    # (the vectors reach both ends of the exponential: 2^15 at the maximum, 0 past the cutoff)
    es = np.concatenate([nx.exp2_neg(nx.scale_diff(mx[g[0]] - g[3], sm.mult_mant, sm.mult_shift))
                         for g in groups])
    assert es.max() == 1 << nx.EXP_OUT_FRAC and (es == 0).any() and len(set(es)) > 8

    async def tb(ctx):
        for k, v in dict(mult_mant=sm.mult_mant, mult_shift=sm.mult_shift,
                         out_shift=0).items():
            ctx.set(getattr(dut.job, k), v)
        ctx.set(dut.job.running, 1)
        ctx.set(dut.row_max[0], mx[0])
        ctx.set(dut.row_max[1], mx[1])
        if P.paired_max:
            pa, pb = rng_rows(rng, 6, LW), rng_rows(rng, 6, LW)
            want = {x + P.dot_latency: int(pa[x] @ pb[x]) for x in range(6)}
            for x in range(6 + P.dot_latency):
                ctx.set(dut.pair_dot, x < 6)
                ctx.set(dut.pair_a, pack_row(pa[x % 6]))
                ctx.set(dut.pair_b, pack_row(pb[x % 6]))
                if x in want:
                    assert ctx.get(dut.pair_sum) == want[x], x
                await ctx.tick()
            ctx.set(dut.pair_dot, 0)
        for x in range(end):
            ctx.set(dut.tag_score.as_value(), sc.get(x, 0))
            ctx.set(dut.score, score.get(x, int(rng.integers(0, 1 << (SW + 1)))))
            ctx.set(dut.tag_acc_early.as_value(), early.get(x, 0))
            ctx.set(dut.tag_acc.as_value(), acc.get(x, 0))
            ctx.set(dut.vdat, vd.get(x, int.from_bytes(rng.bytes(LW), "little")))
            await ctx.tick()
        for b in range(2):
            assert ctx.get(dut.sums[b]) == want_s[b], b
        for b in range(2):
            for c in range(CH):
                got = [int(x) for x in ctx.get(dut.heads[b])]
                assert got == list(want_a[b][c * LW:(c + 1) * LW]), (b, c)
                ctx.set(dut.turn, 1 << b)
                await ctx.tick()
                ctx.set(dut.turn, 0)
            assert [int(x) for x in ctx.get(dut.heads[b])] == list(want_a[b][:LW]), b
        assert [ctx.get(dut.sums[b]) for b in range(2)] == want_s

    simulate(dut, tb)


# --- Epilogue -----------------------------------------------------------------------------------

@pytest.mark.parametrize("P", [P1, P2], ids=["u1", "u2"])
def test_epilogue(P):
    """Finished groups handed over by ``grp_done`` (a non-final one ignored) with stand-in
    accumulator rings (A's chunks at the head, turned by ``turn`` of the bank the epilogue
    reads): each active unit's row on ``o`` equals the numerics module's normalisation of its A
    by its S (``normalise_sum``, ``reciprocal``, ``normalise_output``), banks in order and units
    in order, with ``o.ready`` paused; ``acc_full`` from the claim until the bank's last row is
    taken; no row offered while the job is not running."""
    U, CH, LW, d = P.units, P.chunks, P.lane_width, P.head_dim
    dut = Epilogue(P)
    rng = np.random.default_rng(8)
    out_shift = 3

    def acc_row():
        e = rng.integers(0, (1 << nx.EXP_OUT_FRAC) + 1, size=9)
        e[0] = 1 << nx.EXP_OUT_FRAC
        v = rng_rows(rng, 9, d)
        return e @ v, int(e.sum())

    def expect(a, s):
        p, sn = nx.normalise_sum(np.array([s]))
        return nx.normalise_output(a[None, :], p, nx.reciprocal(sn), out_shift)[0]

    # groups: (bank, active units); their A and S per unit
    plan = [(0, (1 << U) - 1), (1, 0b10 if U > 1 else 1), (0, 1)]
    data = [[acc_row() for _ in range(U)] for _ in plan]
    want = [(g, u, pack_row(expect(*data[g][u]))) for g, (b, act) in enumerate(plan)
            for u in range(U) if act >> u & 1]

    async def tb(ctx):
        await start_job(ctx, dut, dict(out_shift=out_shift))
        ring = {(u, b): [None, 0] for u in range(U) for b in range(2)}  # (A, S), head index
        events = {2: ("claim", 0), 5: ("done", 0), 7: ("nonfinal", 1), 9: ("claim", 1),
                  12: ("done", 1)}
        got, full_hist = [], []
        running, third = 1, None
        two = sum(1 for g, _, _ in want if g < 2)
        for cyc in range(900):
            if third is None and len(got) == two and not ctx.get(dut.acc_full) & 1:
                # the third group, into bank 0 once it is free, while the job is not running:
                # held back until it is
                third = cyc
                events.update({cyc: ("claim", 0), cyc + 3: ("done", 0)})
                running = 0
            if third is not None and cyc == third + 80:
                running = 1
            ev = events.get(cyc)
            ctx.set(dut.acc_claim, 0)
            ctx.set(dut.grp_done, 0)
            ctx.set(dut.job.running, running)
            if ev:
                kind, b = ev
                g = 2 if third is not None else b
                if kind == "claim":
                    ctx.set(dut.acc_claim, 1 << b)
                    for u in range(U):
                        ring[(u, b)] = [data[g][u], 0]
                else:
                    ctx.set(dut.grp_done, 1)
                    ctx.set(dut.grp_final, kind == "done")
                    ctx.set(dut.grp_abank, b)
                    ctx.set(dut.grp_active, plan[g][1] if kind == "done" else (1 << U) - 1)
            for (u, b), (ad, idx) in ring.items():
                if ad is not None:
                    a, s = ad
                    ctx.set(dut.heads[u][b].as_value(),
                            sum((int(x) & ((1 << P.acc_width) - 1)) << (P.acc_width * i)
                                for i, x in enumerate(a[idx * LW:(idx + 1) * LW])))
                    ctx.set(dut.sums[u][b], s)
            ready = cyc % 5 not in (1, 2)
            ctx.set(dut.o.ready, ready)
            if not running:
                assert not ctx.get(dut.o.valid), cyc
            if ctx.get(dut.o.valid) and ready:
                got.append((cyc, ctx.get(dut.o.payload.as_value())))
            full_hist.append(ctx.get(dut.acc_full))
            turn, bank = ctx.get(dut.turn), ctx.get(dut.bank)
            await ctx.tick()
            for u in range(U):
                if turn >> u & 1 and CH > 1:
                    ring[(u, bank)][1] = (ring[(u, bank)][1] + 1) % CH
            if len(got) == len(want):
                break
        assert [x for _, x in got] == [w for _, _, w in want], \
            f"rows {[x for _, x in got]} expected {[w for _, _, w in want]}"
        # acc_full: from a cycle after the claim until the bank's last row is out
        last = {}
        for (cyc, _), (g, u, _) in zip(got, want):
            last[g] = cyc
        assert all(full_hist[c] & 1 for c in range(3, last[0] + 1))
        assert all(full_hist[c] & 2 for c in range(10, last[1] + 1))
        assert not full_hist[last[1] + 3] & 2
        assert got[-1][0] >= third + 80

    simulate(dut, tb)


def test_score_unit_paired():
    """Paired engines' unit (two units, the second tested): a max pass of two groups, the first
    group's query chunk to the Q.K lanes and the other bank's to ``pair_a`` (at the lanes'
    cycle), ``pair_sum`` (the P.V lanes' dot product, driven here) for the second group; after
    ``pass_done`` each global group's first P.V sub-group (``gmax``, of ``gidx``) starts its
    row maximum from that group's maximum over the whole pass (both sub-groups, valid keys
    only), computed here in NumPy."""
    P = P2
    U, CH, DL, SD = P.units, P.chunks, P.dot_latency, P.score_depth
    assert P.paired_max and CH == 1 and not P.key_register
    u = U - 1
    dut = ScoreUnit(P, u)
    tl = tag1_layout(P)
    rng = np.random.default_rng(9)
    d = P.head_dim
    qa, qb, qp = rng_rows(rng, 3, d)  # the pair's two groups, a P.V sub-group's query
    big = [rng_rows(rng, 5, d), rng_rows(rng, 3, d)]  # the max pass's two sub-groups' keys
    small = rng.integers(-2, 3, size=(3, d))  # the P.V sub-groups' keys: small scores
    # (keys, bank, qbank, pair, reset_max, final, gmax, gidx, uvalid (this unit), uvalid_b)
    groups = [(big[0], 0, 0, 1, 1, 0, 0, 0, [1, 0, 1, 1, 1], [1, 1, 0, 1, 1]),
              (big[1], 1, 0, 1, 0, 1, 0, 0, [1, 1, 1], [0, 1, 1]),
              # the P.V sub-groups, global group 1's first (in bank 0), then group 0's: each
              # from its own maximum, not the other bank's
              (small, 0, 1, 0, 0, 0, 1, 1, [1, 1, 1], [0, 0, 0]),
              (small[:2], 1, 1, 0, 0, 0, 1, 0, [1, 1], [0, 0])]
    issues, cyc = [], 2
    for g, grp in enumerate(groups):
        for k in range(len(grp[0])):
            issues.append((cyc, g, k))
            cyc += 1 + (k == 1)
        cyc += 3 if g != 1 else 10  # (the P.V pass a while after the max pass)
    end = cyc + DL + 6
    sel, kd, acc, wr, psum = {}, {}, {}, {}, {}
    for x, g, k in issues:
        keys, bank, qbank, pair, rmax, final, gm, gidx, uv, uvb = groups[g]
        sel[x] = qbank
        kd[x + 1] = pack_row(keys[k])
        tag = tl.const(dict(valid=1, glob=0, first=1, last=1, p=k, bank=bank,
                            uvalid=uv[k] << u, fkey=k == 0, lkey=k == len(keys) - 1,
                            reset_max=rmax, pair=pair, uvalid_b=uvb[k] << u, final=final,
                            gmax=gm, gidx=gidx)).as_bits()
        acc[x + 1 + DL] = tag
        wr[x + 2 + DL] = tag
        if pair:
            psum[x + 1 + DL] = int(keys[k] @ qb)
    pass_done_at = max(x for x, g, _ in issues if g == 1) + 3 + DL
    pair_at = {x + 1 for x, g, _ in issues if groups[g][3]}  # the max pass at the lanes
    # each group's maximum over the pass (valid keys only)
    sa = [int(big[g][k] @ qa) for g in range(2) for k in range(len(big[g]))
          if groups[g][8][k]]
    sb = [int(big[g][k] @ qb) for g in range(2) for k in range(len(big[g]))
          if groups[g][9][k]]
    pv_max = [max(int(x @ qp) for x in small), max(int(x @ qp) for x in small[:2])]
    assert max(sa) > max(pv_max) and max(sb) > max(pv_max) and max(sa) != max(sb)

    async def tb(ctx):
        ctx.set(dut.rows[0].as_value(), pack_row(qa))
        ctx.set(dut.rows[1].as_value(), pack_row(qb))
        for x in range(end):
            if x == min(i for i, g, _ in issues if g == 2) - 1:
                ctx.set(dut.rows[1].as_value(), pack_row(qp))
            ctx.set(dut.chunk, 0)
            qbank = sel.get(x, int(rng.integers(0, 2)))
            for j in range(len(dut.qbank)):
                ctx.set(dut.qbank[j], qbank)
            ctx.set(dut.kdat, kd.get(x, int.from_bytes(rng.bytes(d), "little")))
            ctx.set(dut.tag_acc.as_value(), acc.get(x, 0))
            ctx.set(dut.tag_write.as_value(), wr.get(x, 0))
            ctx.set(dut.pair_sum, psum.get(x, int(rng.integers(-1000, 1000))))
            ctx.set(dut.pass_done, x == pass_done_at)
            ctx.set(dut.pass_gidx, 0)
            if x in pair_at:
                assert ctx.get(dut.pair_a) == pack_row(qb), x  # the other bank's query
            await ctx.tick()
        assert ctx.get(dut.row_max[0]) == max(sb), (ctx.get(dut.row_max[0]), max(sb))
        assert ctx.get(dut.row_max[1]) == max(sa), (ctx.get(dut.row_max[1]), max(sa))
        # the P.V sub-groups' scores in the score memory
        for g in (2, 3):
            keys, bank = groups[g][0], groups[g][1]
            for k in range(len(keys)):
                ctx.set(dut.score_raddr, k + bank * SD)
                await ctx.tick()
                raw = ctx.get(dut.score_rdata)
                SW = P.score_width
                val = (raw & ((1 << SW) - 1)) - ((raw >> (SW - 1) & 1) << SW)
                assert (val, raw >> SW) == (int(keys[k] @ qp), 1), (g, k)

    simulate(dut, tb)
