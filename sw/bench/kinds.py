"""The benchmark's workload table: the pattern kinds, sequence lengths and head dim that both
``swattn bench`` and the GPU script (``bench/gpu_baseline.py``) run, so that the GPU figures join
the engine's by (kind, n).

Standard library only: the GPU script loads this file by its path and runs where swattn (and
its dependencies) may not be installed.
"""

#: head dim of every table workload
HEAD_DIM = 64

#: sequence lengths
N_DEFAULT = (1024, 2048, 4096, 16384)

#: (kind, radius per side, dilation, globals): Longformer-like, dilated, BigBird-like
#: (BigBird-ITC's 3-block window of 64 and one 64-token global block; no random blocks, which
#: the engine does not have either). Global tokens are the first G positions.
KINDS = (
    ("longformer-g0", 256, 1, 0),
    ("longformer-g16", 256, 1, 16),
    ("dilated2-g16", 256, 2, 16),
    ("bigbird-g64", 96, 1, 64),
)

#: (kind, n, radius, dilation, globals): small patterns cheap enough to simulate, for the
#: model-against-RTL check; they share one engine build (``bench_validation`` of
#: ``swattn.sw.spec.sizes``)
VALIDATION = (
    ("small-g0", 256, 32, 1, 0),
    ("small-g4", 512, 32, 1, 4),
    ("small-dil2-g4", 512, 16, 2, 4),
)
