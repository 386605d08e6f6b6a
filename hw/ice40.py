"""The iCE40 family's primitives: the SB_PLL40_PAD clock and the iCE40UP's SB_SPRAM256KA RAM.

Generic code never names these: :mod:`.vendor` picks this module for an iCE40 platform (as
``amaranth.lib.memory`` asks the platform's ``get_memory``), and :mod:`.pll` and :mod:`.ram` use
what it offers.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

SPRAM_WIDTH = 16
SPRAM_DEPTH = 16384
#: operand bits of the SB_MAC16 (synthesis maps fabric products onto it: no instance here)
MULTIPLIER_BITS = 16


class PLL(Elaboratable):
    """The ``sync`` domain from the clock pad ``pad`` through an SB_PLL40_PAD of dividers
    ``divs`` (DIVR, DIVF, DIVQ, FILTER_RANGE: :func:`swattn.fpga.pll.ice40_settings`), ``fin`` to
    ``fout`` Hz, held in reset until the PLL locks. ``domain`` is the domain it creates."""

    def __init__(self, divs: dict, pad, fin: float, fout: float):
        self.divs = divs
        self.pad = pad
        self.fin, self.fout = fin, fout
        self.domain = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.domain
        locked = Signal()
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
            p_DIVR=self.divs["DIVR"], p_DIVF=self.divs["DIVF"], p_DIVQ=self.divs["DIVQ"],
            p_FILTER_RANGE=self.divs["FILTER_RANGE"],
            i_PACKAGEPIN=self.pad, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=ClockSignal("sync"), o_LOCK=locked)
        m.submodules.rst_sync = ResetSynchronizer(~locked, domain="sync")
        return m


class SPRAM(wiring.Component):
    """``depth`` words of ``width`` bits in SB_SPRAM256KA blocks side by side (``width`` a
    multiple of 16, ``depth`` at most 16384). In every cycle ``rdata`` is the word at the previous
    cycle's ``addr`` (the blocks read every cycle), and with ``we`` the word ``wdata`` is written
    there."""

    def __init__(self, width: int, depth: int):
        if width % SPRAM_WIDTH or depth > SPRAM_DEPTH:
            raise ValueError(f"SPRAM buffer {depth} x {width} bits: width must be a multiple of "
                             f"{SPRAM_WIDTH} and depth at most {SPRAM_DEPTH}")
        self.tiles = width // SPRAM_WIDTH
        super().__init__({
            "addr": In(range(depth)),
            "wdata": In(width),
            "we": In(1),
            "rdata": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        addr = Signal(14)
        m.d.comb += addr.eq(self.addr)
        for t in range(self.tiles):
            sl = slice(t * SPRAM_WIDTH, (t + 1) * SPRAM_WIDTH)
            m.submodules[f"spram{t}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=addr, i_DATAIN=self.wdata[sl], i_MASKWREN=0b1111,
                i_WREN=self.we, i_CHIPSELECT=1, i_CLOCK=ClockSignal("sync"), i_STANDBY=0,
                i_SLEEP=0,
                i_POWEROFF=1,  # active low: keep the block powered
                o_DATAOUT=self.rdata[sl])
        return m
