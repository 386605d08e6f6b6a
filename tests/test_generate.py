"""``swattn generate``: Verilog + sidecar, lint-clean under ``verilator --lint-only -Wall`` with
only the listed waivers, and clear errors for bad parameters."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from swattn.hw.generate import LINT_WAIVERS, generate, write_waivers
from swattn.sim.runner import verilator_env
from swattn.sw.spec import regs
from swattn.sw.spec.engine_params import EngineParams

SIZES = [
    EngineParams(head_dim=32, lanes=8, max_radius=8, max_globals=2, max_dilation=2, seq_width=8),
    EngineParams(head_dim=64, lanes=256, max_radius=16, max_globals=4, max_dilation=2,
                 seq_width=12),
    # the serial engine (the iCE40 board's)
    EngineParams(head_dim=32, lanes=4, max_radius=16, max_globals=2, max_dilation=2,
                 seq_width=10),
]


def _lint(files, tmp_path):
    env = {**os.environ, **verilator_env()}
    exe = shutil.which("verilator", path=env.get("PATH"))
    assert exe, "verilator not installed (make install brings the PyPI wheel)"
    return subprocess.run([exe, "--lint-only", "-Wall", "--Mdir", str(tmp_path / "obj"),
                           *map(str, files)], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("params", SIZES, ids=lambda p: f"d{p.head_dim}_l{p.lanes}")
def test_generated_verilog_lints_clean(params, tmp_path):
    vpath, jpath = generate(params, tmp_path, "eng")
    res = _lint([tmp_path / "eng.vlt", vpath], tmp_path)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]
    side = json.loads(jpath.read_text())
    assert side["params"]["lanes"] == params.lanes
    assert side["params"]["units"] * side["params"]["lane_width"] * 2 <= params.lanes
    assert side["engine"] == ("serial" if params.lanes == 4 else "stream")
    if params.lanes == 4:
        assert side["ports"]["k"] == {"word_bits": 16, "row_words": params.head_dim // 2,
                                      "address": "row * row_words + word", "read_latency": 1}
    # the sidecar's register map places each field where pack_config puts it
    bits = regs.pack_config(params, n=201, left=3, right=5, dilation=2, n_globals=1,
                            globals=[17], mult_mant=4242, mult_shift=9, out_shift=3)
    cfg = side["registers"]["config"]
    for name, want in (("n", 201), ("left", 3), ("right", 5), ("dilation", 2),
                       ("n_globals", 1), ("mult_mant", 4242), ("mult_shift", 9),
                       ("out_shift", 3)):
        f = cfg[name]
        assert (bits >> f["offset"]) & ((1 << f["width"]) - 1) == want, name
    g = cfg["globals"]
    assert (bits >> g["offset"]) & 0xFFFFFFFF == 17


def test_waivers_are_narrow(tmp_path):
    """A real truncation (not Amaranth's `!x`) still fails the lint."""
    v = tmp_path / "bad.v"
    v.write_text("module bad(input [7:0] a, output [3:0] y);\n  assign y = a;\nendmodule\n")
    res = _lint([write_waivers(tmp_path / "w.vlt"), v], tmp_path)
    assert res.returncode != 0 and "WIDTHTRUNC" in res.stderr
    assert {r for r, _, _ in LINT_WAIVERS} >= {"WIDTHEXPAND", "WIDTHTRUNC"}
    assert all(reason for _, _, reason in LINT_WAIVERS)


@pytest.mark.parametrize("argv, needle", [
    (["--head-dim", "48"], "--head-dim = 48"),
    (["--lanes", "12"], "--lanes = 12"),
    (["--max-globals", "65"], "--max-globals = 65"),
    (["--dot-pipeline", "6"], "--dot-pipeline = 6 is out of range: allowed 0..5"),
    (["--pv-pipeline", "6"], "--pv-pipeline = 6 is out of range: allowed 0..5"),
    (["--pv-pipeline", "-1"], "--pv-pipeline = -1 is out of range: allowed 0..5"),
])
def test_generate_bad_parameters(argv, needle, tmp_path):
    res = subprocess.run([sys.executable, "-m", "swattn.sw.cli", "generate", "--out",
                          str(tmp_path), *argv], capture_output=True, text=True)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr, res.stderr
