"""Fuzzing the board's host-link decoder (``swattn.sim.link_fuzz``): after any malformed byte
stream the decoder takes every byte, goes quiet, writes no buffer row that no frame addressed, and
answers the next valid frame correctly."""

import os

import pytest

from swattn.sim import link_fuzz
from swattn.sw.spec import protocol as pr
from swattn.sw.spec.engine_params import EngineParams

P = EngineParams(head_dim=32, lanes=64, max_radius=4, max_globals=2, max_dilation=2, seq_width=4)
ROWS = 1 << P.seq_width
COUNT = int(os.environ.get("SWATTN_FUZZ_CASES", "80"))


#: the serial engine's board core (the iCE40's): the same link, the engine on the buffers' words
PS = EngineParams(head_dim=32, lanes=4, max_radius=4, max_globals=2, max_dilation=2, seq_width=4)


@pytest.mark.parametrize("seed, params", [(1, P), (2, P), (3, PS)], ids=["1", "2", "serial"])
def test_decoder_recovers_from_malformed_streams(seed, params):
    streams = link_fuzz.cases(params, seed, COUNT, ROWS)
    results = link_fuzz.run(params, streams, seed=seed)
    bad = [r for r in results if not r["ok"]]
    assert len(results) == len(streams)
    assert not bad, f"seed {seed}: cases " + "; ".join(
        f"#{r['case']} stream {r['stream']} sent={r['sent']} settled={r['settled']} "
        f"stray writes={r['stray_writes']} "
        f"reply={r['reply']}" for r in bad[:5])
    # the malformed streams did provoke error replies (the fuzz reaches the checks)
    codes = [c for r in results for c, _ in r["garbage_replies"]]
    assert codes.count(pr.Cmd.ERROR) >= COUNT // 4


def test_parse_replies_and_a_planted_bad_crc():
    good = pr.encode_frame(pr.Cmd.READ_STATUS, payload=b"\x01\x02\x03\x04", sync=pr.REPLY_SYNC)
    reps = link_fuzz.parse_replies(b"\x00" + good)
    assert len(reps) == 1 and reps[0]["ok"] and reps[0]["cmd"] == pr.Cmd.READ_STATUS
    bad = bytearray(good)
    bad[-1] ^= 1
    assert not link_fuzz.parse_replies(bytes(bad))[0]["ok"]


def test_stray_writes_are_caught(monkeypatch):
    """Planted: if no row were addressed, a valid WRITE_Q of row 1 must count as a stray write."""
    frame = pr.encode_frame(pr.Cmd.WRITE_Q, 1, 1, bytes(range(P.head_dim)))
    assert link_fuzz.allowed_rows(P, frame, ROWS)["q"] == {1}
    ok = link_fuzz.run(P, [frame], seed=3)
    assert ok[0]["ok"] and ok[0]["writes"] > 0
    monkeypatch.setattr(link_fuzz, "allowed_rows",
                        lambda params, stream, rows: {"q": set(), "k": set(), "v": set(),
                                                      "o": set()})
    bad = link_fuzz.run(P, [frame], seed=3)
    assert not bad[0]["ok"] and bad[0]["stray_writes"] == [("q", 1)]
