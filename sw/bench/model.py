"""Cycle figures of a workload: useful MACs, the ideal cycles of ``lanes`` MACs, the engine's
cycles (from the analytic model, and measured RTL cycles where there are any) and SALO's
published model at the same MAC count; and the scaling of those cycles with n, the window and
the lanes."""

from __future__ import annotations

import numpy as np

from .workloads import Workload


def load_cycle_model():
    """``(predict_cycles, None)``, or ``(None, reason)`` while the model is not available."""
    try:
        from ..cycles import predict_cycles
    except ImportError as exc:
        return None, f"swattn.sw.cycles.predict_cycles is not available ({exc})"
    except Exception as exc:  # noqa: BLE001 - a broken model module must not stop the report
        return None, f"swattn.sw.cycles failed to import ({type(exc).__name__}: {exc})"
    return predict_cycles, None


def figures(w: Workload, lanes_list, model, rtl: dict) -> dict:
    from .. import salo

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
    from .. import salo

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
