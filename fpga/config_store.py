"""The board's configuration store: the configuration register as WRITE_CONFIG delivers it, kept
only as wide as the engine reads it.

Of each field (each element of an array field) the store keeps the low bits the engine reads
(:func:`swattn.sw.spec.regs.config_bits`) and one flag for any higher bit set, which the engine
sees at the field's top bit, so that its range tests still refuse such a value (on the boards'
engines, less than half of the register's flip-flops), and the engine's compares are at those
widths. The fields :func:`~swattn.sw.spec.regs.config_bits` does not name (the bands' and the
key-only columns') are kept whole.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import protocol as pr
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams

#: bits of the link receiver's byte counter (a frame's payload is at most 0xFFFF bytes)
COUNT_BITS = 17


def config_store_plan(layout: data.StructLayout, keep: dict[str, int]):
    """Where each bit of the configuration register goes in a store that keeps, of each field
    (of each element of an array field), its low ``keep[name]`` bits and one flag for any higher
    bit set (:func:`swattn.sw.spec.regs.config_bits`).

    Returns ``(n_kept, n_flags, src, view)``: ``src[b]`` is where received bit ``b`` goes,
    ``("k", i)`` kept bit i or ``("f", j)`` into flag j; ``view[b]`` is what the engine sees at
    bit ``b``: a kept bit, a flag (at the field's top bit), or None (zero)."""
    src, view = [None] * layout.size, [None] * layout.size
    n_kept = n_flags = 0
    for name, field in layout:
        shape = field.shape
        if isinstance(shape, data.ArrayLayout):  # (elements of any shape: a band's struct)
            ew = Shape.cast(shape.elem_shape).width
            elems = [(field.offset + i * ew, ew) for i in range(shape.length)]
        else:
            elems = [(field.offset, field.width)]
        for off, width in elems:
            k = min(width, keep.get(name, width))
            for b in range(k):
                src[off + b] = view[off + b] = ("k", n_kept)
                n_kept += 1
            if k < width:
                for b in range(k, width):
                    src[off + b] = ("f", n_flags)
                view[off + width - 1] = ("f", n_flags)
                n_flags += 1
    return n_kept, n_flags, src, view


#: what the link receiver tells the store (the receiver's side): ``we`` a WRITE_CONFIG payload
#: byte ``data`` at payload index ``index`` arrives; ``clear`` an accepted WRITE_CONFIG header (the
#: store no longer holds a configuration); ``commit`` its payload's CRC was good (it does)
CONFIG_WRITE = wiring.Signature({
    "we": Out(1),
    "data": Out(8),
    "index": Out(COUNT_BITS),
    "clear": Out(1),
    "commit": Out(1),
})


class ConfigStore(wiring.Component):
    """The configuration register (:func:`swattn.sw.spec.regs.config_layout`) on ``cfg``, as
    :func:`config_store_plan` keeps it, and whether a complete one was written (``loaded``).

    Per cycle: a payload byte announced on ``write`` (``we``, ``data``, ``index``) is registered,
    and goes into the store a cycle later (the frame's CRC bytes follow, so it is in long before
    the frame can be accepted): its kept bits, and each flag it touches, set from this byte if it
    is the first of the flag's bits, else or-ed in (a payload always has every byte: the receiver
    checks its length). The enables come from registers only, not from the receiver's state
    decode. ``write.clear`` drops ``loaded``, ``write.commit`` sets it.

    The register holds still during a job (the receiver refuses WRITE_CONFIG while one runs), so
    the engine reads ``cfg`` directly.
    """

    def __init__(self, params: EngineParams):
        self.params = params
        self._layout = regs.config_layout(params)
        self._nbytes = pr.config_bytes(params)
        super().__init__({
            "write": In(CONFIG_WRITE),
            "cfg": Out(self._layout),
            "loaded": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        nbytes = self._nbytes
        n_kept, n_flags, src, view = config_store_plan(self._layout,
                                                       regs.config_bits(self.params))
        kept, flags = Signal(n_kept, name="cfg_kept"), Signal(max(1, n_flags), name="cfg_flags")
        m.d.comb += self.cfg.as_value().eq(Cat(*[
            Const(0, 1) if v is None else (kept if v[0] == "k" else flags)[v[1]] for v in view]))

        first = {}  # the byte of each flag's first bit
        for b, s in enumerate(src):
            if s is not None and s[0] == "f":
                first.setdefault(s[1], b // 8)
        we, byte = Signal(name="cfg_we"), Signal(8, name="cfg_in")
        at = Signal(max(1, (nbytes - 1).bit_length()), name="cfg_at")
        m.d.sync += [we.eq(self.write.we), byte.eq(self.write.data), at.eq(self.write.index)]
        with m.If(we), m.Switch(at):
            for k in range(nbytes):
                with m.Case(k):
                    hits = {}
                    for j in range(8):
                        s = src[8 * k + j] if 8 * k + j < len(src) else None
                        if s is None:
                            continue
                        if s[0] == "k":
                            m.d.sync += kept[s[1]].eq(byte[j])
                        else:
                            hits.setdefault(s[1], []).append(byte[j])
                    for f, bits in hits.items():
                        any_ = Cat(*bits).any()
                        m.d.sync += flags[f].eq(any_ if first[f] == k else flags[f] | any_)

        with m.If(self.write.clear):
            m.d.sync += self.loaded.eq(0)
        with m.If(self.write.commit):
            m.d.sync += self.loaded.eq(1)
        return m
