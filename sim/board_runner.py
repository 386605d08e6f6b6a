"""Build the board top (UART + protocol + buffers + engine) under Verilator and run the host
driver against it (:mod:`swattn.sim.tb_board`).

``run_board(params, scenarios, word_bytes=...)`` generates the Verilog of
:class:`swattn.fpga.top.UartBoard` once per configuration (cached under ``build/sim``, keyed by
the parameters and a hash of every source it depends on), builds it, runs the scenarios and
returns one result dict per scenario.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ..sw.spec.engine_params import EngineParams
from .runner import _build_phase, _check_simulator

TOP = "swattn_board"


def _fingerprint() -> bytes:
    here = Path(__file__).resolve().parent.parent
    h = hashlib.sha1()
    files = sorted((here / "hw").glob("*.py"))
    files += sorted((here / "fpga").glob("*.py"))  # (the board core's modules among them)
    files += [here / "sw" / "spec" / n for n in ("numerics.py", "regs.py", "engine_params.py",
                                        "protocol.py")]
    for f in files:
        h.update(f.read_bytes())
    return h.digest()


def build_board(params: EngineParams, word_bytes: int, divisor: int, timeout_cycles: int,
                clock_hz: int, root: Path | str = "build/sim") -> Path:
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from ..fpga.top import UartBoard
    from ..sw.progress import Progress, engine_label

    _check_simulator("verilator")
    cfg = dict(params=params.as_dict(), word_bytes=word_bytes, divisor=divisor,
               timeout_cycles=timeout_cycles, clock_hz=clock_hz)
    key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode() + _fingerprint()).hexdigest()[:10]
    bdir = Path(root).resolve() / f"board_{key}"
    vpath = bdir / f"{TOP}.v"
    if not vpath.exists():
        bdir.mkdir(parents=True, exist_ok=True)
        top = UartBoard(params, divisor=divisor, word_bytes=word_bytes, clock_hz=clock_hz,
                        timeout_cycles=timeout_cycles)
        tmp = vpath.with_suffix(".tmp")
        with Progress(f"generating the Verilog of the board core with {engine_label(params)}",
                      announce=True, note="Amaranth elaboration, then Yosys"):
            tmp.write_text(verilog.convert(top, name=TOP, emit_src=False))
        tmp.rename(vpath)
    exe = bdir / TOP
    if exe.exists() and exe.stat().st_mtime > vpath.stat().st_mtime:
        return bdir  # cocotb's Verilator runner would re-verilate and recompile everything
    runner = get_runner("verilator")
    started = time.time()
    with Progress(f"building the Verilator model of the board core with {engine_label(params)}",
                  announce=True, note="first run only, a minute or more",
                  poll=lambda p: p.update(detail=_build_phase(bdir, started))):
        runner.build(sources=[vpath], hdl_toplevel=TOP, build_dir=bdir,
                     build_args=["-Wno-fatal", "-Wno-WIDTH", "-O2", "--x-assign", "fast"],
                     always=False, log_file=bdir / "build.log")
    return bdir


def run_board(params: EngineParams, scenarios: list[dict], *, word_bytes: int,
              divisor: int = 8, timeout_cycles: int = 4000, clock_hz: int = 100_000_000,
              reply_timeout: float = 200e-6, rows_per_frame: int = 16, name: str = "board",
              root: Path | str = "build/sim") -> list[dict]:
    """Run ``scenarios`` (dicts with ``kind``: job, identify, no_config, corrupt_payload,
    corrupt_header, corrupt_crc_high, corrupt_header_crc_high, truncated, unknown, bad_addr,
    bad_length, refused, silent) through the driver and the simulated board's UART pins.
    ``reply_timeout`` is in simulated seconds. The board core's engine follows ``params`` (lanes
    4: the serial engine)."""
    from cocotb_tools.runner import get_runner

    bdir = build_board(params, word_bytes, divisor, timeout_cycles, clock_hz, root)
    spec_path = bdir / f"{name}.spec.json"
    res_path = bdir / f"{name}.results.json"
    rows = 1 << params.seq_width
    scen = [dict(s, buffer_rows=rows) for s in scenarios]
    spec_path.write_text(json.dumps({"params": {k: v for k, v in params.as_dict().items()
                                                if k in EngineParams.__dataclass_fields__},
                                     "divisor": divisor, "reply_timeout": reply_timeout,
                                     "rows": rows_per_frame, "scenarios": scen}))
    if res_path.exists():
        res_path.unlink()
    runner = get_runner("verilator")
    runner.test(hdl_toplevel=TOP, hdl_toplevel_lang="verilog", test_module="swattn.sim.tb_board",
                build_dir=bdir, test_dir=bdir, results_xml=str(bdir / f"{name}.results.xml"),
                extra_env={"SWATTN_BOARD_SPEC": str(spec_path), "SWATTN_RESULTS": str(res_path)},
                log_file=bdir / f"{name}.log")
    if not res_path.exists():
        raise RuntimeError(f"the board testbench wrote no results: see {bdir / (name + '.log')}")
    return json.loads(res_path.read_text())
