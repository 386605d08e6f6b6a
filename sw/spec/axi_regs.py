"""The AXI4-Lite register map of the engine's AXI top (``swattn generate --bus axi``).

One table, :func:`register_map`, gives every register's offset, access, reset value and fields;
the RTL (:mod:`swattn.hw.axi`), the JSON sidecar, docs/axi.md and the testbench read it, so no
offset or bit position is written twice. Registers are 32 bits wide; every configuration field
of :data:`swattn.sw.spec.regs.CONFIG_FIELDS` has a word of its own (its low bits), and global
index ``i`` is the word at ``GLOBAL_BASE + 4 i``.

Engines with bands beside the window (``max_bands`` > 1), key-only columns (``max_columns`` > 0)
or the 2D grid (``grid``) have their fields at fixed offsets above the 64 GLOBAL words of the
largest engine: CONFIG_N_BANDS, CONFIG_N_COLUMNS, CONFIG_GRID_WIDTH and CONFIG_GRID_RADIUS from
``KEYS_BASE``, band ``i`` (``start`` in [15:0], signed; ``count`` in [31:16], in window steps)
at ``BAND_BASE + 4 i`` and column ``i`` at ``COLUMN_BASE + 4 i``, each only where the engine
has it (an engine with none of them has none of these registers). IDENT's ``max_n_bands`` and
LIMITS's ``max_columns`` and ``grid`` (bits that read 0 on every engine without them) say which
of them an engine has.

Access: ``RO`` read only; ``RW`` read and write (byte strobes honoured); ``W1S`` write 1 to a
bit to act (reads 0); ``W1C`` write 1 to a bit to clear it. A write to a read-only or unmapped
address, or a read of an unmapped one, answers SLVERR and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data

from .engine_params import EngineParams
from .regs import (BAND_FIELDS, BAND_LAYOUT, COLUMN_FIELDS, COLUMN_INDEX_WIDTH, CONFIG_FIELDS,
                   GLOBAL_INDEX_WIDTH, GRID_FIELDS, STATUS_LAYOUT, Error, State)

#: address bits of the AXI4-Lite port (4 KiB of register space)
ADDR_WIDTH = 12
DATA_WIDTH = 32

#: the interrupt sources, bit by bit, of IRQ_ENABLE and IRQ_STATUS
IRQ_LAYOUT = data.StructLayout({"done": unsigned(1), "error": unsigned(1)})
#: what the engine was generated with (read only); the top bits (max_n_bands, max_columns,
#: grid) are listed in the map of engines with bands, columns or the grid and read 0 elsewhere,
#: which is what they say there (no band beside the window, no column, no grid)
IDENT_LAYOUT = data.StructLayout({"head_dim": unsigned(8), "lanes": unsigned(13),
                                  "max_globals": unsigned(7), "max_n_bands": unsigned(4)})
LIMITS_LAYOUT = data.StructLayout({"max_radius": unsigned(13), "max_dilation": unsigned(7),
                                   "seq_width": unsigned(5), "max_columns": unsigned(6),
                                   "grid": unsigned(1)})
#: the fields of IDENT and LIMITS that only engines with bands, columns or the grid list
KEY_FEATURES = ("max_n_bands", "max_columns", "grid")
CONTROL_LAYOUT = data.StructLayout({"start": unsigned(1)})

#: offset of the first configuration word and of GLOBAL_0
CONFIG_BASE = 0x20
GLOBAL_BASE = 0x40
#: most GLOBAL_i words of any engine (EngineParams.max_globals is 0..64)
MAX_GLOBALS = 64
#: the key-set fields (engines with bands, columns or the grid): CONFIG_N_BANDS,
#: CONFIG_N_COLUMNS, CONFIG_GRID_WIDTH, CONFIG_GRID_RADIUS from KEYS_BASE (each at its fixed
#: offset, present where the engine has it), BAND_i at BAND_BASE + 4 i (i < max_bands - 1, at
#: most 15), COLUMN_i at COLUMN_BASE + 4 i (i < max_columns, at most 32)
KEYS_BASE = 0x140
KEY_FIELDS = (*BAND_FIELDS, *COLUMN_FIELDS, *GRID_FIELDS)
BAND_BASE = 0x180
MAX_BAND_REGS = 15
COLUMN_BASE = 0x200
MAX_COLUMN_REGS = 32

FIELD_TEXT = {
    "start": "1: start a job with the configuration in the CONFIG_* and GLOBAL_* registers",
    "state": "engine state: " + ", ".join(f"{s.value} {s.name}" for s in State),
    "error": "why the last start was refused (0: accepted): "
             + ", ".join(f"{e.value} {e.name}" for e in Error),
    "cycles": "cycles since the last accepted start, frozen when its job is done",
    "done": "a job finished (its last output row was taken)",
    "irq_error": "a start was refused (STATUS.error says why)",
    "head_dim": "head dimension", "lanes": "MAC lanes", "max_globals": "global tokens at most",
    "max_n_bands": "bands beside the window at most (max_bands - 1; 0: none)",
    "max_columns": "key-only columns at most (0: none)", "grid": "1: the engine has the 2D grid",
    "max_radius": "window reach at most, in tokens (dilation x radius)",
    "max_dilation": "dilation at most", "seq_width": "sequence length at most 2^seq_width - 1",
    "n": "sequence length", "left": "window radius to the left, in steps of the dilation",
    "right": "window radius to the right, in steps of the dilation (0: causal)",
    "dilation": "distance between window keys, in tokens", "n_globals": "number of global tokens",
    "mult_mant": "softmax scale mantissa", "mult_shift": "softmax scale shift",
    "out_shift": "output right shift", "index": "the global token's index",
    "n_bands": "number of bands beside the window (BAND_0 ..)",
    "n_columns": "number of key-only columns (COLUMN_0 ..)",
    "grid_width": "2D grid width in tokens (0: no grid; else 1..n, dilation 1)",
    "grid_radius": "band keys kept within this many grid columns of the query (< grid_width)",
}
#: descriptions of fields whose names other registers use with another meaning
BAND_TEXT = {"start": "first key of the band, in window steps from the query (signed, two's "
                      "complement)",
             "count": "keys in the band (1..)"}
COLUMN_TEXT = "the key-only column's token index"
START_KEYS_TEXT = ("1: start a job with the configuration in the CONFIG_*, GLOBAL_*, BAND_* and "
                   "COLUMN_* registers")


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    reset: int = 0
    #: two's complement (a band's start)
    signed: bool = False
    #: the description where FIELD_TEXT's (by name) is not this field's
    text: str | None = None

    @property
    def description(self) -> str:
        return FIELD_TEXT.get(self.name, "") if self.text is None else self.text


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
            values: dict | None = None, leave_out=()) -> tuple[Field, ...]:
    """Fields of ``layout`` but ``leave_out`` (renamed by ``rename``), with reset values from
    ``values``."""
    rename, values = rename or {}, values or {}
    return tuple(Field(rename.get(name, name), f.offset, f.shape.width, values.get(name, 0))
                 for name, f in layout if name not in leave_out)


def has_keys(params: EngineParams) -> bool:
    """The engine has bands beside the window, key-only columns or the 2D grid."""
    return params.max_bands > 1 or params.max_columns > 0 or params.grid


def key_fields(params: EngineParams) -> dict[str, int]:
    """The key-set configuration scalars this engine has, with their widths (in KEY_FIELDS'
    order: n_bands, n_columns, grid_width, grid_radius)."""
    out = {}
    if params.max_bands > 1:
        out.update(BAND_FIELDS)
    if params.max_columns:
        out.update(COLUMN_FIELDS)
    if params.grid:
        out.update(GRID_FIELDS)
    return out


def register_map(params: EngineParams) -> list[Register]:
    """Every register of the AXI top for ``params``, in address order."""
    hidden = () if has_keys(params) else KEY_FEATURES
    regs = [
        Register("CONTROL", 0x00, "W1S", _fields(CONTROL_LAYOUT) if hidden else (
            Field("start", 0, 1, text=START_KEYS_TEXT),), "job control"),
        Register("STATUS", 0x04, "RO", _fields(STATUS_LAYOUT), "engine state and error code"),
        Register("CYCLES", 0x08, "RO", (Field("cycles", 0, 32),), "cycle counter"),
        Register("IRQ_ENABLE", 0x0C, "RW", _fields(IRQ_LAYOUT, {"error": "irq_error"}),
                 "which IRQ_STATUS bits raise the irq output"),
        Register("IRQ_STATUS", 0x10, "W1C", _fields(IRQ_LAYOUT, {"error": "irq_error"}),
                 "interrupt events since last cleared (irq = |(IRQ_STATUS & IRQ_ENABLE))"),
        Register("IDENT", 0x14, "RO", _fields(IDENT_LAYOUT, values=_ident(params),
                                              leave_out=hidden),
                 "engine size (constant)"),
        Register("LIMITS", 0x18, "RO", _fields(LIMITS_LAYOUT, values=_limits(params),
                                               leave_out=hidden),
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
    assert GLOBAL_BASE + 4 * MAX_GLOBALS <= KEYS_BASE
    for name, width in key_fields(params).items():
        regs.append(Register(f"CONFIG_{name.upper()}", KEYS_BASE + 4 * KEY_FIELDS.index(name),
                             "RW", (Field(name, 0, width),), f"configuration: {name}"))
    assert KEYS_BASE + 4 * len(KEY_FIELDS) <= BAND_BASE
    band = BAND_LAYOUT
    for i in range(params.max_bands - 1):
        regs.append(Register(f"BAND_{i}", BAND_BASE + 4 * i, "RW", tuple(
            Field(name, f.offset, f.shape.width, signed=f.shape.signed, text=BAND_TEXT[name])
            for name, f in band), f"configuration: band {i} beside the window"))
    assert BAND_BASE + 4 * MAX_BAND_REGS <= COLUMN_BASE and band.size == DATA_WIDTH
    for i in range(params.max_columns):
        regs.append(Register(f"COLUMN_{i}", COLUMN_BASE + 4 * i, "RW",
                             (Field("index", 0, COLUMN_INDEX_WIDTH, text=COLUMN_TEXT),),
                             f"configuration: key-only column {i}"))
    assert COLUMN_BASE + 4 * MAX_COLUMN_REGS <= 1 << ADDR_WIDTH
    return regs


def _ident(params: EngineParams) -> dict:
    values = {"max_n_bands": params.max_bands - 1}
    return {name: values.get(name, getattr(params, name, 0)) for name, _ in IDENT_LAYOUT}


def _limits(params: EngineParams) -> dict:
    return {name: int(getattr(params, name)) for name, _ in LIMITS_LAYOUT}


def features(ident: int, limits: int) -> dict[str, int]:
    """What a driver reads from IDENT and LIMITS: ``max_bands`` (the window included),
    ``max_columns`` and ``grid`` (0 or 1), on any engine (0, 0 and 0 where it has none of
    them: the bits read 0)."""
    i, lim = IDENT_LAYOUT.from_bits(ident), LIMITS_LAYOUT.from_bits(limits)
    return {"max_bands": int(i.max_n_bands) + 1, "max_columns": int(lim.max_columns),
            "grid": int(lim.grid)}


def ident_value(params: EngineParams) -> int:
    """What IDENT reads (its reset value: it never changes)."""
    return IDENT_LAYOUT.const(_ident(params)).as_bits()


def limits_value(params: EngineParams) -> int:
    """What LIMITS reads (its reset value: it never changes)."""
    return LIMITS_LAYOUT.const(_limits(params)).as_bits()


def by_name(params: EngineParams) -> dict[str, Register]:
    return {r.name: r for r in register_map(params)}


def job_fields(pattern, cfg=None) -> dict:
    """The configuration fields of a job, as :func:`config_writes` (and
    :func:`swattn.sw.spec.regs.pack_config`) take them: ``pattern`` a
    :class:`~swattn.sw.spec.pattern.HybridPattern` or a
    :class:`~swattn.sw.spec.keyset.EngineForm` (its bands, columns and grid too), ``cfg`` a
    :class:`~swattn.sw.spec.numerics.SoftmaxConfig`."""
    fields = dict(n=pattern.n, left=pattern.left, right=pattern.right,
                  dilation=pattern.dilation, n_globals=len(pattern.globals_),
                  globals=list(pattern.globals_))
    bands, columns = getattr(pattern, "bands", ()), getattr(pattern, "columns", ())
    grid = getattr(pattern, "grid", None)
    if bands:
        fields.update(n_bands=len(bands), bands=[tuple(b) for b in bands])
    if columns:
        fields.update(n_columns=len(columns), columns=list(columns))
    if grid is not None:
        fields.update(grid_width=grid[0], grid_radius=grid[1])
    if cfg is not None:
        fields.update(mult_mant=cfg.mult_mant, mult_shift=cfg.mult_shift,
                      out_shift=cfg.out_shift)
    return fields


def config_writes(params: EngineParams, fields: dict) -> list[tuple[int, int]]:
    """(offset, value) AXI4-Lite writes that load a configuration: ``fields`` as
    :func:`swattn.sw.spec.regs.pack_config` takes them (``globals`` and ``columns`` lists of
    indices, ``bands`` (start, count) pairs in window steps; :func:`job_fields` makes them from
    a pattern); a scalar left out is written 0 (on engines with bands, columns or the grid,
    CONFIG_N_BANDS, CONFIG_N_COLUMNS, CONFIG_GRID_* too: a job without them writes them 0).
    Values must fit their registers' fields (a band's start -32768..32767, its count
    0..65535); bands, columns or a grid on an engine without those registers are refused."""
    known = {*CONFIG_FIELDS, *KEY_FIELDS, "globals", "bands", "columns"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"configuration field {unknown[0]!r}: allowed "
                         f"{', '.join(sorted(known))}")
    out = []
    for i, name in enumerate(CONFIG_FIELDS):
        out.append((CONFIG_BASE + 4 * i, int(fields.get(name, 0))))
    g = list(fields.get("globals", []))
    if len(g) > params.max_globals:
        raise ValueError(f"{len(g)} global indices: the engine has {params.max_globals} "
                         f"GLOBAL registers")
    out += [(GLOBAL_BASE + 4 * i, int(x)) for i, x in enumerate(g)]
    have = key_fields(params)
    for name in KEY_FIELDS:
        if name in have:
            out.append((KEYS_BASE + 4 * KEY_FIELDS.index(name), int(fields.get(name, 0))))
        elif fields.get(name, 0):
            raise ValueError(f"{name} = {fields[name]}: this engine has no CONFIG_{name.upper()} "
                             f"register (max_bands {params.max_bands}, max_columns "
                             f"{params.max_columns}, grid {params.grid})")
    bands = [tuple(int(x) for x in b) for b in fields.get("bands", [])]
    if len(bands) > params.max_bands - 1:
        raise ValueError(f"{len(bands)} bands: the engine has {params.max_bands - 1} BAND "
                         f"registers (max_bands {params.max_bands}, the window included)")
    for i, b in enumerate(bands):
        if len(b) != 2:
            raise ValueError(f"band {i}: {b} is not a (start, count) pair")
        start, count = b
        if not (-(1 << 15) <= start < 1 << 15 and 0 <= count < 1 << 16):
            raise ValueError(f"band {i} (start {start}, count {count}): BAND_{i} holds a start "
                             f"of -32768..32767 and a count of 0..65535")
        out.append((BAND_BASE + 4 * i, BAND_LAYOUT.const({"start": start, "count": count})
                    .as_bits()))
    cols = list(fields.get("columns", []))
    if len(cols) > params.max_columns:
        raise ValueError(f"{len(cols)} column indices: the engine has {params.max_columns} "
                         f"COLUMN registers")
    out += [(COLUMN_BASE + 4 * i, int(x)) for i, x in enumerate(cols)]
    regs = {r.offset: r for r in register_map(params)}
    for off, v in out:
        r = regs[off]
        width = max(f.lsb + f.width for f in r.fields)
        if not 0 <= v < 1 << width:
            raise ValueError(f"register 0x{off:03x} ({r.name}): value {v} does not fit {width} "
                             f"bits (0..{(1 << width) - 1})")
    return out


def as_json(params: EngineParams) -> list[dict]:
    """The map for the JSON sidecar."""
    return [{"name": r.name, "offset": r.offset, "access": r.access, "reset": r.reset,
             "description": r.text,
             "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width,
                         "description": f.description, **({"signed": True} if f.signed else {})}
                        for f in r.fields]}
            for r in register_map(params)]


def markdown(params: EngineParams, keys_only: bool = False) -> str:
    """The register table (docs/axi.md and ``swattn generate --bus axi``'s report): one row per
    register, one for each array (GLOBAL_i, BAND_i, COLUMN_i); ``keys_only``: only the
    registers of the bands, the columns and the grid (from ``KEYS_BASE``)."""
    lines = ["| offset | register | access | reset | fields |", "|---|---|---|---|---|"]
    arrays = {"GLOBAL_": (GLOBAL_BASE, params.max_globals),
              "BAND_": (BAND_BASE, params.max_bands - 1),
              "COLUMN_": (COLUMN_BASE, params.max_columns)}
    for r in register_map(params):
        prefix, _, index = r.name.rpartition("_")
        array = arrays.get(prefix + "_")
        if array is not None and index != "0" or keys_only and r.offset < KEYS_BASE:
            continue
        fields = "; ".join(
            f"[{f.lsb + f.width - 1}:{f.lsb}] {f.name}: {f.description}"
            if f.width > 1 else f"[{f.lsb}] {f.name}: {f.description}"
            for f in r.fields)
        name = r.name
        if array is not None and array[1] > 1:
            name = f"{r.name} .. {prefix}_{array[1] - 1} (0x{array[0]:03x} + 4 i)"
        lines.append(f"| 0x{r.offset:03x} | {name} | {r.access} | 0x{r.reset:x} | {fields} |")
    return "\n".join(lines) + "\n"
