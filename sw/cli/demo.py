"""``swattn demo``: real text through a sparsity predictor, the engine's Verilog and cocotb, and the
golden model (:func:`swattn.sw.demo.run_demo`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..demo import (DEFAULT_BUDGET, DEFAULT_MAX_BANDS, DEFAULT_MAX_COLUMNS, DEFAULT_PREDICTOR,
                    DEFAULT_TOKENS)
from ..spec.errors import UserError
from ..texts import MAX_POSITIONS, MIN_TOKENS
from .args import (CREATES_FOLDERS, given, integer, named, number, output_dir, output_file,
                   read_text, stream_lanes_type)

HELP = "run real text through a predictor, the engine's Verilog (cocotb) and the golden model"


def add_arguments(p):
    p.add_argument("--text", metavar="FILE",
                   help="UTF-8 text file to run instead of the built-in text (at most 512 tokens)")
    p.add_argument("--tokens", type=integer("--tokens", MIN_TOKENS, MAX_POSITIONS), default=DEFAULT_TOKENS,
                   metavar="T", help=f"length of the built-in text in tokens, 128..512 (default "
                                     f"{DEFAULT_TOKENS}; not with --text)")
    p.add_argument("--predictor", metavar="NAME",
                   help="predictor (default: the best of the `swattn eval` results in the "
                        "repository's build/eval.json, else docs/eval.json, whatever the current "
                        f"folder; else {DEFAULT_PREDICTOR})")
    p.add_argument("--budget", type=number("--budget", 1.0, unit=" keys per query"),
                   default=DEFAULT_BUDGET, metavar="K",
                   help=f"keys per query, at least 1 (default {DEFAULT_BUDGET})")
    p.add_argument("--layer", type=integer("--layer", 0, 5), default=0,
                   help="layer to simulate, 0..5 (default 0)")
    p.add_argument("--head", type=integer("--head", 0, 11), action="append", metavar="H",
                   help="head to simulate, 0..11 (repeatable; default all 12)")
    p.add_argument("--lanes", type=stream_lanes_type("demo"), default=64,
                   help="engine MAC lanes, a power of two 8..4096 (default 64)")
    p.add_argument("--max-bands", type=integer("--max-bands", 1, 16,
                                               "1..16 (the window counts as one)"),
                   default=DEFAULT_MAX_BANDS, metavar="B",
                   help=f"the engine's bands of keys per job, the window counting as one, 1..16 "
                        f"(default {DEFAULT_MAX_BANDS}; 1: the window alone)")
    p.add_argument("--max-columns", type=integer("--max-columns", 0, 32),
                   default=DEFAULT_MAX_COLUMNS, metavar="C",
                   help=f"the engine's key-only columns per job, 0..32 (default "
                        f"{DEFAULT_MAX_COLUMNS})")
    p.add_argument("--keyset-head", type=integer("--keyset-head", 0, 11), metavar="H",
                   help="head of --layer mapped with bands beside the window and key-only "
                        "columns and simulated besides, 0..11 (default: the one where they "
                        "gain the most coverage of the predicted pairs over window and globals; "
                        "needs --max-bands 2 or more or --max-columns 1 or more)")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--waves", action="store_true", help="write waveforms of the simulation")
    p.add_argument("--out", default="build/demo",
                   help=f"output folder (default build/demo; {CREATES_FOLDERS})")
    p.add_argument("--json", metavar="FILE",
                   help=f"also write the report as JSON ({CREATES_FOLDERS})")


def _text(args) -> str:
    from .. import texts

    if args.text is not None:
        if given(args, "--tokens"):
            raise UserError(f"--tokens {args.tokens} sets the length of the built-in text, "
                            f"which --text replaces: leave out --tokens")
        text = read_text("--text", args.text)
        from ..minilm import tokenize
        try:
            tokenize(text)
        except ValueError as exc:  # ModelError: too many tokens (or no model to count them)
            raise UserError(f"--text = {args.text!r}: {exc}") from None
        return text
    return texts.evaluation_texts(1, args.tokens)[0]


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ...sim.runner import check_simulator
    from ..demo import engine_params, has_keyset, run_demo

    con = Console(width=None if sys.stdout.isatty() else 140)
    t_start = time.perf_counter()
    try:
        params = engine_params(args.lanes, args.max_bands, args.max_columns)
    except ValueError as exc:
        raise named(exc, {"lanes": "--lanes", "max_bands": "--max-bands",
                          "max_columns": "--max-columns"}) from None
    if args.keyset_head is not None and not has_keyset(params):
        raise UserError(f"--keyset-head {args.keyset_head} needs an engine with bands or "
                        f"key-only columns: allowed with --max-bands 2 or more or --max-columns 1 "
                        f"or more (given --max-bands {args.max_bands}, --max-columns "
                        f"{args.max_columns})")
    if args.predictor is not None:
        from ..predictors.base import registry
        if args.predictor not in registry():
            raise UserError(f"--predictor = {args.predictor!r} is an unknown predictor: allowed "
                            f"{', '.join(registry())}")
    text = _text(args)
    out = output_dir("--out", args.out)
    if args.json:
        output_file("--json", args.json)
    heads = sorted(set(args.head or range(12)))  # (--layer, --head, --budget: checked as parsed)
    check_simulator(args.sim)  # before the long work: a missing simulator is one line at once

    def step(msg):
        con.print(f"[bold cyan]>[/] {msg} [dim]({time.perf_counter() - t_start:.0f} s)[/]")

    report = run_demo(text, args.predictor, args.budget, args.layer, heads, params,
                      args.sim, out, waves=args.waves, step=step, keyset_head=args.keyset_head)
    rows = report["heads"] + ([report["keyset"]] if report["keyset"] else [])
    ks = report["keyset"]
    t = Table(title=f"swattn demo: layer {args.layer}, {report['predictor']}, "
                    f"n = {report['text_tokens']}",
              caption=None if ks is None else
              f"{ks['head']}*: head {ks['head']} with bands beside the window (start:count in "
              f"window steps) and key-only columns, simulated besides")
    for col in ("head", "window (+ bands, columns)", "dil", "globals (tokens)", "sparsity",
                "cycles", "util.", "bit-exact"):
        t.add_column(col, justify="right" if col not in ("globals (tokens)",) else "left")
    for r in rows:
        gl = ", ".join(f"{g} {s}" for g, s in zip(r["globals"], r["global_tokens"])) or "-"
        win = f"-{r['left']}..+{r['right']}"  # and bands (window steps), key-only columns
        win += "".join(f" {s:+d}:{c}" for s, c in r.get("bands", []))
        win += f" +{len(r['columns'])} col." if r.get("columns") else ""
        t.add_row(f"{r['head']}*" if r is ks else str(r["head"]), win, str(r["dilation"]), gl,
                  f"{100 * r['sparsity']:.1f}%", str(r["cycles"]),
                  f"{100 * r['utilisation']:.1f}%" if r["utilisation"] else "-",
                  "[green]yes[/]" if r["bit_exact"] else "[red]NO[/]")
    con.print(t)
    for line in report["summary"]:  # the predictor's source, where the cycles go, the key-set head
        con.print(line, markup=False, soft_wrap=True)
    n_exact = sum(r["bit_exact"] for r in rows)
    elapsed = time.perf_counter() - t_start
    with_ks = "" if report["embedding_cosine_keyset"] is None else (
        f" (with bands and key-only columns wherever the mapper finds them in every head: "
        f"{report['embedding_cosine_keyset']:.4f})")
    con.print(f"bit-exact jobs: {n_exact}/{len(rows)}; sentence-embedding cosine, int8 engine "
              f"patterns (window and globals) in all 6 layers vs dense float: "
              f"[bold]{report['embedding_cosine']:.4f}[/]{with_ks}")
    if args.json:
        from ..report import write_json
        write_json(args.json, report)
    vpath = Path(report["verilog"])
    con.print(f"\nVerilog: {vpath} (+ {vpath.with_suffix('.json').name}); report: "
              f"{out / 'report.json'}; picture: {report['picture']}")
    if args.waves:
        con.print(f"waveforms: {out / 'sim'} (the build folder of this engine)")
    con.print(f"done in {elapsed:.0f} s. Next: `swattn build --board icebreaker` to put the "
              "engine on a board, `swattn eval` to compare every predictor.")
    return 0 if n_exact == len(rows) else 1
