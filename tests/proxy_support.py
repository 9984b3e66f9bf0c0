"""A real HTTP proxy for the tests: Debian's ``tinyproxy``, run in the foreground on loopback.

:func:`tinyproxy` starts one with a config written to a temporary folder (port chosen
free, listening on 127.0.0.1 only, optional Basic auth and ``ConnectPort`` allow list)
and stops it afterwards; :class:`Proxy` tells its URL and reads its log.

:func:`connect_proxy` is a small ``CONNECT`` proxy in the test's own loop, for what
tinyproxy cannot be told to do: a password with ``#``/``/`` in it (its config reads
``#`` as a comment) or an ``HTTP/1.0`` answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TINYPROXY = shutil.which("tinyproxy")


@dataclass
class Proxy:
    port: int
    log: Path
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert isinstance(port, int)
        return port


@contextlib.contextmanager
def tinyproxy(
    folder: Path,
    *,
    auth: tuple[str, str] | None = None,
    connect_ports: Sequence[int] = (),
    extra: Sequence[str] = (),
) -> Iterator[Proxy]:
    """A running tinyproxy; ``connect_ports`` empty means CONNECT to any port."""
    if TINYPROXY is None:
        pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
    port = _free_port()
    log = folder / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        "MaxClients 20",
        f'LogFile "{log}"',
        "LogLevel Connect",
        'ViaProxyName "tinyproxy"',
        "Allow 127.0.0.1",
        *(f"ConnectPort {p}" for p in connect_ports),
        *extra,
    ]
    if auth is not None:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    conf = folder / "tinyproxy.conf"
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [TINYPROXY, "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"tinyproxy did not start: {err.strip()}")
            time.sleep(0.02)
        yield Proxy(port, log, *(auth or (None, None)))
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()


@contextlib.asynccontextmanager
async def connect_proxy(
    *,
    auth: tuple[str, str] | None = None,
    version: str = "HTTP/1.1",
    challenges: Sequence[str] = ('Basic realm="proxy"',),
) -> AsyncIterator[int]:
    """A CONNECT proxy on 127.0.0.1 (its port): ``407`` unless Basic ``auth`` matches
    (one ``Proxy-Authenticate`` line per entry of ``challenges``), then ``version 200``
    and the tunnel, both ways, to the requested authority."""
    want = "Basic " + base64.b64encode(":".join(auth).encode()).decode() if auth else None
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        target = head[0].split(" ")[1]
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        if want is not None and fields.get("Proxy-Authorization") != want:
            lines = "".join(f"Proxy-Authenticate: {c}\r\n" for c in challenges)
            writer.write(f"{version} 407 Proxy Authentication Required\r\n{lines}\r\n".encode())
            writer.close()
            return
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writers.append(up_writer)
        writer.write(f"{version} 200 Connection established\r\n\r\n".encode())
        for job in (_pump(reader, up_writer), _pump(up_reader, writer)):
            task = asyncio.create_task(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for w in writers:
            w.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
