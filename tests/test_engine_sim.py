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
from swattn.sw.spec.sizes import SIZES as SPEC_SIZES

#: entries of swattn.sw.spec.sizes.SIZES: one unit with 4 chunks per key (the chunked dot
#: products and accumulators); four units side by side, one key per cycle, with up to two groups
#: of global rows so that jobs have the paired max pass (EngineParams.paired_max) with both
#: groups; the ULX3S board's engine (one unit of 64 lanes with the board's pipelining:
#: dot_pipeline 4: two registers more in the dot products' adder trees, the key rows registered
#: beside their memories, the key memories' addresses a cycle behind stage 1, the later
#: hand-over; pv_pipeline 5: the exponential's copies per 8 P.V lanes, the products, the
#: exponential table's output, the score read and the softmax multiplier's partial products
#: registered, the later drain); the four units with that pipelining (``u4g6_p45``, marked slow:
#: its build takes a minute; ``make test`` keeps the pipelining by ``ulx3s`` and the paired passes
#: by ``u4g6``); one unit with other stage counts (dot_pipeline 3: two adder-tree registers and
#: the key register; pv_pipeline 3: stage 2 without the score read's register); bands beside
#: the window, key-only columns and the 2D grid (max_bands 4, max_columns 4, grid) on one unit of
#: four chunks and, marked slow, on four units with the paired max passes; marked slow, one unit
#: with the paired max passes and two units without them (EngineParams.pair_max)
SIZE_NAMES = ("u1c4", "u4g6", "ulx3s", "u4g6_p45", "u1c4_p33", "u1c4_keys", "u4g6_keys",
              "u1c4_pair", "u2g4_nopair", "u1c4_keys_p55")
SIZES = {name: SPEC_SIZES[name] for name in SIZE_NAMES}
#: sizes left to ``make test-slow``
SLOW = {"u4g6_p45", "u4g6_keys", "u1c4_pair", "u2g4_nopair"}
#: random jobs per size (ulx3s and u4g6_p45 repeat u1c4's and u4g6's control at another latency:
#: fewer) and the first seed of each size
JOB_SHARE = {"u1c4": 1.0, "u4g6": 1.0, "ulx3s": 0.4, "u4g6_p45": 0.4, "u1c4_p33": 0.3,
             "u1c4_keys": 0.6, "u4g6_keys": 0.6, "u1c4_pair": 0.4, "u2g4_nopair": 0.4,
             "u1c4_keys_p55": 0.4}
SEED0 = {"u1c4": 1000, "u4g6": 5000, "ulx3s": 13000, "u4g6_p45": 9000, "u1c4_p33": 11000,
         "u1c4_keys": 15000, "u4g6_keys": 17000, "u1c4_pair": 19000, "u2g4_nopair": 21000,
         "u1c4_keys_p55": 23000}
SIM = os.environ.get("SIM", "verilator")
JOBS_PER_SIZE = int(os.environ.get("SWATTN_JOBS_PER_SIZE", "110"))


@pytest.mark.parametrize("size", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s
                                  for s in sorted(SIZES)])
def test_random_jobs_bit_exact(size, tmp_path_factory):
    params = SIZES[size]
    seed = os.environ.get("SWATTN_JOB_SEED")
    seed0 = SEED0[size]
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
