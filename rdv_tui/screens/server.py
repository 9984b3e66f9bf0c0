"""The Server screen: the embedded server's lobby, pairs, counters and recent events."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from rdv_core.events import Event
from rdv_core.server import ServerStats
from rdv_tui.embedded import EmbeddedServer
from rdv_tui.widgets.fitted_footer import FittedFooter
from rdv_tui.widgets.server_view import PairsTable, ServerCounters, ServerLog

REFRESH_S = 0.5
"""Byte counters change without events: the pairs table is polled this often."""


class ServerScreen(Screen[None]):
    """What the embedded server is doing.

    Attributes:
        embedded: The server the app hosts (None: it hosts none, or not yet).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "app.save_svg", "Save SVG"),
    ]

    SHORT_LABELS: ClassVar[dict[str, str]] = {"app.save_svg": "SVG"}
    """Where the footer is short (rdv_tui/widgets/fitted_footer.py)."""

    _ready = False
    """Set in on_mount (``is_mounted`` is still False there)."""

    def __init__(self, embedded: EmbeddedServer | None = None) -> None:
        super().__init__()
        self.embedded = embedded
        self.listen_error = ""
        """Why the app's own server could not listen, if it tried and could not."""

    def compose(self) -> ComposeResult:
        yield ServerCounters(id="counters")
        yield Static("open pairs", classes="title")
        yield PairsTable(id="pairs")
        yield Static("recent events", classes="title")
        yield ServerLog(id="server-log")
        yield FittedFooter()  # every key it shows is whole, at any width

    def on_mount(self) -> None:
        self.sub_title = "server"
        self._ready = True
        embedded = self.embedded
        log = self.query_one(ServerLog)
        if embedded is None:
            # With --listen on a port in use, "started with --server URL or --replay" was
            # not true: say what happened.
            why = self.listen_error or "it was started with --server URL or --replay"
            # Plain text: the OS error reads "[Errno 98] …", which markup would eat.
            self.query_one(ServerCounters).update(Text(f"This app hosts no server ({why})."))
            return
        for event in embedded.events:
            log.add(event)
        self.refresh_stats()
        self.set_interval(REFRESH_S, self.refresh_stats)

    def refresh_stats(self) -> None:
        """Poll the embedded server's counters and pairs."""
        embedded = self.embedded
        if embedded is None:
            return
        self.show_stats(
            embedded.server.stats(), ", ".join(embedded.share_urls()), embedded.server.clock()
        )

    def show_stats(self, stats: ServerStats, url: str, now: float) -> None:
        """Show one stats snapshot (``now`` on the server's clock, for pair ages)."""
        self.query_one(ServerCounters).show(stats, url)
        self.query_one(PairsTable).show(stats.pairs, now)

    def add_event(self, event: Event) -> None:
        """Log one server event and refresh the counters."""
        if not self._ready:
            return  # on_mount replays the embedded server's recent events
        self.query_one(ServerLog).add(event)
        self.refresh_stats()
