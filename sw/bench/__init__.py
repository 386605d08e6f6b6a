"""``swattn bench``: the engine's figures side by side with SALO, the CPU and a GPU.

For every workload (Longformer-like, dilated, BigBird-like, small validation patterns and,
optionally, the patterns the mapper chooses for MiniLM) and every engine size (lanes) it reports

* useful MACs (2 d per (query, key) pair of the pattern: d for q.k, d for p.v) and the ideal
  cycles ``ceil(useful / lanes)``, the physical limit of ``lanes`` int8 MACs;
* engine cycles from the analytic model ``swattn.sw.cycles.predict_cycles`` (marked *model*; shown
  as unavailable while that module does not exist) and measured RTL cycles for small runs
  (``rtl_max_n``), and the utilisation ideal / engine cycles;
* SALO's published cycle model at the same local MAC count (:mod:`swattn.sw.salo`);
* per board, time per head and GMAC/s at the Fmax of its last build (``build/synth/*.json``),
  beside the multiplier-bound rate at the same clock (lanes MACs a cycle), and one job's time
  through the board's UART host link beside the engine's compute time (:mod:`.link`);
* the CPU (golden model and a float32 NumPy sparse attention, one thread, time per head) and the
  GPU figures kept in ``docs/gpu_baseline.json`` (``bench/gpu_baseline.py``);
* scaling of cycles with n (with a linear fit), with the window and with lanes;
* the targets, each with pass / miss / n/a and the margin.

:func:`run_bench` writes ``report.md`` and PNG plots under ``out`` and, with ``json_path``, every
figure as JSON. The modules, one per job:

* :mod:`.kinds`: the workload table (shared with ``bench/gpu_baseline.py``);
* :mod:`.workloads`: the workloads and the engines they run on;
* :mod:`.model`: the cycle model, each workload's cycle figures and their scaling;
* :mod:`.boards`: the boards' builds and their figures; :mod:`.link`: a job's bytes on the host
  link;
* :mod:`.cpu`, :mod:`.gpu`, :mod:`.rtl`: CPU timing, the kept GPU figures, measured RTL cycles;
* :mod:`.minilm`: MiniLM's heads as the mapper chooses them;
* :mod:`.targets`, :mod:`.report`, :mod:`.plots`: the targets, ``report.md`` and the plots.

The command line (``swattn bench``) is :mod:`swattn.sw.cli.bench`.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from ..report import checkout_commit
from .boards import board_figures, read_boards
from .keysets import keyset_figures
from .cpu import cpu_name, sparse_attention_f32, time_cpu
from .model import figures, linear_fit, load_cycle_model, scaling
from .gpu import GPU_JSON, read_gpu
from .kinds import HEAD_DIM, KINDS, N_DEFAULT, VALIDATION
from .minilm import minilm_figures, minilm_workloads
from .plots import plot
from .report import render
from .rtl import measure_rtl
from .targets import check_targets
from .workloads import KIND_NAMES, LANES_DEFAULT, Workload, board_heads, table_workloads

__all__ = ["GPU_JSON", "HEAD_DIM", "KINDS", "KIND_NAMES", "LANES_DEFAULT", "N_DEFAULT",
           "VALIDATION", "Workload", "board_figures", "board_heads", "check_targets", "figures",
           "linear_fit", "load_cycle_model", "measure_rtl", "minilm_workloads", "plot",
           "read_boards", "read_gpu", "render", "run_bench", "scaling", "sparse_attention_f32",
           "table_workloads", "time_cpu"]


def run_bench(out, *, json_path=None, ns=N_DEFAULT, lanes=LANES_DEFAULT, cpu_max_n: int = 16384,
              repeat: int = 1, rtl_max_n: int = 0, rtl_lanes=(64,), rtl_kinds=None,
              gpu_json=GPU_JSON, synth_dir="build/synth", minilm: bool = True,
              log=None) -> dict:
    """The whole benchmark: every figure, the targets, ``out/report.md`` and the plots under
    ``out`` and, with ``json_path``, every figure as JSON there; returns the figures.

    ns : sequence lengths of the workloads; lanes : engine sizes of the figures.
    cpu_max_n : time the CPU baselines on workloads up to this n (0: none), best of ``repeat``.
    rtl_max_n : simulate workloads up to this n for measured cycles (0: none), on engines of
        each of ``rtl_lanes`` lanes, only the kinds in ``rtl_kinds`` if given.
    gpu_json : the kept GPU figures; synth_dir : where board builds leave ``<board>.json``.
    minilm : also the patterns the mapper chooses for MiniLM (loads the model).
    """
    if log is None:
        log = lambda s: print(s, flush=True)  # noqa: E731
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    model, reason = load_cycle_model()
    log(f"swattn bench: cycle model {'found' if model else 'unavailable: ' + reason}")
    boards = read_boards(Path(synth_dir))
    log(f"  boards: {', '.join(boards) if boards else 'no build in ' + str(synth_dir)}")
    wls = table_workloads(sorted(set(ns)))
    # every simulated engine size gets its figures too (the model is compared with the RTL there)
    lanes_list = sorted(set(lanes) | (set(rtl_lanes) if rtl_max_n else set()))

    rtl_runs = {}
    if rtl_max_n:
        rtl_runs = measure_rtl([w for w in wls if w.n <= rtl_max_n and (
            not rtl_kinds or w.name.rsplit("-n", 1)[0] in rtl_kinds)],
                               sorted(set(rtl_lanes)), log)

    rows = [figures(w, lanes_list, model, rtl_runs) for w in wls]
    log(f"  figures for {len(rows)} workloads x {len(lanes_list)} engine sizes")

    mm = None
    if minilm:
        mwls, err = minilm_workloads(log)
        if err:
            mm = {"error": err}
            log(f"  minilm: unavailable ({err})")
        else:
            mm = minilm_figures(mwls, lanes_list, model)

    cpu = {}
    cpu_wls = [w for w in wls if w.n <= cpu_max_n and w.kind != "validation"]
    if cpu_wls:
        log(f"  CPU baselines on {len(cpu_wls)} workloads (one thread) ...")
        try:
            cpu = time_cpu(cpu_wls, repeat)
        except (subprocess.CalledProcessError, ValueError) as exc:  # report goes on without
            log(f"  CPU baselines failed: {exc}")

    gpu = read_gpu(Path(gpu_json))
    res = {
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "commit": checkout_commit(),
        "machine": {"platform": platform.platform(), "processor": cpu_name(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "head_dim": HEAD_DIM, "lanes_list": lanes_list,
        "cycle_model": {"available": model is not None, "reason": reason},
        "synth_dir": str(synth_dir), "boards": boards,
        "board_figures": board_figures(boards, model),
        "workloads": rows, "cpu": cpu, "cpu_repeat": repeat, "gpu": gpu,
        "minilm": mm,
        "rtl": [dict(name=k[0], lanes=k[1], **v) for k, v in rtl_runs.items()],
        "scaling": scaling(model, lanes_list),
        "keysets": keyset_figures() if model is not None else [],
    }
    res["targets"] = check_targets(rows, boards, lanes_list, reason)
    res["plots"] = plot(res, out)
    (out / "report.md").write_text(render(res))
    _log_summary(res, rows, out, log, time.perf_counter() - t_start)
    if json_path:
        if gpu:
            gpu.pop("by_kind_n", None)
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1, default=str)
            f.write("\n")
        log(f"  JSON: {json_path}")
    return res


def _log_summary(res: dict, rows: list[dict], out: Path, log, seconds: float) -> None:
    """The model against the RTL, the fits of cycles against n and the targets, as log lines."""
    for r in res["rtl"]:
        f = next((w["lanes"][str(r["lanes"])] for w in rows if w["name"] == r["name"]), {})
        if f.get("model_rel_err") is not None:
            log(f"  model against RTL, {r['name']} lanes {r['lanes']}: model "
                f"{f['engine_cycles']:,}, RTL {r['cycles']:,} ({100 * f['model_rel_err']:+.2f}%)")
    for k, f in res["scaling"]["n"]["fits"].items():
        log(f"  cycles vs n ({k}): {f['slope']:.1f} n + {f['intercept']:.0f}, "
            f"R^2 {f['r2']:.6f}, largest residual {f['max_rel_residual']:.2%}")
    for b, e in res["board_figures"].items():
        k = e.get("link")
        h = next((h for h in e["heads"] if k and h["name"] == k["head"]), None)
        if not k or not h:
            continue
        r = h.get("at_fmax") if e["fmax_mhz"] and e["fmax_mhz"] < e["target_mhz"] else \
            h.get("at_target")
        log(f"  {b}, {k['head']} at {r['mhz']:g} MHz: {r['gmac_s']:.2f} GMAC/s of "
            f"{r['peak_gmac_s']:.2f} multiplier-bound ({r['fraction_of_peak']:.1%}); one job "
            f"through the UART at {k['baud']:,} baud: {k['total']:,} bytes, "
            f"{k['link_s']:.3g} s, against {k['compute_s'] * 1e3:.3g} ms computing")
        c = e.get("chip")
        if c and "fraction_of_chip" in c:
            log(f"  {b}, the device at {c['mhz']:g} MHz: {c['dsp_products']} int8 products on "
                f"{c['dsp_blocks']} {c['dsp_cell']} + {c['lut_products']:,} of logic "
                f"({c['lut4_per_product']} LUT4 each) = {c['peak_gmac_s']:.1f} GMAC/s; the "
                f"engine uses {c['fraction_of_chip']:.1%} of it ({c['fraction_of_dsp']:.1%} of "
                f"the hard blocks' {c['dsp_peak_gmac_s']:.1f})")
    log("  targets:")
    for t in res["targets"]:
        log(f"    {t['status'].upper():4s}  {t['target']}: {t.get('note', '')}")
    log(f"  report: {out / 'report.md'} ({len(res['plots'])} plots), {seconds:.0f} s")
