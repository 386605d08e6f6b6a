"""The engine configurations that the tests, the regression, the formal proofs and the benchmark
use, and the boards' engines: one table, :data:`SIZES`, from a name to an
:class:`~.engine_params.EngineParams`.

Each consumer names the entries it runs (``tests/test_engine_sim.py``'s ``SIZE_NAMES``,
``swattn.sim.regress.REGRESS``, ``swattn.sim.formal``'s ``VALIDATOR`` and ``BUSY_START``,
``swattn.sw.bench.workloads`` and ``.minilm``), and the board table (``fpga/boards.py``) takes
each board's engine from here. Where a consumer needs a size of its own (the proofs need small
windows and short sequences to finish), that size is an entry here with a name that says why.

Names: ``u<units>`` query units side by side, ``c<chunks>`` cycles per key (head dim over the
lanes of a unit), ``d<head_dim>`` when it is not 32, ``g<max_globals>`` where the global count is
the point, ``_p<dot><pv>`` the ``dot_pipeline`` and ``pv_pipeline`` stages, ``proof_`` the small
sizes of the formal proofs, ``bench_`` the benchmark's fixed builds; ``ice40`` and ``ulx3s`` are
the boards' engines (the names the regression records them under). The regression's results
(``docs/results/regress.json``) and the proofs' (``docs/results/formal.json``) were recorded
with these exact values and names: a change to an entry is a change to what they tested.
"""

from __future__ import annotations

from types import MappingProxyType

from .engine_params import EngineParams

SIZES = MappingProxyType({
    # --- the stream engine at simulation sizes -----------------------------------------------
    # one unit, 4 chunks per key: the chunked dot products and accumulators
    "u1c4": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3, max_dilation=3,
                         seq_width=10),
    # one unit with the paired max passes (pair_max), two units without them
    "u1c4_pair": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3,
                              max_dilation=3, seq_width=10, pair_max=True),
    "u2g4_nopair": EngineParams(head_dim=32, lanes=128, max_radius=12, max_globals=4,
                                max_dilation=3, seq_width=10, pair_max=False),
    # the same with other stage counts: two adder-tree registers and the key register
    # (dot_pipeline 3), stage 2 without the score read's register (pv_pipeline 3)
    "u1c4_p33": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3,
                             max_dilation=3, seq_width=10, dot_pipeline=3, pv_pipeline=3),
    # four units side by side, one key per cycle; one group of global rows
    "u4": EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=3, max_dilation=3,
                       seq_width=10),
    # four units with up to two groups of global rows, so that jobs have the paired max pass
    # (EngineParams.paired_max) with both groups
    "u4g6": EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=6, max_dilation=3,
                         seq_width=10),
    # the same with the ULX3S build's pipelining (dot_pipeline 4, pv_pipeline 5)
    "u4g6_p45": EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=6,
                             max_dilation=3, seq_width=10, dot_pipeline=4, pv_pipeline=5),
    # two units at head dim 64, dilation 4 and four globals
    "u2d64": EngineParams(head_dim=64, lanes=256, max_radius=16, max_globals=4, max_dilation=4,
                          seq_width=9),

    # bands beside the window and key-only columns (EngineParams.max_bands, max_columns): one
    # unit of four chunks, and four units with the paired max passes
    "u1c4_keys": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3,
                              max_dilation=3, seq_width=10, max_bands=4, max_columns=4,
                              grid=True),
    "u4g6_keys": EngineParams(head_dim=32, lanes=256, max_radius=12, max_globals=6,
                              max_dilation=3, seq_width=10, max_bands=4, max_columns=4,
                              grid=True),
    # the one-unit size with the ULX3S build's pipelining and the band switch's own cycle
    # (dot_pipeline 5, pv_pipeline 5)
    "u1c4_keys_p55": EngineParams(head_dim=32, lanes=16, max_radius=12, max_globals=3,
                                  max_dilation=3, seq_width=10, max_bands=4, max_columns=4,
                                  grid=True, dot_pipeline=5, pv_pipeline=5),

    # --- the formal proofs: small windows and sequences, so that the solver finishes ---------
    # (the properties are about control, which changes with units and max_globals, not with
    # head_dim or the lane count)
    "proof_u1": EngineParams(head_dim=32, lanes=64, max_radius=5, max_globals=3, max_dilation=3,
                             seq_width=5),
    "proof_u1_p45": EngineParams(head_dim=32, lanes=64, max_radius=5, max_globals=3,
                                 max_dilation=3, seq_width=5, dot_pipeline=4, pv_pipeline=5),
    "proof_u2": EngineParams(head_dim=32, lanes=128, max_radius=12, max_globals=4,
                             max_dilation=4, seq_width=10),
    # proof_u1 with bands beside the window and key-only columns
    "proof_u1_keys": EngineParams(head_dim=32, lanes=64, max_radius=5, max_globals=3,
                                  max_dilation=3, seq_width=5, max_bands=3, max_columns=2,
                                  grid=True),
    # the serial engine (the iCE40's) with a band beside the window, as the board's
    "proof_serial": EngineParams(head_dim=32, lanes=4, max_radius=5, max_globals=2,
                                 max_dilation=2, seq_width=5, max_bands=2),

    # --- the benchmark's fixed builds (its other engines are sized to each workload) ---------
    # the small validation patterns' one build, simulated at each --rtl-lanes
    "bench_validation": EngineParams(head_dim=64, lanes=64, max_radius=32, max_globals=4,
                                     max_dilation=2, seq_width=17),
    # MiniLM's heads (d = 32) within the generator's default limits
    "bench_minilm": EngineParams(head_dim=32, lanes=64),

    # --- the boards' engines (fpga/boards.py; their bitstreams and seeds depend on them) -----
    # iCEBreaker, iCE40UP5K: the serial engine with a band beside the window; Q, K, V and O
    # in one SPRAM block each
    "ice40": EngineParams(head_dim=32, lanes=4, max_radius=16, max_globals=2, max_dilation=2,
                          seq_width=10, max_bands=2),
    # ULX3S, ECP5-85F: one unit of 32 + 32 lanes, registers between the block RAMs,
    # multipliers and adders; three bands beside the window and eight key-only columns (with
    # the band switch's own cycle, dot_pipeline 5)
    "ulx3s": EngineParams(head_dim=32, lanes=64, max_radius=64, max_globals=8, max_dilation=4,
                          seq_width=11, dot_pipeline=5, pv_pipeline=5, max_bands=4,
                          max_columns=8),
})
