"""``make regress``: long random regression of the engine on Verilator and Icarus.

The regression is a list of *chunks*; each chunk is one simulator run of
``swattn.sim.jobs.regression_jobs(params, count, seed0)`` (random jobs with idle input and output
backpressure, then every invalid configuration, a reset in the middle of a job and a start while
busy, each followed by a valid job), checked bit for bit against the golden model, with a
4-state check of the outputs (``swattn.sim.tb_xcheck``). Every second Verilator chunk runs on a
build with ``--x-assign unique --x-initial unique`` and ``+verilator+seed+<seed0>
+verilator+rand+reset+2``.

    python -m swattn.sim.regress                      # the full plan, a worker per core
    python -m swattn.sim.regress --shard 2/8          # the second of eight shards (CI matrix)
    python -m swattn.sim.regress --verilator-jobs 300 --icarus-jobs 40   # a reduced run
    python -m swattn.sim.regress --scheduler tcp://host:8786             # on a Dask cluster
    python -m swattn.sim.regress --rerun <chunk> --seed <seed>           # one failing job

Chunks are split over shards by index (chunk i goes to shard i mod N); within a shard each chunk
is a job of a Dask cluster (:mod:`swattn.sw.cluster`): local worker processes (``-n``, default a
worker per core) or an existing cluster (``--scheduler``, whose workers must see this checkout's
folders). Workers that need the same simulator build share it as separate processes always did:
one builds it, the others wait for its lock (:func:`swattn.sim.runner.build`). Each chunk writes
``build/regress/chunks/<chunk>.json`` (and its simulator log beside its build,
``build/sim/*/regress_<chunk>.log``) and prints a line as it ends; at the end the functional
coverage (``swattn.sim.coverage``) and a summary (``build/regress/summary.json``) are printed.
Every failing job is printed with its seed and the one command that re-runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path("build/regress")

#: engine sizes of the regression (entries of ``swattn.sw.spec.sizes.SIZES``), in the order that
#: fixes each size's seeds: one unit with four chunks per key, two units at head_dim 64 (with
#: dilation 4 and four globals), four units with one key per cycle, and the boards' engines at
#: their exact parameters (fpga/boards.py takes them from the same table), then bands beside the
#: window and key-only columns on one unit and on four, and on one unit with the band switch's own
#: cycle (dot_pipeline 5)
REGRESS = ("u1c4", "u2d64", "u4", "ulx3s", "ice40", "u1c4_keys", "u4g6_keys", "u1c4_pair",
           "u2g4_nopair", "u1c4_keys_p55")
#: sizes run through the AXI top (``swattn generate --bus axi``, testbench ``swattn.sim.tb_axi``):
#: its chunks are named ``axi.<size>``
REGRESS_AXI = ("u1c4", "u2d64", "u1c4_keys")


def sizes():
    from swattn.sw.spec.sizes import SIZES
    return {k: SIZES[k] for k in REGRESS}


def chunk_params(size: str):
    """The engine parameters of a chunk's size (``axi.<size>``: the AXI top of that size)."""
    from swattn.sw.spec.sizes import SIZES
    return SIZES[size.removeprefix("axi.")]


@dataclass(frozen=True)
class Chunk:
    size: str
    sim: str  # "verilator" or "icarus"
    seed0: int
    count: int  # random jobs (regression_jobs adds the invalid/reset/busy jobs and followers)
    xrand: bool = False  # Verilator: --x-assign/--x-initial unique, random seed

    @property
    def id(self) -> str:
        return f"{self.size}-{self.sim}{'-x' if self.xrand else ''}-{self.seed0}-{self.count}"

    @classmethod
    def from_id(cls, text: str) -> "Chunk":
        parts = text.split("-")
        xrand = "x" in parts[2:-2]
        return cls(parts[0], parts[1], int(parts[-2]), int(parts[-1]), xrand)


def plan(verilator_jobs: int = 10_000, icarus_jobs: int = 1_000, chunk: int = 200,
         icarus_chunk: int = 50, axi_jobs: int = 400, axi_chunk: int = 50) -> list[Chunk]:
    """The chunks of a regression with at least the given numbers of random jobs per simulator,
    spread evenly over the sizes, and ``axi_jobs`` random jobs through the AXI top (over
    :data:`REGRESS_AXI`, shared by the simulators: Verilator alone when ``icarus_jobs`` is 0). Seeds never repeat between chunks or sizes."""
    out = []
    names = REGRESS
    for sim, total, per in (("verilator", verilator_jobs, chunk), ("icarus", icarus_jobs,
                                                                     icarus_chunk)):
        per_size = -(-total // len(names))
        for si, size in enumerate(names):
            k, left = 0, per_size
            while left > 0:
                c = min(per, left)
                # seeds seed0 .. seed0 + 10_200 and seed0 * 100 + i (the invalid jobs) are used
                seed0 = (1 if sim == "verilator" else 5) * 10_000_000 + si * 1_000_000 + k * 20_000
                out.append(Chunk(size, sim, seed0, c, xrand=(sim == "verilator" and k % 2 == 1)))
                k += 1
                left -= c
    sims = ("verilator", "icarus") if icarus_jobs > 0 else ("verilator",)
    if axi_jobs > 0:
        for s_i, sim in enumerate(sims):
            per_size = -(-axi_jobs // (len(sims) * len(REGRESS_AXI)))
            for si, size in enumerate(REGRESS_AXI):
                k, left = 0, per_size
                while left > 0:
                    c = min(axi_chunk, left)
                    seed0 = 70_000_000 + s_i * 5_000_000 + si * 1_000_000 + k * 20_000
                    out.append(Chunk(f"axi.{size}", sim, seed0, c))
                    k += 1
                    left -= c
    return out


def shard(chunks: list[Chunk], spec: str) -> list[Chunk]:
    i, n = (int(x) for x in spec.split("/"))
    if not 1 <= i <= n:
        raise SystemExit(f"--shard {spec}: expected I/N with 1 <= I <= N")
    return [c for k, c in enumerate(chunks) if k % n == i - 1]


# ------------------------------------------------------------------------------------ running

#: Verilator arguments of the x-randomised builds (after the runner's defaults, which they override)
XRAND_ARGS = ["--x-assign", "unique", "--x-initial", "unique"]


def _simulate(chunk: Chunk, params, jobs: list[dict], name: str,
              sim_root: Path | str = "build/sim") -> tuple[list[dict], dict, float]:
    """Run ``jobs`` under the X-checking testbench on the runner's build under ``sim_root``
    (x-randomised for an ``xrand`` chunk); returns (results, x-check record, seconds spent
    building or waiting for the build)."""
    from swattn.sim import runner

    build_args = XRAND_ARGS if chunk.xrand else None
    t0 = time.monotonic()
    if chunk.size.startswith("axi."):  # the AXI top, driven through its AXI ports only
        runner.build(params, chunk.sim, sim_root, bus="axi")
        build_secs = time.monotonic() - t0
        results = runner.run_jobs(params, jobs, chunk.sim, sim_root, name=name, bus="axi",
                                  test_module="swattn.sim.tb_axi", partial=True)
        return results, {"count": 0, "events": []}, build_secs
    bdir, _ = runner.build(params, chunk.sim, sim_root, build_args=build_args)
    build_secs = time.monotonic() - t0
    x_path = bdir / f"{name}.xcheck.json"
    if x_path.exists():
        x_path.unlink()
    plusargs = []
    if chunk.xrand:
        plusargs = [f"+verilator+seed+{chunk.seed0 % 2**31}", "+verilator+rand+reset+2"]
    if params.serial:  # (its testbench models the buffers and checks every write itself)
        results = runner.run_serial_jobs(params, jobs, chunk.sim, name=name, plusargs=plusargs,
                                         build_args=build_args, partial=True, root=sim_root)
        return results, {"count": 0, "events": []}, build_secs
    results = runner.run_jobs(params, jobs, chunk.sim, sim_root, name=name, plusargs=plusargs,
                              build_args=build_args, test_module="swattn.sim.tb_xcheck",
                              extra_env={"SWATTN_XCHECK": str(x_path)}, partial=True)
    xrec = json.loads(x_path.read_text()) if x_path.exists() else {"count": -1, "events": []}
    return results, xrec, build_secs


def rerun_command(chunk: Chunk, seed: int) -> str:
    return f".venv/bin/python -m swattn.sim.regress --rerun {chunk.id} --seed {seed}"


def run_chunk(chunk: Chunk, only_seed: int | None = None, root: Path = ROOT,
              sim_root: Path | str = "build/sim") -> dict:
    """Run one chunk (or, with ``only_seed``, that job and the job before it, whose end state it
    starts from) on the simulator builds under ``sim_root`` and write
    ``<root>/chunks/<id>.json``; returns that record."""
    from swattn.sim.jobs import axi_jobs, regression_jobs

    params = chunk_params(chunk.size)
    axi = chunk.size.startswith("axi.")
    jobs = (axi_jobs if axi else regression_jobs)(params, chunk.count, chunk.seed0)
    name = f"regress_{chunk.id}"
    if only_seed is not None:
        idx = [i for i, j in enumerate(jobs) if j["seed"] == only_seed]
        if not idx:
            raise SystemExit(f"seed {only_seed} is not in chunk {chunk.id}")
        jobs = jobs[max(0, idx[0] - 1): idx[0] + 1]
        name += f"_seed{only_seed}"
    t0 = time.monotonic()
    results, xrec, build_secs = _simulate(chunk, params, jobs, name, sim_root)
    secs = time.monotonic() - t0 - build_secs
    failures = []
    for job, res in zip(jobs, results):
        if not res.get("ok"):
            why = res.get("error_text") or {k: v for k, v in res.items() if k != "seed"}
            failures.append({"seed": job["seed"], "kind": job.get("kind", "ok"), "why": str(why),
                             "rerun": rerun_command(chunk, job["seed"])})
        elif job.get("kind") == "invalid" and (res.get("q_ready") or res.get("kv_ready")):
            failures.append({"seed": job["seed"], "kind": "invalid",
                             "why": "a refused start raised q.ready or kv.ready",
                             "rerun": rerun_command(chunk, job["seed"])})
    missing = len(jobs) - len(results)
    if missing:
        j = jobs[len(results)]
        failures.append({"seed": j["seed"], "kind": j.get("kind", "ok"),
                         "why": f"the simulation stopped: {missing} job(s) without a result "
                                f"(log: build/sim/*/{name}.log)",
                         "rerun": rerun_command(chunk, j["seed"])})
    if xrec["count"]:
        failures.append({"seed": None, "kind": "xcheck",
                         "why": f"{xrec['count']} cycle(s) with X/Z on an output: "
                                f"{xrec['events'][:3]}", "rerun": rerun_command(chunk, jobs[0]["seed"])})
    rec = {"chunk": asdict(chunk), "id": chunk.id, "seconds": round(secs, 1),
           "build_seconds": round(build_secs, 1), "jobs": len(jobs),
           "passed": sum(bool(r.get("ok")) for r in results), "failures": failures,
           # what coverage needs from each job, with its verdict
           "records": [dict({k: v for k, v in job.items() if k != "data"}, ok=bool(res.get("ok")),
                            error=res.get("error"))
                       for job, res in zip(jobs, results)]}
    if only_seed is None:
        out = root / "chunks"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{chunk.id}.json").write_text(json.dumps(rec))
    return rec


# ------------------------------------------------------------------------------------ Dask

def chunk_job(job: dict) -> dict:
    """One chunk as a job of the cluster (run by a worker process): :func:`run_chunk` of
    ``job["id"]`` with the record under ``job["root"]`` and the builds under ``job["sim_root"]``
    (absolute: a worker's folder may be another). Returns the record's figures without its job
    list (the summary reads the record's file); a chunk that raised returns ``error`` (its
    traceback), so that the other chunks go on and the summary counts it as missing; ``worker``
    names the host and process that ran it."""
    import socket
    import traceback

    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        rec = run_chunk(Chunk.from_id(job["id"]), root=Path(job["root"]),
                        sim_root=job["sim_root"])
    except Exception:  # noqa: BLE001 - reported by the caller, chunk by chunk
        return {"id": job["id"], "error": traceback.format_exc(), "worker": worker}
    return dict({k: rec[k] for k in ("id", "seconds", "build_seconds", "jobs", "passed",
                                     "failures")}, worker=worker)


def chunk_line(res: dict) -> str:
    """A finished chunk's progress line."""
    if res.get("error"):
        last = res["error"].strip().splitlines()[-1]
        return f"{res['id']}: ERROR {last}"
    fails = len(res["failures"])
    return (f"{res['id']}: {res['passed']}/{res['jobs']} jobs passed"
            + (f", {fails} FAILURE(S)" if fails else "")
            + f", {res['seconds']:.0f} s simulating"
            + (f" (+{res['build_seconds']:.0f} s building)" if res["build_seconds"] >= 1 else ""))


def run_chunks(client, chunks: list[Chunk], root: Path = ROOT, sim_root: Path | str = "build/sim",
               log=print) -> list[dict]:
    """Each chunk a job on ``client``'s workers (:func:`chunk_job`, through
    :func:`swattn.sw.cluster.map_jobs`); a line per chunk as it ends (``log``); returns the
    results in the order they ended. The workers' own progress lines are off (they would
    interleave)."""
    from swattn.sim import regress as this  # (by its name: this file may run as __main__)
    from swattn.sw.cluster import map_jobs

    work = [{"id": c.id, "root": str(Path(root).resolve()),
             "sim_root": str(Path(sim_root).resolve())} for c in chunks]
    out = []
    for _, res in map_jobs(client, this.chunk_job, work, label=lambda j: f"chunk {j['id']}",
                           env={"SWATTN_PROGRESS": "0"}, name="regress"):
        out.append(res)
        log(f"[{len(out)}/{len(work)}] {chunk_line(res)}")
        if res.get("error"):
            log("  " + res["error"].rstrip().replace("\n", "\n  "))
        for f in res.get("failures", [])[:5]:
            log(f"  FAILED seed {f['seed']} ({f['kind']}): {f['why'][:300]}\n"
                f"    re-run: {f['rerun']}")
    return out


# ------------------------------------------------------------------------------------ CLI

def summarise(chunks: list[Chunk], wall: float, root: Path = ROOT) -> tuple[dict, list[str]]:
    from swattn.sim import coverage

    recs, missing = [], []
    for c in chunks:
        p = root / "chunks" / f"{c.id}.json"
        if p.exists():
            recs.append(json.loads(p.read_text()))
        else:
            missing.append(c.id)
    by = {}
    for r in recs:
        key = f"{r['chunk']['size']}/{r['chunk']['sim']}{'-x' if r['chunk']['xrand'] else ''}"
        b = by.setdefault(key, {"jobs": 0, "passed": 0, "sim_seconds": 0.0})
        b["jobs"] += r["jobs"]
        b["passed"] += r["passed"]
        b["sim_seconds"] += r["seconds"]
    failures = [f for r in recs for f in r["failures"]]
    cov = coverage.Coverage()
    for r in recs:
        size = r["chunk"]["size"]
        if size.startswith("axi."):
            cov.add_axi_jobs(chunk_params(size), r["records"])
        else:
            cov.add_jobs(chunk_params(size), r["records"])
    summary = {"chunks": len(chunks), "chunks_missing": missing, "wall_seconds": round(wall, 1),
               "jobs": sum(r["jobs"] for r in recs), "passed": sum(r["passed"] for r in recs),
               "by": by, "failures": failures, "coverage": cov.as_dict(),
               "unhit": cov.unhit()}
    lines = ["", "regression summary", "=================="]
    for k, b in sorted(by.items()):
        lines.append(f"  {k:24} {b['passed']:6}/{b['jobs']:<6} jobs passed  "
                     f"{b['sim_seconds']:8.1f} s  ({b['jobs'] / max(b['sim_seconds'], 1e-9):.1f} jobs/s)")
    lines.append(f"  total {summary['passed']}/{summary['jobs']} jobs passed, "
                 f"{len(failures)} failure(s), {len(missing)} chunk(s) missing, wall {wall:.0f} s")
    lines.append("")
    lines.append(cov.report())
    for f in failures[:50]:
        lines.append(f"FAILED seed {f['seed']} ({f['kind']}): {f['why'][:300]}")
        lines.append(f"  re-run: {f['rerun']}")
    return summary, lines


def markdown(summary: dict) -> str:
    """The regression's figures as the README shows them, from a summary JSON."""
    names = {k.split("/")[0] for k in summary["by"]}
    sizes_ = sorted(n for n in names if not n.startswith("axi."))
    axi = sorted(n.removeprefix("axi.") for n in names if n.startswith("axi."))
    busy = sum(v for b, c in summary["coverage"].items() if b == "outcome: error BUSY"
               for v in c.values())
    nbins = len(summary["coverage"]) + len(summary["unhit"])
    lines = [f"`{summary.get('command', 'python -m swattn.sim.regress')}` at commit "
             f"{summary.get('commit', 'unknown')}: {summary['passed']:,} of {summary['jobs']:,} "
             f"jobs bit-exact over {len(sizes_)} engine sizes ({', '.join(sizes_)})"
             + (f" and the AXI top at {len(axi)} ({', '.join(axi)})" if axi else "") + ", "
             f"{len(summary['failures'])} failure(s), {len(summary['chunks_missing'])} chunk(s) "
             f"missing, {nbins - len(summary['unhit'])}/{nbins} coverage bins hit "
             f"({busy:,} jobs with a start while busy), "
             f"{summary['wall_seconds'] / 60:.0f} min wall.", "",
             "| size / simulator | jobs passed | seconds simulating | jobs/s (one worker) |",
             "| --- | --- | --- | --- |"]
    for k, b in sorted(summary["by"].items()):
        lines.append(f"| {k} | {b['passed']:,} / {b['jobs']:,} | {b['sim_seconds']:.0f} | "
                     f"{b['jobs'] / max(b['sim_seconds'], 1e-9):.1f} |")
    return "\n".join(lines)


def _workers(text: str, scheduler: str | None) -> int | None:
    """``-n``: "auto" (None: a worker per core; with --scheduler, the cluster's workers) or a
    count of local workers."""
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"-n = {text!r} is not a number of workers: allowed auto or 1 or "
                         "more") from None
    if n < 1:
        raise ValueError(f"-n = {n} is out of range: allowed auto or 1 or more")
    if scheduler:
        raise ValueError(f"-n = {n} sets the local worker processes; with --scheduler the "
                         "cluster's workers run the chunks: leave out -n (or give -n auto)")
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m swattn.sim.regress",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--verilator-jobs", type=int, default=10_000)
    ap.add_argument("--icarus-jobs", type=int, default=1_000)
    ap.add_argument("--chunk", type=int, default=200, help="random jobs per Verilator run")
    ap.add_argument("--icarus-chunk", type=int, default=50, help="random jobs per Icarus run")
    ap.add_argument("--axi-jobs", type=int, default=400,
                    help="random jobs through the AXI top (shared by the simulators; 0: none)")
    ap.add_argument("--shard", default="1/1", help="I/N: run every N-th chunk from the I-th")
    ap.add_argument("-n", "--workers", "--jobs", dest="workers", default="auto",
                    help="local Dask worker processes, a chunk at a time each (auto: the cores)")
    ap.add_argument("--scheduler", metavar="ADDRESS",
                    help="run the chunks on an existing Dask cluster at this address (e.g. "
                         "tcp://host:8786) instead of local workers; its workers must see "
                         "this checkout's folders")
    ap.add_argument("--rerun", metavar="CHUNK", help="re-run one job of this chunk (with --seed)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--list", action="store_true", help="print the chunks of the shard and stop")
    ap.add_argument("--markdown", metavar="SUMMARY_JSON",
                    help="print a summary JSON's figures as the README shows them and stop")
    a = ap.parse_args(argv)
    if a.markdown:
        print(markdown(json.loads(Path(a.markdown).read_text())))
        return 0
    if a.rerun:
        if a.seed is None:
            ap.error("--rerun needs --seed")
        rec = run_chunk(Chunk.from_id(a.rerun), only_seed=a.seed)
        for f in rec["failures"]:
            print(f"FAILED seed {f['seed']} ({f['kind']}): {f['why']}")
        print(f"{rec['passed']}/{rec['jobs']} jobs passed (the job and the one before it)")
        return 1 if rec["failures"] else 0
    chunks = shard(plan(a.verilator_jobs, a.icarus_jobs, a.chunk, a.icarus_chunk, a.axi_jobs),
                   a.shard)
    if a.list:
        for c in chunks:
            print(c.id)
        return 0
    try:
        workers = _workers(a.workers, a.scheduler)
    except ValueError as exc:
        print(f"swattn: error: {exc}", file=sys.stderr)
        return 2
    if not a.scheduler:  # (no more local workers than chunks)
        workers = max(1, min(workers or os.cpu_count() or 1, len(chunks)))
    from swattn.sw.cluster import JobFailed, dask_client
    from swattn.sw.report import checkout_commit
    from swattn.sw.spec.errors import UserError

    t0 = time.monotonic()
    commit = checkout_commit()  # (the checkout the run starts from)
    results = []
    try:
        # (the cluster first: a --scheduler that does not answer is refused before any change)
        with dask_client(a.scheduler, workers) as client:
            ROOT.mkdir(parents=True, exist_ok=True)
            for c in chunks:  # stale results of an earlier run must not count
                p = ROOT / "chunks" / f"{c.id}.json"
                if p.exists():
                    p.unlink()
            where = (f"the Dask cluster at {a.scheduler}" if a.scheduler else
                     f"{workers} local Dask worker(s)")
            print(f"regression: {len(chunks)} chunk(s) (shard {a.shard}) on {where}", flush=True)
            results = run_chunks(client, chunks, log=lambda s: print(s, flush=True))
    except UserError as exc:
        print(f"swattn: error: {exc}", file=sys.stderr)
        return 2
    except JobFailed as exc:  # (chunk_job reports its own errors: the worker itself failed)
        print(f"regression: {exc}", file=sys.stderr)
    rc = 1 if len(results) < len(chunks) or any(r.get("error") or r.get("failures")
                                                 for r in results) else 0
    summary, lines = summarise(chunks, time.monotonic() - t0)
    summary["commit"] = commit
    summary["command"] = "python -m swattn.sim.regress " + " ".join(
        argv if argv is not None else sys.argv[1:])
    print("\n".join(lines))
    out = ROOT / f"summary_{a.shard.replace('/', 'of')}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"summary: {out}")
    full = a.shard == "1/1"
    bad = rc != 0 or summary["failures"] or summary["chunks_missing"] or (full and summary["unhit"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
