"""Stream parts of the engine testbench, built on cocotbext-axi.

The engine's streams are Amaranth streams: ``<name>__payload``, ``<name>__valid`` and
``<name>__ready``, with no ``tdata``/``tvalid`` names and no ``tlast``. :class:`StreamBus` gives
cocotbext-axi's :class:`~cocotbext.axi.AxiStreamBus` these signals (a signal-name mapping and the
``__`` separator), so its source, sink and monitor drive and watch them unchanged:

* :class:`RowSource` (an ``AxiStreamSource``) offers rows on an input stream (``q``, ``kv``);
  valid stays high until the engine takes the row, and a pause generator
  (:func:`pause_generator`, from a job's ``idle`` probability) leaves cycles idle between rows.
* :class:`RowSink` (an ``AxiStreamSink``) takes the ``o`` rows, ready low in the cycles its pause
  generator (from the job's ``stall`` probability) says.
* :class:`RowMonitor` (an ``AxiStreamMonitor``) records, without driving anything, every row the
  engine takes on an input stream.

One beat is one whole row: the parts run with a single byte lane as wide as the payload
(``byte_lanes=1``), so a frame's ``tdata`` is a list of payload integers, one per beat, and with
no ``tlast`` every beat the sink or a monitor sees is a frame of its own, stamped with the
simulation time of the clock edge that took it (:func:`edge_cycle` turns it into a cycle number).
A row of head_dim int8 is packed little-endian by element (:func:`rows_to_ints`), as Amaranth's
``ArrayLayout`` places element 0 in the low byte.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Iterator

import numpy as np
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamMonitor, AxiStreamSink, \
    AxiStreamSource

# cocotbext-axi 0.1 still calls cocotb 1.x API that cocotb 2 keeps but deprecates
# (``setimmediatevalue``, ``Task.kill``, ``Edge``): not ours to act on
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi\.")

def rows_to_ints(rows: np.ndarray) -> list[int]:
    """int8 rows (r, d) -> r payload integers (element 0 in the low byte)."""
    u = np.ascontiguousarray(rows.astype(np.int8)).view(np.uint8)
    return [int.from_bytes(r.tobytes(), "little") for r in u]


def ints_to_rows(words: list[int], d: int) -> np.ndarray:
    """Payload integers -> int8 rows (len(words), d); the inverse of :func:`rows_to_ints`."""
    buf = b"".join(w.to_bytes(d, "little") for w in words)
    return np.frombuffer(buf, dtype=np.int8).reshape(len(words), d).copy()


class StreamBus(AxiStreamBus):
    """An Amaranth stream of ``entity`` as cocotbext-axi's stream bus: ``tdata``, ``tvalid`` and
    ``tready`` are ``<name>__payload``, ``<name>__valid`` and ``<name>__ready``."""

    _signals = {"tdata": "payload"}
    _optional_signals = {"tvalid": "valid", "tready": "ready"}

    def __init__(self, entity, name: str):
        super().__init__(entity, name, bus_separator="__", case_insensitive=False)


def pause_generator(probability: float, seed: str) -> Iterator[bool] | None:
    """Per-cycle pause flags for ``set_pause_generator``: each cycle paused with ``probability``
    (a source leaves the cycle idle, a sink holds ready low), from a generator seeded by
    ``seed``; None (no pauses) for probability 0."""
    if not probability:
        return None

    def flags():
        draw = random.Random(seed).random
        while True:
            yield draw() < probability

    return flags()


class _RowStream:
    """What the three parts share: a quiet log (cocotbext-axi logs every frame at INFO) and, for
    the source and the sink, a job's pause generator."""

    def _quiet(self):
        self.log.setLevel(logging.WARNING)

    def pause_with(self, probability: float, seed: str) -> None:
        """Pause per :func:`pause_generator` (none for probability 0) until the next call."""
        gen = pause_generator(probability, seed)
        if gen is not None or self._pause_generator is not None:
            self.set_pause_generator(gen)
        self.pause = False


class RowSource(_RowStream, AxiStreamSource):
    """Offers rows (payload integers) on an input stream, one row per beat.

    ``send_rows`` queues a job's rows as one frame; the source drives the first in the cycle
    after the next clock edge (queue them before the edge that starts the job and they come in
    the job's first cycle) and each next one after the engine took the last. ``reset`` (the
    engine's) drops what is queued or on the bus.
    """

    _init_x = False  # the payload is driven (0) before the first row, never X

    def __init__(self, bus: AxiStreamBus, clock, reset=None, **kwargs):
        super().__init__(bus, clock, reset, byte_lanes=1, **kwargs)
        self._quiet()

    def send_rows(self, words: list[int]) -> None:
        if words:
            self.send_nowait(AxiStreamFrame(list(words)))

    def flush(self) -> None:
        """Drop every queued row and the one on the bus (valid low from the next write)."""
        self.clear()
        if not self.idle():
            self.assert_reset()


class RowSink(_RowStream, AxiStreamSink):
    """Takes the rows of an output stream (one frame per row) with ready held low in the cycles
    its pause generator says; ``recv_row`` returns (payload integer, clock-edge time)."""

    def __init__(self, bus: AxiStreamBus, clock, reset=None, **kwargs):
        super().__init__(bus, clock, reset, byte_lanes=1, **kwargs)
        self._quiet()

    async def recv_row(self) -> tuple[int, int]:
        frame = await self.recv(compact=False)
        return frame.tdata[0], frame.sim_time_start


class RowMonitor(_RowStream, AxiStreamMonitor):
    """Records every row taken on a stream (a handshake: valid and ready at a clock edge)
    without driving it; ``count()`` is the rows taken since the last ``clear()``, each a frame
    (``recv_nowait``) with its payload and clock-edge time."""

    def __init__(self, bus: StreamBus, clock, reset=None):
        super().__init__(bus, clock, reset, byte_lanes=1)
        self._quiet()


def edge_cycle(edge_time: int, start_time: int, period: int) -> int:
    """The cycle (0: the first after the start edge at ``start_time``) whose closing clock edge
    came at ``edge_time`` (sim steps, ``period`` the clock's)."""
    return (edge_time - start_time) // period - 1
