"""``swattn eval``: every sparsity predictor on real all-MiniLM-L6-v2 attention, raw and mapped
to the engine (:func:`swattn.sw.evaluate.evaluate`, whose docstring lists the metrics): a table on
the terminal, ``--json FILE``, and PNG plots of sparsity against recall under ``--out``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..evaluate import (DEFAULT_BUDGETS, DEFAULT_CALIBRATION, DEFAULT_TABLE_BUDGET,
                        DEFAULT_TEXTS, DEFAULT_TOKENS)
from ..spec.errors import UserError

HELP = "evaluate the sparsity predictors on real all-MiniLM-L6-v2 attention (raw and mapped)"


def add_arguments(p):
    p.add_argument("--texts", type=int, default=DEFAULT_TEXTS, metavar="N",
                   help=f"evaluation texts (default {DEFAULT_TEXTS})")
    p.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION, metavar="N",
                   help=f"calibration texts for fitting (default {DEFAULT_CALIBRATION})")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_TOKENS, metavar="T",
                   help=f"tokens per text, 128..512 (default {DEFAULT_TOKENS})")
    p.add_argument("--text-file", action="append", default=[], metavar="PATH",
                   help="evaluate this text file (repeatable) instead of the built-in texts; "
                        "at most 512 tokens each")
    p.add_argument("--predictors", default="all", metavar="LIST",
                   help="comma-separated predictor names or 'all' (see --list)")
    p.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)), metavar="LIST",
                   help="keys per query to sweep, comma-separated (default "
                        f"{','.join(map(str, DEFAULT_BUDGETS))})")
    p.add_argument("--table-budget", type=float, default=None, metavar="B",
                   help=f"budget shown in the table and run in int8 (default "
                        f"{DEFAULT_TABLE_BUDGET}, or the nearest swept budget)")
    p.add_argument("--no-golden", action="store_true", help="skip the int8 golden-model runs")
    p.add_argument("--max-globals", type=int, default=4, metavar="G",
                   help="global tokens the mapper may use (default 4)")
    p.add_argument("--max-dilation", type=int, default=4, metavar="D",
                   help="largest dilation the mapper tries (default 4)")
    p.add_argument("--json", metavar="FILE", help="write all results as JSON")
    p.add_argument("--out", default="build", metavar="DIR",
                   help="folder for the PNG plots (default build)")
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    p.add_argument("--seed", type=int, default=0, help="seed of the random predictors")
    p.add_argument("--list", action="store_true", help="list the predictors and exit")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def _parse_predictors(spec: str) -> list[str]:
    from ..predictors.base import registry
    reg = registry()
    if spec.strip() == "all":
        return list(reg)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in reg]
    if bad or not names:
        raise UserError(f"unknown predictor {', '.join(map(repr, bad)) or repr(spec)}: "
                        f"allowed {', '.join(reg)} or 'all'")
    return names


def _parse_budgets(spec: str, n: int) -> list[float]:
    try:
        vals = sorted({float(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise UserError(f"--budgets {spec!r}: expected comma-separated numbers") from None
    if not vals:
        raise UserError("--budgets is empty")
    for b in vals:
        if not 1 <= b <= n:
            raise UserError(f"budget {b:g} keys per query is out of range: allowed 1..{n} "
                            f"(the shortest text has {n} tokens)")
    return vals


def _load_texts(args):
    from .. import texts
    from ..minilm import MAX_POSITIONS, ModelError, tokenize

    if not texts.MIN_TOKENS <= args.max_tokens <= MAX_POSITIONS:
        raise UserError(f"--max-tokens {args.max_tokens} is out of range: allowed "
                        f"{texts.MIN_TOKENS}..{MAX_POSITIONS} (all-MiniLM-L6-v2 has "
                        f"{MAX_POSITIONS} positions)")
    if args.texts < 1 or args.calibration < 1:
        raise UserError(f"--texts {args.texts} and --calibration {args.calibration}: "
                        "each must be at least 1")
    try:
        cal = texts.calibration_texts(args.calibration, args.max_tokens)
        if args.text_file:
            ev = []
            for path in args.text_file:
                try:
                    ev.append(Path(path).read_text(encoding="utf-8"))
                except OSError as exc:
                    raise UserError(f"cannot read --text-file {path}: {exc.strerror}") from None
        else:
            ev = texts.evaluation_texts(args.texts, args.max_tokens)
        ids_ev = []
        for i, t in enumerate(ev):
            try:
                ids_ev.append(tokenize(t, MAX_POSITIONS))
            except ModelError as exc:
                name = args.text_file[i] if args.text_file else f"text {i}"
                raise UserError(f"{name}: {exc}") from None
        ids_cal = [tokenize(t) for t in cal]
    except (texts.TextError, ModelError) as exc:
        raise UserError(str(exc)) from None
    return ids_cal, ids_ev


def render_table(results: dict, console) -> None:
    from rich.table import Table

    from ..evaluate import COLUMNS, table_rows

    cfg = results["config"]
    t = Table(title=f"swattn eval: all-MiniLM-L6-v2, {cfg['texts']} texts of "
                    f"{'/'.join(map(str, sorted(set(cfg['tokens']))))} tokens, "
                    f"budget {cfg['table_budget']:g} keys/query", title_justify="left")
    t.add_column("predictor")
    t.add_column("variant")
    for _, head in COLUMNS:
        t.add_column(head, justify="right")
    last = None
    for r in table_rows(results):
        if last is not None and r["predictor"] != last:
            t.add_section()
        last = r["predictor"]
        t.add_row(r["predictor"], r["variant"],
                  *[(f"{r[k]:.4f}" if k == "emb_cos" else f"{r[k]:.3f}") if k in r else "-"
                    for k, _ in COLUMNS])
    base = results.get("int8_dense") or {}
    if base:
        t.add_section()
        t.add_row("dense", "int8", "0.000", "1.000", "1.000", f"{base['out_rel_err']:.3f}",
                  f"{base['emb_cos']:.4f}", "-")
    console.print(t)


def run(args) -> int:
    from rich.console import Console

    from ..evaluate import evaluate, json_default, write_plots
    from ..predictors.base import registry

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # a table piped to a file keeps its columns
    if args.list:
        for name, cls in registry().items():
            console.print(f"{name:14s} {cls.paper}")
        return 0
    predictors = _parse_predictors(args.predictors)
    if args.max_globals < 0:
        raise UserError(f"--max-globals {args.max_globals} is out of range: allowed 0 or more")
    if args.max_dilation < 1:
        raise UserError(f"--max-dilation {args.max_dilation} is out of range: allowed 1 or more")
    # outputs are checked before minutes of work, not after
    if not args.no_plots:
        _writable_dir(Path(args.out), "--out")
    if args.json:
        _writable_dir(Path(args.json).parent, f"--json {args.json}:")
    ids_cal, ids_ev = _load_texts(args)
    nmin = min(i.size for i in ids_ev)
    budgets = _parse_budgets(args.budgets, nmin)
    tb = args.table_budget if args.table_budget is not None else DEFAULT_TABLE_BUDGET
    table_budget = min(budgets, key=lambda b: (abs(b - tb), b))
    if args.table_budget is not None and table_budget != args.table_budget:
        raise UserError(f"--table-budget {args.table_budget:g} is not one of --budgets "
                        f"{args.budgets}")
    total = 1 + (0 if args.no_golden else 1) + len(predictors) * (1 + len(budgets) * len(ids_ev))

    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description:32s}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False,
                  disable=args.quiet or not err.is_terminal) as prog:
        task = prog.add_task("loading", total=total)

        plain = not err.is_terminal and not args.quiet
        started = time.perf_counter()

        def progress(desc, adv=0):
            prog.update(task, description=desc, advance=adv)
            if plain and adv:  # logs and pipes get one line per step instead of a live bar
                done = int(prog.tasks[0].completed)
                print(f"[{done}/{total}] {desc} ({time.perf_counter() - started:.0f} s)",
                      file=sys.stderr, flush=True)

        results = evaluate(predictors, budgets, ids_cal, ids_ev, table_budget,
                           golden=not args.no_golden, seed=args.seed,
                           mapper_kw={"max_globals": args.max_globals,
                                      "max_dilation": args.max_dilation},
                           progress=progress)
    render_table(results, console)
    console.print(f"evaluated in {results['runtime_s']:.0f} s")
    if args.json:
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=1, default=json_default))
        except OSError as exc:
            raise UserError(f"cannot write --json {path}: {exc.strerror}") from None
        console.print(f"results: {path}")
    if not args.no_plots:
        try:
            paths = write_plots(results, Path(args.out))
        except OSError as exc:
            raise UserError(f"cannot write the plots to --out {args.out}: {exc.strerror}"
                            ) from None
        for p in paths:
            console.print(f"plot: {p}")
    return 0


def _writable_dir(path: Path, what: str) -> None:
    """Create ``path`` if needed; a UserError naming ``what`` if that fails or it is read-only."""
    import os
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} cannot create folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"{what} folder {path} is not writable")
