"""The worked example for SoC designers (examples/axi_cocotb/) runs as a user would run it: its
``run.py`` generates the AXI top, builds it (Icarus where installed, else Verilator) and runs its
cocotb test, which must pass having compared every output row with the golden model. The Python
lines of docs/axi.md that compute the stream orders run as printed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "axi_cocotb"


def test_the_axi_example_passes_bit_exact(tmp_path):
    sim = "icarus" if shutil.which("iverilog") else "verilator"
    # from a scratch folder, as a user who copied the example would run it; without pytest's
    # variable, which changes where cocotb's runner writes its results
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    r = subprocess.run([sys.executable, str(EXAMPLE / "run.py"), "--sim", sim, "--build",
                        str(tmp_path / "build")], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert f"1 of 1 cocotb test(s) passed ({sim}" in out, out[-4000:]
    assert "test_axi_example.one_job passed" in out, out[-4000:]
    assert "48 of 48 output rows equal the golden model bit for bit" in out, out[-4000:]


def test_the_example_stays_short_and_uses_only_the_installed_package():
    text = (EXAMPLE / "test_axi_example.py").read_text()
    assert len(text.splitlines()) < 150
    for path in EXAMPLE.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import) (\S+)", path.read_text(), re.M)
        assert not [m for m in imports if m.startswith(("swattn.sim.tb_", "swattn.sim.streams",
                                                        "swattn.sim.scoreboard"))], path


def test_the_stream_order_lines_of_docs_axi_run():
    text = (ROOT / "docs" / "axi.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/axi.md shows how to compute the stream orders"
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "docs/axi.md", "exec"), scope)
    assert len(scope["q_rows"]) >= scope["pattern"].n
    assert sorted(scope["out_rows"]) == list(range(scope["pattern"].n))
