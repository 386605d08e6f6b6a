"""The host driver against a simulated board whose engine has bands beside the window and
key-only columns (the ULX3S's engine organisation, small), bytes through the UART pins: the
feeders stream the column rows after the global rows (schedule.kv_order), the driver writes the
band and column fields, jobs are bit-exact against the golden model's key sets and take as many
cycles as the cycle model says; every band and column error code is refused with its code and
followed by a job that still succeeds."""

import random

from board_scenarios import check, job
from swattn.sim.board_runner import run_board
from swattn.sim.jobs import invalid_jobs, random_keys, random_pattern
from swattn.sim.runner import job_pattern
from swattn.sw.cycles import predict_cycles
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.keyset import EngineForm
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.regs import Error

KEYS = EngineParams(head_dim=32, lanes=64, max_radius=8, max_globals=3, max_dilation=2,
                    seq_width=6, dot_pipeline=4, pv_pipeline=5, max_bands=4, max_columns=8)


def keys_jobs(count: int, seed0: int) -> list[dict]:
    """Random window + globals patterns with random bands and columns (sim.jobs.random_keys)."""
    out = []
    for i in range(count):
        rng = random.Random(seed0 + i)
        out.append(job(random_keys(rng, KEYS, random_pattern(rng, KEYS)), seed0 + i))
    return out


def test_board_with_bands_and_columns_through_uart_pins():
    L = KEYS.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    n = KEYS.n_max
    fixed = [
        # three bands on both sides of the window, eight columns (0 and n - 1 among them)
        EngineForm(n, 1, 1, 1, ((-8, 2), (-4, 2), (3, 6)), (0, 5, 6, 20, 33, 40, 50, n - 1),
                   (7, 30, 61)),
        # dilated, bands clipped at both ends of a short sequence, a column inside a band
        EngineForm(12, 1, 1, 2, ((-4, 2), (2, 2)), (3, 11), (0,)),
        # columns only: every query reads them, no global rows
        EngineForm(40, 0, 0, 1, (), (0, 1, 2, 39), ()),
        # one token: every band empty after clipping, a column on the token itself
        EngineForm(1, 0, 0, 1, ((1, 3),), (0,), ()),
    ]
    for f in fixed:
        f.check(L)
    scen = [{"kind": "identify"}] + [job(f, 60 + i, cfg) for i, f in enumerate(fixed)]
    rand = keys_jobs(14, 2100)
    bad = [b for b in invalid_jobs(KEYS, 21)
           if b["expect"].startswith(("BAND", "COLUMN"))]
    for i, b in enumerate(bad):
        scen += [b, rand[i % len(rand)]]
    scen += rand[len(bad):]
    results = run_board(KEYS, scen, word_bytes=KEYS.head_dim, name="pins_keys")
    jobs = check(results, scen)

    refused = [r for r in results if r["kind"] == "invalid"]
    assert len(refused) == len(bad) >= 10
    codes = {e.name for e in Error if e.name.startswith(("BAND", "COLUMN"))}
    assert {b["expect"] for b in bad} == codes

    specs = [s for s in scen if s["kind"] == "job"]
    assert len(jobs) == len(specs) == len(fixed) + len(rand)
    with_columns = 0
    for spec, r in zip(specs, jobs):
        pat = job_pattern(spec, L)
        with_columns += bool(getattr(pat, "columns", ()))
        assert r["cycles"] == predict_cycles(KEYS, pat), (spec, r["cycles"])
    assert with_columns >= 8


#: the iCEBreaker's organisation with its band beside the window (small buffers)
SERIAL_BAND = EngineParams(head_dim=32, lanes=4, max_radius=8, max_globals=2, max_dilation=2,
                           seq_width=6, max_bands=2)


def test_serial_board_with_a_band_through_uart_pins():
    """The serial engine (the iCE40's) with a band beside the window behind the link: the driver
    writes the band's fields; jobs with a band below, above, touching the window, clipped or
    empty at the sequence's ends, dilated, bit-exact against the golden model's key sets and
    taking the cycles the cycle model says; every band error code refused with its code and
    followed by a job that still succeeds."""
    L = SERIAL_BAND.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    n = SERIAL_BAND.n_max
    fixed = [
        EngineForm(n, 2, 2, 1, ((-8, 3),), (), (0, 40)),  # below the window, two globals
        EngineForm(n, 1, 1, 1, ((5, 4),), (), ()),  # above, reaching the radius
        EngineForm(20, 2, 2, 2, ((3, 2),), (), (3,)),  # dilated, touching the window
        EngineForm(6, 0, 0, 1, ((4, 3),), (), ()),  # clipped at the end of a short sequence
        EngineForm(1, 0, 0, 1, ((-3, 2),), (), ()),  # one token: the band empty after clipping
    ]
    for f in fixed:
        f.check(L)
    scen = [{"kind": "identify"}] + [job(f, 70 + i, cfg) for i, f in enumerate(fixed)]
    rand = []
    for i in range(12):
        rng = random.Random(2300 + i)
        rand.append(job(random_keys(rng, SERIAL_BAND, random_pattern(rng, SERIAL_BAND)),
                        2300 + i))
    bad = [b for b in invalid_jobs(SERIAL_BAND, 23) if b["expect"].startswith("BAND")]
    for i, b in enumerate(bad):
        scen += [b, rand[i % len(rand)]]
    scen += rand[len(bad):]
    results = run_board(SERIAL_BAND, scen, word_bytes=2, name="serial_band_w2")
    jobs = check(results, scen)

    refused = [r for r in results if r["kind"] == "invalid"]
    assert len(refused) == len(bad) >= 2
    assert {b["expect"] for b in bad} == {e.name for e in Error if e.name.startswith("BAND")}
    specs = [s for s in scen if s["kind"] == "job"]
    assert len(jobs) == len(specs) == len(fixed) + len(rand)
    with_band = 0
    for spec, r in zip(specs, jobs):
        pat = job_pattern(spec, L)
        with_band += bool(getattr(pat, "bands", ()))
        assert r["cycles"] == predict_cycles(SERIAL_BAND, pat), (spec, r["cycles"])
    assert with_band >= 8
