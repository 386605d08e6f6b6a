"""``swattn bench``: the benchmark report (:func:`swattn.sw.bench.run_bench`)."""

from __future__ import annotations

from pathlib import Path

from ..spec.errors import UserError
from .args import (CREATES_FOLDERS, given, input_dir, integer, output_dir, output_file,
                   stream_lanes_type)

HELP = "benchmark report: utilisation, cycles against SALO, board Fmax, CPU and GPU figures"


def add_arguments(p) -> None:
    from ..bench import GPU_JSON, KIND_NAMES, LANES_DEFAULT, N_DEFAULT

    p.add_argument("--json", metavar="FILE",
                   help=f"also write every figure as JSON ({CREATES_FOLDERS})")
    p.add_argument("--out", default="build/bench", metavar="DIR",
                   help=f"folder for report.md and the plots (default build/bench; "
                        f"{CREATES_FOLDERS})")
    p.add_argument("--n", type=integer("--n", 1, 1 << 20), nargs="+", default=list(N_DEFAULT),
                   metavar="N",
                   help="sequence lengths of the workloads (default "
                        + " ".join(map(str, N_DEFAULT)) + ")")
    p.add_argument("--lanes", type=stream_lanes_type("bench"), nargs="+",
                   default=list(LANES_DEFAULT), metavar="L",
                   help="engine sizes: powers of two 8..4096 (default "
                        + " ".join(map(str, LANES_DEFAULT)) + ")")
    p.add_argument("--cpu-max-n", type=integer("--cpu-max-n", 0), default=16384, metavar="N",
                   help="time the CPU baselines on workloads up to this n; 0 skips them")
    p.add_argument("--repeat", type=integer("--repeat", 1), default=1,
                   help="CPU runs per workload, best kept (1 or more)")
    p.add_argument("--rtl-max-n", type=integer("--rtl-max-n", 0), default=0, metavar="N",
                   help="simulate workloads up to this n under Verilator for measured cycles "
                        "(slow; default 0: none)")
    p.add_argument("--rtl-lanes", type=stream_lanes_type("bench", "--rtl-lanes"), nargs="+",
                   default=[64], metavar="L",
                   help="engine sizes to simulate (default 64)")
    p.add_argument("--rtl-kinds", nargs="+", metavar="KIND", choices=KIND_NAMES,
                   help="simulate only these workload kinds (" + ", ".join(KIND_NAMES)
                        + "; default all)")
    p.add_argument("--gpu-json", default=str(GPU_JSON), metavar="FILE",
                   help="figures kept from bench/gpu_baseline.py (default docs/gpu_baseline.json)")
    p.add_argument("--synth-dir", default="build/synth", metavar="DIR",
                   help="where board builds leave <board>.json (default build/synth)")
    p.add_argument("--no-minilm", action="store_true",
                   help="skip the MiniLM mapper patterns (they load the model and fit a predictor)")


def _check_args(args) -> None:
    # the values are checked as they are parsed; here what needs the file system
    for flag, path in (("--gpu-json", args.gpu_json), ("--synth-dir", args.synth_dir)):
        if not given(args, flag):
            continue  # the defaults may be missing: the report says so
        if flag == "--synth-dir":
            input_dir(flag, path)
        elif not Path(path).is_file():
            raise UserError(f"--gpu-json = {path!r} is not a file: allowed the JSON that "
                            "bench/gpu_baseline.py writes")
    output_dir("--out", args.out)
    if args.json:
        output_file("--json", args.json)


def run(args) -> int:
    from ..bench import run_bench

    _check_args(args)
    run_bench(args.out, json_path=args.json, ns=args.n, lanes=args.lanes,
              cpu_max_n=args.cpu_max_n, repeat=args.repeat, rtl_max_n=args.rtl_max_n,
              rtl_lanes=args.rtl_lanes, rtl_kinds=args.rtl_kinds, gpu_json=args.gpu_json,
              synth_dir=args.synth_dir, minilm=not args.no_minilm)
    return 0
