"""The AXI top (``swattn generate --bus axi``, :mod:`swattn.hw.axi`): its register map, its
sidecar and FuseSoC core (linted by ``fusesoc``), and random jobs through its AXI ports alone
(cocotbext-axi, :mod:`swattn.sim.tb_axi`) on Verilator and on Icarus, bit-exact against the
golden model, with every error code read back through the registers, a start while busy and a
reset in the middle of a job. ``make regress`` runs more of these jobs (``--axi-jobs``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from swattn.sim.jobs import axi_jobs, high_bit_invalid_jobs, invalid_jobs
from swattn.sim.runner import run_jobs
from swattn.sw.spec import axi_regs as ar
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.regs import CONFIG_FIELDS
from swattn.sw.spec.sizes import SIZES

PARAMS = SIZES["u1c4"]


@pytest.mark.parametrize("max_globals", [0, 1, 3, 64])
def test_register_map_is_word_aligned_and_fields_do_not_overlap(max_globals):
    p = EngineParams(head_dim=32, lanes=16, max_globals=max_globals)
    regs = ar.register_map(p)
    offsets = [r.offset for r in regs]
    assert offsets == sorted(set(offsets)) and all(o % 4 == 0 for o in offsets)
    assert offsets[-1] < 1 << ar.ADDR_WIDTH
    for r in regs:
        bits = 0
        for f in r.fields:
            mask = ((1 << f.width) - 1) << f.lsb
            assert f.lsb + f.width <= 32 and not bits & mask, (r.name, f)
            bits |= mask
    names = [r.name for r in regs]
    assert [n for n in names if n.startswith("CONFIG_")] == \
        [f"CONFIG_{k.upper()}" for k in CONFIG_FIELDS]
    assert [n for n in names if n.startswith("GLOBAL_")] == \
        [f"GLOBAL_{i}" for i in range(max_globals)]
    assert {r.access for r in regs} == {"RO", "RW", "W1S", "W1C"}


def test_ident_and_limits_carry_the_parameters():
    p = SIZES["ulx3s"]
    ident = ar.IDENT_LAYOUT.from_bits(ar.ident_value(p))
    limits = ar.LIMITS_LAYOUT.from_bits(ar.limits_value(p))
    assert (int(ident.head_dim), int(ident.lanes), int(ident.max_globals)) == (32, 64, 8)
    assert (int(limits.max_radius), int(limits.max_dilation), int(limits.seq_width)) == \
        (64, 4, 11)
    # the widest parameters fit their fields
    big = EngineParams(head_dim=128, lanes=4096, max_radius=4096, max_globals=64,
                       max_dilation=64, seq_width=24)
    ident = ar.IDENT_LAYOUT.from_bits(ar.ident_value(big))
    limits = ar.LIMITS_LAYOUT.from_bits(ar.limits_value(big))
    assert (int(ident.lanes), int(ident.max_globals), int(limits.max_radius),
            int(limits.max_dilation), int(limits.seq_width)) == (4096, 64, 4096, 64, 24)


def test_config_writes_refuse_what_does_not_fit():
    writes = dict(ar.config_writes(PARAMS, {"n": 9, "left": 2, "globals": [1, 5]}))
    regs = ar.by_name(PARAMS)
    assert writes[regs["CONFIG_N"].offset] == 9 and writes[regs["CONFIG_LEFT"].offset] == 2
    assert writes[regs["GLOBAL_1"].offset] == 5 and writes[regs["CONFIG_RIGHT"].offset] == 0
    with pytest.raises(ValueError, match="4 global indices: the engine has 3"):
        ar.config_writes(PARAMS, {"globals": [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="does not fit 32 bits"):
        ar.config_writes(PARAMS, {"n": 1 << 32})


def test_the_serial_engine_has_no_axi_top():
    from swattn.hw.axi import AxiEngine

    with pytest.raises(ValueError, match="lanes = 4: the AXI top wraps the stream engine"):
        AxiEngine(SIZES["ice40"])


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("axi")
    r = subprocess.run([sys.executable, "-m", "swattn.sw.cli", "generate", "--head-dim", "32",
                        "--lanes", "16", "--max-radius", "12", "--max-globals", "3",
                        "--max-dilation", "3", "--seq-width", "10", "--bus", "axi", "--fusesoc", "--name", "my_attn", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout


def test_sidecar_has_the_register_map_and_ports(generated):
    out, stdout = generated
    side = json.loads((out / "my_attn.json").read_text())
    assert side["bus"] == "axi" and side["axi_lite"]["registers"] == ar.as_json(PARAMS)
    assert side["ports"]["s_axis_kv"]["tdata_bits"] == 16 * 32
    text = (out / "my_attn.v").read_text()
    header = text.split("module my_attn(", 1)[1].split(");", 1)[0]
    ports = {name.strip() for name in header.split(",")}
    for port in ("aclk", "aresetn", "s_axis_q_tdata", "s_axis_q_tlast", "s_axis_kv_tready",
                 "m_axis_o_tlast", "s_axil_awaddr", "s_axil_bresp", "s_axil_rdata", "irq"):
        assert port in ports, port
    assert "AXI4-Lite s_axil (18 registers" in stdout


def _lint(out: Path, env=None, target: str = "lint"):
    core = yaml.safe_load((out / "my_attn.core").read_text())
    return subprocess.run([str(Path(sys.executable).with_name("fusesoc")), "--cores-root",
                           str(out), "run", "--build-root", str(out / f"fusesoc_{target}"),
                           "--target", target, core["name"]], capture_output=True, text=True,
                          timeout=300, cwd=out, env=env)


def test_fusesoc_sim_target_elaborates_the_top_on_icarus(generated):
    """The core's sim target compiles the top with Icarus and runs it (a testbench core that
    depends on this one supplies the stimulus)."""
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (apt-get install iverilog)")
    out, _ = generated
    r = _lint(out, target="sim")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "vvp" in r.stdout + r.stderr


def test_fusesoc_lints_the_core_and_catches_a_fault(generated, tmp_path):
    from swattn.sim.runner import verilator_env
    import os

    out, _ = generated
    assert (out / "my_attn.core").read_text().startswith("CAPI=2:")
    env = dict(os.environ, **verilator_env())
    r = _lint(out, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (out / "fusesoc_lint").is_dir()
    # the same core with an undeclared identifier in the Verilog: the lint target fails
    bad = tmp_path / "bad"
    shutil.copytree(out, bad, ignore=shutil.ignore_patterns("fusesoc*"))
    v = bad / "my_attn.v"
    v.write_text(v.read_text().replace("module my_attn(", "wire oops = undeclared_net;\n"
                                       "module my_attn(", 1))
    r = _lint(bad, env)
    assert r.returncode != 0 and "undeclared_net" in r.stdout + r.stderr


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_random_jobs_through_the_axi_ports(sim, tmp_path):
    if sim == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (make regress needs it; "
                    "apt-get install iverilog)")
    jobs = axi_jobs(PARAMS, 4, {"verilator": 81000, "icarus": 82000}[sim], busy=2)
    results = run_jobs(PARAMS, jobs, sim=sim, name=f"pytest_axi_{sim}", bus="axi",
                       test_module="swattn.sim.tb_axi")
    assert len(results) == len(jobs)
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed[:3]
    kinds = {r["kind"] for r in results}
    assert kinds == {"registers", "ok", "invalid", "reset_mid", "busy"}
    read_back = {r["error"] for r in results if r["kind"] in ("invalid", "busy")}
    want = {j["expect"] for j in invalid_jobs(PARAMS, 0) + high_bit_invalid_jobs(PARAMS, 0)}
    assert read_back == want | {"BUSY"}
    frames = [r for r in results if r["kind"] == "ok"]
    assert all(r["frame_rows"] > 0 and r["irq"]["done"] == 1 for r in frames)
