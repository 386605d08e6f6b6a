"""Measured RTL cycles: the workloads under the Verilator testbench (slow: small n only)."""

from __future__ import annotations

import time

from ..spec.pattern import HybridPattern
from .workloads import Workload


def measure_rtl(wls: list[Workload], lanes: list[int], log=print) -> dict:
    """``{(name, lanes): {"cycles", "ok", ...}}`` from the Verilator testbench (slow: small n).

    Workloads that share an engine configuration run as one job list on one build.
    """
    from ...sim.runner import job_to_json, run_jobs
    from ..spec.numerics import SoftmaxConfig

    groups: dict = {}
    for w in wls:
        for lanes_ in lanes:
            groups.setdefault(w.params(lanes_), []).append(w)
    out = {}
    for p, group in groups.items():
        names = ", ".join(w.name for w in group)
        log(f"  rtl lanes={p.lanes} max_radius={p.max_radius} max_globals={p.max_globals}: "
            f"building and simulating {names} ...")
        jobs = []
        for w in group:
            pat = w.pattern()
            pat = HybridPattern(pat.n, pat.left, pat.right, pat.dilation, pat.globals_,
                                limits=p.limits())
            jobs.append(job_to_json(pat, SoftmaxConfig(47000, 24, 1), seed=1))
        t0 = time.perf_counter()
        try:
            results = run_jobs(p, jobs, name="bench")
        except Exception as exc:  # noqa: BLE001 - a failed simulation is reported, not fatal
            for w in group:
                out[(w.name, p.lanes)] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"    failed: {exc}")
            continue
        wall = time.perf_counter() - t0
        for w, res in zip(group, results):
            out[(w.name, p.lanes)] = {"cycles": res.get("cycles"), "ok": res.get("ok"),
                                      "mismatches": res.get("mismatches"),
                                      "wall_s": wall / len(group)}
            log(f"    {w.name}: {res.get('cycles')} cycles, ok={res.get('ok')}")
        log(f"    ({wall:.0f} s, build included)")
    return out
