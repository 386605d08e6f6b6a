"""``swattn build``: synthesise, place and route a board's bitstream with the YoWASP tools
(:mod:`swattn.fpga.build`), print the utilisation table and the Fmax verdict; ``--seeds`` sweeps
nextpnr's placement seeds."""

import json
import os
import sys
from pathlib import Path

from ...fpga.boards import BOARDS, get_board
from ..cluster import SCHEDULER_HELP
from ..spec.errors import UserError
from .args import CREATES_FOLDERS, given, integer, number, output_dir, output_file
from .args import board as board_name

HELP = "build a board's bitstream (Yosys + nextpnr via YoWASP), with utilisation and Fmax"


def add_arguments(p):
    p.add_argument("--board", type=board_name(), help=f"one of: {', '.join(BOARDS)}")
    p.add_argument("--list", action="store_true", help="list the boards and exit")
    p.add_argument("--json", metavar="FILE",
                   help=f"also write the result table as JSON ({CREATES_FOLDERS})")
    p.add_argument("--out", default="build",
                   help=f"build folder (default build/; {CREATES_FOLDERS})")
    p.add_argument("--synth-only", action="store_true",
                   help="stop after synthesis (and, on the iCE40, nextpnr's packer): "
                        "utilisation, no Fmax")
    p.add_argument("--seed", type=integer("--seed", 1, 10_000),
                   help="nextpnr placement seed, 1..10000 as in --seeds (default: the board's, "
                        "`swattn build --list`)")
    p.add_argument("--seeds", metavar="LIST",
                   help="synthesise once, then place and route at each of these seeds side by "
                        "side (e.g. 1-8) and tabulate Fmax and late nets per seed")
    p.add_argument("--jobs", type=integer("--jobs", 1), default=os.cpu_count() or 1,
                   help="with --seeds: local worker processes, each running one place and "
                        "route at a time (default: the cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --seeds: " + SCHEDULER_HELP)
    p.add_argument("--record", action="store_true",
                   help="with --seeds: record the best seed as the board's (fpga/seeds.json), "
                        "with its Fmax and the netlist's fingerprint")
    p.add_argument("--seed-minutes", type=number("--seed-minutes", 0.0, lo_open=True,
                                                  unit=" minutes"), metavar="MIN",
                   help="with --seeds: stop a seed's place and route after this many minutes "
                        "(router2 may not converge at some seeds)")
    p.add_argument("--clock", type=number("--clock", 0.0, lo_open=True, unit=" MHz"),
                   metavar="MHZ",
                   help="engine clock to build for instead of the board's target (for a design "
                        "that misses its target: a bitstream at a clock it meets)")


def run(args) -> int:
    from ...fpga.build import RESULT_FILE, build, plot_utilisation, with_clock

    if args.list:
        if args.board:
            raise UserError("--list lists every board: leave out --board")
        list_boards()
        return 0
    if args.record and not args.seeds:
        raise UserError("--record records the best seed of a sweep: give --seeds too")
    sweep_only = given(args, "--jobs", "--seed-minutes", "--scheduler")
    if sweep_only and not args.seeds:
        one = len(sweep_only) == 1
        raise UserError(f"{' and '.join(sweep_only)} {'goes' if one else 'go'} with --seeds (a "
                        f"seed sweep): give --seeds or leave {'it' if one else 'them'} out")
    if not args.board:
        raise UserError(f"--board is required: one of {', '.join(BOARDS)} (or --list)")
    board = get_board(args.board)
    try:
        with_clock(board, args.clock)
    except ValueError as e:
        raise UserError(str(e)) from None
    output_dir("--out", args.out)
    if args.json:
        output_file("--json", args.json)
    if args.seeds:
        return run_seeds(board, args)
    res = build(board, Path(args.out), synth_only=args.synth_only, seed=args.seed,
                clock_mhz=args.clock)
    if res.get("seed_note"):
        print(f"  {res['seed_note']}")
    fmax = res.get("fmax_mhz")
    clock_hz = res["clock_mhz"] * 1e6
    print_table(board, res.get("utilisation", []), fmax,
                None if fmax is None else fmax >= res["clock_mhz"], clock_hz=clock_hz,
                crit=res.get("critical_path"))
    if res.get("bitstream") and res["ok"]:
        print(f"  bitstream: {res['bitstream']} ({res['seconds']} s)")
    png = plot_utilisation(board, res, Path(res["build_dir"]) / "utilisation.png")
    if png:
        res["plot"] = str(png)
        print(f"  utilisation plot: {png}")
    (Path(res["build_dir"]) / RESULT_FILE).write_text(json.dumps(res, indent=2) + "\n")
    # the last build of each board, where `swattn bench` looks for its Fmax
    last = Path(args.out) / "synth" / f"{board.name}.json"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text(json.dumps(res, indent=2) + "\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    if not res["ok"]:
        print(f"swattn: error: build of {board.name} failed: {res['error']}", file=sys.stderr)
        return 1
    return 0


def seed_entry(best: dict, swept: list[int], clock_mhz: float) -> dict:
    """The board table's record (``fpga/seeds.json``) of a sweep's best seed row ``best``
    (:func:`swattn.fpga.build.place_seed`) among the seeds ``swept``."""
    from ..report import checkout_commit
    return {"seed": best["seed"], "fmax_mhz": round(best["fmax_mhz"], 2),
            "late_nets": best["late_nets"], "meets": bool(best.get("meets")),
            "clock_mhz": clock_mhz, "seeds_swept": sorted(swept),
            "netlist": best["netlist"], "commit": checkout_commit()}


def check_record_file() -> None:
    """``--record``'s write test of the board table's record, before any place and route."""
    from ...fpga.boards import SEEDS_FILE
    try:
        output_file("--record", SEEDS_FILE)
    except UserError:
        raise UserError(f"--record: cannot write the board table's record {SEEDS_FILE}: "
                        f"allowed in a checkout whose fpga/seeds.json can be written") from None


def run_seeds(board, args) -> int:
    """``swattn build --seeds``: the sweep's table, its JSON, and with ``--record`` the best
    seed written to the board table's record (``fpga/seeds.json``)."""
    from ...fpga.boards import SEEDS_FILE, record_seed
    from ...fpga.build import build_seeds, parse_seeds

    if args.seed is not None or args.synth_only:
        raise UserError("--seeds builds at several seeds: leave out --seed and --synth-only")
    if args.record and args.clock is not None:
        raise UserError(f"--record with --clock {args.clock:g}: the board table's seed is for "
                        f"its target clock ({board.clock_hz / 1e6:g} MHz); leave out --clock")
    if args.record:  # before the sweep's minutes of place and route: a real write test
        check_record_file()
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: at least 1")
    if args.scheduler is not None and given(args, "--jobs"):
        raise UserError("--jobs sets the local worker processes; with --scheduler the "
                        "cluster's workers run the jobs: leave out --jobs")
    if args.seed_minutes is not None and args.seed_minutes <= 0:
        raise UserError(f"--seed-minutes {args.seed_minutes:g}: must be above 0")
    rows = build_seeds(board, Path(args.out), seeds, min(args.jobs, len(seeds)), args.clock,
                       None if args.seed_minutes is None else 60 * args.seed_minutes,
                       scheduler=args.scheduler)
    clock = board.clock_hz / 1e6 if args.clock is None else args.clock
    print(f"\n  {board.name}: place and route per seed (clock {clock:g} MHz)")
    print(f"  {'seed':>6} {'Fmax MHz':>9} {'late nets':>10} {'meets':>6} {'seconds':>8}")
    for r in rows:
        f = r.get("fmax_mhz")
        print(f"  {r['seed']:>6} {f'{f:.1f}' if f else '-':>9} {r.get('late_nets', '-'):>10} "
              f"{('yes' if r.get('meets') else 'no'):>6} {r['seconds']:>8.0f}")
    best = rows[0] if rows and rows[0].get("fmax_mhz") else None
    res = {"board": board.name, "clock_mhz": clock, "seeds": rows,
           "best_seed": best["seed"] if best else None,
           "board_table_seed": board.seed}
    if best:
        print(f"  best: seed {best['seed']} ({best['fmax_mhz']:.1f} MHz"
              f"{', meets' if best.get('meets') else ', misses'}); the board table has seed "
              f"{board.seed} (fpga/seeds.json); `swattn build --board {board.name} "
              f"--seed {best['seed']}` writes its bitstream")
        if args.record:
            record_seed(board.name, seed_entry(best, [r["seed"] for r in rows], clock))
            print(f"  recorded: seed {best['seed']} is {board.name}'s seed in {SEEDS_FILE}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0 if best and best.get("meets") else 1


def print_table(board, rows: list[dict], fmax: float | None, ok_timing: bool | None,
                file=sys.stdout, clock_hz: float | None = None, crit: dict | None = None):
    """The utilisation table and the Fmax verdict: against the board's target, or against
    ``clock_hz`` when the build was asked for another clock (``--clock``)."""
    print(f"\n{board.name}: {board.platform.split(':')[1]}", file=file)
    print(f"  {'resource':<24}{'used':>9}{'available':>11}{'use':>8}  from", file=file)
    for r in rows:
        a = r["available"]
        pct = f"{100 * r['used'] / a:6.1f}%" if a else "      -"
        print(f"  {r['resource']:<24}{r['used']:>9}{a if a is not None else '-':>11}{pct:>8}"
              f"  {r['source']}", file=file)
    tgt = board.clock_hz / 1e6
    what = f"{tgt:g} MHz target"
    if clock_hz is not None and clock_hz != board.clock_hz:
        what = f"{clock_hz / 1e6:g} MHz clock asked with --clock (the board's target: {tgt:g} MHz)"
    if fmax is not None:
        verdict = "meets" if ok_timing else "MISSES"
        print(f"  Fmax {fmax:.1f} MHz {verdict} the {what}", file=file)
        if crit:
            print(f"  critical path {crit['ns']:.1f} ns ({crit['logic_ns']:.1f} logic in "
                  f"{crit['levels']} cell{'s' * (crit['levels'] != 1)}, {crit['routing_ns']:.1f} routing): {crit['from']} -> "
                  f"{crit['to']}" + (f" ({', '.join(crit['sources'])})" if crit["sources"] else ""),
                  file=file)
    else:
        print(f"  Fmax: not placed and routed ({what})", file=file)


def list_boards(file=sys.stdout):
    print(f"{'board':<12}{'device':<20}{'engine':<8}{'lanes':>6}{'head':>6}{'n max':>7}"
          f"{'clock':>9}{'baud':>10}{'seed':>6}  why", file=file)
    for b in BOARDS.values():
        p = b.params
        dev = b.platform.split(":")[1].replace("_Platform", "").replace("Platform", "")
        print(f"{b.name:<12}{dev:<20}{b.engine:<8}{p.lanes:>6}{p.head_dim:>6}{p.n_max:>7}"
              f"{b.clock_hz / 1e6:>6g} MHz{b.baud:>10}{b.seed:>6}  {b.why}", file=file)
