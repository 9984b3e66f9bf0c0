"""Sessions over real loopback TCP stream pairs (no rdv server): chat, files, failures."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from rdv_core.events import (
    ChatReceived,
    ChatSent,
    Event,
    FileAccepted,
    FileCompleted,
    FileFailed,
    FileOffered,
    FileProgress,
    FileRejected,
    SessionClosed,
    SessionEstablished,
    TransferResumed,
)
from rdv_core.session import (
    CodeMismatch,
    ConnectionLost,
    IncomingOffer,
    PeerError,
    SessionError,
    TamperedError,
    TransferFailed,
    TransferRejected,
    _pipeline,
)

from tests.session_support import (
    accept_all,
    file_digest,
    make_file,
    proxied_pair,
    reject_all,
    session_pair,
    stream_pair,
)


def of(events: list[Event], cls: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, cls)]


async def test_chat_both_ways(tmp_path: Path) -> None:
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    async with (
        stream_pair() as ends,
        session_pair(ends, tmp_path, events_a=ev_a, events_b=ev_b) as (
            a,
            b,
        ),
    ):
        await a.send_chat("hello from a")
        await b.send_chat("héllo from b ✓")
        for _ in range(100):
            if of(ev_a, ChatReceived) and of(ev_b, ChatReceived):
                break
            await asyncio.sleep(0.01)
    assert [e.text for e in of(ev_b, ChatReceived)] == ["hello from a"]  # type: ignore[attr-defined]
    assert [e.text for e in of(ev_a, ChatReceived)] == ["héllo from b ✓"]  # type: ignore[attr-defined]
    assert [e.text for e in of(ev_a, ChatSent)] == ["hello from a"]  # type: ignore[attr-defined]
    assert isinstance(ev_a[0], SessionEstablished) and isinstance(ev_b[0], SessionEstablished)
    assert isinstance(ev_a[-1], SessionClosed) and isinstance(ev_b[-1], SessionClosed)
    assert {ev_a[-1].reason, ev_b[-1].reason} <= {"closed", "closed by peer"}


async def test_files_and_folder_verified(tmp_path: Path) -> None:
    src = tmp_path / "src"
    digests = {
        "one.bin": make_file(src / "one.bin", 300_000, 1),
        "empty.txt": make_file(src / "empty.txt", 0, 2),
        "album/a.jpg": make_file(src / "album" / "a.jpg", 70_000, 3),
        "album/sub/b.raw": make_file(src / "album" / "sub" / "b.raw", 1_000_001, 4),
    }
    dl = tmp_path / "dl"
    dl.mkdir()
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    async with (
        stream_pair() as ends,
        session_pair(ends, dl, events_a=ev_a, events_b=ev_b) as (
            a,
            b,
        ),
    ):
        results = await a.send_paths([src / "one.bin", src / "empty.txt", src / "album"])
    assert [r.name for r in results] == ["one.bin", "empty.txt", "album/a.jpg", "album/sub/b.raw"]
    assert all(r.ok for r in results)
    for name, digest in digests.items():
        assert file_digest(dl / name) == digest
        assert {r.digest for r in results if r.name == name} == {digest}
    assert not list(dl.rglob("*.rdvpart*"))
    completed_in = of(ev_b, FileCompleted)
    assert {e.name: e.digest for e in completed_in} == digests  # type: ignore[attr-defined]
    assert {e.path for e in completed_in} == {str(dl / n) for n in digests}  # type: ignore[attr-defined]
    assert len(of(ev_a, FileCompleted)) == 4
    assert len(of(ev_b, FileOffered)) == 4 and len(of(ev_a, FileAccepted)) == 4
    # Progress ends at the total, and mtimes follow the sender's.
    last = of(ev_b, FileProgress)[-1]
    assert last.done == last.total  # type: ignore[attr-defined]
    assert (dl / "one.bin").stat().st_mtime_ns == (src / "one.bin").stat().st_mtime_ns
    assert [r.ok for r in b.received] == [True] * 4


async def test_reject_reaches_sender(tmp_path: Path) -> None:
    make_file(tmp_path / "x.bin", 10)
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    dl = tmp_path / "dl"
    dl.mkdir()
    async with (
        stream_pair() as ends,
        session_pair(ends, dl, on_offer=reject_all, events_a=ev_a, events_b=ev_b) as (a, _b),
    ):
        with pytest.raises(TransferRejected, match="declined by the receiver"):
            await a.send_paths([tmp_path / "x.bin"])
        await a.send_chat("still alive")  # a rejection does not end the session
    assert of(ev_a, FileRejected) and of(ev_b, FileRejected)
    assert list(dl.iterdir()) == []


async def test_no_silent_overwrite(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "report.tar.gz").write_bytes(b"mine")
    (dl / "report (1).tar.gz").write_bytes(b"mine too")
    digest = make_file(tmp_path / "report.tar.gz", 5000)
    async with stream_pair() as ends, session_pair(ends, dl) as (a, b):
        await a.send_paths([tmp_path / "report.tar.gz"])
    assert (dl / "report.tar.gz").read_bytes() == b"mine"
    assert (dl / "report (1).tar.gz").read_bytes() == b"mine too"
    assert file_digest(dl / "report (2).tar.gz") == digest
    assert b.received[0].path == dl / "report (2).tar.gz"


async def test_wrong_code_fails_on_both_sides(tmp_path: Path) -> None:
    async with stream_pair() as ((ra, wa), (rb, wb)):
        from rdv_core.session import Session

        a = Session(ra, wa, "7-tulip-orbit", is_dialer=True)
        b = Session(rb, wb, "7-tulip-orbiT-x", is_dialer=False)
        res = await asyncio.gather(a.start(), b.start(), return_exceptions=True)
    assert all(isinstance(r, CodeMismatch) for r in res), res
    assert "code mismatch" in str(res[0]) and "code mismatch" in str(res[1])
    assert a.closed and b.closed


async def test_chat_flows_while_file_in_flight(tmp_path: Path) -> None:
    make_file(tmp_path / "big.bin", 48 << 20)
    ev_b: list[Event] = []
    dl = tmp_path / "dl"
    dl.mkdir()
    got_progress = asyncio.Event()

    def on_b(event: Event) -> None:
        ev_b.append(event)
        if isinstance(event, FileProgress):
            got_progress.set()

    ev_a: list[Event] = []
    async with stream_pair() as ends, session_pair(ends, dl, events_a=ev_a) as (a, b):
        b._events.callback = on_b  # observe the receiver from here on
        sending = asyncio.create_task(a.send_paths([tmp_path / "big.bin"]))
        await got_progress.wait()
        await a.send_chat("while sending")
        await b.send_chat("while receiving")
        await sending
    kinds = [type(e) for e in ev_b]
    assert kinds.index(ChatReceived) < kinds.index(FileCompleted)
    kinds_a = [type(e) for e in ev_a]
    assert kinds_a.index(ChatReceived) < kinds_a.index(FileCompleted)


async def test_flipped_ciphertext_is_detected(tmp_path: Path) -> None:
    make_file(tmp_path / "f.bin", 500_000)
    dl = tmp_path / "dl"
    dl.mkdir()
    # Past the prelude and hello: flip a bit in the middle of the data.
    async with proxied_pair({"flip_at": 200_000}) as (one, two, _proxy):
        ev_b: list[Event] = []
        async with session_pair((one, two), dl, events_b=ev_b) as (a, b):
            with pytest.raises(SessionError):
                await a.send_paths([tmp_path / "f.bin"])
            await b.wait_closed()
            await a.wait_closed()
    assert isinstance(b.error, TamperedError)
    assert "tampered" in b.close_reason
    assert isinstance(a.error, PeerError | ConnectionLost)
    failed = of(ev_b, FileFailed)
    assert failed and "partial file kept" in failed[0].reason  # type: ignore[attr-defined]
    assert not (dl / "f.bin").exists()


@pytest.mark.parametrize("workers", [False, True])  # big files' worker threads (_pipeline.py)
async def test_resume_after_broken_connection(
    tmp_path: Path, workers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pipeline, "WORKERS", workers)
    size = 6 << 20
    digest = make_file(tmp_path / "movie.mkv", size)
    dl = tmp_path / "dl"
    dl.mkdir()
    async with (
        proxied_pair({"cut_after": 2 << 20}) as (one, two, _),
        session_pair((one, two), dl) as (a, b),
    ):
        with pytest.raises(SessionError):
            await a.send_paths([tmp_path / "movie.mkv"])
        await b.wait_closed()
    partial = dl / "movie.mkv.rdvpart"
    held = partial.stat().st_size
    assert 0 < held < size
    assert not (dl / "movie.mkv").exists()

    ev_a: list[Event] = []
    ev_b: list[Event] = []
    async with proxied_pair({}) as (one, two, proxy):
        async with session_pair((one, two), dl, events_a=ev_a, events_b=ev_b) as (a, b):
            results = await a.send_paths([tmp_path / "movie.mkv"])
        second_run_bytes = proxy.forwarded
    assert results[0].ok and results[0].resumed_from == held
    assert file_digest(dl / "movie.mkv") == digest
    assert not partial.exists() and not (dl / "movie.mkv.rdvpart.json").exists()
    # Only the rest crossed the wire the second time (plus a little framing).
    assert size - held <= second_run_bytes < size - held + 64 * 1024
    assert [e.offset for e in of(ev_b, TransferResumed)] == [held]  # type: ignore[attr-defined]
    assert [e.offset for e in of(ev_a, TransferResumed)] == [held]  # type: ignore[attr-defined]


async def test_changed_source_restarts_from_zero(tmp_path: Path) -> None:
    make_file(tmp_path / "doc.bin", 3 << 20, seed=1)
    dl = tmp_path / "dl"
    dl.mkdir()
    async with (
        proxied_pair({"cut_after": 1 << 20}) as (one, two, _),
        session_pair((one, two), dl) as (a, b),
    ):
        with pytest.raises(SessionError):
            await a.send_paths([tmp_path / "doc.bin"])
        await b.wait_closed()
    assert (dl / "doc.bin.rdvpart").exists()
    digest = make_file(tmp_path / "doc.bin", 3 << 20, seed=2)  # new content, new mtime
    async with stream_pair() as ends, session_pair(ends, dl) as (a, b):
        results = await a.send_paths([tmp_path / "doc.bin"])
    assert results[0].resumed_from == 0
    assert file_digest(dl / "doc.bin") == digest


async def test_offer_callback_sees_files(tmp_path: Path) -> None:
    make_file(tmp_path / "d" / "x.txt", 5)
    make_file(tmp_path / "d" / "y.txt", 7)
    seen: list[IncomingOffer] = []

    async def decide(offer: IncomingOffer) -> bool:
        seen.append(offer)
        return await accept_all(offer)

    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ends, session_pair(ends, dl, on_offer=decide) as (a, _b):
        await a.send_paths([tmp_path / "d"])
    assert [(f.path, f.size) for f in seen[0].files] == [("d/x.txt", 5), ("d/y.txt", 7)]
    assert seen[0].total_size == 12


async def test_send_after_close_raises(tmp_path: Path) -> None:
    async with stream_pair() as ends, session_pair(ends, tmp_path) as (a, b):
        await b.close()
        await a.wait_closed()
        with pytest.raises(SessionError):
            await a.send_chat("nobody listens")
        with pytest.raises(SessionError):
            await a.send_paths([__file__])


async def test_generic_stream_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams that are not plain sockets (TLS, tests) use the generic channel."""
    from rdv_core.session import _session as session_module
    from rdv_core.session._channel import StreamChannel

    monkeypatch.setattr(session_module, "open_channel", StreamChannel)
    digest = make_file(tmp_path / "g.bin", 3_000_000)
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ends, session_pair(ends, dl) as (a, _b):
        assert isinstance(a._channel, StreamChannel)
        await a.send_chat("over streams")
        results = await a.send_paths([tmp_path / "g.bin"])
    assert results[0].ok and file_digest(dl / "g.bin") == digest


async def test_socket_channel_is_used_and_streams_close_cleanly(tmp_path: Path) -> None:
    from rdv_core.session._channel import SocketChannel

    async with stream_pair() as ends, session_pair(ends, tmp_path) as (a, b):
        assert isinstance(a._channel, SocketChannel) and isinstance(b._channel, SocketChannel)
    # The streams' own protocol heard connection_lost: wait_closed() returns.
    for _, writer in ends:
        await asyncio.wait_for(writer.wait_closed(), 5)


async def test_both_peers_send_at_once(tmp_path: Path) -> None:
    """Full duplex both ways: two bulk senders never deadlock."""
    from rdv_core.session import Session

    dig_a = make_file(tmp_path / "from_a.bin", 20 << 20, 1)
    dig_b = make_file(tmp_path / "from_b.bin", 20 << 20, 2)
    (tmp_path / "in_a").mkdir()
    (tmp_path / "in_b").mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        a = Session(
            ra, wa, "3-owl-fig", is_dialer=True, on_offer=accept_all, download_dir=tmp_path / "in_a"
        )
        b = Session(
            rb,
            wb,
            "3-owl-fig",
            is_dialer=False,
            on_offer=accept_all,
            download_dir=tmp_path / "in_b",
        )
        await asyncio.gather(a.start(), b.start())
        await asyncio.gather(
            a.send_paths([tmp_path / "from_a.bin"]), b.send_paths([tmp_path / "from_b.bin"])
        )
        await a.close()
        await b.close()
    assert file_digest(tmp_path / "in_b" / "from_a.bin") == dig_a
    assert file_digest(tmp_path / "in_a" / "from_b.bin") == dig_b


async def test_failing_offer_callback_rejects(tmp_path: Path) -> None:
    async def broken(offer: IncomingOffer) -> bool:
        raise RuntimeError("ui went away")

    make_file(tmp_path / "x.bin", 10)
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ends, session_pair(ends, dl, on_offer=broken) as (a, _b):
        with pytest.raises(TransferRejected, match="could not decide"):
            await a.send_paths([tmp_path / "x.bin"])


async def test_many_long_names_are_offered_in_batches(tmp_path: Path) -> None:
    from rdv_core.session._files import OFFER_BYTES

    src = tmp_path / "many"
    long = "n" * 200
    count = OFFER_BYTES // (6 * 210) + 20  # more than one offer's worth
    for i in range(count):
        (src / f"{long}{i:04}").parent.mkdir(parents=True, exist_ok=True)
        (src / f"{long}{i:04}").write_bytes(b"%d" % i)
    offers: list[IncomingOffer] = []

    async def count_offers(offer: IncomingOffer) -> bool:
        offers.append(offer)
        return True

    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ends, session_pair(ends, dl, on_offer=count_offers) as (a, _b):
        results = await a.send_paths([src])
    assert len(results) == count and all(r.ok for r in results)
    assert len(offers) == 2 and sum(len(o.files) for o in offers) == count
    assert (dl / "many" / f"{long}0007").read_bytes() == b"7"


@pytest.mark.parametrize("change", ["deleted", "modified"])
async def test_sender_side_failure_is_reported_to_both(tmp_path: Path, change: str) -> None:
    """The source disappears or changes between offer and accept: both sides learn why."""
    src = tmp_path / "src.bin"
    make_file(src, 100_000)
    ok_file = tmp_path / "ok.txt"
    ok_file.write_text("fine")

    async def meddle(offer: IncomingOffer) -> bool:
        if change == "deleted":
            src.unlink()
        else:
            src.write_bytes(b"different now")
        return True

    dl = tmp_path / "dl"
    dl.mkdir()
    ev_b: list[Event] = []
    async with (
        stream_pair() as ends,
        session_pair(ends, dl, on_offer=meddle, events_b=ev_b) as (
            a,
            b,
        ),
    ):
        with pytest.raises(TransferFailed) as caught:
            await a.send_paths([src, ok_file])
        await a.send_chat("sync")  # the fail frame reached b before this chat
        for _ in range(100):
            if of(ev_b, ChatReceived):
                break
            await asyncio.sleep(0.01)
    expected = "No such file" if change == "deleted" else "changed since it was offered"
    assert [name for name, _ in caught.value.failures] == ["src.bin"]
    assert expected in caught.value.failures[0][1]
    [failed] = of(ev_b, FileFailed)
    assert failed.name == "src.bin" and expected in failed.reason  # type: ignore[attr-defined]
    assert (dl / "ok.txt").read_text() == "fine"
    assert [r.ok for r in b.received] == [False, True]


async def test_sending_a_folder_again_sends_only_what_is_missing(tmp_path: Path) -> None:
    src = tmp_path / "album"
    digests = {f"album/{n}.jpg": make_file(src / f"{n}.jpg", 200_000 + n, n) for n in range(5)}
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ends, session_pair(ends, dl) as (a, _b):
        await a.send_paths([src])
    (src / "5.jpg").write_bytes(b"new since")  # one more file on the sender
    (dl / "album" / "0.jpg").unlink()  # and one lost on the receiver
    async with proxied_pair({}) as (one, two, proxy), session_pair((one, two), dl) as (a, b):
        results = await a.send_paths([src])
        wire = proxy.forwarded
    assert all(r.ok for r in results)
    resent = {r.name for r in results if r.resumed_from < r.size}
    assert resent == {"album/0.jpg", "album/5.jpg"}
    assert wire < 200_000 + 64 * 1024  # only those two files' bytes crossed
    assert sorted(p.name for p in (dl / "album").iterdir()) == [f"{n}.jpg" for n in range(6)]
    for name, digest in digests.items():
        assert file_digest(dl / name) == digest
    assert {r.path for r in b.received} == {dl / "album" / f"{n}.jpg" for n in range(6)}


async def test_same_size_and_time_but_other_content_is_kept(tmp_path: Path) -> None:
    make_file(tmp_path / "x.bin", 1000, 1)
    mtime = (tmp_path / "x.bin").stat().st_mtime_ns
    dl = tmp_path / "dl"
    dl.mkdir()
    make_file(dl / "x.bin", 1000, 2)
    os.utime(dl / "x.bin", ns=(mtime, mtime))
    mine = file_digest(dl / "x.bin")
    async with stream_pair() as ends, session_pair(ends, dl) as (a, _b):
        with pytest.raises(TransferFailed, match="already there"):
            await a.send_paths([tmp_path / "x.bin"])
    assert file_digest(dl / "x.bin") == mine
