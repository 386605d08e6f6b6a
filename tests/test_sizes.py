"""The one table of engine sizes (``swattn.sw.spec.sizes``): the board table's engines are its
entries, every name a consumer lists is in it, and it stays part of the specification."""

import subprocess
import sys

from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.sizes import SIZES


def test_entries_are_engine_params():
    assert SIZES and all(isinstance(p, EngineParams) for p in SIZES.values())


def test_board_engines_are_the_table_entries():
    from swattn.fpga.boards import BOARDS

    assert BOARDS["icebreaker"].params is SIZES["ice40"]
    assert BOARDS["ulx3s-85f"].params is SIZES["ulx3s"]
    for b in BOARDS.values():  # a board added later takes its engine from the table too
        assert any(b.params is p for p in SIZES.values()), f"{b.name}: engine not in SIZES"


def test_every_name_a_consumer_lists_exists():
    from swattn.sim import formal, regress
    from swattn.sw.bench import minilm, workloads
    from test_engine_sim import SIZE_NAMES, SIZES as TEST_SIZES

    listed = {
        "tests/test_engine_sim.py": SIZE_NAMES,
        "swattn.sim.regress": regress.REGRESS,
        "swattn.sim.formal": tuple(formal.VALIDATOR.values()) + tuple(formal.BUSY_START.values()),
    }
    for consumer, names in listed.items():
        missing = [n for n in names if n not in SIZES]
        assert not missing, f"{consumer} lists sizes that are not in SIZES: {missing}"
    assert regress.sizes() == {n: SIZES[n] for n in regress.REGRESS}
    assert TEST_SIZES == {n: SIZES[n] for n in SIZE_NAMES}
    assert formal.VALIDATOR_SIZES == {k: SIZES[n] for k, n in formal.VALIDATOR.items()}
    assert formal.BUSY_START_SIZES == {k: SIZES[n] for k, n in formal.BUSY_START.items()}
    assert workloads.VALIDATION_ENGINE is SIZES["bench_validation"]
    assert minilm.MINILM_ENGINE is SIZES["bench_minilm"]


def test_regression_names_fit_its_chunk_ids():
    """A chunk id is ``<size>-<simulator>-...``, split at "-"."""
    from swattn.sim import regress

    assert len(set(regress.REGRESS)) == len(regress.REGRESS)
    assert not any("-" in n for n in regress.REGRESS)


def test_sizes_import_nothing_else_of_swattn():
    code = ("import sys, swattn.sw.spec.sizes\n"
            "print('\\n'.join(k for k in sys.modules if k.split('.')[0] == 'swattn'))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    outside = [m for m in loaded if m not in ("swattn", "swattn.sw", "swattn.sw.spec")
               and not m.startswith("swattn.sw.spec.")]
    assert "swattn.sw.spec.sizes" in loaded and not outside, outside
