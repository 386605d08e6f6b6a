"""The stream orders of ``swattn.sw.spec.schedule`` (shared by the driver, the testbenches and the
cycle model), written out by hand for small engines."""

import numpy as np

from swattn.sw.spec import schedule
from swattn.sw.spec.engine_params import EngineParams
from swattn.sw.spec.pattern import HybridPattern

ONE_UNIT = EngineParams(head_dim=32, lanes=64, max_radius=4, max_globals=5, max_dilation=2,
                        seq_width=6)
TWO_UNITS = EngineParams(head_dim=32, lanes=128, max_radius=4, max_globals=5, max_dilation=2,
                         seq_width=6)


def test_lane_split_and_pairing():
    assert (ONE_UNIT.units, ONE_UNIT.paired_max) == (1, False)
    assert (TWO_UNITS.units, TWO_UNITS.paired_max) == (2, True)
    # one unit: a max pass and a P.V pass per global (a group of one)
    assert [ONE_UNIT.kv_passes(g) for g in range(4)] == [1, 3, 5, 7]
    # two units: groups of two globals; one max pass per two groups, one P.V pass per group
    assert [TWO_UNITS.kv_passes(g) for g in range(6)] == [1, 3, 3, 4, 4, 6]


def test_orders_one_unit():
    p = HybridPattern(6, 1, 1, 1, (4, 1))
    assert schedule.output_order(p, ONE_UNIT).tolist() == [0, 2, 3, 5, 1, 4]
    assert schedule.query_order(p, ONE_UNIT).tolist() == [0, 2, 3, 5, 1, 4]
    rows = list(range(6))
    assert schedule.kv_order(p, ONE_UNIT).tolist() == [1, 4] + rows * 5


def test_orders_two_units_paired():
    # n = 7, dilation 2: groups (0, 2), (1, 3), (4, 6), (5, -); 0, 3 and 4 are global
    p = HybridPattern(7, 1, 1, 2, (3, 4, 0))
    assert schedule.main_groups(p, TWO_UNITS).tolist() == [[-1, 2], [1, -1], [-1, 6], [5, -1]]
    assert schedule.output_order(p, TWO_UNITS).tolist() == [2, 1, 6, 5, 0, 3, 4]
    # the global queries once more in front, for the paired max pass
    assert schedule.query_order(p, TWO_UNITS).tolist() == [0, 3, 4, 2, 1, 6, 5, 0, 3, 4]
    # three globals = two groups: one paired max pass, the main pass, two P.V passes
    rows = list(range(7))
    assert schedule.kv_order(p, TWO_UNITS).tolist() == [0, 3, 4] + rows * 4


def test_orders_cover_every_row_once():
    rng = np.random.default_rng(7)
    for params in (ONE_UNIT, TWO_UNITS):
        for _ in range(50):
            n = int(rng.integers(1, 40))
            g = tuple(rng.choice(n, size=int(rng.integers(0, min(n, 5) + 1)), replace=False))
            p = HybridPattern(n, int(rng.integers(0, 3)), int(rng.integers(0, 3)),
                              int(rng.integers(1, 3)), g)
            assert sorted(schedule.output_order(p, params).tolist()) == list(range(n))
            assert len(schedule.kv_order(p, params)) == len(g) + n * params.kv_passes(len(g))
