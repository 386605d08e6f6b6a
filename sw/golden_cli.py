"""``swattn golden``: run the bit-exact golden model on random int8 data and summarise the result.

Q, K and V are standard-normal matrices quantised per tensor with :func:`numerics.quantise`, so
their scales are the ones a real model would give; unless ``--mult-mant``/``--mult-shift`` are
given, the softmax multiplier comes from those scales through :meth:`SoftmaxConfig.from_scales`.
For n <= 4096 the output is compared with the float64 masked reference (run with the multiplier
the engine actually applies) and the largest difference is reported in output LSBs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

HELP = "run the bit-exact golden model on random int8 data and print a summary"

#: above this n the dense float reference (n^2 floats) is skipped
REFERENCE_MAX_N = 4096


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pattern")
    g.add_argument("--n", type=int, default=1024, metavar="N", help="sequence length (default 1024)")
    g.add_argument("--d", type=int, default=64, metavar="D",
                   help="head dimension: 32, 64 or 128 (default 64)")
    g.add_argument("--radius", type=int, metavar="R",
                   help="window radius on both sides (sets --left and --right)")
    g.add_argument("--left", type=int, metavar="L", help="window radius to the left (default 64)")
    g.add_argument("--right", type=int, metavar="R",
                   help="window radius to the right, 0 for causal (default 64)")
    g.add_argument("--dilation", type=int, default=1, help="window dilation, >= 1 (default 1)")
    g.add_argument("--globals", dest="globals_list", metavar="I,J,...",
                   help="comma-separated global token indices")
    g.add_argument("--n-globals", type=int, metavar="K",
                   help="pick K distinct global tokens at random (seeded); default 0")
    s = p.add_argument_group("numerics")
    s.add_argument("--mult-mant", type=int, metavar="M",
                   help="softmax multiplier mantissa 0..65535 (with --mult-shift; default: "
                        "derived from the Q and K scales)")
    s.add_argument("--mult-shift", type=int, metavar="S", help="softmax multiplier shift 0..63")
    s.add_argument("--out-shift", type=int, default=0, metavar="S",
                   help="output scale is scale_v * 2^-S, S in 0..7 (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed for data and globals")
    p.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE ('-' for stdout, no table)")


def window_args(args, default: int) -> tuple[int, int]:
    """(left, right) from ``--radius`` or ``--left``/``--right`` (``default`` where not given);
    also refuses ``--globals`` together with ``--n-globals``."""
    from .cli import UserError

    if args.radius is not None and (args.left is not None or args.right is not None):
        raise UserError("give either --radius or --left/--right, not both")
    if args.globals_list is not None and args.n_globals is not None:
        raise UserError("give either --globals or --n-globals, not both")
    if args.radius is not None:
        return args.radius, args.radius
    return (default if args.left is None else args.left,
            default if args.right is None else args.right)


def parse_globals(text: str, n: int) -> tuple[int, ...]:
    from .cli import UserError

    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        return tuple(int(x) for x in items)
    except ValueError:
        raise UserError(f"--globals must be a comma-separated list of integers in 0..{n - 1}, "
                        f"got {text!r}") from None


def _config(args):
    """Validate the options and build the pattern; raise UserError (or PatternError)."""
    import numpy as np

    from . import numerics as nx
    from .cli import UserError
    from .pattern import HybridPattern

    if args.d not in nx.HEAD_DIMS:
        raise UserError(f"--d = {args.d} is not supported: allowed "
                        f"{', '.join(map(str, nx.HEAD_DIMS))}")
    if args.n < 1:
        raise UserError(f"--n = {args.n} is out of range: allowed 1..")
    left, right = window_args(args, 64)
    if args.globals_list is not None:
        globals_ = parse_globals(args.globals_list, args.n)
    else:
        k = 0 if args.n_globals is None else args.n_globals
        if not 0 <= k <= args.n:
            raise UserError(f"--n-globals = {k} is out of range: allowed 0..{args.n}")
        rng = np.random.default_rng([args.seed, 1])
        globals_ = tuple(int(x) for x in rng.choice(args.n, size=k, replace=False))
    # HybridPattern raises PatternError (a ValueError) naming the field and its range
    pattern = HybridPattern(args.n, left, right, args.dilation, globals_)
    if (args.mult_mant is None) != (args.mult_shift is None):
        raise UserError("--mult-mant and --mult-shift go together: give both or neither")
    return pattern


def _effective_log2_multiplier(cfg) -> float:
    """log2 units per integer score unit that the engine applies: x/2^8 = t * mant / 2^(shift+8)."""
    from . import numerics as nx

    return cfg.mult_mant / 2.0 ** (cfg.mult_shift + nx.EXP_FRAC_BITS)


def compute(args) -> dict:
    """Run the golden model (and the reference for small n); return the JSON-ready results."""
    import numpy as np

    from . import golden
    from . import numerics as nx

    pattern = _config(args)
    n, d = args.n, args.d
    rng = np.random.default_rng(args.seed)
    (q, sq), (k, sk), (v, sv) = (nx.quantise(rng.standard_normal((n, d))) for _ in range(3))
    if args.mult_mant is None:
        cfg = nx.SoftmaxConfig.from_scales(sq, sk, d, out_shift=args.out_shift)
        ideal = sq * sk * math.log2(math.e) / math.sqrt(d)
    else:
        cfg = nx.SoftmaxConfig(args.mult_mant, args.mult_shift, args.out_shift)
        ideal = None
    c = _effective_log2_multiplier(cfg)

    t0 = time.perf_counter()
    out = golden.attention(q, k, v, pattern, cfg)
    elapsed = time.perf_counter() - t0

    o = out.astype(np.int64)
    res = {
        "pattern": {"n": n, "left": pattern.left, "right": pattern.right,
                    "dilation": pattern.dilation, "globals": list(pattern.globals_)},
        "head_dim": d,
        "seed": args.seed,
        "softmax": {"mult_mant": cfg.mult_mant, "mult_shift": cfg.mult_shift,
                    "out_shift": cfg.out_shift, "log2_multiplier": c,
                    "from_scales": ideal is not None,
                    "multiplier_rel_error": None if ideal is None else abs(c / ideal - 1.0)},
        "scales": {"q": sq, "k": sk, "v": sv, "out": sv * 2.0 ** -cfg.out_shift},
        "pairs": pattern.pairs(),
        "sparsity": pattern.sparsity(),
        "time_s": elapsed,
        "output": {"min": int(o.min()), "max": int(o.max()), "mean": float(o.mean()),
                   "std": float(o.std()),
                   "saturated_fraction": float(np.mean((o == nx.DATA_MIN) | (o == nx.DATA_MAX)))},
        "max_abs_error_lsb": None,
        "mean_abs_error_lsb": None,
    }
    if n <= REFERENCE_MAX_N:
        # same multiplier as the engine, so the difference is the engine's arithmetic alone
        ref = golden.reference_masked(q, k, v, pattern, scale=c * math.log(2.0))
        ref = np.clip(ref * 2.0 ** cfg.out_shift, nx.DATA_MIN, nx.DATA_MAX)
        err = np.abs(o - ref)
        res["max_abs_error_lsb"] = float(err.max())
        res["mean_abs_error_lsb"] = float(err.mean())
    return res


def _print_summary(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    pat, sm, out = res["pattern"], res["softmax"], res["output"]
    g = pat["globals"]
    gtext = "none" if not g else (", ".join(map(str, g[:8])) + (" ..." if len(g) > 8 else ""))
    t = Table(title="swattn golden", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("pattern", f"n={pat['n']} d={res['head_dim']} left={pat['left']} "
                         f"right={pat['right']} dilation={pat['dilation']}")
    t.add_row("globals", f"{len(g)}: {gtext}")
    t.add_row("pairs", f"{res['pairs']:,} (sparsity {100 * res['sparsity']:.2f}%)")
    mult = (f"mant={sm['mult_mant']} shift={sm['mult_shift']} out_shift={sm['out_shift']} "
            f"(multiplier {sm['log2_multiplier']:.4g} log2 units per score unit")
    if sm["multiplier_rel_error"] is not None:
        mult += f", rel. error vs scales {sm['multiplier_rel_error']:.2g}"
    t.add_row("softmax", mult + ")")
    t.add_row("time", f"{1e3 * res['time_s']:.1f} ms")
    t.add_row("output", f"min {out['min']} max {out['max']} mean {out['mean']:.2f} "
                        f"std {out['std']:.2f} saturated {100 * out['saturated_fraction']:.2f}% "
                        f"(scale {res['scales']['out']:.4g})")
    if res["max_abs_error_lsb"] is None:
        t.add_row("vs float", f"skipped (n > {REFERENCE_MAX_N})")
    else:
        t.add_row("vs float", f"max |error| {res['max_abs_error_lsb']:.3f} LSB, "
                              f"mean {res['mean_abs_error_lsb']:.3f} LSB")
    Console().print(t)


def run(args) -> int:
    res = compute(args)
    if args.json == "-":
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _print_summary(res)
    if args.json:
        from .cli import write_json
        write_json(args.json, res)
    return 0
