"""Arguments that several subcommands share: the engine's elaboration parameters and a hybrid
pattern (window, dilation, global tokens), with the functions that turn them into an
:class:`~swattn.sw.spec.engine_params.EngineParams` and a
:class:`~swattn.sw.spec.pattern.HybridPattern`."""

from __future__ import annotations

from ..spec.engine_params import EngineParams
from ..spec.errors import UserError
from ..spec.pattern import HybridPattern, PatternLimits


def add_engine_arguments(p) -> None:
    """The elaboration parameters (``swattn generate``, ``swattn sim``)."""
    d = EngineParams()
    p.add_argument("--head-dim", type=int, default=d.head_dim, help="32, 64 or 128")
    p.add_argument("--lanes", type=int, default=d.lanes,
                   help="int8 MAC lanes, power of two 8..4096 (the stream engine), or 4 (the "
                        "serial engine of the iCE40 board)")
    p.add_argument("--max-radius", type=int, default=d.max_radius,
                   help="largest window reach per side in tokens (dilation x radius)")
    p.add_argument("--max-globals", type=int, default=d.max_globals)
    p.add_argument("--max-dilation", type=int, default=d.max_dilation)
    p.add_argument("--seq-width", type=int, default=d.seq_width,
                   help="sequence counter width: n up to 2^w - 1")
    p.add_argument("--dot-pipeline", type=int, default=d.dot_pipeline,
                   help="extra register stages in the Q.K path, 0..4: the adder trees, the key "
                        "rows beside their memories, the trees again, the key memories' "
                        "addresses (a cycle per group each; for FPGAs whose multipliers and "
                        "memories lie far apart)")
    p.add_argument("--pv-pipeline", type=int, default=d.pv_pipeline,
                   help="extra register stages in the softmax and P.V path, 0..5: a copy of the "
                        "exponential per 8 multipliers, the products, the exponential table's "
                        "output, the score read, the softmax multiplier's partial products (a "
                        "cycle per group each; for the same FPGAs)")


def engine_params(args) -> EngineParams:
    """The parameters given with :func:`add_engine_arguments` (ValueError naming a bad one)."""
    return EngineParams(head_dim=args.head_dim, lanes=args.lanes, max_radius=args.max_radius,
                        max_globals=args.max_globals, max_dilation=args.max_dilation,
                        seq_width=args.seq_width, dot_pipeline=args.dot_pipeline,
                        pv_pipeline=args.pv_pipeline)


def add_length_argument(g, n: int) -> None:
    """A pattern's sequence length: ``--n`` (default ``n``)."""
    g.add_argument("--n", type=int, default=n, metavar="N", help=f"sequence length (default {n})")


def add_window_arguments(g, window: int, n_globals_help: str) -> None:
    """The rest of a hybrid pattern: ``--radius`` or ``--left``/``--right`` (default
    ``window``), ``--dilation``, ``--globals`` or ``--n-globals``."""
    g.add_argument("--radius", type=int, metavar="R",
                   help="window radius on both sides (sets --left and --right)")
    g.add_argument("--left", type=int, metavar="L",
                   help=f"window radius to the left (default {window})")
    g.add_argument("--right", type=int, metavar="R",
                   help=f"window radius to the right, 0 for causal (default {window})")
    g.add_argument("--dilation", type=int, default=1, help="window dilation, >= 1 (default 1)")
    g.add_argument("--globals", dest="globals_list", metavar="I,J,...",
                   help="comma-separated global token indices")
    g.add_argument("--n-globals", type=int, metavar="K", help=n_globals_help)


def window_args(args, default: int) -> tuple[int, int]:
    """(left, right) from ``--radius`` or ``--left``/``--right`` (``default`` where not given);
    also refuses ``--globals`` together with ``--n-globals``."""
    if args.radius is not None and (args.left is not None or args.right is not None):
        raise UserError("give either --radius or --left/--right, not both")
    if args.globals_list is not None and args.n_globals is not None:
        raise UserError("give either --globals or --n-globals, not both")
    if args.radius is not None:
        return args.radius, args.radius
    return (default if args.left is None else args.left,
            default if args.right is None else args.right)


def parse_globals(text: str, n: int) -> tuple[int, ...]:
    """``--globals`` as given: comma-separated token indices."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        return tuple(int(x) for x in items)
    except ValueError:
        raise UserError(f"--globals must be a comma-separated list of integers in 0..{n - 1}, "
                        f"got {text!r}") from None


def spread_globals(n: int, k: int) -> tuple[int, ...]:
    """``k`` global tokens spread evenly over ``n``."""
    return tuple(sorted({(i * n) // max(k, 1) for i in range(k)}))


def pattern_from_args(args, window: int, pick_globals, limits: PatternLimits | None = None,
                      ) -> HybridPattern:
    """The pattern given with :func:`add_length_argument` and :func:`add_window_arguments`: the window from
    :func:`window_args`, the globals from ``--globals`` or ``pick_globals(n, k)`` for
    ``--n-globals k``. With ``limits`` (an engine's), ``--n-globals`` is held to its
    ``max_globals`` and the pattern to its limits. A pattern out of range raises
    :class:`~swattn.sw.spec.pattern.PatternError` (a ValueError) naming the field."""
    left, right = window_args(args, window)
    if args.globals_list is not None:
        globals_ = parse_globals(args.globals_list, args.n)
    else:
        k = 0 if args.n_globals is None else args.n_globals
        engine = limits is not None and limits.max_globals is not None
        top = min(args.n, limits.max_globals) if engine else args.n
        if not 0 <= k <= top:
            why = " (the engine's --max-globals)" if engine else ""
            raise UserError(f"--n-globals = {k} is out of range: allowed 0..{top}{why}")
        globals_ = pick_globals(args.n, k)
    kw = {} if limits is None else {"limits": limits}
    return HybridPattern(args.n, left, right, args.dilation, globals_, **kw)
