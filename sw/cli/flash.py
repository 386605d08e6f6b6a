"""``swattn flash``: program a board with the bitstream ``swattn build`` wrote, via openFPGALoader
(:mod:`swattn.fpga.flash`)."""

from pathlib import Path

from ...fpga.boards import BOARDS, get_board
from ..spec.errors import UserError
from .args import board as board_name

HELP = "program a board with its bitstream (openFPGALoader)"


def add_arguments(p):
    p.add_argument("--board", required=True, type=board_name(), help=f"one of: {', '.join(BOARDS)}")
    p.add_argument("--out", default="build",
                   help="build folder the bitstream is in, as given to `swattn build --out` "
                        "(default build)")
    p.add_argument("--flash-memory", action="store_true",
                   help="ECP5: write the SPI flash (kept at power-off) instead of SRAM")
    p.add_argument("--force", action="store_true",
                   help="program a bitstream whose build missed timing or failed")


def run(args) -> int:
    from ...fpga.flash import bitstream_path, flash

    board = get_board(args.board)
    if args.flash_memory and board.family != "ecp5":
        family = {"ice40": "iCE40"}.get(board.family, board.family)
        raise UserError(f"--flash-memory is for ECP5 boards: {board.name} is an {family}, whose "
                        "bitstream goes to its flash anyway; leave out --flash-memory")
    if Path(args.out).is_file():
        raise UserError(f"--out = {args.out!r} is a file: allowed the build folder that `swattn "
                        "build --out` wrote")
    bit = bitstream_path(board, Path(args.out))
    if not bit.exists():
        raise UserError(f"--out = {args.out!r} holds no bitstream for {board.name} ({bit} is "
                        f"missing): run `swattn build --board {board.name} --out {args.out}` "
                        "first, or give the --out it was built in")
    flash(board, Path(args.out), args.flash_memory, force=args.force,
          log=lambda msg: print(msg, flush=True))
    print(f"{board.name} programmed")
    return 0
