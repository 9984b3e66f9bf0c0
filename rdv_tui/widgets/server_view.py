"""Widgets of the Server screen: counters, the pairs table, the event log."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Final

from rich.cells import cell_len
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
"""The short columns first: the addresses are the widest, and the last to keep a place."""

#: The columns every width shows (the token cut to fit), then the others in the order they
#: keep their place where the table would not fit whole: at 80 columns the accepter goes
#: (every address is also in the log's ``matched`` line), at 60 the dialer too, at 40 the
#: bytes. The table scrolled sideways at 60 and 80 columns, its addresses out of sight.
PAIR_KEPT: tuple[str, ...] = ("id", "token", "path")
PAIR_OPTIONAL: tuple[str, ...] = ("d2a", "a2d", "age", "dialer", "accepter")
#: Cells a token keeps where the table does not fit whole (``rdv-session-512`` is 15): a
#: client picks its token, and one of 48 characters left no other column a place.
TOKEN_CELLS: Final = 24


def plan_pair_columns(
    widths: Mapping[str, int], room: int, pad: int
) -> tuple[tuple[str, ...], int | None]:
    """The columns that fit ``room`` cells (in :data:`PAIR_COLUMNS` order) and the cells
    the token may take (None: all it needs), for columns ``widths`` wide, ``pad`` cells
    of padding each.

    Each optional column keeps its place if it fits beside those before it (a narrow one
    may stay where a wider one before it went)."""
    every = tuple(key for key, _ in PAIR_COLUMNS)
    if room <= 0 or sum(widths[key] + pad for key in every) <= room:
        return every, None
    token = min(widths["token"], TOKEN_CELLS)
    used = sum(widths[key] + pad for key in PAIR_KEPT if key != "token") + token + pad
    if used > room:  # not even the kept columns: the token takes what is left
        return PAIR_KEPT, max(1, token - (used - room))
    kept = set(PAIR_KEPT)
    for key in PAIR_OPTIONAL:
        if used + widths[key] + pad <= room:
            kept.add(key)
            used += widths[key] + pad
    return tuple(key for key in every if key in kept), token


class PairsTable(DataTable[Text]):
    """Open pairs, updated by pair id; closed pairs are removed.

    Cells are :class:`~rich.text.Text`, never markup: a client picks its token, and a
    ``str`` cell would be parsed as Rich markup (``[/x]`` raised a ``MarkupError`` that
    ended the app); tokens are cut and escaped as in the log (:func:`_token`).

    The table fits its width (:func:`plan_pair_columns`): columns that do not fit go, and
    the token loses its middle. It is rebuilt only when what fits changes (a resize, a
    longer cell), as the race table is (rdv_tui/widgets/race_table.py).
    """

    DEFAULT_CSS = """
    PairsTable { height: auto; max-height: 12; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._texts: dict[str, tuple[str, ...]] = {}
        """Every open pair's cells, whole, by pair id (in PAIR_COLUMNS order)."""
        self._layout: tuple[tuple[str, ...], int | None] = (
            tuple(key for key, _ in PAIR_COLUMNS),
            None,
        )

    def on_mount(self) -> None:
        self._add_columns()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _add_columns(self) -> None:
        for key, label in PAIR_COLUMNS:
            if key in self._layout[0]:
                self.add_column(label, key=key)

    def _cells(self, texts: tuple[str, ...]) -> dict[str, Text]:
        """The cells of the columns shown, by key, the token cut to its room."""
        shown, token_room = self._layout
        cells = dict(zip((key for key, _ in PAIR_COLUMNS), texts, strict=True))
        token = cells["token"]
        if token_room is not None and cell_len(token) > token_room:
            keep = token_room - 1  # both ends stay (``rdv-sess…ion-512``), the middle goes
            token = token[: keep - keep // 2] + "…" + token[len(token) - keep // 2 :]
            cells["token"] = token
        return {key: Text(cells[key], no_wrap=True) for key in shown}

    def _fit(self) -> None:
        """Rebuild the table when the columns that fit differ from those shown."""
        widths = {key: cell_len(label) for key, label in PAIR_COLUMNS}
        for texts in self._texts.values():
            for (key, _), text in zip(PAIR_COLUMNS, texts, strict=True):
                widths[key] = max(widths[key], cell_len(text))
        room = self.scrollable_content_region.width
        layout = plan_pair_columns(widths, room, 2 * self.cell_padding) if room > 0 else None
        if layout is None or layout == self._layout:
            return
        self._layout = layout
        cursor = self.cursor_row
        self.clear(columns=True)
        self._add_columns()
        for key, texts in self._texts.items():
            self.add_row(*self._cells(texts).values(), key=key)
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    def show(self, pairs: list[PairStats], now: float) -> None:
        """Add new pairs, update the changed cells of known ones, drop closed ones."""
        seen: set[str] = set()
        for pair in pairs:
            key = str(pair.pair_id)
            seen.add(key)
            path = "waiting" if pair.relayed is None else ("relay" if pair.relayed else "p2p")
            texts = (
                key,
                _token(pair.token),
                path,
                human_bytes(pair.bytes_dialer_to_accepter),
                human_bytes(pair.bytes_accepter_to_dialer),
                f"{max(0.0, now - pair.started_t):.0f} s",
                pair.dialer,
                pair.accepter,
            )
            old = self._texts.get(key)
            self._texts[key] = texts
            if old is None:
                self.add_row(*self._cells(texts).values(), key=key)
                continue
            for column, cell in self._cells(texts).items():
                if self.get_cell(key, column).plain != cell.plain:
                    self.update_cell(key, column, cell, update_width=True)
        for row_key in [k for k in self.rows if k.value not in seen]:
            self.remove_row(row_key)
            self._texts.pop(str(row_key.value), None)
        self._fit()  # a longer cell may change what fits


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
            # The token once the lobby took it (a used code's 410, a hook's refusal), as
            # `rdv serve -v` logs it; "" before the request named one: no empty word.
            token = f" {_token(event.token)}" if event.token else ""
            t.append(
                f"{event.method}{token} from {event.remote}: {_cut(event.reason, REASON_SHOWN)}"
            )
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
