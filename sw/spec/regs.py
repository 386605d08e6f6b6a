"""Register layouts shared by the RTL, the testbenches and the host driver.

The layouts are Amaranth ``lib.data`` layouts: the RTL uses them as port shapes and Python packs
and unpacks them with ``layout.const(...).as_bits()`` / ``layout.from_bits(...)``, so no bit
offset is ever written by hand.
"""

from __future__ import annotations

import enum

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from . import numerics as nx
from .engine_params import EngineParams
from .keyset import EngineForm
from .pattern import HybridPattern


class State(enum.IntEnum):
    IDLE = 0
    BUSY = 1
    DONE = 2


class Error(enum.IntEnum):
    """Why the last start was refused (0: it was accepted)."""

    NONE = 0
    N_RANGE = 1  #: n = 0 or n > 2^seq_width - 1
    RADIUS = 2  #: dilation * left or dilation * right over max_radius
    DILATION = 3  #: dilation = 0 or over max_dilation
    GLOBAL_COUNT = 4  #: more globals than max_globals
    GLOBAL_RANGE = 5  #: a global index >= n
    GLOBAL_DUP = 6  #: the same global index twice
    BUSY = 7  #: start while a job runs (the running job is not disturbed)
    BAND_COUNT = 8  #: more bands than max_bands - 1 beside the window
    BAND_RANGE = 9  #: a band of count 0, or reaching over max_radius (dilation * steps)
    BAND_ORDER = 10  #: a band not above the one before it, or overlapping the window
    COLUMN_COUNT = 11  #: more columns than max_columns
    COLUMN_RANGE = 12  #: a column index >= n
    COLUMN_ORDER = 13  #: a column index not above the one before it
    COLUMN_GLOBAL = 14  #: a column index equal to a global's
    GRID = 15  #: a grid (grid_width > 0) wider than n, a grid_radius >= grid_width, or dilation > 1


STATUS_LAYOUT = data.StructLayout({"state": unsigned(2), "error": unsigned(4)})

#: fixed field widths of the configuration register, independent of the engine size
CONFIG_FIELDS = {
    "n": 32, "left": 16, "right": 16, "dilation": 16, "n_globals": 8,
    "mult_mant": nx.MULT_MANT_WIDTH, "mult_shift": nx.MULT_SHIFT_WIDTH,
    "out_shift": nx.OUT_SHIFT_WIDTH,
}
GLOBAL_INDEX_WIDTH = 32
#: the fields of the bands beside the window and of the columns, present on engines with
#: max_bands > 1 / max_columns > 0 (a band's start is signed, in window steps)
BAND_FIELDS = {"n_bands": 8}
BAND_LAYOUT = data.StructLayout({"start": signed(16), "count": unsigned(16)})
COLUMN_FIELDS = {"n_columns": 8}
COLUMN_INDEX_WIDTH = 32
#: the 2D grid's fields, present on engines built with grid = True (grid_width 0: no grid)
GRID_FIELDS = {"grid_width": 32, "grid_radius": 32}


def config_layout(params: EngineParams) -> data.StructLayout:
    fields = {name: unsigned(w) for name, w in CONFIG_FIELDS.items()}
    fields["globals"] = data.ArrayLayout(unsigned(GLOBAL_INDEX_WIDTH), max(1, params.max_globals))
    if params.max_bands > 1:
        fields.update({name: unsigned(w) for name, w in BAND_FIELDS.items()})
        fields["bands"] = data.ArrayLayout(BAND_LAYOUT, params.max_bands - 1)
    if params.max_columns:
        fields.update({name: unsigned(w) for name, w in COLUMN_FIELDS.items()})
        fields["columns"] = data.ArrayLayout(unsigned(COLUMN_INDEX_WIDTH), params.max_columns)
    if params.grid:
        fields.update({name: unsigned(w) for name, w in GRID_FIELDS.items()})
    return data.StructLayout(fields)


def config_bits(params: EngineParams) -> dict[str, int]:
    """Of each configuration field (of each global index), the low bits the engines read; the
    rest of a field only has to say whether it is zero. A board core may keep just these bits
    and, per field, one flag for any higher bit set, presented at the field's top bit
    (:func:`swattn.fpga.core.config_store_plan`): the value then compares as the full one does in
    each of the engines' tests (n against 0 and n_max, left and right against max_radius //
    dilation, dilation against 0 and max_dilation, n_globals against max_globals, a global index
    against a valid n and, once in range, against the other globals), and every use after the
    checks passed sees the true value."""
    P = params
    return {"n": P.seq_width + 1, "left": P.max_radius.bit_length(),
            "right": P.max_radius.bit_length(), "dilation": P.max_dilation.bit_length(),
            "n_globals": max(1, P.max_globals).bit_length(), "globals": P.seq_width}


def pack_config(params: EngineParams, pattern: HybridPattern | EngineForm | None = None,
                cfg: nx.SoftmaxConfig | None = None, **raw) -> int:
    """The configuration register as an integer. ``raw`` overrides fields (for invalid configs:
    ``bands`` as (start, count) pairs, ``columns`` as indices)."""
    fields = {}
    if pattern is not None:
        fields.update(n=pattern.n, left=pattern.left, right=pattern.right,
                      dilation=pattern.dilation, n_globals=len(pattern.globals_),
                      globals=list(pattern.globals_))
        if isinstance(pattern, EngineForm):
            fields.update(n_bands=len(pattern.bands), bands=list(pattern.bands),
                          n_columns=len(pattern.columns), columns=list(pattern.columns))
            if pattern.grid is not None:
                fields.update(grid_width=pattern.grid[0], grid_radius=pattern.grid[1])
    if cfg is not None:
        fields.update(mult_mant=cfg.mult_mant, mult_shift=cfg.mult_shift, out_shift=cfg.out_shift)
    fields.update(raw)
    layout = config_layout(params)
    g = list(fields.pop("globals", []))
    slots = max(1, params.max_globals)
    if len(g) > slots:
        raise ValueError(f"{len(g)} global indices do not fit the register's {slots} slots")
    fields["globals"] = g + [0] * (slots - len(g))
    scalars = dict(CONFIG_FIELDS)
    for key, many, slots, what in (("bands", "n_bands", params.max_bands - 1, "band"),
                                   ("columns", "n_columns", params.max_columns, "column")):
        given = list(fields.pop(key, []))
        if slots <= 0:
            if given or fields.pop(many, 0):
                raise ValueError(f"{len(given)} {what}s given: this engine has no {what} fields "
                                 f"(max_bands {params.max_bands}, max_columns "
                                 f"{params.max_columns})")
            continue
        if len(given) > slots:
            raise ValueError(f"{len(given)} {what}s do not fit the register's {slots} slots")
        scalars[many] = 8
        if key == "bands":
            for s_, c_ in given:
                if not (-(1 << 15) <= s_ < (1 << 15) and 0 <= c_ < (1 << 16)):
                    raise ValueError(f"band (start {s_}, count {c_}) does not fit 16 bits each")
            given = [{"start": s_, "count": c_} for s_, c_ in given]
            fields[key] = given + [{"start": 0, "count": 0}] * (slots - len(given))
        else:
            for c_ in given:
                if not 0 <= c_ < (1 << COLUMN_INDEX_WIDTH):
                    raise ValueError(f"column index {c_} does not fit {COLUMN_INDEX_WIDTH} bits")
            fields[key] = given + [0] * (slots - len(given))
    grid_given = {k: fields.pop(k) for k in GRID_FIELDS if k in fields}
    if params.grid:
        scalars.update(GRID_FIELDS)
        fields.update(grid_given)
    elif any(grid_given.values()):
        raise ValueError(f"grid {grid_given}: this engine has no grid fields (grid = False)")
    for name, w in scalars.items():
        v = fields.get(name, 0)
        if not 0 <= v < (1 << w):
            raise ValueError(f"config field {name} = {v} does not fit {w} bits")
    return layout.const(fields).as_bits()


def unpack_status(bits: int) -> tuple[State, Error]:
    view = STATUS_LAYOUT.from_bits(bits)
    return State(int(view.state)), Error(int(view.error))


def register_map(params: EngineParams) -> dict:
    """Field offsets and widths of the config and status registers (for the JSON sidecar)."""
    def describe(layout):
        out = {}
        for name, field in layout:
            out[name] = {"offset": field.offset, "width": field.width}
        return out
    return {"config": describe(config_layout(params)), "status": describe(STATUS_LAYOUT),
            "state": {s.name: s.value for s in State}, "error": {e.name: e.value for e in Error}}
