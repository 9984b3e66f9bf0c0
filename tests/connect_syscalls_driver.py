"""One loopback p2p ``dial()`` in this process, marked for ``strace`` (issue 10's connect time).

A real native-front server on 127.0.0.1 and an accepter run in this process, as in
``bench/connect.py``. One attempt warms up; the next ``dial()`` is framed by two
``getppid()`` calls, which nothing else in the attempt makes, so that a trace of this
process shows the system calls inside ``dial()`` between them. The server's port is
printed first (``port N``), so that the trace's reader can tell the server's sockets
from the race's.

Used by ``tests/test_connect_syscalls.py``. Usage: ``strace -f -o FILE python
connect_syscalls_driver.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo
from rdv_core.client import Client, Conn
from rdv_core.events import Event, PeerJoined
from rdv_core.server import RdvServer, start_native
from rdv_core.wire import parse_spaces

SPACES = parse_spaces("loopback4,loopback6")


async def attempt(
    url: str, joined: dict[str, asyncio.Future[None]], token: str, mark: bool
) -> None:
    joined[token] = asyncio.get_running_loop().create_future()
    accepting = asyncio.create_task(Client(spaces=SPACES, timeout=10).accept(url, token))
    await asyncio.wait_for(joined[token], 5)  # the accepter waits in the lobby
    dialer = Client(spaces=SPACES, timeout=10)
    if mark:
        os.getppid()
    conn = await dialer.dial(url, token)
    if mark:
        os.getppid()
    accepted: Conn = await accepting
    if conn.is_relay or accepted.is_relay:
        raise SystemExit("the conn went through the relay: no direct path to trace")
    await conn.close()
    await accepted.close()


async def main() -> None:
    joined: dict[str, asyncio.Future[None]] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, PeerJoined) and not joined[event.token].done():
            joined[event.token].set_result(None)

    server = RdvServer(on_event=on_event)
    front = await start_native(server, host="127.0.0.1", port=0)
    print(f"port {front.port}", flush=True)
    try:
        await attempt(front.url, joined, "warm", mark=False)
        await attempt(front.url, joined, "traced", mark=True)
    finally:
        await server.close()
        await front.close()


if __name__ == "__main__":
    asyncio.run(main())
