"""cocotb testbench of the engine: driver, monitor and scoreboard around the golden model.

Jobs come from the JSON file named by ``SWATTN_JOBS`` (written by :mod:`swattn.sim.runner`); one
result per job goes to ``SWATTN_RESULTS``. A single coroutine steps the clock: each cycle it offers
the next ``q``/``kv`` beat (or an idle cycle), decides whether the output is ready (backpressure),
samples the handshakes in the read-only phase and advances. The scoreboard compares every output
row with :func:`swattn.sw.golden.attention`.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from ..sw import golden, regs, schedule
from ..sw.cycles import predict_cycles
from ..sw.engine_params import EngineParams
from ..sw.numerics import SoftmaxConfig
from ..sw.pattern import HybridPattern
from ..hw.engine import kv_layout

#: a job that has not finished after this many cycles beyond its prediction is a hang
HANG_FACTOR = 4


def _rows_to_ints(a: np.ndarray) -> list[int]:
    """int8 rows -> payload integers (element 0 in the low byte, as ArrayLayout places it)."""
    u = np.ascontiguousarray(a.astype(np.int8)).view(np.uint8)
    return [int.from_bytes(r.tobytes(), "little") for r in u]


def _int_to_row(x: int, d: int) -> np.ndarray:
    return np.frombuffer(x.to_bytes(d, "little"), dtype=np.int8).copy()


class Bench:
    def __init__(self, dut, params: EngineParams):
        self.dut = dut
        self.p = params
        self.d = params.head_dim
        self.v_offset = kv_layout(self.d)["v"].offset
        self.k_offset = kv_layout(self.d)["k"].offset
        self.last_row_cycle = -1  # stream_job's cycle of the last output handshake

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
        self.dut.cfg.value = cfg_bits
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0

    async def stream_job(self, q_words, kv_words, n_out, rng, idle=0.0, stall=0.0,
                         max_cycles=10**9, abort_after=None, extra_start=None):
        """Drive both input streams and collect ``n_out`` output rows; returns (rows, cycles)."""
        dut = self.dut
        qi = ki = 0
        out = []
        cyc = 0
        while len(out) < n_out:
            # drive this cycle
            q_on = qi < len(q_words) and rng.random() >= idle
            k_on = ki < len(kv_words) and rng.random() >= idle
            dut.q__valid.value = int(q_on)
            if q_on:
                dut.q__payload.value = q_words[qi]
            dut.kv__valid.value = int(k_on)
            if k_on:
                dut.kv__payload.value = kv_words[ki]
            o_rdy = rng.random() >= stall
            dut.o__ready.value = int(o_rdy)
            if extra_start is not None and cyc == extra_start[0]:
                dut.cfg.value = extra_start[1]
                dut.start.value = 1
            await ReadOnly()
            if q_on and dut.q__ready.value == 1:
                qi += 1
            if k_on and dut.kv__ready.value == 1:
                ki += 1
            if o_rdy and dut.o__valid.value == 1:
                out.append(int(dut.o__payload.value))
                self.last_row_cycle = cyc
            await RisingEdge(dut.clk)
            dut.start.value = 0
            cyc += 1
            if abort_after is not None and cyc >= abort_after:
                break
            if cyc > max_cycles:
                names = ("running", "checking", "desc_take", "sched_state", "desc_valid", "s1_run", "s1_bank", "bank_busy",
                         "s1_done", "q2_valid", "s2_run", "s2_bank", "abank_next", "acc_full",
                         "epi_run", "epi_bank", "epi0_state", "hchunk", "wpos")
                dump = {k: str(getattr(dut, k).value) for k in names if hasattr(dut, k)}
                raise AssertionError(f"state {dump}; "
                                     f"hang: {len(out)}/{n_out} rows after {cyc} cycles "
                                     f"(q {qi}/{len(q_words)}, kv {ki}/{len(kv_words)})")
        dut.q__valid.value = 0
        dut.kv__valid.value = 0
        return out, (qi, ki)

    def words(self, q, k, v, pattern):
        ko = schedule.kv_order(pattern, self.p)
        qw = _rows_to_ints(q[schedule.query_order(pattern, self.p)])
        kw = [(a << self.k_offset) | (b << self.v_offset)
              for a, b in zip(_rows_to_ints(k[ko]), _rows_to_ints(v[ko]))]
        return schedule.output_order(pattern, self.p), qw, kw


async def run_one(bench: Bench, job: dict) -> dict:
    p, d = bench.p, bench.d
    rng = random.Random(job["seed"])
    kind = job.get("kind", "ok")
    res = {"seed": job["seed"], "kind": kind}
    if kind == "invalid":
        bits = regs.pack_config(p, **job["raw"])
        await bench.start(bits)
        for _ in range(2 + 2 * (p.max_globals + 2)):
            await RisingEdge(bench.dut.clk)
        await ReadOnly()
        res["q_ready"] = int(bench.dut.q__ready.value)
        res["kv_ready"] = int(bench.dut.kv__ready.value)
        await RisingEdge(bench.dut.clk)
        st, err = await bench.status()
        res.update(state=st.name, error=err.name, ok=(st == regs.State.IDLE
                                                     and err.name == job["expect"]))
        return res
    pattern, cfg, (q, k, v) = job_inputs(job, p)
    qo, qw, kw = bench.words(q, k, v, pattern)
    await bench.start(regs.pack_config(p, pattern, cfg))
    if kind == "reset_mid":
        await bench.stream_job(qw, kw, pattern.n, rng, job.get("idle", 0), job.get("stall", 0),
                               abort_after=job["abort_after"])
        await bench.reset()
        res["ok"] = True
        return res
    extra = None
    predicted = predict_cycles(p, pattern)
    if kind == "busy":
        # the second start: busy_at + 1 cycles after the accepted one, or busy_end cycles before
        # the last output row's handshake (which, input never idle and output always ready, is
        # in the cycle the cycle model's count ends with)
        at = job["busy_at"] if "busy_at" in job else predicted - 1 - job["busy_end"]
        extra = (at, regs.pack_config(p, pattern, cfg))
    budget = HANG_FACTOR * (4 * pattern.pairs() * 2 * d // p.lanes + 64 * pattern.n + 2000)
    rows, _ = await bench.stream_job(qw, kw, pattern.n, rng, job.get("idle", 0),
                                     job.get("stall", 0), max_cycles=budget, extra_start=extra)
    got = np.stack([_int_to_row(r, d) for r in rows])
    for _ in range(2):
        await RisingEdge(bench.dut.clk)
    await ReadOnly()
    cycles = int(bench.dut.cycles.value)
    await RisingEdge(bench.dut.clk)
    st, err = await bench.status()
    out = np.zeros_like(got)
    out[qo] = got
    ref = golden.attention(q, k, v, pattern, cfg)
    mism = int(np.count_nonzero(out != ref))
    ok = mism == 0 and st == regs.State.DONE and err.name == ("BUSY" if kind == "busy" else "NONE")
    if kind == "busy":
        # the second start changed nothing: the job's cycle count is the cycle model's (input
        # never idle, output always ready), and it came where the job says
        res.update(predicted_cycles=predicted, busy_cycle=extra[0],
                   last_row_cycle=bench.last_row_cycle)
        landed = (extra[0] == job["busy_at"] if "busy_at" in job
                  else bench.last_row_cycle - extra[0] == job["busy_end"])
        ok = ok and cycles == predicted and landed
    res.update(cycles=cycles, state=st.name, error=err.name, mismatches=mism,
               pairs=pattern.pairs(), ok=ok)
    report_output(res, job, out, ref)
    return res


def job_inputs(job: dict, p: EngineParams):
    """A valid job's pattern, softmax settings and (q, k, v) int8 rows (its own data, or random
    rows from its seed)."""
    pattern = HybridPattern(job["n"], job["left"], job["right"], job["dilation"],
                            tuple(job["globals"]), limits=p.limits())
    cfg = SoftmaxConfig(job["mult_mant"], job["mult_shift"], job["out_shift"])
    qkv = tuple(np.asarray(x, dtype=np.int8) for x in job["data"]) if "data" in job else \
        _random(pattern.n, p.head_dim, job["seed"])
    return pattern, cfg, qkv


def _random(n, d, seed):
    rs = np.random.default_rng(seed)
    return tuple(rs.integers(-128, 128, (n, d)).astype(np.int8) for _ in range(3))


async def run_spec(dut, make_bench, run_one_job) -> None:
    """Run the jobs of ``SWATTN_JOBS`` on ``dut`` with a bench from ``make_bench(dut, params)``
    and ``run_one_job(bench, job)``, writing the results to ``SWATTN_RESULTS`` after each job; a
    job whose checks raise is reported failed and the engine is reset before the next."""
    spec = json.loads(open(os.environ["SWATTN_JOBS"]).read())
    params = EngineParams(**{k: v for k, v in spec["params"].items()
                             if k in EngineParams.__dataclass_fields__})
    bench = make_bench(dut, params)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await bench.reset()
    results = []
    for job in spec["jobs"]:
        try:
            results.append(await run_one_job(bench, job))
        except AssertionError as exc:
            results.append({"seed": job["seed"], "kind": job.get("kind", "ok"), "ok": False,
                            "error_text": str(exc)})
            await bench.reset()
        with open(os.environ["SWATTN_RESULTS"], "w") as f:
            json.dump(results, f)


def report_output(res: dict, job: dict, out: np.ndarray, ref: np.ndarray) -> None:
    """Add the first mismatching elements (and, if the job asks, the whole output) to ``res``."""
    if res.get("mismatches"):
        bad = np.argwhere(out != ref)[:5]
        res["first_mismatches"] = [[int(i), int(j), int(out[i, j]), int(ref[i, j])]
                                   for i, j in bad]
    if job.get("return_output"):
        res["output"] = out.tolist()


@cocotb.test()
async def jobs(dut):
    await run_spec(dut, Bench, run_one)
