"""``swattn golden``: JSON output, the summary, and one-line errors without a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swattn.sw import cli

SWATTN = str(Path(sys.executable).with_name("swattn"))


def swattn(*args):
    return subprocess.run([SWATTN, *args], capture_output=True, text=True, timeout=120)


def brute_pairs(n, left, right, dilation, globals_):
    g = set(globals_)
    return sum(1 for i in range(n) for j in range(n)
               if i in g or j in g or ((j - i) % dilation == 0
                                       and -left <= (j - i) // dilation <= right))


def test_json_to_stdout():
    r = swattn("golden", "--n", "200", "--d", "32", "--left", "4", "--right", "0",
               "--dilation", "2", "--n-globals", "2", "--out-shift", "1", "--seed", "3",
               "--json", "-")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert {"pattern", "head_dim", "seed", "softmax", "scales", "pairs", "sparsity", "time_s",
            "output", "max_abs_error_lsb", "mean_abs_error_lsb"} <= set(res)
    pat = res["pattern"]
    assert (pat["n"], pat["left"], pat["right"], pat["dilation"]) == (200, 4, 0, 2)
    assert len(pat["globals"]) == 2 and len(set(pat["globals"])) == 2
    assert all(0 <= x < 200 for x in pat["globals"])
    assert res["head_dim"] == 32 and res["seed"] == 3
    assert res["pairs"] == brute_pairs(200, 4, 0, 2, pat["globals"])
    assert res["sparsity"] == pytest.approx(1 - res["pairs"] / 200**2)
    sm = res["softmax"]
    assert {"mult_mant", "mult_shift", "out_shift", "log2_multiplier", "from_scales"} <= set(sm)
    assert sm["out_shift"] == 1 and sm["from_scales"] is True
    assert sm["log2_multiplier"] == pytest.approx(sm["mult_mant"] / 2 ** (sm["mult_shift"] + 8))
    out = res["output"]
    assert -128 <= out["min"] <= out["max"] <= 127 and out["std"] >= 0
    assert 0 <= out["saturated_fraction"] <= 1
    assert res["scales"]["out"] == pytest.approx(res["scales"]["v"] / 2)
    assert res["time_s"] > 0
    # rounding (0.5) plus the engine's exp and reciprocal errors: well under 2 LSB here
    assert 0 <= res["mean_abs_error_lsb"] <= res["max_abs_error_lsb"] < 2


def test_json_to_file_with_summary_and_no_reference_for_large_n(tmp_path):
    f = tmp_path / "g.json"
    r = swattn("golden", "--n", "5000", "--radius", "2", "--globals", "0,4999",
               "--mult-mant", "40000", "--mult-shift", "20", "--json", str(f))
    assert r.returncode == 0, r.stderr
    assert "swattn golden" in r.stdout and "pairs" in r.stdout
    res = json.loads(f.read_text())
    assert res["pattern"]["globals"] == [0, 4999]
    assert res["softmax"]["from_scales"] is False and res["softmax"]["mult_mant"] == 40000
    assert res["max_abs_error_lsb"] is None
    # counted here row by row: window keys united with the globals, global rows see all
    assert res["pairs"] == brute_pairs_fast(5000, 2, (0, 4999))


def brute_pairs_fast(n, r, globals_):
    g = set(globals_)
    total = 0
    for i in range(n):
        if i in g:
            total += n
            continue
        win = {j for j in range(i - r, i + r + 1) if 0 <= j < n}
        total += len(win | g)
    return total


@pytest.mark.parametrize("args, words", [
    (["--d", "48"], ["--d = 48", "32, 64, 128"]),
    (["--radius", "-1"], ["--radius = -1", "0 or more"]),
    (["--n", "16", "--globals", "3,3"], ["unique", "[3]"]),
])
def test_bad_value_is_one_line_without_traceback(args, words):
    r = swattn("golden", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("swattn: error:") and "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0]
    assert r.stdout == ""


@pytest.mark.parametrize("args, words", [
    (["--n", "0"], ["--n = 0", "1 or more"]),
    (["--dilation", "0"], ["--dilation = 0", "1 or more"]),
    (["--out-shift", "8"], ["--out-shift = 8", "0..7"]),
    (["--mult-mant", "5"], ["--mult-mant and --mult-shift"]),
    (["--mult-mant", "70000", "--mult-shift", "3"], ["--mult-mant = 70000", "0..65535"]),
    (["--mult-mant", "7", "--mult-shift", "64"], ["--mult-shift = 64", "0..63"]),
    (["--n", "20", "--n-globals", "21"], ["--n-globals = 21", "0..20"]),
    (["--n", "8", "--globals", "8"], ["--globals 8", "0..7"]),
    (["--globals", "1,x"], ["--globals", "'1,x'"]),
    (["--globals", "1", "--n-globals", "1"], ["--globals or --n-globals"]),
    (["--radius", "3", "--left", "2"], ["--radius or --left/--right"]),
    (["--n", "8", "--json", "/proc/nonexistent/g.json"], ["--json", "cannot write", "g.json"]),
])
def test_bad_values_in_process(args, words, capsys):
    assert cli.main(["golden", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("swattn: error:"), err
    for w in words:
        assert w in err[0], err[0]


def test_same_seed_same_result(capsys):
    args = ["golden", "--n", "64", "--radius", "3", "--n-globals", "3", "--seed", "9", "--json",
            "-"]
    outs = []
    for _ in range(2):
        assert cli.main(args) == 0
        res = json.loads(capsys.readouterr().out)
        del res["time_s"]
        outs.append(res)
    assert outs[0] == outs[1]


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["golden", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--n", "--d", "--radius", "--left", "--right", "--dilation", "--globals",
                "--n-globals", "--seed", "--mult-mant", "--mult-shift", "--out-shift", "--json"):
        assert opt in text
