"""``swattn eval``: every sparsity predictor on real all-MiniLM-L6-v2 attention, raw and mapped
to the engine (:func:`swattn.sw.evaluate.evaluate`, whose docstring lists the metrics): a table on
the terminal, the mapped patterns' cover and embedding cosine at each text length
(``--max-tokens`` and ``--also-tokens``), ``--json FILE``, and PNG plots of sparsity against recall
under ``--out``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..evaluate import (CHOICE_ALPHA, CHOICE_TEXTS, DEFAULT_ALSO_TOKENS, DEFAULT_BUDGETS,
                        DEFAULT_CALIBRATION, DEFAULT_FORM_CHOICE, DEFAULT_MAX_BANDS,
                        DEFAULT_MAX_COLUMNS, DEFAULT_TABLE_BUDGET, DEFAULT_TEXTS,
                        DEFAULT_TOKENS, FORM_CHOICES, keysets_asked)
from ..cluster import SCHEDULER_HELP
from ..spec.errors import UserError
from ..texts import MAX_POSITIONS, MIN_TOKENS
from .args import (CREATES_FOLDERS, given, integer, number, output_dir, output_file, read_text,
                   seed)

HELP = "evaluate the sparsity predictors on real all-MiniLM-L6-v2 attention (raw and mapped)"


def add_arguments(p):
    p.add_argument("--texts", type=integer("--texts", 1), default=DEFAULT_TEXTS, metavar="N",
                   help=f"built-in evaluation texts, 1 or more (default {DEFAULT_TEXTS}; not "
                        "with --text-file)")
    p.add_argument("--calibration", type=integer("--calibration", 1), default=DEFAULT_CALIBRATION,
                   metavar="N", help=f"calibration texts for fitting, 1 or more (default "
                                     f"{DEFAULT_CALIBRATION})")
    p.add_argument("--max-tokens", type=integer("--max-tokens", MIN_TOKENS, MAX_POSITIONS),
                   default=DEFAULT_TOKENS, metavar="T",
                   help=f"tokens per text, 128..512 (default {DEFAULT_TOKENS})")
    p.add_argument("--text-file", action="append", default=[], metavar="PATH",
                   help="evaluate this text file (repeatable) instead of the built-in texts; "
                        "at most 512 tokens each")
    p.add_argument("--predictors", default="all", metavar="LIST",
                   help="comma-separated predictor names or 'all' (see --list)")
    p.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)), metavar="LIST",
                   help="keys per query to sweep, comma-separated (default "
                        f"{','.join(map(str, DEFAULT_BUDGETS))})")
    p.add_argument("--table-budget", type=number("--table-budget", 1.0, unit=" keys per query"),
                   default=None, metavar="B",
                   help=f"budget shown in the table and run in int8 (default "
                        f"{DEFAULT_TABLE_BUDGET}, or the nearest swept budget)")
    p.add_argument("--no-golden", action="store_true", help="skip the int8 golden-model runs")
    p.add_argument("--max-globals", type=integer("--max-globals", 0), default=4, metavar="G",
                   help="global tokens the mapper may use, 0 or more (default 4)")
    p.add_argument("--max-dilation", type=integer("--max-dilation", 1), default=4, metavar="D",
                   help="largest dilation the mapper tries, 1 or more (default 4)")
    p.add_argument("--max-bands", type=integer("--max-bands", 1, 16), default=DEFAULT_MAX_BANDS,
                   metavar="B",
                   help=f"bands of keys the mapper may use, the window counting as one, 1..16 "
                        f"(default {DEFAULT_MAX_BANDS}; 1 with --max-columns 0 maps to the "
                        "window and globals alone, an engine without band and column fields)")
    p.add_argument("--max-columns", type=integer("--max-columns", 0, 32),
                   default=DEFAULT_MAX_COLUMNS, metavar="C",
                   help=f"key-only columns the mapper may use, 0..32 (default "
                        f"{DEFAULT_MAX_COLUMNS})")
    p.add_argument("--form-choice", choices=FORM_CHOICES, default=DEFAULT_FORM_CHOICE,
                   help="how each head's mapped form is chosen where --max-bands or "
                        "--max-columns allow bands and columns: 'cover', the form covering the "
                        "most of the predicted mask; 'calibrated', per budget, layer and head, "
                        "bands and columns only where they gave a lower attention-output error "
                        "than the window and globals alone on the calibration texts (the first "
                        f"{CHOICE_TEXTS}), and only where those heads together also raise the "
                        "embedding cosine there, text by text beyond chance (paired t-test, "
                        f"p < {CHOICE_ALPHA:g}); needs --max-bands 2 or more or --max-columns 1 "
                        f"or more (default {DEFAULT_FORM_CHOICE})")
    p.add_argument("--also-tokens", default=",".join(map(str, DEFAULT_ALSO_TOKENS)),
                   metavar="LIST",
                   help="more text lengths in tokens, comma-separated, each 128..512, at which "
                        "the mapped patterns' cover and embedding cosine are measured too (texts "
                        "and calibration of that length; default "
                        f"{','.join(map(str, DEFAULT_ALSO_TOKENS))}; 'none' for none; not with "
                        "--text-file)")
    p.add_argument("--json", metavar="FILE",
                   help=f"write all results as JSON ({CREATES_FOLDERS})")
    p.add_argument("--out", default="build", metavar="DIR",
                   help=f"folder for the PNG plots (default build; {CREATES_FOLDERS})")
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    p.add_argument("--jobs", type=integer("--jobs", 1), default=os.cpu_count() or 1,
                   help="local worker processes, each evaluating one predictor at a time "
                        "(default: the cores; 1: every predictor in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    p.add_argument("--seed", type=seed(), default=0,
                   help="seed of the random predictors, 0..2^32-1")
    p.add_argument("--list", action="store_true", help="list the predictors and exit")
    p.add_argument("--quiet", action="store_true", help="no progress display")


def _check_form_choice(args) -> None:
    """``--form-choice calibrated`` chooses between the window and globals and bands and
    columns: refused where the mapper may use neither."""
    if args.form_choice == "calibrated" and not keysets_asked(
            {"max_bands": args.max_bands, "max_columns": args.max_columns}):
        raise UserError(f"--form-choice calibrated with --max-bands {args.max_bands} and "
                        f"--max-columns {args.max_columns}: the mapper gives the window and "
                        "globals alone, there is no form to choose; allowed with --max-bands "
                        "2..16 or --max-columns 1..32")


def _parse_predictors(spec: str) -> list[str]:
    from ..predictors.base import registry
    reg = registry()
    if spec.strip() == "all":
        return list(reg)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in reg]
    if bad or not names:
        raise UserError(f"--predictors = {spec!r}: unknown predictor "
                        f"{', '.join(map(repr, bad)) or repr(spec)}: allowed comma-separated "
                        f"names of {', '.join(reg)}, or 'all'")
    return names


def _parse_budgets(spec: str, n: int) -> list[float]:
    import math

    try:
        vals = sorted({float(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise UserError(f"--budgets = {spec!r}: expected comma-separated numbers of keys per "
                        f"query, each 1..{n}") from None
    if not vals:
        raise UserError(f"--budgets = {spec!r} is empty: allowed comma-separated numbers of keys "
                        f"per query, each 1..{n}")
    for b in vals:
        if not (1 <= b <= n and math.isfinite(b)):
            raise UserError(f"--budgets = {spec!r}: budget {b:g} keys per query is out of range: "
                            f"allowed 1..{n} (the shortest text has {n} tokens)")
    return vals


def _parse_also_tokens(args) -> list[int]:
    """``--also-tokens``: text lengths besides ``--max-tokens`` (none with --text-file unless
    given, which is refused there)."""
    spec = args.also_tokens.strip()
    allowed = (f"comma-separated text lengths, each {MIN_TOKENS}..{MAX_POSITIONS} tokens, or "
               "'none'")
    if args.text_file:
        if given(args, "--also-tokens") and spec != "none":
            raise UserError(f"--also-tokens {spec} gives lengths of the built-in texts, which "
                            "--text-file replaces: leave out --also-tokens")
        return []
    if spec == "none":
        return []
    try:
        vals = sorted({int(x, 10) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--also-tokens = {spec!r}: allowed {allowed}") from None
    if not vals:
        raise UserError(f"--also-tokens = {spec!r} is empty: allowed {allowed}")
    for t in vals:
        if not MIN_TOKENS <= t <= MAX_POSITIONS:
            raise UserError(f"--also-tokens = {spec!r}: {t} tokens is out of range: allowed "
                            f"{allowed}")
    return [t for t in vals if t != args.max_tokens]


def _load_more(args, lengths: list[int]) -> dict:
    """{tokens: (ids_cal, ids_ev)} for ``--also-tokens``: as many texts and calibration texts as
    the main run, of each length."""
    from .. import texts
    from ..minilm import tokenize

    out = {}
    for t in lengths:
        try:
            ev = texts.evaluation_texts(args.texts, t)
            cal = texts.calibration_texts(args.calibration, t)
        except texts.TextError as exc:
            raise UserError(f"--also-tokens {t}: {exc}") from None
        out[t] = ([tokenize(x) for x in cal], [tokenize(x) for x in ev])
    return out


def _load_texts(args):
    from .. import texts
    from ..minilm import MAX_POSITIONS, ModelError, tokenize

    try:
        if args.text_file:
            ev = [read_text("--text-file", path) for path in args.text_file]
        else:
            try:
                ev = texts.evaluation_texts(args.texts, args.max_tokens)
            except texts.TextError as exc:
                raise UserError(f"--texts = {args.texts}: {exc}") from None
        try:
            cal = texts.calibration_texts(args.calibration, args.max_tokens)
        except texts.TextError as exc:
            raise UserError(f"--calibration = {args.calibration}: {exc}") from None
        ids_ev = []
        for i, t in enumerate(ev):
            try:
                ids_ev.append(tokenize(t, MAX_POSITIONS))
            except ModelError as exc:
                name = f"--text-file = {args.text_file[i]!r}" if args.text_file else f"text {i}"
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
    render_form_choice(results, console)
    render_by_tokens(results, console)


def render_form_choice(results: dict, console) -> None:
    """With ``--form-choice calibrated``: per predictor, the heads that kept bands and columns
    at the table budget, at each text length (nothing otherwise)."""
    cfg = results["config"]
    if cfg.get("form_choice", DEFAULT_FORM_CHOICE) == DEFAULT_FORM_CHOICE:
        return
    rows = [r for r in results.get("by_tokens", []) if r["budget"] == cfg["table_budget"]
            and "keyset_heads" in r]
    by = {}
    for r in sorted(rows, key=lambda r: r["tokens"]):
        by.setdefault(r["predictor"], []).append(
            f"{r['keyset_heads']}/{r['heads']} at {r['tokens']} tokens"
            + (f" ({r['keyset_heads_by_error']} by attention error)"
               if r.get("keyset_heads_by_error", r["keyset_heads"]) != r["keyset_heads"] else ""))
    secs = results.get("form_choice_seconds", {})
    console.print(f"heads mapped with bands and columns (the rest: window and globals), chosen "
                  f"on the calibration texts at {cfg['table_budget']:g} keys/query: " + "; ".join(
                      f"{name} {', '.join(by.get(name, ['-']))}" for name in cfg["predictors"])
                  + f" (choice: {sum(secs.values()):.1f} s)")


def render_by_tokens(results: dict, console) -> None:
    """The mapped patterns' cover and embedding cosine per predictor at each text length, at
    the table budget (``by_tokens``; nothing where only one length was run)."""
    from rich.table import Table

    cfg = results["config"]
    rows = [r for r in results.get("by_tokens", []) if r["budget"] == cfg["table_budget"]]
    lengths = sorted({r["tokens"] for r in rows})
    if len(lengths) < 2:
        return
    m = cfg.get("mapper") or {}
    choice = cfg.get("form_choice", DEFAULT_FORM_CHOICE)
    t = Table(title=f"mapped to the engine at {cfg['table_budget']:g} keys/query: map cover and "
                    f"embedding cosine per text length (mapper: {m.get('max_bands', 1)} band(s) "
                    f"with the window, {m.get('max_columns', 0)} column(s), "
                    f"{m.get('max_globals', '-')} global(s)"
                    f"{'' if choice == DEFAULT_FORM_CHOICE else f', form by {choice} choice'})",
              title_justify="left")
    t.add_column("predictor")
    for n in lengths:
        t.add_column(f"cover {n}", justify="right")
        t.add_column(f"emb. cos {n}", justify="right")
    by = {(r["predictor"], r["tokens"]): r for r in rows}
    for name in cfg["predictors"]:
        cells = []
        for n in lengths:
            r = by.get((name, n))
            cells += [f"{r['coverage']:.3f}", f"{r['emb_cos']:.4f}"] if r else ["-", "-"]
        t.add_row(name, *cells)
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
    _check_form_choice(args)
    if args.text_file and given(args, "--texts"):
        raise UserError(f"--texts {args.texts} counts the built-in texts, which --text-file "
                        "replaces: leave out --texts")
    # outputs are checked before minutes of work, not after
    if not args.no_plots:
        output_dir("--out", args.out)
    if args.json:
        output_file("--json", args.json)
    if args.scheduler is not None and given(args, "--jobs"):
        raise UserError("--jobs sets the local worker processes; with --scheduler the "
                        "cluster's workers run the jobs: leave out --jobs")
    if args.scheduler is not None:  # (before the texts' minutes of work, not after)
        from ..cluster import check_scheduler
        check_scheduler(args.scheduler)
    also = _parse_also_tokens(args)
    ids_cal, ids_ev = _load_texts(args)
    more = _load_more(args, also)
    nmin = min(i.size for i in ids_ev)
    budgets = _parse_budgets(args.budgets, nmin)
    tb = args.table_budget if args.table_budget is not None else DEFAULT_TABLE_BUDGET
    table_budget = min(budgets, key=lambda b: (abs(b - tb), b))
    if args.table_budget is not None and table_budget != args.table_budget:
        raise UserError(f"--table-budget {args.table_budget:g} is not one of --budgets "
                        f"{args.budgets}")
    total = 1 + (0 if args.no_golden else 1) + len(predictors) * (1 + len(budgets) * len(ids_ev))
    total += sum(1 + len(predictors) * (1 + len(budgets) * len(ev)) for _, ev in more.values())

    from ..progress import Progress

    what = f"evaluating {len(predictors)} predictor{'s' if len(predictors) != 1 else ''}"
    with Progress(what, total=total, unit="steps", quiet=args.quiet) as prog:
        prog.update(detail="loading all-MiniLM-L6-v2")

        def progress(desc, adv=0):  # (a step that advances has just been done)
            prog.update(advance=adv, detail=f"last: {desc}" if adv else desc)

        results = evaluate(predictors, budgets, ids_cal, ids_ev, table_budget,
                           golden=not args.no_golden, seed=args.seed,
                           mapper_kw={"max_globals": args.max_globals,
                                      "max_dilation": args.max_dilation,
                                      "max_bands": args.max_bands,
                                      "max_columns": args.max_columns},
                           form_choice=args.form_choice, progress=progress, more_tokens=more,
                           jobs=None if args.scheduler else args.jobs, scheduler=args.scheduler)
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

