"""The files pane: send files, answer offers, watch every transfer's progress."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, ProgressBar, Static

from rdv_core import events as ev
from rdv_core.session import IncomingOffer
from rdv_tui.cli.formatting import format_eta, human_bytes, human_rate


class TransferRow(Horizontal):
    """One file in one direction: name, bar, and rate / ETA / verdict."""

    DEFAULT_CSS = """
    TransferRow { height: 2; layout: grid; grid-size: 2 2; grid-columns: 1fr auto; }
    TransferRow .name { width: 1fr; text-overflow: ellipsis; text-wrap: nowrap; }
    TransferRow ProgressBar { column-span: 2; width: 1fr; }
    TransferRow ProgressBar Bar { width: 1fr; }
    TransferRow .status { width: auto; color: $text-muted; }
    TransferRow.-done .status { color: $text-success; text-style: bold; }
    TransferRow.-failed .status { color: $text-error; }
    """

    def __init__(self, direction: str, name: str, size: int, *, id: str) -> None:
        super().__init__(id=id)
        arrow = "↑" if direction == "out" else "↓"
        self.file_size = size
        self.status_text = "offered"
        # Children exist from the start, so that events arriving before this row is
        # composed (they come in bursts) update them safely.
        self._w_name = Static(f"{arrow} {name} ({human_bytes(size)})", classes="name")
        self._w_bar = ProgressBar(total=max(self.file_size, 1), show_eta=False)
        self._w_status = Static(self.status_text, classes="status")

    def compose(self) -> ComposeResult:
        yield self._w_name
        yield self._w_status
        yield self._w_bar

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

    def failed(self, reason: str) -> None:
        """Mark as failed with the reason."""
        self.add_class("-failed")
        self.set_status(f"✗ {reason}")


class OfferBar(Horizontal):
    """The peer's pending offer, with Accept / Reject. Offers queue up in order."""

    DEFAULT_CSS = """
    OfferBar { height: auto; display: none; background: $warning-muted; padding: 0 1; }
    OfferBar.-pending { display: block; layout: horizontal; }
    OfferBar #offer-text { width: 1fr; }
    OfferBar Button { margin-left: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._queue: list[tuple[IncomingOffer, asyncio.Future[bool]]] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="offer-text")
        yield Button("Accept", variant="success", id="offer-accept", compact=True)
        yield Button("Reject", variant="error", id="offer-reject", compact=True)

    @property
    def pending(self) -> int:
        """Offers waiting for an answer."""
        return len(self._queue)

    def ask(self, offer: IncomingOffer) -> asyncio.Future[bool]:
        """Queue an offer; the future resolves with the user's answer."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((offer, future))
        self._show()
        return future

    def answer(self, accept: bool) -> None:
        """Answer the first pending offer."""
        if not self._queue:
            return
        _, future = self._queue.pop(0)
        if not future.done():
            future.set_result(accept)
        self._show()

    def _show(self) -> None:
        self.screen.refresh_bindings()  # the offer keys appear or disappear
        if not self._queue:
            self.remove_class("-pending")
            return
        offer = self._queue[0][0]
        names = ", ".join(f.path for f in offer.files[:3])
        more = f" and {len(offer.files) - 3} more" if len(offer.files) > 3 else ""
        self.query_one("#offer-text", Static).update(
            f"Peer offers {len(offer.files)} file(s), {human_bytes(offer.total_size)}: "
            f"{names}{more}"
        )
        self.add_class("-pending")

    @on(Button.Pressed, "#offer-accept")
    def _accept(self) -> None:
        self.answer(True)

    @on(Button.Pressed, "#offer-reject")
    def _reject(self) -> None:
        self.answer(False)


class FilePicker(ModalScreen[Path | None]):
    """Pick a file or folder to send (Enter on a file, or the Select button for a folder)."""

    DEFAULT_CSS = """
    FilePicker { align: center middle; }
    FilePicker > Vertical { width: 80%; height: 80%; border: thick $primary; background: $surface; }
    FilePicker DirectoryTree { height: 1fr; }
    FilePicker Horizontal { height: auto; }
    FilePicker #picked { width: 1fr; padding: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.picked: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Send a file or folder from {self.root}")
            yield DirectoryTree(self.root)
            with Horizontal():
                yield Static("", id="picked")
                yield Button("Send this", variant="primary", id="pick")
                yield Button("Cancel", id="cancel")

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(event.path)

    @on(DirectoryTree.DirectorySelected)
    def _folder(self, event: DirectoryTree.DirectorySelected) -> None:
        self.picked = event.path
        self.query_one("#picked", Static).update(str(event.path))

    @on(Button.Pressed, "#pick")
    def _pick(self) -> None:
        self.dismiss(self.picked)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without picking."""
        self.dismiss(None)


class FilesPane(Vertical):
    """Send bar, pending offer, transfers, and where received files go."""

    DEFAULT_CSS = """
    FilesPane { height: 1fr; }
    FilesPane #send-bar { height: 1; margin-bottom: 1; }
    FilesPane #send-bar Button { margin-left: 1; }
    FilesPane #send-path { width: 1fr; }
    FilesPane #transfers { height: 1fr; background: $surface; }
    FilesPane #download-dir { color: $text-muted; height: 1; padding: 0 1; }
    """

    @dataclass
    class SendPaths(Message):
        """The user wants to send these paths."""

        paths: list[Path]

    def __init__(self, download_dir: Path | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.download_dir = download_dir
        self.session = 0
        """Which session of this app run the transfer events belong to: transfer ids
        restart at 1 in every session, so rows are keyed by session and id (issue 16)."""

    def new_session(self) -> None:
        """Events from now on belong to a new session (earlier rows stay as they are)."""
        self.session += 1

    def compose(self) -> ComposeResult:
        with Horizontal(id="send-bar"):
            yield Input(placeholder="path to send", id="send-path", compact=True)
            yield Button(
                "Browse", id="browse", tooltip="pick with a file browser (ctrl+o)", compact=True
            )
            yield Button("Send", variant="primary", id="send", compact=True)
        yield OfferBar(id="offer-bar")
        yield VerticalScroll(id="transfers")
        where = str(self.download_dir) if self.download_dir else "(not receiving files)"
        yield Static(f"received files: {where}", id="download-dir")

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
        path = Path(text).expanduser()
        if not path.exists():
            self.app.notify(f"no such file or folder: {path}", severity="error")
            return  # keep the text so the user can fix it
        field.value = ""
        self.post_message(self.SendPaths([path]))

    @on(Button.Pressed, "#browse")
    def action_browse(self) -> None:
        """Open the file picker."""

        def picked(path: Path | None) -> None:
            if path is not None:
                self.post_message(self.SendPaths([path]))

        self.app.push_screen(FilePicker(Path.cwd()), picked)

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
        """Update the transfers from one session event."""
        if isinstance(event, ev.FileOffered):
            if self.row(event.direction, event.transfer_id) is None:
                row = TransferRow(
                    event.direction,
                    event.name,
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
                found.failed(event.reason)
            case ev.TransferResumed():
                found.set_status(f"resumed @{human_bytes(event.offset)}")
