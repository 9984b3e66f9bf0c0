"""Shared helpers for the client tests against the real rdv server, on loopback.

:func:`client` makes a :class:`Client` restricted to the loopback address spaces,
:func:`pair` dials and accepts one token concurrently, :func:`exchange` proves bytes flow
both ways and :func:`of` picks events of one type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rdv_core.client._client import Client
from rdv_core.client._conn import Conn
from rdv_core.client._pickers import Picker
from rdv_core.events import Event
from rdv_core.wire import AddrSpace

LOOP = AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6


def client(
    events: list[Event] | None = None,
    spaces: AddrSpace = LOOP,
    picker: Picker | None = None,
    timeout: float | None = 10.0,
    **kwargs: Any,
) -> Client:
    return Client(
        spaces=spaces,
        picker=picker,
        timeout=timeout,
        on_event=events.append if events is not None else None,
        **kwargs,
    )


async def pair(
    url: str, dialer: Client, accepter: Client, token: str = "tok", accept_first: bool = False
) -> tuple[Conn, Conn]:
    """Dial and accept concurrently; the second arrives 50 ms after the first."""

    async def later(make: Callable[[], Any]) -> Conn:
        await asyncio.sleep(0.05)
        conn: Conn = await make()
        return conn

    if accept_first:
        a, d = await asyncio.gather(
            accepter.accept(url, token), later(lambda: dialer.dial(url, token))
        )
    else:
        d, a = await asyncio.gather(
            dialer.dial(url, token), later(lambda: accepter.accept(url, token))
        )
    return d, a


async def exchange(d: Conn, a: Conn) -> None:
    """Application bytes flow both ways, starting right after CONTINUE."""
    d.writer.write(b"hello from the dialer\n")
    a.writer.write(b"hello from the accepter\n")
    assert await asyncio.wait_for(a.reader.readline(), 5) == b"hello from the dialer\n"
    assert await asyncio.wait_for(d.reader.readline(), 5) == b"hello from the accepter\n"


def of(events: list[Event], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]
