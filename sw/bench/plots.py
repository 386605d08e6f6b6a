"""The benchmark's PNG plots: cycles against n, the window and the lanes; utilisation per
workload kind; useful MAC rate against n on the CPU and the GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .targets import UTIL_TARGET


def plot(res: dict, out: Path) -> list[str]:
    """Write the plots of one run's figures under ``out``; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    _scaling(res, out, plt, paths)
    _utilisation(res, out, plt, paths)
    _throughput(res, out, plt, paths)
    return paths


def _scaling(res: dict, out: Path, plt, paths: list[str]) -> None:
    """Cycles against n, the window radius and the lanes: ideal, engine (model) and SALO."""
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


def _utilisation(res: dict, out: Path, plt, paths: list[str]) -> None:
    """Utilisation at n = 4096 (or the largest n run) per workload kind and lanes, the engine's
    beside SALO's."""
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


def _throughput(res: dict, out: Path, plt, paths: list[str]) -> None:
    """Useful MAC/s of the Longformer-like head with 16 globals against n: the CPU baselines and
    the GPU figures."""
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
