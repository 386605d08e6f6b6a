"""Board figures: the Fmax of each board's last build (``build/synth/*.json``) and, on heads
sized to each board's engine, the time per head and the useful MAC rate at that Fmax and at the
board's target clock, each beside the multiplier-bound rate at the same clock (:func:`head_rate`,
which ``swattn explore`` uses too); and, for the board's Longformer-like head, one job's time
through the board's UART host link beside the engine's compute time (:func:`link_figures`)."""

from __future__ import annotations

import json
from pathlib import Path

from .link import job_link_bytes, link_seconds
from .workloads import Workload, board_heads


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


def longformer_head(params) -> Workload:
    """The board's Longformer-like head: the window at the engine's largest radius with all of
    its global tokens, at n = n_max (:func:`~.workloads.board_heads`)."""
    return board_heads(params)[1]


def head_rate(params, w: Workload, mhz: float, model, cycles: int | None = None) -> dict:
    """Head ``w`` on an engine of ``params`` clocked at ``mhz``: the engine's ``cycles`` (from
    ``model(params, pattern)`` unless given), the time per head, the useful MAC rate (2 d MACs
    per pair of the pattern) and the multiplier-bound rate at the same clock: ``params.lanes``
    int8 multipliers each doing a MAC every cycle (``peak_gmac_s``), and the fraction of it."""
    pat = w.pattern()
    useful = 2 * w.head_dim * pat.pairs()
    if cycles is None:
        cycles = int(model(params, pat))
    t = cycles / (mhz * 1e6)
    gmac_s = useful / t / 1e9
    peak = params.lanes * mhz * 1e6 / 1e9
    return {"mhz": mhz, "cycles": cycles, "time_per_head_s": t, "gmac_s": gmac_s,
            "peak_gmac_s": peak, "fraction_of_peak": gmac_s / peak}


def link_figures(board, params, w: Workload, mhz: float, cycles: int) -> dict:
    """One job of head ``w`` through ``board``'s UART host link (:mod:`.link`): the bytes sent
    and received, their time at the board's baud rate (8N1), the engine's compute time
    (``cycles`` at ``mhz``) and the two added (the driver sends, waits for the job, then reads;
    the turn-around per transaction is not counted)."""
    nb = job_link_bytes(params, w.n)
    link_s = link_seconds(nb["total"], board.baud)
    compute_s = cycles / (mhz * 1e6)
    return {"head": w.name, "n": w.n, "baud": board.baud, "mhz": mhz, **nb,
            "link_s": link_s, "compute_s": compute_s, "end_to_end_s": link_s + compute_s,
            "compute_share": compute_s / (link_s + compute_s)}


def chip_figures(board, head: dict, mhz: float, lut4_per_product: dict | None) -> dict | None:
    """``board``'s device at its best (:func:`swattn.fpga.multipliers.chip_peak`: hard blocks
    plus logic multipliers) at ``mhz``, and the share of it that the rate of ``head`` (a row
    of :func:`board_figures` with ``at_target`` / ``at_fmax``) uses; None for a board without
    LUT and DSP counts."""
    from ...fpga.multipliers import chip_peak

    res = getattr(board, "resources", None) or {}
    if "LUT" not in res or "DSP" not in res:
        return None
    cost = (lut4_per_product or {}).get(board.family)
    peak = chip_peak(board, mhz, cost)
    rate = next((r for r in (head.get("at_fmax"), head.get("at_target"))
                 if r and r["mhz"] == mhz), None)
    if rate is not None:
        peak.update(head=head["name"], gmac_s=rate["gmac_s"],
                    fraction_of_chip=rate["gmac_s"] / peak["peak_gmac_s"],
                    fraction_of_dsp=rate["gmac_s"] / peak["dsp_peak_gmac_s"])
    return peak


def board_figures(boards: dict, model, board_table=None,
                  lut4_per_product: dict | None = None) -> dict:
    """Per board of the board table: its engine, the target clock, the Fmax of its last build
    (``boards``, from :func:`read_boards`) and, for each of :func:`board_heads`, the engine's
    cycles (model), the time per head and the useful MAC rate at the achieved Fmax and at the
    target clock, each with the multiplier-bound rate at that clock (:func:`head_rate`); and
    ``link``: one job of the Longformer-like head (:func:`longformer_head`) through the UART
    host link at the clock the board runs (its target, or the Fmax where that is lower)
    (:func:`link_figures`); and ``chip``: the device's most int8 MACs per second at that clock,
    hard multipliers and logic multipliers, with the share of it that head's rate uses
    (:func:`chip_figures`; ``lut4_per_product`` per family, None: measured with Yosys)."""
    if board_table is None:
        from ...fpga.boards import BOARDS as board_table
    out = {}
    for name, b in board_table.items():
        info = boards.get(name, {})
        fmax = info.get("fmax_mhz")
        target = b.clock_hz / 1e6
        entry = {"params": b.params.as_dict(), "target_mhz": target, "fmax_mhz": fmax,
                 "build": info.get("file"), "build_error": info.get("build_error")
                 or (None if info else "no build"), "heads": [], "link": None, "chip": None}
        lf = longformer_head(b.params)
        for w in board_heads(b.params):
            pat = w.pattern()
            useful = 2 * w.head_dim * pat.pairs()
            h = {"name": w.name, "n": w.n, "left": pat.left, "right": pat.right,
                 "dilation": pat.dilation, "globals": len(pat.globals_), "useful_macs": useful,
                 "ideal_cycles": -(-useful // b.params.lanes), "cycles": None}
            if model is not None:
                h["cycles"] = int(model(b.params, pat))
                h["utilisation"] = h["ideal_cycles"] / h["cycles"]
                for key, mhz in (("at_fmax", fmax), ("at_target", target)):
                    if mhz:
                        h[key] = head_rate(b.params, w, mhz, model, h["cycles"])
                if w.name == lf.name:
                    mhz = min(fmax, target) if fmax else target
                    entry["link"] = link_figures(b, b.params, w, mhz, h["cycles"])
                    entry["chip"] = chip_figures(b, h, mhz, lut4_per_product)
            entry["heads"].append(h)
        out[name] = entry
    return out
