"""Shared by the board simulations (``test_board_sim*.py``): the tiny board engine, job
scenarios for it and the checks of a run's results."""

import random


from swattn.sim.jobs import random_pattern, random_softmax
from swattn.sim.runner import job_to_json
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.pattern import HybridPattern

#: every link error scenario of sim/tb_board.py, in the order the board tests send them
LINK_ERRORS = ("corrupt_payload", "corrupt_header", "corrupt_crc_high",
               "corrupt_header_crc_high", "truncated", "unknown", "bad_addr", "bad_length",
               "refused", "silent")

PARAMS = EngineParams(head_dim=32, lanes=16, max_radius=8, max_globals=2, max_dilation=2,
                      seq_width=6)


def job(pattern, seed, cfg=None):
    cfg = cfg or random_softmax(random.Random(seed), PARAMS.head_dim)
    return dict(job_to_json(pattern, cfg, seed), kind="job")


def random_jobs(count: int, seed0: int, params: EngineParams = PARAMS) -> list[dict]:
    """Random patterns, the engine regression's generator (dilated windows with globals too)."""
    jobs = []
    for i in range(count):
        rng = random.Random(seed0 + i)
        jobs.append(job(random_pattern(rng, params), seed0 + i))
    return jobs


def fixed_jobs() -> list[dict]:
    L = PARAMS.limits()
    cfg = SoftmaxConfig.from_multiplier(4.0 / (128 * 128 * 32 ** 0.5 / 3), 2)
    return [
        job(HybridPattern(PARAMS.n_max, 8, 8, 1, (0, 40), limits=L), 11, cfg),  # full buffers
        job(HybridPattern(20, 3, 0, 1, (0,), limits=L), 12, cfg),  # causal + global
        job(HybridPattern(17, 2, 2, 2, (), limits=L), 13, cfg),  # dilated
        job(HybridPattern(22, 2, 2, 2, (3, 9), limits=L), 14, cfg),  # dilated, globals inside
        job(HybridPattern(1, 0, 0, 1, (), limits=L), 14, cfg),  # one token
    ]


def check(results, scenarios):
    assert len(results) == len(scenarios), f"only {len(results)} of {len(scenarios)} reported"
    bad = [r for r in results if not r["ok"]]
    assert not bad, "failed scenarios: " + "; ".join(str(r)[:600] for r in bad[:6])
    jobs = [r for r in results if r["kind"] == "job"]
    assert all(r["mismatches"] == 0 and r["cycles"] > 0 for r in jobs)
    return jobs


def check_busy_start(results):
    """A START (and a WRITE_CONFIG) sent while a job runs were each refused with BUSY, the job
    then finished bit-exact in as many cycles as alone (run_busy_start's ok)."""
    (busy,) = [r for r in results if r["kind"] == "busy_start"]
    assert busy["refused"].get("START") == "BUSY", busy
    assert set(busy["refused"].values()) == {"BUSY"}, busy
    assert busy["state_after"] == "BUSY" and busy["cycles"] == busy["cycles_alone"] > 0, busy
    assert busy["mismatches"] == 0, busy

