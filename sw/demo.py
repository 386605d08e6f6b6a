"""The demo (``swattn demo``): real text through a sparsity predictor, the engine's Verilog and
cocotb.

1. A text (deterministic, from docstrings of installed libraries, or ``--text FILE``) runs
   through all-MiniLM-L6-v2 in NumPy.
2. A predictor (``--predictor NAME``, else the best embedding cosine of the mapped patterns in the
   evaluation results kept with the package: the last ``swattn eval --json build/eval.json``,
   else the default run in ``docs/eval.json`` (the README's table), both in the repository the
   package runs from, whatever the current folder; else DSA) predicts each head's mask, and the
   mapper turns it into an engine configuration under the engine's limits: every head to a
   window, dilation and globals, and, where the engine has band and column fields
   (``--max-bands``, ``--max-columns``; by default 4 bands, the window included, and 8 key-only
   columns), every head once more with bands beside the window and key-only columns as well.
   The report names where the choice comes from.
3. The engine's Verilog for MiniLM's head dim (32) is generated and one layer's heads (or
   ``--layer/--head``) run through cocotb on Verilator with their window-and-globals patterns,
   and one more head of the layer with its bands and columns (``--keyset-head``, else the head
   where they gain the most coverage of the predicted pairs over window and globals,
   :func:`choose_keyset_head`), each output compared bit for bit with the golden model.
4. A report: per head the pattern and its tokens, sparsity, cycles, utilisation, bit-exactness;
   where the cycles beyond the MAC-bound ideal go, by the cycle model (:func:`utilisation_line`);
   the head with bands and columns against its window and globals (:func:`keyset_line`); the
   sentence-embedding cosine of the whole model with the window-and-globals patterns in every
   layer through the int8 golden model, against dense float (and, beside it, the same with the
   bands and columns wherever the mapper finds them); a picture of one head (the one with bands
   and columns, else the first simulated): its dense attention (with a colour bar) beside the
   predicted mask and its mapped patterns (one legend, the same colours in every panel; global
   rows and columns drawn as lines through a margin, key-only columns as lines from the top
   margin, bands beside the window as diagonals).

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


DEFAULT_MAX_BANDS = 4  #: bands per job of the demo's engine, the window included
DEFAULT_MAX_COLUMNS = 8  #: key-only columns per job of the demo's engine


def engine_params(lanes: int = 64, max_bands: int = DEFAULT_MAX_BANDS,
                  max_columns: int = DEFAULT_MAX_COLUMNS):
    """The demo's engine: MiniLM's head dim, windows up to 64 tokens per side, 8 globals, and
    ``max_bands - 1`` bands beside the window and ``max_columns`` key-only columns per job."""
    from .spec.engine_params import EngineParams

    return EngineParams(head_dim=32, lanes=lanes, max_radius=64, max_globals=8, max_dilation=4,
                        seq_width=10, max_bands=max_bands, max_columns=max_columns)


def plain_limits(params):
    """``params``' limits for the window and globals alone (one band, no column): what every
    head is mapped with for the embedding cosine."""
    from dataclasses import replace

    return replace(params.limits(), max_bands=1, max_columns=0)


def has_keyset(params) -> bool:
    """Whether the engine ``params`` takes bands beside the window or key-only columns."""
    return params.max_bands > 1 or params.max_columns > 0


def choose_keyset_head(plain, keyset, layer: int, head: int | None = None):
    """The head of ``layer`` shown with bands and key-only columns, and why: ``head`` if given;
    else, of the heads whose mapping under the engine's band and column limits (``keyset``, one
    :class:`~swattn.sw.mapper.Mapping` per head) has both bands beside the window and key-only
    columns (else either), the one whose coverage of the predicted pairs gains the most over its
    window-and-globals mapping (``plain``), the lowest of equal gains. (None, why) where no head's
    mapping has a band or a column."""
    if head is not None:
        return head, "chosen with --keyset-head"
    extra = [(bool(getattr(m.pattern, "bands", ())), bool(getattr(m.pattern, "columns", ())))
             for m in keyset]
    gain = [k.coverage - p.coverage for p, k in zip(plain, keyset)]
    both = [h for h, e in enumerate(extra) if all(e)]
    pool = both or [h for h, e in enumerate(extra) if any(e)]
    if not pool:
        return None, (f"no head of layer {layer} maps to a band beside the window or a key-only "
                      f"column under these limits")
    h = max(pool, key=lambda x: (gain[x], -x))
    what = "bands beside the window and key-only columns" if both else \
        "a band beside the window or a key-only column"
    return h, (f"of the {len(pool)} heads of layer {layer} that map to {what}, the one where "
               f"they gain the most coverage of the predicted pairs over window and globals")


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
    """The report's lines beside the per-head table: where the predictor comes from, where the
    cycles go (:func:`utilisation_line`), and the head simulated with bands and key-only columns
    (:func:`keyset_line`) or why there is none."""
    lines = [f"predictor: {report['predictor']} ({report['why']})",
             utilisation_line(report["utilisation"])]
    if report.get("keyset"):
        lines.append(keyset_line(report["keyset"]))
    elif report.get("keyset_why"):
        lines.append(f"no head with bands or key-only columns: {report['keyset_why']}")
    return lines


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
                ("kept: band beside the window", "#41b6c4"),
                ("kept: key-only column (no row)", "#7b3294"),
                ("kept: global row", "#e6550d"), ("kept: global column", "#31a354"),
                ("predicted, dropped by the engine", "#fb9a99"))
DROPPED, KEPT, BAND, COLUMN, GLOBAL_ROW, GLOBAL_COL, MISSED = range(len(PAIR_CLASSES))
#: global rows and columns, key-only columns and bands are drawn as lines at least this wide
#: (points), so that one at a panel's edge (or a one-token band) stays visible; the panels keep
#: a margin of this share of n around the matrix
MIN_LINE_PT, MARGIN = 1.5, 0.03


def _window_cells(pattern) -> np.ndarray:
    """The n x n cells of a pattern's window (the band through the query), before the engine's
    limits or a grid clip them."""
    i, j = np.indices((pattern.n, pattern.n))
    off = j - i
    d = pattern.dilation
    return (off % d == 0) & (off >= -pattern.left * d) & (off <= pattern.right * d)


def band_offsets(pattern) -> list[list[int]]:
    """Per band beside the window, its key offsets from the query in tokens."""
    d = pattern.dilation
    return [[(s + k) * d for k in range(c)] for s, c in getattr(pattern, "bands", ())]


def pair_classes(predicted: np.ndarray, pattern) -> tuple[np.ndarray, np.ndarray]:
    """The class (:data:`PAIR_CLASSES`) of each (query, key) pair in the predicted mask (kept or
    dropped) and in the engine's pattern (window, band beside the window, key-only column,
    global row, global column, a predicted pair the pattern drops, dropped); ``pattern`` a
    HybridPattern or an EngineForm. A pair in several parts of the pattern takes the last of
    window, band, key-only column, global column, global row."""
    from .mapper import pattern_mask

    pred = np.where(predicted, KEPT, DROPPED)
    keep = pattern_mask(pattern)
    eng = np.where(keep, np.where(_window_cells(pattern), KEPT, BAND),
                   np.where(predicted, MISSED, DROPPED))
    eng[:, list(getattr(pattern, "columns", ()))] = COLUMN
    g = np.zeros(pattern.n, dtype=bool)
    g[list(pattern.globals_)] = True
    eng[:, g] = GLOBAL_COL
    eng[g, :] = GLOBAL_ROW
    return pred, eng


def _panel_title(name: str, pattern, predicted: np.ndarray) -> str:
    from .mapper import keyset, pattern_mask

    n = pattern.n
    cover = (predicted & pattern_mask(pattern)).sum() / max(int(predicted.sum()), 1)
    return (f"{name}\n{keyset(pattern).pairs() / n ** 2:.1%} of pairs, "
            f"{cover:.1%} of the predicted ones")


def attention_figure(dense: np.ndarray, predicted: np.ndarray, patterns, title: str,
                     names=None):
    """The demo's picture of one head: dense attention (log10 p, with a colour bar), the
    predicted mask and the engine's pattern, or each of ``patterns`` (a pattern or a sequence;
    ``names``: their panels' titles), the masks in the colours of :data:`PAIR_CLASSES` with a
    legend; returns the matplotlib figure. Global rows and columns are drawn as lines through
    the margin, key-only columns as lines through the matrix with a mark in the top margin,
    bands beside the window as diagonals; the other panels mark the same rows and columns in
    the margin."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    if not isinstance(patterns, (list, tuple)):
        patterns = [patterns]
    names = list(names or ["engine pattern"] * len(patterns))
    n = patterns[0].n
    cmap = ListedColormap([c for _, c in PAIR_CLASSES])
    norm = BoundaryNorm(np.arange(len(PAIR_CLASSES) + 1) - 0.5, cmap.N)
    fig, axes = plt.subplots(1, 2 + len(patterns), figsize=(4.6 * (2 + len(patterns)) + 0.2, 5.6),
                             layout="constrained")
    im = axes[0].imshow(np.log10(dense + 1e-6), cmap="magma", vmin=-4, vmax=0,
                        interpolation="nearest")
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="log10 attention probability")
    axes[0].set_title("dense attention")
    pred, _ = pair_classes(predicted, patterns[0])
    axes[1].imshow(pred, cmap=cmap, norm=norm, interpolation="nearest")
    axes[1].set_title(f"predicted mask ({predicted.mean():.1%} of pairs)")
    for ax, pat, name in zip(axes[2:], patterns, names):
        ax.imshow(pair_classes(predicted, pat)[1], cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(_panel_title(name, pat, predicted))
    fig.legend(handles=[Patch(facecolor=c, edgecolor="0.5", label=lab)
                        for lab, c in PAIR_CLASSES],
               loc="outside lower center", ncols=4, frameon=False)
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
    edge, through = (-0.5 - m, -0.5), (-0.5 - m, n - 0.5 + m)

    def line(ax, cls, xy, **kw):
        ax.plot(*xy, color=PAIR_CLASSES[cls][1], lw=lw, solid_capstyle="butt",
                gid=PAIR_CLASSES[cls][0], **kw)

    for ax, pat in zip(axes[2:], patterns):
        # bands beside the window: a diagonal per offset (no grid in the demo's mappings)
        if getattr(pat, "grid", None) is None:
            for o in (o for offs in band_offsets(pat) for o in offs):
                if abs(o) < n:
                    x0, y0 = max(o, 0), max(-o, 0)
                    k = n - 1 - max(x0, y0)
                    line(ax, BAND, ((x0, x0 + k), (y0, y0 + k)), solid_joinstyle="miter")
    # key-only columns (from the top margin through the matrix), the engine's global columns,
    # then its rows over them (a pair in both is a global row's), through both margins; in the
    # other panels, marks in the margin at the places of every pattern's
    def marks(pat):
        return ([(COLUMN, False, c) for c in getattr(pat, "columns", ())]
                + [(GLOBAL_COL, False, g) for g in pat.globals_]
                + [(GLOBAL_ROW, True, g) for g in pat.globals_])

    order = (COLUMN, GLOBAL_COL, GLOBAL_ROW)
    for cls, horizontal, at in sorted({x for pat in patterns for x in marks(pat)},
                                      key=lambda x: (order.index(x[0]), x[2])):
        for ax in axes[:2]:
            line(ax, cls, (edge, (at, at)) if horizontal else ((at, at), edge))
    for ax, pat in zip(axes[2:], patterns):
        for cls, horizontal, at in marks(pat):
            span = (-0.5 - m, n - 0.5) if cls == COLUMN else through
            line(ax, cls, (span, (at, at)) if horizontal else ((at, at), span))
    return fig


def _picture(path: Path, dense: np.ndarray, predicted: np.ndarray, patterns, title: str,
             names=None):
    import matplotlib.pyplot as plt

    fig = attention_figure(dense, predicted, patterns, title, names)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pattern_fields(pat, ids, tok) -> dict:
    """A mapped pattern's fields in the report, with the tokens of its globals and columns."""
    return {"left": pat.left, "right": pat.right, "dilation": pat.dilation,
            "globals": list(pat.globals_),
            "bands": [list(b) for b in getattr(pat, "bands", ())],
            "columns": list(getattr(pat, "columns", ())),
            "global_tokens": [tok.id_to_token(int(ids[g])) for g in pat.globals_],
            "column_tokens": [tok.id_to_token(int(ids[c])) for c in getattr(pat, "columns", ())]}


def _job_row(params, h, mp, result, inputs, ids, tok) -> dict:
    """One simulated head's row of the report: its pattern, cycles (measured and by the cycle
    model), utilisation and whether the Verilog's output equals the golden model's."""
    from . import golden
    from .cycles import predict_cycles
    from .mapper import keyset

    qi, ki, vi, cfg = inputs
    pat = mp.pattern
    ref = golden.attention_engine(qi, ki, vi, pat, cfg)
    got = np.asarray(result.get("output", []), dtype=np.int64)
    exact = bool(result.get("ok")) and got.shape == ref.shape and bool(np.array_equal(got, ref))
    ideal = 2 * params.head_dim * keyset(pat).pairs() / params.lanes
    cycles = result.get("cycles")
    return {"head": h, **_pattern_fields(pat, ids, tok), "sparsity": mp.sparsity,
            "coverage": mp.coverage, "keys_per_query": mp.keys_per_query, "cycles": cycles,
            "predicted_cycles": predict_cycles(params, pat), "ideal_cycles": ideal,
            "utilisation": ideal / cycles if cycles else None, "bit_exact": exact,
            "error": result.get("error_text")}


def keyset_line(ks: dict) -> str:
    """One line on the head simulated with bands beside the window and key-only columns (the
    report's ``keyset``): its pattern, what it covers against the window and globals, its
    cycles, utilisation and bit-exactness."""
    def tokens(idx, names):
        return ", ".join(f"{i} {t}" for i, t in zip(idx, names)) or "none"

    def offsets(offs):
        return f"{offs[0]:+d}" if len(offs) == 1 else f"{offs[0]:+d}..{offs[-1]:+d}"

    win = f"window -{ks['left']}..+{ks['right']}" + (
        f" dilation {ks['dilation']}" if ks["dilation"] > 1 else "")
    bands = ", ".join(offsets(o) for o in ks["band_offsets"]) or "none"
    util = f"{ks['utilisation']:.1%}" if ks["utilisation"] else "-"
    return (f"head {ks['head']} with bands and key-only columns ({ks['why']}; simulated besides, "
            f"the embedding cosine keeps window and globals): {win}, "
            f"{len(ks['bands'])} band(s) beside it at offsets {bands} tokens, "
            f"{len(ks['columns'])} key-only column(s) "
            f"{tokens(ks['columns'], ks['column_tokens'])}, "
            f"globals {tokens(ks['globals'], ks['global_tokens'])}; {ks['keys_per_query']:.1f} "
            f"keys/query covering {ks['coverage']:.1%} of the predicted pairs and "
            f"{ks['attention_mass']:.1%} of the dense attention, against "
            f"{ks['plain']['coverage']:.1%} and {ks['plain']['attention_mass']:.1%} with window "
            f"and globals alone ({ks['plain']['keys_per_query']:.1f} keys/query); "
            f"{ks['cycles']} cycles (cycle model {ks['predicted_cycles']}), utilisation {util}, "
            f"bit-exact {'yes' if ks['bit_exact'] else 'NO'}")


def run_demo(text: str, predictor: str | None, budget: float, layer: int, heads: list[int],
             params, sim: str, out: Path, waves: bool = False, step=lambda msg: None,
             keyset_head: int | None = None) -> dict:
    """Run the demo on ``text`` (see the module's docstring) with ``predictor`` (None: chosen by
    :func:`choose_predictor`) on the engine ``params``; writes the Verilog, the simulator build,
    the picture and the report (``report.json``) under ``out`` and returns the report.
    Where the engine takes bands or columns, one more head of ``layer`` (``keyset_head``, else
    :func:`choose_keyset_head`'s) is mapped with them and simulated besides; its job (inputs,
    pattern, softmax configuration) and the Verilog's output go to ``keyset_job.json``.
    ``step(msg)`` is called at the start of each stage."""
    from ..hw.generate import generate
    from ..sim.runner import build, run_jobs
    from . import minilm
    from .evaluate import mapped_patterns
    from .mapper import pattern_mask
    from .predictors.base import LayerInput, make
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
    # every head as window and globals (the embedding cosine, the per-head table); with the
    # engine's bands and columns as well, for the head shown with them
    maps = mapped_patterns(text, predictor, budget, limits=plain_limits(params), fitted=fitted,
                           trace=trace)
    maps_ks = (mapped_patterns(text, predictor, budget, limits=params.limits(), fitted=fitted,
                               trace=trace) if has_keyset(params) else None)
    lay = trace.layers[layer]
    predicted = fitted.predict(LayerInput.from_trace(trace, layer), min(budget, ids.size))
    ks_head, ks_why = (choose_keyset_head(maps[layer], maps_ks[layer], layer, keyset_head)
                       if maps_ks else (None, "the engine has no band or column fields"))

    step(f"generating the engine's Verilog (head dim 32, {params.lanes} lanes, "
         f"{params.max_bands} band(s), {params.max_columns} key-only column(s)) and building the "
         f"{sim} model")
    vdir = out / "verilog"
    vpath, jpath = generate(params, vdir)
    build(params, sim, root=out / "sim", waves=waves)

    sims = [(h, maps[layer][h]) for h in heads]
    if ks_head is not None:
        sims.append((ks_head, maps_ks[layer][ks_head]))
    step(f"simulating layer {layer}, {len(heads)} head(s)"
         + ("" if ks_head is None else f" and head {ks_head} with bands and columns")
         + ", through cocotb")
    jobs, inputs = [], []
    for i, (h, mp) in enumerate(sims):
        job, inp = _head_job(lay.q[h], lay.k[h], lay.v[h], mp.pattern,
                             seed=layer * 100 + h + (50 if i >= len(heads) else 0))
        jobs.append(job)
        inputs.append(inp)
    results = run_jobs(params, jobs, sim=sim, root=out / "sim", waves=waves, name="demo")

    tok = minilm.tokenizer()
    rows = [_job_row(params, h, mp, r, inp, ids, tok)
            for (h, mp), r, inp in zip(sims, results, inputs)]
    keyset = None
    if ks_head is not None:
        keyset = rows.pop()
        h = ks_head

        def mass(pat):  # the dense attention probability the pattern covers, per query
            return float((lay.probs[h] * pattern_mask(pat)).sum() / ids.size)

        plain = maps[layer][h]
        keyset.update(
            why=ks_why, attention_mass=mass(maps_ks[layer][h].pattern),
            band_offsets=band_offsets(maps_ks[layer][h].pattern),
            plain={**_pattern_fields(plain.pattern, ids, tok), "coverage": plain.coverage,
                   "keys_per_query": plain.keys_per_query,
                   "attention_mass": mass(plain.pattern)},
            job=str(out / "keyset_job.json"))
        (out / "keyset_job.json").write_text(json.dumps(
            {"layer": layer, "head": h, "job": jobs[-1],
             "output": results[-1].get("output")}) + "\n")

    step("whole model with the mapped patterns in every layer through the int8 golden model")

    def cosine(mps):
        sparse = model.forward(ids, attention=minilm.golden_attention(
            lambda li, q, k, hidden: [m.pattern for m in mps[li]]))
        return minilm.cosine(sparse.embedding, trace.embedding)

    cos = cosine(maps)
    cos_ks = cosine(maps_ks) if maps_ks else None

    h0 = heads[0] if ks_head is None else ks_head
    pic = out / f"attention_l{layer}_h{h0}.png"
    head_title = f"layer {layer} head {h0}: {predictor} at {budget:g} keys/query"
    if ks_head is None:
        _picture(pic, lay.probs[h0], predicted[h0], maps[layer][h0].pattern, head_title)
    else:
        _picture(pic, lay.probs[h0], predicted[h0],
                 [maps[layer][h0].pattern, maps_ks[layer][h0].pattern], head_title,
                 ["engine: window and globals", "engine: window, bands, key-only columns"])

    measured = [r["cycles"] for r in rows]
    util = utilisation_breakdown(params, [maps[layer][h].pattern for h in heads],
                                 sum(measured) if None not in measured else None)
    report = {"text_tokens": int(ids.size), "predictor": predictor, "why": why,
              "budget": budget, "layer": layer, "params": params.as_dict(),
              "heads": rows, "keyset": keyset, "keyset_why": ks_why, "utilisation": util,
              "embedding_cosine": cos, "embedding_cosine_keyset": cos_ks,
              "wall_s": time.perf_counter() - t_start, "verilog": str(vpath), "picture": str(pic)}
    report["summary"] = report_lines(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
