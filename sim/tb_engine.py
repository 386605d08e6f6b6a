"""cocotb testbench of the engine: stream sources, sink and monitors around the scoreboard.

Jobs come from the JSON file named by ``SWATTN_JOBS`` (written by :mod:`swattn.sim.runner`); one
result per job goes to ``SWATTN_RESULTS``. The parts (:mod:`swattn.sim.streams`, on
cocotbext-axi): a :class:`~swattn.sim.streams.RowSource` on each input stream (``q``, ``kv``)
with a pause generator from the job's ``idle`` probability, a
:class:`~swattn.sim.streams.RowSink` on ``o`` with one from its ``stall`` probability, and a
:class:`~swattn.sim.streams.RowMonitor` on each input stream counting the rows the engine takes.
A job queues its rows on the sources, starts the engine, waits for its ``n`` output rows (a hang
past its cycle budget fails it) and hands them to the :class:`~swattn.sim.scoreboard.Scoreboard`,
which compares them with :func:`swattn.sw.golden.attention`.

Job kinds (``kind``):

* "ok": the rows bit-exact in the engine's output order, state DONE with no error, every row
  offered on ``q`` and ``kv`` taken and no output row beyond the job's ``n`` (an output row
  between jobs counts against the next job).
* "invalid" (``raw`` config fields): a row is offered on each input stream while the engine
  checks the config; it must be refused with ``expect``'s code, back in IDLE, with neither row
  taken, no output row and ``q.ready``/``kv.ready`` low after the check window.
* "reset_mid": a reset ``abort_after`` cycles after the start (the next job must pass).
* "busy": a second start while the job runs, ``busy_at`` + 1 cycles after the accepted one or
  ``busy_end`` cycles before the last output row's handshake; with input never idle and output
  always ready the job's timing is the cycle model's, so the job must end DONE with error BUSY,
  bit-exact, its ``cycles`` equal to :func:`swattn.sw.cycles.predict_cycles` and the second
  start where the job says.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import (ClockCycles, ReadOnly, RisingEdge, SimTimeoutError, Timer,
                             with_timeout)
from cocotb.utils import get_sim_steps, get_sim_time

from ..sw.spec import regs, schedule
from ..sw.cycles import predict_cycles
from ..sw.spec.engine_params import EngineParams
from ..hw.kv_ring import kv_layout
from .scoreboard import Scoreboard
from .streams import RowMonitor, RowSink, RowSource, StreamBus, edge_cycle, ints_to_rows, \
    rows_to_ints

#: a job that has not finished after this many cycles beyond its prediction is a hang
HANG_FACTOR = 4
#: the clock period (ns)
PERIOD_NS = 10


def stream_words(sb: Scoreboard, params: EngineParams) -> tuple[list[int], list[int]]:
    """A job's ``q`` and ``kv`` stream rows as payload integers, in the engine's order (K in
    the low half of a K/V row, V above: :func:`swattn.hw.kv_ring.kv_layout`)."""
    pattern, layout = sb.pattern, kv_layout(params.head_dim)
    ko = schedule.kv_order(pattern, params)
    qw = rows_to_ints(sb.q[schedule.query_order(pattern, params)])
    kw = [(a << layout["k"].offset) | (b << layout["v"].offset)
          for a, b in zip(rows_to_ints(sb.k[ko]), rows_to_ints(sb.v[ko]))]
    return qw, kw


def apply_backpressure(q: RowSource, kv: RowSource, o: RowSink, job: dict) -> None:
    """A job's pause generators: idle cycles on each input stream (its ``idle`` probability),
    stalls on the output (its ``stall`` probability)."""
    seed = job["seed"]
    q.pause_with(job.get("idle", 0), f"{seed}:q")
    kv.pause_with(job.get("idle", 0), f"{seed}:kv")
    o.pause_with(job.get("stall", 0), f"{seed}:o")


class Bench:
    """The engine with its stream parts: sources on ``q`` and ``kv``, a sink on ``o``, monitors
    on ``q`` and ``kv``; every part drops what it holds when the engine is reset."""

    def __init__(self, dut, params: EngineParams):
        self.dut = dut
        self.p = params
        self.d = params.head_dim
        clk, rst = dut.clk, dut.rst
        self.q = RowSource(StreamBus(dut, "q"), clk, rst)
        self.kv = RowSource(StreamBus(dut, "kv"), clk, rst)
        self.o = RowSink(StreamBus(dut, "o"), clk, rst)
        self.q_mon = RowMonitor(StreamBus(dut, "q"), clk, rst)
        self.kv_mon = RowMonitor(StreamBus(dut, "kv"), clk, rst)
        self.period = get_sim_steps(PERIOD_NS, "ns")
        self.start_time = 0  # the sim time of the last accepted start's clock edge
        self.q_sent = self.kv_sent = 0  # rows offered on q and kv by the last offer
        self.side_tasks = []  # coroutines run beside the job (a second start)

    def parts(self):
        return self.q, self.kv, self.o, self.q_mon, self.kv_mon

    async def reset(self, cycles: int = 3):
        dut = self.dut
        dut.rst.value = 1
        dut.start.value = 0
        # driven, not left floating: Z on an input would read as X under Icarus
        dut.cfg.value = 0
        dut.q__payload.value = 0
        dut.kv__payload.value = 0
        dut.q__valid.value = 0
        dut.kv__valid.value = 0
        dut.o__ready.value = 0
        for part in self.parts():
            part.clear()
        for _ in range(cycles):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    async def status(self):
        await ReadOnly()
        st = regs.unpack_status(int(self.dut.status.value))
        await RisingEdge(self.dut.clk)
        return st

    async def start(self, cfg_bits: int):
        """Drive start for one cycle; the cycle after its clock edge is the job's cycle 0."""
        self.dut.cfg.value = cfg_bits
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.start_time = get_sim_time()
        self.dut.start.value = 0

    async def start_at(self, cycle: int, cfg_bits: int):
        """A second start in the job's cycle ``cycle`` (run beside the job: :meth:`end_job`
        cancels it if the job ends first)."""
        if cycle:
            await ClockCycles(self.dut.clk, cycle)
        self.dut.cfg.value = cfg_bits
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0

    def cycle_of(self, edge_time: int) -> int:
        return edge_cycle(edge_time, self.start_time, self.period)

    def backpressure(self, job: dict):
        apply_backpressure(self.q, self.kv, self.o, job)

    def offer(self, q_words: list[int], kv_words: list[int]):
        """Queue a job's input rows (before its start: the first comes in its cycle 0)."""
        self.q_mon.clear()
        self.kv_mon.clear()
        self.q_sent, self.kv_sent = len(q_words), len(kv_words)
        self.q.send_rows(q_words)
        self.kv.send_rows(kv_words)

    def taken(self) -> tuple[int, int]:
        """Rows the engine took on ``q`` and ``kv`` since :meth:`offer`."""
        return self.q_mon.count(), self.kv_mon.count()

    async def collect(self, n: int, max_cycles: int) -> tuple[list[int], int]:
        """The next ``n`` output rows and the cycle of the last one's handshake; returns at the
        clock edge that took it. AssertionError (a hang) if they have not come ``max_cycles``
        cycles after the start."""
        got = []

        async def rows():
            t = self.start_time
            while len(got) < n:
                w, t = await self.o.recv_row()
                got.append(w)
            return t

        left = max_cycles + 1 - (get_sim_time() - self.start_time) // self.period
        try:
            last = await with_timeout(rows(), max(left, 1) * self.period, "step")
        except SimTimeoutError:
            dut = self.dut
            names = ("running", "checking", "desc_take", "sched_state", "desc_valid", "s1_run",
                     "s1_bank", "bank_busy", "s1_done", "q2_valid", "s2_run", "s2_bank",
                     "abank_next", "acc_full", "epi_run", "epi_bank", "epi0_state", "hchunk",
                     "wpos")
            dump = {k: str(getattr(dut, k).value) for k in names if hasattr(dut, k)}
            qi, ki = self.taken()
            raise AssertionError(f"state {dump}; hang: {len(got)}/{n} rows after "
                                 f"{max_cycles + 1} cycles (q {qi}/{self.q_sent}, "
                                 f"kv {ki}/{self.kv_sent})") from None
        return got, self.cycle_of(last)

    def words(self, sb: Scoreboard):
        return stream_words(sb, self.p)

    def end_job(self):
        """Stop the job's pauses and side tasks; drop any input row left untaken and any output
        row not collected (count them first)."""
        for task in self.side_tasks:
            task.cancel()
        self.side_tasks = []
        for part in (self.q, self.kv, self.o):
            part.pause_with(0, "")
        self.q.flush()
        self.kv.flush()
        self.o.clear()


async def run_invalid(bench: Bench, job: dict, res: dict) -> dict:
    p = bench.p
    rng = random.Random(job["seed"])
    bench.offer([rng.getrandbits(8 * bench.d)], [rng.getrandbits(16 * bench.d)])
    await bench.start(regs.pack_config(p, **job["raw"]))
    for _ in range(2 + 2 * (p.max_globals + 2)):
        await RisingEdge(bench.dut.clk)
    await ReadOnly()
    res["q_ready"] = int(bench.dut.q__ready.value)
    res["kv_ready"] = int(bench.dut.kv__ready.value)
    await RisingEdge(bench.dut.clk)
    st, err = await bench.status()
    qi, ki = bench.taken()
    rows_out = bench.o.count()
    bench.end_job()
    res.update(state=st.name, error=err.name, q_rows=qi, kv_rows=ki, o_rows=rows_out,
               ok=(st == regs.State.IDLE and err.name == job["expect"] and qi == ki == 0
                   and rows_out == 0))
    return res


async def run_one(bench: Bench, job: dict) -> dict:
    p = bench.p
    kind = job.get("kind", "ok")
    res = {"seed": job["seed"], "kind": kind}
    if kind == "invalid":
        return await run_invalid(bench, job, res)
    sb = Scoreboard(job, p)
    pattern = sb.pattern
    bits = regs.pack_config(p, pattern, sb.cfg)
    bench.backpressure(job)
    bench.offer(*bench.words(sb))
    await bench.start(bits)
    if kind == "reset_mid":
        await ClockCycles(bench.dut.clk, job["abort_after"])
        bench.end_job()
        await bench.reset()
        res["ok"] = True
        return res
    predicted = predict_cycles(p, pattern)
    busy_at = None
    if kind == "busy":
        # the second start: busy_at + 1 cycles after the accepted one, or busy_end cycles before
        # the last output row's handshake (which, input never idle and output always ready, is
        # in the cycle the cycle model's count ends with)
        busy_at = job["busy_at"] if "busy_at" in job else predicted - 1 - job["busy_end"]
        bench.side_tasks.append(cocotb.start_soon(bench.start_at(busy_at, bits)))
    budget = HANG_FACTOR * (4 * pattern.pairs() * 2 * bench.d // p.lanes + 64 * pattern.n + 2000)
    rows, last_row_cycle = await bench.collect(pattern.n, budget)
    for _ in range(2):
        await RisingEdge(bench.dut.clk)
    await ReadOnly()
    cycles = int(bench.dut.cycles.value)
    await RisingEdge(bench.dut.clk)
    st, err = await bench.status()
    qi, ki = bench.taken()
    extra = bench.o.count()  # output rows beyond the job's n
    bench.end_job()
    mism = sb.score(ints_to_rows(rows, bench.d), res)
    ok = (mism == 0 and st == regs.State.DONE
          and err.name == ("BUSY" if kind == "busy" else "NONE")
          and (qi, ki) == (bench.q_sent, bench.kv_sent) and extra == 0)
    if kind == "busy":
        # the second start changed nothing: the job's cycle count is the cycle model's (input
        # never idle, output always ready), and it came where the job says
        res.update(predicted_cycles=predicted, busy_cycle=busy_at, last_row_cycle=last_row_cycle)
        landed = (busy_at == job["busy_at"] if "busy_at" in job
                  else last_row_cycle - busy_at == job["busy_end"])
        ok = ok and cycles == predicted and landed
    res.update(cycles=cycles, state=st.name, error=err.name, pairs=pattern.pairs(),
               q_rows=qi, kv_rows=ki, extra_rows=extra, ok=ok)
    return res


#: simulated cycles between two looks at the wall clock of :func:`report_progress`
PROGRESS_CYCLES = 1000


async def report_progress(path: str, running: dict) -> None:
    """Write ``<job index> <cycles since the job started>`` to ``path`` about twice a second of
    wall time (the runner's progress display reads it). It only reads the simulation time: a
    timer every :data:`PROGRESS_CYCLES` cycles, no signal is touched."""
    last = 0.0
    while True:
        await Timer(PROGRESS_CYCLES * PERIOD_NS, unit="ns")
        now = time.monotonic()
        if now - last < 0.5:
            continue
        last = now
        cycle = int((get_sim_time("ns") - running["since"]) // PERIOD_NS)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{running['index']} {cycle}\n")
        os.replace(tmp, path)


async def run_spec(dut, make_bench, run_one_job, clock: str = "clk") -> None:
    """Run the jobs of ``SWATTN_JOBS`` on ``dut`` with a bench from ``make_bench(dut, params)``
    and ``run_one_job(bench, job)``, writing the results to ``SWATTN_RESULTS`` after each job; a
    job whose checks raise is reported failed and the engine is reset before the next.
    ``clock``: the name of the clock input."""
    with open(os.environ["SWATTN_JOBS"]) as f:
        spec = json.load(f)
    params = EngineParams(**{k: v for k, v in spec["params"].items()
                             if k in EngineParams.__dataclass_fields__})
    cocotb.start_soon(Clock(getattr(dut, clock), PERIOD_NS, unit="ns").start())
    bench = make_bench(dut, params)
    await bench.reset()
    results = []
    running = {"index": 0, "since": get_sim_time("ns")}
    if os.environ.get("SWATTN_PROGRESS_FILE"):
        cocotb.start_soon(report_progress(os.environ["SWATTN_PROGRESS_FILE"], running))
    for index, job in enumerate(spec["jobs"]):
        running.update(index=index, since=get_sim_time("ns"))
        try:
            results.append(await run_one_job(bench, job))
        except AssertionError as exc:
            results.append({"seed": job["seed"], "kind": job.get("kind", "ok"), "ok": False,
                            "error_text": str(exc)})
            if hasattr(bench, "end_job"):
                bench.end_job()
            await bench.reset()
        with open(os.environ["SWATTN_RESULTS"], "w") as f:
            json.dump(results, f)


@cocotb.test()
async def jobs(dut):
    await run_spec(dut, Bench, run_one)
