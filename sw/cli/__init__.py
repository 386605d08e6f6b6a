"""The ``swattn`` command line.

Each subcommand lives in its own module of this package (:data:`COMMANDS`), which provides
``HELP`` (one line), ``add_arguments(p)`` and ``run(args) -> int``; the work itself is done by
the library modules, which these import only when their subcommand runs, so ``swattn --help``
stays fast and a missing optional tool only affects the subcommand that needs it. Expected
mistakes raise :class:`~swattn.sw.spec.errors.UserError` (or ValueError from validation): they
are printed as one line, ``swattn: error: ...``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..spec.errors import UserError

#: subcommand -> its module in this package
COMMANDS = {
    "demo": "demo",
    "golden": "golden",
    "generate": "generate",
    "sim": "sim",
    "eval": "eval",
    "build": "build",
    "run": "run",
    "flash": "flash",
    "bench": "bench",
}


def _load(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swattn",
        description="Sliding-window + global-token attention accelerator: golden model, RTL "
                    "generator, simulation and sparsity predictors.")
    from swattn import __version__
    parser.add_argument("--version", action="version", version=f"swattn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            mod = _load(name)
            # (a throw-away parser first: a subcommand whose library fails to import while it
            # defines its options is listed as unavailable, like one whose module fails)
            mod.add_arguments(argparse.ArgumentParser(add_help=False))
        except ImportError as exc:  # a module not yet present or a broken optional dependency
            p = sub.add_parser(name, help=f"(unavailable: {exc})")
            p.set_defaults(_unavailable=str(exc))
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_unavailable", None):
        print(f"swattn: error: '{args.command}' is unavailable: {args._unavailable}",
              file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except (UserError, ValueError) as exc:
        print(f"swattn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("swattn: interrupted", file=sys.stderr)
        return 130

