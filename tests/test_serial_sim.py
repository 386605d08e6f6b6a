"""The serial engine (hw.serial, the iCE40 board's) under cocotb + Verilator, with the engine
regression's job list: random jobs bit for bit against the golden model with their cycle counts
equal to the cycle model, every invalid configuration followed by a valid job, a reset in the
middle of a job and the starts while busy (``swattn.sim.jobs.regression_jobs``), through
``swattn.sim.tb_serial``, which models the board's Q, K, V and O buffers.

Re-run one job alone with ``SWATTN_JOB_SEED=<seed> pytest tests/test_serial_sim.py``.
"""

import os

from swattn.fpga.boards import BOARDS
from swattn.sim.jobs import busy_jobs, invalid_jobs, job_from_seed, regression_jobs
from swattn.sim.runner import job_pattern, run_serial_jobs
from swattn.sw.spec.engine_params import EngineParams

PARAMS = BOARDS["icebreaker"].params
COUNT = int(os.environ.get("SWATTN_SERIAL_JOBS", "40"))
SEED0 = 3000


def test_serial_engine_regression_jobs():
    assert PARAMS.serial
    seed = os.environ.get("SWATTN_JOB_SEED")
    jobs = [job_from_seed(PARAMS, int(seed))] if seed else regression_jobs(PARAMS, COUNT, SEED0)
    results = run_serial_jobs(PARAMS, jobs, name="pytest_serial")
    assert len(results) == len(jobs), f"only {len(results)} of {len(jobs)} jobs reported"
    failed = [r for r in results if not r["ok"]]
    assert not failed, "failing seeds (re-run with SWATTN_JOB_SEED=<seed>): " + "; ".join(
        f"seed {r['seed']} {r['kind']}: {r.get('error_text') or r}" for r in failed[:10])
    for job, r in zip(jobs, results):
        assert r["seed"] == job["seed"] and r["kind"] == job.get("kind", "ok"), (job, r)
        if r["kind"] in ("ok", "busy"):
            # bit-exact, every output word written once, the cycle model's count
            assert r["mismatches"] == 0 and r["o_writes"] == job["n"] * PARAMS.head_dim // 2, r
            assert r["cycles"] == r["predicted_cycles"] > 0 and r["rows_out"] == job["n"], r
    if seed:
        return
    valid = [r for r in results if r["kind"] in ("ok", "busy")]
    assert sum(r["pairs"] > 0 for r in valid) >= COUNT
    # every invalid configuration refused with its code, no output written
    inv = [(j, r) for j, r in zip(jobs, results) if j.get("kind") == "invalid"]
    assert len(inv) == len(invalid_jobs(PARAMS, SEED0))
    codes = {"N_RANGE", "RADIUS", "DILATION", "GLOBAL_RANGE", "GLOBAL_DUP", "GLOBAL_COUNT"}
    if PARAMS.max_bands > 1:
        codes |= {"BAND_COUNT", "BAND_RANGE", "BAND_ORDER"}
    assert {j["expect"] for j, _ in inv} == codes
    for j, r in inv:
        assert r["state"] == "IDLE" and r["error"] == j["expect"] and r["o_writes"] == 0, (j, r)
    # every start while busy refused (error BUSY), the job undisturbed, where the job says
    busy = [(j, r) for j, r in zip(jobs, results) if j.get("kind") == "busy"]
    assert len(busy) == len(busy_jobs(PARAMS, SEED0 + 10_100))
    for j, r in busy:
        assert r["state"] == "DONE" and r["error"] == "BUSY", (j, r)
        if "busy_end" in j:
            assert r["last_row_cycle"] - r["busy_cycle"] == j["busy_end"], (j, r)
        else:
            assert r["busy_cycle"] == j["busy_at"], (j, r)
    assert sum(j.get("kind") == "reset_mid" for j in jobs) == 1


def band_cases(jobs, params) -> dict[str, int]:
    """Of the valid jobs, how many have a band beside the window, one clipped at key 0, one
    clipped at key n - 1, and a global inside a band of a row that is not global."""
    out = dict(band=0, clip_low=0, clip_high=0, global_in_band=0)
    for job in jobs:
        if job.get("kind") == "invalid":
            continue
        pat = job_pattern(job, params.limits())
        bands = getattr(pat, "bands", ())
        if not bands:
            continue
        n, dil, glob = pat.n, pat.dilation, set(pat.globals_)
        steps = [[i + (a + k) * dil for k in range(c)] for i in range(n) for a, c in bands]
        rows = [i for i in range(n) for _ in bands]
        out["band"] += 1
        out["clip_low"] += any(min(s) < 0 <= max(s) for s in steps)
        out["clip_high"] += any(min(s) < n <= max(s) for s in steps)
        out["global_in_band"] += any(i not in glob and glob & set(s) for i, s in zip(rows, steps))
    return out


#: a serial engine with three bands beside the window (the board's takes the window alone)
BANDS = EngineParams(head_dim=32, lanes=4, max_radius=12, max_globals=2, max_dilation=2,
                     seq_width=7, max_bands=4)
BANDS_JOBS, BANDS_SEED0 = 30, 4000


def test_serial_jobs_cover_the_bands():
    """The job list the band engine below is simulated with has jobs with a band beside the
    window, bands clipped at either end of the sequence and a global inside a band."""
    cases = band_cases(regression_jobs(BANDS, BANDS_JOBS, BANDS_SEED0), BANDS)
    assert cases["band"] >= 10 and all(cases.values()), cases


def test_serial_engine_with_several_bands():
    """A serial engine with three bands beside the window: the regression's job list bit for
    bit, cycles equal to the model, every band code."""
    p = BANDS
    jobs = regression_jobs(p, BANDS_JOBS, BANDS_SEED0)
    pats = [job_pattern(j, p.limits()) for j in jobs if j.get("kind") != "invalid"]
    assert sum(len(getattr(x, "bands", ())) >= 2 for x in pats) >= 5
    results = run_serial_jobs(p, jobs, name="pytest_serial_bands")
    assert len(results) == len(jobs)
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed[:5]
    for job, r in zip(jobs, results):
        if r["kind"] in ("ok", "busy"):
            assert r["mismatches"] == 0 and r["cycles"] == r["predicted_cycles"] > 0, r
        elif job.get("kind") == "invalid":
            assert r["state"] == "IDLE" and r["error"] == job["expect"], (job, r)
    assert {j["expect"] for j in jobs if j.get("kind") == "invalid"} >= {
        "BAND_COUNT", "BAND_RANGE", "BAND_ORDER"}
