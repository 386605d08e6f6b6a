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
