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


#: the top module's interfaces ``swattn generate --bus`` offers
BUSES = ("bare", "axi")


def generate(params: EngineParams, out_dir: Path | str, name: str = TOP,
             bus: str = "bare", fusesoc: bool = False) -> tuple[Path, Path]:
    """Elaborate the engine and write ``<name>.v`` and ``<name>.json`` into ``out_dir``: the
    stream engine (:mod:`swattn.hw.engine`), or for ``lanes = 4`` the serial engine
    (:mod:`swattn.hw.serial`, ports on 16-bit buffer words). ``bus="axi"``: the stream engine
    behind AXI4-Stream and AXI4-Lite ports (:mod:`swattn.hw.axi`), the register map in the
    sidecar. ``fusesoc``: also ``<name>.core``, a FuseSoC core with lint and simulation
    targets."""
    from amaranth.back import verilog

    from .engine import Engine, stage1_latency
    from .stage2 import STAGE2_LATENCY
    from .serial import WORD_BYTES, SerialEngine

    if bus not in BUSES:
        raise ValueError(f"bus = {bus!r}: allowed {', '.join(BUSES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    serial = params.serial
    if bus == "axi":
        from .axi import AxiEngine

        engine = AxiEngine(params)  # refuses the serial engine
    else:
        engine = SerialEngine(params) if serial else Engine(params)
    text = verilog.convert(engine, name=name, emit_src=False)
    vpath = out_dir / f"{name}.v"
    vpath.write_text(text)
    sidecar = {"top": name, "engine": "serial" if serial else "stream", "bus": bus,
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
        q_order = "non-global rows in processing order, then each global group's queries"
        if bus == "axi":
            from ..sw.spec import axi_regs

            sidecar["axi_lite"] = {"addr_bits": axi_regs.ADDR_WIDTH,
                                   "data_bits": axi_regs.DATA_WIDTH,
                                   "registers": axi_regs.as_json(params)}
            sidecar["ports"] = {
                "clock": "aclk", "reset": "aresetn (active low, synchronous)",
                "s_axis_q": {"tdata_bits": params.head_dim * 8, "order": q_order,
                             "tlast": "accepted, not needed"},
                "s_axis_kv": {"tdata_bits": params.head_dim * 16,
                              "layout": "k in the low half, v above",
                              "tlast": "accepted, not needed"},
                "m_axis_o": {"tdata_bits": params.head_dim * 8,
                             "tlast": "on the job's last output row"},
                "s_axil": "AXI4-Lite slave, the registers of axi_lite.registers",
                "irq": "high while IRQ_STATUS & IRQ_ENABLE is not zero",
            }
        else:
            sidecar["ports"] = {
                "q": {"payload_bits": params.head_dim * 8, "order": q_order},
                "kv": {"payload_bits": params.head_dim * 16,
                       "layout": "k in the low half, v above"},
                "o": {"payload_bits": params.head_dim * 8},
            }
    write_waivers(out_dir / f"{name}.vlt")
    jpath = out_dir / f"{name}.json"
    jpath.write_text(json.dumps(sidecar, indent=2) + "\n")
    if fusesoc:
        write_core(out_dir, name, params, bus)
    return vpath, jpath


def core_name(name: str) -> str:
    """The FuseSoC VLNV of a generated top."""
    from .. import __version__

    return f"swattn:generated:{name}:{__version__}"


def write_core(out_dir: Path, name: str, params: EngineParams, bus: str) -> Path:
    """``<name>.core``: a FuseSoC (CAPI2) core of the generated Verilog, with a ``lint`` target
    (Verilator, ``--lint-only -Wall`` with the waivers file), a ``sim`` target (Icarus Verilog,
    elaborating the top; a testbench core depends on this one) and a ``default`` target that
    lists the files for a user's own flow."""
    import yaml

    core = {
        "name": core_name(name),
        "description": f"swattn attention engine ({bus} ports), head dim {params.head_dim}, "
                       f"{params.lanes} lanes",
        "filesets": {
            "rtl": {"files": [f"{name}.v"], "file_type": "verilogSource"},
            "waivers": {"files": [f"{name}.vlt"], "file_type": "vlt"},
        },
        "targets": {
            "default": {"filesets": ["rtl"], "toplevel": name},
            "lint": {"default_tool": "verilator", "filesets": ["rtl", "waivers"],
                     "toplevel": name,
                     "tools": {"verilator": {"mode": "lint-only",
                                             "verilator_options": ["-Wall"]}}},
            "sim": {"default_tool": "icarus", "filesets": ["rtl"], "toplevel": name,
                    "tools": {"icarus": {"iverilog_options": ["-g2012"]}}},
        },
    }
    path = out_dir / f"{name}.core"
    path.write_text("CAPI=2:\n" + yaml.safe_dump(core, sort_keys=False))
    return path
