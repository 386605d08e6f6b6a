"""The quick formal proofs (SymbiYosys, smtbmc yices) of ``swattn.sim.formal`` (those marked
``slow`` in ``make test-slow``); ``make formal`` runs them all. Each planted bug must make its proof fail, so a harness that checks nothing (an
assertion that is never evaluated, a clock that never ticks) is caught here."""

import shutil

import pytest

from swattn.sim import formal

QUICK = [p.name for p in formal.PROOFS.values() if p.quick]


def test_quick_set_has_proofs_and_planted_bugs():
    assert any(n.startswith("acc_") for n in QUICK)
    assert any(n.startswith("validator_") for n in QUICK)
    assert any(n.startswith("handshake_") for n in QUICK)
    for wb in formal.BOARD_WORD_BYTES:
        for name in ("feeder_q", "feeder_kv", "board_feeders", "board_tx"):
            assert f"{name}_wb{wb}" in QUICK
    assert {"busy_start_u1", "busy_start_serial"} <= set(QUICK)
    planted = {"planted_feeder_taken", "planted_board_feeders_taken",
               "planted_board_tx_taken", "planted_busy_start_u1", "planted_busy_start_serial"}
    assert planted <= set(QUICK)
    assert sum(formal.PROOFS[n].expect != "PASS" for n in QUICK) >= 5


def test_board_proofs_cover_every_board():
    """The board proofs run at head_dim 32 with each RAM word width in BOARD_WORD_BYTES: every
    board's geometry (RAM words per row) must be among them."""
    from swattn.fpga.boards import BOARDS
    hd = formal.VALIDATOR_SIZES["u1"].head_dim
    proven = {(hd // wb, wb) for wb in formal.BOARD_WORD_BYTES}
    for b in BOARDS.values():
        geometry = (b.params.head_dim // b.word_bytes, b.word_bytes)
        assert geometry in proven, f"{b.name}: RAM geometry {geometry} has no feeder proof"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if formal.PROOFS[n].slow else n for n in QUICK])
def test_proof(name, tmp_path):
    r = formal.run(formal.PROOFS[name], root=tmp_path)
    assert r["ok"], f"{name}: sby said {r['status']}, expected {r['expect']}:\n" + \
        open(r["log"]).read()[-3000:]


def test_reference_error_is_independent_of_the_engine():
    """The harness's reference agrees with HybridPattern's own checks on a few configurations
    (Python evaluation of the same Amaranth expressions through a simulator would be slow; the
    formal proof itself is the cross-check with the RTL)."""
    from amaranth.sim import Simulator
    from amaranth.hdl import Module, Signal

    from swattn.sw.spec import regs
    P = formal.VALIDATOR_SIZES["u1"]
    cfg = Signal(regs.config_layout(P))
    ref = Signal(4)
    m = Module()
    m.d.comb += ref.eq(formal.reference_error(P, cfg))
    cases = [
        (dict(n=8, left=1, right=1, dilation=1, n_globals=0), regs.Error.NONE),
        (dict(n=0, left=1, right=1, dilation=1), regs.Error.N_RANGE),
        (dict(n=8, left=P.max_radius + 1, right=0, dilation=1), regs.Error.RADIUS),
        (dict(n=8, left=1, right=1, dilation=0), regs.Error.DILATION),
        (dict(n=8, left=1, right=1, dilation=1, n_globals=P.max_globals + 1),
         regs.Error.GLOBAL_COUNT),
        (dict(n=8, left=1, right=1, dilation=1, n_globals=2, globals=[2, 8]),
         regs.Error.GLOBAL_RANGE),
        (dict(n=8, left=1, right=1, dilation=1, n_globals=2, globals=[3, 3]),
         regs.Error.GLOBAL_DUP),
        (dict(n=8, left=1, right=1, dilation=1, n_globals=1, globals=[3, 3]), regs.Error.NONE),
    ]
    got = []

    async def tb(ctx):
        for fields, _ in cases:
            ctx.set(cfg.as_value(), regs.pack_config(P, **fields))
            got.append(ctx.get(ref))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert got == [int(e) for _, e in cases]


def test_sby_is_installed():
    assert shutil.which("yowasp-sby") or (formal._tool("yowasp-sby"))


def test_readme_formal_figures_are_the_recorded_run():
    """The README's `make formal` line is `--markdown` of the recorded summary, every proof of
    which came out as expected."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    summary = json.loads((root / "docs/results/formal.json").read_text())
    assert formal.markdown(summary) in (root / "README.md").read_text()
    assert summary["proofs"] == len(summary["results"])
    assert summary["as_expected"] == sum(r["ok"] for r in summary["results"])
    assert {r["name"] for r in summary["results"]} == set(formal.PROOFS)
