"""The host link's receiver: request frames (:mod:`swattn.sw.spec.protocol`) from a byte stream,
checked, into the row buffers and the configuration store, each answered by a reply request.

A write's payload goes to the buffer as it arrives (there is no room to stage a frame on the
iCE40); its header was checked by CRC before, so only the addressed rows can change, and a payload
CRC error tells the host to send the frame again.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.spec import protocol as pr
from ..sw.spec import regs
from ..sw.spec.engine_params import EngineParams
from .buffers import link_write_signature
from .config_store import CONFIG_WRITE, COUNT_BITS
from .link_tx import REPLY_REQUEST, SRC_IDENTITY, SRC_NONE, SRC_OUT, SRC_WORD


class HeaderCheck(wiring.Component):
    """A request header's tests, for the receiver's CHECK state.

    Per cycle, in two register levels (the header stands still from its last byte through its
    two CRC bytes, so the second level is in when the receiver latches it even with a byte every
    cycle): level one, the command's decodes (``is_config``, ``target``: 0 Q, 1 K, 2 V) and the
    compares (``has_payload``: a length not 0); level two, their combination. ``latch``
    registers the tests (with ``busy``, a job runs, and ``config_loaded``), and ``error`` is the
    first of the latched tests that fails (:class:`~swattn.sw.spec.protocol.LinkError`; 0: none):
    an unknown command, a payload length not the command's (the configuration's, ``count`` rows
    of ``head_dim`` bytes, else none; a READ_OUT reply over 0xFFFF bytes), rows beyond the
    buffers, the buffers or a start while a job runs, a start without a configuration.
    """

    def __init__(self, params: EngineParams, rows: int):
        self._d = params.head_dim
        self._rows = rows
        self._cfg_bytes = pr.config_bytes(params)
        super().__init__({
            "header": In(pr.HEADER_LAYOUT),
            "busy": In(1),
            "config_loaded": In(1),
            "latch": In(1),
            "error": Out(8),
            "is_config": Out(1),
            "has_payload": Out(1),
            "target": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        hdr, d = self.header, self._d
        cmd = hdr.cmd
        c = {k: Signal(name=f"c_{k.name.lower()}") for k in pr.Cmd if k != pr.Cmd.ERROR}
        m.d.sync += [c[k].eq(cmd == k) for k in c]
        c_cfg = c[pr.Cmd.WRITE_CONFIG]
        c_write = Signal()  # a row write
        c_rows = Signal()  # a row write or READ_OUT
        len_nz, wt_r = Signal(), Signal(2)
        len_cfg, len_rows, ro_big, end_bad = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            c_write.eq((cmd == pr.Cmd.WRITE_Q) | (cmd == pr.Cmd.WRITE_K) |
                       (cmd == pr.Cmd.WRITE_V)),
            c_rows.eq((cmd == pr.Cmd.WRITE_Q) | (cmd == pr.Cmd.WRITE_K) |
                      (cmd == pr.Cmd.WRITE_V) | (cmd == pr.Cmd.READ_OUT)),
            len_nz.eq(hdr.length != 0),
            wt_r.eq(Mux(cmd == pr.Cmd.WRITE_Q, 0, Mux(cmd == pr.Cmd.WRITE_K, 1, 2))),
            len_cfg.eq(hdr.length != self._cfg_bytes),
            len_rows.eq(hdr.length != hdr.count * d),
            ro_big.eq(hdr.count * d > 0xFFFF),
            end_bad.eq(hdr.addr + hdr.count > self._rows),
        ]
        m.d.comb += [self.is_config.eq(c_cfg), self.has_payload.eq(len_nz),
                     self.target.eq(wt_r)]
        # the header's checks: each registered by ``latch``, then the first that fails
        bad = Signal(data.StructLayout({"cmd": 1, "length": 1, "addr": 1, "busy": 1, "cfg": 1}))
        bad_now = Signal.like(bad)
        hdr_bad = Signal(data.StructLayout({"cmd": 1, "length": 1, "addr": 1}))
        m.d.sync += [
            hdr_bad.cmd.eq(~Cat(*c.values()).any()),
            # the payload's length: the configuration's, the rows', else none
            hdr_bad.length.eq(Mux(c_cfg, len_cfg, Mux(c_write, len_rows, len_nz))
                              | (c[pr.Cmd.READ_OUT] & ro_big)),
            hdr_bad.addr.eq(c_rows & end_bad),
        ]
        m.d.comb += [
            bad_now.cmd.eq(hdr_bad.cmd),
            bad_now.length.eq(hdr_bad.length),
            bad_now.addr.eq(hdr_bad.addr),
            bad_now.busy.eq((c_rows | c_cfg | c[pr.Cmd.START]) & self.busy),
            bad_now.cfg.eq(c[pr.Cmd.START] & ~self.config_loaded),
        ]
        with m.If(self.latch):
            m.d.sync += bad.eq(bad_now)
        with m.If(bad.cmd):
            m.d.comb += self.error.eq(pr.LinkError.UNKNOWN_CMD)
        with m.Elif(bad.length):
            m.d.comb += self.error.eq(pr.LinkError.BAD_LENGTH)
        with m.Elif(bad.addr):
            m.d.comb += self.error.eq(pr.LinkError.BAD_ADDR)
        with m.Elif(bad.busy):
            m.d.comb += self.error.eq(pr.LinkError.BUSY)
        with m.Elif(bad.cfg):
            m.d.comb += self.error.eq(pr.LinkError.NO_CONFIG)
        return m


class PayloadWords(wiring.Component):
    """A row write's payload bytes assembled into buffer words of ``word_bytes`` bytes.

    Per cycle: with ``got`` and ``en`` (the receiver is in a row write's payload) the registered
    byte ``byte`` goes into the word being assembled; with the word's last byte, ``we`` is high
    and ``word`` is the whole word (its last byte straight from ``byte``). ``restart`` begins a
    new word. The assembled bytes' enables come from copies of ``got`` per 64 bits
    (``got_w*_dup``, registers of ``got_next``, ``got``'s next value): one valid reached all of a
    wide word's enables.
    """

    def __init__(self, word_bytes: int):
        self._W = word_bytes
        super().__init__({
            "byte": In(8),
            "got": In(1),
            "got_next": In(1),
            "en": In(1),
            "restart": In(1),
            "word": Out(8 * word_bytes),
            "we": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W = self._W
        WB = 8 * W
        wbuf = Signal(max(8, WB - 8), reset_less=True)
        wsub = Signal(range(W))
        wsub_last = Signal()  # wsub == W - 1 (a register, set with wsub)
        with m.If(self.restart):
            m.d.sync += [wsub.eq(0), wsub_last.eq(W == 1)]
        m.d.comb += self.word.eq(Cat(wbuf, self.byte)[-WB:] if W > 1 else self.byte)
        if W > 1:
            shifted = Cat(wbuf[8:], self.byte)
            for j in range(-(-len(wbuf) // 64)):
                lo, hi = 64 * j, min(len(wbuf), 64 * (j + 1))
                got_j = Signal(name=f"got_w{j}_dup")
                m.d.sync += got_j.eq(self.got_next)
                with m.If(got_j & self.en):
                    m.d.sync += wbuf[lo:hi].eq(shifted[lo:hi])
        with m.If(self.got & self.en):
            if W > 1:
                m.d.sync += [wsub.eq(wsub + 1), wsub_last.eq(wsub == W - 2)]
            with m.If(wsub_last):
                m.d.comb += self.we.eq(1)
        return m


class LinkReceiver(wiring.Component):
    """Parses request frames from ``rx`` as a UART delivers them: ``rx.ready`` is always high and
    the byte and its valid are registered at the input (a cycle's delay of the whole receiver),
    but a byte is lost in the two cycles after a header's CRC (VALIDATE, CHECK) and while a reply
    goes out (a UART's bytes come ten bit times apart, and the host waits for each reply).

    params : the engine's; word_bytes : the buffers' words; timeout_cycles : an unfinished frame
    is dropped after this many cycles without a byte.

    Ports: ``rx``; ``busy`` (a job runs), the engine's ``status`` and ``cycles``, ``rows_out``
    and ``config_loaded`` (for READ_STATUS and the checks); ``start`` (the job's one-cycle start
    pulse, a register: the state decode does not reach the engine's checks in the same cycle) and
    ``start_set`` (its next value); ``config`` (to the configuration store), ``buf`` (the link
    side of the row buffers), ``reply`` (to the transmitter).

    Per cycle, by the frame's state: hunt for the sync byte; take the header's bytes; compare a
    frame's CRC (the header's, then the payload's, by the protocol's hardware CRC processor, low
    byte first; a bad header CRC waits for the line to go quiet, its length cannot be trusted);
    latch the header's checks (:class:`HeaderCheck`) and act on them: refuse (skip the rest of
    the frame), or take the payload (row bytes into buffer words, :class:`PayloadWords`, written
    at the link address as they complete; configuration bytes into the store); execute; ask the
    transmitter for the reply (the header echoed with its payload, or an ERROR reply) and wait
    for it. A frame that stops arriving for ``timeout_cycles`` is answered with TIMEOUT.
    """

    def __init__(self, params: EngineParams, *, word_bytes: int, timeout_cycles: int):
        self.params = params
        self._W = word_bytes
        self._rows = 1 << params.seq_width
        self._timeout = max(16, int(timeout_cycles))
        super().__init__({
            "rx": In(stream.Signature(8)),
            "busy": In(1),
            "status": In(regs.STATUS_LAYOUT),
            "cycles": In(32),
            "rows_out": In(16),
            "config_loaded": In(1),
            "start": Out(1),
            "start_set": Out(1),
            "config": Out(CONFIG_WRITE),
            "buf": Out(link_write_signature(8 * word_bytes)),
            "reply": Out(REPLY_REQUEST),
        })

    def elaborate(self, platform):
        m = Module()
        d, W = self.params.head_dim, self._W
        byte = Signal(8)
        got = Signal()
        m.d.comb += self.rx.ready.eq(1)
        m.d.sync += [got.eq(self.rx.valid), byte.eq(self.rx.payload)]
        hdr_bits = Signal(pr.HEADER_LAYOUT.size, reset_less=True)
        hdr = pr.HEADER_LAYOUT(hdr_bits)
        m.submodules.crc = crc = pr.CRC_PARAMETERS.create()
        m.d.comb += crc.data.eq(byte)
        crc_lo_ok = Signal()  # a frame's CRC: its low byte matched
        # the byte now registered (``byte``) against the running CRC's high byte, compared a
        # cycle early from the incoming byte: in CRC1 the CRC holds still (it has since the
        # cycle after the frame's last byte went in), so the state's decision reads a register
        # instead of an 8-bit compare
        crc_hi_ok = Signal()
        m.d.sync += crc_hi_ok.eq(self.rx.payload == crc.crc[8:])
        crc_payload = Signal()  # the CRC compared is the payload's (else the header's)
        cnt = Signal(COUNT_BITS)
        skip = Signal(COUNT_BITS)  # the last byte index of a refused frame's rest
        h_last1 = Signal(COUNT_BITS)  # the payload's last byte index less one (set in CHECK)
        idle = Signal(range(self._timeout + 1))
        timed_out = Signal()  # idle == the time-out (a register, set with idle)
        with m.If(got):
            m.d.sync += [idle.eq(0), timed_out.eq(0)]  # (the time-out is 16 or more)
        with m.Elif(~timed_out):
            m.d.sync += [idle.eq(idle + 1), timed_out.eq(idle + 1 == self._timeout)]
        err = Signal(8)
        pay_rows = Signal()  # in PAYLOAD of a row write
        pay_last = Signal()  # in PAYLOAD: cnt is the payload's last byte (a register, set with cnt)
        m.d.sync += pay_rows.eq(0)
        wtarget = Signal(2)  # the buffer a row write writes (set in CHECK)

        m.submodules.check = chk = HeaderCheck(self.params, self._rows)
        m.d.comb += [chk.header.eq(hdr), chk.busy.eq(self.busy),
                     chk.config_loaded.eq(self.config_loaded)]
        m.submodules.words = words = PayloadWords(W)
        m.d.comb += [words.byte.eq(byte), words.got.eq(got), words.got_next.eq(self.rx.valid),
                     words.en.eq(pay_rows)]
        m.d.comb += [self.buf.row.eq(hdr.addr), self.buf.we.eq(words.we),
                     self.buf.wdata.eq(words.word), self.buf.target.eq(wtarget)]
        m.d.comb += [self.config.data.eq(byte), self.config.index.eq(cnt)]
        m.d.sync += self.start.eq(self.start_set)

        reply = self.reply
        status = Signal(pr.STATUS_REPLY_LAYOUT)
        m.d.comb += [status.engine.eq(self.status), status.config_loaded.eq(self.config_loaded),
                     status.rows_out.eq(self.rows_out),
                     reply.header.addr.eq(hdr.addr), reply.header.count.eq(hdr.count)]

        def ask(cmd, length, src, word=None):
            """The reply: ``cmd`` with ``length`` payload bytes from ``src``."""
            m.d.comb += [reply.go.eq(1), reply.header.cmd.eq(cmd),
                         reply.header.length.eq(length), reply.src.eq(src)]
            if word is not None:
                m.d.comb += reply.word.eq(word)

        def frame_timeout():
            # placed first in a state: a byte arriving in the same cycle still wins
            with m.If(timed_out):
                m.d.sync += err.eq(pr.LinkError.TIMEOUT)
                m.next = "REPLY_ERR"

        with m.FSM(name="link"):
            with m.State("HUNT"):
                with m.If(got & (byte == pr.REQ_SYNC)):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += cnt.eq(0)
                    m.next = "HDR"
            with m.State("HDR"):
                frame_timeout()
                with m.If(got):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += [hdr_bits.eq(Cat(hdr_bits[8:], byte)), cnt.eq(cnt + 1)]
                    with m.If(cnt == pr.HEADER_BYTES - 1):
                        m.d.sync += crc_payload.eq(0)
                        m.next = "CRC0"
            # a frame's CRC, low byte first, compared with the running CRC (which holds still);
            # a bad header CRC: the header cannot be trusted, so neither can its length: wait
            # for the line to go quiet (DRAIN), then answer once
            with m.State("CRC0"):
                frame_timeout()
                with m.If(got):  # the low byte's compare registered
                    m.d.sync += crc_lo_ok.eq(byte == crc.crc[:8])
                    m.next = "CRC1"
            with m.State("CRC1"):
                frame_timeout()
                with m.If(got):
                    with m.If(crc_lo_ok & crc_hi_ok):
                        with m.If(crc_payload):
                            m.next = "EXEC"
                        with m.Else():
                            m.next = "VALIDATE"
                    with m.Else():
                        m.d.sync += err.eq(pr.LinkError.BAD_CRC)
                        with m.If(crc_payload):
                            m.next = "REPLY_ERR"
                        with m.Else():
                            m.next = "DRAIN"
            with m.State("VALIDATE"):  # the header's checks, registered for CHECK
                m.d.comb += chk.latch.eq(1)
                m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += [crc.start.eq(1), words.restart.eq(1), self.buf.load.eq(1)]
                m.d.sync += [cnt.eq(0), h_last1.eq(hdr.length - 2),
                             wtarget.eq(chk.target)]  # (used by row writes only)
                with m.If(chk.error != 0):
                    m.d.sync += [err.eq(chk.error), skip.eq(hdr.length + pr.CRC_BYTES - 1)]
                    with m.If(chk.has_payload):
                        m.next = "SKIP"
                    with m.Else():
                        m.next = "REPLY_ERR"
                with m.Else():
                    with m.If(chk.is_config):
                        m.d.comb += self.config.clear.eq(1)
                    with m.If(chk.has_payload):
                        m.d.sync += [pay_rows.eq(~chk.is_config), pay_last.eq(hdr.length == 1)]
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.next = "EXEC"
            with m.State("PAYLOAD"):
                # (pay_rows: this state, with a row write's payload; cleared as it is left)
                m.d.sync += pay_rows.eq(pay_rows & ~(got & pay_last) & (got | ~timed_out))
                frame_timeout()
                with m.If(got):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += [cnt.eq(cnt + 1), pay_last.eq(cnt == h_last1)]
                    with m.If(chk.is_config):
                        m.d.comb += self.config.we.eq(1)
                    with m.If(pay_last):
                        m.d.sync += crc_payload.eq(1)
                        m.next = "CRC0"
            with m.State("EXEC"):
                m.d.comb += self.buf.load.eq(1)
                with m.Switch(hdr.cmd):
                    with m.Case(pr.Cmd.IDENTIFY):
                        ask(hdr.cmd, pr.nbytes(pr.IDENTITY_LAYOUT), SRC_IDENTITY)
                    with m.Case(pr.Cmd.WRITE_CONFIG):
                        m.d.comb += self.config.commit.eq(1)
                        ask(hdr.cmd, 0, SRC_NONE)
                    with m.Case(pr.Cmd.START):
                        m.d.comb += self.start_set.eq(1)
                        ask(hdr.cmd, 0, SRC_NONE)
                    with m.Case(pr.Cmd.READ_STATUS):
                        ask(hdr.cmd, pr.nbytes(pr.STATUS_REPLY_LAYOUT), SRC_WORD,
                            status.as_value())
                    with m.Case(pr.Cmd.READ_CYCLES):
                        ask(hdr.cmd, pr.nbytes(pr.CYCLES_LAYOUT), SRC_WORD, self.cycles)
                    with m.Case(pr.Cmd.READ_OUT):
                        ask(hdr.cmd, hdr.count * d, SRC_OUT)
                    with m.Default():  # row writes: the rows are in
                        ask(hdr.cmd, 0, SRC_NONE)
                m.next = "REPLY"
            with m.State("SKIP"):
                frame_timeout()
                with m.If(got):
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == skip):
                        m.next = "REPLY_ERR"
            with m.State("DRAIN"):
                with m.If(timed_out):
                    m.next = "REPLY_ERR"
            with m.State("REPLY_ERR"):
                ask(pr.Cmd.ERROR, pr.nbytes(pr.ERROR_LAYOUT), SRC_WORD, Cat(err, hdr.cmd))
                m.next = "REPLY"
            with m.State("REPLY"):
                with m.If(reply.done):
                    m.next = "HUNT"
        return m
