"""The board table: every board swattn builds for, with its engine size, clock and link speed.

Each board's engine is an entry of the table of engine sizes (:mod:`swattn.sw.spec.sizes`,
``ice40`` and ``ulx3s``), which the regression runs at exactly these parameters.

Adding a board with a UART is one entry here: the top level (:mod:`swattn.fpga.top`), the build,
the flash command and the host driver read everything from it.

Why these sizes:

* ``icebreaker`` (iCE40UP5K: 5280 LUT4, 8 SB_MAC16, 30 EBR, 4 SPRAM of 16K x 16): the serial
  engine (``hw/serial.py``, lanes 4): the SPRAM delivers two int8 elements of a row per cycle, so
  two Q.K and two P.V multipliers, one row at a time, instead of the stream engine's feeders and
  lanes (which packed into twice the device). Head dim 32 as in all-MiniLM-L6-v2; Q, K, V and O
  take one SPRAM block each (1024 rows of 32 bytes), hence seq_width 10. Radius 16, dilation
  up to 2, 2 globals and one band beside the window (``max_bands`` 2: a band of keys at other
  offsets, as SPION's diagonals; about 260 more cells than the window alone, routed at
  35.1-37.6 MHz over seeds 1-8 once the link receiver's CRC compare was registered).
  36 MHz is the target: 12 MHz x 3 from the PLL and an exact 12 cycles per bit at 3 Mbaud (the
  FT2232H's 3 Mbaud is exact). About 4.4k of 5,280 cells (fpga/README.md).
* ``ulx3s-85f`` (ECP5-85F: 84k LUT4, 156 MULT18X18D, 208 EBR): 64 lanes (one unit of 32 + 32,
  one key per cycle), about 70 multipliers, buffers of 2048 rows x 32 bytes in block RAM (Q, K
  V and O each eight 32-bit memories of 4 DP16KD), radius 64 and 8 globals for
  Longformer/BigBird-like heads, three bands beside the window and eight key-only columns
  (``requires``: the board table promises at least 4 bands and 8 columns on this board);
  ``dot_pipeline`` 5 and ``pv_pipeline`` 5 (registers between the block RAMs, multipliers and
  adders, which lie far apart on the die, and a cycle of its own for each switch from one band
  to the next). 100 MHz is the target (25 MHz x 4); the FT231X tops out at 3 Mbaud (33 cycles
  per bit, 1% off). Place and route aims 3% above it (``pnr_margin``) with router2's
  timing-driven ripup. Fmax moves by 10-20 MHz between nextpnr's placement seeds on one
  netlist, and with the ripup a seed either meets or stops, so the board's ``seed`` is the best
  of a seed sweep of this netlist (``swattn explore --board ulx3s-85f --seeds ... --record``,
  recorded in ``fpga/seeds.json``); ``--clock`` builds the design with its PLL at a slower clock
  for another seed or a changed design.

The seeds (``fpga/seeds.json``): nextpnr is deterministic for a netlist, a seed and its version
(pinned in pyproject.toml), and a change to the design moves every seed. ``swattn build --seeds
LIST --record`` places and routes the netlist at each seed and records the best with the netlist's
fingerprint (:func:`swattn.fpga.build.netlist_fingerprint`); a build whose netlist differs from
the recorded one says so and names the sweep that finds a seed for it.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..sw.spec.engine_params import EngineParams
from ..sw.spec.sizes import SIZES


@dataclass(frozen=True)
class Board:
    """One buildable board.

    platform : "module:Class" of the amaranth-boards platform.
    family : "ice40" or "ecp5" (PLL, RAM and DSP mapping, nextpnr flavour).
    clock_hz : target clock of the engine (the PLL output); the build fails below it.
    baud : UART rate; uart_timeout_ms : a frame silent this long is dropped.
    word_bytes : row-buffer RAM width in bytes; spram : buffers in iCE40UP SPRAM.
    flash_board : openFPGALoader's ``-b`` name. why : one line for ``swattn build --list``.
    seed : nextpnr's placement seed for ``swattn build`` (``--seed`` overrides it): the seed
        recorded for the board in ``fpga/seeds.json`` by ``swattn build --seeds ... --record``
        (:func:`recorded_seed`), else 1.
    pnr_margin : place and route is constrained this fraction above ``clock_hz`` (the PLL still
        makes ``clock_hz``, and the build still passes at Fmax >= ``clock_hz``). On the ECP5
        router2 rips up and reroutes arcs until none fails the constraint (``--tmg-ripup``),
        and nextpnr's final timing analysis then finds up to about 2% less than router2's own
        estimate: the margin keeps that below the constraint, not below the clock.
    requires : engine parameters the board's engine must have at least (e.g. ``max_bands``):
        ``swattn explore``'s winner for the board is the fastest candidate that has them.
    """

    name: str
    platform: str
    family: str
    params: EngineParams
    clock_hz: float
    baud: int
    word_bytes: int
    spram: bool
    flash_board: str
    why: str
    uart_timeout_ms: float = 50.0
    seed: int = 1
    resources: dict = field(default_factory=dict)  # device totals for the utilisation table
    pnr_margin: float = 0.0
    requires: dict = field(default_factory=dict)

    def make_platform(self):
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()

    @property
    def engine(self) -> str:
        """The engine organisation ``params`` elaborate: "serial" (one row at a time on 16-bit
        buffer words, lanes 4) or "stream" (row feeders, lanes of 8 and more)."""
        return "serial" if self.params.serial else "stream"

    @property
    def bitstream_ext(self) -> str:
        return "bin" if self.family == "ice40" else "bit"


#: the seed sweeps' record: board name -> the best seed of the last recorded sweep, its Fmax and
#: late nets, the seeds swept, the netlist's fingerprint and the commit it was built from
SEEDS_FILE = Path(__file__).with_name("seeds.json")


def recorded_seeds() -> dict:
    """``fpga/seeds.json`` (:data:`SEEDS_FILE`) as a dict (empty when there is none)."""
    return json.loads(SEEDS_FILE.read_text()) if SEEDS_FILE.exists() else {}


def recorded_seed(board_name: str) -> int:
    """The seed recorded for ``board_name`` (1 when none is)."""
    return int(recorded_seeds().get(board_name, {}).get("seed", 1))


def record_seed(board_name: str, entry: dict) -> None:
    """Write ``entry`` (``seed`` and what the sweep measured) as ``board_name``'s record."""
    table = recorded_seeds()
    table[board_name] = entry
    SEEDS_FILE.write_text(json.dumps(dict(sorted(table.items())), indent=2) + "\n")


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40",
        params=SIZES["ice40"],
        clock_hz=36e6, baud=3_000_000, word_bytes=2, spram=True, flash_board="ice40_generic",
        why="iCE40UP5K; serial engine (2 + 2 multipliers on 16-bit SPRAM words, the window, "
            "a band and 2 globals), 36 MHz, 3 Mbaud",
        seed=recorded_seed("icebreaker"),
        resources={"LUT": 5280, "FF": 5280, "DSP": 8, "BRAM": 30, "SPRAM": 4},
    ),
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
        family="ecp5",
        params=SIZES["ulx3s"],
        clock_hz=100e6, baud=3_000_000, word_bytes=32, spram=False, flash_board="ulx3s",
        why="ECP5-85F; 64 lanes, the window, 3 bands, 8 key-only columns and 8 globals, "
            "buffers in block RAM, 100 MHz, 3 Mbaud",
        seed=recorded_seed("ulx3s-85f"),
        resources={"LUT": 83640, "FF": 83640, "DSP": 156, "BRAM": 208, "SPRAM": 0},
        pnr_margin=0.03, requires={"max_bands": 4, "max_columns": 8},
    ),
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}: choose one of {', '.join(BOARDS)} "
                         f"(see `swattn build --list`)") from None
