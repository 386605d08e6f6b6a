"""Single-port buffer RAM: iCE40UP SPRAM on the iCEBreaker, inferred block RAM elsewhere.

The board's Q/K/V/O row buffers are used by one side at a time (the host link between jobs, the
engine's feeders during a job), so one port is enough, and a single port is what lets them live in
the UP5K's 256-kbit SPRAM blocks, which Yosys does not infer: they are instantiated here.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

SPRAM_WIDTH = 16
SPRAM_DEPTH = 16384


class SinglePortRAM(wiring.Component):
    """``depth`` words of ``width`` bits; ``rdata`` is the word at ``addr`` of the previous cycle
    in which ``re`` was high, held otherwise (read and write share the address).

    spram : map to SB_SPRAM256KA (iCE40UP only): width a multiple of 16, depth <= 16384.
    """

    def __init__(self, width: int, depth: int, spram: bool = False):
        if spram and (width % SPRAM_WIDTH or depth > SPRAM_DEPTH):
            raise ValueError(f"SPRAM buffer {depth} x {width} bits: width must be a multiple of "
                             f"{SPRAM_WIDTH} and depth at most {SPRAM_DEPTH}")
        self._width, self._depth, self._spram = width, depth, spram
        super().__init__({
            "addr": In(range(depth)),
            "wdata": In(width),
            "we": In(1),
            "re": In(1, init=1),
            "rdata": Out(width),
        })

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
        m.submodules.mem = mem = memory.Memory(shape=self._width, depth=self._depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.wdata), wp.en.eq(self.we),
                     rp.addr.eq(self.addr), rp.en.eq(self.re)]
        m.d.comb += self.rdata.eq(rp.data)
        return m
