"""PLL settings and instances for the iCE40 (SB_PLL40_PAD) and ECP5 (EHXPLLL) families.

The dividers are searched here (as icepll and ecppll do) so a board entry only names its input and
target clocks; :func:`ice40_settings` / :func:`ecp5_settings` raise ValueError when no setting
reaches the target within 1%.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer


@dataclass(frozen=True)
class PLLSetting:
    family: str
    fin: float
    fout: float  # achieved output frequency
    divs: dict


def ice40_settings(fin: float, fout: float) -> PLLSetting:
    """SB_PLL40: fout = fin * (DIVF + 1) / ((DIVR + 1) * 2^DIVQ), PFD 10..133 MHz,
    VCO 533..1066 MHz."""
    if not 16e6 <= fout <= 275e6:  # the PLL's output range (iCE40 UltraPlus data sheet)
        raise ValueError(f"no iCE40 PLL setting gives {fout / 1e6:g} MHz: allowed 16..275 MHz")
    best = None
    for divr in range(16):
        pfd = fin / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divq in range(1, 7):
            for divf in range(128):
                vco = pfd * (divf + 1)
                if not 533e6 <= vco <= 1066e6:
                    continue
                f = vco / (1 << divq)
                if best is None or abs(f - fout) < abs(best[0] - fout):
                    best = (f, divr, divf, divq, pfd)
    if best is None or abs(best[0] - fout) > 0.01 * fout:
        raise ValueError(f"no iCE40 PLL setting gives {fout / 1e6:g} MHz from {fin / 1e6:g} MHz")
    f, divr, divf, divq, pfd = best
    ranges = [(16.6e6, 1), (26.6e6, 2), (44.4e6, 3), (66.6e6, 4), (101.3e6, 5)]
    filt = next((r for lim, r in ranges if pfd < lim), 6)
    return PLLSetting("ice40", fin, f, dict(DIVR=divr, DIVF=divf, DIVQ=divq, FILTER_RANGE=filt))


def ecp5_settings(fin: float, fout: float) -> PLLSetting:
    """EHXPLLL with CLKOP feedback: fout = fin * CLKFB_DIV / CLKI_DIV, VCO = fout * CLKOP_DIV in
    400..800 MHz, PFD 3.125..400 MHz."""
    best = None
    for clki in range(1, 129):
        pfd = fin / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            f = pfd * clkfb
            for clkop in range(1, 129):
                if 400e6 <= f * clkop <= 800e6:
                    if best is None or abs(f - fout) < abs(best[0] - fout):
                        best = (f, clki, clkfb, clkop)
                    break
    if best is None or abs(best[0] - fout) > 0.01 * fout:
        raise ValueError(f"no ECP5 PLL setting gives {fout / 1e6:g} MHz from {fin / 1e6:g} MHz "
                         f"within 1% (EHXPLLL: fin / CLKI_DIV * CLKFB_DIV, VCO 400..800 MHz)")
    f, clki, clkfb, clkop = best
    return PLLSetting("ecp5", fin, f, dict(CLKI_DIV=clki, CLKFB_DIV=clkfb, CLKOP_DIV=clkop,
                                           CLKOP_CPHASE=(clkop - 1) // 2))


class PLL(Elaboratable):
    """Creates the ``sync`` domain at ``setting.fout`` from the board clock pin ``clk_in``
    (an I/O port for the iCE40 pad PLL, the buffered clock for the ECP5), held in reset until the
    PLL locks."""

    def __init__(self, setting: PLLSetting, clk_in):
        self.setting = setting
        self.clk_in = clk_in

    def elaborate(self, platform):
        m = Module()
        s = self.setting
        # The ECP5's sync domain has no reset: its clock is held off until the PLL locks (below),
        # so every flip-flop keeps the value the bitstream loaded until then. (A reset from the
        # lock reached about 3,000 flip-flops across the die; in general routing it took 10-12 ns
        # of the 10 ns period, and a global buffer for it did not always route.)
        ecp5 = s.family == "ecp5"
        m.domains.sync = cd = ClockDomain("sync", reset_less=ecp5)
        locked = Signal()
        if s.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=s.divs["DIVR"], p_DIVF=s.divs["DIVF"], p_DIVQ=s.divs["DIVQ"],
                p_FILTER_RANGE=s.divs["FILTER_RANGE"],
                i_PACKAGEPIN=self.clk_in, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=ClockSignal("sync"), o_LOCK=locked)
        else:
            clkop = Signal()  # the PLL's output, before the gate
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=str(round(s.fin / 1e6, 3)),
                a_FREQUENCY_PIN_CLKOP=str(round(s.fout / 1e6, 3)),
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=s.divs["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=s.divs["CLKOP_DIV"], p_CLKOP_CPHASE=s.divs["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=s.divs["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=clkop,
                i_CLKFB=clkop, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1,
                i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_LOCK=locked)
        if ecp5:
            # the clock gate: a DCCA (the global buffer) whose enable is the lock, synchronised
            # to the PLL's output in a domain of two flip-flops before the gate
            m.domains.pll_out = ClockDomain("pll_out", reset_less=True, local=True)
            m.d.comb += ClockSignal("pll_out").eq(clkop)
            lock_s = Signal()
            m.submodules.lock_sync = FFSynchronizer(locked, lock_s, o_domain="pll_out")
            m.submodules.clk_gate = Instance("DCCA", i_CLKI=clkop, i_CE=lock_s,
                                             o_CLKO=ClockSignal("sync"))
        else:
            m.submodules.rst_sync = ResetSynchronizer(~locked, domain="sync")
        if platform is not None:
            # nextpnr then reports Fmax of this net against the target
            platform.add_clock_constraint(cd.clk, s.fout)
        return m
