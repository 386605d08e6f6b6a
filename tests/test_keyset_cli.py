"""Key-set patterns on the command line and in the host driver: ``--bands``, ``--columns``,
``--grid`` and ``--pattern FILE`` (parsing, the pattern's JSON form and its round trip), ``swattn
golden`` on them equal to :func:`swattn.sw.golden.attention_keys`, ``swattn sim`` and ``run``
holding them to the engine's limits, the driver packing an EngineForm, and ``swattn eval``'s
measures at other text lengths."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swattn.sw import cli, golden
from swattn.sw.cli import args as cargs
from swattn.sw.spec.errors import UserError
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.keyset import (Band, EngineForm, Grid, KeySetPattern, pattern_from_json,
                                   pattern_to_json, window_2d)
from swattn.sw.spec.pattern import HybridPattern, PatternError


# --- parsing ------------------------------------------------------------------------------------

def _parse(*argv):
    """The namespace of ``swattn ARGV`` (parsed, not run)."""
    return cli.build_parser().parse_args(list(argv))


def test_bands_columns_grid_parse():
    a = _parse("golden", "--bands", "-8:2,4:1", "--columns", "9,3", "--grid", "16:2")
    assert a.bands == ((-8, 2), (4, 1))  # sorted by start
    assert a.columns == (3, 9)
    assert a.grid == (16, 2)
    assert _parse("golden", "--bands=-3:1").bands == ((-3, 1),)
    assert _parse("golden", "--bands", "+5:2").bands == ((5, 2),)
    assert _parse("golden").bands is None


@pytest.mark.parametrize("fn, text, words", [
    (cargs.bands_type, "x", ["'x' is not START:COUNT"]),
    (cargs.bands_type, "3:0", ["COUNT 0"]),
    (cargs.bands_type, "3", ["not START:COUNT"]),
    (cargs.bands_type, ",", ["empty"]),
    (cargs.columns_type, "1,a", ["not a list of integers"]),
    (cargs.columns_type, "2,2", ["[2] given more than once"]),
    (cargs.columns_type, "-1", ["out of range"]),
    (cargs.grid_type, "4", ["not WIDTH:RADIUS"]),
    (cargs.grid_type, "0:1", ["WIDTH 0"]),
])
def test_bad_values_name_the_option(fn, text, words):
    with pytest.raises(UserError) as e:
        fn(text)
    assert str(e.value).startswith(f"--{fn.__name__} = ")
    for w in words:
        assert w in str(e.value)


def test_flags_give_the_engine_form():
    a = _parse("golden", "--n", "100", "--left", "2", "--right", "1", "--dilation", "2",
               "--bands", "-9:2,5:3", "--columns", "7,50", "--globals", "0")
    p = cargs.keyset_pattern_from_args(a, 64, lambda n, k: ())
    assert p == EngineForm(100, 2, 1, 2, ((-9, 2), (5, 3)), (7, 50), (0,))
    # none of them: today's HybridPattern
    a = _parse("golden", "--n", "100", "--radius", "3")
    assert cargs.keyset_pattern_from_args(a, 64, lambda n, k: ()) == HybridPattern(100, 3, 3)
    # a grid: a KeySetPattern for the golden model, an EngineForm with its grid for an engine
    # with the grid's fields, refused by one without
    a = _parse("golden", "--n", "80", "--radius", "1", "--bands=-11:3,9:3", "--grid", "10:1")
    p = cargs.keyset_pattern_from_args(a, 64, lambda n, k: ())
    assert np.array_equal(p.mask(), window_2d(8, 10, 3).mask())
    P = EngineParams(head_dim=32, lanes=16, max_radius=12, max_bands=4, seq_width=10, grid=True)
    p = cargs.keyset_pattern_from_args(a, 64, lambda n, k: (), limits=P.limits(), grid=True)
    assert isinstance(p, EngineForm) and p.grid == (10, 1)
    assert np.array_equal(p.keyset().mask(), window_2d(8, 10, 3).mask())
    with pytest.raises(UserError, match="--grid = 10:1: this engine was generated without"):
        cargs.keyset_pattern_from_args(a, 64, lambda n, k: (), grid=False)


@pytest.mark.parametrize("argv, words", [
    (["--bands", "1:2"], ["--bands = '1:2'", "overlaps the window"]),
    (["--n", "50", "--columns", "50"], ["--columns = '50'", "0..49"]),
    (["--globals", "3", "--columns", "3,4"], ["--columns = '3,4'", "[3] is also global",
                                              "--globals"]),
    (["--radius", "2", "--bands", "5:2,6:1"], ["--bands", "above band 0"]),
])
def test_bad_patterns_name_the_option(argv, words):
    a = _parse("golden", "--n", "100", "--radius", "4", *argv)
    with pytest.raises(UserError) as e:
        cargs.keyset_pattern_from_args(a, 64, lambda n, k: ())
    for w in words:
        assert w in str(e.value), str(e.value)


@pytest.mark.parametrize("limits, argv, words", [
    (dict(), ["--bands", "20:2"], ["--bands = '20:2'", "without band fields",
                                   "swattn generate --max-bands"]),
    (dict(), ["--columns", "5"], ["--columns = '5'", "without column fields",
                                  "swattn generate --max-columns"]),
    (dict(max_bands=2), ["--bands", "20:1,30:1"], ["3 bands with the window", "1..2",
                                                   "--max-bands"]),
    (dict(max_bands=2, max_radius=64), ["--bands", "70:1"], ["reaches 70 tokens", "0..64",
                                                             "--max-radius"]),
    (dict(max_columns=1), ["--columns", "5,6"], ["2 columns", "0..1", "--max-columns"]),
])
def test_engine_limits_name_the_option(limits, argv, words):
    from swattn.sw.spec.engine_params import EngineParams

    a = _parse("sim", "--n", "100", "--radius", "4", *argv)
    with pytest.raises(UserError) as e:
        cargs.keyset_pattern_from_args(a, 16, cargs.spread_globals,
                                       limits=EngineParams(**limits).limits(), grid=False)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_engine_with_band_and_column_fields_takes_them():
    from swattn.sw.spec.engine_params import EngineParams

    lim = EngineParams(max_bands=3, max_columns=2).limits()
    a = _parse("sim", "--n", "100", "--radius", "4", "--bands=-30:2,20:3", "--columns", "1,2",
               "--n-globals", "2")
    p = cargs.keyset_pattern_from_args(a, 16, cargs.spread_globals, limits=lim, grid=False)
    assert p == EngineForm(100, 4, 4, 1, ((-30, 2), (20, 3)), (1, 2), (0, 50))


# --- the pattern's JSON form --------------------------------------------------------------------

@st.composite
def engine_forms(draw):
    n = draw(st.integers(1, 80))
    d = draw(st.integers(1, 4))
    left, right = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    spans, lo, hi = [], -left - 1, right + 1
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            c = draw(st.integers(1, 3))
            lo = lo - draw(st.integers(1, 9)) - c
            spans.append((lo + 1, c))
        else:
            s, c = hi + draw(st.integers(1, 9)), draw(st.integers(1, 3))
            spans.append((s, c))
            hi = s + c
    g = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=3))
    cols = draw(st.lists(st.integers(0, n - 1).filter(lambda x: x not in g), unique=True,
                         max_size=3))
    return EngineForm(n, left, right, d, tuple(sorted(spans)), tuple(sorted(cols)), tuple(g))


@settings(max_examples=60, deadline=None)
@given(form=engine_forms())
def test_json_round_trip_keeps_the_mask(form):
    text = json.dumps(pattern_to_json(form))
    back = pattern_from_json(json.loads(text))
    assert back == form
    assert np.array_equal(back.keyset().mask(), form.keyset().mask())


def test_json_of_hybrid_and_grid_patterns():
    h = HybridPattern(40, 3, 1, 2, (5, 9))
    d = pattern_to_json(h)
    assert d == {"n": 40, "left": 3, "right": 1, "dilation": 2, "bands": [], "columns": [],
                 "globals": [5, 9]}
    assert np.array_equal(pattern_from_json(d).keyset().mask(), h.mask())
    w = window_2d(6, 9, 3, globals_=(4,), columns=(20,))
    d = json.loads(json.dumps(pattern_to_json(w)))
    assert d["grid"] == [9, 1]
    back = pattern_from_json(d)
    assert isinstance(back, EngineForm) and back.grid == (9, 1)
    assert np.array_equal(back.keyset().mask(), w.mask())
    # a grid with a dilation has no engine form: the key set itself
    dil = KeySetPattern(40, (Band(-2, 3, 2),), Grid(8, 1))
    back = pattern_from_json(json.loads(json.dumps(pattern_to_json(dil))))
    assert isinstance(back, KeySetPattern) and np.array_equal(back.mask(), dil.mask())
    # merged bands come back as one
    ks = KeySetPattern(30, (Band(-2, 5, 1), Band(3, 2, 1), Band(10, 1, 1)))
    assert pattern_to_json(ks)["right"] == 4 and pattern_to_json(ks)["bands"] == [[10, 1]]
    with pytest.raises(PatternError, match="band steps"):
        pattern_to_json(KeySetPattern(30, (Band(0, 2, 1), Band(4, 2, 3))))


@pytest.mark.parametrize("obj, words", [
    ([1], ["JSON object"]),
    ({"n": 9, "left": 1}, ["right: missing"]),
    ({"n": 9, "left": 1, "right": 1, "colums": [2]}, ["unknown key 'colums'"]),
    ({"n": 9, "left": 1, "right": 1, "bands": [[3]]}, ["bands", "[start, count]"]),
    ({"n": 9, "left": 1, "right": 1, "bands": [[3, 1.5]]}, ["bands"]),
    ({"n": 9, "left": 1, "right": 1, "columns": 3}, ["columns"]),
    ({"n": 9, "left": 1, "right": 1, "grid": [3]}, ["grid", "[width, radius]"]),
    ({"n": 9, "left": 1, "right": 1, "bands": [[0, 2]]}, ["overlaps the window"]),
    ({"n": 9, "left": "1", "right": 1}, ["left must be an integer"]),
])
def test_bad_json_says_why(obj, words):
    with pytest.raises(PatternError) as e:
        pattern_from_json(obj)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_mapping_fields_are_read_past():
    d = {"n": 9, "left": 1, "right": 0, "globals": [], "coverage": 0.5, "keys_per_query": 2.0,
         "budget": 2.0}
    assert pattern_from_json(d) == EngineForm(9, 1, 0)


# --- swattn golden ------------------------------------------------------------------------------

@pytest.fixture
def captured(monkeypatch):
    """What ``swattn golden`` ran: its pattern, int8 inputs, softmax config and output."""
    seen = {}
    summary = golden._summary

    def spy(pattern, seed, cfg, ideal, qkv, scales, out, elapsed):
        seen.update(pattern=pattern, cfg=cfg, qkv=qkv, out=out.copy())
        return summary(pattern, seed, cfg, ideal, qkv, scales, out, elapsed)
    monkeypatch.setattr(golden, "_summary", spy)
    return seen


@pytest.mark.parametrize("argv, pattern", [
    (["--n", "300", "--left", "4", "--right", "2", "--dilation", "2", "--bands=-20:3,9:2",
      "--columns", "7,100", "--globals", "0,250"],
     KeySetPattern(300, (Band(-8, 7, 2), Band(-40, 3, 2), Band(18, 2, 2)), None, (7, 100),
                   (0, 250))),
    (["--n", "120", "--radius", "1", "--bands=-13:3,11:3", "--grid", "12:1", "--columns", "3"],
     window_2d(10, 12, 3, columns=(3,))),
])
def test_golden_on_flags_is_attention_keys(argv, pattern, captured, capsys):
    assert cli.main(["golden", "--d", "32", "--seed", "5", *argv, "--json", "-"]) == 0
    res = json.loads(capsys.readouterr().out)
    q, k, v = captured["qkv"]
    want = golden.attention_keys(q, k, v, pattern, captured["cfg"])
    assert np.array_equal(captured["out"], want)
    assert res["pairs"] == pattern.pairs()
    assert res["pattern"] == pattern_to_json(pattern)
    # a different pattern gives a different output on the same data (the test can fail)
    other = KeySetPattern(pattern.n, pattern.bands[:1], None, (), ())
    assert not np.array_equal(want, golden.attention_keys(q, k, v, other, captured["cfg"]))


def test_golden_pattern_file_equals_the_flags(tmp_path, captured, capsys):
    flags = ["--n", "200", "--radius", "3", "--bands", "-30:4,12:1", "--columns", "5",
             "--globals", "9"]
    assert cli.main(["golden", "--d", "32", "--seed", "2", *flags, "--json", "-"]) == 0
    by_flags = json.loads(capsys.readouterr().out)
    out_flags = captured["out"]
    f = tmp_path / "p.json"
    f.write_text(json.dumps(by_flags["pattern"]))
    assert cli.main(["golden", "--d", "32", "--seed", "2", "--pattern", str(f),
                     "--json", "-"]) == 0
    by_file = json.loads(capsys.readouterr().out)
    assert np.array_equal(captured["out"], out_flags)
    for key in ("pattern", "pairs", "output", "max_abs_error_lsb"):
        assert by_file[key] == by_flags[key]
    # with the window's options beside it: refused, naming them
    assert cli.main(["golden", "--pattern", str(f), "--radius", "2"]) == 2
    err = capsys.readouterr().err
    assert "--pattern" in err and "--radius" in err and len(err.strip().splitlines()) == 1


def test_golden_summary_shows_bands_columns_grid(capsys):
    assert cli.main(["golden", "--n", "120", "--d", "32", "--radius", "1", "--bands=-13:3,11:3",
                     "--grid", "12:1", "--columns", "3"]) == 0
    out = capsys.readouterr().out
    assert "bands" in out and "-13:3, 11:3" in out and "columns" in out and "grid" in out


# --- the host driver ----------------------------------------------------------------------------

class _AckLink:
    """Answers every frame with an empty reply echoing its command."""

    def __init__(self):
        self.written = []

    def write(self, data):
        from swattn.sw.spec import protocol as pr

        self.written.append(bytes(data))
        h = pr.decode_header(data[1:1 + pr.HEADER_BYTES])
        self._reply = bytearray(pr.encode_frame(h["cmd"], h["addr"], h["count"],
                                                sync=pr.REPLY_SYNC))

    def read(self, n, timeout):
        out = bytes(self._reply[:n])
        del self._reply[:n]
        return out

    def flush_input(self):
        pass


def test_driver_packs_an_engine_form():
    from swattn.sw.driver import Board, Identity
    from swattn.sw.spec import protocol as pr
    from swattn.sw.spec import regs
    from swattn.sw.spec.engine_params import EngineParams
    from swattn.sw.spec.numerics import SoftmaxConfig

    params = EngineParams(head_dim=32, lanes=64, max_bands=3, max_columns=2)
    link = _AckLink()
    board = Board(link, retries=0)
    board._identity = Identity(params, "0.0.0", pr.PROTOCOL_VERSION, 512, 50_000_000)
    form = EngineForm(64, 2, 2, 1, ((-20, 2), (9, 1)), (3,), (0,))
    cfg = SoftmaxConfig(1000, 10, 0)
    board.configure(form, cfg)
    sent = link.written[-1]
    bits = regs.pack_config(params, form, cfg)
    payload = bits.to_bytes(pr.config_bytes(params), "little")
    assert payload in sent
    hybrid = regs.pack_config(params, form.hybrid(), cfg)
    assert hybrid != bits  # the bands and columns are in the register
    # an engine without band fields cannot take it
    board._identity = Identity(EngineParams(head_dim=32, lanes=64), "0.0.0",
                               pr.PROTOCOL_VERSION, 512, 50_000_000)
    with pytest.raises(ValueError, match="no band fields"):
        board.configure(form, cfg)


# --- swattn eval at other text lengths ----------------------------------------------------------

def test_eval_other_lengths_measure_as_the_main_run():
    """The measures at another text length (``by_tokens``) are the main run's, when given the
    main run's texts: the same coverage, embedding cosine and sparsity."""
    from swattn.sw import evaluate, minilm, texts

    cal = [minilm.tokenize(t) for t in texts.calibration_texts(1, 128)]
    ev = [minilm.tokenize(t) for t in texts.evaluation_texts(1, 128)]
    res = evaluate.evaluate(["longformer", "dsa"], [16.0], cal, ev, 16.0, golden=False,
                            mapper_kw={"max_bands": 3, "max_columns": 4},
                            more_tokens={999: (cal, ev)})
    n = ev[0].size
    main = {(r["predictor"], r["budget"]): r for r in res["by_tokens"] if r["tokens"] == n}
    other = {(r["predictor"], r["budget"]): r for r in res["by_tokens"] if r["tokens"] == 999}
    assert set(main) == set(other) == {("longformer", 16.0), ("dsa", 16.0)}
    for key, r in main.items():
        for m in evaluate.BY_TOKENS_METRICS:
            assert other[key][m] == pytest.approx(r[m], rel=1e-12), (key, m)
    mapped = {r["predictor"]: r for r in res["results"] if r["variant"] == "mapped"}
    assert main["dsa", 16.0]["coverage"] == mapped["dsa"]["coverage"]
    assert res["config"]["more_tokens"] == [999]
    assert res["config"]["mapper"] == {"max_bands": 3, "max_columns": 4}


def test_eval_on_worker_processes_measures_as_inline():
    """``swattn eval --jobs 2``: each predictor a job of a local Dask cluster of two worker
    processes gives the results of the inline run (every row of every variant and length, the
    fit times aside), in the predictors' order; progress advances to its total either way."""
    from swattn.sw import evaluate, minilm, texts

    cal = [minilm.tokenize(t) for t in texts.calibration_texts(1, 128)]
    ev = [minilm.tokenize(t) for t in texts.evaluation_texts(1, 128)]
    more = {160: ([minilm.tokenize(t) for t in texts.calibration_texts(1, 160)],
                  [minilm.tokenize(t) for t in texts.evaluation_texts(1, 160)])}
    runs = {}
    for jobs in (1, 2):
        steps = []
        runs[jobs] = evaluate.evaluate(["dsa", "longformer"], [16.0], cal, ev,
                                       16.0, golden=True, more_tokens=more, jobs=jobs,
                                       progress=lambda desc, adv=0: steps.append(adv))
        # the CLI's total: the dense passes, the int8 baseline, per predictor its fit and a
        # step per budget and text, and per other length its passes and the same again
        assert sum(steps) == 1 + 1 + 2 * (1 + 1 * 1) + (1 + 2 * (1 + 1 * 1)), (jobs, steps)
    one, two = runs[1], runs[2]
    assert [(r["predictor"], r["budget"], r["variant"]) for r in two["results"]] == \
        [(r["predictor"], r["budget"], r["variant"]) for r in one["results"]]
    assert [(r["predictor"], r["variant"]) for r in one["results"]] == [
        (p, v) for p in ("dsa", "longformer") for v in ("raw", "mapped", "int8")]
    for a, b in zip(one["results"] + one["by_tokens"], two["results"] + two["by_tokens"]):
        assert a.keys() == b.keys()
        for k, v in a.items():
            assert b[k] == (pytest.approx(v, rel=1e-5, abs=1e-7) if isinstance(v, float) else v), \
                (a, b, k)
    assert {r["tokens"] for r in two["by_tokens"]} == {ev[0].size, 160}
    assert set(two["fit_seconds"]) == {"dsa", "longformer"}


# --- swattn run ---------------------------------------------------------------------------------

class _FakeBoard:
    """A board whose engine computes the golden model of what it is configured with."""

    def __init__(self, params):
        self.params, self.jobs = params, []

    def identify(self):
        from swattn.sw.driver import Identity
        return Identity(self.params, "0.0.0", 0, 4096, 50_000_000)

    def attention(self, q, k, v, pattern, cfg):
        self.jobs.append(pattern)
        ks = pattern.keyset() if isinstance(pattern, EngineForm) else pattern
        run = golden.attention if isinstance(ks, HybridPattern) else golden.attention_keys
        return run(q, k, v, ks, cfg), 1234


@pytest.mark.parametrize("max_bands, max_columns, argv, rc, words", [
    (1, 0, ["--bands", "20:2"], 2, ["--bands = '20:2'", "without band fields",
                                    "swattn generate --max-bands"]),
    (1, 0, ["--columns", "3"], 2, ["--columns = '3'", "without column fields"]),
    (3, 2, ["--bands=-20:2,20:2", "--columns", "3,70"], 0, ["bit for bit", "bands=-20:2,20:2",
                                                            "columns=2"]),
    (1, 0, [], 0, ["bit for bit"]),
])
def test_run_holds_the_pattern_to_the_boards_engine(monkeypatch, capsys, max_bands,
                                                    max_columns, argv, rc, words):
    from swattn.sw import driver
    from swattn.sw.spec.engine_params import EngineParams

    fake = _FakeBoard(EngineParams(head_dim=32, lanes=64, max_bands=max_bands,
                                   max_columns=max_columns))
    monkeypatch.setattr(driver, "open_board", lambda *a, **kw: fake)
    assert cli.main(["run", "--port", "/dev/null", "--n", "100", "--radius", "4",
                     *argv]) == rc
    cap = capsys.readouterr()
    text = cap.out if rc == 0 else cap.err
    for w in words:
        assert w in text, text
    if rc == 0:
        want = EngineForm(100, 4, 4, 1, ((-20, 2), (20, 2)), (3, 70), (0, 99)) if argv else \
            HybridPattern(100, 4, 4, 1, (0, 99))
        assert fake.jobs == [want]


def test_run_takes_a_pattern_file(monkeypatch, capsys, tmp_path):
    from swattn.sw import driver
    from swattn.sw.spec.engine_params import EngineParams

    fake = _FakeBoard(EngineParams(head_dim=32, lanes=64, max_bands=2, max_columns=1))
    monkeypatch.setattr(driver, "open_board", lambda *a, **kw: fake)
    f = tmp_path / "p.json"
    form = EngineForm(90, 2, 0, 2, ((6, 3),), (40,), (1,))
    f.write_text(json.dumps(pattern_to_json(form)))
    assert cli.main(["run", "--port", "/dev/null", "--pattern", str(f)]) == 0
    assert "bit for bit" in capsys.readouterr().out and fake.jobs == [form]
    f.write_text(json.dumps(pattern_to_json(EngineForm(90, 2, 0, 2, ((6, 3), (9, 1)), (), ()))))
    assert cli.main(["run", "--port", "/dev/null", "--pattern", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"--pattern = '{f}': bands: 3 bands with the window, allowed 1..2" in err
