"""The board core: host-link protocol, row buffers, feeders and the engine, behind byte streams.

``BoardCore`` speaks the frames of :mod:`swattn.sw.spec.protocol` on ``rx``/``tx`` byte streams (a UART
outside, or a testbench directly). Between jobs the host writes the configuration register and the
Q, K, V row buffers and reads the output buffer; during a job the buffers belong to the feeders,
which stream Q rows by position, K/V rows in the engine's order (the global rows, then all rows
once per pass, :func:`swattn.sw.spec.schedule.kv_order`) and write the output rows by position.

It is a composition: the link receiver (:mod:`.link_rx`), the transmitter (:mod:`.link_tx`), the
configuration store (:mod:`.config_store`), the buffers' ports (:mod:`.buffers`) and their RAMs
(:mod:`.ram`), the stream engine's feeders (:mod:`.feeders`) and the engine, wired here.
"""


from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..hw.engine import Engine
from ..hw.serial import WORD_BYTES as SERIAL_WORD_BYTES
from ..hw.serial import SerialEngine
from ..sw.spec import protocol as pr
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .buffers import BufferPorts
from .config_store import ConfigStore, config_store_plan
from .feeders import EngineFeeders
from .link_rx import LinkReceiver
from .link_tx import LinkTransmitter
from .ram import SinglePortRAM


__all__ = ["BoardCore", "config_store_plan"]


def _version() -> str:
    try:
        from swattn import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "0.0.0"


class BoardCore(wiring.Component):
    """Protocol, buffers and engine.

    params : the engine's parameters; the buffers hold ``2 ** seq_width`` rows each.
    word_bytes : buffer RAM width in bytes (divides head_dim; 2 for iCE40 SPRAM, head_dim for a
        row per cycle on block RAM).
    clock_hz : reported by IDENTIFY.
    timeout_cycles : an unfinished frame is dropped after this many cycles without a byte.
    spram : put the buffers in SB_SPRAM256KA blocks (iCE40UP).

    The engine follows ``params``: the serial engine (:class:`~swattn.hw.serial.SerialEngine`, on
    the buffers' 16-bit words) for ``params.serial`` (lanes 4), else the stream engine
    (:class:`~swattn.hw.engine.Engine` behind row feeders).
    """

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    busy: Out(1)

    #: with a row per block RAM word, the Q/K/V buffers are cut into this many memories side by
    #: side, each with its own copies of the registers its address comes from (8: a 32-bit
    #: slice is 4 DP16KD, so that no address net has to reach block RAMs far apart)
    BRAM_SLICES = 8

    def __init__(self, params: EngineParams, *, word_bytes: int, clock_hz: int,
                 timeout_cycles: int, spram: bool = False):
        d = params.head_dim
        self._MustUse__silence = True  # until the arguments are known good (no warning on error)
        if params.serial and word_bytes != SERIAL_WORD_BYTES:
            raise ValueError(f"word_bytes = {word_bytes}: the serial engine (lanes "
                             f"{params.lanes}) reads words of {SERIAL_WORD_BYTES} bytes")
        if word_bytes < 1 or d % word_bytes or (d // word_bytes) & (d // word_bytes - 1):
            raise ValueError(f"word_bytes = {word_bytes}: must divide head_dim {d} into a power "
                             f"of two of words")
        if spram and word_bytes == d:
            raise ValueError("SPRAM buffers are 16 bits wide: word_bytes must be 2")
        self.params = params
        self._W = word_bytes
        self._clock_hz = int(clock_hz)
        self._timeout = max(16, int(timeout_cycles))
        self._spram = spram
        self.buffer_rows = 1 << params.seq_width
        self._MustUse__silence = False
        super().__init__()

    def identity(self) -> dict:
        return pr.identity_fields(self.params, self.buffer_rows, self._clock_hz, _version())

    def elaborate(self, platform):
        m = Module()
        P = self.params
        W = self._W
        R = P.head_dim // W
        depth = self.buffer_rows * R
        serial = P.serial
        # the configuration store holds still during a job (WRITE_CONFIG is refused while one
        # runs): the serial engine reads it directly; the stream engine keeps a copy of its own,
        # loaded at the start beside the logic that reads it (180 flip-flops more than reading
        # the store directly, which sits across the die from the scheduler's and the checks'
        # compares)
        m.submodules.engine = eng = SerialEngine(P) if serial else Engine(P, hold_config=True)
        m.submodules.config = store = ConfigStore(P)
        m.submodules.link_rx = rx = LinkReceiver(P, word_bytes=W, timeout_cycles=self._timeout)
        # With a row per block RAM word (the ECP5) each buffer is cut into BRAM_SLICES memories
        # side by side (BufferPorts addresses each from registers of its own)
        NS = self.BRAM_SLICES if (not serial and R == 1 and not self._spram) else 1
        m.submodules.buffers = bufs = BufferPorts(8 * W, depth, R, slices=NS, serial=serial)
        m.submodules.link_tx = tx = LinkTransmitter(
            pr.pack(pr.IDENTITY_LAYOUT, self.identity()), word_bytes=W,
            read_latency=bufs.read_latency)
        for name in "qkvo":
            for j, port in enumerate(getattr(bufs, f"ram_{name}")):
                ram = SinglePortRAM(8 * W // NS, depth, self._spram)
                m.submodules[f"buf_{name}{j}" if NS > 1 else f"buf_{name}"] = ram
                wiring.connect(m, port, ram)

        m.d.comb += [self.busy.eq(eng.status.state == regs.State.BUSY),
                     eng.cfg.eq(store.cfg), eng.start.eq(rx.start)]
        wiring.connect(m, wiring.flipped(self.rx), rx.rx)
        wiring.connect(m, tx.tx, wiring.flipped(self.tx))
        wiring.connect(m, rx.config, store.write)
        wiring.connect(m, rx.reply, tx.request)
        wiring.connect(m, rx.buf, bufs.link_w)
        wiring.connect(m, tx.buf, bufs.link_r)
        m.d.comb += [rx.busy.eq(self.busy), rx.status.eq(eng.status), rx.cycles.eq(eng.cycles),
                     rx.config_loaded.eq(store.loaded), bufs.busy.eq(self.busy)]
        if serial:  # the engine reads its words directly, one per cycle, and writes O's
            for name in "qkv":
                port = getattr(bufs, name)
                m.d.comb += [port.addr.eq(getattr(eng, f"{name}_addr")),
                             getattr(eng, f"{name}_rdata").eq(port.rdata)]
            m.d.comb += [bufs.o.addr.eq(eng.o_addr), bufs.o.wdata.eq(eng.o_wdata),
                         bufs.o.we.eq(eng.o_we), rx.rows_out.eq(eng.rows_out)]
        else:
            m.submodules.feeders = feed = EngineFeeders(P, W)
            m.d.comb += [feed.cfg.eq(store.cfg), feed.start.eq(rx.start),
                         feed.start_set.eq(rx.start_set), rx.rows_out.eq(feed.rows_out)]
            wiring.connect(m, feed.q, eng.q)
            wiring.connect(m, feed.kv, eng.kv)
            wiring.connect(m, eng.o, feed.o)
            wiring.connect(m, feed.q_read, bufs.q)
            wiring.connect(m, feed.k_read, bufs.k)
            wiring.connect(m, feed.v_read, bufs.v)
            wiring.connect(m, feed.o_write, bufs.o)
        return m
