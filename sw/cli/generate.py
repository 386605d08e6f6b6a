"""``swattn generate``: write the engine's Verilog and a JSON sidecar (parameters, register map)."""

from __future__ import annotations

import time

from .args import CREATES_FOLDERS, add_engine_arguments, engine_params, output_dir, verilog_name

HELP = "generate the engine's Verilog and a JSON sidecar with parameters and register map"


def add_arguments(p):
    from ...hw.generate import TOP

    add_engine_arguments(p)
    p.add_argument("--out", default="build/verilog",
                   help=f"output folder (default build/verilog; {CREATES_FOLDERS})")
    p.add_argument("--name", default=TOP, type=verilog_name,
                   help=f"top module name, also the files' (letters, digits and _; default {TOP})")


def run(args) -> int:
    from ...hw.generate import generate
    from ..progress import Progress, engine_label

    params = engine_params(args)
    output_dir("--out", args.out)
    t0 = time.perf_counter()
    with Progress(f"generating the Verilog of {engine_label(params)}", announce=True,
                  note="Amaranth elaboration, then Yosys"):
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
