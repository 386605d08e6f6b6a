"""swattn bench: the figures it derives, the CPU float32 baseline, board files, targets, the CLI,
and the GPU script's pattern (mask and pair count) without a GPU.

Expected values are counted by hand or come from an independent reference (the dense float64
masked softmax in sw/golden.py, HybridPattern's own mask); none is produced by the code under test.
"""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from swattn.sw import bench, golden
from swattn.sw.cli import main
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.pattern import HybridPattern

REPO = Path(__file__).resolve().parent.parent


# --- workloads and figures ----------------------------------------------------------------------

def test_longformer_pairs_counted_by_hand():
    # n = 1024, radius 256, no globals: 1024 rows of 513 keys minus the clipped ends,
    # 2 * (1 + 2 + ... + 256) = 256 * 257
    w = bench.Workload("x", "longformer-g0", 1024, 256, 1, 0)
    assert w.pattern().pairs() == 1024 * 513 - 256 * 257


def test_figures_without_model_mark_engine_unavailable():
    w = bench.Workload("x", "longformer-g0", 1024, 256, 1, 0)
    row = bench.figures(w, [64], None, {})
    f = row["lanes"]["64"]
    pairs = 1024 * 513 - 256 * 257
    assert row["useful_macs"] == 2 * 64 * pairs
    assert f["ideal_cycles"] == 2 * 64 * pairs // 64
    assert f["engine_cycles"] is None and f["utilisation"] is None


def test_figures_with_model():
    w = bench.Workload("x", "longformer-g0", 1024, 256, 1, 0)
    pairs = 1024 * 513 - 256 * 257
    ideal = 2 * 64 * pairs // 128
    calls = []

    def fake_model(params, pattern):
        calls.append((params.lanes, params.max_radius, pattern.n))
        return 2 * ideal

    f = bench.figures(w, [128], fake_model, {})["lanes"]["128"]
    assert calls == [(128, 256, 1024)]
    assert f["engine_cycles"] == 2 * ideal and f["engine_source"] == "model"
    assert f["utilisation"] == pytest.approx(0.5)


def test_board_figures_use_each_boards_engine_and_fmax():
    from swattn.fpga.boards import Board

    params = EngineParams(head_dim=32, lanes=64, max_radius=8, max_globals=2, max_dilation=2,
                          seq_width=6)

    def board(name):
        return Board(name=name, platform="x:y", family="ecp5", params=params, clock_hz=100e6,
                     baud=3_000_000, word_bytes=4, spram=False, flash_board="x", why="",
                     resources={"LUT": 1000, "DSP": 10})

    table = {"built": board("built"), "unbuilt": board("unbuilt")}
    seen = []

    def fake_model(p, pattern):
        seen.append((p, pattern.n, pattern.left, pattern.dilation, len(pattern.globals_)))
        return 5000

    res = bench.board_figures({"built": {"fmax_mhz": 40.0, "file": "f.json"}}, fake_model, table,
                              lut4_per_product={"ecp5": 300})
    # heads at n = n_max = 63 on the board's own engine: radius 8 with 0 and 2 globals, and
    # radius 4 at dilation 2
    assert {x[1:] for x in seen} == {(63, 8, 1, 0), (63, 8, 1, 2), (63, 4, 2, 2)}
    assert all(x[0] is params for x in seen)
    b = res["built"]
    assert b["fmax_mhz"] == 40.0 and b["target_mhz"] == 100.0 and b["build_error"] is None
    h = b["heads"][0]
    pairs = sum(min(i + 8, 62) - max(i - 8, 0) + 1 for i in range(63))  # window of radius 8
    assert h["useful_macs"] == 2 * 32 * pairs
    assert h["at_fmax"]["time_per_head_s"] == pytest.approx(5000 / 40e6)
    assert h["at_target"]["time_per_head_s"] == pytest.approx(5000 / 100e6)
    assert h["at_fmax"]["gmac_s"] == pytest.approx(2 * 32 * pairs / (5000 / 40e6) / 1e9)
    # the multiplier-bound rate at the same clock: 64 multipliers, a MAC each per cycle
    assert h["at_fmax"]["peak_gmac_s"] == pytest.approx(64 * 40e6 / 1e9)
    assert h["at_target"]["peak_gmac_s"] == pytest.approx(64 * 100e6 / 1e9)
    assert h["at_fmax"]["fraction_of_peak"] == pytest.approx(2 * 32 * pairs / (5000 * 64))
    # one job of the Longformer-like head (2 globals) through the UART: at the Fmax (40 MHz,
    # below the target), its bytes at 3 Mbaud / 10 bits a byte
    k = b["link"]
    assert k["head"] == "longformer-g2-n63" and k["compute_s"] == pytest.approx(5000 / 40e6)
    assert k["link_s"] == pytest.approx((k["sent"] + k["received"]) * 10 / 3e6)
    assert k["end_to_end_s"] == pytest.approx(k["link_s"] + k["compute_s"])
    # the device at its best at that clock: 10 MULT18X18D (one int8 product each) and
    # 1000 // 300 = 3 multipliers of logic, so 13 MACs a cycle
    c = b["chip"]
    assert (c["dsp_products"], c["lut_products"], c["mhz"]) == (10, 3, 40.0)
    assert c["peak_gmac_s"] == pytest.approx(13 * 40e6 / 1e9)
    assert c["dsp_peak_gmac_s"] == pytest.approx(10 * 40e6 / 1e9)
    g2 = next(x for x in b["heads"] if x["name"] == "longformer-g2-n63")
    assert c["head"] == g2["name"] and c["gmac_s"] == g2["at_fmax"]["gmac_s"]
    assert c["fraction_of_chip"] == pytest.approx(g2["at_fmax"]["gmac_s"] / (13 * 40e-3))
    assert c["fraction_of_dsp"] == pytest.approx(g2["at_fmax"]["gmac_s"] / (10 * 40e-3))
    u = res["unbuilt"]
    assert u["chip"]["mhz"] == 100.0 and u["chip"]["peak_gmac_s"] == pytest.approx(1.3)
    assert u["fmax_mhz"] is None and u["build_error"] == "no build"
    assert "at_fmax" not in u["heads"][0] and "at_target" in u["heads"][0]
    assert u["link"]["compute_s"] == pytest.approx(5000 / 100e6)  # the target clock


def test_model_error_is_reported_not_raised():
    w = bench.Workload("x", "longformer-g0", 512, 32, 1, 0)

    def broken(params, pattern):
        raise NotImplementedError("dilation not modelled")

    f = bench.figures(w, [8], broken, {})["lanes"]["8"]
    assert f["engine_cycles"] is None and "dilation not modelled" in f["engine_error"]


def test_model_against_rtl_error_and_target():
    w = bench.Workload("x", "longformer-g0", 512, 32, 1, 0)
    rtl = {("x", 64): {"cycles": 1000, "ok": True}}
    row = bench.figures(w, [64], lambda p, pat: 1030, rtl)
    assert row["lanes"]["64"]["model_rel_err"] == pytest.approx(0.03)
    t = {x["target"]: x for x in bench.check_targets([row], {}, [64], None)}
    tm = t["cycle model within 2% of RTL"]
    assert tm["status"] == "miss" and tm["margin"] == pytest.approx(-0.01)


def test_utilisation_target_pass_and_miss():
    w = bench.Workload("x", "longformer-g16", 1024, 256, 1, 16)
    ideal = bench.figures(w, [64], None, {})["lanes"]["64"]["ideal_cycles"]
    ok = bench.figures(w, [64], lambda p, pat: math.ceil(ideal / 0.97), {})
    bad = bench.figures(w, [64], lambda p, pat: math.ceil(ideal / 0.90), {})
    [t_ok] = [t for t in bench.check_targets([ok], {}, [64], None)
              if "utilisation" in t["target"]]
    [t_bad] = [t for t in bench.check_targets([bad], {}, [64], None)
               if "utilisation" in t["target"]]
    assert t_ok["status"] == "pass" and t_ok["margin"] == pytest.approx(0.02, abs=1e-4)
    assert t_bad["status"] == "miss" and t_bad["margin"] == pytest.approx(-0.05, abs=1e-4)


# --- boards -------------------------------------------------------------------------------------

def test_read_boards_and_fmax_targets(tmp_path):
    (tmp_path / "icebreaker.json").write_text(json.dumps(
        {"fmax": {"clk": {"achieved": 41.5, "constraint": 12.0}}, "params": {"lanes": 8}}))
    (tmp_path / "ulx3s.json").write_text(json.dumps({"device": "LFE5U-85F", "fmax_mhz": 87.0}))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.json").write_text(json.dumps({"board": "elsewhere", "fmax_mhz": 1}))
    boards = bench.read_boards(tmp_path)
    assert boards["icebreaker"]["family"] == "ice40"
    assert boards["icebreaker"]["fmax_mhz"] == 41.5 and boards["icebreaker"]["lanes"] == 8
    assert boards["ulx3s"]["family"] == "ecp5" and boards["ulx3s"]["fmax_mhz"] == 87.0
    assert "error" in boards["broken"] and "elsewhere" not in boards
    t = {x["target"]: x for x in bench.check_targets([], boards, [], None)}
    ice, ecp = t["iCE40UP5K Fmax >= 36 MHz"], t["ECP5-85F Fmax >= 100 MHz"]
    assert ice["status"] == "pass" and ice["margin"] == pytest.approx(5.5)
    assert ecp["status"] == "miss" and ecp["margin"] == pytest.approx(-13.0)


def test_board_name_from_build_result(tmp_path):
    # the form `swattn build --json` writes: the board's name inside, Fmax in MHz
    (tmp_path / "result.json").write_text(json.dumps(
        {"board": "ulx3s-85f", "target_mhz": 100.0, "fmax_mhz": 104.2, "ok": True}))
    b = bench.read_boards(tmp_path)["ulx3s-85f"]
    assert b["family"] == "ecp5" and b["fmax_mhz"] == 104.2


def test_failed_build_is_a_miss(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps(
        {"board": "icebreaker", "ok": False, "error": "the design does not fit the iCE40UP5K"}))
    [t] = [x for x in bench.check_targets([], bench.read_boards(tmp_path), [], None)
           if "iCE40" in x["target"]]
    assert t["status"] == "miss" and "does not fit" in t["note"]


def test_no_build_reported(tmp_path):
    t = bench.check_targets([], bench.read_boards(tmp_path), [], None)
    assert [x["note"] for x in t if "Fmax" in x["target"]] == ["no build", "no build"]


# --- CPU float32 baseline -----------------------------------------------------------------------

@pytest.mark.parametrize("n, left, right, dil, g", [
    (300, 7, 7, 1, ()), (300, 5, 9, 3, (0, 150, 299)), (64, 100, 2, 1, (3,)), (257, 0, 4, 2, ())])
def test_sparse_f32_matches_dense_masked_reference(n, left, right, dil, g):
    rng = np.random.default_rng(n + left)
    q, k, v = (rng.standard_normal((n, 32)) for _ in range(3))
    pat = HybridPattern(n, left, right, dil, g)
    got = bench.sparse_attention_f32(q, k, v, pat, block=64)
    ref = golden.reference_masked(q, k, v, pat)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


def test_linear_fit_recovers_a_line():
    f = bench.linear_fit([1, 2, 4, 8], [13, 23, 43, 83])  # 10 n + 3
    assert f["slope"] == pytest.approx(10) and f["intercept"] == pytest.approx(3)
    assert f["r2"] == pytest.approx(1.0)


# --- the command --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, word", [(["--lanes", "12"], "--lanes = 12"),
                                        (["--n", "0"], "--n = 0"),
                                        (["--repeat", "0"], "--repeat = 0"),
                                        (["--rtl-kinds", "longformer"], "'longformer'")])
def test_bad_cli_input_is_one_line(argv, word, capsys, tmp_path):
    assert main(["bench", "--out", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swattn: error:") and word in err and "\n" not in err


def test_cli_writes_report_json_and_plots(tmp_path):
    out = tmp_path / "bench"
    rc = main(["bench", "--n", "512", "--lanes", "8", "64", "--cpu-max-n", "512", "--no-minilm",
               "--out", str(out), "--json", str(tmp_path / "r.json"),
               "--synth-dir", str(_empty(tmp_path / "none"))])
    assert rc == 0
    res = json.loads((tmp_path / "r.json").read_text())
    report = (out / "report.md").read_text()
    assert "## Targets" in report and "no build" in report
    assert sorted(p.name for p in out.glob("*.png")) == [
        "scaling_lanes.png", "scaling_n.png", "scaling_window.png", "throughput.png",
        "utilisation.png"]
    lf = [r for r in res["workloads"] if r["name"] == "longformer-g16-n512"][0]
    f = lf["lanes"]["64"]
    if res["cycle_model"]["available"]:
        assert isinstance(f["engine_cycles"], int)
    else:
        assert f["engine_cycles"] is None and "unavailable" in report
    assert res["cpu"]["longformer-g16-n512"]["golden_s"] > 0
    assert {t["status"] for t in res["targets"]} <= {"pass", "miss", "n/a"}


def test_cli_rtl_lanes_outside_lanes_get_figures(tmp_path, monkeypatch):
    """--rtl-lanes not among --lanes: the simulated size gets its figures and the model is
    compared with the RTL there (it was a KeyError traceback)."""
    calls = []

    def fake_rtl(wls, lanes, log):
        calls.append(lanes)
        return {(w.name, la): {"cycles": 1000, "ok": True} for w in wls for la in lanes}
    monkeypatch.setattr(bench, "measure_rtl", fake_rtl)
    rc = main(["bench", "--n", "512", "--lanes", "8", "--rtl-max-n", "256", "--rtl-lanes", "256",
               "--cpu-max-n", "0", "--no-minilm", "--out", str(tmp_path / "b"),
               "--json", str(tmp_path / "r.json"), "--synth-dir", str(_empty(tmp_path / "none"))])
    assert rc == 0 and calls == [[256]]
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["lanes_list"] == [8, 256]
    small = [r for r in res["workloads"] if r["name"] == "small-g0-n256"][0]
    assert small["lanes"]["256"]["rtl_cycles"] == 1000
    if res["cycle_model"]["available"]:
        f = small["lanes"]["256"]
        assert f["model_rel_err"] == pytest.approx(f["engine_cycles"] / 1000 - 1)


# --- the GPU script's pattern, checked on the CPU (no GPU needed) -------------------------------

def _gpu_module():
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("gpu_baseline", REPO / "bench" / "gpu_baseline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("n, r, dil, g", [(300, 10, 1, 0), (300, 10, 2, 5), (257, 7, 3, 4),
                                          (64, 100, 1, 3)])
def test_gpu_mask_and_pairs_match_the_pattern(n, r, dil, g):
    gb = _gpu_module()
    pat = HybridPattern(n, r, r, dil, tuple(range(g)))
    assert np.array_equal(gb.dense_mask(n, r, dil, g).numpy(), pat.mask())
    assert gb.count_pairs(n, r, dil, g) == pat.pairs()


def test_gpu_script_runs_the_bench_workload_table():
    gb = _gpu_module()
    assert gb.KINDS == bench.KINDS and gb.N_LIST == bench.N_DEFAULT and gb.D == bench.HEAD_DIM


def test_gpu_script_without_gpu_exits_cleanly(capsys, monkeypatch):
    gb = _gpu_module()
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gb.main([]) == 0
    assert "no GPU figures" in capsys.readouterr().out


def _empty(folder):
    """A board-build folder with no builds in it."""
    folder.mkdir(exist_ok=True)
    return folder


# --- the UART host link -------------------------------------------------------------------------

class FakeSerial:
    """A stand-in for ``serial.Serial`` with a board behind it: it parses every request frame
    the driver writes and answers as the board does (IDENTIFY with the engine, an echo for the
    writes and START, READ_STATUS BUSY ``busy_polls`` times and then DONE, the cycles, zero
    output rows), counting the bytes written to it and read from it."""

    busy_polls = 0

    def __init__(self, port, baud, timeout=None, write_timeout=None):
        from swattn.sw.spec import protocol as pr
        self.pr = pr
        self.pending = bytearray()  # written, not yet parsed
        self.out = bytearray()  # replies not yet read
        self.written = self.read_bytes = self.frames = 0
        self.polls = 0

    def _reply(self, cmd, addr, count):
        from swattn.fpga.boards import BOARDS
        from swattn.sw.spec import regs
        pr, params = self.pr, BOARDS["ulx3s-85f"].params
        payload = b""
        if cmd == pr.Cmd.IDENTIFY:
            payload = pr.pack(pr.IDENTITY_LAYOUT, pr.identity_fields(params, 2048, 100_000_000,
                                                                     "0.1.0"))
        elif cmd == pr.Cmd.READ_STATUS:
            self.polls += 1
            state = regs.State.DONE if self.polls > self.busy_polls else regs.State.BUSY
            payload = pr.pack(pr.STATUS_REPLY_LAYOUT, {"engine": {"state": state, "error": 0},
                                                       "config_loaded": 1, "pad": 0,
                                                       "rows_out": 0})
        elif cmd == pr.Cmd.READ_CYCLES:
            payload = (1234).to_bytes(4, "little")
        elif cmd == pr.Cmd.READ_OUT:
            payload = bytes(count * params.head_dim)
        return pr.encode_frame(cmd, addr, count, payload, sync=pr.REPLY_SYNC)

    def write(self, data):
        pr = self.pr
        self.written += len(data)
        self.pending += data
        while len(self.pending) >= 1 + pr.HEADER_BYTES + 2:
            assert self.pending[0] == pr.REQ_SYNC
            h = pr.decode_header(bytes(self.pending[1:1 + pr.HEADER_BYTES]))
            size = 1 + pr.HEADER_BYTES + 2 + (h["length"] + 2 if h["length"] else 0)
            if len(self.pending) < size:
                break
            del self.pending[:size]
            self.frames += 1
            self.out += self._reply(h["cmd"], h["addr"], h["count"])

    def flush(self):
        pass

    def read(self, n):
        got = bytes(self.out[:n])
        del self.out[:n]
        self.read_bytes += len(got)
        return got

    def reset_input_buffer(self):
        self.out.clear()

    def close(self):
        pass


@pytest.mark.parametrize("n, busy_polls", [(150, 0), (64, 2), (1, 0)])
def test_link_bytes_are_the_drivers_bytes_on_a_serial_port(n, busy_polls, monkeypatch):
    """The bytes the host driver writes to and reads from a serial port for one job (after
    IDENTIFY) are :func:`job_link_bytes`'s, with partial frames (150 rows: 64 + 64 + 22) and
    status polls while the engine is busy."""
    import serial

    from swattn.fpga.boards import BOARDS
    from swattn.sw.bench.link import job_link_bytes
    from swattn.sw.driver import Board, SerialLink
    from swattn.sw.spec.numerics import SoftmaxConfig

    monkeypatch.setattr(serial, "Serial", FakeSerial)
    monkeypatch.setattr(FakeSerial, "busy_polls", busy_polls)
    board = Board(SerialLink("fake", 3_000_000))
    port = board.link._s
    params = board.identify().params
    assert params == BOARDS["ulx3s-85f"].params
    port.written = port.read_bytes = port.frames = 0
    rng = np.random.default_rng(1)
    q, k, v = (rng.integers(-128, 128, (n, params.head_dim)).astype(np.int8) for _ in range(3))
    pattern = HybridPattern(n, 4, 4, 1, (0,) if n > 1 else ())
    out, cycles = board.attention(q, k, v, pattern, SoftmaxConfig.from_multiplier(0.001, 2))
    assert cycles == 1234 and out.shape == (n, params.head_dim)
    got = job_link_bytes(params, n, status_polls=busy_polls + 1)
    assert (got["sent"], got["received"]) == (port.written, port.read_bytes)
    assert got["transactions"] == port.frames
    assert got["row_bytes"] == 4 * n * params.head_dim


def test_keyset_heads_run_on_their_engine_and_salo_holds_their_keys():
    """The vertical-slash and ViL heads fit the engines they are timed on, SALO's pattern
    holds every key of them (and so at least as many pairs), the ViL head is the 15 x 15
    window on the 56 x 56 image by its definition, and the report has their section."""
    import numpy as np

    from swattn.sw.bench import keysets
    from swattn.sw.bench.report import _keysets

    form = keysets.vertical_slash(512)
    for lanes in keysets.LANES:
        form.check(keysets.engine_for(form, 64, lanes).limits())
    want = form.keyset().mask()
    salo_mask = keysets.salo_pattern(form).mask()
    assert not (want & ~salo_mask).any()
    assert salo_mask.sum() > want.sum()
    vil = keysets.vil_stage1()
    for lanes in keysets.LANES:
        vil.check(keysets.engine_for(vil, 64, lanes).limits())
    i, j = np.divmod(np.arange(56 * 56), 56)
    by_def = (np.abs(i[:, None] - i[None, :]) <= 7) & (np.abs(j[:, None] - j[None, :]) <= 7)
    assert np.array_equal(vil.keyset().mask(), by_def)
    assert not (by_def & ~keysets.salo_pattern(vil).mask()).any()
    rows = keysets.keyset_figures()
    assert {r["lanes"] for r in rows} == set(keysets.LANES)
    assert {r["head"] for r in rows} == {"vertical-slash-n4096", "vil-56x56-k15"}
    for r in rows:
        assert 0 < r["salo_utilisation"] < r["engine_utilisation"] <= 1
    lines = []
    _keysets({"keysets": rows}, lines.append)
    text = "\n".join(lines)
    assert "Bands, key-only columns and the 2D grid" in text and "vil-56x56-k15" in text
    assert "| 56x7 |" in text


def test_an_int8_multiplier_of_logic_is_what_yosys_makes_of_it():
    """The LUT4 cost of a logic int8 product is that of the synthesised multiplier: its LUT4s
    (and two per ECP5 carry cell) and no hard multiplier; the iCE40's SB_MAC16 counts two
    int8 products, the ECP5's MULT18X18D one; an unknown family is refused."""
    from swattn.fpga import multipliers as mu
    from swattn.fpga.boards import BOARDS

    for fam, lut_cells in (("ecp5", {"LUT4": 1, "CCU2C": 2}), ("ice40", {"SB_LUT4": 1})):
        cost = mu.lut_cost(fam)
        cells = cost["cells"]
        assert mu.DSP_CELL[fam] not in cells and "SB_MAC16" not in cells
        assert cost["lut4"] == sum(n * cells.get(c, 0) for c, n in lut_cells.items())
        assert 40 <= cost["lut4"] <= 1000, cost  # tens to hundreds: a multiplier, not a stub
        flops = cells.get("TRELLIS_FF", 0) + cells.get("SB_DFF", 0)
        assert flops == 16  # the registered 16-bit product
    ice = mu.chip_peak(BOARDS["icebreaker"], 36.0, 100)
    assert (ice["dsp_products"], ice["lut_products"]) == (16, 52)
    ecp = mu.chip_peak(BOARDS["ulx3s-85f"], 100.0, 300)
    assert (ecp["dsp_products"], ecp["lut_products"]) == (156, 278)
    assert ecp["peak_gmac_s"] == pytest.approx((156 + 278) * 0.1)
    with pytest.raises(ValueError, match="family 'xc7'"):
        mu.lut_cost("xc7")
