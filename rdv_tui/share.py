"""Which server the Connect form offers, and what to tell the other machine.

Kept out of the screen so that the Connect screen only shows it: the app hands the
screen a :class:`ServerChoice` (again when its embedded server comes up), the
screen asks it for the default URL, the default spaces and the share text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rdv_core.wire import AddrSpace
from rdv_tui.cli.checks import is_local
from rdv_tui.embedded import EmbeddedServer
from rdv_tui.recent import Recent


@dataclass(frozen=True, slots=True)
class ServerChoice:
    """The servers an attempt may use, best first.

    Attributes:
        configured: The server given with ``--server`` (or the config), if any.
        embedded: The server this app hosts, once it listens.
        recent: Remembered servers (the first one is the fallback).
        listen_error: Why the embedded server could not listen, if it could not.
    """

    configured: str | None
    embedded: EmbeddedServer | None
    recent: Recent
    listen_error: str = ""

    def default_url(self) -> str:
        """The server URL the Connect form starts with."""
        if self.configured:
            return self.configured
        if self.embedded is not None:
            return self.embedded.url
        return self.recent.servers[0] if self.recent.servers else ""

    def is_embedded(self, url: str) -> bool:
        """Whether ``url`` is the app's own server."""
        return self.embedded is not None and self.embedded.serves(url)

    def settings_key(self, url: str) -> str:
        """Where the form settings for ``url`` are remembered (the embedded server's port
        changes every run, so it has one fixed key)."""
        return "embedded" if self.is_embedded(url) else url

    def default_spaces(self, url: str | None = None) -> AddrSpace:
        """Address spaces for a server: loopback only when it is on this machine.

        Two peers that meet on a loopback server are on this machine too: dialing this
        machine's public and private addresses would only race itself, and a peer with
        the default spaces would refuse our loopback conns (issue 16's trap).
        """
        url = self.default_url() if url is None else url
        if self.is_embedded(url) and self.embedded is not None:
            # Listening on every interface: the peer is on another machine.
            local = self.embedded.is_loopback_only
        else:
            local = is_local(url)
        return AddrSpace.LOOPBACK if local else AddrSpace.DEFAULT

    def share_text(
        self, code: str = "", role: str = "dial", race_only: bool = False, url: str | None = None
    ) -> str:
        """What to tell the other machine, shown on top of the Connect screen.

        Args:
            code: The code in the form (shown in the command for the other machine).
            role: Our role; the other machine takes the opposite one.
            race_only: The code is a raw token: the other side runs ``rdv dial/accept``.
            url: The server in the form (it follows the user's edits); None: the default.
        """
        url = (self.default_url() if url is None else url).strip()
        if self.embedded is None and not url and self.listen_error:
            # It said "Starting the embedded server…" for good once the error had gone.
            return (
                f"The app's own server could not start: {self.listen_error}.\n"
                "Type an rdv server's URL, or start again with rdv tui --listen HOST:PORT."
            )
        if self.embedded is None and not url:
            return "Starting the embedded server…"
        if self.is_embedded(url) and self.embedded is not None:
            urls = self.embedded.share_urls()
            url = url if url in urls else urls[0]
            head = f"This app hosts an rdv server at {', '.join(urls)}."
            if self.embedded.is_loopback_only:
                head += " Loopback only: for other machines, start with rdv tui --listen :8080"
        elif url:
            head = f"Server {url}: the other machine uses it with the same code."
        else:
            head = "Enter the rdv server's URL."
        # A link-local URL's zone (%eth0) is this machine's interface: on the other machine
        # it names nothing, or the wrong link (README "On an IPv6-only network").
        url, zoned = _zoneless(url)
        other = "accept" if role == "dial" else "dial"
        shown = code.strip() or "CODE"
        spaces = " --spaces loopback" if url and is_local(url) else ""
        if race_only:
            command = f"rdv {other} --server {url}{spaces} {shown}"
        elif other == "accept":
            command = (
                f"rdv receive --server {url}{spaces} {shown}   or   "
                f"rdv tui --server {url}{spaces} (accept)"
            )
        else:
            # rdv send dials too: it is what the other machine most likely runs to send
            # files to us (the banner named only the app).
            command = (
                f"rdv send --server {url}{spaces} --code {shown} FILE   or   "
                f"rdv tui --server {url}{spaces} (dial, same code)"
            )
        text = f"{head}\nOn the other machine: {command}"
        if zoned:
            text += f"\nLink-local: there, add its own interface, {zoned} (ip -6 addr names it)."
        return text


_ZONE = re.compile(r"\[([^\]%]*:[^\]%]*)%[^\]]*\]")
"""A bracketed IPv6 host with a zone, raw (``%eth0``) or escaped (``%25eth0``)."""


def _zoneless(url: str) -> tuple[str, str]:
    """``url`` without its IPv6 zone, and (when it had one) the URL as the other machine
    writes it, with ``%IFACE`` for its own interface; ``(url, "")`` without a zone."""
    if _ZONE.search(url) is None:
        return url, ""
    return _ZONE.sub(r"[\1]", url, count=1), _ZONE.sub(r"[\1%IFACE]", url, count=1)
