"""Board top levels: the UART around :class:`~swattn.fpga.core.BoardCore`, and the platform top
with the PLL and the pins. One generic top serves every entry of :data:`swattn.fpga.boards.BOARDS`.
"""


from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .boards import Board
from .core import BoardCore
from .pll import ecp5_settings, ice40_settings, PLL
from .uart import UARTRx, UARTTx, divisor_for


class UartBoard(wiring.Component):
    """The board core behind an 8N1 UART: ``rx``/``tx`` are the pins (idle high).

    divisor : clock cycles per bit. The remaining arguments go to :class:`BoardCore`.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    busy: Out(1)

    def __init__(self, params, *, divisor: int, word_bytes: int, clock_hz: int,
                 timeout_cycles: int, spram: bool = False):
        self._divisor = divisor
        self.core = BoardCore(params, word_bytes=word_bytes, clock_hz=clock_hz,
                              timeout_cycles=timeout_cycles, spram=spram)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.uart_rx = urx = UARTRx(self._divisor)
        m.submodules.uart_tx = utx = UARTTx(self._divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx), self.busy.eq(core.busy)]
        wiring.connect(m, urx.data, core.rx)
        wiring.connect(m, core.tx, utx.data)
        return m


def pll_setting(board: Board, platform):
    fin = platform.default_clk_frequency
    if board.family == "ice40":
        return ice40_settings(fin, board.clock_hz)
    return ecp5_settings(fin, board.clock_hz)


class BoardTop(Elaboratable):
    """The top level for ``board`` on its amaranth-boards platform: PLL to the target clock,
    UART on the board's USB bridge, the engine's busy flag on LED 0."""

    def __init__(self, board: Board):
        self.board = board

    def elaborate(self, platform):
        b = self.board
        m = Module()
        setting = pll_setting(b, platform)
        if b.family == "ice40":
            clk_in = platform.request(platform.default_clk, dir="-").io
        else:
            clk_in = platform.request(platform.default_clk).i
        m.submodules.pll = PLL(setting, clk_in, constraint_hz=setting.fout * (1 + b.pnr_margin))
        divisor = divisor_for(setting.fout, b.baud)
        m.submodules.board = ub = UartBoard(
            b.params, divisor=divisor, word_bytes=b.word_bytes, clock_hz=round(setting.fout),
            timeout_cycles=round(setting.fout * b.uart_timeout_ms / 1e3), spram=b.spram)
        uart = platform.request("uart", 0)
        m.d.comb += [ub.rx.eq(uart.rx.i), uart.tx.o.eq(ub.tx)]
        led = platform.request("led", 0)
        m.d.comb += led.o.eq(ub.busy)
        return m
