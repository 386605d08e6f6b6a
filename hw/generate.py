"""``swattn generate``: write the engine's Verilog and a JSON sidecar (parameters, register map)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..sw import regs
from ..sw.engine_params import EngineParams

HELP = "generate the engine's Verilog and a JSON sidecar with parameters and register map"
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

    from .engine import STAGE2_LATENCY, Engine, stage1_latency
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


def add_params_arguments(p):
    d = EngineParams()
    p.add_argument("--head-dim", type=int, default=d.head_dim, help="32, 64 or 128")
    p.add_argument("--lanes", type=int, default=d.lanes,
                   help="int8 MAC lanes, power of two 8..4096 (the stream engine), or 4 (the "
                        "serial engine of the iCE40 board)")
    p.add_argument("--max-radius", type=int, default=d.max_radius,
                   help="largest window reach per side in tokens (dilation x radius)")
    p.add_argument("--max-globals", type=int, default=d.max_globals)
    p.add_argument("--max-dilation", type=int, default=d.max_dilation)
    p.add_argument("--seq-width", type=int, default=d.seq_width,
                   help="sequence counter width: n up to 2^w - 1")
    p.add_argument("--dot-pipeline", type=int, default=d.dot_pipeline,
                   help="extra register stages in the Q.K path, 0..4: the adder trees, the key "
                        "rows beside their memories, the trees again, the key memories' "
                        "addresses (a cycle per group each; for FPGAs whose multipliers and "
                        "memories lie far apart)")
    p.add_argument("--pv-pipeline", type=int, default=d.pv_pipeline,
                   help="extra register stages in the softmax and P.V path, 0..5: a copy of the "
                        "exponential per 8 multipliers, the products, the exponential table's "
                        "output, the score read, the softmax multiplier's partial products (a "
                        "cycle per group each; for the same FPGAs)")


def params_from_args(args) -> EngineParams:
    return EngineParams(head_dim=args.head_dim, lanes=args.lanes, max_radius=args.max_radius,
                        max_globals=args.max_globals, max_dilation=args.max_dilation,
                        seq_width=args.seq_width, dot_pipeline=args.dot_pipeline,
                        pv_pipeline=args.pv_pipeline)


def add_arguments(p):
    add_params_arguments(p)
    p.add_argument("--out", default="build/verilog", help="output folder (default build/verilog)")
    p.add_argument("--name", default=TOP, help="top module name")


def run(args) -> int:
    params = params_from_args(args)
    t0 = time.perf_counter()
    vpath, jpath = generate(params, args.out, args.name)
    print(f"wrote {vpath} ({vpath.stat().st_size // 1024} KiB) and {jpath} "
          f"in {time.perf_counter() - t0:.1f} s")
    if params.serial:
        print(f"  serial engine: 2 Q.K + 2 P.V lanes on 16-bit buffer words, "
              f"{params.head_dim // 2} cycles per key")
    else:
        print(f"  {params.lanes} lanes = {params.units} unit(s) x {params.lane_width} Q.K + "
              f"{params.lane_width} P.V lanes, {params.chunks} cycle(s) per key, "
              f"ring {params.ring_rows} rows, score buffer {params.score_depth}")
    return 0
