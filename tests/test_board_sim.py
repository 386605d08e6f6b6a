"""The host driver against the simulated board top (cocotb + Verilator), bytes through the UART
pins: jobs bit-exact against the golden model; a corrupted, a truncated and an unknown-command
frame (and bad addresses/lengths, START without a configuration, a refused configuration) each
get their error reply and the next job still succeeds.

Two buffer organisations: 2-byte words (the iCE40's SPRAM: 16 words per row) and whole-row words
(the ECP5's block RAM: a row per cycle). The engine is tiny (head dim 32, 16 lanes, 64-row
buffers) so both builds and runs take a couple of minutes on two cores.
"""

import random

import pytest

from swattn.sim.board_runner import run_board
from swattn.sim.jobs import random_pattern, random_softmax
from swattn.sim.runner import job_to_json
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.pattern import HybridPattern

PARAMS = EngineParams(head_dim=32, lanes=16, max_radius=8, max_globals=2, max_dilation=2,
                      seq_width=6)


def _job(pattern, seed, cfg=None):
    cfg = cfg or random_softmax(random.Random(seed), PARAMS.head_dim)
    return dict(job_to_json(pattern, cfg, seed), kind="job")


def random_jobs(count: int, seed0: int, params: EngineParams = PARAMS) -> list[dict]:
    """Random patterns, the engine regression's generator (dilated windows with globals too)."""
    jobs = []
    for i in range(count):
        rng = random.Random(seed0 + i)
        jobs.append(_job(random_pattern(rng, params), seed0 + i))
    return jobs


def fixed_jobs() -> list[dict]:
    L = PARAMS.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    return [
        _job(HybridPattern(PARAMS.n_max, 8, 8, 1, (0, 40), limits=L), 11, cfg),  # full buffers
        _job(HybridPattern(20, 3, 0, 1, (0,), limits=L), 12, cfg),  # causal + global
        _job(HybridPattern(17, 2, 2, 2, (), limits=L), 13, cfg),  # dilated
        _job(HybridPattern(22, 2, 2, 2, (3, 9), limits=L), 14, cfg),  # dilated, globals inside
        _job(HybridPattern(1, 0, 0, 1, (), limits=L), 14, cfg),  # one token
    ]


def _check(results, scenarios):
    assert len(results) == len(scenarios), f"only {len(results)} of {len(scenarios)} reported"
    bad = [r for r in results if not r["ok"]]
    assert not bad, "failed scenarios: " + "; ".join(str(r)[:600] for r in bad[:6])
    jobs = [r for r in results if r["kind"] == "job"]
    assert all(r["mismatches"] == 0 and r["cycles"] > 0 for r in jobs)
    return jobs


def _check_busy_start(results):
    """A START (and a WRITE_CONFIG) sent while a job runs were each refused with BUSY, the job
    then finished bit-exact in as many cycles as alone (run_busy_start's ok)."""
    (busy,) = [r for r in results if r["kind"] == "busy_start"]
    assert busy["refused"].get("START") == "BUSY", busy
    assert set(busy["refused"].values()) == {"BUSY"}, busy
    assert busy["state_after"] == "BUSY" and busy["cycles"] == busy["cycles_alone"] > 0, busy
    assert busy["mismatches"] == 0, busy


def test_board_through_uart_pins_spram_layout():
    """iCE40 buffer layout (16-bit words): identify, every error reply, each followed by a job."""
    fixed = fixed_jobs()
    rand = random_jobs(6, 300)
    scen = [{"kind": "identify"}, {"kind": "no_config"}, fixed[0]]
    for i, kind in enumerate(["corrupt_payload", "corrupt_header", "truncated", "unknown",
                              "bad_addr", "bad_length", "refused", "silent"]):
        scen += [{"kind": kind}, (fixed[1:] + rand)[i]]
    scen += rand[5:]
    results = run_board(PARAMS, scen, word_bytes=2, name="pins_w2")
    jobs = _check(results, scen)
    assert len(jobs) == 1 + 8 + 1
    ident = results[0]["identity"]
    assert ident["head_dim"] == PARAMS.head_dim and ident["buffer_rows"] == 64


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
    jobs = _check(results, scen)
    _check_busy_start(results)
    assert sum(r["kind"] == "invalid" for r in results) == len(bad) == 9 + 7
    assert all(r["cycles"] >= r["n"] for r in jobs)
    cli = next(r for r in results if r["kind"] == "cli_run")
    assert "output matches the golden model bit for bit" in cli["stdout"]


@pytest.mark.parametrize("word_bytes", [3, 64])
def test_bad_word_size_is_refused(word_bytes):
    from swattn.fpga.core import BoardCore
    with pytest.raises(ValueError, match="word_bytes"):
        BoardCore(PARAMS, word_bytes=word_bytes, clock_hz=1, timeout_cycles=100)



def test_board_with_paired_max_passes():
    """A board engine of two units: the feeders stream the global queries twice and the K/V
    rows once per pass of the paired max passes (schedule.query_order, kv_order)."""
    p2 = EngineParams(head_dim=32, lanes=128, max_radius=8, max_globals=4, max_dilation=2,
                      seq_width=6)
    assert p2.paired_max and p2.global_groups_max == 2
    L = p2.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    fixed = [_job(HybridPattern(p2.n_max, 8, 8, 1, (0, 5, 40, 62), limits=L), 21, cfg),
             _job(HybridPattern(30, 2, 1, 2, (3, 4, 29), limits=L), 22, cfg),  # 2 groups, odd
             _job(HybridPattern(9, 1, 1, 1, (8,), limits=L), 23, cfg)]  # a lone group
    scen = [{"kind": "identify"}] + fixed + random_jobs(5, 900, p2)
    results = run_board(p2, scen, word_bytes=p2.head_dim, name="pins_u2")
    jobs = _check(results, scen)
    assert len(jobs) == 8 and results[0]["identity"]["lanes"] == 128


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
    fixed = [_job(HybridPattern(SERIAL.n_max, 8, 8, 1, (0, 40), limits=L), 31, cfg),
             _job(HybridPattern(20, 3, 0, 1, (0,), limits=L), 32, cfg),  # causal + global
             _job(HybridPattern(17, 4, 4, 2, (), limits=L), 33, cfg),  # dilated, reach 8
             _job(HybridPattern(22, 2, 2, 2, (3, 9), limits=L), 34, cfg),  # a global inside
             _job(HybridPattern(2, 1, 1, 1, (0, 1), limits=L), 35, cfg),  # every row global
             _job(HybridPattern(1, 0, 0, 1, (), limits=L), 36, cfg)]  # one token
    rand = random_jobs(24, 1300, SERIAL)
    scen = [{"kind": "identify"}, {"kind": "no_config"}] + fixed
    errors = ["corrupt_payload", "corrupt_header", "truncated", "unknown", "bad_addr",
              "bad_length", "refused", "silent"]
    errors += invalid_jobs(SERIAL, 13) + high_bit_invalid_jobs(SERIAL, 13)
    for i, e in enumerate(errors):
        scen += [e if isinstance(e, dict) else {"kind": e}, rand[i % len(rand)]]
    scen += rand[len(errors):] + [{"kind": "cli_run", "n": 20}]
    scen += [dict(fixed[0], kind="busy_start", also_config=True)] + rand[:1]
    results = run_board(SERIAL, scen, word_bytes=2, name="serial_w2")
    jobs = _check(results, scen)
    _check_busy_start(results)
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
