"""The demo (``swattn demo``): real text through a sparsity predictor, the engine's Verilog and
cocotb.

1. A text (deterministic, from docstrings of installed libraries, or ``--text FILE``) runs
   through all-MiniLM-L6-v2 in NumPy.
2. A predictor (``--predictor NAME``, else the best embedding cosine of the mapped patterns in the
   evaluation results kept with the package: the last ``swattn eval --json build/eval.json``,
   else the default run in ``docs/eval.json`` (the README's table), both in the repository the
   package runs from, whatever the current folder; else DSA) predicts each head's mask, and the
   mapper turns it into an engine configuration (window, dilation, globals; bands beside the
   window and key-only columns where the engine has their fields) under the engine's limits. The
   report names where the choice comes from.
3. The engine's Verilog for MiniLM's head dim (32) is generated and one layer's heads (or
   ``--layer/--head``) run through cocotb on Verilator, each output compared bit for bit with the
   golden model.
4. A report: per head the pattern and its tokens, sparsity, cycles, utilisation, bit-exactness;
   where the cycles beyond the MAC-bound ideal go, by the cycle model (:func:`utilisation_line`);
   the sentence-embedding cosine of the whole model with the mapped patterns in every layer
   through the int8 golden model, against dense float; a picture of one head's dense attention
   (with a colour bar) beside the predicted mask and the mapped pattern (one legend, the same
   colours in both, global rows and columns drawn as lines through a margin).

The patterns for the embedding cosine are predicted from the dense model's Q and K (the same
patterns the simulated heads use), so the cosine measures what the engine's configurations do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .spec.errors import UserError

DEFAULT_BUDGET = 32  #: keys per query the predictor and the mapper aim for
DEFAULT_TOKENS = 160  #: length of the built-in text
DEFAULT_PREDICTOR = "dsa"  #: used when no evaluation results are found
#: the repository this package runs from (``sw/`` sits in its root); the evaluation results are
#: looked up there, never in the current folder, so the choice does not depend on where the
#: command runs. An installation without the repository finds none and uses the default.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: evaluation results, relative to :data:`REPO_ROOT`, first found first: the last
#: ``swattn eval --json build/eval.json``, then the default run the README's table comes from
EVAL_RESULTS = ("build/eval.json", "docs/eval.json")
#: what the predictor is chosen by: the sentence-embedding cosine of the mapped patterns
EVAL_METRIC, EVAL_VARIANT = "emb_cos", "mapped"


def engine_params(lanes: int = 64):
    """The demo's engine: MiniLM's head dim, windows up to 64 tokens per side, 8 globals."""
    from .spec.engine_params import EngineParams

    return EngineParams(head_dim=32, lanes=lanes, max_radius=64, max_globals=8, max_dilation=4,
                        seq_width=10)


def _recorded_at(path: Path, results: dict) -> str:
    """Which commit the results file ``path`` comes from: the commit ``swattn eval`` ran at (its
    ``commit`` field), else the last commit that changed the file in git ("+ uncommitted changes"
    if it differs from that), else its modification time."""
    import subprocess

    ran = results.get("commit")
    if isinstance(ran, str) and ran and ran != "unknown":
        return f"`swattn eval` at commit {ran}"
    git = ["git", "-C", str(path.parent)]
    try:
        commit = subprocess.run(git + ["log", "-1", "--format=%h", "--", path.name],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        changed = commit and subprocess.run(
            git + ["status", "--porcelain", "--", path.name], capture_output=True, text=True,
            timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = changed = ""
    if commit:
        return (f"`swattn eval` results recorded in commit {commit}"
                + (" + uncommitted changes" if changed else ""))
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return f"`swattn eval` results written {stamp}, not in git"


def choose_predictor(name: str | None, budget: float) -> tuple[str, str]:
    """The predictor to run and where the choice comes from: ``name`` if given; else the best
    :data:`EVAL_METRIC` of the :data:`EVAL_VARIANT` rows at the evaluated budget nearest
    ``budget`` in the first readable file of :data:`EVAL_RESULTS` under :data:`REPO_ROOT`
    (whatever the current folder); else :data:`DEFAULT_PREDICTOR`."""
    from .predictors.base import registry

    if name:
        if name not in registry():
            raise UserError(f"unknown predictor {name!r}: allowed {', '.join(registry())}")
        return name, "chosen with --predictor"
    from .evaluate import best_predictor

    skipped = []
    for rel in EVAL_RESULTS:
        path = REPO_ROOT / rel
        if not path.is_file():
            continue
        try:
            res = json.loads(path.read_text())
            budgets = {r["budget"] for r in res["results"]}
            b = min(budgets, key=lambda x: (abs(x - budget), x))
            best = best_predictor(res, budget=b, metric=EVAL_METRIC, variant=EVAL_VARIANT)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            skipped.append(f"{path} unusable: {type(exc).__name__}")
            continue
        at = f"{b:g} keys/query" + ("" if b == budget else f" (the evaluated budget nearest "
                                                          f"{budget:g})")
        why = (f"best embedding cosine of the mapped patterns at {at} in {path}, "
               f"{_recorded_at(path, res)}")
        return best, why + "".join(f"; {s}" for s in skipped)
    looked = ", ".join(str(REPO_ROOT / rel) for rel in EVAL_RESULTS)
    return DEFAULT_PREDICTOR, (f"default: no evaluation found (looked for {looked})"
                               + "".join(f"; {s}" for s in skipped))


def utilisation_breakdown(params, patterns, measured: int | None = None) -> dict:
    """Where the engine's cycles on ``patterns`` (one job each) go by the cycle model
    (:func:`swattn.sw.cycles.predict_cycles`), summed over the jobs; all figures in cycles:

    * ``model``: the model's cycles; ``ideal``: the MAC-bound ones (useful MACs / lanes);
    * ``globals``: what the global rows and columns cost beyond their MACs: the model's cycles
      less those of the same window without globals, less the MACs the globals add (their rows'
      extra max pass, less the window rows they replace);
    * ``groups`` and ``start_drain``: the window's own overhead (its model cycles less its MACs),
      split by the model on the same window over twice the tokens: what the doubled length adds
      is per query group (hand-over, epilogue; ``groups``), the remainder is fixed per job
      (checks, the first keys, the last epilogue, the sequence's ends; ``start_drain``);
    * ``floor``: the fewest cycles the model gives a query group (a one-key window, no globals);
      ``window_keys``: the mean keys per query of the windows; ``n``: the sequence lengths.

    ``ideal + globals + groups + start_drain == model``. ``measured`` (the RTL's cycles of the
    same jobs, if run) is carried along."""
    from .cycles import predict_cycles, useful_macs
    from .spec.pattern import HybridPattern

    def cost(pat):
        return predict_cycles(params, pat), useful_macs(pat, params.head_dim) / params.lanes

    out = dict(model=0, ideal=0.0, globals=0.0, groups=0.0, start_drain=0.0, measured=measured)
    keys = rows = 0
    for pat in patterns:
        m, i = cost(pat)
        win = HybridPattern(pat.n, pat.left, pat.right, pat.dilation)
        m_w, i_w = cost(win)
        m_w2, i_w2 = cost(HybridPattern(2 * pat.n, pat.left, pat.right, pat.dilation))
        per_n = (m_w2 - i_w2) - (m_w - i_w)  # the window's overhead of n more tokens
        out["model"] += m
        out["ideal"] += i
        out["globals"] += (m - i) - (m_w - i_w)
        out["groups"] += per_n
        out["start_drain"] += (m_w - i_w) - per_n
        keys += win.pairs()
        rows += pat.n
    n = sorted({pat.n for pat in patterns})
    one, two = (predict_cycles(params, HybridPattern(k * n[-1], 0, 0)) for k in (1, 2))
    out.update(floor=(two - one) * params.units / n[-1], window_keys=keys / rows, n=n,
               units=params.units)
    return out


def utilisation_line(u: dict) -> str:
    """One line: the utilisation of :func:`utilisation_breakdown`'s figures ``u`` and where the
    rest of the cycles go, with a pointer to the long-sequence figures."""
    def part(x):
        return f"{x:+,.0f} ({x / u['model']:.0%})"

    n = "/".join(str(k) for k in u["n"])
    group = "query" if u["units"] == 1 else f"group of {u['units']} queries"
    rtl = "" if u["measured"] is None else f"; the RTL counted {u['measured']:,}"
    return (f"utilisation {u['ideal'] / u['model']:.1%} by the cycle model "
            f"({u['ideal']:,.0f} MAC-bound cycles of {u['model']:,}{rtl}) at n = {n}: "
            f"the query groups' hand-over and epilogue (at least {u['floor']:.0f} cycles per "
            f"{group}, {u['window_keys']:.0f} window keys per query) {part(u['groups'])}, global "
            f"rows' extra passes {part(u['globals'])}, start and drain "
            f"{part(u['start_drain'])}; `make bench` measures long windows and sequences")


def report_lines(report: dict) -> list[str]:
    """The report's lines beside the per-head table: where the predictor comes from and where
    the cycles go (:func:`utilisation_line`)."""
    return [f"predictor: {report['predictor']} ({report['why']})",
            utilisation_line(report["utilisation"])]


def _head_job(q, k, v, pattern, seed):
    """int8 inputs, softmax config and the testbench job of one head."""
    from ..sim.runner import job_to_json
    from .spec.numerics import SoftmaxConfig, quantise

    (qi, sq), (ki, sk), (vi, _) = quantise(q), quantise(k), quantise(v)
    cfg = SoftmaxConfig.from_scales(sq, sk, q.shape[-1])
    job = job_to_json(pattern, cfg, seed, idle=0.0, stall=0.0,
                      data=[qi.tolist(), ki.tolist(), vi.tolist()], return_output=True)
    return job, (qi, ki, vi, cfg)


#: the picture's categories of (query, key) pairs and their colours, the same in every panel
PAIR_CLASSES = (("dropped", "#e9e9e9"), ("kept (engine: window)", "#253494"),
                ("kept: global row", "#e6550d"), ("kept: global column", "#31a354"),
                ("predicted, dropped by the engine", "#fb9a99"))
DROPPED, KEPT, GLOBAL_ROW, GLOBAL_COL, MISSED = range(len(PAIR_CLASSES))
#: global rows and columns are drawn as lines at least this wide (points), so that one at a
#: panel's edge stays visible; the panels keep a margin of this share of n around the matrix
MIN_LINE_PT, MARGIN = 1.5, 0.03


def pair_classes(predicted: np.ndarray, pattern) -> tuple[np.ndarray, np.ndarray]:
    """The class (:data:`PAIR_CLASSES`) of each (query, key) pair in the predicted mask (kept or
    dropped) and in the engine's pattern (window, or bands and columns, global row, global
    column, a predicted pair the pattern drops, dropped); ``pattern`` a HybridPattern or an
    EngineForm."""
    from .mapper import pattern_mask

    pred = np.where(predicted, KEPT, DROPPED)
    g = np.zeros(pattern.n, dtype=bool)
    g[list(pattern.globals_)] = True
    eng = np.where(pattern_mask(pattern), KEPT, np.where(predicted, MISSED, DROPPED))
    eng[:, g] = GLOBAL_COL
    eng[g, :] = GLOBAL_ROW
    return pred, eng


def attention_figure(dense: np.ndarray, predicted: np.ndarray, pattern, title: str):
    """The demo's picture of one head: dense attention (log10 p, with a colour bar), the
    predicted mask and the engine's pattern, the masks in the colours of :data:`PAIR_CLASSES`
    with a legend; returns the matplotlib figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from .mapper import keyset

    n = pattern.n
    cmap = ListedColormap([c for _, c in PAIR_CLASSES])
    norm = BoundaryNorm(np.arange(len(PAIR_CLASSES) + 1) - 0.5, cmap.N)
    pred, eng = pair_classes(predicted, pattern)
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.4), layout="constrained")
    im = axes[0].imshow(np.log10(dense + 1e-6), cmap="magma", vmin=-4, vmax=0,
                        interpolation="nearest")
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="log10 attention probability")
    axes[0].set_title("dense attention")
    axes[1].imshow(pred, cmap=cmap, norm=norm, interpolation="nearest")
    axes[1].set_title(f"predicted mask ({predicted.mean():.1%} of pairs)")
    axes[2].imshow(eng, cmap=cmap, norm=norm, interpolation="nearest")
    axes[2].set_title(f"engine pattern ({keyset(pattern).pairs() / n ** 2:.1%} of pairs)")
    fig.legend(handles=[Patch(facecolor=c, edgecolor="0.5", label=lab)
                        for lab, c in PAIR_CLASSES],
               loc="outside lower center", ncols=len(PAIR_CLASSES), frameon=False)
    fig.suptitle(title)
    m = max(1.0, MARGIN * n)
    for ax in axes:
        ax.set_xlim(-0.5 - m, n - 0.5 + m)
        ax.set_ylim(n - 0.5 + m, -0.5 - m)
        ax.set_facecolor("white")
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    fig.canvas.draw()  # the panels' final size, for the lines' width
    token_pt = axes[2].get_window_extent().height / fig.dpi * 72 / (n + 2 * m)
    lw = max(MIN_LINE_PT, token_pt)
    # the engine's global columns, then its rows over them (a pair in both is a global row's),
    # as lines through the margin; in the other panels, marks in the margin at the same places
    edge = (-0.5 - m, -0.5)
    for cls, horizontal in ((GLOBAL_COL, False), (GLOBAL_ROW, True)):
        for g in pattern.globals_:
            for ax, span in ((axes[0], edge), (axes[1], edge), (axes[2], (-0.5 - m, n - 0.5 + m))):
                xy = (span, (g, g)) if horizontal else ((g, g), span)
                ax.plot(*xy, color=PAIR_CLASSES[cls][1], lw=lw, solid_capstyle="butt",
                        gid=PAIR_CLASSES[cls][0])
    return fig


def _picture(path: Path, dense: np.ndarray, predicted: np.ndarray, pattern, title: str):
    import matplotlib.pyplot as plt

    fig = attention_figure(dense, predicted, pattern, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_demo(text: str, predictor: str | None, budget: float, layer: int, heads: list[int],
             params, sim: str, out: Path, waves: bool = False, step=lambda msg: None) -> dict:
    """Run the demo on ``text`` (see the module's docstring) with ``predictor`` (None: chosen by
    :func:`choose_predictor`) on the engine ``params``; writes the Verilog, the simulator build,
    the picture and the report (``report.json``) under ``out`` and returns the report.
    ``step(msg)`` is called at the start of each stage."""
    from ..hw.generate import generate
    from ..sim.runner import build, run_jobs
    from . import golden, minilm
    from .cycles import predict_cycles
    from .evaluate import mapped_patterns
    from .mapper import keyset
    from .predictors.base import LayerInput, make
    from .spec.keyset import EngineForm
    from .texts import calibration_texts

    t_start = time.perf_counter()
    ids = minilm.tokenize(text)  # ModelError (a ValueError) past 512 tokens
    predictor, why = choose_predictor(predictor, budget)
    step(f"text: {ids.size} tokens; predictor {predictor} ({why}), budget {budget:g} keys "
         "per query")

    step("MiniLM forward pass (NumPy) and predictor fit on calibration texts")
    model = minilm.load()
    trace = model.forward(ids)
    calib_tokens = min(max(ids.size, 128), minilm.MAX_POSITIONS)
    fitted = make(predictor).fit([model.forward(minilm.tokenize(t))
                                  for t in calibration_texts(4, calib_tokens)])
    maps = mapped_patterns(text, predictor, budget, limits=params.limits(), fitted=fitted,
                           trace=trace)
    lay = trace.layers[layer]
    predicted = fitted.predict(LayerInput.from_trace(trace, layer), min(budget, ids.size))

    step(f"generating the engine's Verilog (head dim 32, {params.lanes} lanes) and building the "
         f"{sim} model")
    vdir = out / "verilog"
    vpath, jpath = generate(params, vdir)
    build(params, sim, root=out / "sim", waves=waves)

    step(f"simulating layer {layer}, {len(heads)} head(s), through cocotb")
    jobs, inputs = [], []
    for h in heads:
        job, inp = _head_job(lay.q[h], lay.k[h], lay.v[h], maps[layer][h].pattern,
                             seed=layer * 100 + h)
        jobs.append(job)
        inputs.append(inp)
    results = run_jobs(params, jobs, sim=sim, root=out / "sim", waves=waves, name="demo")

    rows = []
    tok = minilm.tokenizer()
    for h, r, (qi, ki, vi, cfg) in zip(heads, results, inputs):
        mp = maps[layer][h]
        pat = mp.pattern
        if isinstance(pat, EngineForm):  # bands beside the window or columns
            ref = golden.attention_keys(qi, ki, vi, pat.keyset(), cfg)
        else:
            ref = golden.attention(qi, ki, vi, pat, cfg)
        got = np.asarray(r.get("output", []), dtype=np.int64)
        exact = bool(r.get("ok")) and got.shape == ref.shape and bool(np.array_equal(got, ref))
        ideal = 2 * params.head_dim * keyset(pat).pairs() / params.lanes
        rows.append({
            "head": h, "left": pat.left, "right": pat.right, "dilation": pat.dilation,
            "globals": list(pat.globals_),
            "bands": [list(b) for b in getattr(pat, "bands", ())],
            "columns": list(getattr(pat, "columns", ())),
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
    pic = out / f"attention_l{layer}_h{h0}.png"
    _picture(pic, lay.probs[h0], predicted[h0], maps[layer][h0].pattern,
             f"layer {layer} head {h0}: {predictor} at {budget:g} keys/query")

    measured = [r["cycles"] for r in rows]
    util = utilisation_breakdown(params, [maps[layer][h].pattern for h in heads],
                                 sum(measured) if None not in measured else None)
    report = {"text_tokens": int(ids.size), "predictor": predictor, "why": why,
              "budget": budget, "layer": layer, "params": params.as_dict(),
              "heads": rows, "utilisation": util, "embedding_cosine": cos,
              "wall_s": time.perf_counter() - t_start, "verilog": str(vpath), "picture": str(pic)}
    report["summary"] = report_lines(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
