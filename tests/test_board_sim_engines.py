"""The host driver against simulated boards of other engine organisations, bytes through the
UART pins: a stream engine of two units (the paired max passes) behind the row feeders, and the
serial engine (the iCE40's) on 16-bit buffer words: jobs bit-exact against the golden model,
error replies followed by a job that still succeeds (a file of its own so that these and
``test_board_sim.py`` run side by side under ``pytest -n``)."""

import pytest

from board_scenarios import LINK_ERRORS, PARAMS, check, check_busy_start, job, random_jobs
from swattn.sim.board_runner import run_board
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.pattern import HybridPattern


def test_board_with_paired_max_passes():
    """A board engine of two units: the feeders stream the global queries twice and the K/V
    rows once per pass of the paired max passes (schedule.query_order, kv_order)."""
    p2 = EngineParams(head_dim=32, lanes=128, max_radius=8, max_globals=4, max_dilation=2,
                      seq_width=6)
    assert p2.paired_max and p2.global_groups_max == 2
    L = p2.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    fixed = [job(HybridPattern(p2.n_max, 8, 8, 1, (0, 5, 40, 62), limits=L), 21, cfg),
             job(HybridPattern(30, 2, 1, 2, (3, 4, 29), limits=L), 22, cfg),  # 2 groups, odd
             job(HybridPattern(9, 1, 1, 1, (8,), limits=L), 23, cfg)]  # a lone group
    scen = [{"kind": "identify"}] + fixed + random_jobs(3, 900, p2)
    results = run_board(p2, scen, word_bytes=p2.head_dim, name="pins_u2")
    jobs = check(results, scen)
    assert len(jobs) == 6 and results[0]["identity"]["lanes"] == 128


SERIAL = EngineParams(head_dim=32, lanes=4, max_radius=8, max_globals=2, max_dilation=2,
                      seq_width=6)


def test_serial_engine_board_through_uart_pins():
    """The iCE40's engine organisation (hw.serial: a row at a time on the buffers' 16-bit words,
    no feeders) behind the same link and driver: identify, every link error and every
    configuration error code, each followed by a job; jobs bit-exact against the golden model and
    their cycle counts equal to the serial cycle model (swattn.sw.cycles.predict_cycles);
    `swattn run --port` through a pseudo-terminal."""
    from swattn.sim.jobs import high_bit_invalid_jobs, invalid_jobs
    from swattn.sw.cycles import predict_cycles

    L = SERIAL.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    fixed = [job(HybridPattern(SERIAL.n_max, 8, 8, 1, (0, 40), limits=L), 31, cfg),
             job(HybridPattern(20, 3, 0, 1, (0,), limits=L), 32, cfg),  # causal + global
             job(HybridPattern(17, 4, 4, 2, (), limits=L), 33, cfg),  # dilated, reach 8
             job(HybridPattern(22, 2, 2, 2, (3, 9), limits=L), 34, cfg),  # a global inside
             job(HybridPattern(2, 1, 1, 1, (0, 1), limits=L), 35, cfg),  # every row global
             job(HybridPattern(1, 0, 0, 1, (), limits=L), 36, cfg)]  # one token
    rand = random_jobs(24, 1300, SERIAL)
    scen = [{"kind": "identify"}, {"kind": "no_config"}] + fixed
    errors = list(LINK_ERRORS)
    errors += invalid_jobs(SERIAL, 13) + high_bit_invalid_jobs(SERIAL, 13)
    for i, e in enumerate(errors):
        scen += [e if isinstance(e, dict) else {"kind": e}, rand[i % len(rand)]]
    scen += rand[len(errors):] + [{"kind": "cli_run", "n": 20}]
    scen += [dict(fixed[0], kind="busy_start", also_config=True)] + rand[:1]
    results = run_board(SERIAL, scen, word_bytes=2, name="serial_w2")
    jobs = check(results, scen)
    check_busy_start(results)
    assert results[0]["identity"]["lanes"] == 4
    assert sum(r["kind"] == "invalid" for r in results) == 9 + 7 == len(
        invalid_jobs(SERIAL, 13) + high_bit_invalid_jobs(SERIAL, 13))
    specs = [s for s in scen if s["kind"] == "job"]
    assert len(jobs) == len(specs) >= 31
    for spec, r in zip(specs, jobs):
        pat = HybridPattern(spec["n"], spec["left"], spec["right"], spec["dilation"],
                            tuple(spec["globals"]), limits=L)
        assert r["cycles"] == predict_cycles(SERIAL, pat), (spec, r["cycles"])
    cli = next(r for r in results if r["kind"] == "cli_run")
    assert "output matches the golden model bit for bit" in cli["stdout"]


def test_serial_engine_takes_only_its_word_size():
    from swattn.fpga.core import BoardCore
    from swattn.hw.serial import SerialEngine
    with pytest.raises(ValueError, match=r"word_bytes = 32: the serial engine \(lanes 4\) reads "
                                         "words of 2 bytes"):
        BoardCore(SERIAL, word_bytes=32, clock_hz=1, timeout_cycles=100)
    with pytest.raises(ValueError, match="word_bytes = 4: the serial engine"):
        BoardCore(SERIAL, word_bytes=4, clock_hz=1, timeout_cycles=100)
    # lanes 4 elaborates the serial engine, 8 and more the stream engine behind row feeders
    assert isinstance(BoardCore(SERIAL, word_bytes=2, clock_hz=1, timeout_cycles=100).elaborate(
        None).submodules.engine, SerialEngine)
    assert not isinstance(BoardCore(PARAMS, word_bytes=2, clock_hz=1, timeout_cycles=100)
                          .elaborate(None).submodules.engine, SerialEngine)
