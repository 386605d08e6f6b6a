"""The engine testbench (:mod:`swattn.sim.tb_engine`) with a 4-state check of the outputs.

Runs the same job loop and, beside it, samples every cycle (outside reset) ``status``,
``cycles``, ``o.valid``, ``q.ready``, ``kv.ready`` and, while ``o.valid`` is high, ``o.payload``.
Any bit that is X or Z is recorded in the JSON file named by ``SWATTN_XCHECK`` (first 20 events
and the count); the regression fails the run if there is any. Meaningful under Icarus (4-state);
under Verilator (2-state) it checks nothing but costs little.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from . import tb_engine

ALWAYS = ("status", "cycles", "o__valid", "q__ready", "kv__ready")


def _unresolved(value) -> bool:
    return not set(str(value)) <= {"0", "1"}


async def _monitor(dut, path: str):
    events, count, cycle = [], 0, 0
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        cycle += 1
        if str(dut.rst.value) == "1":
            continue
        names = list(ALWAYS)
        if str(dut.o__valid.value) == "1":
            names.append("o__payload")
        bad = [n for n in names if _unresolved(getattr(dut, n).value)]
        if bad:
            count += 1
            if len(events) < 20:
                events.append({"cycle": cycle, "signals": {n: str(getattr(dut, n).value)
                                                           for n in bad}})
            with open(path, "w") as f:
                json.dump({"count": count, "events": events}, f)


@cocotb.test()
async def jobs_xcheck(dut):
    path = os.environ["SWATTN_XCHECK"]
    with open(path, "w") as f:
        json.dump({"count": 0, "events": []}, f)
    cocotb.start_soon(_monitor(dut, path))
    await tb_engine.jobs.func(dut)
