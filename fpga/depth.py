"""Register-to-register delay estimate of a synthesised ECP5 netlist, before place and route.

nextpnr reports one critical path per build (``swattn build`` prints it), and an ECP5 build of the
ULX3S takes minutes, so closing timing one path per build is slow. This reads the netlist Yosys
leaves beside the bitstream (``build/<board>/swattn_<board>.json``) and estimates, for every
register, block-RAM and multiplier input, the delay of the slowest path into it, then groups the
inputs over a budget by the signals they start and end at: the list of what must be re-timed.

The model (ECP5, speed grade 6): clock to Q 0.5 ns; LUT4 0.4 ns; PFUMX / L6MUX21 0.25 ns with no
routing from the LUTs of their own slice; CCU2C 0.5 ns into a sum, 0.4 ns into the carry and
0.05 ns along the chain; an unregistered MULT18X18D 4 ns; setup 0.2 ns; and every other net
``ROUTE_BASE + ROUTE_FANOUT * log2(fan-out)`` ns. It is an estimate that can be off by a few
ns either way (long nets across the die are longer, short nets in a small design shorter): use
it to rank paths, and nextpnr for the clock.

    python -m swattn.fpga.depth build/ulx3s-85f/swattn_ulx3s_85f.json --budget 9
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

CLK_TO_Q = 0.5
SETUP = 0.2
ROUTE_BASE = 0.9
ROUTE_FANOUT = 0.2
LUT = 0.4
MUX = 0.25
#: cells whose outputs are combinational functions of their inputs
COMB = {"LUT4", "PFUMX", "L6MUX21", "CCU2C"}


@dataclass(frozen=True)
class Endpoint:
    ns: float  # estimated arrival plus setup
    source: str  # the signal the slowest path starts at
    sink: str  # the capturing cell's signal and port
    bit: int = -1  # the net into the capturing cell (for :meth:`Netlist.path`)


def _signal(name: str) -> str:
    """``a.b.sig_TRELLIS_FF_Q_2`` or ``a.b.sig$12`` -> ``a.b.sig``."""
    return re.split(r"_TRELLIS_|_LUT4|_PFUMX|_L6MUX|_CCU2|_DP16KD|_MULT18|\$", name)[0] or name


class Netlist:
    """The top module of a Yosys JSON netlist, with drivers, loads and net names per bit."""

    def __init__(self, data: dict):
        tops = [m for m in data.get("modules", {}).values()
                if str(m.get("attributes", {}).get("top", "0")).strip("0") != ""]
        if len(tops) != 1:
            raise ValueError(f"the netlist has {len(tops)} top modules: expected one "
                             f"(a synthesised design, `swattn build` leaves it in build/<board>/)")
        self.cells = tops[0]["cells"]
        self.driver: dict[int, tuple[str, str]] = {}
        self.loads: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for cn, c in self.cells.items():
            for port, bits in c["connections"].items():
                out = c["port_directions"].get(port) == "output"
                for b in bits:
                    if isinstance(b, str):
                        continue  # a constant
                    if out:
                        self.driver[b] = (cn, port)
                    else:
                        self.loads[b].append((cn, port))
        self.name: dict[int, str] = {}
        for n, v in tops[0]["netnames"].items():
            for b in v["bits"]:  # prefer names Yosys did not make up
                if not isinstance(b, str) and (b not in self.name or
                                               n.count("$") < self.name[b].count("$")):
                    self.name[b] = n

    def combinational(self, cn: str) -> bool:
        c = self.cells[cn]
        if c["type"] in COMB:
            return True
        reg = str(c.get("parameters", {}).get("REG_OUTPUT_CLK", "NONE")).strip()
        return c["type"] == "MULT18X18D" and reg == "NONE"

    def route(self, bit: int, cell: str, port: str) -> float:
        if bit not in self.driver:
            return 0.0
        dcell = self.cells[self.driver[bit][0]]["type"]
        t = self.cells[cell]["type"]
        if (t == "PFUMX" and port in ("ALUT", "BLUT") and dcell == "LUT4") or \
                (t == "L6MUX21" and port in ("D0", "D1") and dcell == "PFUMX") or \
                (t == "CCU2C" and port == "CIN"):
            return 0.0  # inside a slice or along the carry chain
        return ROUTE_BASE + ROUTE_FANOUT * math.log2(max(1, len(self.loads[bit])))

    @staticmethod
    def delay(ctype: str, port_in: str, port_out: str) -> float:
        if ctype == "LUT4":
            return LUT
        if ctype in ("PFUMX", "L6MUX21"):
            return MUX
        if ctype == "CCU2C":
            if port_in == "CIN":
                return 0.05 if port_out == "COUT" else 0.3
            return 0.4 if port_out == "COUT" else 0.5
        return 4.0  # an unregistered multiplier

    def source_name(self, bit: int) -> str:
        """The signal a path starts at: the register (or block) driving ``bit``, by its cell's
        name (a net's name can be one Yosys gave a LUT further on)."""
        if bit in self.driver:
            return _signal(self.driver[bit][0])
        return _signal(self.name.get(bit, f"bit {bit}"))

    def path(self, bit: int) -> list[tuple[str, float]]:
        """The slowest path into net ``bit`` (after :meth:`endpoints`), source first: each net's
        signal name and estimated arrival, with runs of nets of one signal shown once."""
        steps = []
        while bit is not None:
            origin = bit not in self.prev
            steps.append((self.source_name(bit) if origin else
                          _signal(self.name.get(bit, f"bit {bit}")), self.arrival[bit][0]))
            bit = self.prev.get(bit)
        steps.reverse()
        return [s for i, s in enumerate(steps) if i == 0 or s[0] != steps[i - 1][0]]

    def endpoints(self) -> list[Endpoint]:
        """Every input of a sequential cell with its estimate, slowest first."""
        arrival: dict[int, tuple[float, int]] = {}
        self.arrival = arrival
        self.prev: dict[int, int] = {}  # each combinational net's slowest input

        def inputs(cn: str) -> list[tuple[str, int]]:
            c = self.cells[cn]
            return [(p, ib) for p, bits in c["connections"].items()
                    if c["port_directions"].get(p) == "input"
                    for ib in bits if not isinstance(ib, str)]

        def arrive(bit: int) -> tuple[float, int]:
            """(arrival ns, the source bit of the slowest path); an iterative walk, since carry
            chains are deeper than Python's stack, and a combinational loop reads as time 0."""
            stack, open_ = [(bit, False)], set()
            while stack:
                b, expanded = stack.pop()
                if b in arrival:
                    continue
                if b not in self.driver or not self.combinational(self.driver[b][0]):
                    arrival[b] = (CLK_TO_Q if b in self.driver else 0.0, b)
                    continue
                cn, pout = self.driver[b]
                if not expanded:
                    open_.add(b)
                    stack.append((b, True))
                    stack += [(ib, False) for _, ib in inputs(cn)
                              if ib not in arrival and ib not in open_]
                    continue
                open_.discard(b)
                best, via = (0.0, b), None
                for p, ib in inputs(cn):
                    a, origin = arrival.get(ib, (0.0, ib))
                    t = a + self.route(ib, cn, p) + self.delay(self.cells[cn]["type"], p, pout)
                    if t > best[0]:
                        best, via = (t, origin), ib
                arrival[b] = best
                if via is not None and via in arrival:
                    self.prev[b] = via
            return arrival[bit]

        out = []
        for cn, c in self.cells.items():
            if self.combinational(cn) or c["type"] in ("$scopeinfo", "TRELLIS_IO", "EHXPLLL"):
                continue
            for port, bits in c["connections"].items():
                if c["port_directions"].get(port) != "input" or port.startswith("CLK"):
                    continue
                for b in bits:
                    if isinstance(b, str):
                        continue
                    t, origin = arrive(b)
                    src = self.source_name(origin)
                    pname = re.sub(r"\d+$", "", port)  # DI, CE, ADA, ...
                    out.append(Endpoint(round(t + self.route(b, cn, port) + SETUP, 2),
                                        src, f"{_signal(cn)}.{pname}", b))
        out.sort(key=lambda e: -e.ns)
        return out


def over_budget(endpoints: list[Endpoint], budget_ns: float) -> list[dict]:
    """Endpoints over ``budget_ns`` grouped by (source, sink): worst estimate and count each,
    worst first."""
    groups: dict[tuple[str, str], dict] = {}
    for e in endpoints:
        if e.ns <= budget_ns:
            break
        g = groups.setdefault((e.source, e.sink), {"source": e.source, "sink": e.sink,
                                                   "ns": e.ns, "inputs": 0, "bit": e.bit})
        g["inputs"] += 1
    return list(groups.values())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m swattn.fpga.depth", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("netlist", help="Yosys JSON of a synthesised ECP5 design")
    p.add_argument("--budget", type=float, default=9.0, metavar="NS",
                   help="list inputs whose estimate exceeds this (default 9 ns: 100 MHz less "
                        "a margin)")
    p.add_argument("--top", type=int, default=40, help="groups to print (default 40)")
    p.add_argument("--paths", action="store_true",
                   help="under each group, the signals along its slowest path with their "
                        "estimated arrival")
    args = p.parse_args(argv)
    try:
        net = Netlist(json.loads(Path(args.netlist).read_text()))
    except (OSError, ValueError) as e:
        print(f"depth: error: {args.netlist}: {e}", file=sys.stderr)
        return 2
    ends = net.endpoints()
    groups = over_budget(ends, args.budget)
    n_over = sum(g["inputs"] for g in groups)
    print(f"{len(ends)} inputs of registers, block RAMs and multipliers; {n_over} estimated over "
          f"{args.budget:g} ns in {len(groups)} source -> destination pairs; worst "
          f"{ends[0].ns if ends else 0:.1f} ns")
    for g in groups[:args.top]:
        print(f"{g['ns']:6.1f} ns  x{g['inputs']:<5} {g['source']} -> {g['sink']}")
        if args.paths:
            print("          " + " -> ".join(f"{name} ({ns:.1f})"
                                            for name, ns in net.path(g["bit"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
