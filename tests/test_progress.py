"""Progress of the long steps (swattn.sw.progress and its users): a line within the interval
while a step runs, silence for short steps, the live bar on a terminal, the Verilator build's
and the simulation batch's reports (with fake simulators), the golden model and Verilog
generation through the CLI, the Makefile's install on a fresh clone and the slow-test lines of
tests/conftest.py."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from swattn.sw import progress
from swattn.sw.progress import Progress

ROOT = Path(__file__).resolve().parent.parent


class TimedStream(io.StringIO):
    """A text stream that records when each line was written."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def write(self, text):
        self.times.extend(time.monotonic() for _ in range(text.count("\n")))
        return super().write(text)

    def isatty(self):
        return False

    def lines(self):
        return self.getvalue().splitlines()


def test_a_long_step_prints_a_line_within_each_interval():
    out = TimedStream()
    t0 = time.monotonic()
    with Progress("fake step", every=0.2, stream=out):
        time.sleep(1.1)
    lines = out.lines()
    assert len(lines) >= 4, lines
    assert all(line.startswith("fake step: ") for line in lines)
    assert "elapsed" in lines[0] and lines[-1].startswith("fake step: done in")
    gaps = np.diff([t0, *out.times])
    assert gaps.max() < 0.2 + 0.25, (gaps, lines)  # the interval and one tick of slack


def test_a_short_step_prints_nothing():
    out = TimedStream()
    with Progress("quick step", total=3, unit="jobs", every=0.5, stream=out) as p:
        p.update(advance=3)
    assert out.getvalue() == ""


def test_an_announced_step_says_what_it_does_at_once():
    out = TimedStream()
    t0 = time.monotonic()
    with Progress("building it", announce=True, note="first run only", every=5, stream=out):
        time.sleep(0.05)
    lines = out.lines()
    assert lines[0] == "building it (first run only)..."
    assert out.times[0] - t0 < 0.05
    assert lines[1].startswith("building it: done in")


def test_counted_lines_give_done_total_rate_and_time_left():
    out = TimedStream()
    with Progress("simulating 20 jobs", total=20, unit="jobs", every=0.25, stream=out) as p:
        for _ in range(10):
            time.sleep(0.06)
            p.update(advance=1, detail="job x")
    lines = out.lines()
    middle = [ln for ln in lines if "/20 jobs," in ln]
    assert middle, lines
    last = middle[-1]
    assert "jobs/s" in last and "left" in last and "(job x)" in last
    assert lines[-1] == "simulating 20 jobs: 10/20 jobs in 1 s"


def test_the_rate_leaves_out_a_slow_start():
    out = TimedStream()
    with Progress("rows", total=1000, unit="rows", every=10, stream=out) as p:
        time.sleep(0.6)  # loading: no work done
        for i in range(1, 6):
            time.sleep(0.1)
            p.update(100 * i)
            time.sleep(0.2)  # (a sample per change: the thread ticks every 0.25 s)
        rate = p.rate()
    # 500 rows in about 1.5 s of work, not 2.1 s counted from the start
    assert rate is not None and rate > 500 / 1.9


def test_a_live_terminal_gets_a_bar_and_a_final_line():
    out = io.StringIO()
    with Progress("fake", total=4, unit="jobs", announce=True, stream=out, live=True) as p:
        for _ in range(4):
            time.sleep(0.15)
            p.update(advance=1)
    text = out.getvalue()
    assert "━" in text and "fake: 3/4 jobs" in text
    # (0.6 s of steps: "in 1 s", more on a loaded machine)
    assert re.search(r"fake: 4/4 jobs in \d+ s$", text.rstrip()), text[-200:]


def test_quiet_and_the_environment_turn_it_off(monkeypatch):
    out = TimedStream()
    with Progress("x", announce=True, every=0.05, stream=out, quiet=True):
        time.sleep(0.2)
    monkeypatch.setenv("SWATTN_PROGRESS", "0")
    with Progress("y", announce=True, every=0.05, stream=out):
        time.sleep(0.2)
    assert out.getvalue() == ""
    monkeypatch.setenv("SWATTN_PROGRESS_INTERVAL", "0.5")
    assert progress.interval() == 0.5
    assert progress.DEFAULT_INTERVAL < 10  # a log is never quiet for 10 s


def test_a_failing_poll_or_step_does_not_hide_the_error():
    out = TimedStream()

    def poll(p):
        raise RuntimeError("unreadable")

    with pytest.raises(KeyError):
        with Progress("step", announce=True, poll=poll, every=0.05, stream=out):
            time.sleep(0.15)
            raise KeyError("boom")
    assert out.lines()[-1].startswith("step: stopped after")


def test_the_helper_imports_nothing_of_swattn():
    code = ("import sys, swattn.sw.progress\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('swattn'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["swattn", "swattn.sw", "swattn.sw.progress"]


# ------------------------------------------------------------------------ the golden model

def test_golden_attention_reports_rows_and_gives_the_same_output():
    from swattn.sw import golden
    from swattn.sw.spec.numerics import SoftmaxConfig
    from swattn.sw.spec.pattern import HybridPattern

    n, d = 1000, 32
    rng = np.random.default_rng(5)
    q, k, v = (rng.integers(-128, 128, (n, d)).astype(np.int8) for _ in range(3))
    pat = HybridPattern(n, 8, 3, 2, (7, 500))
    cfg = SoftmaxConfig(40000, 18, 1)
    seen = []
    out = golden.attention(q, k, v, pat, cfg, on_rows=seen.append)
    assert np.array_equal(out, golden.attention(q, k, v, pat, cfg))
    assert seen == sorted(seen) and seen[-1] == n and len(seen) == -(-n // golden.BLOCK)


def test_golden_cli_prints_progress_on_stderr_and_json_on_stdout():
    env = dict(os.environ, SWATTN_PROGRESS_INTERVAL="0.1")
    r = subprocess.run([sys.executable, "-m", "swattn.sw.cli", "golden", "--n", "60000",
                        "--d", "32", "--json", "-"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pattern"]["n"] == 60000
    lines = r.stderr.splitlines()
    assert any(ln.startswith("golden model, n = 60,000, d = 32: ") and "/60,000 rows" in ln
               for ln in lines), r.stderr
    assert lines[-1].startswith("golden model, n = 60,000, d = 32: 60,000/60,000 rows in")


# ---------------------------------------------------------------- Verilog generation (CLI)

def test_generate_cli_announces_and_ticks(monkeypatch, capsys, tmp_path):
    from swattn.hw import generate as hw_generate
    from swattn.sw import cli

    def slow_generate(params, out, name, **options):
        time.sleep(0.5)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.v").write_text("module m; endmodule\n")
        (out / f"{name}.json").write_text("{}\n")
        return out / f"{name}.v", out / f"{name}.json"

    monkeypatch.setattr(hw_generate, "generate", slow_generate)
    monkeypatch.setenv("SWATTN_PROGRESS_INTERVAL", "0.1")
    assert cli.main(["generate", "--lanes", "64", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err.splitlines()
    what = "generating the Verilog of the 64-lane engine, d = 64"
    assert err[0].startswith(what) and err[0].endswith("...")
    assert any(ln.startswith(what) and "elapsed" in ln for ln in err[1:-1]), err
    assert err[-1].startswith(what) and "done in" in err[-1]


# -------------------------------------------------- the simulator build and batch (faked)

class FakeRunner:
    """cocotb's runner without a simulator: a Verilator build that writes its makefiles and
    object files over 0.6 s, and a test run that writes a result per job, like the testbench."""

    def build(self, sources, hdl_toplevel, build_dir, log_file, **kw):
        bdir = Path(build_dir)
        if (bdir / hdl_toplevel).exists():
            return  # built: make has nothing to do
        Path(log_file).write_text("verilating\n")
        time.sleep(0.15)
        (bdir / "Vtop.mk").write_text("VM_USER_CLASSES = \\\n  verilator \\\n\n")
        (bdir / "Vtop_classes.mk").write_text(
            "VM_PARALLEL_BUILDS = 1\nVM_CLASSES_FAST += \\\n  Vtop \\\n  Vtop__1 \\\n\n"
            "VM_GLOBAL_FAST += \\\n  verilated \\\n\n")
        for obj in ("verilated", "Vtop", "Vtop__1", "verilator"):
            time.sleep(0.15)
            (bdir / f"{obj}.o").write_text("")
        (bdir / hdl_toplevel).write_text("")

    def test(self, build_dir, extra_env, **kw):
        jobs = json.loads(Path(extra_env["SWATTN_JOBS"]).read_text())["jobs"]
        results = []
        for i, job in enumerate(jobs):
            for cycle in (1000, 2000):
                Path(extra_env["SWATTN_PROGRESS_FILE"]).write_text(f"{i} {cycle}\n")
                time.sleep(0.15)
            results.append({"seed": job["seed"], "ok": True})
            Path(extra_env["SWATTN_RESULTS"]).write_text(json.dumps(results))


@pytest.fixture
def fake_simulator(monkeypatch):
    import cocotb_tools.runner

    from swattn.hw import generate as hw_generate

    def fake_generate(params, out, name, **options):
        (Path(out) / f"{name}.v").write_text("module m; endmodule\n")

    monkeypatch.setattr(cocotb_tools.runner, "get_runner", lambda sim: FakeRunner())
    monkeypatch.setattr(hw_generate, "generate", fake_generate)
    monkeypatch.setenv("SWATTN_PROGRESS_INTERVAL", "0.1")


def test_the_first_verilator_build_says_what_it_does(fake_simulator, capsys, tmp_path):
    from swattn.sim import runner
    from swattn.sw.spec.engine_params import EngineParams

    params = EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3)
    runner.build(params, "verilator", root=tmp_path)
    err = capsys.readouterr().err.splitlines()
    what = "building the Verilator model of the 16-lane engine, d = 32"
    assert f"{what} (first run only, a minute or more)..." in err
    phases = [ln for ln in err if ln.startswith(what + ": ") and "elapsed" in ln]
    assert any("(verilating)" in ln for ln in phases), err
    assert any("(compiling C++: " in ln and " of 4 files)" in ln for ln in phases), err
    assert err[-1].startswith(f"{what}: done in")
    runner.build(params, "verilator", root=tmp_path)  # built: nothing to say
    assert capsys.readouterr().err == ""


def test_a_simulation_batch_reports_jobs_rate_and_the_running_job(fake_simulator, capsys,
                                                                   tmp_path):
    from swattn.sim import runner
    from swattn.sw.spec.engine_params import EngineParams
    from swattn.sw.spec.numerics import SoftmaxConfig
    from swattn.sw.spec.pattern import HybridPattern

    params = EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3)
    runner.build(params, "verilator", root=tmp_path)
    capsys.readouterr()
    jobs = [runner.job_to_json(HybridPattern(64, 4, 4), SoftmaxConfig(40000, 18, 0), s)
            for s in range(3)]
    results = runner.run_jobs(params, jobs, root=tmp_path)
    assert [r["seed"] for r in results] == [0, 1, 2]
    err = capsys.readouterr().err.splitlines()
    ticks = [ln for ln in err if ln.startswith("simulating 3 jobs (verilator): ")]
    assert any("jobs/s" in ln and "left" in ln for ln in ticks), err
    assert any("(job 1: cycle 1,000 of about " in ln for ln in err), err
    assert err[-1].startswith("simulating 3 jobs (verilator): 3/3 jobs in")


# ------------------------------------------------------------------------------ Makefile

@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_on_a_fresh_clone_runs_no_missing_python(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    r = subprocess.run(["make", "-n", "install"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ".venv/bin/python" not in r.stderr, r.stderr
    assert "No such file" not in r.stderr, r.stderr
    pip = [ln for ln in r.stdout.splitlines() if "pip install" in ln]
    assert pip and not any(" -q" in ln for ln in pip), r.stdout  # pip's progress is shown
    assert sum("==>" in ln for ln in r.stdout.splitlines()) >= 4  # a line per step


# ------------------------------------------------------------------ slow tests (conftest)

@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_slow_test_is_named_while_it_runs(tmp_path, workers):
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_fake.py").write_text(
        "import time\n\n"
        "def test_fast():\n    pass\n\n"
        "def test_slow():\n    time.sleep(1.5)\n\n"
        "def test_fast_too():\n    pass\n")
    env = dict(os.environ, SWATTN_SLOW_TEST_AFTER="0.5", SWATTN_SLOW_TEST_EVERY="0.5")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-o", "addopts=", *workers, str(tmp_path)], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    named = [ln for ln in r.stdout.splitlines() if ln.startswith("still running: ")]
    assert named and all("test_fake.py::test_slow (" in ln for ln in named), r.stdout
    assert not any("test_fast" in ln for ln in named)


# ------------------------------------------------------------------ the order of test files

def test_long_files_are_collected_first_in_their_order(tmp_path):
    """conftest.LONG_FIRST names test files that exist, and collection puts them first."""
    import conftest

    names = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert set(conftest.LONG_FIRST) <= names, set(conftest.LONG_FIRST) - names
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    for name in ("test_aaa.py", conftest.LONG_FIRST[1], conftest.LONG_FIRST[0]):
        (tmp_path / name).write_text("def test_one():\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    files = [ln.split("::")[0].rsplit("/", 1)[-1] for ln in r.stdout.splitlines() if "::" in ln]
    assert files == [conftest.LONG_FIRST[0], conftest.LONG_FIRST[1], "test_aaa.py"], r.stdout
