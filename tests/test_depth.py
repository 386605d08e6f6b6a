"""``swattn.fpga.depth``: the pre-route delay estimate on a hand-made netlist whose delays are
worked out by hand from the model's constants (clock to Q 0.5, LUT4 0.4, PFUMX 0.25, setup 0.2,
a net of fan-out f 0.9 + 0.2 log2 f ns, nothing between a LUT and the PFUMX of its slice)."""

import json
import subprocess
import sys

import pytest

from swattn.fpga import depth

FF = {"CLK": "input", "DI": "input", "CE": "input", "Q": "output"}
LUT = {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"}
MUXP = {"ALUT": "input", "BLUT": "input", "C0": "input", "Z": "output"}


def cell(kind, ports, **conn):
    return {"type": kind, "port_directions": ports, "parameters": {},
            "connections": {p: [b] if isinstance(b, (int, str)) else b for p, b in conn.items()}}


def netlist():
    # bit 1: clock; a (Q 2) -> l1 (Z 3) -> l2 (Z 4) -> b.DI; a also -> l3 (Z 5) and l4 (Z 6) into a
    # PFUMX (Z 7, select from c) -> e.DI; c (Q 8) -> d.DI directly; l5 and l6 form a loop
    cells = {
        "top.a_TRELLIS_FF_Q": cell("TRELLIS_FF", FF, CLK=1, DI="0", CE="1", Q=2),
        "top.l1": cell("LUT4", LUT, A=2, B="0", C="0", D="0", Z=3),
        "top.l2": cell("LUT4", LUT, A=3, B="0", C="0", D="0", Z=4),
        "top.b_TRELLIS_FF_Q": cell("TRELLIS_FF", FF, CLK=1, DI=4, CE="1", Q=10),
        "top.l3": cell("LUT4", LUT, A=2, B="0", C="0", D="0", Z=5),
        "top.l4": cell("LUT4", LUT, A=2, B="0", C="0", D="0", Z=6),
        "top.m": cell("PFUMX", MUXP, ALUT=5, BLUT=6, C0=8, Z=7),
        "top.e_TRELLIS_FF_Q": cell("TRELLIS_FF", FF, CLK=1, DI=7, CE="1", Q=11),
        "top.c_TRELLIS_FF_Q": cell("TRELLIS_FF", FF, CLK=1, DI="0", CE="1", Q=8),
        "top.d_TRELLIS_FF_Q": cell("TRELLIS_FF", FF, CLK=1, DI=8, CE="1", Q=12),
        "top.l5": cell("LUT4", LUT, A=14, B="0", C="0", D="0", Z=13),
        "top.l6": cell("LUT4", LUT, A=13, B="0", C="0", D="0", Z=14),
        "top.f_TRELLIS_FF_Q": cell("TRELLIS_FF", FF, CLK=1, DI=14, CE="1", Q=15),
    }
    names = {"clk": [1], "a": [2], "b": [10], "c": [8], "x$1": [3], "y": [4], "e": [11],
             "d": [12], "q": [7]}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "cells": cells,
                                "netnames": {k: {"bits": v} for k, v in names.items()}}}}


def test_estimates_match_the_hand_worked_delays():
    ends = {(e.source, e.sink): e.ns for e in depth.Netlist(netlist()).endpoints()}
    # a fans out to 3 LUTs: 0.9 + 0.2 log2 3 = 1.217; then 0.4, 0.9 + 0.4, 0.9, setup
    assert ends[("top.a", "top.b.DI")] == pytest.approx(0.5 + 1.217 + 0.4 + 1.3 + 0.9 + 0.2,
                                                        abs=0.01)
    # through a LUT into its slice's PFUMX: no routing between them; c's select arrives earlier
    assert ends[("top.a", "top.e.DI")] == pytest.approx(0.5 + 1.217 + 0.4 + 0.25 + 0.9 + 0.2,
                                                    abs=0.01)
    # c fans out to the PFUMX and d
    assert ends[("top.c", "top.d.DI")] == pytest.approx(0.5 + 1.1 + 0.2, abs=0.01)
    # the loop l5 <-> l6 is walked once around (its entry read as time 0): it does not hang
    assert 0 < ends[("top.l6", "top.f.DI")] < 5
    assert len(ends) == 4  # constants are not inputs
    groups = depth.over_budget(depth.Netlist(netlist()).endpoints(), 4.3)
    assert [(g["source"], g["sink"], g["inputs"]) for g in groups] == [("top.a", "top.b.DI", 1)]


def test_cli_lists_the_pairs_and_refuses_what_is_not_a_netlist(tmp_path):
    f = tmp_path / "n.json"
    f.write_text(json.dumps(netlist()))
    r = subprocess.run([sys.executable, "-m", "swattn.fpga.depth", str(f), "--budget", "3"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("4 inputs of registers, block RAMs and multipliers; 3 estimated over 3 ns "
                        "in 3 source -> destination pairs; worst 4.5 ns")
    assert lines[1].split() == ["4.5", "ns", "x1", "top.a", "->", "top.b.DI"]
    assert lines[3].split() == ["3.5", "ns", "x1", "top.a", "->", "top.e.DI"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"modules": {}}))
    r = subprocess.run([sys.executable, "-m", "swattn.fpga.depth", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "the netlist has 0 top modules: expected one" in r.stderr


def test_path_names_the_signals_of_the_slowest_path_with_their_arrival():
    net = depth.Netlist(netlist())
    ends = {(e.source, e.sink): e for e in net.endpoints()}
    steps = net.path(ends[("top.a", "top.b.DI")].bit)
    assert [s for s, _ in steps] == ["top.a", "x", "y"]
    # a's clock to Q; + its net to 3 loads and a LUT; + a net to one load and a LUT
    want = [0.5, 0.5 + 1.217 + 0.4, 2.117 + 0.9 + 0.4]
    assert [t for _, t in steps] == pytest.approx(want, abs=0.01)
    # through the PFUMX of the slice: a -> l3 (unnamed, shown by its bit) -> q
    assert [s for s, _ in net.path(ends[("top.a", "top.e.DI")].bit)] == ["top.a", "bit 5", "q"]


def test_cli_paths_prints_each_groups_path(tmp_path):
    f = tmp_path / "n.json"
    f.write_text(json.dumps(netlist()))
    r = subprocess.run([sys.executable, "-m", "swattn.fpga.depth", str(f), "--budget", "3",
                        "--paths"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2].split() == ["top.a", "(0.5)", "->", "x", "(2.1)", "->", "y",
                                                "(3.4)"]
