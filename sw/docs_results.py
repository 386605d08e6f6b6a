"""The figures in README.md and fpga/README.md, regenerated from the JSON that the measuring
commands write, and the register table of docs/axi.md, regenerated from the register map, so that
no figure and no register in the docs is typed by hand.

Each generated block sits between two markers::

    <!-- results: NAME -->
    ...
    <!-- end results: NAME -->

and :data:`BLOCKS` maps NAME to the function that renders it from ``docs/``'s JSON files:

* ``docs/results/bench.json``: ``make bench`` (``swattn bench --json``);
* ``docs/results/<board>.json``: ``swattn build --board <board> --json``;
* ``docs/results/explore-ulx3s-85f*.json``: ``swattn explore --board ulx3s-85f --json``;
* ``docs/results/regress.json``: ``make regress`` (``python -m swattn.sim.regress``'s summary);
* ``docs/results/formal.json``: ``make formal`` (``python -m swattn.sim.formal --json``);
* ``docs/eval.json``: ``swattn eval --json docs/eval.json``;
* ``docs/eval-keysets.json``: ``swattn eval`` with the mapper's bands and columns, compared with
  ``docs/eval.json``'s window and globals alone;
* ``docs/eval-calibrated.json`` (where recorded): the same with ``--form-choice calibrated``,
  compared likewise;

and two blocks from code, not from a result: ``axi-registers``, the AXI top's register table
(:func:`swattn.sw.spec.axi_regs.markdown`) for the demo's engine
(:func:`swattn.sw.demo.engine_params`), and ``axi-key-registers``, the registers of the bands,
the key-only columns and the 2D grid at their largest (:func:`axi_key_registers_block`).

``python -m swattn.sw.docs_results`` rewrites the blocks in place; ``--check`` only reports the
blocks that differ from their sources (``tests/test_docs.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
#: the files that hold generated blocks
DOCS = ("README.md", "fpga/README.md", "docs/axi.md", "docs/predictors.md")


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _commit(res: dict) -> str:
    return res.get("commit") or "unknown"


def _used(res: dict, resource: str, source: str) -> dict | None:
    return next((u for u in res.get("utilisation", [])
                 if u["resource"] == resource and u["source"] == source), None)


def board_line(res: dict) -> str:
    """One board's build as a sentence: resources, Fmax at the seed, the verdict, the command
    and commit."""
    ecp5 = _used(res, "LUT4 (placed)", "nextpnr") is not None
    if ecp5:
        parts = [f"{u['used']:,} of {u['available']:,} {name}" for name, u in (
            ("LUT4", _used(res, "LUT4 (placed)", "nextpnr")),
            ("MULT18X18D", _used(res, "DSP (MULT18X18D)", "nextpnr")),
            ("DP16KD", _used(res, "block RAM (DP16KD)", "nextpnr"))) if u]
    else:
        parts = [f"{u['used']:,} of {u['available']:,} {name}" for name, u in (
            ("logic cells", _used(res, "logic cells", "nextpnr")),
            ("SB_MAC16", _used(res, "DSP (SB_MAC16)", "nextpnr")),
            ("EBR", _used(res, "block RAM (EBR)", "nextpnr")),
            ("SPRAM", _used(res, "SPRAM", "nextpnr"))) if u]
    verdict = "meets" if res["ok"] else "misses"
    return (f"{', '.join(parts)}; {res['fmax_mhz']:.1f} MHz at seed {res['seed']} against a "
            f"target of {res['target_mhz']:g} MHz: {verdict}. Measured at commit "
            f"{_commit(res)} with `swattn build --board {res['board']}`.")


def boards_block(root: Path = ROOT) -> str:
    lines = []
    for name, what in (("icebreaker", "iCE40UP5K; the serial engine, 2 Q.K + 2 P.V multipliers "
                                      "on the SPRAM's 16-bit words"),
                       ("ulx3s-85f", "ECP5-85F; the stream engine, {lanes} lanes")):
        res = _load(root / "docs" / "results" / f"{name}.json")
        text = board_line(res) if res else "no recorded build"
        what = what.format(lanes=res["params"]["lanes"] if res else "?")
        lines.append(f"* `{name}` ({what}): {text}")
    return "\n".join(lines)


def board_details_block(root: Path = ROOT) -> str:
    """Each board's recorded build in full: every resource, Fmax, seed, critical path."""
    out = []
    for name, title in (("icebreaker", "iCEBreaker (iCE40UP5K)"),
                        ("ulx3s-85f", "ULX3S-85F (ECP5)")):
        res = _load(root / "docs" / "results" / f"{name}.json")
        if not res:
            out.append(f"**{title}**: no recorded build.")
            continue
        placed = [u for u in res["utilisation"] if u["source"] == "nextpnr"]
        synth = [u for u in res["utilisation"] if u["source"] == "yosys"]
        crit = res.get("critical_path") or {}
        verdict = "**meets**" if res["ok"] else "**misses**"
        lines = [f"**{title}**, {res['engine']} engine ({res['params']['lanes']} lanes). "
                 f"Measured at commit {_commit(res)} with `swattn build --board {name}` "
                 f"(its JSON: `docs/results/{name}.json`):", "",
                 "* placed: " + ", ".join(f"{u['resource']} {u['used']:,} of "
                                          f"{u['available']:,}" for u in placed) + ";",
                 "* after synthesis: " + ", ".join(f"{u['resource']} {u['used']:,}"
                                                   for u in synth) + ";",
                 f"* Fmax: {res['fmax_mhz']:.1f} MHz at seed {res['seed']}; target "
                 f"{res['target_mhz']:g} MHz: {verdict};"]
        if crit:
            lines.append(f"* critical path: {crit['ns']:.1f} ns ({crit['routing_ns']:.1f} ns of "
                         f"it routing, {crit['levels']} logic levels), `{crit['from']}` to "
                         f"`{crit['to']}`.")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def utilisation_block(root: Path = ROOT) -> str:
    """The bench's utilisation per lane count on its Longformer-like and BigBird-like heads at
    n = 4096 (cycle model), beside SALO's model at the same multiplier count, and the workloads
    simulated on the RTL with the model's count beside the RTL's."""
    res = _load(root / "docs" / "results" / "bench.json")
    if not res:
        return "No recorded `make bench` run."
    lanes = [str(la) for la in res["lanes_list"]]
    rows = ["| workload (n = 4096, d = 64) | " + " | ".join(f"{la} lanes" for la in lanes)
            + " |", "| --- | " + " | ".join("---:" for _ in lanes) + " |"]
    for w in res["workloads"]:
        if w["n"] != 4096:
            continue
        rows.append(f"| {w['kind']} | " + " | ".join(
            f"{100 * w['lanes'][la]['utilisation']:.1f}% (SALO "
            f"{100 * w['lanes'][la]['salo']['utilisation']:.0f}%)" for la in lanes) + " |")
    rtl = ["| workload (d = 64) | lanes | RTL cycles | cycle model | utilisation (RTL) |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for w in res["workloads"]:
        for la in lanes:
            f = w["lanes"][la]
            if f.get("rtl_cycles"):
                rtl.append(f"| {w['name']} | {la} | {f['rtl_cycles']:,} | "
                           f"{f['engine_cycles']:,} | "
                           f"{100 * f['ideal_cycles'] / f['rtl_cycles']:.1f}% |")
    return (f"`make bench` at commit {_commit(res)} (`docs/results/bench.json`), input never "
            "idle and output always ready; the cycle model's utilisation and, in brackets, "
            "SALO's cycle model at the same multiplier count:\n\n" + "\n".join(rows)
            + "\n\nThe model against the generated Verilog (Verilator):\n\n" + "\n".join(rtl))


def keysets_block(root: Path = ROOT) -> str:
    """The bench's key-set heads (bands, key-only columns, the 2D grid): the engine's
    utilisation (cycle model) beside SALO's model on the smallest window holding their keys."""
    res = _load(root / "docs" / "results" / "bench.json")
    rows = (res or {}).get("keysets") or []
    if not rows:
        return "No recorded `make bench` run with key-set heads."
    out = ["| head (d = 64) | bands | key-only columns | grid (width x radius) | lanes | "
           "utilisation | SALO |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        grid = "x".join(map(str, r["grid"])) if r.get("grid") else "-"
        out.append(f"| {r['head']} | {r['bands']} | {r['columns']} | {grid} | {r['lanes']} | "
                   f"{100 * r['engine_utilisation']:.1f}% | "
                   f"{100 * r['salo_utilisation']:.1f}% |")
    return (f"`make bench` at commit {_commit(res)} (`docs/results/bench.json`), cycle model:\n\n"
            + "\n".join(out))


def explore_block(root: Path = ROOT) -> str:
    """The ULX3S's design-space table: every recorded ``swattn explore`` run of the board
    (``docs/results/explore-ulx3s-85f*.json``, by name), the winner over all (of those with the
    board's required features) marked."""
    from ..fpga.boards import BOARDS
    from ..fpga.explore import markdown
    runs = [_load(f) for f in sorted((root / "docs" / "results").glob("explore-ulx3s-85f*.json"))]
    return (markdown(runs, BOARDS["ulx3s-85f"].requires) if runs
            else "No recorded `swattn explore` run.")


def regress_block(root: Path = ROOT) -> str:
    from ..sim.regress import markdown
    res = _load(root / "docs" / "results" / "regress.json")
    return markdown(res) if res else "No recorded `make regress` run."


def formal_block(root: Path = ROOT) -> str:
    from ..sim.formal import markdown
    res = _load(root / "docs" / "results" / "formal.json")
    return markdown(res) if res else "No recorded `make formal` run."


def eval_block(root: Path = ROOT) -> str:
    from .evaluate import COLUMNS, table_rows
    res = _load(root / "docs" / "eval.json")
    if not res:
        return "No recorded `swattn eval` run."
    cfg = res["config"]
    head = "| predictor | variant | " + " | ".join(label for _, label in COLUMNS) + " |"
    rows = [head, "| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " |"]
    for r in table_rows(res):
        cells = []
        for key, _ in COLUMNS:
            v = r.get(key)
            cells.append("-" if v is None else f"{v:.4f}" if key == "emb_cos" else f"{v:.3f}")
        rows.append(f"| {r['predictor']} | {r['variant']} | " + " | ".join(cells) + " |")
    text = (f"`swattn eval{_mapper_flags(res)} --json docs/eval.json --out docs` at commit "
            f"{_commit(res)}: "
            f"{cfg['texts']} texts of {', '.join(map(str, sorted(set(cfg['tokens']))))} "
            f"tokens, {cfg['table_budget']:g} keys per query, "
            f"{res['runtime_s'] / 60:.1f} min.\n\n" + "\n".join(rows))
    lengths = sorted({r["tokens"] for r in res.get("by_tokens", [])})
    if len(lengths) > 1:
        tb = cfg["table_budget"]
        by = {(r["predictor"], r["tokens"]): r for r in res["by_tokens"] if r["budget"] == tb}
        table = ["| predictor | " + " | ".join(f"cover, {n} tokens | cosine, {n} tokens"
                                              for n in lengths) + " |",
                 "| --- | " + " | ".join("---: | ---:" for _ in lengths) + " |"]
        for name in cfg["predictors"]:
            cells = []
            for n in lengths:
                r = by.get((name, n))
                cells += [f"{r['coverage']:.3f}", f"{r['emb_cos']:.4f}"] if r else ["-", "-"]
            table.append(f"| {name} | " + " | ".join(cells) + " |")
        text += (f"\n\nThe mapped patterns at each text length ({tb:g} keys per query; at "
                 f"{', '.join(map(str, lengths[1:]))} tokens on texts and calibration of that "
                 f"length):\n\n" + "\n".join(table))
    return text


def _mapper_flags(res: dict) -> str:
    """The ``swattn eval`` mapper flags of a recorded run that differ from the defaults."""
    from .evaluate import DEFAULT_FORM_CHOICE, DEFAULT_MAX_BANDS, DEFAULT_MAX_COLUMNS
    mapper = {**(res["config"].get("mapper") or {}),
              "form_choice": res["config"].get("form_choice", DEFAULT_FORM_CHOICE)}
    return "".join(f" --{flag} {mapper[key]}" for key, flag, default in (
        ("max_bands", "max-bands", DEFAULT_MAX_BANDS),
        ("max_columns", "max-columns", DEFAULT_MAX_COLUMNS),
        ("form_choice", "form-choice", DEFAULT_FORM_CHOICE)) if mapper.get(key, default) != default)


def _eval_command(res: dict, path: str) -> str:
    from .evaluate import DEFAULT_ALSO_TOKENS
    more = list(res["config"].get("more_tokens", DEFAULT_ALSO_TOKENS))
    also = "" if more == list(DEFAULT_ALSO_TOKENS) else \
        f" --also-tokens {','.join(map(str, more)) or 'none'}"
    return f"`swattn eval{_mapper_flags(res)}{also} --json {path}` at commit {_commit(res)}"


def eval_mapper_block(root: Path = ROOT) -> str:
    """The mapper with bands and columns against the window and globals alone
    (``docs/eval.json``): each head in the form covering the most of the prediction
    (``docs/eval-keysets.json``) and, where recorded, in the form chosen on the calibration
    texts (``docs/eval-calibrated.json``, ``--form-choice calibrated``): the recorded runs'
    mapped cover and embedding cosine (:func:`swattn.sw.evaluate.compare_mappers`), the table
    budget's rows in full."""
    from .evaluate import compare_mappers
    base, other = (_load(root / "docs" / name) for name in ("eval.json", "eval-keysets.json"))
    if not base or not other:
        return "No recorded pair of `swattn eval` runs."
    cal = _load(root / "docs" / "eval-calibrated.json")

    def summary(c, res, path):
        lengths = sorted({r["tokens"] for r in c["rows"]})
        w = c["emb_cos_worst"]
        down = (f"the largest cosine change down is {w['change']:+.4f} ({w['predictor']}, "
                f"{w['budget']:g} keys, {w['tokens']} tokens)" if w["change"] < 0 else
                "no cosine is below")
        return (f"{_eval_command(res, path)}, {res['config']['texts']} texts at "
                f"{' and '.join(map(str, lengths))} tokens: over {len(c['rows'])} rows "
                f"(predictor x budget x length) the map cover is at or above the window and "
                f"globals' in {c['coverage_not_below']} and the embedding cosine in "
                f"{c['emb_cos_not_below']}; {down}")

    c = compare_mappers(base, other)
    tb = base["config"]["table_budget"]
    lines = [f"Against {_eval_command(base, 'docs/eval.json')}:", "",
             f"* bands and columns wherever they cover more: "
             f"{summary(c, other, 'docs/eval-keysets.json')}" + (";" if cal else ".")]
    by_cal = {}
    if cal:
        c2 = compare_mappers(base, cal)
        kept = [r for r in cal["by_tokens"] if r.get("heads")]
        lines.append(f"* each head's form chosen on the calibration texts: "
                     f"{summary(c2, cal, 'docs/eval-calibrated.json')}; "
                     f"{sum(r['keyset_heads'] > 0 for r in kept)} of {len(kept)} rows keep "
                     f"bands and columns in some heads.")
        by_cal = {(r["predictor"], r["budget"], r["tokens"]): r for r in c2["rows"]}
    lines += ["", f"The rows at {tb:g} keys per query:", "",
              "| predictor | tokens | cover, window | cover, bands + columns "
              + ("| cover, calibrated " if cal else "")
              + "| cosine, window | cosine, bands + columns "
              + ("| cosine, calibrated " if cal else "") + "|",
              "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if cal else "")]
    for r in c["rows"]:
        if r["budget"] != tb:
            continue
        k = by_cal.get((r["predictor"], r["budget"], r["tokens"]))
        cov = [f"{r['base_coverage']:.3f}", f"{r['other_coverage']:.3f}"]
        cos = [f"{r['base_emb_cos']:.4f}", f"{r['other_emb_cos']:.4f}"]
        if cal:
            cov.append(f"{k['other_coverage']:.3f}" if k else "-")
            cos.append(f"{k['other_emb_cos']:.4f}" if k else "-")
        lines.append(f"| {r['predictor']} | {r['tokens']} | " + " | ".join(cov + cos) + " |")
    return "\n".join(lines)


def summary_block(root: Path = ROOT) -> str:
    """One row per measurement: what it shows, the figure, the command and the commit."""
    rows = ["| what | result | command | commit |", "| --- | --- | --- | --- |"]
    bench = _load(root / "docs" / "results" / "bench.json")
    if bench:
        long = [(w, la, f) for w in bench["workloads"] if w["kind"].startswith("longformer")
                for la, f in w["lanes"].items()]
        worst = min(long, key=lambda t: t[2]["utilisation"])
        rtl = [f for w in bench["workloads"] for f in w["lanes"].values() if f.get("rtl_cycles")]
        same = sum(f["rtl_cycles"] == f["engine_cycles"] for f in rtl)
        rows.append(f"| engine utilisation, Longformer-like heads, 8 to "
                    f"{max(map(int, bench['lanes_list']))} lanes | at least "
                    f"{100 * worst[2]['utilisation']:.1f}% ({worst[0]['name']}, {worst[1]} "
                    f"lanes); cycle model equal to the RTL on {same} of {len(rtl)} runs | "
                    f"`make bench` | {_commit(bench)} |")
    for name in ("icebreaker", "ulx3s-85f"):
        res = _load(root / "docs" / "results" / f"{name}.json")
        if res:
            rows.append(f"| {name} build | {res['fmax_mhz']:.1f} MHz at seed {res['seed']} "
                        f"(target {res['target_mhz']:g} MHz) | `swattn build --board {name}` | "
                        f"{_commit(res)} |")
    reg = _load(root / "docs" / "results" / "regress.json")
    if reg:
        names = {k.split("/")[0] for k in reg["by"]}
        sizes = len({n for n in names if not n.startswith("axi.")})
        axi = len({n for n in names if n.startswith("axi.")})
        rows.append(f"| random regression, {sizes} engine sizes"
                    f"{f' and the AXI top at {axi}' if axi else ''} | {reg['passed']:,} of "
                    f"{reg['jobs']:,} "
                    f"jobs bit-exact, {len(reg['coverage']) - len(reg['unhit'])}/"
                    f"{len(reg['coverage'])} coverage bins | `make regress` | {_commit(reg)} |")
    formal = _load(root / "docs" / "results" / "formal.json")
    if formal:
        rows.append(f"| formal proofs and planted bugs | {formal['as_expected']} of "
                    f"{formal['proofs']} as expected | `make formal` | {_commit(formal)} |")
    ev = _load(root / "docs" / "eval.json")
    if ev:
        from .evaluate import table_rows
        mapped = [r for r in table_rows(ev) if r["variant"] == "mapped"
                  and r["predictor"] != "oracle"]
        best = max(mapped, key=lambda r: r["emb_cos"])
        rows.append(f"| best predictor on MiniLM, {ev['config']['table_budget']:g} keys per "
                    f"query, mapped to the engine | {best['predictor']}: embedding cosine "
                    f"{best['emb_cos']:.4f} at sparsity {best['sparsity']:.3f} | `swattn eval` | "
                    f"{_commit(ev)} |")
    return "\n".join(rows)


def axi_registers_block(root: Path = ROOT) -> str:
    """The AXI top's register table for the demo's engine (IDENT and LIMITS: the constants they
    read on it); from the register map itself (no results file, so no commit)."""
    from .demo import engine_params
    from .spec import axi_regs

    return axi_regs.markdown(engine_params())


def _axi_keys_engine():
    from .spec.engine_params import EngineParams

    return EngineParams(head_dim=32, lanes=64, max_bands=16, max_columns=32, grid=True)


def axi_key_registers_block(root: Path = ROOT) -> str:
    """The AXI top's registers of the bands, the key-only columns and the 2D grid on an engine
    with the most of each (max_bands 16, max_columns 32, grid): their fixed offsets; an
    engine has those of them that its parameters give it."""
    from .spec import axi_regs

    return axi_regs.markdown(_axi_keys_engine(), keys_only=True)


BLOCKS = {"summary": summary_block, "boards": boards_block,
          "board-details": board_details_block, "utilisation": utilisation_block,
          "keysets": keysets_block, "explore-ulx3s-85f": explore_block,
          "regress": regress_block, "formal": formal_block, "eval": eval_block,
          "eval-mapper": eval_mapper_block,
          "axi-registers": axi_registers_block, "axi-key-registers": axi_key_registers_block}

_BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end results: "
                    r"(?P=name) -->)", re.S)


def render(text: str, root: Path | None = None) -> str:
    """``text`` with every generated block rendered afresh; an unknown block name is an error."""
    root = root or ROOT

    def one(m: re.Match) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise ValueError(f"unknown generated block {name!r}: one of {', '.join(BLOCKS)}")
        return m.group(1) + BLOCKS[name](root) + "\n" + m.group(4)
    return _BLOCK.sub(one, text)


def stale(root: Path | None = None) -> list[str]:
    """The documents whose generated blocks differ from their JSON (or, for the register
    table, from the register map)."""
    root = root or ROOT
    return [doc for doc in DOCS
            if (root / doc).read_text() != render((root / doc).read_text(), root)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m swattn.sw.docs_results",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only report documents whose figures differ from their sources")
    a = ap.parse_args(argv)
    bad = stale()
    if a.check:
        for doc in bad:
            print(f"{doc}: generated blocks differ from their sources: run "
                  f"python -m swattn.sw.docs_results")
        return 1 if bad else 0
    for doc in bad:
        path = ROOT / doc
        path.write_text(render(path.read_text(), ROOT))
        print(f"rewrote the generated figures of {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
