"""MiniLM's heads as workloads: the patterns the mapper chooses for one evaluation text (72
heads, d = 32), all on one engine, and their figures summed over the heads."""

from __future__ import annotations

from ..spec.sizes import SIZES
from .model import figures
from .workloads import Workload

#: the engine every MiniLM head runs on (at each lane count of the figures)
MINILM_ENGINE = SIZES["bench_minilm"]


def minilm_workloads(log=print) -> tuple[list[Workload], str | None]:
    """The patterns the mapper chooses for one MiniLM evaluation text (72 heads, d = 32), or
    ``([], reason)`` when the model or the predictor is not available."""
    engine = MINILM_ENGINE
    try:
        from .. import texts
        from ..evaluate import DEFAULT_TABLE_BUDGET, mapped_patterns
        text = texts.evaluation_texts(1, 512)[0]
        log("  minilm: mapping the DSA predictor's masks of one 512-token text ...")
        layers = mapped_patterns(text, predictor="dsa", budget=DEFAULT_TABLE_BUDGET,
                                 limits=engine.limits())
    except Exception as exc:  # noqa: BLE001 - optional section: say why it is missing
        return [], f"{type(exc).__name__}: {exc}"
    out = []
    for li, heads in enumerate(layers):
        for hi, m in enumerate(heads):
            p = m.pattern
            out.append(Workload(f"minilm-L{li}H{hi}", "minilm", p.n, max(p.left, p.right),
                                p.dilation, len(p.globals_), head_dim=engine.head_dim,
                                left=p.left, right=p.right, global_idx=tuple(p.globals_),
                                engine=engine))
    return out, None


def minilm_figures(mwls: list[Workload], lanes_list, model) -> dict:
    """Per lane count the totals over the heads (useful MACs, ideal, engine and SALO cycles,
    utilisations), the engine's limits, the distinct configurations by frequency and each
    head's figures."""
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
    engine = mwls[0].engine if mwls else None
    return {"heads": len(mrows), "n": mrows[0]["n"] if mrows else 0, "totals": totals,
            "engine": ([engine.max_radius, engine.max_globals, engine.max_dilation]
                       if engine else None),
            "configs": [dict(left=k[0], right=k[1], dilation=k[2], globals=k[3], count=c)
                        for k, c in sorted(cfgs.items(), key=lambda kv: -kv[1])],
            "heads_figures": mrows}
