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


def test_list_is_the_plan_of_the_shard(capsys):
    """``--list`` prints the shard's chunks, as planned, without starting a cluster."""
    assert regress.main(["--list", "--verilator-jobs", "300", "--icarus-jobs", "40",
                         "--shard", "2/3"]) == 0
    assert capsys.readouterr().out.split() == [
        c.id for c in regress.shard(regress.plan(300, 40), "2/3")]


def test_regress_refuses_workers_with_a_scheduler(capsys):
    assert regress.main(["--scheduler", "tcp://127.0.0.1:1", "-n", "3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("swattn: error: -n = 3") and "--scheduler" in err[0]


def test_chunks_are_jobs_of_a_dask_cluster(tmp_path):
    """Two real chunks (u1c4 on Verilator, two random jobs each plus the refused
    configurations, the mid-job reset and the starts while busy) as jobs of a LocalCluster of two
    worker processes: each ends bit-exact with its record written where the summary reads it,
    and both use the one build under the checkout's build/sim (the one the engine tests share;
    built there first if the RTL changed, with the other worker waiting for it)."""
    import os

    from swattn.sw.cluster import dask_client

    root = Path(__file__).resolve().parent.parent
    chunks = [regress.Chunk("u1c4", "verilator", 90_000_000, 2),
              regress.Chunk("u1c4", "verilator", 90_020_000, 2)]
    lines = []
    with dask_client(None, 2) as client:
        res = regress.run_chunks(client, chunks, root=tmp_path, sim_root=root / "build" / "sim",
                                 log=lines.append)
    assert sorted(r["id"] for r in res) == sorted(c.id for c in chunks), lines
    assert all(not r.get("error") and not r["failures"] for r in res), lines
    assert all(r["passed"] == r["jobs"] > 2 for r in res), res
    assert all(int(r["worker"].rsplit(":", 1)[1]) != os.getpid() for r in res)
    assert sum(line.startswith("[") for line in lines) == 2
    summary, text = regress.summarise(chunks, 1.0, root=tmp_path)
    assert not summary["chunks_missing"] and summary["jobs"] == sum(r["jobs"] for r in res)
    assert summary["passed"] == summary["jobs"] and summary["coverage"]


def test_regress_refuses_a_scheduler_that_does_not_answer(tmp_path, monkeypatch, capsys):
    """One line naming --scheduler and the address, status 2, before anything is written."""
    monkeypatch.chdir(tmp_path)
    assert regress.main(["--scheduler", "tcp://127.0.0.1:1", "--verilator-jobs", "10",
                         "--icarus-jobs", "0", "--axi-jobs", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("swattn: error: --scheduler = "
                                               "'tcp://127.0.0.1:1': no Dask scheduler"), err
    assert not (tmp_path / "build").exists()


def test_a_chunk_that_raises_is_reported_and_the_others_go_on(tmp_path):
    """A chunk whose run raises on its worker (here: a size the table does not have) comes back
    with its traceback and a line naming it; the summary counts it as missing."""
    from swattn.sw.cluster import dask_client

    bad = [regress.Chunk("nosize", "verilator", 1, 1), regress.Chunk("nosize2", "icarus", 2, 1)]
    lines = []
    with dask_client(None, 1) as client:
        res = regress.run_chunks(client, bad, root=tmp_path, sim_root=tmp_path / "sim",
                                 log=lines.append)
    assert sorted(r["id"] for r in res) == sorted(c.id for c in bad)
    assert all("KeyError: 'nosize" in r["error"] for r in res), res
    assert sorted(ln.split("] ", 1)[1].split(":")[0] for ln in lines if ln.startswith("[")) == \
        sorted(c.id for c in bad)
    summary, _ = regress.summarise(bad, 1.0, root=tmp_path)
    assert summary["chunks_missing"] == [c.id for c in bad]
