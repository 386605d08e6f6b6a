"""The board's two-row stream buffer (``fpga.feeders.RowBuffer``) in amaranth.sim.

A random source (valid dropped at random, payload garbage while not valid) and a random sink
(ready dropped at random): every row arrives once, in order, unchanged; a row offered stays
offered and stable until taken; with both sides always willing a row leaves every cycle; the
input's ready never depends on the output's ready in the same cycle.
"""

import random

import pytest
from amaranth.sim import Simulator

from swattn.fpga.feeders import RowBuffer

WIDTH = 150  # three copies of each row's load enable (RowBuffer.SLICE = 64)


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
