"""``swattn run``: one attention job on a real board through the host driver
(:mod:`swattn.sw.driver`), checked bit for bit against the golden model. The pattern is the
window and globals, with ``--bands``/``--columns`` an EngineForm (for a board whose engine was
generated with band and column fields), or the whole pattern from ``--pattern FILE.json``."""

import time

import numpy as np

from .args import WINDOW_UNIT, add_keyset_arguments, board, integer, number, seed, serial_port

HELP = "run an attention job on a board over its serial port and check it against the golden model"


def add_arguments(p):
    p.add_argument("--port", required=True, type=serial_port,
                   help="serial port, e.g. /dev/ttyUSB1 (or a pyserial URL)")
    p.add_argument("--board", default=None, type=board(),
                   help="board name (sets the baud rate; see `swattn build --list`)")
    p.add_argument("--baud", type=integer("--baud", 1), default=None,
                   help="baud rate (default: the board's)")
    p.add_argument("--n", type=integer("--n", 1), default=256,
                   help="sequence length, 1 up to the board's limit (default 256)")
    p.add_argument("--radius", type=integer("--radius", 0), default=8,
                   help=f"window radius each side, {WINDOW_UNIT} (default 8)")
    p.add_argument("--dilation", type=integer("--dilation", 1), default=1,
                   help="window dilation: tokens between window keys, 1 or more (default 1)")
    p.add_argument("--n-globals", type=integer("--n-globals", 0), default=2,
                   help="global tokens spread over the sequence, 0..n (default 2)")
    add_keyset_arguments(p, grid=False)
    p.add_argument("--seed", type=seed(), default=0, help="data seed, 0..2^32-1")
    p.add_argument("--timeout", type=number("--timeout", 0.0, lo_open=True, unit=" seconds"),
                   default=1.0, help="reply time-out in seconds (default 1)")


def run(args) -> int:
    from ...fpga.boards import BOARDS, get_board
    from .. import golden
    from ..driver import DriverError, open_board
    from ..spec.errors import UserError
    from ..spec.numerics import SoftmaxConfig
    from ..spec.pattern import HybridPattern, PatternError
    from .args import engine_pattern, file_pattern, named, refuse_grid, with_bands

    refuse_grid(args)
    from_file = None
    if args.pattern is not None:  # read before the board is opened
        from_file = file_pattern(args, ("--n", "--radius", "--dilation", "--n-globals",
                                        "--bands", "--columns"), grid=False)
    elif args.n_globals > args.n:
        raise UserError(f"--n-globals = {args.n_globals} is out of range: allowed 0..{args.n} "
                        "(--n)")
    baud = args.baud
    if baud is None:
        baud = get_board(args.board).baud if args.board else next(iter(BOARDS.values())).baud
    try:
        try:
            board = open_board(args.port, baud, reply_timeout=args.timeout)
        except DriverError as exc:
            raise UserError(f"--port = {args.port!r}: {exc}") from None
        ident = board.identify()
        p = ident.params
        print(f"board: swattn {ident.version}, {p.lanes} lanes, head dim {p.head_dim}, "
              f"n <= {min(p.n_max, ident.buffer_rows)}, {ident.clock_hz / 1e6:g} MHz")
        if from_file is not None:
            where = f"--pattern = {str(args.pattern)!r}"
            pattern = engine_pattern(from_file, p.limits(), lambda field: f"{where}: {field}")
        else:
            globals_ = tuple(np.linspace(0, args.n - 1, args.n_globals).astype(int).tolist()) \
                if args.n_globals else ()
            pattern = HybridPattern(args.n, args.radius, args.radius, args.dilation,
                                    tuple(sorted(set(globals_))), limits=p.limits())
            # bands and columns: an EngineForm, refused by an engine without their fields
            pattern = with_bands(pattern, args.bands, args.columns, "--n-globals", p.limits())
        spread = 128.0 * 128.0 * p.head_dim ** 0.5 / 3
        cfg = SoftmaxConfig.from_multiplier(8.0 / spread, 2)
        rng = np.random.default_rng(args.seed)
        q, k, v = (rng.integers(-128, 128, (pattern.n, p.head_dim)).astype(np.int8)
                   for _ in range(3))
        t0 = time.perf_counter()
        out, cycles = board.attention(q, k, v, pattern, cfg)
        wall = time.perf_counter() - t0
    except DriverError as exc:
        raise UserError(str(exc)) from None
    except PatternError as exc:  # the board's engine limits, known once it answered
        raise named(exc, {"n": "--n", "left": "--radius", "right": "--radius",
                          "dilation": "--dilation", "globals": "--n-globals"}) from None
    ref = golden.attention_engine(q, k, v, pattern, cfg)
    bad = int(np.count_nonzero(out != ref))
    more = "".join([f" bands={','.join(f'{s}:{c}' for s, c in pattern.bands)}"
                    if getattr(pattern, "bands", ()) else "",
                    f" columns={len(pattern.columns)}" if getattr(pattern, "columns", ()) else ""])
    print(f"n={pattern.n} left={pattern.left} right={pattern.right} "
          f"dilation={pattern.dilation} globals={len(pattern.globals_)}{more}: "
          f"{cycles} engine cycles ({cycles / ident.clock_hz * 1e6:.1f} us), "
          f"{wall:.2f} s with the link")
    if bad:
        print(f"MISMATCH: {bad} of {out.size} output values differ from the golden model")
        return 1
    print("output matches the golden model bit for bit")
    return 0
