"""One transfer's row in the files pane: name, bar, status; a focused row can be cancelled."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import ProgressBar, Static

from rdv_core import events as ev
from rdv_core.session import CANCELLED_BY_PEER
from rdv_tui.cli.formatting import format_eta, human_bytes, human_rate
from rdv_tui.widgets.offer_bar import tail

#: Below this many cells for the name, the size goes and the name takes its room.
NAME_MIN = 8


class _FileName(Static):
    """``↑ name (size)`` in the width it gets: a name that does not fit keeps its end (the
    file), the size stays whole, and in too little room the size goes first.

    Cut by Textual's ellipsis at 40 columns the row read ``↑ notes.md (18.0 K…✔ verified``:
    the size cut inside its unit, and nothing between it and the status.
    """

    def __init__(self, arrow: str, name: str, size: int) -> None:
        self._parts = (arrow, name, f" ({human_bytes(size)})")
        super().__init__(self._fitted(None), classes="name", markup=False)

    def rename(self, name: str) -> None:
        """Show ``name`` instead (a look-alike shown apart: rdv_tui/look_alike.py)."""
        arrow, _, size = self._parts
        self._parts = (arrow, name, size)
        self.update(self._fitted(self.content_size.width or None))

    def _fitted(self, width: int | None) -> str:
        arrow, name, size = self._parts
        whole = f"{arrow} {name}{size}"
        if width is None or len(whole) <= width:
            return whole
        room = width - len(arrow) - 1 - len(size)
        if room < NAME_MIN:
            room, size = width - len(arrow) - 1, ""
        return f"{arrow} {tail(name, max(room, 1))}{size}"

    def on_resize(self) -> None:
        self.update(self._fitted(self.content_size.width or None))


class TransferRow(Horizontal, can_focus=True):
    """One file in one direction: name, bar, and rate / ETA / verdict.

    Focused (click it, or tab to it), ``x`` or ``delete`` cancels this one file while the
    others go on (docs/PROTOCOL.md 12.14): before, only ending the session stopped one.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x,delete", "cancel", "Cancel file", tooltip="stop this file, keep the others"),
    ]

    class Cancel(Message):
        """The user wants this row's file stopped (the files pane checks and asks)."""

        def __init__(self, row: TransferRow) -> None:
            super().__init__()
            self.row = row

    DEFAULT_CSS = """
    TransferRow {
        height: auto; layout: grid; grid-size: 2; grid-columns: 1fr auto; grid-rows: 1;
    }
    TransferRow .name { width: 1fr; text-overflow: ellipsis; text-wrap: nowrap; }
    TransferRow ProgressBar { column-span: 2; width: 1fr; }
    TransferRow ProgressBar Bar { width: 1fr; }
    TransferRow .status { width: auto; color: $text-muted; padding-left: 1; }
    TransferRow.-done .status { color: $text-success; text-style: bold; }
    TransferRow.-failed .status { color: $text-error; text-style: bold; }
    TransferRow .reason {
        column-span: 2; height: auto; padding-left: 2; color: $text-error; display: none;
    }
    TransferRow.-failed .reason { display: block; }
    TransferRow.-failed { grid-rows: 1 1 auto; }
    TransferRow:focus { background: $boost; }
    TransferRow:focus .name { text-style: bold; }
    TransferRow.-cancelled .status { color: $text-warning; text-style: bold; }
    TransferRow.-cancelled .reason { color: $text-warning; }
    """

    def __init__(self, direction: str, name: str, size: int, *, id: str) -> None:
        super().__init__(id=id)
        arrow = "↑" if direction == "out" else "↓"
        self.file_size = size
        self.status_text = "offered"
        # Children exist from the start, so that events arriving before this row is
        # composed (they come in bursts) update them safely.
        self._w_name = _FileName(arrow, name, size)
        self._w_bar = ProgressBar(total=max(self.file_size, 1), show_eta=False)
        self._w_status = Static(self.status_text, classes="status", markup=False)
        # A failure's reason is long (a partial file kept, an errno): on the status's
        # line it took the whole width and the file's name was cut to nothing.
        self._w_reason = Static("", classes="reason", markup=False)

    def compose(self) -> ComposeResult:
        yield self._w_name
        yield self._w_status
        yield self._w_bar
        yield self._w_reason

    def rename(self, name: str) -> None:
        """Show the file as ``name`` (its look-alike is in the list too)."""
        self._w_name.rename(name)

    def set_status(self, text: str) -> None:
        """Replace the status text."""
        self.status_text = text
        self._w_status.update(text)

    def progress(self, done: int, rate: float, eta: float | None) -> None:
        """Move the bar and show rate and ETA."""
        self._w_bar.update(progress=done)
        self.set_status(f"{human_rate(rate)} {format_eta(eta)}")

    def completed(self, digest: str) -> None:
        """Full bar and the verified mark."""
        self._w_bar.update(progress=max(self.file_size, 1))
        self.add_class("-done")
        self.set_status(f"✔ verified {digest[:8]}")

    @property
    def settled(self) -> bool:
        """Whether the file has its verdict (verified, failed, cancelled)."""
        return self.has_class("-done") or self.has_class("-failed")

    def failed(self, reason: str, *, cancelled: bool = False) -> None:
        """Mark as failed: ``✗ failed`` after the name, the reason whole below the bar;
        ``cancelled``: ``✗ cancelled``, not an error (a user stopped it)."""
        self.add_class("-failed")
        self.set_class(cancelled, "-cancelled")
        self.status_text = f"✗ {reason}"
        self._w_status.update("✗ cancelled" if cancelled else "✗ failed")
        self._w_reason.update(reason)

    def action_cancel(self) -> None:
        """Ask for this file to be stopped."""
        self.post_message(self.Cancel(self))


def cancel_text(event: ev.FileFailed | ev.FileRejected) -> str:
    """A failure's reason; a cancel says by whom (the core's reason of our own cancel
    is ``cancelled``, the peer's ``cancelled by the peer``)."""
    if not isinstance(event, ev.FileFailed) or not event.cancelled:
        return event.reason
    if event.reason.startswith(CANCELLED_BY_PEER):
        return event.reason
    return "cancelled by you" + event.reason.removeprefix("cancelled")
