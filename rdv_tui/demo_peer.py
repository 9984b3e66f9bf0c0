"""The demo's second peer: accepts in-process, echoes chat, receives every file.

It is a real rdv peer (a :class:`~rdv_core.client.Client` and a
:class:`~rdv_core.session.Session` on loopback), so ``rdv demo`` exercises exactly
the code a second machine would run.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from rdv_core import events as ev
from rdv_core.client import Client
from rdv_core.doctor import Report, run_doctor
from rdv_core.session import IncomingOffer, Session, parse_code
from rdv_core.wire import AddrSpace

log = logging.getLogger("rdv.tui")

GREETING = "hi, I am the demo peer: everything you type comes back to you"

SAMPLE_NAME = "rdv-demo-sample.bin"
SAMPLE_SIZE = 3 * 1024 * 1024


def write_sample(directory: Path, size: int = SAMPLE_SIZE) -> Path:
    """A sample file of random bytes to send (verified by digest at the other end)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SAMPLE_NAME
    path.write_bytes(os.urandom(size))
    return path


@dataclass(slots=True)
class DemoPeer:
    """The accepting peer of the demo.

    Attributes:
        server_url: The (embedded) server.
        code: The session code both sides use.
        download_dir: Where it stores the files it receives.
        spaces: Address spaces (loopback: the demo stays on this machine).
        events: Every session event it saw (tests read them).
    """

    server_url: str
    code: str
    download_dir: Path
    spaces: AddrSpace = AddrSpace.LOOPBACK
    events: list[ev.Event] = field(default_factory=list)
    session: Session | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> str:
        """Accept, run the session until it closes; return why it closed."""
        code = parse_code(self.code)
        await asyncio.to_thread(self.download_dir.mkdir, parents=True, exist_ok=True)
        # The demo's server is the app's own, on loopback: never through a proxy.
        client = Client(spaces=self.spaces, timeout=60.0, trust_env=False)
        conn = await client.accept(self.server_url, code.token)
        try:
            session = Session(
                conn.reader,
                conn.writer,
                code,
                is_dialer=False,
                on_event=self._on_event,
                on_offer=self._accept_all,
                download_dir=self.download_dir,
                is_relay=conn.is_relay,
                peer_addr=str(conn.remote_addr),
            )
            await session.start()
            self.session = session
            # The demo's peer shares its side of the race too (docs/PROTOCOL.md section 15.5).
            session.diagnosis.send(await _doctor(self.server_url), conn.events)
            await session.send_chat(GREETING)
            return await session.wait_closed()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await conn.close()

    def _on_event(self, event: ev.Event) -> None:
        self.events.append(event)
        if isinstance(event, ev.ChatReceived) and self.session is not None:
            task = asyncio.get_running_loop().create_task(self._echo(event.text))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _echo(self, text: str) -> None:
        session = self.session
        if session is not None and not session.closed:
            await session.send_chat(f"echo: {text}")

    async def _accept_all(self, offer: IncomingOffer) -> bool:
        return True


async def _doctor(url: str) -> Report | None:
    try:
        return await run_doctor([url], trust_env=False)  # the app's own server, on loopback
    except (OSError, ValueError):
        return None
