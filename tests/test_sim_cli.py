"""``swattn sim`` from the command line: bit-exactness, cycles and utilisation, JSON, errors."""

import json
import os
import subprocess
import sys

import pytest

from swattn.sw.spec.pattern import HybridPattern

# the u1 engine of test_engine_sim: its simulator build is shared
ENGINE = ["--head-dim", "32", "--lanes", "16", "--max-radius", "12", "--max-globals", "3",
          "--max-dilation", "3", "--seq-width", "10"]


def _swattn(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "swattn.sw.cli", "sim", *ENGINE, *argv],
                          capture_output=True, text=True, env=env)


def test_one_job_and_random_jobs(tmp_path):
    out = tmp_path / "one.json"
    res = _swattn("--n", "40", "--radius", "5", "--globals", "0,39", "--json", str(out))
    assert res.returncode == 0, res.stderr
    job = json.loads(out.read_text())["jobs"][0]
    pat = HybridPattern(40, 5, 5, 1, (0, 39))
    assert job["bit_exact"] and job["mismatches"] == 0
    assert job["ideal_cycles"] == 2 * 32 * pat.pairs() / 16
    assert job["cycles"] >= job["ideal_cycles"]
    assert job["utilisation"] == pytest.approx(job["ideal_cycles"] / job["cycles"])
    assert "utilisation" in res.stdout

    out = tmp_path / "rand.json"
    res = _swattn("--random", "3", "--seed", "77", "--json", str(out))
    assert res.returncode == 0, res.stderr
    jobs = json.loads(out.read_text())["jobs"]
    assert [j["seed"] for j in jobs] == [77, 78, 79]
    assert all(j["bit_exact"] for j in jobs)


@pytest.mark.parametrize("argv, needle", [
    (["--n-globals", "4"], "--n-globals = 4"),
    (["--radius", "13"], "allowed reach 0..12"),
    (["--n", "0"], "n = 0"),
    (["--globals", "3,x"], "--globals"),
    (["--random", "0"], "--random = 0"),
])
def test_bad_options_one_line(argv, needle):
    res = _swattn(*argv)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_missing_icarus_is_one_line():
    # a PATH with the interpreter's folder only: no iverilog, whether or not it is installed
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    res = _swattn("--sim", "icarus", "--n", "8", "--radius", "4", env=env)
    assert res.returncode == 2 and "iverilog not found" in res.stderr
    assert "Traceback" not in res.stderr


def test_verilator_make_flags(monkeypatch):
    """Verilator's Makefile gets the PCH include flag, -O1 for the per-cycle code and ccache
    where one is on PATH, unless SWATTN_CCACHE=0."""
    import shutil

    from swattn.sim import runner

    monkeypatch.delenv("SWATTN_CCACHE", raising=False)
    flags = runner.verilator_makeflags().split()
    assert "CFG_CXXFLAGS_PCH_I=-include" in flags and "OPT_FAST=-O1" in flags
    assert ("OBJCACHE=ccache" in flags) == (shutil.which("ccache") is not None)
    monkeypatch.setenv("SWATTN_CCACHE", "0")
    assert "OBJCACHE=ccache" not in runner.verilator_makeflags().split()
