"""The ECP5 family's primitives: the MULT18X18D multiplier and the EHXPLLL clock behind a DCCA
clock gate.

Generic code never names these: :mod:`.vendor` picks this module for an ECP5 platform, and the
engine's blocks (:func:`swattn.hw.blocks.registered_product`) and the board's PLL
(:mod:`swattn.fpga.pll`) use what it offers.
"""

from __future__ import annotations

from amaranth.hdl import (ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal,
                          signed)
from amaranth.lib.cdc import FFSynchronizer

#: operand bits of the hard multiplier (signed): a product of two such operands is one DSP
MULTIPLIER_BITS = 18


def registered_product(m: Module, a, b, out, reg_inputs: bool, name: str) -> None:
    """``out`` <= a * b as one MULT18X18D whose own registers are the product's (and, with
    ``reg_inputs``, the operands'), so that no routing to or from the multiplier shares a cycle
    with its delay. Operands: signed of at most 18 bits or unsigned of at most 17."""
    a18, b18 = Signal(signed(18), name=f"{name}_a18"), Signal(signed(18), name=f"{name}_b18")
    p = Signal(signed(36), name=f"{name}_p")
    m.d.comb += [a18.eq(a), b18.eq(b), out.eq(p)]
    in_clk = "CLK0" if reg_inputs else "NONE"
    ports = {f"i_A{k}": a18[k] for k in range(18)}
    ports.update({f"i_B{k}": b18[k] for k in range(18)})
    ports.update({f"i_C{k}": Const(0, 1) for k in range(18)})
    ports.update({f"o_P{k}": p[k] for k in range(36)})
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK=in_clk, p_REG_INPUTB_CLK=in_clk, p_REG_INPUTC_CLK="NONE",
        p_REG_PIPELINE_CLK="NONE", p_REG_OUTPUT_CLK="CLK0",
        p_GSR="DISABLED", p_MULT_BYPASS="DISABLED",
        p_RESETMODE="SYNC", p_CAS_MATCH_REG="FALSE",
        i_CLK0=ClockSignal(), i_CE0=Const(1, 1), i_RST0=Const(0, 1),
        i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1),
        i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
        **ports)


class PLL(Elaboratable):
    """The ``sync`` domain from the buffered board clock ``clk_in`` through an EHXPLLL of
    dividers ``divs`` (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE:
    :func:`swattn.fpga.pll.ecp5_settings`), ``fin`` to ``fout`` Hz. ``domain`` is the domain it
    creates.

    The domain has no reset: its clock is held off until the PLL locks (a DCCA, the global
    buffer, whose enable is the lock synchronised to the PLL's output), so every flip-flop keeps
    the value the bitstream loaded until then. (A reset from the lock reached about 3,000
    flip-flops across the die; in general routing it took 10-12 ns of the 10 ns period, and a
    global buffer for it did not always route.)
    """

    def __init__(self, divs: dict, clk_in, fin: float, fout: float):
        self.divs = divs
        self.clk_in = clk_in
        self.fin, self.fout = fin, fout
        self.domain = ClockDomain("sync", reset_less=True)

    def elaborate(self, platform):
        m = Module()
        d = self.divs
        m.domains.sync = self.domain
        locked = Signal()
        clkop = Signal()  # the PLL's output, before the gate
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(round(self.fin / 1e6, 3)),
            a_FREQUENCY_PIN_CLKOP=str(round(self.fout / 1e6, 3)),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=d["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=d["CLKOP_DIV"], p_CLKOP_CPHASE=d["CLKOP_CPHASE"],
            p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=d["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=clkop,
            i_CLKFB=clkop, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1,
            i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_LOCK=locked)
        # the clock gate: the lock synchronised to the PLL's output in a domain of two
        # flip-flops before the gate
        m.domains.pll_out = ClockDomain("pll_out", reset_less=True, local=True)
        m.d.comb += ClockSignal("pll_out").eq(clkop)
        lock_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(locked, lock_s, o_domain="pll_out")
        m.submodules.clk_gate = Instance("DCCA", i_CLKI=clkop, i_CE=lock_s,
                                         o_CLKO=ClockSignal("sync"))
        return m
