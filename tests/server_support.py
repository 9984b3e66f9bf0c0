"""Shared helpers for the server tests: raw-socket clients and servers on both fronts.

Everything is real: a server listening on 127.0.0.1 port 0 (native front, or mounted
under a prefix in an aiohttp app with an auth middleware), and clients that write the
exact request bytes and read what comes back until EOF or silence.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import resource
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rdv_core.events import Event
from rdv_core.server._aiohttp import mount
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.wire import escape_token

AUTH = ("Authorization", "Bearer test-secret")
EOF = "<EOF>"
#: The two ways to serve rdv: the native front and mounted in an aiohttp app.
FRONTS: tuple[str, ...] = ("native", "aiohttp")


class RawClient:
    """One TCP conn to the server, spoken to byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def local(self) -> str:
        host, port = self.writer.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_head(self, within: float = 5.0) -> bytes:
        """Bytes up to and including the blank line ending a response head."""
        async with asyncio.timeout(within):
            return await self.reader.readuntil(b"\r\n\r\n")

    async def read_exactly(self, n: int, within: float = 5.0) -> bytes:
        async with asyncio.timeout(within):
            return await self.reader.readexactly(n)

    async def read_until_eof(self, within: float = 5.0) -> bytes:
        """Everything until the server closes; fails if it does not within ``within`` seconds."""
        async with asyncio.timeout(within):
            return await self.reader.read()

    async def read_for(self, seconds: float) -> bytes:
        """What arrives within ``seconds``, with ``<EOF>`` appended if the conn closed."""
        out = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return out
            try:
                async with asyncio.timeout(left):
                    chunk = await self.reader.read(65536)
            except TimeoutError:
                return out
            except ConnectionError:
                return out + EOF.encode()
            if not chunk:
                return out + EOF.encode()
            out += chunk

    async def read_response(self, within: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """A plain response: status, headers (lower-case names) and its Content-Length body."""
        head = await self.read_head(within)
        status, headers = parse_head(head)
        length = int(headers.get("content-length", "0"))
        body = await self.read_exactly(length, within) if length else b""
        return status, headers, body

    def half_close(self) -> None:
        with suppress(OSError, RuntimeError):  # the server may have closed the conn already
            self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


def normalize_date(data: bytes) -> bytes:
    """Replace the Date header's value (it changes every second)."""
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: X\r\n", data)


def rdv_request(
    method: str,
    path: str,
    addrs: str | None = "",
    headers: Sequence[tuple[str, str]] = (),
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1", "Connection: upgrade"]
    if addrs is not None:
        lines.append(f"Rdv-Self-Addrs: {addrs}")
    lines.append("Upgrade: rdv/1")
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Env:
    """A running server and how to reach it."""

    kind: str
    server: RdvServer
    port: int
    prefix: str
    events: list[Event] = field(default_factory=list)
    extra_headers: tuple[tuple[str, str], ...] = ()
    app_runner: web.AppRunner | None = None

    async def connect(self) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return RawClient(reader, writer)

    def path(self, token: str) -> str:
        return f"{self.prefix}/{escape_token(token)}"

    async def request(
        self,
        method: str,
        token: str,
        addrs: str | None = "",
        headers: Sequence[tuple[str, str]] = (),
    ) -> RawClient:
        client = await self.connect()
        client.send(rdv_request(method, self.path(token), addrs, [*self.extra_headers, *headers]))
        return client

    async def raw(self, data: bytes) -> RawClient:
        client = await self.connect()
        client.send(data)
        return client

    def with_auth(self, data: bytes) -> bytes:
        """Insert this front's extra headers into raw request bytes."""
        if not self.extra_headers:
            return data
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers).encode()
        first_end = data.index(b"\r\n") + 2
        return data[:first_end] + extra + data[first_end:]

    def raw_path(self, data: bytes) -> bytes:
        """Rewrite a request line's ``/x`` target to live under this front's prefix."""
        if not self.prefix:
            return data
        method, rest = data.split(b" ", 1)
        return method + b" " + self.prefix.encode() + rest

    async def wait_lobby(self, n: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while self.server.stats().lobby != n:  # noqa: ASYNC110 (polls server state)
                await asyncio.sleep(0.005)

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 (polls server state)
                await asyncio.sleep(0.005)

    async def pair(
        self, token: str, dialer_addrs: str = "", accepter_addrs: str = ""
    ) -> tuple[RawClient, RawClient, bytes, bytes]:
        """ACCEPT then DIAL; both ``101`` heads read."""
        accepter = await self.request("ACCEPT", token, accepter_addrs)
        await self.wait_for(lambda: token in self.server._lobby)
        dialer = await self.request("DIAL", token, dialer_addrs)
        head_d = await dialer.read_head()
        head_a = await accepter.read_head()
        return dialer, accepter, head_d, head_a

    async def relayed_pair(self, token: str) -> tuple[RawClient, RawClient]:
        """A pair whose dialer picked the relay; A has read ``CONTINUE\\n``."""
        dialer, accepter, _, _ = await self.pair(token)
        dialer.send(b"CONTINUE\n")
        assert await accepter.read_exactly(9) == b"CONTINUE\n"
        return dialer, accepter


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The user's middleware: no valid Authorization header, no service."""
    if request.headers.get(AUTH[0]) != AUTH[1]:
        return web.Response(status=401, text="authorization required\n")
    response: web.StreamResponse = await handler(request)
    return response


async def user_hello(request: web.Request) -> web.Response:
    """One of the user's own routes, next to rdv."""
    return web.Response(text="hello from the app\n")


@asynccontextmanager
async def running_server(kind: str, **server_kwargs: Any) -> AsyncIterator[Env]:
    """A server on 127.0.0.1 port 0: ``native`` (no prefix) or ``aiohttp`` (``/rdv``)."""
    events: list[Event] = []
    server = RdvServer(on_event=events.append, **server_kwargs)
    if kind == "native":
        front = await start_native(server, "127.0.0.1", 0)
        try:
            yield Env(kind, server, front.port, "", events)
        finally:
            await server.close()
            await front.close()
        return
    app = web.Application(middlewares=[auth_middleware])
    app.router.add_get("/hello", user_hello)
    mount(app, server, "/rdv")
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Env(kind, server, port, "/rdv", events, extra_headers=(AUTH,), app_runner=runner)
    finally:
        await server.close()
        await runner.cleanup()


def open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


async def drain(client: RawClient, total: int) -> str:
    """Read exactly ``total`` bytes from ``client`` (an EOF before fails): their sha256."""
    digest = hashlib.sha256()
    got = 0
    while got < total:
        data = await client.reader.read(1 << 20)
        assert data, f"EOF after {got} of {total} bytes"
        digest.update(data)
        got += len(data)
    assert got == total
    return digest.hexdigest()


@dataclass
class ServeProcess:
    """A real ``rdv serve`` (its default caps) on 127.0.0.1; ``stderr`` is whole after exit."""

    port: int
    stderr: str


@asynccontextmanager
async def rdv_serve_with_fds(fds: int) -> AsyncIterator[ServeProcess]:
    """``rdv serve --listen 127.0.0.1:0`` limited to ``fds`` open files (what the caps
    that keep one client from taking every fd are tested against); terminated at the end."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rdv_tui", "serve", "--listen", "127.0.0.1:0",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=limit,
    )  # fmt: skip
    assert process.stderr is not None
    served: ServeProcess | None = None
    try:
        async with asyncio.timeout(20):
            first = (await process.stderr.readline()).decode()
        served = ServeProcess(int(first.rsplit(":", 1)[1]), first)
        yield served
    finally:
        with suppress(ProcessLookupError):
            process.terminate()
        rest = (await process.stderr.read()).decode()
        await process.wait()
        if served is not None:
            served.stderr += rest


async def a_pair_meets(port: int, token: str, accepter_from: str, dialer_from: str) -> None:
    """A pair from these loopback sources meets on ``port`` (``101`` to both) and bytes
    flow through the relay: what a cap must leave to everyone else."""

    async def request(method: str, source: str) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        client = RawClient(reader, writer)
        client.send(rdv_request(method, f"/{token}"))
        return client

    accepter = await request("ACCEPT", accepter_from)
    await asyncio.sleep(0.05)  # it waits first: the DIAL then matches it
    dialer = await request("DIAL", dialer_from)
    try:
        assert parse_head(await dialer.read_head(20.0))[0] == 101
        assert parse_head(await accepter.read_head(20.0))[0] == 101
        dialer.send(b"CONTINUE\nhello")
        assert await accepter.read_exactly(14, 20.0) == b"CONTINUE\nhello"
    finally:
        for client in (dialer, accepter):
            await client.close()
