"""``swattn explore``: candidates of a board's engine, each synthesised and placed and routed at
each seed as jobs of a real Dask LocalCluster of two worker processes, with stand-ins for Yosys
and nextpnr (the real tools take minutes per candidate): the elaboration and the board top's
RTLIL are real, the stand-in Yosys counts the multipliers in that RTLIL, the stand-in nextpnr
writes a report with an Fmax of 95 + 4 x seed MHz. Expected values are counted here from the
RTLIL, the cycle model and the stand-ins' rules, not taken from the code under test."""

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from swattn.fpga.boards import BOARDS
from swattn.sw.bench.boards import longformer_head
from swattn.sw.cycles import predict_cycles

SWATTN = str(Path(sys.executable).with_name("swattn"))

#: Yosys: ``-l NAME.rpt NAME.ys``; writes NAME.json and NAME.stat.json with the multipliers of
#: NAME.il (MULT18X18D instances and $mul cells) and fixed LUT, flip-flop and block RAM counts
FAKE_YOSYS = r'''#!{python}
import json, re, sys
name = next(a for a in sys.argv[1:] if a.endswith(".ys"))[:-3]
il = open(name + ".il").read()
mults = len(re.findall(r"^\s*cell (?:\\MULT18X18D|\$mul) ", il, re.M))
cells = {{"LUT4": 20000, "TRELLIS_FF": 15000, "MULT18X18D": mults, "DP16KD": 146,
          "SB_LUT4": 3000, "SB_DFF": 1000, "SB_MAC16": 4, "SB_SPRAM256KA": 4}}
json.dump({{"design": {{"num_cells_by_type": cells}}}}, open(name + ".stat.json", "w"))
json.dump({{}}, open(name + ".json", "w"))
'''

#: nextpnr: ``--pack-only`` (iCE40) writes the packed logic cells; otherwise a report at
#: ``--report`` with an Fmax of 95 + 4 x seed MHz, no late net, and the placed multipliers
#: (the Yosys stand-in's count); its parent's pid in pid_seed<N>
FAKE_NEXTPNR = r'''#!{python}
import json, os, re, sys
argv = sys.argv[1:]
name = argv[argv.index("--json") + 1][:-5]
il = open(name + ".il").read()
mults = len(re.findall(r"^\s*cell (?:\\MULT18X18D|\$mul) ", il, re.M))
if "--pack-only" in argv:
    report = {{"utilization": {{"ICESTORM_LC": {{"used": 4000, "available": 5280}}}}}}
    json.dump(report, open(argv[argv.index("--report") + 1], "w"))
    sys.exit(0)
seed = int(argv[argv.index("--seed") + 1])
open("pid_seed%d" % seed, "w").write(str(os.getppid()))
report = {{"fmax": {{"clk": {{"achieved": 95.0 + 4 * seed, "constraint": 100.0}}}},
          "detailed_net_timings": [],
          "utilization": {{"TRELLIS_COMB": {{"used": 21000 + seed, "available": 83640}},
                          "MULT18X18D": {{"used": mults, "available": 156}}}}}}
json.dump(report, open(argv[argv.index("--report") + 1], "w"))
'''


def _tools(tmp_path: Path) -> dict:
    env = {}
    for var, text in (("YOSYS", FAKE_YOSYS), ("NEXTPNR_ECP5", FAKE_NEXTPNR),
                      ("NEXTPNR_ICE40", FAKE_NEXTPNR)):
        path = tmp_path / f"fake-{var.lower()}"
        path.write_text(text.format(python=sys.executable))
        path.chmod(0o755)
        env[var] = str(path)
    return env


def _mults(il: Path) -> int:
    return len(re.findall(r"^\s*cell (?:\\MULT18X18D|\$mul) ", il.read_text(), re.M))


def _rate(params, mhz: float) -> tuple[float, float]:
    """(useful GMAC/s, lanes x clock GMAC/s) of the board's Longformer-like head: 2 d MACs per
    pair of the pattern, cycles from the cycle model."""
    w = longformer_head(params)
    useful = 2 * w.head_dim * w.pattern().pairs()
    return useful / (predict_cycles(params, w.pattern()) / (mhz * 1e6)) / 1e9, \
        params.lanes * mhz / 1e3


def test_explore_places_each_candidate_at_each_seed_on_a_local_cluster(tmp_path):
    import os

    out, js = tmp_path / "explore", tmp_path / "explore.json"
    proc = subprocess.Popen(
        [SWATTN, "explore", "--board", "ulx3s-85f", "--lanes", "64", "256", "--seeds", "1-2",
         "--jobs", "2", "--out", str(out), "--json", str(js)],
        env=dict(os.environ, **_tools(tmp_path)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in stderr, (stdout, stderr)
    res = json.loads(js.read_text())
    board = BOARDS["ulx3s-85f"]
    p = board.params
    names = [f"l{la}-d{p.dot_pipeline}-p{p.pv_pipeline}-b{p.max_bands}-c{p.max_columns}"
             for la in (64, 256)]
    assert [r["candidate"] for r in res["candidates"]] == names
    from swattn.sw.report import checkout_commit
    assert res["commit"] == checkout_commit() and res["seeds"] == [1, 2]
    small, large = res["candidates"]
    # each candidate in its own folder; its multipliers are those of its own RTLIL
    il = {n: out / n / "ulx3s-85f" / "swattn_ulx3s_85f.il" for n in names}
    assert all(path.exists() for path in il.values())
    m64, m256 = _mults(il[names[0]]), _mults(il[names[1]])
    assert m64 <= 156 < m256, (m64, m256)
    # the 256-lane engine has more multipliers than the ECP5-85F: a row with the reason, and
    # no place and route
    assert not large["fits"] and "does not fit" in large["reason"]
    assert f"DSP (MULT18X18D) {m256} of 156" in large["reason"]
    assert large["resources"]["DSP"] == {"used": m256, "available": 156,
                                         "counted": "DSP (MULT18X18D) (yosys)"}
    assert not list((out / names[1] / "ulx3s-85f").glob("report_seed*.json"))
    # the 64-lane engine: both seeds placed, the best (seed 2, 103 MHz) meets 100 MHz; the
    # rate at the board's clock (below Fmax) against 64 MACs a cycle
    assert small["fits"] and small["reason"] is None
    assert [s["seed"] for s in small["seeds"]] == [2, 1]
    assert (small["best_seed"], small["fmax_mhz"], small["late_nets"], small["meets"]) == \
        (2, 103.0, 0, True)
    assert small["resources"]["DSP"]["used"] == m64
    assert small["resources"]["LUT"] == {"used": 21002, "available": 83640,
                                         "counted": "LUT4 (placed) (nextpnr)"}
    assert small["resources"]["BRAM"]["used"] == 146  # (Yosys's: the stand-in places none)
    gmac, peak = _rate(replace(p, lanes=64), 100.0)
    rate = small["rate"]
    assert rate["mhz"] == 100.0 and abs(rate["gmac_s"] - gmac) < 1e-9
    assert abs(rate["peak_gmac_s"] - peak) < 1e-12 and peak == 6.4
    assert abs(rate["fraction_of_peak"] - gmac / peak) < 1e-12
    # the seeds ran in the cluster's worker processes, not in the command's own
    pids = {int((out / names[0] / "ulx3s-85f" / f"pid_seed{s}").read_text()) for s in (1, 2)}
    assert proc.pid not in pids
    # the table
    assert all(n in stdout for n in names) and "103.0 (2)" in stdout
    assert f"{names[1]}: the design does not fit" in stdout
    # the docs' Markdown: the command, the winner (the one that meets) marked, the reason
    from swattn.fpga.explore import markdown, winner
    assert winner(res) is small
    md = markdown(res).splitlines()
    assert md[0].startswith(f"`swattn explore --board ulx3s-85f --lanes 64 256 --dot-pipeline "
                            f"{p.dot_pipeline} --pv-pipeline {p.pv_pipeline} --max-bands "
                            f"{p.max_bands} --max-columns {p.max_columns} --seeds 1,2` at "
                            f"commit {res['commit']}")
    assert f"| **{names[0]}** (winner) | 21,002 of 83,640 | {m64} of 156 | 146 of 208 | " \
           f"103.0 (2) | 0 | yes | {gmac:.2f} at 100.0 MHz | {gmac / peak:.1%} |" in md
    assert any(line.startswith(f"| {names[1]} | ") and f"| {m256} of 156 |" in line
               and line.endswith(" | - | - | does not fit | - | - |") for line in md)
    assert md[-1] == f"{names[1]}: the design does not fit the LFE5U-85F: DSP (MULT18X18D) " \
                     f"{m256} of 156."
    small["meets"] = False  # no candidate meets: no winner
    assert winner(res) is None and "(winner)" not in markdown(res)


def test_explore_synth_only_rates_at_the_board_clock(tmp_path):
    """``--synth-only`` on the iCE40 (Yosys, then nextpnr's packer): the packed logic cells,
    no Fmax, the rate at the board's 36 MHz."""
    import os

    js = tmp_path / "e.json"
    r = subprocess.run([SWATTN, "explore", "--board", "icebreaker", "--lanes", "8",
                        "--synth-only", "--jobs", "1", "--out", str(tmp_path / "e"), "--json",
                        str(js)], env=dict(os.environ, **_tools(tmp_path)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    (row,) = json.loads(js.read_text())["candidates"]
    board = BOARDS["icebreaker"]
    p = board.params
    bands = f"-b{p.max_bands}" if p.max_bands > 1 else ""  # (the board's band beside the window)
    assert row["candidate"] == f"l8-d{p.dot_pipeline}-p{p.pv_pipeline}{bands}" and row["fits"]
    assert row["fmax_mhz"] is None and row["seeds"] == [] and row["meets"] is None
    assert row["resources"]["LUT"] == {"used": 4000, "available": 5280,
                                       "counted": "logic cells (nextpnr)"}
    assert row["resources"]["FF"]["used"] == 1000
    gmac, peak = _rate(replace(p, lanes=8), 36.0)
    assert row["rate"]["mhz"] == 36.0 and abs(row["rate"]["gmac_s"] - gmac) < 1e-9
    assert abs(row["rate"]["peak_gmac_s"] - peak) < 1e-12
    assert "--synth-only" in r.stdout


def test_candidates_with_and_without_paired_max_passes():
    """``--pair-max``: each lane count with the max passes paired and not, the default for the
    unit count named plainly and built once, the other marked; an engine of 128 lanes
    without pairing elaborates fewer adders than with it (no second Q.K adder tree beside the
    P.V lanes: counted here in the RTLIL)."""
    from amaranth.back import rtlil

    from swattn.fpga.explore import candidates
    from swattn.hw.engine import Engine

    board = BOARDS["ulx3s-85f"]
    p = board.params
    pipe, keys = f"d{p.dot_pipeline}-p{p.pv_pipeline}", f"-b{p.max_bands}-c{p.max_columns}"
    cands = candidates(board, [64, 128], None, None, [True, False])
    names = [c.name for c in cands]
    assert names == [f"l64-{pipe}-pair{keys}", f"l64-{pipe}{keys}", f"l128-{pipe}{keys}",
                     f"l128-{pipe}-nopair{keys}"]
    by = {c.name.removesuffix(keys): c.params for c in cands}
    assert by[f"l64-{pipe}"].pair_max is None and not by[f"l64-{pipe}"].paired_max
    assert by[f"l64-{pipe}-pair"].paired_max and by[f"l128-{pipe}"].paired_max
    assert not by[f"l128-{pipe}-nopair"].paired_max
    # the same candidate asked for twice is built once
    assert [c.name for c in candidates(board, [128], None, None, [True, True])] == \
        [f"l128-{pipe}{keys}"]

    def adders(p):
        text = rtlil.convert(Engine(p))
        return len(re.findall(r"^\s*cell \$add ", text, re.M))
    assert adders(by[f"l128-{pipe}-nopair"]) < adders(by[f"l128-{pipe}"])


def test_candidates_with_bands_and_columns(tmp_path):
    """``--max-bands`` / ``--max-columns``: each combination a candidate named by its bands and
    columns (none for the window and globals alone), its engine with those fields, their
    configuration fields in the board top's RTLIL (the band and column registers the link
    writes); the command line of a table names them only where a candidate has them; a count
    the engine refuses is named by its option."""
    from swattn.fpga.explore import candidates, command

    board = BOARDS["ulx3s-85f"]
    pipe = f"l64-d{board.params.dot_pipeline}-p{board.params.pv_pipeline}"
    cands = candidates(board, [64], None, None, None, [1, 4], [0, 8])
    assert [c.name for c in cands] == [pipe, f"{pipe}-c8", f"{pipe}-b4", f"{pipe}-b4-c8"]
    by = {c.name: c.params for c in cands}
    assert (by[f"{pipe}-b4-c8"].max_bands, by[f"{pipe}-b4-c8"].max_columns) == (4, 8)
    assert by[f"{pipe}-b4-c8"] == board.params
    assert (by[pipe].max_bands, by[pipe].max_columns) == (1, 0)
    rows = [{"params": p.as_dict(), "lanes": p.lanes, "dot_pipeline": p.dot_pipeline,
             "pv_pipeline": p.pv_pipeline} for p in by.values()]
    res = {"board": "ulx3s-85f", "candidates": rows, "synth_only": False, "seeds": [4]}
    assert "--max-bands 1 4 --max-columns 0 8 --seeds 4" in command(res)
    assert "--max-bands" not in command(dict(res, candidates=rows[:1]))
    r = subprocess.run([SWATTN, "explore", "--board", "ulx3s-85f", "--max-bands", "17",
                        "--synth-only", "--out", str(tmp_path / "e")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--max-bands = 17" in r.stderr and "1..16" in r.stderr, r.stderr


def test_record_takes_the_winner_only_when_it_is_the_board_engine(tmp_path, monkeypatch):
    """``--record``: the winner (the highest rate among the candidates that meet and have the
    board's required bands and columns) has its best
    seed written as the board's, with the seeds swept and the netlist; a winner that is not the
    board table's engine, or no candidate meeting, is an error naming why, and nothing is
    written."""
    import pytest

    from swattn.fpga import boards
    from swattn.sw.cli.explore import record_winner
    from swattn.sw.spec.errors import UserError

    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({"icebreaker": {"seed": 2}}))
    monkeypatch.setattr(boards, "SEEDS_FILE", seeds)
    board = BOARDS["ulx3s-85f"]
    own, other = board.params, replace(board.params, lanes=2 * board.params.lanes)

    def cand(name, params, fmax, gmac, seeds_rows):
        return {"candidate": name, "params": params.as_dict(), "fits": True,
                "meets": fmax >= 100, "fmax_mhz": fmax, "rate": {"gmac_s": gmac},
                "seeds": seeds_rows}

    rows = [{"seed": 3, "fmax_mhz": 104.26, "late_nets": 0, "meets": True, "netlist": "ab"},
            {"seed": 1, "fmax_mhz": 97.0, "late_nets": 4, "meets": False, "netlist": "ab"}]
    res = {"target_mhz": 100.0,
           "candidates": [cand("own", own, 104.26, 6.0, rows),
                          cand("big", other, 96.0, 11.0, []),  # faster, but misses
                          cand("small", replace(own, lanes=own.lanes // 2), 120.0, 3.0, []),
                          # faster and meets, but without the bands and columns the board needs
                          cand("plain", replace(own, max_bands=1, max_columns=0), 110.0, 9.0,
                               [])]}
    assert board.requires == {"max_bands": 4, "max_columns": 8}
    record_winner(board, res)
    table = json.loads(seeds.read_text())
    assert table["icebreaker"] == {"seed": 2}
    rec = table["ulx3s-85f"]
    assert (rec["seed"], rec["fmax_mhz"], rec["late_nets"], rec["meets"], rec["netlist"],
            rec["seeds_swept"], rec["clock_mhz"]) == (3, 104.26, 0, True, "ab", [1, 3], 100.0)

    seeds.write_text("{}")
    res["candidates"][1].update(meets=True, fmax_mhz=101.0)  # now the bigger one wins
    with pytest.raises(UserError, match=rf"winner big \(lanes {other.lanes}, .*\) is not "
                                        r"ulx3s-85f's engine in the board table"):
        record_winner(board, res)
    for c in res["candidates"]:
        c["meets"] = False
    with pytest.raises(UserError, match="no candidate meets ulx3s-85f's 100 MHz clock with "
                                        "max_bands >= 4, max_columns >= 8; nothing recorded"):
        record_winner(board, res)
    assert seeds.read_text() == "{}"


def test_the_markdown_names_each_run_and_the_seeds_without_a_result():
    """Several runs in one table: a run column, the commands listed with their commits, the
    winner over all runs marked once, and a seed that gave no result named with why."""
    from swattn.fpga.explore import markdown

    def run(commit, lanes, seeds, meets, fmax):
        head = {"name": "h", "n": 63, "radius": 8, "globals": 2, "head_dim": 32}
        rate = {"gmac_s": lanes / 10, "mhz": 100.0, "fraction_of_peak": 0.9}
        cand = {"candidate": f"l{lanes}", "lanes": lanes, "dot_pipeline": 4, "pv_pipeline": 5,
                "fits": True, "reason": None, "resources": {}, "seeds": seeds,
                "best_seed": seeds[0]["seed"], "fmax_mhz": fmax, "late_nets": 0,
                "meets": meets, "rate": rate}
        return {"board": "ulx3s-85f", "device": "D", "target_mhz": 100.0, "commit": commit,
                "synth_only": False, "seeds": [s["seed"] for s in seeds], "head": head,
                "candidates": [cand]}

    md = markdown([run("aaa", 64, [{"seed": 4, "fmax_mhz": 107.0, "rc": 0}], True, 107.0),
                   run("bbb", 128, [{"seed": 1, "fmax_mhz": 60.0, "rc": 0},
                                    {"seed": 2, "rc": "stopped"}], False, 60.0)]).splitlines()
    assert md[2:4] == ["1. `swattn explore --board ulx3s-85f --lanes 64 --dot-pipeline 4 "
                       "--pv-pipeline 5 --seeds 4` at commit aaa",
                       "2. `swattn explore --board ulx3s-85f --lanes 128 --dot-pipeline 4 "
                       "--pv-pipeline 5 --seeds 1,2` at commit bbb"]
    assert "| 1 | **l64** (winner) | - | - | - | 107.0 (4) | 0 | yes |" in "\n".join(md)
    assert "| 2 | l128 | - | - | - | 60.0 (1) | 0 | no |" in "\n".join(md)
    assert md[-1] == "Run 2, l128: no result at seed 2 stopped after the time limit."
