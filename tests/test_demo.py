"""``swattn demo`` end to end on a short text (the CI run of ``make demo``), and its errors."""

import json
import os
import subprocess
import sys

import matplotlib.colors as mcolors
import numpy as np
import pytest

from swattn.sw import demo
from swattn.sw.demo import engine_params
from swattn.sw.spec.pattern import HybridPattern


def _demo(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "swattn.sw.cli", "demo", *argv],
                          capture_output=True, text=True, env=env)


def test_demo_short_text(tmp_path):
    res = _demo("--tokens", "128", "--head", "0", "--head", "7", "--predictor", "dsa",
                "--out", str(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rep = json.loads((tmp_path / "report.json").read_text())
    assert [h["head"] for h in rep["heads"]] == [0, 7]
    assert all(h["bit_exact"] for h in rep["heads"])
    limits = engine_params().limits()
    for h in rep["heads"]:
        assert h["left"] * h["dilation"] <= limits.max_radius
        assert len(h["globals"]) <= limits.max_globals
        assert h["cycles"] >= h["ideal_cycles"] > 0
        # the demo's cycle model agrees with the RTL within 2% as well
        assert abs(h["predicted_cycles"] / h["cycles"] - 1) <= 0.02
    assert 0.0 < rep["embedding_cosine"] <= 1.0 + 1e-9
    assert (tmp_path / "verilog" / "swattn_engine.v").is_file()
    assert "bit-exact jobs: 3/3" in res.stdout and "swattn build --board" in res.stdout
    # the report names the predictor's source and explains the utilisation by the cycle model
    assert "predictor: dsa (chosen with --predictor)" in res.stdout
    util = rep["utilisation"]
    assert util["model"] == sum(h["predicted_cycles"] for h in rep["heads"])
    assert util["measured"] == sum(h["cycles"] for h in rep["heads"])
    assert demo.utilisation_line(util) in res.stdout.splitlines()
    _check_keyset_head(rep, res.stdout, tmp_path)


def _check_keyset_head(rep, stdout, out):
    """The demo's head with bands beside the window and key-only columns: its pattern, and its
    Verilog output against the golden model on inputs recomputed here from MiniLM."""
    from swattn.sim.runner import job_pattern
    from swattn.sw import golden, minilm, texts
    from swattn.sw.mapper import keyset
    from swattn.sw.spec.keyset import EngineForm
    from swattn.sw.spec.numerics import SoftmaxConfig, quantise

    ks = rep["keyset"]
    params = engine_params()
    assert params.max_bands > 1 and params.max_columns > 0
    assert rep["params"]["max_bands"] == params.max_bands
    assert rep["params"]["max_columns"] == params.max_columns
    n = rep["text_tokens"]
    form = EngineForm(n, ks["left"], ks["right"], ks["dilation"],
                      tuple(map(tuple, ks["bands"])), tuple(ks["columns"]), tuple(ks["globals"]))
    form.check(params.limits())
    assert len(ks["bands"]) >= 1 and len(ks["columns"]) >= 1, ks
    assert ks["keys_per_query"] == pytest.approx(keyset(form).pairs() / n)
    # the key-set search never covers less than window and globals, within the same budget
    assert ks["coverage"] >= ks["plain"]["coverage"]
    assert ks["keys_per_query"] <= rep["budget"] + 1e-9
    assert ks["bit_exact"] and ks["cycles"] >= ks["ideal_cycles"] > 0
    assert abs(ks["predicted_cycles"] / ks["cycles"] - 1) <= 0.02
    assert ks["utilisation"] == pytest.approx(ks["ideal_cycles"] / ks["cycles"])
    # the job the Verilog ran: this pattern, on layer 0's inputs of that head
    saved = json.loads((out / "keyset_job.json").read_text())
    job = saved["job"]
    assert saved["head"] == ks["head"] and job_pattern(job, params.limits()) == form
    ids = minilm.tokenize(texts.evaluation_texts(1, 128)[0])
    lay = minilm.load().forward(ids).layers[rep["layer"]]
    (qi, sq), (ki, sk), (vi, _) = (quantise(x[ks["head"]]) for x in (lay.q, lay.k, lay.v))
    cfg = SoftmaxConfig.from_scales(sq, sk, 32)
    for got, want in zip(job["data"], (qi, ki, vi)):
        assert np.array_equal(np.asarray(got), want)
    assert (job["mult_mant"], job["mult_shift"], job["out_shift"]) == (
        cfg.mult_mant, cfg.mult_shift, cfg.out_shift)
    want = golden.attention_keys(qi, ki, vi, form.keyset(), cfg)
    assert np.array_equal(np.asarray(saved["output"], dtype=np.int64), want)
    # the report: the head's line, the cosine with bands and columns beside the plain one
    assert demo.keyset_line(ks) in stdout.splitlines()
    assert f"{ks['head']}*" in stdout
    assert 0.0 < rep["embedding_cosine_keyset"] <= 1.0 + 1e-9
    # the picture is of that head, its window-and-globals and its key-set patterns
    assert rep["picture"] == str(out / f"attention_l0_h{ks['head']}.png")
    assert (out / f"attention_l0_h{ks['head']}.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, needle", [
    (["--predictor", "nope"], "--predictor = 'nope' is an unknown predictor"),
    (["--layer", "6"], "--layer = 6"),
    (["--head", "12"], "--head = 12"),
    (["--tokens", "600"], "--tokens = 600"),
    (["--max-bands", "0"], "--max-bands = 0 is out of range: allowed 1..16"),
    (["--max-bands", "17"], "--max-bands = 17 is out of range: allowed 1..16"),
    (["--max-columns", "33"], "--max-columns = 33 is out of range: allowed 0..32"),
    (["--max-columns", "-1"], "--max-columns = -1 is out of range: allowed 0..32"),
    (["--keyset-head", "12"], "--keyset-head = 12 is out of range: allowed 0..11"),
    (["--max-bands", "1", "--max-columns", "0", "--keyset-head", "3"],
     "--keyset-head 3 needs an engine with bands or key-only columns"),
])
def test_demo_bad_options(argv, needle, tmp_path):
    res = _demo(*argv, "--out", str(tmp_path))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert lines[0].startswith("swattn: error: "), lines[0]
    assert "Traceback" not in res.stderr


def test_demo_text_too_long(tmp_path):
    words = " ".join(f"word{i}" for i in range(700))
    f = tmp_path / "long.txt"
    f.write_text(words)
    res = _demo("--text", str(f), "--out", str(tmp_path))
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "tokens" in lines[0] and "512" in lines[0]


def test_demo_missing_simulator(tmp_path):
    # a PATH with the interpreter's folder only: no iverilog
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    res = _demo("--sim", "icarus", "--out", str(tmp_path), env=env)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "iverilog not found" in lines[0], res.stderr


# --- the predictor's choice, the utilisation line and the picture (no simulation) -------------

def _eval_results(best: str, budgets=(16.0, 32.0)) -> dict:
    """A minimal ``swattn eval`` result in which ``best`` has the best mapped embedding cosine."""
    rows = [{"predictor": p, "budget": b, "variant": "mapped", "sparsity": 0.9,
             "emb_cos": 0.99 if p == best else 0.5}
            for b in budgets for p in ("dsa", "longformer", "spion")]
    return {"config": {"table_budget": 32.0}, "results": rows}


def test_predictor_choice_independent_of_cwd(tmp_path, monkeypatch):
    from swattn.sw.evaluate import best_predictor

    here = demo.choose_predictor(None, 32)
    path = next((demo.REPO_ROOT / r for r in demo.EVAL_RESULTS
                 if (demo.REPO_ROOT / r).is_file()), None)
    if path is None:
        pytest.skip("no swattn eval results in this installation")
    assert here[0] == best_predictor(json.loads(path.read_text()), budget=32.0)
    assert f"in {path}, `swattn eval` " in here[1] and " commit " in here[1], here[1]
    # results in the current folder that name another predictor are not looked at
    decoy = next(p for p in ("dsa", "longformer", "spion") if p != here[0])
    for rel in demo.EVAL_RESULTS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(_eval_results(decoy)))
    monkeypatch.chdir(tmp_path)
    assert demo.choose_predictor(None, 32) == here


def test_predictor_choice_names_its_source(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "REPO_ROOT", tmp_path)
    name, why = demo.choose_predictor(None, 32)
    assert name == demo.DEFAULT_PREDICTOR and why.startswith("default: no evaluation found"), why
    assert str(tmp_path / "docs" / "eval.json") in why
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "eval.json").write_text("{not json")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "eval.json").write_text(json.dumps(_eval_results("spion")))
    name, why = demo.choose_predictor(None, 40)
    assert name == "spion"
    assert why.startswith("best embedding cosine of the mapped patterns at 32 keys/query "
                          "(the evaluated budget nearest 40) in " + str(tmp_path / "docs")), why
    assert "not in git" in why and "build/eval.json unusable" in why
    (tmp_path / "docs" / "eval.json").write_text(json.dumps(_eval_results("spion") | {
        "commit": "abc1234"}))
    assert demo.choose_predictor(None, 32)[1].startswith(
        "best embedding cosine of the mapped patterns at 32 keys/query in "
        f"{tmp_path / 'docs' / 'eval.json'}, `swattn eval` at commit abc1234")
    assert demo.choose_predictor("dsa", 32) == ("dsa", "chosen with --predictor")
    u = demo.utilisation_breakdown(engine_params(), [HybridPattern(64, 4, 4)])
    lines = demo.report_lines({"predictor": name, "why": why, "utilisation": u})
    assert lines[0] == f"predictor: spion ({why})"


def _patterns():
    return [HybridPattern(128, 12, 12, 1, (0, 5, 127)), HybridPattern(128, 16, 15, 1, ()),
            HybridPattern(128, 8, 8, 2, (64,))]


def test_utilisation_line_is_the_cycle_models():
    from swattn.sw.cycles import predict_cycles, useful_macs

    params = engine_params()
    pats = _patterns()
    u = demo.utilisation_breakdown(params, pats, measured=12345)
    model = sum(predict_cycles(params, p) for p in pats)
    ideal = sum(useful_macs(p, params.head_dim) for p in pats) / params.lanes
    assert u["model"] == model and u["ideal"] == pytest.approx(ideal)
    assert u["globals"] + u["groups"] + u["start_drain"] == pytest.approx(model - ideal)
    # the windows without globals: nothing for the globals
    assert u["globals"] != 0 and demo.utilisation_breakdown(params, pats[1:2])["globals"] == 0
    # the floor: a query group of a one-key window, by the model
    floor = predict_cycles(params, HybridPattern(256, 0, 0)) - predict_cycles(
        params, HybridPattern(128, 0, 0))
    assert u["floor"] == pytest.approx(floor * params.units / 128)
    line = demo.utilisation_line(u)
    assert "\n" not in line and "`make bench`" in line
    for figure in (f"utilisation {ideal / model:.1%} by the cycle model",
                   f"({ideal:,.0f} MAC-bound cycles of {model:,}; the RTL counted 12,345)",
                   f"at least {u['floor']:.0f} cycles per query",
                   f"{u['groups']:+,.0f} ({u['groups'] / model:.0%})",
                   f"extra passes {u['globals']:+,.0f} ({u['globals'] / model:.0%})",
                   f"start and drain {u['start_drain']:+,.0f} ({u['start_drain'] / model:.0%})"):
        assert figure in line, (figure, line)


def test_picture_has_colour_bar_legend_and_edge_globals():
    import matplotlib.pyplot as plt

    n = 40
    pat = HybridPattern(n, 3, 3, 1, (0, n - 1))  # globals at both edges
    rng = np.random.default_rng(0)
    dense = rng.random((n, n))
    dense /= dense.sum(axis=1, keepdims=True)
    predicted = rng.random((n, n)) < 0.2
    fig = demo.attention_figure(dense, predicted, pat, "test")
    try:
        ax_dense, ax_pred, ax_eng = fig.axes[:3]
        assert ax_dense.images[0].colorbar is not None
        assert ax_dense.images[0].colorbar.ax.get_ylabel() == "log10 attention probability"
        (legend,) = fig.legends
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels == [lab for lab, _ in demo.PAIR_CLASSES]
        assert {"dropped", "kept: global row", "kept: global column"} <= set(labels)
        # one colour per class: the legend's, and the same in both mask panels
        colours = [c for _, c in demo.PAIR_CLASSES]
        assert [mcolors.to_hex(h.get_facecolor()) for h in legend.legend_handles] == colours
        for ax in (ax_pred, ax_eng):
            im = ax.images[0]
            assert [mcolors.to_hex(c) for c in im.cmap.colors] == colours
        pred_cls, eng_cls = demo.pair_classes(predicted, pat)
        assert np.array_equal(ax_pred.images[0].get_array(), pred_cls)
        assert np.array_equal(ax_eng.images[0].get_array(), eng_cls)
        assert set(np.unique(pred_cls)) <= {demo.DROPPED, demo.KEPT}
        assert (eng_cls[0] == demo.GLOBAL_ROW).all() and (eng_cls[1:-1, n - 1] ==
                                                          demo.GLOBAL_COL).all()
        assert (eng_cls[predicted & ~pat.mask()] == demo.MISSED).all()
        # the edge globals: a margin around the matrix, lines through it at least MIN_LINE_PT wide
        x0, x1 = ax_eng.get_xlim()
        assert x0 < -0.5 - 0.9 and x1 > n - 0.5 + 0.9
        for gid, horizontal in (("kept: global row", True), ("kept: global column", False)):
            lines = [ln for ln in ax_eng.get_lines() if ln.get_gid() == gid]
            at = sorted((ln.get_ydata() if horizontal else ln.get_xdata())[0] for ln in lines)
            assert at == [0, n - 1]
            for ln in lines:
                span = ln.get_xdata() if horizontal else ln.get_ydata()
                assert min(span) < -0.5 and max(span) > n - 0.5
                assert ln.get_linewidth() >= demo.MIN_LINE_PT
                assert ln.get_color() == dict(demo.PAIR_CLASSES)[gid]
    finally:
        plt.close(fig)


def _mapping(pattern, coverage):
    from swattn.sw.mapper import Mapping

    return Mapping(pattern, coverage, 4.0, 4.0)


def test_keyset_head_choice():
    from swattn.sw.spec.keyset import EngineForm

    n = 64
    plain = [_mapping(HybridPattern(n, 2, 1), c) for c in (0.5, 0.4, 0.3, 0.2, 0.6)]
    bands = EngineForm(n, 1, 1, 1, ((5, 1),))
    cols = EngineForm(n, 1, 1, 1, (), (9,))
    both = EngineForm(n, 1, 1, 1, ((5, 1),), (9,))
    keyset = [_mapping(bands, 0.9), _mapping(both, 0.5), _mapping(both, 0.45),
              _mapping(cols, 0.8), _mapping(HybridPattern(n, 2, 1), 0.6)]
    # among the heads with bands and columns (1: +0.10, 2: +0.15), the larger gain; not head 0
    # (bands alone, +0.40) or head 3 (columns alone, +0.60)
    head, why = demo.choose_keyset_head(plain, keyset, 2)
    assert head == 2 and "layer 2" in why and "2 heads" in why, why
    assert demo.choose_keyset_head(plain, keyset, 2, head=4) == (4, "chosen with --keyset-head")
    # none with both: the best gain of bands or columns alone
    head, why = demo.choose_keyset_head(plain[:1] + plain[3:], keyset[:1] + keyset[3:], 0)
    assert head == 1 and "a band beside the window or a key-only column" in why, why
    # equal gains: the lower head
    assert demo.choose_keyset_head(plain[1:2] * 3, keyset[1:2] * 3, 0)[0] == 0
    head, why = demo.choose_keyset_head(plain[4:], keyset[4:], 5)
    assert head is None and "no head of layer 5" in why


def test_picture_draws_bands_and_key_only_columns():
    import matplotlib.pyplot as plt
    from swattn.sw.mapper import pattern_mask
    from swattn.sw.spec.keyset import EngineForm

    n = 48
    plain = HybridPattern(n, 3, 3, 2, (7,))
    form = EngineForm(n, 2, 1, 2, ((-9, 2), (5, 1)), (0, 20), (31,))
    rng = np.random.default_rng(1)
    dense = rng.random((n, n))
    dense /= dense.sum(axis=1, keepdims=True)
    predicted = rng.random((n, n)) < 0.2
    _, eng = demo.pair_classes(predicted, form)
    # every kept pair in one of the kept classes, the rest dropped or missed
    kept = np.isin(eng, [demo.KEPT, demo.BAND, demo.COLUMN, demo.GLOBAL_ROW, demo.GLOBAL_COL])
    assert np.array_equal(kept, pattern_mask(form))
    i, j = np.indices((n, n))
    off = j - i
    band = np.isin(off, [-18, -16, 10])
    other = ~np.isin(j, [0, 20, 31]) & (i != 31)
    assert (eng[band & other] == demo.BAND).all() and band[eng == demo.BAND].all()
    assert (eng[other & np.isin(off, [-4, -2, 0, 2])] == demo.KEPT).all()
    rows = np.arange(n) != 31
    assert (eng[rows][:, [0, 20]] == demo.COLUMN).all()
    assert (eng[rows, 31] == demo.GLOBAL_COL).all() and (eng[31] == demo.GLOBAL_ROW).all()
    fig = demo.attention_figure(dense, predicted, [plain, form], "test", ["plain", "bands"])
    try:
        axes = fig.axes[:4]
        assert [ax.get_title().split("\n")[0] for ax in axes[2:]] == ["plain", "bands"]
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "kept: band beside the window" in labels
        assert "kept: key-only column (no row)" in labels
        assert np.array_equal(axes[3].images[0].get_array(), eng)
        colours = dict(demo.PAIR_CLASSES)
        assert len(set(colours.values())) == len(colours)
        band_lab, col_lab = demo.PAIR_CLASSES[demo.BAND][0], demo.PAIR_CLASSES[demo.COLUMN][0]
        m = max(1.0, demo.MARGIN * n)
        # the bands as diagonals, one per offset: x - y is the offset along each line
        diag = [ln for ln in axes[3].get_lines() if ln.get_gid() == band_lab]
        assert sorted(int(ln.get_xdata()[0] - ln.get_ydata()[0]) for ln in diag) == [-18, -16,
                                                                                    10]
        for ln in diag:
            dx, dy = np.diff(ln.get_xdata()), np.diff(ln.get_ydata())
            assert (dx == dy).all() and dx[0] > 0 and ln.get_color() == colours[band_lab]
            assert ln.get_linewidth() >= demo.MIN_LINE_PT
        # key-only columns: vertical, from the top margin through the matrix, not the bottom
        cols = [ln for ln in axes[3].get_lines() if ln.get_gid() == col_lab]
        assert sorted(ln.get_xdata()[0] for ln in cols) == [0, 20]
        for ln in cols:
            assert ln.get_xdata()[0] == ln.get_xdata()[1] and ln.get_color() == colours[col_lab]
            assert min(ln.get_ydata()) < -0.5 and max(ln.get_ydata()) == pytest.approx(n - 0.5)
        globs = [ln for ln in axes[3].get_lines() if ln.get_gid() == "kept: global column"]
        assert [ln.get_xdata()[0] for ln in globs] == [31]
        assert max(globs[0].get_ydata()) == pytest.approx(n - 0.5 + m)
        # the window-and-globals panel: no band, no column
        assert not [ln for ln in axes[2].get_lines() if ln.get_gid() in (band_lab, col_lab)]
        # the dense panel marks the columns in its top margin
        marks = [ln for ln in axes[0].get_lines() if ln.get_gid() == col_lab]
        assert sorted(ln.get_xdata()[0] for ln in marks) == [0, 20]
        assert all(max(ln.get_ydata()) <= -0.5 for ln in marks)
    finally:
        plt.close(fig)
