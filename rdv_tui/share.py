"""Which server the Connect form offers, and what to tell the other machine.

Kept out of the screen so that the Connect screen only shows it: the app hands the
screen a :class:`ServerChoice` (again when its embedded server comes up), the
screen asks it for the default URL, the default spaces and the share text.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdv_core.wire import AddrSpace, parse_server_url
from rdv_tui.embedded import EmbeddedServer
from rdv_tui.recent import Recent

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True, slots=True)
class ServerChoice:
    """The servers an attempt may use, best first.

    Attributes:
        configured: The server given with ``--server`` (or the config), if any.
        embedded: The server this app hosts, once it listens.
        recent: Remembered servers (the first one is the fallback).
    """

    configured: str | None
    embedded: EmbeddedServer | None
    recent: Recent

    def default_url(self) -> str:
        """The server URL the Connect form starts with."""
        if self.configured:
            return self.configured
        if self.embedded is not None:
            return self.embedded.url
        return self.recent.servers[0] if self.recent.servers else ""

    def default_spaces(self) -> AddrSpace:
        """Address spaces the form starts with: loopback too when the server is local."""
        url = self.default_url()
        try:
            host = parse_server_url(url).host if url else ""
        except ValueError:
            host = ""
        local = host in LOCAL_HOSTS
        return AddrSpace.DEFAULT | (AddrSpace.LOOPBACK if local else AddrSpace.INVALID)

    def share_text(self, code: str = "", role: str = "dial", race_only: bool = False) -> str:
        """What to tell the other machine, shown on top of the Connect screen.

        Args:
            code: The code in the form (shown in the command for the other machine).
            role: Our role; the other machine takes the opposite one.
            race_only: The code is a raw token: the other side runs ``rdv dial/accept``.
        """
        if self.configured:
            url = self.configured
            head = f"Server {url}: the other machine uses it with the same code."
        elif self.embedded is None:
            return "Starting the embedded server…"
        else:
            urls = self.embedded.share_urls()
            url = urls[0]
            head = f"This app hosts an rdv server at {', '.join(urls)}."
            if self.embedded.is_loopback_only:
                head += " Loopback only: for other machines, start with rdv tui --listen :8080"
        other = "accept" if role == "dial" else "dial"
        shown = code.strip() or "CODE"
        if race_only:
            command = f"rdv {other} --server {url} {shown}"
        elif other == "accept":
            command = f"rdv receive --server {url} {shown}   or   rdv tui --server {url} (accept)"
        else:
            command = f"rdv tui --server {url} (dial, same code)"
        return f"{head}\nOn the other machine: {command}"
