"""A kept partial file whose bytes are not the start of the sender's file.

The sender's file was rewritten keeping its size and mtime (or the partial was altered):
the sidecar matches, so the receiver resumes, and the digest tells. The user must be told
that the kept part was wrong and deleted (not that the sender's file is wrong), and the
next run must send the file whole and verify it. Real loopback TCP, a real receiving
:class:`~rdv_core.session.Session`, real files in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from blake3 import blake3

from rdv_core.session import _frames as fr
from rdv_core.session._incoming_file import IncomingFile

from tests.test_session_hostile_files import _result, _send_file, crafted_sender

SIZE = 100_000


async def test_a_wrong_kept_prefix_is_named_deleted_and_the_next_run_starts_over(
    tmp_path: Path,
) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    real = os.urandom(SIZE)
    (dl / "f.bin.rdvpart").write_bytes(os.urandom(40_000))  # not the start of ``real``
    offered = {"name": "f.bin", "size": SIZE, "mtime_ns": 7}
    (dl / "f.bin.rdvpart.json").write_text(json.dumps(offered))
    async with crafted_sender(dl) as (peer, _receiver):
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "f.bin", SIZE, 7),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept) and answer.offsets == ((1, 40_000),), answer
        await _send_file(peer, 1, real[40_000:], blake3(real).hexdigest())
        result = await _result(peer)
        assert not result.ok
        assert "the partial file kept from an earlier run (resumed after 39.1 KiB)" in (
            result.reason
        ), result.reason
        assert "run both commands again to receive it whole" in result.reason
        assert sorted(p.name for p in dl.iterdir()) == []
        await peer.send(fr.Offer(2, (fr.OfferedFile(2, "f.bin", SIZE, 7),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept) and answer.offsets == ((2, 0),), answer
        await _send_file(peer, 2, real)
        result = await _result(peer)
        assert result.ok, result.reason
    assert (dl / "f.bin").read_bytes() == real


def test_a_file_stored_whole_takes_the_sidecar_of_an_earlier_run_away(tmp_path: Path) -> None:
    """An earlier run sent the 64 KiB file in data frames and broke (partial and sidecar
    kept); this run's bundle stored it whole and left ``f.bin.rdvpart.json`` behind."""
    dl = tmp_path / "dl"
    dl.mkdir()
    real = os.urandom(64 * 1024)
    (dl / "f.bin.rdvpart").write_bytes(b"")
    (dl / "f.bin.rdvpart.json").write_text(json.dumps({"name": "f.bin", "size": 65536}))
    file = IncomingFile(dl, 1, "f.bin", len(real), 7)
    assert file.prepare() == 0
    file.store_whole(real, blake3(real).digest())
    assert sorted(p.name for p in dl.iterdir()) == ["f.bin"]
    assert (dl / "f.bin").read_bytes() == real
