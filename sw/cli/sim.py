"""``swattn sim``: run jobs on the generated Verilog under cocotb and check them bit for bit.

One job from the pattern options, or ``--random K`` random jobs (the regression's generator, so a
failing seed can be re-run with ``--random 1 --seed S``). For each job it prints bit-exactness
against the golden model, measured cycles, the cycle model's prediction, ideal cycles
(useful MACs / lanes) and utilisation (:func:`swattn.sim.runner.simulate`); ``--json FILE``
writes the same.
"""

from __future__ import annotations

import argparse
import sys

from ..spec import numerics as nx
from ..spec.errors import UserError
from .args import (CREATES_FOLDERS, KEYSET_FLAGS, add_engine_arguments, add_keyset_arguments,
                   add_length_argument, add_window_arguments, engine_params, given, integer,
                   keyset_pattern_from_args, number, output_dir, output_file, seed,
                   spread_globals)

#: the job options that ``--random`` replaces with its own draws
JOB_FLAGS = ("--n", "--radius", "--left", "--right", "--dilation", "--globals", "--n-globals",
             *KEYSET_FLAGS, "--out-shift", "--idle", "--stall")

HELP = "simulate jobs on the engine's Verilog (cocotb) and report bit-exactness and cycles"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_engine_arguments(p.add_argument_group("engine (elaboration parameters)"))
    g = p.add_argument_group("job")
    add_length_argument(g, 256)
    add_window_arguments(g, 16, "K global tokens spread evenly over the sequence")
    add_keyset_arguments(g, grid=False)
    g.add_argument("--out-shift", type=integer("--out-shift", 0, (1 << nx.OUT_SHIFT_WIDTH) - 1),
                   default=0, help="output scale shift 0..7")
    g.add_argument("--random", type=integer("--random", 1), metavar="K",
                   help="run K random jobs (random patterns, idle input, backpressure) instead; "
                        "the job options above are then left out")
    g.add_argument("--seed", type=seed(), default=1,
                   help="data seed, 0..2^32-1 (first seed with --random)")
    g.add_argument("--idle", type=number("--idle", 0.0, 1.0, hi_open=True), default=0.0,
                   help="probability of an idle input cycle, in [0, 1) (default 0)")
    g.add_argument("--stall", type=number("--stall", 0.0, 1.0, hi_open=True), default=0.0,
                   help="probability of a not-ready output cycle, in [0, 1) (default 0)")
    s = p.add_argument_group("simulation")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument("--waves", action="store_true", help="dump waveforms (FST/VCD) in the build folder")
    s.add_argument("--build-dir", default="build/sim",
                   help=f"simulator build root (default build/sim; {CREATES_FOLDERS})")
    s.add_argument("--json", metavar="FILE",
                   help=f"also write the results as JSON ({CREATES_FOLDERS})")


def _jobs(args, params):
    import random

    from ...sim.jobs import job_from_seed, random_softmax
    from ...sim.runner import job_to_json
    from ..spec.numerics import SoftmaxConfig

    if args.random is not None:
        clash = given(args, *JOB_FLAGS)
        if clash:
            raise UserError(f"--random {args.random} draws its own jobs, so {' '.join(clash)} "
                            "would be ignored: leave " + ("it" if len(clash) == 1 else "them")
                            + " out (or --random)")
        return [job_from_seed(params, args.seed + i) for i in range(args.random)]
    # a UserError names the option and the engine's limit; bands or columns give an EngineForm
    pattern = keyset_pattern_from_args(args, 16, spread_globals, limits=params.limits(),
                                       grid=params.grid)
    cfg = random_softmax(random.Random(args.seed), params.head_dim)
    cfg = SoftmaxConfig(cfg.mult_mant, cfg.mult_shift, args.out_shift)
    return [job_to_json(pattern, cfg, args.seed, idle=args.idle, stall=args.stall)]


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ...sim.runner import simulate

    params = engine_params(args, command="sim")
    jobs = _jobs(args, params)
    output_dir("--build-dir", args.build_dir)
    if args.json:
        output_file("--json", args.json)
    res = simulate(params, jobs, sim=args.sim, root=args.build_dir,
                   waves=args.waves, name="cli")
    t = Table(title=f"swattn sim ({res['simulator']}, {res['wall_s']:.1f} s)")
    for col in ("seed", "n", "window", "globals", "bit-exact", "cycles", "model", "ideal",
                "utilisation"):
        t.add_column(col, justify="right")
    for job, r in zip(jobs, res["jobs"]):
        note = "" if r["idle"] == r["stall"] == 0 else f" (idle {r['idle']}, stall {r['stall']})"
        # the bands beside the window (window steps) and the key-only columns
        more = "".join(f" {s:+d}:{c}" for s, c in job.get("bands", ()))
        more += f" +{len(job['columns'])} col." if job.get("columns") else ""
        more += f" grid {job['grid'][0]}:{job['grid'][1]}" if job.get("grid") else ""
        util = f"{100 * r['utilisation']:.1f}%{note}" if "utilisation" in r else "-"
        model = (f"{r['predicted_cycles']} ({100 * r['model_error']:+.2f}%)"
                 if "model_error" in r else str(r["predicted_cycles"]))
        t.add_row(str(r["seed"]), str(r["n"]),
                  f"-{r['left']}..+{r['right']} x{r['dilation']}{more}",
                  str(len(r["globals"])),
                  "yes" if r["bit_exact"] else f"NO ({r['mismatches']} mismatches)",
                  str(r["cycles"]), model, f"{r['ideal_cycles']:.0f}", util)
    Console(width=None if sys.stdout.isatty() else 140).print(t)
    if args.json:
        from ..report import write_json
        write_json(args.json, res)
    bad = [r for r in res["jobs"] if not r["bit_exact"]]
    for r in bad:
        print(f"seed {r['seed']} failed: {r['error_text'] or str(r['mismatches']) + ' mismatches'}"
              f"; re-run alone with --random 1 --seed {r['seed']}")
    return 1 if bad else 0
