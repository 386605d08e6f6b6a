"""``swattn explore``: a board's engine at other lane counts and pipeline stages, each candidate
synthesised, placed and routed as jobs of a Dask cluster (:mod:`swattn.fpga.explore`), with a
table of resources, Fmax and the useful MAC rate against the multiplier-bound one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ...fpga.boards import BOARDS
from ..cluster import SCHEDULER_HELP
from ..spec.errors import UserError
from .args import (CREATES_FOLDERS, ENGINE_FLAGS, given, integer, named, number, output_dir,
                   output_file)
from .args import board as board_name

HELP = ("synthesise, place and route a board's engine at several lane counts and pipeline "
        "stages: resources, Fmax, useful GMAC/s against the multiplier bound")


def lanes_type(text: str) -> int:
    """``type=`` for ``--lanes``: the stream engine's, a power of two 8..4096."""
    value = integer("--lanes", allowed="a power of two, 8..4096")(text)
    if not (8 <= value <= 4096 and value & (value - 1) == 0):
        raise UserError(f"--lanes = {value} is out of range: allowed a power of two, 8..4096 "
                        "(the stream engine)")
    return value


def add_arguments(p):
    p.add_argument("--board", type=board_name(), help=f"one of: {', '.join(BOARDS)}")
    p.add_argument("--lanes", type=lanes_type, nargs="+", metavar="L",
                   help="lane counts to try, powers of two 8..4096 (default: the board's)")
    p.add_argument("--dot-pipeline", type=integer("--dot-pipeline", allowed="0..5"), nargs="+",
                   metavar="K", help="Q.K pipeline stages to try, 0..5 (default: the board's)")
    p.add_argument("--pv-pipeline", type=integer("--pv-pipeline", allowed="0..5"), nargs="+",
                   metavar="K", help="softmax and P.V pipeline stages to try, 0..5 (default: "
                                     "the board's)")
    p.add_argument("--pair-max", choices=("on", "off"), nargs="+", metavar="on|off",
                   help="the global rows' max passes two groups at a time (on) or one per group "
                        "(off) to try (default: the engine's, on with more than one unit; off "
                        "spares the P.V multipliers' operand multiplexers and an adder tree)")
    p.add_argument("--max-bands", type=integer("--max-bands", allowed="1..16"), nargs="+",
                   metavar="B", help="bands of keys per job to try, the window counting as one, "
                                     "1..16 (default: the board's)")
    p.add_argument("--max-columns", type=integer("--max-columns", allowed="0..32"), nargs="+",
                   metavar="C", help="key-only columns per job to try, 0..32 (default: the "
                                     "board's)")
    p.add_argument("--seeds", metavar="LIST",
                   help="nextpnr placement seeds per candidate, e.g. 1-2 or 1,4 (default: the "
                        "board's seed); the best is the candidate's")
    p.add_argument("--synth-only", action="store_true",
                   help="stop after synthesis: resources, no Fmax (the rate at the board's clock)")
    p.add_argument("--seed-minutes", type=number("--seed-minutes", 0.0, lo_open=True,
                                                  unit=" minutes"), metavar="MIN",
                   help="stop a candidate's place and route at a seed after this many minutes")
    p.add_argument("--out", metavar="DIR",
                   help=f"build folder, a folder per candidate (default build/explore/<board>; "
                        f"{CREATES_FOLDERS})")
    p.add_argument("--json", metavar="FILE",
                   help=f"also write the table as JSON, with the commit ({CREATES_FOLDERS})")
    p.add_argument("--jobs", type=integer("--jobs", 1), default=os.cpu_count() or 1,
                   help="local worker processes, each running one synthesis or place and route "
                        "at a time (default: the cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    p.add_argument("--record", action="store_true",
                   help="record the winner's best seed as the board's (fpga/seeds.json); the "
                        "winner (the highest rate that meets the clock) must be the board "
                        "table's engine")


def _candidates(board, args):
    from ...fpga.explore import candidates

    try:
        pair = None if args.pair_max is None else [x == "on" for x in args.pair_max]
        return candidates(board, args.lanes, args.dot_pipeline, args.pv_pipeline, pair,
                          args.max_bands, args.max_columns)
    except ValueError as exc:  # EngineParams' check of a field: named by its option
        raise named(exc, ENGINE_FLAGS) from None


def run(args) -> int:
    from ...fpga.boards import get_board
    from ...fpga.build import parse_seeds

    if not args.board:
        raise UserError(f"--board is required: one of {', '.join(BOARDS)}")
    board = get_board(args.board)
    cands = _candidates(board, args)
    if args.synth_only:
        clash = [f for f in ("--seeds", "--seed-minutes") if getattr(
            args, f[2:].replace("-", "_")) is not None]
        if clash:
            raise UserError(f"{' and '.join(clash)} place and route: leave "
                            f"{'it' if len(clash) == 1 else 'them'} out with --synth-only")
    seeds = None
    if args.seeds is not None:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as e:
            raise UserError(str(e)) from None
    if args.scheduler is not None and given(args, "--jobs"):
        raise UserError("--jobs sets the local worker processes; with --scheduler the "
                        "cluster's workers run the jobs: leave out --jobs")
    if args.record:
        if args.synth_only:
            raise UserError("--record records a placed seed: leave out --synth-only")
        from .build import check_record_file
        check_record_file()  # (before the minutes of place and route)
    out = Path(args.out or Path("build") / "explore" / board.name)
    output_dir("--out", out)
    if args.json:
        output_file("--json", args.json)
    from ...fpga.explore import explore

    res = explore(board, cands, seeds, out, synth_only=args.synth_only,
                  jobs=None if args.scheduler else args.jobs, scheduler=args.scheduler,
                  limit_s=None if args.seed_minutes is None else 60 * args.seed_minutes,
                  log=lambda line: print(line, file=sys.stderr, flush=True))
    print_table(res)
    if args.json:
        from ..report import write_json
        write_json(args.json, res)
        print(f"  JSON: {args.json}")
    if args.record:
        record_winner(board, res)
    return 0 if any(r["fits"] for r in res["candidates"]) else 1


def record_winner(board, res: dict) -> None:
    """``--record``: the winner's best seed as ``board``'s record, when the winner is the
    board table's engine; otherwise an error naming the winner (nothing is written)."""
    from ...fpga.boards import SEEDS_FILE, record_seed
    from ...fpga.explore import winner
    from .build import seed_entry

    best = winner(res, board.requires)
    if best is None:
        need = ", ".join(f"{k} >= {v}" for k, v in board.requires.items())
        raise UserError(f"--record: no candidate meets {board.name}'s {res['target_mhz']:g} MHz "
                        f"clock{' with ' + need if need else ''}; nothing recorded")
    if best["params"] != board.params.as_dict():
        diff = ", ".join(f"{k} {v}" for k, v in best["params"].items()
                         if board.params.as_dict().get(k) != v)
        raise UserError(f"--record: the winner {best['candidate']} ({diff}) is not "
                        f"{board.name}'s engine in the board table; make it the board's engine "
                        f"and run the same command again (its placements are kept, "
                        f"`swattn.fpga.pnr_cache`); nothing recorded")
    row = best["seeds"][0]
    record_seed(board.name, seed_entry(row, [s["seed"] for s in best["seeds"]],
                                       res["target_mhz"]))
    print(f"  recorded: seed {row['seed']} of {best['candidate']} is {board.name}'s seed in "
          f"{SEEDS_FILE}")


def print_table(res: dict, file=sys.stdout) -> None:
    """The candidates as a rich table, then the reasons of those that do not fit."""
    from rich.console import Console
    from rich.table import Table

    h = res["head"]
    t = Table(title=f"swattn explore {res['board']} ({res['device']}, {res['target_mhz']:g} "
                    f"MHz; {h['name']}: radius {h['radius']}, {h['globals']} globals, d "
                    f"{h['head_dim']}) at {res['commit']}")
    for col in ("candidate", "LUT", "FF", "DSP", "BRAM", "Fmax MHz (seed)", "late nets",
                "meets", "GMAC/s (MHz)", "peak GMAC/s", "of peak", "note"):
        t.add_column(col, justify="left" if col in ("candidate", "note") else "right",
                     no_wrap=col != "note")
    for r in res["candidates"]:
        res_cols = []
        for key in ("LUT", "FF", "DSP", "BRAM"):
            u = r["resources"].get(key)
            res_cols.append(f"{u['used']:,} / {u['available']:,}" if u and u["available"]
                            else (f"{u['used']:,}" if u else "-"))
        rate = r["rate"]
        if not r["fits"]:
            why = "does not fit" if "does not fit" in r["reason"] else "not built"
            t.add_row(r["candidate"], *res_cols, "-", "-", "-", "-", "-", "-", f"{why} (below)")
            continue
        f = r["fmax_mhz"]
        t.add_row(r["candidate"], *res_cols,
                  f"{f:.1f} ({r['best_seed']})" if f else "-",
                  "-" if r["late_nets"] is None else str(r["late_nets"]),
                  "-" if r["meets"] is None else ("yes" if r["meets"] else "NO"),
                  f"{rate['gmac_s']:.2f} ({rate['mhz']:g})", f"{rate['peak_gmac_s']:.2f}",
                  f"{rate['fraction_of_peak']:.1%}",
                  "" if f else "synthesis only")
    Console(file=file, width=None if file.isatty() else 200).print(t)
    for r in res["candidates"]:
        if not r["fits"]:
            print(f"  {r['candidate']}: {r['reason']}", file=file)
    if res["synth_only"]:
        print("  (--synth-only: Yosys's counts, and the rates at the board's clock)", file=file)
