"""Every ``swattn`` command line in README.md runs as typed, or in a short variant where the full
one takes minutes (the same subcommand and options at smaller sizes), with the ``swattn`` that
``make demo`` installs. A README line that is not in :data:`RUNS` fails the first test, so the
README cannot grow a command that nothing runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SWATTN = str(Path(sys.executable).parent / "swattn")

#: the engine of the short ``sim`` variants: ``test_engine_sim``'s u1c4, whose Verilator build
#: under the checkout's build/sim (``{builds}``) the engine and sim CLI tests share
ENGINE = ["--head-dim", "32", "--lanes", "16", "--max-radius", "12", "--max-globals", "3",
          "--max-dilation", "3", "--seq-width", "10"]

#: README command (as typed, without its comment) -> how this test runs it: a short variant
#: (argv after ``swattn``, ``{tmp}`` a scratch folder of its own, ``{builds}`` the checkout's
#: simulator builds) and the exit status it must give; or the
#: test that runs its short variant already (``tests/<file>::<test>``), named so that it exists
RUNS = {
    "swattn demo": "tests/test_demo.py::test_demo_short_text",
    "swattn generate --head-dim 64 --lanes 64 --max-radius 128 --max-globals 8 --out "
    "build/verilog": (["generate", "--head-dim", "32", "--lanes", "16", "--max-radius", "8",
                       "--max-globals", "2", "--out", "{tmp}/verilog"], 0),
    # as typed (a few seconds), from the test's scratch folder
    "swattn generate --bus axi --fusesoc --out build/ip": (
        ["generate", "--bus", "axi", "--fusesoc", "--out", "build/ip"], 0),
    "swattn sim --n 1024 --radius 128 --n-globals 8": (
        ["sim", *ENGINE, "--n", "48", "--radius", "8", "--n-globals", "2", "--build-dir",
         "{builds}"], 0),
    "swattn sim --random 20 --seed 7": (
        ["sim", *ENGINE, "--random", "3", "--seed", "7", "--build-dir", "{builds}"], 0),
    "swattn golden --n 4096 --radius 256 --n-globals 16": (
        ["golden", "--n", "4096", "--radius", "256", "--n-globals", "16"], 0),
    "swattn eval": (["eval", "--texts", "1", "--calibration", "1", "--max-tokens", "128",
                     "--also-tokens", "160", "--predictors", "longformer", "--budgets", "32",
                     "--no-plots", "--quiet"], 0),
    "swattn bench --json build/bench.json": (
        ["bench", "--json", "{tmp}/bench.json", "--out", "{tmp}/bench", "--n", "1024",
         "--lanes", "64", "--cpu-max-n", "0", "--no-minilm"], 0),
    "swattn build --board icebreaker": "tests/test_build.py::test_synthesis_of_the_icebreaker_board",
    "swattn build --list": (["build", "--list"], 0),
    "swattn explore --board ulx3s-85f --lanes 64 128 256":
        "tests/test_explore.py::test_explore_places_each_candidate_at_each_seed_on_a_local_cluster",
    # no board on the test machine: a clear refusal, no traceback
    "swattn flash --board ulx3s-85f": (["flash", "--board", "ulx3s-85f"], 2),
    "swattn run --port /dev/ttyUSB1 --board ulx3s-85f": (
        ["run", "--port", "/dev/ttyUSB1", "--board", "ulx3s-85f"], 2),
}


def readme_commands() -> list[str]:
    """The ``swattn`` command lines of the README's code blocks, without their comments."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```\n(.*?)```", text, re.S):
        for line in block.splitlines():
            cmd = line.split("#", 1)[0].strip()
            if cmd.startswith("swattn "):
                lines.append(" ".join(cmd.split()))
    return lines


def test_every_readme_command_is_run_here():
    cmds = readme_commands()
    assert len(cmds) >= 8
    assert [c for c in cmds if c not in RUNS] == [], "add the new README command to RUNS"
    assert [c for c in RUNS if c not in cmds] == [], "a command left the README: drop it"
    for how in RUNS.values():
        if isinstance(how, str):
            path, name = how.split("::")
            assert f"def {name}(" in (ROOT / path).read_text(), how


@pytest.mark.parametrize("line", [c for c, how in RUNS.items() if not isinstance(how, str)])
def test_readme_command_runs(line, tmp_path):
    argv, status = RUNS[line]
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{builds}", str(ROOT / "build" / "sim"))
            for a in argv]
    # (from a scratch folder: no build/ of this checkout, as on a fresh clone)
    r = subprocess.run([SWATTN, *argv], capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == status, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    if status:
        (last,) = [ln for ln in r.stderr.splitlines() if ln.startswith("swattn: error:")]
        assert len(last) > len("swattn: error: ") + 10
