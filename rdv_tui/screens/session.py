"""The Session screen: chat and files side by side, with the link strip on top."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen

from rdv_core import events as ev
from rdv_core.client import Conn, tcp_rtt
from rdv_core.session import IncomingOffer
from rdv_tui.cli.formatting import plural
from rdv_tui.screens.session_backlog import Backlog
from rdv_tui.send_list import Listing
from rdv_tui.widgets.chat import ChatPane, Clock, local_time
from rdv_tui.widgets.files import FilesPane, OfferBar
from rdv_tui.widgets.fitted_footer import FittedFooter
from rdv_tui.widgets.link_strip import LinkStrip

SAMPLE_S = 0.5
"""How often the link strip samples throughput and RTT."""


class SessionScreen(Screen[None]):
    """Chat and files over the established session.

    Attributes:
        bytes_in: File bytes received so far (all transfers).
        bytes_out: File bytes sent so far (all transfers).
        conn: The session's connection, while it is open (the link strip samples its RTT).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+o", "browse", "Send file"),
        # Not in the footer: with them, it ran past 80 columns while an offer waited
        # and hid the screen keys; the offer bar's buttons name them instead.
        Binding("ctrl+t", "accept_offer", "Accept offer", show=False),
        Binding("ctrl+n", "reject_offer", "Reject offer", show=False),
        # Not ctrl+w: the focused Input takes it (delete a word), and so the key did
        # nothing in the chat line (issue 16). No Textual widget here binds ctrl+l.
        Binding("ctrl+l", "close_session", "End session"),
        # Only while a send is being listed (check_action): ``~`` lists for minutes.
        Binding("escape", "stop_listing", "Stop listing"),
    ]

    SHORT_LABELS: ClassVar[dict[str, str]] = {"browse": "Send", "close_session": "End"}
    """Where the footer is short (rdv_tui/widgets/fitted_footer.py)."""

    @dataclass
    class SendChat(Message):
        """The user typed a chat line."""

        text: str

    @dataclass
    class SendPaths(Message):
        """The user picked files or folders to send."""

        paths: list[Path]

    class EndSession(Message):
        """The user wants the session closed."""

    def __init__(
        self,
        *,
        clock: Clock = local_time,
        download_dir: Path | None = None,
        sample_s: float | None = SAMPLE_S,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._sample_s = sample_s
        self.download_dir = download_dir
        self.bytes_in = 0
        self.bytes_out = 0
        self.conn: Conn | None = None
        self._done: dict[tuple[int, str, int], int] = {}
        self._last_sample = (time.monotonic(), 0, 0)
        self._backlog = Backlog()
        self._ready = False  # set in on_mount (is_mounted is still False there)
        self._ready_event = asyncio.Event()
        self._early_info: list[str] = []  # show_info before the screen was composed

    def compose(self) -> ComposeResult:
        yield LinkStrip(id="link")
        with Horizontal(id="panes"):
            chat = ChatPane(clock=self._clock, id="chat")
            chat.border_title = "chat"
            yield chat
            files = FilesPane(self.download_dir, id="files")
            files.border_title = "files"
            yield files
        yield FittedFooter()  # every key it shows is whole, at any width

    def on_mount(self) -> None:
        self.sub_title = "session"
        self._ready = True
        self._ready_event.set()
        for event in self._backlog.drain():
            self.feed(event)
        for text in self._early_info:
            self.show_info(text)
        self._early_info.clear()
        if self._sample_s is not None:
            self.set_interval(self._sample_s, self.sample_link)
        self.query_one("#chat-input").focus()

    @property
    def _gone(self) -> bool:
        """Taken apart: the app quits (``App.is_running`` turns false first). A file
        moving then still sends its last events, and the missing ``LinkStrip`` ended the
        app with a ``NoMatches`` traceback (as on the Race screen: screens/race.py)."""
        return self._ready and not (self.is_attached and self.app.is_running)

    # ----- events in

    def feed(self, event: ev.Event) -> None:
        """Show one session event (held, bounded, until the screen is mounted).

        The session reports a batch's files in one event (``batched_events``): an offer of
        thousands is counted in one step (:meth:`FilesPane.feed_offered`); accepts and
        verdicts are shown file by file, as before.
        """
        if isinstance(event, ev.FilesAccepted | ev.FilesCompleted) or (
            isinstance(event, ev.FilesOffered) and not self._ready
        ):
            for each in event.each():
                self.feed(each)
            return
        if not self._ready:
            self._backlog.add(event)
            return
        if self._gone:
            return
        if isinstance(event, ev.FilesOffered):
            self.query_one(FilesPane).feed_offered(event)
            return
        link = self.query_one(LinkStrip)
        match event:
            case ev.SessionEstablished():
                self.query_one(FilesPane).new_session()
                self.query_one(FilesPane).open = True
                self.query_one("#chat-input").focus()  # a new session starts in the chat line
                link.path = "relay" if event.is_relay else "p2p"
                link.peer_addr, link.closed = event.peer_addr, ""
                link.redraw()
                path = "through the server's relay" if event.is_relay else "direct (p2p)"
                chat = self.query_one(ChatPane)
                chat.open = True
                chat.add("info", f"encrypted session up, {path}")
            case ev.Upgraded():  # fast start moved the stream off the relay
                switched = f"RELAY → P2P after {event.after_s * 1000:.0f} ms"
                link.path, link.peer_addr = "p2p", f"{event.addr}  {switched}"
                link.redraw()
                self.query_one(ChatPane).add("info", f"moved to a direct path: {event.addr}")
            case ev.UpgradeFailed() if link.path == "p2p" and not event.final:
                link.path = "relay"  # the direct path died before it was proven
                link.redraw()
            case ev.SessionClosed():
                link.closed = event.reason
                link.redraw()
                self.query_one(FilesPane).session_ended(event.reason)
                self.query_one(FilesPane).open = False
                chat = self.query_one(ChatPane)
                chat.open = False
                chat.add("info", f"session ended: {event.reason}")
            case ev.ChatSent():
                self.query_one(ChatPane).add("you", event.text)
            case ev.ChatReceived():
                self.query_one(ChatPane).add("peer", event.text)
            case ev.FileAccepted() | ev.TransferResumed() if event.offset:
                # A resume starts at its offset: those bytes moved in an earlier session,
                # not now (the link strip showed them as a rate spike of GB/s).
                key = (self.query_one(FilesPane).session, event.direction, event.transfer_id)
                self._done[key] = max(self._done.get(key, 0), event.offset)
                self.query_one(FilesPane).feed(event)
            case ev.FileProgress():
                self._count(event.direction, event.transfer_id, event.done)
                self.query_one(FilesPane).feed(event)
            case ev.FileCompleted():
                self._count(event.direction, event.transfer_id, event.size)
                files = self.query_one(FilesPane)
                files.feed(event)
                if not files.shows_rows(event.direction):
                    return  # a big send: the files pane sums it up, not one line per file
                verb = "sent" if event.direction == "out" else "received"
                where = f" to {event.path}" if event.path else ""
                self.query_one(ChatPane).add("info", f"{verb} {event.name}{where}, verified")
            case _:
                self.query_one(FilesPane).feed(event)

    def _count(self, direction: str, transfer_id: int, done: int) -> None:
        key = (self.query_one(FilesPane).session, direction, transfer_id)
        before = self._done.get(key, 0)
        self._done[key] = max(before, done)
        delta = max(0, done - before)
        if direction == "in":
            self.bytes_in += delta
        else:
            self.bytes_out += delta

    def sample_link(self) -> None:
        """Sample throughput and RTT for the link strip."""
        if self._gone:
            return
        now = time.monotonic()
        then, bytes_in, bytes_out = self._last_sample
        elapsed = max(now - then, 1e-3)
        self._last_sample = (now, self.bytes_in, self.bytes_out)
        link = self.query_one(LinkStrip)
        conn = self.conn
        if conn is not None and not link.closed:
            info = conn.writer.get_extra_info
            rtt = tcp_rtt(info("path_socket") or info("socket"))  # path_socket: fast start
            link.rtt_ms = None if rtt is None else rtt * 1000.0
        link.sample((self.bytes_in - bytes_in) / elapsed, (self.bytes_out - bytes_out) / elapsed)

    async def ask_offer(self, offer: IncomingOffer) -> bool:
        """Show an incoming offer and wait for the user's answer."""
        await self._ready_event.wait()  # the screen may still be composing after a switch
        if self._gone:
            return False  # the app quits: nobody is there to say yes
        self.query_one(ChatPane).add(
            "info",
            f"peer offers {plural(len(offer.files), 'file')}: accept or reject in the files pane",
        )
        return await self.query_one(OfferBar).ask(offer)

    def show_info(self, text: str) -> None:
        """A line of context in the chat (not sent to the peer), held until the screen is
        composed: the demo's hint came while the user was on another screen and its
        ``NoMatches`` crashed the app."""
        if not self._ready:
            self._early_info.append(text)
            return
        if not self._gone:
            self.query_one(ChatPane).add("info", text)

    def files_unfinished(self) -> int:
        """Files of the open session still offered or moving (0 before the screen shows)."""
        return 0 if not self._ready or self._gone else self.query_one(FilesPane).unfinished()

    # ----- user actions

    @on(ChatPane.Send)
    def _chat(self, message: ChatPane.Send) -> None:
        message.stop()
        self.post_message(self.SendChat(message.text))

    @on(FilesPane.SendPaths)
    def _send(self, message: FilesPane.SendPaths) -> None:
        message.stop()
        self.post_message(self.SendPaths(message.paths))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer keys only work while an offer waits for an answer."""
        if action in ("accept_offer", "reject_offer"):
            return self._ready and self.query_one(OfferBar).pending > 0
        if action == "stop_listing":
            return self._ready and self.query_one(FilesPane).listing is not None
        return True

    def listing(self, listing: Listing | None) -> None:
        """A send's listing started (its count is shown) or ended (``None``)."""
        if self._ready and not self._gone:
            self.query_one(FilesPane).show_listing(listing)
            self.refresh_bindings()

    def action_stop_listing(self) -> None:
        """Stop the send being listed (nothing of it is sent)."""
        self.query_one(FilesPane).stop_listing()

    def action_browse(self) -> None:
        """Pick a file to send."""
        self.query_one(FilesPane).action_browse()

    def action_accept_offer(self) -> None:
        """Accept the pending offer."""
        self._answer(True)

    def action_reject_offer(self) -> None:
        """Reject the pending offer."""
        self._answer(False)

    def _answer(self, accept: bool) -> None:
        bar = self.query_one(OfferBar)
        if not bar.pending:  # the palette's entries run without an offer: say so
            self.notify("no offer is waiting for an answer", title="Offer")
            return
        bar.answer(accept)

    def action_close_session(self) -> None:
        """End the session cleanly."""
        self.post_message(self.EndSession())

    def palette_commands(self) -> Iterable[SystemCommand]:
        """This screen's command palette entries."""
        yield SystemCommand(
            "Send a file", "Pick a file or folder to send (ctrl+o)", self.action_browse
        )
        yield SystemCommand(
            "Accept offer", "Accept the peer's pending offer (ctrl+t)", self.action_accept_offer
        )
        yield SystemCommand(
            "Reject offer", "Reject the peer's pending offer (ctrl+n)", self.action_reject_offer
        )
        yield SystemCommand(
            "End session", "Close the session cleanly (ctrl+l)", self.action_close_session
        )
