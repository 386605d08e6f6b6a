"""Fuzzing the board's host-link decoder (``swattn.fpga.core.BoardCore``) in amaranth.sim.

Each case sends a malformed byte stream on ``rx`` (random bytes, truncated frames, frames with a
flipped bit, wrong lengths, addresses past the buffers, unknown commands, valid frames with a bad
payload CRC), with random gaps between bytes, while ``tx`` is ready on random cycles. Then the line
stays idle until the board has answered and dropped any half frame, and a valid IDENTIFY must get
its well-formed reply within a bound: the decoder never hangs and always accepts the next valid
frame. Every write port of the Q/K/V/O row buffers is watched: a write must fall in rows that
some frame of the stream with a valid header CRC addressed (``allowed_rows``), and the O buffer
is never written (no job runs). Cases come from a seeded generator (``cases(seed, count)``), so a failing case is
reproducible from its seed and index.
"""

from __future__ import annotations

import random

from ..sw.spec import protocol as pr


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    how = rng.randrange(4)
    if how == 0 and len(b) > 1:  # truncate
        return bytes(b[:rng.randrange(1, len(b))])
    if how == 1:  # flip a bit
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if how == 2:  # drop or duplicate a byte
        i = rng.randrange(len(b))
        return bytes(b[:i] + b[i + 1:]) if rng.random() < 0.5 else bytes(b[:i] + b[i:i + 1] + b[i:])
    return bytes(b) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))


def cases(params, seed: int, count: int, rows: int) -> list[bytes]:
    """``count`` malformed request streams for an engine of ``params`` with ``rows``-row buffers."""
    rng = random.Random(seed)
    d = params.head_dim
    out = []
    for _ in range(count):
        kind = rng.randrange(7)
        if kind == 0:  # noise, often starting with the sync byte
            n = rng.randrange(1, 24)
            s = bytes(rng.randrange(256) for _ in range(n))
            out.append((bytes([pr.REQ_SYNC]) if rng.random() < 0.6 else b"") + s)
        elif kind == 1:  # rows past the end of the buffers (the header is valid)
            addr = rng.randrange(rows - 1, 1 << 16)
            cnt = rng.randrange(1, 3)
            out.append(pr.encode_frame(pr.Cmd.WRITE_K, addr, cnt, bytes(cnt * d)))
        elif kind == 2:  # a length that does not match the row count
            out.append(pr.encode_frame(pr.Cmd.WRITE_Q, 0, 1, bytes(rng.randrange(1, 2 * d))))
        elif kind == 3:  # unknown command
            c = rng.choice([0, 0x0A, 0x40, 0x7F, 0xFF])
            out.append(pr.encode_frame(c, 0, 0, b""))
        elif kind == 4:  # a valid write whose payload CRC is wrong
            f = bytearray(pr.encode_frame(pr.Cmd.WRITE_V, 0, 1, bytes(rng.randrange(256)
                                                                      for _ in range(d))))
            f[-1] ^= 0x5A
            out.append(bytes(f))
        else:  # a mutated valid frame
            base = rng.choice([pr.encode_frame(pr.Cmd.IDENTIFY),
                               pr.encode_frame(pr.Cmd.READ_STATUS),
                               pr.encode_frame(pr.Cmd.WRITE_Q, 1, 1, bytes(range(d)))])
            out.append(_mutate(rng, base))
    return out


def parse_replies(raw: bytes) -> list[dict]:
    """Complete replies in a byte string: header fields, payload and whether both CRCs match."""
    out, i = [], 0
    while i < len(raw):
        if raw[i] != pr.REPLY_SYNC:
            i += 1
            continue
        hdr = raw[i + 1:i + 1 + pr.HEADER_BYTES]
        j = i + 1 + pr.HEADER_BYTES
        if len(hdr) < pr.HEADER_BYTES or len(raw) < j + 2:
            break
        h = pr.decode_header(hdr)
        ok = int.from_bytes(raw[j:j + 2], "little") == pr.crc16(hdr)
        j += 2
        payload = b""
        if h["length"]:
            payload = raw[j:j + h["length"]]
            if len(raw) < j + h["length"] + 2:
                break
            ok = ok and int.from_bytes(raw[j + h["length"]:j + h["length"] + 2],
                                       "little") == pr.crc16(payload)
            j += h["length"] + 2
        out.append(dict(h, payload=payload, ok=ok))
        i = j
    return out


def allowed_rows(params, stream: bytes, rows: int) -> dict[str, set[int]]:
    """Rows of each buffer that a frame inside ``stream`` may write: every sync byte followed by
    a header whose CRC matches and that addresses rows in range with the right length."""
    d = params.head_dim
    out = {"q": set(), "k": set(), "v": set(), "o": set()}
    names = {pr.Cmd.WRITE_Q: "q", pr.Cmd.WRITE_K: "k", pr.Cmd.WRITE_V: "v"}
    for i, b in enumerate(stream):
        hdr = stream[i + 1:i + 1 + pr.HEADER_BYTES]
        crc = stream[i + 1 + pr.HEADER_BYTES:i + 3 + pr.HEADER_BYTES]
        if b != pr.REQ_SYNC or len(crc) < 2 or int.from_bytes(crc, "little") != pr.crc16(hdr):
            continue
        h = pr.decode_header(hdr)
        if h["cmd"] in names and h["addr"] + h["count"] <= rows and h["length"] == h["count"] * d:
            out[names[h["cmd"]]].update(range(h["addr"], h["addr"] + h["count"]))
    return out


def _buffer_ports(fragment) -> dict:
    """The SinglePortRAM components of an elaborated BoardCore, by buffer name."""
    from ..fpga.ram import SinglePortRAM

    out = {}
    for sub, name, _ in fragment.subfragments:
        if name and name.startswith("buf_"):
            rams = [o for o in (sub.origins or ()) if isinstance(o, SinglePortRAM)]
            if rams:
                out[name[4:]] = rams[0]
    if set(out) != {"q", "k", "v", "o"}:
        raise LookupError(f"BoardCore buffers found: {sorted(out)} (expected q, k, v, o)")
    return out


def run(params, streams: list[bytes], seed: int = 0, timeout_cycles: int = 16,
        reply_bound: int = 600) -> list[dict]:
    """Simulate BoardCore over the streams; one record per case: ``ok`` (the IDENTIFY after it
    was answered correctly), ``cycles`` to that reply, the replies to the malformed stream."""
    from amaranth.sim import Simulator

    from ..fpga.core import BoardCore

    from amaranth.hdl import Fragment

    W = 2
    dut = BoardCore(params, word_bytes=W, clock_hz=12_000_000, timeout_cycles=timeout_cycles)
    frag = Fragment.get(dut, None)
    bufs = _buffer_ports(frag)
    words_per_row = params.head_dim // W
    ident = pr.encode_frame(pr.Cmd.IDENTIFY)
    rng = random.Random(seed)
    results = []

    async def tb(ctx):
        rx_buf = bytearray()
        writes = []  # (buffer, row) of every buffer write in the current case

        async def cycle(send=None):
            """One clock: offer ``send`` (a byte or None) on rx, random tx.ready; returns whether
            the byte was taken."""
            ctx.set(dut.tx.ready, int(rng.random() < 0.7))
            if send is not None:
                ctx.set(dut.rx.valid, 1)
                ctx.set(dut.rx.payload, send)
            else:
                ctx.set(dut.rx.valid, 0)
            taken = send is not None and ctx.get(dut.rx.ready)
            if ctx.get(dut.tx.valid) and ctx.get(dut.tx.ready):
                rx_buf.append(ctx.get(dut.tx.payload))
            for name, ram in bufs.items():
                if ctx.get(ram.we):
                    writes.append((name, ctx.get(ram.addr) // words_per_row))
            await ctx.tick()
            return taken

        async def send_bytes(data: bytes, gaps: bool):
            for b in data:
                if gaps:
                    for _ in range(rng.choice([0, 0, 0, 1, 3])):
                        await cycle()
                waited = 0
                while not await cycle(b):
                    waited += 1
                    if waited > reply_bound:
                        return False
            return True

        async def quiet(n: int):
            """Wait until neither a reply nor a half frame is pending for ``n`` cycles."""
            still = 0
            for _ in range(20 * reply_bound):
                before = len(rx_buf)
                await cycle()
                still = still + 1 if len(rx_buf) == before and not ctx.get(dut.tx.valid) else 0
                if still >= n:
                    return True
            return False

        for k, s in enumerate(streams):
            # the link drops bytes that arrive while it finishes a reply (rx.ready is always
            # high): a host behind the UART cannot send that fast, so leave the line quiet first
            await quiet(4)
            rx_buf.clear()
            writes.clear()
            sent = await send_bytes(s, gaps=True)
            settled = await quiet(timeout_cycles + 8)
            garbage_raw = bytes(rx_buf)
            garbage_replies = parse_replies(garbage_raw)
            rx_buf.clear()
            ok = sent and settled and await send_bytes(ident, gaps=False)
            cycles = 0
            reps = []
            while ok and cycles < reply_bound:
                await cycle()
                cycles += 1
                reps = parse_replies(bytes(rx_buf))
                if reps:
                    break
            allowed = allowed_rows(params, s, dut.buffer_rows)
            stray = sorted({(b, r) for b, r in writes if r not in allowed[b]})
            good = (not stray and ok and len(reps) == 1 and reps[0]["ok"] and reps[0]["cmd"] == pr.Cmd.IDENTIFY
                    and len(reps[0]["payload"]) == pr.nbytes(pr.IDENTITY_LAYOUT))
            results.append({"case": k, "ok": bool(good), "sent": sent, "settled": settled,
                            "stray_writes": stray, "writes": len(writes),
                            "cycles": cycles, "stream": s.hex(),
                            "garbage_replies": [(r["cmd"], r["ok"]) for r in garbage_replies],
                            "garbage_raw": garbage_raw.hex(),
                            "reply": reps[0] if reps else None})

    sim = Simulator(frag)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return results
