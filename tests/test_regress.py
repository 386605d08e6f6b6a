"""The regression's plan and plumbing (``swattn.sim.regress``), without simulating."""

from pathlib import Path

from swattn.sim import regress, runner


def test_plan_has_the_job_counts_of_a_full_regression():
    chunks = regress.plan()
    ver = [c for c in chunks if c.sim == "verilator"]
    ica = [c for c in chunks if c.sim == "icarus"]
    assert sum(c.count for c in ver) >= 10_000 and sum(c.count for c in ica) >= 1_000
    assert len({c.size for c in ver}) >= 3 and len({c.size for c in ica}) >= 3
    assert any(c.xrand for c in ver) and any(not c.xrand for c in ver)
    seeds = [c.seed0 + i for c in chunks for i in range(c.count)]
    assert len(seeds) == len(set(seeds)), "a random job seed repeats"


def test_shards_partition_the_plan():
    chunks = regress.plan(600, 60, 50, 10)
    parts = [regress.shard(chunks, f"{i}/4") for i in range(1, 5)]
    assert sorted((c.id for p in parts for c in p)) == sorted(c.id for c in chunks)


def test_chunk_id_roundtrip_and_rerun_command():
    for c in regress.plan(600, 60, 50, 10):
        assert regress.Chunk.from_id(c.id) == c
    c = regress.plan(600, 60, 50, 10)[1]
    assert regress.rerun_command(c, 123) == \
        f".venv/bin/python -m swattn.sim.regress --rerun {c.id} --seed 123"


def test_icarus_compat(tmp_path: Path):
    v = tmp_path / "x.v"
    v.write_text("module t;\n  reg \\$auto$verilog_backend.cc:2355:dump_module$1  = 0;\n"
                 "  always @* begin\n    if (\\$auto$verilog_backend.cc:2355:dump_module$1 ) "
                 "begin end\n  end\nendmodule\n")
    assert runner.icarus_compat(v) == 1
    text = v.read_text()
    assert "reg \\$auto$verilog_backend.cc:2355:dump_module$1 = 0;" in text
    assert "initial #1 \\$auto$verilog_backend.cc:2355:dump_module$1 = 1;" in text


def test_build_dirs_differ_by_build_args():
    """The x-randomised regression builds never share a directory with the plain build."""
    import pytest

    from swattn.sw.spec.errors import UserError
    params = regress.sizes()["u1c4"]
    plain = runner.build_dir(params, "verilator")
    xrand = runner.build_dir(params, "verilator", build_args=regress.XRAND_ARGS)
    assert plain != xrand and plain == runner.build_dir(params, "verilator", build_args=[])
    assert xrand == runner.build_dir(params, "verilator", build_args=list(regress.XRAND_ARGS))
    assert runner.build_dir(params, "icarus") not in (plain, xrand)
    with pytest.raises(UserError, match="only Verilator"):
        runner.build_dir(params, "icarus", build_args=["-O3"])


def test_readme_regression_figures_are_the_recorded_runs():
    """The README's regression paragraph and table are `--markdown` of the recorded summary, not
    typed by hand: a figure edited in one and not the other fails here."""
    import json
    from pathlib import Path

    from swattn.sim.regress import markdown

    root = Path(__file__).resolve().parent.parent
    summary = json.loads((root / "docs/results/regress.json").read_text())
    assert markdown(summary) in (root / "README.md").read_text()
    assert summary["passed"] == summary["jobs"] and not summary["failures"] and not summary["unhit"]
