"""Stage 2: the softmax's exponentials and the P.V products, accumulated per output row.

:class:`PVIssue` takes a group from stage 1's score banks once its scores are written and its
accumulator bank is free, and issues one key chunk per cycle: the score read, the V read and a
tag (:func:`tag_layout`) that travels down the pipeline beside the data. Per unit,
:class:`SoftmaxPV` turns each score s into e = 2^-(m - s) M (m the row maximum, M the softmax
multiplier; ``docs/numerics.md``), multiplies e by the V chunk in ``lane_width`` lanes and
accumulates A = sum e v and S = sum e into one of two accumulator banks, which the epilogue
reads while the next group fills the other.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from ..sw.spec.engine_params import EngineParams
from .blocks import (AccumulatorRing, Accumulators, ExpUnit, PairedLanes, ScaleLanes, delayed,
                     lane_group, lane_groups, registered_product)
from .epilogue import head_layout
from .job import JobSignature
from .kv_ring import SlicedMemory, kv_address_widths
from .scheduler import desc_layout
from .stage1 import key_addr_layout

#: cycles from a stage-2 issue to its accumulation without EngineParams.pv_pipeline's stages
#: (the cycle model, ``swattn.sw.cycles``, follows it)
STAGE2_LATENCY = 7


def pv_stages(P: EngineParams) -> dict:
    """EngineParams.pv_pipeline's stages, each a cycle more from issue to accumulate: EC, the
    exponential registered once more, a copy per 8 P.V lanes; PR, the products registered
    beside the accumulators; EL, the exponential table's output registered (ExpUnit latency
    2); SR, the score read registered beside the score memory; XP, the softmax multiplier's
    product as two partial products registered in their multipliers, summed a cycle later.
    Without them: e at t5, registered (e5) for the products at t6 (TM), accumulate at t7."""
    X = P.pv_pipeline
    EC, PR, EL, SR, XP = (int(X >= k) for k in (1, 2, 3, 4, 5))
    return dict(X=X, EC=EC, PR=PR, EL=EL, SR=SR, XP=XP, TM=6 + SR + EL + EC + XP)


def tag_layout(P: EngineParams) -> data.StructLayout:
    """A stage-2 issue's tag: ``valid``; ``first`` (the key's first chunk); ``fkey`` (the row
    sums start here); ``lkey`` (the group's last chunk); ``bank`` (score bank); ``glob`` (the
    key is a global row); ``vaddr`` / ``gaddr`` (V chunk address in the ring / global rows);
    ``final``, ``abank``, ``active`` (of the group)."""
    ring_aw, glob_aw = kv_address_widths(P)
    return data.StructLayout({
        "valid": 1, "first": 1, "fkey": 1, "lkey": 1, "bank": 1, "glob": 1,
        "vaddr": ring_aw, "gaddr": glob_aw,
        "final": 1, "abank": 1, "active": P.units})


class PVIssue(wiring.Component):
    """Stage 2's control: takes groups from the score banks and issues their keys.

    A take is decided a cycle ahead (``s2_go``, a register) from registers only and made in the
    next cycle: the group at the head of the bank queue (``q_valid``, ``q_desc``, ``q_count``)
    whose scores are written (``s1_done``, or ``s1_done_set`` in this cycle), with its
    accumulator bank free (``acc_full``) unless it is a max pass. A max pass is only released;
    a P.V group issues one key chunk per cycle. Each take releases the K/V rows below the
    group's first key (``release_*``); ``q_clr``/``done_clr``/``busy_clr`` free the queue
    entry, ``busy_done`` hands the score bank back at the group's last issue. Out: the score
    read address (``score_addr``), the V chunk (``vdat``, at the multipliers' cycle), the tags
    at the cycles the units use (``tag_score``, ``tag_acc``, ``tag_acc_early``) and, as a
    group's last accumulation lands, ``grp_*`` for the epilogue.
    """

    def __init__(self, params: EngineParams):
        self._params = params
        P, SD = params, params.score_depth
        KS = SlicedMemory.count(P.lane_width * nx.DATA_WIDTH)
        ring_aw, glob_aw = kv_address_widths(P)
        desc = desc_layout(P)
        tag = tag_layout(P)
        super().__init__({
            "job": In(JobSignature(P)),
            "q_valid": In(2), "s1_done": In(2), "s1_done_set": In(2),
            "q_desc": In(desc).array(2), "q_count": In(range(SD + 1)).array(2),
            "q_clr": Out(2), "done_clr": Out(2), "busy_clr": Out(2), "busy_done": Out(2),
            "acc_full": In(2), "acc_claim": Out(2),
            "release_en": Out(1), "release_pos": Out(P.pos_width + 1),
            "v_addr": Out(ring_aw).array(KS), "gv_addr": Out(glob_aw).array(KS),
            "v_data": In(P.lane_width * nx.DATA_WIDTH),
            "gv_data": In(P.lane_width * nx.DATA_WIDTH),
            "score_addr": Out((SD - 1).bit_length() + 1),
            "vdat": Out(P.lane_width * nx.DATA_WIDTH),
            "tag_score": Out(tag), "tag_acc": Out(tag), "tag_acc_early": Out(tag),
            "grp_done": Out(1), "grp_final": Out(1), "grp_abank": Out(1), "grp_active": Out(P.units),
            **({"ka_raddr": Out((SD - 1).bit_length() + 1), "ka_rdata": In(key_addr_layout(P))}
               if P.max_bands > 1 else {}),
        })

    def elaborate(self, platform):
        P, job = self._params, self.job
        CH, SD, PW, B = P.chunks, P.score_depth, P.pos_width, P.ring_rows
        GM = P.held_rows
        m = Module()
        s2_run = Signal()
        s2_bank = Signal()  # bank stage 2 takes next (groups alternate banks)
        s2 = Signal(desc_layout(P))
        s2_bnk = Signal()
        s2_count = Signal(range(SD + 1))
        s2_p = Signal(range(SD + 1))
        s2_chunk = Signal(range(CH))
        s2_pos = Signal(PW + 1)
        s2_gi = Signal(8)
        s2_kw = Signal(range(SD + 1))  # number of window keys = count - nglob
        # s2_p >= s2_kw (the key is a global row's) and s2_p + 1 >= s2_count (the group's last
        # key), as registers set with s2_p
        s2_inglob, s2_lastkey = Signal(), Signal()
        s2_abank = Signal()  # accumulator bank of the running group
        abank_next = Signal()  # accumulator bank the next group accumulates into

        qv = Array([self.q_valid[0], self.q_valid[1]])[s2_bank]
        sd1 = Array([self.s1_done[0], self.s1_done[1]])[s2_bank]
        head = Signal(desc_layout(P))
        head_count = Signal(range(SD + 1))
        m.d.comb += [head.eq(Mux(s2_bank, self.q_desc[1].as_value(), self.q_desc[0].as_value())),
                     head_count.eq(Mux(s2_bank, self.q_count[1], self.q_count[0]))]
        # A take is decided a cycle ahead from registers only, and made in the next cycle:
        # nothing it waits on can be withdrawn in between (the accumulator bank only frees), and
        # s2_go is not set twice in a row, so one decision is one take (decided in the running
        # group's last issue cycle too, so that a P.V group's first issue comes two cycles
        # after the previous group's last: sw/cycles.py counts that cycle)
        s2_go = Signal()
        s2_ending = Signal()
        # (and in the cycle the group's last score is written, s1_done_set)
        s2_ok = (job.running & (~s2_run | s2_ending) & qv
                 & (sd1 | Mux(s2_bank, self.s1_done_set[1], self.s1_done_set[0]))
                 & (head.no_pv | ~Array([self.acc_full[0], self.acc_full[1]])[abank_next]))
        m.d.sync += s2_go.eq(s2_ok & ~s2_go)
        # The lowest K/V position later groups still need. Window starts rise with the group
        # order except at the front, where a window clipped at row 0 starts at its residue class
        # (0..dil-1) and the next block's class 0 starts lower again: hold those rows until the
        # first unclipped group.
        head_release = Signal(PW + 1)
        # (with bands beside the window, a main group's lowest band start, ``low``)
        hstart = Mux(head.main, head.low, head.start) if P.max_bands > 1 else head.start
        if P.paired_max:  # the main pass starts at stream position moff
            m.d.comb += head_release.eq(Mux(head.main & (hstart < job.moff + job.dil),
                                            job.moff, hstart))
        else:
            m.d.comb += head_release.eq(Mux(head.main & (hstart < job.dil), 0, hstart))
        # Taking a group releases the rows below its first key (the K/V store delays it until
        # the previous group's last V reads are done)
        head_rel = Signal.like(head_release)  # (head stands still from decision to take)
        m.d.sync += head_rel.eq(head_release)
        m.d.comb += [self.release_en.eq(s2_go), self.release_pos.eq(head_rel)]
        with m.If(s2_go):
            bit = Mux(s2_bank, 0b10, 0b01)
            with m.If(head.no_pv):
                # max-only pass: nothing to do in stage 2, release the bank and the rows
                m.d.comb += [self.q_clr.eq(bit), self.done_clr.eq(bit), self.busy_clr.eq(bit)]
                m.d.sync += s2_bank.eq(~s2_bank)
            with m.Else():
                m.d.comb += [self.q_clr.eq(bit), self.done_clr.eq(bit)]
                m.d.sync += [s2_abank.eq(abank_next), abank_next.eq(abank_next ^ head.final)]
                # the bank is claimed from the take of its final group until its rows are out
                with m.If(head.final):
                    m.d.comb += self.acc_claim.eq(Mux(abank_next, 0b10, 0b01))
                kw_new = Signal.like(s2_kw)
                m.d.comb += kw_new.eq(head_count - head.nglob)
                m.d.sync += [s2.eq(head), s2_bnk.eq(s2_bank), s2_bank.eq(~s2_bank), s2_run.eq(1),
                             s2_count.eq(head_count), s2_p.eq(0), s2_chunk.eq(0),
                             s2_pos.eq(head.start), s2_gi.eq(0), s2_kw.eq(kw_new),
                             s2_inglob.eq(kw_new == 0), s2_lastkey.eq(head_count <= 1)]
        issue2 = s2_run
        m.d.comb += s2_ending.eq(s2_run & (s2_chunk == CH - 1) & s2_lastkey)
        with m.If(issue2):
            with m.If(s2_chunk == CH - 1):
                m.d.sync += [s2_chunk.eq(0), s2_p.eq(s2_p + 1),
                             s2_inglob.eq(s2_p + 1 >= s2_kw), s2_lastkey.eq(s2_p + 2 >= s2_count)]
                with m.If(s2_inglob):
                    m.d.sync += s2_gi.eq(s2_gi + 1)
                with m.Else():
                    m.d.sync += s2_pos.eq(s2_pos + s2.step)
                with m.If(s2_lastkey):
                    m.d.sync += s2_run.eq(0)
            with m.Else():
                m.d.sync += s2_chunk.eq(s2_chunk + 1)
        # The score bank (scores and row maximum) is last read at t1 of the group's last key;
        # stage 1 writes a new group's first score at least five cycles after it takes the bank,
        # so the bank is handed back at the last issue rather than when the group drains.
        with m.If(issue2 & s2_lastkey & (s2_chunk == CH - 1)):
            m.d.comb += self.busy_done.eq(Mux(s2_bnk, 0b10, 0b01))
        m.d.comb += self.score_addr.eq(Cat(s2_p[:(SD - 1).bit_length()], s2_bnk))

        t0 = Signal(tag_layout(P))
        m.d.comb += [
            t0.valid.eq(issue2), t0.first.eq(s2_chunk == 0),
            t0.fkey.eq((s2_p == 0) & s2.reset_acc),
            t0.lkey.eq(s2_lastkey & (s2_chunk == CH - 1)), t0.bank.eq(s2_bnk),
            t0.glob.eq(s2_inglob), t0.final.eq(s2.final), t0.abank.eq(s2_abank),
            t0.active.eq(s2.active),
            t0.vaddr.eq(Cat(Const(0, 0) if CH == 1 else s2_chunk, s2_pos[:(B - 1).bit_length()])),
            t0.gaddr.eq(Cat(Const(0, 0) if CH == 1 else s2_chunk,
                            s2_gi[:max(1, (GM - 1).bit_length())])),
        ]
        self._pipeline(m, t0)

        with m.If(job.init):
            m.d.sync += [s2_bank.eq(0), s2_go.eq(0), s2_run.eq(0), abank_next.eq(0)]
        return m

    def _pipeline(self, m, t0):
        """The tags down the pipeline, the V reads and the group's end."""
        P = self._params
        st = pv_stages(P)
        X, TM, PR, SR = st["X"], st["TM"], st["PR"], st["SR"]
        t = [t0] + [Signal(tag_layout(P), name=f"t{i}") for i in range(1, 8 + X)]
        for i in range(1, 8 + X):
            m.d.sync += t[i].eq(t[i - 1])
        m.d.comb += [self.tag_score.eq(t[1 + SR]), self.tag_acc.eq(t[TM + PR]),
                     self.tag_acc_early.eq(t[TM + PR - 1])]
        # V read at t3, data at t4, registered beside the memories at t5 and after the ring/global
        # choice at t6 (a memory's output never feeds logic far away or a multiplier in the same
        # cycle); with the pipeline stages, read a cycle later (never after t4: the K/V store's
        # RELEASE_DELAY) and held in registers (vdat*) until TM
        VR = 3 + min(TM - 6, 1)
        for j in range(len(self.v_addr)):  # (copies of t[VR]'s addresses, one per memory slice)
            va = delayed(m, t[VR - 1].vaddr, f"va{j}_dup")
            ga = delayed(m, t[VR - 1].gaddr, f"ga{j}_dup")
            m.d.comb += [self.v_addr[j].eq(va), self.gv_addr[j].eq(ga)]
        rv_d = Signal(len(self.v_data), name="rv_d", reset_less=True)
        gv_d = Signal(len(self.v_data), name="gv_d", reset_less=True)
        vdat = Signal(len(self.v_data), reset_less=True)
        m.d.sync += [rv_d.eq(self.v_data), gv_d.eq(self.gv_data)]
        # (with a cycle to spare before TM, both rows registered once more before the choice:
        # the ring's and the global rows' memories lie apart)
        VC = VR + 2 + (TM > VR + 3)  # the choice's cycle
        if VC > VR + 2:
            rv_d, gv_d = delayed(m, rv_d, "rv_d2", True), delayed(m, gv_d, "gv_d2", True)
        m.d.sync += vdat.eq(Mux(t[VC].glob, gv_d, rv_d))
        for k in range(VC + 1, TM):
            vdat = delayed(m, vdat, f"vdat{k + 1}", True)
        m.d.comb += self.vdat.eq(vdat)
        if P.max_bands > 1:
            # the key's place from stage 1's record (read with the score at t0), from t2 on
            cb = (P.chunks - 1).bit_length()
            ka = self.ka_rdata
            m.d.comb += self.ka_raddr.eq(self.score_addr)
            m.d.sync += [t[2].vaddr.eq(Cat(t[1].vaddr[:cb], ka.row)),
                         t[2].gaddr.eq(Cat(t[1].gaddr[:cb], ka.gi)), t[2].glob.eq(ka.glob)]
        end = t[7 + X]
        m.d.sync += [self.grp_done.eq(end.valid & end.lkey), self.grp_final.eq(end.final),
                     self.grp_abank.eq(end.abank), self.grp_active.eq(end.active)]


class SoftmaxPV(wiring.Component):
    """One unit's exponentials, P.V lanes and accumulator banks.

    Per cycle, in the pipeline of :class:`PVIssue`'s tags (t0 the issue): ``score`` is the score
    memory's output at t1 (value and validity; with the score-read stage registered here
    first) and ``tag_score`` the tag of the cycle that registers d = m - s, with m the row
    maximum of its bank (``row_max``); then the product with the softmax multiplier's mantissa
    (``mult_mant``), the shift by ``mult_shift``, the exponential (zero for an invalid score),
    and at TM the products e v with the V chunk ``vdat``. ``tag_acc`` is the tag of the cycle
    before the accumulation (``tag_acc_early`` a cycle earlier still): its add and clear are
    registered from it, and a cycle later A (a ring of ``chunks`` chunks, its head
    ``heads[b]``, turned by ``turn[b]``) and S (``sums[b]``) of bank ``abank`` take the
    products, cleared at a row's first key.

    ``paired``: the P.V lanes are :class:`PairedLanes`, which also compute stage 1's second
    group of a paired max pass (``pair_dot``, ``pair_a``, ``pair_b`` in, ``pair_sum`` out).
    """

    def __init__(self, params: EngineParams, unit: int):
        self._params = params
        self._unit = unit
        P = params
        LW, SW = P.lane_width, P.score_width
        bits = LW * nx.DATA_WIDTH
        tag = tag_layout(P)
        ports = {
            "job": In(JobSignature(P)),
            "score": In(SW + 1), "row_max": In(signed(SW)).array(2),
            "tag_score": In(tag), "tag_acc": In(tag), "tag_acc_early": In(tag),
            "vdat": In(bits), "turn": In(2),
            "heads": Out(head_layout(P)).array(2),
            "sums": Out(unsigned(P.sum_width)).array(2),
        }
        if P.paired_max:
            ports.update({"pair_dot": In(1), "pair_a": In(bits), "pair_b": In(bits),
                          "pair_sum": Out(signed(nx.score_width(LW)))})
        super().__init__(ports)

    def elaborate(self, platform):
        P, u = self._params, self._unit
        LW, SW = P.lane_width, P.score_width
        st = pv_stages(P)
        EC, PR, EL, SR, XP, TM = st["EC"], st["PR"], st["EL"], st["SR"], st["XP"], st["TM"]
        mant, mshift = self.job.mult_mant, self.job.mult_shift
        m = Module()
        # t1: score data -> difference (with SR, the data registered first)
        sdata = delayed(m, self.score, f"sdata{u}", True) if SR else self.score
        sval = sdata[:SW].as_signed()
        svalid = sdata[SW]
        ts = self.tag_score
        mx = Mux(ts.bank, self.row_max[1], self.row_max[0])
        diff = Signal(nx.DIFF_WIDTH, name=f"diff{u}", reset_less=True)
        dv2 = Signal(name=f"dv2_{u}")
        m.d.sync += [diff.eq(mx - sval), dv2.eq(svalid & ts.valid)]
        # t2: product with the multiplier mantissa (XP: t2 its partial products with diff's
        # low 17 bits and its high bits, each in one 18 x 18 multiplier's output register,
        # and t3 their sum)
        xprod = Signal(nx.XPROD_WIDTH, name=f"xprod{u}", reset_less=True)
        dv3 = Signal(name=f"dv3_{u}")
        m.d.sync += dv3.eq(dv2)
        if XP:
            XS = 17
            x_lo = Signal(XS + nx.MULT_MANT_WIDTH, name=f"xlo{u}", reset_less=True)
            x_hi = Signal(nx.XPROD_WIDTH - XS, name=f"xhi{u}", reset_less=True)
            registered_product(m, platform, diff[:XS], mant, x_lo, reg_inputs=False,
                               name=f"xmul_lo{u}")
            registered_product(m, platform, diff[XS:], mant, x_hi, reg_inputs=False,
                               name=f"xmul_hi{u}")
            m.d.sync += xprod.eq((x_hi << XS) + x_lo)
            dv3 = delayed(m, dv3, f"dv3b_{u}")
        else:
            m.d.sync += xprod.eq(diff * mant)
        # t3: z = floor(2 xprod / 2^mshift); t4: the exponential of x = (z + 1) >> 1, which
        # is xprod / 2^mshift rounded half up, clamped at EXP_CUTOFF (ExpUnit ``halves``:
        # the rounding folded into its table, z's low bits its address)
        z = Signal(nx.XPROD_WIDTH + 1, name=f"z{u}", reset_less=True)
        dv4 = Signal(name=f"dv4_{u}")
        m.d.sync += [z.eq((xprod << 1) >> mshift), dv4.eq(dv3)]
        m.submodules[f"exp{u}"] = ex = ExpUnit(1 + EL, halves=True, z_width=len(z))
        m.d.comb += ex.x.eq(z)
        dv5 = Signal(name=f"dv5_{u}")
        m.d.sync += dv5.eq(dv4)
        if EL:
            dv5 = delayed(m, dv5, f"dv5b_{u}")
        # t5: e valid; register it for t6 (both SR + EL later with those stages)
        e5 = Signal(nx.EXP_WIDTH, name=f"e5_{u}", reset_less=True)
        m.d.sync += e5.eq(Mux(dv5, ex.e, 0))
        # TM: products e * v (with EC a copy of e per 8 lanes, registered from e5 beside its
        # multipliers, meets v a cycle later)
        if P.paired_max:
            m.submodules[f"scale{u}"] = sc = PairedLanes(LW, P.dot_latency
                                                        - int(P.key_register)
                                                        - int(P.key_addr_register))
            m.d.comb += [sc.dot.eq(self.pair_dot), sc.a.as_value().eq(self.pair_a),
                         sc.b.as_value().eq(self.pair_b), self.pair_sum.eq(sc.sum)]
        else:
            m.submodules[f"scale{u}"] = sc = ScaleLanes(LW)
        for c in range(lane_groups(LW)):
            m.d.comb += sc.e[c].eq(delayed(m, e5, f"e6_{u}_{c}_dup", True) if EC else e5)
        m.d.comb += sc.v.as_value().eq(self.vdat)
        # (PR: the products registered beside the accumulators)
        prod = delayed(m, sc.prod, f"prod_r{u}", True) if PR else sc.prod
        e_sum = e5  # e for the sum of exponentials, in step with the products
        for k in range(1 + EC + PR):
            e_sum = delayed(m, e_sum, f"e{TM - EC + k}_{u}", True)
        for ab in range(2):
            self._bank(m, ab, prod, e_sum)
        return m

    def _bank(self, m, ab, prod, e_sum):
        """t7: accumulator bank ``ab``: A's ring and S. Its add and clear at t7 are registered
        from t6, a copy per 8 accumulators or, with PR (the products registered beside them),
        per accumulator (``*_dup``; each drives the adders of its accumulators, with no logic
        between the register and that fan-out), and once more for the sum of exponentials."""
        P, u = self._params, self._unit
        LW, CH = P.lane_width, P.chunks
        PR = pv_stages(P)["PR"]
        tp = self.tag_acc
        take_v = tp.valid & (tp.abank == ab)
        clear_v = take_v & tp.fkey
        m.submodules[f"acc{u}_{ab}"] = ring = AccumulatorRing(
            signed(nx.EXP_WIDTH + nx.DATA_WIDTH), signed(P.acc_width), LW, CH,
            per_lane=bool(PR))
        AG = ring.copies
        if PR:
            # per accumulator: the copies from a copy per 8 a cycle earlier (two
            # register levels of fan-out from the tag a cycle ahead)
            tq = self.tag_acc_early
            take_q = tq.valid & (tq.abank == ab)
            LG = lane_groups(LW)
            take_g = [delayed(m, take_q, f"take{u}_{ab}_g{g}_dup") for g in range(LG)]
            clear_g = [delayed(m, take_q & tq.fkey, f"aclr{u}_{ab}_g{g}_dup")
                       for g in range(LG)]
            takes = Cat(*[delayed(m, take_g[lane_group(i, LW)], f"take{u}_{ab}_{i}_dup")
                          for i in range(AG)])
            clears = Cat(*[delayed(m, clear_g[lane_group(i, LW)],
                                   f"aclr{u}_{ab}_{i}_dup") for i in range(AG)])
        else:
            takes = Cat(*[delayed(m, take_v, f"take{u}_{ab}_{g}_dup") for g in range(AG)])
            clears = Cat(*[delayed(m, clear_v, f"aclr{u}_{ab}_{g}_dup")
                           for g in range(AG)])
        clear = delayed(m, clear_v, f"aclr{u}_{ab}")
        take_s = delayed(m, take_v & tp.first, f"stake{u}_{ab}")
        m.d.comb += [ring.add.eq(takes), ring.clear.eq(clears), ring.x.eq(prod),
                     ring.turn.eq(self.turn[ab] if CH > 1 else 0)]
        m.submodules[f"sum{u}_{ab}"] = ssum = Accumulators(
            unsigned(nx.EXP_WIDTH), unsigned(P.sum_width), 1)
        m.d.comb += [ssum.en.eq(take_s), ssum.clear.eq(clear), ssum.x[0].eq(e_sum),
                     self.heads[ab].eq(ring.head), self.sums[ab].eq(ssum.acc[0])]
