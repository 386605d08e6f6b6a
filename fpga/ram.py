"""Single-port buffer RAM: iCE40UP SPRAM on the iCEBreaker, inferred block RAM elsewhere.

The board's Q/K/V/O row buffers are used by one side at a time (the host link between jobs, the
engine's feeders during a job), so one port is enough, and a single port is what lets them live in
the UP5K's 256-kbit SPRAM blocks, which Yosys does not infer: the iCE40 module
(:mod:`swattn.hw.ice40`, picked by the platform, :mod:`swattn.hw.vendor`) instantiates them.
"""

from __future__ import annotations

from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.hdl import Module

from ..hw import vendor
from ..hw.ice40 import SPRAM_DEPTH, SPRAM_WIDTH


def ram_signature(width: int, depth: int) -> wiring.Signature:
    """A :class:`SinglePortRAM`'s ports (its controller's: ``.flip()``)."""
    return wiring.Signature({
        "addr": In(range(depth)),
        "wdata": In(width),
        "we": In(1),
        "re": In(1, init=1),
        "rdata": Out(width),
    })


class SinglePortRAM(wiring.Component):
    """``depth`` words of ``width`` bits; ``rdata`` is the word at ``addr`` of the previous cycle
    in which ``re`` was high, held otherwise (read and write share the address).

    spram : map to SPRAM (iCE40UP only: width a multiple of 16, depth <= 16384), which reads
        every cycle (``re`` is ignored: callers that need a held word latch it; see RowReader).
        Without a platform (simulation) the RAM is inferred as without ``spram``.
    """

    def __init__(self, width: int, depth: int, spram: bool = False):
        if spram and (width % SPRAM_WIDTH or depth > SPRAM_DEPTH):
            raise ValueError(f"SPRAM buffer {depth} x {width} bits: width must be a multiple of "
                             f"{SPRAM_WIDTH} and depth at most {SPRAM_DEPTH}")
        self._width, self._depth, self._spram = width, depth, spram
        super().__init__(ram_signature(width, depth))

    @property
    def tiles(self) -> int:
        return self._width // SPRAM_WIDTH if self._spram else 0

    def elaborate(self, platform):
        m = Module()
        if self._spram and platform is not None:
            prims = vendor.primitives(platform)
            if not hasattr(prims, "SPRAM"):
                raise ValueError(f"SPRAM buffers on a platform of family "
                                 f"{getattr(platform, 'family', None)}: only the iCE40UP has "
                                 f"SPRAM")
            m.submodules.spram = spram = prims.SPRAM(self._width, self._depth)
            m.d.comb += [spram.addr.eq(self.addr), spram.wdata.eq(self.wdata),
                         spram.we.eq(self.we), self.rdata.eq(spram.rdata)]
            return m
        m.submodules.mem = mem = memory.Memory(shape=self._width, depth=self._depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.wdata), wp.en.eq(self.we),
                     rp.addr.eq(self.addr), rp.en.eq(self.re)]
        m.d.comb += self.rdata.eq(rp.data)
        return m
