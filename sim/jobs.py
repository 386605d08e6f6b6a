"""Random job lists for the engine testbenches (shared by pytest, ``swattn sim`` and regressions).

Every job carries its own seed; ``job_from_seed(params, seed)`` rebuilds exactly that job, so a
failing seed can be re-run alone.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ..sw.spec.engine_params import EngineParams
from ..sw.spec.numerics import SoftmaxConfig
from ..sw.spec.keyset import EngineForm, window_2d
from ..sw.spec.pattern import HybridPattern, PatternError
from ..sw.spec.regs import Error
from .runner import job_pattern, job_to_json


def random_softmax(rng: random.Random, head_dim: int) -> SoftmaxConfig:
    """A multiplier that spreads random int8 scores over a few to a few tens of powers of two."""
    spread = 128.0 * 128.0 * head_dim ** 0.5 / 3  # typical std of a random int8 dot product
    m = 2.0 ** rng.uniform(-1, 5) / spread
    return SoftmaxConfig.from_multiplier(m, rng.randrange(0, 8))


def random_pattern(rng: random.Random, p: EngineParams) -> HybridPattern:
    dil = rng.choice([1, 1, 1, rng.randint(1, p.max_dilation)])
    rmax = p.max_radius // dil
    left = rng.choice([0, rmax, rng.randint(0, rmax)])
    right = rng.choice([0, rmax, rng.randint(0, rmax)])
    span = (left + right) * dil + 1
    n = rng.choice([1, rng.randint(1, 4), rng.randint(1, span + 2),
                    rng.randint(span, 3 * span + 8)])
    n = max(1, min(n, p.n_max))
    g = set()
    ng = rng.choice([0, 0, 1, rng.randint(0, p.max_globals), p.max_globals])
    ng = min(ng, n, p.max_globals)
    pool = [0, n - 1, rng.randrange(n)]
    while len(g) < ng:
        c = rng.choice(pool + [rng.randrange(n)])
        if rng.random() < 0.3 and g:  # adjacent globals
            c = min(n - 1, max(g) + 1)
        g.add(c)
    return HybridPattern(n, left, right, dil, tuple(sorted(g)), limits=p.limits())


def random_keys(rng: random.Random, p: EngineParams, h: HybridPattern) -> EngineForm:
    """``h`` with bands beside its window, up to ``max_bands - 1`` of them, each wholly below or
    above the window and within the engine's reach (touching the window or each other, far
    out, clipped at either end of the sequence or empty there, among them), and up to
    ``max_columns`` key-only columns (none a global; at the ends, next to a global, inside
    the window or a band)."""
    rmax = p.max_radius // h.dilation
    spans: list[tuple[int, int]] = []
    for _ in range(rng.randint(0, p.max_bands - 1)):
        a = rng.choice([-rmax, rmax, -h.left - 1, h.right + 1, rng.randint(-rmax, rmax)])
        c = rng.choice([1, 2, 4, 16, rng.randint(1, 2 * rmax + 1)])
        c = max(1, min(c, rmax - a + 1))
        trial = sorted(spans + [(a, c)])
        try:
            EngineForm(h.n, h.left, h.right, h.dilation, tuple(trial), (),
                       h.globals_).check(p.limits())
        except PatternError:
            continue
        spans = trial
    free = [x for x in range(h.n) if x not in h.globals_]
    want = min(p.max_columns, rng.choice([0, 1, p.max_columns, rng.randint(0, p.max_columns)]))
    pool = [x for x in (0, h.n - 1, *(g + 1 for g in h.globals_)) if x in free]
    cols: set[int] = set()
    while free and len(cols) < min(want, len(free)):
        cols.add(rng.choice(pool) if pool and rng.random() < 0.3 else rng.choice(free))
    return EngineForm(h.n, h.left, h.right, h.dilation, tuple(spans), tuple(sorted(cols)),
                      h.globals_)


def random_grid(rng: random.Random, p: EngineParams, f: EngineForm) -> EngineForm:
    """``f`` (dilation 1) on a 2D grid: a width from 1 to n (narrow ones, one column, a width
    not dividing n and the whole row among them) and a column radius from 0 to width - 1."""
    w = rng.choice([1, 2, rng.randint(1, 6), rng.randint(1, f.n), f.n])
    w = max(1, min(w, f.n))
    r = rng.choice([0, w - 1, rng.randint(0, w - 1)])
    return replace(f, grid=(w, r))


def random_vil(rng: random.Random, p: EngineParams) -> EngineForm:
    """A k x k window on an H x W token grid (Vision Longformer's local attention) as the
    engine takes it: k - 1 bands beside the window and the grid, with globals and columns
    sometimes; k and W as large as the engine's bands and reach allow, H from 1 up."""
    k = rng.choice([k for k in (3, 5) if k <= p.max_bands and (k // 2) * (k + 1) <= p.max_radius]
                   or [1])
    r = k // 2
    wmax = (p.max_radius - r) // r if r else 8
    w = rng.randint(max(1, k - 1), max(k - 1, min(wmax, 12)))
    h = rng.randint(1, max(1, min(8, p.n_max // w)))
    n = h * w
    ng = min(rng.choice([0, 0, 1, p.max_globals]), p.max_globals, n)
    g = tuple(sorted(rng.sample(range(n), ng)))
    free = [x for x in range(n) if x not in g]
    nc = min(rng.choice([0, 1, p.max_columns]), len(free))
    cols = tuple(sorted(rng.sample(free, nc)))
    return EngineForm.from_pattern(window_2d(h, w, k, g, cols))


def job_from_seed(p: EngineParams, seed: int) -> dict:
    rng = random.Random(seed)
    pattern = random_pattern(rng, p)
    if (p.max_bands > 1 or p.max_columns) and rng.random() < 0.8:
        pattern = random_keys(rng, p, pattern)
    if p.grid:
        x = rng.random()
        if x < 0.2:
            pattern = random_vil(rng, p)
        elif x < 0.55 and pattern.dilation == 1:
            if not isinstance(pattern, EngineForm):
                pattern = EngineForm.from_hybrid(pattern)
            pattern = random_grid(rng, p, pattern)
    cfg = random_softmax(rng, p.head_dim)
    idle = rng.choice([0.0, 0.0, 0.2, 0.6])
    stall = rng.choice([0.0, 0.0, 0.2, 0.6])
    return job_to_json(pattern, cfg, seed, idle=idle, stall=stall)


def invalid_jobs(p: EngineParams, seed: int) -> list[dict]:
    """One job per error code, each with a config the engine must refuse."""
    base = dict(n=8, left=1, right=1, dilation=1, n_globals=0, mult_mant=40000, mult_shift=30)
    cases = [
        (Error.N_RANGE, dict(n=0)),
        (Error.N_RANGE, dict(n=p.n_max + 1)),
        (Error.RADIUS, dict(left=p.max_radius + 1)),
        (Error.RADIUS, dict(right=p.max_radius // 2 + 1, dilation=2) if p.max_dilation >= 2
         else dict(right=p.max_radius + 1)),
        (Error.DILATION, dict(dilation=0)),
        (Error.DILATION, dict(dilation=p.max_dilation + 1, left=0, right=0)),
        (Error.GLOBAL_RANGE, dict(n_globals=1, globals=[8])),
    ]
    if p.max_globals >= 2:
        cases.append((Error.GLOBAL_DUP, dict(n_globals=2, globals=[3, 3])))
    if p.max_globals < 255:
        cases.append((Error.GLOBAL_COUNT, dict(n_globals=p.max_globals + 1)))
    if p.max_bands > 1:  # (the window is -1..1)
        R = p.max_radius
        cases += [
            (Error.BAND_COUNT, dict(n_bands=p.max_bands,
                                    bands=[[2 + 2 * k, 1] for k in range(p.max_bands - 1)])),
            (Error.BAND_RANGE, dict(n_bands=1, bands=[[3, 0]])),
            (Error.BAND_RANGE, dict(n_bands=1, bands=[[-R - 1, 1]])),
            (Error.BAND_RANGE, dict(n_bands=1, bands=[[R, 2]])),
            (Error.BAND_ORDER, dict(n_bands=1, bands=[[0, 2]])),
            (Error.BAND_ORDER, dict(n_bands=1, bands=[[-3, 3]])),
        ]
        if p.max_bands > 2:
            cases += [(Error.BAND_ORDER, dict(n_bands=2, bands=[[5, 1], [3, 1]])),
                      (Error.BAND_ORDER, dict(n_bands=2, bands=[[3, 2], [4, 1]]))]
    if p.max_columns:  # (n = 8)
        cases += [(Error.COLUMN_COUNT, dict(n_columns=p.max_columns + 1)),
                  (Error.COLUMN_RANGE, dict(n_columns=1, columns=[8])),
                  (Error.COLUMN_ORDER, dict(n_columns=2, columns=[3, 3])),
                  (Error.COLUMN_ORDER, dict(n_columns=2, columns=[5, 2]))]
        if p.max_globals:
            cases.append((Error.COLUMN_GLOBAL, dict(n_columns=2, columns=[1, 4], n_globals=1,
                                                    globals=[4])))
    if p.grid:  # (n = 8, dilation 1)
        cases += [(Error.GRID, dict(grid_width=9, grid_radius=0)),
                  (Error.GRID, dict(grid_width=4, grid_radius=4)),
                  (Error.GRID, dict(grid_width=1 << 20, grid_radius=1)),
                  (Error.GRID, dict(grid_width=8, grid_radius=1 << 20)),
                  (Error.GRID, dict(grid_width=4, grid_radius=1, dilation=2, left=0, right=0))]
    jobs = []
    for i, (err, over) in enumerate(cases):
        raw = dict(base, **over)
        jobs.append({"kind": "invalid", "raw": raw, "expect": err.name, "seed": seed * 100 + i})
    return jobs


def high_bit_invalid_jobs(p: EngineParams, seed: int) -> list[dict]:
    """Configs whose only fault is in a field's high bits (the low bits alone would pass): a
    board that keeps only the bits its engine reads (fpga.core.config_store_plan) must still
    refuse each with the same code. A global index out of range that would also duplicate
    another in its low bits is refused for its range (checked first)."""
    base = dict(n=8, left=1, right=1, dilation=1, n_globals=0, mult_mant=40000, mult_shift=30)
    cases = [
        (Error.N_RANGE, dict(n=(1 << 20) | 8)),
        (Error.RADIUS, dict(left=(1 << 12) | 1)),
        (Error.RADIUS, dict(right=1 << 15)),
        (Error.DILATION, dict(dilation=(1 << 8) | 1)),
        (Error.GLOBAL_RANGE, dict(n_globals=1, globals=[(1 << 16) | 3])),
    ]
    if p.max_globals >= 2:
        cases.append((Error.GLOBAL_RANGE, dict(n_globals=2, globals=[3, (1 << 31) | 3])))
    if p.max_globals < 64:
        cases.append((Error.GLOBAL_COUNT, dict(n_globals=128 | min(p.max_globals, 1))))
    return [{"kind": "invalid", "raw": dict(base, **over), "expect": err.name,
             "seed": seed * 100 + 50 + i} for i, (err, over) in enumerate(cases)]


#: a start while BUSY is tried this many cycles past the check window too (so that offsets
#: 0 .. max_globals + BUSY_PAST_CHECKS cover the checks, job_init and the first running cycles)
BUSY_PAST_CHECKS = 8
#: starts while BUSY k = 0 .. BUSY_END_MAX cycles before the job's last output row (k = 0: in the
#: cycle of its handshake, the one that reaches DONE)
BUSY_END_MAX = 3


def busy_jobs(p: EngineParams, seed: int) -> list[dict]:
    """Jobs with a second start while the first runs, input never idle and output always ready
    (so that the job's cycle count is the cycle model's): one for every ``busy_at`` offset 0 ..
    ``max_globals + BUSY_PAST_CHECKS`` (the second start comes ``busy_at + 1`` cycles after the
    accepted one), one in its own check window's last cycle (``CHECK_BASE + n_globals``, the
    cycle where a start once dropped the job), and one ``busy_end`` = k cycles before the last
    output row for each k in 0 .. ``BUSY_END_MAX``. Each must end DONE with error BUSY, the
    outputs bit-exact and the cycle count unchanged."""
    from ..sw.cycles import CHECK_BASE

    def base(i):
        return dict(job_from_seed(p, seed + i), kind="busy", idle=0.0, stall=0.0)

    jobs = [dict(base(k), busy_at=k) for k in range(p.max_globals + BUSY_PAST_CHECKS + 1)]
    last = base(len(jobs))
    jobs.append(dict(last, busy_at=CHECK_BASE + len(last["globals"]), busy_check_last=True))
    off = len(jobs)
    jobs += [dict(base(off + k), busy_end=k) for k in range(BUSY_END_MAX + 1)]
    return jobs


def regression_jobs(p: EngineParams, count: int, seed0: int) -> list[dict]:
    """``count`` random jobs, then each invalid config, a mid-job reset and the starts while busy
    (:func:`busy_jobs`), each followed by a valid random job."""
    jobs = [job_from_seed(p, seed0 + i) for i in range(count)]
    for bad in invalid_jobs(p, seed0):
        jobs += [bad, job_from_seed(p, bad["seed"] + 7)]
    mid = job_from_seed(p, seed0 + 10_000)
    jobs += [dict(mid, kind="reset_mid", abort_after=40), job_from_seed(p, seed0 + 10_001)]
    for busy in busy_jobs(p, seed0 + 10_100):
        jobs += [busy, job_from_seed(p, busy["seed"] + 50)]
    return jobs


def axi_jobs(p: EngineParams, count: int, seed0: int, busy: int = 3) -> list[dict]:
    """Jobs of the AXI top's testbench (:mod:`swattn.sim.tb_axi`): the register checks, ``count``
    random jobs, every invalid configuration (:func:`invalid_jobs` and
    :func:`high_bit_invalid_jobs`), a reset in the middle of a job and ``busy`` second starts
    at random points of a job, each followed by a valid random job."""
    rng = random.Random(seed0)
    jobs = [{"kind": "registers", "seed": seed0}]
    jobs += [job_from_seed(p, seed0 + 1 + i) for i in range(count)]
    for bad in invalid_jobs(p, seed0) + high_bit_invalid_jobs(p, seed0):
        jobs += [bad, job_from_seed(p, bad["seed"] + 7)]
    mid = job_from_seed(p, seed0 + 10_000)
    jobs += [dict(mid, kind="reset_mid", abort_after=60), job_from_seed(p, seed0 + 10_001)]
    from ..sw.cycles import predict_cycles

    for i in range(busy):
        job = job_from_seed(p, seed0 + 10_100 + i)
        pat = job_pattern(job, p.limits())
        # well inside the job (its cycle count with no pause is the cycle model's)
        jobs += [dict(job, kind="busy", busy_at=rng.randint(0, predict_cycles(p, pat) // 2)),
                 job_from_seed(p, seed0 + 10_200 + i)]
    return jobs
