"""Mistakes on the command line, every subcommand: each bad line below must end, before any work,
with exit status 2 and one line on stderr, ``swattn: error: ...``, that names the option as it
was typed (plus the words listed: the value, what is allowed) and no traceback.

Each line runs ``swattn`` as a subprocess with a time-out: a check that went missing lets the
command start its work (a simulation, a synthesis, minutes of evaluation), which the time-out
turns into a failure. Output folders default to a temporary folder (:data:`OUTPUT_OPTION`), so a
line that slips through writes nothing into the checkout.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SWATTN = str(Path(sys.executable).with_name("swattn"))

#: seconds a bad line may take; the checks come before any work, which takes far longer
TIMEOUT = 60

#: where each subcommand writes, pointed at a temporary folder unless the line gives it
OUTPUT_OPTION = {"generate": "--out", "sim": "--build-dir", "demo": "--out", "eval": "--out",
                 "build": "--out", "bench": "--out", "explore": "--out"}


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


#: (command line, the option as typed, more words the message must hold). Placeholders: {tmp} a
#: fresh folder, {file} a plain file, {dir} an empty folder, {empty} an empty file, {binary} a
#: binary file, {nul} UTF-8 with NUL bytes, {text} a short text, {long} a text of 700 tokens,
#: {pattern} a pattern's JSON (n 64, a band, a column), {grid} one with a grid, {badpattern} one
#: with a misspelt key.
BAD_LINES = [
    # --- the command itself
    ("", "COMMAND", ["allowed", "golden"]),
    ("foo", "'foo'", ["invalid choice", "golden"]),
    ("golden --bogus 3", "--bogus", ["swattn golden --help"]),
    # --- golden
    pytest.param("golden --n 100000000", "--n", ["100000000", "GiB", "this machine has"],
                 marks=pytest.mark.skipif(_meminfo_available() > 150 << 30,
                                          reason="this machine has the memory for it")),
    ("golden --n 10000000000", "--n", ["10000000000", "GiB", "available"]),
    ("golden --n 0", "--n", ["= 0", "1 or more"]),
    ("golden --n abc", "--n", ["'abc'", "not an integer", "1 or more"]),
    ("golden --n 1e3", "--n", ["'1e3'", "not an integer"]),
    ("golden --n", "--n", ["expected one argument"]),
    ("golden --seed -1", "--seed", ["-1", "0..4294967295"]),
    ("golden --radius -1", "--radius", ["-1", "0 or more"]),
    ("golden --left -2", "--left", ["-2", "0 or more"]),
    ("golden --right x", "--right", ["'x'", "0 or more"]),
    ("golden --dilation 0", "--dilation", ["= 0", "1 or more"]),
    ("golden --d 48", "--d", ["48", "32, 64, 128"]),
    ("golden --d x", "--d", ["'x'", "32, 64 or 128"]),
    ("golden --n 20 --n-globals 21", "--n-globals", ["21", "0..20"]),
    ("golden --n-globals -1", "--n-globals", ["-1", "0 or more"]),
    ("golden --n 8 --globals 8", "--globals", ["8", "0..7"]),
    ("golden --n 16 --globals 3,3", "--globals", ["unique", "[3]"]),
    ("golden --globals 1,x", "--globals", ["'1,x'", "integers"]),
    ("golden --mult-mant 70000 --mult-shift 3", "--mult-mant", ["70000", "0..65535"]),
    ("golden --mult-mant 7 --mult-shift 64", "--mult-shift", ["64", "0..63"]),
    ("golden --mult-mant 5", "--mult-mant", ["--mult-shift"]),
    ("golden --out-shift 8", "--out-shift", ["8", "0..7"]),
    ("golden --radius 3 --left 2", "--radius", ["--left"]),
    ("golden --n 8 --json /proc/swattn/g.json", "--json", ["/proc/swattn/g.json"]),
    ("golden --n 8 --json {dir}", "--json", ["is a folder"]),
    ("golden --bands x", "--bands", ["'x'", "START:COUNT"]),
    ("golden --bands 3:0", "--bands", ["COUNT 0", "COUNT 1 or more"]),
    ("golden --bands 2:3", "--bands", ["'2:3'", "overlaps the window"]),
    ("golden --n 50 --radius 2 --bands 5:2,6:1", "--bands", ["above band 0", "disjoint"]),
    ("golden --columns 1,a", "--columns", ["'1,a'", "integers"]),
    ("golden --columns 4,4", "--columns", ["[4]", "each once"]),
    ("golden --n 50 --columns 50", "--columns", ["50", "0..49"]),
    ("golden --n 50 --globals 3 --columns 3", "--columns", ["[3]", "also global", "--globals"]),
    ("golden --grid 4", "--grid", ["'4'", "WIDTH:RADIUS"]),
    ("golden --grid 0:1", "--grid", ["WIDTH 0", "1 or more"]),
    ("golden --pattern /nonexistent/p.json", "--pattern", ["/nonexistent/p.json",
                                                           "No such file"]),
    ("golden --pattern {file}", "--pattern", ["not JSON", '"bands"']),
    ("golden --pattern {badpattern}", "--pattern", ["'colums'", "allowed n, left, right"]),
    ("golden --pattern {pattern} --radius 3", "--pattern", ["--radius", "ignored"]),
    # --- generate
    ("generate --out /proc/swattn", "--out", ["/proc/swattn", "folder"]),
    ("generate --out /etc/passwd", "--out", ["/etc/passwd", "is a file, not a folder"]),
    ("generate --out {file}", "--out", ["is a file, not a folder"]),
    ("generate --name 'bad name!'", "--name", ["'bad name!'", "letters, digits and _"]),
    ("generate --name ''", "--name", ["''", "letters, digits and _"]),
    ("generate --name 9lives", "--name", ["'9lives'", "not starting with a digit"]),
    ("generate --bus axi --lanes 4", "--bus", ["--lanes 4", "stream engine"]),
    ("generate --bus pci", "--bus", ["pci", "bare", "axi"]),
    ("generate --max-radius 0", "--max-radius", ["= 0", "1..4096"]),
    ("generate --head-dim 48", "--head-dim", ["48", "32, 64, 128"]),
    ("generate --head-dim x", "--head-dim", ["'x'", "32, 64 or 128"]),
    ("generate --lanes 12", "--lanes", ["12", "power of two"]),
    ("generate --lanes 8192", "--lanes", ["8192", "4..4096"]),
    ("generate --max-globals 65", "--max-globals", ["65", "0..64"]),
    ("generate --max-dilation 0", "--max-dilation", ["= 0", "1..64"]),
    ("generate --seq-width 30", "--seq-width", ["30", "2..24"]),
    ("generate --dot-pipeline 6", "--dot-pipeline", ["6", "0..5"]),
    ("generate --pv-pipeline -1", "--pv-pipeline", ["-1", "0..5"]),
    ("generate --max-bands 0", "--max-bands", ["= 0", "1..16"]),
    ("generate --max-columns 33", "--max-columns", ["33", "0..32"]),
    ("generate --lanes 4 --max-columns 2", "--max-columns", ["serial engine", "--max-columns 0"]),
    # --- sim
    ("sim --lanes 4 --head-dim 32 --n 64 --radius 8", "--lanes", ["serial engine", "8..4096"]),
    ("sim --lanes 12", "--lanes", ["12", "8..4096"]),
    ("sim --seed -1", "--seed", ["-1", "0..4294967295"]),
    ("sim --n -4", "--n", ["-4", "1 or more"]),
    ("sim --random 3 --n 100", "--n", ["--random 3", "ignored"]),
    ("sim --random 2 --radius 3 --idle 0.5", "--radius", ["--idle", "--random 2"]),
    ("sim --random 0", "--random", ["= 0", "1 or more"]),
    ("sim --build-dir /proc/xx", "--build-dir", ["/proc/xx", "folder"]),
    ("sim --build-dir {file}", "--build-dir", ["is a file, not a folder"]),
    ("sim --json /proc/x.json", "--json", ["/proc/x.json"]),
    ("sim --idle 1", "--idle", ["= 1", "[0, 1)"]),
    ("sim --stall x", "--stall", ["'x'", "[0, 1)"]),
    ("sim --radius 200", "--radius", ["200", "0..128", "--max-radius"]),
    ("sim --max-radius 8", "--max-radius", ["default radius 16", "0..8"]),
    ("sim --left 20 --dilation 4 --max-radius 64", "--left", ["20", "80 tokens", "0..64"]),
    ("sim --n 200000", "--n", ["200000", "1..131071", "--seq-width"]),
    ("sim --dilation 9", "--dilation", ["9", "1..4", "--max-dilation"]),
    ("sim --n-globals 9", "--n-globals", ["9", "0..8", "--max-globals"]),
    ("sim --globals 1,1", "--globals", ["unique", "[1]"]),
    ("sim --sim foo", "--sim", ["'foo'", "verilator"]),
    ("sim --out-shift 9", "--out-shift", ["9", "0..7"]),
    ("sim --bands 20:2", "--bands", ["without band fields", "swattn generate --max-bands"]),
    ("sim --columns 5", "--columns", ["without column fields", "swattn generate --max-columns"]),
    ("sim --grid 8:1", "--grid", ["without the 2D grid's fields", "--with-grid"]),
    ("sim --with-grid --grid 8:1", "--with-grid", ["--max-bands 1", "2..16"]),
    ("sim --with-grid --max-bands 4 --grid 8:1 --dilation 2", "--grid", ["dilation 1"]),
    ("sim --max-bands 2 --bands 20:1,30:1", "--bands", ["3 bands", "1..2", "--max-bands"]),
    ("sim --max-bands 2 --bands=-140:1", "--bands", ["140 tokens", "0..128", "--max-radius"]),
    ("sim --max-columns 1 --columns 5,6", "--columns", ["2 columns", "0..1", "--max-columns"]),
    ("sim --max-bands 17", "--max-bands", ["17", "1..16"]),
    ("sim --pattern {grid}", "--pattern", ["grid", "swattn golden"]),
    ("sim --pattern {pattern}", "--pattern", ["bands", "without band fields"]),
    ("sim --random 2 --columns 3", "--columns", ["--random 2", "ignored"]),
    # --- demo
    ("demo --lanes 4", "--lanes", ["serial engine", "8..4096"]),
    ("demo --lanes 12", "--lanes", ["12", "8..4096"]),
    ("demo --text {empty}", "--text", ["empty"]),
    ("demo --text {binary}", "--text", ["not UTF-8"]),
    ("demo --text {text} --tokens 200", "--tokens", ["200", "--text"]),
    ("demo --text /nonexistent/t.txt", "--text", ["/nonexistent/t.txt", "No such file"]),
    ("demo --text {long}", "--text", ["tokens", "512"]),
    ("demo --tokens 600", "--tokens", ["600", "128..512"]),
    ("demo --tokens many", "--tokens", ["'many'", "128..512"]),
    ("demo --budget 0", "--budget", ["= 0", "at least 1"]),
    ("demo --layer 6", "--layer", ["6", "0..5"]),
    ("demo --head 12", "--head", ["12", "0..11"]),
    ("demo --predictor nope", "--predictor", ["'nope'", "longformer"]),
    ("demo --out {file}", "--out", ["is a file, not a folder"]),
    ("demo --json /proc/x.json", "--json", ["/proc/x.json"]),
    ("demo --sim foo", "--sim", ["'foo'", "verilator"]),
    # --- eval
    ("eval --text-file {binary}", "--text-file", ["not UTF-8"]),
    ("eval --text-file {nul}", "--text-file", ["NUL"]),
    ("eval --text-file {empty}", "--text-file", ["empty"]),
    ("eval --text-file /nonexistent/t.txt", "--text-file", ["No such file"]),
    ("eval --text-file {text} --texts 3", "--texts", ["3", "--text-file"]),
    ("eval --texts 0", "--texts", ["= 0", "1 or more"]),
    ("eval --texts 100000", "--texts", ["100000", "allowed 1.."]),
    ("eval --calibration 0", "--calibration", ["= 0", "1 or more"]),
    ("eval --max-tokens 600", "--max-tokens", ["600", "128..512"]),
    ("eval --predictors nope", "--predictors", ["'nope'", "'all'"]),
    ("eval --budgets 0", "--budgets", ["0", "1..256"]),
    ("eval --budgets x", "--budgets", ["'x'", "numbers"]),
    ("eval --table-budget 0", "--table-budget", ["= 0", "at least 1"]),
    ("eval --json /proc/x.json", "--json", ["/proc/x.json"]),
    ("eval --out /proc/xx", "--out", ["/proc/xx", "folder"]),
    ("eval --seed -1", "--seed", ["-1", "0..4294967295"]),
    ("eval --max-globals -1", "--max-globals", ["-1", "0 or more"]),
    ("eval --max-dilation 0", "--max-dilation", ["= 0", "1 or more"]),
    ("eval --max-bands 0", "--max-bands", ["= 0", "1..16"]),
    ("eval --max-columns 40", "--max-columns", ["40", "0..32"]),
    ("eval --also-tokens 600", "--also-tokens", ["600", "128..512"]),
    ("eval --also-tokens x", "--also-tokens", ["'x'", "128..512"]),
    ("eval --text-file {text} --also-tokens 512", "--also-tokens", ["--text-file"]),
    # --- build
    ("build --board icebreaker --out /proc/xx", "--out", ["/proc/xx", "folder"]),
    ("build --board icebreaker --synth-only --json /proc/x.json", "--json", ["/proc/x.json"]),
    ("build --board icebreaker --seed -1", "--seed", ["-1", "1..10000"]),
    ("build --board nope", "--board", ["'nope'", "icebreaker"]),
    ("build", "--board", ["required", "icebreaker"]),
    ("build --board icebreaker --clock 0", "--clock", ["= 0", "above 0 MHz"]),
    ("build --board icebreaker --clock abc", "--clock", ["'abc'", "above 0 MHz"]),
    ("build --board icebreaker --clock 7", "--clock", ["7", "MHz"]),
    ("build --board icebreaker --jobs 2", "--jobs", ["--seeds"]),
    ("build --board icebreaker --seeds 1-3 --jobs 0", "--jobs", ["= 0", "1 or more"]),
    ("build --board icebreaker --seeds 1-x", "--seeds", ["'1-x'", "1-8"]),
    ("build --board icebreaker --record", "--record", ["--seeds"]),
    ("build --board icebreaker --scheduler tcp://127.0.0.1:1", "--scheduler", ["--seeds"]),
    ("build --board icebreaker --seeds 1-2 --scheduler tcp://127.0.0.1:1", "--scheduler",
     ["'tcp://127.0.0.1:1'", "no Dask scheduler answered within 10 s", "tcp://host:8786"]),
    ("build --board icebreaker --seeds 1-2 --scheduler nohost", "--scheduler",
     ["'nohost'", "not an address", "tcp://host:8786"]),
    ("build --board icebreaker --seeds 1-2 --jobs 2 --scheduler tcp://127.0.0.1:1", "--jobs",
     ["--scheduler", "leave out --jobs"]),
    # --- explore
    ("explore", "--board", ["required", "ulx3s-85f"]),
    ("explore --board nope", "--board", ["'nope'", "icebreaker"]),
    ("explore --board ulx3s-85f --lanes 12", "--lanes", ["12", "power of two", "8..4096"]),
    ("explore --board ulx3s-85f --lanes 64 4", "--lanes", ["= 4", "8..4096"]),
    ("explore --board ulx3s-85f --lanes x", "--lanes", ["'x'", "not an integer"]),
    ("explore --board ulx3s-85f --dot-pipeline 6", "--dot-pipeline", ["= 6", "0..5"]),
    ("explore --board ulx3s-85f --pv-pipeline 2 6", "--pv-pipeline", ["= 6", "0..5"]),
    ("explore --board ulx3s-85f --seeds 0-2", "--seeds", ["'0-2'", "1..10000"]),
    ("explore --board ulx3s-85f --synth-only --seeds 1-2", "--seeds", ["--synth-only"]),
    ("explore --board ulx3s-85f --synth-only --record", "--record", ["--synth-only"]),
    ("explore --board ulx3s-85f --seed-minutes 0", "--seed-minutes", ["= 0", "above 0 minutes"]),
    ("explore --board ulx3s-85f --jobs 0", "--jobs", ["= 0", "1 or more"]),
    ("eval --jobs 0", "--jobs", ["= 0", "1 or more"]),
    ("eval --jobs 2 --scheduler tcp://127.0.0.1:1", "--jobs", ["--scheduler", "leave out --jobs"]),
    ("eval --texts 1 --scheduler tcp://127.0.0.1:1", "--scheduler",
     ["'tcp://127.0.0.1:1'", "no Dask scheduler answered within 10 s"]),
    ("explore --board ulx3s-85f --jobs 2 --scheduler tcp://127.0.0.1:1", "--jobs",
     ["--scheduler", "leave out --jobs"]),
    ("explore --board ulx3s-85f --lanes 64 --scheduler tcp://127.0.0.1:1", "--scheduler",
     ["'tcp://127.0.0.1:1'", "no Dask scheduler answered within 10 s"]),
    ("explore --board ulx3s-85f --scheduler http://127.0.0.1:1", "--scheduler",
     ["'http://127.0.0.1:1'", "not an address"]),
    ("explore --board ulx3s-85f --json /proc/x.json", "--json", ["/proc/x.json"]),
    ("explore --board ulx3s-85f --out {file}", "--out", ["is a file, not a folder"]),
    # --- run
    ("run --port /dev/nonexistent-tty", "--port", ["/dev/nonexistent-tty", "serial device"]),
    ("run --port {file}", "--port", ["not a serial device"]),
    ("run", "--port", ["required"]),
    ("run --port /dev/null --baud 0", "--baud", ["= 0", "1 or more"]),
    ("run --port /dev/null --n 0", "--n", ["= 0", "1 or more"]),
    ("run --port /dev/null --n 4 --n-globals 5", "--n-globals", ["5", "0..4"]),
    ("run --port /dev/null --radius -1", "--radius", ["-1", "0 or more"]),
    ("run --port /dev/null --timeout 0", "--timeout", ["= 0", "above 0 seconds"]),
    ("run --port /dev/null --board nope", "--board", ["'nope'", "icebreaker"]),
    ("run --port /dev/null --seed -1", "--seed", ["-1", "0..4294967295"]),
    ("run --port /dev/null --grid 8:1", "--grid", ["no 2D grid fields"]),
    ("run --port /dev/null --bands 1:x", "--bands", ["'1:x'", "START:COUNT"]),
    ("run --port /dev/null --columns x", "--columns", ["'x'", "integers"]),
    ("run --port /dev/null --pattern {badpattern}", "--pattern", ["'colums'"]),
    ("run --port /dev/null --pattern {pattern} --n 32", "--pattern", ["--n", "ignored"]),
    # --- flash
    ("flash --board nope", "--board", ["'nope'", "icebreaker"]),
    ("flash", "--board", ["required"]),
    ("flash --board icebreaker --out /nonexistent", "--out", ["no bitstream", "swattn build"]),
    ("flash --board icebreaker --out {file}", "--out", ["is a file", "build folder"]),
    ("flash --board icebreaker --out {dir}", "--out", ["no bitstream", "swattn build"]),
    ("flash --board icebreaker --flash-memory", "--flash-memory", ["ECP5"]),
    # --- bench
    ("bench --json /proc/x.json", "--json", ["/proc/x.json"]),
    ("bench --out {file}", "--out", ["is a file, not a folder"]),
    ("bench --lanes 4", "--lanes", ["serial engine", "8..4096"]),
    ("bench --rtl-lanes 12", "--rtl-lanes", ["12", "8..4096"]),
    ("bench --n 0", "--n", ["= 0", "1..1048576"]),
    ("bench --n", "--n", ["expected at least one argument"]),
    ("bench --repeat 0", "--repeat", ["= 0", "1 or more"]),
    ("bench --rtl-kinds longformer", "--rtl-kinds", ["'longformer'", "longformer-g0"]),
    ("bench --cpu-max-n -1", "--cpu-max-n", ["-1", "0 or more"]),
    ("bench --gpu-json /nonexistent.json", "--gpu-json", ["/nonexistent.json"]),
    ("bench --synth-dir /nonexistent", "--synth-dir", ["does not exist", "folder"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli_errors")
    (d / "file.txt").write_text("a plain file\n")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.dat").write_bytes(bytes(range(256)) * 4)
    (d / "nul.txt").write_text("words\0and\0nul bytes\n")
    (d / "text.txt").write_text("The engine attends to a window of neighbours and a few "
                                "global tokens.\n")
    (d / "long.txt").write_text(" ".join(f"word{i}" for i in range(700)))
    (d / "dir").mkdir()
    (d / "pattern.json").write_text('{"n": 64, "left": 2, "right": 2, "bands": [[10, 2]], '
                                    '"columns": [5], "globals": [0]}')
    (d / "grid.json").write_text('{"n": 64, "left": 1, "right": 1, "bands": [[-9, 3]], '
                                 '"grid": [8, 1]}')
    (d / "badpattern.json").write_text('{"n": 64, "left": 2, "right": 2, "colums": [5]}')
    return {"file": str(d / "file.txt"), "empty": str(d / "empty.txt"),
            "binary": str(d / "binary.dat"), "nul": str(d / "nul.txt"),
            "text": str(d / "text.txt"), "long": str(d / "long.txt"), "dir": str(d / "dir"),
            "pattern": str(d / "pattern.json"), "grid": str(d / "grid.json"),
            "badpattern": str(d / "badpattern.json")}


def _argv(line: str, files: dict[str, str], tmp: Path) -> list[str]:
    argv = [a.format(tmp=tmp, **files) for a in shlex.split(line)]
    out = OUTPUT_OPTION.get(argv[0] if argv else "")
    if out and out not in argv:
        argv += [out, str(tmp / "out")]
    return argv


@pytest.mark.parametrize("line, option, words", BAD_LINES)
def test_bad_line_is_one_error_line_naming_the_option(line, option, words, files, tmp_path):
    argv = _argv(line, files, tmp_path)
    r = subprocess.run([SWATTN, *argv], capture_output=True, text=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    msg = lines[0]
    assert msg.startswith("swattn: error: "), msg
    assert option in msg, f"{option!r} not named in: {msg}"
    if option.startswith("--"):  # the option as typed, not its Python field name
        field = option[2:].replace("-", "_")
        assert not re.search(rf"(?<![-\w]){field} =", msg) or field == option[2:], msg
    for w in words:
        assert w in msg, f"{w!r} not in: {msg}"


def test_enough_bad_lines_over_every_subcommand():
    from swattn.sw.cli import COMMANDS

    lines = [p.values[0] if hasattr(p, "values") else p[0] for p in BAD_LINES]
    assert len(lines) >= 60
    used = {shlex.split(x)[0] for x in lines if x}
    assert used >= set(COMMANDS), set(COMMANDS) - used


def _help(*argv: str) -> dict[str, str]:
    """Each option's help in ``swattn ARGV --help``, unwrapped: an entry starts with two spaces
    and the option, its continuation lines are indented further."""
    r = subprocess.run([SWATTN, *argv, "--help"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    entries, current = {}, None
    for line in r.stdout.splitlines():
        m = re.match(r"  (--[\w-]+)", line)
        if m:
            current = m.group(1)
            entries[current] = line[m.end():]
        elif current and line.startswith("   "):
            entries[current] += " " + line
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


@pytest.mark.parametrize("command, options", [
    ("golden", ["--radius", "--left", "--right"]),
    ("sim", ["--radius", "--left", "--right"]),
    ("run", ["--radius"]),
])
def test_window_radius_help_gives_its_unit(command, options):
    entries = _help(command)
    for opt in options:
        h = entries[opt]
        assert "window steps, not tokens" in h and "radius x dilation tokens" in h, (opt, h)
    if command == "sim":  # the engine's limit is in tokens: radius x dilation
        h = entries["--max-radius"]
        assert "in tokens" in h and "radius x dilation" in h, h


@pytest.mark.parametrize("command, options", [
    ("golden", ["--json"]), ("generate", ["--out"]), ("sim", ["--json", "--build-dir"]),
    ("demo", ["--json", "--out"]), ("eval", ["--json", "--out"]),
    ("build", ["--json", "--out"]), ("bench", ["--json", "--out"]),
    ("explore", ["--json", "--out"]),
])
def test_output_paths_say_missing_folders_are_created(command, options):
    entries = _help(command)
    for opt in options:
        assert "missing folders are created" in entries[opt], (opt, entries[opt])


def test_json_into_a_missing_folder_is_created(tmp_path):
    path = tmp_path / "new" / "folders" / "g.json"
    r = subprocess.run([SWATTN, "golden", "--n", "16", "--radius", "2", "--json", str(path)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert '"pairs"' in path.read_text()


def test_a_refused_line_leaves_no_file(tmp_path):
    """The check that ``--json`` can be written (before ``--seeds`` is refused here) removes the
    file it tried."""
    path = tmp_path / "b.json"
    r = subprocess.run([SWATTN, "build", "--board", "icebreaker", "--seeds", "1-x", "--out",
                        str(tmp_path / "out"), "--json", str(path)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2 and "--seeds" in r.stderr, r.stderr
    assert not path.exists()
