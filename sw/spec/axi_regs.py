"""The AXI4-Lite register map of the engine's AXI top (``swattn generate --bus axi``).

One table, :func:`register_map`, gives every register's offset, access, reset value and fields;
the RTL (:mod:`swattn.hw.axi`), the JSON sidecar, docs/axi.md and the testbench read it, so no
offset or bit position is written twice. Registers are 32 bits wide; every configuration field
of :data:`swattn.sw.spec.regs.CONFIG_FIELDS` has a word of its own (its low bits), and global
index ``i`` is the word at ``GLOBAL_BASE + 4 i``.

Access: ``RO`` read only; ``RW`` read and write (byte strobes honoured); ``W1S`` write 1 to a
bit to act (reads 0); ``W1C`` write 1 to a bit to clear it. A write to a read-only or unmapped
address, or a read of an unmapped one, answers SLVERR and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data

from .engine_params import EngineParams
from .regs import CONFIG_FIELDS, GLOBAL_INDEX_WIDTH, STATUS_LAYOUT, Error, State

#: address bits of the AXI4-Lite port (4 KiB of register space)
ADDR_WIDTH = 12
DATA_WIDTH = 32

#: the interrupt sources, bit by bit, of IRQ_ENABLE and IRQ_STATUS
IRQ_LAYOUT = data.StructLayout({"done": unsigned(1), "error": unsigned(1)})
#: what the engine was generated with (read only)
IDENT_LAYOUT = data.StructLayout({"head_dim": unsigned(8), "lanes": unsigned(13),
                                  "max_globals": unsigned(7)})
LIMITS_LAYOUT = data.StructLayout({"max_radius": unsigned(13), "max_dilation": unsigned(7),
                                   "seq_width": unsigned(5)})
CONTROL_LAYOUT = data.StructLayout({"start": unsigned(1)})

#: offset of the first configuration word and of GLOBAL_0
CONFIG_BASE = 0x20
GLOBAL_BASE = 0x40

FIELD_TEXT = {
    "start": "1: start a job with the configuration in the CONFIG_* and GLOBAL_* registers",
    "state": "engine state: " + ", ".join(f"{s.value} {s.name}" for s in State),
    "error": "why the last start was refused (0: accepted): "
             + ", ".join(f"{e.value} {e.name}" for e in Error),
    "cycles": "cycles since the last accepted start, frozen when its job is done",
    "done": "a job finished (its last output row was taken)",
    "irq_error": "a start was refused (STATUS.error says why)",
    "head_dim": "head dimension", "lanes": "MAC lanes", "max_globals": "global tokens at most",
    "max_radius": "window reach at most, in tokens (dilation x radius)",
    "max_dilation": "dilation at most", "seq_width": "sequence length at most 2^seq_width - 1",
    "n": "sequence length", "left": "window radius to the left, in steps of the dilation",
    "right": "window radius to the right, in steps of the dilation (0: causal)",
    "dilation": "distance between window keys, in tokens", "n_globals": "number of global tokens",
    "mult_mant": "softmax scale mantissa", "mult_shift": "softmax scale shift",
    "out_shift": "output right shift", "index": "the global token's index",
}


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    reset: int = 0


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str  # RO, RW, W1S, W1C
    fields: tuple[Field, ...]
    text: str

    @property
    def reset(self) -> int:
        return sum(f.reset << f.lsb for f in self.fields)

    @property
    def mask(self) -> int:
        return sum(((1 << f.width) - 1) << f.lsb for f in self.fields)


def _fields(layout: data.StructLayout, rename: dict | None = None,
            values: dict | None = None) -> tuple[Field, ...]:
    """Fields of ``layout`` (renamed by ``rename``), with reset values from ``values``."""
    rename, values = rename or {}, values or {}
    return tuple(Field(rename.get(name, name), f.offset, f.shape.width, values.get(name, 0))
                 for name, f in layout)


def register_map(params: EngineParams) -> list[Register]:
    """Every register of the AXI top for ``params``, in address order."""
    regs = [
        Register("CONTROL", 0x00, "W1S", _fields(CONTROL_LAYOUT), "job control"),
        Register("STATUS", 0x04, "RO", _fields(STATUS_LAYOUT), "engine state and error code"),
        Register("CYCLES", 0x08, "RO", (Field("cycles", 0, 32),), "cycle counter"),
        Register("IRQ_ENABLE", 0x0C, "RW", _fields(IRQ_LAYOUT, {"error": "irq_error"}),
                 "which IRQ_STATUS bits raise the irq output"),
        Register("IRQ_STATUS", 0x10, "W1C", _fields(IRQ_LAYOUT, {"error": "irq_error"}),
                 "interrupt events since last cleared (irq = |(IRQ_STATUS & IRQ_ENABLE))"),
        Register("IDENT", 0x14, "RO", _fields(IDENT_LAYOUT, values=_ident(params)),
                 "engine size (constant)"),
        Register("LIMITS", 0x18, "RO", _fields(LIMITS_LAYOUT, values=_limits(params)),
                 "configuration limits (constant)"),
    ]
    for i, (name, width) in enumerate(CONFIG_FIELDS.items()):
        regs.append(Register(f"CONFIG_{name.upper()}", CONFIG_BASE + 4 * i, "RW",
                             (Field(name, 0, width),), f"configuration: {name}"))
    assert CONFIG_BASE + 4 * len(CONFIG_FIELDS) <= GLOBAL_BASE
    for i in range(params.max_globals):
        regs.append(Register(f"GLOBAL_{i}", GLOBAL_BASE + 4 * i, "RW",
                             (Field("index", 0, GLOBAL_INDEX_WIDTH),),
                             f"configuration: global token {i}"))
    assert regs[-1].offset < 1 << ADDR_WIDTH
    return regs


def _ident(params: EngineParams) -> dict:
    return {name: getattr(params, name) for name, _ in IDENT_LAYOUT}


def _limits(params: EngineParams) -> dict:
    return {name: getattr(params, name) for name, _ in LIMITS_LAYOUT}


def ident_value(params: EngineParams) -> int:
    """What IDENT reads (its reset value: it never changes)."""
    return IDENT_LAYOUT.const(_ident(params)).as_bits()


def limits_value(params: EngineParams) -> int:
    """What LIMITS reads (its reset value: it never changes)."""
    return LIMITS_LAYOUT.const(_limits(params)).as_bits()


def by_name(params: EngineParams) -> dict[str, Register]:
    return {r.name: r for r in register_map(params)}


def config_writes(params: EngineParams, fields: dict) -> list[tuple[int, int]]:
    """(offset, value) AXI4-Lite writes that load a configuration: ``fields`` as
    :func:`swattn.sw.spec.regs.pack_config` takes them (``globals`` a list of indices); a field
    left out is written 0. Values must fit their 32-bit words."""
    out = []
    for i, name in enumerate(CONFIG_FIELDS):
        out.append((CONFIG_BASE + 4 * i, int(fields.get(name, 0))))
    g = list(fields.get("globals", []))
    if len(g) > params.max_globals:
        raise ValueError(f"{len(g)} global indices: the engine has {params.max_globals} "
                         f"GLOBAL registers")
    out += [(GLOBAL_BASE + 4 * i, int(x)) for i, x in enumerate(g)]
    for off, v in out:
        if not 0 <= v < 1 << DATA_WIDTH:
            raise ValueError(f"register 0x{off:03x}: value {v} does not fit 32 bits")
    return out


def as_json(params: EngineParams) -> list[dict]:
    """The map for the JSON sidecar."""
    return [{"name": r.name, "offset": r.offset, "access": r.access, "reset": r.reset,
             "description": r.text,
             "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width,
                         "description": FIELD_TEXT.get(f.name, "")} for f in r.fields]}
            for r in register_map(params)]


def markdown(params: EngineParams) -> str:
    """The register table (docs/axi.md and ``swattn generate --bus axi``'s report)."""
    lines = ["| offset | register | access | reset | fields |", "|---|---|---|---|---|"]
    regs = register_map(params)
    shown = [r for r in regs if not r.name.startswith("GLOBAL_") or r.name in (
        "GLOBAL_0", f"GLOBAL_{params.max_globals - 1}")]
    for r in shown:
        fields = "; ".join(
            f"[{f.lsb + f.width - 1}:{f.lsb}] {f.name}: {FIELD_TEXT.get(f.name, '')}"
            if f.width > 1 else f"[{f.lsb}] {f.name}: {FIELD_TEXT.get(f.name, '')}"
            for f in r.fields)
        name = r.name if r.name != "GLOBAL_0" or params.max_globals == 1 else \
            f"GLOBAL_0 .. GLOBAL_{params.max_globals - 1} (0x{GLOBAL_BASE:03x} + 4 i)"
        if r.name.startswith("GLOBAL_") and r.name != "GLOBAL_0":
            continue
        lines.append(f"| 0x{r.offset:03x} | {name} | {r.access} | 0x{r.reset:x} | {fields} |")
    return "\n".join(lines) + "\n"
