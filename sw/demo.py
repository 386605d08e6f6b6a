"""The demo (``swattn demo``): real text through a sparsity predictor, the engine's Verilog and
cocotb.

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
import time
from pathlib import Path

import numpy as np

from .spec.errors import UserError

DEFAULT_BUDGET = 32  #: keys per query the predictor and the mapper aim for
DEFAULT_TOKENS = 160  #: length of the built-in text
DEFAULT_PREDICTOR = "dsa"  #: used when no evaluation results are found
EVAL_RESULTS = ("build/eval.json", "docs/eval.json")


def engine_params(lanes: int = 64):
    """The demo's engine: MiniLM's head dim, windows up to 64 tokens per side, 8 globals."""
    from .spec.engine_params import EngineParams

    return EngineParams(head_dim=32, lanes=lanes, max_radius=64, max_globals=8, max_dilation=4,
                        seq_width=10)


def choose_predictor(name: str | None, budget: float) -> tuple[str, str]:
    """The predictor to run and why: ``name`` if given, else the best embedding cosine at the
    nearest budget of the last evaluation results (:data:`EVAL_RESULTS`), else the default."""
    from .predictors.base import registry

    if name:
        if name not in registry():
            raise UserError(f"unknown predictor {name!r}: allowed {', '.join(registry())}")
        return name, "chosen with --predictor"
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


def _head_job(q, k, v, pattern, seed):
    """int8 inputs, softmax config and the testbench job of one head."""
    from ..sim.runner import job_to_json
    from .spec.numerics import SoftmaxConfig, quantise

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
    pic = out / f"attention_l{layer}_h{h0}.png"
    _picture(pic, lay.probs[h0], predicted[h0], maps[layer][h0].pattern,
             f"layer {layer} head {h0}: {predictor} at {budget:g} keys/query")

    report = {"text_tokens": int(ids.size), "predictor": predictor, "why": why,
              "budget": budget, "layer": layer, "params": params.as_dict(),
              "heads": rows, "embedding_cosine": cos, "wall_s": time.perf_counter() - t_start,
              "verilog": str(vpath), "picture": str(pic)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
