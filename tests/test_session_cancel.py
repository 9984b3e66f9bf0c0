"""Cancelling one file while the others and the session go on (docs/PROTOCOL.md 12.14).

Real sessions over a loopback TCP conn: a sender of three files stops the big one,
a receiver stops the one it does not want; the other files are verified, the peer
reads "cancelled by the peer", and an older peer (which ignores the new field) reads
an ordinary failure and goes on.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from rdv_core.events import ChatReceived, Event, FileAccepted, FileFailed, FileProgress
from rdv_core.session import TransferFailed, _pipeline
from rdv_core.session import _frames as fr
from rdv_core.session._cancel import ALL_SENT, CANCELLED, CANCELLED_BY_PEER, ENDED
from rdv_tui.transfer_ui import TransferView

from tests.session_support import make_file, session_pair, stream_pair
from tests.test_session_disk import needs_root, tmpfs

BIG = 8 << 20


def three_files(tmp_path: Path) -> list[Path]:
    out = tmp_path / "out"
    make_file(out / "a.txt", 1000, seed=1)
    make_file(out / "big.bin", BIG, seed=2)
    make_file(out / "c.txt", 2000, seed=3)
    (tmp_path / "in").mkdir()
    return [out / "a.txt", out / "big.bin", out / "c.txt"]


def failed(events: list[Event]) -> list[FileFailed]:
    return [e for e in events if isinstance(e, FileFailed)]


@pytest.mark.parametrize("who", ["sender", "sender-threads", "receiver"])
async def test_one_file_cancelled_mid_stream_the_others_arrive(
    tmp_path: Path, who: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while its data moves (the receiver holds its first chunk): that file
    stops on both sides, the two others are verified, the session goes on. With worker
    threads (machines of 4+ CPUs: docs/PROTOCOL.md 12.12) a chunk read while the cancel
    came is not sent after the ``fail`` (the receiver would end the session)."""
    monkeypatch.setattr(_pipeline, "WORKERS", who == "sender-threads")
    who = who.partition("-")[0]
    paths = three_files(tmp_path)
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    said: list[str | None] = []
    async with stream_pair() as ends, session_pair(ends, tmp_path / "in", events_a=ev_a) as (a, b):

        def on_b(event: Event) -> None:
            ev_b.append(event)
            if isinstance(event, FileProgress) and event.transfer_id == 2 and not said:
                session, direction = (a, "out") if who == "sender" else (b, "in")
                said.append(session.cancel_transfer(direction, 2))  # type: ignore[arg-type]

        b._events.callback = on_b
        with pytest.raises(TransferFailed) as raised:
            await a.send_paths(paths)
        assert said == [None]
        assert raised.value.failures == [
            ("big.bin", CANCELLED if who == "sender" else CANCELLED_BY_PEER)
        ]
        assert (tmp_path / "in" / "a.txt").stat().st_size == 1000
        assert (tmp_path / "in" / "c.txt").stat().st_size == 2000
        assert not (tmp_path / "in" / "big.bin").exists()
        [out_fail], [in_fail] = failed(ev_a), failed(ev_b)
        assert out_fail.cancelled and in_fail.cancelled
        ours, theirs = (out_fail, in_fail) if who == "sender" else (in_fail, out_fail)
        # The receiver's side says what it keeps: "...; partial file kept (4.1 MiB) to resume".
        assert ours.reason.startswith(CANCELLED) and theirs.reason.startswith(CANCELLED_BY_PEER)
        assert a.cancel_transfer("out", 2) == ENDED  # settled: nothing more to stop
        await a.send_chat("still here")
        await asyncio.sleep(0.05)
        assert not a.closed and not b.closed
        assert any(isinstance(e, ChatReceived) for e in ev_b)


async def test_a_file_cancelled_before_its_turn_sends_nothing(tmp_path: Path) -> None:
    """Cancelled as soon as the receiver accepts, before any of its bytes left: nothing
    of it is written (not even a partial), the files around it arrive."""
    paths = three_files(tmp_path)
    ev_b: list[Event] = []
    async with stream_pair() as ends, session_pair(ends, tmp_path / "in", events_b=ev_b) as (a, _b):

        def on_a(event: Event) -> None:
            if isinstance(event, FileAccepted) and event.transfer_id == 1:
                assert a.cancel_transfer("out", 2) is None

        a._events.callback = on_a
        with pytest.raises(TransferFailed):
            await a.send_paths(paths)
        assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.txt", "c.txt"]
        assert [(e.name, e.reason, e.cancelled) for e in failed(ev_b)] == [
            ("big.bin", CANCELLED_BY_PEER, True)
        ]
        assert not list((tmp_path / "in").glob("*.rdvpart*"))


async def test_too_late_once_every_byte_left(tmp_path: Path) -> None:
    """A small file goes whole in a bundle: once sent, a cancel is refused in words."""
    make_file(tmp_path / "s.txt", 100)
    (tmp_path / "in").mkdir()
    async with stream_pair() as ends, session_pair(ends, tmp_path / "in") as (a, _b):
        answers: list[str | None] = []

        def on_a(event: Event) -> None:
            if isinstance(event, FileAccepted) and event.transfer_id == 1:
                asyncio.get_running_loop().call_soon(
                    lambda: answers.append(a.cancel_transfer("out", 1))
                )

        a._events.callback = on_a
        await a.send_paths([tmp_path / "s.txt"])
        assert answers in ([ALL_SENT], [ENDED])


async def test_an_older_peer_reads_an_ordinary_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that does not know ``cancelled`` (decoded as before: the field ignored)
    fails that one file with the sender's reason and keeps the session and the rest."""
    real = fr.decode

    def old_decode(plain: bytes | bytearray | memoryview) -> fr.Frame:
        frame = real(plain)
        if isinstance(frame, fr.Fail):
            return fr.Fail(frame.id, frame.side, frame.reason)
        return frame

    monkeypatch.setattr(fr, "decode", old_decode)
    paths = three_files(tmp_path)
    ev_b: list[Event] = []
    async with stream_pair() as ends, session_pair(ends, tmp_path / "in", events_b=ev_b) as (a, b):

        def on_a(event: Event) -> None:
            if isinstance(event, FileAccepted) and event.transfer_id == 1:
                a.cancel_transfer("out", 2)

        a._events.callback = on_a
        with pytest.raises(TransferFailed):
            await a.send_paths(paths)
        assert [(e.reason, e.cancelled) for e in failed(ev_b)] == [("sender: cancelled", False)]
        assert (tmp_path / "in" / "c.txt").exists() and not a.closed and not b.closed


def test_the_fail_frame_of_older_peers_is_unchanged() -> None:
    """Only a cancel carries the field: every other ``fail`` is byte for byte as before."""
    assert fr.encode(fr.Fail(1, "sender", "x")) == b'\x0a{"id":1,"side":"sender","reason":"x"}'
    cancel = fr.encode(fr.Fail(1, "receiver", "cancelled", cancelled=True))
    assert cancel == b'\x0a{"id":1,"side":"receiver","reason":"cancelled","cancelled":true}'
    assert fr.decode(cancel) == fr.Fail(1, "receiver", "cancelled", True)


async def test_rdv_receive_counts_a_cancelled_file_apart(tmp_path: Path) -> None:
    """``rdv receive``'s view of a send whose sender (the app) stopped one file: the
    summary says ``1 cancelled``, not ``1 failed``."""
    paths = three_files(tmp_path)
    out = io.StringIO()
    view = TransferView(Console(file=out, width=200), "in")
    async with stream_pair() as ends, session_pair(ends, tmp_path / "in") as (a, b):
        b._events.callback = view

        def on_a(event: Event) -> None:
            if isinstance(event, FileAccepted) and event.transfer_id == 1:
                a.cancel_transfer("out", 2)

        a._events.callback = on_a
        with pytest.raises(TransferFailed):
            await a.send_paths(paths)
        await asyncio.sleep(0.05)
    assert view.summary().startswith("2 of 3 files verified")
    assert view.summary().endswith("; 1 cancelled")
    assert "cancelled by the peer: big.bin" in out.getvalue()


@needs_root
async def test_a_cancelled_file_holds_no_room_for_the_next_offer(tmp_path: Path) -> None:
    """The receiver cancels a 12 MiB file early; an 8 MiB file sent next fits the 16 MiB
    folder. The cancelled file's unwritten bytes were still counted as to come, and
    the next offer was refused: 'not enough free space in the download folder'."""
    make_file(tmp_path / "out" / "big.bin", 12 << 20, seed=1)
    make_file(tmp_path / "out" / "next.bin", 8 << 20, seed=2)
    with tmpfs(tmp_path / "in", "16m") as inbox:
        async with stream_pair() as ends, session_pair(ends, inbox) as (a, b):
            said: list[str | None] = []

            def on_b(event: Event) -> None:
                if isinstance(event, FileProgress) and not said:
                    said.append(b.cancel_transfer("in", event.transfer_id))

            b._events.callback = on_b
            with pytest.raises(TransferFailed):
                await a.send_paths([tmp_path / "out" / "big.bin"])
            assert said == [None]
            b._events.callback = None
            [result] = await a.send_paths([tmp_path / "out" / "next.bin"])
            assert result.ok
