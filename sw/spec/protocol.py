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
PROTOCOL_VERSION = 4

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

IDENTITY_LAYOUT = data.StructLayout({
    "magic": unsigned(16),
    "protocol": unsigned(8),
    "version_major": unsigned(8), "version_minor": unsigned(8), "version_patch": unsigned(8),
    "head_dim": unsigned(8),
    "lanes": unsigned(16),
    "max_radius": unsigned(16),
    "max_globals": unsigned(8),
    "max_dilation": unsigned(8),
    "seq_width": unsigned(8),
    "dot_pipeline": unsigned(8),
    "pv_pipeline": unsigned(8),
    "buffer_rows": unsigned(16),  # rows each of the Q/K/V/O buffers holds
    "clock_hz": unsigned(32),
    "max_bands": unsigned(8),  # the configuration's band and column fields (1 and 0: none)
    "max_columns": unsigned(8),
    "grid": unsigned(1),  # the grid's fields
    "pair_max": unsigned(2),  # EngineParams.pair_max: 0 None, 1 False, 2 True
    "pad": unsigned(5),
})

#: the identity reply's leading fields, the same in every protocol version (the driver reads the
#: magic and the protocol of a board whose reply has another length)
IDENTITY_HEAD = data.StructLayout({"magic": unsigned(16), "protocol": unsigned(8)})


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
                buffer_rows=buffer_rows, clock_hz=clock_hz, max_bands=params.max_bands,
                max_columns=params.max_columns, grid=int(params.grid),
                pair_max={None: 0, False: 1, True: 2}[params.pair_max])
