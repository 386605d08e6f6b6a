"""Single-port buffer RAM: iCE40UP SPRAM on the iCEBreaker, inferred block RAM elsewhere.

The board's Q/K/V/O row buffers are used by one side at a time (the host link between jobs, the
engine's feeders during a job), so one port is enough, and a single port is what lets them live in
the UP5K's 256-kbit SPRAM blocks, which Yosys does not infer: they are instantiated here.

A wide buffer in block RAM spans dozens of RAM blocks spread over the die (a 256-bit row in
2048 x 9 blocks takes 29 of them), so on the ECP5 any signal that reaches all of them carries
8 to 10 ns of routing. ``pipelined`` buffers therefore start every RAM input at a register with
no logic after it, copied once per slice of ``slice_bits`` columns (36: four 9-bit-wide ECP5
blocks) so that each copy can sit beside its own blocks, and register the read data once more
beside the blocks before it travels to the fabric: reads take ``latency`` = 3 cycles.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

SPRAM_WIDTH = 16
SPRAM_DEPTH = 16384
PIPELINED_LATENCY = 3  #: read latency of a ``pipelined`` buffer (input, RAM and output registers)


class SinglePortRAM(wiring.Component):
    """``depth`` words of ``width`` bits; ``rdata`` is the word at ``addr`` of the previous cycle
    in which ``re`` was high, held otherwise (read and write share the address).

    spram : map to SB_SPRAM256KA (iCE40UP only): width a multiple of 16, depth <= 16384.
    pipelined : (block RAM only) ``addr``, ``we`` and ``wdata`` are registered (one copy per
        slice of ``slice_bits`` columns) before they reach the RAM, and the read data once more
        after it: ``rdata`` is the word at ``addr`` of ``latency`` = 3 cycles before (a write
        lands 1 cycle after it is presented); ``re`` is not used (the RAM reads every cycle).
    """

    def __init__(self, width: int, depth: int, spram: bool = False, pipelined: bool = False,
                 slice_bits: int = 36):
        if spram and (width % SPRAM_WIDTH or depth > SPRAM_DEPTH):
            raise ValueError(f"SPRAM buffer {depth} x {width} bits: width must be a multiple of "
                             f"{SPRAM_WIDTH} and depth at most {SPRAM_DEPTH}")
        if spram and pipelined:
            raise ValueError("SPRAM buffers are not pipelined (pipelined is for block RAM)")
        if slice_bits < 1:
            raise ValueError(f"slice_bits = {slice_bits}: must be at least 1")
        self._width, self._depth, self._spram = width, depth, spram
        self._pipelined, self._slice_bits = pipelined, slice_bits
        super().__init__({
            "addr": In(range(depth)),
            "wdata": In(width),
            "we": In(1),
            "re": In(1, init=1),
            "rdata": Out(width),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``addr`` to its word on ``rdata``."""
        return PIPELINED_LATENCY if self._pipelined else 1

    @property
    def tiles(self) -> int:
        return self._width // SPRAM_WIDTH if self._spram else 0

    def elaborate(self, platform):
        m = Module()
        if self._spram and platform is not None:
            addr = Signal(14)
            m.d.comb += addr.eq(self.addr)
            for t in range(self.tiles):
                sl = slice(t * SPRAM_WIDTH, (t + 1) * SPRAM_WIDTH)
                m.submodules[f"spram{t}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr, i_DATAIN=self.wdata[sl], i_MASKWREN=0b1111,
                    i_WREN=self.we, i_CHIPSELECT=1, i_CLOCK=ClockSignal("sync"), i_STANDBY=0, i_SLEEP=0,
                    i_POWEROFF=1,  # active low: keep the block powered
                    o_DATAOUT=self.rdata[sl])
            # (SPRAM reads every cycle: callers that need a held word latch it; see RowReader)
            return m
        if self._pipelined:
            return self._elaborate_pipelined(m)
        m.submodules.mem = mem = memory.Memory(shape=self._width, depth=self._depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.wdata), wp.en.eq(self.we),
                     rp.addr.eq(self.addr), rp.en.eq(self.re)]
        m.d.comb += self.rdata.eq(rp.data)
        return m

    def _elaborate_pipelined(self, m: Module) -> Module:
        W, SB = self._width, self._slice_bits
        for k, lo in enumerate(range(0, W, SB)):
            hi = min(W, lo + SB)
            # This slice's own copy of the inputs. The copies of a register are the same logic,
            # which Yosys would merge into one: each address copy starts from a different
            # initial value (harmless: the feeders and the link drive the address in every
            # cycle and nothing reads the first cycles' data), and the write enables, which
            # must start low, alternate between reset and reset-less registers.
            addr = Signal(range(self._depth), init=k % self._depth, name=f"addr{k}")
            we = Signal(name=f"we{k}", reset_less=bool(k % 2))
            wdata = Signal(hi - lo, name=f"wdata{k}")
            m.d.sync += [addr.eq(self.addr), we.eq(self.we), wdata.eq(self.wdata[lo:hi])]
            m.submodules[f"mem{k}"] = mem = memory.Memory(shape=hi - lo, depth=self._depth,
                                                          init=[])
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [wp.addr.eq(addr), wp.data.eq(wdata), wp.en.eq(we), rp.addr.eq(addr)]
            m.d.sync += self.rdata[lo:hi].eq(rp.data)
        return m
