"""Stage 1: the scores s = q . k of a group's queries with its keys, and the rows' maxima.

:class:`KeyIssue` takes a group's descriptor from the scheduler when its score bank is free and
issues its keys one chunk per cycle (the window keys, then the global keys): the K read and a
tag (:func:`tag_layout`) that follows the dot products. Per unit, :class:`ScoreUnit` multiplies
the query chunk by the key chunk in ``lane_width`` lanes, sums a key's chunks into its score,
writes the score into the group's bank of the score memory and keeps the row's running maximum
for that bank. :class:`GroupQueue` hands the two banks from stage 1 to stage 2.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import numerics as nx
from ..sw.spec.engine_params import EngineParams
from .blocks import DotLanes, RowMax, delayed, int8_row
from .job import JobSignature, check_widths, key_hits, token
from .kv_ring import SlicedMemory, kv_address_widths, row_chunk
from .scheduler import desc_layout


def stage1_latency(params: EngineParams) -> int:
    """Cycles from a stage-1 issue to the write of its score (the cycle model,
    ``swattn.sw.cycles``, follows it): the dot product's latency and two."""
    return params.dot_latency + 2


def tag_layout(P: EngineParams) -> data.StructLayout:
    """A stage-1 issue's tag: ``valid``; ``glob`` (a global key); ``first`` / ``last`` (the
    key's first / last chunk); ``p`` (the key's place in the group: the score's address);
    ``bank`` (score bank); ``uvalid`` (per unit, the key is in the row's pattern); ``fkey`` /
    ``lkey`` (the group's first / last key); ``reset_max``. Paired engines: ``pair``,
    ``uvalid_b``, ``final``, ``gmax``, ``gidx`` (of the descriptor)."""
    U = P.units
    paired = ({"pair": 1, "uvalid_b": U, "final": 1, "gmax": 1,
               "gidx": P.global_groups_max.bit_length()} if P.paired_max else {})
    return data.StructLayout({
        "valid": 1, "glob": 1, "first": 1, "last": 1, "p": range(P.score_depth + 1),
        "bank": 1, "uvalid": U, "fkey": 1, "lkey": 1, "reset_max": 1, **paired})


def key_addr_layout(P: EngineParams) -> data.StructLayout:
    """Where a group's key p lies (engines with bands beside the window, whose keys stage 2
    cannot recount from the descriptor alone): ``row``, its K/V ring row, or with ``glob`` set
    ``gi``, its global row. Stage 1 writes it at (p, bank) as it issues the key; stage 2 reads it
    with the key's score."""
    ring_aw, glob_aw = kv_address_widths(P)
    cb = (P.chunks - 1).bit_length()
    return data.StructLayout({"row": ring_aw - cb, "glob": 1, "gi": max(1, glob_aw - cb)})


def _key_slices(P: EngineParams) -> int:
    return SlicedMemory.count(P.lane_width * nx.DATA_WIDTH)


class GroupQueue(wiring.Component):
    """The two score banks between stage 1 and stage 2, as flags per bank.

    ``busy``: stage 1 took the bank (``busy_set``) and stage 2 has not handed it back
    (``busy_clr``: a max pass released; ``busy_done``: a P.V group's last issue). ``done``: all of
    the bank's scores are written (``done_set``; ``done_clr`` when stage 2 takes it). ``valid``:
    the bank holds a group for stage 2 (``q_set`` with its descriptor ``desc_in`` and key count
    ``count_in``, ``q_clr`` when taken); ``desc[b]``, ``count[b]`` are the bank's. Each flag
    changes a cycle after its pulse; all clear on the job's ``init``.
    """

    def __init__(self, params: EngineParams):
        self._params = params
        desc, count = desc_layout(params), range(params.score_depth + 1)
        super().__init__({
            "job": In(JobSignature(params)),
            "busy_set": In(2), "busy_clr": In(2), "busy_done": In(2),
            "done_set": In(2), "done_clr": In(2), "q_set": In(2), "q_clr": In(2),
            "desc_in": In(desc), "count_in": In(count),
            "busy": Out(2), "done": Out(2), "valid": Out(2),
            "desc": Out(desc).array(2), "count": Out(count).array(2),
        })

    def elaborate(self, platform):
        P = self._params
        m = Module()
        busy, done, valid = Signal(2), Signal(2), Signal(2)
        m.d.comb += [self.busy.eq(busy), self.done.eq(done), self.valid.eq(valid)]
        m.d.sync += [
            busy.eq((busy | self.busy_set) & ~self.busy_clr & ~self.busy_done),
            done.eq((done | self.done_set) & ~self.done_clr),
            valid.eq((valid | self.q_set) & ~self.q_clr),
        ]
        for b in range(2):
            q_desc = Signal(desc_layout(P), name=f"q2_desc{b}")
            q_count = Signal(range(P.score_depth + 1), name=f"q2_count{b}")
            m.d.comb += [self.desc[b].eq(q_desc), self.count[b].eq(q_count)]
            with m.If(self.q_set[b]):
                m.d.sync += [q_desc.eq(self.desc_in), q_count.eq(self.count_in)]
        with m.If(self.job.init):
            m.d.sync += [busy.eq(0), done.eq(0), valid.eq(0)]
        return m


class KeyIssue(wiring.Component):
    """Stage 1's control: takes descriptors and issues their keys, one chunk per cycle.

    A descriptor is taken (``desc.ready``) while the job runs, stage 1 is idle and the next score
    bank is free (``bank_busy``). Then per cycle one chunk of a key is issued when the key is
    there: a window key once the K/V writer has passed it (``wpos``), a global key at once. The
    window's keys come first (from ``start`` in steps of ``step``, up to ``kmax + 1`` keys, below
    ``lim``), then the ``nglob`` global keys. ``k_addr`` / ``gk_addr`` read the key chunk (a copy
    of the address per memory slice); ``kdat`` is the chunk at the lanes, with the tags at the
    lanes' cycle (``tag_dot``), at the dot product's output (``tag_acc``) and at the score's
    write (``tag_write``). ``qbank`` (per unit and memory slice) and ``chunk`` select each
    unit's query chunk. After the group's last key: ``q_set`` with the group for stage 2;
    ``done_set`` when its last score is written (a cycle early: stage 2 reads the first score
    first).
    """

    def __init__(self, params: EngineParams):
        self._params = params
        P, U, KS = params, params.units, _key_slices(params)
        bits = P.lane_width * nx.DATA_WIDTH
        ring_aw, glob_aw = kv_address_widths(P)
        tag = tag_layout(P)
        ports = {
            "job": In(JobSignature(P)),
            "desc": In(stream.Signature(desc_layout(P))),
            "busy": Out(1), "bank_busy": In(2), "wpos": In(P.pos_width + 1),
            "k_addr": Out(ring_aw).array(KS), "gk_addr": Out(glob_aw).array(KS),
            "k_data": In(bits), "gk_data": In(bits), "kdat": Out(bits),
            "qbank": Out(1).array(U, KS), "chunk": Out(range(P.chunks)),
            "tag_dot": Out(tag), "tag_acc": Out(tag), "tag_write": Out(tag),
            "busy_set": Out(2), "q_set": Out(2), "done_set": Out(2),
            "q_desc": Out(desc_layout(P)), "q_count": Out(range(P.score_depth + 1)),
        }
        if P.paired_max:
            ports.update({"pass_done": Out(1),
                          "pass_gidx": Out(P.global_groups_max.bit_length())})
        if P.max_bands > 1:
            ports.update({"ka_raddr": In((P.score_depth - 1).bit_length() + 1),
                          "ka_rdata": Out(key_addr_layout(P))})
        super().__init__(ports)

    def elaborate(self, platform):
        P, job = self._params, self.job
        NB = P.max_bands
        U, CH, SD, PW, B = P.units, P.chunks, P.score_depth, P.pos_width, P.ring_rows
        GM, KS = P.held_rows, _key_slices(P)
        RB, DB, _ = check_widths(P)
        m = Module()
        desc = self.desc.payload
        s1_run = Signal()
        s1_bank = Signal()  # bank of the next group stage 1 takes
        s1 = Signal(desc_layout(P))
        s1_k = Signal(PW + 1)  # window key count so far
        s1_pos = Signal(PW + 1)
        s1_pnext = Signal(PW + 1)  # s1_pos + step
        s1_gi = Signal(8)
        # copies of s1_chunk and the address bits of s1_pos and s1_gi, one per memory slice of
        # the K ring and global rows (set wherever those are, through set_all), and of s1.qbank
        # per unit and 64 bits of the query rows (the query multiplexers' select)
        kchunk_d = [Signal(range(CH), name=f"kchunk{j}_dup") for j in range(KS)]
        kpos_d = [Signal((B - 1).bit_length(), name=f"kpos{j}_dup") for j in range(KS)]
        kgi_d = [Signal(max(1, (GM - 1).bit_length()), name=f"kgi{j}_dup") for j in range(KS)]
        qbank_d = [[Signal(name=f"qbank_u{u}_{j}_dup") for j in range(KS)] for u in range(U)]
        for u in range(U):
            m.d.comb += [self.qbank[u][j].eq(qbank_d[u][j]) for j in range(KS)]

        def set_all(copies, v):
            return [c.eq(v) for c in copies]
        # With EngineParams.key_addr_register the key memories' addresses are registers a cycle
        # behind s1_chunk, s1_pos and s1_gi (plain copies of them, with no issue logic in
        # front: the lanes' inputs a cycle later); else the copies follow them (set_ka)
        AD = int(P.key_addr_register)

        def set_ka(copies, v):
            return [] if AD else set_all(copies, v)
        s1_glob = Signal()  # in the global-key part
        s1_chunk = Signal(range(CH))
        s1_p = Signal(range(SD + 1))
        s1_bnk = Signal()
        m.d.comb += [self.busy.eq(s1_run), self.chunk.eq(s1_chunk)]

        bank_free = ~Array([self.bank_busy[0], self.bank_busy[1]])[s1_bank]
        desc_take = Signal()
        m.d.comb += [self.desc.ready.eq(~s1_run & bank_free & job.running),
                     desc_take.eq(self.desc.valid & self.desc.ready)]
        with m.If(desc_take):
            m.d.sync += [s1.eq(desc), s1_run.eq(1), s1_k.eq(0), s1_pos.eq(desc.start),
                         s1_gi.eq(0), s1_glob.eq(0), s1_chunk.eq(0), s1_p.eq(0),
                         s1_bnk.eq(s1_bank), s1_bank.eq(~s1_bank)]
            m.d.sync += (set_ka(kpos_d, desc.start) + set_ka(kgi_d, 0) + set_ka(kchunk_d, 0)
                         + set_all(sum(qbank_d, []), desc.qbank))
            m.d.comb += self.busy_set.eq(Mux(s1_bank, 0b10, 0b01))

        # Registered a key ahead (they decide every issue, so they are not computed from s1_k,
        # s1_pos and s1_gi in the cycle that uses them): win_r = s1_k <= kmax & s1_pos < lim;
        # nxt_r: the same for the next window key (at a group's start desc.nxt, which the
        # scheduler registers beforehand); gmore_r = s1_gi < nglob; glast_r = s1_gi + 1
        # >= nglob; kc_r = s1_k + clip; kig_r: s1_pos is a global row.
        # (the key after next is compared with bounds lowered by two steps, s1_kmax2 and s1_lim2)
        win_r, nxt_r = Signal(name="win_r"), Signal(name="nxt_r")
        gmore_r, glast_r = Signal(name="gmore_r"), Signal(name="glast_r")
        kig_r = Signal(name="kig_r")
        # the global compares a key ahead: hits_n per global for s1_pnext, from s1_pnext2 =
        # s1_pnext + step (the scheduler gives both for a group's first keys: desc.kig, hits2)
        hits_n = Signal(GM, name="hits_n")
        s1_pnext2 = Signal(PW + 1)
        kc_r = Signal(max(PW + 1, RB) + 1)
        s1_kmax2 = Signal(signed(PW + 3))
        s1_lim2 = Signal(signed(max(PW + 1, DB + 2) + 1))
        with m.If(desc_take):
            m.d.sync += [win_r.eq(desc.start < desc.lim),
                         nxt_r.eq(desc.nxt),
                         gmore_r.eq(desc.nglob != 0), glast_r.eq(desc.nglob <= 1),
                         kc_r.eq(desc.clip), kig_r.eq(desc.kig), hits_n.eq(desc.hits2),
                         s1_pnext2.eq(desc.start + (desc.step << 1)),
                         s1_kmax2.eq(desc.kmax - 2), s1_lim2.eq(desc.lim - (desc.step << 1)),
                         s1_pnext.eq(desc.start + desc.step)]
        if P.grid:
            from .scheduler import grid_add
            kcol, glo, ghi = self._grid_columns(m, desc, desc_take)
        # bands beside the window: the group's other bands, taken in turn where one ends
        span_r = job.span
        if NB > 1:
            span_r, more_left, switch, sw_arm, wend_r = self._band_registers(m, desc, desc_take)
            nxt_slot = s1.more[0]
        have_key = Mux(s1_glob, gmore_r, win_r)
        # s1_pos < wpos as a register (av_r), from s1_pos's next value and wpos's: no carry
        # chain in front of the issue
        av_r = Signal()
        adv1 = Signal()  # (below) s1_pos steps to s1_pnext
        if NB > 1:
            # (with P.band_switch_register ``switch`` is the switch's own cycle, sw_pend)
            m.d.sync += av_r.eq(Mux(desc_take, desc.start < self.wpos,
                                    Mux(switch, nxt_slot.start < self.wpos,
                                        Mux(adv1, s1_pnext < self.wpos, s1_pos < self.wpos))))
        else:
            m.d.sync += av_r.eq(Mux(desc_take, desc.start < self.wpos,
                                    Mux(adv1, s1_pnext < self.wpos, s1_pos < self.wpos)))
        avail = s1_glob | av_r
        issue1 = Signal()
        m.d.comb += issue1.eq(s1_run & have_key & avail)

        def load_band():
            """The group's next band (s1.more[0]): its fields as the descriptor's at a take,
            and the list shifted."""
            sl = nxt_slot
            m.d.comb += switch.eq(1)
            m.d.sync += [
                s1_k.eq(0), s1_pos.eq(sl.start), s1_pnext.eq(sl.start + s1.step),
                win_r.eq(1), nxt_r.eq(sl.nxt), kc_r.eq(sl.clip),
                kig_r.eq(sl.kig), hits_n.eq(sl.hits2),
                s1_pnext2.eq(sl.start + (s1.step << 1)),
                s1_kmax2.eq(sl.kmax - 2), span_r.eq(sl.span),
                more_left.eq(more_left - 1),
                sw_arm.eq(~sl.nxt & (more_left != 1)),
                wend_r.eq(~sl.nxt & (more_left == 1)),
            ] + set_ka(kpos_d, sl.start)
            if P.grid:
                m.d.sync += kcol.eq(sl.scol)
            m.d.sync += [s1.more[k].eq(s1.more[k + 1]) for k in range(NB - 2)]
        # after the last chunk of a key: is there another key?
        last_key1 = Signal()
        if NB > 1:
            m.d.comb += last_key1.eq(Mux(s1_glob, glast_r, wend_r & (s1.nglob == 0)))
        else:
            m.d.comb += last_key1.eq(Mux(s1_glob, glast_r, ~nxt_r & (s1.nglob == 0)))
        # BS: with EngineParams.band_switch_register a band's last key only marks the switch
        # (sw_pend) and the next band is loaded in the cycle after it, which issues nothing
        BS = P.band_switch_register
        sw_pend = Signal(name="sw_pend") if BS else None
        with m.If(s1_run & ~have_key & ~sw_pend if BS else s1_run & ~have_key):
            # no keys at all (cannot happen for a valid group) -> finish
            m.d.sync += s1_run.eq(0)
        with m.If(issue1):
            with m.If(s1_chunk == CH - 1):
                m.d.sync += [s1_chunk.eq(0), s1_p.eq(s1_p + 1)] + set_ka(kchunk_d, 0)
                with m.If(s1_glob):
                    m.d.sync += [s1_gi.eq(s1_gi + 1), gmore_r.eq(~glast_r),
                                 glast_r.eq(s1_gi + 2 >= s1.nglob)] + set_ka(kgi_d, s1_gi + 1)
                with m.Else():
                    m.d.comb += adv1.eq(1)
                    nxt_n = (s1_k <= s1_kmax2) & (s1_pos < s1_lim2)
                    m.d.sync += [s1_k.eq(s1_k + 1), s1_pos.eq(s1_pnext),
                                 s1_pnext.eq(s1_pnext + s1.step),
                                 win_r.eq(nxt_r), nxt_r.eq(nxt_n),
                                 kc_r.eq(kc_r + 1), kig_r.eq(hits_n.any()),
                                 hits_n.eq(key_hits(job, token(job, s1_pnext2, P.paired_max),
                                                    P)),
                                 s1_pnext2.eq(s1_pnext2 + s1.step)] + set_ka(kpos_d, s1_pnext)
                    if P.grid:
                        m.d.sync += kcol.eq(grid_add(kcol, 1, job.gw))
                    if NB > 1:
                        m.d.sync += [sw_arm.eq(~nxt_n & (more_left != 0)),
                                     wend_r.eq(~nxt_n & (more_left == 0))]
                        with m.If(sw_arm):
                            if BS:
                                m.d.sync += sw_pend.eq(1)
                            else:
                                load_band()
                        with m.Elif(wend_r):
                            m.d.sync += s1_glob.eq(1)
                    else:
                        with m.If(~nxt_r):
                            m.d.sync += s1_glob.eq(1)
                with m.If(last_key1):
                    m.d.sync += s1_run.eq(0)
                    m.d.comb += [self.q_set.eq(Mux(s1_bnk, 0b10, 0b01)), self.q_desc.eq(s1),
                                 self.q_count.eq(s1_p + 1)]
            with m.Else():
                m.d.sync += [s1_chunk.eq(s1_chunk + 1)] + set_ka(kchunk_d, s1_chunk + 1)
        if BS:
            with m.If(sw_pend):  # (no issue in this cycle: win_r is low since the band's end)
                load_band()
                m.d.sync += sw_pend.eq(0)

        # addresses for stage 1 reads (issued this cycle, data next cycle; with AD a cycle
        # later), per memory slice from the copies of s1_chunk, s1_pos and s1_gi
        if AD:
            m.d.sync += (set_all(kpos_d, s1_pos[:len(kpos_d[0])])
                         + set_all(kgi_d, s1_gi[:len(kgi_d[0])]) + set_all(kchunk_d, s1_chunk))
        for j in range(KS):
            m.d.comb += [
                self.k_addr[j].eq(Cat(Const(0, 0) if CH == 1 else kchunk_d[j], kpos_d[j])),
                self.gk_addr[j].eq(Cat(Const(0, 0) if CH == 1 else kchunk_d[j], kgi_d[j])),
            ]
        uvalid = self._unit_valid(m, s1, s1_glob, kig_r, kc_r, span_r,
                                  (kcol, glo, ghi) if P.grid else None)

        self._issue_tag(m, s1, issue1, s1_glob, s1_chunk, s1_p, s1_bnk, uvalid, last_key1)
        if NB > 1:
            self._key_addr_memory(m, s1_pos, s1_glob, s1_gi, s1_p, s1_bnk, issue1, s1_chunk)

        with m.If(job.init):
            m.d.sync += [av_r.eq(0), s1_bank.eq(0), s1_run.eq(0)]
            if BS:
                m.d.sync += sw_pend.eq(0)
        return m

    def _issue_tag(self, m, s1, issue1, s1_glob, s1_chunk, s1_p, s1_bnk, uvalid, last_key1):
        """The tag of this cycle's issue (``p1``, a register: valid, key and chunk flags, score
        place and bank, the units it is for) into the tags' pipeline (:meth:`_pipeline`)."""
        P, CH = self._params, self._params.chunks
        p1 = Signal(tag_layout(P))
        m.d.sync += [
            p1.valid.eq(issue1), p1.glob.eq(s1_glob), p1.first.eq(s1_chunk == 0),
            p1.last.eq(s1_chunk == CH - 1), p1.p.eq(s1_p), p1.bank.eq(s1_bnk),
            p1.uvalid.eq(uvalid), p1.fkey.eq(s1_p == 0), p1.lkey.eq(last_key1),
            p1.reset_max.eq(s1.reset_max),
        ]
        if P.paired_max:
            m.d.sync += [p1.pair.eq(s1.pair), p1.uvalid_b.eq(s1.active_b), p1.final.eq(s1.final),
                         p1.gmax.eq(s1.gmax), p1.gidx.eq(s1.gidx)]
        self._pipeline(m, p1)

    def _key_addr_memory(self, m, s1_pos, s1_glob, s1_gi, s1_p, s1_bnk, issue1, s1_chunk):
        """With bands: each issued key's place (key_addr_layout), written at its first chunk
        and read by stage 2 on ``ka_raddr``."""
        P = self._params
        SD = P.score_depth
        KL = key_addr_layout(P)
        m.submodules.key_addr = ka = memory.Memory(shape=KL, depth=2 * SD, init=[])
        kw, kr = ka.write_port(), ka.read_port()
        ka_w = Signal(KL)
        m.d.comb += [ka_w.row.eq(s1_pos), ka_w.glob.eq(s1_glob), ka_w.gi.eq(s1_gi)]
        m.d.sync += [kw.addr.eq(Cat(s1_p[:(SD - 1).bit_length()], s1_bnk)),
                     kw.data.eq(ka_w), kw.en.eq(issue1 & (s1_chunk == 0))]
        m.d.comb += [kr.addr.eq(self.ka_raddr), self.ka_rdata.eq(kr.data)]

    def _band_registers(self, m, desc, desc_take):
        """With bands: the current band's span, the bands left after it, the switch strobe, and
        two registers of the band's end, all loaded from the descriptor at its take."""
        NB = self._params.max_bands
        span_r = Signal(len(desc.span), name="span_r")
        more_left = Signal(range(NB), name="more_left")
        switch = Signal()
        # registers of nxt_r and more_left, set wherever they are: sw_arm = ~nxt_r &
        # (more_left != 0) (the window key now issued ends its band and another follows)
        # and wend_r = ~nxt_r & (more_left == 0) (it ends the bands)
        sw_arm, wend_r = Signal(name="sw_arm"), Signal(name="wend_r")
        with m.If(desc_take):
            m.d.sync += [span_r.eq(desc.span), more_left.eq(desc.nmore),
                         sw_arm.eq(~desc.nxt & (desc.nmore != 0)),
                         wend_r.eq(~desc.nxt & (desc.nmore == 0))]
        return span_r, more_left, switch, sw_arm, wend_r

    def _unit_valid(self, m, s1, s1_glob, kig_r, kc_r, span_r, grid):
        """Per unit, whether the key of this issue is in its row's pattern: a global or column
        key, or a band key within the unit's window (``kc_r`` from ``u`` to ``span_r + u``)
        that is not a global row, with the grid (``(kcol, glo, ghi)``) within its columns."""
        U, job = self._params.units, self.job
        key_is_glob = Signal()
        m.d.comb += key_is_glob.eq(s1.main & ~s1_glob & kig_r)
        uvalid = Signal(U)
        for u in range(U):
            inwin = ~s1.main | ((kc_r >= u) & (kc_r <= span_r + u))
            if grid is not None:  # a band key within the grid radius of the unit's query's column
                kcol, glo, ghi = grid
                inwin = inwin & (~s1.main | ~job.gon | ((kcol >= glo[u]) & (kcol <= ghi[u])))
            m.d.comb += uvalid[u].eq(s1.active[u] & (s1_glob | (inwin & ~key_is_glob)))
        return uvalid

    def _grid_columns(self, m, desc, desc_take):
        """The grid: the column of the key at s1_pos (``kcol``, set here at the take and
        stepped by the issue) and per unit the columns its query keeps (``glo`` .. ``ghi``),
        registered at the take."""
        P, job, U = self._params, self.job, self._params.units
        WB = P.seq_width + 1
        kcol = Signal(WB, name="s1_kcol")
        glo = [Signal(signed(WB + 1), name=f"s1_glo{u}") for u in range(U)]
        ghi = [Signal(WB + 1, name=f"s1_ghi{u}") for u in range(U)]
        with m.If(desc_take):
            m.d.sync += kcol.eq(desc.scol)
            m.d.sync += [glo[u].eq(desc.qcol[u] - job.gr) for u in range(U)]
            m.d.sync += [ghi[u].eq(desc.qcol[u] + job.gr) for u in range(U)]
        return kcol, glo, ghi

    def _pipeline(self, m, p1):
        """The tags down the dot products' pipeline and the key chunk at the lanes."""
        P = self._params
        DL = P.dot_latency
        bits = P.lane_width * nx.DATA_WIDTH
        # the issue's tags follow the dot product (DL cycles from p1), then two more stages
        pipe = [p1] + [Signal.like(p1, name=f"p{i}") for i in range(2, DL + 3)]
        for i in range(1, DL + 1):
            m.d.sync += pipe[i].eq(pipe[i - 1])
        p3, p4 = pipe[DL], pipe[DL + 1]  # the dot product is out; the score is written
        m.d.sync += p4.eq(p3)
        m.d.sync += p4.valid.eq(p3.valid & p3.last)
        # The key rows from the memories, and with EngineParams.key_register the rows registered
        # beside the memories first; with key_addr_register the memories' data comes a cycle
        # later. The queries wait a cycle for each (KA in all: ScoreUnit), and the lanes'
        # inputs come from pipe[KA], the tags of their issue
        KR = int(P.key_register)
        KA = KR + int(P.key_addr_register)
        if KR:
            rk_d = Signal(bits, name="rk_d", reset_less=True)
            gk_d = Signal(bits, name="gk_d", reset_less=True)
            m.d.sync += [rk_d.eq(self.k_data), gk_d.eq(self.gk_data)]
            # the ring/global choice per 64 bits of the row from a copy of the tag's glob bit
            # (``kglob*_dup``, set with pipe[KA]) beside those lanes' multipliers
            for j in range(-(-bits // 64)):
                lo, hi = 64 * j, min(bits, 64 * (j + 1))
                g_j = delayed(m, pipe[KA - 1].glob, f"kglob{j}_dup")
                m.d.comb += self.kdat[lo:hi].eq(Mux(g_j, gk_d[lo:hi], rk_d[lo:hi]))
        else:
            m.d.comb += self.kdat.eq(Mux(pipe[KA].glob, self.gk_data, self.k_data))
        m.d.comb += [self.tag_dot.eq(pipe[KA]), self.tag_acc.eq(p3), self.tag_write.eq(p4)]
        # Stage 2 may take the bank one cycle before the last score is written: it reads the
        # first key's score at its first issue and the row maximum one cycle later, when the
        # last key's update has landed.
        with m.If(p3.valid & p3.last & p3.lkey):
            m.d.comb += self.done_set.eq(Mux(p3.bank, 0b10, 0b01))
        if P.paired_max:
            m.d.sync += [self.pass_done.eq(p4.valid & p4.pair & p4.lkey & p4.final),
                         self.pass_gidx.eq(p4.gidx)]


class ScoreUnit(wiring.Component):
    """One unit's query chunk, dot product, scores and row maxima.

    Per cycle: the unit's query chunk ``chunk`` of bank ``qbank`` (``rows[b]``, the query banks'
    registers) is registered, and waits for the key chunk ``kdat`` as long as the key read
    takes; the lanes give q . k of the chunk ``dot_latency - KA`` cycles later; at ``tag_acc``
    the chunks of a key sum into its score and update the bank's running maximum (a row
    continues from the other bank's maximum unless ``reset_max``); at ``tag_write`` the score and
    its validity are written into the score memory at (``p``, ``bank``), which stage 2 reads
    through ``score_raddr`` / ``score_rdata``. ``row_max[b]``: bank b's running maximum.

    Paired engines: ``pair_a`` is the other bank's query chunk for the P.V lanes (the second
    group of a max pass), ``pair_sum`` their dot product; both groups' maxima over a max pass go
    to the registers of global groups ``pass_gidx`` and ``pass_gidx + 1`` at ``pass_done``,
    where the groups' first P.V sub-groups (``gmax``) start from them.
    """

    def __init__(self, params: EngineParams, unit: int):
        self._params = params
        self._unit = unit
        P = params
        KS, SW, SD = _key_slices(P), P.score_width, P.score_depth
        bits = P.lane_width * nx.DATA_WIDTH
        tag = tag_layout(P)
        ports = {
            "rows": In(int8_row(P.head_dim)).array(2), "qbank": In(1).array(KS),
            "chunk": In(range(P.chunks)), "kdat": In(bits),
            "tag_acc": In(tag), "tag_write": In(tag),
            "score_raddr": In((SD - 1).bit_length() + 1), "score_rdata": Out(SW + 1),
            "row_max": Out(signed(SW)).array(2),
        }
        if P.paired_max:
            ports.update({"pair_a": Out(bits), "pair_sum": In(signed(nx.score_width(
                P.lane_width))), "pass_done": In(1),
                "pass_gidx": In(P.global_groups_max.bit_length())})
        super().__init__(ports)

    def elaborate(self, platform):
        P, u = self._params, self._unit
        LW, CH, SW, SD = P.lane_width, P.chunks, P.score_width, P.score_depth
        KS = _key_slices(P)
        bits = LW * nx.DATA_WIDTH
        PA = P.paired_max
        m = Module()

        def qbank_mux(first, second):
            """The chunk of ``first`` (bank of the group's qbank) or ``second``, 64 bits at a
            time."""
            a = row_chunk(first, self.chunk, bits, CH)
            b = row_chunk(second, self.chunk, bits, CH)
            return Cat(*[Mux(self.qbank[j], a[j * 64:(j + 1) * 64], b[j * 64:(j + 1) * 64])
                         for j in range(KS)])

        qsel = Signal(bits, name=f"qsel{u}", reset_less=True)
        m.d.sync += qsel.eq(qbank_mux(self.rows[1], self.rows[0]))
        if PA:  # the second group of a paired max pass: the other bank's queries
            qsel_b = Signal(bits, name=f"qsel_b{u}", reset_less=True)
            m.d.sync += qsel_b.eq(qbank_mux(self.rows[0], self.rows[1]))
        KA = int(P.key_register) + int(P.key_addr_register)
        for k in range(KA):
            qsel = delayed(m, qsel, f"qsel_d{k}_{u}", True)
            if PA:
                qsel_b = delayed(m, qsel_b, f"qsel_bd{k}_{u}", True)
        if PA:
            m.d.comb += self.pair_a.eq(qsel_b)
        m.submodules[f"dot{u}"] = dot = DotLanes(LW, P.dot_latency - KA)
        m.d.comb += [dot.a.as_value().eq(qsel), dot.b.as_value().eq(self.kdat)]
        # tag_acc: accumulate chunks; tag_write: write score and update max
        p3, p4 = self.tag_acc, self.tag_write
        acc = Signal(signed(SW), name=f"acc{u}", reset_less=True)
        score = Signal(signed(SW), name=f"score{u}", reset_less=True)
        accv = Mux(p3.first, 0, acc) + dot.sum  # the score's next value
        with m.If(p3.valid):
            m.d.sync += acc.eq(accv)
        m.d.sync += score.eq(accv)
        gmax = self._paired_max(m, score) if PA else None

        m.submodules[f"scores{u}"] = sm = memory.Memory(shape=SW + 1, depth=2 * SD, init=[])
        wp = sm.write_port()
        rp = sm.read_port()
        m.d.comb += [wp.addr.eq(Cat(p4.p[:(SD - 1).bit_length()], p4.bank)),
                     wp.data.eq(Cat(score, p4.uvalid[u])), wp.en.eq(p4.valid),
                     rp.addr.eq(self.score_raddr), self.score_rdata.eq(rp.data)]
        bank_max = []
        for b in range(2):
            m.submodules[f"rowmax{u}_{b}"] = rm = RowMax(SW, ext_score=True)
            m.d.comb += self.row_max[b].eq(rm.max)
            bank_max.append(rm)
        if PA:
            # a global group's P.V pass starts from its max pass's maximum: gmax[gidx],
            # chosen a cycle ahead with p3 (gmax is written at least two cycles before p4
            # reads it) into a register beside the row maxima
            gsel = Signal(signed(SW + 1), name=f"gsel{u}", reset_less=True)
            m.d.sync += gsel.eq(Array(gmax)[p3.gidx])
        for b in range(2):
            rm, other = bank_max[b], bank_max[1 - b]
            # per bank, the update's enable, first and continue flags and the score as
            # registers of their own (set with p4 and scores), beside that bank's running
            # maximum: no decode or shared net in front of its compare and its flip-flops'
            # enable. A row continues from the other bank's value (max_ext: no valid score
            # counts as none) unless reset_max.
            en_b = Signal(name=f"rm_en{u}_{b}")
            first_b = Signal(name=f"rm_first{u}_{b}")
            cont_b = Signal(name=f"rm_cont{u}_{b}")
            # (the score with its validity folded in: RowMax.NONE for none)
            sc_b = Signal(signed(SW + 1), name=f"rm_score{u}_{b}", reset_less=True)
            m.d.sync += [en_b.eq(p3.valid & p3.last & (p3.bank == b)),
                         first_b.eq(p3.fkey), cont_b.eq(~p3.reset_max),
                         sc_b.eq(Mux(p3.uvalid[u], accv, rm.NONE))]
            m.d.comb += [rm.en.eq(en_b), rm.first.eq(first_b),
                         rm.init.eq(other.max_ext), rm.init_valid.eq(cont_b),
                         rm.score.eq(sc_b)]
            if PA:  # (p4.gmax, as a register of this bank's)
                gm_b = Signal(name=f"rm_gmax{u}_{b}")
                m.d.sync += gm_b.eq(p3.gmax)
                m.d.comb += [rm.init.eq(Mux(gm_b, gsel, other.max_ext)),
                             rm.init_valid.eq(gm_b | cont_b)]
        return m

    def _paired_max(self, m, score):
        """Paired max passes: the second group's scores (from the P.V lanes) and both groups'
        running maxima over the pass; at its end they go to the registers of global groups
        gidx and gidx + 1, where the groups' first P.V sub-groups read them (at that
        sub-group's first score: at least two cycles after they are written, as stage 1 runs
        one group at a time; a group's P.V pass may follow its max pass closely when every
        row is global). Returns the registers, one per global group (each RowMax.max_ext: the
        maximum, or RowMax's NONE with no valid score)."""
        P, u = self._params, self._unit
        SW = P.score_width
        p3, p4 = self.tag_acc, self.tag_write
        GGM = max(1, P.global_groups_max)
        acc_b = Signal(signed(SW), name=f"acc_b{u}", reset_less=True)
        score_b = Signal(signed(SW), name=f"score_b{u}", reset_less=True)
        gmax = [Signal(signed(SW + 1), name=f"gmax{g}_{u}", init=-(1 << SW)) for g in range(GGM)]
        accv = Mux(p3.first, 0, acc_b) + self.pair_sum
        with m.If(p3.valid):
            m.d.sync += acc_b.eq(accv)
        m.d.sync += score_b.eq(accv)
        pmax = []
        for name, sc, sv in (("a", score, p4.uvalid[u]), ("b", score_b, p4.uvalid_b[u])):
            m.submodules[f"pmax_{name}{u}"] = rm = RowMax(SW)
            m.d.comb += [rm.en.eq(p4.valid & p4.pair), rm.first.eq(p4.fkey & p4.reset_max),
                         rm.init.eq(0), rm.init_valid.eq(0),
                         rm.score.eq(sc), rm.score_valid.eq(sv)]
            pmax.append(rm)
        for g in range(GGM):
            for k, rm in enumerate(pmax):
                with m.If(self.pass_done & (self.pass_gidx + k == g)):
                    m.d.sync += gmax[g].eq(rm.max_ext)
        return gmax
