"""``swattn eval --max-bands / --max-columns``: bad values refused before any work with one
error line naming the option, the value and the allowed range; good ones parsed."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from swattn.sw.cli import eval as eval_cli

SWATTN = str(Path(sys.executable).with_name("swattn"))


@pytest.mark.parametrize("option, words", [
    ("--max-bands=0", ["--max-bands = 0", "1..16"]),
    ("--max-bands=17", ["--max-bands = 17", "1..16"]),
    ("--max-bands=two", ["--max-bands = 'two'", "1..16"]),
    ("--max-columns=-1", ["--max-columns = -1", "0..32"]),
    ("--max-columns=33", ["--max-columns = 33", "0..32"]),
])
def test_bad_key_set_limits_are_refused(option, words, tmp_path):
    r = subprocess.run([SWATTN, "eval", option, "--out", str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swattn: error:"), r.stderr
    for w in words:
        assert w in lines[0], (option, lines[0])


def test_key_set_limits_are_parsed():
    p = argparse.ArgumentParser()
    eval_cli.add_arguments(p)
    a = p.parse_args("--max-bands 4 --max-columns 8".split())
    assert (a.max_bands, a.max_columns) == (4, 8)
    a = p.parse_args([])
    assert (a.max_bands, a.max_columns) == (eval_cli.DEFAULT_MAX_BANDS,
                                            eval_cli.DEFAULT_MAX_COLUMNS)


def test_compare_mappers_counts_rows_not_below_and_names_the_worst():
    """Two evaluations' mapped cover and cosine side by side per predictor, budget and length:
    rows at or above the base (to the table's 4 decimals) are counted, the largest drop is
    named, and evaluations of different texts are refused."""
    import pytest

    from swattn.sw.evaluate import compare_mappers

    cfg = {"texts": 3, "calibration_texts": 8, "seed": 0, "predictors": ["a", "b"],
           "budgets": [16.0, 32.0]}

    def run(values, mapper):
        return {"config": dict(cfg, mapper=mapper), "commit": "c",
                "by_tokens": [{"predictor": p, "budget": b, "tokens": t, "coverage": c,
                               "emb_cos": e, "sparsity": 0.9}
                              for (p, b, t), (c, e) in values.items()]}

    base = run({("a", 16.0, 256): (0.5, 0.80), ("a", 16.0, 512): (0.4, 0.70),
                ("b", 32.0, 256): (0.6, 0.90)}, {"max_bands": 1})
    other = run({("a", 16.0, 256): (0.55, 0.80004), ("a", 16.0, 512): (0.4, 0.65),
                 ("b", 32.0, 256): (0.59, 0.91), ("b", 16.0, 256): (0.1, 0.1)},
                {"max_bands": 4})
    c = compare_mappers(base, other)
    assert len(c["rows"]) == 3  # (b, 16, 256) is in one of them only
    assert c["coverage_not_below"] == 2 and c["emb_cos_not_below"] == 2
    assert c["emb_cos_worst"] == {"change": pytest.approx(-0.05), "predictor": "a",
                                  "budget": 16.0, "tokens": 512}
    assert c["coverage_worst"]["predictor"] == "b"
    assert c["base_mapper"] == {"max_bands": 1} and c["other_mapper"] == {"max_bands": 4}
    other["config"]["texts"] = 4
    with pytest.raises(ValueError, match="differ in texts: 3 and 4"):
        compare_mappers(base, other)
