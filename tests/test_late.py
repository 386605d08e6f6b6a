"""swattn.fpga.late: the late nets of a nextpnr report, grouped by driver (a hand-made report)."""

import json
import subprocess
import sys

import pytest

from swattn.fpga import late


def _net(name, driver, *arrivals):
    return {"net": name, "driver": driver,
            "endpoints": [{"cell": f"{name}_sink{i}", "delay": [a / 2, a], "port": "DI"}
                          for i, a in enumerate(arrivals)]}


REPORT = {
    "fmax": {"$glbnet$clk": {"achieved": 85.5, "constraint": 100}},
    "detailed_net_timings": [
        # two accumulators of one group (numbers differ), late
        _net("n1", "board.core.engine.acc0_1.chunk0_TRELLIS_FF_Q_478", 4.0, 11.5),
        _net("n2", "board.core.engine.acc1_0.chunk0_TRELLIS_FF_Q_3", 10.2),
        # a LUT-driven net, late by its second endpoint
        _net("n3", "board.core.tword_LUT4_D_Z", 2.0, 10.01, 3.0),
        # on time (exactly the period counts as on time), and a net with no endpoints
        _net("n4", "board.core.engine.rowmax0_0.held_TRELLIS_FF_Q", 10.0),
        {"net": "n5", "driver": "x", "endpoints": []},
    ],
}


def test_groups_and_order():
    groups = late.late_nets(REPORT, late.clock_period(REPORT))
    assert [(g.pattern, len(g.nets)) for g in groups] == [
        ("board.core.engine.acc#_#.chunk#", 2), ("board.core.tword", 1)]
    acc, tword = groups
    assert acc.worst == 11.5 and [n[1] for n in acc.nets] == ["n1", "n2"]
    assert tword.nets[0][0] == 10.01 and tword.nets[0][3] == 3  # arrival, fan-out
    assert tword.nets[0][4] == "n3_sink1"  # the latest sink


def test_margin_and_period():
    assert late.clock_period(REPORT) == pytest.approx(10.0)
    # with a 0.5 ns margin the 10.0 ns net is late too
    groups = late.late_nets(REPORT, 9.5)
    assert sorted(g.pattern for g in groups) == [
        "board.core.engine.acc#_#.chunk#", "board.core.engine.rowmax#_#.held", "board.core.tword"]
    assert late.late_nets(REPORT, 12.0) == []


def test_report_without_detail_is_refused():
    with pytest.raises(ValueError, match="--detailed-timing-report"):
        late.late_nets({"fmax": {}}, 10.0)
    with pytest.raises(ValueError, match="no clock constraint"):
        late.clock_period({"fmax": {}})


def test_cli(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(REPORT))
    res = subprocess.run([sys.executable, "-m", "swattn.fpga.late", str(path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].startswith("3 nets arrive after 10.00 ns")
    assert "board.core.engine.acc#_#.chunk#" in res.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    res = subprocess.run([sys.executable, "-m", "swattn.fpga.late", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("swattn.fpga.late: ")


def test_hard_block_inputs_count_their_setup_time():
    """A net into a MULT18X18D's A inputs arrives 8.0 ns after the clock, but the critical path
    shows that kind of input (the multipliers' cells, port A#) needs 3.5 ns of setup: the net is
    late (11.5 ns) and listed with the other multipliers' A inputs, while a flip-flop's 9.9 ns
    net is on time; the critical path is printed first."""
    dsp = "board.core.engine.pv0.scale0.mul{}"
    report = {
        "fmax": {"clk": {"achieved": 80.0, "constraint": 100}},
        "critical_paths": [
            {"from": "posedge clk", "to": "posedge clk", "path": [
                {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "e_dup_FF", "port": "Q"},
                 "to": {"cell": "e_dup_FF", "port": "Q"}},
                {"type": "routing", "delay": 8.5, "from": {"cell": "e_dup_FF", "port": "Q"},
                 "to": {"cell": dsp.format(6), "port": "A15"}},
                {"type": "setup", "delay": 3.5, "from": {"cell": dsp.format(6), "port": "A15"},
                 "to": {"cell": dsp.format(6), "port": "A15"}}]},
            {"from": "<async>", "to": "posedge clk", "path": [
                {"type": "routing", "delay": 20.0, "from": {"cell": "pin", "port": "O"},
                 "to": {"cell": "sync", "port": "M"}}]}],
        "detailed_net_timings": [
            {"net": "e_a", "driver": "board.core.engine.pv0.e6_0_1_dup_TRELLIS_FF_Q_4",
             "endpoints": [{"cell": dsp.format(17), "delay": [7.0, 8.0], "port": "A4"},
                           {"cell": dsp.format(17), "delay": [6.0, 6.2], "port": "B4"}]},
            _net("ff", "board.core.tword_LUT4_D_Z", 9.9),
        ],
    }
    assert late.endpoint_setups(report) == {("board.core.engine.pv#.scale#.mul#", "A#"): 3.5}
    groups = late.late_nets(report, 10.0)
    assert [(g.pattern, len(g.nets)) for g in groups] == [
        ("board.core.engine.pv#.e#_#_#_dup", 1)]
    assert groups[0].worst == pytest.approx(11.5) and groups[0].nets[0][4] == dsp.format(17)
    assert late.critical_paths(report) == [("clk", pytest.approx(12.5), "e_dup_FF",
                                            dsp.format(6) + ".A15")]
