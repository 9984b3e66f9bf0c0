"""Small files in bundles (docs/PROTOCOL.md section 12.13), over real loopback TCP.

Real sessions and real files in ``tmp_path``; a crafted peer where the test needs to
send what rdv would not (a wrong digest, a resized file) or to be an earlier rdv that
does not announce ``bundle``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from blake3 import blake3

from rdv_core.events import Event, FileCompleted, FileFailed
from rdv_core.session import (
    FrameError,
    ProtocolViolation,
    Session,
    TransferFailed,
    _bundle,
    collect,
)
from rdv_core.session import _frames as fr

from tests.session_support import file_digest, make_file, session_pair, stream_pair
from tests.test_session_hostile import CODE, CraftedPeer
from tests.test_session_hostile_files import crafted_sender


def _entry(id_: int, data: bytes, digest: bytes | None = None) -> _bundle.BundledFile:
    return _bundle.BundledFile(id_, digest or blake3(data).digest(), data)


def test_bundle_codec_round_trip_and_bounds() -> None:
    bundle = _bundle.Bundle(7, (_entry(1, b"abc"), _entry(2, b""), _entry(3, b"x" * 5000)))
    plain = fr.encode(bundle)
    decoded = fr.decode(plain)
    assert isinstance(decoded, _bundle.Bundle) and decoded.number == 7
    assert [(f.id, bytes(f.data), f.digest) for f in decoded.files] == [
        (f.id, bytes(f.data), f.digest) for f in bundle.files
    ]
    with pytest.raises(FrameError, match="truncated"):
        fr.decode(plain[:-1])
    with pytest.raises(FrameError, match="after its files"):
        fr.decode(plain + b"\x00")
    with pytest.raises(FrameError, match="32 bytes"):
        fr.encode(_bundle.Bundle(1, (_bundle.BundledFile(1, b"short", b"x"),)))
    assert fr.decode(fr.encode(fr.Bundled(3, ((2, "disk full"),)))) == fr.Bundled(
        3, ((2, "disk full"),)
    )


async def test_small_and_big_files_of_one_send_all_arrive_verified(tmp_path: Path) -> None:
    src, dl = tmp_path / "tree", tmp_path / "dl"
    digests = {
        f"tree/f{i:03d}.bin": make_file(src / f"f{i:03d}.bin", 999 + 37 * i, i) for i in range(300)
    }
    digests["tree/big.bin"] = make_file(src / "big.bin", 300 * 1024, 99)  # data + done
    digests["tree/empty"] = make_file(src / "empty", 0)
    digests["tree/z/edge.bin"] = make_file(src / "z" / "edge.bin", _bundle.MAX_FILE, 7)
    dl.mkdir()
    files = collect([src])
    # One file changed since it was listed: it fails on its own, the others arrive.
    changed = next(i for i, f in enumerate(files) if f.name == "tree/f005.bin")
    files[changed] = dataclasses.replace(files[changed], mtime_ns=files[changed].mtime_ns + 1)
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    async with (
        stream_pair() as ends,
        session_pair(ends, dl, events_a=ev_a, events_b=ev_b) as (a, b),
    ):
        with pytest.raises(TransferFailed, match="1 file") as caught:
            await a.send_files(files)
        received = {r.name: r for r in b.received}
    [(name, reason)] = caught.value.failures
    assert name == "tree/f005.bin" and reason.endswith("f005.bin changed since it was offered")
    assert a._outgoing._packer.next_number > 3  # the small files went in several bundles
    assert [r.name for r in received.values() if not r.ok] == ["tree/f005.bin"]
    del digests["tree/f005.bin"]
    for name, digest in digests.items():
        assert received[name].ok and received[name].digest == digest
        assert file_digest(dl / name) == digest
        assert (dl / name).stat().st_mtime_ns == (tmp_path / name).stat().st_mtime_ns
    assert not (dl / "tree/f005.bin").exists()
    assert not list(dl.rglob("*.rdvpart*"))
    assert len([e for e in ev_b if isinstance(e, FileCompleted)]) == len(digests)
    assert len([e for e in ev_a if isinstance(e, FileCompleted)]) == len(digests)
    assert len([e for e in ev_a if isinstance(e, FileFailed)]) == 1


async def test_a_bundled_file_with_a_wrong_digest_fails_alone_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    data = [b"one", b"two", b"three"]
    offered = tuple(fr.OfferedFile(i + 1, f"f{i + 1}", len(d), 10**18) for i, d in enumerate(data))
    async with crafted_sender(dl) as (peer, receiver):
        await peer.send(fr.Offer(1, offered))
        answer = await peer.recv()
        assert answer == fr.Accept(1, ((1, 0), (2, 0), (3, 0)), ())
        bad = blake3(b"not two").digest()
        entries = (_entry(1, data[0]), _entry(2, data[1], bad), _entry(3, data[2]))
        await peer.send(_bundle.Bundle(1, entries))
        verdict = await peer.recv()
        assert isinstance(verdict, fr.Bundled) and verdict.number == 1
        assert [id_ for id_, _ in verdict.failed] == [2]
        assert "digest mismatch" in verdict.failed[0][1]
        assert [r.ok for r in receiver.received] == [True, False, True]
    assert (dl / "f1").read_bytes() == b"one" and (dl / "f3").read_bytes() == b"three"
    assert (dl / "f1").stat().st_mtime_ns == 10**18
    assert sorted(p.name for p in dl.iterdir()) == ["f1", "f3"]  # no f2, no partial


@pytest.mark.parametrize("what", ["resized", "unknown", "twice", "resumed", "large"])
async def test_a_bundle_not_as_accepted_ends_the_session(tmp_path: Path, what: str) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with crafted_sender(dl) as (peer, receiver):
        size = _bundle.MAX_FILE + 1 if what == "large" else 3
        if what == "resumed":  # a kept partial of the same offer: accepted at offset 2
            (dl / "f1.rdvpart").write_bytes(b"ab")
            (dl / "f1.rdvpart.json").write_text('{"name": "f1", "size": 3, "mtime_ns": 0}')
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "f1", size, 0),)))
        accept = await peer.recv()
        assert accept == fr.Accept(1, ((1, 2 if what == "resumed" else 0),), ()), accept
        entries = {
            "resumed": (_entry(1, b"c"),),
            "large": (_entry(1, b"x" * size),),
            "resized": (_entry(1, b"four"),),
            "unknown": (_entry(9, b"abc"),),
            "twice": (_entry(1, b"abc"), _entry(1, b"abc")),
        }[what]
        await peer.send(_bundle.Bundle(1, entries))
        error = await peer.recv()
        while isinstance(error, fr.Bundled):
            error = await peer.recv()
        assert isinstance(error, fr.Error), error
        await asyncio.wait_for(receiver.wait_closed(), 5)
        assert isinstance(receiver.error, ProtocolViolation)


async def test_a_receiver_without_the_feature_gets_data_and_done(tmp_path: Path) -> None:
    """An earlier rdv (its hello has no "bundle") never sees a bundle frame."""
    make_file(tmp_path / "small.txt", 100)
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)  # announces no features at all
        sender = Session(rb, wb, CODE, is_dialer=False)
        await asyncio.gather(peer.handshake(), sender.start())
        sending = asyncio.ensure_future(sender.send_paths([tmp_path / "small.txt"]))
        offer = await peer.recv()
        assert isinstance(offer, fr.Offer)
        await peer.send(fr.Accept(offer.batch, ((offer.files[0].id, 0),)))
        kinds = [type(await peer.recv()), type(await peer.recv())]
        assert kinds == [fr.Data, fr.Done]
        await peer.send(fr.Result(offer.files[0].id, True, "", ""))
        [result] = await asyncio.wait_for(sending, 5)
        assert result.ok
        peer.writer.close()
        await asyncio.wait_for(sender.wait_closed(), 5)
