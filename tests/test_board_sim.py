"""The host driver against the simulated board top (cocotb + Verilator), bytes through the UART
pins: jobs bit-exact against the golden model; a corrupted, a truncated and an unknown-command
frame (and bad addresses/lengths, START without a configuration, a refused configuration) each
get their error reply and the next job still succeeds.

Two buffer organisations: 2-byte words (the iCE40's SPRAM: 16 words per row) and whole-row words
(the ECP5's block RAM: a row per cycle). The engine is tiny (head dim 32, 16 lanes, 64-row
buffers). The whole-row test with every configuration error code (about 3.5 minutes) is marked
``slow`` (``make test-slow``, run by CI after ``make test``); in ``make test`` the same
properties stay checked by ``test_board_sim_engines.py``: the whole-row layout by the two-unit
board's jobs, every configuration error code, the starts while busy and ``swattn run --port``
through the pins by the serial engine's board.
"""

import pytest

from board_scenarios import LINK_ERRORS, PARAMS, check, check_busy_start, fixed_jobs, random_jobs
from swattn.sim.board_runner import run_board


def test_board_through_uart_pins_spram_layout():
    """iCE40 buffer layout (16-bit words): identify, every error reply, each followed by a job."""
    fixed = fixed_jobs()
    rand = random_jobs(8, 300)
    scen = [{"kind": "identify"}, {"kind": "no_config"}, fixed[0]]
    errors = LINK_ERRORS
    for i, kind in enumerate(errors):
        scen += [{"kind": kind}, (fixed[1:] + rand)[i]]
    rest = rand[len(errors) - (len(fixed) - 1):]
    scen += rest
    results = run_board(PARAMS, scen, word_bytes=2, name="pins_w2")
    jobs = check(results, scen)
    assert len(jobs) == 1 + len(errors) + len(rest) == 13
    ident = results[0]["identity"]
    assert ident["head_dim"] == PARAMS.head_dim and ident["buffer_rows"] == 64


@pytest.mark.slow
def test_board_row_per_cycle_layout():
    """ECP5 buffer layout (a row per RAM word, a row per cycle into the engine); every
    configuration error code, and the configurations whose only fault is in a field's high bits
    (which the core's configuration store keeps as a flag), each followed by a job; and
    `swattn run --port` through a pseudo-terminal bridged to the simulated UART pins."""
    from swattn.sim.jobs import high_bit_invalid_jobs, invalid_jobs
    bad = invalid_jobs(PARAMS, 17) + high_bit_invalid_jobs(PARAMS, 17)
    follow = random_jobs(len(bad), 1700)
    scen = [{"kind": "identify"}] + fixed_jobs()[:3] + [{"kind": "truncated"}] + \
        random_jobs(3, 700) + [{"kind": "cli_run", "n": 24}] + random_jobs(1, 800)
    for b, j in zip(bad, follow):
        scen += [b, j]
    scen += [dict(fixed_jobs()[0], kind="busy_start")] + random_jobs(1, 810)
    results = run_board(PARAMS, scen, word_bytes=PARAMS.head_dim, name="pins_w32")
    jobs = check(results, scen)
    check_busy_start(results)
    assert sum(r["kind"] == "invalid" for r in results) == len(bad) == 9 + 7
    assert all(r["cycles"] >= r["n"] for r in jobs)
    cli = next(r for r in results if r["kind"] == "cli_run")
    assert "output matches the golden model bit for bit" in cli["stdout"]


@pytest.mark.parametrize("word_bytes", [3, 64])
def test_bad_word_size_is_refused(word_bytes):
    from swattn.fpga.core import BoardCore
    with pytest.raises(ValueError, match="word_bytes"):
        BoardCore(PARAMS, word_bytes=word_bytes, clock_hz=1, timeout_cycles=100)


