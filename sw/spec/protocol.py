"""The framed host link between the swattn board top and the host driver (one source of truth).

The board RTL (:mod:`swattn.fpga.link_rx`, :mod:`swattn.fpga.link_tx`) and the host driver
(:mod:`swattn.sw.driver`) both import this module: the command and error codes, the header and
reply layouts (Amaranth ``lib.data`` layouts, so neither side writes a bit offset by hand) and the
CRC are defined only here.

A frame, in either direction::

    sync (1 byte) | header (7 bytes) | crc16(header) (2) | payload (header.length bytes) | crc16(payload) (2)

The payload CRC is present only when ``length > 0``. Multi-byte fields are little-endian. The
header CRC lets the board check a frame's command and address before it writes a single byte of
the payload, so a corrupted header can never write rows the host did not address. Requests start
with :data:`REQ_SYNC`, replies with :data:`REPLY_SYNC`; every request gets exactly one reply:
an echo of its header with the reply payload, or an :attr:`Cmd.ERROR` reply whose payload is
:data:`ERROR_LAYOUT` (error code and the offending command).

Rows: ``WRITE_Q`` takes rows by *output position* (the order of :func:`swattn.sw.spec.schedule
.output_order`; the board streams them to the engine in its ``q`` order from there),
``WRITE_K``/``WRITE_V`` by token index, ``READ_OUT`` returns output rows by output position (the
same order as Q). ``addr`` is the first row, ``count`` the number of rows.
"""

from __future__ import annotations

import enum

from amaranth.hdl import unsigned
from amaranth.lib import crc, data

from . import regs

REQ_SYNC = 0xA5
REPLY_SYNC = 0x5A
#: identify magic ("SW" read as a little-endian u16)
MAGIC = 0x5753
#: bumped whenever a frame or a layout below changes incompatibly
PROTOCOL_VERSION = 3

#: the frames' CRC, its one definition: CRC-16/CCITT-FALSE (the catalogue's CRC-16/IBM-3740),
#: poly 0x1021, init 0xFFFF, no reflection, no final xor, sent low byte first. The host computes
#: it with :func:`crc16` (the algorithm's software ``compute``), the board RTL with the
#: algorithm's hardware ``Processor`` (``CRC_PARAMETERS.create()``), a byte per cycle.
CRC16 = crc.Algorithm(crc_width=16, polynomial=0x1021, initial_crc=0xFFFF, reflect_input=False,
                      reflect_output=False, xor_output=0x0000)
#: the algorithm on bytes
CRC_PARAMETERS = CRC16(data_width=8)
CRC_POLY = CRC16.polynomial
CRC_INIT = CRC16.initial_crc
CRC_BYTES = CRC16.crc_width // 8


class Cmd(enum.IntEnum):
    IDENTIFY = 0x01  #: reply payload: IDENTITY_LAYOUT
    WRITE_CONFIG = 0x02  #: payload: the configuration register (config_bytes(params) bytes)
    WRITE_Q = 0x03  #: payload: count rows of head_dim int8, by stream position
    WRITE_K = 0x04  #: payload: count rows, by token index
    WRITE_V = 0x05  #: payload: count rows, by token index
    START = 0x06  #: start the engine with the written configuration
    READ_STATUS = 0x07  #: reply payload: STATUS_REPLY_LAYOUT
    READ_OUT = 0x08  #: reply payload: count output rows, by stream position
    READ_CYCLES = 0x09  #: reply payload: CYCLES_LAYOUT (engine cycles of the last job)
    ERROR = 0x7F  #: reply only: payload ERROR_LAYOUT


class LinkError(enum.IntEnum):
    """Codes of an ERROR reply."""

    BAD_CRC = 1  #: header or payload CRC mismatch (a bad header is answered once the line is idle)
    UNKNOWN_CMD = 2  #: command code not in Cmd
    BAD_ADDR = 3  #: addr + count beyond the row buffers
    BAD_LENGTH = 4  #: length does not match the command (count * head_dim for rows)
    TIMEOUT = 5  #: a frame stopped arriving half-way; it was dropped
    BUSY = 6  #: buffers or start touched while a job runs
    NO_CONFIG = 7  #: START before a configuration was written successfully


HEADER_LAYOUT = data.StructLayout({
    "cmd": unsigned(8), "addr": unsigned(16), "count": unsigned(16), "length": unsigned(16)})
HEADER_BYTES = HEADER_LAYOUT.size // 8

ERROR_LAYOUT = data.StructLayout({"code": unsigned(8), "cmd": unsigned(8)})

STATUS_REPLY_LAYOUT = data.StructLayout({
    "engine": regs.STATUS_LAYOUT,  # state (BUSY while the output buffer is still being written)
    "config_loaded": unsigned(1),
    "pad": unsigned(1),
    "rows_out": unsigned(16),  # output rows written to the buffer by the current/last job
})

CYCLES_LAYOUT = data.StructLayout({"cycles": unsigned(32)})

#: IDENTIFY's reply. The band, column, grid and pair_max fields sit in bits that the bytes of
#: seq_width, dot_pipeline and pv_pipeline never use (seq_width <= 24, dot_pipeline <= 5,
#: pv_pipeline <= 5), and 0 in each is what an engine without them has (one band, no column, no
#: grid, pair_max None): so a board built before they existed, which sends those bits as 0,
#: still identifies exactly, and an engine without them sends the same bytes as before.
#: :func:`identity_params` reads them back; max_columns (0..32) is ``columns_lo`` plus 32 times
#: ``columns_hi``.
IDENTITY_LAYOUT = data.StructLayout({
    "magic": unsigned(16),
    "protocol": unsigned(8),
    "version_major": unsigned(8), "version_minor": unsigned(8), "version_patch": unsigned(8),
    "head_dim": unsigned(8),
    "lanes": unsigned(16),
    "max_radius": unsigned(16),
    "max_globals": unsigned(8),
    "max_dilation": unsigned(8),
    "seq_width": unsigned(5), "grid": unsigned(1),
    "pair_max": unsigned(2),  # EngineParams.pair_max: 0 None, 1 False, 2 True
    "dot_pipeline": unsigned(3), "bands_beside": unsigned(4),  # max_bands - 1
    "columns_hi": unsigned(1),
    "pv_pipeline": unsigned(3), "columns_lo": unsigned(5),
    "buffer_rows": unsigned(16),  # rows each of the Q/K/V/O buffers holds
    "clock_hz": unsigned(32),
})

#: EngineParams.pair_max as IDENTIFY's pair_max field
PAIR_MAX_CODE = {None: 0, False: 1, True: 2}


def nbytes(layout) -> int:
    return -(-layout.size // 8)


def config_bytes(params) -> int:
    """Bytes of the WRITE_CONFIG payload for an engine of these parameters."""
    return nbytes(regs.config_layout(params))


def pack(layout, fields: dict) -> bytes:
    return layout.const(fields).as_bits().to_bytes(nbytes(layout), "little")


def unpack(layout, raw: bytes) -> dict:
    """Bytes -> {field: int} (nested layouts give ints of their bits)."""
    bits = int.from_bytes(raw, "little")
    return {name: (bits >> f.offset) & ((1 << f.width) - 1) for name, f in layout}


def _crc_from(initial: int) -> crc.Parameters:
    if initial == CRC_INIT:
        return CRC_PARAMETERS
    return crc.Algorithm(crc_width=CRC16.crc_width, polynomial=CRC16.polynomial,
                         initial_crc=initial, reflect_input=CRC16.reflect_input,
                         reflect_output=CRC16.reflect_output,
                         xor_output=CRC16.xor_output)(data_width=8)


def crc16(data_: bytes, crc: int = CRC_INIT) -> int:
    """:data:`CRC16` of ``data_`` (continued from ``crc``: the CRC of the bytes before)."""
    return _crc_from(crc).compute(data_)


def crc16_update(crc: int, byte: int) -> int:
    """:data:`CRC16` of one more byte, after the bytes whose CRC is ``crc``."""
    return crc16(bytes([byte]), crc)


def encode_frame(cmd: int, addr: int = 0, count: int = 0, payload: bytes = b"",
                 sync: int = REQ_SYNC) -> bytes:
    """A complete frame (request by default; ``sync=REPLY_SYNC`` builds a reply)."""
    for name, v, w in (("addr", addr, 16), ("count", count, 16), ("length", len(payload), 16),
                       ("cmd", cmd, 8)):
        if not 0 <= v < (1 << w):
            raise ValueError(f"frame {name} = {v} does not fit {w} bits")
    hdr = pack(HEADER_LAYOUT, {"cmd": cmd, "addr": addr, "count": count,
                               "length": len(payload)})
    out = bytes([sync]) + hdr + crc16(hdr).to_bytes(2, "little")
    if payload:
        out += bytes(payload) + crc16(payload).to_bytes(2, "little")
    return out


def decode_header(raw: bytes) -> dict:
    return unpack(HEADER_LAYOUT, raw)


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in version.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def identity_fields(params, buffer_rows: int, clock_hz: int, version: str) -> dict:
    major, minor, patch = version_tuple(version)
    return dict(magic=MAGIC, protocol=PROTOCOL_VERSION, version_major=major,
                version_minor=minor, version_patch=patch, head_dim=params.head_dim,
                lanes=params.lanes, max_radius=params.max_radius,
                max_globals=params.max_globals, max_dilation=params.max_dilation,
                seq_width=params.seq_width, dot_pipeline=params.dot_pipeline,
                pv_pipeline=params.pv_pipeline,
                buffer_rows=buffer_rows, clock_hz=clock_hz, bands_beside=params.max_bands - 1,
                columns_lo=params.max_columns & 31, columns_hi=params.max_columns >> 5,
                grid=int(params.grid), pair_max=PAIR_MAX_CODE[params.pair_max])


def identity_params(f: dict):
    """The EngineParams an IDENTIFY reply's fields (:func:`unpack` of :data:`IDENTITY_LAYOUT`)
    name; a ValueError names a field out of range."""
    from .engine_params import EngineParams

    codes = {v: k for k, v in PAIR_MAX_CODE.items()}
    if f["pair_max"] not in codes:
        raise ValueError(f"pair_max code {f['pair_max']} is out of range: allowed 0 (None), "
                         f"1 (False) or 2 (True)")
    return EngineParams(head_dim=f["head_dim"], lanes=f["lanes"], max_radius=f["max_radius"],
                        max_globals=f["max_globals"], max_dilation=f["max_dilation"],
                        seq_width=f["seq_width"], dot_pipeline=f["dot_pipeline"],
                        pv_pipeline=f["pv_pipeline"], max_bands=f["bands_beside"] + 1,
                        max_columns=f["columns_lo"] + 32 * f["columns_hi"],
                        grid=bool(f["grid"]), pair_max=codes[f["pair_max"]])
