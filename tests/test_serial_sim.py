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
from swattn.sim.runner import run_serial_jobs

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
    assert {j["expect"] for j, _ in inv} == {"N_RANGE", "RADIUS", "DILATION", "GLOBAL_RANGE",
                                             "GLOBAL_DUP", "GLOBAL_COUNT"}
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
