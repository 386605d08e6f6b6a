"""``swattn demo`` end to end on a short text (the CI run of ``make demo``), and its errors."""

import json
import os
import subprocess
import sys

import pytest

from swattn.sw.demo import engine_params


def _demo(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "swattn.sw.cli", "demo", *argv],
                          capture_output=True, text=True, env=env)


def test_demo_short_text(tmp_path):
    res = _demo("--tokens", "128", "--head", "0", "--head", "7", "--predictor", "dsa",
                "--out", str(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rep = json.loads((tmp_path / "report.json").read_text())
    assert [h["head"] for h in rep["heads"]] == [0, 7]
    assert all(h["bit_exact"] for h in rep["heads"])
    limits = engine_params().limits()
    for h in rep["heads"]:
        assert h["left"] * h["dilation"] <= limits.max_radius
        assert len(h["globals"]) <= limits.max_globals
        assert h["cycles"] >= h["ideal_cycles"] > 0
        # the demo's cycle model agrees with the RTL within 2% as well
        assert abs(h["predicted_cycles"] / h["cycles"] - 1) <= 0.02
    assert 0.0 < rep["embedding_cosine"] <= 1.0 + 1e-9
    assert (tmp_path / "attention_l0_h0.png").stat().st_size > 10_000
    assert (tmp_path / "verilog" / "swattn_engine.v").is_file()
    assert "bit-exact heads: 2/2" in res.stdout and "swattn build --board" in res.stdout


@pytest.mark.parametrize("argv, needle", [
    (["--predictor", "nope"], "unknown predictor 'nope'"),
    (["--layer", "6"], "--layer = 6"),
    (["--head", "12"], "--head = 12"),
    (["--tokens", "600"], "--tokens = 600"),
])
def test_demo_bad_options(argv, needle, tmp_path):
    res = _demo(*argv, "--out", str(tmp_path))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_demo_text_too_long(tmp_path):
    words = " ".join(f"word{i}" for i in range(700))
    f = tmp_path / "long.txt"
    f.write_text(words)
    res = _demo("--text", str(f), "--out", str(tmp_path))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "tokens" in lines[0] and "512" in lines[0]


def test_demo_missing_simulator(tmp_path):
    # a PATH with the interpreter's folder only: no iverilog
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    res = _demo("--sim", "icarus", "--out", str(tmp_path), env=env)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "iverilog not found" in lines[0], res.stderr
