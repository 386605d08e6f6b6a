"""cocotb testbench of the serial engine (:class:`swattn.hw.serial.SerialEngine`, lanes 4: the
iCE40 board's), with the job file and result dicts of :mod:`swattn.sim.tb_engine`.

The serial engine has no streams: it reads its Q, K and V buffers through address ports (each
``*_rdata`` the 16-bit word at the previous cycle's address) and writes output rows through
``o_addr``/``o_wdata``/``o_we``. The testbench models the four buffers as the board core wires
them (:mod:`swattn.fpga.core`, loaded as by :meth:`swattn.sw.driver.Board.load`): a row of
head_dim int8 is head_dim / 2 words at ``row * head_dim / 2 + word``, element 2w in the low byte;
Q rows by output position (:func:`swattn.sw.spec.schedule.output_order`), K and V rows by token, the
output rows by output position. One coroutine steps the clock: each cycle it samples the three
read addresses and any output write in the read-only phase, and after the edge drives each read
word that changed. Rows the job does not load keep the previous job's data (or random words), as
the board's buffers do, and the output buffer is filled with a marker before each job, so a row
the engine reads or writes wrongly shows up.

Job kinds (``kind``): "ok" (outputs bit-exact against :func:`swattn.sw.golden.attention`, every
output word written exactly once, ``rows_out`` = n, and ``cycles`` equal to
:func:`swattn.sw.cycles.predict_cycles`: the buffers never wait, so the cycle model is exact),
"invalid" (refused with ``expect``'s code, state IDLE, no output write), "reset_mid" (reset after
``abort_after`` cycles) and "busy" (a second start while the job runs, ``busy_at`` + 1 cycles
after the accepted one or ``busy_end`` cycles before the job's last output write: DONE with error
BUSY, bit-exact, the predicted cycles). ``idle`` and ``stall`` are ignored.

cocotbext-axi's stream parts (:mod:`swattn.sim.streams`, the stream engine's) do not fit these
ports: they are not valid/ready streams but memory ports read by address with a fixed latency, and
no cocotbext-axi part models a plain synchronous RAM; so this testbench keeps its own buffer
model and shares the job loop (:func:`swattn.sim.tb_engine.run_spec`) and the scoreboard
(:class:`swattn.sim.scoreboard.Scoreboard`, the golden model's rows and the comparison).
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from ..sw.spec import regs
from ..sw.cycles import predict_cycles
from ..sw.spec.engine_params import EngineParams
from ..hw.serial import WORD_BYTES
from .scoreboard import Scoreboard
from .tb_engine import HANG_FACTOR, run_spec

#: cycles from the job's last output write to the one whose edge sets DONE: the normaliser's tag
#: pipeline is seen empty (OUT_DRAIN) the cycle after the last write, and DONE is set at that
#: cycle's edge; so the last write is in cycle ``predict_cycles - 1 - WRITE_TO_DONE`` (cycle 0:
#: the first after the accepted start)
WRITE_TO_DONE = 1
#: cycles run after the last output write before the status is read (a stray write would count)
TAIL = 4
#: the output buffer's contents before a job (a word the job should write but does not keeps it)
O_MARK = 0xA55A


def rows_to_words(rows: np.ndarray) -> list[int]:
    """int8 rows (r, d) -> r * d / 2 16-bit words, row after row, element 2w in the low byte."""
    u = np.ascontiguousarray(rows, dtype=np.int8).view(np.uint8).astype(np.int64)
    return (u[:, 0::2] | (u[:, 1::2] << 8)).ravel().tolist()


def words_to_rows(words: list[int], d: int) -> np.ndarray:
    w = np.asarray(words, dtype=np.int64).reshape(-1, d // WORD_BYTES)
    out = np.empty((w.shape[0], d), dtype=np.uint8)
    out[:, 0::2] = w & 0xFF
    out[:, 1::2] = w >> 8
    return out.view(np.int8)


class SerialBench:
    def __init__(self, dut, params: EngineParams):
        self.dut = dut
        self.p = params
        self.d = params.head_dim
        self.R = self.d // WORD_BYTES
        self.depth = (1 << params.seq_width) * self.R
        junk = random.Random(0x5E41A1)
        # the read buffers: random words until a job loads its rows
        self.mem = {b: [junk.getrandbits(16) for _ in range(self.depth)] for b in "qkv"}
        self.o = [O_MARK] * self.depth
        self.o_writes: list[int] = []  # addresses written, in order, since the last clear
        self.driven = [-1, -1, -1]  # the words last driven on q/k/v_rdata
        self.addr = [0, 0, 0]  # the addresses sampled in the cycle just past
        self.last_write_cycle = -1

    async def reset(self, cycles: int = 3):
        dut = self.dut
        dut.rst.value = 1
        dut.start.value = 0
        dut.cfg.value = 0
        for h in (dut.q_rdata, dut.k_rdata, dut.v_rdata):
            h.value = 0
        self.driven = [0, 0, 0]
        for _ in range(cycles):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    def load(self, q_by_pos: np.ndarray, k: np.ndarray, v: np.ndarray):
        n = len(k)
        for b, rows in (("q", q_by_pos), ("k", k), ("v", v)):
            self.mem[b][:n * self.R] = rows_to_words(rows)
        self.o[:] = [O_MARK] * self.depth
        self.o_writes = []

    async def start(self, cfg_bits: int):
        """Drive start for one cycle (the memories' words stay as they were: the engine reads
        none in the start cycle or the checks after it)."""
        self.dut.cfg.value = cfg_bits
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0

    async def run(self, max_cycles: int, writes: int | None = None, extra_start=None,
                  abort_after: int | None = None) -> int:
        """Step the clock from the cycle after a start: serve the three read ports, record the
        output writes. Stops ``TAIL`` cycles after the ``writes``-th output write, after
        ``abort_after`` cycles, or (writes None) after ``max_cycles``; raises AssertionError
        (a hang) if ``writes`` have not come within ``max_cycles``. ``extra_start``: (cycle,
        cfg bits) of a second start. Returns the cycles stepped."""
        dut = self.dut
        Q, K, V, O = self.mem["q"], self.mem["k"], self.mem["v"], self.o
        # the underlying simulator handles: a read is one call, not a LogicArray
        hq, hk, hv = dut.q_addr._handle, dut.k_addr._handle, dut.v_addr._handle
        hwe, hoa, hod = dut.o_we._handle, dut.o_addr._handle, dut.o_wdata._handle
        rq, rk, rv = dut.q_rdata, dut.k_rdata, dut.v_rdata
        dq, dk, dv = self.driven
        written = self.o_writes
        ro, edge = ReadOnly(), RisingEdge(dut.clk)
        extra_at = extra_start[0] if extra_start is not None else -1
        stop = None if writes is not None else max_cycles
        if abort_after is not None:
            stop = abort_after
        cyc = 0
        while True:
            if cyc == extra_at:
                dut.cfg.value = extra_start[1]
                dut.start.value = 1
            await ro
            aq = hq.get_signal_val_long()
            ak = hk.get_signal_val_long()
            av = hv.get_signal_val_long()
            if hwe.get_signal_val_long():
                a = hoa.get_signal_val_long()
                O[a] = hod.get_signal_val_long()
                written.append(a)
                self.last_write_cycle = cyc
                if writes is not None and len(written) == writes:
                    stop = cyc + 1 + TAIL
            await edge
            if cyc == extra_at:
                dut.start.value = 0
            # the words at the addresses of the cycle just past (read latency 1)
            x = Q[aq]
            if x != dq:
                rq.value = dq = x
            x = K[ak]
            if x != dk:
                rk.value = dk = x
            x = V[av]
            if x != dv:
                rv.value = dv = x
            cyc += 1
            if stop is not None and cyc >= stop:
                break
            if cyc > max_cycles:
                self.driven = [dq, dk, dv]
                names = ("state", "running", "checking", "front_state", "back_state",
                         "epilogue_state", "rows_out")
                dump = {k: str(getattr(dut, k).value) for k in names if hasattr(dut, k)}
                raise AssertionError(f"state {dump}; hang: {len(written)}/{writes} output words "
                                     f"after {cyc} cycles")
        self.driven = [dq, dk, dv]
        return cyc

    async def sample(self) -> dict:
        """status, cycles and rows_out in this cycle's read-only phase; then the next edge (with
        no memory read pending: called only after ``run`` stopped past the job's last read)."""
        dut = self.dut
        await ReadOnly()
        st, err = regs.unpack_status(int(dut.status.value))
        out = dict(state=st, error=err, cycles=int(dut.cycles.value),
                   rows_out=int(dut.rows_out.value))
        await RisingEdge(dut.clk)
        return out


async def run_one(bench: SerialBench, job: dict) -> dict:
    p, d, R = bench.p, bench.d, bench.R
    kind = job.get("kind", "ok")
    res = {"seed": job["seed"], "kind": kind}
    if kind == "invalid":
        before = (await bench.sample())["rows_out"]
        bench.o_writes = []
        await bench.start(regs.pack_config(p, **job["raw"]))
        await bench.run(2 + 2 * (p.max_globals + 2) + 1)
        s = await bench.sample()
        res.update(state=s["state"].name, error=s["error"].name, o_writes=len(bench.o_writes),
                   rows_out=s["rows_out"], rows_out_before=before,
                   ok=(s["state"] == regs.State.IDLE and s["error"].name == job["expect"]
                       and not bench.o_writes and s["rows_out"] == before))
        return res
    sb = Scoreboard(job, p)
    pattern = sb.pattern
    bench.load(sb.q[sb.order], sb.k, sb.v)
    bits = regs.pack_config(p, pattern, sb.cfg)
    predicted = predict_cycles(p, pattern)
    await bench.start(bits)
    if kind == "reset_mid":
        await bench.run(job["abort_after"], abort_after=job["abort_after"])
        await bench.reset()
        res["ok"] = True
        return res
    extra = None
    if kind == "busy":
        # the second start: busy_at + 1 cycles after the accepted one, or busy_end cycles before
        # the last output write (which is WRITE_TO_DONE cycles before the cycle the model's
        # count ends with)
        at = (job["busy_at"] if "busy_at" in job
              else predicted - 1 - WRITE_TO_DONE - job["busy_end"])
        extra = (at, bits)
    nw = pattern.n * R
    budget = HANG_FACTOR * predicted + 2000
    await bench.run(budget, writes=nw, extra_start=extra)
    s = await bench.sample()
    cycles, st, err = s["cycles"], s["state"], s["error"]
    written = bench.o_writes
    # every output word exactly once, nothing else
    writes_ok = len(written) == nw and len(set(written)) == nw and max(written) == nw - 1
    mism = sb.score(words_to_rows(bench.o[:nw], d), res)
    ok = (mism == 0 and writes_ok and s["rows_out"] == pattern.n and st == regs.State.DONE
          and err.name == ("BUSY" if kind == "busy" else "NONE") and cycles == predicted)
    res.update(predicted_cycles=predicted, o_writes=len(written), rows_out=s["rows_out"])
    if kind == "busy":
        res.update(busy_cycle=extra[0], last_row_cycle=bench.last_write_cycle)
        landed = (extra[0] == job["busy_at"] if "busy_at" in job
                  else bench.last_write_cycle - extra[0] == job["busy_end"])
        ok = ok and landed
    res.update(cycles=cycles, state=st.name, error=err.name, pairs=pattern.pairs(), ok=ok)
    return res


@cocotb.test()
async def jobs(dut):
    await run_spec(dut, SerialBench, run_one)
