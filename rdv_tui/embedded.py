"""The rdv server the app hosts for itself (``rdv`` with no arguments, ``--serve``, the demo)."""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from rdv_core.events import Event, EventCallback
from rdv_core.server import NativeFront, ProbeService, RdvServer, start_native
from rdv_core.wire import AddrSpace, self_addrs

RECENT_EVENTS = 200
"""Server events kept for the Server screen."""


@dataclass(slots=True)
class EmbeddedServer:
    """An :class:`RdvServer` with its native front, owned by the app.

    Attributes:
        server: The core.
        front: The listening front.
        host: The host it listens on, as configured.
        events: The most recent server events.
    """

    server: RdvServer
    front: NativeFront
    host: str
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))

    @classmethod
    async def start(
        cls, host: str = "127.0.0.1", port: int = 0, on_event: EventCallback | None = None
    ) -> EmbeddedServer:
        """Start listening on ``host:port``.

        Raises:
            OSError: when the address cannot be bound.
        """
        holder: list[EmbeddedServer] = []

        def record(event: Event) -> None:
            if holder:
                holder[0].events.append(event)
            if on_event is not None:
                on_event(event)

        server = RdvServer(lobby_timeout=600.0, idle_timeout=3600.0, on_event=record)
        # The doctor's routes (docs/PROTOCOL.md section 15.1); dial-back only on loopback,
        # where it can reach nobody but this machine.
        probes = ProbeService(dial_back=_is_loopback(host), observe=server.observe)
        try:
            front = await start_native(server, host or None, port, probes=probes)
        except OSError:
            await server.close()
            raise
        embedded = cls(server, front, host)
        holder.append(embedded)
        return embedded

    @property
    def url(self) -> str:
        """The URL this app's own client uses."""
        if self.is_wildcard:
            return f"http://127.0.0.1:{self.front.port}"
        return self.front.url

    @property
    def is_wildcard(self) -> bool:
        """True when listening on every interface."""
        return self.host in ("", "0.0.0.0", "::")

    @property
    def is_loopback_only(self) -> bool:
        """True when no other machine can reach it."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def serves(self, url: str) -> bool:
        """Whether ``url`` names this server (its own URL or one it shares)."""
        return url.rstrip("/") in (
            self.url.rstrip("/"),
            *(u.rstrip("/") for u in self.share_urls()),
        )

    def share_urls(self) -> list[str]:
        """URLs to give the other machine, best first."""
        if not self.is_wildcard:
            return [self.front.url]
        port = self.front.port
        addrs = self_addrs(AddrSpace.PUBLIC4 | AddrSpace.PRIVATE4, port)
        urls = [f"http://{a}" for a in addrs]
        return urls or [f"http://127.0.0.1:{port}"]

    async def close(self) -> None:
        """Stop listening, then close every lobby conn and pair."""
        await self.front.close()
        await self.server.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
