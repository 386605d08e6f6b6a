"""``swattn sim``: run jobs on the generated Verilog under cocotb and check them bit for bit.

One job from the pattern options, or ``--random K`` random jobs (the regression's generator, so a
failing seed can be re-run with ``--random 1 --seed S``). For each job it prints bit-exactness
against the golden model, measured cycles, the cycle model's prediction, ideal cycles
(useful MACs / lanes) and utilisation; ``--json FILE`` writes the same.
"""

from __future__ import annotations

import argparse
import sys
import time

HELP = "simulate jobs on the engine's Verilog (cocotb) and report bit-exactness and cycles"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..hw.generate import add_params_arguments

    add_params_arguments(p.add_argument_group("engine (elaboration parameters)"))
    g = p.add_argument_group("job")
    g.add_argument("--n", type=int, default=256, help="sequence length (default 256)")
    g.add_argument("--radius", type=int, help="window radius on both sides (default 16)")
    g.add_argument("--left", type=int, help="window radius to the left")
    g.add_argument("--right", type=int, help="window radius to the right (0: causal)")
    g.add_argument("--dilation", type=int, default=1)
    g.add_argument("--globals", dest="globals_list", metavar="I,J,...",
                   help="comma-separated global token indices")
    g.add_argument("--n-globals", type=int, help="K global tokens spread evenly over the sequence")
    g.add_argument("--out-shift", type=int, default=0, help="output scale shift 0..7")
    g.add_argument("--random", type=int, metavar="K",
                   help="run K random jobs (random patterns, idle input, backpressure) instead")
    g.add_argument("--seed", type=int, default=1, help="data seed (first seed with --random)")
    g.add_argument("--idle", type=float, default=0.0,
                   help="probability of an idle input cycle (default 0)")
    g.add_argument("--stall", type=float, default=0.0,
                   help="probability of a not-ready output cycle (default 0)")
    s = p.add_argument_group("simulation")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument("--waves", action="store_true", help="dump waveforms (FST/VCD) in the build folder")
    s.add_argument("--build-dir", default="build/sim", help="simulator build root")
    s.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def _pattern(args, params):
    from ..sw.cli import UserError
    from ..sw.golden_cli import parse_globals, window_args
    from ..sw.pattern import HybridPattern

    left, right = window_args(args, 16)
    if args.globals_list is not None:
        g = parse_globals(args.globals_list, args.n)
    else:
        k = args.n_globals or 0
        if not 0 <= k <= min(args.n, params.max_globals):
            raise UserError(f"--n-globals = {k} is out of range: allowed "
                            f"0..{min(args.n, params.max_globals)} (the engine's --max-globals)")
        g = tuple(sorted({(i * args.n) // max(k, 1) for i in range(k)}))
    # PatternError (a ValueError) names the field and the engine's limit
    return HybridPattern(args.n, left, right, args.dilation, g, limits=params.limits())


def _jobs(args, params):
    import random

    from ..sw import numerics as nx
    from ..sw.cli import UserError
    from ..sw.numerics import SoftmaxConfig
    from .jobs import job_from_seed, random_softmax
    from .runner import job_to_json

    if args.random is not None:
        if args.random < 1:
            raise UserError(f"--random = {args.random} is out of range: allowed 1..")
        return [job_from_seed(params, args.seed + i) for i in range(args.random)]
    shift_max = (1 << nx.OUT_SHIFT_WIDTH) - 1
    if not 0 <= args.out_shift <= shift_max:
        raise UserError(f"--out-shift = {args.out_shift} is out of range: allowed 0..{shift_max}")
    for name in ("idle", "stall"):
        if not 0.0 <= getattr(args, name) < 1.0:
            raise UserError(f"--{name} = {getattr(args, name)} is out of range: allowed [0, 1)")
    pattern = _pattern(args, params)
    cfg = random_softmax(random.Random(args.seed), params.head_dim)
    cfg = SoftmaxConfig(cfg.mult_mant, cfg.mult_shift, args.out_shift)
    return [job_to_json(pattern, cfg, args.seed, idle=args.idle, stall=args.stall)]


def compute(args) -> dict:
    from ..hw.generate import params_from_args
    from ..sw.cycles import predict_cycles
    from ..sw.pattern import HybridPattern
    from .runner import run_jobs

    params = params_from_args(args)
    jobs = _jobs(args, params)
    t0 = time.perf_counter()
    results = run_jobs(params, jobs, sim=args.sim, root=args.build_dir, waves=args.waves,
                       name="cli")
    elapsed = time.perf_counter() - t0
    rows = []
    for job, r in zip(jobs, results):
        row = {"seed": job["seed"], "n": job["n"], "left": job["left"], "right": job["right"],
               "dilation": job["dilation"], "globals": job["globals"], "idle": job["idle"],
               "stall": job["stall"], "bit_exact": bool(r["ok"]),
               "mismatches": r.get("mismatches"), "cycles": r.get("cycles"),
               "error_text": r.get("error_text")}
        pat = HybridPattern(job["n"], job["left"], job["right"], job["dilation"],
                            tuple(job["globals"]))
        ideal = 2 * params.head_dim * pat.pairs() / params.lanes
        row["ideal_cycles"] = ideal
        row["predicted_cycles"] = predict_cycles(params, pat)
        if r.get("cycles"):
            row["utilisation"] = ideal / r["cycles"]
            row["model_error"] = row["predicted_cycles"] / r["cycles"] - 1.0
        rows.append(row)
    return {"params": params.as_dict(), "simulator": args.sim, "wall_s": elapsed, "jobs": rows}


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    res = compute(args)
    t = Table(title=f"swattn sim ({res['simulator']}, {res['wall_s']:.1f} s)")
    for col in ("seed", "n", "window", "globals", "bit-exact", "cycles", "model", "ideal",
                "utilisation"):
        t.add_column(col, justify="right")
    for r in res["jobs"]:
        note = "" if r["idle"] == r["stall"] == 0 else f" (idle {r['idle']}, stall {r['stall']})"
        util = f"{100 * r['utilisation']:.1f}%{note}" if "utilisation" in r else "-"
        model = (f"{r['predicted_cycles']} ({100 * r['model_error']:+.2f}%)"
                 if "model_error" in r else str(r["predicted_cycles"]))
        t.add_row(str(r["seed"]), str(r["n"]), f"-{r['left']}..+{r['right']} x{r['dilation']}",
                  str(len(r["globals"])),
                  "yes" if r["bit_exact"] else f"NO ({r['mismatches']} mismatches)",
                  str(r["cycles"]), model, f"{r['ideal_cycles']:.0f}", util)
    Console(width=None if sys.stdout.isatty() else 140).print(t)
    if args.json:
        from ..sw.cli import write_json
        write_json(args.json, res)
    bad = [r for r in res["jobs"] if not r["bit_exact"]]
    for r in bad:
        print(f"seed {r['seed']} failed: {r['error_text'] or str(r['mismatches']) + ' mismatches'}"
              f"; re-run alone with --random 1 --seed {r['seed']}")
    return 1 if bad else 0
