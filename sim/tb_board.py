"""cocotb testbench of the board top: the host driver (:mod:`swattn.sw.driver`) runs unchanged in a
bridge thread and talks to the simulated board through its UART pins.

:class:`PinLink` is the driver's link: ``write`` serialises bytes onto the ``rx`` pin (8N1 at the
simulated baud rate), a monitor deserialises the ``tx`` pin into a receive buffer, and ``read``
waits in simulated time. The scenario list comes from the JSON file named by
``SWATTN_BOARD_SPEC`` (written by :mod:`swattn.sim.board_runner`), one result per scenario goes
to ``SWATTN_RESULTS``; every job's output is compared with :func:`swattn.sw.golden.attention`.
"""

from __future__ import annotations

import itertools
import json
import os
import pty
import subprocess
import sys
import traceback
import tty
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from ..sw import golden
from ..sw.spec import protocol as pr, regs
from ..sw.driver import Board, BoardError, DriverError, EngineRefused, NoReply
from ..sw.spec.engine_params import EngineParams
from ..sw.spec.numerics import SoftmaxConfig
from ..sw.spec.pattern import HybridPattern
from .runner import job_pattern

CLOCK_NS = 10


class PinLink:
    """Bytes through the simulated UART pins, for the host driver (call from a bridge thread)."""

    def __init__(self, dut, bit_ns: int):
        self.dut = dut
        self.bit = bit_ns
        self.byte_time = 10 * bit_ns * 1e-9  # simulated seconds per byte
        self.rxbuf = bytearray()
        self.framing_errors = 0
        dut.rx.value = 1
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            await Timer(self.bit * 3 // 2, unit="ns")
            v = 0
            for i in range(8):
                v |= int(tx.value) << i
                await Timer(self.bit, unit="ns")
            if int(tx.value) == 1:
                self.rxbuf.append(v)
            else:
                self.framing_errors += 1

    async def _send(self, data: bytes):
        """Each byte as a start bit, eight data bits LSB first and a stop bit, back to back; the
        line is set once per run of equal bits (a simulator callback per level, not per bit)."""
        rx = self.dut.rx
        bits = [v for b in data for v in (0, *((b >> i) & 1 for i in range(8)), 1)]
        for level, run in itertools.groupby(bits):
            rx.value = level
            await Timer(self.bit * len(list(run)), unit="ns")

    async def _recv(self, n: int, timeout: float) -> bytes:
        t_end = get_sim_time("ns") + timeout * 1e9
        while len(self.rxbuf) < n and get_sim_time("ns") < t_end:
            await Timer(self.bit * 10, unit="ns")
        out = bytes(self.rxbuf[:n])
        del self.rxbuf[:n]
        return out

    async def _idle(self, seconds: float):
        await Timer(round(seconds * 1e9), unit="ns")

    async def _flush(self):
        await Timer(self.bit * 40, unit="ns")
        self.rxbuf.clear()

    def write(self, data: bytes):
        resume(self._send)(bytes(data))

    def read(self, n: int, timeout: float) -> bytes:
        return resume(self._recv)(n, timeout)

    def flush_input(self):
        resume(self._flush)()

    def idle(self, seconds: float):
        resume(self._idle)(seconds)


async def cli_run(link: PinLink, argv: list[str], timeout_s: float = 300.0) -> dict:
    """Run the ``swattn`` CLI (``argv`` after ``swattn``) as a subprocess whose serial port is a
    pseudo-terminal bridged to the UART pins: ``swattn run --port ...`` exactly as on a board."""
    import time
    master, slave = pty.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    exe = str(Path(sys.executable).parent / "swattn")
    proc = subprocess.Popen([exe] + [a.replace("{port}", port) for a in argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.set_blocking(master, False)
    t_end = time.monotonic() + timeout_s
    try:
        while proc.poll() is None and time.monotonic() < t_end:
            try:
                data = os.read(master, 1 << 16)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                await link._send(data)
            if link.rxbuf:
                os.write(master, bytes(link.rxbuf))
                link.rxbuf.clear()
            if not data:
                await Timer(link.bit * 10, unit="ns")
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
        os.close(slave)
    return {"rc": proc.returncode, "stdout": out[-2000:], "stderr": err[-2000:]}


def _data(n, d, seed):
    rs = np.random.default_rng(seed)
    return tuple(rs.integers(-128, 128, (n, d)).astype(np.int8) for _ in range(3))


def run_job(board: Board, job: dict, params: EngineParams) -> dict:
    pattern = job_pattern(job, params.limits())
    cfg = SoftmaxConfig(job["mult_mant"], job["mult_shift"], job["out_shift"])
    q, k, v = _data(pattern.n, params.head_dim, job["seed"])
    out, cycles = board.attention(q, k, v, pattern, cfg, timeout=600)
    ref = golden.attention_engine(q, k, v, pattern, cfg)
    mism = int(np.count_nonzero(out != ref))
    res = {"kind": "job", "seed": job["seed"], "n": pattern.n, "cycles": cycles,
           "mismatches": mism, "ok": mism == 0 and cycles > 0}
    if mism:
        res["first_mismatches"] = [[int(i), int(j), int(out[i, j]), int(ref[i, j])]
                                   for i, j in np.argwhere(out != ref)[:5]]
    return res


def run_busy_start(board: Board, job: dict, params: EngineParams) -> dict:
    """A job run twice: once alone, once with a second START frame sent while it runs (and a
    WRITE_CONFIG after it, when ``job["also_config"]``: the job must be long enough to outlast
    both). Each must get the BUSY error reply, the engine must still be BUSY after them, and the
    second run must return the same bit-exact rows in the same number of cycles as the first."""
    pattern = job_pattern(job, params.limits())
    cfg = SoftmaxConfig(job["mult_mant"], job["mult_shift"], job["out_shift"])
    q, k, v = _data(pattern.n, params.head_dim, job["seed"])
    ref = golden.attention_engine(q, k, v, pattern, cfg)
    alone, cycles_alone = board.attention(q, k, v, pattern, cfg, timeout=600)
    board.configure(pattern, cfg)
    board.load(q, k, v, pattern)
    board.transact(pr.Cmd.START)
    refused = {}
    cfg_bytes = regs.pack_config(params, pattern, cfg).to_bytes(pr.config_bytes(params), "little")
    frames = [("START", pr.Cmd.START, b"")]
    if job.get("also_config"):
        frames.append(("WRITE_CONFIG", pr.Cmd.WRITE_CONFIG, cfg_bytes))
    for name, cmd, payload in frames:
        try:
            board.transact(cmd, 0, 0, payload)
            refused[name] = "accepted"
        except BoardError as exc:
            refused[name] = pr.LinkError(exc.code).name
    st, _, _ = board.status()  # still running after the refusals: they came mid-job
    cycles = board.run_wait(timeout=600)
    out = board.read_output(pattern)
    ok = (all(v == "BUSY" for v in refused.values()) and st == regs.State.BUSY
          and cycles == cycles_alone and np.array_equal(out, ref) and np.array_equal(alone, ref))
    return {"kind": "busy_start", "ok": bool(ok), "refused": refused, "state_after": st.name,
            "cycles": cycles, "cycles_alone": cycles_alone,
            "mismatches": int(np.count_nonzero(out != ref))}


def expect_error(board: Board, frame: bytes, code: pr.LinkError, kind: str,
                 link: PinLink | None = None, idle_after: float = 0.0) -> dict:
    """Send a bad frame and check for exactly this ERROR reply."""
    board.link.write(frame)
    if idle_after and link is not None:
        link.idle(idle_after)
    try:
        r = board._read_reply(0, kind)
    except DriverError as exc:
        return {"kind": kind, "ok": False, "error_text": str(exc)}
    e = pr.unpack(pr.ERROR_LAYOUT, r.payload.ljust(2, b"\0")) if r.cmd == pr.Cmd.ERROR else {}
    ok = r.cmd == pr.Cmd.ERROR and e.get("code") == code
    return {"kind": kind, "ok": ok, "reply_cmd": r.cmd, "reply": e}


#: the corrupted-frame scenarios: a bit flipped (byte index, mask) in a good two-row WRITE_Q
#: frame (sync, header, the header's CRC, payload, the payload's CRC), each answered BAD_CRC
CORRUPTIONS = {
    "corrupt_payload": (12, 0x10),
    "corrupt_header": (3, 0x01),  # the board waits for silence, then answers once
    "corrupt_crc_high": (-1, 0x01),  # only the payload CRC's high byte is wrong
    "corrupt_header_crc_high": (1 + pr.HEADER_BYTES + 1, 0x01),  # only the header CRC's high byte
}


def run_scenario(board: Board, link: PinLink, sc: dict, params: EngineParams) -> dict:
    kind = sc["kind"]
    d = params.head_dim
    if kind == "job":
        return run_job(board, sc, params)
    if kind == "busy_start":
        return run_busy_start(board, sc, params)
    if kind == "identify":
        ident = board.identify()
        ok = ident.params == params and ident.buffer_rows == sc["buffer_rows"]
        return {"kind": kind, "ok": ok, "identity": {**ident.params.as_dict(),
                                                     "version": ident.version,
                                                     "buffer_rows": ident.buffer_rows,
                                                     "clock_hz": ident.clock_hz}}
    if kind == "no_config":  # START right after reset, before any configuration
        try:
            board.transact(pr.Cmd.START)
        except BoardError as exc:
            return {"kind": kind, "ok": exc.code == pr.LinkError.NO_CONFIG, "text": str(exc)}
        return {"kind": kind, "ok": False, "text": "START was accepted"}
    rows = np.zeros((2, d), dtype=np.int8).tobytes()
    good = pr.encode_frame(pr.Cmd.WRITE_Q, 0, 2, rows)
    if kind in CORRUPTIONS:
        at, mask = CORRUPTIONS[kind]
        bad = bytearray(good)
        bad[at] ^= mask
        return expect_error(board, bytes(bad), pr.LinkError.BAD_CRC, kind)
    if kind == "truncated":
        return expect_error(board, good[:len(good) // 2], pr.LinkError.TIMEOUT, kind)
    if kind == "unknown":
        return expect_error(board, pr.encode_frame(0x55, 0, 0, b"\x01\x02"),
                            pr.LinkError.UNKNOWN_CMD, kind)
    if kind == "bad_addr":
        return expect_error(board, pr.encode_frame(pr.Cmd.WRITE_K, sc["buffer_rows"] - 1, 2,
                                                   rows), pr.LinkError.BAD_ADDR, kind)
    if kind == "bad_length":
        return expect_error(board, pr.encode_frame(pr.Cmd.WRITE_V, 0, 3, rows),
                            pr.LinkError.BAD_LENGTH, kind)
    if kind == "refused":  # a configuration the engine rejects: the driver names the reason
        pattern = HybridPattern(4, 0, 0, 1, (), limits=params.limits())
        board.configure(pattern, SoftmaxConfig(40000, 30, 0), dilation=params.max_dilation + 1)
        try:
            board.run(timeout=60)
        except EngineRefused as exc:
            return {"kind": kind, "ok": exc.error == regs.Error.DILATION, "text": str(exc)}
        return {"kind": kind, "ok": False, "text": "the engine accepted it"}
    if kind == "invalid":  # one configuration error code (sim.jobs.invalid_jobs), by its name
        board.configure(None, None, **sc["raw"])
        try:
            board.run(timeout=60)
        except EngineRefused as exc:
            return {"kind": kind, "ok": exc.error.name == sc["expect"], "text": str(exc)}
        return {"kind": kind, "ok": False, "text": "the engine accepted it"}
    if kind == "cli_run":  # `swattn run --port <pty>`: the CLI, pyserial and all
        r = resume(cli_run)(link, ["run", "--port", "{port}", "--baud", "115200", "--n",
                                   str(sc["n"]), "--radius", "2", "--n-globals", "1",
                                   "--timeout", "120"])  # real seconds: the simulation is slow
        return {"kind": kind, "ok": r["rc"] == 0 and "bit for bit" in r["stdout"], **r}
    if kind == "silent":  # a driver error: the board ignores garbage without a sync byte
        try:
            board.send_raw(b"\x00\x11\x22", 0, "garbage")
        except NoReply as exc:
            return {"kind": kind, "ok": True, "text": str(exc)}
        return {"kind": kind, "ok": False, "text": "got a reply to garbage"}
    raise ValueError(f"unknown scenario {kind!r}")


@cocotb.test()
async def board_scenarios(dut):
    with open(os.environ["SWATTN_BOARD_SPEC"]) as f:
        spec = json.load(f)
    params = EngineParams(**spec["params"])
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.rx.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(4):
        await RisingEdge(dut.clk)
    link = PinLink(dut, spec["divisor"] * CLOCK_NS)
    # replies come within a few hundred byte times in simulation
    board = Board(link, reply_timeout=spec["reply_timeout"], rows_per_frame=spec.get("rows", 16),
                  retries=0)

    def scenarios():
        results = []
        for sc in spec["scenarios"]:
            try:
                res = run_scenario(board, link, sc, params)
            except Exception as exc:  # noqa: BLE001 - reported per scenario
                res = {"kind": sc["kind"], "ok": False, "error_text":
                       f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"}
                link.flush_input()
            res["sim_us"] = get_sim_time("us")
            results.append(res)
            with open(os.environ["SWATTN_RESULTS"], "w") as f:
                json.dump(results, f)
        return results

    results = await bridge(scenarios)()
    assert link.framing_errors == 0, f"{link.framing_errors} framing errors on tx"
    assert results

