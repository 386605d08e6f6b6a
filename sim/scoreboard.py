"""The testbenches' scoreboard: a job's inputs, its expected output from the golden model
(:func:`swattn.sw.golden.attention`, called, never re-implemented), and the comparison of the rows
an engine produced with it, reported into the job's result record.

Shared by the stream engine's testbench (:mod:`swattn.sim.tb_engine`, rows from its ``o`` sink)
and the serial engine's (:mod:`swattn.sim.tb_serial`, rows from its output buffer): both hand
:meth:`Scoreboard.score` the rows in the order the engine returns them
(:func:`swattn.sw.spec.schedule.output_order`).
"""

from __future__ import annotations

import numpy as np

from ..sw import golden
from ..sw.spec import schedule
from ..sw.spec.engine_params import EngineParams
from ..sw.spec.numerics import SoftmaxConfig
from .runner import job_pattern


def job_inputs(job: dict, p: EngineParams):
    """A valid job's pattern, softmax settings and (q, k, v) int8 rows (its own data, or random
    rows from its seed)."""
    pattern = job_pattern(job, p.limits())
    cfg = SoftmaxConfig(job["mult_mant"], job["mult_shift"], job["out_shift"])
    qkv = tuple(np.asarray(x, dtype=np.int8) for x in job["data"]) if "data" in job else \
        _random(pattern.n, p.head_dim, job["seed"])
    return pattern, cfg, qkv


def _random(n, d, seed):
    rs = np.random.default_rng(seed)
    return tuple(rs.integers(-128, 128, (n, d)).astype(np.int8) for _ in range(3))


def report_output(res: dict, job: dict, out: np.ndarray, ref: np.ndarray) -> None:
    """Add the first mismatching elements (and, if the job asks, the whole output) to ``res``."""
    if res.get("mismatches"):
        bad = np.argwhere(out != ref)[:5]
        res["first_mismatches"] = [[int(i), int(j), int(out[i, j]), int(ref[i, j])]
                                   for i, j in bad]
    if job.get("return_output"):
        res["output"] = out.tolist()


class Scoreboard:
    """One valid job: its inputs (:func:`job_inputs`), the order the engine returns its rows in
    (``order[i]``: the token of the i-th output row) and the golden model's output by token
    (``ref``)."""

    def __init__(self, job: dict, params: EngineParams):
        self.job = job
        self.pattern, self.cfg, (self.q, self.k, self.v) = job_inputs(job, params)
        self.order = schedule.output_order(self.pattern, params)
        self.ref = golden.attention_engine(self.q, self.k, self.v, self.pattern, self.cfg)

    @property
    def n(self) -> int:
        """Output rows the job returns (one per token)."""
        return self.pattern.n

    def expected_rows(self) -> np.ndarray:
        """The golden model's rows in the order the engine returns them."""
        return self.ref[self.order]

    def score(self, rows: np.ndarray, res: dict) -> int:
        """Compare ``rows`` (n int8 rows, in the engine's output order) with the golden model,
        element for element; record ``mismatches`` (and, through :func:`report_output`, the
        first of them and the output if the job asks) in ``res``. Returns the mismatch count."""
        out = np.zeros_like(self.ref)
        out[self.order] = rows
        res["mismatches"] = int(np.count_nonzero(out != self.ref))
        report_output(res, self.job, out, self.ref)
        return res["mismatches"]
