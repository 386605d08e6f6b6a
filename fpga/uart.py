"""An 8N1 UART: receiver and transmitter with byte streams.

Neither amaranth 0.5 nor amaranth-boards ships a UART (amaranth-stdio is not released on PyPI in
a version for amaranth 0.5), so this is a small one. The baud rate is set by ``divisor``, the
number of clock cycles per bit (clock_hz / baud, rounded); the receiver samples mid-bit, so a
divisor error under about 4% over a byte is tolerated.
"""


from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


def divisor_for(clock_hz: float, baud: float) -> int:
    """Cycles per bit; raises ValueError if the rounding error would corrupt bytes (> 2%)."""
    div = round(clock_hz / baud)
    if div < 4:
        raise ValueError(f"baud {baud:g} is too fast for a {clock_hz / 1e6:g} MHz clock: "
                         f"need at least 4 cycles per bit")
    err = abs(clock_hz / div - baud) / baud
    if err > 0.02:
        raise ValueError(f"baud {baud:g} at {clock_hz / 1e6:g} MHz is off by {100 * err:.1f}% "
                         f"(divisor {div}): allowed 2%")
    return div


def _checked_divisor(divisor: int) -> int:
    if divisor < 4:
        raise ValueError(f"UART divisor {divisor} is too small: allowed >= 4")
    return divisor


class UARTRx(wiring.Component):
    """Receiver. ``rx`` is the pin (idle high); ``data`` carries each received byte.

    A byte whose stop bit is low (a framing error or a break) is dropped. The receiver cannot
    stall the line: a byte not taken before the next one completes is overwritten.
    """

    rx: In(1)
    data: Out(stream.Signature(8))

    def __init__(self, divisor: int):
        self._divisor = _checked_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        pin = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, pin, init=1)
        timer = Signal(range(div + div // 2 + 1))
        bits = Signal(8)
        count = Signal(range(9))
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM(name="rx"):
            with m.State("IDLE"):
                with m.If(~pin):
                    # first data bit is sampled 1.5 bit times after the start edge
                    m.d.sync += [timer.eq(div + div // 2 - 1), count.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [bits.eq(Cat(bits[1:], pin)), count.eq(count + 1),
                                 timer.eq(div - 1)]
                    with m.If(count == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(pin):
                        m.d.sync += [self.data.payload.eq(bits), self.data.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "BREAK"
            with m.State("BREAK"):  # wait for the line to return high
                with m.If(pin):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter. ``tx`` is the pin; each byte offered on ``data`` is sent as 8N1."""

    tx: Out(1, init=1)
    data: In(stream.Signature(8))

    def __init__(self, divisor: int):
        self._divisor = _checked_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        timer = Signal(range(div))
        shreg = Signal(10, init=0x3FF)
        count = Signal(range(11))
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(count == 0):
            m.d.comb += self.data.ready.eq(1)
            with m.If(self.data.valid):
                m.d.sync += [shreg.eq(Cat(0, self.data.payload, 1)), count.eq(10),
                             timer.eq(div - 1)]
        with m.Else():
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), count.eq(count - 1),
                             timer.eq(div - 1)]
        return m
