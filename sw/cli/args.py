"""Arguments that several subcommands share: the engine's elaboration parameters and a hybrid
pattern (window, dilation, global tokens), with the functions that turn them into an
:class:`~swattn.sw.spec.engine_params.EngineParams` and a
:class:`~swattn.sw.spec.pattern.HybridPattern`; a key-set pattern's further options (``--bands``,
``--columns``, ``--grid``, ``--pattern FILE``: :func:`add_keyset_arguments`,
:func:`keyset_pattern_from_args`), which give an :class:`~swattn.sw.spec.keyset.EngineForm` or,
with a grid, a :class:`~swattn.sw.spec.keyset.KeySetPattern`; and the checks of single options
that every subcommand uses, so that each rule and its message live in one place.

A value is checked as the command line is parsed where it can be on its own (the ``type=``
factories :func:`integer`, :func:`number`, :func:`seed`, :func:`board`, :func:`serial_port`,
:func:`verilog_name`): they raise :class:`~swattn.sw.spec.errors.UserError`, which argparse lets
through, naming the option as typed, the value and what is allowed. Checks that touch the file
system (:func:`output_dir`, :func:`output_file`, :func:`read_text`) run at the start of a
subcommand, before any work, so that a default path is not created by ``--help``. Output paths
follow one rule: missing folders are created (:data:`CREATES_FOLDERS` for their ``--help``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..spec.engine_params import EngineParams
from ..spec.errors import UserError
from ..spec.pattern import HybridPattern, PatternError, PatternLimits

#: said in the ``--help`` of every output path
CREATES_FOLDERS = "missing folders are created"

#: seeds of the random data and patterns (numpy and Python generators take any of these)
SEED_MAX = (1 << 32) - 1

#: the unit of a window radius, said in the ``--help`` of every option that takes one
WINDOW_UNIT = ("in window steps, not tokens: a step is --dilation tokens, so the window reaches "
               "radius x dilation tokens on that side")


def _allowed(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    if lo is not None:
        return f"{lo} or more"
    return "any integer" if hi is None else f"{hi} or less"


def integer(flag: str, lo: int | None = None, hi: int | None = None, allowed: str | None = None):
    """``type=`` for an integer option ``flag`` in ``lo..hi`` (None: unbounded). ``allowed``
    says what is allowed where the range is checked later (by the library)."""
    allowed = allowed or _allowed(lo, hi)

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise UserError(f"{flag} = {text!r} is not an integer: allowed {allowed}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise UserError(f"{flag} = {value} is out of range: allowed {allowed}")
        return value
    parse.__name__ = "integer"
    return parse


def number(flag: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False, unit: str = ""):
    """``type=`` for a real option ``flag``: finite, from ``lo`` to ``hi`` (each excluded where
    ``lo_open``/``hi_open``; None: unbounded)."""
    import math

    if lo is not None and hi is not None:
        allowed = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        allowed = f"{'above' if lo_open else 'at least'} {lo:g}"
    else:
        allowed = "a finite number" if hi is None else f"{'below' if hi_open else 'at most'} {hi:g}"
    allowed += unit

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"{flag} = {text!r} is not a number: allowed {allowed}") from None
        low = lo is not None and (value <= lo if lo_open else value < lo)
        high = hi is not None and (value >= hi if hi_open else value > hi)
        if not math.isfinite(value) or low or high:
            raise UserError(f"{flag} = {text} is out of range: allowed {allowed}")
        return value
    parse.__name__ = "number"
    return parse


def seed(flag: str = "--seed", lo: int = 0, hi: int = SEED_MAX):
    """``type=`` for a seed."""
    return integer(flag, lo, hi)


def verilog_name(text: str) -> str:
    """``type=`` for ``--name``: a Verilog module name, also used for the file names."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise UserError(f"--name = {text!r} is not a Verilog identifier: allowed letters, digits "
                        "and _, not starting with a digit (e.g. swattn_engine)")
    return text


def board(flag: str = "--board"):
    """``type=`` for a board name of ``fpga/boards.py``."""
    def parse(text: str) -> str:
        from ...fpga.boards import BOARDS

        if text not in BOARDS:
            raise UserError(f"{flag} = {text!r} is not a board: allowed {', '.join(BOARDS)} "
                            "(see `swattn build --list`)")
        return text
    parse.__name__ = "board"
    return parse


def serial_port(text: str) -> str:
    """``type=`` for ``--port``: a character device (a pyserial URL such as ``socket://host:port``
    is passed on unchecked)."""
    import stat

    if "://" in text:
        return text
    try:
        mode = os.stat(text).st_mode
    except OSError as exc:
        raise UserError(f"--port = {text!r}: {exc.strerror}; allowed a serial device such as "
                        "/dev/ttyUSB1 (or a pyserial URL)") from None
    if not stat.S_ISCHR(mode):
        raise UserError(f"--port = {text!r} is not a serial device (not a character device): "
                        "allowed e.g. /dev/ttyUSB1 (or a pyserial URL)")
    return text


def given(args, *flags: str) -> list[str]:
    """Those of ``flags`` typed on the command line (recorded by the parser's store action)."""
    typed = getattr(args, "_given", set())
    return [f for f in flags if f in typed]


def output_dir(flag: str, path) -> Path:
    """Before any work: ``path`` is a folder that can be written, created if missing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} = {str(path)!r} is a file, not a folder: allowed a folder "
                        f"that can be written ({CREATES_FOLDERS})")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} = {str(path)!r}: cannot create the folder ({exc.strerror}): "
                        f"allowed a folder that can be written ({CREATES_FOLDERS})") from None
    try:  # os.access says yes to root on a read-only mount: try a file
        tempfile.TemporaryFile(dir=p).close()
    except OSError as exc:
        raise UserError(f"{flag} = {str(path)!r}: cannot write in the folder ({exc.strerror}): "
                        "allowed a folder that can be written") from None
    return p


def output_file(flag: str, path, stdout_ok: bool = False) -> None:
    """Before any work: ``path`` is a file that can be written (its folders created if missing;
    ``-`` where ``stdout_ok``). An existing file is opened to append, which leaves it as it is; a
    new one is made and removed again."""
    if stdout_ok and path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} = {str(path)!r} is a folder: allowed a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists():
            open(p, "a").close()
        else:
            open(p, "x").close()
            p.unlink()
    except OSError as exc:
        raise UserError(f"{flag} = {str(path)!r}: cannot write the file ({exc.strerror}): allowed "
                        f"a file that can be written ({CREATES_FOLDERS})") from None


def input_dir(flag: str, path) -> Path:
    """``path`` is an existing folder."""
    p = Path(path)
    if not p.is_dir():
        why = "is a file" if p.exists() else "does not exist"
        raise UserError(f"{flag} = {str(path)!r} {why}: allowed an existing folder")
    return p


def read_text(flag: str, path) -> str:
    """The text of ``path`` for an option that takes a text file: readable, UTF-8, not empty."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{flag} = {str(path)!r}: cannot read it ({exc.strerror}): allowed a "
                        "readable text file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{flag} = {str(path)!r} is not UTF-8 text (byte {exc.start} is "
                        f"0x{data[exc.start]:02x}): allowed a plain text file") from None
    if "\0" in text:
        raise UserError(f"{flag} = {str(path)!r} holds NUL bytes, a binary file: allowed a plain "
                        "text file")
    if not text.strip():
        raise UserError(f"{flag} = {str(path)!r} is empty: allowed a text file with words in it")
    return text


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (None where it cannot be told)."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(what: str, need: int) -> None:
    """Refuse ``what`` (the options as typed) when it needs more than the ``need`` bytes the
    machine has available, before allocating any of them."""
    have = available_memory()
    if have is not None and need > have:
        gib = 1 << 30
        raise UserError(f"{what} needs about {need / gib:.1f} GiB of memory; this machine has "
                        f"{have / gib:.1f} GiB available")


def named(exc: Exception, fields: dict[str, str]) -> UserError:
    """A library error that names a field (``field = value ...``, ``field: ...``) as a
    :class:`UserError` naming the option that set it instead (``fields``: field -> option)."""
    msg = str(exc)
    for field, flag in fields.items():
        if msg.startswith(field + " ") or msg.startswith(field + ":"):
            return UserError(flag + msg[len(field):])
    return UserError(msg)


#: what each option of :func:`add_engine_arguments` allows (EngineParams checks the ranges)
_ENGINE_ALLOWED = {
    "--head-dim": "32, 64 or 128",
    "--lanes": "a power of two, 4..4096",
    "--max-radius": "1..4096",
    "--max-globals": "0..64",
    "--max-dilation": "1..64",
    "--seq-width": "2..24",
    "--dot-pipeline": "0..5",
    "--pv-pipeline": "0..5",
    "--max-bands": "1..16 (the window counts as one)",
    "--max-columns": "0..32",
}


def _engine_int(flag: str):
    return integer(flag, allowed=_ENGINE_ALLOWED[flag])


def add_engine_arguments(p) -> None:
    """The elaboration parameters (``swattn generate``, ``swattn sim``)."""
    d = EngineParams()
    p.add_argument("--head-dim", type=_engine_int("--head-dim"), default=d.head_dim,
                   help="32, 64 or 128")
    p.add_argument("--lanes", type=_engine_int("--lanes"), default=d.lanes,
                   help="int8 MAC lanes, power of two 8..4096 (the stream engine), or 4 (the "
                        "serial engine of the iCE40 board)")
    p.add_argument("--max-radius", type=_engine_int("--max-radius"), default=d.max_radius,
                   help="largest window reach per side in tokens, 1..4096: a pattern's radius "
                        "counts window steps, so radius x dilation must not exceed it")
    p.add_argument("--max-globals", type=_engine_int("--max-globals"), default=d.max_globals,
                   help="largest number of global tokens, 0..64")
    p.add_argument("--max-dilation", type=_engine_int("--max-dilation"), default=d.max_dilation,
                   help="largest window dilation, 1..64")
    p.add_argument("--seq-width", type=_engine_int("--seq-width"), default=d.seq_width,
                   help="sequence counter width, 2..24: n up to 2^w - 1")
    p.add_argument("--dot-pipeline", type=_engine_int("--dot-pipeline"), default=d.dot_pipeline,
                   help="extra register stages in the Q.K path, 0..5: the adder trees, the key "
                        "rows beside their memories, the trees again, the key memories' "
                        "addresses (a cycle per group each; for FPGAs whose multipliers and "
                        "memories lie far apart), then a cycle of its own for each switch "
                        "from one band to the next")
    p.add_argument("--pv-pipeline", type=_engine_int("--pv-pipeline"), default=d.pv_pipeline,
                   help="extra register stages in the softmax and P.V path, 0..5: a copy of the "
                        "exponential per 8 multipliers, the products, the exponential table's "
                        "output, the score read, the softmax multiplier's partial products (a "
                        "cycle per group each; for the same FPGAs)")
    p.add_argument("--max-bands", type=_engine_int("--max-bands"), default=d.max_bands,
                   help=f"largest number of bands of keys per job, the window counting as one, "
                        f"1..16 (default {d.max_bands}: the window alone, no band fields in the "
                        f"configuration); patterns' --bands need 2 or more")
    p.add_argument("--max-columns", type=_engine_int("--max-columns"), default=d.max_columns,
                   help=f"largest number of key-only columns per job, 0..32 (default "
                        f"{d.max_columns}: no column fields); patterns' --columns need 1 or more")
    p.add_argument("--with-grid", action="store_true",
                   help="the 2D grid's configuration fields (grid_width, grid_radius: band keys "
                        "kept within a column radius of the query on an image, exact at its "
                        "edges); needs --max-bands 2 or more; patterns' --grid need it")


#: EngineParams' fields and the options of :func:`add_engine_arguments` that set them
ENGINE_FLAGS = {"head_dim": "--head-dim", "lanes": "--lanes", "max_radius": "--max-radius",
                "max_globals": "--max-globals", "max_dilation": "--max-dilation",
                "seq_width": "--seq-width", "dot_pipeline": "--dot-pipeline",
                "pv_pipeline": "--pv-pipeline", "max_bands": "--max-bands",
                "max_columns": "--max-columns", "grid": "--with-grid"}


def stream_lanes(lanes: int, command: str, flag: str = "--lanes") -> None:
    """Lanes of the stream engine for ``command``: a power of two 8..4096. Lanes 4 elaborates the
    serial engine (the iCE40 board's), which reads Q, K and V from buffers, while the testbench of
    ``swattn sim`` and ``swattn demo`` streams rows into the stream engine (and the benchmark's
    cycle model is the stream engine's), so it is refused with that reason."""
    if lanes == EngineParams.SERIAL_LANES:
        raise UserError(f"{flag} = {lanes} is the serial engine (the iCE40 board's), and "
                        f"`swattn {command}` runs the stream engine only (its testbench streams "
                        "rows, the serial engine reads buffers): allowed a power of two 8..4096 "
                        "(`swattn generate --lanes 4` writes the serial engine's Verilog)")
    if not (8 <= lanes <= 4096 and lanes & (lanes - 1) == 0):
        raise UserError(f"{flag} = {lanes} is out of range: allowed a power of two, 8..4096")


def stream_lanes_type(command: str, flag: str = "--lanes"):
    """``type=`` for :func:`stream_lanes`."""
    def parse(text: str) -> int:
        value = integer(flag, allowed="a power of two, 8..4096")(text)
        stream_lanes(value, command, flag)
        return value
    parse.__name__ = "lanes"
    return parse


def engine_params(args, command: str | None = None) -> EngineParams:
    """The parameters given with :func:`add_engine_arguments`; a :class:`UserError` naming the
    option of a bad one. With ``command`` (one that simulates), lanes 4 is refused
    (:func:`stream_lanes`)."""
    if command:
        stream_lanes(args.lanes, command)
    if args.lanes == EngineParams.SERIAL_LANES and args.max_columns != 0:
        raise UserError(f"--max-columns = {args.max_columns} with --lanes {args.lanes}: the "
                        f"serial engine (the iCE40 board's) takes bands beside the window but "
                        f"no key-only columns: allowed --max-columns 0 with --lanes "
                        f"{args.lanes}")
    grid = bool(getattr(args, "with_grid", False))
    if grid and args.max_bands < 2:
        raise UserError(f"--with-grid with --max-bands {args.max_bands}: the grid keeps or drops "
                        f"band keys, allowed with --max-bands 2..16")
    try:
        params = EngineParams(head_dim=args.head_dim, lanes=args.lanes,
                              max_radius=args.max_radius, max_globals=args.max_globals,
                              max_dilation=args.max_dilation, seq_width=args.seq_width,
                              dot_pipeline=args.dot_pipeline, pv_pipeline=args.pv_pipeline,
                              max_bands=args.max_bands, max_columns=args.max_columns,
                              grid=grid)
    except ValueError as exc:
        raise named(exc, ENGINE_FLAGS) from None
    return params


def add_length_argument(g, n: int) -> None:
    """A pattern's sequence length: ``--n`` (default ``n``)."""
    g.add_argument("--n", type=integer("--n", 1), default=n, metavar="N",
                   help=f"sequence length, 1 or more (default {n})")


def add_window_arguments(g, window: int, n_globals_help: str) -> None:
    """The rest of a hybrid pattern: ``--radius`` or ``--left``/``--right`` (default
    ``window``), ``--dilation``, ``--globals`` or ``--n-globals``."""
    g.add_argument("--radius", type=integer("--radius", 0), metavar="R",
                   help=f"window radius on both sides, {WINDOW_UNIT} (sets --left and --right)")
    g.add_argument("--left", type=integer("--left", 0), metavar="L",
                   help=f"window radius to the left, {WINDOW_UNIT} (default {window})")
    g.add_argument("--right", type=integer("--right", 0), metavar="R",
                   help=f"window radius to the right, {WINDOW_UNIT}; 0 for causal (default "
                        f"{window})")
    g.add_argument("--dilation", type=integer("--dilation", 1), default=1,
                   help="window dilation: tokens between window keys, 1 or more (default 1)")
    g.add_argument("--globals", dest="globals_list", metavar="I,J,...",
                   help="comma-separated global token indices")
    g.add_argument("--n-globals", type=integer("--n-globals", 0), metavar="K",
                   help=n_globals_help)


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
    """The pattern given with :func:`add_length_argument` and :func:`add_window_arguments`: the
    window from :func:`window_args`, the globals from ``--globals`` or ``pick_globals(n, k)`` for
    ``--n-globals k``. With ``limits`` (an engine's), ``--n-globals`` is held to its
    ``max_globals`` and the pattern to its limits. A pattern out of range raises
    :class:`UserError` naming the option."""
    left, right = window_args(args, window)
    typed = {}  # field -> the option as typed (or what set it)
    for side, value in (("left", left), ("right", right)):
        if args.radius is not None:
            typed[side] = "--radius"
        elif getattr(args, side) is not None:
            typed[side] = f"--{side}"
        else:
            typed[side] = f"the default radius {value}"
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
    if limits is not None:
        if limits.max_n is not None and args.n > limits.max_n:
            raise UserError(f"--n = {args.n} is out of range: allowed 1..{limits.max_n} (the "
                            "engine's --seq-width)")
        if limits.max_dilation is not None and args.dilation > limits.max_dilation:
            raise UserError(f"--dilation = {args.dilation} is out of range: allowed "
                            f"1..{limits.max_dilation} (the engine's --max-dilation)")
        for side, value in (("left", left), ("right", right)):
            reach = value * args.dilation
            if limits.max_radius is not None and reach > limits.max_radius:
                who = typed[side] + ("" if typed[side].startswith("the ") else f" = {value}")
                raise UserError(f"{who} with --dilation {args.dilation} reaches {reach} tokens: "
                                f"allowed reach 0..{limits.max_radius} (the engine's "
                                "--max-radius; the radius counts window steps of --dilation "
                                "tokens)")
    kw = {} if limits is None else {"limits": limits}
    gflag = "--globals" if args.globals_list is not None else "--n-globals"
    try:
        return HybridPattern(args.n, left, right, args.dilation, globals_, **kw)
    except PatternError as exc:
        raise named(exc, {"n": "--n", "dilation": "--dilation", **typed, "globals": gflag,
                          "global index": "--globals", "global indices": "--globals"}) from None


# --- key-set patterns: bands beside the window, key-only columns, a 2D grid, a pattern file -----

#: what ``--bands`` allows, said in its help and its errors
BANDS_ALLOWED = ("START:COUNT[,START:COUNT...]: keys i + (START + k) x dilation for k < COUNT, "
                 "in window steps of --dilation tokens, COUNT 1 or more, each band wholly below "
                 "or above the window (write a first negative START as --bands=-8:2 or "
                 "--bands -8:2)")
#: the options of :func:`add_keyset_arguments`
KEYSET_FLAGS = ("--bands", "--columns", "--grid", "--pattern")
#: the window's options, which ``--pattern`` replaces
WINDOW_FLAGS = ("--n", "--radius", "--left", "--right", "--dilation", "--globals", "--n-globals")


def bands_type(text: str) -> tuple[tuple[int, int], ...]:
    """``type=`` for ``--bands``: (start, count) pairs, sorted by start."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UserError(f"--bands = {text!r} is empty: allowed {BANDS_ALLOWED}")
    out = []
    for item in items:
        m = re.fullmatch(r"([-+]?\d+):(\d+)", item)
        if not m:
            raise UserError(f"--bands = {text!r}: {item!r} is not START:COUNT: allowed "
                            f"{BANDS_ALLOWED}")
        start, count = int(m.group(1)), int(m.group(2))
        if count < 1:
            raise UserError(f"--bands = {text!r}: band {item} has COUNT 0: allowed "
                            f"{BANDS_ALLOWED}")
        out.append((start, count))
    return tuple(sorted(out))


bands_type.__name__ = "bands"


def columns_type(text: str) -> tuple[int, ...]:
    """``type=`` for ``--columns``: token indices, sorted, each once (the range is checked
    against n later)."""
    allowed = "comma-separated token indices 0..n-1, each once"
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UserError(f"--columns = {text!r} is empty: allowed {allowed}")
    try:
        vals = [int(x, 10) for x in items]
    except ValueError:
        raise UserError(f"--columns = {text!r} is not a list of integers: allowed "
                        f"{allowed}") from None
    bad = [x for x in vals if x < 0]
    if bad:
        raise UserError(f"--columns = {text!r}: column {bad[0]} is out of range: allowed "
                        f"{allowed}")
    dup = sorted({x for x in vals if vals.count(x) > 1})
    if dup:
        raise UserError(f"--columns = {text!r}: {dup} given more than once: allowed {allowed}")
    return tuple(sorted(vals))


columns_type.__name__ = "columns"


def grid_type(text: str) -> tuple[int, int]:
    """``type=`` for ``--grid``: (width, radius)."""
    allowed = "WIDTH:RADIUS, WIDTH 1 or more, RADIUS 0 or more (tokens row by row on a grid " \
              "WIDTH wide; band keys more than RADIUS columns from the query's are dropped)"
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text)
    if not m:
        raise UserError(f"--grid = {text!r} is not WIDTH:RADIUS: allowed {allowed}")
    width, radius = int(m.group(1)), int(m.group(2))
    if width < 1:
        raise UserError(f"--grid = {text!r}: WIDTH 0 is out of range: allowed {allowed}")
    return width, radius


grid_type.__name__ = "grid"


def add_keyset_arguments(g, grid: bool = True) -> None:
    """The rest of a key-set pattern beside :func:`add_window_arguments`: ``--bands``,
    ``--columns``, ``--grid`` (where ``grid`` is False, run by engines generated with the
    grid's fields only, ``--with-grid``) and ``--pattern FILE``."""
    g.add_argument("--bands", type=bands_type, metavar="START:COUNT[,...]",
                   help=f"more bands of keys beside the window, {BANDS_ALLOWED}")
    g.add_argument("--columns", type=columns_type, metavar="I[,J,...]",
                   help="key-only columns: tokens every query attends to, with no row of their "
                        "own (unlike --globals); comma-separated token indices 0..n-1, none a "
                        "global")
    g.add_argument("--grid", type=grid_type, metavar="WIDTH:RADIUS",
                   help="tokens row by row on a 2D grid WIDTH wide: the window's and bands' keys "
                        "more than RADIUS columns from the query's are dropped (a k x k window "
                        "is --radius k//2 with k-1 bands and --grid W:k//2)"
                        + ("" if grid else "; the engine needs its grid fields "
                                           "(--with-grid)"))
    g.add_argument("--pattern", metavar="FILE.json",
                   help="the whole pattern from a JSON file instead of the options above: "
                        '{"n", "left", "right", "dilation", "bands": [[start, count], ...], '
                        '"columns": [...], "globals": [...], "grid": [width, radius]}, as the '
                        "mapper writes each head")


def read_pattern(flag: str, path):
    """The pattern in the JSON file ``path`` (:func:`swattn.sw.spec.keyset.pattern_from_json`):
    an EngineForm, or a KeySetPattern where it has a grid; UserError naming ``flag``."""
    import json

    from ..spec.keyset import pattern_from_json

    text = read_text(flag, path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{flag} = {str(path)!r} is not JSON ({exc.msg} at line {exc.lineno}): "
                        'allowed {"n": .., "left": .., "right": .., "dilation": .., "bands": '
                        '[[start, count], ...], "columns": [..], "globals": [..]}') from None
    try:
        return pattern_from_json(obj)
    except PatternError as exc:
        raise UserError(f"{flag} = {str(path)!r}: {exc}") from None


def check_engine_form(form, limits: PatternLimits, who) -> None:
    """``form`` (an EngineForm) against an engine's ``limits``; UserError naming the option of
    the first field over them: ``who(field)`` says how (``"--bands = '3:2'"`` or ``"--pattern =
    'p.json': bands"``). An engine generated without band or column fields (max_bands 1,
    max_columns 0) is told so, with ``swattn generate``'s options that add them."""
    d = form.dilation
    if form.bands and limits.max_bands is not None:
        if limits.max_bands <= 1:
            raise UserError(f"{who('bands')}: this engine was generated without band fields "
                            f"(max_bands 1: the window alone): bands beside the window need an "
                            f"engine generated with `swattn generate --max-bands B` (B 2..16, "
                            f"the window counts as one)")
        if 1 + len(form.bands) > limits.max_bands:
            raise UserError(f"{who('bands')}: {1 + len(form.bands)} bands with the window, "
                            f"allowed 1..{limits.max_bands} (the engine's --max-bands)")
    if form.bands and limits.max_radius is not None:
        for s, c in form.bands:
            reach = max(abs(s), abs(s + c - 1)) * d
            if reach > limits.max_radius:
                raise UserError(f"{who('bands')}: band {s}:{c} with dilation {d} reaches "
                                f"{reach} tokens: allowed reach 0..{limits.max_radius} (the "
                                f"engine's --max-radius; bands count window steps of "
                                f"--dilation tokens)")
    if form.columns and limits.max_columns is not None:
        if limits.max_columns == 0:
            raise UserError(f"{who('columns')}: this engine was generated without column "
                            f"fields (max_columns 0): key-only columns need an engine generated "
                            f"with `swattn generate --max-columns C` (C 1..32)")
        if len(form.columns) > limits.max_columns:
            raise UserError(f"{who('columns')}: {len(form.columns)} columns, allowed "
                            f"0..{limits.max_columns} (the engine's --max-columns)")
    try:
        form.check(limits)
    except PatternError as exc:
        msg = str(exc)
        field = next((f for f in ("n", "dilation", "globals", "bands", "columns", "grid")
                      if msg.startswith(f + " ") or msg.startswith(f + ":")), "bands")
        raise UserError(f"{who(field)}: {msg}") from None


def refuse_grid(args, why: str = "the boards' engines have no 2D grid fields") -> None:
    """``--grid`` where the engine that runs the pattern has no grid fields (``why``)."""
    if args.grid is not None:
        raise UserError(f"--grid = {args.grid[0]}:{args.grid[1]}: {why}: allowed with "
                        "`swattn golden`, or `swattn sim` with --with-grid")


def file_pattern(args, flags, grid: bool = True, engine: bool = False):
    """The pattern of ``--pattern FILE`` (:func:`read_pattern`), refusing any of ``flags`` (the
    pattern's other options) given beside it, a grid where not ``grid``, and with ``engine``
    (an engine runs it) a grid the engine cannot take (one with a dilation)."""
    from ..spec.keyset import KeySetPattern

    clash = given(args, *flags)
    if clash:
        raise UserError(f"--pattern {args.pattern} gives the whole pattern, so "
                        f"{' '.join(clash)} would be ignored: leave "
                        + ("it" if len(clash) == 1 else "them") + " out (or --pattern)")
    pat = read_pattern("--pattern", args.pattern)
    where = f"--pattern = {str(args.pattern)!r}"
    if getattr(pat, "grid", None) is not None and not grid:
        raise UserError(f"{where}: it has a \"grid\", and the engine has no 2D grid fields: "
                        "allowed with `swattn golden`, or `swattn sim` with --with-grid")
    if engine and isinstance(pat, KeySetPattern):
        step = max((b.step for b in pat.bands), default=1)
        raise UserError(f"{where}: a \"grid\" with dilation {step}: the engine's grid takes "
                        f"dilation 1 (`swattn golden` computes any)")
    return pat


def engine_pattern(form, limits: PatternLimits | None, who):
    """An EngineForm held to an engine's ``limits`` (:func:`check_engine_form`, ``who`` as
    there): the form, or the HybridPattern where it has no band and no column."""
    if limits is not None:
        check_engine_form(form, limits, who)
    if form.bands or form.columns or form.grid is not None:
        return form
    kw = {} if limits is None else {"limits": limits}
    return HybridPattern(form.n, form.left, form.right, form.dilation, form.globals_, **kw)


def with_bands(hybrid: HybridPattern, bands, columns, gflag: str,
               limits: PatternLimits | None = None):
    """``hybrid`` with ``--bands`` and ``--columns`` (as their ``type=`` gives them): an
    EngineForm held to ``limits``, or ``hybrid`` where neither is given; UserError naming
    the option (``gflag``: the option that gave the globals)."""
    from ..spec.keyset import EngineForm

    bands, columns = tuple(bands or ()), tuple(columns or ())
    if not (bands or columns):
        return hybrid
    typed = {"bands": f"--bands = {','.join(f'{s}:{c}' for s, c in bands)!r}",
             "columns": f"--columns = {','.join(map(str, columns))!r}",
             "n": "--n", "dilation": "--dilation", "globals": gflag}

    def who(field):
        return typed.get(field, f"--{field}")

    both = sorted(set(columns) & set(hybrid.globals_))
    if both:
        one = len(both) == 1
        raise UserError(f"{who('columns')}: {both} {'is' if one else 'are'} also global (the "
                        f"{gflag} tokens), a key of every query already: leave "
                        f"{'it' if one else 'them'} out of --columns")
    try:
        form = EngineForm(hybrid.n, hybrid.left, hybrid.right, hybrid.dilation, bands, columns,
                          hybrid.globals_)
    except PatternError as exc:
        msg = str(exc)
        raise UserError(f"{who('columns' if msg.startswith('column') else 'bands')}: "
                        f"{msg}") from None
    return engine_pattern(form, limits, who)


def keyset_pattern_from_args(args, window: int, pick_globals,
                             limits: PatternLimits | None = None, grid: bool = True):
    """The pattern of :func:`add_length_argument`, :func:`add_window_arguments` and
    :func:`add_keyset_arguments`: a HybridPattern where no band, column or grid is given (as
    :func:`pattern_from_args`), else an EngineForm, or a KeySetPattern with ``--grid`` (only
    where ``grid``). ``--pattern FILE`` gives the whole pattern instead. With ``limits`` (an
    engine's) the pattern is held to them (:func:`check_engine_form`). UserError naming the
    option of a bad value."""
    from ..spec.keyset import Grid, KeySetPattern

    from ..spec.keyset import EngineForm

    if not grid:
        refuse_grid(args, "this engine was generated without the 2D grid's fields")
    engine = limits is not None
    if args.pattern is not None:
        pat = file_pattern(args, (*WINDOW_FLAGS, "--bands", "--columns", "--grid"), grid,
                           engine)
        if isinstance(pat, KeySetPattern):
            return pat
        where = f"--pattern = {str(args.pattern)!r}"
        return engine_pattern(pat, limits, lambda field: f"{where}: {field}")
    hybrid = pattern_from_args(args, window, pick_globals, limits)
    gflag = "--globals" if args.globals_list is not None else "--n-globals"
    pat = with_bands(hybrid, args.bands, args.columns, gflag, limits)
    if args.grid is None:
        return pat
    ks = as_keyset(pat)
    ks = KeySetPattern(ks.n, ks.bands, Grid(*args.grid), ks.columns, ks.globals_)
    if not engine:
        return ks
    if hybrid.dilation != 1:
        raise UserError(f"--grid = {args.grid[0]}:{args.grid[1]} with --dilation "
                        f"{hybrid.dilation}: the engine's grid takes dilation 1")
    return engine_pattern(EngineForm.from_pattern(ks), limits, lambda field: f"--{field}")


def as_keyset(pattern):
    """A HybridPattern or EngineForm as a KeySetPattern."""
    from ..spec.keyset import EngineForm

    return EngineForm.from_pattern(pattern).keyset()
