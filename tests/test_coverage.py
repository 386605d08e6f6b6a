"""Functional coverage of the regression (``swattn.sim.coverage``), on job lists without
simulation: the generator's jobs hit every bin, and the report names a bin no passed job hit."""

from swattn.sim import coverage
from swattn.sim.jobs import regression_jobs
from swattn.sw.spec.engine_params import EngineParams

P = EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                 seq_width=10)


def _records(count=300, seed0=1000):
    return [dict(j, ok=True) for j in regression_jobs(P, count, seed0)]


def test_generator_hits_every_bin():
    cov = coverage.Coverage()
    cov.add_jobs(P, _records())
    assert cov.unhit() == [], cov.report()
    assert "UNHIT" not in cov.report()


def test_report_flags_an_unhit_bin():
    cov = coverage.Coverage()
    cov.add_jobs(P, [r for r in _records() if r.get("n") != 1])
    assert "n: 1" in cov.unhit()
    report = cov.report()
    assert any(line.strip().startswith("UNHIT") and "n: 1" in line for line in report.splitlines())
    assert "unhit bins: n: 1" in report


def test_failed_jobs_do_not_count():
    recs = _records()
    for r in recs:
        if r.get("expect") == "GLOBAL_DUP":
            r["ok"] = False
    cov = coverage.Coverage()
    cov.add_jobs(P, recs)
    assert cov.unhit() == ["outcome: error GLOBAL_DUP"]
    assert cov.failed == sum(r.get("expect") == "GLOBAL_DUP" for r in recs)


def test_bins_of_a_job():
    job = dict(n=20, left=3, right=0, dilation=2, globals=[0, 1, 19], idle=0.2, stall=0.6,
               kind="ok", ok=True)
    bins = coverage._bins_of_job(P, job)
    for b in ("n: several windows (> 2 x span)", "window shape: causal (right = 0)",
              "dilation vs radius: > 1 with a window", "globals: max_globals",
              "globals: at the first token", "globals: at the last token", "globals: adjacent",
              "backpressure: idle 0.2 / stall 0.6", "outcome: error NONE"):
        assert b in bins, (b, bins)
    assert "globals: every token global" not in bins


def test_generator_hits_the_paired_max_pass_bins():
    """On an engine of two units with up to two global groups, the generator's jobs fill both
    paired-max-pass bins, which only such engines have."""
    p2 = EngineParams(head_dim=64, lanes=256, max_radius=16, max_globals=4, max_dilation=4,
                      seq_width=9)
    assert p2.paired_max and p2.global_groups_max == 2
    paired = {"globals: paired max pass of two groups", "globals: paired max pass of a lone group"}
    assert paired <= set(coverage.all_bins(p2)) and not paired & set(coverage.all_bins(P))
    cov = coverage.Coverage()
    cov.add_jobs(p2, [dict(j, ok=True) for j in regression_jobs(p2, 300, 7000)])
    assert cov.unhit() == [], cov.report()
