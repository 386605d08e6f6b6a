"""What a device could multiply at most: its hard multiplier blocks, and int8 multipliers built
from its logic, measured with the build's own Yosys.

The bench compares a board's useful MAC rate with this bound (``swattn bench``'s board figures)
so that a user sees how much of the chip the engine keeps busy, not only how busy its own lanes
are.

Hard blocks, per block and cycle, as the open tools can use them:

* ECP5 ``MULT18X18D``: one int8 product. The silicon also splits a block into 9 x 9 halves
  (``MULT9X9D``), but neither Yosys (whose ECP5 library maps products to ``MULT18X18D`` only)
  nor nextpnr-ecp5 (whose cell types hold ``MULT18X18D`` and ``ALU54B`` and no ``MULT9X9D``)
  places them; and two int8 products packed into one 18 x 18 product overlap (each needs 16
  bits of the 36, with the operands' 18 bits allowing a shift of at most 10).
* iCE40 ``SB_MAC16``: two int8 products (its 8 x 8 mode: the upper and lower bytes of A and B
  multiplied apart), which nextpnr-ice40 places like any other setting of the block.

Logic: :func:`lut_cost` synthesises a registered 8 x 8 signed multiplier with the family's Yosys
script without DSP blocks and counts its LUT4s (an ECP5 ``CCU2C`` carry cell counts as two, the
two LUT4s it holds; the iCE40's ``SB_CARRY`` sits in a logic cell beside its LUT4 and adds
none). The logic bound assumes every LUT4 of the device is a multiplier: an upper bound, since a
real engine also needs its adders, control and routing.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

#: int8 products per hard multiplier block and cycle, per family (see the module's notes)
PRODUCTS_PER_DSP = {"ecp5": 1, "ice40": 2}
#: the hard block's cell name, per family
DSP_CELL = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16"}
#: Yosys's script of the family without hard multipliers
SYNTH = {"ecp5": "synth_ecp5 -nodsp", "ice40": "synth_ice40"}
#: LUT4s per cell of the synthesised multiplier, per family
LUT4_PER_CELL = {"ecp5": {"LUT4": 1, "CCU2C": 2}, "ice40": {"SB_LUT4": 1}}

MULTIPLIER_V = """module mul8(input clk, input signed [7:0] a, input signed [7:0] b,
            output reg signed [15:0] p);
  always @(posedge clk) p <= a * b;
endmodule
"""


@lru_cache(maxsize=None)
def lut_cost(family: str) -> dict:
    """LUT4s of one registered int8 x int8 product built from ``family``'s logic (Yosys, no
    DSP blocks): ``{"family", "cells": Yosys's cell counts, "lut4": LUT4s}``. Raises ValueError
    for a family it does not know and RuntimeError when Yosys fails."""
    if family not in SYNTH:
        raise ValueError(f"family {family!r}: allowed {', '.join(SYNTH)}")
    from .build import tool_env

    yosys = tool_env()["YOSYS"]
    with tempfile.TemporaryDirectory(prefix="swattn-mul8-") as d:
        Path(d, "mul8.v").write_text(MULTIPLIER_V)
        r = subprocess.run([yosys, "-q", "-p", f"read_verilog mul8.v; {SYNTH[family]} -top mul8; "
                                               f"tee -q -o stat.json stat -json"],
                           cwd=d, capture_output=True, text=True)
        if r.returncode != 0 or not Path(d, "stat.json").exists():
            raise RuntimeError(f"Yosys could not synthesise the int8 multiplier for {family} "
                               f"(exit {r.returncode}): {r.stderr.strip()[-300:]}")
        stat = json.loads(Path(d, "stat.json").read_text())
    cells = (stat.get("design") or {}).get("num_cells_by_type") or {}
    lut4 = sum(n * cells.get(cell, 0) for cell, n in LUT4_PER_CELL[family].items())
    return {"family": family, "cells": dict(cells), "lut4": lut4}


def chip_peak(board, mhz: float, lut4_per_product: int | None = None) -> dict:
    """The most int8 MACs ``board``'s device could do per second at ``mhz``: its hard blocks'
    products (:data:`PRODUCTS_PER_DSP`) plus as many logic multipliers as its LUT4s hold
    (``lut4_per_product``; None: measured with :func:`lut_cost`)."""
    fam = board.family
    if lut4_per_product is None:
        lut4_per_product = lut_cost(fam)["lut4"]
    if lut4_per_product < 1:
        raise ValueError(f"lut4_per_product = {lut4_per_product}: must be 1 or more")
    blocks = int(board.resources["DSP"])
    dsp = blocks * PRODUCTS_PER_DSP[fam]
    logic = int(board.resources["LUT"]) // lut4_per_product
    return {"mhz": mhz, "dsp_cell": DSP_CELL[fam], "dsp_blocks": blocks,
            "products_per_dsp": PRODUCTS_PER_DSP[fam], "dsp_products": dsp,
            "lut4": int(board.resources["LUT"]), "lut4_per_product": lut4_per_product,
            "lut_products": logic,
            "dsp_peak_gmac_s": dsp * mhz / 1e3,
            "peak_gmac_s": (dsp + logic) * mhz / 1e3}
