"""``swattn eval --form-choice``: how each head's mapped form is chosen where the mapper may use
bands and columns. ``cover`` is the run without the option; ``calibrated`` gives a head bands
and columns only where they gave a lower attention-output error on the calibration texts
(:func:`swattn.sw.evaluate.choose_forms`) and keeps that choice only where it also raises the
embedding cosine there, text by text beyond chance (:func:`swattn.sw.evaluate.keep_if_closer`):
the map cover never falls below the window and globals', nor, on the evaluation texts below,
the embedding cosine. The CLI refuses ``calibrated`` where there is nothing to choose
between."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swattn.sw import evaluate
from swattn.sw.cli import eval as eval_cli
from swattn.sw.mapper import Mapping
from swattn.sw.minilm import LayerTrace, Trace
from swattn.sw.spec.keyset import EngineForm
from swattn.sw.spec.pattern import HybridPattern

SWATTN = str(Path(sys.executable).with_name("swattn"))

N = 48  #: tokens of the crafted traces
BAND = (20, 4)  #: the crafted band beside the window: keys i + 20 .. i + 23


# --- the choice on crafted traces ---------------------------------------------------------------

def _head(targets: np.ndarray) -> np.ndarray:
    """A head's Q with K the identity: query i's score is 8 on its ``targets[i]`` keys, 0
    elsewhere, so that dense attention puts nearly all its weight there."""
    return np.where(targets, 8.0 * np.sqrt(N), 0.0)


def _band_targets() -> np.ndarray:
    """Each query's keys i + 20 .. i + 23 (its own key where those lie past the end)."""
    i, j = np.indices((N, N))
    t = (j - i >= BAND[0]) & (j - i < BAND[0] + BAND[1])
    return t | (~t.any(-1, keepdims=True) & (i == j))


def _window_targets() -> np.ndarray:
    """Each query's keys i - 4 .. i + 4."""
    i, j = np.indices((N, N))
    return np.abs(j - i) <= 4


def _trace(layers: list[list[np.ndarray]], seed: int = 0) -> Trace:
    """A trace whose layer l, head h attends to ``layers[l][h]`` (a targets array)."""
    rng = np.random.default_rng(seed)
    out = []
    for heads in layers:
        q = np.stack([_head(t) for t in heads])
        k = np.broadcast_to(np.eye(N), q.shape).copy()
        v = rng.normal(size=(len(heads), N, 8))
        out.append(LayerTrace(hidden=np.zeros((N, 4)), q=q, k=k, v=v, out=np.zeros((N, 8))))
    return Trace(ids=np.arange(N), layers=out)


class _Everything:
    """A predictor that predicts every key (the stub mappers below ignore the masks)."""

    def __init__(self):
        self.budgets = []

    def predict(self, x, budget):
        self.budgets.append(budget)
        return np.ones((x.heads, x.n, x.n), dtype=bool)


def _mapper(pattern):
    return lambda masks: [Mapping(pattern, 1.0, 0.0, 1.0) for _ in masks]


#: the window and globals alone: a window of radius 4
PLAIN = _mapper(HybridPattern(N, 4, 4))
#: the bands' form: a window of radius 1 and the band at 20 .. 23, the same budget spent apart
KEYSET = _mapper(EngineForm(N, 1, 1, bands=(BAND,)))


def test_choice_keeps_bands_and_columns_only_where_their_error_is_lower():
    """A head attending to the band is better served by the form with the band, one attending
    to the nearby keys by the wider window: the choice follows each head's attention, per layer
    and head, not the form."""
    traces = [_trace([[_band_targets(), _window_targets()],
                      [_window_targets(), _band_targets()]], seed=s) for s in (1, 2)]
    pred = _Everything()
    use = evaluate.choose_forms(pred, traces, 1000.0, KEYSET, PLAIN)
    assert use.dtype == bool
    assert use.tolist() == [[True, False], [False, True]]
    assert set(pred.budgets) == {N}  # the budget taken down to the text's length
    # the two mappers swapped: the choice swaps too
    assert evaluate.choose_forms(pred, traces, 16.0, PLAIN, KEYSET).tolist() == [
        [False, True], [True, False]]


def test_choice_sums_the_error_over_the_texts():
    """A head attending to the band in one text and to the nearby keys in the other: the band's
    form misses nearly all of the nearby keys' attention (a relative error above 1) where the
    window misses the band's (about 0.7), so over both texts the window wins, whichever text
    comes first."""
    band, window = _band_targets(), _window_targets()
    traces = [_trace([[band, window]], seed=1), _trace([[window, band]], seed=2)]
    assert evaluate.choose_forms(_Everything(), traces, 16.0, KEYSET, PLAIN).tolist() == [
        [False, False]]


def test_choice_ties_keep_the_window_and_globals():
    """Where both mappings give the same pattern, their errors tie: no head takes bands and
    columns."""
    traces = [_trace([[_band_targets(), _window_targets()]])]
    assert not evaluate.choose_forms(_Everything(), traces, 16.0, KEYSET, KEYSET).any()
    assert not evaluate.choose_forms(_Everything(), traces, 16.0, PLAIN, PLAIN).any()


def test_each_head_is_mapped_in_its_chosen_form():
    """Head h of layer li is mapped with bands and columns where the choice says so, with the
    window and globals elsewhere; without a choice every head takes bands and columns."""
    masks = np.ones((3, N, N), dtype=bool)
    use = np.array([[True, False, True], [False, False, True]])
    forms = evaluate._HeadForms(KEYSET, PLAIN, use)
    assert [type(m.pattern) for m in forms(0, masks)] == [EngineForm, HybridPattern, EngineForm]
    assert [type(m.pattern) for m in forms(1, masks)] == [HybridPattern, HybridPattern,
                                                          EngineForm]
    assert forms.record() == {"keyset_heads": 3, "heads": 6, "keyset_heads_by_error": 3}
    fewer = evaluate._HeadForms(KEYSET, PLAIN, np.zeros_like(use), by_error=use)
    assert [type(m.pattern) for m in fewer(0, masks)] == [HybridPattern] * 3
    assert fewer.record() == {"keyset_heads": 0, "heads": 6, "keyset_heads_by_error": 3}
    every = evaluate._HeadForms(KEYSET)
    assert [type(m.pattern) for m in every(1, masks)] == [EngineForm] * 3
    assert every.record() == {}


class _Cosines:
    """Per-text embedding cosines by choice: ``chosen`` for the heads' choice, ``window`` for
    none."""

    def __init__(self, chosen, window):
        self.chosen, self.window, self.asked = np.asarray(chosen), np.asarray(window), []

    def __call__(self, use):
        self.asked.append(use.copy())
        return self.window if not use.any() else self.chosen


USE = np.array([[True, False], [False, True]])
#: calibration cosines of eight texts with the window and globals in every head
WINDOW8 = np.array([0.84, 0.86, 0.82, 0.84, 0.83, 0.81, 0.84, 0.76])


def test_the_choice_is_kept_where_it_raises_the_embedding_cosine_on_the_texts():
    """A gain of about a hundredth on every text, with some spread: kept, with its mean gain
    and a p-value below the threshold."""
    gain = np.array([0.012, 0.008, 0.011, 0.009, 0.013, 0.007, 0.010, 0.010])
    cos = _Cosines(chosen=WINDOW8 + gain, window=WINDOW8)
    kept, mean_gain, p = evaluate.keep_if_closer(USE, cos)
    assert kept.tolist() == USE.tolist()
    assert mean_gain == pytest.approx(gain.mean(), abs=1e-12)
    assert 0 <= p < evaluate.CHOICE_ALPHA
    assert sorted(int(u.sum()) for u in cos.asked) == [0, 2]  # the choice and no head


@pytest.mark.parametrize("gain", [
    np.full(8, -0.01),  # lower on every text
    np.zeros(8),  # no higher
    np.array([0.01, -0.01] * 4),  # as often lower as higher
    # higher on average (+0.018) but lower on three of the eight texts: not beyond chance
    np.array([-0.0106, -0.0534, 0.0346, -0.0134, 0.0693, 0.0569, 0.0188, 0.0394]),
])
def test_the_choice_is_dropped_where_it_does_not_raise_the_embedding_cosine(gain):
    """Heads whose own attention error is lower but whose embedding cosine together is lower,
    no higher, or higher on some texts and lower on others: every head keeps the window and
    globals."""
    kept, mean_gain, p = evaluate.keep_if_closer(USE, _Cosines(WINDOW8 + gain, WINDOW8))
    assert kept.shape == USE.shape and not kept.any()
    assert mean_gain == pytest.approx(gain.mean(), abs=1e-12)
    assert not p < evaluate.CHOICE_ALPHA


def test_the_same_gain_on_every_text_is_kept():
    kept, mean_gain, p = evaluate.keep_if_closer(USE, _Cosines(WINDOW8 + 0.01, WINDOW8))
    assert kept.tolist() == USE.tolist() and mean_gain == pytest.approx(0.01) and p == 0.0


def test_one_text_cannot_show_the_gain():
    kept, mean_gain, p = evaluate.keep_if_closer(USE, _Cosines([0.95], [0.80]))
    assert not kept.any() and mean_gain == pytest.approx(0.15) and np.isnan(p)


def test_no_head_to_check_costs_no_cosine():
    cos = _Cosines(chosen=[1.0, 1.0], window=[0.0, 0.0])
    kept, mean_gain, p = evaluate.keep_if_closer(np.zeros_like(USE), cos)
    assert not kept.any() and mean_gain is None and p is None
    assert cos.asked == []


def test_the_test_is_recorded_with_the_choice():
    use = np.array([[True, False, True], [False, False, True]])
    forms = evaluate._HeadForms(KEYSET, PLAIN, use, gain=0.02, p=0.001)
    assert forms.record() == {"keyset_heads": 3, "heads": 6, "keyset_heads_by_error": 3,
                              "keyset_cos_gain": 0.02, "keyset_p": 0.001}


def test_choice_needs_a_calibration_trace():
    with pytest.raises(ValueError, match="at least one calibration trace"):
        evaluate.choose_forms(_Everything(), [], 16.0, KEYSET, PLAIN)


# --- the evaluation -----------------------------------------------------------------------------

KEYSETS = {"max_bands": 4, "max_columns": 8}


@pytest.fixture(scope="module")
def texts128():
    from swattn.sw import minilm, texts

    cal = [minilm.tokenize(t) for t in texts.calibration_texts(4, 128)]
    ev = [minilm.tokenize(t) for t in texts.evaluation_texts(1, 128)]
    return cal, ev


def _run(texts128, mapper_kw, **kw):
    cal, ev = texts128
    return evaluate.evaluate(["dsa", "bigbird"], [16.0], cal, ev, 16.0, golden=False,
                             mapper_kw=mapper_kw, **kw)


@pytest.fixture(scope="module")
def runs(texts128):
    """The window and globals alone, bands and columns by cover (with the option and without)
    and bands and columns by calibration."""
    return {"plain": _run(texts128, {"max_bands": 1, "max_columns": 0}),
            "none": _run(texts128, KEYSETS),
            "cover": _run(texts128, KEYSETS, form_choice="cover"),
            "calibrated": _run(texts128, KEYSETS, form_choice="calibrated")}


def test_cover_is_the_run_without_the_option(runs, texts128):
    """``cover`` gives the run without the option, figure for figure, every head mapped with the
    bands and columns asked for: the mapped cover is the mean of the mapper's own over the
    layers and heads."""
    from swattn.sw import mapper, minilm
    from swattn.sw.predictors.base import LayerInput, make

    none, cover = runs["none"], runs["cover"]
    assert cover["results"] == none["results"] and cover["by_tokens"] == none["by_tokens"]
    assert none["config"]["form_choice"] == cover["config"]["form_choice"] == "cover"
    assert "form_choice_seconds" not in cover
    assert not any("keyset_heads" in r for r in cover["results"] + cover["by_tokens"])
    cal, ev = texts128
    model = minilm.load()
    pred = make("dsa").fit([model.forward(i) for i in cal])
    trace = model.forward(ev[0])
    cover_ = [m.coverage for li in range(len(trace.layers))
              for m in mapper.map_masks(pred.predict(LayerInput.from_trace(trace, li), 16.0),
                                        **KEYSETS)]
    row = next(r for r in cover["results"] if r["predictor"] == "dsa" and r["variant"] == "mapped")
    assert row["coverage"] == pytest.approx(np.mean(cover_), rel=1e-12)


def test_calibrated_is_at_least_the_window_and_globals(runs):
    """Each head's chosen form covers at least the window and globals' cover of its prediction
    and at most the cover-chosen form's: per predictor and budget the mapped cover lies between
    the two runs', the embedding cosine is at least the window and globals' (DSA gains from
    bands and columns; BigBird's heads, each closer to its own attention with them, move the
    embedding away together and keep the window and globals, as that run), and the choice is
    recorded (heads with bands and columns, of 6 x 12)."""
    plain, cover, cal = runs["plain"], runs["cover"], runs["calibrated"]
    key = lambda r: (r["predictor"], r["budget"])  # noqa: E731
    for variant_rows in ("results", "by_tokens"):
        p = {key(r): r for r in plain[variant_rows] if r.get("variant", "mapped") == "mapped"}
        c = {key(r): r for r in cover[variant_rows] if r.get("variant", "mapped") == "mapped"}
        rows = [r for r in cal[variant_rows] if r.get("variant", "mapped") == "mapped"]
        assert {key(r) for r in rows} == set(p) == {("dsa", 16.0), ("bigbird", 16.0)}
        for r in rows:
            assert p[key(r)]["coverage"] <= r["coverage"] <= c[key(r)]["coverage"], r
            assert r["emb_cos"] >= p[key(r)]["emb_cos"], r
            assert r["heads"] == 72, r
            assert 0 <= r["keyset_heads"] <= r["keyset_heads_by_error"] <= 72, r
            if r["keyset_heads"] < r["heads"]:  # heads left with the window cover less
                assert r["coverage"] < c[key(r)]["coverage"], r
            if r["keyset_heads"] == 0:  # every head with the window and globals
                assert {k: r[k] for k in p[key(r)]} == p[key(r)], r
    assert cal["config"]["form_choice"] == "calibrated"
    assert cal["config"]["mapper"] == KEYSETS
    assert set(cal["form_choice_seconds"]) == {"dsa", "bigbird"}
    # DSA's dynamic masks gain from bands and columns in most heads, not all
    by = {r["predictor"]: r for r in cal["by_tokens"]}
    assert 0 < by["dsa"]["keyset_heads"] < 72
    window = {r["predictor"]: r for r in plain["by_tokens"]}
    assert by["dsa"]["emb_cos"] > window["dsa"]["emb_cos"] + 0.05
    assert by["bigbird"]["keyset_heads"] == 0 < by["bigbird"]["keyset_heads_by_error"]


def test_calibrated_choice_in_a_job_equals_inline(runs, texts128):
    """A predictor's job (what each worker of ``--jobs N`` runs) chooses and measures as the
    inline run."""
    cal, ev = texts128
    job = {"name": "dsa", "budgets": [16.0], "table_budget": 16.0, "golden": False, "seed": 0,
           "mapper_kw": KEYSETS, "form_choice": "calibrated", "ids_cal": cal, "ids_ev": ev,
           "more": []}
    part = evaluate.predictor_job(job)
    inline = [r for r in runs["calibrated"]["results"] if r["predictor"] == "dsa"]
    assert part["rows"] == inline
    assert part["choice_s"] > 0


@pytest.mark.parametrize("mapper_kw", [{}, {"max_bands": 1, "max_columns": 0}])
def test_calibrated_needs_bands_or_columns(mapper_kw):
    with pytest.raises(ValueError, match="form_choice 'calibrated' with max_bands 1 and "
                                         "max_columns 0"):
        evaluate.evaluate(["dsa"], [16.0], [], [], 16.0, mapper_kw=mapper_kw,
                          form_choice="calibrated")
    with pytest.raises(ValueError, match="form_choice = 'best'"):
        evaluate.evaluate(["dsa"], [16.0], [], [], 16.0, mapper_kw=KEYSETS, form_choice="best")


# --- the command line ---------------------------------------------------------------------------

@pytest.mark.parametrize("options", ["--form-choice calibrated --max-bands 1 --max-columns 0",
                                     "--form-choice calibrated"])
def test_cli_refuses_calibrated_without_bands_or_columns(options, tmp_path):
    r = subprocess.run([SWATTN, "eval", *options.split(), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swattn: error:"), r.stderr
    for w in ("--form-choice calibrated", "--max-bands 1", "--max-columns 0",
              "--max-bands 2..16", "--max-columns 1..32"):
        assert w in lines[0], lines[0]


def test_cli_refuses_an_unknown_form_choice(tmp_path):
    r = subprocess.run([SWATTN, "eval", "--form-choice", "best", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("swattn: error:"), r.stderr
    for w in ("--form-choice", "'best'", "cover", "calibrated"):
        assert w in lines[-1], lines[-1]


def test_form_choice_is_parsed():
    p = argparse.ArgumentParser()
    eval_cli.add_arguments(p)
    assert p.parse_args([]).form_choice == evaluate.DEFAULT_FORM_CHOICE == "cover"
    a = p.parse_args("--form-choice calibrated --max-columns 8".split())
    assert (a.form_choice, a.max_bands, a.max_columns) == ("calibrated", 1, 8)
