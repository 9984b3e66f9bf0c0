"""Hostile servers and dying peers against what rdv prints (issue 13, items 12 to 14).

Real loopback sockets, a real crafted server, real ``rdv`` processes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from rdv_core.events import Event, FileProgress
from rdv_core.session import Session, SessionError
from rdv_core.wire import printable, unsafe_char
from rdv_tui.cli.pipe import StdinReader

from tests.session_support import accept_all, make_file

CODE = "12345-otter-quill"

HOSTILE_TEXT = "a\x1b[2Jb\x1b]0;pwned\x07c\rd\ne\u202ef\x9bg\x00h"


def test_printable_escapes_every_control_and_bidi_character() -> None:
    shown = printable(HOSTILE_TEXT)
    assert shown == "a\\x1b[2Jb\\x1b]0;pwned\\x07c\\x0dd\\x0ae\\u202ef\\x9bg\\x00h"
    assert unsafe_char(shown) is None
    assert printable("line one\nline two\x1b", keep_newlines=True) == "line one\nline two\\x1b"
    assert printable("plain ünïcödé → ok") == "plain ünïcödé → ok"
    for char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\x85\x9b\x7f":
        assert unsafe_char(f"x{char}y") == char


async def _hostile_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = f"go away {HOSTILE_TEXT}".encode()
    writer.write(
        b"HTTP/1.1 403 Forbidden \x1b]0;title\x07\x1b[2J\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("command", ["dial", "receive"])
async def test_a_hostile_servers_reason_reaches_stderr_neutralised(
    command: str, tmp_path: Path
) -> None:
    server = await asyncio.start_server(_hostile_server, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    if command == "dial":
        args = ["dial", url, "tok", "--spaces", "loopback", "-v"]
    else:
        args = [
            "receive",
            CODE,
            "--server",
            url,
            "--dir",
            str(tmp_path),
            "--spaces",
            "loopback",
            "-y",
        ]
        args.append("-v")
    env = {**os.environ, "RDV_CONFIG": str(tmp_path / "none.toml"), "NO_COLOR": "1"}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rdv_tui",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        server.close()
        await server.wait_closed()
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 1, text
    assert "403" in text and "go away" in text
    assert unsafe_char(text.replace("\n", "")) is None, repr(text)
    assert "\\x1b[2J" in text  # shown, visibly, not executed


def _receiver_that_dies(listener: socket.socket, download_dir: Path) -> None:
    """A real receiving Session in its own thread and loop; it resets the conn mid-file.

    Its own loop on purpose: the reset must land while the sender's loop is busy
    writing, as when a peer on another machine dies.
    """

    async def main() -> None:
        sock, _ = listener.accept()
        reader, writer = await asyncio.open_connection(sock=sock)

        def on_event(event: Event) -> None:
            if isinstance(event, FileProgress) and event.done > 4 << 20:
                writer.transport.abort()  # the receiver dies: RST

        session = Session(
            reader,
            writer,
            CODE,
            is_dialer=False,
            on_offer=accept_all,
            download_dir=download_dir,
            on_event=on_event,
        )
        await session.start()
        await session.wait_closed()

    asyncio.run(main())


async def test_sender_stops_at_the_first_failed_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The receiver dies mid-file: one error, no "socket.send() raised exception." flood."""
    src = tmp_path / "big.bin"
    make_file(src, 256 << 20)
    dl = tmp_path / "dl"
    dl.mkdir()
    caplog.set_level(logging.WARNING, logger="asyncio")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=_receiver_that_dies, args=(listener, dl), daemon=True)
        thread.start()
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        sender = Session(reader, writer, CODE, is_dialer=True)
        try:
            await sender.start()
            with pytest.raises(SessionError, match=r"connection lost|hung up"):
                await asyncio.wait_for(sender.send_paths([src]), 60)
        finally:
            await sender.close()
            writer.close()
        await asyncio.to_thread(thread.join, 10)
    floods = [r for r in caplog.records if "socket.send() raised exception" in r.getMessage()]
    assert floods == []


def test_stdin_reader_never_leaves_an_unawaited_coroutine() -> None:
    """Issue 13 item 14: a chunk read for a loop that closes must not leak ``Queue.put``."""
    read_fd, write_fd = os.pipe()
    loop = asyncio.new_event_loop()
    reader = StdinReader(read_fd, loop)
    try:
        reader.start()
        os.write(write_fd, b"first")  # read and handed to a loop that never runs it
        reader_thread = reader._thread
        deadline = time.monotonic() + 3
        while not loop._ready and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loop.close()
            os.write(write_fd, b"second")
            os.close(write_fd)
            write_fd = -1
            reader_thread.join(3)
            gc.collect()
        assert not [w for w in caught if "never awaited" in str(w.message)]
        assert not reader_thread.is_alive()
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        if not loop.is_closed():
            loop.close()


def test_the_app_sees_events_with_their_text_neutralised() -> None:
    from rdv_core.events import ChatReceived, ServerRejected
    from rdv_tui.cli.formatting import shown_event

    chat = shown_event(ChatReceived(1.0, "hi\nthere\x1b]0;t\x07\u202e"))
    assert isinstance(chat, ChatReceived)
    assert chat.text == "hi\nthere\\x1b]0;t\\x07\\u202e"
    rejected = shown_event(ServerRejected(0.5, 403, "Forbidden\x1b[2J", "body\r\n"))
    assert isinstance(rejected, ServerRejected)
    assert (rejected.status, rejected.reason, rejected.body) == (
        403,
        "Forbidden\\x1b[2J",
        "body\\x0d\\x0a",
    )
    plain = ChatReceived(1.0, "nothing to clean")
    assert shown_event(plain) is plain
