"""PLL settings for the iCE40 (SB_PLL40_PAD) and ECP5 (EHXPLLL) families, and the PLL of the
platform's family (its instance in :mod:`.ice40` / :mod:`.ecp5`).

The dividers are searched here (as icepll and ecppll do) so a board entry only names its input and
target clocks; :func:`ice40_settings` / :func:`ecp5_settings` raise ValueError when no setting
reaches the target within 1%.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Module

from ..hw import vendor


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
    (an I/O port for the iCE40 pad PLL, the buffered clock for the ECP5), held until the PLL
    locks: by the PLL of the platform's family (:func:`swattn.hw.vendor.primitives`), which
    must be the setting's. ``constraint_hz``: the clock constraint place and route sees, when it
    is to aim above ``setting.fout`` (:attr:`swattn.fpga.boards.Board.pnr_margin`)."""

    def __init__(self, setting: PLLSetting, clk_in, constraint_hz: float | None = None):
        self.setting = setting
        self.clk_in = clk_in
        self.constraint_hz = constraint_hz

    def elaborate(self, platform):
        m = Module()
        s = self.setting
        fam = vendor.family(platform)
        if fam != s.family:
            raise ValueError(f"a PLL setting for {s.family} on a platform of family "
                             f"{fam or getattr(platform, 'family', None)}")
        prims = vendor.primitives(platform)
        m.submodules.pll = pll = prims.PLL(s.divs, self.clk_in, s.fin, s.fout)
        # nextpnr then reports Fmax of this net against the target (or against
        # ``constraint_hz``, where place and route aims past the clock the PLL makes)
        platform.add_clock_constraint(pll.domain.clk, self.constraint_hz or s.fout)
        return m
