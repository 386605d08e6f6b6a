"""``swattn generate``: write the engine's Verilog and a JSON sidecar (parameters, register map)."""

from __future__ import annotations

import time

from .args import add_engine_arguments, engine_params

HELP = "generate the engine's Verilog and a JSON sidecar with parameters and register map"


def add_arguments(p):
    from ...hw.generate import TOP

    add_engine_arguments(p)
    p.add_argument("--out", default="build/verilog", help="output folder (default build/verilog)")
    p.add_argument("--name", default=TOP, help="top module name")


def run(args) -> int:
    from ...hw.generate import generate

    params = engine_params(args)
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
