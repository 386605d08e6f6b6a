"""``swattn bench``: the engine's figures side by side with SALO, the CPU and a GPU.

For every workload (Longformer-like, dilated, BigBird-like, small validation patterns and,
optionally, the patterns the mapper chooses for MiniLM) and every engine size (lanes) it reports

* useful MACs (2 d per (query, key) pair of the pattern: d for q.k, d for p.v) and the ideal
  cycles ``ceil(useful / lanes)``, the physical limit of ``lanes`` int8 MACs;
* engine cycles from the analytic model ``swattn.sw.cycles.predict_cycles`` (marked *model*; shown
  as unavailable while that module does not exist) and measured RTL cycles for small runs
  (``--rtl-max-n``), and the utilisation ideal / engine cycles;
* SALO's published cycle model at the same local MAC count (:mod:`swattn.sw.salo`);
* per board, time per head and GMAC/s at the Fmax of its last build (``build/synth/*.json``);
* the CPU (golden model and a float32 NumPy sparse attention, one thread, time per head) and the
  GPU figures kept in ``docs/gpu_baseline.json`` (``bench/gpu_baseline.py``);
* scaling of cycles with n (with a linear fit), with the window and with lanes;
* the targets, each with pass / miss / n/a and the margin.

Writes ``report.md`` and PNG plots under ``--out`` (``build/bench``) and, with ``--json``, every
figure as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .engine_params import EngineParams
from .pattern import HybridPattern

HELP = "benchmark report: utilisation, cycles against SALO, board Fmax, CPU and GPU figures"

N_DEFAULT = (1024, 2048, 4096, 16384)
LANES_DEFAULT = (8, 64, 128, 1024)
HEAD_DIM = 64
REPO = Path(__file__).resolve().parent.parent
GPU_JSON = REPO / "docs" / "gpu_baseline.json"

#: the bench's targets
UTIL_TARGET = 0.95
MODEL_TOL = 0.02
FMAX_TARGETS = {"ice40": ("iCE40UP5K", 36.0), "ecp5": ("ECP5-85F", 100.0)}

#: (kind, radius, dilation, globals); names match bench/gpu_baseline.py's KINDS so the GPU
#: figures join by name. Global tokens are the first G positions.
KINDS = (
    ("longformer-g0", 256, 1, 0),
    ("longformer-g16", 256, 1, 16),
    ("dilated2-g16", 256, 2, 16),
    ("bigbird-g64", 96, 1, 64),
)
#: small patterns cheap enough to simulate, for the model-against-RTL check; they share one
#: engine build (max radius 32, 4 globals, dilation 2)
VALIDATION_ENGINE = (32, 4, 2)
VALIDATION = (
    ("small-g0", 256, 32, 1, 0),
    ("small-g4", 512, 32, 1, 4),
    ("small-dil2-g4", 512, 16, 2, 4),
)


@dataclass(frozen=True)
class Workload:
    """One attention head: ``n`` tokens, window ``radius`` per side in steps of ``dilation``,
    ``globals`` global tokens (the first ones), head dim ``head_dim``."""

    name: str
    kind: str
    n: int
    radius: int
    dilation: int
    globals: int
    head_dim: int = HEAD_DIM
    left: int | None = None  # asymmetric windows (MiniLM mappings); None: radius
    right: int | None = None
    global_idx: tuple[int, ...] | None = None
    #: (max_radius, max_globals, max_dilation) of the engine, when several workloads share one
    #: build (the RTL validation runs); None: the smallest engine that takes the pattern
    engine: tuple[int, int, int] | None = None

    def pattern(self) -> HybridPattern:
        g = self.global_idx if self.global_idx is not None else tuple(range(self.globals))
        left = self.radius if self.left is None else self.left
        right = self.radius if self.right is None else self.right
        return HybridPattern(self.n, left, right, self.dilation, g)

    def params(self, lanes: int) -> EngineParams:
        """The smallest engine of ``lanes`` lanes that takes this pattern."""
        p = self.pattern()
        reach = max(p.left, p.right) * p.dilation
        radius, globals_, dilation = self.engine or (max(reach, 1), len(p.globals_), p.dilation)
        return EngineParams(head_dim=self.head_dim, lanes=lanes, max_radius=radius,
                            max_globals=globals_, max_dilation=dilation,
                            seq_width=max(17, self.n.bit_length() + 1))


def workloads(ns=N_DEFAULT) -> list[Workload]:
    out = [Workload(f"{k}-n{n}", k, n, r, dil, g) for n in ns for k, r, dil, g in KINDS]
    out += [Workload(f"{k}-n{n}", "validation", n, r, dil, g, engine=VALIDATION_ENGINE)
            for k, n, r, dil, g in VALIDATION]
    return out


# --- the engine's cycle model (written by the RTL lead; may not exist yet) ---------------------

def load_cycle_model():
    """``(predict_cycles, None)``, or ``(None, reason)`` while the model is not available."""
    try:
        from .cycles import predict_cycles
    except ImportError as exc:
        return None, f"swattn.sw.cycles.predict_cycles is not available ({exc})"
    except Exception as exc:  # noqa: BLE001 - a broken model module must not stop the report
        return None, f"swattn.sw.cycles failed to import ({type(exc).__name__}: {exc})"
    return predict_cycles, None


# --- board builds -------------------------------------------------------------------------------

def _family(name: str, data: dict) -> str | None:
    text = " ".join([name] + [str(data.get(k, "")) for k in ("device", "family", "board",
                                                            "platform")]).lower()
    if any(s in text for s in ("ice40", "icebreaker", "up5k")):
        return "ice40"
    if any(s in text for s in ("ecp5", "ulx3s", "lfe5u", "85f")):
        return "ecp5"
    return None


def _find_fmax(obj):
    """Fmax in MHz from a build JSON: ``fmax_mhz``, a number ``fmax``, or nextpnr's report form
    ``{"fmax": {clock: {"achieved": MHz}}}`` (the slowest clock)."""
    if isinstance(obj, dict):
        for key in ("fmax_mhz", "fmax"):
            v = obj.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if key == "fmax" and isinstance(v, dict):
                got = [c.get("achieved") for c in v.values() if isinstance(c, dict)]
                got = [float(x) for x in got if isinstance(x, (int, float))]
                if got:
                    return min(got)
        for v in obj.values():
            f = _find_fmax(v)
            if f is not None:
                return f
    return None


def _mhz(fmax) -> str:
    return f"{fmax:.1f} MHz" if isinstance(fmax, (int, float)) else "no Fmax"


def read_boards(synth_dir: Path) -> dict:
    """``{board: {"family", "fmax_mhz", "lanes", "file"}}`` from ``synth_dir/*.json``."""
    boards = {}
    for f in sorted(Path(synth_dir).glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            boards[f.stem] = {"file": str(f), "error": f"unreadable: {exc}"}
            continue
        if not isinstance(data, dict):
            boards[f.stem] = {"file": str(f), "error": "not a JSON object"}
            continue
        fmax = _find_fmax(data)
        if fmax is None and not any(k in data for k in ("board", "ok", "error")):
            continue  # some other JSON (a tool's plan or statistics), not a build result
        lanes = data.get("lanes")
        if lanes is None and isinstance(data.get("params"), dict):
            lanes = data["params"].get("lanes")
        name = str(data.get("board") or f.stem)
        boards[name] = {"file": str(f), "family": _family(name, data), "fmax_mhz": fmax,
                        "lanes": int(lanes) if isinstance(lanes, int) else None}
        if data.get("error"):
            boards[name]["build_error"] = str(data["error"])
    return boards


def board_heads(params: EngineParams) -> list[Workload]:
    """Heads sized to a board's engine (its head dim, n_max, max_radius, max_globals): the
    Longformer-like window at the engine's largest radius with no globals and with all of them,
    and the dilated window at the largest dilation, all at n = n_max."""
    n, r, g, dil = params.n_max, params.max_radius, params.max_globals, params.max_dilation
    out = [Workload(f"longformer-g0-n{n}", "board", n, r, 1, 0, head_dim=params.head_dim),
           Workload(f"longformer-g{g}-n{n}", "board", n, r, 1, g, head_dim=params.head_dim)]
    if dil > 1:
        out.append(Workload(f"dilated{dil}-g{g}-n{n}", "board", n, r // dil, dil, g,
                            head_dim=params.head_dim))
    return out


def board_figures(boards: dict, model, board_table=None) -> dict:
    """Per board of the board table: its engine, the target clock, the Fmax of its last build
    (``boards``, from :func:`read_boards`) and, for each of :func:`board_heads`, the engine's
    cycles (model), the time per head and the useful MAC rate at the achieved Fmax and at the
    target clock."""
    if board_table is None:
        from ..fpga.boards import BOARDS as board_table
    out = {}
    for name, b in board_table.items():
        info = boards.get(name, {})
        fmax = info.get("fmax_mhz")
        entry = {"params": b.params.as_dict(), "target_mhz": b.clock_hz / 1e6, "fmax_mhz": fmax,
                 "build": info.get("file"), "build_error": info.get("build_error")
                 or (None if info else "no build"), "heads": []}
        for w in board_heads(b.params):
            pat = w.pattern()
            useful = 2 * w.head_dim * pat.pairs()
            h = {"name": w.name, "n": w.n, "left": pat.left, "right": pat.right,
                 "dilation": pat.dilation, "globals": len(pat.globals_), "useful_macs": useful,
                 "ideal_cycles": -(-useful // b.params.lanes), "cycles": None}
            if model is not None:
                h["cycles"] = int(model(b.params, pat))
                h["utilisation"] = h["ideal_cycles"] / h["cycles"]
                for key, mhz in (("at_fmax", fmax), ("at_target", b.clock_hz / 1e6)):
                    if mhz:
                        t = h["cycles"] / (mhz * 1e6)
                        h[key] = {"mhz": mhz, "time_per_head_s": t, "gmac_s": useful / t / 1e9}
            entry["heads"].append(h)
        out[name] = entry
    return out


# --- CPU baselines ------------------------------------------------------------------------------

def sparse_attention_f32(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                         pattern: HybridPattern, block: int = 256) -> np.ndarray:
    """Float32 softmax attention over the pattern's pairs only (no n^2 mask), scale 1/sqrt(d).

    The same blocking as the golden model: tokens reordered by residue class mod dilation so a
    dilated window is a band, rows in blocks of ``block`` against their band plus the global
    keys; global rows against every key.
    """
    q, k, v = (np.ascontiguousarray(a, dtype=np.float32) for a in (q, k, v))
    n, d = q.shape
    scale = np.float32(1.0 / math.sqrt(d))
    out = np.empty((n, d), dtype=np.float32)
    dil, left, right = pattern.dilation, pattern.left, pattern.right
    g = pattern.global_array
    idx = np.arange(n, dtype=np.int64)
    perm = np.lexsort((idx // dil, idx % dil))
    cls, pos = perm % dil, perm // dil
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        rows = perm[b0:b1]
        c0, c1 = max(b0 - left, 0), min(b1 + right, n)
        cols = perm[c0:c1]
        dpos = pos[c0:c1][None, :] - pos[b0:b1][:, None]
        valid = (cls[c0:c1][None, :] == cls[b0:b1][:, None]) & (dpos >= -left) & (dpos <= right)
        if g.size:
            cols = np.concatenate([cols, g])
            valid = np.concatenate([valid, ~pattern.in_window(rows[:, None], g[None, :])], axis=1)
        s = np.where(valid, (q[rows] @ k[cols].T) * scale, -np.inf)
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        out[rows] = p @ v[cols]
    if g.size:
        s = (q[g] @ k.T) * scale
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        out[g] = p @ v
    return out


def _cpu_worker() -> None:
    """Times one spec read from stdin (run in a subprocess pinned to one BLAS thread)."""
    from . import golden
    from . import numerics as nx

    spec = json.loads(sys.stdin.read())
    res = []
    for w in spec["workloads"]:
        wl = Workload(**{k: (tuple(v) if k in ("global_idx", "engine") and v is not None
                             else v) for k, v in w.items()})
        pat = wl.pattern()
        rng = np.random.default_rng(0)
        x = [rng.standard_normal((wl.n, wl.head_dim)) for _ in range(3)]
        qi, ki, vi = (nx.quantise(a)[0] for a in x)
        cfg = nx.SoftmaxConfig(mult_mant=47000, mult_shift=24, out_shift=1)
        xf = [a.astype(np.float32) for a in x]
        row = {"name": wl.name}
        for label, fn in (("golden_s", lambda: golden.attention(qi, ki, vi, pat, cfg)),
                          ("f32_s", lambda: sparse_attention_f32(*xf, pat))):
            best = float("inf")
            for _ in range(spec["repeat"]):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            row[label] = best
        print(f"  cpu {wl.name:28s} golden {row['golden_s']:8.3f} s   float32 "
              f"{row['f32_s']:8.3f} s", file=sys.stderr, flush=True)
        res.append(row)
    print(json.dumps(res))


def time_cpu(wls: list[Workload], repeat: int = 1) -> dict:
    """``{name: {"golden_s", "f32_s"}}``, one BLAS thread, best of ``repeat``, per head."""
    if not wls:
        return {}
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = "1"
    spec = {"repeat": repeat, "workloads": [asdict(w) for w in wls]}
    proc = subprocess.run([sys.executable, "-m", "swattn.sw.bench"], input=json.dumps(spec),
                          capture_output=False, stdout=subprocess.PIPE, text=True, env=env,
                          check=True)
    return {r["name"]: r for r in json.loads(proc.stdout)}


# --- GPU figures kept from bench/gpu_baseline.py ------------------------------------------------

def read_gpu(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    data["by_kind_n"] = {(r["kind"], r["n"]): r for r in data.get("rows", [])}
    return data


# --- measured RTL cycles ------------------------------------------------------------------------

def measure_rtl(wls: list[Workload], lanes: list[int], log=print) -> dict:
    """``{(name, lanes): {"cycles", "ok", ...}}`` from the Verilator testbench (slow: small n).

    Workloads that share an engine configuration run as one job list on one build.
    """
    from ..sim.runner import job_to_json, run_jobs
    from .numerics import SoftmaxConfig

    groups: dict = {}
    for w in wls:
        for lanes_ in lanes:
            groups.setdefault(w.params(lanes_), []).append(w)
    out = {}
    for p, group in groups.items():
        names = ", ".join(w.name for w in group)
        log(f"  rtl lanes={p.lanes} max_radius={p.max_radius} max_globals={p.max_globals}: "
            f"building and simulating {names} ...")
        jobs = []
        for w in group:
            pat = w.pattern()
            pat = HybridPattern(pat.n, pat.left, pat.right, pat.dilation, pat.globals_,
                                limits=p.limits())
            jobs.append(job_to_json(pat, SoftmaxConfig(47000, 24, 1), seed=1))
        t0 = time.perf_counter()
        try:
            results = run_jobs(p, jobs, name="bench")
        except Exception as exc:  # noqa: BLE001 - a failed simulation is reported, not fatal
            for w in group:
                out[(w.name, p.lanes)] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"    failed: {exc}")
            continue
        wall = time.perf_counter() - t0
        for w, res in zip(group, results):
            out[(w.name, p.lanes)] = {"cycles": res.get("cycles"), "ok": res.get("ok"),
                                      "mismatches": res.get("mismatches"),
                                      "wall_s": wall / len(group)}
            log(f"    {w.name}: {res.get('cycles')} cycles, ok={res.get('ok')}")
        log(f"    ({wall:.0f} s, build included)")
    return out


# --- MiniLM mappings (from the predictors' evaluation) ------------------------------------------

def minilm_workloads(log=print) -> tuple[list[Workload], str | None]:
    """The patterns the mapper chooses for one MiniLM evaluation text (72 heads, d = 32)."""
    try:
        from . import texts
        from .evaluate import DEFAULT_TABLE_BUDGET, mapped_patterns
        text = texts.evaluation_texts(1, 512)[0]
        engine = EngineParams(head_dim=32, lanes=64)  # the generator's default limits
        limits = engine.limits()
        log("  minilm: mapping the DSA predictor's masks of one 512-token text ...")
        layers = mapped_patterns(text, predictor="dsa", budget=DEFAULT_TABLE_BUDGET,
                                 limits=limits)
    except Exception as exc:  # noqa: BLE001 - optional section: say why it is missing
        return [], f"{type(exc).__name__}: {exc}"
    out = []
    for li, heads in enumerate(layers):
        for hi, m in enumerate(heads):
            p = m.pattern
            out.append(Workload(f"minilm-L{li}H{hi}", "minilm", p.n, max(p.left, p.right),
                                p.dilation, len(p.globals_), head_dim=32, left=p.left,
                                right=p.right, global_idx=tuple(p.globals_),
                                engine=(engine.max_radius, engine.max_globals,
                                        engine.max_dilation)))
    return out, None


# --- figures ------------------------------------------------------------------------------------

def figures(w: Workload, lanes_list, model, rtl: dict) -> dict:
    from . import salo

    pat = w.pattern()
    pairs = pat.pairs()
    useful = 2 * w.head_dim * pairs
    row = {"name": w.name, "kind": w.kind, "n": w.n, "left": pat.left, "right": pat.right,
           "dilation": w.dilation, "globals": len(pat.globals_), "head_dim": w.head_dim,
           "pairs": pairs, "useful_macs": useful, "lanes": {}}
    for lanes in lanes_list:
        ideal = -(-useful // lanes)
        fig = {"ideal_cycles": ideal, "engine_cycles": None, "engine_source": None,
               "rtl_cycles": None, "utilisation": None}
        if model is not None:
            try:
                fig["engine_cycles"] = int(model(w.params(lanes), pat))
                fig["engine_source"] = "model"
            except Exception as exc:  # noqa: BLE001 - one failing config is reported, not fatal
                fig["engine_error"] = f"{type(exc).__name__}: {exc}"
        m = rtl.get((w.name, lanes))
        if m and m.get("cycles"):
            fig["rtl_cycles"] = m["cycles"]
            fig["rtl_ok"] = m.get("ok")
            if fig["engine_cycles"]:
                fig["model_rel_err"] = (fig["engine_cycles"] - m["cycles"]) / m["cycles"]
        cyc = fig["engine_cycles"] or fig["rtl_cycles"]
        if cyc:
            fig["utilisation"] = ideal / cyc
        arr = salo.SaloArray.for_lanes(lanes)
        sc = salo.pattern_cycles(pat, w.head_dim, arr)
        fig["salo"] = {"rows": arr.rows, "cols": arr.cols, "pes": arr.pes, "cycles": sc,
                       "utilisation": salo.utilisation(useful, sc, arr)}
        row["lanes"][str(lanes)] = fig
    return row


def linear_fit(x, y) -> dict:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, icpt = np.polyfit(x, y, 1)
    pred = slope * x + icpt
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss if ss else 1.0
    return {"slope": float(slope), "intercept": float(icpt), "r2": r2,
            "max_rel_residual": float(np.max(np.abs(y - pred) / y))}


def scaling(model, lanes_list) -> dict:
    """Cycles against n (Longformer-like, 16 globals, 64 lanes), window (n = 4096) and lanes."""
    from . import salo

    def point(w: Workload, lanes: int) -> dict:
        pat = w.pattern()
        useful = 2 * w.head_dim * pat.pairs()
        d = {"ideal": -(-useful // lanes),
             "salo": salo.pattern_cycles(pat, w.head_dim, salo.SaloArray.for_lanes(lanes)),
             "engine": None}
        if model is not None:
            try:
                d["engine"] = int(model(w.params(lanes), pat))
            except Exception:  # noqa: BLE001 - a gap in the curve, not a failure of the report
                pass
        return d

    out = {}
    ns = [1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384]
    pts = [dict(x=n, **point(Workload("s", "longformer", n, 256, 1, 16), 64)) for n in ns]
    fits = {k: linear_fit(ns, [p[k] for p in pts]) for k in ("ideal", "salo", "engine")
            if all(p[k] for p in pts)}
    out["n"] = {"lanes": 64, "radius": 256, "globals": 16, "points": pts, "fits": fits}
    radii = [16, 32, 64, 128, 256, 512]
    out["window"] = {"lanes": 64, "n": 4096, "globals": 16, "points": [
        dict(x=r, **point(Workload("s", "longformer", 4096, r, 1, 16), 64)) for r in radii]}
    lanes_all = sorted(set([8, 16, 32, 64, 128, 256, 512, 1024]) | set(lanes_list))
    out["lanes"] = {"n": 4096, "radius": 256, "globals": 16, "points": [
        dict(x=la, **point(Workload("s", "longformer", 4096, 256, 1, 16), la))
        for la in lanes_all]}
    return out


def targets(rows: list[dict], boards: dict, lanes_list, model_reason) -> list[dict]:
    out = []
    for lanes in lanes_list:
        us = [(r["lanes"][str(lanes)]["utilisation"], r["name"]) for r in rows
              if r["kind"].startswith("longformer")]
        known = [u for u in us if u[0] is not None]
        t = {"target": f"utilisation >= {UTIL_TARGET:.0%} on Longformer-like, lanes = {lanes}"}
        if not known:
            t.update(status="n/a", note=model_reason or "no engine cycles")
        else:
            worst, name = min(known)
            t.update(status="pass" if worst >= UTIL_TARGET else "miss", value=worst,
                     margin=worst - UTIL_TARGET,
                     note=f"worst {worst:.1%} ({name}), {100 * (worst - UTIL_TARGET):+.1f} pp"
                          + ("" if len(known) == len(us) else f"; {len(us) - len(known)} "
                                                              "workloads without cycles"))
        out.append(t)
    errs = [(abs(f["model_rel_err"]), r["name"], la) for r in rows
            for la, f in r["lanes"].items() if f.get("model_rel_err") is not None]
    t = {"target": f"cycle model within {MODEL_TOL:.0%} of RTL"}
    if not errs:
        t.update(status="n/a", note="needs both the cycle model and measured RTL runs "
                                    "(--rtl-max-n)" if model_reason is None else model_reason)
    else:
        worst, name, la = max(errs)
        t.update(status="pass" if worst <= MODEL_TOL else "miss", value=worst,
                 margin=MODEL_TOL - worst,
                 note=f"worst {worst:.2%} ({name}, lanes {la}) over {len(errs)} runs")
    out.append(t)
    for fam, (label, mhz) in FMAX_TARGETS.items():
        t = {"target": f"{label} Fmax >= {mhz:g} MHz"}
        got = [(b["fmax_mhz"], name) for name, b in boards.items()
               if b.get("family") == fam and b.get("fmax_mhz")]
        failed = [(name, b.get("build_error") or "no Fmax in the build's JSON")
                  for name, b in boards.items() if b.get("family") == fam and not b.get("fmax_mhz")]
        if not got and failed:
            t.update(status="miss", note="; ".join(f"{n}: {e}" for n, e in failed))
        elif not got:
            t.update(status="n/a", note="no build")
        else:
            f, name = min(got)
            t.update(status="pass" if f >= mhz else "miss", value=f, margin=f - mhz,
                     note=f"{f:.1f} MHz ({name}), {f - mhz:+.1f} MHz ({(f - mhz) / mhz:+.0%})")
        out.append(t)
    return out


# --- presentation -------------------------------------------------------------------------------

def _md_table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _si(x, unit="") -> str:
    if x is None:
        return "n/a"
    for k, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= k:
            return f"{x / k:.3g} {s}{unit}".rstrip()
    return f"{x:.3g} {unit}".rstrip()


def _t(s) -> str:
    if s is None:
        return "n/a"
    for k, u in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
        if s >= k:
            return f"{s / k:.3g} {u}"
    return f"{s / 1e-9:.3g} ns"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def render(res: dict) -> str:
    L = []
    add = L.append
    add("# swattn bench\n")
    add(f"Generated {res['generated_utc']} on {res['machine']['platform']} "
        f"({res['machine']['cpus']} CPUs, Python {res['machine']['python']}).\n")
    cm = res["cycle_model"]
    add("Engine cycles: " + ("`swattn.sw.cycles.predict_cycles` (*model*)" if cm["available"]
                             else f"**unavailable** — {cm['reason']}; utilisation and board "
                                  "times need them and are shown as n/a") + ".")
    nb = res["boards"]
    add("Boards: " + (", ".join(f"{b} ({_mhz(v.get('fmax_mhz'))}, "
                                 f"lanes {v.get('lanes') or '?'})" for b, v in nb.items())
                      if nb else f"no build (nothing in `{res['synth_dir']}`)") + ".")
    g = res.get("gpu")
    add("GPU: " + (f"{g['device']}, {g['date_utc']}, torch {g['torch']} (kept in "
                   f"`docs/gpu_baseline.json`)" if g else "no GPU figures kept") + ".\n")

    add("## Summary\n")
    sel = [r for r in res["workloads"] if r["kind"] not in ("minilm", "validation")]
    if sel:
        n_sel = 4096 if any(r["n"] == 4096 for r in sel) else max(r["n"] for r in sel)
        add(f"n = {n_sel}, one head. *util* = ideal / engine cycles; *x SALO* = SALO's cycles / "
            "ours at the same local MAC count; *clock to match GPU* = the engine clock at which "
            "one head takes as long as on the GPU with FlexAttention (its per-head time from a "
            "12-head call).\n")
        rows = []
        for r in (r for r in sel if r["n"] == n_sel):
            gr = (g or {}).get("by_kind_n", {}).get((r["kind"], r["n"])) if g else None
            for la in res["lanes_list"]:
                f = r["lanes"][str(la)]
                cyc = f["engine_cycles"] or f["rtl_cycles"]
                rows.append([r["kind"], la, _pct(f["utilisation"]),
                             f"{f['salo']['cycles'] / cyc:.2f}" if cyc else "n/a",
                             _si(cyc / gr["flex_s_per_head"], "Hz") if cyc and gr else "n/a"])
        add(_md_table(["workload", "lanes", "util", "x SALO", "clock to match GPU"], rows) + "\n")

    add("## Targets\n")
    add(_md_table(["target", "status", "detail"],
                  [[t["target"], t["status"].upper() if t["status"] == "miss" else t["status"],
                    t.get("note", "")] for t in res["targets"]]) + "\n")

    add("## Cycles and utilisation per workload and engine size\n")
    add("Useful MACs = 2 d x pairs. Ideal = useful / lanes (every MAC busy every cycle). "
        "Engine = modelled cycles (*model*) or measured RTL cycles (*rtl*). SALO = its published "
        "model on a local array of the same MAC count (plus its global row and column), see "
        "`swattn.sw.salo`; x SALO = SALO cycles / engine cycles. (SALO's 32 x 32 array on its "
        "paper's Longformer figure, w = 512, gives the published 4.03 ms and 74%; a radius-256 "
        "window is 513 keys, 17 passes of 32 instead of 16, hence about 67% here.)\n")
    for lanes in res["lanes_list"]:
        add(f"### lanes = {lanes}\n")
        rows = []
        for r in res["workloads"]:
            f = r["lanes"][str(lanes)]
            eng = (f"{f['engine_cycles']:,} *model*" if f["engine_cycles"] else "n/a")
            rtl = f"{f['rtl_cycles']:,}" if f["rtl_cycles"] else "-"
            s = f["salo"]
            ratio = (f"{s['cycles'] / (f['engine_cycles'] or f['rtl_cycles']):.2f}"
                     if (f["engine_cycles"] or f["rtl_cycles"]) else "n/a")
            rows.append([r["name"], f"{r['pairs']:,}", _si(r["useful_macs"]),
                         f"{f['ideal_cycles']:,}", eng, rtl, _pct(f["utilisation"]),
                         f"{s['rows']}x{s['cols']}", f"{s['cycles']:,}", _pct(s["utilisation"]),
                         ratio])
        add(_md_table(["workload", "pairs", "useful MACs", "ideal cyc", "engine cyc",
                       "RTL cyc", "util", "SALO array", "SALO cyc", "SALO util", "x SALO"],
                      rows) + "\n")

    add("## Boards (last build's Fmax)\n")
    add("Each board's own engine (its head dim, lanes and limits, `swattn build --list`) on heads "
        "sized to it, at n = n_max; cycles from the model, times at the Fmax of the board's last "
        "build (`build/synth/<board>.json`) and at the target clock.\n")
    rows = []
    for b, e in res.get("board_figures", {}).items():
        p = e["params"]
        fm = (f"{e['fmax_mhz']:.1f} of {e['target_mhz']:g}" if e["fmax_mhz"]
              else f"none of {e['target_mhz']:g} ({e['build_error'] or 'no Fmax'})")
        for h in e["heads"]:
            af, at = h.get("at_fmax"), h.get("at_target")
            rows.append([b, f"d {p['head_dim']}, {p['lanes']} lanes", fm, h["name"],
                         f"{h['cycles']:,}" if h["cycles"] else "n/a",
                         f"{h['utilisation']:.1%}" if h.get("utilisation") else "n/a",
                         _t(af["time_per_head_s"]) if af else "n/a",
                         _si(af["gmac_s"] * 1e9, "MAC/s") if af else "n/a",
                         _t(at["time_per_head_s"]) if at else "n/a"])
    add(_md_table(["board", "engine", "Fmax MHz (achieved of target)", "head", "cycles (model)",
                   "util", "time/head at Fmax", "throughput at Fmax", "time/head at target"],
                  rows) + "\n")

    add("## CPU and GPU\n")
    cpu = res.get("cpu", {})
    add(f"CPU: one thread on this machine ({res['machine']['processor']}), "
        "best of " f"{res['cpu_repeat']}; golden = the bit-exact int8 model "
        "(`swattn.sw.golden.attention`), float32 = `swattn.sw.bench.sparse_attention_f32`. "
        "GPU: batch 1 x 12 heads in one call, time / 12 per head; useful rate = 4 d pairs / "
        "time, as a fraction of the measured dense bf16 matmul rate"
        + (f" ({g['matmul_bf16_tflops']:.0f} TFLOP/s)" if g else "") + ".\n")
    rows = []
    for r in res["workloads"]:
        if r["kind"] in ("minilm", "validation"):
            continue
        c = cpu.get(r["name"], {})
        gr = (g or {}).get("by_kind_n", {}).get((r["kind"], r["n"])) if g else None
        rows.append([r["name"], _t(c.get("golden_s")),
                     _si(r["useful_macs"] / c["golden_s"], "MAC/s") if c.get("golden_s") else "-",
                     _t(c.get("f32_s")),
                     _si(r["useful_macs"] / c["f32_s"], "MAC/s") if c.get("f32_s") else "-",
                     _t(gr["flex_s_per_head"]) if gr else "-",
                     (f"{gr['flex_useful_tflops']:.1f} ({_pct(gr['flex_fraction_of_mm'])})"
                      if gr else "-"),
                     _t(gr["sdpa_s_per_head"]) if gr else "-",
                     (f"{gr['sdpa_useful_tflops']:.1f} ({_pct(gr['sdpa_fraction_of_mm'])})"
                      if gr else "-")])
    add(_md_table(["workload", "CPU golden /head", "golden rate", "CPU float32 /head",
                   "float32 rate", "GPU flex /head", "flex useful TFLOP/s (of mm)",
                   "GPU dense SDPA /head", "SDPA useful TFLOP/s (of mm)"], rows) + "\n")

    sc = res["scaling"]
    add("## Scaling\n")
    add(f"Cycles against n (Longformer-like, radius {sc['n']['radius']}, {sc['n']['globals']} "
        f"globals, {sc['n']['lanes']} lanes), linear fits cycles = a n + b:\n")
    for k, f in sc["n"]["fits"].items():
        add(f"- {k}: a = {f['slope']:.1f} cycles/token, b = {f['intercept']:.0f}, "
            f"R^2 = {f['r2']:.6f}, largest residual {f['max_rel_residual']:.2%}")
    if "engine" not in sc["n"]["fits"]:
        add("- engine: n/a (no cycle model)")
    add("")
    for key, label in (("n", "n"), ("window", "radius"), ("lanes", "lanes")):
        pts = sc[key]["points"]
        add(f"Cycles against {label}:\n")
        add(_md_table([label, "ideal", "engine (model)", "SALO"],
                      [[p["x"], f"{p['ideal']:,}", f"{p['engine']:,}" if p["engine"] else "n/a",
                        f"{p['salo']:,}"] for p in pts]) + "\n")

    mm = res.get("minilm")
    add("## MiniLM (patterns the mapper chooses)\n")
    if not mm or mm.get("error"):
        add(f"unavailable: {mm.get('error') if mm else 'skipped (--no-minilm)'}\n")
    else:
        add(f"{mm['heads']} heads (6 layers x 12), d = 32, n = {mm['n']}; totals over the heads:\n")
        add(_md_table(["lanes", "useful MACs", "ideal cyc", "engine cyc", "util", "SALO cyc",
                       "SALO util"],
                      [[la, _si(t["useful_macs"]), f"{t['ideal_cycles']:,}",
                        f"{t['engine_cycles']:,} *model*" if t["engine_cycles"] else "n/a",
                        _pct(t["utilisation"]), f"{t['salo_cycles']:,}",
                        _pct(t["salo_utilisation"])] for la, t in mm["totals"].items()]) + "\n")
        top = mm["configs"][:8]
        add(f"One engine for all heads (max radius {mm['engine'][0]}, {mm['engine'][1]} globals,"
            f" dilation <= {mm['engine'][2]}). {len(mm['configs'])} distinct configurations; the "
            "most frequent: " + "; ".join(
                f"{c['count']}x (left {c['left']}, right {c['right']}, dil {c['dilation']}, "
                f"{c['globals']} globals)" for c in top) + ".\n")

    if res.get("rtl"):
        add("## Measured RTL runs (Verilator, no input idles or output stalls)\n")
        by = {(r["name"], la): f for r in res["workloads"] for la, f in r["lanes"].items()}
        rows = []
        for r in res["rtl"]:
            f = by.get((r["name"], str(r["lanes"])), {})
            model = f.get("engine_cycles")
            err = f.get("model_rel_err")
            rows.append([r["name"], r["lanes"], f"{r['cycles']:,}" if r.get("cycles") else "-",
                         f"{f['ideal_cycles']:,}" if f else "-",
                         _pct(f["ideal_cycles"] / r["cycles"]) if f and r.get("cycles") else "-",
                         f"{model:,}" if model else "n/a",
                         f"{100 * err:+.2f}%" if err is not None else "n/a",
                         r.get("ok", "-"), r.get("error", "")])
        add(_md_table(["workload", "lanes", "RTL cycles", "ideal", "RTL util", "model",
                       "model - RTL", "outputs ok", "error"], rows) + "\n")
    if res.get("plots"):
        add("## Plots\n")
        add("\n".join(f"![{Path(p).stem}]({Path(p).name})" for p in res["plots"]) + "\n")
    return "\n".join(L)


def plot(res: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    sc = res["scaling"]
    for key, label, logx in (("n", "sequence length n", False), ("window", "window radius", True),
                             ("lanes", "lanes", True)):
        pts = sc[key]["points"]
        x = [p["x"] for p in pts]
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, style in (("ideal", "k--"), ("engine", "o-"), ("salo", "s-")):
            ys = [p[k] for p in pts]
            if all(ys):
                ax.plot(x, ys, style, label={"ideal": "ideal (MAC bound)",
                                             "engine": "engine (model)", "salo": "SALO model"}[k])
        ax.set_xlabel(label)
        ax.set_ylabel("cycles per head")
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"cycles against {label}")
        ax.legend()
        ax.grid(True, alpha=0.3)
        p = out / f"scaling_{key}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))

    # utilisation at n = 4096 (or the largest n run) per workload kind and lanes
    rows = [r for r in res["workloads"] if r["kind"] not in ("minilm", "validation")]
    if rows:
        n_sel = 4096 if any(r["n"] == 4096 for r in rows) else max(r["n"] for r in rows)
        rows = [r for r in rows if r["n"] == n_sel]
        fig, ax = plt.subplots(figsize=(8, 4))
        lanes = res["lanes_list"]
        width = 0.8 / (2 * len(lanes))
        for i, la in enumerate(lanes):
            xs = np.arange(len(rows)) + (2 * i) * width
            eng = [r["lanes"][str(la)]["utilisation"] or 0 for r in rows]
            sal = [r["lanes"][str(la)]["salo"]["utilisation"] for r in rows]
            ax.bar(xs, eng, width, label=f"engine {la}")
            ax.bar(xs + width, sal, width, label=f"SALO {la}", alpha=0.5)
        ax.axhline(UTIL_TARGET, color="k", ls="--", lw=1)
        ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2)
        ax.set_xticklabels([r["kind"] for r in rows])
        ax.set_ylabel("utilisation")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"utilisation at n = {n_sel}"
                     + ("" if res["cycle_model"]["available"] else " (engine: no cycle model)"))
        ax.legend(fontsize=7, ncol=2)
        p = out / "utilisation.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))

    # useful throughput of the Longformer-like head with 16 globals against n
    sel = sorted((r for r in res["workloads"] if r["kind"] == "longformer-g16"),
                 key=lambda r: r["n"])
    if sel:
        fig, ax = plt.subplots(figsize=(6, 4))
        ns = [r["n"] for r in sel]
        cpu, g = res.get("cpu", {}), res.get("gpu")

        def line(vals, label, style):
            pts = [(n, v) for n, v in zip(ns, vals) if v]
            if pts:
                ax.plot(*zip(*pts), style, label=label)

        line([r["useful_macs"] / cpu[r["name"]]["golden_s"] if r["name"] in cpu else None
              for r in sel], "CPU golden (1 thread)", "v-")
        line([r["useful_macs"] / cpu[r["name"]]["f32_s"] if r["name"] in cpu else None
              for r in sel], "CPU float32 (1 thread)", "^-")
        if g:
            for key, label in (("flex_s_per_head", "GPU FlexAttention"),
                               ("sdpa_s_per_head", "GPU dense SDPA")):
                line([r["useful_macs"] / g["by_kind_n"][(r["kind"], r["n"])][key]
                      if (r["kind"], r["n"]) in g["by_kind_n"] else None for r in sel],
                     f"{label} ({g['device'].split()[1] if len(g['device'].split()) > 1 else ''})",
                     "o-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("useful MAC/s per head")
        ax.set_title("Longformer-like, 16 globals: useful MAC/s")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        p = out / "throughput.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(str(p))
    return paths


# --- the command --------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    p.add_argument("--out", default="build/bench", metavar="DIR",
                   help="folder for report.md and the plots (default build/bench)")
    p.add_argument("--n", type=int, nargs="+", default=list(N_DEFAULT), metavar="N",
                   help="sequence lengths of the workloads (default 1024 2048 4096 16384)")
    p.add_argument("--lanes", type=int, nargs="+", default=list(LANES_DEFAULT), metavar="L",
                   help="engine sizes: powers of two 8..4096 (default 8 64 128 1024)")
    p.add_argument("--cpu-max-n", type=int, default=16384, metavar="N",
                   help="time the CPU baselines on workloads up to this n; 0 skips them")
    p.add_argument("--repeat", type=int, default=1, help="CPU runs per workload, best kept")
    p.add_argument("--rtl-max-n", type=int, default=0, metavar="N",
                   help="simulate workloads up to this n under Verilator for measured cycles "
                        "(slow; default 0: none)")
    p.add_argument("--rtl-lanes", type=int, nargs="+", default=[64], metavar="L",
                   help="engine sizes to simulate (default 64)")
    p.add_argument("--rtl-kinds", nargs="+", metavar="KIND",
                   help="simulate only these workload kinds (" + ", ".join(
                       [k[0] for k in KINDS] + [v[0] for v in VALIDATION]) + "; default all)")
    p.add_argument("--gpu-json", default=str(GPU_JSON), metavar="FILE",
                   help="figures kept from bench/gpu_baseline.py (default docs/gpu_baseline.json)")
    p.add_argument("--synth-dir", default="build/synth", metavar="DIR",
                   help="where board builds leave <board>.json (default build/synth)")
    p.add_argument("--no-minilm", action="store_true",
                   help="skip the MiniLM mapper patterns (they load the model and fit a predictor)")


def _check_args(args) -> None:
    from .cli import UserError

    for n in args.n:
        if not 1 <= n <= (1 << 20):
            raise UserError(f"--n {n} is out of range: allowed 1..{1 << 20}")
    for la in list(args.lanes) + list(args.rtl_lanes):
        if not (8 <= la <= 4096 and la & (la - 1) == 0):
            raise UserError(f"lanes {la} is out of range: allowed a power of two, 8..4096")
    known = [k[0] for k in KINDS] + [v[0] for v in VALIDATION]
    for k in args.rtl_kinds or ():
        if k not in known:
            raise UserError(f"--rtl-kinds {k!r} is not a workload kind: allowed "
                            + ", ".join(known))
    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} is out of range: allowed >= 1")
    for name in ("cpu_max_n", "rtl_max_n"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)} is out of range: "
                            "allowed >= 0")


def run(args) -> int:
    _check_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda s: print(s, flush=True)  # noqa: E731

    t_start = time.perf_counter()
    model, reason = load_cycle_model()
    log(f"swattn bench: cycle model {'found' if model else 'unavailable: ' + reason}")
    boards = read_boards(Path(args.synth_dir))
    log(f"  boards: {', '.join(boards) if boards else 'no build in ' + args.synth_dir}")
    wls = workloads(sorted(set(args.n)))
    # every simulated engine size gets its figures too (the model is compared with the RTL there)
    lanes_list = sorted(set(args.lanes) | (set(args.rtl_lanes) if args.rtl_max_n else set()))

    rtl_runs = {}
    if args.rtl_max_n:
        rtl_runs = measure_rtl([w for w in wls if w.n <= args.rtl_max_n and (
            not args.rtl_kinds or w.name.rsplit("-n", 1)[0] in args.rtl_kinds)],
                               sorted(set(args.rtl_lanes)), log)

    rows = [figures(w, lanes_list, model, rtl_runs) for w in wls]
    log(f"  figures for {len(rows)} workloads x {len(lanes_list)} engine sizes")

    mm = None
    if not args.no_minilm:
        mwls, err = minilm_workloads(log)
        if err:
            mm = {"error": err}
            log(f"  minilm: unavailable ({err})")
        else:
            mrows = [figures(w, lanes_list, model, {}) for w in mwls]
            totals = {}
            for la in lanes_list:
                fs = [r["lanes"][str(la)] for r in mrows]
                eng = [f["engine_cycles"] for f in fs]
                sal = sum(f["salo"]["cycles"] for f in fs)
                useful = sum(r["useful_macs"] for r in mrows)
                arr_pes = fs[0]["salo"]["pes"]
                totals[str(la)] = {
                    "useful_macs": useful, "ideal_cycles": sum(f["ideal_cycles"] for f in fs),
                    "engine_cycles": sum(eng) if all(eng) else None,
                    "utilisation": (sum(f["ideal_cycles"] for f in fs) / sum(eng)
                                    if all(eng) else None),
                    "salo_cycles": sal, "salo_utilisation": useful / (sal * arr_pes)}
            cfgs = {}
            for r in mrows:
                key = (r["left"], r["right"], r["dilation"], r["globals"])
                cfgs[key] = cfgs.get(key, 0) + 1
            mm = {"heads": len(mrows), "n": mrows[0]["n"] if mrows else 0, "totals": totals,
                  "engine": list(mwls[0].engine) if mwls else None,
                  "configs": [dict(left=k[0], right=k[1], dilation=k[2], globals=k[3], count=c)
                              for k, c in sorted(cfgs.items(), key=lambda kv: -kv[1])],
                  "heads_figures": mrows}

    cpu = {}
    cpu_wls = [w for w in wls if w.n <= args.cpu_max_n and w.kind != "validation"]
    if cpu_wls:
        log(f"  CPU baselines on {len(cpu_wls)} workloads (one thread) ...")
        try:
            cpu = time_cpu(cpu_wls, args.repeat)
        except (subprocess.CalledProcessError, ValueError) as exc:  # report goes on without
            log(f"  CPU baselines failed: {exc}")

    gpu = read_gpu(Path(args.gpu_json))
    res = {
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": _cpu_name(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "head_dim": HEAD_DIM, "lanes_list": lanes_list,
        "cycle_model": {"available": model is not None, "reason": reason},
        "synth_dir": args.synth_dir, "boards": boards,
        "board_figures": board_figures(boards, model),
        "workloads": rows, "cpu": cpu, "cpu_repeat": args.repeat, "gpu": gpu,
        "minilm": mm,
        "rtl": [dict(name=k[0], lanes=k[1], **v) for k, v in rtl_runs.items()],
        "scaling": scaling(model, lanes_list),
    }
    res["targets"] = targets(rows, boards, lanes_list, reason)
    res["plots"] = plot(res, out)
    (out / "report.md").write_text(render(res))

    for r in res["rtl"]:
        f = next((w["lanes"][str(r["lanes"])] for w in rows if w["name"] == r["name"]), {})
        if f.get("model_rel_err") is not None:
            log(f"  model against RTL, {r['name']} lanes {r['lanes']}: model "
                f"{f['engine_cycles']:,}, RTL {r['cycles']:,} ({100 * f['model_rel_err']:+.2f}%)")
    for k, f in res["scaling"]["n"]["fits"].items():
        log(f"  cycles vs n ({k}): {f['slope']:.1f} n + {f['intercept']:.0f}, "
            f"R^2 {f['r2']:.6f}, largest residual {f['max_rel_residual']:.2%}")
    log("  targets:")
    for t in res["targets"]:
        log(f"    {t['status'].upper():4s}  {t['target']}: {t.get('note', '')}")
    log(f"  report: {out / 'report.md'} ({len(res['plots'])} plots), "
        f"{time.perf_counter() - t_start:.0f} s")
    if args.json:
        if gpu:
            gpu.pop("by_kind_n", None)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
            f.write("\n")
        log(f"  JSON: {args.json}")
    return 0


if __name__ == "__main__":
    _cpu_worker()
