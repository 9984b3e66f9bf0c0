"""The big-file data path: worker threads for disk and BLAKE3 (rdv_core/session/_pipeline.py).

Files of at least ``PIPELINE_MIN`` bytes are read and hashed (sender) or written and
hashed (receiver) in a worker thread; these tests drive that path with a crafted
sender that can lie, and its parts directly. Timing lives in bench/transfer.py.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path

import pytest

from rdv_core.session import Session, _pipeline
from rdv_core.session import _frames as fr
from rdv_core.session._files import DIGEST, new_hasher
from rdv_core.session._pipeline import PIPELINE_MIN, PLAIN_DEPTH, PlainBuffers, ReadAhead

from tests.session_support import accept_all, stream_pair
from tests.test_session_hostile import CODE, CraftedPeer

SIZE = PIPELINE_MIN + (1 << 20)
CHUNK = 256 * 1024


@pytest.fixture(autouse=True)
def workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker threads on, whatever this machine's core count (see _pipeline.WORKERS)."""
    monkeypatch.setattr(_pipeline, "WORKERS", True)


async def _result(peer: CraftedPeer) -> fr.Frame:
    """The next frame that is not an ack."""
    frame = await peer.recv()
    while isinstance(frame, fr.Ack):
        frame = await peer.recv()
    return frame


async def _receiver(
    peer: CraftedPeer, rb: asyncio.StreamReader, wb: asyncio.StreamWriter, dl: Path
) -> Session:
    receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=accept_all, download_dir=dl)
    await asyncio.gather(peer.handshake(), receiver.start())
    await peer.send(fr.Offer(1, (fr.OfferedFile(9, "big.bin", SIZE, 0),)))
    assert isinstance(await peer.recv(), fr.Accept)
    return receiver


async def _hang_up(peer: CraftedPeer, receiver: Session) -> None:
    peer.writer.close()  # the crafted peer does not answer a close: hang up on it
    await asyncio.wait_for(receiver.wait_closed(), 10)


async def test_a_big_file_is_written_in_order_and_verified(tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = await _receiver(peer, rb, wb, dl)
        for start in range(0, SIZE, CHUNK):
            await peer.send(fr.Data(9, data[start : start + CHUNK]))
        await peer.send(fr.Done(9, new_hasher().update(data).hexdigest(), DIGEST))
        result = await _result(peer)
        assert isinstance(result, fr.Result) and result.ok, result
        await _hang_up(peer, receiver)
    assert (dl / "big.bin").read_bytes() == data


async def test_a_big_file_with_a_wrong_digest_is_not_kept(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = await _receiver(peer, rb, wb, dl)
        for _ in range(0, SIZE, CHUNK):
            await peer.send(fr.Data(9, bytes(CHUNK)))
        await peer.send(fr.Done(9, "00" * 32, DIGEST))
        result = await _result(peer)
        assert isinstance(result, fr.Result) and not result.ok
        assert "digest mismatch" in result.reason
        await _hang_up(peer, receiver)
    assert list(dl.iterdir()) == []


async def test_more_data_than_offered_fails_a_big_file(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = await _receiver(peer, rb, wb, dl)
        for _ in range(0, SIZE + CHUNK, CHUNK):
            await peer.send(fr.Data(9, bytes(CHUNK)))
        fail = await _result(peer)
        assert isinstance(fail, fr.Fail) and fail.side == "receiver"
        assert "more than the offered" in fail.reason
        await _hang_up(peer, receiver)
    assert not (dl / "big.bin").exists()
    # Every authentic chunk queued before the failure is written (a longer prefix to
    # resume from), and the thread closed the partial itself (never the loop under a
    # write) before wait_closed() returned.
    partial = dl / "big.bin.rdvpart"
    assert partial.stat().st_size == SIZE
    assert not _open_here(partial)


def _open_here(path: Path) -> bool:
    fds = Path("/proc/self/fd")
    return any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir())


async def test_plain_buffers_are_bounded_and_wait_for_a_writer_thread() -> None:
    pool = PlainBuffers(16)
    lent = [pool.lend() for _ in range(PLAIN_DEPTH)]
    assert pool.current is None and len({id(b) for b in lent}) == PLAIN_DEPTH
    waiting = asyncio.ensure_future(pool.ready())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # no buffer is allocated past the bound
    threading.Thread(target=pool.give_back, args=(lent[3],)).start()
    assert await asyncio.wait_for(waiting, 5) is lent[3]


async def test_read_ahead_hashes_every_byte_and_reports_a_shrunk_file(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 5)
    hasher = new_hasher()
    handle = io.FileIO(tmp_path / "f", "w+b")
    handle.write(data)
    handle.seek(0)
    ahead = ReadAhead(handle, hasher, len(data) + 1, b"P", CHUNK)  # one byte more than held
    got = b""
    try:
        for _ in range(4):
            buffer, plain = await ahead.next_plaintext()
            assert bytes(plain[:1]) == b"P"
            got += bytes(plain[1:])
            ahead.release(buffer)
        try:
            await ahead.next_plaintext()
        except OSError as exc:
            assert "shrank" in str(exc)
        else:
            raise AssertionError("a shrunk file must fail")
    finally:
        await ahead.stop()
        handle.close()
    assert got == data
    assert hasher.hexdigest() == new_hasher().update(data).hexdigest()
