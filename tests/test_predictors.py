"""Each predictor's behaviour on real MiniLM attention (a fast subset), and ``swattn eval``."""

import json
import os

import numpy as np
import pytest

from swattn.sw import cli, minilm, texts
from swattn.sw.predictors import base, dsa, smartbird, sparsefinder, spion, static
from swattn.sw.predictors.entmax import entmax15_support

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TOKENS = 128


@pytest.fixture(scope="module")
def traces():
    m = minilm.load()
    cal = [m.forward(minilm.tokenize(t)) for t in texts.calibration_texts(3, TOKENS)]
    ev = m.forward(minilm.tokenize(texts.evaluation_texts(1, TOKENS)[0]))
    return cal, ev


@pytest.fixture(scope="module")
def fitted(traces):
    cal, _ = traces
    out = {}
    for name in base.registry():
        kw = {"steps": 60} if name.startswith("sf-") else {}
        out[name] = base.make(name, **kw).fit(cal)
    return out


def _true_topk(scores, k):
    """Top-k per row by a full sort (independent of the code under test)."""
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    m = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(m, order, True, axis=-1)
    return m


def _clear_rows(scores, k, gap=1e-6):
    s = -np.sort(-scores, axis=-1)
    return (s[..., k - 1] - s[..., k]) > gap


def _mass_recall(trace, pred, budget):
    vals = []
    for li in range(len(trace.layers)):
        mask = pred.predict(base.LayerInput.from_trace(trace, li), budget)
        vals.append((trace.layers[li].probs * mask).sum(-1).mean())
    return float(np.mean(vals))


# --- oracle recovery ------------------------------------------------------------------------------

def test_oracle_is_the_true_topk(traces):
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 2)
    got = base.make("oracle").predict(x, 10)
    want = _true_topk(ev.layers[2].probs, 10)
    ok = _clear_rows(ev.layers[2].probs.astype(np.float64), 10)
    assert np.array_equal(got[ok], want[ok])
    assert np.all(got.sum(-1) == 10)


def test_dsa_with_full_rank_float_projection_recovers_the_oracle(traces):
    cal, ev = traces
    p = dsa.DSA(rank=32, bits=None).fit(cal)
    for li in (0, 3, 5):
        x = base.LayerInput.from_trace(ev, li)
        scores = ev.layers[li].scores
        got = p.predict(x, 16)
        ok = _clear_rows(scores, 16)
        assert ok.mean() > 0.95
        assert np.array_equal(got[ok], _true_topk(scores, 16)[ok])


def test_dsa_low_rank_low_bit_is_worse_but_useful(traces, fitted):
    _, ev = traces
    full = dsa.DSA(rank=32, bits=None).fit(traces[0])
    r_full = _mass_recall(ev, full, 16)
    r_dsa = _mass_recall(ev, fitted["dsa"], 16)
    r_static = _mass_recall(ev, fitted["longformer"], 16)
    assert r_full > r_dsa > r_static


def test_smartbird_fed_the_true_attention_recovers_the_oracle(traces):
    _, ev = traces
    lt = ev.layers[1]
    p = smartbird.SmartBird(temperature=0.0)
    p.sketch_scores_fn = lambda x: lt.scores[4]
    got = p.predict(base.LayerInput.from_trace(ev, 1), 12)
    ok = _clear_rows(lt.scores[4], 12)
    for h in range(12):
        assert np.array_equal(got[h][ok], _true_topk(lt.scores[4], 12)[ok])


def test_smartbird_samples_differ_per_head_and_follow_the_sketch(traces, fitted):
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 2)
    m = fitted["smartbird"].predict(x, 16)
    assert np.all(m.sum(-1) == 16)
    assert not np.array_equal(m[0], m[1])
    # sampled pairs carry more sketch probability than uniform picks would
    s = fitted["smartbird"].sketch_scores(x)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert (p * m[0]).sum(1).mean() > 3 * 16 / x.n


# --- budgets --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(base.registry()))
def test_recall_rises_with_budget(traces, fitted, name):
    _, ev = traces
    pred = fitted[name]
    budgets = (8, 24, 64)
    recall = [_mass_recall(ev, pred, b) for b in budgets]
    assert recall[0] < recall[2], recall
    assert recall[1] <= recall[2] + 1e-9, recall
    x = base.LayerInput.from_trace(ev, 3)
    dens = [pred.predict(x, b).mean() for b in budgets]
    assert dens[0] < dens[2]


@pytest.mark.parametrize("name", ["oracle", "dsa", "smartbird", "spion", "sf-distance"])
def test_nested_predictors_are_monotone(traces, fitted, name):
    """Top-k, Gumbel top-k with fixed noise, threshold flood fill and a distance threshold all
    give nested masks as the budget grows."""
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 4)
    small = fitted[name].predict(x, 10)
    large = fitted[name].predict(x, 40)
    assert np.all(large[small])


def test_budget_out_of_range(traces, fitted):
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 0)
    with pytest.raises(ValueError, match="allowed 1.."):
        fitted["oracle"].predict(x, 0)
    with pytest.raises(ValueError, match="unknown predictor"):
        base.make("nope")


# --- static baselines -----------------------------------------------------------------------------

def test_longformer_is_a_band_plus_cls(traces):
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 0)
    p = static.Longformer()
    m = p.predict(x, 20)
    n = x.n
    r = p.radius(n, 20)
    i, j = np.indices((n, n))
    want = (np.abs(i - j) <= r) | (i == 0) | (j == 0)
    assert all(np.array_equal(m[h], want) for h in range(12))
    assert 5 <= r <= 9


def test_bigbird_random_count(traces):
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 0)
    p = static.BigBird(seed=3)
    m = p.predict(x, 30)
    n = x.n
    radius, r = p.split(n, 30)
    assert r > 0 and radius > 0
    i, j = np.indices((n, n))
    fixed = (np.abs(i - j) <= radius) | np.isin(i, [0, n - 1]) | np.isin(j, [0, n - 1])
    for h in range(12):
        assert np.all(m[h][fixed])
        extra = (m[h] & ~fixed).sum(1)
        assert np.all(extra[1:-1] == r)  # every non-global row: exactly r random keys
        assert np.all(m[h][[0, n - 1]])  # global rows see everything
    assert not np.array_equal(m[0], m[1])  # a different draw per head
    assert np.array_equal(m, static.BigBird(seed=3).predict(x, 30))  # and deterministic
    other = base.LayerInput.from_trace(ev, 1)
    assert not np.array_equal(m[0], p.predict(other, 30)[0])  # and per layer


# --- SPION ----------------------------------------------------------------------------------------

def test_spion_flood_fill_follows_the_walk_rule():
    s = np.array([[9, 1, 0, 0],
                  [1, 8, 5, 0],
                  [0, 2, 7, 6],
                  [0, 0, 3, 9]], dtype=float)
    got = spion.flood_fill(s, 4.0)
    # worked by hand: (2, 3) passes the threshold but no walk visits it
    want = np.array([[1, 0, 0, 0],
                     [0, 1, 1, 0],
                     [0, 0, 1, 0],
                     [0, 0, 0, 1]], dtype=bool)
    assert np.array_equal(got, want)


def _components(mask):
    """8-connected components of a boolean matrix (plain BFS)."""
    seen = np.zeros_like(mask)
    comps = 0
    for a, b in zip(*np.nonzero(mask)):
        if seen[a, b]:
            continue
        comps += 1
        stack = [(a, b)]
        seen[a, b] = True
        while stack:
            x, y = stack.pop()
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    u, v = x + dx, y + dy
                    if 0 <= u < mask.shape[0] and 0 <= v < mask.shape[1] and mask[u, v] \
                            and not seen[u, v]:
                        seen[u, v] = True
                        stack.append((u, v))
    return comps


def test_spion_flood_fill_returns_connected_blocks():
    rng = np.random.default_rng(0)
    nb = 12
    s = rng.random((nb, nb)) * 0.2
    # a strong band two blocks below the diagonal and the diagonal itself
    for i in range(nb):
        s[i, i] = 1.0
        if i >= 2:
            s[i, i - 2] = 0.9
    got = spion.flood_fill(s, 0.5)
    want = (s > 0.5)
    # walks follow ridges: everything above the threshold is reached and nothing else, except
    # the band's first cell (2, 0): a seed, and seeds are not marked (as in the paper's code)
    want[2, 0] = False
    assert np.array_equal(got, want)
    assert _components(got & ~np.eye(nb, dtype=bool)) == 1
    assert _components(got) == 1


def test_spion_layer_patterns_are_connected_blocks(traces, fitted):
    _, ev = traces
    p = fitted["spion"]
    for li in range(6):
        blocks = p.block_mask(li, ev.n, 24)
        assert np.all(np.diag(blocks))
        assert _components(blocks) == 1
        m = p.predict(base.LayerInput.from_trace(ev, li), 24)
        # token mask is made of whole blocks, the same for every head
        assert np.array_equal(m[0], spion.expand_blocks(blocks, p.block, ev.n))
        assert all(np.array_equal(m[0], m[h]) for h in range(12))


def test_spion_diagonal_conv_and_pooling():
    rng = np.random.default_rng(1)
    a = rng.random((20, 20))
    got = spion.diagonal_conv(a, 5)
    want = np.zeros_like(a)
    for i in range(20):
        for j in range(20):
            for t in range(-2, 3):
                if 0 <= i + t < 20 and 0 <= j + t < 20:
                    want[i, j] += a[i + t, j + t]
    np.testing.assert_allclose(got, want)
    pooled = spion.block_average(a, 8)
    assert pooled.shape == (3, 3)
    np.testing.assert_allclose(pooled[0, 0], a[:8, :8].mean())
    np.testing.assert_allclose(pooled[2, 2], a[16:, 16:].mean())


# --- Sparsefinder ---------------------------------------------------------------------------------

def test_sparsefinder_training_raises_entmax_recall(traces):
    cal, ev = traces
    untrained = sparsefinder.SparsefinderDistance(steps=0, seed=1).fit(cal)
    trained = sparsefinder.SparsefinderDistance(steps=80, seed=1).fit(cal)

    def recall(p):
        vals = []
        for li in range(6):
            g = entmax15_support(ev.layers[li].scores)
            m = p.graph(None, *p.projected(base.LayerInput.from_trace(ev, li)), 16)
            vals.append((m & g).sum() / g.sum())
        return np.mean(vals)
    assert recall(trained) > recall(untrained) + 0.05


def test_sparsefinder_variants_share_one_projection_whichever_is_fitted_first(traces,
                                                                              monkeypatch):
    """The three variants' shared projection is the same whichever variant trains it: a
    variant's results do not depend on which one a process (or a worker of a parallel
    ``swattn eval``) fitted first; another seed trains another projection."""
    cal, _ = traces
    weights = {}
    for cls in (sparsefinder.SparsefinderQuantization, sparsefinder.SparsefinderKMeans,
                sparsefinder.SparsefinderDistance):
        monkeypatch.setattr(sparsefinder, "_FITTED", {})  # a fresh process
        pred = cls(steps=5, seed=3).fit(cal)
        weights[cls.name] = [(p.wq.copy(), p.wk.copy(), p.bq.copy(), p.bk.copy())
                             for p in (pred.proj[li] for li in range(6))]
    ref = weights.pop("sf-distance")
    for name, got in weights.items():
        for a, b in zip(ref, got):
            for x, y in zip(a, b):
                assert np.array_equal(x, y), name
    monkeypatch.setattr(sparsefinder, "_FITTED", {})
    other = sparsefinder.SparsefinderQuantization(steps=5, seed=4).fit(cal)
    assert not np.array_equal(other.proj[0].wq, ref[0][0])


def test_sparsefinder_adds_window_and_cls(traces, fitted):
    _, ev = traces
    m = fitted["sf-quant"].predict(base.LayerInput.from_trace(ev, 2), 20)
    n = ev.n
    i, j = np.indices((n, n))
    assert np.all(m[:, np.abs(i - j) <= 5])
    assert np.all(m[:, 0, :]) and np.all(m[:, :, 0])


def test_quantisation_buckets_have_equal_size():
    x = np.random.default_rng(2).normal(size=(3, 64, 4))
    ids = sparsefinder.bucket_ids(x, 8)
    for h in range(3):
        for d in range(4):
            assert np.all(np.bincount(ids[h, :, d], minlength=8) == 8)
    assert sparsefinder.buckets_for_density(1 - (1 - 1 / 16) ** 4, 4) == 16


def _quant_with(proj, bucket_size):
    p = sparsefinder.SparsefinderQuantization(bucket_size=bucket_size)
    p.proj, p.fitted = {0: proj}, True
    return p


def test_quantisation_bucket_size_sets_keys_per_dimension():
    """With one projected dimension and n = 128, buckets of 16 tokens give each query exactly
    the 16 keys of its bucket; buckets of 32 contain those of 16; one bucket is everything."""
    rng = np.random.default_rng(11)
    n, heads, d = 128, 3, 32
    x = base.LayerInput(0, rng.normal(size=(heads, n, d)), rng.normal(size=(heads, n, d)),
                        np.zeros((n, 8)))
    proj = sparsefinder.TripletProjection(heads, d, 1, rng)
    a, b = proj.project(x.q, x.k)
    g16 = _quant_with(proj, 16).graph(x, a, b, None)
    g32 = _quant_with(proj, 32).graph(x, a, b, None)
    assert np.all(g16.sum(-1) == 16) and np.all(g32.sum(-1) == 32)
    assert np.all(g32[g16])
    assert np.all(_quant_with(proj, n).graph(x, a, b, None))
    # the 16 keys of a query are the 16 keys nearest to it in rank order of the projection
    order_q = np.argsort(np.argsort(a[0, :, 0]))
    order_k = np.argsort(np.argsort(b[0, :, 0]))
    assert np.array_equal(g16[0], (order_q[:, None] // 16) == (order_k[None, :] // 16))
    with pytest.raises(ValueError, match="bucket_size"):
        sparsefinder.SparsefinderQuantization(bucket_size=0)


def test_kmeans_two_nearest_clusters_contain_the_nearest(traces, fitted):
    _, ev = traces
    x = base.LayerInput.from_trace(ev, 3)
    src = fitted["sf-kmeans"]
    graphs = {}
    for top in (1, 2):
        p = sparsefinder.SparsefinderKMeans(clusters=8, top_clusters=top)
        p.proj, p.calib_points, p.fitted = src.proj, src.calib_points, True
        graphs[top] = p.graph(x, *p.projected(x), None)
    g1, g2 = graphs[1], graphs[2]
    assert np.all(g2[g1]) and g2.sum() > g1.sum()
    # top-1: keys are partitioned by cluster, so two queries see the same keys or disjoint ones
    rows = g1[0]
    overlap = rows.astype(int) @ rows.T.astype(int)
    size = rows.sum(-1)
    same = overlap == np.minimum(size[:, None], size[None, :])
    assert np.all(same | (overlap == 0))
    with pytest.raises(ValueError, match="clusters"):
        sparsefinder.SparsefinderKMeans(clusters=500)


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    pts = np.concatenate([c + rng.normal(scale=0.3, size=(50, 2)) for c in centres])
    got = sparsefinder.kmeans(pts, 3, np.random.default_rng(0))
    d = np.linalg.norm(got[:, None] - centres[None], axis=-1).min(axis=0)
    assert np.all(d < 0.5)


def test_dsa_quantisation_range():
    x = np.random.default_rng(5).normal(size=(100, 8)) * 3
    q = dsa.quantise_symmetric(x, 4)
    assert q.min() >= -8 and q.max() <= 7 and np.all(q == np.round(q))
    assert np.abs(q).max() == 7


# --- swattn eval ----------------------------------------------------------------------------------

def test_eval_cli_small_run(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = cli.main(["eval", "--texts", "1", "--calibration", "2", "--max-tokens", "128",
                   "--also-tokens", "160", "--predictors", "longformer,dsa", "--budgets",
                   "16,32", "--quiet", "--json", str(out), "--out", str(tmp_path / "plots")])
    assert rc == 0
    res = json.loads(out.read_text())
    # the mapped cover and embedding cosine at both text lengths
    n = res["config"]["tokens"][0]
    assert {(r["tokens"], r["predictor"], r["budget"]) for r in res["by_tokens"]} == {
        (t, p, b) for t in (n, 160) for p in ("longformer", "dsa") for b in (16.0, 32.0)}
    assert all(0 < r["coverage"] <= 1 and -1 <= r["emb_cos"] <= 1 for r in res["by_tokens"])
    assert res["config"]["mapper"]["max_bands"] == 1 and res["config"]["more_tokens"] == [160]
    variants = {(r["predictor"], r["budget"], r["variant"]) for r in res["results"]}
    assert ("dsa", 32.0, "int8") in variants and ("dsa", 16.0, "mapped") in variants
    for r in res["results"]:
        assert 0 <= r["sparsity"] <= 1
        assert -1 <= r["emb_cos"] <= 1
    # Longformer is already a window + global pattern: mapping loses nothing
    lf = [r for r in res["results"] if r["predictor"] == "longformer" and r["variant"] == "mapped"]
    assert all(r["coverage"] > 0.999 for r in lf)
    assert res["int8_dense"]["emb_cos"] > 0.999
    assert (tmp_path / "plots" / "eval_pareto.png").stat().st_size > 10_000
    from swattn.sw import evaluate
    assert evaluate.best_predictor(res, metric="mass_recall", variant="raw") == "dsa"
    text = capsys.readouterr().out
    assert "longformer" in text and "int8" in text
    assert "emb. cos 160" in text and f"cover {n}" in text


@pytest.mark.parametrize("argv, message", [
    (["--predictors", "dsa,nope"], "unknown predictor 'nope'"),
    (["--max-tokens", "600"], "out of range: allowed 128..512"),
    (["--budgets", "0,16"], "out of range"),
    (["--out", "/proc/swattn-no-such-dir"], "--out = '/proc/swattn-no-such-dir': cannot create"),
    (["--max-dilation", "0"], "--max-dilation = 0 is out of range"),
])
def test_eval_cli_user_errors(tmp_path, capsys, argv, message):
    # a small run as the base, so that a check that fails to fire costs seconds, not minutes
    small = ["--texts", "1", "--calibration", "1", "--max-tokens", "128", "--predictors",
             "longformer", "--budgets", "16", "--no-golden", "--out", str(tmp_path)]
    rc = cli.main(["eval", "--quiet"] + small + argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_eval_cli_long_text_file(tmp_path, capsys):
    f = tmp_path / "long.txt"
    f.write_text("attention " * 700)
    rc = cli.main(["eval", "--quiet", "--no-plots", "--text-file", str(f)])
    err = capsys.readouterr().err
    assert rc == 2 and "allowed 2..512" in err and len(err.strip().splitlines()) == 1


def test_mapped_patterns_for_a_text(traces, fitted):
    from swattn.sw import evaluate
    text = texts.evaluation_texts(1, TOKENS)[0]
    maps = evaluate.mapped_patterns(text, "spion", budget=24, fitted=fitted["spion"])
    assert len(maps) == 6 and all(len(m) == 12 for m in maps)
    for layer in maps:
        for m in layer:
            assert m.pattern.n == minilm.tokenize(text).size
            assert m.keys_per_query <= m.budget + 1e-9
