"""Shared helpers for the session tests: loopback stream pairs, sessions, proxies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from rdv_core.events import Event
from rdv_core.session import IncomingOffer, Session
from rdv_core.session._files import new_hasher

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def accept_all(offer: IncomingOffer) -> bool:
    return True


async def reject_all(offer: IncomingOffer) -> bool:
    return False


@contextlib.asynccontextmanager
async def stream_pair() -> AsyncIterator[tuple[Streams, Streams]]:
    """Two ends of one real loopback TCP connection."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Streams] = loop.create_future()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.set_result((r, w))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        one = await asyncio.open_connection("127.0.0.1", port)
        two = await accepted
        yield one, two
    finally:
        server.close()
        await server.wait_closed()
        for _, w in (one, two):
            w.close()


class Tampering(TypedDict, total=False):
    """What a :class:`Proxy` does to the dialer's bytes (nothing, if empty)."""

    flip_at: int
    cut_after: int


@dataclass
class Proxy:
    """A loopback TCP proxy that can flip a byte or cut the connection after N bytes."""

    target_port: int
    flip_at: int | None = None
    cut_after: int | None = None
    forwarded: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    cut: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _on_conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [w, uw]
        await asyncio.gather(self._pump(r, uw, forward=True), self._pump(ur, w, forward=False))

    async def _pump(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, *, forward: bool
    ) -> None:
        try:
            while data := await r.read(65536):
                passed = self._tamper(data) if forward else data
                if passed is None:
                    self.cut.set()
                    for writer in self._writers:
                        writer.transport.abort()
                    return
                w.write(passed)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    def _tamper(self, data: bytes) -> bytes | None:
        start = self.forwarded
        self.forwarded += len(data)
        if self.cut_after is not None and self.forwarded > self.cut_after:
            return None
        if self.flip_at is not None and start <= self.flip_at < self.forwarded:
            buf = bytearray(data)
            buf[self.flip_at - start] ^= 0x01
            return bytes(buf)
        return data

    async def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def proxied_pair(
    proxy_kwargs: Tampering,
) -> AsyncIterator[tuple[Streams, Streams, Proxy]]:
    """A stream pair whose first end (the dialer) talks through a tampering proxy."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Streams] = loop.create_future()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.set_result((r, w))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    proxy = Proxy(server.sockets[0].getsockname()[1], **proxy_kwargs)
    await proxy.start()
    try:
        one = await asyncio.open_connection("127.0.0.1", proxy.port)
        two = await accepted
        yield one, two, proxy
    finally:
        await proxy.close()
        server.close()
        await server.wait_closed()
        for _, w in (one, two):
            w.close()


@contextlib.asynccontextmanager
async def session_pair(
    ends: tuple[Streams, Streams],
    download_dir: Path,
    *,
    code_a: str = "7-tulip-orbit",
    code_b: str = "7-tulip-orbit",
    on_offer: Callable[[IncomingOffer], object] | None = accept_all,
    events_a: list[Event] | None = None,
    events_b: list[Event] | None = None,
    chunk_size: int = 64 * 1024,
    batched_events: bool = False,
) -> AsyncIterator[tuple[Session, Session]]:
    """Sender ``a`` (dialer) and receiver ``b`` (accepter), started."""
    (ra, wa), (rb, wb) = ends
    a = Session(
        ra,
        wa,
        code_a,
        is_dialer=True,
        on_event=None if events_a is None else events_a.append,
        chunk_size=chunk_size,
        batched_events=batched_events,
    )
    b = Session(
        rb,
        wb,
        code_b,
        is_dialer=False,
        on_event=None if events_b is None else events_b.append,
        on_offer=on_offer,  # type: ignore[arg-type]
        download_dir=download_dir,
        chunk_size=chunk_size,
        batched_events=batched_events,
    )
    await asyncio.gather(a.start(), b.start())
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def make_file(path: Path, size: int, seed: int = 0) -> str:
    """Write ``size`` pseudo-random bytes; return their digest (BLAKE3, hex)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB pattern
    rnd = os.urandom(1024)
    digest = new_hasher()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = (rnd + block)[: min(left, len(block) + len(rnd))]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """The file's digest as the session computes it (BLAKE3, hex).

    Read in pieces into one buffer: ``read_bytes`` of a 512 MiB file took 1.2-2.6 s here
    (fresh pages for the whole file on every call, on a machine that hands freed memory
    back to its host), 8 MiB at a time 0.2 s.
    """
    digest = new_hasher()
    buf = bytearray(8 << 20)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()
