"""The board's row movers (``fpga.feeders``) in amaranth.sim.

``RowBuffer`` (2 and 5 rows): a random source (valid dropped at random, payload garbage while
not valid) and a random sink (ready dropped at random): every row arrives once, in order,
unchanged; a row offered stays offered and stable until taken; with both sides always willing a
row leaves every cycle; the input's ready never depends on the output's ready in the same cycle.

``RowReader`` on a pipelined block-RAM buffer (``fpga.ram.SinglePortRAM``, 3 cycles of read
latency, a row per word): random indices, random index valid and random row ready; every row
read equals the RAM's row at its index, in order, held until taken; one row per cycle when both
sides are willing; a ``clear`` drops rows in flight, and the rows asked for after it come out.
"""

import random

import pytest
from amaranth.sim import Simulator

from amaranth.hdl import Module

from swattn.fpga.feeders import RowBuffer, RowReader
from swattn.fpga.ram import SinglePortRAM

WIDTH = 40


def _sink_step(got, offered, ov, op, ready, dropped=False):
    """One cycle of the random sink: a row offered in the last cycle and not taken must still be
    offered, unchanged (unless a clear ``dropped`` it now). Returns the row left offered."""
    if offered is not None:
        assert ov, "a row offered was withdrawn before it was taken"
        assert op == offered, "a row offered changed before it was taken"
    if dropped:
        return None
    if ov and ready:
        got.append(op)
        return None
    return op if ov else None


def _run(p_valid, p_ready, count, seed, depth=2):
    rng = random.Random(seed)
    dut = RowBuffer(WIDTH, depth)
    rows = [rng.getrandbits(WIDTH) for _ in range(count)]
    got, log = [], {"cycles": 0}

    async def tb(ctx):
        i = 0
        offered = None  # (payload) the buffer offered last cycle without a take
        while len(got) < count:
            if log["cycles"] > 20 * count + 50:
                raise AssertionError(f"stalled: {len(got)} of {count} rows out")
            valid = i < count and rng.random() < p_valid
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, rows[i] if valid else rng.getrandbits(WIDTH))
            ready = rng.random() < p_ready
            # i.ready is a register: the same whatever o.ready is in this cycle
            ctx.set(dut.o.ready, 0)
            r0 = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, 1)
            r1 = ctx.get(dut.i.ready)
            assert r0 == r1, "i.ready follows o.ready combinationally"
            ctx.set(dut.o.ready, ready)
            offered = _sink_step(got, offered, ctx.get(dut.o.valid), ctx.get(dut.o.payload), ready)
            if valid and ctx.get(dut.i.ready):
                i += 1
            await ctx.tick()
            log["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return rows, got, log["cycles"]


@pytest.mark.parametrize("depth", [2, 5])
@pytest.mark.parametrize("p_valid,p_ready,seed", [
    (0.5, 0.5, 1), (0.9, 0.3, 2), (0.3, 0.9, 3), (1.0, 0.7, 4), (0.7, 1.0, 5)])
def test_row_buffer_in_order_and_stable(p_valid, p_ready, seed, depth):
    rows, got, _ = _run(p_valid, p_ready, 300, seed, depth)
    assert got == rows


@pytest.mark.parametrize("depth", [2, 5])
def test_row_buffer_full_rate(depth):
    rows, got, cycles = _run(1.0, 1.0, 200, 6, depth)
    assert got == rows
    assert cycles <= 200 + 2, f"{cycles} cycles for 200 rows: not one row per cycle"


def _reader_dut(rows, width, parts):
    m = Module()
    rams = [SinglePortRAM(width, rows, pipelined=True, slice_bits=16) for _ in range(parts)]
    reader = RowReader(rows, 1, width, parts, latency=rams[0].latency)
    m.submodules.reader = reader
    for p, ram in enumerate(rams):
        m.submodules[f"ram{p}"] = ram
    return m, reader, rams


def _run_reader(p_valid, p_ready, count, seed, parts=2, clear_at=None):
    """Fill the RAMs through their write port, then read ``count`` random indices; a ``clear``
    at read cycle ``clear_at`` restarts the request list from the first index not yet taken."""
    rng = random.Random(seed)
    rows, width = 32, 40
    m, reader, rams = _reader_dut(rows, width, parts)
    content = [[rng.getrandbits(width) for _ in range(rows)] for _ in range(parts)]
    want = [rng.randrange(rows) for _ in range(count)]
    expect = [sum(content[p][i] << (p * width) for p in range(parts)) for i in want]
    got, log = [], {"cycles": 0}

    async def tb(ctx):
        for a in range(rows):  # the link's writes
            for p, ram in enumerate(rams):
                ctx.set(ram.addr, a)
                ctx.set(ram.wdata, content[p][a])
                ctx.set(ram.we, 1)
            await ctx.tick()
        for ram in rams:
            ctx.set(ram.we, 0)
        i = 0
        offered = None
        cycle = 0
        while len(got) < count:
            if cycle > 30 * count + 100:
                raise AssertionError(f"stalled: {len(got)} of {count} rows out")
            clear = clear_at is not None and cycle == clear_at
            ctx.set(reader.clear, clear)
            if clear:  # everything in flight is dropped: ask again from the first row not out
                i = len(got)
            valid = not clear and i < count and rng.random() < p_valid
            ctx.set(reader.index.valid, valid)
            ctx.set(reader.index.payload, want[i] if valid else rng.randrange(rows))
            ready = rng.random() < p_ready
            ctx.set(reader.row.ready, ready)
            addr = ctx.get(reader.addr)
            for ram in rams:  # the feeder owns the RAMs (as in fpga/core.py during a job)
                ctx.set(ram.addr, addr)
            offered = _sink_step(got, offered, ctx.get(reader.row.valid),
                                 ctx.get(reader.row.payload), ready, dropped=clear)
            if valid and ctx.get(reader.index.ready):
                i += 1
            await ctx.tick()
            cycle += 1
        log["cycles"] = cycle

    for p, ram in enumerate(rams):
        m.d.comb += reader.rdata[p * width:(p + 1) * width].eq(ram.rdata)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return expect, got, log["cycles"]


@pytest.mark.parametrize("p_valid,p_ready,seed", [
    (0.5, 0.5, 11), (0.9, 0.3, 12), (0.3, 0.9, 13), (1.0, 0.6, 14), (0.6, 1.0, 15)])
def test_pipelined_reader_rows_in_order(p_valid, p_ready, seed):
    expect, got, _ = _run_reader(p_valid, p_ready, 200, seed)
    assert got == expect


def test_pipelined_reader_full_rate():
    expect, got, cycles = _run_reader(1.0, 1.0, 200, 16)
    assert got == expect
    # 3 cycles of RAM latency before the first row, then one row per cycle
    assert cycles <= 200 + 3 + 1, f"{cycles} cycles for 200 rows: not one row per cycle"


@pytest.mark.parametrize("clear_at,seed", [(5, 17), (40, 18), (41, 19)])
def test_pipelined_reader_clear_drops_rows_in_flight(clear_at, seed):
    expect, got, _ = _run_reader(0.8, 0.7, 120, seed, clear_at=clear_at)
    assert got == expect
