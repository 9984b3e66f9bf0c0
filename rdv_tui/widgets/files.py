"""The files pane: send files, answer offers, watch every transfer's progress."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Static

from rdv_core import events as ev
from rdv_tui.cli.formatting import human_bytes
from rdv_tui.look_alike import folded, shown_apart
from rdv_tui.receive_folder import FOLDER_HINT, folder_trouble
from rdv_tui.send_list import Listing, not_sendable
from rdv_tui.widgets.dropped_paths import PathInput, paths_typed
from rdv_tui.widgets.file_aggregate import (
    LAST,
    RECENT,
    ROWS_UP_TO,
    Aggregate,
    AggregateLine,
    confirmed_cancel_all,
)
from rdv_tui.widgets.file_picker import FilePicker
from rdv_tui.widgets.offer_bar import NAME_SHOWN, OfferBar, tail
from rdv_tui.widgets.transfer_row import TransferRow, cancel_text

__all__ = [
    "LAST",
    "NAME_SHOWN",
    "RECENT",
    "ROWS_UP_TO",
    "Aggregate",
    "FilePicker",
    "FilesPane",
    "OfferBar",
    "TransferRow",
    "tail",
]


#: Rows kept for failed files in aggregate mode (the rest are counted).
FAILED_ROWS = 50
#: Seconds between two redraws of the aggregate lines (events come by the thousand).
REDRAW_S = 0.1


class FilesPane(Vertical):
    """Send bar, pending offer, transfers, and where received files go."""

    DEFAULT_CSS = """
    FilesPane { height: 1fr; }
    FilesPane #send-bar { height: 1; margin-bottom: 1; }
    FilesPane #send-bar Button { margin-left: 1; }
    FilesPane #send-path { width: 1fr; }
    FilesPane #transfers { height: 1fr; background: $surface; }
    FilesPane #download-dir { color: $text-muted; height: auto; padding: 0 1; }
    FilesPane .aggregate { height: auto; display: none; padding: 0 1; }
    FilesPane .aggregate.-shown { display: block; }
    FilesPane #listing { height: 1; display: none; padding: 0 1; }
    FilesPane #listing.-shown { display: block; }
    FilesPane #listing Static { width: 1fr; }
    """

    @dataclass
    class SendPaths(Message):
        """The user wants to send these paths."""

        paths: list[Path]

    @dataclass
    class CancelTransfer(Message):
        """The user wants one file of the open session stopped (the app asks the core)."""

        direction: str
        transfer_id: int

    @dataclass
    class CancelTransfers(Message):
        """The user confirmed ``x`` on an aggregate line: stop these files of the open
        session (each as one file's cancel, docs/PROTOCOL.md 12.14)."""

        direction: str
        transfer_ids: list[int]

    def __init__(self, download_dir: Path | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.download_dir = download_dir
        self.open = False
        """Whether a session is up to send to (the Session screen sets it)."""
        self.session = 0
        """Which session of this app run the transfer events belong to: transfer ids
        restart at 1 in every session, so rows are keyed by session and id (issue 16)."""
        self.aggregates = {"in": Aggregate(), "out": Aggregate()}
        self._names: dict[tuple[str, int], str] = {}
        #: Sizes offered, by (direction, id), for the row of a file that fails later.
        self._sizes: dict[tuple[str, int], int] = {}
        self._failed_rows = 0
        #: The session whose download folder trouble was said (once per session).
        self._hinted = -1
        #: The first row's name of each non-ASCII name's NFC form (look-alikes).
        self._folded: dict[tuple[int, str, str], tuple[int, str]] = {}
        #: A send being listed (its count is shown, Stop stops it), or None.
        self.listing: Listing | None = None

    def new_session(self) -> None:
        """Events from now on belong to a new session (earlier rows stay as they are).

        The counts start again too: a second session's small send was summed up with
        the first's files (and shown as an aggregate line), and its failure rows were
        capped by the first's.
        """
        self.session += 1
        self._names.clear()
        self._sizes.clear()
        self._folded.clear()
        self.aggregates = {"in": Aggregate(), "out": Aggregate()}
        self._failed_rows = 0
        self.query_one(OfferBar).withdraw()

    def session_ended(self, reason: str) -> None:
        """The session is over: whatever has no verdict yet never will get one.

        The core has already failed the files that were moving (with their own
        reason); files only offered, and offers not answered, are left: their rows
        said ``offered`` and the offer bar kept its Accept / Reject for good.
        """
        self.query_one(OfferBar).withdraw()
        prefix = f"t-{self.session}-"
        for row in self.query(TransferRow):
            settled = row.has_class("-done") or row.has_class("-failed")
            if row.id is not None and row.id.startswith(prefix) and not settled:
                row.failed(f"session ended: {reason}")
        for aggregate in self.aggregates.values():
            if aggregate.files_done < aggregate.files_total:
                aggregate.ended = f"session ended: {reason}"
                aggregate.dirty = True

    def unfinished(self) -> int:
        """Files of this session offered (either way) that have no verdict yet, while the
        session is up: what quitting now would cut off."""
        return sum(
            aggregate.files_total - aggregate.files_done
            for aggregate in self.aggregates.values()
            if not aggregate.ended
        )

    def compose(self) -> ComposeResult:
        with Horizontal(id="send-bar"):
            yield PathInput(placeholder="path to send", id="send-path", compact=True)
            yield Button(
                "Browse", id="browse", tooltip="pick with a file browser (ctrl+o)", compact=True
            )
            yield Button("Send", variant="primary", id="send", compact=True)
        with Horizontal(id="listing"):
            yield Static("", id="listing-text", markup=False)
            yield Button("Stop", id="stop-listing", tooltip="stop listing (esc)", compact=True)
        yield OfferBar(id="offer-bar")
        yield AggregateLine("out", id="aggregate-out", classes="aggregate")
        yield AggregateLine("in", id="aggregate-in", classes="aggregate")
        yield VerticalScroll(id="transfers")
        where = str(self.download_dir) if self.download_dir else "(not receiving files)"
        yield Static(f"received files: {where}", id="download-dir", markup=False)

    # ----- sending

    @on(Input.Submitted, "#send-path")
    @on(Button.Pressed, "#send")
    def _send(self, event: Message) -> None:
        event.stop()
        field = self.query_one("#send-path", Input)
        text = field.value.strip()
        if not text:
            self.app.notify("type a path, or Browse", severity="warning")
            return
        typed = paths_typed(text)
        if typed.missing is not None:
            self.app.notify(  # the end of it: a paste of a whole paragraph filled the screen
                f"no such file or folder: {tail(str(typed.missing), 120)}",
                severity="error",
                markup=False,
            )
            return  # keep the text so the user can fix it
        why = not_sendable(typed.paths)
        if why is not None:  # said, and the text stays (it was cleared, then refused)
            self.app.notify(tail(why, 300), severity="error", title="Send", markup=False)
            return
        if not self.open:  # cleared, then refused: the typed path was lost
            self.app.notify(
                "no session to send to: the path stays here (F2 to connect)",
                severity="warning",
                title="Send",
            )
            return
        field.value = ""
        self.post_message(self.SendPaths(typed.paths))

    @on(Button.Pressed, "#browse")
    def action_browse(self) -> None:
        """Open the file picker."""

        def picked(path: Path | None) -> None:
            if path is not None:
                self.post_message(self.SendPaths([path]))

        self.app.push_screen(FilePicker(Path.cwd()), picked)

    def on_mount(self) -> None:
        """Redraw the aggregate lines on a timer, not per event."""
        self.set_interval(REDRAW_S, self._redraw)

    def on_resize(self) -> None:
        for aggregate in self.aggregates.values():  # names are cut to the width
            aggregate.dirty = True

    def shows_rows(self, direction: str) -> bool:
        """Whether ``direction`` shows one row per file (a send small enough)."""
        return self.aggregates[direction].files_total <= ROWS_UP_TO

    def show_listing(self, listing: Listing | None) -> None:
        """Show a send's listing (its count, a Stop button) until it ends (``None``)."""
        self.listing = listing
        self.query_one("#listing").set_class(listing is not None, "-shown")
        self._redraw()

    @on(Button.Pressed, "#stop-listing")
    def stop_listing(self) -> None:
        """Stop the listing under way: nothing of that send is sent."""
        if self.listing is not None:
            self.listing.stop.set()

    def _redraw(self) -> None:
        if self.listing is not None:
            count = self.listing.count
            stopping = " (stopping…)" if self.listing.stop.is_set() else " (esc stops)"
            text = f"listing… {count:,} files{stopping}"
            self.query_one("#listing-text", Static).update(text)
        for direction, arrow in (("out", "↑"), ("in", "↓")):
            aggregate = self.aggregates[direction]
            if not aggregate.dirty:
                continue
            aggregate.dirty = False
            line = self.query_one(f"#aggregate-{direction}", Static)
            line.update(aggregate.text(arrow, line.content_size.width or None))
            line.set_class(aggregate.files_total > ROWS_UP_TO, "-shown")
            if aggregate.files_total > ROWS_UP_TO:
                self._show_current(direction, aggregate)

    def _show_current(self, direction: str, aggregate: Aggregate) -> None:
        """Aggregate mode: the moving file keeps a row (focus it, ``x`` cancels it), at the
        top of the list; the previous one's goes unless it failed (a failure row)."""
        transfers = self.query_one("#transfers", VerticalScroll)
        current = aggregate.moving_id()
        wanted = None if current is None else self.row_id(direction, current)
        for old in transfers.query(f".-current-{direction}").results(TransferRow):
            if old.id != wanted:
                old.remove_class(f"-current-{direction}")
                if not old.has_class("-failed"):
                    old.remove()
        if wanted is None or current is None:
            return
        row = self.row(direction, current)
        if row is None:
            key = (direction, current)
            name = self._apart(direction, current, self._names.get(key, ""))
            row = TransferRow(direction, name, self._sizes.get(key, 0), id=wanted)
            row.add_class(f"-current-{direction}")
            transfers.mount(row, before=0 if transfers.children else None)
        progress = aggregate.current_progress
        if progress is not None and progress.transfer_id == current:
            row.progress(progress.done, progress.rate, progress.eta_s)

    def _aggregate(self, event: ev.Event) -> bool:
        """Count ``event`` in its direction's aggregate; True if it needs a row update."""
        direction: str | None = getattr(event, "direction", None)
        transfer_id: int | None = getattr(event, "transfer_id", None)
        if direction not in self.aggregates or transfer_id is None:
            return False
        aggregate = self.aggregates[direction]
        aggregate.dirty = True
        match event:
            case ev.FileOffered():
                aggregate.offer(transfer_id, event.size)
                self._names[(direction, transfer_id)] = event.name
                self._sizes[(direction, transfer_id)] = event.size
                if aggregate.files_total == ROWS_UP_TO + 1:
                    self._drop_unsettled_rows(direction)
            case ev.FileAccepted():
                aggregate.moving[transfer_id] = event.offset
            case ev.FileProgress():
                if transfer_id in aggregate.moving:
                    aggregate.moving[transfer_id] = event.done
                aggregate.current = self._names.get((direction, transfer_id), "")
                aggregate.current_id, aggregate.current_progress = transfer_id, event
            case ev.FileCompleted():
                aggregate.settle(transfer_id, event.size)
                aggregate.files_ok += 1
                aggregate.recent.append(event.name)
                aggregate.current = event.name
                self._names.pop((direction, transfer_id), None)
                self._sizes.pop((direction, transfer_id), None)
            case ev.FileFailed() if event.cancelled:
                aggregate.settle(transfer_id, 0)
                aggregate.files_cancelled += 1
            case ev.FileFailed() | ev.FileRejected():
                aggregate.settle(transfer_id, 0)
                aggregate.files_failed += 1
        return True

    def feed_offered(self, event: ev.FilesOffered) -> None:
        """A batch offered: past :data:`ROWS_UP_TO` files counted in one step, with no
        rows mounted and dropped (before, each of 20,000 files was an event of its own,
        and the first 20 got rows removed at the 21st); else file by file."""
        aggregate, direction = self.aggregates[event.direction], event.direction
        if aggregate.files_total + len(event.ids) <= ROWS_UP_TO:
            for each in event.each():
                self.feed(each)
            return
        if aggregate.files_total <= ROWS_UP_TO:
            self._drop_unsettled_rows(direction)  # earlier files' rows: aggregate mode now
        for id_, name, size in zip(event.ids, event.names, event.sizes, strict=True):
            aggregate.offer(id_, size)
            self._names[(direction, id_)] = name
            self._sizes[(direction, id_)] = size

    def _drop_unsettled_rows(self, direction: str) -> None:
        """Switching to aggregate mode: rows of files still to come would never move."""
        # Only this session's rows: earlier sessions' rows are settled or never will be.
        prefix = f"t-{self.session}-{direction}-"
        for row in list(self.query_one("#transfers", VerticalScroll).query(TransferRow)):
            if (
                row.id is not None
                and row.id.startswith(prefix)
                and not row.has_class("-done")
                and not row.has_class("-failed")
            ):
                row.remove()

    # ----- transfer events

    def row_id(self, direction: str, transfer_id: int, session: int | None = None) -> str:
        """The widget id of a transfer's row (in the current session by default)."""
        number = self.session if session is None else session
        return f"t-{number}-{direction}-{transfer_id}"

    def row(
        self, direction: str, transfer_id: int, session: int | None = None
    ) -> TransferRow | None:
        """The row of a transfer (of the current session by default), if shown."""
        found = self.query(f"#{self.row_id(direction, transfer_id, session)}")
        return found.first(TransferRow) if found else None

    def feed(self, event: ev.Event) -> None:
        """Update the transfers from one session event.

        Cheap per event: a direction past :data:`ROWS_UP_TO` files updates counters only
        (redrawn by a timer) and mounts rows for its failures alone.
        """
        if not self._aggregate(event):
            return
        if isinstance(event, ev.FileFailed | ev.FileRejected) and event.direction == "in":
            self._folder_trouble(event.reason)
        direction_of: str = getattr(event, "direction", "")
        if not self.shows_rows(direction_of):
            self._feed_failure(event)
            return
        if isinstance(event, ev.FileOffered):
            if self.row(event.direction, event.transfer_id) is None:
                row = TransferRow(
                    event.direction,
                    self._apart(event.direction, event.transfer_id, event.name),
                    event.size,
                    id=self.row_id(event.direction, event.transfer_id),
                )
                self.query_one("#transfers", VerticalScroll).mount(row)
            return
        direction: str | None = getattr(event, "direction", None)
        transfer_id: int | None = getattr(event, "transfer_id", None)
        if direction is None or transfer_id is None:
            return
        found = self.row(direction, transfer_id)
        if found is None:
            return
        match event:
            case ev.FileAccepted():
                offset = event.offset
                found.set_status(f"resume @{human_bytes(offset)}" if offset else "accepted")
            case ev.FileRejected():
                found.failed(
                    event.reason or "rejected"
                )  # "rejected: declined by ..." said it twice
            case ev.FileProgress():
                found.progress(event.done, event.rate, event.eta_s)
            case ev.FileCompleted():
                found.completed(event.digest)
            case ev.FileFailed():
                found.failed(cancel_text(event), cancelled=event.cancelled)
            case ev.TransferResumed():
                found.set_status(f"resumed @{human_bytes(event.offset)}")

    def _folder_trouble(self, reason: str) -> None:
        """A file that cannot be stored in the download folder (read-only, full, not
        ours): say what to do, once per session. The reason alone was right and left
        the user with no way out but guessing that another folder was the answer."""
        if self._hinted == self.session or not folder_trouble(reason):
            return
        self._hinted = self.session
        where = self.download_dir or "the download folder"
        self.app.notify(
            f"{tail(reason, 200)}\n{FOLDER_HINT}",
            title=f"Cannot store files in {tail(str(where), 60)}",
            severity="error",
            timeout=20,
            markup=False,
        )
        line = self.query_one("#download-dir", Static)
        line.update(f"received files: {where} (cannot store files here: {FOLDER_HINT})")

    def _apart(self, direction: str, transfer_id: int, name: str) -> str:
        """``name`` as its row shows it: a look-alike of an earlier row's name (NFC and
        NFD ``café.txt``) is shown apart, and so is the earlier one (look_alike.py)."""
        if name.isascii():
            return name
        key = (self.session, direction, folded(name))
        earlier = self._folded.setdefault(key, (transfer_id, name))
        if earlier[1] == name:
            return name
        first = self.row(direction, earlier[0])
        if first is not None:
            first.rename(shown_apart(earlier[1]))
        return shown_apart(name)

    def _feed_failure(self, event: ev.Event) -> None:
        """Aggregate mode: a failed file gets a row of its own (up to FAILED_ROWS)."""
        if not isinstance(event, ev.FileFailed | ev.FileRejected):
            return
        key = (event.direction, event.transfer_id)
        offered_name, offered_size = self._names.pop(key, ""), self._sizes.pop(key, 0)
        found = self.row(event.direction, event.transfer_id)
        cancelled = isinstance(event, ev.FileFailed) and event.cancelled
        if found is None:
            # A cancel is counted on the line; its row is the moving file's, if shown (a
            # cancel of the whole rest filled the list with 50 "cancelled" rows).
            if cancelled or self._failed_rows >= FAILED_ROWS:
                return
            self._failed_rows += 1
            # A rejection names no file: its offer did (the row said "↓  (0 B)").
            name = event.name if isinstance(event, ev.FileFailed) else offered_name
            # Keyed like every row (session too): ids restart at 1 in each session.
            found = TransferRow(
                event.direction,
                name,
                offered_size,
                id=self.row_id(event.direction, event.transfer_id),
            )
            self.query_one("#transfers", VerticalScroll).mount(found)
        found.failed(cancel_text(event), cancelled=cancelled)

    @on(TransferRow.Cancel)
    def _cancel(self, message: TransferRow.Cancel) -> None:
        """A row's ``x``: stop its file, if it is of the open session and still moving."""
        message.stop()
        row = message.row
        _, number, direction, transfer_id = (row.id or "t-0-x-0").split("-")
        if row.settled:
            self.app.notify("this file has its verdict already", title="Cancel")
        elif int(number) != self.session or not self.open:
            self.app.notify("this file's session is over", title="Cancel")
        elif row.status_text == "offered" and direction == "in":
            # The offer is decided first (docs/PROTOCOL.md 12.14): the bar asks.
            self.app.notify(
                "answer the offer first: reject it, or accept it and then cancel this file",
                title="Cancel",
            )
        else:
            self.post_message(self.CancelTransfer(direction, int(transfer_id)))

    @on(AggregateLine.CancelAll)
    def _cancel_all(self, message: AggregateLine.CancelAll) -> None:
        """``x`` on an aggregate line: said first, done when pressed again soon after."""
        message.stop()
        aggregate = self.aggregates[message.direction]
        ids = confirmed_cancel_all(self.app, message.direction, aggregate, open=self.open)
        if ids:
            self.post_message(self.CancelTransfers(message.direction, ids))
