"""``rdv doctor`` against servers that are not rdv servers: real TCP listeners on loopback
that misbehave, and the doctor as a real process.

A server whose header line never ends (64 KiB and more without a newline) ended the
doctor on a traceback (``LimitOverrunError`` is no ``OSError``, and escaped every
handler); one that closed the conn at once was "0 bytes read on a total of undefined
expected bytes", asyncio's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Awaitable, Callable

import pytest

from tests.proc_support import kill_left
from tests.test_readme_examples import REPO

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _endless_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1000)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
    with contextlib.suppress(OSError):
        for _ in range(200):  # 200 KiB, bounded: the doctor gives up long before
            writer.write(b"a" * 1024)
            await writer.drain()
    writer.close()


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1000)
    writer.close()


async def _run_doctor(url: str, *, cwd: str | None = None, within: float = 120) -> tuple[int, str]:
    """``rdv doctor URL`` as a real process: its exit code and its output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rdv_tui", "doctor", url, cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), within)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _doctor(handler: Handler) -> tuple[int, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await _run_doctor(f"http://127.0.0.1:{port}")
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("handler", "said"),
    [
        (_endless_header, "bad response: a header line over 64 KiB"),
        (_close_at_once, "the server closed the conn before answering"),
    ],
    ids=["endless-header", "close-at-once"],
)
async def test_a_server_that_is_no_rdv_server_is_said_so(handler: Handler, said: str) -> None:
    code, out = await _doctor(handler)
    assert "Traceback" not in out, out
    assert code == 1, out  # no server answered (README: rdv doctor's exit codes)
    assert "TCP reached the server but it answered nothing" in out, out
    assert said in " ".join(out.split()), out


def test_every_takes_a_number_of_seconds_only() -> None:
    """``--every inf`` ran once, then ended on a traceback (``time.sleep`` overflowed)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    for bad in ("inf", "nan", "0.5"):
        done = subprocess.run(
            [sys.executable, "-m", "rdv_tui", "doctor", "--every", bad, "http://127.0.0.1:9"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"--every: must be at least 1 second: '{bad}'" in done.stderr, done.stderr


async def test_a_plain_web_server_is_no_rdv_server() -> None:
    """``rdv doctor`` against ``python -m http.server``: it called the web server "an rdv/1
    server without them (doctor routes), e.g. the Go one" and exited 0 ("measured"), having
    measured nothing. An rdv/1 server without the routes answers ``426 invalid rdv upgrade``
    (docs/PROTOCOL.md section 3, row 7); this one answered its own 404 page."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        code, out = await _run_doctor(url, cwd="/tmp", within=60)
    finally:
        web.shutdown()
        web.server_close()
        thread.join(5)
    text = " ".join(out.split())
    assert code == 1, text  # no rdv server answered (README: the exit codes)
    assert "e.g. the Go one" not in text, text
    assert (
        "TCP reached the server, but nothing was measured: it is not an rdv server (it answered "
        "404 to GET /.rdv/probes" in text
    ), text


def test_a_host_name_with_an_empty_part_is_bad_usage() -> None:
    """``rdv doctor http://example..com`` (a typo) ended on a ``UnicodeError`` traceback from
    getaddrinfo's IDNA step (the resolver is never asked: no traffic leaves the machine)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "rdv_tui", "doctor", "http://example..com:8080"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "rdv doctor: rdv server URL has a bad host name 'example..com' (an empty part between "
        "dots, or a part over 63 characters): 'http://example..com:8080'\n"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_a_name_that_does_not_resolve_is_named() -> None:
    """It read "the server has no IPv4 address ([Errno -3] Temporary failure in name
    resolution)", as if a server had been found. Run in a network namespace of its own
    (``unshare -n``: no route, so the resolver's query never leaves; it ends with the process)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "rdv_tui", "doctor", "http://nothing.invalid:8080"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    said = " ".join(done.stdout.split())
    assert done.returncode == 1, said + done.stderr
    assert "has no IPv4 address" not in said and "[Errno" not in said, said
    assert "No rdv server could be reached (nothing.invalid does not resolve: " in said, said
