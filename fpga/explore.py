"""``swattn explore``: a board's engine at other sizes, each synthesised, placed and routed.

A *candidate* is the board's engine (``Board.params``) with its lanes and pipeline stages
replaced (``dataclasses.replace``), on the board otherwise unchanged. Each candidate is
synthesised once (:func:`swattn.fpga.build.build` with ``synth_only``, in its own folder
``<out>/<candidate>``), then placed and routed at each seed
(:func:`swattn.fpga.build.place_seed`, as ``swattn build --seeds`` does); every synthesis and every
candidate x seed is one job of a Dask cluster (:mod:`swattn.sw.cluster`). A candidate's row:
its LUT, flip-flop, multiplier and block RAM use against the device's (nextpnr's placed counts
where a seed was placed, else Yosys's), its best seed's Fmax and late nets, whether that meets
the board's clock, and the useful MAC rate on the board's Longformer-like head at its largest
n (:func:`swattn.sw.bench.boards.longformer_head`: cycles from the cycle model, at the lower of
Fmax and the board's clock) beside the multiplier-bound rate (lanes MACs a cycle) at that clock
(:func:`swattn.sw.bench.boards.head_rate`, the bench's). A candidate that does not fit the
device, or whose elaboration or place and route fails, is a row with the reason.
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..sw.report import checkout_commit
from .boards import Board

#: the table's resources -> the utilisation rows that count them, in order of preference
#: (nextpnr's placed counts first, then Yosys's)
RESOURCES = {
    "LUT": ("LUT4 (placed)", "logic cells", "LUT4"),
    "FF": ("flip-flops (placed)", "flip-flops"),
    "DSP": ("DSP (MULT18X18D)", "DSP (SB_MAC16)"),
    "BRAM": ("block RAM (DP16KD)", "block RAM (EBR)"),
}


@dataclass(frozen=True)
class Candidate:
    """One engine size on the board: ``name`` (``l<lanes>-d<dot>-p<pv>``) and its board."""

    name: str
    board: Board

    @property
    def params(self):
        return self.board.params


def candidate_name(params) -> str:
    """``l<lanes>-d<dot>-p<pv>``, with ``-pair`` / ``-nopair`` where the max passes' pairing is
    not the default for the unit count (EngineParams.pair_max), ``-b<max_bands>`` with bands
    beside the window and ``-c<max_columns>`` with key-only columns."""
    name = f"l{params.lanes}-d{params.dot_pipeline}-p{params.pv_pipeline}"
    if params.pair_max is not None and params.pair_max != (params.units > 1):
        name += "-pair" if params.pair_max else "-nopair"
    if params.max_bands > 1:
        name += f"-b{params.max_bands}"
    if params.max_columns:
        name += f"-c{params.max_columns}"
    return name


def candidates(board: Board, lanes=None, dot_pipeline=None, pv_pipeline=None,
               pair_max=None, max_bands=None, max_columns=None) -> list[Candidate]:
    """Every combination of ``lanes`` x ``dot_pipeline`` x ``pv_pipeline`` x ``pair_max`` x
    ``max_bands`` x ``max_columns`` (each None: the board's own) as the board's engine with
    those replaced, in that order, repeats dropped. An engine the parameters refuse raises
    their ValueError (naming the field)."""
    p = board.params
    out, seen = [], set()
    for la, dot, pv, pair, nb, nc in itertools.product(
            lanes or [p.lanes],
            dot_pipeline if dot_pipeline is not None else [p.dot_pipeline],
            pv_pipeline if pv_pipeline is not None else [p.pv_pipeline],
            pair_max if pair_max is not None else [p.pair_max],
            max_bands if max_bands is not None else [p.max_bands],
            max_columns if max_columns is not None else [p.max_columns]):
        params = replace(p, lanes=la, dot_pipeline=dot, pv_pipeline=pv, pair_max=pair,
                         max_bands=nb, max_columns=nc)
        if params.pair_max is not None and params.pair_max == (params.units > 1):
            params = replace(params, pair_max=None)  # (the default: one build)
        name = candidate_name(params)
        if name not in seen:
            seen.add(name)
            out.append(Candidate(name, replace(board, params=params)))
    return out


def synth_job(job: dict) -> dict:
    """A candidate's synthesis (a job of the cluster): :func:`~swattn.fpga.build.build` with
    ``synth_only`` of ``job["board"]`` under ``job["out"]``, its progress in
    ``<out>/progress.log``. A failure of any kind (the elaboration refusing the engine, a tool)
    is the result's ``error``, so that the other candidates go on."""
    import traceback

    from .build import Progress, build

    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "progress.log", "w") as log:
        try:
            res = build(job["board"], out, synth_only=True, seed=job["seed"],
                        progress=Progress(log))
        except Exception as exc:  # noqa: BLE001 - a row with the reason
            log.write(traceback.format_exc())
            return {"ok": False, "failed_step": "elaboration",
                    "error": f"{type(exc).__name__}: {exc} (see {out / 'progress.log'})"}
    res.pop("seed_note", None)  # (the board table's seed is for the board's own netlist)
    return res


def pick(rows: list[dict], labels: tuple[str, ...]) -> dict | None:
    """The first of ``labels`` among the utilisation ``rows``, nextpnr's before Yosys's."""
    for source in ("nextpnr", "yosys"):
        for label in labels:
            for r in rows:
                if r["resource"] == label and r["source"] == source:
                    return r
    return None


def explore(board: Board, cands: list[Candidate], seeds: list[int] | None, out: Path, *,
            synth_only: bool = False, jobs: int | None = None, scheduler: str | None = None,
            limit_s: float | None = None, model=None, log=print) -> dict:
    """Synthesise every candidate and (unless ``synth_only``) place and route it at each of
    ``seeds`` (None: the board's seed), all as jobs of a Dask cluster (``jobs`` local workers
    or the one at ``scheduler``), each place and route stopped after ``limit_s`` seconds if
    given; returns the table (:func:`row` per candidate) with the commit and the settings.
    ``log(line)`` reports each job as it ends."""
    from ..sw.bench.boards import longformer_head
    from ..sw.cluster import dask_client, map_jobs
    from . import pnr_cache
    from .build import best_first, place_seed, pnr_command, seed_line

    if model is None:
        from ..sw.cycles import predict_cycles as model
    seeds = list(seeds or [board.seed])
    out = Path(out).resolve()
    commit = checkout_commit()
    synth, placed = {}, {c.name: [] for c in cands}
    by_name = {c.name: c for c in cands}
    with dask_client(scheduler, jobs) as client:
        where = f"the Dask cluster at {scheduler}" if scheduler else \
            f"{jobs or os.cpu_count() or 1} local worker(s)"
        log(f"explore {board.name}: {len(cands)} candidate(s) "
            + ("synthesised" if synth_only else f"x {len(seeds)} seed(s)")
            + f" on {where}; builds under {out}/<candidate>")
        work = [{"name": c.name, "board": c.board, "out": str(out / c.name), "seed": seeds[0]}
                for c in cands]
        for job, res in map_jobs(client, synth_job, work, label=lambda j: j["name"],
                                 name=f"synth-{board.name}"):
            synth[job["name"]] = res
            log(f"  {job['name']}: " + (f"synthesised in {res.get('seconds', 0):.0f} s"
                                        if res["ok"] else f"not built: {res['error']}"))
        if not synth_only:
            cache = pnr_cache.cache_dir()
            pnr = []
            for c in cands:
                res = synth[c.name]
                if not res["ok"]:
                    continue
                bdir = Path(res["build_dir"]).resolve()
                argv = pnr_command(bdir, c.board)
                pnr += [{"candidate": c.name, "seed": s, "argv": argv, "build_dir": str(bdir),
                         "clock_hz": c.board.clock_hz, "netlist": res["netlist"],
                         "limit_s": limit_s, "family": board.family,
                         "pnr_cache": None if cache is None else str(cache)} for s in seeds]
            for job, r in map_jobs(client, place_seed, pnr,
                                   label=lambda j: f"{j['candidate']} seed {j['seed']}",
                                   name=f"place-{board.name}"):
                placed[job["candidate"]].append(r)
                log(f"  {job['candidate']} {seed_line(r)}")
    head = longformer_head(board.params)
    rows = [row(by_name[name], synth[name], best_first(placed[name]), synth_only, head, model)
            for name in by_name]
    device = board.platform.split(":")[1].replace("_Platform", "").replace("Platform", "")
    return {"board": board.name, "device": device,
            "target_mhz": board.clock_hz / 1e6, "commit": commit,
            "generated_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "synth_only": synth_only, "seeds": [] if synth_only else seeds,
            "seed_minutes": None if limit_s is None else limit_s / 60, "out": str(out),
            "head": {"name": head.name, "n": head.n, "radius": head.radius,
                     "globals": head.globals, "head_dim": head.head_dim},
            "candidates": rows}


def row(c: Candidate, synth: dict, seeds: list[dict], synth_only: bool, head, model) -> dict:
    """A candidate's row of the table: its engine, resources, best seed, the verdict against
    the board's clock and the rate on ``head``; ``fits`` False with ``reason`` for one that does
    not fit or failed."""
    from ..sw.bench.boards import head_rate

    p, target = c.params, c.board.clock_hz / 1e6
    r = {"candidate": c.name, "lanes": p.lanes, "dot_pipeline": p.dot_pipeline,
         "pv_pipeline": p.pv_pipeline, "paired_max": p.paired_max, "params": p.as_dict(),
         "build_dir": synth.get("build_dir"), "netlist": synth.get("netlist"),
         "synth_seconds": synth.get("seconds"), "fits": bool(synth.get("ok")), "reason": None,
         "resources": {}, "seeds": seeds, "best_seed": None, "fmax_mhz": None,
         "late_nets": None, "meets": None, "rate": None}
    best = seeds[0] if seeds and seeds[0].get("fmax_mhz") else None
    util = list((best or {}).get("utilisation") or []) + list(synth.get("utilisation") or [])
    for key, labels in RESOURCES.items():
        u = pick(util, labels)
        if u is not None:
            r["resources"][key] = {"used": u["used"], "available": u["available"],
                                   "counted": f"{u['resource']} ({u['source']})"}
    if not synth.get("ok"):
        r["reason"] = synth.get("error") or "synthesis failed"
        return r
    if not synth_only:
        if best is None:
            r["fits"] = False
            how = ", ".join(f"seed {s['seed']}: " + ("stopped after the time limit"
                                                      if s["rc"] == "stopped" else
                                                      f"exit {s['rc']}") for s in seeds)
            r["reason"] = (f"place and route gave no result ({how}; logs: "
                           f"{synth.get('build_dir')}/nextpnr_seed<N>.log)")
            return r
        r.update(best_seed=best["seed"], fmax_mhz=best["fmax_mhz"],
                 late_nets=best["late_nets"], meets=best["meets"])
    mhz = min(r["fmax_mhz"], target) if r["fmax_mhz"] else target
    r["rate"] = dict(head_rate(p, head, mhz, model), head=head.name,
                     clock=("the board's clock" if mhz == target else "Fmax")
                     + (" (no Fmax: synthesis only)" if r["fmax_mhz"] is None else ""))
    return r


def has_features(params: dict, requires: dict | None) -> bool:
    """The engine parameters ``params`` have at least each of ``requires`` (e.g. the board's
    ``{"max_bands": 4, "max_columns": 8}``: :attr:`swattn.fpga.boards.Board.requires`)."""
    return all(params.get(k, 0) >= v for k, v in (requires or {}).items())


def winner(res: dict, requires: dict | None = None) -> dict | None:
    """The table's winner: of the candidates that were placed and meet the board's clock (and
    have the engine features ``requires``), the one with the highest useful rate on the board's
    head (None when none does)."""
    ok = [r for r in res["candidates"] if r["fits"] and r.get("meets") and r.get("rate")
          and has_features(r.get("params") or {}, requires)]
    return max(ok, key=lambda r: r["rate"]["gmac_s"]) if ok else None


def command(res: dict) -> str:
    """The ``swattn explore`` command line that made the table ``res``."""
    cmd = [f"swattn explore --board {res['board']}"]
    for flag, key in (("--lanes", "lanes"), ("--dot-pipeline", "dot_pipeline"),
                      ("--pv-pipeline", "pv_pipeline")):
        vals = list(dict.fromkeys(r[key] for r in res["candidates"]))
        cmd.append(f"{flag} {' '.join(map(str, vals))}")
    # (bands and columns from the engine's parameters, named only where a candidate has them)
    for flag, key, none in (("--max-bands", "max_bands", 1), ("--max-columns", "max_columns", 0)):
        vals = list(dict.fromkeys((r.get("params") or {}).get(key, none)
                                  for r in res["candidates"]))
        if vals != [none]:
            cmd.append(f"{flag} {' '.join(map(str, vals))}")
    cmd.append("--synth-only" if res["synth_only"] else
               f"--seeds {','.join(map(str, res['seeds']))}")
    if res.get("seed_minutes"):
        cmd.append(f"--seed-minutes {res['seed_minutes']:g}")
    return " ".join(cmd)


def markdown(runs, requires: dict | None = None) -> str:
    """Tables of ``swattn explore`` (one result, or a list of them for one board) as Markdown
    (the docs' generated block): a row per candidate, the winner over all of them (of those
    with the features ``requires``, the board's) marked, and the reasons of those that do not
    fit. With several results the rows name their run."""
    runs = [runs] if isinstance(runs, dict) else list(runs)
    first, h = runs[0], runs[0]["head"]
    best = winner({"candidates": [r for res in runs for r in res["candidates"]]}, requires)
    about = (f"({first['device']}, {first['target_mhz']:g} MHz; the rate on {h['name']}: n = "
             f"{h['n']}, radius {h['radius']}, {h['globals']} globals, d {h['head_dim']}, cycles "
             f"from the cycle model at the lower of Fmax and the board's clock)")
    many = len(runs) > 1
    if many:
        lines = [f"{len(runs)} runs {about}:", ""] + [
            f"{i}. `{command(res)}` at commit {res['commit']}" for i, res in enumerate(runs, 1)]
    else:
        lines = [f"`{command(first)}` at commit {first['commit']} {about}:"]
    lines += ["", ("| run " if many else "") + "| candidate | LUT4 | MULT18X18D / DSP | block RAM "
              "| Fmax MHz (seed) | late nets | meets | GMAC/s | of lanes x clock |",
              ("| ---: " if many else "") + "| --- | ---: | ---: | ---: | ---: | ---: | --- "
              "| ---: | ---: |"]
    for i, res in enumerate(runs, 1):
        for r in res["candidates"]:
            cols = [str(i)] if many else []
            cols.append(f"**{r['candidate']}** (winner)" if r is best else r["candidate"])
            for key in ("LUT", "DSP", "BRAM"):
                u = r["resources"].get(key)
                cols.append(f"{u['used']:,} of {u['available']:,}" if u and u["available"]
                            else (f"{u['used']:,}" if u else "-"))
            if not r["fits"]:
                why = "does not fit" if "does not fit" in (r["reason"] or "") else "not built"
                cols += ["-", "-", why, "-", "-"]
            else:
                f, rate = r["fmax_mhz"], r["rate"]
                cols += [f"{f:.1f} ({r['best_seed']})" if f else "-",
                         "-" if r["late_nets"] is None else str(r["late_nets"]),
                         "-" if r["meets"] is None else ("yes" if r["meets"] else "no"),
                         f"{rate['gmac_s']:.2f} at {rate['mhz']:.1f} MHz",
                         f"{rate['fraction_of_peak']:.1%}"]
            lines.append("| " + " | ".join(cols) + " |")
    for i, res in enumerate(runs, 1):
        for r in res["candidates"]:
            lost = [s for s in r.get("seeds") or [] if not s.get("fmax_mhz")]
            if r["fits"] and lost:
                how = ", ".join(f"seed {s['seed']} " + (
                    "stopped after the time limit" if s["rc"] == "stopped" else
                    f"exit {s['rc']}") for s in lost)
                lines += ["", (f"Run {i}, " if many else "") + f"{r['candidate']}: no result at "
                          f"{how}."]
            if not r["fits"]:
                # (without the log's folder: the docs name no machine's paths)
                why = re.split(r"; logs: | \(see ", r["reason"] or "")[0]
                why += ")" if why.count("(") > why.count(")") else ""
                lines += ["", (f"Run {i}, " if many else "") + f"{r['candidate']}: {why}."]
    return "\n".join(lines)
