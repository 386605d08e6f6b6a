"""``swattn golden``: run the bit-exact golden model on random int8 data and summarise the result
(:func:`swattn.sw.golden.random_run`). The pattern is the window and globals, with ``--bands``,
``--columns`` or ``--grid`` a key-set pattern (computed by :func:`swattn.sw.golden.attention_keys`),
or the whole pattern from ``--pattern FILE.json``.

Q, K and V are standard-normal matrices quantised per tensor, so their scales are the ones a real
model would give; unless ``--mult-mant``/``--mult-shift`` are given, the softmax multiplier comes
from those scales. For n <= 4096 the output is compared with the float64 masked reference (run with
the multiplier the engine actually applies) and the largest difference is reported in output LSBs.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..spec import numerics as nx
from ..spec.errors import UserError
from .args import (CREATES_FOLDERS, add_keyset_arguments, add_length_argument,
                   add_window_arguments, check_memory, integer, keyset_pattern_from_args,
                   output_file, seed)

HELP = "run the bit-exact golden model on random int8 data and print a summary"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pattern")
    add_length_argument(g, 1024)
    g.add_argument("--d", type=integer("--d", allowed="32, 64 or 128"), default=64, metavar="D",
                   help="head dimension: 32, 64 or 128 (default 64)")
    add_window_arguments(g, 64, "pick K distinct global tokens at random (seeded); default 0")
    add_keyset_arguments(g, grid=True)
    s = p.add_argument_group("numerics")
    s.add_argument("--mult-mant", type=integer("--mult-mant", 0, (1 << nx.MULT_MANT_WIDTH) - 1),
                   metavar="M",
                   help="softmax multiplier mantissa 0..65535 (with --mult-shift; default: "
                        "derived from the Q and K scales)")
    s.add_argument("--mult-shift", type=integer("--mult-shift", 0, (1 << nx.MULT_SHIFT_WIDTH) - 1),
                   metavar="S", help="softmax multiplier shift 0..63")
    s.add_argument("--out-shift", type=integer("--out-shift", 0, (1 << nx.OUT_SHIFT_WIDTH) - 1),
                   default=0, metavar="S",
                   help="output scale is scale_v * 2^-S, S in 0..7 (default 0)")
    p.add_argument("--seed", type=seed(), default=0,
                   help="random seed for data and globals, 0..2^32-1")
    p.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE ('-' for stdout, no table; "
                        f"{CREATES_FOLDERS})")


def _random_globals(seed: int):
    """``pick_globals`` for ``--n-globals``: K distinct tokens drawn with ``seed``."""
    def pick(n: int, k: int) -> tuple[int, ...]:
        import numpy as np

        rng = np.random.default_rng([seed, 1])
        return tuple(int(x) for x in rng.choice(n, size=k, replace=False))
    return pick


#: peak bytes of :func:`swattn.sw.golden.random_run` per element of an n x d matrix: Q, K and V
#: are drawn in float64 and quantised through two float64 temporaries (about 24 bytes), next to
#: the int8 matrices and the output (measured: 25.4 at n = 400000, d = 64)
_BYTES_PER_ELEMENT = 26


def _pattern(args):
    """Validate the options and build the pattern; raise UserError."""
    if args.d not in nx.HEAD_DIMS:
        raise UserError(f"--d = {args.d} is not supported: allowed "
                        f"{', '.join(map(str, nx.HEAD_DIMS))}")
    if args.pattern is None:  # (before --n-globals draws from n tokens)
        check_memory(f"--n {args.n} with --d {args.d}", _BYTES_PER_ELEMENT * args.n * args.d)
    pattern = keyset_pattern_from_args(args, 64, _random_globals(args.seed), grid=True)
    if args.pattern is not None:
        check_memory(f"--pattern {args.pattern} (n = {pattern.n}) with --d {args.d}",
                     _BYTES_PER_ELEMENT * pattern.n * args.d)
    if (args.mult_mant is None) != (args.mult_shift is None):
        raise UserError("--mult-mant and --mult-shift go together: give both or neither")
    if args.json:
        output_file("--json", args.json, stdout_ok=True)
    return pattern


def _print_summary(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..golden import REFERENCE_MAX_N

    pat, sm, out = res["pattern"], res["softmax"], res["output"]
    g = pat["globals"]
    gtext = "none" if not g else (", ".join(map(str, g[:8])) + (" ..." if len(g) > 8 else ""))
    t = Table(title="swattn golden", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("pattern", f"n={pat['n']} d={res['head_dim']} left={pat['left']} "
                         f"right={pat['right']} dilation={pat['dilation']}")
    t.add_row("globals", f"{len(g)}: {gtext}")
    if pat.get("bands"):
        t.add_row("bands", ", ".join(f"{s}:{c}" for s, c in pat["bands"])
                  + f" (window steps of {pat['dilation']})")
    if pat.get("columns"):
        c = pat["columns"]
        t.add_row("columns", f"{len(c)}: " + ", ".join(map(str, c[:8]))
                  + (" ..." if len(c) > 8 else ""))
    if pat.get("grid"):
        t.add_row("grid", f"width {pat['grid'][0]}, radius {pat['grid'][1]}")
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
    from ..golden import random_run

    pattern = _pattern(args)
    mult = None if args.mult_mant is None else (args.mult_mant, args.mult_shift)
    res = random_run(pattern, args.d, args.seed, mult, args.out_shift)
    if args.json == "-":
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _print_summary(res)
    if args.json:
        from ..report import write_json
        write_json(args.json, res)
    return 0
