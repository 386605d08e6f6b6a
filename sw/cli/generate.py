"""``swattn generate``: write the engine's Verilog and a JSON sidecar (parameters, register map)."""

from __future__ import annotations

import time

from ..spec.errors import UserError
from .args import CREATES_FOLDERS, add_engine_arguments, engine_params, output_dir, verilog_name

HELP = "generate the engine's Verilog and a JSON sidecar with parameters and register map"


def add_arguments(p):
    from ...hw.generate import BUSES, TOP

    add_engine_arguments(p)
    p.add_argument("--out", default="build/verilog",
                   help=f"output folder (default build/verilog; {CREATES_FOLDERS})")
    p.add_argument("--name", default=TOP, type=verilog_name,
                   help=f"top module name, also the files' (letters, digits and _; default {TOP})")
    p.add_argument("--bus", default="bare", choices=BUSES,
                   help="the top's ports: bare (the engine's streams and configuration vector, "
                        "default) or axi (AXI4-Stream data, AXI4-Lite registers and an irq; "
                        "docs/axi.md)")
    p.add_argument("--fusesoc", action="store_true",
                   help="also write <name>.core, a FuseSoC core with lint and sim targets")


def run(args) -> int:
    from ...hw.generate import core_name, generate
    from ..spec.axi_regs import register_map
    from ..progress import Progress, engine_label

    params = engine_params(args)
    if args.bus == "axi" and params.serial:
        raise UserError(f"--bus axi with --lanes {params.lanes}: the AXI top wraps the stream "
                        f"engine (--lanes 8..4096); the serial engine (4 lanes) reads buffer "
                        f"memories")
    output_dir("--out", args.out)
    t0 = time.perf_counter()
    with Progress(f"generating the Verilog of {engine_label(params)}", announce=True,
                  note="Amaranth elaboration, then Yosys"):
        vpath, jpath = generate(params, args.out, args.name, bus=args.bus,
                                fusesoc=args.fusesoc)
    print(f"wrote {vpath} ({vpath.stat().st_size // 1024} KiB) and {jpath} "
          f"in {time.perf_counter() - t0:.1f} s")
    if args.fusesoc:
        print(f"  FuseSoC core {vpath.with_suffix('.core')}: fusesoc --cores-root "
              f"{vpath.parent} run --target lint {core_name(args.name)}")
    if args.bus == "axi":
        print(f"  AXI4-Stream s_axis_q ({8 * params.head_dim} bits), s_axis_kv "
              f"({16 * params.head_dim} bits), m_axis_o; AXI4-Lite s_axil "
              f"({len(register_map(params))} registers: {jpath.name} axi_lite, docs/axi.md); irq")
    if params.serial:
        print(f"  serial engine: 2 Q.K + 2 P.V lanes on 16-bit buffer words, "
              f"{params.head_dim // 2} cycles per key")
    else:
        print(f"  {params.lanes} lanes = {params.units} unit(s) x {params.lane_width} Q.K + "
              f"{params.lane_width} P.V lanes, {params.chunks} cycle(s) per key, "
              f"ring {params.ring_rows} rows, score buffer {params.score_depth}")
    return 0
