"""The receiver's question on a real terminal (a pty), with a real sender on loopback.

Lines that came while the question was open (the peer's chat, "switched to p2p: ..."
of fast start, warnings) were printed right after the prompt, where the answer is
typed: "Accept 1 file, 300 B into DIR? [y/N] switched to p2p: 127.0.0.1:33827".
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

from rdv_core.client._client import Client
from rdv_core.session import connect_session
from rdv_core.wire import AddrSpace

from tests.tui.test_cli_user import Terminal, no_user_config  # noqa: F401 (fixture)


async def test_lines_that_come_during_the_question_wait_for_the_answer(
    url: str, tmp_path: Path
) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"a" * 300)
    dl = tmp_path / "dl"
    code = "4211-otter-quill"
    term = Terminal(["receive", code, "--server", url, "--dir", str(dl), "--no-fast-start"])
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    sender = None
    try:
        client = Client(spaces=AddrSpace.LOOPBACK, timeout=30)
        sender = await connect_session(url, code, "send", client=client)
        sending = loop.create_task(sender.send_paths([src]))
        await term.wait_for(lambda: "[y/N]" in term.text())
        await sender.send_chat("are you there?")
        await asyncio.sleep(0.5)  # the chat line reaches the receiver meanwhile
        assert "are you there?" not in term.text()  # held: the question is open
        term.type("y\n")
        await sending
        await term.wait_for(lambda: "are you there?" in term.text())
        text = term.text()
        after = text.split("[y/N] ", 1)[1]
        assert re.match(r"y\r?\n", after), text  # the answer alone on the prompt's line
        assert text.index("are you there?") > text.index("[y/N]")
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        if sender is not None and sender.conn is not None:
            await sender.close()
            await sender.conn.close()
        term.close()


async def test_ctrl_c_at_the_question_is_said_once_on_the_sender(url: str, tmp_path: Path) -> None:
    """Ctrl-C while the receiver is asked ends the sender with "rdv send: session ended:
    session ended (the peer was interrupted (Ctrl-C)); ..." (the offer was never
    answered); once is enough."""
    from tests.test_session_cli import rdv

    src = tmp_path / "a.bin"
    src.write_bytes(b"a" * 300)
    code = "4212-otter-quill"
    common = ["--server", url, "--spaces", "loopback4"]
    term = Terminal(["receive", code, "--dir", str(tmp_path / "dl"), *common])
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    try:
        sending = loop.create_task(rdv("send", str(src), "--code", code, *common))
        await term.wait_for(lambda: "[y/N]" in term.text())
        term.type("\x03")  # Ctrl-C: the terminal sends SIGINT
        rc, _, err = await sending
        assert rc == 1, err
        last = err.strip().splitlines()[-1]
        assert last == (
            "rdv send: session ended (the peer was interrupted (Ctrl-C)); "
            "run rdv send again to resume (a new code is fine)"
        ), err
        assert await term.exit_status() == 130
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(term.fd)
        term.close()
