"""``swattn bench``: the benchmark report (:func:`swattn.sw.bench.run_bench`)."""

from __future__ import annotations

from ..spec.errors import UserError

HELP = "benchmark report: utilisation, cycles against SALO, board Fmax, CPU and GPU figures"


def add_arguments(p) -> None:
    from ..bench import GPU_JSON, KIND_NAMES, LANES_DEFAULT, N_DEFAULT

    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    p.add_argument("--out", default="build/bench", metavar="DIR",
                   help="folder for report.md and the plots (default build/bench)")
    p.add_argument("--n", type=int, nargs="+", default=list(N_DEFAULT), metavar="N",
                   help="sequence lengths of the workloads (default "
                        + " ".join(map(str, N_DEFAULT)) + ")")
    p.add_argument("--lanes", type=int, nargs="+", default=list(LANES_DEFAULT), metavar="L",
                   help="engine sizes: powers of two 8..4096 (default "
                        + " ".join(map(str, LANES_DEFAULT)) + ")")
    p.add_argument("--cpu-max-n", type=int, default=16384, metavar="N",
                   help="time the CPU baselines on workloads up to this n; 0 skips them")
    p.add_argument("--repeat", type=int, default=1, help="CPU runs per workload, best kept")
    p.add_argument("--rtl-max-n", type=int, default=0, metavar="N",
                   help="simulate workloads up to this n under Verilator for measured cycles "
                        "(slow; default 0: none)")
    p.add_argument("--rtl-lanes", type=int, nargs="+", default=[64], metavar="L",
                   help="engine sizes to simulate (default 64)")
    p.add_argument("--rtl-kinds", nargs="+", metavar="KIND",
                   help="simulate only these workload kinds (" + ", ".join(KIND_NAMES)
                        + "; default all)")
    p.add_argument("--gpu-json", default=str(GPU_JSON), metavar="FILE",
                   help="figures kept from bench/gpu_baseline.py (default docs/gpu_baseline.json)")
    p.add_argument("--synth-dir", default="build/synth", metavar="DIR",
                   help="where board builds leave <board>.json (default build/synth)")
    p.add_argument("--no-minilm", action="store_true",
                   help="skip the MiniLM mapper patterns (they load the model and fit a predictor)")


def _check_args(args) -> None:
    from ..bench import KIND_NAMES

    for n in args.n:
        if not 1 <= n <= (1 << 20):
            raise UserError(f"--n {n} is out of range: allowed 1..{1 << 20}")
    for la in list(args.lanes) + list(args.rtl_lanes):
        if not (8 <= la <= 4096 and la & (la - 1) == 0):
            raise UserError(f"lanes {la} is out of range: allowed a power of two, 8..4096")
    for k in args.rtl_kinds or ():
        if k not in KIND_NAMES:
            raise UserError(f"--rtl-kinds {k!r} is not a workload kind: allowed "
                            + ", ".join(KIND_NAMES))
    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} is out of range: allowed >= 1")
    for name in ("cpu_max_n", "rtl_max_n"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)} is out of range: "
                            "allowed >= 0")


def run(args) -> int:
    from ..bench import run_bench

    _check_args(args)
    run_bench(args.out, json_path=args.json, ns=args.n, lanes=args.lanes,
              cpu_max_n=args.cpu_max_n, repeat=args.repeat, rtl_max_n=args.rtl_max_n,
              rtl_lanes=args.rtl_lanes, rtl_kinds=args.rtl_kinds, gpu_json=args.gpu_json,
              synth_dir=args.synth_dir, minilm=not args.no_minilm)
    return 0
