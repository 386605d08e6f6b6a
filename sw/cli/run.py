"""``swattn run``: one attention job on a real board through the host driver
(:mod:`swattn.sw.driver`), checked bit for bit against the golden model."""

import time

import numpy as np

HELP = "run an attention job on a board over its serial port and check it against the golden model"


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--board", default=None,
                   help="board name (sets the baud rate; see `swattn build --list`)")
    p.add_argument("--baud", type=int, default=None, help="baud rate (default: the board's)")
    p.add_argument("--n", type=int, default=256, help="sequence length")
    p.add_argument("--radius", type=int, default=8, help="window radius each side")
    p.add_argument("--dilation", type=int, default=1)
    p.add_argument("--n-globals", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1.0, help="reply time-out in seconds")


def run(args) -> int:
    from ...fpga.boards import BOARDS, get_board
    from .. import golden
    from ..driver import DriverError, open_board
    from ..spec.errors import UserError
    from ..spec.numerics import SoftmaxConfig
    from ..spec.pattern import HybridPattern

    baud = args.baud
    if baud is None:
        baud = get_board(args.board).baud if args.board else next(iter(BOARDS.values())).baud
    try:
        board = open_board(args.port, baud, reply_timeout=args.timeout)
        ident = board.identify()
        p = ident.params
        print(f"board: swattn {ident.version}, {p.lanes} lanes, head dim {p.head_dim}, "
              f"n <= {min(p.n_max, ident.buffer_rows)}, {ident.clock_hz / 1e6:g} MHz")
        globals_ = tuple(np.linspace(0, args.n - 1, args.n_globals).astype(int).tolist()) \
            if args.n_globals else ()
        pattern = HybridPattern(args.n, args.radius, args.radius, args.dilation,
                                tuple(sorted(set(globals_))), limits=p.limits())
        spread = 128.0 * 128.0 * p.head_dim ** 0.5 / 3
        cfg = SoftmaxConfig.from_multiplier(8.0 / spread, 2)
        rng = np.random.default_rng(args.seed)
        q, k, v = (rng.integers(-128, 128, (args.n, p.head_dim)).astype(np.int8)
                   for _ in range(3))
        t0 = time.perf_counter()
        out, cycles = board.attention(q, k, v, pattern, cfg)
        wall = time.perf_counter() - t0
    except DriverError as exc:
        raise UserError(str(exc)) from None
    ref = golden.attention(q, k, v, pattern, cfg)
    bad = int(np.count_nonzero(out != ref))
    print(f"n={args.n} radius={args.radius} dilation={args.dilation} globals={len(pattern.globals_)}: "
          f"{cycles} engine cycles ({cycles / ident.clock_hz * 1e6:.1f} us), "
          f"{wall:.2f} s with the link")
    if bad:
        print(f"MISMATCH: {bad} of {out.size} output values differ from the golden model")
        return 1
    print("output matches the golden model bit for bit")
    return 0
