"""The swattn attention engine: hybrid sliding-window + global attention for one head per job.

:class:`Engine` wires the stages, each a component of its own module (docs/engine.md):
job control (:mod:`.job`), the K/V store (:mod:`.kv_ring`), the scheduler and query banks
(:mod:`.scheduler`), stage 1 (:mod:`.stage1`), stage 2 (:mod:`.stage2`) and the epilogue
(:mod:`.epilogue`).

Dataflow:

* ``units`` query units each own ``lane_width`` Q.K lanes and ``lane_width`` P.V lanes. A *group*
  is up to ``units`` queries of one residue class mod dilation (i, i + dil, ...); its window keys
  stream past all units at once (one key every ``chunks`` cycles) followed by the global keys.
* Stage 1 computes scores into a double-banked score buffer and the row maximum; stage 2 reads
  them back, forms e = 2^-(m - s) M, accumulates S and A = sum e v; the epilogue normalises with
  one reciprocal per row. Stage 1 of group g + 1 overlaps stage 2 of group g, so both arrays stay
  busy.
* K/V rows stream through a ring of ``ring_rows`` rows: memory grows with the window, not with n.
* Global query rows attend to every key: after the main pass the host streams K/V twice per
  group of ``units`` global queries (first pass: row maximum; second: exponentials and P.V).
  Engines of more than one unit (``EngineParams.paired_max``) run the max passes first, before
  the main pass, two groups per pass: the Q.K lanes score one group, the P.V lanes (idle then)
  the next, and the maxima wait in registers for the groups' P.V passes after the main pass.

Streams (payloads are arrays of int8):

* ``kv``: the G global rows (config order), then rows 0..n-1 once per pass: the main pass, then
  per global group a max pass and a P.V pass (paired: the max passes, one per pair of global
  groups, come first, then the main pass, then one P.V pass per group).
  The engine reads a row chunk by chunk from the payload and takes it (``ready``) with its last
  chunk, so a row once offered must stay offered (the stream rule: ``valid`` held and the
  payload stable until it is taken).
* ``q``: the non-global rows in processing order (``swattn.sw.spec.schedule``), then per global group
  its global queries (paired: the global queries once before all that, for the max passes).
* ``o``: output rows: the non-global rows in processing order, then the global rows.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .blocks import int8_row
from .epilogue import Epilogue
from .job import JobControl
from .kv_ring import KVRing, kv_layout
from .scheduler import QueryBanks, Scheduler
from .stage1 import GroupQueue, KeyIssue, ScoreUnit, stage1_latency
from .stage2 import STAGE2_LATENCY, PVIssue, SoftmaxPV

__all__ = ["Engine", "STAGE2_LATENCY", "stage1_latency"]


class Engine(wiring.Component):
    """The attention engine. See the module docstring for the streams and the dataflow.

    Ports: ``cfg`` (the configuration register, :func:`swattn.sw.spec.regs.config_layout`),
    ``start`` (one-cycle pulse), ``status`` (state and error code), ``cycles`` (cycles since the
    last accepted start, frozen when the job is done), streams ``q``, ``kv`` in and ``o`` out.

    ``hold_config``: the engine copies ``cfg`` at the start, so its source may change during a
    job. ``False`` leaves the copy out (about 180 flip-flops fewer) and reads ``cfg`` directly:
    only for a source that holds it from the start until the job is done, such as the board
    core, which refuses WRITE_CONFIG while a job runs.
    """

    def __init__(self, params: EngineParams, hold_config: bool = True):
        if params.serial:
            raise ValueError(f"lanes = {params.lanes}: the stream engine needs 8..4096 (4 lanes "
                             f"is the serial engine, swattn.hw.serial)")
        self.params = params
        self._hold_config = hold_config
        d = params.head_dim
        super().__init__({
            "cfg": In(regs.config_layout(params)),
            "start": In(1),
            "status": Out(regs.STATUS_LAYOUT),
            "cycles": Out(32),
            "q": In(stream.Signature(int8_row(d))),
            "kv": In(stream.Signature(kv_layout(d))),
            "o": Out(stream.Signature(int8_row(d))),
        })

    def elaborate(self, platform):
        P = self.params
        U = P.units
        m = Module()
        m.submodules.control = ctrl = JobControl(P, self._hold_config)
        m.submodules.kv_ring = kvr = KVRing(P)
        m.submodules.scheduler = sch = Scheduler(P)
        m.submodules.queries = qb = QueryBanks(P)
        m.submodules.key_issue = ki = KeyIssue(P)
        m.submodules.group_queue = gq = GroupQueue(P)
        m.submodules.pv_issue = pv = PVIssue(P)
        m.submodules.epilogue = epi = Epilogue(P)
        scores = [ScoreUnit(P, u) for u in range(U)]
        pvs = [SoftmaxPV(P, u) for u in range(U)]
        for u in range(U):
            m.submodules[f"qk{u}"] = scores[u]
            m.submodules[f"pv{u}"] = pvs[u]
        for part in (kvr, sch, ki, gq, pv, epi, *pvs):
            wiring.connect(m, ctrl.job, part.job)

        # job control: the ports, and the output rows that end the job
        m.d.comb += [ctrl.cfg.eq(self.cfg), ctrl.start.eq(self.start),
                     ctrl.out_fire.eq(self.o.valid & self.o.ready),
                     self.status.eq(ctrl.status), self.cycles.eq(ctrl.cycles)]
        # K/V in; K to stage 1, V to stage 2; stage 2 releases the rows below its groups
        wiring.connect(m, wiring.flipped(self.kv), kvr.kv)
        m.d.comb += [ki.wpos.eq(kvr.wpos), ki.k_data.eq(kvr.k_data), ki.gk_data.eq(kvr.gk_data),
                     pv.v_data.eq(kvr.v_data), pv.gv_data.eq(kvr.gv_data),
                     kvr.release_en.eq(pv.release_en), kvr.release_pos.eq(pv.release_pos)]
        for j in range(len(kvr.k_addr)):
            m.d.comb += [kvr.k_addr[j].eq(ki.k_addr[j]), kvr.gk_addr[j].eq(ki.gk_addr[j]),
                         kvr.v_addr[j].eq(pv.v_addr[j]), kvr.gv_addr[j].eq(pv.gv_addr[j])]
        # Q in through the scheduler into the query banks; descriptors to stage 1
        m.d.comb += [sch.q_valid.eq(self.q.valid), self.q.ready.eq(sch.q_ready),
                     qb.row.eq(self.q.payload), qb.load.eq(sch.load), qb.bank.eq(sch.bank),
                     qb.unit.eq(sch.unit), sch.s1_busy.eq(ki.busy)]
        wiring.connect(m, sch.desc, ki.desc)
        # stage 1 -> the score banks' queue -> stage 2
        m.d.comb += [gq.busy_set.eq(ki.busy_set), gq.q_set.eq(ki.q_set),
                     gq.done_set.eq(ki.done_set), gq.desc_in.eq(ki.q_desc),
                     gq.count_in.eq(ki.q_count), ki.bank_busy.eq(gq.busy),
                     gq.busy_clr.eq(pv.busy_clr), gq.busy_done.eq(pv.busy_done),
                     gq.done_clr.eq(pv.done_clr), gq.q_clr.eq(pv.q_clr),
                     pv.q_valid.eq(gq.valid), pv.s1_done.eq(gq.done),
                     pv.s1_done_set.eq(ki.done_set)]
        for b in range(2):
            m.d.comb += [pv.q_desc[b].eq(gq.desc[b]), pv.q_count[b].eq(gq.count[b])]
        if P.max_bands > 1:  # each key's place, from stage 1 to stage 2
            m.d.comb += [ki.ka_raddr.eq(pv.ka_raddr), pv.ka_rdata.eq(ki.ka_rdata)]
        # per unit: queries and keys into the scores, scores and maxima into stage 2, the
        # accumulator banks into the epilogue
        for u, (su, pu) in enumerate(zip(scores, pvs)):
            m.d.comb += [su.chunk.eq(ki.chunk), su.kdat.eq(ki.kdat),
                         su.tag_acc.eq(ki.tag_acc), su.tag_write.eq(ki.tag_write),
                         su.score_raddr.eq(pv.score_addr), pu.score.eq(su.score_rdata),
                         pu.tag_score.eq(pv.tag_score), pu.tag_acc.eq(pv.tag_acc),
                         pu.tag_acc_early.eq(pv.tag_acc_early), pu.vdat.eq(pv.vdat)]
            m.d.comb += [su.qbank[j].eq(ki.qbank[u][j]) for j in range(len(su.qbank))]
            for b in range(2):
                m.d.comb += [su.rows[b].eq(qb.rows[b][u]), pu.row_max[b].eq(su.row_max[b]),
                             pu.turn[b].eq(epi.turn[u] & (epi.bank == b)),
                             epi.heads[u][b].eq(pu.heads[b]), epi.sums[u][b].eq(pu.sums[b])]
            if P.paired_max:  # the P.V lanes score a max pass's second group
                m.d.comb += [pu.pair_dot.eq(ki.tag_dot.valid & ki.tag_dot.pair),
                             pu.pair_a.eq(su.pair_a), pu.pair_b.eq(ki.kdat),
                             su.pair_sum.eq(pu.pair_sum), su.pass_done.eq(ki.pass_done),
                             su.pass_gidx.eq(ki.pass_gidx)]
        # stage 2 -> epilogue -> o
        m.d.comb += [pv.acc_full.eq(epi.acc_full), epi.acc_claim.eq(pv.acc_claim),
                     epi.grp_done.eq(pv.grp_done), epi.grp_final.eq(pv.grp_final),
                     epi.grp_abank.eq(pv.grp_abank), epi.grp_active.eq(pv.grp_active)]
        wiring.connect(m, epi.o, wiring.flipped(self.o))
        return m
