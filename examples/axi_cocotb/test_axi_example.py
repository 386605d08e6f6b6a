"""One attention job through the AXI ports of a generated swattn engine, with cocotb.

The engine (``swattn generate --bus axi``) is driven only through its ports, with cocotbext-axi:
an AxiLiteMaster writes and reads the registers, two AxiStreamSources feed the Q rows and the
K/V rows, an AxiStreamSink takes the output rows. The output is checked bit for bit against
swattn's golden model. ``run.py`` beside this file generates the Verilog and runs this test.
"""

import json
import logging
import os
import warnings

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)

from swattn.sw.golden import attention
from swattn.sw.spec import axi_regs, schedule
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.pattern import HybridPattern
from swattn.sw.spec.regs import Error, State, unpack_status

# cocotbext-axi 0.1 calls cocotb 1.x API that cocotb 2 deprecates: not this test's business
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi")

PERIOD_NS = 10


def pack(rows: np.ndarray) -> list[int]:
    """int8 rows -> one integer per row, element 0 in the low byte (the tdata layout)."""
    return [int.from_bytes(r.astype(np.int8).tobytes(), "little") for r in rows]


def unpack(words: list[int], d: int) -> np.ndarray:
    """The inverse of :func:`pack`: integers -> int8 rows of ``d`` elements."""
    return np.array([np.frombuffer(w.to_bytes(d, "little"), dtype=np.int8) for w in words])


@cocotb.test()
async def one_job(dut):
    # the engine's parameters: run.py passes those it generated the Verilog with
    params = EngineParams(**json.loads(os.environ["AXI_EXAMPLE_PARAMS"]))
    d = params.head_dim
    regs = axi_regs.by_name(params)  # register name -> offset, access, fields

    # --- the job: a window of 4 keys each side, tokens 0 and 47 global, random int8 data ------
    pattern = HybridPattern(n=48, left=4, right=4, dilation=1, globals_=(0, 47),
                            limits=params.limits())
    # the softmax scale: the typical spread of random int8 dot products becomes 2^-4 in weight
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * d ** 0.5 / 3), 2)
    rng = np.random.default_rng(7)
    q, k, v = (rng.integers(-128, 128, size=(pattern.n, d), dtype=np.int8) for _ in range(3))

    # --- clock, bus parts and reset (aresetn is active low and synchronous) -------------------
    cocotb.start_soon(Clock(dut.aclk, PERIOD_NS, unit="ns").start())
    dut.aresetn.value = 0
    for prefix in ("s_axil", "s_axis_q", "s_axis_kv", "m_axis_o"):  # cocotbext-axi's loggers:
        logging.getLogger(f"{dut._log.name}.{prefix}").setLevel(logging.WARNING)  # quieter
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                         reset_active_level=False)
    # byte_lanes=1: a beat is one integer holding the whole row
    q_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_q"), dut.aclk, dut.aresetn,
                            reset_active_level=False, byte_lanes=1)
    kv_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_kv"), dut.aclk, dut.aresetn,
                             reset_active_level=False, byte_lanes=1)
    o_sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_o"), dut.aclk, dut.aresetn,
                           reset_active_level=False, byte_lanes=1)
    # the sources leave tdata X until their first beat; give it a value (Icarus is 4-state)
    dut.s_axis_q_tdata.value = 0
    dut.s_axis_kv_tdata.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await RisingEdge(dut.aclk)

    # --- IDENT says which engine this is ------------------------------------------------------
    ident = axi_regs.IDENT_LAYOUT.from_bits(await axil.read_dword(regs["IDENT"].offset))
    assert (int(ident.head_dim), int(ident.lanes)) == (d, params.lanes)

    # --- configuration: one 32-bit register per field, one per global token -------------------
    fields = {"n": pattern.n, "left": pattern.left, "right": pattern.right,
              "dilation": pattern.dilation, "n_globals": len(pattern.globals_),
              "mult_mant": cfg.mult_mant, "mult_shift": cfg.mult_shift,
              "out_shift": cfg.out_shift}
    for name, value in fields.items():
        await axil.write_dword(regs[f"CONFIG_{name.upper()}"].offset, value)
    for i, index in enumerate(pattern.globals_):
        await axil.write_dword(regs[f"GLOBAL_{i}"].offset, index)
    irq_both = axi_regs.IRQ_LAYOUT.const({"done": 1, "error": 1}).as_bits()
    await axil.write_dword(regs["IRQ_ENABLE"].offset, irq_both)

    # --- start, then stream the rows in the order the engine takes them ----------------------
    await axil.write_dword(regs["CONTROL"].offset,
                           axi_regs.CONTROL_LAYOUT.const({"start": 1}).as_bits())
    q_rows = schedule.query_order(pattern, params)   # row indices, in s_axis_q order
    kv_rows = schedule.kv_order(pattern, params)     # row indices, in s_axis_kv order
    kv_words = [kw | (vw << 8 * d)                   # K in the low half, V above
                for kw, vw in zip(pack(k[kv_rows]), pack(v[kv_rows]))]
    # each stream is one frame (tlast on its last row: accepted, not needed); both run at once
    q_src.send_nowait(AxiStreamFrame(pack(q[q_rows])))
    kv_src.send_nowait(AxiStreamFrame(kv_words))

    # --- the output: one frame, tlast on the job's last row -----------------------------------
    frame = await with_timeout(o_sink.recv(), 1_000_000, "ns")
    assert len(frame.tdata) == pattern.n, f"{len(frame.tdata)} output rows, expected {pattern.n}"

    # --- the irq (IRQ_STATUS.done), STATUS and CYCLES -----------------------------------------
    for _ in range(100):
        if int(dut.irq.value):
            break
        await RisingEdge(dut.aclk)
    assert int(dut.irq.value), "no irq after the job's last output row"
    state, error = unpack_status(await axil.read_dword(regs["STATUS"].offset))
    assert (state, error) == (State.DONE, Error.NONE), (state, error)
    cycles = await axil.read_dword(regs["CYCLES"].offset)
    pending = await axil.read_dword(regs["IRQ_STATUS"].offset)
    assert int(axi_regs.IRQ_LAYOUT.from_bits(pending).done) == 1
    await axil.write_dword(regs["IRQ_STATUS"].offset, pending)  # write 1s to clear (W1C)
    await ClockCycles(dut.aclk, 2)
    assert not int(dut.irq.value) and q_src.idle() and kv_src.idle() and o_sink.empty()

    # --- the rows come back in the engine's order: put them in token order and compare --------
    out = np.zeros_like(q)
    out[schedule.output_order(pattern, params)] = unpack(frame.tdata, d)
    want = attention(q, k, v, pattern, cfg)
    wrong = int(np.any(out != want, axis=1).sum())
    assert wrong == 0, f"{wrong} of {pattern.n} output rows differ from the golden model"
    dut._log.info("%d of %d output rows equal the golden model bit for bit; %d cycles, "
                  "%d Q rows and %d K/V rows streamed", pattern.n - wrong, pattern.n, cycles,
                  len(q_rows), len(kv_rows))
