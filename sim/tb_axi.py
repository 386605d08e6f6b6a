"""cocotb testbench of the AXI top (:mod:`swattn.hw.axi`), driven only through its AXI ports with
cocotbext-axi: an ``AxiLiteMaster`` on ``s_axil``, an ``AxiStreamSource`` on ``s_axis_q`` and
on ``s_axis_kv`` and an ``AxiStreamSink`` on ``m_axis_o``, with pause generators from each
job's ``idle`` / ``stall`` probabilities. Every register offset and field comes from
:func:`swattn.sw.spec.axi_regs.register_map`.

Jobs come from ``SWATTN_JOBS`` like :mod:`swattn.sim.tb_engine`'s (:func:`swattn.sim.jobs.axi_jobs`):

* "ok": the configuration written register by register, CONTROL.start, the job's rows as one
  frame per stream (``tlast`` on the last row); the ``irq`` line must rise for IRQ_STATUS.done;
  the output must be one frame of exactly ``n`` rows (``tlast`` on the last), bit-exact against
  the golden model, STATUS DONE with no error, CYCLES non-zero, every input row taken, and
  IRQ_STATUS cleared by writing 1 (``irq`` low again).
* "busy": as "ok", with a second CONTROL.start ``busy_at`` cycles into the job: STATUS.error
  BUSY and IRQ_STATUS.error at the end, the job's output unchanged.
* "invalid": a refused configuration: ``irq`` for IRQ_STATUS.error, STATUS IDLE with the
  job's error code, no input row taken and no output row.
* "reset_mid": ``aresetn`` low ``abort_after`` cycles into a job; the next job must pass.
* "registers" (once): IDENT and LIMITS read back the engine's parameters (with bands,
  columns or the grid, what :func:`swattn.sw.spec.axi_regs.features` decodes), the reset values
  of every register, a read-only and an unmapped write answer SLVERR and change nothing (past
  the last register and past the last GLOBAL_i, BAND_i and COLUMN_i), an unmapped read answers
  SLVERR, byte strobes write only their bytes (in CONFIG_N and, on engines with bands, a BAND_i
  word, whose signed start reads back as written).

A job's pattern may have bands beside the window, key-only columns and a grid (engines with
them): their registers are written like the others (:func:`swattn.sw.spec.axi_regs.job_fields`,
:func:`~swattn.sw.spec.axi_regs.config_writes`), and the expected rows are the golden model's
key-set form (:class:`swattn.sim.scoreboard.Scoreboard`).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus

from ..sw.spec import axi_regs as ar
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .scoreboard import Scoreboard
from .streams import RowSink, RowSource, ints_to_rows
from .tb_engine import HANG_FACTOR, PERIOD_NS, apply_backpressure, run_spec, stream_words

OKAY, SLVERR = 0, 2


class AxiBench:
    """The AXI top with its cocotbext-axi parts; all of them reset with ``aresetn``."""

    def __init__(self, dut, params: EngineParams):
        self.dut = dut
        self.p = params
        self.d = params.head_dim
        self.regs = ar.by_name(params)
        clk, rstn = dut.aclk, dut.aresetn
        self.clk = clk
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rstn,
                                  reset_active_level=False)
        self.axil.write_if.log.setLevel("WARNING")
        self.axil.read_if.log.setLevel("WARNING")
        self.q = RowSource(AxiStreamBus.from_prefix(dut, "s_axis_q"), clk, rstn,
                           reset_active_level=False)
        self.kv = RowSource(AxiStreamBus.from_prefix(dut, "s_axis_kv"), clk, rstn,
                            reset_active_level=False)
        # (with tlast on the bus, a frame the sink returns is a whole job's output)
        self.o = RowSink(AxiStreamBus.from_prefix(dut, "m_axis_o"), clk, rstn,
                         reset_active_level=False)

    # --- registers ----------------------------------------------------------------------------
    async def read(self, name: str) -> int:
        resp = await self.axil.read_dword(self.regs[name].offset)
        return resp

    async def write(self, name: str, value: int) -> None:
        await self.axil.write_dword(self.regs[name].offset, value)

    async def status(self) -> tuple[regs.State, regs.Error]:
        return regs.unpack_status(await self.read("STATUS"))

    def irq_bits(self, value: int) -> dict:
        view = ar.IRQ_LAYOUT.from_bits(value)
        return {"done": int(view.done), "error": int(view.error)}

    async def configure(self, fields: dict) -> None:
        for offset, value in ar.config_writes(self.p, fields):
            await self.axil.write_dword(offset, value)

    async def start(self) -> None:
        await self.write("CONTROL", ar.CONTROL_LAYOUT.const({"start": 1}).as_bits())

    async def reset(self, cycles: int = 3):
        dut = self.dut
        dut.aresetn.value = 0
        for part in (self.q, self.kv):
            part.clear()
        self.o.clear()
        for _ in range(cycles):
            await RisingEdge(self.clk)
        dut.aresetn.value = 1
        await RisingEdge(self.clk)
        await self.write("IRQ_ENABLE", ar.IRQ_LAYOUT.const({"done": 1, "error": 1}).as_bits())

    async def wait_irq(self, max_cycles: int) -> None:
        async def rise():
            while True:
                await ReadOnly()
                if int(self.dut.irq.value):
                    return
                await RisingEdge(self.clk)
        try:
            await with_timeout(rise(), max_cycles * PERIOD_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(f"no irq after {max_cycles} cycles") from None
        await RisingEdge(self.clk)

    async def clear_irq(self) -> dict:
        """Read IRQ_STATUS, clear it by writing its bits back (W1C); the irq line must fall."""
        bits = await self.read("IRQ_STATUS")
        await self.write("IRQ_STATUS", bits)
        await RisingEdge(self.clk)
        await ReadOnly()
        line = int(self.dut.irq.value)
        await RisingEdge(self.clk)
        after = await self.read("IRQ_STATUS")
        return {**self.irq_bits(bits), "irq_after_clear": line, "status_after_clear": after}

    def end_job(self):
        for part in (self.q, self.kv, self.o):
            part.pause_with(0, "")
        self.q.flush()
        self.kv.flush()
        self.o.clear()


async def run_registers(bench: AxiBench, job: dict, res: dict) -> dict:
    p = bench.p
    problems = []
    ident_bits, limits_bits = await bench.read("IDENT"), await bench.read("LIMITS")
    ident = ar.IDENT_LAYOUT.from_bits(ident_bits)
    limits = ar.LIMITS_LAYOUT.from_bits(limits_bits)
    got = {"head_dim": int(ident.head_dim), "lanes": int(ident.lanes),
           "max_globals": int(ident.max_globals), "max_radius": int(limits.max_radius),
           "max_dilation": int(limits.max_dilation), "seq_width": int(limits.seq_width)}
    got.update(ar.features(ident_bits, limits_bits))
    want = {k: int(getattr(p, k)) for k in got}
    if got != want:
        problems.append(f"IDENT/LIMITS {got} != {want}")
    # reset values (IRQ_ENABLE was written by the bench's reset)
    for r in ar.register_map(p):
        if r.name in ("IDENT", "LIMITS", "IRQ_ENABLE", "CONTROL"):
            continue
        value = await bench.read(r.name)
        if r.name == "CYCLES" or r.name == "STATUS" or \
                r.name.startswith(("CONFIG_", "GLOBAL_", "BAND_", "COLUMN_")):
            if value != r.reset:
                problems.append(f"{r.name} = {value:#x} after reset, reset value {r.reset:#x}")
    # a read-only and an unmapped write: SLVERR, nothing changes
    before = await bench.read("IDENT")
    wr = await bench.axil.write(bench.regs["IDENT"].offset, b"\xff\xff\xff\xff")
    if int(wr.resp) != SLVERR or await bench.read("IDENT") != before:
        problems.append(f"write to IDENT: resp {int(wr.resp)}, IDENT changed or not SLVERR")
    for unmapped in unmapped_probes(p):
        wr = await bench.axil.write(unmapped, b"\x01\x00\x00\x00")
        rd = await bench.axil.read(unmapped, 4)
        if int(wr.resp) != SLVERR or int(rd.resp) != SLVERR:
            problems.append(f"unmapped 0x{unmapped:x}: write resp {int(wr.resp)}, "
                            f"read resp {int(rd.resp)}")
    if p.max_bands > 1:
        # a band word: the signed start reads back as written, a byte strobe writes its byte
        last = f"BAND_{p.max_bands - 2}"
        word = ar.BAND_LAYOUT.const({"start": -5, "count": 0x1234}).as_bits()
        await bench.write(last, word)
        await bench.axil.write(bench.regs[last].offset + 3, b"\x56")
        view = ar.BAND_LAYOUT.from_bits(await bench.read(last))
        if (int(view.start), int(view.count)) != (-5, 0x5634):
            problems.append(f"{last}: start {int(view.start)}, count {int(view.count):#x} read "
                            f"back, expected -5 and 0x5634")
        await bench.write(last, 0)
    # byte strobes: a one-byte write changes that byte of CONFIG_N only
    await bench.write("CONFIG_N", 0x11223344)
    await bench.axil.write(bench.regs["CONFIG_N"].offset + 1, b"\xab")
    value = await bench.read("CONFIG_N")
    if value != 0x1122AB44:
        problems.append(f"byte write: CONFIG_N = {value:#x}, expected 0x1122ab44")
    # a read and a write in flight together
    w_task = cocotb.start_soon(bench.write("CONFIG_LEFT", 5))
    r_value = await bench.read("CONFIG_N")
    await w_task
    if r_value != 0x1122AB44 or await bench.read("CONFIG_LEFT") != 5:
        problems.append("read beside a write returned the wrong value")
    await bench.write("CONFIG_N", 0)
    await bench.write("CONFIG_LEFT", 0)
    res.update(ok=not problems, problems=problems)
    return res


def unmapped_probes(p: EngineParams) -> list[int]:
    """Addresses with no register: past the last one, and where the engine has an array of
    registers (GLOBAL_i, BAND_i, COLUMN_i) or the key-set scalars, the word past each (or its
    first word, where the engine has none of it)."""
    regs = ar.register_map(p)
    mapped = {r.offset for r in regs}
    probes = {max(mapped) + 4, ar.GLOBAL_BASE + 4 * p.max_globals, ar.KEYS_BASE,
              ar.BAND_BASE + 4 * (p.max_bands - 1), ar.COLUMN_BASE + 4 * p.max_columns}
    probes |= {r.offset + 4 for r in regs if r.name.startswith("CONFIG_")}
    return sorted(a for a in probes if a not in mapped and a < 1 << ar.ADDR_WIDTH)


async def run_invalid(bench: AxiBench, job: dict, res: dict) -> dict:
    p = bench.p
    rng = random.Random(job["seed"])
    bench.q.send_rows([rng.getrandbits(8 * bench.d)])
    bench.kv.send_rows([rng.getrandbits(16 * bench.d)])
    await bench.configure(job["raw"])
    await bench.start()
    await bench.wait_irq(64 + 4 * p.max_globals)
    st, err = await bench.status()
    irq = await bench.clear_irq()
    for _ in range(8):
        await RisingEdge(bench.clk)
    # the refused job's one row on each stream is still offered, never taken
    taken = int(bench.q.idle()) + int(bench.kv.idle())
    out_rows = bench.o.count()
    bench.end_job()
    res.update(state=st.name, error=err.name, irq=irq, o_rows=out_rows, taken=taken,
               ok=(st == regs.State.IDLE and err.name == job["expect"] and irq["error"] == 1
                   and irq["done"] == 0 and irq["irq_after_clear"] == 0
                   and irq["status_after_clear"] == 0 and taken == 0 and out_rows == 0))
    return res


async def run_one(bench: AxiBench, job: dict) -> dict:
    p = bench.p
    kind = job.get("kind", "ok")
    res = {"seed": job["seed"], "kind": kind}
    if kind == "registers":
        return await run_registers(bench, job, res)
    if kind == "invalid":
        return await run_invalid(bench, job, res)
    sb = Scoreboard(job, p)
    pattern = sb.pattern
    await bench.configure(ar.job_fields(pattern, sb.cfg))
    qw, kw = stream_words(sb, p)
    apply_backpressure(bench.q, bench.kv, bench.o, job)
    bench.q.send_rows(qw)
    bench.kv.send_rows(kw)
    await bench.start()
    if kind == "reset_mid":
        await ClockCycles(bench.clk, job["abort_after"])
        bench.end_job()
        await bench.reset()
        res["ok"] = True
        return res
    if kind == "busy":
        await ClockCycles(bench.clk, job["busy_at"])
        await bench.start()
    budget = HANG_FACTOR * (4 * pattern.pairs() * 2 * bench.d // p.lanes + 64 * pattern.n + 2000)
    try:
        frame = await with_timeout(bench.o.recv(compact=False), budget * PERIOD_NS, "ns")
    except SimTimeoutError:
        raise AssertionError(f"no output frame after {budget} cycles "
                             f"({bench.o.count()} rows waiting)") from None
    await bench.wait_irq(64)
    st, err = await bench.status()
    cycles = await bench.read("CYCLES")
    irq = await bench.clear_irq()
    untaken = int(not bench.q.idle()) + int(not bench.kv.idle())
    extra = bench.o.count()
    bench.end_job()
    rows = frame.tdata
    res["frame_rows"] = len(rows)
    mism = sb.score(ints_to_rows(rows, bench.d), res) if len(rows) == pattern.n else -1
    busy = kind == "busy"
    ok = (mism == 0 and st == regs.State.DONE and err.name == ("BUSY" if busy else "NONE")
          and cycles > 0 and untaken == 0 and extra == 0 and irq["done"] == 1
          and irq["error"] == int(busy) and irq["irq_after_clear"] == 0
          and irq["status_after_clear"] == 0)
    res.update(cycles=cycles, state=st.name, error=err.name, pairs=pattern.pairs(), irq=irq,
               untaken=untaken, extra_rows=extra, ok=ok,
               bands=len(getattr(pattern, "bands", ())),
               columns=len(getattr(pattern, "columns", ())),
               grid=getattr(pattern, "grid", None) is not None)
    return res


@cocotb.test()
async def jobs(dut):
    await run_spec(dut, AxiBench, run_one, clock="aclk")
