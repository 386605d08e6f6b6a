"""``swattn demo``: real text through a sparsity predictor, the engine's Verilog and cocotb, and the
golden model (:func:`swattn.sw.demo.run_demo`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..demo import DEFAULT_BUDGET, DEFAULT_PREDICTOR, DEFAULT_TOKENS
from ..spec.errors import UserError

HELP = "run real text through a predictor, the engine's Verilog (cocotb) and the golden model"


def add_arguments(p):
    p.add_argument("--text", metavar="FILE", help="text file to run (at most 512 tokens)")
    p.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, metavar="T",
                   help=f"length of the built-in text in tokens, 128..512 (default "
                        f"{DEFAULT_TOKENS})")
    p.add_argument("--predictor", metavar="NAME",
                   help="predictor (default: the best of the last `swattn eval`, else "
                        f"{DEFAULT_PREDICTOR})")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET, metavar="K",
                   help=f"keys per query (default {DEFAULT_BUDGET})")
    p.add_argument("--layer", type=int, default=0, help="layer to simulate, 0..5 (default 0)")
    p.add_argument("--head", type=int, action="append", metavar="H",
                   help="head to simulate, 0..11 (repeatable; default all 12)")
    p.add_argument("--lanes", type=int, default=64, help="engine MAC lanes (default 64)")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--waves", action="store_true", help="write waveforms of the simulation")
    p.add_argument("--out", default="build/demo", help="output folder (default build/demo)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")


def _text(args) -> str:
    from .. import texts

    if args.text:
        try:
            return Path(args.text).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read --text {args.text}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UserError(f"--text {args.text} is not UTF-8 text") from None
    if not texts.MIN_TOKENS <= args.tokens <= 512:
        raise UserError(f"--tokens = {args.tokens} is out of range: allowed "
                        f"{texts.MIN_TOKENS}..512")
    return texts.evaluation_texts(1, args.tokens)[0]


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ...sim.runner import check_simulator
    from ..demo import engine_params, run_demo

    con = Console(width=None if sys.stdout.isatty() else 140)
    t_start = time.perf_counter()
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}") from None
    if not 0 <= args.layer <= 5:
        raise UserError(f"--layer = {args.layer} is out of range: allowed 0..5")
    heads = sorted(set(args.head or range(12)))
    bad = [h for h in heads if not 0 <= h <= 11]
    if bad:
        raise UserError(f"--head = {bad[0]} is out of range: allowed 0..11")
    if args.budget < 1:
        raise UserError(f"--budget = {args.budget} is out of range: allowed >= 1 keys per query")
    params = engine_params(args.lanes)
    check_simulator(args.sim)  # before the long work: a missing simulator is one line at once

    def step(msg):
        con.print(f"[bold cyan]>[/] {msg} [dim]({time.perf_counter() - t_start:.0f} s)[/]")

    report = run_demo(_text(args), args.predictor, args.budget, args.layer, heads, params,
                      args.sim, out, waves=args.waves, step=step)
    rows = report["heads"]
    t = Table(title=f"swattn demo: layer {args.layer}, {report['predictor']}, "
                    f"n = {report['text_tokens']}")
    for col in ("head", "window", "dil", "globals (tokens)", "sparsity", "cycles", "util.",
                "bit-exact"):
        t.add_column(col, justify="right" if col not in ("globals (tokens)",) else "left")
    for r in rows:
        gl = ", ".join(f"{g} {s}" for g, s in zip(r["globals"], r["global_tokens"])) or "-"
        t.add_row(str(r["head"]), f"-{r['left']}..+{r['right']}", str(r["dilation"]), gl,
                  f"{100 * r['sparsity']:.1f}%", str(r["cycles"]),
                  f"{100 * r['utilisation']:.1f}%" if r["utilisation"] else "-",
                  "[green]yes[/]" if r["bit_exact"] else "[red]NO[/]")
    con.print(t)
    n_exact = sum(r["bit_exact"] for r in rows)
    elapsed = time.perf_counter() - t_start
    con.print(f"bit-exact heads: {n_exact}/{len(rows)}; sentence-embedding cosine, int8 engine "
              f"patterns in all 6 layers vs dense float: [bold]{report['embedding_cosine']:.4f}[/]")
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
