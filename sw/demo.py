"""``swattn demo``: real text through a sparsity predictor, the engine's Verilog and cocotb.

1. A text (deterministic, from docstrings of installed libraries, or ``--text FILE``) runs
   through all-MiniLM-L6-v2 in NumPy.
2. A predictor (the best embedding cosine of the last ``swattn eval --json build/eval.json``,
   else of the default run kept in ``docs/eval.json`` (the README's table), else DSA; or
   ``--predictor NAME``) predicts each head's mask, and the mapper turns it
   into an engine configuration (window, dilation, globals) under the engine's limits.
3. The engine's Verilog for MiniLM's head dim (32) is generated and one layer's heads (or
   ``--layer/--head``) run through cocotb on Verilator, each output compared bit for bit with the
   golden model.
4. A report: per head the pattern and its tokens, sparsity, cycles, utilisation, bit-exactness;
   the sentence-embedding cosine of the whole model with the mapped patterns in every layer
   through the int8 golden model, against dense float; a picture of one head's dense attention
   beside the predicted mask and the mapped pattern.

The patterns for the embedding cosine are predicted from the dense model's Q and K (the same
patterns the simulated heads use), so the cosine measures what the engine's configurations do.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HELP = "run real text through a predictor, the engine's Verilog (cocotb) and the golden model"

DEFAULT_BUDGET = 32  #: keys per query the predictor and the mapper aim for
DEFAULT_TOKENS = 160  #: length of the built-in text
DEFAULT_PREDICTOR = "dsa"  #: used when no evaluation results are found
EVAL_RESULTS = ("build/eval.json", "docs/eval.json")


def engine_params(lanes: int = 64):
    """The demo's engine: MiniLM's head dim, windows up to 64 tokens per side, 8 globals."""
    from .engine_params import EngineParams

    return EngineParams(head_dim=32, lanes=lanes, max_radius=64, max_globals=8, max_dilation=4,
                        seq_width=10)


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


def _fail(msg: str):
    from .cli import UserError
    raise UserError(msg)


def _choose_predictor(args, budget):
    from .predictors.base import registry

    if args.predictor:
        if args.predictor not in registry():
            _fail(f"unknown predictor {args.predictor!r}: allowed {', '.join(registry())}")
        return args.predictor, "chosen with --predictor"
    from .evaluate import best_predictor

    for path in EVAL_RESULTS:
        p = Path(path)
        if p.is_file():
            try:
                res = json.loads(p.read_text())
                budgets = {r["budget"] for r in res["results"]}
                b = min(budgets, key=lambda x: abs(x - budget))
                return best_predictor(res, budget=b), f"best embedding cosine in {path}"
            except (ValueError, KeyError):
                continue
    return DEFAULT_PREDICTOR, "default (no swattn eval results found)"


def _text(args) -> str:
    from . import texts

    if args.text:
        try:
            return Path(args.text).read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot read --text {args.text}: {exc.strerror}")
        except UnicodeDecodeError:
            _fail(f"--text {args.text} is not UTF-8 text")
    if not texts.MIN_TOKENS <= args.tokens <= 512:
        _fail(f"--tokens = {args.tokens} is out of range: allowed {texts.MIN_TOKENS}..512")
    return texts.evaluation_texts(1, args.tokens)[0]


def _head_job(q, k, v, pattern, seed):
    """int8 inputs, softmax config and the testbench job of one head."""
    from ..sim.runner import job_to_json
    from .numerics import SoftmaxConfig, quantise

    (qi, sq), (ki, sk), (vi, _) = quantise(q), quantise(k), quantise(v)
    cfg = SoftmaxConfig.from_scales(sq, sk, q.shape[-1])
    job = job_to_json(pattern, cfg, seed, idle=0.0, stall=0.0,
                      data=[qi.tolist(), ki.tolist(), vi.tolist()], return_output=True)
    return job, (qi, ki, vi, cfg)


def _picture(path: Path, dense: np.ndarray, predicted: np.ndarray, pattern, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    axes[0].imshow(np.log10(dense + 1e-6), cmap="magma", vmin=-4, vmax=0)
    axes[0].set_title("dense attention (log10 p)")
    axes[1].imshow(predicted, cmap="Greys", interpolation="nearest")
    axes[1].set_title(f"predicted mask ({predicted.mean():.1%} of pairs)")
    axes[2].imshow(pattern.mask(), cmap="Blues", interpolation="nearest")
    axes[2].set_title(f"engine pattern ({pattern.pairs() / pattern.n ** 2:.1%} of pairs)")
    for ax in axes:
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..hw.generate import generate
    from ..sim.runner import build, run_jobs
    from . import golden, minilm
    from .cycles import predict_cycles
    from .evaluate import mapped_patterns
    from .predictors.base import LayerInput, make
    from .texts import calibration_texts

    con = Console(width=None if sys.stdout.isatty() else 140)
    t_start = time.perf_counter()
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot create --out {out}: {exc.strerror}")
    if not 0 <= args.layer <= 5:
        _fail(f"--layer = {args.layer} is out of range: allowed 0..5")
    heads = sorted(set(args.head or range(12)))
    bad = [h for h in heads if not 0 <= h <= 11]
    if bad:
        _fail(f"--head = {bad[0]} is out of range: allowed 0..11")
    if args.budget < 1:
        _fail(f"--budget = {args.budget} is out of range: allowed >= 1 keys per query")
    params = engine_params(args.lanes)
    from ..sim.runner import check_simulator
    check_simulator(args.sim)  # before the long work: a missing simulator is one line at once

    def step(msg):
        con.print(f"[bold cyan]>[/] {msg} [dim]({time.perf_counter() - t_start:.0f} s)[/]")

    text = _text(args)
    ids = minilm.tokenize(text)  # ModelError (a ValueError) past 512 tokens
    predictor, why = _choose_predictor(args, args.budget)
    step(f"text: {ids.size} tokens; predictor {predictor} ({why}), budget {args.budget:g} keys "
         "per query")

    step("MiniLM forward pass (NumPy) and predictor fit on calibration texts")
    model = minilm.load()
    trace = model.forward(ids)
    calib_tokens = min(max(ids.size, 128), minilm.MAX_POSITIONS)
    fitted = make(predictor).fit([model.forward(minilm.tokenize(t))
                                  for t in calibration_texts(4, calib_tokens)])
    maps = mapped_patterns(text, predictor, args.budget, limits=params.limits(), fitted=fitted,
                           trace=trace)
    layer = trace.layers[args.layer]
    predicted = fitted.predict(LayerInput.from_trace(trace, args.layer), min(args.budget, ids.size))

    step(f"generating the engine's Verilog (head dim 32, {params.lanes} lanes) and building the "
         f"{args.sim} model")
    vdir = out / "verilog"
    vpath, jpath = generate(params, vdir)
    build(params, args.sim, root=out / "sim", waves=args.waves)

    step(f"simulating layer {args.layer}, {len(heads)} head(s), through cocotb")
    jobs, inputs = [], []
    for h in heads:
        job, inp = _head_job(layer.q[h], layer.k[h], layer.v[h], maps[args.layer][h].pattern,
                             seed=args.layer * 100 + h)
        jobs.append(job)
        inputs.append(inp)
    results = run_jobs(params, jobs, sim=args.sim, root=out / "sim", waves=args.waves,
                       name="demo")

    rows = []
    tok = minilm.tokenizer()
    for h, r, (qi, ki, vi, cfg) in zip(heads, results, inputs):
        mp = maps[args.layer][h]
        pat = mp.pattern
        ref = golden.attention(qi, ki, vi, pat, cfg)
        got = np.asarray(r.get("output", []), dtype=np.int64)
        exact = bool(r.get("ok")) and got.shape == ref.shape and bool(np.array_equal(got, ref))
        ideal = 2 * params.head_dim * pat.pairs() / params.lanes
        rows.append({
            "head": h, "left": pat.left, "right": pat.right, "dilation": pat.dilation,
            "globals": list(pat.globals_),
            "global_tokens": [tok.id_to_token(int(ids[g])) for g in pat.globals_],
            "sparsity": mp.sparsity, "coverage": mp.coverage, "cycles": r.get("cycles"),
            "predicted_cycles": predict_cycles(params, pat), "ideal_cycles": ideal,
            "utilisation": ideal / r["cycles"] if r.get("cycles") else None,
            "bit_exact": exact, "error": r.get("error_text")})

    step("whole model with the mapped patterns in every layer through the int8 golden model")
    sparse = model.forward(ids, attention=minilm.golden_attention(
        lambda li, q, k, hidden: [m.pattern for m in maps[li]]))
    cos = minilm.cosine(sparse.embedding, trace.embedding)

    h0 = heads[0]
    pic = out / f"attention_l{args.layer}_h{h0}.png"
    _picture(pic, layer.probs[h0], predicted[h0], maps[args.layer][h0].pattern,
             f"layer {args.layer} head {h0}: {predictor} at {args.budget:g} keys/query")

    t = Table(title=f"swattn demo: layer {args.layer}, {predictor}, n = {ids.size}")
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
              f"patterns in all 6 layers vs dense float: [bold]{cos:.4f}[/]")
    report = {"text_tokens": int(ids.size), "predictor": predictor, "why": why,
              "budget": args.budget, "layer": args.layer, "params": params.as_dict(),
              "heads": rows, "embedding_cosine": cos, "wall_s": elapsed,
              "verilog": str(vpath), "picture": str(pic)}
    rpath = out / "report.json"
    rpath.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        from .cli import write_json
        write_json(args.json, report)
    con.print(f"\nVerilog: {vpath} (+ {jpath.name}); report: {rpath}; picture: {pic}")
    if args.waves:
        con.print(f"waveforms: {out / 'sim'} (the build folder of this engine)")
    con.print(f"done in {elapsed:.0f} s. Next: `swattn build --board icebreaker` to put the "
              "engine on a board, `swattn eval` to compare every predictor.")
    return 0 if n_exact == len(rows) else 1
