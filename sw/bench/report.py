"""The benchmark's report as markdown (``report.md``), section by section."""

from __future__ import annotations

from pathlib import Path


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


def _mhz(fmax) -> str:
    return f"{fmax:.1f} MHz" if isinstance(fmax, (int, float)) else "no Fmax"


def _header(res: dict, add) -> None:
    """The title, the machine, the cycle model, the boards' builds and the GPU figures."""
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


def _summary(res: dict, add) -> None:
    """One line per workload kind and lane count at n = 4096 (or the largest n run)."""
    g = res.get("gpu")
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


def _targets(res: dict, add) -> None:
    """Each target's status."""
    add("## Targets\n")
    add(_md_table(["target", "status", "detail"],
                  [[t["target"], t["status"].upper() if t["status"] == "miss" else t["status"],
                    t.get("note", "")] for t in res["targets"]]) + "\n")


def _cycles(res: dict, add) -> None:
    """Per lane count, every workload's cycles against the MAC bound and SALO."""
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


def _boards(res: dict, add) -> None:
    """Each board's engine on heads sized to it, at its last build's Fmax, against the
    multiplier-bound rate; one job through the board's UART host link."""
    add("## Boards (last build's Fmax)\n")
    add("Each board's own engine (its head dim, lanes and limits, `swattn build --list`) on heads "
        "sized to it, at n = n_max; cycles from the model, times at the Fmax of the board's last "
        "build (`build/synth/<board>.json`) and at the target clock. *Peak* = the "
        "multiplier-bound rate at the same clock: lanes int8 multipliers, each a MAC every "
        "cycle; *of peak* = the useful rate's share of it.\n")
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
                         _si(af["peak_gmac_s"] * 1e9, "MAC/s") if af else "n/a",
                         _pct(af["fraction_of_peak"]) if af else "n/a",
                         _t(at["time_per_head_s"]) if at else "n/a",
                         _si(at["gmac_s"] * 1e9, "MAC/s") if at else "n/a",
                         _si(at["peak_gmac_s"] * 1e9, "MAC/s") if at else "n/a",
                         _pct(at["fraction_of_peak"]) if at else "n/a"])
    add(_md_table(["board", "engine", "Fmax MHz (achieved of target)", "head", "cycles (model)",
                   "util", "time/head at Fmax", "throughput at Fmax", "peak at Fmax",
                   "of peak", "time/head at target", "throughput at target",
                   "peak at target", "of peak"], rows) + "\n")
    links = [(b, e["link"]) for b, e in res.get("board_figures", {}).items() if e.get("link")]
    if links:
        add("One job of the board's Longformer-like head through its UART host link "
            "(`swattn.sw.bench.link`): the bytes the host driver sends (configuration, Q, K and "
            "V rows) and receives (replies, status, cycles, output rows), each frame with its "
            "sync byte, header and CRCs, at baud / 10 bytes per second (8N1), beside the "
            "engine's compute time at the clock the board runs (its target, or its Fmax where "
            "lower). The turn-around of each request and reply (the host's serial driver, USB) "
            "is not counted.\n")
        add(_md_table(["board", "head", "baud", "bytes sent", "bytes received", "transactions",
                       "link time", "compute time (MHz)", "end to end", "compute share"],
                      [[b, k["head"], f"{k['baud']:,}", f"{k['sent']:,}",
                        f"{k['received']:,}", f"{k['transactions']:,}", _t(k["link_s"]),
                        f"{_t(k['compute_s'])} ({k['mhz']:g})", _t(k["end_to_end_s"]),
                        _pct(k["compute_share"])] for b, k in links]) + "\n")
    _chips(res, add)


def _chips(res: dict, add) -> None:
    """Each board's device at its best beside the rate its engine reaches."""
    chips = [(b, e["chip"]) for b, e in res.get("board_figures", {}).items() if e.get("chip")]
    if not chips:
        return
    add("The whole device at the clock the board runs: every hard multiplier block at the int8 "
        "products per cycle the open tools can place (ECP5 MULT18X18D one, its 9 x 9 halves "
        "unplaceable; iCE40 SB_MAC16 two, its 8 x 8 mode), plus as many int8 multipliers of "
        "logic as the device's LUT4s hold, each as Yosys synthesises a registered 8 x 8 signed "
        "product without DSP blocks (`swattn.fpga.multipliers`). The logic figure is an upper "
        "bound: an engine also needs adders, control and routing.\n")
    add(_md_table(["board", "head", "MHz", "hard blocks", "int8 products (hard)",
                   "LUT4 per logic product", "logic products", "device peak",
                   "engine's useful rate", "of device", "of hard blocks"],
                  [[b, c.get("head", "-"), f"{c['mhz']:.1f}",
                    f"{c['dsp_blocks']} {c['dsp_cell']}", f"{c['dsp_products']}",
                    f"{c['lut4_per_product']}", f"{c['lut_products']:,}",
                    _si(c["peak_gmac_s"] * 1e9, "MAC/s"),
                    _si(c["gmac_s"] * 1e9, "MAC/s") if "gmac_s" in c else "n/a",
                    _pct(c["fraction_of_chip"]) if "fraction_of_chip" in c else "n/a",
                    _pct(c["fraction_of_dsp"]) if "fraction_of_dsp" in c else "n/a"]
                   for b, c in chips]) + "\n")


def _cpu_gpu(res: dict, add) -> None:
    """Per workload, time per head and useful rate on the CPU and the GPU."""
    g = res.get("gpu")
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


def _scaling(res: dict, add) -> None:
    """Cycles against n (with the linear fits), the window and the lanes."""
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


def _minilm(res: dict, add) -> None:
    """Totals over MiniLM's heads and their most frequent configurations."""
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


def _rtl(res: dict, add) -> None:
    """The measured RTL runs against the model."""
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


def _plots(res: dict, add) -> None:
    """The plots, as images beside the report."""
    if res.get("plots"):
        add("## Plots\n")
        add("\n".join(f"![{Path(p).stem}]({Path(p).name})" for p in res["plots"]) + "\n")


#: the sections of the report, in order
def _keysets(res: dict, add) -> None:
    """Key-set heads (bands, key-only columns, the 2D grid) beside SALO's model."""
    rows = res.get("keysets") or []
    if not rows:
        return
    add("## Bands, key-only columns and the 2D grid\n")
    add("Cycles from the cycle model (equal to the engine's cycle counter on such patterns); "
        "SALO runs the smallest window-and-globals pattern holding the same keys (its window "
        "spans every band, each column is a global token; it has no 2D grid, so a k x k "
        "window on an image is the band of rows it spans):\n")
    add(_md_table(["head", "bands", "columns", "grid", "lanes", "engine cycles", "utilisation",
                   "SALO cycles", "SALO utilisation"],
                  [[r["head"], r["bands"], r["columns"],
                    "x".join(map(str, r["grid"])) if r.get("grid") else "-", r["lanes"],
                    f"{r['engine_cycles']:,}", _pct(r["engine_utilisation"]),
                    f"{r['salo_cycles']:,}", _pct(r["salo_utilisation"])] for r in rows]) + "\n")


SECTIONS = (_header, _summary, _targets, _cycles, _boards, _keysets, _cpu_gpu, _scaling, _minilm,
            _rtl,
            _plots)


def render(res: dict) -> str:
    """The report of one run's figures (``res``, as :func:`swattn.sw.bench.run_bench` returns
    them)."""
    lines = []
    for section in SECTIONS:
        section(res, lines.append)
    return "\n".join(lines)
