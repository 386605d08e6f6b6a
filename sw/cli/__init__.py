"""The ``swattn`` command line.

Each subcommand lives in its own module of this package (:data:`COMMANDS`), which provides
``HELP`` (one line), ``add_arguments(p)`` and ``run(args) -> int``; the work itself is done by
the library modules, which these import only when their subcommand runs, so ``swattn --help``
stays fast and a missing optional tool only affects the subcommand that needs it. Expected
mistakes raise :class:`~swattn.sw.spec.errors.UserError` (or ValueError from validation): they
are printed as one line, ``swattn: error: ...``, with exit status 2 and no traceback. So are the
mistakes argparse finds itself (an unknown option, a missing value, a bad choice): :class:`Parser`
turns them into a UserError, and the ``type=`` checks of :mod:`.args` raise one directly.
"""

from __future__ import annotations

import argparse
import importlib
import re
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
    "explore": "explore",
    "run": "run",
    "flash": "flash",
    "bench": "bench",
}


class _Store(argparse.Action):
    """argparse's ``store`` that also records the option as typed in ``namespace._given``, so a
    subcommand can tell an option given at its default value from one left out
    (:func:`.args.given`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        if option_string:
            given = set(getattr(namespace, "_given", ()))
            given.add(option_string)
            namespace._given = given


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a :class:`UserError` (one line, status 2, from
    :func:`main`) rather than a usage text, and whose plain options record being typed."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.register("action", None, _Store)
        self.register("action", "store", _Store)

    def _parse_optional(self, arg_string):
        # a value that starts with a minus and a digit ("--bands -8:2", a band below the query)
        # is a value, never an option (no option of swattn looks like that)
        if re.match(r"-\d", arg_string):
            return None
        return super()._parse_optional(arg_string)

    def error(self, message):
        if message.endswith("required: COMMAND"):
            raise UserError(f"a COMMAND is required: allowed {', '.join(COMMANDS)} (see `swattn "
                            "--help`)")
        # "argument --n: expected one argument" -> "--n: expected one argument"
        raise UserError(re.sub(r"^argument (\S+): ", r"\1: ", message))


def _load(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
            mod.add_arguments(Parser(add_help=False))
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
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            raise UserError(f"unrecognized arguments: {' '.join(extra)} (see `swattn "
                            f"{args.command} --help`)")
        if getattr(args, "_unavailable", None):
            raise UserError(f"'{args.command}' is unavailable: {args._unavailable}")
        return int(args._run(args) or 0)
    except (UserError, ValueError) as exc:
        print(f"swattn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("swattn: interrupted", file=sys.stderr)
        return 130

