"""The engine's Verilog under cocotb + Verilator, bit for bit against the golden model.

Engine sizes (SIZES), random jobs (idle input, output backpressure, dilation, causal windows,
globals at the edges), every invalid configuration followed by a valid job, a reset in the middle of a job
and a start while busy. Each job's seed is printed on failure; re-run one job alone with
``SWATTN_JOB_SEED=<seed> pytest tests/test_engine_sim.py``. ``SIM=icarus`` runs them on Icarus
Verilog instead of Verilator.
"""

import os

import pytest

from swattn.sim.jobs import job_from_seed, regression_jobs
from swattn.sim.runner import run_jobs
from swattn.sw.engine_params import EngineParams

SIZES = {
    # one unit, 4 chunks per key: exercises the chunked dot products and accumulators
    "u1": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                       seq_width=10),
    # four units side by side, one key per cycle; up to two groups of global rows, so that
    # jobs have the paired max pass (EngineParams.paired_max) with both groups
    "u4": EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=6, max_dilation=3,
                       seq_width=10),
    # the same with the ULX3S build's pipelining (EngineParams.dot_pipeline 4: two registers
    # more in the dot products' adder trees, the key rows registered beside their memories, the
    # key memories' addresses a cycle behind stage 1, the later hand-over; pv_pipeline 5: the
    # exponential's copies per 8 P.V lanes, the products, the exponential table's output, the
    # score read and the softmax multiplier's partial products registered, the later drain)
    "u4p1": EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=6, max_dilation=3,
                         seq_width=10, dot_pipeline=4, pv_pipeline=5),
    # one unit with other stage counts: two adder-tree registers and the key register
    # (dot_pipeline 3), stage 2 without the score read's register (pv_pipeline 3)
    "u1p3": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                         seq_width=10, dot_pipeline=3, pv_pipeline=3),
}
#: random jobs per size (u4p1 repeats u4's control at another latency: fewer)
JOB_SHARE = {"u1": 1.0, "u4": 1.0, "u4p1": 0.4, "u1p3": 0.3}
SIM = os.environ.get("SIM", "verilator")
JOBS_PER_SIZE = int(os.environ.get("SWATTN_JOBS_PER_SIZE", "110"))


@pytest.mark.parametrize("size", sorted(SIZES))
def test_random_jobs_bit_exact(size, tmp_path_factory):
    params = SIZES[size]
    seed = os.environ.get("SWATTN_JOB_SEED")
    seed0 = {"u1": 1000, "u4": 5000, "u4p1": 9000, "u1p3": 11000}[size]
    count = max(1, round(JOBS_PER_SIZE * JOB_SHARE[size]))
    jobs = [job_from_seed(params, int(seed))] if seed else regression_jobs(params, count, seed0)
    results = run_jobs(params, jobs, sim=SIM, name=f"pytest_{size}")
    assert len(results) == len(jobs), f"only {len(results)} of {len(jobs)} jobs reported"
    failed = [r for r in results if not r["ok"]]
    valid = [r for r in results if r["kind"] in ("ok", "busy")]
    assert sum(r.get("pairs", 0) > 0 for r in valid) >= min(len(jobs), count)
    assert not failed, "failing seeds (re-run with SWATTN_JOB_SEED=<seed>): " + "; ".join(
        f"seed {r['seed']} {r['kind']}: {r.get('error_text') or r}" for r in failed[:10])
    # refused configurations must not consume any input
    for r in results:
        if r["kind"] == "invalid":
            assert r["q_ready"] == 0 and r["kv_ready"] == 0, r
