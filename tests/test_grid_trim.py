"""The grid's trim of a band's keys (``swattn.sw.cycles.grid_trim``, the scheduler's rule in
``Scheduler._grid_trim``) against the key sets by definition: it never leaves out a key some unit
of the group keeps, and where it trims, the first and the last key it streams are kept by some
unit (so it leaves out no more than it may)."""

import random

import pytest

from swattn.sw.cycles import grid_trim


def kept_by_some_unit(t, start, bq, units, span, w, r, clip):
    """Key ``start + t`` of a band (its keys count from ``clip`` before ``start``): unit u's
    query ``bq + u`` takes the band's keys ``u .. u + span`` and keeps one within ``r`` grid
    columns of its own."""
    j = start + t
    k = clip + t
    return any(u <= k <= u + span and abs(j % w - (bq + u) % w) <= r for u in range(units))


@pytest.mark.parametrize("seed", range(40))
def test_trim_keeps_every_key_a_unit_keeps(seed):
    rng = random.Random(seed)
    for _ in range(300):
        w = rng.randint(1, 20)
        r = rng.randint(0, w - 1)
        units = rng.choice([1, 1, 2, 4])
        span = rng.randint(0, 2 * w)
        bq = rng.randint(0, 200) // units * units
        a = rng.randint(-3 * w, 3 * w)
        lo = bq + a
        start = max(lo, 0)
        clip = start - lo
        kmax = lo + span + units - 1 - start
        if kmax < 0:
            continue
        kept = [t for t in range(kmax + 1)
                if kept_by_some_unit(t, start, bq, units, span, w, r, clip)]
        got = grid_trim(start, kmax, bq, units, (w, r))
        if got is None:
            assert kept == [], (w, r, units, span, bq, a)
            continue
        s2, k2 = got
        lead = s2 - start
        streamed = range(lead, lead + k2 + 1)
        assert all(t in streamed for t in kept), (w, r, units, span, bq, a, got)
        if (s2, k2) != (start, kmax):  # it trimmed: its ends are within the units' columns
            qlo, qhi = max(0, bq % w - r), min(w - 1, bq % w + units - 1 + r)
            assert qlo <= s2 % w <= qhi and qlo <= (s2 + k2) % w <= qhi
            if units == 1:
                assert lead in kept and lead + k2 in kept, (w, r, span, bq, a, got)
