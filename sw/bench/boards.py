"""Board figures: the Fmax of each board's last build (``build/synth/*.json``) and, on heads
sized to each board's engine, the time per head and the useful MAC rate at that Fmax and at the
board's target clock."""

from __future__ import annotations

import json
from pathlib import Path

from .workloads import board_heads


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


def board_figures(boards: dict, model, board_table=None) -> dict:
    """Per board of the board table: its engine, the target clock, the Fmax of its last build
    (``boards``, from :func:`read_boards`) and, for each of :func:`board_heads`, the engine's
    cycles (model), the time per head and the useful MAC rate at the achieved Fmax and at the
    target clock."""
    if board_table is None:
        from ...fpga.boards import BOARDS as board_table
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
