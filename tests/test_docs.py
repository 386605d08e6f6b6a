"""The figures in README.md and fpga/README.md are those of the recorded JSON results, and the
register table of docs/axi.md is the register map's (``swattn.sw.docs_results``): a figure or a
register typed by hand, or a result file or register map changed without regenerating the docs,
fails here."""

import json
import shutil
from pathlib import Path

import pytest

from swattn.sw import docs_results as dr

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_show_the_recorded_results():
    assert dr.stale() == [], "run: python -m swattn.sw.docs_results"


def test_every_block_in_the_docs_is_known_and_filled():
    for doc in dr.DOCS:
        text = (ROOT / doc).read_text()
        names = [line.split("results: ")[1].split(" ")[0] for line in text.splitlines()
                 if line.startswith("<!-- results: ")]
        assert names and set(names) <= set(dr.BLOCKS), (doc, names)
        for name in names:
            body = text.split(f"<!-- results: {name} -->\n")[1].split("\n<!-- end results:")[0]
            assert body.strip() and "no recorded" not in body.lower(), (doc, name)


@pytest.fixture
def copy_root(tmp_path):
    for rel in ("docs", "fpga/README.md", "README.md"):
        src = ROOT / rel
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return tmp_path


def test_a_changed_result_makes_the_docs_stale(copy_root, monkeypatch):
    """A new board build (here: its Fmax and seed changed in the JSON) changes the board lines;
    the docs are stale until regenerated, and regenerating states the new figures."""
    monkeypatch.setattr(dr, "ROOT", copy_root)
    path = copy_root / "docs/results/icebreaker.json"
    res = json.loads(path.read_text())
    res["fmax_mhz"], res["seed"] = 41.234, 7
    path.write_text(json.dumps(res))
    assert "README.md" in dr.stale(copy_root)
    assert dr.main([]) == 0 and dr.stale(copy_root) == []
    text = (copy_root / "README.md").read_text()
    assert "41.2 MHz at seed 7 against a target of 36 MHz: meets" in text
    assert "41.2 MHz at seed 7; target 36 MHz: **meets**" in (copy_root / "fpga/README.md").read_text()


def test_a_changed_register_map_makes_docs_axi_stale(copy_root, monkeypatch):
    """docs/axi.md's register table is the register map's for the demo's engine: a changed
    field description makes docs/axi.md (and only it) stale until regenerated."""
    from swattn.sw.demo import engine_params
    from swattn.sw.spec import axi_regs

    text = (ROOT / "docs/axi.md").read_text()
    assert "<!-- results: axi-registers -->\n" + dr.axi_registers_block() + "\n" in text
    assert f"GLOBAL_0 .. GLOBAL_{engine_params().max_globals - 1}" in text
    monkeypatch.setattr(dr, "ROOT", copy_root)
    monkeypatch.setitem(axi_regs.FIELD_TEXT, "cycles", "a renamed counter")
    assert dr.stale(copy_root) == ["docs/axi.md"]
    assert dr.main([]) == 0 and dr.stale(copy_root) == []
    assert "[31:0] cycles: a renamed counter |" in (copy_root / "docs/axi.md").read_text()


def test_docs_axi_lists_every_error_code():
    """docs/axi.md's error table has one row per ``regs.Error`` code, with its value."""
    from swattn.sw.spec.regs import Error

    text = (ROOT / "docs/axi.md").read_text()
    rows = [ln.split("|")[1:3] for ln in text.split("## Errors", 1)[1].splitlines()
            if ln.startswith("| ") and ln.split("|")[1].strip().isdigit()]
    assert [(int(a), b.strip()) for a, b in rows] == [(e.value, e.name) for e in Error]


def test_the_recorded_board_builds_meet_their_clocks_at_the_table_seed():
    """The docs' board figures are builds that meet their targets, at the seed the board table
    records for that netlist (fpga/seeds.json)."""
    from swattn.fpga.boards import BOARDS, recorded_seeds
    seeds = recorded_seeds()
    for name, board in BOARDS.items():
        res = json.loads((ROOT / "docs/results" / f"{name}.json").read_text())
        assert res["ok"] and res["fmax_mhz"] >= res["target_mhz"] == board.clock_hz / 1e6
        assert res["seed"] == board.seed == seeds[name]["seed"]
        assert res["netlist"] == seeds[name]["netlist"]


def test_the_ulx3s_engine_is_the_winner_of_its_recorded_explore_runs():
    """The board table's ULX3S engine is the winner of the recorded ``swattn explore`` runs (the
    highest rate that meets the clock, of the candidates with the board's required features),
    placed at the recorded seed with the recorded netlist and Fmax; every larger candidate there
    either misses the clock or does not fit."""
    from swattn.fpga.boards import BOARDS, recorded_seeds
    from swattn.fpga.explore import winner

    runs = [json.loads(f.read_text())
            for f in sorted((ROOT / "docs/results").glob("explore-ulx3s-85f*.json"))]
    cands = [r for res in runs for r in res["candidates"]]
    board, rec = BOARDS["ulx3s-85f"], recorded_seeds()["ulx3s-85f"]
    best = winner({"candidates": cands}, board.requires)
    assert best is not None and best["params"] == board.params.as_dict()
    assert (best["best_seed"], best["netlist"]) == (rec["seed"], rec["netlist"])
    assert abs(best["fmax_mhz"] - rec["fmax_mhz"]) < 0.01
    larger = [r for r in cands if r["lanes"] > best["lanes"]]
    assert larger and all(not r["fits"] or r["meets"] is False or r["meets"] is None
                          for r in larger)
    assert any(r["meets"] is False for r in larger)  # a larger one placed, and missed


def test_the_board_lines_state_each_boards_logic_multipliers_and_block_ram():
    """The README's line per board names the placed logic (iCE40 cells, ECP5 LUT4), the
    multipliers and the block RAM of its JSON."""
    text = dr.boards_block()
    for name, resources in (("icebreaker", ("logic cells", "DSP (SB_MAC16)", "block RAM (EBR)")),
                            ("ulx3s-85f", ("LUT4 (placed)", "DSP (MULT18X18D)",
                                           "block RAM (DP16KD)"))):
        res = json.loads((ROOT / "docs/results" / f"{name}.json").read_text())
        line = next(ln for ln in text.splitlines() if ln.startswith(f"* `{name}`"))
        for r in resources:
            u = dr._used(res, r, "nextpnr")
            assert f"{u['used']:,} of {u['available']:,} " in line, (name, r, line)


def test_an_unknown_block_is_refused():
    with pytest.raises(ValueError, match="unknown generated block 'nosuch'"):
        dr.render("<!-- results: nosuch -->\nx\n<!-- end results: nosuch -->\n")


def test_the_eval_block_shows_each_text_length(copy_root):
    """With measures at a second text length the eval block adds their table at the table
    budget, a row per predictor with the cover and cosine of each length."""
    path = copy_root / "docs" / "eval.json"
    res = json.loads(path.read_text())
    tb = res["config"]["table_budget"]
    res["by_tokens"] = [{"tokens": n, "predictor": p, "budget": b, "coverage": 0.5 + n / 1e4,
                         "emb_cos": 0.8 - n / 1e5, "sparsity": 0.9}
                        for n in (256, 512) for p in res["config"]["predictors"]
                        for b in (tb, 2 * tb)]
    path.write_text(json.dumps(res))
    lines = dr.eval_block(copy_root).splitlines()
    assert any("cover, 256 tokens | cosine, 256 tokens | cover, 512 tokens" in ln
               for ln in lines)
    for p in res["config"]["predictors"]:
        assert f"| {p} | 0.526 | 0.7974 | 0.551 | 0.7949 |" in lines, p


def test_the_mapper_block_adds_the_calibrated_run(copy_root):
    """With a recorded ``--form-choice calibrated`` run the mapper block names its command and
    counts, and its cover and cosine stand beside the two other runs' in the table; a row it
    did not measure (another length) shows a dash. The run here is the recorded one with bands
    and columns at 256 tokens only, one figure changed."""
    keysets = json.loads((copy_root / "docs" / "eval-keysets.json").read_text())
    cal = json.loads(json.dumps(keysets))
    cal["config"].update(form_choice="calibrated", more_tokens=[])
    cal["by_tokens"] = [dict(r, keyset_heads=0 if r["predictor"] == "bigbird" else 5, heads=72)
                        for r in cal["by_tokens"] if r["tokens"] == 256]
    row = next(r for r in cal["by_tokens"] if r["predictor"] == "dsa" and r["budget"] == 32)
    row["emb_cos"] = 0.91234
    (copy_root / "docs" / "eval-calibrated.json").write_text(json.dumps(cal))
    text = dr.eval_mapper_block(copy_root)
    assert ("`swattn eval --max-bands 4 --max-columns 8 --form-choice calibrated "
            "--also-tokens none --json docs/eval-calibrated.json`") in text
    n = len(cal["by_tokens"])
    nb = sum(r["predictor"] == "bigbird" for r in cal["by_tokens"])
    assert f"over {n} rows" in text and f"{n - nb} of {n} rows keep bands and columns" in text
    lines = text.splitlines()
    dsa = next(ln for ln in lines if ln.startswith("| dsa | 256 |"))
    assert dsa.split(" | ")[-1] == "0.9123 |"
    assert next(ln for ln in lines if ln.startswith("| dsa | 512 |")).endswith(" - |")
