"""The late nets of a routed build, grouped by the register or block that drives them.

``swattn build`` asks nextpnr for its detailed timing report: ``report.json`` then holds, for
every net, the arrival time (ns after the clock edge) at each of its endpoints. A build that
misses its clock shows one critical path; this lists all the nets whose latest endpoint arrives
after the clock period (or ``--margin`` ns before it), grouped by their driver's name with the
numbers taken out (``acc0_1.chunk0_TRELLIS_FF_Q_478`` and ``acc0_0.chunk0_TRELLIS_FF_Q_3`` are
one group), largest group first: the work list for the next timing step. An arrival counts the
endpoint's setup time where the report's critical paths show it for that kind of endpoint (the
same cell name pattern and port, e.g. a MULT18X18D's ``A`` inputs, whose setup is several ns;
a flip-flop's is about 0), and the critical path of each clock is printed first::

    python -m swattn.fpga.late build/ulx3s-85f/report.json
    python -m swattn.fpga.late build/ulx3s-85f/report.json --margin 1 --top 40
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Group:
    """Late nets whose drivers share a name pattern."""

    pattern: str
    worst: float = 0.0  #: latest arrival among them (ns)
    nets: list = field(default_factory=list)  #: (arrival, net, driver, fanout, latest sink)


def driver_pattern(driver: str) -> str:
    """The driver's name with primitive suffixes and numbers taken out."""
    name = re.sub(r"_TRELLIS.*|_LUT4.*|_CCU2C.*|_PFUMX.*|_L6MUX.*|\$.*", "", driver or "?")
    return re.sub(r"\d+", "#", name) or "?"


def endpoint_kind(end: dict) -> tuple[str, str]:
    """An endpoint's kind: its cell's name pattern and its port with numbers taken out."""
    return driver_pattern(end.get("cell")), re.sub(r"\d+", "#", end.get("port", ""))


def endpoint_setups(report: dict) -> dict[tuple[str, str], float]:
    """The setup times the report's critical paths show, per kind of endpoint: (the cell's name
    pattern, the port's with numbers taken out) -> ns (the largest seen)."""
    out: dict[tuple[str, str], float] = {}
    for path in report.get("critical_paths") or []:
        for step in path.get("path") or []:
            if step.get("type") == "setup" and step.get("delay"):
                key = endpoint_kind(step.get("from") or {})
                out[key] = max(out.get(key, 0.0), float(step["delay"]))
    return out


def critical_paths(report: dict) -> list[tuple[str, float, str, str]]:
    """Each clock's critical path in ``report`` (launch and capture on one clock edge): (the
    clock, its delay in ns with the endpoint's setup, source cell, endpoint cell.port)."""
    out = []
    for path in report.get("critical_paths") or []:
        steps = path.get("path") or []
        if not steps or path.get("from") != path.get("to") or "async" in str(path.get("from")):
            continue
        end = steps[-1].get("to") or {}
        out.append((str(path["from"]).removeprefix("posedge "),
                    sum(float(s.get("delay", 0)) for s in steps),
                    (steps[0].get("from") or {}).get("cell", "?"),
                    f"{end.get('cell', '?')}.{end.get('port', '?')}"))
    return out


def late_nets(report: dict, period_ns: float) -> list[Group]:
    """Groups of the nets in ``report`` (nextpnr's JSON report with detailed net timings) with
    an endpoint arriving after ``period_ns`` (its setup time added where
    :func:`endpoint_setups` knows it), largest group first."""
    nets = report.get("detailed_net_timings")
    if nets is None:
        raise ValueError("the report has no detailed net timings: it must come from nextpnr "
                         "--detailed-timing-report (swattn build asks for it)")
    setups = endpoint_setups(report)

    def arrival_of(e):
        return e["delay"][1] + setups.get(endpoint_kind(e), 0.0)
    groups: dict[str, Group] = {}
    for net in nets:
        eps = net.get("endpoints") or []
        if not eps:
            continue
        worst = max(eps, key=arrival_of)
        arrival = arrival_of(worst)
        if arrival <= period_ns:
            continue
        g = groups.setdefault(driver_pattern(net.get("driver")),
                              Group(driver_pattern(net.get("driver"))))
        g.worst = max(g.worst, arrival)
        g.nets.append((arrival, net["net"], net.get("driver"), len(eps), worst["cell"]))
    for g in groups.values():
        g.nets.sort(reverse=True)
    return sorted(groups.values(), key=lambda g: (-len(g.nets), -g.worst))


def clock_period(report: dict) -> float:
    """The period of the report's (first) clock constraint, in ns."""
    fmax = report.get("fmax") or {}
    for clk in fmax.values():
        if clk.get("constraint"):
            return 1000.0 / float(clk["constraint"])
    raise ValueError("the report names no clock constraint: give --period")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m swattn.fpga.late", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path, help="nextpnr's report.json of a build")
    p.add_argument("--period", type=float, help="clock period in ns (default: the report's "
                   "constraint)")
    p.add_argument("--margin", type=float, default=0.0,
                   help="list nets arriving later than period - margin ns (default 0)")
    p.add_argument("--top", type=int, default=25, help="groups to print (default 25)")
    args = p.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        period = args.period if args.period is not None else clock_period(report)
        if period <= 0:
            raise ValueError(f"--period {period:g}: must be positive")
        groups = late_nets(report, period - args.margin)
    except (OSError, ValueError) as e:  # (json.JSONDecodeError is a ValueError)
        print(f"swattn.fpga.late: {args.report}: {e}", file=sys.stderr)
        return 2
    for clock, delay, src, end in critical_paths(report):
        print(f"critical path ({clock}): {delay:.2f} ns, {src} -> {end}")
    total = sum(len(g.nets) for g in groups)
    print(f"{total} nets arrive after {period - args.margin:.2f} ns "
          f"(period {period:.2f} ns, margin {args.margin:g}), in {len(groups)} groups")
    for g in groups[:args.top]:
        arrival, net, _, fanout, sink = g.nets[0]
        print(f"{len(g.nets):6d} {g.worst:7.2f} ns  {g.pattern}\n"
              f"{'':16}e.g. {net} -> {sink} (fan-out {fanout})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
