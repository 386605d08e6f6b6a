"""The AXI top (``swattn generate --bus axi``, :mod:`swattn.hw.axi`): its register map, its
sidecar and FuseSoC core (linted by ``fusesoc``), and random jobs through its AXI ports alone
(cocotbext-axi, :mod:`swattn.sim.tb_axi`) on Verilator and on Icarus, bit-exact against the
golden model, with every error code read back through the registers, a start while busy and a
reset in the middle of a job; on an engine with bands, key-only columns and the 2D grid, jobs
with all three configured through their registers, and each of their error codes.
``make regress`` runs more of these jobs (``--axi-jobs``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from swattn.sim.jobs import axi_jobs, high_bit_invalid_jobs, invalid_jobs, job_from_seed
from swattn.sim.runner import job_pattern, run_jobs
from swattn.sw.spec import axi_regs as ar
from swattn.sw.spec import regs as sregs
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.keyset import EngineForm
from swattn.sw.spec.numerics import SoftmaxConfig
from swattn.sw.spec.regs import CONFIG_FIELDS
from swattn.sw.spec.sizes import SIZES

PARAMS = SIZES["u1c4"]
#: bands beside the window (max_bands 4), key-only columns (max_columns 4) and the 2D grid
KEYS = SIZES["u1c4_keys"]


@pytest.mark.parametrize("max_globals, keys", [
    (0, {}), (1, {}), (3, {}), (64, {}), (0, dict(max_bands=2)), (3, dict(max_columns=1)),
    (64, dict(max_bands=16, max_columns=32, grid=True)), (1, dict(max_bands=3, grid=True))])
def test_register_map_is_word_aligned_and_fields_do_not_overlap(max_globals, keys):
    p = EngineParams(head_dim=32, lanes=16, max_globals=max_globals, **keys)
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
    layout = dict(sregs.config_layout(p))
    scalars = [k for k in layout if k not in ("globals", "bands", "columns")]
    assert sorted(n for n in names if n.startswith("CONFIG_")) == \
        sorted(f"CONFIG_{k.upper()}" for k in scalars)
    for r in regs:  # each scalar's register holds the whole field of the engine's configuration
        if r.name.startswith("CONFIG_"):
            assert [(f.lsb, f.width) for f in r.fields] == \
                [(0, layout[r.name[7:].lower()].shape.width)]
    assert [n for n in names if n.startswith("GLOBAL_")] == \
        [f"GLOBAL_{i}" for i in range(max_globals)]
    assert [n for n in names if n.startswith("BAND_")] == \
        [f"BAND_{i}" for i in range(p.max_bands - 1)]
    assert [n for n in names if n.startswith("COLUMN_")] == \
        [f"COLUMN_{i}" for i in range(p.max_columns)]
    assert {r.access for r in regs} == {"RO", "RW", "W1S", "W1C"}
    # IDENT and LIMITS say which of bands, columns and the grid the engine has
    assert ar.features(ar.ident_value(p), ar.limits_value(p)) == \
        {"max_bands": p.max_bands, "max_columns": p.max_columns, "grid": int(p.grid)}


def test_key_set_registers_sit_at_fixed_offsets_and_only_where_the_engine_has_them():
    """Each key-set register has one offset on every engine, above the GLOBAL_i of the largest
    engine; an engine without bands, columns and grid has none of them, and IDENT and LIMITS
    list only their original fields (the bits the others use read 0 there)."""
    engines = [EngineParams(head_dim=32, lanes=16, max_globals=64, **kw) for kw in (
        {}, dict(max_bands=16), dict(max_columns=32), dict(max_bands=2, max_columns=1, grid=True))]
    where: dict[str, set] = {}
    for p in engines:
        for r in ar.register_map(p):
            where.setdefault(r.name, set()).add(r.offset)
    assert all(len(offsets) == 1 for offsets in where.values()), where
    last_global = max(where["GLOBAL_63"])
    new = [n for n in where if n.startswith(("BAND_", "COLUMN_")) or n in (
        "CONFIG_N_BANDS", "CONFIG_N_COLUMNS", "CONFIG_GRID_WIDTH", "CONFIG_GRID_RADIUS")]
    assert len(new) == 15 + 32 + 4 and all(min(where[n]) > last_global for n in new)
    plain = ar.by_name(engines[0])
    assert not [n for n in plain if n in new]
    assert [f.name for f in plain["IDENT"].fields] == ["head_dim", "lanes", "max_globals"]
    assert [f.name for f in plain["LIMITS"].fields] == ["max_radius", "max_dilation",
                                                        "seq_width"]
    keys = ar.by_name(KEYS)
    assert {"max_n_bands", "max_columns", "grid"} <= {
        f.name for r in ("IDENT", "LIMITS") for f in keys[r].fields}
    band = keys["BAND_0"].fields
    assert [(f.name, f.lsb, f.width, f.signed) for f in band] == \
        [(name, f.offset, f.shape.width, f.shape.signed) for name, f in sregs.BAND_LAYOUT]
    band_json, = [r for r in ar.as_json(KEYS) if r["name"] == "BAND_0"]
    assert [f.get("signed", False) for f in band_json["fields"]] == [True, False]
    text = ar.markdown(KEYS)
    assert f"BAND_0 .. BAND_{KEYS.max_bands - 2} (0x{ar.BAND_BASE:03x} + 4 i)" in text
    assert f"COLUMN_0 .. COLUMN_{KEYS.max_columns - 1} (0x{ar.COLUMN_BASE:03x} + 4 i)" in text
    assert "CONFIG_GRID_RADIUS" in text and "CONFIG_GRID" not in ar.markdown(PARAMS)


def _decode(params, writes: list[tuple[int, int]]) -> dict:
    """The configuration fields that ``writes`` leave in a register file cleared by reset, read
    through the register map as the RTL reads them (each register's fields into the engine
    configuration's field of the same name)."""
    file = {r.offset: r.reset for r in ar.register_map(params)}
    for off, v in writes:
        assert off in file, hex(off)
        file[off] = v
    fields: dict = {"globals": [0] * params.max_globals}
    for r in ar.register_map(params):
        v = file[r.offset] & r.mask
        if r.name.startswith("CONFIG_"):
            fields[r.name[7:].lower()] = v
        elif r.name.startswith("GLOBAL_"):
            fields["globals"][int(r.name[7:])] = v
        elif r.name.startswith("BAND_"):
            view = sregs.BAND_LAYOUT.from_bits(v)
            fields.setdefault("bands", []).append((int(view.start), int(view.count)))
        elif r.name.startswith("COLUMN_"):
            fields.setdefault("columns", []).append(v)
    return fields


def test_config_writes_load_what_pack_config_packs_for_bands_columns_and_grid():
    """For random jobs of an engine with bands, columns and the grid (and the same written over
    a previous job's registers), the writes leave the configuration regs.pack_config packs
    from the pattern."""
    seen = set()
    for seed in range(40):
        job = job_from_seed(KEYS, 7000 + seed)
        pattern = job_pattern(job, KEYS.limits())
        cfg = SoftmaxConfig(job["mult_mant"], job["mult_shift"], job["out_shift"])
        writes = ar.config_writes(KEYS, ar.job_fields(pattern, cfg))
        got = sregs.pack_config(KEYS, **_decode(KEYS, writes))
        assert got == sregs.pack_config(KEYS, pattern, cfg), job
        if isinstance(pattern, EngineForm):
            seen |= {k for k in ("bands", "columns", "grid") if getattr(pattern, k)}
    assert seen == {"bands", "columns", "grid"}


def test_config_writes_refuse_bands_columns_and_grid_that_do_not_fit():
    plain = PARAMS
    with pytest.raises(ValueError, match=r"1 bands: the engine has 0 BAND registers"):
        ar.config_writes(plain, {"bands": [(2, 1)]})
    with pytest.raises(ValueError, match=r"grid_width = 4: this engine has no "
                                         r"CONFIG_GRID_WIDTH register"):
        ar.config_writes(plain, {"grid_width": 4})
    with pytest.raises(ValueError, match=r"1 column indices: the engine has 0 COLUMN"):
        ar.config_writes(plain, {"columns": [3]})
    assert ar.config_writes(plain, {"n_bands": 0, "n": 5}) == ar.config_writes(plain, {"n": 5})
    with pytest.raises(ValueError, match=r"4 bands: the engine has 3 BAND registers"):
        ar.config_writes(KEYS, {"bands": [(2, 1)] * 4})
    with pytest.raises(ValueError, match=r"band 0 \(start -32769, count 1\): BAND_0 holds a "
                                         r"start of -32768..32767 and a count of 0..65535"):
        ar.config_writes(KEYS, {"bands": [(-32769, 1)]})
    with pytest.raises(ValueError, match=r"band 1 \(start 3, count 65536\)"):
        ar.config_writes(KEYS, {"bands": [(1, 1), (3, 1 << 16)]})
    with pytest.raises(ValueError, match=r"configuration field 'grid': allowed"):
        ar.config_writes(KEYS, {"grid": (4, 1)})
    with pytest.raises(ValueError, match="does not fit 32 bits"):
        ar.config_writes(KEYS, {"grid_radius": 1 << 32})
    # a value the register's field would cut short
    with pytest.raises(ValueError, match=r"register 0x140 \(CONFIG_N_BANDS\): value 256 does "
                                         r"not fit 8 bits \(0..255\)"):
        ar.config_writes(KEYS, {"n_bands": 256})
    with pytest.raises(ValueError, match=r"\(CONFIG_LEFT\): value 65536 does not fit 16 bits"):
        ar.config_writes(PARAMS, {"left": 1 << 16})
    # a negative start is its two's complement in the low half of the word
    (off, word), = [w for w in ar.config_writes(KEYS, {"bands": [(-3, 2)]})
                    if w[0] == ar.by_name(KEYS)["BAND_0"].offset]
    assert word == (2 << 16) | ((1 << 16) - 3)


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


def keyset_axi_jobs(p: EngineParams, count: int, seed0: int) -> list[dict]:
    """The register checks; ``count`` random jobs whose patterns have bands beside the window,
    key-only columns and a grid together (the first seeds from ``seed0`` that give them), one
    with bands at a dilation above 1 and one of the window alone (their registers written 0
    over the previous job's); then each refused configuration of the bands', the columns' and
    the grid's codes (:func:`invalid_jobs`), each followed by one of those valid jobs."""
    full, dilated, window = [], [], []
    seed = seed0
    while len(full) < count or not dilated or not window:
        job = job_from_seed(p, seed)
        seed += 1
        pat = job_pattern(job, p.limits())
        form = pat if isinstance(pat, EngineForm) else EngineForm.from_hybrid(pat)
        if form.bands and form.columns and form.grid and len(full) < count and form.n >= 8:
            full.append(job)
        elif form.bands and form.dilation > 1 and form.n >= 8 and not dilated:
            dilated.append(job)
        elif not (form.bands or form.columns or form.grid) and form.n >= 8 and not window:
            window.append(job)
    valid = full[:1] + dilated + window + full[1:]
    jobs = [{"kind": "registers", "seed": seed0}] + valid
    key_codes = {e.name for e in sregs.Error if e >= sregs.Error.BAND_COUNT}
    for i, bad in enumerate(j for j in invalid_jobs(p, seed0) if j["expect"] in key_codes):
        jobs += [bad, valid[i % len(valid)]]
    return jobs


def test_bands_columns_and_grid_through_the_axi_registers(tmp_path):
    """An engine with bands, columns and the grid (u1c4_keys), configured through its AXI
    registers alone: jobs with all three bit-exact against the golden model's key-set form,
    each key-set error code (BAND_COUNT .. GRID) read back in STATUS.error, and IDENT/LIMITS
    saying max_bands, max_columns and the grid (the "registers" job)."""
    jobs = keyset_axi_jobs(KEYS, 3, 84000)
    results = run_jobs(KEYS, jobs, sim="verilator", name="pytest_axi_keys", bus="axi",
                       test_module="swattn.sim.tb_axi")
    assert len(results) == len(jobs)
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed[:3]
    ok = [r for r in results if r["kind"] == "ok"]
    assert all(r["mismatches"] == 0 and r["frame_rows"] > 0 for r in ok)
    assert sum(1 for r in ok if r["bands"] and r["columns"] and r["grid"]) >= 3
    read_back = {r["error"] for r in results if r["kind"] == "invalid"}
    assert read_back == {e.name for e in sregs.Error if e >= sregs.Error.BAND_COUNT}
