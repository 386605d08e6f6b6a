"""The K/V store: the ring of K/V rows the window slides over, the global rows, and their writer.

:class:`KVRing` takes the ``kv`` stream one chunk per cycle into two memories per operand: the
first ``n_globals`` rows of a job into the global rows, the rest into a ring of
``EngineParams.ring_rows`` rows (memory grows with the window, not with n). Stage 1 reads K and
stage 2 reads V through the read ports; the ring's rows below the release position that stage 2
reports are free to overwrite.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from ..sw.spec.engine_params import EngineParams
from .blocks import int8_row
from .job import JobSignature

#: cycles from stage 2 taking a group to the K/V writer seeing the rows it releases: the V read
#: of the previous group's last key (address at t5, data at t6) must come first
RELEASE_DELAY = 7


def kv_layout(head_dim: int) -> data.StructLayout:
    """The ``kv`` stream's payload: a K row and a V row of ``head_dim`` int8 values."""
    return data.StructLayout({"k": int8_row(head_dim), "v": int8_row(head_dim)})


def row_chunk(row, c, chunk_bits: int, chunks: int):
    """Chunk ``c`` (a Value) of an int8 row view, ``chunk_bits`` bits, as raw bits."""
    flat = row.as_value()
    return Array(flat[i * chunk_bits:(i + 1) * chunk_bits] for i in range(chunks))[c]


class SlicedMemory:
    """A memory of ``width``-bit words cut into :attr:`slices` memories of at most
    ``SLICE_BITS`` side by side, each with a write port and a read port of its own, so that no
    address or enable net has to reach all the blocks of a wide memory.

    ``addr[j]`` is slice j's read address (its data the next cycle; ``data`` is the whole word).
    :meth:`write_next` writes a word a cycle after its address and enable, which it registers
    once per slice (``*_dup``: kept apart by the FPGA builds)."""

    SLICE_BITS = 64

    def __init__(self, m: Module, name: str, depth: int, width: int):
        self.name = name
        self.slices = self.count(width)
        widths = [min(self.SLICE_BITS, width - j * self.SLICE_BITS) for j in range(self.slices)]
        mems = []
        for j, w in enumerate(widths):
            m.submodules[f"{name}{j}"] = mm = memory.Memory(shape=unsigned(w), depth=depth,
                                                            init=[])
            mems.append(mm)
        self._widths = widths
        self._rps = [mm.read_port() for mm in mems]
        self._wps = [mm.write_port() for mm in mems]
        self.addr = [rp.addr for rp in self._rps]
        self.data = Cat(*[rp.data for rp in self._rps])

    @classmethod
    def count(cls, width: int) -> int:
        """Slices of a ``width``-bit word."""
        return max(1, -(-width // cls.SLICE_BITS))

    def write_next(self, m: Module, addr, data, en) -> None:
        """Write ``data`` (registered by the caller) at ``addr`` when ``en``, both given a cycle
        ahead of it."""
        lo = 0
        for j, (wp, w) in enumerate(zip(self._wps, self._widths)):
            a = Signal.like(addr, name=f"{self.name}_wa{j}_dup")
            e = Signal(name=f"{self.name}_we{j}_dup")
            m.d.sync += [a.eq(addr), e.eq(en)]
            m.d.comb += [wp.addr.eq(a), wp.en.eq(e), wp.data.eq(data[lo:lo + w])]
            lo += w


def kv_address_widths(P: EngineParams) -> tuple[int, int]:
    """Widths of the K/V store's read addresses: the ring's (chunk, row mod ``ring_rows``) and
    the global rows' (chunk, global); one bit at least, so a port exists for every size."""
    return ((P.ring_rows * P.chunks - 1).bit_length() or 1,
            (P.held_rows * P.chunks - 1).bit_length() or 1)


def kv_ports(P: EngineParams) -> dict:
    """The read ports of the K/V store, per memory slice: ``{k,v}_addr`` the ring's chunk
    address (chunk, row mod ring_rows), ``{gk,gv}_addr`` the global rows' (chunk, global);
    ``*_data`` the chunk a cycle later."""
    bits = P.lane_width * nx.DATA_WIDTH
    KS = SlicedMemory.count(bits)
    ring_aw, glob_aw = kv_address_widths(P)
    ports = {}
    for name, aw in (("k", ring_aw), ("v", ring_aw), ("gk", glob_aw), ("gv", glob_aw)):
        ports[f"{name}_addr"] = In(aw).array(KS)
        ports[f"{name}_data"] = Out(bits)
    return ports


class KVRing(wiring.Component):
    """K/V store and writer.

    Per cycle, while the job runs: the writer takes a chunk of the offered ``kv`` row when there
    is room for its row (a global row still to load; or a ring row still in the job's stream and
    the ring less than ``ring_rows`` ahead of the release position), and takes the row
    (``kv.ready``) with its last chunk; a row once started goes on whenever ``kv`` is valid.
    The chunk reaches the memories a cycle later, from registers. ``wpos`` counts the ring rows
    written (stream position): a row is readable the cycle after ``wpos`` passes it.

    ``release_en`` / ``release_pos``: stage 2 took a group whose keys start at ``release_pos``;
    the ring's rows below it may be overwritten ``RELEASE_DELAY`` cycles later (the previous
    group's last V reads are still in flight).
    """

    def __init__(self, params: EngineParams):
        self._params = params
        super().__init__({
            "job": In(JobSignature(params)),
            "kv": In(stream.Signature(kv_layout(params.head_dim))),
            "release_en": In(1),
            "release_pos": In(params.pos_width + 1),
            "wpos": Out(params.pos_width + 1),
            **kv_ports(params),
        })

    def elaborate(self, platform):
        P = self._params
        CH, B, PW = P.chunks, P.ring_rows, P.pos_width
        GM = P.held_rows
        # the rows held beside the ring: the globals', then the key-only columns'
        held = self.job.nheld if P.max_columns else self.job.ng
        chunk_bits = P.lane_width * nx.DATA_WIDTH
        job = self.job
        m = Module()

        # The K/V rings and global rows: each cut into KS memories of at most 64 bits side by
        # side, each with its own copies of the addresses and write enable (``*_dup`` registers),
        # so that no address net reaches all of a wide memory's blocks, spread over an FPGA
        mems = {"k": SlicedMemory(m, "ring_k", B * CH, chunk_bits),
                "v": SlicedMemory(m, "ring_v", B * CH, chunk_bits),
                "gk": SlicedMemory(m, "glob_k", GM * CH, chunk_bits),
                "gv": SlicedMemory(m, "glob_v", GM * CH, chunk_bits)}
        for name, sm in mems.items():
            m.d.comb += getattr(self, f"{name}_data").eq(sm.data)
            for j, a in enumerate(sm.addr):
                m.d.comb += a.eq(getattr(self, f"{name}_addr")[j])

        # The release position passes RELEASE_DELAY registers; the writer's room test compares
        # the last one's next value (the pipe's register before it) + B and + B - 1, registers
        rel_pipe = [Signal(PW + 1, name=f"rel_req{i}") for i in range(RELEASE_DELAY)]
        with m.If(self.release_en):
            m.d.sync += rel_pipe[0].eq(self.release_pos)
        for i in range(1, RELEASE_DELAY):
            m.d.sync += rel_pipe[i].eq(rel_pipe[i - 1])
        rel_b = Signal(PW + 2, name="rel_b")
        rel_b1 = Signal(PW + 2, name="rel_b1")
        m.d.sync += [rel_b.eq(rel_pipe[-3] + B), rel_b1.eq(rel_pipe[-3] + (B - 1))]

        pl = Signal(8)  # global rows preloaded
        wpos = Signal(PW + 1)  # ring rows committed (stream position)
        m.d.comb += self.wpos.eq(wpos)
        # The writer reads a row straight from the stream, one chunk per cycle, and takes it
        # (``ready``) with its last chunk: no copy of the row is kept.
        hchunk = Signal(range(CH))  # the chunk written next; nonzero: in the middle of a row
        mid_row = Const(0, 1) if CH == 1 else (hchunk != 0)
        next_pl = Signal.like(pl)
        next_wpos = Signal.like(wpos)
        # The compares behind ``room`` are registered a cycle ahead: pl < ng, wpos < total_pos
        # and the ring's fill wpos - release < B
        plt = Signal(name="plt")
        wlt = Signal(name="wlt")
        gap_ok = Signal(name="gap_ok")
        to_glob = plt
        room = Signal()
        m.d.comb += room.eq(plt | (wlt & gap_ok))
        wr = Signal()  # a chunk is written this cycle
        m.d.comb += wr.eq(job.running & self.kv.valid & (mid_row | room))
        last_chunk = wr & (hchunk == CH - 1)
        m.d.comb += [next_pl.eq(pl), next_wpos.eq(wpos)]
        with m.If(last_chunk):
            with m.If(to_glob):
                m.d.comb += next_pl.eq(pl + 1)
            with m.Else():
                m.d.comb += next_wpos.eq(wpos + 1)
        # ready does not wait for valid (a round trip to the stream's source in one cycle):
        # it says that a valid chunk now would be the row's last and would be written
        m.d.comb += self.kv.ready.eq(job.running & (mid_row | room) & (hchunk == CH - 1))
        waddr_ring = Cat(Const(0, 0) if CH == 1 else hchunk, wpos[:(B - 1).bit_length()])
        waddr_glob = Cat(Const(0, 0) if CH == 1 else hchunk, pl[:max(1, (GM - 1).bit_length())])
        kbits = row_chunk(self.kv.payload.k, hchunk, chunk_bits, CH)
        vbits = row_chunk(self.kv.payload.v, hchunk, chunk_bits, CH)
        # The chunk reaches the memories a cycle later, from registers (address, data and the
        # enables), so that the input's valid, which the writer's control follows, does not also
        # drive the memories' write enables, spread over the die, in the same cycle (a row is
        # readable the cycle after its last chunk lands: sw/cycles.py, WRITE_BASE).
        wk, wv = Signal.like(kbits, reset_less=True), Signal.like(vbits, reset_less=True)
        m.d.sync += [wk.eq(kbits), wv.eq(vbits)]
        for sm, data_, addr, en in ((mems["k"], wk, waddr_ring, wr & ~to_glob),
                                    (mems["v"], wv, waddr_ring, wr & ~to_glob),
                                    (mems["gk"], wk, waddr_glob, wr & to_glob),
                                    (mems["gv"], wv, waddr_glob, wr & to_glob)):
            sm.write_next(m, addr, data_, en)
        with m.If(wr):
            m.d.sync += hchunk.eq(Mux(hchunk == CH - 1, 0, hchunk + 1))
        # each test for both ways the position can move, from registers, then picked by
        # whether this cycle's chunk is a row's last (which follows the input's valid)
        # (wpos + 1 < x as wpos < x - 1: one carry chain each, the bound's from a register)
        inc_pl, inc_w = last_chunk & to_glob, last_chunk & ~to_glob
        # (wpos < total_pos as wrem = total_pos - wpos > 0, a down-counter set at job init:
        # its tests are against constants, no carry chain)
        wrem = Signal(len(job.total_pos) + 1, name="wrem")
        with m.If(inc_w):
            m.d.sync += wrem.eq(wrem - 1)
        # (wpos - release < B exactly when wpos < release + B)
        m.d.sync += [pl.eq(next_pl), wpos.eq(next_wpos),
                     plt.eq(Mux(inc_pl, pl + 1 < held, pl < held)),
                     wlt.eq(Mux(inc_w, wrem[1:] != 0, wrem != 0)),
                     gap_ok.eq(Mux(inc_w, wpos < rel_b1, wpos < rel_b))]

        with m.If(job.init):
            m.d.sync += [r.eq(0) for r in rel_pipe] + [rel_b.eq(B), rel_b1.eq(B - 1)]
            m.d.sync += [plt.eq(held != 0), wlt.eq(job.total_pos != 0),
                         wrem.eq(job.total_pos), gap_ok.eq(1), pl.eq(0), wpos.eq(0),
                         hchunk.eq(0)]
        return m
