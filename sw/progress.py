"""Progress of the long steps on stderr: Verilog generation, simulator builds, simulation
batches, large golden-model runs and the evaluation.

:class:`Progress` is a context manager around one step. On a terminal it shows a live line
(rich.progress): a bar with done / total, rate and time left when the step is counted, a spinner
and the elapsed time otherwise. Elsewhere (a log file, CI, a pipe, pytest) it prints a plain line
every :func:`interval` seconds while the step runs, so a log never goes quiet for long and a
short step prints nothing at all. A step known to be long (``announce``) says what it does at
once in both modes.

The library modules use it directly; it imports nothing of swattn. ``SWATTN_PROGRESS_INTERVAL``
(seconds) sets the interval of the plain lines, ``SWATTN_PROGRESS=0`` turns every report off.
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
import time
from typing import Callable

#: seconds between two plain lines (below the 10 s that a user waits without a sign of life)
DEFAULT_INTERVAL = 8.0
#: seconds a step runs before its live line appears on a terminal (unless announced)
LIVE_DELAY = 1.0
#: seconds between two calls of a step's ``poll``
POLL_EVERY = 0.5
#: the rate (and so the time left) is measured over this many seconds of the recent past
RATE_WINDOW = 30.0


def interval() -> float:
    """Seconds between two plain progress lines: ``SWATTN_PROGRESS_INTERVAL`` or the default."""
    try:
        value = float(os.environ.get("SWATTN_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def enabled() -> bool:
    """False when ``SWATTN_PROGRESS`` is 0 / no / off."""
    return os.environ.get("SWATTN_PROGRESS", "1").strip().lower() not in ("0", "no", "off", "false")


def duration(seconds: float) -> str:
    """``12 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def rate_text(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def count_text(value: float) -> str:
    return f"{int(math.floor(value + 1e-9)):,}"


def engine_label(params) -> str:
    """``the 64-lane engine, d = 64`` or ``the serial engine (4 lanes), d = 64`` for an
    EngineParams: what a message about a build names."""
    if params.serial:
        return f"the serial engine ({params.lanes} lanes), d = {params.head_dim}"
    return f"the {params.lanes}-lane engine, d = {params.head_dim}"


class Progress:
    """Report one step on stderr while it runs (a context manager).

    what : what the step does ("building the Verilator model of the 64-lane engine").
    total, unit : the amount of work and its unit ("jobs", "rows"), for a counted step;
        :meth:`update` reports what is done (fractions allowed). None: an uncounted step
        (elapsed time only).
    announce : say what the step does at once (a step known to take long); otherwise the
        first report comes after :data:`LIVE_DELAY` s on a terminal and after
        :func:`interval` s elsewhere, so short steps stay silent.
    note : said once, with the first report ("first run only, a minute or more").
    poll : called about every :data:`POLL_EVERY` s from the reporting thread with this object,
        to read progress that another process writes (``poll(p)`` calls ``p.update``).
    every : seconds between plain lines (default :func:`interval`).
    stream : where to write (default sys.stderr at the time of the call).
    live : a live rich display (default: when ``stream`` is a terminal).
    quiet : report nothing (``--quiet`` options; also when ``SWATTN_PROGRESS=0``).
    """

    def __init__(self, what: str, total: float | None = None, unit: str = "", *,
                 announce: bool = False, note: str = "",
                 poll: Callable[["Progress"], None] | None = None,
                 every: float | None = None, stream=None, live: bool | None = None,
                 quiet: bool = False):
        self.what = what
        self.total = total
        self.unit = unit
        self.announce = announce
        self.note = note
        self.poll = poll
        self.every = interval() if every is None else every
        self.stream = sys.stderr if stream is None else stream
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self.quiet = quiet or not enabled()
        self.completed = 0.0
        self._start = 0.0
        self.detail = ""
        self.t0 = time.monotonic()
        self.shown = False  # a line or the live display has appeared
        self.lines = 0  # plain lines written
        self._samples: collections.deque = collections.deque(maxlen=512)  # (elapsed, completed)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rich = None
        self._task = None

    # ------------------------------------------------------------------ what the step reports

    def update(self, completed: float | None = None, *, advance: float = 0.0,
               detail: str | None = None, total: float | None = None) -> None:
        """Set the work done (or ``advance`` it), the detail text (the current phase) or the
        total."""
        with self._lock:
            if total is not None:
                self.total = total
            if completed is not None:
                self.completed = completed
            self.completed += advance
            if detail is not None:
                self.detail = detail
            if self._rich is not None:
                self._rich.update(self._task, completed=self.completed, total=self.total)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def rate(self) -> float | None:
        """Work done per second since the work stood where it did :data:`RATE_WINDOW` s ago
        (or since it first moved), so that a slow start (loading, a build) does not stretch
        the time left; None before the work has moved."""
        now, done = self.elapsed(), self.completed
        samples = tuple(self._samples)  # (the reporting thread appends to it)
        if not samples:
            return None
        older = [s for s in samples if now - s[0] >= RATE_WINDOW]
        t, c = older[-1] if older else samples[0]
        if done <= c or now - t < 0.05:
            return None
        return (done - c) / (now - t)

    def line(self) -> str:
        """The plain report: what, done / total, rate, time left, elapsed, detail."""
        el = self.elapsed()
        parts = []
        if self.total is not None:
            done = f"{count_text(self.completed)}/{count_text(self.total)} {self.unit}".rstrip()
            parts.append(done)
            rate = self.rate()
            if rate:
                parts.append(f"{rate_text(rate)} {self.unit}/s".replace(" /s", "/s"))
                left = max(self.total - self.completed, 0) / rate
                parts.append(f"about {duration(left)} left")
        parts.append(f"{duration(el)} elapsed")
        text = f"{self.what}: {', '.join(parts)}"
        return f"{text} ({self.detail})" if self.detail else text

    # ------------------------------------------------------------------------------ reporting

    def __enter__(self) -> "Progress":
        self.t0 = time.monotonic()
        self._start = self.completed
        if self.quiet:
            return self
        if self.announce:
            self._show()
        self._thread = threading.Thread(target=self._run, name="swattn-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.quiet:
            return
        if self.poll is not None and exc_type is None:
            try:
                self.poll(self)  # the work done at the end, for the last line
            except Exception:
                pass
        with self._lock:
            if self._rich is not None:
                self._rich.stop()
                self._rich = None
            if not self.shown:
                return
            el = duration(self.elapsed())
            if exc_type is not None:
                end = f"stopped after {el}"
            elif self.total is not None:
                end = (f"{count_text(self.completed)}/{count_text(self.total)} {self.unit}"
                       .rstrip() + f" in {el}")
            else:
                end = f"done in {el}"
            self._write(f"{self.what}: {end}")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail the step
            pass

    def _show(self) -> None:
        """The first report: the live display, or the first plain line."""
        with self._lock:
            if self.shown:
                return
            self.shown = True
            note = f" ({self.note})" if self.note else ""
            if self.live:
                if note:
                    self._write(f"{self.what}{note}")
                try:
                    self._start_rich()
                    return
                except Exception:  # another live display holds the terminal: plain lines
                    self._rich, self.live, note = None, False, ""
            if not self.live:
                self._write(f"{self.what}{note}..." if self.announce and self.elapsed() < 1
                            else f"{self.line()}{note}")
                self.lines += 1

    def _run(self) -> None:
        next_poll = 0.0
        next_line = self.every
        tick = min(0.1 if self.live else 0.25, self.every / 4)
        while not self._stop.wait(tick):
            el = self.elapsed()
            if self.completed != (self._samples[-1][1] if self._samples else self._start):
                self._samples.append((el, self.completed))  # when the work reached this much
            if self.poll is not None and el >= next_poll:
                next_poll = el + POLL_EVERY
                try:
                    self.poll(self)
                except Exception:  # a report must never break the step it reports
                    pass
            if not self.shown:
                if el >= (LIVE_DELAY if self.live else self.every):
                    self._show()
                    next_line = el + self.every
                continue
            if not self.live and el >= next_line:
                with self._lock:
                    self._write(self.line())
                    self.lines += 1
                next_line = el + self.every

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, ProgressColumn, SpinnerColumn
        from rich.table import Column
        from rich.text import Text

        step = self

        class Status(ProgressColumn):  # the plain line's text; a narrow terminal cuts its end
            def render(self, task):
                return Text(step.line(), no_wrap=True, overflow="ellipsis")

        columns = [SpinnerColumn()]
        if self.total is not None:
            columns.append(BarColumn(bar_width=20))
        columns.append(Status(table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")))
        console = Console(file=self.stream, force_terminal=True)  # (live was asked for)
        self._rich = RichProgress(*columns, console=console, transient=True,
                                  redirect_stdout=False, redirect_stderr=False)
        self._task = self._rich.add_task(self.what, total=self.total, completed=self.completed)
        self._rich.start()
