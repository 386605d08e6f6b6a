"""The host link's share of a job on a board: the bytes the host driver exchanges with the board
for one job, from the frame layout of :mod:`swattn.sw.spec.protocol`, and their time on the UART.

One job is what :meth:`swattn.sw.driver.Board.attention` does once the board has been identified:

* WRITE_CONFIG with the configuration register (``protocol.config_bytes(params)`` bytes);
* WRITE_Q, WRITE_K, WRITE_V: the n rows of head_dim int8 each, ``rows_per_frame`` rows a frame;
* START, then READ_STATUS until the job is done (``status_polls`` times: at least once), then
  READ_CYCLES;
* READ_OUT: the n output rows, ``rows_per_frame`` a frame (fewer where a frame's payload would
  pass the header's 16-bit length);

each request answered by one reply frame: an echo of its header, with a payload for
READ_STATUS, READ_CYCLES and READ_OUT. A frame is the sync byte, the header, the header's CRC
and, when it has one, the payload and its CRC (``protocol`` module docstring).
``tests/test_bench.py`` holds :func:`job_link_bytes` to the bytes the driver writes to and reads
from a serial port for a small job.

On the wire each byte is 10 bits (8N1: a start bit, 8 data bits, a stop bit), so a link of
``baud`` carries baud / 10 bytes per second. The turn-around between a reply and the next request
(the host's serial driver and USB latency, often a millisecond or more per transaction) is not
counted: ``transactions`` says how many there are.
"""

from __future__ import annotations

import inspect

from ..spec import protocol as pr

#: bits on the wire per byte: 8N1
BITS_PER_BYTE = 10


def frame_bytes(payload: int) -> int:
    """Bytes of one frame with a ``payload`` of that many bytes (either direction)."""
    return 1 + pr.HEADER_BYTES + pr.CRC_BYTES + (payload + pr.CRC_BYTES if payload else 0)


def driver_rows_per_frame() -> int:
    """Rows per WRITE/READ frame of the host driver's default (:class:`swattn.sw.driver.Board`)."""
    from ..driver import Board

    return int(inspect.signature(Board).parameters["rows_per_frame"].default)


def _rows(n: int, per: int) -> list[int]:
    """Rows of each frame that carries ``n`` rows, ``per`` a frame."""
    return [min(per, n - a) for a in range(0, n, per)]


def job_link_bytes(params, n: int, rows_per_frame: int | None = None,
                   status_polls: int = 1) -> dict:
    """Bytes sent to and received from the board for one job of ``n`` rows on an engine of
    ``params`` (module docstring), with the driver's ``rows_per_frame`` (default: its default)
    and ``status_polls`` READ_STATUS requests. Returns ``sent``, ``received``, ``total``,
    ``transactions`` (request and reply pairs), ``row_bytes`` (the Q, K, V and O rows
    themselves) and the ``rows_per_frame`` and ``status_polls`` counted."""
    if n < 1:
        raise ValueError(f"n = {n}: a job has at least one row")
    if status_polls < 1:
        raise ValueError(f"status_polls = {status_polls}: the driver reads the status at least "
                         "once")
    per = driver_rows_per_frame() if rows_per_frame is None else rows_per_frame
    d = params.head_dim
    echo = frame_bytes(0)
    # (request payload, reply payload) of each transaction
    tx = [(pr.config_bytes(params), 0)]
    for _ in range(3):  # Q, K, V
        tx += [(rows * d, 0) for rows in _rows(n, per)]
    tx.append((0, 0))  # START
    tx += [(0, pr.nbytes(pr.STATUS_REPLY_LAYOUT))] * status_polls
    tx.append((0, pr.nbytes(pr.CYCLES_LAYOUT)))
    out_per = max(1, min(per, 0xFFFF // d))  # (the driver's READ_OUT frames)
    tx += [(0, rows * d) for rows in _rows(n, out_per)]
    sent = sum(frame_bytes(req) for req, _ in tx)
    received = sum(frame_bytes(rep) if rep else echo for _, rep in tx)
    return {"sent": sent, "received": received, "total": sent + received,
            "transactions": len(tx), "row_bytes": 4 * n * d, "rows_per_frame": per,
            "status_polls": status_polls}


def link_seconds(nbytes: int, baud: float) -> float:
    """Seconds ``nbytes`` take on a UART of ``baud`` (8N1)."""
    return nbytes * BITS_PER_BYTE / baud
