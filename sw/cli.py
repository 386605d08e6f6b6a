"""The ``swattn`` command line.

Each subcommand lives in its own module, which provides ``HELP`` (one line), ``add_arguments(p)``
and ``run(args) -> int``. Modules are imported only when their subcommand runs, so ``swattn
--help`` stays fast and a missing optional tool only affects the subcommand that needs it.
Expected mistakes raise :class:`UserError` (or ValueError from validation): they are printed as one
line, ``swattn: error: ...``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> module (relative to swattn)
COMMANDS = {
    "demo": "sw.demo",
    "golden": "sw.golden_cli",
    "generate": "hw.generate",
    "sim": "sim.cli",
    "eval": "sw.evaluate",
    "build": "fpga.build",
    "run": "sw.board_run",
    "flash": "fpga.flash",
    "bench": "sw.bench",
}


class UserError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path``; an unwritable path is a :class:`UserError`."""
    import json

    try:
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def _load(name: str):
    return importlib.import_module(f"swattn.{COMMANDS[name]}")


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


if __name__ == "__main__":
    # run the imported module's main, so that UserError is the class the subcommands raise
    from swattn.sw.cli import main as _main
    sys.exit(_main())
