"""``swattn flash``: program a board with the bitstream ``swattn build`` wrote, via openFPGALoader
(:mod:`swattn.fpga.flash`)."""

from pathlib import Path

from ...fpga.boards import BOARDS, get_board

HELP = "program a board with its bitstream (openFPGALoader)"


def add_arguments(p):
    p.add_argument("--board", required=True, help=f"one of: {', '.join(BOARDS)}")
    p.add_argument("--out", default="build", help="build folder the bitstream is in")
    p.add_argument("--flash-memory", action="store_true",
                   help="ECP5: write the SPI flash (kept at power-off) instead of SRAM")
    p.add_argument("--force", action="store_true",
                   help="program a bitstream whose build missed timing or failed")


def run(args) -> int:
    from ...fpga.flash import flash

    board = get_board(args.board)
    flash(board, Path(args.out), args.flash_memory, force=args.force,
          log=lambda msg: print(msg, flush=True))
    print(f"{board.name} programmed")
    return 0
