"""Build time and simulation speed of the engine's Verilator model at several g++ optimisation
levels of its per-cycle code (``OPT_FAST``), the choice behind
``swattn.sim.runner.OPT_FAST``.

Each level builds the same engine size from scratch in its own folder (no compiler cache, so
that the build times compare), then runs the same random jobs on it; prints a table and,
with ``--json``, writes the figures.

    python bench/verilator_flags.py [--size u4g6] [--levels Os O1 O0] [--jobs 40] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def measure(size: str, level: str, jobs: int, root: str) -> dict:
    from swattn.sim import runner
    from swattn.sim.jobs import regression_jobs
    from swattn.sw.spec.sizes import SIZES

    params = SIZES[size]
    runner.OPT_FAST = level
    started = time.perf_counter()
    runner.build(params, "verilator", root=root)
    built = time.perf_counter() - started
    work = regression_jobs(params, jobs, 5000)
    started = time.perf_counter()
    results = runner.run_jobs(params, work, root=root)
    ran = time.perf_counter() - started
    return {"size": size, "opt_fast": level, "build_s": round(built, 1),
            "sim_s": round(ran, 1), "jobs": len(results),
            "bit_exact": sum(r["ok"] for r in results)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="u4g6", help="an entry of swattn.sw.spec.sizes.SIZES")
    ap.add_argument("--levels", nargs="+", default=["Os", "O1", "O0"],
                    help="g++ optimisation levels for OPT_FAST (without the dash), one build each")
    ap.add_argument("--jobs", type=int, default=40, help="random jobs run on each build")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    from swattn.sw.spec.sizes import SIZES
    if args.size not in SIZES:
        ap.error(f"--size {args.size!r} is not a size: allowed {', '.join(SIZES)}")
    os.environ["SWATTN_CCACHE"] = "0"  # every build compiles everything
    rows = []
    for level in args.levels:
        level = "-" + level.lstrip("-")
        with tempfile.TemporaryDirectory(prefix="swattn-flags-") as root:
            rows.append(measure(args.size, level, args.jobs, root))
        r = rows[-1]
        print(f"OPT_FAST={r['opt_fast']:<5} build {r['build_s']:6.1f} s   "
              f"{r['jobs']} jobs in {r['sim_s']:5.1f} s   bit-exact {r['bit_exact']}/{r['jobs']}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cores": os.cpu_count(), "rows": rows}, f, indent=1)
    return 0 if all(r["bit_exact"] == r["jobs"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
