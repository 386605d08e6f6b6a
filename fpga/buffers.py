"""The board's Q, K, V and O row buffers' ports: the host link's side and the engine's, and which
side owns each buffer.

The buffers are single-port RAMs (:class:`~swattn.fpga.ram.SinglePortRAM`) of ``word_bits``-bit
words, a row being ``head_dim * 8 / word_bits`` consecutive words. Between jobs they belong to
the host link, which writes Q, K and V a word at a time at its address (a register, loaded with a
frame's first row and stepped by each word written or read) and reads O there; during a job
they belong to the engine side: the stream engine's feeders (:mod:`.feeders`) or the serial
engine itself.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ram import ram_signature

#: bits of a frame header's row address
ROW_BITS = 16


def link_write_signature(word_bits: int) -> wiring.Signature:
    """The link receiver's side of the buffers: ``load`` sets the link address to row ``row``'s
    first word; ``we`` writes ``wdata`` to the link address of buffer ``target`` (0: Q, 1: K,
    2: V) and steps the address."""
    return wiring.Signature({
        "row": Out(ROW_BITS),
        "load": Out(1),
        "we": Out(1),
        "wdata": Out(word_bits),
        "target": Out(2),
    })


def link_read_signature(word_bits: int) -> wiring.Signature:
    """The link transmitter's side of the O buffer: ``rdata`` the word at the link address
    (``BufferPorts.read_latency`` cycles after the address is set); ``next`` steps the
    address."""
    return wiring.Signature({
        "next": Out(1),
        "rdata": In(word_bits),
    })


def buffer_read_signature(word_bits: int, depth: int) -> wiring.Signature:
    """An engine-side reader of a buffer (the reader's side): ``addr`` and ``re`` as the RAM's
    (``rdata`` as the RAM's, the previous read's word), ``addr_next`` the address it presents in
    the next cycle (buffers cut into slices register their own copies of it), ``own`` the buffer
    is the engine side's."""
    return wiring.Signature({
        "addr": Out(range(depth)),
        "addr_next": Out(range(depth)),
        "re": Out(1, init=1),
        "rdata": In(word_bits),
        "own": In(1),
    })


def buffer_write_signature(word_bits: int, depth: int) -> wiring.Signature:
    """The engine-side writer of the O buffer (the writer's side): ``we`` writes ``wdata`` at
    ``addr``; ``held`` keeps the buffer the writer's after the job (rows still on their way)."""
    return wiring.Signature({
        "addr": Out(range(depth)),
        "wdata": Out(word_bits),
        "we": Out(1),
        "held": Out(1),
    })


class BufferPorts(wiring.Component):
    """The row buffers' ports, between the host link, the engine side and the RAMs.

    word_bits, depth : a buffer's words; row_words : words per row (a power of two); slices : the
    RAMs each buffer is cut into, side by side (``word_bits / slices`` bits each); serial : the
    engine side is the serial engine (it owns the buffers exactly while ``busy``; else the feeders
    own each a cycle behind ``busy``).

    Ports: ``busy`` (a job runs), ``link_w``, ``link_r`` (the link's side), ``q``, ``k``, ``v``
    (the engine side's readers), ``o`` (its writer), and ``ram_q`` ... ``ram_o``, one RAM port
    per slice.

    Per cycle: each buffer's RAMs take the engine side's address while it owns them, else the
    link's. The link's writes reach the Q/K/V RAMs a cycle later, from registers (address, word
    and enables: a buffer's block RAMs spread over the die, and the frame receiver's decode would
    otherwise sit in front of that routing; the link writes only between jobs, bytes apart). The
    link address loads on ``link_w.load`` and steps on a write or ``link_r.next`` (a step wins).
    O belongs to the writer while it owns it and while ``o.held``.

    With more than one slice (a row per block RAM word, the ECP5) each slice is addressed by
    copies of its own of the registers its address comes from (``*_dup``, kept apart by
    fpga/build.py: the read index, the link address, the owner), so that no address net reaches
    all of a buffer's block RAMs (29 of them at 2048 x 256 bits); O's slices register their
    address, enable and data (a write lands a cycle after the writer's) and their read word (a
    link read's word comes three cycles after its address: ``read_latency``).
    """

    def __init__(self, word_bits: int, depth: int, row_words: int, *, slices: int = 1,
                 serial: bool = False):
        if word_bits % slices:
            raise ValueError(f"{word_bits}-bit words do not cut into {slices} slices")
        self._row_shift = (row_words - 1).bit_length()
        self._wb, self._depth, self._slices, self._serial = word_bits, depth, slices, serial
        ram = ram_signature(word_bits // slices, depth)
        super().__init__({
            "busy": In(1),
            "link_w": In(link_write_signature(word_bits)),
            "link_r": In(link_read_signature(word_bits)),
            "q": In(buffer_read_signature(word_bits, depth)),
            "k": In(buffer_read_signature(word_bits, depth)),
            "v": In(buffer_read_signature(word_bits, depth)),
            "o": In(buffer_write_signature(word_bits, depth)),
            **{f"ram_{name}": Out(ram.flip()).array(slices) for name in "qkvo"},
        })

    @property
    def read_latency(self) -> int:
        """Cycles from a link address to O's word at it on ``link_r.rdata``."""
        return 3 if self._slices > 1 else 1

    def elaborate(self, platform):
        m = Module()
        NS, WB = self._slices, self._wb
        SB = WB // NS
        active = self.busy
        # Which side a buffer belongs to: the serial engine's exactly while BUSY (it reads its
        # words directly, one per cycle, and writes its last output word before it leaves
        # BUSY); the feeders' from a register a cycle behind ``busy`` (the readers issue and the
        # link writes only by it; the link does not write around a START or a job's end), one
        # copy per buffer, beside its block RAMs
        if self._serial:
            owner = dict.fromkeys("qkvo", active)
        else:
            owner = {name: Signal(name=f"own_{name}_dup") for name in "qkvo"}
            m.d.sync += [owner[name].eq(active) for name in owner]
        for name in "qkv":
            m.d.comb += getattr(self, name).own.eq(owner[name])

        laddr = Signal(range(self._depth + 1))
        # copies of laddr, one per Q/K/V buffer, each set as laddr is (from its own value when
        # it steps), so that the buffers' slice address copies follow a register of their own,
        # not one laddr reaching all of them (only with slices: a *_dup register is kept through
        # synthesis even unused)
        laddr_c = ({name: Signal.like(laddr, name=f"laddr_{name}_dup") for name in "qkv"}
                   if NS > 1 else {})
        for r in [laddr, *laddr_c.values()]:
            with m.If(self.link_w.we | self.link_r.next):
                m.d.sync += r.eq(r + 1)
            with m.Elif(self.link_w.load):
                m.d.sync += r.eq(self.link_w.row << self._row_shift)

        lw_addr = Signal.like(laddr)
        lw_data = Signal(WB, reset_less=True)
        lw_en, lw_en_n = Signal(3), Signal(3)
        m.d.comb += lw_en_n.eq(Mux(~active & self.link_w.we, 1 << self.link_w.target, 0))
        m.d.sync += [lw_addr.eq(laddr), lw_data.eq(self.link_w.wdata), lw_en.eq(lw_en_n)]
        for i, name in enumerate("qkv"):
            rd, rams = getattr(self, name), getattr(self, f"ram_{name}")
            if NS == 1:
                m.d.comb += [rams[0].addr.eq(Mux(owner[name], rd.addr, lw_addr)),
                             rams[0].re.eq(Mux(owner[name], rd.re, 1)),
                             rams[0].wdata.eq(lw_data), rams[0].we.eq(lw_en[i]),
                             rd.rdata.eq(rams[0].rdata)]
                continue
            for j, r in enumerate(rams):
                own_j = Signal(name=f"own_{name}{j}_dup")
                src_j = Signal.like(rd.addr, name=f"idx_{name}{j}_dup")
                lwa_j = Signal.like(lw_addr, name=f"lwa_{name}{j}_dup")
                lwe_j = Signal(name=f"lwe_{name}{j}_dup")
                m.d.sync += [own_j.eq(active), src_j.eq(rd.addr_next),
                             lwa_j.eq(laddr_c[name]), lwe_j.eq(lw_en_n[i])]
                m.d.comb += [r.addr.eq(Mux(own_j, src_j, lwa_j)), r.re.eq(Mux(own_j, rd.re, 1)),
                             r.wdata.eq(lw_data[j * SB:(j + 1) * SB]), r.we.eq(lwe_j),
                             rd.rdata[j * SB:(j + 1) * SB].eq(r.rdata)]

        o_active = owner["o"] | self.o.held
        if NS == 1:
            ram = self.ram_o[0]
            m.d.comb += [ram.addr.eq(Mux(o_active, self.o.addr, laddr)),
                         ram.wdata.eq(self.o.wdata), ram.we.eq(o_active & self.o.we),
                         ram.re.eq(1), self.link_r.rdata.eq(ram.rdata)]
        else:
            o_rdata = Signal(WB, reset_less=True)  # the O buffer's read word
            for j, r in enumerate(self.ram_o):
                oa = Signal.like(r.addr, name=f"oa{j}_dup")
                owe = Signal(name=f"owe{j}_dup")
                od = Signal(SB, name=f"od{j}", reset_less=True)
                m.d.sync += [oa.eq(Mux(o_active, self.o.addr, laddr)),
                             owe.eq(o_active & self.o.we),
                             od.eq(self.o.wdata[j * SB:(j + 1) * SB])]
                m.d.comb += [r.addr.eq(oa), r.we.eq(owe), r.wdata.eq(od), r.re.eq(1)]
                # (the read data registered beside the slice: a DP16KD's data comes late)
                m.d.sync += o_rdata[j * SB:(j + 1) * SB].eq(r.rdata)
            m.d.comb += self.link_r.rdata.eq(o_rdata)
        return m
