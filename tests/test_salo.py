"""SALO's cycle model against the figures its paper publishes, and the generalisation's counts.

Expected values come from the paper (Longformer n = 4096, w = 512, d = 64, 12 heads: 4.03 ms at
1 GHz, 74% utilisation) or are counted by hand from the model's description; none is computed by
the code under test.
"""

import pytest

from swattn.sw import salo
from swattn.sw.spec.pattern import HybridPattern


def test_longformer_latency_matches_paper():
    cyc = salo.cycles(n=4096, window=512, head_dim=64, heads=12)
    assert cyc / 1e9 * 1e3 == pytest.approx(4.03, abs=0.005)  # ms at 1 GHz


def test_longformer_utilisation_matches_paper():
    u = salo.paper_utilisation(n=4096, window=512, head_dim=64, heads=12)
    assert round(100 * u) == 74


def test_iteration_cycles_from_description():
    # 2 d + 3 + 32 + 1 with d = 64: 164 cycles; 128 * 16 * 12 = 24576 iterations
    assert salo.iteration_cycles(64) == 164
    cyc = salo.cycles(n=4096, window=512, head_dim=64, heads=12)
    assert 24576 * 164 <= cyc <= 24576 * 164 + 64  # plus at most the drain of one array


def test_paper_array_is_32x32_with_global_row_and_column():
    a = salo.SaloArray.for_lanes(1024)
    assert (a.rows, a.cols) == (32, 32)
    assert a.pes == 1024 + 32 + 32


@pytest.mark.parametrize("lanes, shape", [(8, (4, 2)), (64, (8, 8)), (128, (16, 8))])
def test_same_mac_count(lanes, shape):
    a = salo.SaloArray.for_lanes(lanes)
    assert (a.rows, a.cols) == shape
    assert a.local_pes == lanes


def test_pattern_without_extra_globals_is_the_published_formula():
    # window of 512 keys (255 left, 256 right), no globals: 128 * 16 iterations per head
    p = HybridPattern(4096, 255, 256, 1, ())
    assert salo.pattern_iterations(p, salo.SaloArray()) == 128 * 16
    assert salo.pattern_cycles(p, 64, salo.SaloArray()) == salo.cycles(4096, 512, 64)


def test_pattern_extra_globals_counted_by_hand():
    # 17 globals, one served by the global PEs, 16 extra: window tiles for 4079 queries over
    # 513 + 16 = 529 keys -> ceil(4079/32) * ceil(529/32) = 128 * 17; extra global rows:
    # ceil(16/32) * ceil(4096/32) = 1 * 128.  Total 2304.
    p = HybridPattern(4096, 256, 256, 1, tuple(range(17)))
    assert salo.pattern_iterations(p, salo.SaloArray()) == 128 * 17 + 128


def test_dilation_does_not_change_the_count():
    a = salo.SaloArray.for_lanes(64)
    p1 = HybridPattern(2048, 64, 64, 1, (0,))
    p2 = HybridPattern(2048, 64, 64, 2, (0,))
    assert salo.pattern_cycles(p1, 64, a) == salo.pattern_cycles(p2, 64, a)


def test_utilisation_is_work_over_capacity():
    a = salo.SaloArray(rows=2, cols=2, global_pes=1)  # 4 + 4 PEs
    assert salo.utilisation(useful_macs=400, cycles_=100, array=a) == pytest.approx(0.5)


@pytest.mark.parametrize("kw", [dict(rows=0), dict(cols=-1), dict(global_pes=-1)])
def test_bad_array_rejected(kw):
    with pytest.raises(ValueError, match="out of range"):
        salo.SaloArray(**kw)


@pytest.mark.parametrize("lanes", [0, 1, 12, 96])
def test_bad_lanes_rejected(lanes):
    with pytest.raises(ValueError, match="power of two"):
        salo.SaloArray.for_lanes(lanes)
