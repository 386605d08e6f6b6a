"""A sign of life from long tests: once a test has run for more than ``SLOW_AFTER`` seconds and
the terminal has been quiet for ``EVERY`` seconds, one line names each test still running::

    still running: tests/test_engine_sim.py::test_random_jobs (40 s)

Fast tests print nothing. Under pytest-xdist the controller prints it (the workers' output is
captured), from the start and report events the workers forward; in a single process the
line goes to a copy of the terminal's file descriptor taken before any test runs, since
pytest captures the real one while a test runs. ``SWATTN_SLOW_TEST_AFTER`` and
``SWATTN_SLOW_TEST_EVERY`` (seconds) change the two delays; 0 for ``SLOW_AFTER`` turns it off.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


SLOW_AFTER = _seconds("SWATTN_SLOW_TEST_AFTER", 10.0)
EVERY = _seconds("SWATTN_SLOW_TEST_EVERY", 10.0)


class SlowTestReporter:
    """Tracks the running tests (start and end events) and prints the slow ones from a
    thread."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.running: dict[str, float] = {}  # node id -> start (monotonic)
        self.quiet_since = time.monotonic()  # last line or test result on the terminal
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.width_after_last = -1  # the reporter's line width when this last wrote a line
        # a copy of the terminal's stdout (not captured yet when pytest configures)
        try:
            self.out = os.fdopen(os.dup(sys.__stdout__.fileno()), "w", buffering=1)
        except (AttributeError, OSError, ValueError):
            self.out = None
        self.thread = threading.Thread(target=self.watch, name="slow-tests", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        if self.out is not None:
            self.out.close()

    @pytest.hookimpl
    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        with self.lock:
            self.running[nodeid] = time.monotonic()

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self.lock:
            self.quiet_since = time.monotonic()
            if report.when == "teardown":
                self.running.pop(report.nodeid, None)

    def slow(self, now: float) -> list[tuple[str, float]]:
        with self.lock:
            return [(nodeid, now - t) for nodeid, t in self.running.items()
                    if now - t >= SLOW_AFTER]

    def watch(self) -> None:
        tick = max(min(EVERY, SLOW_AFTER, 1.0) / 2, 0.05)
        while not self.stop.wait(tick):
            now = time.monotonic()
            if now - self.quiet_since < EVERY:
                continue
            slow = self.slow(now)
            if not slow:
                continue
            self.write("still running: " + ", ".join(f"{nodeid} ({t:.0f} s)"
                                                     for nodeid, t in sorted(slow)))
            with self.lock:
                self.quiet_since = now

    def write(self, line: str) -> None:
        try:
            # the controller of pytest-xdist runs no test and so never captures: its terminal
            # reporter keeps the line in order with the progress it prints
            tr = self.config.pluginmanager.getplugin("terminalreporter")
            # (the progress dots leave the terminal in the middle of a line)
            width = getattr(getattr(tr, "_tw", None), "width_of_current_line", 0)
            if tr is not None and self.config.pluginmanager.getplugin("dsession") is not None:
                tr.write(("\n" if width else "") + line + "\n")
            elif self.out is not None:
                # (the reporter does not see this copy's lines: a line it has not added to
                # since the last one is still broken)
                broken = width == self.width_after_last
                self.out.write(("\n" if width and not broken else "") + line + "\n")
                self.out.flush()
                self.width_after_last = width
        except (OSError, ValueError):  # the terminal went away: nothing to tell
            pass


#: the test files that build Verilator models, synthesise boards or run proofs, in the order of
#: their time in ``make test`` (longest first: about 200 s down to 30 s on two cores). They are
#: collected first, the rest after them in their usual order, so that pytest-xdist's file-by-file
#: scheduling (``--dist loadfile --no-loadscope-reorder``, as the Makefile runs it) starts the
#: long files at once on both workers and fills the end with short ones.
LONG_FIRST = ("test_engine_sim.py", "test_board_sim_engines.py", "test_formal.py",
              "test_board_sim.py", "test_build.py", "test_demo.py", "test_cli_errors.py",
              "test_readme.py", "test_axi.py", "test_link_fuzz.py", "test_blocks.py",
              "test_serial_sim.py", "test_cycle_model.py", "test_axi_example.py")


@pytest.fixture(autouse=True)
def _own_pnr_cache(tmp_path_factory, monkeypatch):
    """Each test its own place-and-route cache (swattn.fpga.pnr_cache): no test takes a result
    that another test, an earlier run or the user's own builds kept."""
    monkeypatch.setenv("SWATTN_PNR_CACHE", str(tmp_path_factory.mktemp("pnr-cache")))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_configure(config: pytest.Config) -> None:
    # not in pytest-xdist workers (their output is captured; the controller reports)
    if SLOW_AFTER > 0 and not hasattr(config, "workerinput"):
        config.pluginmanager.register(SlowTestReporter(config), "swattn-slow-tests")


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin("swattn-slow-tests")
    if plugin is not None:
        plugin.close()
        config.pluginmanager.unregister(plugin)
