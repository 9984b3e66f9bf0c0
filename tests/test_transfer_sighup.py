"""SIGHUP on ``rdv send`` / ``rdv receive`` in the middle of a file (the terminal closed,
an ssh link dropped), as real processes against a real server on loopback.

Left to its default, SIGHUP ended the process at once: the peer read "session ended:
the peer hung up" (or "connection lost") and nothing said the other side had gone on
purpose. Now it ends as Ctrl-C and SIGTERM do: the peer is told, exit 129, and running
both again resumes. Under ``nohup`` the signal stays ignored and the send goes on.

A terminal that really closes also fails every later write to it (EIO): the progress
bar's last frame raised before the peer was told why (it read "closed by peer") and
the command ended in a traceback, exit 1. Lines nobody can read are now dropped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.session_support import file_digest
from tests.test_session_cli import rdv
from tests.test_transfer_probe_interrupt import SIZE, _finish, _interrupted, _last, _resumed
from tests.tui.test_cli_user import Terminal, no_user_config  # noqa: F401 (fixture)

AGAIN_S = "run rdv send again to resume (a new code is fine)"
AGAIN_R = "partial files are kept: run rdv send and rdv receive again to resume"
HUNG_UP = "the peer's terminal was closed (SIGHUP)"


async def test_sighup_on_the_sender(url: str, tmp_path: Path) -> None:
    err_s, err_r, dl = await _interrupted(url, tmp_path, "4701-fox-opal", "send", signal.SIGHUP)
    assert _last(err_s) == (f"rdv send: stopped (SIGHUP: the terminal was closed); {AGAIN_S}"), (
        err_s
    )
    assert f"session ended: {HUNG_UP}" in err_r, err_r
    await _resumed(url, tmp_path, dl, "4702-fox-opal")


async def test_sighup_on_the_receiver(url: str, tmp_path: Path) -> None:
    err_s, err_r, dl = await _interrupted(url, tmp_path, "4703-fox-opal", "receive", signal.SIGHUP)
    assert _last(err_r).startswith("rdv receive: stopped (SIGHUP: the terminal was closed); "), (
        err_r
    )
    assert HUNG_UP in _last(err_s), err_s
    await _resumed(url, tmp_path, dl, "4704-fox-opal")


async def test_under_nohup_sighup_is_ignored(url: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    fd = os.open(src, os.O_CREAT | os.O_WRONLY, 0o644)
    os.ftruncate(fd, SIZE)
    os.close(fd)
    dl = tmp_path / "dl"
    code = "4705-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")

    def start(*args: str) -> asyncio.Future[asyncio.subprocess.Process]:
        return asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                sys.executable, "-m", "rdv_tui", *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # nohup: SIGHUP ignored from the start, inherited across exec
                preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
            )
        )  # fmt: skip

    sender = await start("send", str(src), "--code", code, *common)
    receiver = await start("receive", code, "--dir", str(dl), "--yes", *common)
    partial = dl / "big.bin.rdvpart"
    async with asyncio.timeout(30):
        while not (partial.exists() and partial.stat().st_size > 0):  # noqa: ASYNC110 (another process writes it)
            await asyncio.sleep(0.005)
    sender.send_signal(signal.SIGHUP)
    (rc_s, err_s), (rc_r, err_r) = await asyncio.gather(_finish(sender), _finish(receiver))
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    assert file_digest(dl / "big.bin") == file_digest(src)


async def test_closing_the_receivers_terminal_tells_the_sender(url: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    fd = os.open(src, os.O_CREAT | os.O_WRONLY, 0o644)
    os.ftruncate(fd, SIZE)
    os.close(fd)
    dl = tmp_path / "dl"
    code = "4706-fox-opal"
    common = ["--server", url, "--spaces", "loopback4"]
    term = Terminal(["receive", code, "--dir", str(dl), "--yes", *common], env={"COLUMNS": "80"})
    loop = asyncio.get_running_loop()
    loop.add_reader(term.fd, term.read)
    sending = asyncio.ensure_future(rdv("send", str(src), "--code", code, *common))
    partial = dl / "big.bin.rdvpart"
    try:
        async with asyncio.timeout(30):
            while not (partial.exists() and partial.stat().st_size > 0):  # noqa: ASYNC110 (another process writes it)
                await asyncio.sleep(0.005)
        loop.remove_reader(term.fd)
        os.close(term.fd)  # the terminal window is closed: the kernel hangs up its pty
        term.fd = os.open(os.devnull, os.O_RDONLY)  # for term.close()
        rc_s, _, err_s = await sending
        assert await term.exit_status(30) == 129
    finally:
        sending.cancel()
        term.close()
    assert rc_s == 1, err_s
    assert f"session ended: {HUNG_UP}" in _last(err_s), err_s
    await _resumed(url, tmp_path, dl, "4707-fox-opal")
