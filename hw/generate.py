"""The engine's Verilog and a JSON sidecar (parameters, register map); ``swattn generate``."""

from __future__ import annotations

import json
from pathlib import Path

from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams

TOP = "swattn_engine"


#: ``verilator --lint-only -Wall`` waivers for Amaranth's generated Verilog: (rule, message
#: pattern, reason). Each is narrow (a message pattern where one exists) and written next to the
#: Verilog as ``<name>.vlt``; ``tests/test_generate.py`` lints with them and fails on anything else.
LINT_WAIVERS = [
    ("WIDTHEXPAND", "*", "Amaranth's arithmetic and comparisons extend operands to the result "
     "width by definition; the back end leaves the extension to Verilog's context rules"),
    ("WIDTHTRUNC", "*Logical operator LOGNOT*", "Amaranth emits `x == 0` as `!x` on a vector"),
    ("UNSIGNED", "*Comparison is constant due to unsigned arithmetic*",
     "window checks `k >= u` are generated for every unit, u = 0 included"),
    ("CASEINCOMPLETE", "*", "Amaranth's Array and Switch lowering leaves unlisted values to the "
     "assignment before the case statement (defined default)"),
    ("UNUSEDSIGNAL", "*", "unused bits of packed structs and of Amaranth's intermediate wires"),
    ("PROCASSINIT", "*", "Amaranth gives every register its reset value as an initialiser too"),
    ("DECLFILENAME", "*", "one file holds the top and its submodules, named top.sub"),
    ("ASCRANGE", "*bit range: [-1:0]*", "Amaranth writes zero-width signals (a chunk counter "
     "when a key takes one cycle) as [-1:0]"),
]


def write_waivers(path: Path) -> Path:
    lines = ["`verilator_config"]
    for rule, match, reason in LINT_WAIVERS:
        lines.append(f"// {rule}: {reason}")
        lines.append(f'lint_off -rule {rule} -file "*" -match "{match}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def generate(params: EngineParams, out_dir: Path | str, name: str = TOP) -> tuple[Path, Path]:
    """Elaborate the engine and write ``<name>.v`` and ``<name>.json`` into ``out_dir``: the
    stream engine (:mod:`swattn.hw.engine`), or for ``lanes = 4`` the serial engine
    (:mod:`swattn.hw.serial`, ports on 16-bit buffer words)."""
    from amaranth.back import verilog

    from .engine import Engine, stage1_latency
    from .stage2 import STAGE2_LATENCY
    from .serial import WORD_BYTES, SerialEngine

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    serial = params.serial
    engine = SerialEngine(params) if serial else Engine(params)
    text = verilog.convert(engine, name=name, emit_src=False)
    vpath = out_dir / f"{name}.v"
    vpath.write_text(text)
    sidecar = {"top": name, "engine": "serial" if serial else "stream",
               "params": params.as_dict(), "registers": regs.register_map(params)}
    if serial:
        words = params.head_dim // WORD_BYTES
        sidecar["ports"] = {
            buf: {"word_bits": 8 * WORD_BYTES, "row_words": words,
                  "address": "row * row_words + word", "read_latency": 1}
            for buf in ("q", "k", "v", "o")}
        sidecar["ports"]["q"]["order"] = "rows in output order: non-global rows ascending, then " \
            "the global rows"
        sidecar["ports"]["o"]["order"] = sidecar["ports"]["q"]["order"]
    else:
        sidecar["latency"] = {"stage1": stage1_latency(params), "stage2": STAGE2_LATENCY}
        sidecar["ports"] = {
            "q": {"payload_bits": params.head_dim * 8, "order": "non-global rows in processing "
                  "order, then each global group's queries"},
            "kv": {"payload_bits": params.head_dim * 16, "layout": "k in the low half, v above"},
            "o": {"payload_bits": params.head_dim * 8},
        }
    write_waivers(out_dir / f"{name}.vlt")
    jpath = out_dir / f"{name}.json"
    jpath.write_text(json.dumps(sidecar, indent=2) + "\n")
    return vpath, jpath

