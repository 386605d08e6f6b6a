"""The board's two-row stream buffer (``fpga.feeders.RowBuffer``) and its block-RAM row fetcher
(``fpga.feeders.RowFetcher``) in amaranth.sim.

A random source (valid dropped at random, payload garbage while not valid) and a random sink
(ready dropped at random): every row arrives once, in order, unchanged; a row offered stays
offered and stable until taken; with both sides always willing a row leaves every cycle; the
input's ready never depends on the output's ready in the same cycle.
"""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import memory
from amaranth.sim import Simulator

from swattn.fpga.feeders import RowBuffer, RowFetcher

WIDTH = 150  # five copies of each row's load enable (RowBuffer.SLICE = 32)


def _run(p_valid, p_ready, count, seed):
    rng = random.Random(seed)
    dut = RowBuffer(WIDTH)
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
            ov, op = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            if offered is not None:
                assert ov, "a row offered was withdrawn before it was taken"
                assert op == offered, "a row offered changed before it was taken"
            if ov and ready:
                got.append(op)
                offered = None
            else:
                offered = op if ov else None
            if valid and ctx.get(dut.i.ready):
                i += 1
            await ctx.tick()
            log["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return rows, got, log["cycles"]


@pytest.mark.parametrize("p_valid,p_ready,seed", [
    (0.5, 0.5, 1), (0.9, 0.3, 2), (0.3, 0.9, 3), (1.0, 0.7, 4), (0.7, 1.0, 5)])
def test_row_buffer_in_order_and_stable(p_valid, p_ready, seed):
    rows, got, _ = _run(p_valid, p_ready, 300, seed)
    assert got == rows


def test_row_buffer_full_rate():
    rows, got, cycles = _run(1.0, 1.0, 200, 6)
    assert got == rows
    assert cycles <= 200 + 2, f"{cycles} cycles for 200 rows: not one row per cycle"


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_row_buffer_clear_drops_rows(seed):
    """``clear`` (a new job) drops every row held, wherever the pointers stand, and a row offered
    or taken in its cycle does not count; rows after it arrive in order. Checked against a queue:
    a clear empties it, a put appends, a take must be its head."""
    rng = random.Random(seed)
    dut = RowBuffer(WIDTH)
    stats = {"clears_with_rows": 0, "taken": 0}

    async def tb(ctx):
        queue = []
        for _ in range(3000):
            clear = rng.random() < 0.08
            valid = rng.random() < 0.7
            payload = rng.getrandbits(WIDTH)
            ready = rng.random() < 0.5
            ctx.set(dut.clear, clear)
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, payload)
            ctx.set(dut.o.ready, ready)
            ov, op, ir = ctx.get(dut.o.valid), ctx.get(dut.o.payload), ctx.get(dut.i.ready)
            assert ov == bool(queue), f"o.valid {ov} with {len(queue)} rows queued"
            if queue:
                assert op == queue[0], "the row offered is not the oldest one put"
            assert ir == (len(queue) < 2), f"i.ready {ir} with {len(queue)} rows queued"
            if clear:
                stats["clears_with_rows"] += bool(queue)
                queue = []
            else:
                if ov and ready:
                    queue.pop(0)
                    stats["taken"] += 1
                if valid and ir:
                    queue.append(payload)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    # the random run reached what it is meant to check
    assert stats["clears_with_rows"] > 20 and stats["taken"] > 500, stats


FETCH_ROWS, FETCH_BITS = 16, 40


def _fetch(p_index, p_ready, p_clear, cycles, seed):
    """A RowFetcher of two parts on two memories of random rows (read register, as block RAM),
    a random index source, a random sink and random clears. Checked against a model: the rows
    out are the memories' rows at the indices taken, in order, with none from before a clear; a
    row offered stays until taken. Returns (rows out, cycles with index and ready both up, rows
    out in those runs) for the rate check."""
    rng = random.Random(seed)
    data = [[rng.getrandbits(FETCH_BITS) for _ in range(FETCH_ROWS)] for _ in range(2)]
    m = Module()
    m.submodules.dut = dut = RowFetcher(FETCH_ROWS, FETCH_BITS, 2)
    for p in range(2):
        m.submodules[f"mem{p}"] = mem = memory.Memory(shape=FETCH_BITS, depth=FETCH_ROWS,
                                                      init=data[p])
        rp = mem.read_port()
        m.d.comb += [rp.addr.eq(dut.addr), rp.en.eq(dut.re),
                     dut.rdata[p * FETCH_BITS:(p + 1) * FETCH_BITS].eq(rp.data)]
    out = {"rows": 0}

    async def tb(ctx):
        expect = []  # rows of the indices taken since the last clear, not yet out
        offered = None
        for _ in range(cycles):
            clear = rng.random() < p_clear
            iv = rng.random() < p_index
            idx = rng.randrange(FETCH_ROWS)
            ready = rng.random() < p_ready
            ctx.set(dut.clear, clear)
            ctx.set(dut.index.valid, iv)
            ctx.set(dut.index.payload, idx)
            ctx.set(dut.row.ready, ready)
            ov, op, ir = ctx.get(dut.row.valid), ctx.get(dut.row.payload), ctx.get(dut.index.ready)
            if offered is not None:
                assert ov and op == offered, "a row offered changed or left before it was taken"
            if ov:
                assert expect, "a row offered that no index asked for (or from before a clear)"
                assert op == expect[0], "a row out of order or not the memories' row"
            if clear:
                expect, offered = [], None
            else:
                if ov and ready:
                    expect.pop(0)
                    out["rows"] += 1
                    offered = None
                else:
                    offered = op if ov else None
                if iv and ir:
                    expect.append(data[0][idx] | data[1][idx] << FETCH_BITS)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return out["rows"]


@pytest.mark.parametrize("p_index,p_ready,p_clear,seed", [
    (0.5, 0.5, 0.02, 10), (0.9, 0.3, 0.02, 11), (0.3, 0.9, 0.05, 12), (1.0, 0.7, 0.0, 13),
    (0.8, 1.0, 0.1, 14)])
def test_row_fetcher_rows_in_order(p_index, p_ready, p_clear, seed):
    rows = _fetch(p_index, p_ready, p_clear, 2000, seed)
    assert rows > 200, f"only {rows} rows out: the random run did not exercise the fetcher"


def test_row_fetcher_full_rate():
    """Index and sink always willing: after the first row (three cycles: read, register, FIFO)
    a row leaves every cycle."""
    rows = _fetch(1.0, 1.0, 0.0, 203, 15)
    assert rows == 200, f"{rows} rows in 203 cycles: not one row per cycle after the first"
