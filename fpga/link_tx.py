"""The host link's transmitter: reply frames (:mod:`swattn.sw.spec.protocol`) onto a byte stream."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import protocol as pr
from .buffers import link_read_signature

#: reply payload sources: none, ``word`` (low byte first), the identity bytes, the O buffer
SRC_NONE, SRC_WORD, SRC_IDENTITY, SRC_OUT = range(4)

#: a reply asked of the transmitter (the link receiver's side): ``go`` (one cycle, while the
#: transmitter is idle) sends a frame of ``header`` and ``header.length`` payload bytes from
#: ``src`` (``word``: its low bytes; O: ``header.count`` rows from the link address); ``done``
#: (one cycle) the frame's last byte is out
REPLY_REQUEST = wiring.Signature({
    "go": Out(1),
    "header": Out(pr.HEADER_LAYOUT),
    "src": Out(2),
    "word": Out(32),
    "done": In(1),
})


class LinkTransmitter(wiring.Component):
    """Sends a reply frame per ``request``: the sync byte, the header, its CRC, and a payload and
    its CRC if the length is not 0, onto ``tx``, the CRC by the protocol's
    (``protocol.CRC_PARAMETERS``) hardware processor.

    identity : the IDENTIFY reply's payload (a ROM); word_bytes : the O buffer's words;
    read_latency : cycles from the link address to O's word on ``buf.rdata``
    (:attr:`~swattn.fpga.buffers.BufferPorts.read_latency`).

    Per cycle: a request is registered (header, source, word). The byte a state offers is
    registered before it reaches ``tx`` and the CRC: a state offers its byte from the third cycle
    in which it wants to send (``settled``; ``want_r`` marks the second), and its indices move on
    a handshake or, a row word's shift, a cycle after it, so the registered byte is the state's
    current byte. ``tx.valid`` once up stays up with the same byte until taken. An output row
    word is fetched from O at the link address (``buf``; the address steps after each word) and
    goes out low byte first, shifted down a byte per byte sent (no multiplexer over a row's 32
    bytes in front of the offered byte), and so does a status or cycle word.
    """

    def __init__(self, identity: bytes, *, word_bytes: int, read_latency: int = 1):
        self._identity = bytes(identity)
        self._W = word_bytes
        self._latency = read_latency
        super().__init__({
            "request": In(REPLY_REQUEST),
            "tx": Out(stream.Signature(8)),
            "buf": Out(link_read_signature(8 * word_bytes)),
        })

    def elaborate(self, platform):
        m = Module()
        W = self._W
        WB = 8 * W
        req = self.request
        r_hdr = Signal(pr.HEADER_LAYOUT, reset_less=True)
        r_src = Signal(2)
        r_word = Signal(32, reset_less=True)
        with m.If(req.go):
            m.d.sync += [r_hdr.eq(req.header), r_src.eq(req.src)]
            with m.If(req.src == SRC_WORD):
                m.d.sync += r_word.eq(req.word)
        r_last = Signal(16)  # the reply payload's last byte index (a register: no subtraction
        # in front of the compare; from the reply header a cycle later: the transmitter sends
        # eight bytes before it compares with r_last)
        r_last1 = Signal(16)  # and the index before it
        m.d.sync += [r_last.eq(r_hdr.length - 1), r_last1.eq(r_hdr.length - 2)]

        m.submodules.crc = crc = pr.CRC_PARAMETERS.create()
        tcrc = crc.crc
        tcnt = Signal(17)
        t_last = Signal()  # tcnt is the payload's last byte (a register, set with tcnt)
        tsub = Signal(range(W))
        tword = Signal(WB, reset_less=True)
        out_byte = Signal(8)  # the byte the state offers (a multiplexer over its sources)
        want = Signal()
        want_r = Signal()
        byte_r = Signal(8)
        settled = Signal()
        m.d.comb += [self.tx.payload.eq(byte_r), self.tx.valid.eq(want & settled),
                     crc.data.eq(byte_r)]
        fire = self.tx.valid & self.tx.ready
        m.d.sync += [byte_r.eq(out_byte), want_r.eq(want & ~fire),
                     settled.eq(want_r & want & ~fire)]
        # The output row word (``tword``, a 256-bit shift register on wide buffers) loads and
        # shifts from registers of its own per 64 bits, a cycle after the state decode and the
        # handshake that call for it (no decode reaching all its flip-flops' enables; t_sh: a
        # payload byte's handshake)
        t_ld = Signal()
        t_sh = Signal()
        for j in range(-(-WB // 64)):
            lo, hi = 64 * j, min(WB, 64 * (j + 1))
            ld_j = Signal(name=f"tword_ld{j}_dup")
            sh_j = Signal(name=f"tword_sh{j}_dup")
            m.d.sync += [ld_j.eq(t_ld), sh_j.eq(t_sh)]
            with m.If(ld_j):
                m.d.sync += tword[lo:hi].eq(self.buf.rdata[lo:hi])
            with m.Elif(sh_j):
                m.d.sync += tword[lo:hi].eq(tword[lo + 8:hi + 8] if W > 1 else tword[lo:hi])
        # (a status or cycle word's shift, too: a register, a cycle after the handshake)
        r_sh = Signal()
        m.d.sync += r_sh.eq(t_sh)
        with m.If(r_sh):
            m.d.sync += r_word.eq(r_word >> 8)
        r_hdr_bytes = Array(r_hdr.as_value()[8 * i:8 * (i + 1)] for i in range(pr.HEADER_BYTES))
        id_rom = Array(Const(b, 8) for b in self._identity)
        id_at = tcnt[:max(1, (len(self._identity) - 1).bit_length())]

        with m.FSM(name="reply"):
            with m.State("IDLE"):
                with m.If(req.go):
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += [want.eq(1), out_byte.eq(pr.REPLY_SYNC)]
                with m.If(fire):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += tcnt.eq(0)
                    m.next = "HDR"
            with m.State("HDR"):
                m.d.comb += [want.eq(1), out_byte.eq(r_hdr_bytes[tcnt[:3]])]
                with m.If(fire):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += tcnt.eq(tcnt + 1)
                    with m.If(tcnt == pr.HEADER_BYTES - 1):
                        m.next = "HCRC0"
            with m.State("HCRC0"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[:8])]
                with m.If(fire):
                    m.next = "HCRC1"
            with m.State("HCRC1"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[8:])]
                with m.If(fire):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += [tcnt.eq(0), tsub.eq(0), t_last.eq(r_last == 0)]
                    with m.If(r_hdr.length == 0):
                        m.next = "DONE"
                    with m.Elif(r_src == SRC_OUT):
                        m.next = "FETCH"
                    with m.Else():
                        m.next = "PAY"
            # the link address drives the O buffer; its word lands read_latency cycles later
            # and is taken into tword a cycle after that, in LATCH
            fetch = ["FETCH"] + [f"FETCH{k}" for k in range(2, self._latency + 1)]
            for k, state in enumerate(fetch):
                with m.State(state):
                    if k + 1 < len(fetch):
                        m.next = fetch[k + 1]
                    else:
                        m.d.comb += t_ld.eq(1)
                        m.next = "LATCH"
            with m.State("LATCH"):
                m.d.comb += self.buf.next.eq(1)
                m.next = "PAY"
            with m.State("PAY"):
                m.d.comb += want.eq(1)
                with m.Switch(r_src):
                    with m.Case(SRC_WORD):
                        m.d.comb += out_byte.eq(r_word[:8])
                    with m.Case(SRC_IDENTITY):
                        m.d.comb += out_byte.eq(id_rom[id_at])
                    with m.Case(SRC_OUT):
                        m.d.comb += out_byte.eq(tword[:8])
                with m.If(fire):
                    m.d.comb += [crc.valid.eq(1), t_sh.eq(1)]
                    m.d.sync += [tcnt.eq(tcnt + 1), t_last.eq(tcnt == r_last1)]
                    if W > 1:
                        m.d.sync += tsub.eq(tsub + 1)
                    with m.If(t_last):
                        m.next = "PCRC0"
                    with m.Elif((r_src == SRC_OUT) & (tsub == W - 1)):
                        m.next = "FETCH"
            with m.State("PCRC0"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[:8])]
                with m.If(fire):
                    m.next = "PCRC1"
            with m.State("PCRC1"):
                m.d.comb += [want.eq(1), out_byte.eq(tcrc[8:])]
                with m.If(fire):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += req.done.eq(1)
                m.next = "IDLE"
        return m
