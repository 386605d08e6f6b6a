"""Host driver for a swattn board: open a link, identify, configure, load, run, read back.

The driver speaks :mod:`swattn.sw.spec.protocol` over any *link*: an object with ``write(data)``,
``read(n, timeout) -> bytes`` (fewer bytes on time-out) and ``flush_input()``. :class:`SerialLink`
is a real serial port (pyserial); the cocotb testbench (:mod:`swattn.sim.tb_board`) provides a link
that drives the simulated board's UART pins, so the very same driver code is tested against the
RTL. Rows go in the engine's stream order (:mod:`swattn.sw.spec.schedule`); the driver does the
reordering, so callers pass and get plain (n, head_dim) int8 arrays. A job's pattern is a
:class:`~swattn.sw.spec.pattern.HybridPattern` or, for an engine generated with band and column
fields, an :class:`~swattn.sw.spec.keyset.EngineForm` (packed by
:func:`swattn.sw.spec.regs.pack_config`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .spec import protocol as pr
from .spec import regs, schedule
from .spec.engine_params import EngineParams
from .spec.keyset import EngineForm
from .spec.numerics import SoftmaxConfig
from .spec.pattern import HybridPattern

#: what a job's pattern may be: the window and globals, or the engine form with bands and columns
Pattern = HybridPattern | EngineForm


class DriverError(Exception):
    """Anything that went wrong talking to the board; the message says what and what to try."""


class NoReply(DriverError):
    pass


class BadReply(DriverError):
    pass


class BoardError(DriverError):
    """The board answered with an ERROR frame."""

    def __init__(self, code: int, cmd: int):
        self.code, self.cmd = code, cmd
        try:
            cname = pr.LinkError(code).name
        except ValueError:
            cname = f"error {code}"
        try:
            rname = pr.Cmd(cmd).name
        except ValueError:
            rname = f"command 0x{cmd:02x}"
        super().__init__(f"the board refused {rname}: {cname}")


class EngineRefused(DriverError):
    """The engine rejected the configuration at START (see :class:`swattn.sw.spec.regs.Error`)."""

    def __init__(self, error: regs.Error):
        self.error = error
        super().__init__(f"the engine refused the configuration: {error.name}")


class SerialLink:
    """A serial port through pyserial. ``port`` e.g. /dev/ttyUSB1 (iCEBreaker: the second FTDI
    interface), ``baud`` must match the bitstream (``swattn build --list`` shows it)."""

    def __init__(self, port: str, baud: int):
        try:
            import serial
        except ImportError as exc:  # pragma: no cover - pyserial is a dependency
            raise DriverError("pyserial is not installed: pip install pyserial") from exc
        try:
            self._s = serial.Serial(port, baud, timeout=0.02, write_timeout=5)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DriverError(f"cannot open serial port {port!r} at {baud} baud: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        self.byte_time = 10.0 / baud

    def write(self, data: bytes):
        self._s.write(data)
        self._s.flush()

    def read(self, n: int, timeout: float) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            out += self._s.read(n - len(out))
        return bytes(out)

    def flush_input(self):
        time.sleep(0.01)
        self._s.reset_input_buffer()

    def close(self):
        self._s.close()


@dataclass(frozen=True)
class Identity:
    params: EngineParams
    version: str
    protocol: int
    buffer_rows: int
    clock_hz: int


@dataclass(frozen=True)
class Reply:
    cmd: int
    addr: int
    count: int
    payload: bytes


class Board:
    """A swattn board behind ``link``.

    reply_timeout : seconds to wait for a reply beyond its transfer time (the link's
        ``byte_time`` per byte, if it has one).
    rows_per_frame : rows per WRITE/READ frame (fewer, shorter frames recover faster).
    retries : times a frame is resent after a CRC or time-out error reply or a garbled reply.
    """

    def __init__(self, link, reply_timeout: float = 0.5, rows_per_frame: int = 64,
                 retries: int = 2):
        self.link = link
        self.reply_timeout = reply_timeout
        self.rows_per_frame = rows_per_frame
        self.retries = retries
        self._identity: Identity | None = None

    # ------------------------------------------------------------------ frames
    def _byte_time(self) -> float:
        return getattr(self.link, "byte_time", 0.0)

    def send_raw(self, frame: bytes, expect_payload: int = 0, what: str = "frame") -> Reply:
        """Send bytes as they are and return the decoded reply (ERROR replies included)."""
        self.link.write(frame)
        return self._read_reply(expect_payload, what)

    def _read(self, n: int, timeout: float, what: str) -> bytes:
        data = self.link.read(n, timeout)
        if len(data) < n:
            if not data:
                raise NoReply(f"no reply from the board within {timeout:.3g} s to {what}: is the "
                              f"port right and the board programmed with the swattn bitstream?")
            raise BadReply(f"reply to {what} stopped after {len(data)} of {n} bytes")
        return data

    def _read_reply(self, expect_payload: int, what: str) -> Reply:
        bt = self._byte_time()
        timeout = self.reply_timeout + bt * (12 + expect_payload)
        sync = self._read(1, timeout, what)
        skipped = 0
        while sync[0] != pr.REPLY_SYNC:
            skipped += 1
            if skipped > 64:
                raise BadReply(f"reply to {what} does not start with the sync byte "
                               f"0x{pr.REPLY_SYNC:02x} (got 0x{sync[0]:02x} and 64 more)")
            sync = self._read(1, timeout, what)
        head = self._read(pr.HEADER_BYTES + 2, self.reply_timeout + bt * 12, what)
        hdr, hcrc = head[:pr.HEADER_BYTES], int.from_bytes(head[pr.HEADER_BYTES:], "little")
        if pr.crc16(hdr) != hcrc:
            raise BadReply(f"reply to {what}: header CRC mismatch")
        h = pr.decode_header(hdr)
        payload = b""
        if h["length"]:
            body = self._read(h["length"] + 2, self.reply_timeout + bt * (h["length"] + 4), what)
            payload, pcrc = body[:-2], int.from_bytes(body[-2:], "little")
            if pr.crc16(payload) != pcrc:
                raise BadReply(f"reply to {what}: payload CRC mismatch")
        return Reply(h["cmd"], h["addr"], h["count"], payload)

    def transact(self, cmd: pr.Cmd, addr: int = 0, count: int = 0, payload: bytes = b"",
                 expect_payload: int = 0) -> bytes:
        """One request and its reply payload; raises BoardError on an ERROR reply."""
        frame = pr.encode_frame(cmd, addr, count, payload)
        what = f"{pr.Cmd(cmd).name} (addr {addr}, count {count})"
        for attempt in range(self.retries + 1):
            try:
                r = self.send_raw(frame, expect_payload, what)
                if r.cmd == pr.Cmd.ERROR:
                    e = pr.unpack(pr.ERROR_LAYOUT, r.payload.ljust(2, b"\0"))
                    raise BoardError(e["code"], e["cmd"])
                if r.cmd != cmd or r.addr != addr or r.count != count:
                    raise BadReply(f"reply to {what} echoes {r.cmd:#04x} addr {r.addr} count "
                                   f"{r.count}")
                if len(r.payload) != expect_payload:
                    raise BadReply(f"reply to {what} has {len(r.payload)} payload bytes, "
                                   f"expected {expect_payload}")
                return r.payload
            except (BoardError, BadReply) as exc:
                transient = isinstance(exc, BadReply) or exc.code in (pr.LinkError.BAD_CRC,
                                                                       pr.LinkError.TIMEOUT)
                if not transient or attempt == self.retries:
                    raise
                self.link.flush_input()
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ API
    def identify(self) -> Identity:
        raw = self.transact(pr.Cmd.IDENTIFY, expect_payload=pr.nbytes(pr.IDENTITY_LAYOUT))
        f = pr.unpack(pr.IDENTITY_LAYOUT, raw)
        if f["magic"] != pr.MAGIC:
            raise BadReply(f"IDENTIFY magic 0x{f['magic']:04x} is not swattn's 0x{pr.MAGIC:04x}")
        if f["protocol"] != pr.PROTOCOL_VERSION:
            raise DriverError(f"board speaks protocol {f['protocol']}, this driver "
                              f"{pr.PROTOCOL_VERSION}: rebuild and flash the bitstream")
        try:
            params = pr.identity_params(f)
        except ValueError as exc:
            raise BadReply(f"IDENTIFY names an engine swattn cannot build: {exc}") from None
        self._identity = Identity(params, f"{f['version_major']}.{f['version_minor']}."
                                          f"{f['version_patch']}", f["protocol"],
                                  f["buffer_rows"], f["clock_hz"])
        return self._identity

    @property
    def params(self) -> EngineParams:
        if self._identity is None:
            self.identify()
        return self._identity.params

    def configure(self, pattern: Pattern, cfg: SoftmaxConfig, **raw):
        """Write the configuration register (``raw`` overrides fields, for invalid configs);
        an EngineForm's bands and columns go into the engine's band and column fields (a
        ValueError where the engine has none)."""
        p = self.params
        bits = regs.pack_config(p, pattern, cfg, **raw)
        self.transact(pr.Cmd.WRITE_CONFIG, payload=bits.to_bytes(pr.config_bytes(p), "little"))

    def _write_rows(self, cmd: pr.Cmd, rows: np.ndarray):
        rows = np.ascontiguousarray(rows, dtype=np.int8)
        for a in range(0, len(rows), self.rows_per_frame):
            chunk = rows[a:a + self.rows_per_frame]
            self.transact(cmd, a, len(chunk), chunk.tobytes())

    def load(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, pattern: Pattern):
        """Write Q (in stream order), K and V (by token) for ``pattern``."""
        p = self.params
        for name, a in (("q", q), ("k", k), ("v", v)):
            if a.shape != (pattern.n, p.head_dim):
                raise DriverError(f"{name} has shape {a.shape}: the board takes "
                                  f"({pattern.n}, {p.head_dim}) int8")
        if pattern.n > self._identity.buffer_rows:
            raise DriverError(f"n = {pattern.n} rows do not fit the board's "
                              f"{self._identity.buffer_rows}-row buffers")
        # by output position: the board streams them in the engine's q order from there
        self._write_rows(pr.Cmd.WRITE_Q, q[schedule.output_order(pattern, p)])
        self._write_rows(pr.Cmd.WRITE_K, k)
        self._write_rows(pr.Cmd.WRITE_V, v)

    def status(self) -> tuple[regs.State, regs.Error, int]:
        raw = self.transact(pr.Cmd.READ_STATUS,
                            expect_payload=pr.nbytes(pr.STATUS_REPLY_LAYOUT))
        f = pr.unpack(pr.STATUS_REPLY_LAYOUT, raw)
        st, err = regs.unpack_status(f["engine"])
        return st, err, f["rows_out"]

    def run(self, timeout: float = 10.0, poll: float = 0.0) -> int:
        """Start the engine, wait until it is done, return its cycle count."""
        self.transact(pr.Cmd.START)
        return self.run_wait(timeout, poll)

    def run_wait(self, timeout: float = 10.0, poll: float = 0.0) -> int:
        """Wait until the job started is done (raises EngineRefused if the engine refused its
        configuration), return its cycle count."""
        t_end = time.monotonic() + timeout
        while True:
            st, err, _ = self.status()
            if st == regs.State.DONE:
                break
            if st == regs.State.IDLE:
                raise EngineRefused(err)
            if time.monotonic() > t_end:
                raise DriverError(f"the job did not finish within {timeout:g} s")
            if poll:
                time.sleep(poll)
        return self.cycles()

    def cycles(self) -> int:
        raw = self.transact(pr.Cmd.READ_CYCLES, expect_payload=pr.nbytes(pr.CYCLES_LAYOUT))
        return pr.unpack(pr.CYCLES_LAYOUT, raw)["cycles"]

    def read_output(self, pattern: Pattern) -> np.ndarray:
        """The output rows, back in token order, shape (n, head_dim) int8."""
        p = self.params
        d = p.head_dim
        per = max(1, min(self.rows_per_frame, 0xFFFF // d))
        raw = bytearray()
        for a in range(0, pattern.n, per):
            c = min(per, pattern.n - a)
            raw += self.transact(pr.Cmd.READ_OUT, a, c, expect_payload=c * d)
        got = np.frombuffer(bytes(raw), dtype=np.int8).reshape(pattern.n, d)
        out = np.empty_like(got)
        out[schedule.output_order(pattern, p)] = got
        return out

    def attention(self, q, k, v, pattern: Pattern, cfg: SoftmaxConfig,
                  timeout: float = 10.0) -> tuple[np.ndarray, int]:
        """Configure, load, run and read back one head: (output (n, d) int8, engine cycles)."""
        self.configure(pattern, cfg)
        self.load(q, k, v, pattern)
        cycles = self.run(timeout)
        return self.read_output(pattern), cycles


def open_board(port: str, baud: int, **kw) -> Board:
    """A :class:`Board` on a serial port."""
    return Board(SerialLink(port, baud), **kw)
