"""Fuzzing the board's host-link decoder (``swattn.sim.link_fuzz``): after any malformed byte
stream the decoder takes every byte, goes quiet, and answers the next valid frame correctly."""

import os

import pytest

from swattn.sim import link_fuzz
from swattn.sw import protocol as pr
from swattn.sw.engine_params import EngineParams

P = EngineParams(head_dim=32, lanes=64, max_radius=4, max_globals=2, max_dilation=2, seq_width=4)
ROWS = 1 << P.seq_width
COUNT = int(os.environ.get("SWATTN_FUZZ_CASES", "80"))


@pytest.mark.parametrize("seed", [1, 2])
def test_decoder_recovers_from_malformed_streams(seed):
    streams = link_fuzz.cases(P, seed, COUNT, ROWS)
    results = link_fuzz.run(P, streams, seed=seed)
    bad = [r for r in results if not r["ok"]]
    assert len(results) == len(streams)
    assert not bad, f"seed {seed}: cases " + "; ".join(
        f"#{r['case']} stream {r['stream']} sent={r['sent']} settled={r['settled']} "
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
