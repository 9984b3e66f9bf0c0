"""Widgets of the Server screen: counters, the pairs table, the event log."""

from __future__ import annotations

from collections import deque
from typing import Final

from rich.table import Table
from rich.text import Text
from textual import events
from textual.content import Content
from textual.widgets import DataTable, RichLog

from rdv_core import events as ev
from rdv_core.server import PairStats, ServerStats
from rdv_core.wire import printable
from rdv_tui.cli.formatting import human_bytes
from rdv_tui.widgets.figures import FigureLines
from rdv_tui.widgets.log_line import KeptFigures, beside


class ServerCounters(FigureLines):
    """Lobby, open pairs and totals, on one or two lines (more when narrow: between figures)."""

    DEFAULT_CSS = """
    ServerCounters { height: auto; padding: 0 1; background: $boost; }
    """

    def show(self, stats: ServerStats, url: str) -> None:
        """Redraw from a stats snapshot."""
        rejects = sum(stats.rejects_by_status.values())

        def figure(label: str, value: str, style: str = "") -> Content:
            return Content.assemble((f"{label} ", "$text-muted"), (value, style))

        first = [
            figure("serving", url, "bold"),
            figure("lobby", str(stats.lobby), "bold $accent"),
            figure("open pairs", str(len(stats.pairs)), "bold"),
        ]
        second = [
            figure("pairs", str(stats.pairs_total)),
            figure("p2p", str(stats.p2p_total), "bold $text-success"),
            figure("relay", str(stats.relay_total), "bold $text-warning"),
            figure("relayed", human_bytes(stats.bytes_relayed)),
            figure("rejected", str(rejects), "$text-error" if rejects else ""),
            figure("lobby timeouts", str(stats.lobby_timeouts_total)),
        ]
        if stats.closed:
            second.append(Content.styled("CLOSED", "bold $text-error"))
        self.show_figures([first, second])


PAIR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "pair"),
    ("token", "token"),
    ("path", "path"),
    ("d2a", "D→A"),
    ("a2d", "A→D"),
    ("age", "age"),
    ("dialer", "dialer"),
    ("accepter", "accepter"),
)
"""The short columns first: at 80 columns the addresses scroll off, not the age (issue 16)."""


class PairsTable(DataTable[Text]):
    """Open pairs, updated by pair id; closed pairs are removed.

    Cells are :class:`~rich.text.Text`, never markup: a client picks its token, and a
    ``str`` cell would be parsed as Rich markup (``[/x]`` raised a ``MarkupError`` that
    ended the app); tokens are cut and escaped as in the log (:func:`_token`).
    """

    DEFAULT_CSS = """
    PairsTable { height: auto; max-height: 12; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for key, label in PAIR_COLUMNS:
            self.add_column(label, key=key)

    def show(self, pairs: list[PairStats], now: float) -> None:
        """Add new pairs, update the changed cells of known ones, drop closed ones."""
        seen: set[str] = set()
        for pair in pairs:
            key = str(pair.pair_id)
            seen.add(key)
            path = "waiting" if pair.relayed is None else ("relay" if pair.relayed else "p2p")
            cells = tuple(
                Text(value, no_wrap=True)
                for value in (
                    key,
                    _token(pair.token),
                    path,
                    human_bytes(pair.bytes_dialer_to_accepter),
                    human_bytes(pair.bytes_accepter_to_dialer),
                    f"{max(0.0, now - pair.started_t):.0f} s",
                    pair.dialer,
                    pair.accepter,
                )
            )
            if key not in self.rows:
                self.add_row(*cells, key=key)
                continue
            for (column, _), cell in zip(PAIR_COLUMNS, cells, strict=True):
                if self.get_cell(key, column).plain != cell.plain:
                    self.update_cell(key, column, cell, update_width=True)
        for row_key in [k for k in self.rows if k.value not in seen]:
            self.remove_row(row_key)


#: Tokens and reasons longer than these are shown cut, with their length: any client picks
#: its token (and a rejection's reason may quote the request), and the log wraps, so a
#: request of a few KiB would otherwise fill screens of it.
TOKEN_SHOWN: Final = 48
REASON_SHOWN: Final = 160


def _cut(text: str, limit: int) -> str:
    """``text`` from a client, escaped (``printable``), then cut to ``limit``."""
    text = printable(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def _token(token: str) -> str:
    """A client's token as shown: escaped and cut (:func:`_cut`)."""
    return _cut(token, TOKEN_SHOWN)


def describe_server_event(event: ev.Event) -> Text:
    """What a server event says, for the log (tokens shown: the server sees only
    nameplates); the log puts its time before it."""
    t = Text()
    match event:
        case ev.PeerJoined():
            t.append(f"{event.method:<6} joined ", style="bold")
            t.append(f"{_token(event.token)} from {event.remote}")
            if event.observed_addr and event.observed_addr != event.remote:
                t.append(f" (observed {event.observed_addr})")
        case ev.PairMatched():
            t.append(f"pair {event.pair_id} matched ", style="bold")
            t.append(f"{_token(event.token)}: {event.dialer} ⇄ {event.accepter}")
            t.append(f", lobby {event.lobby_s * 1000:.0f} ms", style="dim")
        case ev.P2PReported():
            t.append(f"pair {event.pair_id} went p2p ", style="bold green")
            t.append(f"via {event.addr}")
        case ev.RelayStarted():
            t.append(f"pair {event.pair_id} relaying", style="bold yellow")
        case ev.RelayEnded():
            t.append(f"pair {event.pair_id} ended ", style="bold")
            t.append(
                f"({event.reason}) after {event.duration_s:.1f} s, "
                f"D→A {human_bytes(event.dialer_to_accepter)}, "
                f"A→D {human_bytes(event.accepter_to_dialer)}"
            )
        case ev.LobbyTimedOut():
            t.append("lobby timeout ", style="bold red")
            t.append(f"{event.method} {_token(event.token)} from {event.remote}")
        case ev.Replaced():
            t.append("replaced ", style="bold red")
            t.append(f"{event.method} {_token(event.token)} from {event.remote}")
        case ev.LobbyLeft():
            t.append("left lobby ", style="bold")
            t.append(
                f"{event.method} {_token(event.token)} from {event.remote}: "
                f"{_cut(event.reason, REASON_SHOWN)}"
            )
        case ev.Rejected():
            t.append(f"rejected {event.status} ", style="bold red")
            t.append(f"{event.method} from {event.remote}: {_cut(event.reason, REASON_SHOWN)}")
        case ev.ServerClosed():
            t.append("server closed", style="bold red")
        case _:
            t.append(event.type)
    return t


LOG_LINES = 500
"""Events the log keeps (and rewraps when the width changes)."""


class ServerLog(RichLog):
    """Recent server events, newest at the bottom."""

    DEFAULT_CSS = """
    ServerLog { height: 1fr; border-top: solid $primary-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        # min_width: RichLog's default (78) wrapped at 78 columns whatever the width:
        # at 40 the log scrolled sideways and cut every line.
        super().__init__(
            id=id, max_lines=LOG_LINES, wrap=True, markup=False, auto_scroll=True, min_width=10
        )
        self._events: deque[ev.Event] = deque(maxlen=LOG_LINES)
        self._wrapped_at = 0

    def add(self, event: ev.Event) -> None:
        """Append one event: its time, then what it says, wrapped under itself.

        A pair's line is about 96 columns: at 80 a log that does not wrap cuts it and
        scrolls sideways, and a plain wrap would start its second line under the times.
        """
        self._events.append(event)
        self.write(self._line(event), expand=True)

    @staticmethod
    def _line(event: ev.Event) -> Table:
        stamp = Text(f"{event.t:8.3f}s ", style="dim")
        return beside(stamp, KeptFigures(describe_server_event(event)))

    def on_resize(self, event: events.Resize) -> None:
        """RichLog wraps a line once, when written: wrap everything again at the new width
        (lines written at 120 columns were cut at 70, the log scrolled sideways)."""
        super().on_resize(event)
        width, before = event.size.width, self._wrapped_at
        self._wrapped_at = width
        if not before or width == before or not self._events:
            return
        self.clear()
        for logged in self._events:
            self.write(self._line(logged), expand=True)
